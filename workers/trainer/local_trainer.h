// The trainer role in the controller's process: the policy (and frozen reference) with
// AdamW, computing log-probs and running PPO-style updates; also the SFT step.
#pragma once

#include <memory>
#include <string>

#include "framework/core/config.h"
#include "framework/model/pretrained.h"
#include "workers/roles/roles.h"
#include "workers/trainer/token_logprobs.h"  // ComputeTokenLogProbs

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
  int64_t ppo_mini_batch_size = 0;  // sequences per optimizer step (config: prompts x rollout.n); 0 = all
  int64_t micro_batch_size = 64;    // sequences per forward/backward
  // Cut each mini-batch's micro-batches from its sequences ordered by length, so that
  // short sequences are not padded to a long neighbour's width (PlanMicroBatches). The
  // update is the same either way up to float32 summation order; off only for tests
  // and benchmarks that compare the two.
  bool sort_micro_batches = true;
  // algorithm.*
  std::string policy_loss = "vanilla";  // algo::GetPolicyLoss: vanilla, gspo
  // algo::RolloutCorrection: off, tis_token, tis_seq, mis_token, mis_seq; any but off
  // needs the trajectories' rollout_logprobs.
  std::string rollout_correction = "off";
  double rollout_is_threshold = 2.0;
  double clip_ratio_low = 0.2, clip_ratio_high = 0.2, clip_ratio_c = 0.0;
  std::string loss_agg_mode = "token_mean";
  int64_t loss_norm_length = 0;  // seq_mean_token_sum_norm: the response length cap
  double kl_coef = 0.0;
  std::string kl_estimator = "k3";
  double entropy_coef = 0.0;
  // A non-finite global grad norm skips the optimizer step; this many in a row stop the job.
  int64_t max_skipped_updates = 3;
  // The frozen reference policy (with kl_coef > 0): an HF model directory, or empty for a
  // copy of the policy as it is at creation. A resumed run names the model it started from.
  std::string reference_path;
  uint64_t seed = 1;
};

// Error when a value the schema cannot check alone is wrong (optim.betas not two numbers,
// algorithm.clip_ratio_c between 0 and 1 or set with policy_loss gspo, ...), naming the key.
absl::StatusOr<TrainerOptions> TrainerOptionsFromConfig(const Config& config);

// Keeps NaN/inf out of the weights: an optimizer step whose global grad norm is not
// finite is skipped (and counted); `max_in_a_row` skipped steps in a row are an error,
// because the run has diverged and every further step would be skipped too.
class NonFiniteStepGuard {
 public:
  explicit NonFiniteStepGuard(int64_t max_in_a_row) : max_in_a_row_(max_in_a_row) {}
  // true: take the step. false: skip it. Error after max_in_a_row skips in a row.
  absl::StatusOr<bool> Check(double grad_norm);
  int64_t skipped_total() const { return skipped_total_; }
  void RestoreSkippedTotal(int64_t total) { skipped_total_ = total; }

 private:
  int64_t max_in_a_row_;
  int64_t in_a_row_ = 0;
  int64_t skipped_total_ = 0;
};

// Sums train metrics over the mini-batches of one Update and turns them into the
// reported values (policy_loss, kl, entropy, clip_fraction, ..., grad_norm; with a
// rollout correction other than "off" also rollout_is_weight_mean,
// rollout_is_truncated_fraction (tis_*) or rollout_is_masked_fraction (mis_*), and
// rollout_seq_kl).
class UpdateAccumulator {
 public:
  explicit UpdateAccumulator(std::string rollout_correction = "off")
      : rollout_correction_(std::move(rollout_correction)) {}
  void Add(const struct MiniBatchSums& sums);
  void AddStep(double grad_norm);
  Metrics Finish() const;

 private:
  std::string rollout_correction_;
  double policy_loss_ = 0, kl_ = 0, entropy_ = 0, clip_ = 0, dual_clip_ = 0, approx_kl_ = 0, tokens_ = 0;
  double is_units_ = 0, is_weight_sum_ = 0, is_exceeded_ = 0, sequences_ = 0, seq_kl_sum_ = 0;
  double norm_sum_ = 0;
  int64_t mini_batches_ = 0, steps_ = 0;
};

// The frozen reference policy for the KL term: `reference_path`'s weights (checked to
// have the policy's shapes), or a copy of `policy` when the path is empty.
absl::StatusOr<CausalLM> MakeReferencePolicy(CausalLM& policy, const std::string& reference_path);

// The learning rate of the training step after `steps_done` completed ones (warm-up, then
// constant or cosine). The schedule counts training steps (Update / SftStep calls).
double ScheduledLearningRate(const TrainerOptions& options, int64_t steps_done);

// The sampling temperature the trajectories were generated with (meta "temperature",
// written exactly by the rollout); an error when it is missing or not a number > 0.
absl::StatusOr<double> RequireTemperature(const Batch& batch);

class LocalPolicyTrainer : public PolicyTrainer {
 public:
  // Trains `policy` in place. A reference copy is kept only when options.kl_coef > 0.
  static absl::StatusOr<std::unique_ptr<LocalPolicyTrainer>> Create(Pretrained policy,
                                                                    TrainerOptions options);

  absl::StatusOr<LogProbs> ComputeLogProbs(const Batch& trajectories) override;
  absl::StatusOr<Metrics> Update(const Batch& trajectories) override;
  absl::StatusOr<NamedTensors> PolicyWeights() override;
  absl::Status SaveCheckpoint(const std::string& dir) override;
  absl::Status LoadCheckpoint(const std::string& dir) override;

  // Supervised step: mean negative log-likelihood of the tokens where response_mask is 1
  // (needs input_ids, attention_mask, response_mask). One optimizer step.
  absl::StatusOr<Metrics> SftStep(const Batch& batch);

  // The learning rate of the next training step.
  double current_lr() const;
  Pretrained& policy() { return policy_; }

 private:
  LocalPolicyTrainer(Pretrained policy, TrainerOptions options);
  // Clips gradients and steps the optimizer at the schedule's current rate; returns the
  // grad norm. A non-finite norm skips the step (see NonFiniteStepGuard).
  absl::StatusOr<double> OptimizerStep();
  // Drops the gradients instead of zeroing them (libtorch 1.13's zero_grad() writes zeros;
  // PyTorch's zero_grad(set_to_none=True) drops them): the next backward then writes each
  // gradient instead of adding it to zeros, a pass less over every gradient. Every
  // parameter is in the loss, so AdamW, which skips a parameter without a gradient, still
  // steps them all.
  void DropGradients();

  Pretrained policy_;
  CausalLM reference_{nullptr};
  TrainerOptions options_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  int64_t schedule_steps_ = 0;  // completed Update / SftStep calls
  NonFiniteStepGuard skip_guard_;
};

}  // namespace hone
