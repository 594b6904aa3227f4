// The `arithmetic` dataset: short +/- chains for a tiny char-level model trained from
// scratch on CPU. Texts are deliberately regular and use a 24-character alphabet:
//   prompt   "7+12-5=?"
//   solution "7+12=19. 19-5=14. \boxed{14}"
// one "a op b=c." step per operation, evaluated left to right (no precedence to learn).
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/data/dataset.h"

namespace hone::data {
namespace {

constexpr int64_t kMaxOps = 16;
constexpr int64_t kMaxOperand = 1000000000;  // keeps every running value far inside int64

// Uniform in [lo, hi], lo <= hi.
int64_t Draw(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(UniformBelow(rng, static_cast<uint64_t>(hi - lo) + 1));
}

Example MakeProblem(const DatasetOptions& options, int64_t index) {
  // One generator per example, so example i is the same whatever num_examples is.
  std::mt19937_64 rng(MixSeed(options.seed, static_cast<uint64_t>(index)));
  const int64_t ops = Draw(rng, options.min_ops, options.max_ops);
  int64_t value = Draw(rng, options.operand_min, options.operand_max);
  std::string prompt = absl::StrCat(value);
  std::string solution;
  for (int64_t k = 0; k < ops; ++k) {
    bool subtract = UniformBelow(rng, 2) == 1;
    int64_t hi = options.operand_max;
    if (subtract && !options.allow_negative) {
      hi = std::min(hi, value);
      if (hi < options.operand_min) {
        subtract = false;
        hi = options.operand_max;
      }
    }
    const int64_t operand = Draw(rng, options.operand_min, hi);
    const char op = subtract ? '-' : '+';
    const int64_t next = subtract ? value - operand : value + operand;
    absl::StrAppend(&prompt, std::string(1, op), operand);
    absl::StrAppend(&solution, value, std::string(1, op), operand, "=", next, ". ");
    value = next;
  }
  absl::StrAppend(&prompt, "=?");
  // A separate stream, so that the format choice never changes the problem itself.
  std::mt19937_64 format_rng(MixSeed(options.seed ^ 0x5bd1e995ULL, static_cast<uint64_t>(index)));
  const bool unboxed = options.unboxed_fraction > 0 &&
                       static_cast<double>(UniformBelow(format_rng, 1000000)) < options.unboxed_fraction * 1e6;
  if (unboxed) {
    solution.pop_back();  // the trailing space after the last equation's period
  } else {
    absl::StrAppend(&solution, "\\boxed{", value, "}");
  }
  Example example;
  example.prompt = std::move(prompt);
  example.solution = std::move(solution);
  example.ground_truth = absl::StrCat(value);
  example.index = index;
  return example;
}

}  // namespace

absl::Status ValidateArithmeticOptions(const DatasetOptions& options) {
  if (options.num_examples < 1) {
    return absl::InvalidArgumentError("arithmetic: num_examples must be at least 1");
  }
  if (options.min_ops < 1 || options.max_ops < options.min_ops || options.max_ops > kMaxOps) {
    return absl::InvalidArgumentError(absl::StrCat("arithmetic: need 1 <= min_ops <= max_ops <= ",
                                                   kMaxOps, ", got ", options.min_ops, "..",
                                                   options.max_ops));
  }
  if (options.operand_min < 0 || options.operand_max < options.operand_min ||
      options.operand_max > kMaxOperand) {
    return absl::InvalidArgumentError(
        absl::StrCat("arithmetic: need 0 <= operand_min <= operand_max <= ", kMaxOperand, ", got ",
                     options.operand_min, "..", options.operand_max));
  }
  if (!(options.unboxed_fraction >= 0.0 && options.unboxed_fraction <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("arithmetic: unboxed_fraction must be in [0, 1], got ", options.unboxed_fraction));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Example>> GenerateArithmetic(const DatasetOptions& options) {
  HONE_RETURN_IF_ERROR(ValidateArithmeticOptions(options));
  std::vector<Example> examples;
  examples.reserve(static_cast<size_t>(options.num_examples));
  for (int64_t i = 0; i < options.num_examples; ++i) examples.push_back(MakeProblem(options, i));
  return examples;
}

std::string ArithmeticCharset() {
  std::string chars = "0123456789+-=?. \\boxed{}";
  std::sort(chars.begin(), chars.end());
  chars.erase(std::unique(chars.begin(), chars.end()), chars.end());
  return chars;
}

}  // namespace hone::data
