// Numerical tests of the sequence-level pieces of framework/algo: GSPO (one ratio per
// sequence) and the rollout/trainer mismatch correction (TIS/MIS). Expected values are
// written out by hand or recomputed in float64 with plain loops, never taken from the
// implementation.
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
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

// ---- GSPO ----
// 2 x 3, clip [0.8, 1.28]:
//   row 0: log-ratios {0.1, -0.2, 0.4}, all counted, A = +1: s_0 = exp(0.3 / 3) = exp(0.1)
//          = 1.1051709180756477, inside the range: every token costs -s_0.
//   row 1: log-ratios {0.5, 0.3, (2.0 masked)}, A = +2: s_1 = exp(0.8 / 2) = exp(0.4)
//          = 1.4918..., above 1.28: clipped, every token costs -2 * 1.28 = -2.56.
// token_mean = (3 * -s_0 + 2 * -2.56) / 5 = -1.6871025508453887
// seq_mean_token_mean = (-s_0 - 2.56) / 2 = -1.8325854590378239
// Per token, vanilla would clip row 0's third token (exp(0.4)) and row 1's first two.
struct GspoExample {
  torch::Tensor logp, old_logp, adv, mask;
};
GspoExample MakeGspoExample() {
  GspoExample e;
  e.old_logp = F64({-1.0, -0.5, -2.0, -0.3, -1.2, -0.7}).reshape({2, 3});
  e.logp = e.old_logp + F64({0.1, -0.2, 0.4, 0.5, 0.3, 2.0}).reshape({2, 3});
  e.adv = F64({1, 1, 1, 2, 2, 2}).reshape({2, 3});
  e.mask = F64({1, 1, 1, 1, 1, 0}).reshape({2, 3});
  return e;
}

TEST(GspoTest, ByHand) {
  GspoExample e = MakeGspoExample();
  const double s0 = std::exp(0.1);
  ASSERT_NEAR(s0, 1.1051709180756477, 1e-15);
  PolicyLossOptions options;
  options.clip_ratio_low = 0.2;
  options.clip_ratio_high = 0.28;
  for (const std::string mode : {"token_mean", "seq_mean_token_mean"}) {
    SCOPED_TRACE(mode);
    options.loss_agg_mode = mode;
    torch::Tensor logp = e.logp.clone().requires_grad_(true);
    PolicyLossOutput out = GspoLoss(logp, e.old_logp, e.adv, e.mask, options);
    const bool token_mean = mode == "token_mean";
    const double want = token_mean ? (3 * -s0 + 2 * -2.56) / 5 : (-s0 - 2.56) / 2;
    EXPECT_NEAR(want, token_mean ? -1.6871025508453887 : -1.8325854590378239, 1e-15);
    EXPECT_NEAR(out.loss.item<double>(), want, 1e-14);
    EXPECT_DOUBLE_EQ(out.clip_fraction, 2.0 / 5);  // row 1's two tokens
    EXPECT_EQ(out.dual_clip_fraction, 0.0);
    EXPECT_NEAR(out.approx_kl, -(0.1 - 0.2 + 0.4 + 0.5 + 0.3) / 5, 1e-14);
    // Gradient: -A * s_0 per row-0 token over the denominator (5 tokens, or 2 rows x 3
    // tokens); the clipped row and the masked token get none.
    out.loss.backward();
    const double g = token_mean ? -s0 / 5 : -s0 / (2 * 3);
    ExpectNear(ToVector(logp.grad()), {g, g, g, 0, 0, 0}, 1e-14);
  }
  // Per token (vanilla) the clip acts on three different tokens.
  options.loss_agg_mode = "token_mean";
  EXPECT_DOUBLE_EQ(ClippedSurrogateLoss(e.logp, e.old_logp, e.adv, e.mask, options).clip_fraction, 3.0 / 5);
  // A < 0 with the same ratios: row 1's pessimistic term is the unclipped one.
  PolicyLossOutput neg = GspoLoss(e.logp, e.old_logp, -e.adv, e.mask, options);
  EXPECT_NEAR(neg.loss.item<double>(), (3 * s0 + 2 * 2 * std::exp(0.4)) / 5, 1e-14);
  EXPECT_EQ(neg.clip_fraction, 0.0);
}

TEST(GspoTest, WeightsDualClipAndShapes) {
  GspoExample e = MakeGspoExample();
  PolicyLossOptions options;
  options.clip_ratio_low = 0.2;
  options.clip_ratio_high = 0.28;
  options.token_weights = F64({2.0, 1.0, 0.0, 0.5, 1.0, 7.0}).reshape({2, 3});
  const double s0 = std::exp(0.1);
  EXPECT_NEAR(GspoLoss(e.logp, e.old_logp, e.adv, e.mask, options).loss.item<double>(),
              (2.0 * -s0 + 1.0 * -s0 + 0.0 + 0.5 * -2.56 + 1.0 * -2.56) / 5, 1e-14);
  options.token_weights = torch::Tensor();
  options.clip_ratio_c = 3.0;
  EXPECT_THROW(GspoLoss(e.logp, e.old_logp, e.adv, e.mask, options), c10::Error);
  options.clip_ratio_c = 0.0;
  EXPECT_THROW(GspoLoss(e.logp, e.old_logp, e.adv.narrow(1, 0, 2), e.mask, options), c10::Error);
  // An empty row (no counted token) has ratio exp(0) and adds nothing.
  torch::Tensor empty = torch::zeros_like(e.mask);
  EXPECT_EQ(GspoLoss(e.logp, e.old_logp, e.adv, empty, options).loss.item<double>(), 0.0);
}

TEST(GspoTest, GradientMatchesFiniteDifferencesForEveryAggMode) {
  // float64 central differences of the loss VALUE (in which s_i moves with every token of
  // its row) against autograd through the stop-gradient token form: equal when the
  // advantage is constant over each sequence. Row mean log-ratios: 0.05 (inside), 0.4 with
  // A < 0 (above the range, unclipped), -0.5 with A > 0 (below, unclipped), 0.5 with A > 0
  // (clipped: zero gradient); each at least 0.1 from a kink (log 0.8, log 1.28).
  const int64_t B = 4, T = 5;
  torch::manual_seed(11);
  torch::Tensor old_logp = -torch::rand({B, T}, torch::kFloat64) * 3;
  torch::Tensor mask = F64({1, 1, 1, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}).reshape({B, T});
  const std::vector<double> row_mean = {0.05, 0.4, -0.5, 0.5};
  const std::vector<double> row_adv = {0.7, -1.3, 0.9, 1.0};
  torch::Tensor noise = (torch::rand({B, T}, torch::kFloat64) - 0.5) * 0.6;
  noise = noise - (noise * mask).sum(1, true) / mask.sum(1, true);  // zero mean over counted tokens
  torch::Tensor logp0 = old_logp + noise + F64(row_mean).unsqueeze(1);
  torch::Tensor adv = F64(row_adv).unsqueeze(1).expand({B, T}).contiguous();

  for (const std::string& mode : LossAggModeNames()) {
    SCOPED_TRACE(mode);
    PolicyLossOptions options;
    options.clip_ratio_low = 0.2;
    options.clip_ratio_high = 0.28;
    options.loss_agg_mode = mode;
    auto loss_at = [&](const torch::Tensor& logp) {
      return GspoLoss(logp, old_logp, adv, mask, options).loss.item<double>();
    };
    torch::Tensor logp = logp0.clone().requires_grad_(true);
    GspoLoss(logp, old_logp, adv, mask, options).loss.backward();
    std::vector<double> grad = ToVector(logp.grad());
    ExpectNear(grad, NumericGradient(logp0, loss_at), 1e-8);
    for (int64_t t = 0; t < T; ++t) EXPECT_EQ(grad[3 * T + t], 0.0);  // the clipped row
    double norm = 0;
    for (double g : grad) norm += std::abs(g);
    EXPECT_GT(norm, 0.1);
  }
}

// ---- rollout correction ----
// 2 x 3, C = 2, log-ratios old - rollout:
//   row 0: {0.1, 0.9, -0.5}, all counted: token w {1.10517, 2.45960, 0.60653}; sum 0.5,
//          sequence w exp(0.5) = 1.64872
//   row 1: {0.4, 0.5, (3.0 masked)}: token w {1.49182, 1.64872}; sum 0.9, sequence w
//          exp(0.9) = 2.45960 > 2
//   seq KL: mean over rows of sum_t (rollout - old) = (-0.5 - 0.9) / 2 = -0.7
struct CorrectionExample {
  torch::Tensor old_logp, rollout_logp, mask;
};
CorrectionExample MakeCorrectionExample() {
  CorrectionExample e;
  e.rollout_logp = F64({-1.0, -2.0, -0.5, -0.7, -1.5, -0.2}).reshape({2, 3});
  e.old_logp = e.rollout_logp + F64({0.1, 0.9, -0.5, 0.4, 0.5, 3.0}).reshape({2, 3});
  e.mask = F64({1, 1, 1, 1, 1, 0}).reshape({2, 3});
  return e;
}

TEST(RolloutCorrectionTest, ByHand) {
  CorrectionExample e = MakeCorrectionExample();
  const double a = std::exp(0.1), b = std::exp(0.9), c = std::exp(-0.5), d = std::exp(0.4),
               f = std::exp(0.5);
  struct Case {
    std::string mode;
    std::vector<double> weights;
    double units, weight_sum, exceeded;
  };
  const std::vector<Case> cases = {
      {"off", {1, 1, 1, 1, 1, 0}, 5, 5, 0},
      {"tis_token", {a, 2.0, c, d, f, 0}, 5, a + b + c + d + f, 1},
      {"mis_token", {a, 0.0, c, d, f, 0}, 5, a + b + c + d + f, 1},
      {"tis_seq", {f, f, f, 2.0, 2.0, 0}, 2, f + b, 1},
      {"mis_seq", {f, f, f, 0, 0, 0}, 2, f + b, 1},
  };
  EXPECT_NEAR((a + b + c + d + f) / 5, 1.4623701314573259, 1e-15);
  for (const Case& want : cases) {
    SCOPED_TRACE(want.mode);
    RolloutCorrectionOutput out = RolloutCorrection(e.old_logp, e.rollout_logp, e.mask, want.mode, 2.0);
    ExpectNear(ToVector(out.weights), want.weights, 1e-14);
    EXPECT_FALSE(out.weights.requires_grad());
    EXPECT_EQ(out.units, want.units);
    EXPECT_NEAR(out.weight_sum, want.weight_sum, 1e-13);
    EXPECT_EQ(out.exceeded, want.exceeded);
    EXPECT_EQ(out.sequences, 2);
    EXPECT_NEAR(out.seq_kl_sum / out.sequences, -0.7, 1e-14);
  }
}

TEST(RolloutCorrectionTest, EveryModeMatchesFloat64Loops) {
  // Random mismatch, an empty row, and one row whose summed log-ratio (> 20) hits the
  // exp clamp; C = 1.5. Expected values from plain loops over doubles.
  const int64_t B = 6, T = 7;
  const double C = 1.5;
  torch::manual_seed(5);
  torch::Tensor rollout = -torch::rand({B, T}, torch::kFloat64) * 4;
  torch::Tensor delta = torch::randn({B, T}, torch::kFloat64) * 0.4;
  delta[4] = 3.5;  // row 4: 7 x 3.5 = 24.5 > 20
  torch::Tensor old = rollout + delta;
  torch::Tensor mask = (torch::rand({B, T}, torch::kFloat64) > 0.25).to(torch::kFloat64);
  mask[2].zero_();
  mask[4].fill_(1);
  auto o = old.accessor<double, 2>(), r = rollout.accessor<double, 2>(), m = mask.accessor<double, 2>();
  auto clamp20 = [](double x) { return std::min(20.0, std::max(-20.0, x)); };

  for (const std::string& mode : RolloutCorrectionModes()) {
    SCOPED_TRACE(mode);
    const bool seq = mode.size() > 4 && mode.substr(mode.size() - 4) == "_seq";
    const bool tis = mode.rfind("tis_", 0) == 0, mis = mode.rfind("mis_", 0) == 0;
    std::vector<double> weights(B * T, 0.0);
    double units = 0, weight_sum = 0, exceeded = 0, sequences = 0, kl = 0;
    for (int64_t i = 0; i < B; ++i) {
      double row_sum = 0, row_tokens = 0;
      for (int64_t t = 0; t < T; ++t) {
        if (m[i][t] != 0) {
          row_sum += o[i][t] - r[i][t];
          ++row_tokens;
        }
      }
      if (row_tokens > 0) {
        ++sequences;
        kl += -row_sum;
      }
      const double w_seq = std::exp(clamp20(row_sum));
      if (seq && row_tokens > 0) {
        ++units;
        weight_sum += w_seq;
        exceeded += w_seq > C;
      }
      for (int64_t t = 0; t < T; ++t) {
        if (m[i][t] == 0) continue;
        double w = seq ? w_seq : std::exp(clamp20(o[i][t] - r[i][t]));
        if (mode == "off") w = 1.0;
        if (!seq) {
          ++units;
          weight_sum += w;
          exceeded += w > C && mode != "off";
        }
        weights[i * T + t] = tis ? std::min(w, C) : mis ? (w > C ? 0.0 : w) : w;
      }
    }
    if (mode != "off") {  // the example exercises both sides of C
      ASSERT_GT(exceeded, 0);
      ASSERT_LT(exceeded, units);
    }
    RolloutCorrectionOutput out = RolloutCorrection(old, rollout, mask, mode, C);
    ExpectNear(ToVector(out.weights), weights, 1e-12);
    EXPECT_EQ(out.units, units);
    EXPECT_NEAR(out.weight_sum, weight_sum, 1e-9 * weight_sum);
    EXPECT_EQ(out.exceeded, exceeded);
    EXPECT_EQ(out.sequences, sequences);
    EXPECT_NEAR(out.seq_kl_sum, kl, 1e-12);
    // Rows split into pieces: the pieces' sums are the whole's.
    RolloutCorrectionOutput top = RolloutCorrection(old.narrow(0, 0, 2), rollout.narrow(0, 0, 2),
                                                    mask.narrow(0, 0, 2), mode, C);
    RolloutCorrectionOutput rest = RolloutCorrection(old.narrow(0, 2, B - 2), rollout.narrow(0, 2, B - 2),
                                                     mask.narrow(0, 2, B - 2), mode, C);
    EXPECT_EQ(top.units + rest.units, units);
    EXPECT_EQ(top.exceeded + rest.exceeded, exceeded);
    EXPECT_NEAR(top.weight_sum + rest.weight_sum, weight_sum, 1e-9 * weight_sum);
  }
}

TEST(RolloutCorrectionTest, ValidationAndAgreement) {
  EXPECT_THAT(RolloutCorrectionModes(), ElementsAre("off", "tis_token", "tis_seq", "mis_token", "mis_seq"));
  EXPECT_TRUE(ValidateRolloutCorrection("mis_seq", 1.0).ok());
  absl::Status bad = ValidateRolloutCorrection("tis", 2.0);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("off, tis_token, tis_seq, mis_token, mis_seq"));
  EXPECT_FALSE(ValidateRolloutCorrection("tis_token", 0.5).ok());
  EXPECT_FALSE(ValidateRolloutCorrection("tis_token", INFINITY).ok());
  EXPECT_FALSE(ValidateRolloutCorrection("tis_token", NAN).ok());
  CorrectionExample e = MakeCorrectionExample();
  EXPECT_THROW(RolloutCorrection(e.old_logp, e.rollout_logp, e.mask, "tis_token", 0.5), c10::Error);
  EXPECT_THROW(RolloutCorrection(e.old_logp, e.rollout_logp.narrow(1, 0, 2), e.mask, "tis_token", 2.0),
               c10::Error);
  // When the rollout and the trainer agree, every mode weighs each counted token 1.
  for (const std::string& mode : RolloutCorrectionModes()) {
    RolloutCorrectionOutput out = RolloutCorrection(e.old_logp, e.old_logp, e.mask, mode, 1.0);
    EXPECT_TRUE(torch::equal(out.weights, e.mask)) << mode;
    EXPECT_EQ(out.exceeded, 0) << mode;
    EXPECT_EQ(out.seq_kl_sum, 0) << mode;
  }
}

}  // namespace
}  // namespace hone::algo
