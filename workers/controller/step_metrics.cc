#include "workers/controller/step_metrics.h"

namespace hone {

Metrics RewardAndLengthMetrics(const Batch& batch, const std::vector<std::string>& reward_fns) {
  Metrics m;
  auto describe = [&](const std::string& prefix, const torch::Tensor& values) {
    auto v = values.to(torch::kFloat64);
    m[prefix + "_mean"] = v.mean().item<double>();
    m[prefix + "_std"] = v.numel() > 1 ? v.std().item<double>() : 0.0;
    m[prefix + "_min"] = v.min().item<double>();
    m[prefix + "_max"] = v.max().item<double>();
  };
  describe("reward", batch.tensor("reward"));
  for (const auto& fn : reward_fns) {
    if (batch.HasTensor("reward/" + fn)) describe("reward_" + fn, batch.tensor("reward/" + fn));
  }
  if (batch.HasTensor("reward/boxed_integer")) {
    m["accuracy"] = batch.tensor("reward/boxed_integer").to(torch::kFloat64).mean().item<double>();
  }
  if (batch.HasTensor("reward/format")) {
    m["format_rate"] = batch.tensor("reward/format").to(torch::kFloat64).mean().item<double>();
  }
  const auto& lengths = batch.ints("response_len");
  const auto& truncated = batch.ints("truncated");
  double sum = 0, cut = 0, longest = 0;
  for (size_t i = 0; i < lengths.size(); ++i) {
    sum += lengths[i];
    cut += truncated[i];
    longest = std::max<double>(longest, lengths[i]);
  }
  const double n = std::max<size_t>(1, lengths.size());
  m["response_length_mean"] = sum / n;
  m["response_length_max"] = longest;
  m["response_clip_ratio"] = cut / n;
  return m;
}

Metrics LogProbAgreement(const torch::Tensor& rollout_logprobs, const torch::Tensor& trainer_logprobs,
                         const torch::Tensor& response_mask) {
  auto diff = (rollout_logprobs - trainer_logprobs).abs() * response_mask;
  const double tokens = std::max(1.0, response_mask.sum().item<double>());
  return {{"rollout_logprob_diff_mean", diff.sum().item<double>() / tokens},
          {"rollout_logprob_diff_max", diff.max().item<double>()}};
}

}  // namespace hone
