// `hone eval` end to end: two tiny random models made with `hone model init`, compared on
// a held-out arithmetic subset; the JSON report, the table, and the error messages. Runs
// the binary named by HONE_BIN, else the build tree's workers/hone next to this test;
// skipped when neither exists.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "framework/data/dataset.h"
#include "framework/model/model_config.h"
#include "framework/model/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/hone_binary.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using nlohmann::json;

struct CliRun {
  int exit_code = -1;
  std::string out;  // stdout only, or stdout and stderr together
};

using hone::testing_support::HoneBinary;

CliRun RunHone(const std::string& args, bool with_stderr = true) {
  std::string cmd = HoneBinary() + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  auto result = hone::testing_support::RunCommand(cmd);
  return CliRun{result.exit_code, std::move(result.out)};
}

class EvalCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (HoneBinary().empty()) return;
    dir_ = new std::string(::testing::TempDir() + "hone_eval_cli_" + std::to_string(getpid()));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    std::vector<std::string> symbols;
    for (char c : hone::data::ArithmeticCharset()) symbols.push_back(std::string(1, c));
    auto tokenizer_json = hone::MakeCharLevelTokenizerJson(symbols, {"<|endoftext|>"});
    ASSERT_TRUE(tokenizer_json.ok());
    std::ofstream(*dir_ + "/tokenizer.json") << *tokenizer_json;
    hone::ModelConfig c;
    c.vocab_size = static_cast<int64_t>(symbols.size()) + 1;
    c.hidden_size = 32;
    c.intermediate_size = 64;
    c.num_hidden_layers = 1;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 4;
    c.head_dim = 8;
    c.max_position_embeddings = 64;
    c.initializer_range = 0.5;
    c.eos_token_ids = {0};
    std::ofstream(*dir_ + "/config.json") << hone::ModelConfigToJson(c);
    std::ofstream(*dir_ + "/eval.yaml") << "seed: 3\n"
                                           "data:\n"
                                           "  dataset: arithmetic\n"
                                           "  prompt_template: raw\n"
                                           "  val_size: 12\n"
                                           "  arithmetic: {num_examples: 40}\n"
                                           "rollout: {max_new_tokens: 16}\n"
                                           "trainer: {output_dir: " + *dir_ + "/run}\n";
    for (int seed : {1, 2}) {
      CliRun init = RunHone("model init --config-json " + *dir_ + "/config.json --tokenizer " + *dir_ +
                            "/tokenizer.json --seed " + std::to_string(seed) + " --out " + *dir_ +
                            "/m" + std::to_string(seed));
      ASSERT_EQ(init.exit_code, 0) << init.out;
    }
  }
  void SetUp() override {
    if (HoneBinary().empty()) GTEST_SKIP() << "no hone binary: set HONE_BIN";
  }
  std::string Dir() const { return *dir_; }
  static void TearDownTestSuite() {
    if (dir_ != nullptr) fs::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }
  static std::string* dir_;
};
std::string* EvalCli::dir_ = nullptr;

TEST_F(EvalCli, ComparesTwoModelsAndWritesJson) {
  const std::string out = Dir() + "/report.json";
  CliRun run = RunHone("eval --config " + Dir() + "/eval.yaml --model " + Dir() + "/m1 --model " +
                       Dir() + "/m2 --limit 5 --output " + out +
                       " eval.n=3 eval.temperature=1.0 eval.k=[1,3]", /*with_stderr=*/false);
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_THAT(run.out, HasSubstr("accuracy"));
  EXPECT_THAT(run.out, HasSubstr("pass@3"));
  EXPECT_THAT(run.out, HasSubstr("B - A"));
  EXPECT_THAT(run.out, HasSubstr("A right/B wrong"));
  std::ifstream in(out);
  ASSERT_TRUE(in.good()) << out;
  json report = json::parse(in);
  EXPECT_EQ(report["num_prompts"], 5);
  ASSERT_EQ(report["models"].size(), 2u);
  for (const json& m : report["models"]) {
    EXPECT_GE(m["accuracy"].get<double>(), 0.0);
    EXPECT_LE(m["accuracy"].get<double>(), 1.0);
    EXPECT_TRUE(m["pass_at_k"].contains("1"));
    EXPECT_TRUE(m["pass_at_k"].contains("3"));
    EXPECT_NEAR(m["pass_at_k"]["1"].get<double>(), m["accuracy"].get<double>(), 1e-12);
    EXPECT_TRUE(m.contains("format_rate"));
    EXPECT_TRUE(m.contains("mean_response_length"));
    EXPECT_EQ(m["samples_per_prompt"], 3);
  }
  EXPECT_EQ(report["models"][0]["path"], Dir() + "/m1");
  EXPECT_TRUE(report["disagreements"].is_array());
  const json& cmp = report["comparison"];
  EXPECT_EQ(cmp["a_right_b_wrong"].get<int>() + cmp["a_wrong_b_right"].get<int>(),
            static_cast<int>(report["disagreements"].size()));
  for (const auto& entry : fs::directory_iterator(Dir())) {
    EXPECT_THAT(entry.path().filename().string(), Not(HasSubstr(".tmp")));  // renamed, not left
  }
}

TEST_F(EvalCli, SingleModelDefaultOutputAndProgress) {
  CliRun run = RunHone("eval --config " + Dir() + "/eval.yaml --model " + Dir() + "/m1");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_THAT(run.out, HasSubstr("eval A: 12/12 prompts"));
  // Next to the model, not into trainer.output_dir (which may be another run's directory).
  EXPECT_FALSE(fs::exists(Dir() + "/run/eval.json"));
  std::ifstream in(Dir() + "/m1/eval.json");
  ASSERT_TRUE(in.good());
  json report = json::parse(in);
  EXPECT_EQ(report["num_prompts"], 12);
  EXPECT_EQ(report["models"].size(), 1u);
  EXPECT_EQ(report["disagreements"].size(), 0u);
  // A second evaluation replaces the report, and says so.
  CliRun again = RunHone("eval --config " + Dir() + "/eval.yaml --model " + Dir() + "/m1 --limit 3");
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_THAT(again.out, HasSubstr("overwriting the existing " + Dir() + "/m1/eval.json"));
}

TEST_F(EvalCli, PrintConfigShowsOverrides) {
  CliRun run = RunHone("eval --config " + Dir() + "/eval.yaml --print-config --limit 7 eval.n=2");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_THAT(run.out, HasSubstr("\neval:\n  n: 2  #"));
  EXPECT_THAT(run.out, HasSubstr("  limit: 7  #"));
  EXPECT_THAT(run.out, Not(HasSubstr("\nwrote ")));  // nothing was evaluated
}

TEST_F(EvalCli, ErrorsNameTheProblem) {
  const std::string base = "eval --config " + Dir() + "/eval.yaml ";
  CliRun missing = RunHone(base + "--model " + Dir() + "/m1 --model " + Dir() + "/nope");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.out, HasSubstr(Dir() + "/nope"));

  CliRun bad_key = RunHone(base + "--model " + Dir() + "/m1 eval.nn=3");
  EXPECT_NE(bad_key.exit_code, 0);
  EXPECT_THAT(bad_key.out, HasSubstr("unknown config key 'eval.nn'"));

  CliRun bad_k = RunHone(base + "--model " + Dir() + "/m1 eval.n=2 eval.k=[1,4]");
  EXPECT_NE(bad_k.exit_code, 0);
  EXPECT_THAT(bad_k.out, HasSubstr("eval.k"));

  CliRun no_model = RunHone(base);
  EXPECT_NE(no_model.exit_code, 0);
  EXPECT_THAT(no_model.out, HasSubstr("--model"));
}

}  // namespace
