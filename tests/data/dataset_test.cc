// Datasets (gsm8k, jsonl, arithmetic) and prompt templates.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "framework/data/dataset.h"
#include "framework/reward/reward.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_data.h"

namespace hone::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string TestData() { return testing_support::TestDataDir(); }

std::string WriteTemp(const std::string& name, const std::string& contents) {
  std::string path = testing_support::ProcessTempDir() + "/" + name;
  std::ofstream out(path, std::ios::binary);
  out << contents;
  return path;
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// --- gsm8k ---

TEST(Gsm8k, LoadsRealTrainAndTest) {
  DatasetOptions options;
  LoadReport report;
  options.path = TestData() + "/gsm8k/train.jsonl";
  absl::StatusOr<std::vector<Example>> train = LoadDataset("gsm8k", options, &report);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->size(), 7473u);
  EXPECT_EQ(report.lines, 7473);
  EXPECT_EQ(report.skipped, 0);
  options.path = TestData() + "/gsm8k/test.jsonl";
  absl::StatusOr<std::vector<Example>> test = LoadDataset("gsm8k", options);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->size(), 1319u);

  const Example& first = train->front();
  EXPECT_THAT(first.prompt, StartsWith("Natalia sold clips to 48 of her friends in April"));
  EXPECT_EQ(first.ground_truth, "72");
  EXPECT_EQ(first.index, 0);
  EXPECT_EQ(first.solution,
            "Natalia sold 48/2 = 24 clips in May.\n"
            "Natalia sold 48+24 = 72 clips altogether in April and May.\n"
            "\\boxed{72}");
  EXPECT_EQ(train->back().index, 7472);

  // Every reference solution earns the full reward against its own ground truth, every
  // ground truth is canonical, and no calculator annotation survives.
  for (const auto* split : {&*train, &*test}) {
    for (const Example& e : *split) {
      int64_t gt = std::stoll(e.ground_truth);
      EXPECT_EQ(std::to_string(gt), e.ground_truth);
      reward::RewardResult r = reward::ScoreBoxedInteger(e.solution, gt, reward::RewardOptions{});
      EXPECT_EQ(r.correct, 1.0) << e.index;
      EXPECT_EQ(r.format, 1.0) << e.index;
      EXPECT_EQ(e.solution.find("<<"), std::string::npos) << e.index;
      EXPECT_EQ(e.solution.find("####"), std::string::npos) << e.index;
    }
  }
}

TEST(Gsm8k, SolutionRewrite) {
  EXPECT_EQ(*Gsm8kSolution("He has 3*4 = <<3*4=12>>12 apples.\n#### 12"),
            "He has 3*4 = 12 apples.\n\\boxed{12}");
  EXPECT_EQ(*Gsm8kSolution("Total $<<1000+234=1234>>1,234\n#### 1,234"), "Total $1,234\n\\boxed{1234}");
  EXPECT_EQ(*Gsm8kSolution("#### -7"), "\\boxed{-7}");
  EXPECT_EQ(*Gsm8kSolution("odd << text\n#### 5"), "odd << text\n\\boxed{5}");  // unclosed stays
  EXPECT_FALSE(Gsm8kSolution("no marker 5").ok());
  EXPECT_FALSE(Gsm8kSolution("steps\n#### five").ok());
}

const char kMixed[] =
    "{\"question\": \"q1\", \"answer\": \"a\\n#### 1\"}\n"
    "{\"question\": \"q2\", \"answer\": \"a\\n#### 2\"\n"     // line 2: bad JSON
    "\n"                                                      // line 3: blank, ignored
    "{\"question\": \"q4\"}\n"                                // line 4: no answer
    "{\"question\": \"q5\", \"answer\": \"the answer is 5\"}\n"  // line 5: no ####
    "{\"question\": \"q6\", \"answer\": \"#### 6\"}\n";

TEST(Gsm8k, MalformedLineNamesFileAndLine) {
  DatasetOptions options;
  options.path = WriteTemp("mixed.jsonl", kMixed);
  absl::StatusOr<std::vector<Example>> loaded = LoadDataset("gsm8k", options);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(Message(loaded.status()), HasSubstr(options.path + ":2: bad JSON"));
  EXPECT_THAT(Message(loaded.status()), HasSubstr("data.skip_invalid=true"));  // what to do
}

TEST(Gsm8k, EachKindOfMalformedLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"question\": \"q\", \"answer\": \"x\\n#### 1\"", "bad JSON"},
      {"[1, 2]", "missing field \"question\""},
      {"{\"answer\": \"#### 1\"}", "missing field \"question\""},
      {"{\"question\": 3, \"answer\": \"#### 1\"}", "field \"question\" is not a string"},
      {"{\"question\": \"q\", \"answer\": \"42\"}", "GSM8K answer has no '#### N'"},
      {"{\"question\": \"q\", \"answer\": \"#### 4.5\"}", "ground truth"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    DatasetOptions options;
    options.path = WriteTemp("case" + std::to_string(i) + ".jsonl",
                             "{\"question\": \"ok\", \"answer\": \"#### 0\"}\n" + cases[i].first + "\n");
    absl::StatusOr<std::vector<Example>> loaded = LoadDataset("gsm8k", options);
    ASSERT_FALSE(loaded.ok()) << cases[i].first;
    EXPECT_THAT(Message(loaded.status()), HasSubstr(options.path + ":2: " + cases[i].second));
  }
}

TEST(Gsm8k, SkipInvalidCountsSkippedLines) {
  DatasetOptions options;
  options.path = WriteTemp("mixed_skip.jsonl", kMixed);
  options.skip_invalid = true;
  LoadReport report;
  absl::StatusOr<std::vector<Example>> loaded = LoadDataset("gsm8k", options, &report);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ((*loaded)[0].prompt, "q1");
  EXPECT_EQ((*loaded)[1].prompt, "q6");
  EXPECT_EQ((*loaded)[1].ground_truth, "6");
  EXPECT_EQ((*loaded)[1].index, 1);  // position among loaded examples
  EXPECT_EQ(report.lines, 5);
  EXPECT_EQ(report.skipped, 3);
  ASSERT_EQ(report.warnings.size(), 3u);
  EXPECT_THAT(report.warnings[0], StartsWith(options.path + ":2: "));
  EXPECT_THAT(report.warnings[1], StartsWith(options.path + ":4: "));
  EXPECT_THAT(report.warnings[2], StartsWith(options.path + ":5: "));
}

TEST(Gsm8k, FileErrors) {
  DatasetOptions options;
  options.path = TestData() + "/gsm8k/does_not_exist.jsonl";
  EXPECT_EQ(LoadDataset("gsm8k", options).status().code(), absl::StatusCode::kNotFound);
  options.path = WriteTemp("empty.jsonl", "\n\n");
  EXPECT_THAT(Message(LoadDataset("gsm8k", options).status()), HasSubstr("no valid examples"));
  options.path = WriteTemp("all_bad.jsonl", "nope\n");
  options.skip_invalid = true;
  EXPECT_THAT(Message(LoadDataset("gsm8k", options).status()), HasSubstr("1 skipped"));
}

TEST(Gsm8k, CrlfLineEndings) {
  DatasetOptions options;
  options.path = WriteTemp("crlf.jsonl", "{\"question\": \"q\", \"answer\": \"s\\n#### 3\"}\r\n");
  absl::StatusOr<std::vector<Example>> loaded = LoadDataset("gsm8k", options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)[0].ground_truth, "3");
}

// --- jsonl ---

TEST(Jsonl, ConfigurableFieldsAndAnswerForms) {
  DatasetOptions options;
  options.prompt_key = "problem";
  options.answer_key = "target";
  options.path = WriteTemp("custom.jsonl",
                           "{\"problem\": \"p0\", \"target\": 42}\n"
                           "{\"problem\": \"p1\", \"target\": \"1,234\"}\n"
                           "{\"problem\": \"p2\", \"target\": \"work\\n#### -5\"}\n"
                           "{\"problem\": \"p3\", \"target\": 7.0}\n");
  absl::StatusOr<std::vector<Example>> loaded = LoadDataset("jsonl", options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 4u);
  EXPECT_EQ((*loaded)[0].prompt, "p0");
  EXPECT_EQ((*loaded)[0].ground_truth, "42");
  EXPECT_EQ((*loaded)[0].solution, "\\boxed{42}");
  EXPECT_EQ((*loaded)[1].ground_truth, "1234");
  EXPECT_EQ((*loaded)[1].solution, "\\boxed{1234}");
  EXPECT_EQ((*loaded)[2].ground_truth, "-5");
  EXPECT_EQ((*loaded)[2].solution, "work\n\\boxed{-5}");
  EXPECT_EQ((*loaded)[3].ground_truth, "7");
}

TEST(Jsonl, SolutionKey) {
  DatasetOptions options;
  options.solution_key = "sol";
  options.path = WriteTemp("sol.jsonl",
                           "{\"question\": \"q\", \"answer\": \"9\", \"sol\": \"4+5=9. \\\\boxed{9}\"}\n");
  absl::StatusOr<std::vector<Example>> loaded = LoadDataset("jsonl", options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)[0].solution, "4+5=9. \\boxed{9}");
  options.path = WriteTemp("nosol.jsonl", "{\"question\": \"q\", \"answer\": \"9\"}\n");
  EXPECT_THAT(Message(LoadDataset("jsonl", options).status()),
              HasSubstr(":1: missing field \"sol\""));
}

TEST(Jsonl, BadAnswers) {
  DatasetOptions options;
  for (const char* answer : {"4.5", "\"four\"", "null", "[1]", "\"1,23\""}) {
    options.path = WriteTemp("bad_answer.jsonl",
                             std::string("{\"question\": \"q\", \"answer\": ") + answer + "}\n");
    absl::StatusOr<std::vector<Example>> loaded = LoadDataset("jsonl", options);
    EXPECT_FALSE(loaded.ok()) << answer;
    EXPECT_THAT(Message(loaded.status()), HasSubstr(options.path + ":1: ")) << answer;
  }
}

TEST(Registry, DatasetNamesAndUnknown) {
  EXPECT_THAT(DatasetNames(), ElementsAre("gsm8k", "jsonl", "arithmetic"));
  absl::StatusOr<std::vector<Example>> loaded = LoadDataset("mnist", DatasetOptions{});
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(Message(loaded.status()), HasSubstr("gsm8k, jsonl, arithmetic"));
}

// --- arithmetic ---

// Evaluates "a+b-c=?" left to right, independently of the generator.
int64_t EvaluatePrompt(const std::string& prompt, int* ops) {
  *ops = 0;
  int64_t value = 0, operand = 0;
  char op = '+';
  for (char c : prompt) {
    if (c >= '0' && c <= '9') {
      operand = operand * 10 + (c - '0');
      continue;
    }
    value = op == '+' ? value + operand : value - operand;
    operand = 0;
    if (c == '+' || c == '-') {
      op = c;
      ++*ops;
    }
    if (c == '=') break;
  }
  return value;
}

TEST(Arithmetic, HandCheckedShape) {
  DatasetOptions options;
  options.num_examples = 500;
  absl::StatusOr<std::vector<Example>> examples = LoadDataset("arithmetic", options);
  ASSERT_TRUE(examples.ok()) << examples.status();
  ASSERT_EQ(examples->size(), 500u);
  const std::string charset = ArithmeticCharset();
  std::set<char> seen;
  for (const Example& e : *examples) {
    int ops = 0;
    int64_t expected = EvaluatePrompt(e.prompt, &ops);
    EXPECT_EQ(ops, 2) << e.prompt;
    EXPECT_EQ(e.ground_truth, std::to_string(expected)) << e.prompt;
    EXPECT_GE(expected, 0) << e.prompt;
    EXPECT_THAT(e.prompt, ::testing::EndsWith("=?"));
    EXPECT_LT(e.prompt.size() + e.solution.size(), 80u) << e.prompt << e.solution;
    EXPECT_EQ(e.solution.find("=-"), std::string::npos) << e.solution;  // never negative
    reward::RewardResult r = reward::ScoreBoxedInteger(e.solution, expected, reward::RewardOptions{});
    EXPECT_EQ(r.correct, 1.0) << e.solution;
    EXPECT_EQ(r.format, 1.0) << e.solution;
    for (char c : e.prompt + e.solution) {
      EXPECT_NE(charset.find(c), std::string::npos) << "'" << c << "' in " << e.prompt;
      seen.insert(c);
    }
  }
  // The advertised charset is exact: every character in it shows up.
  EXPECT_EQ(std::string(seen.begin(), seen.end()), charset);
}

TEST(Arithmetic, Charset) { EXPECT_EQ(ArithmeticCharset(), " +-.0123456789=?\\bdeox{}"); }

TEST(Arithmetic, SolutionStepsAreLeftToRight) {
  DatasetOptions options;
  options.num_examples = 50;
  options.min_ops = 1;
  options.max_ops = 3;
  std::set<int> op_counts;
  const std::vector<Example> examples = *GenerateArithmetic(options);
  for (const Example& e : examples) {
    int ops = 0;
    EvaluatePrompt(e.prompt, &ops);
    op_counts.insert(ops);
    // One "a op b=c. " step per operation, then the box.
    int steps = 0;
    for (size_t pos = e.solution.find(". "); pos != std::string::npos; pos = e.solution.find(". ", pos + 1)) {
      ++steps;
    }
    EXPECT_EQ(steps, ops) << e.solution;
    // The first step starts with the prompt's first two operands.
    std::string head = e.prompt.substr(0, e.prompt.find_first_of("+-", e.prompt.find_first_of("+-") + 1));
    if (ops == 1) head = e.prompt.substr(0, e.prompt.size() - 2);
    EXPECT_THAT(e.solution, StartsWith(head + "=")) << e.prompt << " | " << e.solution;
  }
  EXPECT_EQ(op_counts, (std::set<int>{1, 2, 3}));
}

TEST(Arithmetic, HandWorkedStep) {
  // The format itself, on the first example of a fixed seed, checked by hand.
  DatasetOptions options;
  options.num_examples = 1;
  options.min_ops = options.max_ops = 1;
  Example e = GenerateArithmetic(options)->front();
  int ops = 0;
  int64_t value = EvaluatePrompt(e.prompt, &ops);
  std::string body = e.prompt.substr(0, e.prompt.size() - 2);  // "a+b" or "a-b"
  EXPECT_EQ(e.solution, body + "=" + std::to_string(value) + ". \\boxed{" + std::to_string(value) + "}");
}

TEST(Arithmetic, DeterministicBySeed) {
  DatasetOptions options;
  options.num_examples = 200;
  options.seed = 7;
  std::vector<Example> a = *GenerateArithmetic(options);
  std::vector<Example> b = *GenerateArithmetic(options);
  options.seed = 8;
  std::vector<Example> c = *GenerateArithmetic(options);
  int differ = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].prompt, b[i].prompt);
    EXPECT_EQ(a[i].solution, b[i].solution);
    EXPECT_EQ(a[i].index, static_cast<int64_t>(i));
    differ += a[i].prompt != c[i].prompt;
  }
  EXPECT_GT(differ, 150);
  // Example i does not depend on how many are generated.
  options.seed = 7;
  options.num_examples = 10;
  std::vector<Example> prefix = *GenerateArithmetic(options);
  for (size_t i = 0; i < prefix.size(); ++i) EXPECT_EQ(prefix[i].prompt, a[i].prompt);
}

TEST(Arithmetic, KnobsAndNegatives) {
  DatasetOptions options;
  options.num_examples = 300;
  options.min_ops = 3;
  options.max_ops = 4;
  options.operand_min = 5;
  options.operand_max = 9;
  options.allow_negative = true;
  bool saw_negative = false;
  const std::vector<Example> examples = *GenerateArithmetic(options);
  for (const Example& e : examples) {
    int ops = 0;
    int64_t value = EvaluatePrompt(e.prompt, &ops);
    EXPECT_GE(ops, 3);
    EXPECT_LE(ops, 4);
    EXPECT_EQ(e.ground_truth, std::to_string(value));
    saw_negative |= value < 0;
    EXPECT_EQ(reward::ScoreBoxedInteger(e.solution, value, reward::RewardOptions{}).total, 1.1)
        << e.solution;
    for (char c : e.prompt) {
      if (c >= '0' && c <= '9') {
        EXPECT_GE(c, '5') << e.prompt;  // single-digit operands 5..9
      }
    }
  }
  EXPECT_TRUE(saw_negative);
}

TEST(Arithmetic, InvalidKnobs) {
  auto with = [](auto edit) {
    DatasetOptions options;
    edit(options);
    return GenerateArithmetic(options).status();
  };
  EXPECT_FALSE(with([](DatasetOptions& o) { o.num_examples = 0; }).ok());
  EXPECT_FALSE(with([](DatasetOptions& o) { o.min_ops = 0; }).ok());
  EXPECT_FALSE(with([](DatasetOptions& o) { o.min_ops = 3; o.max_ops = 2; }).ok());
  EXPECT_FALSE(with([](DatasetOptions& o) { o.max_ops = 17; }).ok());
  EXPECT_FALSE(with([](DatasetOptions& o) { o.operand_min = -1; }).ok());
  EXPECT_FALSE(with([](DatasetOptions& o) { o.operand_min = 5; o.operand_max = 4; }).ok());
  EXPECT_FALSE(with([](DatasetOptions& o) { o.operand_max = 2000000000; }).ok());
  EXPECT_TRUE(with([](DatasetOptions& o) { o.operand_min = 0; o.operand_max = 0; }).ok());
}

// --- prompt templates ---

TEST(PromptTemplates, ExactTexts) {
  EXPECT_EQ(*ApplyPromptTemplate("raw", "7+12-5=?"), "7+12-5=?");
  EXPECT_EQ(*ApplyPromptTemplate("plain", "What is 2+2?"),
            "What is 2+2?\nPut the final integer answer in \\boxed{}.");
  EXPECT_EQ(*ApplyPromptTemplate("qwen", "What is 2+2?"),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nWhat is 2+2? Please reason step by step, and put your final answer "
            "within \\boxed{}.<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(*ApplyPromptTemplate("llama3", "What is 2+2?"),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
            "What is 2+2? Please reason step by step, and put your final answer within \\boxed{}."
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(PromptTemplates, QuestionInsertedVerbatim) {
  EXPECT_EQ(*ApplyPromptTemplate("raw", "say {question}"), "say {question}");
}

TEST(PromptTemplates, UnknownNameListsKnown) {
  EXPECT_THAT(PromptTemplateNames(), ElementsAre("raw", "plain", "qwen", "llama3"));
  absl::StatusOr<std::string> out = ApplyPromptTemplate("mistral", "q");
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(Message(out.status()), HasSubstr("raw, plain, qwen, llama3"));
}

}  // namespace
}  // namespace hone::data
