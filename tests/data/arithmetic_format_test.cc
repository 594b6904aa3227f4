// data.arithmetic.unboxed_fraction: some reference solutions without \\boxed{}, the
// problems themselves unchanged.
#include <gtest/gtest.h>

#include "framework/data/dataset.h"
#include "framework/reward/reward.h"

namespace hone::data {
namespace {

TEST(ArithmeticFormatTest, UnboxedFractionDropsOnlyTheBox) {
  DatasetOptions boxed;
  boxed.num_examples = 400;
  boxed.seed = 11;
  DatasetOptions mixed = boxed;
  mixed.unboxed_fraction = 0.5;
  auto a = GenerateArithmetic(boxed);
  auto b = GenerateArithmetic(mixed);
  ASSERT_TRUE(a.ok() && b.ok());
  int unboxed = 0;
  reward::RewardOptions strict;
  strict.fallback = "none";
  for (size_t i = 0; i < a->size(); ++i) {
    const Example& x = (*a)[i];
    const Example& y = (*b)[i];
    EXPECT_EQ(x.prompt, y.prompt);
    EXPECT_EQ(x.ground_truth, y.ground_truth);
    if (y.solution == x.solution) continue;
    ++unboxed;
    EXPECT_EQ(y.solution.find("\\boxed{"), std::string::npos) << y.solution;
    // The same equations, ending with the period of the last one.
    EXPECT_EQ(x.solution.rfind(y.solution, 0), 0u) << x.solution << " vs " << y.solution;
    EXPECT_EQ(y.solution.back(), '.');
    // Strict scoring gives no credit without the box; the fallback reads the last integer.
    const int64_t truth = std::stoll(y.ground_truth);
    EXPECT_EQ(reward::ScoreBoxedInteger(y.solution, truth, strict).correct, 0.0);
    EXPECT_EQ(reward::ScoreBoxedInteger(y.solution, truth, reward::RewardOptions{}).correct, 1.0);
  }
  EXPECT_GT(unboxed, 150);  // 400 draws at p = 0.5: 200 +- 10 (std), so far inside
  EXPECT_LT(unboxed, 250);
  mixed.unboxed_fraction = 1.5;
  EXPECT_FALSE(GenerateArithmetic(mixed).ok());
}

}  // namespace
}  // namespace hone::data
