// The policy update's numbers do not depend on memory knobs: micro-batch size changes how
// the mini-batch is cut for forward/backward, never the gradient. And a non-finite
// gradient never reaches the weights.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "framework/algo/algo.h"
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

class MicroBatchInvariance : public ::testing::TestWithParam<std::string> {};

// The whole mini-batch in one forward/backward is the reference; cutting it into
// micro-batches of 1 or 2 rows must give the same parameters (1e-6: float32 summation
// order), for every loss aggregation mode, with KL and entropy terms on, and also with
// two mini-batches per update.
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
    options.loss_agg_mode = GetParam();
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

INSTANTIATE_TEST_SUITE_P(LossAggModes, MicroBatchInvariance,
                         ::testing::Values("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"));

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
