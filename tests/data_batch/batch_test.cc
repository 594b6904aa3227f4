#include "framework/data/batch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace hone {
namespace {

Batch MakeBatch(int64_t rows, int64_t offset) {
  Batch b;
  EXPECT_TRUE(b.SetTensor("ids", torch::arange(offset, offset + rows * 3).view({rows, 3})).ok());
  std::vector<std::string> text;
  std::vector<int64_t> group;
  for (int64_t i = 0; i < rows; ++i) {
    text.push_back("row" + std::to_string(offset / 3 + i));
    group.push_back(offset / 3 + i);
  }
  EXPECT_TRUE(b.SetStrings("prompt", text).ok());
  EXPECT_TRUE(b.SetInts("group", group).ok());
  b.meta["step"] = "7";
  return b;
}

TEST(BatchTest, SizesMustAgree) {
  Batch b = MakeBatch(4, 0);
  EXPECT_EQ(b.size(), 4);
  auto status = b.SetInts("bad", {1, 2, 3});
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), ::testing::HasSubstr("'bad' has 3 rows, the batch has 4"));
  EXPECT_FALSE(b.SetTensor("bad", torch::zeros({5, 2})).ok());
  EXPECT_TRUE(b.Validate().ok());
  EXPECT_FALSE(b.Require({"ids", "missing"}).ok());
}

TEST(BatchTest, SelectSplitConcatRoundTrip) {
  Batch b = MakeBatch(7, 0);
  auto pieces = b.Split(3);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].size(), 3);
  EXPECT_EQ(pieces[1].size(), 2);
  EXPECT_EQ(pieces[2].size(), 2);
  EXPECT_EQ(pieces[1].meta.at("step"), "7");
  auto joined = Batch::Concat(pieces);
  ASSERT_TRUE(joined.ok());
  EXPECT_TRUE(torch::equal(joined->tensor("ids"), b.tensor("ids")));
  EXPECT_EQ(joined->strings("prompt"), b.strings("prompt"));
  EXPECT_EQ(joined->ints("group"), b.ints("group"));

  auto picked = b.Select({6, 0, 3});
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(picked->ints("group"), (std::vector<int64_t>{6, 0, 3}));
  EXPECT_EQ(picked->tensor("ids")[0][0].item<int64_t>(), 18);
  EXPECT_FALSE(b.Select({7}).ok());
}

TEST(BatchTest, ConcatRejectsMismatchedColumns) {
  Batch a = MakeBatch(2, 0);
  Batch c = MakeBatch(2, 6);
  ASSERT_TRUE(c.SetInts("extra", {1, 2}).ok());
  EXPECT_FALSE(Batch::Concat({a, c}).ok());
  Batch d = MakeBatch(2, 6);
  ASSERT_TRUE(d.SetTensor("ids", torch::zeros({2, 4}, torch::kInt64)).ok());
  EXPECT_FALSE(Batch::Concat({a, d}).ok());
}

}  // namespace
}  // namespace hone
