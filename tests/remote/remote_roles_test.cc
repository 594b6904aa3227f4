// The rollout and reward roles over real in-process gRPC servers (one per worker, each with
// its own MainThreadQueue served by a thread of the test): remote == local, the token
// check, malformed requests, the Health heartbeat telling busy workers from hung ones, and
// the gRPC-overhead accounting (the worker's work time comes back in the call's trailer).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "framework/rpc/rpc.h"
#include "tests/support/tiny_policy.h"
#include "workers/common/health_monitor.h"
#include "workers/common/remote.h"
#include "workers/reward/local_reward.h"
#include "workers/reward/remote_reward.h"
#include "workers/reward/reward_service.h"
#include "workers/rollout/local_rollout.h"
#include "workers/rollout/remote_rollout.h"
#include "workers/rollout/rollout_service.h"

namespace hone {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing_support::TinyPolicy;

constexpr int kLimit = 64 << 20;
constexpr char kToken[] = "0123456789abcdef0123456789abcdef";

// One worker process in miniature: a gRPC server whose step calls run on `main`.
struct Worker {
  MainThreadQueue queue;
  std::unique_ptr<grpc::Service> service;
  rpc::RunningServer server;
  std::thread main;
  std::string stop_reason;
  WorkerEndpoint where;

  void Serve(std::unique_ptr<grpc::Service> s, WorkerEndpoint w) {
    service = std::move(s);
    auto running = rpc::StartServer("127.0.0.1", 0, {service.get()}, kLimit);
    ASSERT_TRUE(running.ok()) << running.status();
    server = std::move(*running);
    where = std::move(w);
    where.endpoint = server.endpoint;
    main = std::thread([this] { stop_reason = queue.Serve(); });
  }
  void Close() {
    queue.Stop("test over");
    if (main.joinable()) main.join();
    if (server.server) server.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server.server.reset();
  }
  ~Worker() { Close(); }
};

WorkerIdentity Identity(const std::string& role, int index, int rank, const std::string& host) {
  return WorkerIdentity{role, rank, index, host, "", kToken};
}

// Counts Generate calls, forwarding to the real engine.
class CountingEngine : public RolloutEngine {
 public:
  explicit CountingEngine(std::unique_ptr<LocalRollout> inner) : inner_(std::move(inner)) {}
  absl::StatusOr<Batch> Generate(const Batch& prompts, const SamplingParams& params) override {
    ++calls;
    return inner_->Generate(prompts, params);
  }
  absl::Status LoadWeights(const NamedTensors& w, int64_t v) override { return inner_->LoadWeights(w, v); }
  int64_t policy_version() const override { return inner_->policy_version(); }
  std::atomic<int> calls{0};

 private:
  std::unique_ptr<LocalRollout> inner_;
};

// Generate blocks until released: a worker busy in a long step.
class BlockingEngine : public RolloutEngine {
 public:
  absl::StatusOr<Batch> Generate(const Batch& prompts, const SamplingParams& params) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return released_; });
    Batch out;
    auto status = out.SetInts("group_id", std::vector<int64_t>(prompts.size() * params.n, 0));
    if (!status.ok()) return status;
    return out;
  }
  absl::Status LoadWeights(const NamedTensors&, int64_t) override { return absl::OkStatus(); }
  int64_t policy_version() const override { return 0; }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

// Generate takes 400 ms of work (sleeping) and answers rows without tokens.
class SleepingEngine : public RolloutEngine {
 public:
  absl::StatusOr<Batch> Generate(const Batch& prompts, const SamplingParams& params) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    Batch out;
    auto status = out.SetInts("group_id", std::vector<int64_t>(prompts.size() * params.n, 0));
    if (!status.ok()) return status;
    return out;
  }
  absl::Status LoadWeights(const NamedTensors&, int64_t) override { return absl::OkStatus(); }
  int64_t policy_version() const override { return 0; }
};

// A reward worker whose Health handler hangs while `hang` is set.
class HangingRewardService final : public proto::RewardService::Service {
 public:
  grpc::Status Health(grpc::ServerContext*, const proto::HealthRequest*, proto::HealthResponse*) override {
    for (int i = 0; i < 1000 && hang.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return grpc::Status::OK;
  }
  std::atomic<bool> hang{true};
};

RpcOptions Options(const std::string& token = kToken, double health_timeout_s = 0.5) {
  RpcOptions o;
  o.token = token;
  o.timeout_s = 60;
  o.health_timeout_s = health_timeout_s;
  o.max_message_bytes = kLimit;
  return o;
}

SamplingParams Sampling() {
  SamplingParams s;
  s.n = 3;
  s.temperature = 1.0;
  s.max_new_tokens = 12;
  s.stop_token_ids = {0};
  s.seed = 11;
  return s;
}

NamedTensors Weights(const Pretrained& policy) {
  NamedTensors weights;
  for (const auto& item : policy.model->named_parameters()) weights.emplace_back(item.key(), item.value());
  return weights;
}

class RemoteRolloutTest : public ::testing::Test {
 protected:
  void SetUp() override { policy_ = TinyPolicy(7); }

  // Starts `k` rollout workers (ranks 1..k on host "node<i>") on the same seeded policy.
  void StartWorkers(int k) {
    for (int i = 0; i < k; ++i) {
      auto local = LocalRollout::Create(policy_);
      ASSERT_TRUE(local.ok()) << local.status();
      engines_.push_back(std::make_unique<CountingEngine>(std::move(*local)));
      CountingEngine* engine = engines_.back().get();
      workers_.push_back(std::make_unique<Worker>());
      Worker* w = workers_.back().get();
      auto weights = Weights(policy_);
      RolloutServiceImpl::SyncFn sync = [engine, weights](int64_t version) -> absl::StatusOr<proto::SyncWeightsResponse> {
        absl::Status loaded = engine->LoadWeights(weights, version);
        if (!loaded.ok()) return loaded;
        proto::SyncWeightsResponse response;
        response.set_version(version);
        response.set_checksum(42);
        return response;
      };
      std::string host = "node" + std::to_string(i);
      w->Serve(std::make_unique<RolloutServiceImpl>(Identity("rollout", i, i + 1, host), engine, &w->queue, sync),
               WorkerEndpoint{"rollout", i, i + 1, host, ""});
      endpoints_.push_back(w->where);
    }
  }

  Batch Prompts(int count) {
    std::vector<std::string> all = {"1+2=?", "13-4+7=?", "5+5=?", "9-3=?", "2+2+2=?"};
    std::vector<std::string> truths = {"3", "16", "10", "6", "6"};
    all.resize(count);
    truths.resize(count);
    auto batch = MakePromptBatch(*policy_.tokenizer, all, truths, 100);
    EXPECT_TRUE(batch.ok()) << batch.status();
    return *batch;
  }

  void ExpectSameTrajectories(const Batch& remote, const Batch& local) {
    ASSERT_EQ(remote.size(), local.size());
    for (const char* name : {"input_ids", "attention_mask", "response_mask"}) {
      EXPECT_TRUE(torch::equal(remote.tensor(name), local.tensor(name))) << name;
    }
    auto mask = local.tensor("response_mask") > 0;
    auto diff = (remote.tensor("rollout_logprobs") - local.tensor("rollout_logprobs")).abs();
    EXPECT_LE(diff.masked_select(mask).max().item<float>(), 1e-6);
    for (const auto& name : local.StringNames()) EXPECT_EQ(remote.strings(name), local.strings(name)) << name;
    for (const auto& name : local.IntNames()) EXPECT_EQ(remote.ints(name), local.ints(name)) << name;
    EXPECT_EQ(remote.meta, local.meta);
  }

  void CompareWithLocal(int workers, int prompts) {
    StartWorkers(workers);
    Batch batch = Prompts(prompts);
    auto local = LocalRollout::Create(policy_);
    ASSERT_TRUE(local.ok());
    auto expected = (*local)->Generate(batch, Sampling());
    ASSERT_TRUE(expected.ok()) << expected.status();
    RemoteRollout remote(endpoints_, Options());
    auto got = remote.Generate(batch, Sampling());
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectSameTrajectories(*got, *expected);
    // The first worker's trajectories end at a different width than the rest: the join
    // had to pad.
    const auto& prompt_len = expected->ints("prompt_len");
    const auto& response_len = expected->ints("response_len");
    const int64_t first_rows = (prompts + workers - 1) / workers * Sampling().n;
    int64_t first_width = 0, rest_width = 0;
    for (int64_t i = 0; i < expected->size(); ++i) {
      int64_t& width = i < first_rows ? first_width : rest_width;
      width = std::max(width, prompt_len[i] + response_len[i]);
    }
    EXPECT_NE(first_width, rest_width);
  }

  Pretrained policy_;
  std::vector<std::unique_ptr<CountingEngine>> engines_;  // outlive the workers
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<WorkerEndpoint> endpoints_;
};

TEST(RemoteHelpersTest, SplitByGroupsAndConcatPadded) {
  Batch batch;
  ASSERT_TRUE(batch.SetInts("group_id", {0, 0, 1, 1, 2, 2, 3, 3, 4, 4}).ok());
  auto pieces = SplitByGroups(batch, 3, 2);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].ints("group_id"), (std::vector<int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(pieces[1].ints("group_id"), (std::vector<int64_t>{2, 2, 3, 3}));
  EXPECT_EQ(pieces[2].ints("group_id"), (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(SplitByGroups(batch, 7, 2)[6].size(), 0);

  Batch a, b;
  ASSERT_TRUE(a.SetTensor("ids", torch::ones({2, 3}, torch::kInt64)).ok());
  ASSERT_TRUE(a.SetTensor("reward", torch::ones({2})).ok());
  ASSERT_TRUE(b.SetTensor("ids", torch::full({1, 5}, 2, torch::kInt64)).ok());
  ASSERT_TRUE(b.SetTensor("reward", torch::zeros({1})).ok());
  auto joined = ConcatPadded({a, Batch(), b});
  ASSERT_TRUE(joined.ok()) << joined.status();
  ASSERT_EQ(joined->tensor("ids").sizes(), (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(joined->tensor("ids")[0][4].item<int64_t>(), 0);
  EXPECT_EQ(joined->tensor("ids")[2][4].item<int64_t>(), 2);
}

TEST_F(RemoteRolloutTest, TwoWorkersMatchOneLocalRollout) { CompareWithLocal(2, 5); }

TEST_F(RemoteRolloutTest, ThreeWorkersTwoPrompts) {
  CompareWithLocal(3, 2);
  EXPECT_EQ(engines_[0]->calls.load(), 1);
  EXPECT_EQ(engines_[1]->calls.load(), 1);
  EXPECT_EQ(engines_[2]->calls.load(), 0);  // no prompts: not called
}

TEST_F(RemoteRolloutTest, RpcSecondsLeaveOutTheWorkReportedByTheWorker) {
  SleepingEngine engine;  // outlives the worker
  Worker worker;
  worker.Serve(std::make_unique<RolloutServiceImpl>(Identity("rollout", 0, 1, "node0"), &engine, &worker.queue,
                                                    RolloutServiceImpl::SyncFn()),
               WorkerEndpoint{"rollout", 0, 1, "node0", ""});
  RemoteRollout remote({worker.where}, Options());
  const auto start = std::chrono::steady_clock::now();
  auto got = remote.Generate(Prompts(2), Sampling());
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(got.ok()) << got.status();
  const double rpc = remote.TakeRpcSeconds();
  EXPECT_GT(rpc, 0);
  EXPECT_GE(wall, 0.4);
  EXPECT_LT(rpc, wall - 0.35) << "the worker's 400 ms of work came back in x-hone-work-seconds";
  EXPECT_EQ(remote.TakeRpcSeconds(), 0) << "taking resets the total";
}

TEST_F(RemoteRolloutTest, SyncWeightsAndPolicyVersions) {
  StartWorkers(2);
  RemoteRollout remote(endpoints_, Options());
  EXPECT_EQ(remote.LoadWeights(Weights(policy_), 1).code(), absl::StatusCode::kFailedPrecondition);
  auto answers = remote.SyncWeights(5);
  ASSERT_TRUE(answers.ok()) << answers.status();
  ASSERT_EQ(answers->size(), 2u);
  EXPECT_EQ((*answers)[1].version(), 5);
  EXPECT_EQ(remote.policy_version(), 5);
  auto got = remote.Generate(Prompts(4), Sampling());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->meta.at("policy_version"), "5");

  // A weight sync that missed one worker: the versions disagree.
  ASSERT_TRUE(engines_[1]->LoadWeights(Weights(policy_), 6).ok());
  got = remote.Generate(Prompts(4), Sampling());
  ASSERT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(got.status().message(), HasSubstr("rollout worker 1 (rank 2 on host node1"));

  // A worker's own error keeps its code and names it.
  SamplingParams too_long = Sampling();
  too_long.max_new_tokens = 200;
  got = remote.Generate(Prompts(4), too_long);
  ASSERT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(got.status().message(), HasSubstr("rollout worker 0 (rank 1 on host node0, 127.0.0.1:"));

  ASSERT_TRUE(remote.Shutdown("step budget reached").ok());
  for (auto& w : workers_) {
    w->main.join();
    EXPECT_EQ(w->stop_reason, "step budget reached");
  }
  got = remote.Generate(Prompts(4), Sampling());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();
}

TEST_F(RemoteRolloutTest, TokenIsChecked) {
  StartWorkers(1);
  auto stub = proto::RolloutService::NewStub(rpc::MakeChannel(endpoints_[0].endpoint, kLimit));
  for (const std::string& token : {std::string(), std::string("wrong")}) {
    proto::GenerateResponse generated;
    auto c1 = rpc::MakeClientContext(token, 10);
    EXPECT_EQ(stub->Generate(c1.get(), proto::GenerateRequest(), &generated).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    proto::HealthResponse health;
    auto c2 = rpc::MakeClientContext(token, 10);
    EXPECT_EQ(stub->Health(c2.get(), proto::HealthRequest(), &health).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    proto::SyncWeightsResponse synced;
    auto c3 = rpc::MakeClientContext(token, 10);
    EXPECT_EQ(stub->SyncWeights(c3.get(), proto::SyncWeightsRequest(), &synced).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    proto::ShutdownResponse down;
    auto c4 = rpc::MakeClientContext(token, 10);
    EXPECT_EQ(stub->Shutdown(c4.get(), proto::ShutdownRequest(), &down).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(engines_[0]->calls.load(), 0);
  RemoteRollout remote(endpoints_, Options("wrong"));
  auto got = remote.Generate(Prompts(2), Sampling());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(got.status().message(), HasSubstr("rollout worker 0 (rank 1 on host node0"));
}

TEST_F(RemoteRolloutTest, MalformedRequestsAreRejectedAndTheWorkerKeepsServing) {
  StartWorkers(1);
  auto stub = proto::RolloutService::NewStub(rpc::MakeChannel(endpoints_[0].endpoint, kLimit));
  proto::GenerateRequest good;
  ASSERT_TRUE(rpc::BatchToProto(Prompts(2), good.mutable_prompts()).ok());
  SamplingParamsToProto(Sampling(), good.mutable_sampling());
  auto call = [&](const proto::GenerateRequest& request) {
    proto::GenerateResponse response;
    auto context = rpc::MakeClientContext(kToken, 30);
    return stub->Generate(context.get(), request, &response);
  };
  proto::GenerateRequest bad_bytes = good;
  bad_bytes.mutable_prompts()->mutable_tensors(0)->mutable_data()->resize(3);
  proto::GenerateRequest bad_length = good;
  bad_length.mutable_prompts()->mutable_ints(0)->set_values(0, 999);  // ints in name order: group_id, prompt_len
  bad_length.mutable_prompts()->mutable_ints(1)->set_values(0, 999);
  proto::GenerateRequest bad_dtype = good;
  bad_dtype.mutable_prompts()->mutable_tensors(0)->set_dtype("float64");
  proto::GenerateRequest bad_sampling = good;
  bad_sampling.mutable_sampling()->set_n(0);
  for (const auto* request : {&bad_bytes, &bad_length, &bad_dtype, &bad_sampling}) {
    grpc::Status status = call(*request);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  }
  EXPECT_EQ(engines_[0]->calls.load(), 0);
  proto::HealthResponse health;
  auto context = rpc::MakeClientContext(kToken, 5);
  ASSERT_TRUE(stub->Health(context.get(), proto::HealthRequest(), &health).ok());
  EXPECT_EQ(health.role(), "rollout");
  EXPECT_EQ(health.rank(), 1);
  EXPECT_EQ(health.host(), "node0");
  EXPECT_FALSE(health.busy());
  EXPECT_TRUE(call(good).ok());
}

Batch ScoringBatch() {
  Batch batch;
  EXPECT_TRUE(batch.SetStrings("response", {"\\boxed{3}", "4", "so \\boxed{16}", "\\boxed{9}", "10", "x"}).ok());
  EXPECT_TRUE(batch.SetStrings("ground_truth", {"3", "3", "16", "10", "10", "6"}).ok());
  EXPECT_TRUE(batch.SetInts("group_id", {0, 0, 1, 1, 2, 2}).ok());
  EXPECT_TRUE(batch.SetTensor("input_ids", torch::arange(24, torch::kInt64).view({6, 4})).ok());
  return batch;
}

TEST(RemoteRewardTest, TwoWorkersMatchTheLocalScorer) {
  std::vector<std::string> fns = {"boxed_integer", "format"};
  auto local = LocalRewardScorer::Create(fns, {});
  ASSERT_TRUE(local.ok()) << local.status();
  std::vector<std::unique_ptr<LocalRewardScorer>> scorers;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<WorkerEndpoint> endpoints;
  for (int i = 0; i < 2; ++i) {
    scorers.push_back(*LocalRewardScorer::Create(fns, {}));
    workers.push_back(std::make_unique<Worker>());
    Worker* w = workers.back().get();
    w->Serve(std::make_unique<RewardServiceImpl>(Identity("reward", i, 3 + i, "cpu"), scorers.back().get(), &w->queue),
             WorkerEndpoint{"reward", i, 3 + i, "cpu", ""});
    endpoints.push_back(w->where);
  }
  Batch expected = ScoringBatch(), got = ScoringBatch();
  ASSERT_TRUE((*local)->Score(expected).ok());
  RemoteRewardScorer remote(endpoints, Options());
  ASSERT_TRUE(remote.Score(got).ok());
  EXPECT_EQ(got.TensorNames(), expected.TensorNames());
  for (const auto& name : expected.TensorNames()) EXPECT_TRUE(torch::equal(got.tensor(name), expected.tensor(name))) << name;

  Batch broken = ScoringBatch();
  std::vector<std::string> truths = broken.strings("ground_truth");
  truths[5] = "not a number";
  ASSERT_TRUE(broken.SetStrings("ground_truth", truths).ok());
  absl::Status status = remote.Score(broken);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("reward worker 1 (rank 4 on host cpu"));
  EXPECT_FALSE(broken.HasTensor("reward"));

  ASSERT_TRUE(remote.Shutdown("done").ok());
}

// ---- the heartbeat ----

struct Reported {
  std::promise<std::string> promise;
  std::future<std::string> future = promise.get_future();
  std::atomic<int> calls{0};
  std::function<void(const std::string&)> Callback() {
    return [this](const std::string& message) {
      if (calls++ == 0) promise.set_value(message);
    };
  }
};

TEST(HealthMonitorTest, ReportsAHungWorkerNamingIt) {
  Worker healthy, hung;
  BlockingEngine engine;
  engine.Release();
  healthy.Serve(std::make_unique<RolloutServiceImpl>(Identity("rollout", 0, 1, "node0"), &engine, &healthy.queue, nullptr),
                WorkerEndpoint{"rollout", 0, 1, "node0", ""});
  auto service = std::make_unique<HangingRewardService>();
  HangingRewardService* hanging = service.get();
  hung.Serve(std::move(service), WorkerEndpoint{"reward", 0, 5, "hung-host", ""});
  Reported reported;
  const double interval = 0.2;
  const double timeout = 1.5;  // generous: a loaded CI machine must not fail the healthy worker
  HealthMonitor monitor({healthy.where, hung.where}, Options(kToken, timeout), interval, reported.Callback());
  auto start = std::chrono::steady_clock::now();
  monitor.Start();
  ASSERT_EQ(reported.future.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(waited, timeout);  // reported only after the deadline passed

  std::string message = reported.future.get();
  EXPECT_THAT(message, HasSubstr("reward worker 0 (rank 5 on host hung-host"));
  EXPECT_THAT(message, HasSubstr("did not answer Health within 1.5 s: it is hung"));
  EXPECT_THAT(message, HasSubstr("has not answered since"));
  EXPECT_THAT(message, Not(HasSubstr("rollout worker")));
  monitor.Stop();
  EXPECT_EQ(reported.calls.load(), 1);
  hanging->hang = false;
}

TEST(HealthMonitorTest, ReportsAWorkerWhoseServerIsGone) {
  Worker worker;
  BlockingEngine engine;
  engine.Release();
  worker.Serve(std::make_unique<RolloutServiceImpl>(Identity("rollout", 2, 3, "node7"), &engine, &worker.queue, nullptr),
               WorkerEndpoint{"rollout", 2, 3, "node7", ""});
  Reported reported;
  HealthMonitor monitor({worker.where}, Options(kToken, 1.5), 0.1, reported.Callback());
  monitor.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // a few good answers first
  EXPECT_EQ(reported.calls.load(), 0);
  worker.Close();
  ASSERT_EQ(reported.future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  std::string message = reported.future.get();
  EXPECT_THAT(message, HasSubstr("rollout worker 2 (rank 3 on host node7"));
  EXPECT_THAT(message, HasSubstr("last answered"));
}

TEST(HealthMonitorTest, ABusyWorkerIsNotReported) {
  Worker worker;
  BlockingEngine engine;
  worker.Serve(std::make_unique<RolloutServiceImpl>(Identity("rollout", 0, 1, "node0"), &engine, &worker.queue, nullptr),
               WorkerEndpoint{"rollout", 0, 1, "node0", ""});
  Pretrained policy = TinyPolicy(3);
  auto prompts = MakePromptBatch(*policy.tokenizer, {"1+1=?"}, {"2"}, 0);
  ASSERT_TRUE(prompts.ok());
  RemoteRollout remote({worker.where}, Options());
  auto generating = std::async(std::launch::async, [&] { return remote.Generate(*prompts, Sampling()); });
  for (int i = 0; i < 500 && !worker.queue.state().busy; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(worker.queue.state().busy);

  Reported reported;
  HealthMonitor monitor({worker.where}, Options(kToken, 1.5), 0.1, reported.Callback());
  monitor.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  EXPECT_EQ(reported.calls.load(), 0) << (reported.calls ? reported.future.get() : "");

  auto stub = proto::RolloutService::NewStub(rpc::MakeChannel(worker.where.endpoint, kLimit));
  proto::HealthResponse health;
  auto context = rpc::MakeClientContext(kToken, 5);
  ASSERT_TRUE(stub->Health(context.get(), proto::HealthRequest(), &health).ok());
  EXPECT_TRUE(health.busy());
  EXPECT_EQ(health.current_call(), "Generate");
  EXPECT_GT(health.busy_seconds(), 1.0);

  monitor.Stop();
  engine.Release();
  auto got = generating.get();
  EXPECT_TRUE(got.ok()) << got.status();
}

}  // namespace
}  // namespace hone
