// `hone train` as a user runs it, once in one process and once under mpirun with
// placement 2/1/2 (controller, 2 rollout, 1 reward, 2 FSDP trainer ranks): the same seed
// gives the same sampled tokens, rewards and losses, and parameters within float32
// reduction-order noise. Also: a world size that does not fit the placement.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_join.h"
#include "framework/model/pretrained.h"
#include "tests/support/hone_binary.h"
#include "workers/controller/sft_loop.h"

namespace hone {
namespace {

namespace fs = std::filesystem;
using testing_support::HoneBinary;
using testing_support::RunCommand;
using ::testing::HasSubstr;

const std::string kMpirun =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "
    "mpirun --oversubscribe ";

std::vector<nlohmann::json> ReadJsonl(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

class DistributedTrain : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(::testing::TempDir() + "hone_distributed_" + std::to_string(getpid()));
    fs::remove_all(*root_);
    fs::create_directories(*root_);
    std::ofstream(*root_ + "/config.yaml") << "seed: 1\n";
    std::ofstream(*root_ + "/model.json") << R"({"model_type": "llama", "vocab_size": 8, "hidden_size": 32,
      "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 2, "max_position_embeddings": 96, "tie_word_embeddings": true})";
    std::vector<std::string> sft = Data();
    sft.insert(sft.end(), {"model.init_config=" + *root_ + "/model.json", "trainer.total_steps=8",
                           "trainer.sft_batch_size=16", "optim.lr=3e-3", "trainer.output_dir=" + *root_ + "/sft"});
    auto config = Config::Load(HoneConfigSchema(), "", sft);
    ASSERT_TRUE(config.ok()) << config.status();
    ASSERT_TRUE(RunSft(*config).ok());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }
  static std::vector<std::string> Data() {
    return {"data.dataset=arithmetic", "data.prompt_template=raw", "data.val_size=16",
            "data.arithmetic.num_examples=400", "runtime.num_threads=1"};
  }
  // GRPO settings shared by both runs. optim.eps=1 makes AdamW's step about lr * g, so
  // float32 reduction-order noise in the gradients stays noise-sized in the weights
  // (with a tiny eps the first step is lr * sign(g), and a near-zero gradient entry whose
  // sign differs by rounding moves by 2 lr).
  static std::string TrainArgs(const std::string& out) {
    std::vector<std::string> args = Data();
    args.insert(args.end(), {"model.path=" + *root_ + "/sft/final", "trainer.total_steps=3",
                             "data.train_batch_size=4", "rollout.n=4", "rollout.max_new_tokens=16",
                             "optim.lr=0.2", "optim.eps=1.0", "algorithm.kl_coef=0.05",
                             "trainer.ppo_mini_batch_size=2", "trainer.micro_batch_size=3",
                             "trainer.save_every=2", "trainer.output_dir=" + out});
    return "--config " + *root_ + "/config.yaml " + absl::StrJoin(args, " ");
  }
  static std::string* root_;
};
std::string* DistributedTrain::root_ = nullptr;

TEST_F(DistributedTrain, SameSeedSameRunSingleProcessAndMpirun) {
  const std::string hone = HoneBinary();
  ASSERT_FALSE(hone.empty());
  const std::string single = *root_ + "/single", mpi = *root_ + "/mpi";
  // Validation every step, sampled (in process: the evaluator on the trainer's policy;
  // under mpirun: the two rollout workers, scored by the controller).
  const std::string validation = " trainer.val_every=1 eval.n=3 eval.temperature=1.0 eval.k=[1,3]";
  auto one = RunCommand(hone + " train " + TrainArgs(single) + validation + " 2>&1");
  ASSERT_EQ(one.exit_code, 0) << one.out;
  auto many = RunCommand(kMpirun + "-np 6 " + hone + " train " + TrainArgs(mpi) + validation +
                         " placement.rollout=2 placement.reward=1 placement.trainer=2 2>&1");
  ASSERT_EQ(many.exit_code, 0) << many.out;
  EXPECT_THAT(many.out, HasSubstr("rank 5: trainer 1 on"));  // the placement table

  auto a = ReadJsonl(single + "/metrics.jsonl"), b = ReadJsonl(mpi + "/metrics.jsonl");
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  for (size_t step = 0; step < 3; ++step) {
    // Same sampled tokens => the same rewards and lengths, exactly; validation too.
    for (const char* key : {"reward_mean", "accuracy", "format_rate", "response_length_mean", "trained_sequences",
                            "val_accuracy", "val_format_rate", "val_response_length_mean", "val_pass_at_1",
                            "val_pass_at_3"}) {
      ASSERT_TRUE(b[step].contains(key)) << key << " missing under mpirun at step " << step + 1;
      EXPECT_EQ(a[step][key].get<double>(), b[step][key].get<double>()) << key << " at step " << step + 1;
    }
    // Losses: float32 sums in another order.
    for (const char* key : {"policy_loss", "kl", "entropy"}) {
      EXPECT_NEAR(a[step][key].get<double>(), b[step][key].get<double>(), 1e-5) << key << " at step " << step + 1;
    }
    EXPECT_NEAR(a[step]["grad_norm"].get<double>(), b[step]["grad_norm"].get<double>(),
                1e-4 * a[step]["grad_norm"].get<double>());
    // The weight sync reached the rollout workers: their log-probs are the trainers'.
    EXPECT_LT(b[step]["rollout_logprob_diff_mean"].get<double>(), 1e-4);
    EXPECT_GT(b[step]["weight_sync_bytes"].get<double>(), 0);
    EXPECT_GT(b[step]["trainer_resident_bytes"].get<double>(), 0);
  }
  auto final_a = LoadPretrained(single + "/final"), final_b = LoadPretrained(mpi + "/final");
  ASSERT_TRUE(final_a.ok()) << final_a.status();
  ASSERT_TRUE(final_b.ok()) << final_b.status();
  auto pb = final_b->model->named_parameters();
  double diff = 0, moved = 0;
  auto sft = *LoadPretrained(*root_ + "/sft/final");
  auto p0 = sft.model->named_parameters();
  for (const auto& item : final_a->model->named_parameters()) {
    diff = std::max(diff, (item.value() - pb[item.key()]).abs().max().item<double>());
    moved = std::max(moved, (item.value() - p0[item.key()]).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-3) << "training must move the weights, or the comparison says nothing";
  EXPECT_LT(diff, 1e-5);
  // A checkpoint of the distributed run: the model in HF layout and one optimizer shard per trainer rank.
  EXPECT_TRUE(fs::exists(mpi + "/checkpoints/step_000002/model.safetensors"));
  EXPECT_TRUE(fs::exists(mpi + "/checkpoints/step_000002/optimizer_shard_0_of_2.pt"));
  EXPECT_TRUE(fs::exists(mpi + "/checkpoints/step_000002/optimizer_shard_1_of_2.pt"));
  EXPECT_TRUE(fs::exists(mpi + "/checkpoints/step_000002/state.json"));
}

// Compares two runs' metrics.jsonl and final weights: same tokens and rewards, losses and
// weights within float32 reduction-order noise.
void ExpectSameRun(const std::string& a_dir, const std::string& b_dir, size_t steps) {
  auto a = ReadJsonl(a_dir + "/metrics.jsonl"), b = ReadJsonl(b_dir + "/metrics.jsonl");
  ASSERT_EQ(a.size(), steps) << a_dir;
  ASSERT_EQ(b.size(), steps) << b_dir;
  for (size_t i = 0; i < steps; ++i) {
    EXPECT_EQ(b[i]["step"].get<int64_t>(), static_cast<int64_t>(i + 1));
    for (const char* key : {"reward_mean", "response_length_mean", "policy_version"}) {
      EXPECT_EQ(a[i][key].get<double>(), b[i][key].get<double>()) << key << " at step " << i + 1;
    }
    for (const char* key : {"policy_loss", "kl", "learning_rate"}) {
      EXPECT_NEAR(a[i][key].get<double>(), b[i][key].get<double>(), 1e-5) << key << " at step " << i + 1;
    }
  }
  auto final_a = LoadPretrained(a_dir + "/final"), final_b = LoadPretrained(b_dir + "/final");
  ASSERT_TRUE(final_a.ok() && final_b.ok());
  auto pb = final_b->model->named_parameters();
  double diff = 0;
  for (const auto& item : final_a->model->named_parameters()) {
    diff = std::max(diff, (item.value() - pb[item.key()]).abs().max().item<double>());
  }
  EXPECT_LT(diff, 1e-5) << a_dir << " vs " << b_dir;
}

// 4 steps straight equal 2 steps + resume + 2 steps: in one process, under mpirun, and
// across placements (a single-process checkpoint resumed by 2 FSDP trainer ranks, whose
// optimizer state is re-split).
TEST_F(DistributedTrain, FourStepsEqualTwoStepsResumeTwoSteps) {
  const std::string hone = HoneBinary();
  ASSERT_FALSE(hone.empty());
  const std::string mpi_placement = " placement.rollout=2 placement.reward=1 placement.trainer=2 2>&1";
  auto run = [&](const std::string& launcher, const std::string& out, int steps, const std::string& extra) {
    std::string args = TrainArgs(out);
    args.replace(args.find("trainer.total_steps=3"), 21, "trainer.total_steps=" + std::to_string(steps));
    auto result = RunCommand(launcher + hone + " train " + args + " " + extra);
    EXPECT_EQ(result.exit_code, 0) << result.out;
    return result.out;
  };
  const std::string straight = *root_ + "/straight";
  run("", straight, 4, "2>&1");

  const std::string local = *root_ + "/resumed_local";
  run("", local, 2, "2>&1");
  EXPECT_THAT(run("", local, 4, "trainer.resume=auto 2>&1"), HasSubstr("resuming from " + local + "/checkpoints/step_000002"));
  ExpectSameRun(straight, local, 4);

  const std::string mpi = *root_ + "/resumed_mpi";
  run(kMpirun + "-np 6 ", mpi, 2, mpi_placement);
  run(kMpirun + "-np 6 ", mpi, 4, "trainer.resume=auto" + mpi_placement);
  ExpectSameRun(straight, mpi, 4);

  const std::string across = *root_ + "/resumed_across";
  run("", across, 2, "2>&1");
  run(kMpirun + "-np 6 ", across, 4, "trainer.resume=auto" + mpi_placement);
  ExpectSameRun(straight, across, 4);
}

// trainer.async_rollout: step s trains on rollouts of policy version s-2 (generated while
// step s-1 trained), one behind the sync run's s-1; the rollout/trainer log-prob gap then
// measures the lag. The schedule, not the overlap, decides the numbers: the async run in
// one process (generation on a thread) equals it under mpirun with 1/1/1 and 2/1/2 workers.
TEST_F(DistributedTrain, AsyncRolloutTrainsOneVersionBehindTheSameWayEverywhere) {
  const std::string hone = HoneBinary();
  ASSERT_FALSE(hone.empty());
  auto run = [&](const std::string& launcher, const std::string& out, const std::string& extra) {
    std::string args = TrainArgs(out);
    args.replace(args.find("trainer.total_steps=3"), 21, "trainer.total_steps=4");
    auto result = RunCommand(launcher + hone + " train " + args + " " + extra + " 2>&1");
    EXPECT_EQ(result.exit_code, 0) << result.out;
  };
  const std::string sync = *root_ + "/sync4", async = *root_ + "/async", async_111 = *root_ + "/async_111",
                    async_212 = *root_ + "/async_212";
  run("", sync, "");
  run("", async, "trainer.async_rollout=true");
  run(kMpirun + "-np 4 ", async_111, "trainer.async_rollout=true");
  run(kMpirun + "-np 6 ", async_212,
      "trainer.async_rollout=true placement.rollout=2 placement.reward=1 placement.trainer=2");
  auto s = ReadJsonl(sync + "/metrics.jsonl"), a = ReadJsonl(async + "/metrics.jsonl");
  ASSERT_EQ(s.size(), 4u);
  ASSERT_EQ(a.size(), 4u);
  for (int64_t step = 1; step <= 4; ++step) {
    const nlohmann::json& sm = s[step - 1];
    const nlohmann::json& am = a[step - 1];
    EXPECT_EQ(sm["rollout_policy_version"].get<double>(), step - 1) << "sync, step " << step;
    EXPECT_EQ(sm["policy_lag"].get<double>(), 0) << "sync, step " << step;
    EXPECT_EQ(am["rollout_policy_version"].get<double>(), std::max<int64_t>(0, step - 2)) << "async, step " << step;
    EXPECT_EQ(am["policy_lag"].get<double>(), step == 1 ? 0 : 1) << "async, step " << step;
    EXPECT_LT(sm["rollout_logprob_diff_mean"].get<double>(), 1e-4) << "sync, step " << step;
    if (step >= 3) {  // steps 1 and 2 both sample from the initial policy
      EXPECT_GT(am["rollout_logprob_diff_mean"].get<double>(), 1e-3)
          << "async, step " << step << ": the trainer's policy is one update ahead of the rollout's";
    }
  }
  ExpectSameRun(async, async_111, 4);
  ExpectSameRun(async, async_212, 4);

  // Resumed from the step-2 checkpoint (as after a crash), under mpirun: step 3 trains on the
  // rollouts the checkpoint saved (generated with version 1, which it does not hold), so
  // the run continues exactly.
  ASSERT_TRUE(fs::exists(async + "/checkpoints/step_000002/next_rollouts.pb"));
  const std::string resumed = *root_ + "/async_resumed";
  fs::copy(async, resumed, fs::copy_options::recursive);
  fs::remove_all(resumed + "/final");
  fs::remove_all(resumed + "/checkpoints/step_000004");
  run(kMpirun + "-np 4 ", resumed, "trainer.async_rollout=true trainer.resume=auto");
  ExpectSameRun(async, resumed, 4);
  EXPECT_EQ(ReadJsonl(resumed + "/metrics.jsonl")[2]["rollout_policy_version"].get<double>(), 1);
}

TEST_F(DistributedTrain, AsyncRolloutRefusesAZeroPolicyLag) {
  const std::string hone = HoneBinary();
  auto result = RunCommand(hone + " train " + TrainArgs(*root_ + "/async_lag0") +
                           " trainer.async_rollout=true trainer.max_policy_lag=0 2>&1");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.out, HasSubstr("trainer.max_policy_lag=0 refuses them"));
  EXPECT_FALSE(fs::exists(*root_ + "/async_lag0/metrics.jsonl"));
}

// A damaged checkpoint is an error naming it, not a silent fresh start.
TEST_F(DistributedTrain, ResumeFromADamagedCheckpointIsAnError) {
  const std::string hone = HoneBinary();
  const std::string out = *root_ + "/damaged";
  std::string args = TrainArgs(out);
  args.replace(args.find("trainer.total_steps=3"), 21, "trainer.total_steps=2");
  ASSERT_EQ(RunCommand(hone + " train " + args + " 2>&1").exit_code, 0);
  fs::remove(out + "/checkpoints/step_000002/optimizer_shard_0_of_1.pt");
  auto resumed = RunCommand(hone + " train " + args + " trainer.total_steps=4 trainer.resume=auto 2>&1");
  EXPECT_NE(resumed.exit_code, 0);
  EXPECT_THAT(resumed.out, HasSubstr("no optimizer_shard_*_of_*.pt in " + out + "/checkpoints/step_000002"));
}

TEST_F(DistributedTrain, WorldSizeThatDoesNotFitThePlacementIsAnError) {
  const std::string hone = HoneBinary();
  ASSERT_FALSE(hone.empty());
  auto run = RunCommand(kMpirun + "-np 3 " + hone + " train " + TrainArgs(*root_ + "/bad") + " 2>&1");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.out, HasSubstr("the job has 3 ranks but the placement needs 1 controller + placement.rollout=1 + "
                                 "placement.reward=1 + placement.trainer=1 = 4"));
  EXPECT_THAT(run.out, HasSubstr("mpirun -np 4"));
}

}  // namespace
}  // namespace hone
