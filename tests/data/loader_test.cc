// Deterministic shuffling, DataLoader state and held-out splits.
#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "framework/data/dataset.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hone::data {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

std::vector<Example> MakeExamples(int n) {
  std::vector<Example> examples(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    examples[static_cast<size_t>(i)].prompt = "q" + std::to_string(i);
    examples[static_cast<size_t>(i)].ground_truth = std::to_string(i);
    examples[static_cast<size_t>(i)].index = i;
  }
  return examples;
}

std::vector<int64_t> Indices(const std::vector<Example>& batch) {
  std::vector<int64_t> out;
  for (const Example& e : batch) out.push_back(e.index);
  return out;
}

bool IsPermutation(std::vector<int64_t> order, int64_t n) {
  if (static_cast<int64_t>(order.size()) != n) return false;
  std::sort(order.begin(), order.end());
  for (int64_t i = 0; i < n; ++i) {
    if (order[static_cast<size_t>(i)] != i) return false;
  }
  return true;
}

TEST(Shuffle, EngineIsTheStandardOne) {
  // The standard fixes mt19937_64's 10000th output from a default seed; our draws build
  // on nothing else, which is what makes the order portable.
  std::mt19937_64 rng;
  rng.discard(9999);
  EXPECT_EQ(rng(), 9981545732273789042ull);
}

TEST(Shuffle, UniformBelowRangeAndSpread) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(UniformBelow(rng, 1), 0u);
  std::vector<int> counts(6, 0);
  for (int i = 0; i < 60000; ++i) {
    uint64_t x = UniformBelow(rng, 6);
    ASSERT_LT(x, 6u);
    ++counts[x];
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 500);
  // A bound near 2^64 still works (most draws are rejected below the threshold).
  uint64_t big = (1ull << 63) + 12345;
  for (int i = 0; i < 100; ++i) EXPECT_LT(UniformBelow(rng, big), big);
}

TEST(Shuffle, PermutationDeterministicBySeedAndEpoch) {
  for (int64_t n : {0, 1, 2, 7, 100, 1000}) {
    EXPECT_TRUE(IsPermutation(ShuffledOrder(n, 42, 0), n)) << n;
    EXPECT_TRUE(IsPermutation(ShuffledOrder(n, 42, 5), n)) << n;
  }
  EXPECT_EQ(ShuffledOrder(100, 42, 3), ShuffledOrder(100, 42, 3));
  EXPECT_NE(ShuffledOrder(100, 42, 3), ShuffledOrder(100, 42, 4));
  EXPECT_NE(ShuffledOrder(100, 42, 3), ShuffledOrder(100, 43, 3));
}

constexpr int64_t kPinned00[] = {7, 5, 3, 2, 4, 8, 9, 6, 1, 0};
constexpr int64_t kPinned12347[] = {8, 9, 2, 0, 5, 1, 3, 6, 4, 7};

TEST(Shuffle, PinnedOrder) {
  // Regression pin: these orders go into checkpoints' resume logic, so a change to the
  // mixing or the draw must be deliberate. Values recorded from this implementation.
  EXPECT_THAT(ShuffledOrder(10, 0, 0), ElementsAreArray(kPinned00));
  EXPECT_THAT(ShuffledOrder(10, 1234, 7), ElementsAreArray(kPinned12347));
}

TEST(Shuffle, EveryPositionIsReachable) {
  // Over many epochs, element 0 lands in every slot, roughly uniformly.
  std::vector<int> where(5, 0);
  for (int64_t epoch = 0; epoch < 5000; ++epoch) {
    std::vector<int64_t> order = ShuffledOrder(5, 9, epoch);
    ++where[static_cast<size_t>(std::find(order.begin(), order.end(), 0) - order.begin())];
  }
  for (int w : where) EXPECT_NEAR(w, 1000, 150);
}

TEST(DataLoader, EpochCoversEveryExampleOnce) {
  DataLoader loader(MakeExamples(10), 3);
  std::vector<int64_t> epoch0 = Indices(loader.NextBatch(10));
  EXPECT_TRUE(IsPermutation(epoch0, 10));
  EXPECT_EQ(epoch0, ShuffledOrder(10, 3, 0));
  EXPECT_EQ(loader.State().epoch, 1);
  EXPECT_EQ(loader.State().position, 0);
  std::vector<int64_t> epoch1 = Indices(loader.NextBatch(10));
  EXPECT_EQ(epoch1, ShuffledOrder(10, 3, 1));
  EXPECT_NE(epoch0, epoch1);
}

TEST(DataLoader, BatchesWrapIntoTheNextEpoch) {
  DataLoader loader(MakeExamples(5), 11);
  std::vector<int64_t> e0 = ShuffledOrder(5, 11, 0), e1 = ShuffledOrder(5, 11, 1);
  EXPECT_EQ(Indices(loader.NextBatch(3)), (std::vector<int64_t>{e0[0], e0[1], e0[2]}));
  EXPECT_EQ(Indices(loader.NextBatch(3)), (std::vector<int64_t>{e0[3], e0[4], e1[0]}));
  EXPECT_EQ(loader.State().epoch, 1);
  EXPECT_EQ(loader.State().position, 1);
  // A batch larger than the dataset spans epochs too.
  std::vector<Example> big = loader.NextBatch(12);
  EXPECT_EQ(big.size(), 12u);
  EXPECT_EQ(loader.State().epoch, 3);
  EXPECT_EQ(loader.State().position, 3);
}

TEST(DataLoader, SaveAndRestoreResumesIdentically) {
  DataLoader original(MakeExamples(13), 99);
  for (int i = 0; i < 4; ++i) original.NextBatch(5);  // 20 draws: epoch 1, position 7
  LoaderState saved = original.State();
  EXPECT_EQ(saved.epoch, 1);
  EXPECT_EQ(saved.position, 7);
  std::vector<std::vector<int64_t>> expected;
  for (int i = 0; i < 6; ++i) expected.push_back(Indices(original.NextBatch(5)));

  DataLoader resumed(MakeExamples(13), 99);
  ASSERT_TRUE(resumed.Restore(saved).ok());
  EXPECT_EQ(resumed.State().epoch, saved.epoch);
  EXPECT_EQ(resumed.State().position, saved.position);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(Indices(resumed.NextBatch(5)), expected[static_cast<size_t>(i)]);
}

TEST(DataLoader, RestoreValidatesAndNormalises) {
  DataLoader loader(MakeExamples(4), 1);
  EXPECT_FALSE(loader.Restore({-1, 0}).ok());
  EXPECT_FALSE(loader.Restore({0, -1}).ok());
  EXPECT_FALSE(loader.Restore({0, 5}).ok());
  ASSERT_TRUE(loader.Restore({2, 4}).ok());  // the end of epoch 2 is the start of epoch 3
  EXPECT_EQ(loader.State().epoch, 3);
  EXPECT_EQ(loader.State().position, 0);
  EXPECT_EQ(Indices(loader.NextBatch(4)), ShuffledOrder(4, 1, 3));
}

TEST(DataLoader, NoShuffleKeepsOrder) {
  DataLoader loader(MakeExamples(3), 5, /*shuffle=*/false);
  EXPECT_THAT(Indices(loader.NextBatch(7)), ElementsAre(0, 1, 2, 0, 1, 2, 0));
}

TEST(DataLoader, EmptyAndZeroBatches) {
  DataLoader empty({}, 5);
  EXPECT_TRUE(empty.NextBatch(4).empty());
  EXPECT_TRUE(empty.Restore({0, 0}).ok());
  DataLoader loader(MakeExamples(3), 5);
  EXPECT_TRUE(loader.NextBatch(0).empty());
  EXPECT_EQ(loader.State().position, 0);
}

TEST(SplitHeldOut, DisjointCompleteDeterministic) {
  absl::StatusOr<Split> split = SplitHeldOut(MakeExamples(50), 12, 7);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->held_out.size(), 12u);
  EXPECT_EQ(split->train.size(), 38u);
  std::vector<int64_t> all = Indices(split->train);
  std::vector<int64_t> held = Indices(split->held_out);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
  EXPECT_TRUE(std::is_sorted(held.begin(), held.end()));
  all.insert(all.end(), held.begin(), held.end());
  EXPECT_TRUE(IsPermutation(all, 50));
  EXPECT_EQ(Indices(SplitHeldOut(MakeExamples(50), 12, 7)->held_out), held);
  EXPECT_NE(Indices(SplitHeldOut(MakeExamples(50), 12, 8)->held_out), held);
  // The held-out set is not simply the first or last examples.
  EXPECT_NE(held.front(), 0);
  EXPECT_FALSE(held.front() == 38 && held.back() == 49);
}

TEST(SplitHeldOut, Bounds) {
  EXPECT_EQ(SplitHeldOut(MakeExamples(5), 0, 1)->train.size(), 5u);
  EXPECT_EQ(SplitHeldOut(MakeExamples(5), 5, 1)->held_out.size(), 5u);
  EXPECT_FALSE(SplitHeldOut(MakeExamples(5), 6, 1).ok());
  EXPECT_FALSE(SplitHeldOut(MakeExamples(5), -1, 1).ok());
}

}  // namespace
}  // namespace hone::data
