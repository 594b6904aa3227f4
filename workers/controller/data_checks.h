// Load-time checks of a job's data against its model, so that a bad input is a message
// naming the example at start-up, not an "index out of range" from the embedding an hour
// into the run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "framework/core/config.h"
#include "framework/data/from_config.h"
#include "framework/model/tokenizer.h"

namespace hone {

// GRPO prompts (template applied) against the longest allowed prompt: data.max_prompt_length,
// and at most max_position_embeddings - rollout.max_new_tokens (the response must fit
// too). With data.filter_overlong_prompts, longer training and held-out prompts are
// dropped with a counted warning on stderr; without, the first one is an error naming
// its example index and length.
absl::Status CheckPromptLengths(const Config& config, const Tokenizer& tokenizer,
                                int64_t max_position_embeddings, data::DataSplits& splits);

// SFT: prompt + solution + end-of-text of every training example fits the model's
// max_position_embeddings; else an error naming the first example that does not.
absl::Status CheckSftLengths(const Config& config, const Tokenizer& tokenizer, int64_t max_position_embeddings,
                             const std::vector<data::Example>& examples);

// Warnings on stderr about the split: training prompts dropped as duplicates of held-out
// ones, and a held-out split that leaves fewer than a few steps of `batch_key` (its value
// `batch_size`) for training.
void WarnAboutSplit(const data::DataSplits& splits, int64_t batch_size, const std::string& batch_key);

// The settings `hone train` must refuse before any rank does work, checked the same way on
// every rank: the trainer's options (clip ratios, loss, corrections) and the eval.* keys
// (eval.k <= eval.n), the latter even when validation is off, so a config that trains also
// evaluates.
absl::Status CheckTrainingConfig(const Config& config);

// trainer.max_policy_lag resolved: -1 means 1 with trainer.async_rollout, else 0.
int64_t MaxPolicyLag(const Config& config);

}  // namespace hone
