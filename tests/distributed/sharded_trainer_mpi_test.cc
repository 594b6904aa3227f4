// FSDP trainer ranks against the single-process trainer, and the weight broadcast to
// rollout ranks, under mpirun. World ranks 0..W-1 are trainer ranks; with 3 ranks, ranks
// 1..2 are also the receivers of a weight sync sent by rank 0.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "framework/dist/communicator.h"
#include "framework/dist/weight_sync.h"
#include "tests/dist/mpi_test_util.h"
#include "tests/support/tiny_policy.h"
#include "workers/rollout/local_rollout.h"
#include "workers/trainer/local_trainer.h"
#include "workers/trainer/remote_trainer.h"
#include "workers/trainer/sharded_trainer.h"

namespace hone {
namespace {

using dist::mpitest::AllRanks;
using dist::mpitest::WorldRank;
using dist::mpitest::WorldSize;
using testing_support::TinyPolicy;

constexpr uint64_t kSeed = 21;

// 12 trajectories of different lengths, one fully masked, advantages and old log-probs
// a little off the policy. Identical on every rank (seeded).
Batch Trajectories() {
  Pretrained policy = TinyPolicy(kSeed);
  auto rollout = *LocalRollout::Create(policy);
  SamplingParams s;
  s.n = 4;
  s.max_new_tokens = 12;
  s.stop_token_ids = {0};
  s.seed = 5;
  auto prompts = *MakePromptBatch(*policy.tokenizer, {"1+2=?", "13-4+7=?", "5+5=?"}, {"3", "16", "10"}, 0);
  Batch batch = *rollout->Generate(prompts, s);
  auto mask = batch.tensor("response_mask").clone();
  mask[5].zero_();
  EXPECT_TRUE(batch.SetTensor("response_mask", mask).ok());
  torch::manual_seed(8);
  const int64_t N = batch.size(), T = mask.size(1);
  EXPECT_TRUE(batch.SetTensor("advantages", torch::randn({N, 1}) * mask).ok());
  EXPECT_TRUE(batch.SetTensor("old_logprobs", (batch.tensor("rollout_logprobs") + 0.2 * torch::randn({N, T})) * mask).ok());
  EXPECT_TRUE(batch.SetTensor("ref_logprobs", batch.tensor("rollout_logprobs") * 0.95).ok());
  return batch;
}

TrainerOptions Options(int64_t mini, const std::string& correction = "off") {
  TrainerOptions o;
  o.rollout_correction = correction;
  o.rollout_is_threshold = 1.5;
  // An update about linear in the gradient (see trainer_update_test.cc): float32
  // reduction-order noise stays noise instead of flipping Adam's sign-like first step.
  o.lr = 0.5;
  o.eps = 1.0;
  o.grad_clip = 0.05;  // small enough to clip: the global norm must be right
  o.kl_coef = 0.1;
  o.ppo_mini_batch_size = mini;
  o.micro_batch_size = 2;
  return o;
}

// This rank's share of an Update, cut as RemoteTrainer cuts it.
Batch ShareOf(const Batch& batch, int64_t mini, int rank, int ranks) {
  const int64_t N = batch.size();
  const int64_t m = mini > 0 ? std::min(mini, N) : N;
  std::vector<int64_t> rows;
  std::string counts;
  for (int64_t begin = 0; begin < N; begin += m) {
    const int64_t n = std::min(N, begin + m) - begin;
    int64_t start = begin;
    for (int r = 0; r < ranks; ++r) {
      const int64_t size = n / ranks + (r < n % ranks ? 1 : 0);
      if (r == rank) {
        for (int64_t i = start; i < start + size; ++i) rows.push_back(i);
        counts += (counts.empty() ? "" : ",") + std::to_string(size);
      }
      start += size;
    }
  }
  Batch share = *batch.Select(rows);
  share.meta[kMiniBatchRowsKey] = counts;
  return share;
}

// W trainer ranks make the update of one: parameters after two Updates (two mini-batches
// each, clipping, KL) equal the single-process trainer's to 1e-6.
TEST(ShardedTrainer, MatchesSingleProcessTrainer) {
  const int W = WorldSize(), rank = WorldRank();
  auto comm = dist::CreateMpiCommunicator(AllRanks(), "trainer", 60);
  ASSERT_TRUE(comm.ok()) << comm.status();
  const Batch batch = Trajectories();
  // The rollout correction's sums (weights, exceeded fractions, sequence KL) are
  // all-reduced like the loss terms: one mode with a real rollout/trainer mismatch.
  for (const auto& [mini, correction] : std::vector<std::pair<int64_t, std::string>>{{0, "off"}, {6, "off"},
                                                                                       {6, "tis_seq"}}) {
    auto sharded = ShardedPolicyTrainer::Create(TinyPolicy(kSeed), Options(mini, correction), comm->get(),
                                                dist::FsdpOptions{4096});
    ASSERT_TRUE(sharded.ok()) << sharded.status();
    auto local = *LocalPolicyTrainer::Create(TinyPolicy(kSeed), Options(mini, correction));
    for (int step = 0; step < 2; ++step) {
      auto lp = (*sharded)->ComputeLogProbs(ShareOf(batch, 0, rank, W));  // a plain row split works too
      ASSERT_TRUE(lp.ok()) << lp.status();
      auto sharded_metrics = (*sharded)->Update(ShareOf(batch, mini, rank, W));
      ASSERT_TRUE(sharded_metrics.ok()) << sharded_metrics.status();
      auto local_metrics = local->Update(batch);
      ASSERT_TRUE(local_metrics.ok());
      EXPECT_NEAR((*sharded_metrics)["policy_loss"], (*local_metrics)["policy_loss"], 1e-6);
      EXPECT_NEAR((*sharded_metrics)["grad_norm"], (*local_metrics)["grad_norm"], 1e-5);
      EXPECT_NEAR((*sharded_metrics)["kl"], (*local_metrics)["kl"], 1e-6);
      if (correction != "off") {
        for (const char* key : {"rollout_is_weight_mean", "rollout_is_truncated_fraction", "rollout_seq_kl"}) {
          ASSERT_TRUE(local_metrics->count(key)) << key;
          EXPECT_NEAR((*sharded_metrics)[key], (*local_metrics)[key], 1e-6) << key;
        }
      }
    }
    auto full = (*sharded)->FullWeights();
    ASSERT_TRUE(full.ok()) << full.status();
    auto expected = local->policy().model->named_parameters();
    double diff = 0;
    for (const auto& [name, tensor] : *full) diff = std::max(diff, (tensor - expected[name]).abs().max().item<double>());
    EXPECT_LT(diff, 1e-6) << "ppo_mini_batch_size " << mini << ", correction " << correction << " on " << W
                          << " ranks";
  }
}

// The policy's parameters plus tensors that span several 1 MiB checksum blocks and
// shared-memory slots (an odd byte count, an empty one), filled from `seed`.
dist::NamedWeights SyncWeights(uint64_t seed) {
  Pretrained policy = TinyPolicy(seed);
  dist::NamedWeights weights;
  for (const auto& item : policy.model->named_parameters()) {
    weights.emplace_back(item.key(), item.value().detach().clone());
  }
  torch::manual_seed(seed);
  weights.emplace_back("large", torch::randn({640 * 1024 + 3}));  // 2.5 MiB + 12 bytes
  weights.emplace_back("empty", torch::empty({0}));
  weights.emplace_back("bytes", torch::randint(0, 255, {(1 << 20) + 7}, torch::kUInt8));
  weights.emplace_back("last", torch::randn({5}));
  return weights;
}

// Every receiver holds the sender's weights bit for bit after BroadcastWeights, through
// shared memory (all ranks here are on one machine) and through Broadcast (as for a group
// across machines), with slots and buckets smaller than some tensors; the checksums agree
// on every rank, are the sender's TensorChecksum of each tensor, and are the same for
// both paths.
TEST(WeightSync, ReceiversHoldTheSendersWeightsExactlyOnBothPaths) {
  auto comm = dist::CreateMpiCommunicator(AllRanks(), "weight_sync", 60);
  ASSERT_TRUE(comm.ok()) << comm.status();
  const dist::NamedWeights expected = SyncWeights(kSeed);
  uint64_t expected_checksum = 1469598103934665603ULL;
  for (const auto& [name, tensor] : expected) {
    expected_checksum = (expected_checksum ^ dist::TensorChecksum(tensor)) * 1099511628211ULL;
  }
  for (bool shared : {true, false}) {
    dist::SetMpiSharedMemoryForTesting(shared);
    for (int64_t bucket_bytes : {int64_t{3000}, int64_t{256} << 20}) {
      SCOPED_TRACE(::testing::Message() << (shared ? "shared memory" : "broadcast") << ", bucket " << bucket_bytes);
      dist::NamedWeights weights = SyncWeights(WorldRank() == 0 ? kSeed : kSeed + 100 + WorldRank());
      auto stats = dist::BroadcastWeights(**comm, 0, weights, bucket_bytes);
      ASSERT_TRUE(stats.ok()) << stats.status();
      EXPECT_EQ(stats->shared_memory, shared && WorldSize() > 1);
      for (size_t i = 0; i < weights.size(); ++i) {
        EXPECT_TRUE(torch::equal(weights[i].second, expected[i].second)) << weights[i].first;
      }
      EXPECT_EQ(stats->checksum, expected_checksum);
      auto checksums = torch::tensor({static_cast<int64_t>(stats->checksum)}, torch::kInt64);
      auto all = torch::zeros({WorldSize()}, torch::kInt64);
      ASSERT_TRUE((*comm)->AllGather(checksums, all).ok());
      for (int r = 1; r < WorldSize(); ++r) EXPECT_EQ(all[r].item<int64_t>(), all[0].item<int64_t>());
      EXPECT_GT(stats->bytes, 3 << 20);
    }
  }
  dist::SetMpiSharedMemoryForTesting(true);
}

TEST(WeightSync, ChecksumSeesOneFlippedBit) {
  // A bit in the first block, in a later 1 MiB block, and in the tail after the last
  // 32-byte word.
  auto t = torch::randn({(3 << 18) + 3});
  for (int64_t index : {int64_t{417}, int64_t{(1 << 18) + 5}, t.numel() - 1}) {
    const uint64_t before = dist::TensorChecksum(t);
    auto bits = t.view(torch::kInt32);
    bits[index] = bits[index].item<int32_t>() ^ (1 << 3);
    EXPECT_NE(dist::TensorChecksum(t), before) << index;
  }
}

}  // namespace
}  // namespace hone

int main(int argc, char** argv) {
  if (int rc = hone::dist::mpitest::InitMpiAndGTest(&argc, &argv)) return rc;
  const int rc = RUN_ALL_TESTS();
  MPI_Finalize();
  return rc;
}
