// Micro-batches cut from sequences ordered by length pay for less padding and leave the
// update unchanged: the loss terms are divided by the whole mini-batch's denominators, so
// the gradient does not depend on which rows share a micro-batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "tests/support/tiny_policy.h"
#include "workers/trainer/local_trainer.h"
#include "workers/trainer/policy_gradient.h"

namespace hone {
namespace {

using testing_support::TinyPolicy;

constexpr uint64_t kSeed = 7;
constexpr int64_t kPromptLen = 3;
// Long and short sequences interleaved, as a group of samples comes out of the rollout:
// cut in batch order every micro-batch is as wide as its longest row.
const std::vector<int64_t> kLengths = {20, 5, 18, 6, 22, 4, 17, 7, 21, 3, 19, 8};

// Trajectories with the lengths above (prompt of kPromptLen tokens, then the response),
// right-padded to the longest, with random advantages and old log-probs a little off the
// policy's own (so the ratio and the clip are exercised).
Batch Trajectories() {
  Pretrained policy = TinyPolicy(kSeed);
  const int64_t N = static_cast<int64_t>(kLengths.size()), T = 24;
  const int64_t vocab = policy.model->config().vocab_size;
  torch::manual_seed(13);
  auto ids = torch::randint(1, vocab, {N, T}, torch::kInt64);
  auto attention = torch::zeros({N, T}, torch::kBool);
  auto response = torch::zeros({N, T});
  for (int64_t i = 0; i < N; ++i) {
    attention[i].narrow(0, 0, kLengths[i]).fill_(true);
    response[i].narrow(0, kPromptLen, kLengths[i] - kPromptLen).fill_(1.0);
  }
  ids.masked_fill_(attention.logical_not(), 0);
  Batch batch;
  EXPECT_TRUE(batch.SetTensor("input_ids", ids).ok());
  EXPECT_TRUE(batch.SetTensor("attention_mask", attention).ok());
  EXPECT_TRUE(batch.SetTensor("response_mask", response).ok());
  batch.meta["temperature"] = "1";
  auto trainer = *LocalPolicyTrainer::Create(TinyPolicy(kSeed), TrainerOptions{});
  auto logprobs = trainer->ComputeLogProbs(batch);
  EXPECT_TRUE(logprobs.ok()) << logprobs.status();
  EXPECT_TRUE(batch.SetTensor("advantages", torch::randn({N, 1}) * response).ok());
  EXPECT_TRUE(batch.SetTensor("old_logprobs", (logprobs->old_logprobs + 0.3 * torch::randn({N, T})) * response).ok());
  EXPECT_TRUE(batch.SetTensor("ref_logprobs", (logprobs->old_logprobs - 0.2 * torch::rand({N, T})) * response).ok());
  return batch;
}

struct Updated {
  std::vector<torch::Tensor> params;
  Metrics metrics;
};

Updated Update(const Batch& batch, const TrainerOptions& options) {
  auto trainer = *LocalPolicyTrainer::Create(TinyPolicy(kSeed), options);
  auto metrics = trainer->Update(batch);
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  Updated out;
  for (const auto& p : trainer->policy().model->parameters()) out.params.push_back(p.detach().clone());
  if (metrics.ok()) out.metrics = *metrics;
  return out;
}

double MaxDiff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, (a[i] - b[i]).abs().max().item<double>());
  return diff;
}

// Every row of the mini-batch exactly once, longest first, each micro-batch as wide as its
// longest row; sorting lowers the padding of this interleaved batch.
TEST(PlanMicroBatches, SortedPlanCoversEveryRowOnceWithLessPadding) {
  const Batch batch = Trajectories();
  const auto& attention = batch.tensor("attention_mask");
  for (const auto& [begin, end] : std::vector<std::pair<int64_t, int64_t>>{{0, 12}, {0, 6}, {6, 12}, {2, 11}}) {
    SCOPED_TRACE(testing::Message() << "rows [" << begin << ", " << end << ")");
    for (bool sort : {false, true}) {
      const auto plan = PlanMicroBatches(attention, begin, end, 4, sort);
      std::multiset<int64_t> seen;
      int64_t previous_width = 1 << 30;
      for (const MicroBatch& micro : plan) {
        EXPECT_LE(micro.rows.size(0), 4);
        int64_t longest = 0;
        for (int64_t i = 0; i < micro.rows.size(0); ++i) {
          const int64_t row = micro.rows[i].item<int64_t>();
          seen.insert(row);
          longest = std::max(longest, kLengths[row]);
        }
        EXPECT_EQ(micro.width, longest);
        if (sort) {
          EXPECT_LE(micro.width, previous_width);
        }
        previous_width = micro.width;
      }
      std::multiset<int64_t> expected;
      for (int64_t row = begin; row < end; ++row) expected.insert(row);
      EXPECT_EQ(seen, expected);
    }
    const PaddingCount unsorted = CountPadding(attention, PlanMicroBatches(attention, begin, end, 4, false));
    const PaddingCount sorted = CountPadding(attention, PlanMicroBatches(attention, begin, end, 4, true));
    EXPECT_EQ(sorted.real, unsorted.real);
    EXPECT_LT(sorted.padding(), unsorted.padding());
  }
  // The whole batch in micro-batches of 3: in batch order 20, 22, 21 and 19 wide (246
  // positions for 150 tokens: 96 padding); sorted 22, 19, 8 and 5 wide (162: 12 padding).
  const PaddingCount unsorted = CountPadding(attention, PlanMicroBatches(attention, 0, 12, 3, false));
  const PaddingCount sorted = CountPadding(attention, PlanMicroBatches(attention, 0, 12, 3, true));
  EXPECT_EQ(unsorted.real, 150);
  EXPECT_EQ(unsorted.positions, 3 * (20 + 22 + 21 + 19));
  EXPECT_EQ(sorted.positions, 3 * (22 + 19 + 8 + 5));
}

// The parameters after one update with and without sorting agree to 1e-6 (float32
// summation order), as do the reported metrics, for token- and sequence-level loss
// aggregation, with KL and entropy terms, one or two mini-batches, several micro-batch sizes.
TEST(SortedMicroBatches, SameUpdateAsBatchOrder) {
  const Batch batch = Trajectories();
  double worst = 0;
  for (const std::string mode : {"token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"}) {
    for (int64_t mini : {0, 6}) {
      for (int64_t micro : {2, 4, 5}) {
        SCOPED_TRACE(testing::Message() << mode << " mini " << mini << " micro " << micro);
        TrainerOptions options;
        // AdamW's first step is lr * g / (|g| + eps): eps = 1 makes it about lr * g, so
        // parameter differences show gradient differences instead of sign(g).
        options.lr = 1.0;
        options.eps = 1.0;
        options.grad_clip = 0;
        options.loss_agg_mode = mode;
        options.loss_norm_length = 21;
        options.kl_coef = 0.1;
        options.entropy_coef = 0.01;
        options.ppo_mini_batch_size = mini;
        options.micro_batch_size = micro;
        options.sort_micro_batches = false;
        const Updated unsorted = Update(batch, options);
        options.sort_micro_batches = true;
        const Updated sorted = Update(batch, options);
        TrainerOptions frozen = options;
        frozen.lr = 0;
        ASSERT_GT(MaxDiff(unsorted.params, Update(batch, frozen).params), 1e-4) << "the update must move the weights";
        const double diff = MaxDiff(sorted.params, unsorted.params);
        worst = std::max(worst, diff);
        EXPECT_LT(diff, 1e-6);
        for (const auto& [name, value] : unsorted.metrics) {
          ASSERT_EQ(sorted.metrics.count(name), 1u) << name;
          EXPECT_NEAR(sorted.metrics.at(name), value, 1e-6 * std::max(1.0, std::abs(value))) << name;
        }
      }
    }
  }
  std::printf("max |sorted - batch order| over all parameters and settings: %.3e\n", worst);
}

}  // namespace
}  // namespace hone
