// The policy update's numbers do not depend on memory knobs: micro-batch size changes how
// the mini-batch is cut for forward/backward, never the gradient. A non-finite gradient
// never reaches the weights. The rollout correction is a no-op without a mismatch, and its
// metrics match a float64 recomputation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "framework/algo/algo.h"
#include "framework/core/config.h"
#include "tests/support/tiny_policy.h"
#include "workers/rollout/local_rollout.h"
#include "workers/trainer/local_trainer.h"

namespace hone {
namespace {

using testing_support::TinyPolicy;
using ::testing::HasSubstr;

constexpr uint64_t kSeed = 5;

// 12 trajectories of different lengths (3 prompts x 4 samples), two rows fully masked,
// random advantages and old log-probs a little off the current policy (so the ratio
// and the clip are exercised).
Batch Trajectories() {
  Pretrained policy = TinyPolicy(kSeed);
  auto rollout = *LocalRollout::Create(policy);
  SamplingParams s;
  s.n = 4;
  s.temperature = 1.0;
  s.max_new_tokens = 12;
  s.stop_token_ids = {0};
  s.seed = 11;
  auto prompts = *MakePromptBatch(*policy.tokenizer, {"1+2=?", "13-4+7=?", "5+5=?"}, {"3", "16", "10"}, 0);
  Batch batch = *rollout->Generate(prompts, s);
  auto mask = batch.tensor("response_mask").clone();
  mask[3].zero_();
  mask[8].zero_();
  EXPECT_TRUE(batch.SetTensor("response_mask", mask).ok());
  torch::manual_seed(3);
  const int64_t N = batch.size(), T = mask.size(1);
  EXPECT_TRUE(batch.SetTensor("advantages", torch::randn({N, 1}) * mask).ok());
  EXPECT_TRUE(batch.SetTensor("old_logprobs", (batch.tensor("rollout_logprobs") + 0.3 * torch::randn({N, T})) * mask).ok());
  // Lengths really differ, or the test would not tell the aggregations apart.
  auto lengths = mask.sum(1);
  EXPECT_GT(lengths.max().item<float>(), lengths.masked_select(lengths > 0).min().item<float>());
  return batch;
}

std::vector<torch::Tensor> ParamsAfterUpdate(const Batch& batch, TrainerOptions options) {
  auto trainer = *LocalPolicyTrainer::Create(TinyPolicy(kSeed), options);
  auto metrics = trainer->Update(batch);
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  std::vector<torch::Tensor> params;
  for (const auto& p : trainer->policy().model->parameters()) params.push_back(p.detach().clone());
  return params;
}

double MaxDiff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, (a[i] - b[i]).abs().max().item<double>());
  return diff;
}

struct LossSetup {
  std::string loss_agg_mode, policy_loss, rollout_correction;
};
std::ostream& operator<<(std::ostream& os, const LossSetup& s) {
  return os << s.loss_agg_mode << "/" << s.policy_loss << "/" << s.rollout_correction;
}

class MicroBatchInvariance : public ::testing::TestWithParam<LossSetup> {};

// The whole mini-batch in one forward/backward is the reference; cutting it into
// micro-batches of 1 or 2 rows must give the same parameters (1e-6: float32 summation
// order), for every loss aggregation mode, for gspo and with a rollout correction, with KL
// and entropy terms on, and also with two mini-batches per update.
TEST_P(MicroBatchInvariance, SameParametersForEveryMicroBatchSize) {
  const Batch base = Trajectories();
  Batch batch = base;
  ASSERT_TRUE(batch.SetTensor("ref_logprobs", batch.tensor("rollout_logprobs") * 0.9).ok());
  for (int64_t mini : {0, 6}) {
    TrainerOptions options;
    // AdamW's first step is lr * g / (|g| + eps): with a small eps it is sign(g) and a
    // gradient entry at rounding-noise level could flip sign; eps = 1 makes the step
    // about lr * g, so parameter differences show gradient differences faithfully.
    options.lr = 1.0;
    options.eps = 1.0;
    options.grad_clip = 0;  // clipping would hide gradient differences below the threshold
    options.loss_agg_mode = GetParam().loss_agg_mode;
    options.policy_loss = GetParam().policy_loss;
    options.rollout_correction = GetParam().rollout_correction;
    options.loss_norm_length = 12;
    options.kl_coef = 0.1;
    options.entropy_coef = 0.01;
    options.ppo_mini_batch_size = mini;
    options.micro_batch_size = batch.size();
    const auto reference = ParamsAfterUpdate(batch, options);
    const auto untouched = ParamsAfterUpdate(batch, [&] {
      TrainerOptions frozen = options;
      frozen.lr = 0;
      return frozen;
    }());
    ASSERT_GT(MaxDiff(reference, untouched), 1e-4) << "the update must move the weights";
    for (int64_t micro : {1, 2, 5}) {
      options.micro_batch_size = micro;
      EXPECT_LT(MaxDiff(ParamsAfterUpdate(batch, options), reference), 1e-6)
          << GetParam() << " micro_batch_size " << micro << " ppo_mini_batch_size " << mini;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(LossSetups, MicroBatchInvariance,
                         ::testing::Values(LossSetup{"token_mean", "vanilla", "off"},
                                           LossSetup{"seq_mean_token_mean", "vanilla", "off"},
                                           LossSetup{"seq_mean_token_sum_norm", "vanilla", "off"},
                                           LossSetup{"seq_mean_token_mean", "gspo", "off"},
                                           LossSetup{"token_mean", "gspo", "tis_seq"},
                                           LossSetup{"token_mean", "vanilla", "mis_token"}));

// When the rollout's log-probs equal the trainer's, every importance weight is exactly 1:
// every correction mode leaves the update (parameters and loss) identical to "off", for
// both policy losses, and reports weight mean 1, nothing truncated or masked, seq KL 0.
TEST(RolloutCorrection, NoMismatchLeavesTheUpdateUnchanged) {
  Batch batch = Trajectories();
  ASSERT_TRUE(batch.SetTensor("rollout_logprobs", batch.tensor("old_logprobs")).ok());
  for (const std::string policy_loss : {"vanilla", "gspo"}) {
    TrainerOptions options;
    options.lr = 1.0;
    options.eps = 1.0;
    options.grad_clip = 0;
    options.policy_loss = policy_loss;
    options.ppo_mini_batch_size = 6;
    options.micro_batch_size = 5;
    const auto off = ParamsAfterUpdate(batch, options);
    for (const std::string mode : {"tis_token", "tis_seq", "mis_token", "mis_seq"}) {
      SCOPED_TRACE(policy_loss + " " + mode);
      options.rollout_correction = mode;
      options.rollout_is_threshold = 1.0;  // the tightest bound still keeps weight 1
      EXPECT_EQ(MaxDiff(ParamsAfterUpdate(batch, options), off), 0.0);
      auto trainer = *LocalPolicyTrainer::Create(TinyPolicy(kSeed), options);
      auto metrics = trainer->Update(batch);
      ASSERT_TRUE(metrics.ok()) << metrics.status();
      EXPECT_DOUBLE_EQ((*metrics)["rollout_is_weight_mean"], 1.0);
      const char* fraction = mode[0] == 't' ? "rollout_is_truncated_fraction" : "rollout_is_masked_fraction";
      ASSERT_EQ(metrics->count(fraction), 1u);
      EXPECT_EQ((*metrics)[fraction], 0.0);
      EXPECT_EQ((*metrics)["rollout_seq_kl"], 0.0);
    }
  }
}

// With a real mismatch the update's metrics equal a float64 recomputation over the whole
// batch (whatever the mini- and micro-batches), and the correction changes the update.
TEST(RolloutCorrection, MetricsMatchFloat64Recomputation) {
  const Batch batch = Trajectories();
  const auto old_lp = batch.tensor("old_logprobs").to(torch::kFloat64);
  const auto rollout_lp = batch.tensor("rollout_logprobs").to(torch::kFloat64);
  const auto mask = batch.tensor("response_mask");
  const int64_t N = mask.size(0), T = mask.size(1);
  const double C = 1.5;
  TrainerOptions options;
  options.lr = 1.0;
  options.eps = 1.0;
  options.grad_clip = 0;
  options.ppo_mini_batch_size = 6;
  options.micro_batch_size = 5;
  options.rollout_is_threshold = C;
  const auto off = ParamsAfterUpdate(batch, options);
  for (const std::string mode : {"tis_token", "tis_seq", "mis_token", "mis_seq"}) {
    SCOPED_TRACE(mode);
    const bool seq = mode.substr(4) == "seq";
    double units = 0, weight_sum = 0, exceeded = 0, sequences = 0, kl = 0;
    for (int64_t i = 0; i < N; ++i) {
      double row = 0, tokens = 0;
      for (int64_t t = 0; t < T; ++t) {
        if (mask[i][t].item<double>() == 0) continue;
        const double l = old_lp[i][t].item<double>() - rollout_lp[i][t].item<double>();
        row += l;
        ++tokens;
        if (!seq) {
          const double w = std::exp(std::min(20.0, std::max(-20.0, l)));
          ++units;
          weight_sum += w;
          exceeded += w > C;
        }
      }
      if (tokens == 0) continue;
      ++sequences;
      kl -= row;
      if (seq) {
        const double w = std::exp(std::min(20.0, std::max(-20.0, row)));
        ++units;
        weight_sum += w;
        exceeded += w > C;
      }
    }
    ASSERT_GT(exceeded, 0);
    options.rollout_correction = mode;
    auto trainer = *LocalPolicyTrainer::Create(TinyPolicy(kSeed), options);
    auto metrics = trainer->Update(batch);
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    EXPECT_NEAR((*metrics)["rollout_is_weight_mean"], weight_sum / units, 1e-5 * weight_sum / units);
    const char* fraction = mode[0] == 't' ? "rollout_is_truncated_fraction" : "rollout_is_masked_fraction";
    EXPECT_DOUBLE_EQ((*metrics)[fraction], exceeded / units);
    EXPECT_NEAR((*metrics)["rollout_seq_kl"], kl / sequences, 1e-5);
    EXPECT_GT(MaxDiff(ParamsAfterUpdate(batch, options), off), 1e-4);
  }
  // A batch without rollout_logprobs is an error when a correction is on.
  Batch without;
  for (const std::string& name : batch.TensorNames()) {
    if (name == "rollout_logprobs") continue;
    ASSERT_TRUE(without.SetTensor(name, batch.tensor(name)).ok());
  }
  without.meta = batch.meta;
  options.rollout_correction = "tis_token";
  auto trainer = *LocalPolicyTrainer::Create(TinyPolicy(kSeed), options);
  auto metrics = trainer->Update(without);
  ASSERT_FALSE(metrics.ok());
  EXPECT_THAT(std::string(metrics.status().message()), HasSubstr("rollout_logprobs"));
}

// The old behaviour (each micro-batch's own token mean, weighted by rows) differs from
// the mini-batch token mean on this batch: the invariance test above would fail on it.
TEST(MicroBatchInvariance, PerMicroBatchMeansWouldDiffer) {
  const Batch batch = Trajectories();
  auto mask = batch.tensor("response_mask");
  auto values = torch::arange(mask.numel(), torch::kFloat64).reshape(mask.sizes()).remainder(7);
  const double whole = algo::AggregateLoss(values, mask, "token_mean").item<double>();
  double per_micro = 0;
  for (int64_t start = 0; start < batch.size(); start += 2) {
    per_micro += algo::AggregateLoss(values.narrow(0, start, 2), mask.narrow(0, start, 2), "token_mean")
                     .item<double>() * 2 / batch.size();
  }
  EXPECT_GT(std::abs(whole - per_micro), 1e-3);
  // ... and the pieces with the whole's denominators sum to the whole (float64 check).
  const algo::LossDenominators counts = algo::CountLossDenominators(mask);
  double pieces = 0;
  for (int64_t start = 0; start < batch.size(); start += 2) {
    pieces += algo::AggregateLoss(values.narrow(0, start, 2), mask.narrow(0, start, 2),
                                  "token_mean", 0, counts).item<double>();
  }
  EXPECT_NEAR(pieces, whole, 1e-9);
}

// A NaN in the advantages makes the gradient NaN: the step is skipped, the weights stay as
// they were, the skip is counted, and too many skips in a row stop the job.
TEST(NonFiniteGradient, SkipsTheStepAndStopsAfterTooMany) {
  Batch batch = Trajectories();
  auto advantages = batch.tensor("advantages").clone();
  advantages[0][batch.ints("prompt_len")[0]] = std::numeric_limits<float>::quiet_NaN();
  ASSERT_TRUE(batch.SetTensor("advantages", advantages).ok());
  TrainerOptions options;
  options.lr = 1e-2;
  options.max_skipped_updates = 2;
  auto trainer = *LocalPolicyTrainer::Create(TinyPolicy(kSeed), options);
  std::vector<torch::Tensor> before;
  for (const auto& p : trainer->policy().model->parameters()) before.push_back(p.detach().clone());

  auto first = trainer->Update(batch);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(std::isfinite((*first)["grad_norm"]));
  EXPECT_EQ((*first)["skipped_updates"], 1);
  std::vector<torch::Tensor> after;
  for (const auto& p : trainer->policy().model->parameters()) {
    after.push_back(p.detach().clone());
    EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
  }
  EXPECT_EQ(MaxDiff(before, after), 0.0);

  auto second = trainer->Update(batch);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("trainer.max_skipped_updates=2"));
}

// The keys reach TrainerOptions; combinations the schema cannot reject alone are errors
// naming the key; the schema rejects unknown names and thresholds below 1.
TEST(TrainerOptionsFromConfig, PolicyLossAndRolloutCorrectionKeys) {
  auto config = Config::Load(HoneConfigSchema(), "",
                             {"algorithm.policy_loss=gspo", "algorithm.rollout_correction=mis_seq",
                              "algorithm.rollout_is_threshold=3.5"});
  ASSERT_TRUE(config.ok()) << config.status();
  auto options = TrainerOptionsFromConfig(*config);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->policy_loss, "gspo");
  EXPECT_EQ(options->rollout_correction, "mis_seq");
  EXPECT_EQ(options->rollout_is_threshold, 3.5);
  auto defaults = TrainerOptionsFromConfig(Config::Defaults(HoneConfigSchema()));
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->policy_loss, "vanilla");
  EXPECT_EQ(defaults->rollout_correction, "off");
  EXPECT_EQ(defaults->rollout_is_threshold, 2.0);

  ASSERT_TRUE(config->Set("algorithm.clip_ratio_c", "3").ok());
  auto dual = TrainerOptionsFromConfig(*config);
  ASSERT_FALSE(dual.ok());
  EXPECT_THAT(std::string(dual.status().message()), HasSubstr("algorithm.clip_ratio_c"));
  EXPECT_FALSE(Config::Load(HoneConfigSchema(), "", {"algorithm.policy_loss=ppo"}).ok());
  EXPECT_FALSE(Config::Load(HoneConfigSchema(), "", {"algorithm.rollout_correction=tis"}).ok());
  EXPECT_FALSE(Config::Load(HoneConfigSchema(), "", {"algorithm.rollout_is_threshold=0.5"}).ok());
}

TEST(Temperature, MissingTemperatureIsAnError) {
  Batch batch = Trajectories();
  batch.meta.erase("temperature");
  auto trainer = *LocalPolicyTrainer::Create(TinyPolicy(kSeed), TrainerOptions{});
  auto lp = trainer->ComputeLogProbs(batch);
  ASSERT_FALSE(lp.ok());
  EXPECT_THAT(std::string(lp.status().message()), HasSubstr("temperature"));
  EXPECT_FALSE(trainer->Update(batch).ok());
}

}  // namespace
}  // namespace hone
