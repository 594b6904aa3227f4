// The evaluator: Pass@k against binomials, whole-word counting, seeded subsets, option
// validation, and Evaluate end to end on a tiny random model with a char-level tokenizer,
// its metrics recomputed here from the decoded responses.
#include "workers/eval/evaluator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "framework/core/config.h"

namespace hone::eval {
namespace {

using ::testing::HasSubstr;

// --- Pass@k ---

// C(n-c,k)/C(n,k) in float64 through lgamma: an independent reference.
double PassAtKReference(int64_t n, int64_t c, int64_t k) {
  if (n - c < k) return 1.0;
  auto log_choose = [](double a, double b) {
    return std::lgamma(a + 1) - std::lgamma(b + 1) - std::lgamma(a - b + 1);
  };
  return 1.0 - std::exp(log_choose(n - c, k) - log_choose(n, k));
}

TEST(PassAtKTest, SmallClosedForms) {
  EXPECT_DOUBLE_EQ(PassAtK(5, 2, 1), 0.4);
  EXPECT_DOUBLE_EQ(PassAtK(5, 2, 2), 1.0 - 3.0 / 10.0);   // 1 - C(3,2)/C(5,2)
  EXPECT_DOUBLE_EQ(PassAtK(5, 2, 3), 1.0 - 1.0 / 10.0);   // 1 - C(3,3)/C(5,3)
  EXPECT_DOUBLE_EQ(PassAtK(5, 0, 1), 0.0);
  EXPECT_DOUBLE_EQ(PassAtK(5, 0, 5), 0.0);
  EXPECT_DOUBLE_EQ(PassAtK(5, 3, 3), 1.0);  // n - c = 2 < k
  EXPECT_DOUBLE_EQ(PassAtK(5, 5, 1), 1.0);
  EXPECT_DOUBLE_EQ(PassAtK(1, 1, 1), 1.0);
  EXPECT_DOUBLE_EQ(PassAtK(1, 0, 1), 0.0);
  EXPECT_NEAR(PassAtK(8, 1, 8), 1.0, 1e-15);  // n - c = 7 < 8
  EXPECT_NEAR(PassAtK(10, 3, 1), 0.3, 1e-15);  // pass@1 = c/n
}

TEST(PassAtKTest, MatchesLgammaReferenceForLargeN) {
  for (int64_t n : {16, 100, 200, 1000}) {
    for (int64_t c : {int64_t{1}, n / 7, n / 2, n - 3}) {
      for (int64_t k : {int64_t{1}, int64_t{2}, n / 10, n / 4}) {
        if (k < 1) continue;
        const double got = PassAtK(n, c, k);
        const double want = PassAtKReference(n, c, k);
        ASSERT_TRUE(std::isfinite(got));
        EXPECT_NEAR(got, want, 1e-10 + 1e-9 * std::abs(want)) << "n=" << n << " c=" << c << " k=" << k;
        EXPECT_GE(got, 0.0);
        EXPECT_LE(got, 1.0);
      }
    }
  }
}

// --- reflection words ---

TEST(CountWholeWordTest, WholeWordsOnlyCaseSensitive) {
  EXPECT_EQ(CountWholeWord("Wait, no", "Wait"), 1);
  EXPECT_EQ(CountWholeWord("Waited", "Wait"), 0);
  EXPECT_EQ(CountWholeWord("AWait", "Wait"), 0);
  EXPECT_EQ(CountWholeWord("Wait_x Wait2", "Wait"), 0);
  EXPECT_EQ(CountWholeWord("wait WAIT", "Wait"), 0);
  EXPECT_EQ(CountWholeWord("Wait. (Wait) Wait!\nWait", "Wait"), 4);
  EXPECT_EQ(CountWholeWord("Check:Check", "Check"), 2);
  EXPECT_EQ(CountWholeWord("x=3.Now", "Now"), 1);
  EXPECT_EQ(CountWholeWord("Nowé", "Now"), 0);  // a non-ASCII letter continues the word
  EXPECT_EQ(CountWholeWord("aa aa", "aa"), 2);
  EXPECT_EQ(CountWholeWord("", "Wait"), 0);
  EXPECT_EQ(CountWholeWord("Wait", ""), 0);
}

// --- subsets and options ---

std::vector<data::Example> NumberedExamples(int n) {
  std::vector<data::Example> out;
  for (int i = 0; i < n; ++i) out.push_back({"q" + std::to_string(i), "", std::to_string(i), 100 + i});
  return out;
}

TEST(SelectEvalExamplesTest, SeededSubsetInOriginalOrder) {
  const auto all = NumberedExamples(10);
  EXPECT_EQ(SelectEvalExamples(all, 0, 1).size(), 10u);
  EXPECT_EQ(SelectEvalExamples(all, 10, 1).size(), 10u);
  EXPECT_EQ(SelectEvalExamples(all, 25, 1).size(), 10u);
  const auto a = SelectEvalExamples(all, 4, 7);
  const auto b = SelectEvalExamples(all, 4, 7);
  ASSERT_EQ(a.size(), 4u);
  std::set<int64_t> distinct;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].index, b[i].index);
    if (i > 0) {
      EXPECT_LT(a[i - 1].index, a[i].index);
    }
    distinct.insert(a[i].index);
  }
  EXPECT_EQ(distinct.size(), 4u);
  bool some_seed_differs = false;
  for (uint64_t seed = 8; seed < 16; ++seed) {
    const auto c = SelectEvalExamples(all, 4, seed);
    for (size_t i = 0; i < c.size(); ++i) some_seed_differs |= c[i].index != a[i].index;
  }
  EXPECT_TRUE(some_seed_differs);
}

TEST(EvalOptionsTest, FromConfigReadsKeysAndRejectsKAboveN) {
  auto config = Config::Load(HoneConfigSchema(), "",
                             {"eval.n=4", "eval.k=[1,4]", "eval.temperature=0.7",
                              "rollout.max_new_tokens=33", "seed=9", "data.prompt_template=raw"});
  ASSERT_TRUE(config.ok()) << config.status();
  auto options = EvalOptionsFromConfig(*config);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->n, 4);
  EXPECT_EQ(options->ks, (std::vector<int64_t>{1, 4}));
  EXPECT_DOUBLE_EQ(options->temperature, 0.7);
  EXPECT_EQ(options->max_new_tokens, 33);  // eval.max_new_tokens=0 falls back to rollout's
  EXPECT_EQ(options->seed, 9u);
  EXPECT_EQ(options->prompt_template, "raw");

  ASSERT_TRUE(config->Set("eval.max_new_tokens", "12").ok());
  EXPECT_EQ(EvalOptionsFromConfig(*config)->max_new_tokens, 12);

  ASSERT_TRUE(config->Set("eval.k", "[1, 8]").ok());
  auto bad = EvalOptionsFromConfig(*config);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("eval.k"));
  EXPECT_THAT(bad.status().message(), HasSubstr("8"));
}

TEST(EvalOptionsTest, ValidateNamesTheField) {
  EvalOptions o;
  o.prompt_template = "raw";
  EXPECT_TRUE(ValidateEvalOptions(o).ok());
  o.prompt_template = "nope";
  EXPECT_THAT(ValidateEvalOptions(o).message(), HasSubstr("data.prompt_template"));
  o.prompt_template = "raw";
  o.reflection_words = {"Wait", ""};
  EXPECT_THAT(ValidateEvalOptions(o).message(), HasSubstr("eval.reflection_words"));
  o.reflection_words = {};
  o.ks = {0};
  EXPECT_THAT(ValidateEvalOptions(o).message(), HasSubstr("eval.k"));
}

// --- Evaluate end to end ---

class EvaluateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> symbols;
    for (char c : data::ArithmeticCharset()) symbols.push_back(std::string(1, c));
    auto json = MakeCharLevelTokenizerJson(symbols, {"<|endoftext|>"});
    ASSERT_TRUE(json.ok()) << json.status();
    auto tok = TokenizerFromJson(*json);
    ASSERT_TRUE(tok.ok()) << tok.status();
    tokenizer_ = std::move(*tok);
    stop_ids_ = {*tokenizer_->TokenToId("<|endoftext|>")};

    ModelConfig c;
    c.vocab_size = tokenizer_->VocabSize();
    c.hidden_size = 32;
    c.intermediate_size = 64;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 8;
    c.max_position_embeddings = 96;
    c.initializer_range = 0.5;  // peaked logits: varied, digit-rich random text
    c.eos_token_ids = stop_ids_;
    model_ = InitModel(c, 3);

    data::DatasetOptions d;
    d.num_examples = 5;
    d.seed = 11;
    auto examples = data::GenerateArithmetic(d);
    ASSERT_TRUE(examples.ok()) << examples.status();
    examples_ = *examples;

    options_.n = 4;
    options_.temperature = 1.0;
    options_.ks = {1, 2, 4};
    options_.max_new_tokens = 20;
    options_.seed = 5;
    options_.prompt_template = "raw";
    options_.prompt_batch = 2;
    options_.reflection_words = {"1", "+", "box"};  // words this tokenizer can produce
  }

  absl::StatusOr<EvalResult> Run(const EvalOptions& o,
                                 const std::function<void(int64_t, int64_t)>& progress = nullptr) {
    return Evaluate(model_, *tokenizer_, stop_ids_, examples_, o, progress);
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<int64_t> stop_ids_;
  CausalLM model_{nullptr};
  std::vector<data::Example> examples_;
  EvalOptions options_;
};

TEST_F(EvaluateTest, MetricsMatchRecomputationFromResponses) {
  std::vector<std::pair<int64_t, int64_t>> calls;
  auto result = Run(options_, [&](int64_t done, int64_t total) { calls.emplace_back(done, total); });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(calls, (std::vector<std::pair<int64_t, int64_t>>{{2, 5}, {4, 5}, {5, 5}}));
  ASSERT_EQ(result->num_prompts, 5);
  ASSERT_EQ(result->prompts.size(), 5u);
  EXPECT_EQ(result->samples_per_prompt, 4);

  double correct = 0, format = 0, length = 0, truncated = 0, samples = 0;
  std::map<int64_t, double> pass;
  std::map<std::string, double> words;
  int64_t stopped = 0;
  for (size_t i = 0; i < result->prompts.size(); ++i) {
    const PromptOutcome& p = result->prompts[i];
    EXPECT_EQ(p.example.index, examples_[i].index);
    ASSERT_EQ(p.samples.size(), 4u);
    int64_t c = 0;
    for (const SampleOutcome& s : p.samples) {
      const int64_t truth = *reward::ParseGroundTruth(p.example.ground_truth);
      const reward::RewardResult r = reward::ScoreBoxedInteger(s.response, truth, reward::RewardOptions{});
      EXPECT_EQ(s.score.correct, r.correct);
      EXPECT_EQ(s.score.format, r.format);
      EXPECT_THAT(s.response, ::testing::Not(HasSubstr("<|endoftext|>")));
      EXPECT_LE(s.num_tokens, options_.max_new_tokens);
      if (s.truncated) {
        EXPECT_EQ(s.num_tokens, options_.max_new_tokens);
        EXPECT_EQ(static_cast<int64_t>(s.response.size()), s.num_tokens);  // one char per token
      } else {
        ++stopped;
        EXPECT_EQ(static_cast<int64_t>(s.response.size()), s.num_tokens - 1);  // stop token dropped
      }
      c += r.correct > 0;
      correct += r.correct;
      format += r.format;
      length += s.num_tokens;
      truncated += s.truncated;
      samples += 1;
      for (const std::string& w : options_.reflection_words) words[w] += CountWholeWord(s.response, w);
    }
    EXPECT_EQ(p.num_correct, c);
    for (int64_t k : options_.ks) pass[k] += PassAtKReference(4, c, k) / 5.0;
  }
  EXPECT_GT(stopped, 0) << "no sample ended on the stop token: the test misses that path";
  EXPECT_GE(result->accuracy, 0.0);
  EXPECT_LE(result->accuracy, 1.0);
  EXPECT_DOUBLE_EQ(result->accuracy, correct / samples);
  EXPECT_DOUBLE_EQ(result->format_rate, format / samples);
  EXPECT_DOUBLE_EQ(result->mean_response_length, length / samples);
  EXPECT_DOUBLE_EQ(result->truncated_fraction, truncated / samples);
  for (int64_t k : options_.ks) EXPECT_NEAR(result->pass_at_k.at(k), pass[k], 1e-12) << "k=" << k;
  EXPECT_NEAR(result->pass_at_k.at(1), result->accuracy, 1e-12);  // unbiased pass@1 = accuracy
  for (const std::string& w : options_.reflection_words) {
    EXPECT_DOUBLE_EQ(result->reflection_counts.at(w), words[w] / samples) << w;
  }
  EXPECT_GT(result->generated_tokens, 0);
  EXPECT_EQ(result->generated_tokens, static_cast<int64_t>(length));
  EXPECT_GT(result->tokens_per_second, 0);
}

TEST_F(EvaluateTest, SameSeedSameResults) {
  auto a = Run(options_);
  auto b = Run(options_);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->accuracy, b->accuracy);
  EXPECT_EQ(a->pass_at_k, b->pass_at_k);
  EXPECT_EQ(a->mean_response_length, b->mean_response_length);
  for (size_t i = 0; i < a->prompts.size(); ++i) {
    for (size_t j = 0; j < a->prompts[i].samples.size(); ++j) {
      EXPECT_EQ(a->prompts[i].samples[j].response, b->prompts[i].samples[j].response);
    }
  }
  EvalOptions other = options_;
  other.seed = 6;
  auto c = Run(other);
  ASSERT_TRUE(c.ok());
  bool differs = false;
  for (size_t i = 0; i < a->prompts.size(); ++i) {
    differs |= a->prompts[i].samples[0].response != c->prompts[i].samples[0].response;
  }
  EXPECT_TRUE(differs) << "a different seed should sample different text";
}

TEST_F(EvaluateTest, GreedyGeneratesOneSampleAndPassAtKEqualsAccuracy) {
  EvalOptions o = options_;
  o.temperature = 0;
  auto result = Run(o);  // n = 4 requested
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->samples_per_prompt, 1);
  for (const PromptOutcome& p : result->prompts) EXPECT_EQ(p.samples.size(), 1u);
  for (int64_t k : o.ks) EXPECT_DOUBLE_EQ(result->pass_at_k.at(k), result->accuracy) << "k=" << k;
  o.n = 1;
  o.ks = {1};
  auto one = Run(o);
  ASSERT_TRUE(one.ok());
  EXPECT_DOUBLE_EQ(one->pass_at_k.at(1), one->accuracy);
  EXPECT_EQ(one->prompts[2].samples[0].response, result->prompts[2].samples[0].response);
}

// The same generations against a ground truth set to what a sample answered: that sample
// (and only what changed) becomes correct, so accuracy really follows the reward.
TEST_F(EvaluateTest, AccuracyFollowsGroundTruth) {
  auto before = Run(options_);
  ASSERT_TRUE(before.ok());
  int64_t target = -1;
  for (size_t i = 0; i < before->prompts.size() && target < 0; ++i) {
    const auto& s = before->prompts[i].samples[0];
    if (s.score.answer && s.score.correct == 0) {
      examples_[i].ground_truth = std::to_string(*s.score.answer);
      target = static_cast<int64_t>(i);
    }
  }
  ASSERT_GE(target, 0) << "no sample yielded an integer answer";
  auto after = Run(options_);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->prompts[target].samples[0].score.correct, 1.0);
  EXPECT_GT(after->accuracy, before->accuracy);
}

TEST_F(EvaluateTest, ErrorsNameTheExample) {
  examples_[1].ground_truth = "seven";
  auto bad_truth = Run(options_);
  ASSERT_FALSE(bad_truth.ok());
  EXPECT_THAT(bad_truth.status().message(), HasSubstr(std::to_string(examples_[1].index)));
  examples_[1].ground_truth = "7";

  EvalOptions too_long = options_;
  too_long.max_new_tokens = 95;
  auto long_result = Run(too_long);
  ASSERT_FALSE(long_result.ok());
  EXPECT_THAT(long_result.status().message(), HasSubstr("max_position_embeddings"));

  EvalOptions bad_k = options_;
  bad_k.ks = {8};
  EXPECT_THAT(Run(bad_k).status().message(), HasSubstr("eval.k"));
  EXPECT_FALSE(Evaluate(model_, *tokenizer_, stop_ids_, {}, options_).ok());
}

TEST(CompareTest, CountsFirstSampleDisagreements) {
  auto make = [](std::vector<bool> first_correct) {
    EvalResult r;
    for (size_t i = 0; i < first_correct.size(); ++i) {
      PromptOutcome p;
      p.example = {"q" + std::to_string(i), "", "1", static_cast<int64_t>(i)};
      SampleOutcome s;
      s.score.correct = first_correct[i] ? 1 : 0;
      p.samples = {s, SampleOutcome{}};
      r.prompts.push_back(p);
    }
    return r;
  };
  auto cmp = Compare(make({true, true, false, false, true}), make({true, false, true, false, false}));
  ASSERT_TRUE(cmp.ok()) << cmp.status();
  EXPECT_EQ(cmp->both_right, 1);
  EXPECT_EQ(cmp->a_right_b_wrong, 2);
  EXPECT_EQ(cmp->a_wrong_b_right, 1);
  EXPECT_EQ(cmp->both_wrong, 1);
  EXPECT_EQ(cmp->disagreements, (std::vector<int64_t>{1, 2, 4}));
  EXPECT_FALSE(Compare(make({true}), make({true, false})).ok());
}

}  // namespace
}  // namespace hone::eval
