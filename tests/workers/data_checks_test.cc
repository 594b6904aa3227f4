// Load-time data checks: overlong prompts are dropped (counted) or refused naming the
// example, and SFT examples that do not fit the model are refused before training.
#include "workers/controller/data_checks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace hone {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Tokenizer> CharTokenizer() {
  std::vector<std::string> symbols;
  for (char c : data::ArithmeticCharset()) symbols.push_back(std::string(1, c));
  auto json = MakeCharLevelTokenizerJson(symbols, {"<|endoftext|>"});
  EXPECT_TRUE(json.ok());
  auto tokenizer = TokenizerFromJson(*json);
  EXPECT_TRUE(tokenizer.ok());
  return *std::move(tokenizer);
}

data::DataSplits Splits() {
  data::DataSplits splits;
  // Raw template, one token per character: prompts of 4, 8 and 12 tokens.
  splits.train = {{"1+2=", "\\boxed{3}", "3", 0}, {"1+2+3+4=", "\\boxed{10}", "10", 1}, {"1+1+1+1+1+1=", "6", "6", 2}};
  splits.held_out = {{"10+20+30+4=", "\\boxed{64}", "64", 3}};
  return splits;
}

Config Make(std::vector<std::string> overrides) {
  overrides.push_back("data.prompt_template=raw");
  auto config = Config::Load(HoneConfigSchema(), "", overrides);
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

TEST(DataChecksTest, OverlongPromptIsAnErrorNamingTheExample) {
  auto tokenizer = CharTokenizer();
  data::DataSplits splits = Splits();
  absl::Status status = CheckPromptLengths(Make({"data.max_prompt_length=8"}), *tokenizer, 1000, splits);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("training example 2 has a 12-token prompt"));
  EXPECT_THAT(status.message(), HasSubstr("data.max_prompt_length=8"));
  EXPECT_THAT(status.message(), HasSubstr("data.filter_overlong_prompts=true"));
}

TEST(DataChecksTest, FilterDropsOverlongPrompts) {
  auto tokenizer = CharTokenizer();
  data::DataSplits splits = Splits();
  ASSERT_TRUE(CheckPromptLengths(Make({"data.max_prompt_length=8", "data.filter_overlong_prompts=true"}),
                                 *tokenizer, 1000, splits).ok());
  EXPECT_EQ(splits.train.size(), 2u);
  EXPECT_TRUE(splits.held_out.empty());
}

TEST(DataChecksTest, ModelPositionsBoundThePromptToo) {
  auto tokenizer = CharTokenizer();
  data::DataSplits splits = Splits();
  // 20 positions - 10 new tokens leave 10 for the prompt: the 12-token one does not fit.
  absl::Status status = CheckPromptLengths(Make({"rollout.max_new_tokens=10"}), *tokenizer, 20, splits);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("max_position_embeddings=20 minus rollout.max_new_tokens=10"));
  status = CheckPromptLengths(Make({"rollout.max_new_tokens=20"}), *tokenizer, 20, splits);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("rollout.max_new_tokens=20 leaves no room"));
}

TEST(DataChecksTest, SftExampleLongerThanTheModelIsAnError) {
  auto tokenizer = CharTokenizer();
  data::DataSplits splits = Splits();
  EXPECT_TRUE(CheckSftLengths(Make({}), *tokenizer, 64, splits.train).ok());
  absl::Status status = CheckSftLengths(Make({}), *tokenizer, 16, splits.train);
  ASSERT_FALSE(status.ok());
  // "1+2+3+4=" + "\boxed{10}" + end-of-text = 8 + 10 + 1 tokens.
  EXPECT_THAT(status.message(), HasSubstr("training example 1 is 19 tokens"));
  EXPECT_THAT(status.message(), HasSubstr("max_position_embeddings=16"));
}

}  // namespace
}  // namespace hone
