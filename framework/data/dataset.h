// Datasets, the data loader and prompt templates: the dataset half of framework/data
// (batch.h is the tensor half). Torch-free, so the controller's data path builds and
// tests without libtorch.
//
// Datasets are picked by name from a registry (LoadDataset):
//   gsm8k       JSONL with "question" and "answer"; the answer's last line is `#### N`.
//   jsonl       JSONL with configurable field names; the answer is an integer (string or
//               number) or a GSM8K-style `... #### N` text.
//   arithmetic  a seeded generator of short integer problems for the tiny char-level
//               demo model ("7+12-5=?" -> "7+12=19. 19-5=14. \boxed{14}").
// Every example carries the bare question (templates are applied later, by name), a
// reference solution ending in `\boxed{N}` for SFT warm-up, and the integer answer.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hone::data {

struct Example {
  std::string prompt;        // the question text, no template applied
  std::string solution;      // reference solution for SFT, ending in `\boxed{N}`
  std::string ground_truth;  // the integer answer in canonical form: "-3", "1234"
  int64_t index = 0;         // 0-based position in the loaded dataset; kept by splits
};

struct DatasetOptions {
  // --- gsm8k, jsonl ---
  std::string path;                      // a JSONL file
  std::string prompt_key = "question";   // jsonl only; gsm8k always uses "question"
  std::string answer_key = "answer";     // jsonl only; gsm8k always uses "answer"
  // jsonl only: field holding the reference solution. Empty: derived from the answer
  // (GSM8K-style answers as for gsm8k, a bare integer N as "\boxed{N}").
  std::string solution_key;
  // A malformed line is an error naming file and line; with skip_invalid it is skipped
  // and counted in LoadReport instead.
  bool skip_invalid = false;

  // --- arithmetic ---
  int64_t num_examples = 1000;
  uint64_t seed = 0;
  int64_t min_ops = 2;  // operations per problem, drawn uniformly in [min_ops, max_ops]
  int64_t max_ops = 2;
  int64_t operand_min = 1;  // operands drawn uniformly in [operand_min, operand_max]
  int64_t operand_max = 20;
  // false: a subtraction never takes the running value below zero (its operand is drawn
  // from [operand_min, min(operand_max, value)], and it turns into an addition when that
  // range is empty), so no `-` ever appears as a sign. Fewer patterns for a tiny model.
  bool allow_negative = false;
  // Fraction of reference solutions (seeded, per example) that stop after the last
  // equation without `\boxed{N}`: a warm start that follows the answer format only some
  // of the time, as base models often do. Prompts and answers are the same either way.
  double unboxed_fraction = 0.0;
};

// What a load skipped (skip_invalid) and why.
struct LoadReport {
  int64_t lines = 0;    // non-blank lines read
  int64_t skipped = 0;  // malformed lines skipped
  // "file:line: reason" for the first kMaxWarnings skipped lines.
  std::vector<std::string> warnings;
  static constexpr int kMaxWarnings = 20;
};

// Loads the dataset `name` (see DatasetNames()). An unknown name is an error listing the
// known ones; an empty result is an error. `report` may be null.
absl::StatusOr<std::vector<Example>> LoadDataset(std::string_view name,
                                                 const DatasetOptions& options,
                                                 LoadReport* report = nullptr);
std::vector<std::string> DatasetNames();  // in registry order

// The SFT solution for a GSM8K answer: calculator annotations `<<48/2=24>>` removed and the
// final `#### N` line replaced by `\boxed{N}` (N canonical: "#### 1,234" -> "\boxed{1234}").
// Error when the answer has no `#### N`.
absl::StatusOr<std::string> Gsm8kSolution(std::string_view answer);

// --- arithmetic ---

// Checks the arithmetic knobs: 1 <= min_ops <= max_ops <= 16,
// 0 <= operand_min <= operand_max <= 1e9, num_examples >= 1.
absl::Status ValidateArithmeticOptions(const DatasetOptions& options);

// Example i depends only on (seed, i, knobs), not on num_examples.
absl::StatusOr<std::vector<Example>> GenerateArithmetic(const DatasetOptions& options);

// Every character the generator can emit in a prompt or solution, sorted and distinct:
// " +-.0123456789=?\bdeox{}". A char-level tokenizer built from it covers the dataset.
std::string ArithmeticCharset();

// --- deterministic shuffling ---
// std::shuffle and std::uniform_int_distribution differ between standard libraries; these
// use only std::mt19937_64 (fully specified by the standard) and our own draws, so a run
// resumes to the same batches on any platform.

// Seed of the permutation for (seed, epoch): SplitMix64 mixing of both.
uint64_t MixSeed(uint64_t seed, uint64_t salt);

// Uniform in [0, n) for n >= 1, by rejection (no modulo bias).
uint64_t UniformBelow(std::mt19937_64& rng, uint64_t n);

// A permutation of 0..n-1 by Fisher-Yates, fixed by (seed, epoch).
std::vector<int64_t> ShuffledOrder(int64_t n, uint64_t seed, int64_t epoch);

// Where a DataLoader stands: the next batch starts at `position` of epoch `epoch`'s order.
struct LoaderState {
  int64_t epoch = 0;
  int64_t position = 0;
};

// Serves batches of examples in a per-epoch shuffled order, wrapping into the next epoch
// (a batch may span two epochs). Its whole state is LoaderState, for checkpoints.
class DataLoader {
 public:
  // shuffle=false serves examples in their given order every epoch (validation).
  DataLoader(std::vector<Example> examples, uint64_t seed, bool shuffle = true);

  // The next batch_size examples; empty for batch_size <= 0 or an empty dataset.
  std::vector<Example> NextBatch(int64_t batch_size);

  // Always normalised: 0 <= position < size() (an exhausted epoch is the next one's 0).
  LoaderState State() const { return {epoch_, position_}; }
  // Error when epoch < 0 or position is outside [0, size()].
  absl::Status Restore(const LoaderState& state);

  int64_t size() const { return static_cast<int64_t>(examples_.size()); }
  const std::vector<Example>& examples() const { return examples_; }

 private:
  void StartEpoch(int64_t epoch);

  std::vector<Example> examples_;
  uint64_t seed_;
  bool shuffle_;
  int64_t epoch_ = 0;
  int64_t position_ = 0;
  std::vector<int64_t> order_;
};

struct Split {
  std::vector<Example> train;
  std::vector<Example> held_out;
};

// Holds out `held_out` examples picked by a seeded permutation; both parts keep the
// original order and indices. Error unless 0 <= held_out <= examples.size().
absl::StatusOr<Split> SplitHeldOut(std::vector<Example> examples, int64_t held_out,
                                   uint64_t seed);

// --- prompt templates ---
// raw     the bare question (the tiny char-level model)
// plain   question + an instruction to box the integer answer (base models)
// qwen    Qwen2.5 ChatML with a system turn, ending at the assistant's turn
// llama3  Llama 3 instruct format; it starts with <|begin_of_text|>, so the tokenizer must
//         not add another BOS

// The prompt for `question` under template `name`; an unknown name is an error listing
// the known ones.
absl::StatusOr<std::string> ApplyPromptTemplate(std::string_view name, std::string_view question);
// The instruction the `qwen` and `llama3` templates (and `chat`'s user turn) append to the
// question: Qwen2.5-Math's, whose `\boxed{}` the boxed_integer reward looks for.
extern const char kBoxInstruction[];
std::vector<std::string> PromptTemplateNames();  // in registry order

}  // namespace hone::data
