// Numerical tests of framework/algo. Expected values are written out (computed by hand or
// in float64 with plain loops here), never taken from the implementation.
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "framework/algo/algo.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/algo/algo_test_util.h"

namespace hone::algo {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---- the advantage example: four groups in shuffled order ----
//   id 7:  {1, 0, 1, 0.5}  mean 0.625, unbiased std sqrt(0.6875 / 3) = 0.47871355387816905
//   id 3:  {2, -1, 0.5}    mean 0.5,   unbiased std 1.5
//   id 42: {0.7}           a group of one
//   id 5:  {1, 1}          all equal
const std::vector<int64_t> kIds = {7, 3, 42, 7, 5, 3, 7, 5, 3, 7};
const std::vector<double> kRewards = {1.0, 2.0, 0.7, 0.0, 1.0, -1.0, 1.0, 1.0, 0.5, 0.5};
constexpr double kEps = 1e-6;

TEST(AdvantageTest, GrpoByHand) {
  const double s7 = 0.47871355387816905;
  std::vector<double> want = {
      0.375 / (s7 + kEps), 1.5 / (1.5 + kEps), 0.7 / (1.0 + kEps),  // group of one: r/(1+eps)
      -0.625 / (s7 + kEps), 0.0, -1.5 / (1.5 + kEps),
      0.375 / (s7 + kEps), 0.0, 0.0, -0.125 / (s7 + kEps)};
  // The same numbers as literals (python, float64).
  ExpectNear(want, {0.7833478154404222, 0.9999993333337779, 0.6999993000007, -1.3055796924007037,
                    0.0, -0.9999993333337779, 0.7833478154404222, 0.0, 0.0, -0.26111593848014075},
             1e-15);
  AdvantageOptions options;
  options.norm_eps = kEps;
  ExpectNear(ToVector(GrpoAdvantage(F64(kRewards), I64(kIds), options)), want, 1e-14);
}

TEST(AdvantageTest, DrGrpoByHand) {
  // r - group mean; a group of one keeps r (verl: mean 0).
  std::vector<double> want = {0.375, 1.5, 0.7, -0.625, 0.0, -1.5, 0.375, 0.0, 0.0, -0.125};
  ExpectNear(ToVector(DrGrpoAdvantage(F64(kRewards), I64(kIds), {})), want, 1e-15);
}

TEST(AdvantageTest, RlooByHand) {
  // r_i - mean of the others: id 7 sums to 2.5, id 3 to 1.5; a group of one gets 0.
  std::vector<double> want = {1.0 - 1.5 / 3, 2.0 - (-0.5) / 2, 0.0, 0.0 - 2.5 / 3, 0.0,
                              -1.0 - 2.5 / 2, 1.0 - 1.5 / 3, 0.0, 0.5 - 1.0 / 2, 0.5 - 2.0 / 3};
  ExpectNear(want, {0.5, 2.25, 0.0, -0.8333333333333334, 0.0, -2.25, 0.5, 0.0, 0.0,
                    -0.16666666666666663},
             1e-15);
  ExpectNear(ToVector(RlooAdvantage(F64(kRewards), I64(kIds), {})), want, 1e-14);
}

TEST(AdvantageTest, ReinforcePpByHand) {
  // Without lengths every sequence is one token: mean 0.67, Bessel variance
  // 0.6112222222222223 (std 0.7818070236460033); 1e-8 under the root, as verl.
  const double mean = 0.67, var = 0.6112222222222223;
  std::vector<double> want;
  for (double r : kRewards) want.push_back((r - mean) / std::sqrt(var + 1e-8));
  ExpectNear(want, {0.4220990440345705, 1.7011870562605418, 0.03837264036677903, -0.8569889681914008,
                    0.4220990440345705, -2.136076980417372, 0.4220990440345705, 0.4220990440345705,
                    -0.21744496207841515, -0.21744496207841515},
             1e-14);
  ExpectNear(ToVector(ReinforcePpAdvantage(F64(kRewards), I64(kIds), {})), want, 1e-13);
  // One token in the whole batch: no variance, advantage 0.
  ExpectNear(ToVector(ReinforcePpAdvantage(F64({3.0}), I64({0}), {})), {0.0}, 0);
}

// verl's REINFORCE++ on the token level, written out as verl does it: returns per token
// (reward at the last response token, gamma 1, reset by the mask), then masked_whiten
// over [N,T] in float64. Hone computes it per sequence from the lengths: the same numbers.
TEST(AdvantageTest, ReinforcePpIsVerlsTokenLevelWhitening) {
  torch::manual_seed(3);
  const int64_t n = 12, t = 9;
  torch::Tensor rewards = torch::randint(0, 2, {n}, torch::kFloat64) + 0.1 * torch::randn({n}, torch::kFloat64);
  torch::Tensor lengths = torch::randint(1, t + 1, {n}, torch::kLong);
  lengths[3] = 0;  // a response cut to nothing
  torch::Tensor mask = (torch::arange(t).unsqueeze(0) < lengths.unsqueeze(1)).to(torch::kFloat64);
  torch::Tensor token_rewards = torch::zeros({n, t}, torch::kFloat64);
  for (int64_t i = 0; i < n; ++i) {
    if (lengths[i].item<int64_t>() > 0) token_rewards[i][lengths[i].item<int64_t>() - 1] = rewards[i];
  }
  torch::Tensor returns = torch::zeros_like(token_rewards), running = torch::zeros({n}, torch::kFloat64);
  for (int64_t k = t - 1; k >= 0; --k) {
    running = token_rewards.select(1, k) + running;
    returns.select(1, k).copy_(running);
    running = running * mask.select(1, k);
  }
  const torch::Tensor mu = (returns * mask).sum() / mask.sum();
  const torch::Tensor var = ((returns - mu).square() * mask).sum() / mask.sum() * (mask.sum() / (mask.sum() - 1));
  const torch::Tensor verl = (returns - mu) * torch::rsqrt(var + 1e-8) * mask;

  AdvantageOptions options;
  options.response_lengths = lengths;
  torch::Tensor hone = ReinforcePpAdvantage(rewards, torch::arange(n), options);
  // Broadcast over the response tokens, as the loop does (advantages x response_mask).
  EXPECT_LT((hone.unsqueeze(1) * mask - verl).abs().max().item<double>(), 1e-12);
  EXPECT_EQ(hone[3].item<double>(), 0.0);
  EXPECT_GT(hone.abs().max().item<double>(), 0.1);  // not trivially zero
}

// Plain-loop references in double, for a random batch.
std::vector<double> ReferenceAdvantage(const std::string& name, const std::vector<double>& r,
                                       const std::vector<int64_t>& ids, double eps) {
  const size_t n = r.size();
  std::vector<double> out(n);
  if (name == "reinforce_pp") {  // no lengths given: one token per sequence; 1e-8 as verl
    double mean = 0, sq = 0;
    for (double x : r) mean += x / n;
    for (double x : r) sq += (x - mean) * (x - mean);
    for (size_t i = 0; i < n; ++i) out[i] = n > 1 ? (r[i] - mean) / std::sqrt(sq / (n - 1) + 1e-8) : 0.0;
    return out;
  }
  std::map<int64_t, std::vector<double>> groups;
  for (size_t i = 0; i < n; ++i) groups[ids[i]].push_back(r[i]);
  for (size_t i = 0; i < n; ++i) {
    const std::vector<double>& g = groups[ids[i]];
    double sum = 0;
    for (double x : g) sum += x;
    const double size = g.size(), mean = sum / size;
    double sq = 0;
    for (double x : g) sq += (x - mean) * (x - mean);
    if (name == "grpo") {
      out[i] = size > 1 ? (r[i] - mean) / (std::sqrt(sq / (size - 1)) + eps) : r[i] / (1 + eps);
    } else if (name == "dr_grpo") {
      out[i] = size > 1 ? r[i] - mean : r[i];
    } else {  // rloo
      out[i] = size > 1 ? r[i] - (sum - r[i]) / (size - 1) : 0.0;
    }
  }
  return out;
}

TEST(AdvantageTest, EveryEstimatorMatchesLoopsOnRandomBatch) {
  torch::manual_seed(1);
  const int64_t n = 53;
  torch::Tensor rewards = torch::randint(0, 3, {n}, torch::kFloat64) * 0.5 +
                          torch::randn({n}, torch::kFloat64) * (torch::rand({n}) < 0.3);
  torch::Tensor ids = torch::randint(-5, 20, {n}, torch::kLong) * 1000;  // sparse, negative
  std::vector<double> r = ToVector(rewards);
  std::vector<int64_t> id(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + n);
  AdvantageOptions options;
  options.norm_eps = 1e-4;
  for (const std::string& name : AdvantageEstimatorNames()) {
    SCOPED_TRACE(name);
    AdvantageFn fn = GetAdvantageEstimator(name).value();
    ExpectNear(ToVector(fn(rewards, ids, options)), ReferenceAdvantage(name, r, id, 1e-4), 1e-12);
  }
}

TEST(AdvantageTest, KeepsFloat32DtypeAndRejectsBadInput) {
  torch::Tensor rewards = F64(kRewards).to(torch::kFloat32);
  for (const std::string& name : AdvantageEstimatorNames()) {
    torch::Tensor adv = GetAdvantageEstimator(name).value()(rewards, I64(kIds), {});
    EXPECT_EQ(adv.scalar_type(), torch::kFloat32) << name;
    EXPECT_EQ(adv.size(0), 10) << name;
  }
  EXPECT_THROW(GrpoAdvantage(rewards, I64({1, 2}), {}), c10::Error);                  // length
  EXPECT_THROW(GrpoAdvantage(rewards, I64(kIds).to(torch::kInt32), {}), c10::Error);  // dtype
}

TEST(AdvantageTest, Registry) {
  EXPECT_THAT(AdvantageEstimatorNames(), ElementsAre("grpo", "dr_grpo", "rloo", "reinforce_pp"));
  EXPECT_EQ(GetAdvantageEstimator("grpo").value(), &GrpoAdvantage);
  EXPECT_EQ(GetAdvantageEstimator("rloo").value(), &RlooAdvantage);
  absl::StatusOr<AdvantageFn> bad = GetAdvantageEstimator("gae");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("grpo, dr_grpo, rloo, reinforce_pp"));
}

TEST(GroupStatsTest, ByHand) {
  GroupStats stats = ComputeGroupStats(F64(kRewards), I64(kIds));
  EXPECT_EQ(stats.num_groups, 4);
  EXPECT_DOUBLE_EQ(stats.frac_zero_std, 0.25);  // id 5 only; the group of one is not counted
  EXPECT_NEAR(stats.mean_group_std, (0.47871355387816905 + 1.5 + 0.0) / 3, 1e-15);
  ASSERT_EQ(stats.in_zero_std_group.scalar_type(), torch::kBool);
  ExpectNear(ToVector(stats.in_zero_std_group), {0, 0, 0, 0, 1, 0, 0, 1, 0, 0}, 0);
}

TEST(GroupStatsTest, ExactEqualityAndEmpty) {
  // 0.1 three times: a mean-based std may not be exactly 0 in float, equality is exact.
  GroupStats stats = ComputeGroupStats(F64({0.1, 0.1, 0.1, 0.3, 0.3}), I64({1, 1, 1, 2, 2}));
  EXPECT_DOUBLE_EQ(stats.frac_zero_std, 1.0);
  EXPECT_NEAR(stats.mean_group_std, 0.0, 1e-15);
  GroupStats empty = ComputeGroupStats(F64({}), I64({}));
  EXPECT_EQ(empty.num_groups, 0);
  EXPECT_EQ(empty.in_zero_std_group.numel(), 0);
}

// ---- loss aggregation with a ragged mask (row 2 empty; 100 marks padding) ----
torch::Tensor AggLoss() {
  return F64({1, 2, 3, 100, 4, 100, 100, 100, 100, 100, 100, 100, 0.5, -1, 2, 1}).reshape({4, 4});
}
torch::Tensor AggMask() {
  return F64({1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1}).reshape({4, 4});
}

TEST(LossAggTest, ModesByHand) {
  // Counted: row 0 {1,2,3}, row 1 {4}, row 2 {}, row 3 {0.5,-1,2,1}; 8 tokens summing to 12.5.
  EXPECT_DOUBLE_EQ(AggregateLoss(AggLoss(), AggMask(), "token_mean").item<double>(), 12.5 / 8);
  // Row means 2, 4, 0.625 over the three non-empty rows.
  EXPECT_DOUBLE_EQ(AggregateLoss(AggLoss(), AggMask(), "seq_mean_token_mean").item<double>(),
                   (2.0 + 4.0 + 0.625) / 3);
  // Row sums 6, 4, 0, 2.5 over T = 4, then mean over all 4 rows; or over norm_length 8.
  EXPECT_DOUBLE_EQ(AggregateLoss(AggLoss(), AggMask(), "seq_mean_token_sum_norm").item<double>(),
                   (6.0 + 4.0 + 0.0 + 2.5) / 4 / 4);
  EXPECT_DOUBLE_EQ(
      AggregateLoss(AggLoss(), AggMask(), "seq_mean_token_sum_norm", 8).item<double>(),
      (6.0 + 4.0 + 0.0 + 2.5) / 8 / 4);
  // A bool mask gives the same; verl's hyphen spelling is accepted.
  EXPECT_DOUBLE_EQ(AggregateLoss(AggLoss(), AggMask() > 0, "seq-mean-token-mean").item<double>(),
                   (2.0 + 4.0 + 0.625) / 3);
}

TEST(LossAggTest, NonFinitePaddingAndEmptyMask) {
  torch::Tensor loss = AggLoss().masked_fill(AggMask() == 0, NAN);
  for (const std::string& mode : LossAggModeNames()) {
    EXPECT_TRUE(std::isfinite(AggregateLoss(loss, AggMask(), mode).item<double>())) << mode;
    EXPECT_EQ(AggregateLoss(loss, torch::zeros_like(loss), mode).item<double>(), 0.0) << mode;
  }
}

TEST(LossAggTest, Registry) {
  EXPECT_THAT(LossAggModeNames(),
              ElementsAre("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"));
  EXPECT_EQ(ValidateLossAggMode("seq-mean-token-sum-norm").value(), "seq_mean_token_sum_norm");
  EXPECT_EQ(ValidateLossAggMode("token_mean").value(), "token_mean");
  absl::StatusOr<std::string> bad = ValidateLossAggMode("seq_mean_token_sum");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("token_mean, seq_mean_token_mean"));
  EXPECT_THROW(AggregateLoss(AggLoss(), AggMask(), "sum"), c10::Error);
}

// ---- clipped surrogate ----
// One row, one token per regime, with clip [0.8, 1.28] and dual clip c = 3:
//   t  A   rho   pg1    pg2    clipped  final (c = 3)  regime
//   0  +1  1.1   -1.1   -1.1   -1.1     -1.1           inside the range
//   1  +1  1.5   -1.5   -1.28  -1.28    -1.28          above 1 + high: clipped
//   2  +1  0.5   -0.5   -0.8   -0.5     -0.5           below 1 - low, A > 0: unclipped
//   3  -1  0.5    0.5    0.8    0.8      0.8           below 1 - low, A < 0: clipped
//   4  -1  1.1    1.1    1.1    1.1      1.1           inside the range
//   5  -1  5.0    5.0    1.28   5.0      3.0           dual clip: min(5, 3 * 1)
//   6  -2  1.25   2.5    2.5    2.5      2.5           inside, |A| = 2
//   7  +1  50    (masked out)
struct Regimes {
  torch::Tensor logp, old_logp, adv, mask;
};
Regimes MakeRegimes() {
  std::vector<double> rho = {1.1, 1.5, 0.5, 0.5, 1.1, 5.0, 1.25, 50.0};
  Regimes r;
  r.old_logp = -0.3 - 0.1 * torch::arange(8, torch::kFloat64).reshape({1, 8});
  r.logp = r.old_logp + F64(rho).log().reshape({1, 8});
  r.adv = F64({1, 1, 1, -1, -1, -1, -2, 1}).reshape({1, 8});
  r.mask = F64({1, 1, 1, 1, 1, 1, 1, 0}).reshape({1, 8});
  return r;
}

TEST(PolicyLossTest, RegimesByHand) {
  Regimes r = MakeRegimes();
  PolicyLossOptions options;
  options.clip_ratio_low = 0.2;
  options.clip_ratio_high = 0.28;
  options.clip_ratio_c = 3.0;
  const double kl = -(std::log(1.1) * 2 + std::log(1.5) + std::log(0.5) * 2 + std::log(5.0) +
                      std::log(1.25)) / 7;

  PolicyLossOutput out = ClippedSurrogateLoss(r.logp, r.old_logp, r.adv, r.mask, options);
  EXPECT_NEAR(out.loss.item<double>(), (-1.1 - 1.28 - 0.5 + 0.8 + 1.1 + 3.0 + 2.5) / 7, 1e-14);
  EXPECT_DOUBLE_EQ(out.clip_fraction, 2.0 / 7);       // tokens 1 and 3
  EXPECT_DOUBLE_EQ(out.dual_clip_fraction, 1.0 / 7);  // token 5
  EXPECT_NEAR(out.approx_kl, kl, 1e-14);

  options.clip_ratio_c = 0.0;  // dual clip off: token 5 costs 5
  out = ClippedSurrogateLoss(r.logp, r.old_logp, r.adv, r.mask, options);
  EXPECT_NEAR(out.loss.item<double>(), (-1.1 - 1.28 - 0.5 + 0.8 + 1.1 + 5.0 + 2.5) / 7, 1e-14);
  EXPECT_DOUBLE_EQ(out.clip_fraction, 2.0 / 7);
  EXPECT_EQ(out.dual_clip_fraction, 0.0);

  options.clip_ratio_high = 0.6;  // token 1 (rho 1.5) is now inside the range
  out = ClippedSurrogateLoss(r.logp, r.old_logp, r.adv, r.mask, options);
  EXPECT_NEAR(out.loss.item<double>(), (-1.1 - 1.5 - 0.5 + 0.8 + 1.1 + 5.0 + 2.5) / 7, 1e-14);
  EXPECT_DOUBLE_EQ(out.clip_fraction, 1.0 / 7);
}

TEST(PolicyLossTest, GradientMatchesFiniteDifferencesForEveryAggMode) {
  // float64, central differences with h = 1e-6: truncation ~h^2 and rounding ~1e-16/h, so
  // 1e-8 is a safe tolerance. Log-ratios sit at least 0.03 from every kink (0.8, 1.28, and
  // rho = 3 where the dual clip takes over), so no kink lies within h of a point.
  const int64_t B = 3, T = 6;
  const std::vector<double> log_ratios = {-0.5, -0.1, 0.05, 0.15, 0.4, 1.3};  // rho .61..3.67
  torch::manual_seed(7);
  torch::Tensor old_logp = -torch::rand({B, T}, torch::kFloat64) * 3;
  torch::Tensor shift = F64(log_ratios).repeat({B}).reshape({B, T});
  shift = shift.index_select(1, torch::randperm(T));  // mix regimes across rows
  torch::Tensor logp0 = old_logp + shift;
  torch::Tensor adv = torch::randn({B, T}, torch::kFloat64);
  adv = adv + adv.sign() * 0.1;  // no advantage near 0
  torch::Tensor mask = F64({1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0}).reshape({B, T});

  for (const std::string& mode : LossAggModeNames()) {
    SCOPED_TRACE(mode);
    PolicyLossOptions options;
    options.clip_ratio_low = 0.2;
    options.clip_ratio_high = 0.28;
    options.clip_ratio_c = 3.0;
    options.loss_agg_mode = mode;
    auto loss_at = [&](const torch::Tensor& logp) {
      return ClippedSurrogateLoss(logp, old_logp, adv, mask, options).loss.item<double>();
    };
    torch::Tensor logp = logp0.clone().requires_grad_(true);
    ClippedSurrogateLoss(logp, old_logp, adv, mask, options).loss.backward();
    std::vector<double> grad = ToVector(logp.grad());
    ExpectNear(grad, NumericGradient(logp0, loss_at), 1e-8);
    double norm = 0;
    for (double g : grad) norm += std::abs(g);
    EXPECT_GT(norm, 0.1);  // the check is not vacuous
  }
}

TEST(PolicyLossTest, OptionsValidationAndRegistry) {
  PolicyLossOptions options;
  EXPECT_TRUE(ValidatePolicyLossOptions(options).ok());
  options.clip_ratio_c = 1.0;
  EXPECT_EQ(ValidatePolicyLossOptions(options).code(), absl::StatusCode::kInvalidArgument);
  Regimes r = MakeRegimes();
  EXPECT_THROW(ClippedSurrogateLoss(r.logp, r.old_logp, r.adv, r.mask, options), c10::Error);
  options.clip_ratio_c = 0.0;
  options.clip_ratio_low = -0.1;
  EXPECT_FALSE(ValidatePolicyLossOptions(options).ok());
  options.clip_ratio_low = 0.2;
  options.loss_agg_mode = "sum";
  EXPECT_FALSE(ValidatePolicyLossOptions(options).ok());

  EXPECT_THAT(PolicyLossNames(), ElementsAre("vanilla", "gspo"));
  EXPECT_EQ(GetPolicyLoss("vanilla").value(), &ClippedSurrogateLoss);
  EXPECT_EQ(GetPolicyLoss("gspo").value(), &GspoLoss);
  absl::StatusOr<PolicyLossFn> bad = GetPolicyLoss("ppo");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("vanilla, gspo"));
}

TEST(PolicyLossTest, TokenWeightsScaleEachTokenLoss) {
  // The regimes above (c = 3) with weights: loss = sum_t w_t * loss_t / 7, the metrics
  // unchanged; the masked token's weight does not matter.
  Regimes r = MakeRegimes();
  PolicyLossOptions options;
  options.clip_ratio_low = 0.2;
  options.clip_ratio_high = 0.28;
  options.clip_ratio_c = 3.0;
  options.token_weights = F64({0.5, 2.0, 1.0, 0.0, 1.5, 0.25, 1.0, 9.0}).reshape({1, 8});
  PolicyLossOutput out = ClippedSurrogateLoss(r.logp, r.old_logp, r.adv, r.mask, options);
  EXPECT_NEAR(out.loss.item<double>(),
              (0.5 * -1.1 + 2.0 * -1.28 + -0.5 + 0.0 * 0.8 + 1.5 * 1.1 + 0.25 * 3.0 + 2.5) / 7, 1e-14);
  EXPECT_DOUBLE_EQ(out.clip_fraction, 2.0 / 7);
  EXPECT_DOUBLE_EQ(out.dual_clip_fraction, 1.0 / 7);
  options.token_weights = torch::ones({2, 4}, torch::kFloat64);
  EXPECT_THROW(ClippedSurrogateLoss(r.logp, r.old_logp, r.adv, r.mask, options), c10::Error);
}

// ---- KL ----

TEST(KlTest, ClosedFormsPerToken) {
  torch::manual_seed(3);
  torch::Tensor logp = -torch::rand({3, 5}, torch::kFloat64) * 4;
  torch::Tensor ref = -torch::rand({3, 5}, torch::kFloat64) * 4;
  std::vector<double> lp = ToVector(logp), rf = ToVector(ref);
  std::vector<double> k1, k2, k3;
  for (size_t i = 0; i < lp.size(); ++i) {
    const double d = rf[i] - lp[i];
    k1.push_back(lp[i] - rf[i]);
    k2.push_back(0.5 * (lp[i] - rf[i]) * (lp[i] - rf[i]));
    k3.push_back(std::exp(d) - d - 1);
  }
  ExpectNear(ToVector(KlPenalty(logp, ref, "k1").value()), k1, 1e-15);
  ExpectNear(ToVector(KlPenalty(logp, ref, "k2").value()), k2, 1e-15);
  ExpectNear(ToVector(KlPenalty(logp, ref, "k3").value()), k3, 1e-14);
  for (double v : ToVector(KlPenalty(logp, ref, "k3").value())) EXPECT_GE(v, 0.0);
  for (const std::string& name : KlEstimatorNames()) {
    EXPECT_EQ(KlPenalty(logp, logp, name).value().abs().max().item<double>(), 0.0) << name;
  }
}

TEST(KlTest, K3ClampsLikeVerl) {
  // ref - logp = 30 and -30 are clamped to +-20; exp(20) - 21 and exp(-20) + 19 exceed 10.
  // ref - logp = -5: exp(-5) + 4 is inside the clamp.
  torch::Tensor logp = F64({0, 0, 0}).reshape({1, 3});
  torch::Tensor ref = F64({30, -30, -5}).reshape({1, 3});
  ExpectNear(ToVector(KlPenalty(logp, ref, "k3").value()), {10.0, 10.0, std::exp(-5.0) + 4}, 1e-15);
}

TEST(KlTest, RegistryAndShapes) {
  EXPECT_THAT(KlEstimatorNames(), ElementsAre("k1", "k2", "k3"));
  torch::Tensor a = torch::zeros({2, 3}, torch::kFloat64);
  absl::StatusOr<torch::Tensor> bad = KlPenalty(a, a, "low_var_kl");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("k1, k2, k3"));
  EXPECT_EQ(KlPenalty(a, torch::zeros({3, 2}), "k1").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- entropy and log-probs ----

// softmax(z / temperature) of one row, in double with the max subtracted.
std::vector<double> Softmax(const std::vector<double>& z, double temperature) {
  double max = z[0];
  for (double v : z) max = std::max(max, v);
  std::vector<double> p;
  double sum = 0;
  for (double v : z) sum += std::exp((v - max) / temperature);
  for (double v : z) p.push_back(std::exp((v - max) / temperature) / sum);
  return p;
}

TEST(LogitsTest, EntropyMatchesLoop) {
  torch::manual_seed(5);
  const int64_t B = 2, T = 3, V = 7;
  torch::Tensor logits = torch::randn({B, T, V}, torch::kFloat64) * 3;
  std::vector<double> z = ToVector(logits), want;
  for (int64_t row = 0; row < B * T; ++row) {
    std::vector<double> p = Softmax({z.begin() + row * V, z.begin() + (row + 1) * V}, 1.0);
    double h = 0;
    for (double q : p) h -= q * std::log(q);
    want.push_back(h);
  }
  torch::Tensor h = EntropyFromLogits(logits);
  EXPECT_EQ(h.sizes(), torch::IntArrayRef({B, T}));
  ExpectNear(ToVector(h), want, 1e-13);
  ExpectNear(ToVector(EntropyFromLogits(logits.to(torch::kFloat32))), want, 1e-5);
}

TEST(LogitsTest, EntropyIsStableForLargeLogits) {
  // Uniform over 4 gives log 4 at any offset; a dominant logit gives ~0, not NaN.
  torch::Tensor logits = F64({1000, 1000, 1000, 1000, 1000, 0, 0, 0}).reshape({1, 2, 4});
  std::vector<double> h = ToVector(EntropyFromLogits(logits.to(torch::kFloat32)));
  EXPECT_NEAR(h[0], std::log(4.0), 1e-6);
  EXPECT_NEAR(h[1], 0.0, 1e-6);
}

TEST(LogitsTest, GatherLogProbsWithTemperatureMatchesManualSoftmax) {
  torch::manual_seed(6);
  const int64_t B = 2, T = 4, V = 9;
  torch::Tensor logits = torch::randn({B, T, V}, torch::kFloat64) * 2;
  torch::Tensor tokens = torch::randint(0, V, {B, T}, torch::kLong);
  std::vector<double> z = ToVector(logits);
  for (double temperature : {1.0, 0.7, 1.5}) {
    SCOPED_TRACE(temperature);
    std::vector<double> want;
    for (int64_t row = 0; row < B * T; ++row) {
      std::vector<double> p =
          Softmax({z.begin() + row * V, z.begin() + (row + 1) * V}, temperature);
      want.push_back(std::log(p[tokens.view({-1})[row].item<int64_t>()]));
    }
    ExpectNear(ToVector(GatherLogProbs(logits, tokens, temperature)), want, 1e-13);
  }
  EXPECT_THROW(GatherLogProbs(logits, tokens, 0.0), c10::Error);
  // Half-precision logits are reduced in float32.
  torch::Tensor bf16 = GatherLogProbs(logits.to(torch::kBFloat16), tokens);
  EXPECT_EQ(bf16.scalar_type(), torch::kFloat32);
}

TEST(LogitsTest, EntropyGradientIsClosedForm) {
  // dH/dz_i = -p_i (log p_i + H).
  const std::vector<double> z = {0.3, -1.2, 2.0, 0.0};
  torch::Tensor logits = F64(z).reshape({1, 1, 4}).requires_grad_(true);
  EntropyFromLogits(logits).sum().backward();
  std::vector<double> p = Softmax(z, 1.0), want;
  double h = 0;
  for (double q : p) h -= q * std::log(q);
  for (double q : p) want.push_back(-q * (std::log(q) + h));
  ExpectNear(ToVector(logits.grad()), want, 1e-15);
}

TEST(LogitsTest, GatherLogProbsIsPreciseForLargeFloat32Logits) {
  // log p(token 0) of logits {1000, 999, 998} = -log(1 + e^-1 + e^-2).
  torch::Tensor logits = torch::tensor({1000.f, 999.f, 998.f}).reshape({1, 1, 3});
  const double want = -std::log(1 + std::exp(-1.0) + std::exp(-2.0));
  EXPECT_NEAR(GatherLogProbs(logits, I64({0}).reshape({1, 1})).item<double>(), want, 1e-7);
}

TEST(LogitsTest, GatherLogProbsGradientIsOneHotMinusSoftmax) {
  torch::Tensor logits = F64({0.5, -1.0, 2.0}).reshape({1, 1, 3}).requires_grad_(true);
  GatherLogProbs(logits, I64({2}).reshape({1, 1})).sum().backward();
  std::vector<double> p = Softmax({0.5, -1.0, 2.0}, 1.0);
  ExpectNear(ToVector(logits.grad()), {-p[0], -p[1], 1 - p[2]}, 1e-15);
}

// ---- Pass@k ----

double Binomial(int64_t n, int64_t k) {
  double c = 1;
  for (int64_t i = 1; i <= k; ++i) c = c * (n - k + i) / i;
  return c;
}

TEST(PassAtKTest, KnownValues) {
  EXPECT_DOUBLE_EQ(PassAtK(5, 2, 1), 0.4);
  EXPECT_DOUBLE_EQ(PassAtK(5, 0, 3), 0.0);
  EXPECT_DOUBLE_EQ(PassAtK(5, 3, 3), 1.0);  // n - c = 2 < k
  EXPECT_DOUBLE_EQ(PassAtK(5, 5, 5), 1.0);
  EXPECT_NEAR(PassAtK(10, 3, 5), 1.0 - 21.0 / 252.0, 1e-15);  // C(7,5) / C(10,5)
}

TEST(PassAtKTest, MatchesBinomialRatio) {
  for (int64_t n = 1; n <= 12; ++n) {
    for (int64_t c = 0; c <= n; ++c) {
      for (int64_t k = 1; k <= n; ++k) {
        const double want = n - c < k ? 1.0 : 1.0 - Binomial(n - c, k) / Binomial(n, k);
        EXPECT_NEAR(PassAtK(n, c, k), want, 1e-13) << n << " " << c << " " << k;
      }
    }
  }
}

TEST(PassAtKTest, InvalidArgumentsGiveNaN) {
  EXPECT_TRUE(std::isnan(PassAtK(5, 2, 0)));
  EXPECT_TRUE(std::isnan(PassAtK(5, 2, 6)));
  EXPECT_TRUE(std::isnan(PassAtK(5, 6, 1)));
  EXPECT_TRUE(std::isnan(PassAtK(5, -1, 1)));
}

}  // namespace
}  // namespace hone::algo
