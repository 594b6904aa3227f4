#include "framework/core/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace hone {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string WriteTemp(const std::string& name, const std::string& text) {
  std::string path = hone::testing_support::ProcessTempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

ConfigSchema SmallSchema() {
  ConfigSchema s;
  s.Add({"trainer.total_steps", ConfigType::kInt, int64_t{10}, "steps", 0.0, {}, {}});
  s.Add({"optim.lr", ConfigType::kFloat, 1e-3, "lr", 0.0, 1.0, {}});
  s.Add({"algorithm.adv_estimator", ConfigType::kString, std::string("grpo"), "est", {}, {},
         {"grpo", "rloo"}});
  s.Add({"algorithm.flag", ConfigType::kBool, false, "flag", {}, {}, {}});
  s.Add({"eval.k", ConfigType::kIntList, std::vector<int64_t>{1}, "k", 1.0, {}, {}});
  return s;
}

TEST(ConfigTest, DefaultsFileThenOverridesInOrder) {
  ConfigSchema schema = SmallSchema();
  std::string path = WriteTemp("ok.yaml",
                               "trainer:\n  total_steps: 20\noptim: {lr: 0.5}\neval:\n  k: [1, 4]\n");
  auto config = Config::Load(schema, path, {"trainer.total_steps=30", "algorithm.flag=true"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->Int("trainer.total_steps"), 30);
  EXPECT_DOUBLE_EQ(config->Float("optim.lr"), 0.5);
  EXPECT_TRUE(config->Bool("algorithm.flag"));
  EXPECT_EQ(config->String("algorithm.adv_estimator"), "grpo");
  EXPECT_THAT(config->IntList("eval.k"), ::testing::ElementsAre(1, 4));
}

TEST(ConfigTest, UnknownKeyInFileNamesKeyFileAndSuggestion) {
  ConfigSchema schema = SmallSchema();
  std::string path = WriteTemp("typo.yaml", "trainer:\n  total_step: 20\n");
  auto config = Config::Load(schema, path, {});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("trainer.total_step"));
  EXPECT_THAT(config.status().message(), HasSubstr("typo.yaml"));
  EXPECT_THAT(config.status().message(), HasSubstr("did you mean 'trainer.total_steps'"));
}

TEST(ConfigTest, WrongTypeAndRangeAndChoice) {
  ConfigSchema schema = SmallSchema();
  auto wrong_type = Config::Load(schema, "", {"trainer.total_steps=abc"});
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_THAT(wrong_type.status().message(), HasSubstr("trainer.total_steps"));
  EXPECT_THAT(wrong_type.status().message(), HasSubstr("integer"));
  EXPECT_THAT(wrong_type.status().message(), HasSubstr("command line"));

  auto out_of_range = Config::Load(schema, "", {"optim.lr=2"});
  ASSERT_FALSE(out_of_range.ok());
  EXPECT_THAT(out_of_range.status().message(), HasSubstr("out of range"));
  EXPECT_THAT(out_of_range.status().message(), HasSubstr("0 .. 1"));

  auto bad_choice = Config::Load(schema, "", {"algorithm.adv_estimator=ppo"});
  ASSERT_FALSE(bad_choice.ok());
  EXPECT_THAT(bad_choice.status().message(), HasSubstr("allowed values: grpo, rloo"));

  auto bad_list = Config::Load(schema, "", {"eval.k=[1, 0]"});
  ASSERT_FALSE(bad_list.ok());
  EXPECT_THAT(bad_list.status().message(), HasSubstr("eval.k"));

  auto not_override = Config::Load(schema, "", {"trainer.total_steps"});
  ASSERT_FALSE(not_override.ok());
  EXPECT_THAT(not_override.status().message(), HasSubstr("key=value"));
}

TEST(ConfigTest, MissingAndMalformedFile) {
  ConfigSchema schema = SmallSchema();
  auto missing = Config::Load(schema, "/nonexistent/x.yaml", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  std::string bad = WriteTemp("bad.yaml", "trainer: [unclosed\n");
  auto malformed = Config::Load(schema, bad, {});
  ASSERT_FALSE(malformed.ok());
  EXPECT_THAT(malformed.status().message(), HasSubstr("bad.yaml"));
}

// An empty config file (or comments only, as a user starts one) sets nothing: the
// defaults and the overrides apply. It used to be "unknown config key ''".
TEST(ConfigTest, EmptyFileSetsNothing) {
  ConfigSchema schema = SmallSchema();
  for (const char* text : {"", "# settings to come\n"}) {
    std::string path = WriteTemp("empty.yaml", text);
    auto loaded = Config::Load(schema, path, {});
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    auto defaults = Config::Load(schema, "", {});
    ASSERT_TRUE(defaults.ok());
    EXPECT_EQ(loaded->ToYaml(), defaults->ToYaml());
  }
}

// A YAML alias may refer to the anchor it sits in: the mapping then contains itself. Found
// by the config_yaml fuzzer (a segfault: unbounded recursion); corpus regress_cyclic_alias.
TEST(ConfigTest, SelfReferringAliasIsAnErrorNotARecursion) {
  std::string cyclic = WriteTemp("cyclic.yaml", "a: &x {k: 1}\ntrainer: &x {k: *x}\n");
  auto loaded = Config::Load(SmallSchema(), cyclic, {});
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), HasSubstr("cyclic.yaml"));
  EXPECT_THAT(loaded.status().message(), HasSubstr("levels deep"));
}

TEST(ConfigTest, PrintedConfigReadsBackToTheSameValues) {
  const ConfigSchema& schema = HoneConfigSchema();
  auto config = Config::Load(schema, "", {"optim.lr=3e-4", "rollout.n=4", "eval.k=[1, 2]",
                                          "trainer.output_dir=runs/x y"});
  ASSERT_TRUE(config.ok()) << config.status();
  std::string printed = config->ToYaml();
  std::string path = WriteTemp("printed.yaml", printed);
  auto reread = Config::Load(schema, path, {});
  ASSERT_TRUE(reread.ok()) << reread.status() << "\n" << printed;
  EXPECT_EQ(reread->ToYaml(), printed);
  EXPECT_DOUBLE_EQ(reread->Float("optim.lr"), 3e-4);
  EXPECT_EQ(reread->Int("rollout.n"), 4);
  EXPECT_EQ(reread->String("trainer.output_dir"), "runs/x y");
}

// Input paths in a file resolve against the file's directory, so a config runs from any
// working directory; on the command line they resolve against the working directory.
TEST(ConfigTest, RelativePathsResolveAgainstTheFileOrTheWorkingDirectory) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / "hone_config_paths" / "configs";
  fs::create_directories(dir);
  std::ofstream(dir / "job.yaml") << "model: {init_config: models/tiny.json, path: /abs/model}\n"
                                     "data: {train_path: ../data/train.jsonl, val_path: ''}\n"
                                     "trainer: {output_dir: runs/x}\n";
  auto config = Config::Load(HoneConfigSchema(), (dir / "job.yaml").string(), {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->String("model.init_config"), (fs::absolute(dir) / "models/tiny.json").lexically_normal().string());
  EXPECT_EQ(config->String("data.train_path"),
            (fs::absolute(dir).parent_path() / "data/train.jsonl").lexically_normal().string());
  EXPECT_EQ(config->String("model.path"), "/abs/model");
  EXPECT_EQ(config->String("data.val_path"), "");
  // Outputs stay relative to the working directory.
  EXPECT_EQ(config->String("trainer.output_dir"), "runs/x");

  auto overridden = Config::Load(HoneConfigSchema(), (dir / "job.yaml").string(), {"model.init_config=m.json"});
  ASSERT_TRUE(overridden.ok()) << overridden.status();
  EXPECT_EQ(overridden->String("model.init_config"), (fs::current_path() / "m.json").string());
  // The printed config names the same files from anywhere.
  EXPECT_THAT(overridden->ToYaml(), HasSubstr((fs::current_path() / "m.json").string()));
}

// Floats print as written, not as their 17-digit expansion; range errors stay readable.
TEST(ConfigTest, NumbersPrintShortest) {
  EXPECT_EQ(FormatConfigNumber(0.9), "0.9");
  EXPECT_EQ(FormatConfigNumber(1e-5), "1e-05");
  EXPECT_EQ(FormatConfigNumber(0.1 + 0.2), "0.30000000000000004");  // a different double
  EXPECT_EQ(FormatConfigNumber(3), "3");
  auto config = Config::Load(HoneConfigSchema(), "", {"optim.betas=[0.9, 0.95]", "optim.lr=3e-4"});
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string printed = config->ToYaml(/*with_help=*/false);
  EXPECT_THAT(printed, HasSubstr("betas: [0.9, 0.95]"));
  EXPECT_THAT(printed, HasSubstr("lr: 0.0003"));
  EXPECT_THAT(printed, Not(HasSubstr("0000000")));
  auto out_of_range = Config::Load(HoneConfigSchema(), "", {"rpc.port=70000"});
  ASSERT_FALSE(out_of_range.ok());
  EXPECT_THAT(out_of_range.status().message(), HasSubstr("allowed: 0 .. 65535"));
}

// Every ready-to-run config in configs/ is valid against the schema.
TEST(ConfigTest, ShippedConfigsAreValid) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator("configs")) {
    if (entry.path().extension() != ".yaml") continue;
    auto config = Config::Load(HoneConfigSchema(), entry.path().string(), {});
    EXPECT_TRUE(config.ok()) << entry.path() << ": " << config.status();
    ++checked;
  }
  EXPECT_GE(checked, 3);
}

}  // namespace
}  // namespace hone
