#include "workers/reward/local_reward.h"

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"

namespace hone {

absl::StatusOr<std::unique_ptr<LocalRewardScorer>> LocalRewardScorer::Create(
    std::vector<std::string> fns, reward::RewardOptions options) {
  HONE_RETURN_IF_ERROR(reward::ValidateRewardOptions(options));
  if (fns.empty()) return absl::InvalidArgumentError("reward.fns is empty: name at least one reward function");
  for (const auto& fn : fns) {
    HONE_RETURN_IF_ERROR(reward::GetRewardFn(fn).status());
  }
  return std::unique_ptr<LocalRewardScorer>(new LocalRewardScorer(std::move(fns), std::move(options)));
}

absl::Status LocalRewardScorer::Score(Batch& trajectories) {
  HONE_RETURN_IF_ERROR(trajectories.Require({}, {"response", "ground_truth"}));
  const int64_t N = trajectories.size();
  const auto& responses = trajectories.strings("response");
  const auto& truths = trajectories.strings("ground_truth");
  std::vector<torch::Tensor> components;
  std::vector<std::vector<float>> values(fns_.size(), std::vector<float>(N));
  std::vector<float> total(N, 0.f);
  for (int64_t i = 0; i < N; ++i) {
    auto truth = reward::ParseGroundTruth(truths[i]);
    if (!truth.ok()) return Annotate(truth.status(), absl::StrCat("ground truth of row ", i));
    for (size_t f = 0; f < fns_.size(); ++f) {
      HONE_ASSIGN_OR_RETURN(reward::RewardFn fn, reward::GetRewardFn(fns_[f]));
      HONE_ASSIGN_OR_RETURN(double weight, reward::RewardFnWeight(fns_[f], options_));
      const double value = fn(responses[i], *truth, options_);
      values[f][i] = static_cast<float>(value);
      total[i] += static_cast<float>(weight * value);
    }
  }
  HONE_RETURN_IF_ERROR(trajectories.SetTensor("reward", torch::tensor(total)));
  for (size_t f = 0; f < fns_.size(); ++f) {
    HONE_RETURN_IF_ERROR(trajectories.SetTensor("reward/" + fns_[f], torch::tensor(values[f])));
  }
  return absl::OkStatus();
}

}  // namespace hone
