// Every rule of the boxed_integer contract (framework/reward/reward.h), one group each,
// with expected values worked out by hand.
#include "framework/reward/reward.h"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_data.h"
#include "nlohmann/json.hpp"

namespace hone::reward {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

std::string TestData() { return testing_support::TestDataDir(); }

// --- ExtractLastBoxed ---

TEST(ExtractLastBoxed, SimpleBox) {
  EXPECT_THAT(ExtractLastBoxed("so the answer is \\boxed{42}."), Optional(std::string("42")));
}

TEST(ExtractLastBoxed, LastBoxWins) {
  EXPECT_THAT(ExtractLastBoxed("\\boxed{1} then \\boxed{2} finally \\boxed{3} done"),
              Optional(std::string("3")));
}

TEST(ExtractLastBoxed, NestedBracesAreBalanced) {
  EXPECT_THAT(ExtractLastBoxed("\\boxed{\\text{42}}"), Optional(std::string("\\text{42}")));
  EXPECT_THAT(ExtractLastBoxed("\\boxed{\\frac{84}{2}} rest"),
              Optional(std::string("\\frac{84}{2}")));
}

TEST(ExtractLastBoxed, EscapedBracesDoNotCount) {
  EXPECT_THAT(ExtractLastBoxed("\\boxed{\\{1\\}} x"), Optional(std::string("\\{1\\}")));
}

TEST(ExtractLastBoxed, UnclosedLastBoxRunsToEnd) {
  EXPECT_THAT(ExtractLastBoxed("\\boxed{7} and then \\boxed{12"), Optional(std::string("12")));
  EXPECT_THAT(ExtractLastBoxed("\\boxed{\\text{3}"), Optional(std::string("\\text{3}")));
  EXPECT_THAT(ExtractLastBoxed("cut here \\boxed{"), Optional(std::string("")));
}

TEST(ExtractLastBoxed, NoBox) {
  EXPECT_EQ(ExtractLastBoxed("the answer is 42"), std::nullopt);
  // `\boxed 42` (LaTeX without braces) is not a `\boxed{`.
  EXPECT_EQ(ExtractLastBoxed("\\boxed 42"), std::nullopt);
}

TEST(CountBoxes, CountsTotalAndComplete) {
  BoxCount c = CountBoxes("\\boxed{1} \\boxed{2");
  EXPECT_EQ(c.total, 2);
  EXPECT_EQ(c.complete, 1);
  c = CountBoxes("\\boxed{\\boxed{5}}");
  EXPECT_EQ(c.total, 2);
  EXPECT_EQ(c.complete, 2);
  c = CountBoxes("nothing");
  EXPECT_EQ(c.total, 0);
}

// --- NormalizeInteger: one test per rule ---

TEST(NormalizeInteger, PlainIntegers) {
  EXPECT_THAT(NormalizeInteger("42"), Optional(int64_t{42}));
  EXPECT_THAT(NormalizeInteger("0"), Optional(int64_t{0}));
  EXPECT_THAT(NormalizeInteger("007"), Optional(int64_t{7}));
}

TEST(NormalizeInteger, DropsWhitespace) {
  EXPECT_THAT(NormalizeInteger("  42 \n"), Optional(int64_t{42}));
  EXPECT_THAT(NormalizeInteger("1 234"), Optional(int64_t{1234}));
  EXPECT_THAT(NormalizeInteger("- 5"), Optional(int64_t{-5}));
}

TEST(NormalizeInteger, DropsDollarSigns) {
  EXPECT_THAT(NormalizeInteger("$42$"), Optional(int64_t{42}));
  EXPECT_THAT(NormalizeInteger("\\$42"), Optional(int64_t{42}));
  EXPECT_THAT(NormalizeInteger("\\$1,000"), Optional(int64_t{1000}));
}

TEST(NormalizeInteger, DropsThinSpaces) {
  EXPECT_THAT(NormalizeInteger("1\\,234"), Optional(int64_t{1234}));
  EXPECT_THAT(NormalizeInteger("1\\!234"), Optional(int64_t{1234}));
}

TEST(NormalizeInteger, UnwrapsTextAndMathrm) {
  EXPECT_THAT(NormalizeInteger("\\text{42}"), Optional(int64_t{42}));
  EXPECT_THAT(NormalizeInteger("\\mathrm{42}"), Optional(int64_t{42}));
  EXPECT_THAT(NormalizeInteger("\\text{\\mathrm{-7}}"), Optional(int64_t{-7}));
  EXPECT_THAT(NormalizeInteger("\\text{\\$}42"), Optional(int64_t{42}));
  EXPECT_EQ(NormalizeInteger("\\text{42"), std::nullopt);  // unclosed wrapper
  EXPECT_EQ(NormalizeInteger("42\\text{ apples}"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("\\textbf{42}"), std::nullopt);  // only \text and \mathrm
}

TEST(NormalizeInteger, ThousandsSeparators) {
  EXPECT_THAT(NormalizeInteger("1,234"), Optional(int64_t{1234}));
  EXPECT_THAT(NormalizeInteger("12,345,678"), Optional(int64_t{12345678}));
  EXPECT_THAT(NormalizeInteger("-1,000"), Optional(int64_t{-1000}));
  EXPECT_EQ(NormalizeInteger("1,23"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("1,2345"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("1234,567"), std::nullopt);
  EXPECT_EQ(NormalizeInteger(",123"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("1,,234"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("1,234,"), std::nullopt);
}

TEST(NormalizeInteger, LeadingSign) {
  EXPECT_THAT(NormalizeInteger("+42"), Optional(int64_t{42}));
  EXPECT_THAT(NormalizeInteger("-42"), Optional(int64_t{-42}));
  EXPECT_THAT(NormalizeInteger("-0"), Optional(int64_t{0}));
  EXPECT_EQ(NormalizeInteger("--42"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("+-42"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("42-"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("-"), std::nullopt);
}

TEST(NormalizeInteger, ZeroFractionIsInteger) {
  EXPECT_THAT(NormalizeInteger("42.0"), Optional(int64_t{42}));
  EXPECT_THAT(NormalizeInteger("42.000"), Optional(int64_t{42}));
  EXPECT_THAT(NormalizeInteger("1,234.00"), Optional(int64_t{1234}));
  EXPECT_THAT(NormalizeInteger("-3.0"), Optional(int64_t{-3}));
  EXPECT_EQ(NormalizeInteger("42.5"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("42.01"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("42."), std::nullopt);
  EXPECT_EQ(NormalizeInteger(".0"), std::nullopt);
}

TEST(NormalizeInteger, NonIntegers) {
  EXPECT_EQ(NormalizeInteger(""), std::nullopt);
  EXPECT_EQ(NormalizeInteger("   "), std::nullopt);
  EXPECT_EQ(NormalizeInteger("\\frac{84}{2}"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("40+2"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("4e1"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("0x2A"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("forty-two"), std::nullopt);
}

TEST(NormalizeInteger, Int64Range) {
  EXPECT_THAT(NormalizeInteger("9223372036854775807"),
              Optional(std::numeric_limits<int64_t>::max()));
  EXPECT_THAT(NormalizeInteger("-9223372036854775808"),
              Optional(std::numeric_limits<int64_t>::min()));
  EXPECT_EQ(NormalizeInteger("9223372036854775808"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("-9223372036854775809"), std::nullopt);
  EXPECT_EQ(NormalizeInteger("99999999999999999999999"), std::nullopt);
}

// --- ExtractLastInteger (the last_integer fallback) ---

TEST(ExtractLastInteger, TakesTheLastNumber) {
  EXPECT_THAT(ExtractLastInteger("3 apples and 5 pears, so 8"), Optional(std::string("8")));
  EXPECT_THAT(ExtractLastInteger("The answer is 42."), Optional(std::string("42")));
  EXPECT_EQ(ExtractLastInteger("no digits here"), std::nullopt);
  EXPECT_EQ(ExtractLastInteger(""), std::nullopt);
}

TEST(ExtractLastInteger, SignCountsUnlessItIsSubtraction) {
  EXPECT_THAT(ExtractLastInteger("the answer is -5"), Optional(std::string("-5")));
  EXPECT_THAT(ExtractLastInteger("-5"), Optional(std::string("-5")));
  EXPECT_THAT(ExtractLastInteger("x=(-5)"), Optional(std::string("-5")));
  EXPECT_THAT(ExtractLastInteger("so +7"), Optional(std::string("+7")));
  EXPECT_THAT(ExtractLastInteger("10-5"), Optional(std::string("5")));
  EXPECT_THAT(ExtractLastInteger("x-5"), Optional(std::string("5")));
  EXPECT_THAT(ExtractLastInteger("(2)-5"), Optional(std::string("5")));
}

TEST(ExtractLastInteger, ThousandsSeparatorsAndDecimals) {
  EXPECT_THAT(ExtractLastInteger("costs $1,234 in total"), Optional(std::string("1,234")));
  EXPECT_THAT(ExtractLastInteger("about 12,345,678."), Optional(std::string("12,345,678")));
  EXPECT_THAT(ExtractLastInteger("1,2,3"), Optional(std::string("3")));
  EXPECT_THAT(ExtractLastInteger("1,23"), Optional(std::string("23")));
  EXPECT_THAT(ExtractLastInteger("5, 6"), Optional(std::string("6")));
  EXPECT_THAT(ExtractLastInteger("it is 3.5"), Optional(std::string("3.5")));
  EXPECT_THAT(ExtractLastInteger("it is 42.0 now"), Optional(std::string("42.0")));
}

// --- ParseGroundTruth ---

TEST(ParseGroundTruth, IntegerStrings) {
  EXPECT_THAT(ParseGroundTruth("72"), absl::StatusOr<int64_t>(72));
  EXPECT_EQ(*ParseGroundTruth(" -3 "), -3);
  EXPECT_EQ(*ParseGroundTruth("1,234"), 1234);
}

TEST(ParseGroundTruth, Gsm8kAnswers) {
  EXPECT_EQ(*ParseGroundTruth("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72"), 72);
  EXPECT_EQ(*ParseGroundTruth("steps\n#### 1,234"), 1234);
  EXPECT_EQ(*ParseGroundTruth("steps\n#### -10"), -10);
  EXPECT_EQ(*ParseGroundTruth("a #### 5 then\n#### 6\n"), 6);  // the last marker counts
}

TEST(ParseGroundTruth, Errors) {
  for (const char* bad : {"", "abc", "42.5", "1,23", "steps\n####", "steps\n#### x", "#### 5 apples",
                          "\\boxed{5}", "$5"}) {
    absl::StatusOr<int64_t> parsed = ParseGroundTruth(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) {
      EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("ground truth")) << bad;
    }
  }
}

TEST(ParseGroundTruth, EveryGsm8kLineParses) {
  int lines = 0;
  for (const char* split : {"train", "test"}) {
    std::string path = TestData() + "/gsm8k/" + split + ".jsonl";
    std::ifstream in(path);
    ASSERT_TRUE(in) << "cannot open " << path;
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      ++lines;
      auto record = nlohmann::json::parse(line);
      absl::StatusOr<int64_t> gt = ParseGroundTruth(record.at("answer").get<std::string>());
      EXPECT_TRUE(gt.ok()) << path << ":" << line_no << ": " << gt.status();
    }
  }
  EXPECT_EQ(lines, 8792);
}

// --- ScoreBoxedInteger: the full contract ---

RewardOptions Defaults() { return RewardOptions{}; }

TEST(ScoreBoxedInteger, CorrectWithFormat) {
  RewardResult r = ScoreBoxedInteger("7+12=19. \\boxed{19}", 19, Defaults());
  EXPECT_EQ(r.correct, 1.0);
  EXPECT_EQ(r.format, 1.0);
  EXPECT_DOUBLE_EQ(r.total, 1.1);
  EXPECT_THAT(r.extracted, Optional(std::string("19")));
  EXPECT_THAT(r.answer, Optional(int64_t{19}));
}

TEST(ScoreBoxedInteger, WrongIntegerStillHasFormat) {
  RewardResult r = ScoreBoxedInteger("\\boxed{18}", 19, Defaults());
  EXPECT_EQ(r.correct, 0.0);
  EXPECT_EQ(r.format, 1.0);
  EXPECT_DOUBLE_EQ(r.total, 0.1);
}

TEST(ScoreBoxedInteger, NormalisedBoxContent) {
  EXPECT_EQ(ScoreBoxedInteger("\\boxed{\\text{42}}", 42, Defaults()).total, 1.1);
  EXPECT_EQ(ScoreBoxedInteger("\\boxed{\\$1,234.00}", 1234, Defaults()).total, 1.1);
  EXPECT_EQ(ScoreBoxedInteger("\\boxed{ -5 }", -5, Defaults()).total, 1.1);
  EXPECT_EQ(ScoreBoxedInteger("\\boxed{+5}", 5, Defaults()).total, 1.1);
}

TEST(ScoreBoxedInteger, NonIntegerBoxIsWrongAndUnformatted) {
  for (const char* response : {"\\boxed{42.5}", "\\boxed{\\frac{84}{2}}", "\\boxed{40+2}",
                               "\\boxed{}", "\\boxed{1,23}"}) {
    RewardResult r = ScoreBoxedInteger(response, 42, Defaults());
    EXPECT_EQ(r.correct, 0.0) << response;
    EXPECT_EQ(r.format, 0.0) << response;
    EXPECT_EQ(r.total, 0.0) << response;
    EXPECT_EQ(r.answer, std::nullopt) << response;
  }
}

TEST(ScoreBoxedInteger, BoxedNonIntegerDoesNotFallBack) {
  // A box exists, so the 42 elsewhere in the text must not rescue it.
  RewardResult r = ScoreBoxedInteger("I think 42. \\boxed{forty-two}", 42, Defaults());
  EXPECT_EQ(r.correct, 0.0);
  EXPECT_THAT(r.extracted, Optional(std::string("forty-two")));
}

TEST(ScoreBoxedInteger, LastBoxWinsButTwoBoxesLoseFormat) {
  RewardResult r = ScoreBoxedInteger("\\boxed{3} no wait \\boxed{4}", 4, Defaults());
  EXPECT_EQ(r.correct, 1.0);
  EXPECT_EQ(r.format, 0.0);
  EXPECT_DOUBLE_EQ(r.total, 1.0);
  r = ScoreBoxedInteger("\\boxed{4} no wait \\boxed{3}", 4, Defaults());
  EXPECT_EQ(r.correct, 0.0);
  EXPECT_EQ(r.format, 0.0);
}

TEST(ScoreBoxedInteger, UnclosedLastBox) {
  // Output cut at max length: the content runs to the end and may still be right.
  RewardResult r = ScoreBoxedInteger("so the answer is \\boxed{42", 42, Defaults());
  EXPECT_EQ(r.correct, 1.0);
  EXPECT_EQ(r.format, 0.0);
  EXPECT_DOUBLE_EQ(r.total, 1.0);
  // A complete box followed by an unclosed one: the unclosed one is the answer.
  r = ScoreBoxedInteger("\\boxed{41} hmm \\boxed{42", 41, Defaults());
  EXPECT_EQ(r.correct, 0.0);
  EXPECT_EQ(r.format, 0.0);
  EXPECT_THAT(r.extracted, Optional(std::string("42")));
}

TEST(ScoreBoxedInteger, FallbackLastInteger) {
  RewardResult r = ScoreBoxedInteger("7+12=19. 19-5=14", 14, Defaults());
  EXPECT_EQ(r.correct, 1.0);
  EXPECT_EQ(r.format, 0.0);
  EXPECT_DOUBLE_EQ(r.total, 1.0);
  EXPECT_THAT(r.extracted, Optional(std::string("14")));
  EXPECT_EQ(ScoreBoxedInteger("the answer is -5", -5, Defaults()).correct, 1.0);
  EXPECT_EQ(ScoreBoxedInteger("total: $1,234.", 1234, Defaults()).correct, 1.0);
  EXPECT_EQ(ScoreBoxedInteger("it is 3.5", 5, Defaults()).correct, 0.0);
  RewardResult none = ScoreBoxedInteger("no number", 5, Defaults());
  EXPECT_EQ(none.extracted, std::nullopt);
  EXPECT_EQ(none.total, 0.0);
}

TEST(ScoreBoxedInteger, FallbackNone) {
  RewardOptions options;
  options.fallback = "none";
  RewardResult r = ScoreBoxedInteger("7+12=19. 19-5=14", 14, options);
  EXPECT_EQ(r.correct, 0.0);
  EXPECT_EQ(r.total, 0.0);
  EXPECT_EQ(r.extracted, std::nullopt);
  // `none` changes nothing when a box exists.
  EXPECT_EQ(ScoreBoxedInteger("\\boxed{14}", 14, options).total, 1.1);
}

TEST(ScoreBoxedInteger, Weights) {
  RewardOptions options;
  options.correct_weight = 2.0;
  options.format_weight = 0.5;
  EXPECT_DOUBLE_EQ(ScoreBoxedInteger("\\boxed{3}", 3, options).total, 2.5);
  EXPECT_DOUBLE_EQ(ScoreBoxedInteger("\\boxed{4}", 3, options).total, 0.5);
  EXPECT_DOUBLE_EQ(ScoreBoxedInteger("3", 3, options).total, 2.0);
}

// --- options and registries ---

TEST(RewardOptions, Validation) {
  EXPECT_TRUE(ValidateRewardOptions(RewardOptions{}).ok());
  RewardOptions bad;
  bad.fallback = "first_integer";
  absl::Status status = ValidateRewardOptions(bad);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("last_integer, none"));
  RewardOptions nan;
  nan.format_weight = std::numeric_limits<double>::quiet_NaN();
  EXPECT_FALSE(ValidateRewardOptions(nan).ok());
}

TEST(Registry, NamesAndLookup) {
  EXPECT_THAT(RewardFnNames(), ElementsAre("boxed_integer", "format"));
  EXPECT_THAT(FallbackNames(), ElementsAre("last_integer", "none"));
  EXPECT_EQ(FindRewardFn("nope"), nullptr);
  absl::StatusOr<RewardFn> missing = GetRewardFn("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("boxed_integer, format"));

  const RewardFn* correct = FindRewardFn("boxed_integer");
  const RewardFn* format = FindRewardFn("format");
  ASSERT_NE(correct, nullptr);
  ASSERT_NE(format, nullptr);
  RewardOptions options;
  EXPECT_EQ((*correct)("\\boxed{1} \\boxed{2}", 2, options), 1.0);
  EXPECT_EQ((*format)("\\boxed{1} \\boxed{2}", 2, options), 0.0);
  EXPECT_EQ((*correct)("\\boxed{5}", 2, options), 0.0);
  EXPECT_EQ((*format)("\\boxed{5}", 2, options), 1.0);
}

TEST(Registry, WeightsAndWeightedTotal) {
  RewardOptions options;
  options.correct_weight = 3.0;
  options.format_weight = 0.25;
  EXPECT_EQ(*RewardFnWeight("boxed_integer", options), 3.0);
  EXPECT_EQ(*RewardFnWeight("format", options), 0.25);
  EXPECT_FALSE(RewardFnWeight("nope", options).ok());

  const std::vector<std::string> both = {"boxed_integer", "format"};
  for (const char* response : {"\\boxed{7}", "\\boxed{6}", "7", "\\boxed{7} \\boxed{7}", "none"}) {
    EXPECT_DOUBLE_EQ(*WeightedTotal(both, response, 7, options),
                     ScoreBoxedInteger(response, 7, options).total)
        << response;
  }
  EXPECT_DOUBLE_EQ(*WeightedTotal({"format"}, "\\boxed{6}", 7, options), 0.25);
  EXPECT_DOUBLE_EQ(*WeightedTotal({"boxed_integer"}, "\\boxed{7}", 7, options), 3.0);
  EXPECT_DOUBLE_EQ(*WeightedTotal({}, "\\boxed{7}", 7, options), 0.0);
  EXPECT_FALSE(WeightedTotal({"format", "nope"}, "x", 7, options).ok());
}

}  // namespace
}  // namespace hone::reward
