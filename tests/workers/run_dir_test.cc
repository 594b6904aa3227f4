// A run directory belongs to one run: an earlier run there is refused unless the user
// continues it (trainer.resume=auto) or deletes it (trainer.overwrite=true), and only
// Hone's own files are deleted. Each run directory records its config and Hone version.
#include "workers/controller/run_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "framework/dist/build_info.h"
#include "workers/controller/checkpoint.h"

namespace hone {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string Read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class RunDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("hone_run_dir_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  Config Make(std::vector<std::string> overrides) {
    overrides.push_back("trainer.output_dir=" + dir_.string());
    auto config = Config::Load(HoneConfigSchema(), "", overrides);
    EXPECT_TRUE(config.ok()) << config.status();
    return *config;
  }
  // What an earlier run leaves behind, plus a file of the user's.
  void MakeEarlierRun() {
    fs::create_directories(dir_ / "checkpoints" / "step_000002");
    fs::create_directories(dir_ / "final");
    std::ofstream(dir_ / "metrics.jsonl") << "{\"step\": 1}\n";
    std::ofstream(dir_ / "config.yaml") << "old: config\n";
    std::ofstream(dir_ / "config.yaml.1") << "older: config\n";
    std::ofstream(dir_ / "notes.txt") << "mine\n";
  }
  fs::path dir_;
};

TEST_F(RunDirTest, FreshDirectoryGetsConfigAndVersion) {
  Config config = Make({});
  ASSERT_TRUE(PrepareRunDir(config, config.ToYaml(), true, "hone train").ok());
  EXPECT_EQ(Read(dir_ / "config.yaml"), config.ToYaml());
  EXPECT_EQ(Read(dir_ / "hone_version.txt"), VersionText());
  EXPECT_FALSE(HoldsRun(dir_.string()));
  // config.yaml alone is not a run: preparing again is fine.
  EXPECT_TRUE(PrepareRunDir(config, config.ToYaml(), true, "hone train").ok());
}

TEST_F(RunDirTest, EarlierRunIsRefusedNamingTheChoices) {
  MakeEarlierRun();
  Config config = Make({});
  absl::Status status = PrepareRunDir(config, config.ToYaml(), true, "hone train");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(dir_.string()));
  EXPECT_THAT(status.message(), HasSubstr("trainer.resume=auto"));
  EXPECT_THAT(status.message(), HasSubstr("new trainer.output_dir"));
  EXPECT_THAT(status.message(), HasSubstr("trainer.overwrite=true"));
  EXPECT_EQ(Read(dir_ / "config.yaml"), "old: config\n");  // nothing written
  // SFT cannot resume: the message does not offer it.
  status = PrepareRunDir(config, config.ToYaml(), false, "hone sft");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("resume")));
}

TEST_F(RunDirTest, ResumeContinuesTheEarlierRun) {
  MakeEarlierRun();
  Config config = Make({"trainer.resume=auto"});
  ASSERT_TRUE(PrepareRunDir(config, config.ToYaml(), true, "hone train").ok());
  EXPECT_TRUE(fs::exists(dir_ / "metrics.jsonl"));
  EXPECT_TRUE(fs::exists(dir_ / "checkpoints" / "step_000002"));
  EXPECT_FALSE(PrepareRunDir(config, config.ToYaml(), false, "hone sft").ok());
  EXPECT_FALSE(PrepareRunDir(Make({"trainer.resume=auto", "trainer.overwrite=true"}), "", true, "hone train").ok());
}

// A resume that changes settings keeps the config the run had so far (config.yaml.1, then
// .2) and names each changed key; a resume with the same settings keeps one config.yaml.
TEST_F(RunDirTest, ResumeWithChangedSettingsKeepsTheEarlierConfig) {
  Config started = Make({"trainer.total_steps=4"});
  ASSERT_TRUE(PrepareRunDir(started, started.ToYaml(), true, "hone train").ok());
  std::ofstream(dir_ / "metrics.jsonl") << "{\"step\": 1}\n";
  // Only trainer.resume differs: not a change of settings, nothing kept.
  Config first = Make({"trainer.resume=auto", "trainer.total_steps=4"});
  ASSERT_TRUE(PrepareRunDir(first, first.ToYaml(), true, "hone train").ok());
  EXPECT_FALSE(fs::exists(dir_ / "config.yaml.1"));
  EXPECT_EQ(Read(dir_ / "config.yaml"), first.ToYaml());

  Config second = Make({"trainer.resume=auto", "trainer.total_steps=8", "optim.lr=2.5e-05"});
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(PrepareRunDir(second, second.ToYaml(), true, "hone train").ok());
  const std::string said = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(Read(dir_ / "config.yaml"), second.ToYaml());
  EXPECT_EQ(Read(dir_ / "config.yaml.1"), first.ToYaml());
  EXPECT_THAT(said, HasSubstr("2 changed setting(s)"));
  EXPECT_THAT(said, HasSubstr("trainer.total_steps: 4 -> 8"));
  EXPECT_THAT(said, HasSubstr("optim.lr: " + first.ValueText("optim.lr") + " -> 2.5e-05"));
  EXPECT_THAT(said, HasSubstr("config.yaml.1"));

  Config third = Make({"trainer.resume=auto", "trainer.total_steps=12"});
  ASSERT_TRUE(PrepareRunDir(third, third.ToYaml(), true, "hone train").ok());
  EXPECT_EQ(Read(dir_ / "config.yaml.1"), first.ToYaml());
  EXPECT_EQ(Read(dir_ / "config.yaml.2"), second.ToYaml());
  EXPECT_EQ(Read(dir_ / "config.yaml"), third.ToYaml());
}

TEST(ConfigChanges, NamesExactlyTheKeysThatDiffer) {
  auto a = Config::Load(HoneConfigSchema(), "", {"trainer.total_steps=4"});
  auto b = Config::Load(HoneConfigSchema(), "", {"trainer.total_steps=4", "rollout.temperature=0.7",
                                                 "data.train_path=/data/x.jsonl"});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(ConfigChanges(*a, *a).empty());
  EXPECT_THAT(ConfigChanges(*a, *b),
              ::testing::ElementsAre(::testing::StartsWith("data.train_path: "),
                                     "rollout.temperature: " + a->ValueText("rollout.temperature") + " -> 0.7"));
}

TEST_F(RunDirTest, OverwriteDeletesOnlyHonesFiles) {
  MakeEarlierRun();
  Config config = Make({"trainer.overwrite=true"});
  ASSERT_TRUE(PrepareRunDir(config, config.ToYaml(), true, "hone train").ok());
  EXPECT_FALSE(fs::exists(dir_ / "metrics.jsonl"));
  EXPECT_FALSE(fs::exists(dir_ / "final"));
  EXPECT_FALSE(fs::exists(dir_ / "checkpoints"));
  EXPECT_FALSE(fs::exists(dir_ / "config.yaml.1"));
  EXPECT_EQ(Read(dir_ / "notes.txt"), "mine\n");
  EXPECT_EQ(Read(dir_ / "config.yaml"), config.ToYaml());
}

TEST_F(RunDirTest, CheckpointInfoCopiesTheRunConfig) {
  Config config = Make({});
  ASSERT_TRUE(PrepareRunDir(config, config.ToYaml(), true, "hone train").ok());
  fs::create_directories(dir_ / "final");
  ASSERT_TRUE(WriteRunInfo((dir_ / "final").string(), dir_.string()).ok());
  EXPECT_EQ(Read(dir_ / "final" / "config.yaml"), config.ToYaml());
  EXPECT_EQ(Read(dir_ / "final" / "hone_version.txt"), VersionText());
}

// An async run's checkpoint carries the next step's rollouts: they read back as written
// (tensors bit for bit, strings, ints, meta), and a truncated file is an error naming it.
TEST(RolloutsFile, RoundTripsAndATruncatedOneIsAnError) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("hone_rollouts_file_" + std::to_string(getpid()));
  fs::create_directories(dir);
  Batch batch;
  ASSERT_TRUE(batch.SetTensor("input_ids", torch::arange(12, torch::kInt64).reshape({3, 4})).ok());
  ASSERT_TRUE(batch.SetTensor("rollout_logprobs", torch::randn({3, 4})).ok());
  ASSERT_TRUE(batch.SetStrings("response", {"a", "\\boxed{2}", ""}).ok());
  ASSERT_TRUE(batch.SetInts("group_id", {7, 7, 8}).ok());
  batch.meta["policy_version"] = "41";
  const std::string path = (dir / kNextRolloutsFile).string();
  ASSERT_TRUE(WriteRolloutsFile(batch, path).ok());
  auto read = ReadRolloutsFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->size(), 3);
  EXPECT_TRUE(torch::equal(read->tensor("input_ids"), batch.tensor("input_ids")));
  EXPECT_TRUE(torch::equal(read->tensor("rollout_logprobs"), batch.tensor("rollout_logprobs")));
  EXPECT_EQ(read->strings("response"), batch.strings("response"));
  EXPECT_EQ(read->ints("group_id"), batch.ints("group_id"));
  EXPECT_EQ(read->meta.at("policy_version"), "41");

  fs::resize_file(path, fs::file_size(path) / 2);
  auto truncated = ReadRolloutsFile(path);
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(truncated.status().message()), HasSubstr(path));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace hone
