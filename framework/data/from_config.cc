#include "framework/data/from_config.h"

#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"

namespace hone::data {

DatasetOptions DatasetOptionsFromConfig(const Config& config, const std::string& path) {
  DatasetOptions options;
  options.path = path;
  options.prompt_key = config.String("data.prompt_key");
  options.answer_key = config.String("data.answer_key");
  options.skip_invalid = config.Bool("data.skip_invalid");
  options.seed = static_cast<uint64_t>(config.Int("seed"));
  options.num_examples = config.Int("data.arithmetic.num_examples") + config.Int("data.val_size");
  options.min_ops = config.Int("data.arithmetic.min_ops");
  options.max_ops = config.Int("data.arithmetic.max_ops");
  options.operand_min = config.Int("data.arithmetic.operand_min");
  options.operand_max = config.Int("data.arithmetic.operand_max");
  options.allow_negative = config.Bool("data.arithmetic.allow_negative");
  options.unboxed_fraction = config.Float("data.arithmetic.unboxed_fraction");
  return options;
}

absl::StatusOr<DataSplits> LoadSplits(const Config& config) {
  const std::string& name = config.String("data.dataset");
  const std::string& train_path = config.String("data.train_path");
  const std::string& val_path = config.String("data.val_path");
  if (name != "arithmetic" && train_path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data.dataset=", name, " needs data.train_path (a JSONL file with one {\"question\": ..., \"answer\": ...} object per line, e.g. build/testdata/gsm8k/train.jsonl)"));
  }
  DataSplits splits;
  // Errors name the key that gave the file, so a wrong path is easy to find in the config.
  const bool from_file = name != "arithmetic";
  absl::StatusOr<std::vector<Example>> loaded =
      LoadDataset(name, DatasetOptionsFromConfig(config, train_path), &splits.report);
  if (!loaded.ok()) return from_file ? Annotate(loaded.status(), "data.train_path") : loaded.status();
  std::vector<Example> examples = *std::move(loaded);
  const int64_t val_size = config.Int("data.val_size");
  const uint64_t seed = static_cast<uint64_t>(config.Int("seed"));
  if (!val_path.empty()) {
    absl::StatusOr<std::vector<Example>> held_out = LoadDataset(name, DatasetOptionsFromConfig(config, val_path));
    if (!held_out.ok()) return from_file ? Annotate(held_out.status(), "data.val_path") : held_out.status();
    splits.held_out = *std::move(held_out);
    splits.train = std::move(examples);
  } else {
    if (val_size >= static_cast<int64_t>(examples.size())) {
      return absl::InvalidArgumentError(absl::StrCat("data.val_size=", val_size, " leaves no training data (",
                                                     examples.size(), " examples)"));
    }
    HONE_ASSIGN_OR_RETURN(Split split, SplitHeldOut(std::move(examples), val_size, seed));
    splits.train = std::move(split.train);
    splits.held_out = std::move(split.held_out);
  }
  std::unordered_set<std::string> held_out_prompts;
  for (const auto& e : splits.held_out) held_out_prompts.insert(e.prompt);
  std::vector<Example> kept;
  kept.reserve(splits.train.size());
  for (auto& e : splits.train) {
    if (held_out_prompts.count(e.prompt)) {
      ++splits.removed_overlap;
    } else {
      kept.push_back(std::move(e));
    }
  }
  splits.train = std::move(kept);
  if (splits.train.empty()) return absl::InvalidArgumentError("no training examples left after the held-out split");
  return splits;
}

absl::StatusOr<PromptFormatter> PromptFormatterFromConfig(const Config& config) {
  return PromptFormatter::Create(config.String("data.prompt_template"), config.String("model.path"));
}

}  // namespace hone::data
