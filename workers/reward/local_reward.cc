#include "workers/reward/local_reward.h"

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"

namespace hone {

absl::StatusOr<std::unique_ptr<LocalRewardScorer>> LocalRewardScorer::Create(
    std::vector<std::string> fns, reward::RewardOptions options) {
  HONE_RETURN_IF_ERROR(reward::ValidateRewardOptions(options));
  if (fns.empty()) return absl::InvalidArgumentError("reward.fns is empty: name at least one reward function");
  std::vector<Component> components;
  for (const auto& name : fns) {
    HONE_ASSIGN_OR_RETURN(reward::RewardFn fn, reward::GetRewardFn(name));
    HONE_ASSIGN_OR_RETURN(double weight, reward::RewardFnWeight(name, options));
    components.push_back({name, fn, weight});
  }
  return std::unique_ptr<LocalRewardScorer>(new LocalRewardScorer(std::move(components), std::move(options)));
}

absl::Status LocalRewardScorer::Score(Batch& trajectories) {
  HONE_RETURN_IF_ERROR(trajectories.Require({}, {"response", "ground_truth"}));
  const int64_t N = trajectories.size();
  const auto& responses = trajectories.strings("response");
  const auto& truths = trajectories.strings("ground_truth");
  std::vector<std::vector<float>> values(components_.size(), std::vector<float>(N));
  std::vector<float> total(N, 0.f);
  for (int64_t i = 0; i < N; ++i) {
    auto truth = reward::ParseGroundTruth(truths[i]);
    if (!truth.ok()) return Annotate(truth.status(), absl::StrCat("ground truth of row ", i));
    for (size_t f = 0; f < components_.size(); ++f) {
      const double value = components_[f].fn(responses[i], *truth, options_);
      values[f][i] = static_cast<float>(value);
      total[i] += static_cast<float>(components_[f].weight * value);
    }
  }
  HONE_RETURN_IF_ERROR(trajectories.SetTensor("reward", torch::tensor(total)));
  for (size_t f = 0; f < components_.size(); ++f) {
    HONE_RETURN_IF_ERROR(trajectories.SetTensor("reward/" + components_[f].name, torch::tensor(values[f])));
  }
  return absl::OkStatus();
}

}  // namespace hone
