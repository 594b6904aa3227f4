// The trainer role in the controller's process: the policy (and frozen reference) with
// AdamW, computing log-probs and running PPO-style updates; also the SFT step.
#pragma once

#include <memory>
#include <string>

#include "framework/core/config.h"
#include "framework/model/pretrained.h"
#include "workers/roles/roles.h"

namespace hone {

struct TrainerOptions {
  // optim.*
  double lr = 1e-5;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  // The schedule counts training steps (Update or SftStep calls), not optimizer steps.
  int64_t warmup_steps = 0;
  std::string schedule = "constant";  // or "cosine" (to 0 at total_steps)
  int64_t total_steps = 1;
  double grad_clip = 1.0;  // 0 = off
  // trainer.*
  int64_t ppo_epochs = 1;
  int64_t ppo_mini_batch_size = 0;  // sequences per optimizer step; 0 = the whole batch
  int64_t micro_batch_size = 64;    // sequences per forward/backward
  // algorithm.*
  double clip_ratio_low = 0.2, clip_ratio_high = 0.2, clip_ratio_c = 0.0;
  std::string loss_agg_mode = "token_mean";
  int64_t loss_norm_length = 0;  // seq_mean_token_sum_norm: the response length cap
  double kl_coef = 0.0;
  std::string kl_estimator = "k3";
  double entropy_coef = 0.0;
  uint64_t seed = 1;
};

// Error when a value the schema cannot check alone is wrong (optim.betas not two numbers,
// algorithm.clip_ratio_c between 0 and 1, ...), naming the key.
absl::StatusOr<TrainerOptions> TrainerOptionsFromConfig(const Config& config);

class LocalPolicyTrainer : public PolicyTrainer {
 public:
  // Trains `policy` in place. A reference copy is kept only when options.kl_coef > 0.
  static absl::StatusOr<std::unique_ptr<LocalPolicyTrainer>> Create(Pretrained policy,
                                                                    TrainerOptions options);

  absl::StatusOr<LogProbs> ComputeLogProbs(const Batch& trajectories) override;
  absl::StatusOr<Metrics> Update(const Batch& trajectories) override;
  absl::StatusOr<NamedTensors> PolicyWeights() override;
  absl::Status SaveCheckpoint(const std::string& dir) override;

  // Supervised step: mean negative log-likelihood of the tokens where response_mask is 1
  // (needs input_ids, attention_mask, response_mask). One optimizer step.
  absl::StatusOr<Metrics> SftStep(const Batch& batch);

  // The learning rate of the next training step.
  double current_lr() const;
  Pretrained& policy() { return policy_; }

 private:
  LocalPolicyTrainer(Pretrained policy, TrainerOptions options);
  // Clips gradients and steps the optimizer at the schedule's current rate; returns the
  // grad norm.
  double OptimizerStep();

  Pretrained policy_;
  CausalLM reference_{nullptr};
  TrainerOptions options_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  int64_t schedule_steps_ = 0;  // completed Update / SftStep calls
};

// Token log-probs of `input_ids` under `model` at `temperature`, aligned to token
// positions ([N,T], position 0 is 0), and optionally the entropy at each position.
// Runs in micro-batches of `micro_batch_size` rows.
struct TokenLogProbs {
  torch::Tensor logprobs;
  torch::Tensor entropy;
};
TokenLogProbs ComputeTokenLogProbs(CausalLM& model, const torch::Tensor& input_ids,
                                   const torch::Tensor& attention_mask, double temperature,
                                   bool with_grad);

}  // namespace hone
