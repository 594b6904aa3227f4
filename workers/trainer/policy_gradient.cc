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

std::vector<MicroBatch> PlanMicroBatches(const torch::Tensor& attention_mask, int64_t begin, int64_t end,
                                         int64_t size, bool sort_by_length) {
  std::vector<MicroBatch> plan;
  if (end <= begin) return plan;
  size = std::max<int64_t>(1, size);
  const auto lengths = attention_mask.narrow(0, begin, end - begin).to(torch::kInt64).sum(1);
  torch::Tensor order = torch::arange(begin, end, torch::kInt64);
  if (sort_by_length) {
    auto sorted = torch::sort(lengths, /*stable=*/true, /*dim=*/0, /*descending=*/true);
    order = std::get<1>(sorted) + begin;
  }
  for (int64_t start = 0; start < end - begin; start += size) {
    const int64_t rows = std::min(size, end - begin - start);
    MicroBatch micro;
    micro.rows = order.narrow(0, start, rows).contiguous();
    micro.width = lengths.index_select(0, micro.rows - begin).max().item<int64_t>();
    plan.push_back(std::move(micro));
  }
  return plan;
}

PaddingCount CountPadding(const torch::Tensor& attention_mask, const std::vector<MicroBatch>& plan) {
  PaddingCount count;
  for (const MicroBatch& micro : plan) {
    count.positions += micro.rows.size(0) * micro.width;
    count.real += attention_mask.index_select(0, micro.rows).to(torch::kInt64).sum().item<int64_t>();
  }
  return count;
}

torch::Tensor Rows(const torch::Tensor& t, const MicroBatch& micro) {
  auto r = t.index_select(0, micro.rows);
  return r.dim() > 1 ? r.narrow(1, 0, micro.width) : r;
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
  for (const MicroBatch& micro :
       PlanMicroBatches(attention, begin, end, options.micro_batch_size, options.sort_micro_batches)) {
    auto mask = Rows(batch.tensor("response_mask"), micro);
    auto current = ComputeTokenLogProbs(policy, Rows(ids, micro), Rows(attention, micro), temperature, true,
                                        /*entropy_grad=*/options.entropy_coef > 0, mask);
    auto old_logprobs = Rows(batch.tensor("old_logprobs"), micro);
    if (correct) {
      // The one place where the rollout correction meets the policy loss (either one).
      auto correction = algo::RolloutCorrection(old_logprobs, Rows(batch.tensor("rollout_logprobs"), micro),
                                                mask, options.rollout_correction, options.rollout_is_threshold);
      loss_options.token_weights = correction.weights;
      sums.is_units += correction.units;
      sums.is_weight_sum += correction.weight_sum;
      sums.is_exceeded += correction.exceeded;
      sums.sequences += correction.sequences;
      sums.seq_kl_sum += correction.seq_kl_sum;
    }
    auto pg = (*loss_fn)(current.logprobs, old_logprobs, Rows(batch.tensor("advantages"), micro), mask,
                         loss_options);
    auto loss = pg.loss;
    if (options.kl_coef > 0) {
      auto kl = algo::KlPenalty(current.logprobs, Rows(batch.tensor("ref_logprobs"), micro),
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
