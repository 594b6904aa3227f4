// Outcome-reward advantage estimators and group statistics. Everything is computed in
// float64 on detached rewards, vectorised over groups (ids mapped to 0..G-1 by unique).
#include <vector>
#include <cstdint>

#include "framework/algo/algo.h"

namespace hone::algo {
namespace {

// Per-group sums of a batch of rewards. Tensors are float64 on the rewards' device.
struct Groups {
  torch::Tensor rewards;  // [N] the rewards, detached, float64
  torch::Tensor inverse;  // [N] int64: the group index 0..G-1 of each sequence
  torch::Tensor count;    // [G] members per group
  torch::Tensor sum;      // [G] sum of rewards
  torch::Tensor mean;     // [G] plain mean (a group of one: its reward)
  torch::Tensor std;      // [G] unbiased std; NaN for a group of one
  int64_t num_groups = 0;
};

void CheckRewardsAndGroups(const torch::Tensor& rewards, const torch::Tensor& group_ids) {
  TORCH_CHECK(rewards.dim() == 1, "rewards must be 1-D [N], got ", rewards.sizes());
  TORCH_CHECK(group_ids.dim() == 1 && group_ids.size(0) == rewards.size(0),
              "group_ids must be [N] like rewards ", rewards.sizes(), ", got ",
              group_ids.sizes());
  TORCH_CHECK(group_ids.scalar_type() == torch::kLong, "group_ids must be int64, got ",
              group_ids.scalar_type());
  TORCH_CHECK(rewards.is_floating_point(), "rewards must be floating point, got ",
              rewards.scalar_type());
}

Groups GroupBy(const torch::Tensor& rewards, const torch::Tensor& group_ids) {
  CheckRewardsAndGroups(rewards, group_ids);
  Groups g;
  g.rewards = rewards.detach().to(torch::kFloat64);
  auto [unique, inverse, counts] =
      torch::_unique2(group_ids, /*sorted=*/true, /*return_inverse=*/true,
                      /*return_counts=*/true);
  g.inverse = inverse.reshape({-1});
  g.num_groups = unique.size(0);
  g.count = counts.to(torch::kFloat64);
  g.sum = torch::zeros({g.num_groups}, g.rewards.options()).index_add_(0, g.inverse, g.rewards);
  g.mean = g.sum / g.count;
  torch::Tensor dev = g.rewards - g.mean.index_select(0, g.inverse);
  torch::Tensor sq =
      torch::zeros({g.num_groups}, g.rewards.options()).index_add_(0, g.inverse, dev * dev);
  g.std = (sq / (g.count - 1)).sqrt();  // 0/0 = NaN for a group of one
  return g;
}

// Per-sequence values of a per-group tensor [G] -> [N].
torch::Tensor PerSequence(const Groups& g, const torch::Tensor& per_group) {
  return per_group.index_select(0, g.inverse);
}

// verl's convention for a group of one: mean 0, std 1.
torch::Tensor GroupMeanVerl(const Groups& g) {
  return torch::where(g.count > 1, g.mean, torch::zeros_like(g.mean));
}
torch::Tensor GroupStdVerl(const Groups& g) {
  return torch::where(g.count > 1, g.std, torch::ones_like(g.std));
}

}  // namespace

torch::Tensor GrpoAdvantage(const torch::Tensor& rewards, const torch::Tensor& group_ids,
                            const AdvantageOptions& options) {
  Groups g = GroupBy(rewards, group_ids);
  torch::Tensor adv = (g.rewards - PerSequence(g, GroupMeanVerl(g))) /
                      (PerSequence(g, GroupStdVerl(g)) + options.norm_eps);
  return adv.to(rewards.scalar_type());
}

torch::Tensor DrGrpoAdvantage(const torch::Tensor& rewards, const torch::Tensor& group_ids,
                              const AdvantageOptions& options) {
  Groups g = GroupBy(rewards, group_ids);
  return (g.rewards - PerSequence(g, GroupMeanVerl(g))).to(rewards.scalar_type());
}

torch::Tensor RlooAdvantage(const torch::Tensor& rewards, const torch::Tensor& group_ids,
                            const AdvantageOptions& options) {
  Groups g = GroupBy(rewards, group_ids);
  torch::Tensor n = PerSequence(g, g.count);
  torch::Tensor others_mean = (PerSequence(g, g.sum) - g.rewards) / (n - 1);  // 0/0 for n == 1
  torch::Tensor adv = torch::where(n > 1, g.rewards - others_mean, torch::zeros_like(n));
  return adv.to(rewards.scalar_type());
}

torch::Tensor ReinforcePpAdvantage(const torch::Tensor& rewards,
                                   const torch::Tensor& group_ids,
                                   const AdvantageOptions& options) {
  CheckRewardsAndGroups(rewards, group_ids);
  torch::Tensor r = rewards.detach().to(torch::kFloat64);
  if (r.size(0) == 0) return rewards.detach().clone();
  torch::Tensor lengths = options.response_lengths.defined()
                              ? options.response_lengths.detach().to(r.device(), torch::kFloat64)
                              : torch::ones_like(r);
  TORCH_CHECK(lengths.dim() == 1 && lengths.size(0) == r.size(0),
              "reinforce_pp: response_lengths must be [N] like the rewards");
  const double tokens = lengths.sum().item<double>();
  if (tokens <= 1) return torch::zeros_like(rewards.detach());
  const torch::Tensor mean = (lengths * r).sum() / tokens;
  const torch::Tensor var = (lengths * (r - mean).square()).sum() / (tokens - 1);
  torch::Tensor adv = (r - mean) * torch::rsqrt(var + 1e-8);
  adv = torch::where(lengths > 0, adv, torch::zeros_like(adv));
  return adv.to(rewards.scalar_type());
}

GroupStats ComputeGroupStats(const torch::Tensor& rewards, const torch::Tensor& group_ids) {
  Groups g = GroupBy(rewards, group_ids);
  GroupStats stats;
  stats.num_groups = g.num_groups;
  if (g.num_groups == 0) {
    stats.in_zero_std_group = torch::zeros({0}, rewards.options().dtype(torch::kBool));
    return stats;
  }
  // Exact equality within each group: a plain loop (libtorch 1.13's scatter_reduce is
  // "beta" and warns on every process start).
  auto rewards_cpu = g.rewards.to(torch::kCPU).contiguous();
  auto inverse_cpu = g.inverse.to(torch::kCPU).contiguous();
  const double* r = rewards_cpu.data_ptr<double>();
  const int64_t* group = inverse_cpu.data_ptr<int64_t>();
  std::vector<double> first(g.num_groups, 0.0);
  std::vector<uint8_t> seen(g.num_groups, 0), differs(g.num_groups, 0);
  for (int64_t i = 0; i < rewards_cpu.size(0); ++i) {
    if (!seen[group[i]]) {
      seen[group[i]] = 1;
      first[group[i]] = r[i];
    } else if (r[i] != first[group[i]]) {
      differs[group[i]] = 1;
    }
  }
  torch::Tensor all_equal = torch::tensor(std::vector<int64_t>(differs.begin(), differs.end())).eq(0);
  torch::Tensor multi = g.count > 1;
  torch::Tensor zero_std = multi.logical_and(all_equal.to(multi.device()));
  stats.frac_zero_std = zero_std.to(torch::kFloat64).mean().item<double>();
  int64_t num_multi = multi.sum().item<int64_t>();
  if (num_multi > 0) {
    stats.mean_group_std =
        g.std.masked_select(multi).sum().item<double>() / static_cast<double>(num_multi);
  }
  stats.in_zero_std_group = PerSequence(g, zero_std);
  return stats;
}

}  // namespace hone::algo
