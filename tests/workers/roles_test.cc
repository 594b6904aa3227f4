// The in-process roles against each other: rollout log-probs vs the trainer's recomputation
// (the stale-weights check), rewards, and the direction of a GRPO update.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "framework/algo/algo.h"
#include "tests/support/tiny_policy.h"
#include "workers/controller/step_metrics.h"
#include "workers/reward/local_reward.h"
#include "workers/rollout/local_rollout.h"
#include "workers/trainer/local_trainer.h"

namespace hone {
namespace {

using testing_support::TinyPolicy;

Batch Prompts(const Tokenizer& tokenizer) {
  auto batch = MakePromptBatch(tokenizer, {"1+2=?", "13-4+7=?", "5+5=?"}, {"3", "16", "10"}, 0);
  EXPECT_TRUE(batch.ok()) << batch.status();
  return *batch;
}

SamplingParams Sampling() {
  SamplingParams s;
  s.n = 4;
  s.temperature = 1.0;
  s.max_new_tokens = 12;
  s.stop_token_ids = {0};
  s.seed = 9;
  return s;
}

TEST(RolesTest, TrajectoriesAreConsistent) {
  Pretrained policy = TinyPolicy(1);
  auto rollout = LocalRollout::Create(policy);
  ASSERT_TRUE(rollout.ok());
  auto batch = (*rollout)->Generate(Prompts(*policy.tokenizer), Sampling());
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->size(), 12);
  EXPECT_TRUE(batch->Validate().ok());
  const auto& prompt_len = batch->ints("prompt_len");
  const auto& response_len = batch->ints("response_len");
  auto mask = batch->tensor("response_mask");
  auto attention = batch->tensor("attention_mask");
  for (int64_t i = 0; i < 12; ++i) {
    EXPECT_EQ(batch->ints("group_id")[i], i / 4);
    EXPECT_EQ(mask[i].sum().item<int64_t>(), response_len[i]);
    EXPECT_EQ(attention[i].sum().item<int64_t>(), prompt_len[i] + response_len[i]);
    EXPECT_EQ(mask[i][prompt_len[i]].item<float>(), response_len[i] > 0 ? 1.0f : 0.0f);
  }
  EXPECT_EQ(batch->strings("ground_truth")[5], "16");
}

// The trainer's recomputed log-probs match the rollout's while weights are in sync, drift
// apart after an update without sync, and match again after LoadWeights.
TEST(RolesTest, LogProbAgreementDetectsStaleWeights) {
  Pretrained policy = TinyPolicy(2);
  auto rollout = *LocalRollout::Create(policy);
  auto trainer = *LocalPolicyTrainer::Create(std::move(policy), [] {
    TrainerOptions o;
    o.lr = 5e-2;
    return o;
  }());
  auto tokenizer = *TokenizerFromJson(trainer->policy().tokenizer_json);
  auto batch = *rollout->Generate(Prompts(*tokenizer), Sampling());
  auto lp = trainer->ComputeLogProbs(batch);
  ASSERT_TRUE(lp.ok()) << lp.status();
  auto fresh = LogProbAgreement(batch.tensor("rollout_logprobs"), lp->old_logprobs, batch.tensor("response_mask"));
  EXPECT_LT(fresh["rollout_logprob_diff_max"], 1e-4);

  // One update with random advantages, no sync: the rollout is now stale.
  ASSERT_TRUE(batch.SetTensor("old_logprobs", lp->old_logprobs).ok());
  torch::manual_seed(0);
  ASSERT_TRUE(batch.SetTensor("advantages", torch::randn({12, 1}) * batch.tensor("response_mask")).ok());
  ASSERT_TRUE(trainer->Update(batch).ok());
  auto after = *trainer->ComputeLogProbs(batch);
  auto stale = LogProbAgreement(batch.tensor("rollout_logprobs"), after.old_logprobs, batch.tensor("response_mask"));
  EXPECT_GT(stale["rollout_logprob_diff_mean"], 1e-3);

  ASSERT_TRUE(rollout->LoadWeights(*trainer->PolicyWeights(), 1).ok());
  EXPECT_EQ(rollout->policy_version(), 1);
  auto resampled = *rollout->Generate(Prompts(*tokenizer), Sampling());
  auto synced_lp = *trainer->ComputeLogProbs(resampled);
  auto synced = LogProbAgreement(resampled.tensor("rollout_logprobs"), synced_lp.old_logprobs,
                                 resampled.tensor("response_mask"));
  EXPECT_LT(synced["rollout_logprob_diff_max"], 1e-4);
}

// A policy-gradient step raises the log-probability of the sequence with the positive
// advantage and lowers the one with the negative advantage.
TEST(RolesTest, UpdateMovesLogProbsInTheAdvantageDirection) {
  Pretrained policy = TinyPolicy(3);
  auto rollout = *LocalRollout::Create(policy);
  TrainerOptions options;
  options.lr = 1e-2;
  auto trainer = *LocalPolicyTrainer::Create(std::move(policy), options);
  auto tokenizer = *TokenizerFromJson(trainer->policy().tokenizer_json);
  SamplingParams s = Sampling();
  s.n = 2;
  auto batch = *rollout->Generate(*MakePromptBatch(*tokenizer, {"1+2=?"}, {"3"}, 0), s);
  auto mask = batch.tensor("response_mask");
  auto before = *trainer->ComputeLogProbs(batch);
  ASSERT_TRUE(batch.SetTensor("old_logprobs", before.old_logprobs).ok());
  ASSERT_TRUE(batch.SetTensor("advantages", torch::tensor({1.0f, -1.0f}).unsqueeze(1) * mask).ok());
  ASSERT_TRUE(trainer->Update(batch).ok());
  auto after = *trainer->ComputeLogProbs(batch);
  auto seq_before = (before.old_logprobs * mask).sum(1);
  auto seq_after = (after.old_logprobs * mask).sum(1);
  EXPECT_GT(seq_after[0].item<double>(), seq_before[0].item<double>());
  EXPECT_LT(seq_after[1].item<double>(), seq_before[1].item<double>());
}

TEST(RolesTest, RewardScorerAddsWeightedComponents) {
  auto scorer = LocalRewardScorer::Create({"boxed_integer", "format"}, {"last_integer", 1.0, 0.1});
  ASSERT_TRUE(scorer.ok());
  Batch batch;
  ASSERT_TRUE(batch.SetStrings("response", {"1+2=3. \\boxed{3}", "\\boxed{4}", "so 3", "\\boxed{3} \\boxed{3}"}).ok());
  ASSERT_TRUE(batch.SetStrings("ground_truth", {"3", "3", "3", "#### 3"}).ok());
  ASSERT_TRUE((*scorer)->Score(batch).ok());
  auto total = batch.tensor("reward");
  EXPECT_NEAR(total[0].item<float>(), 1.1, 1e-6);  // correct + format
  EXPECT_NEAR(total[1].item<float>(), 0.1, 1e-6);  // format only
  EXPECT_NEAR(total[2].item<float>(), 1.0, 1e-6);  // fallback: last integer, no box
  EXPECT_NEAR(total[3].item<float>(), 1.0, 1e-6);  // two boxes: correct, not well formatted
  EXPECT_FALSE(LocalRewardScorer::Create({"nope"}, {}).ok());
}

}  // namespace
}  // namespace hone
