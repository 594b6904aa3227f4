#include "workers/trainer/policy_gradient.h"

#include <algorithm>

namespace hone {

std::array<double, MiniBatchSums::kNumFields> MiniBatchSums::ToArray() const {
  return {policy_loss, kl, entropy, clip_tokens, dual_clip_tokens, approx_kl_tokens, tokens,
          is_units, is_weight_sum, is_exceeded, sequences, seq_kl_sum};
}

MiniBatchSums MiniBatchSums::FromArray(const double* v) {
  return MiniBatchSums{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]};
}

torch::Tensor Rows(const torch::Tensor& t, int64_t start, int64_t rows, int64_t width) {
  auto r = t.narrow(0, start, rows);
  return r.dim() > 1 ? r.narrow(1, 0, width) : r;
}

int64_t UsedWidth(const torch::Tensor& attention_mask, int64_t start, int64_t rows) {
  return attention_mask.narrow(0, start, rows).to(torch::kInt64).sum(1).max().item<int64_t>();
}

algo::LossDenominators CountRows(const torch::Tensor& mask, int64_t begin, int64_t end) {
  if (end <= begin) return algo::LossDenominators{0, 0, 0};
  return algo::CountLossDenominators(mask.narrow(0, begin, end - begin));
}

MiniBatchSums AccumulatePolicyGradient(CausalLM& policy, const Batch& batch, int64_t begin, int64_t end,
                                       const TrainerOptions& options, const algo::LossDenominators& whole) {
  auto temperature_or = RequireTemperature(batch);
  TORCH_CHECK(temperature_or.ok(), std::string(temperature_or.status().message()));
  const double temperature = *temperature_or;
  const auto& ids = batch.tensor("input_ids");
  const auto& attention = batch.tensor("attention_mask");
  auto loss_fn = algo::GetPolicyLoss(options.policy_loss);
  TORCH_CHECK(loss_fn.ok(), std::string(loss_fn.status().message()));
  const bool correct = options.rollout_correction != "off";
  algo::PolicyLossOptions loss_options;
  loss_options.clip_ratio_low = options.clip_ratio_low;
  loss_options.clip_ratio_high = options.clip_ratio_high;
  loss_options.clip_ratio_c = options.clip_ratio_c;
  loss_options.loss_agg_mode = options.loss_agg_mode;
  loss_options.norm_length = options.loss_norm_length;
  loss_options.whole = whole;
  // Entropy is reported as the mini-batch's token mean, whatever the loss mode.
  algo::LossDenominators token_whole;
  token_whole.tokens = whole.tokens;

  MiniBatchSums sums;
  for (int64_t start = begin; start < end; start += options.micro_batch_size) {
    const int64_t rows = std::min(options.micro_batch_size, end - start);
    const int64_t width = UsedWidth(attention, start, rows);
    auto mask = Rows(batch.tensor("response_mask"), start, rows, width);
    auto current = ComputeTokenLogProbs(policy, Rows(ids, start, rows, width), Rows(attention, start, rows, width),
                                        temperature, true, /*entropy_grad=*/options.entropy_coef > 0, mask);
    auto old_logprobs = Rows(batch.tensor("old_logprobs"), start, rows, width);
    if (correct) {
      // The one place where the rollout correction meets the policy loss (either one).
      auto correction = algo::RolloutCorrection(old_logprobs, Rows(batch.tensor("rollout_logprobs"), start, rows, width),
                                                mask, options.rollout_correction, options.rollout_is_threshold);
      loss_options.token_weights = correction.weights;
      sums.is_units += correction.units;
      sums.is_weight_sum += correction.weight_sum;
      sums.is_exceeded += correction.exceeded;
      sums.sequences += correction.sequences;
      sums.seq_kl_sum += correction.seq_kl_sum;
    }
    auto pg = (*loss_fn)(current.logprobs, old_logprobs, Rows(batch.tensor("advantages"), start, rows, width), mask,
                         loss_options);
    auto loss = pg.loss;
    if (options.kl_coef > 0) {
      auto kl = algo::KlPenalty(current.logprobs, Rows(batch.tensor("ref_logprobs"), start, rows, width),
                                options.kl_estimator);
      TORCH_CHECK(kl.ok(), std::string(kl.status().message()));
      auto kl_loss = algo::AggregateLoss(*kl, mask, options.loss_agg_mode, options.loss_norm_length, whole);
      loss = loss + options.kl_coef * kl_loss;
      sums.kl += kl_loss.item<double>();
    }
    auto entropy = algo::AggregateLoss(current.entropy, mask, "token_mean", 0, token_whole);
    if (options.entropy_coef > 0) loss = loss - options.entropy_coef * entropy;
    loss.backward();
    const double tokens = (mask != 0).sum().item<double>();
    sums.policy_loss += pg.loss.item<double>();
    sums.entropy += entropy.item<double>();
    sums.clip_tokens += pg.clip_fraction * tokens;
    sums.dual_clip_tokens += pg.dual_clip_fraction * tokens;
    sums.approx_kl_tokens += pg.approx_kl * tokens;
    sums.tokens += tokens;
  }
  return sums;
}

}  // namespace hone
