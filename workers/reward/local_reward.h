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
  LocalRewardScorer(std::vector<std::string> fns, reward::RewardOptions options)
      : fns_(std::move(fns)), options_(std::move(options)) {}
  std::vector<std::string> fns_;
  reward::RewardOptions options_;
};

}  // namespace hone
