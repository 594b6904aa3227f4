// The reward role in the controller's process: the configured reward functions, summed
// with their weights (reward.correct_weight, reward.format_weight).
#pragma once

#include <string>
#include <vector>

#include "framework/reward/reward.h"
#include "workers/roles/roles.h"

namespace hone {

class LocalRewardScorer : public RewardScorer {
 public:
  // Error when a function name is unknown or the options are invalid.
  static absl::StatusOr<std::unique_ptr<LocalRewardScorer>> Create(std::vector<std::string> fns,
                                                                    reward::RewardOptions options);
  absl::Status Score(Batch& trajectories) override;

 private:
  struct Component {
    std::string name;
    reward::RewardFn fn;
    double weight;
  };
  LocalRewardScorer(std::vector<Component> components, reward::RewardOptions options)
      : components_(std::move(components)), options_(std::move(options)) {}
  std::vector<Component> components_;  // resolved once, not per response
  reward::RewardOptions options_;
};

}  // namespace hone
