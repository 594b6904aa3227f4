// Metrics of one policy step computed from the trajectory batch (rewards, groups, lengths,
// rollout/trainer log-prob agreement). Shared by the GRPO loop and its tests.
#pragma once

#include <string>
#include <vector>

#include "framework/data/batch.h"
#include "workers/roles/roles.h"

namespace hone {

// reward_mean/std/min/max, reward_<fn>_mean (per component), accuracy (mean of
// reward/boxed_integer), format_rate (mean of reward/format), response_length_mean/max,
// response_clip_ratio (fraction cut at max_new_tokens).
Metrics RewardAndLengthMetrics(const Batch& trajectories, const std::vector<std::string>& reward_fns);

// Mean and max |rollout log-prob - trainer log-prob| over response tokens: near zero when
// the weight sync works, large when the rollout samples from stale weights.
Metrics LogProbAgreement(const torch::Tensor& rollout_logprobs, const torch::Tensor& trainer_logprobs,
                         const torch::Tensor& response_mask);

}  // namespace hone
