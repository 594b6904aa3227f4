// The dataset half of a job's configuration: which examples train, which are held out.
// Shared by `hone train`, `hone sft` and `hone eval`, so that all three see the same
// held-out prompts for the same config and seed.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/core/config.h"
#include "framework/data/dataset.h"
#include "framework/data/prompt_formatter.h"

namespace hone::data {

struct DataSplits {
  std::vector<Example> train;
  std::vector<Example> held_out;
  LoadReport report;  // what loading the training data skipped (data.skip_invalid)
  int64_t removed_overlap = 0;  // training examples dropped because a held-out one has the same prompt
};

// data.dataset / data.train_path / data.prompt_key ... as DatasetOptions for one file.
DatasetOptions DatasetOptionsFromConfig(const Config& config, const std::string& path);

// Training examples and the held-out set:
// * data.val_path set: the held-out set is that file; else data.val_size examples split
//   off the training data with the job's seed (arithmetic generates
//   num_examples + val_size problems and splits them the same way).
// * Training examples whose prompt equals a held-out prompt are removed, so held-out
//   accuracy measures problems the policy never trained on.
absl::StatusOr<DataSplits> LoadSplits(const Config& config);

// data.prompt_template for the policy in model.path (whose tokenizer_config.json a `chat`
// template comes from).
absl::StatusOr<PromptFormatter> PromptFormatterFromConfig(const Config& config);

}  // namespace hone::data
