// The rollout role in the controller's process: the generation engine on a private copy
// of the policy, refreshed by LoadWeights after every policy step.
#pragma once

#include <memory>

#include "framework/model/pretrained.h"
#include "workers/roles/roles.h"

namespace hone {

class LocalRollout : public RolloutEngine {
 public:
  // Takes its own copy of `policy`'s weights, so that training the trainer's copy never
  // changes what the rollout samples from until LoadWeights.
  static absl::StatusOr<std::unique_ptr<LocalRollout>> Create(const Pretrained& policy);

  absl::StatusOr<Batch> Generate(const Batch& prompts, const SamplingParams& params) override;
  absl::Status LoadWeights(const NamedTensors& weights, int64_t version) override;
  int64_t policy_version() const override { return version_; }

 private:
  LocalRollout(CausalLM model, std::unique_ptr<Tokenizer> tokenizer);

  CausalLM model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  GenerationEngine engine_;
  int64_t version_ = 0;
};

// Builds the prompts batch (see roles.h) from templated prompt texts: tokenizes, pads.
absl::StatusOr<Batch> MakePromptBatch(const Tokenizer& tokenizer,
                                      const std::vector<std::string>& prompts,
                                      const std::vector<std::string>& ground_truths,
                                      int64_t first_group_id);

// The same from prompts already tokenized: pads `prompt_ids` into prompt_ids [G,P], with
// group ids first_group_id.. in order. `prompts` and `ground_truths` have G entries.
absl::StatusOr<Batch> PromptBatchFromIds(const std::vector<std::vector<int64_t>>& prompt_ids,
                                         const std::vector<std::string>& prompts,
                                         const std::vector<std::string>& ground_truths, int64_t first_group_id);

}  // namespace hone
