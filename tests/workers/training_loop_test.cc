// End to end in one process: `hone sft` from scratch, then `hone train` (GRPO) from the
// SFT model, on a tiny model and a few steps. Checks the files a user relies on.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "framework/model/pretrained.h"
#include "workers/controller/grpo_loop.h"
#include "workers/controller/sft_loop.h"

namespace hone {
namespace {

namespace fs = std::filesystem;

std::vector<nlohmann::json> ReadJsonl(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

TEST(TrainingLoopTest, SftThenGrpoWriteModelsMetricsAndCheckpoints) {
  const std::string root = ::testing::TempDir() + "hone_training_loop_" + std::to_string(getpid());
  fs::remove_all(root);
  fs::create_directories(root);
  {
    std::ofstream(root + "/model.json") << R"({"model_type": "llama", "vocab_size": 8, "hidden_size": 32,
      "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 2, "max_position_embeddings": 96, "tie_word_embeddings": true})";
  }
  const std::vector<std::string> data = {"data.dataset=arithmetic", "data.prompt_template=raw",
                                         "data.val_size=16", "data.arithmetic.num_examples=400",
                                         "runtime.num_threads=1"};
  std::vector<std::string> sft = data;
  sft.insert(sft.end(), {"model.init_config=" + root + "/model.json", "trainer.total_steps=6",
                         "trainer.sft_batch_size=16", "optim.lr=3e-3", "trainer.output_dir=" + root + "/sft"});
  auto sft_config = Config::Load(HoneConfigSchema(), "", sft);
  ASSERT_TRUE(sft_config.ok()) << sft_config.status();
  ASSERT_TRUE(RunSft(*sft_config).ok());
  auto sft_metrics = ReadJsonl(root + "/sft/metrics.jsonl");
  ASSERT_EQ(sft_metrics.size(), 6u);
  EXPECT_LT(sft_metrics.back()["sft_loss"].get<double>(), sft_metrics.front()["sft_loss"].get<double>());
  auto sft_model = LoadPretrained(root + "/sft/final");
  ASSERT_TRUE(sft_model.ok()) << sft_model.status();
  EXPECT_EQ(sft_model->model->config().vocab_size, sft_model->tokenizer->VocabSize());

  std::vector<std::string> grpo = data;
  grpo.insert(grpo.end(), {"model.path=" + root + "/sft/final", "trainer.total_steps=3",
                           "data.train_batch_size=4", "rollout.n=4", "rollout.max_new_tokens=24",
                           "algorithm.kl_coef=0.01", "algorithm.filter_zero_std_groups=true",
                           "algorithm.mask_truncated=true", "trainer.save_every=2", "trainer.val_every=3",
                           "eval.limit=8", "eval.n=2", "eval.temperature=1.0", "eval.k=[1, 2]",
                           "trainer.output_dir=" + root + "/grpo"});
  auto grpo_config = Config::Load(HoneConfigSchema(), "", grpo);
  ASSERT_TRUE(grpo_config.ok()) << grpo_config.status();
  ASSERT_TRUE(RunGrpoTraining(*grpo_config).ok());
  auto lines = ReadJsonl(root + "/grpo/metrics.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  for (const char* key : {"reward_mean", "reward_std", "accuracy", "format_rate", "frac_reward_zero_std",
                          "group_reward_std_mean", "response_length_mean", "response_clip_ratio", "policy_loss",
                          "kl", "entropy", "clip_fraction", "grad_norm", "learning_rate", "seconds_gen",
                          "seconds_reward", "seconds_old_logp", "seconds_ref", "seconds_train", "seconds_sync",
                          "tokens_per_second_gen", "policy_version", "rollout_policy_version", "policy_lag",
                          "seconds_wait_rollout", "seconds_wait_trainer", "rollout_logprob_diff_mean",
                          "rollout_logprob_diff_max"}) {
    EXPECT_TRUE(lines[0].contains(key)) << key;
  }
  EXPECT_EQ(lines[2]["policy_version"].get<double>(), 3);
  EXPECT_TRUE(lines[2].contains("val_accuracy"));
  EXPECT_TRUE(lines[2].contains("val_pass_at_2"));
  // The weight sync keeps rollout and trainer on the same weights at every step.
  for (const auto& line : lines) EXPECT_LT(line["rollout_logprob_diff_max"].get<double>(), 1e-3);
  EXPECT_TRUE(fs::exists(root + "/grpo/checkpoints/step_000002/model.safetensors"));
  EXPECT_TRUE(fs::exists(root + "/grpo/checkpoints/step_000002/optimizer_shard_0_of_1.pt"));
  EXPECT_TRUE(fs::exists(root + "/grpo/checkpoints/step_000002/trainer_state.json"));
  EXPECT_FALSE(fs::exists(root + "/grpo/checkpoints/step_000002.tmp"));
  // Every checkpoint says which build made it.
  EXPECT_TRUE(fs::exists(root + "/grpo/checkpoints/step_000002/hone_version.txt"));
  EXPECT_TRUE(fs::exists(root + "/grpo/final/hone_version.txt"));
  EXPECT_TRUE(LoadPretrained(root + "/grpo/final").ok());
  fs::remove_all(root);
}

TEST(TrainingLoopTest, MissingModelIsAClearError) {
  auto config = Config::Load(HoneConfigSchema(), "", {"model.path=/nonexistent/model", "data.val_size=4",
                                                       "data.arithmetic.num_examples=50"});
  ASSERT_TRUE(config.ok());
  auto status = RunGrpoTraining(*config);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), ::testing::HasSubstr("/nonexistent/model"));
}

TEST(TrainingLoopTest, InconsistentOptionsFailBeforeAnyWork) {
  auto betas = Config::Load(HoneConfigSchema(), "", {"model.path=/nonexistent/model", "optim.betas=[0.9]"});
  ASSERT_TRUE(betas.ok());
  auto status = RunGrpoTraining(*betas);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), ::testing::HasSubstr("optim.betas"));
  auto dual = Config::Load(HoneConfigSchema(), "", {"model.path=/nonexistent/model", "algorithm.clip_ratio_c=0.5"});
  ASSERT_TRUE(dual.ok());
  status = RunGrpoTraining(*dual);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), ::testing::HasSubstr("clip_ratio_c"));
}

// Sampling filters would make the rollout sample from another distribution than the one
// whose log-probs the trainer recomputes: refused before any work, naming both keys.
TEST(TrainingLoopTest, SamplingFiltersAreRefusedInTraining) {
  for (const char* filter : {"rollout.top_k=5", "rollout.top_p=0.9"}) {
    auto config = Config::Load(HoneConfigSchema(), "", {"model.path=/nonexistent/model", filter});
    ASSERT_TRUE(config.ok());
    data::DataSplits splits;
    GrpoRoles roles;
    auto status = RunGrpoLoop(*config, roles, Pretrained{}, splits);
    ASSERT_FALSE(status.ok()) << filter;
    EXPECT_THAT(status.message(), ::testing::HasSubstr("rollout.top_k=0 and rollout.top_p=1"));
  }
}

}  // namespace
}  // namespace hone
