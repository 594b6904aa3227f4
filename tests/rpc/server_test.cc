// A real in-process gRPC server: token check, deadlines, message limits, status mapping.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <set>
#include <thread>

#include "framework/rpc/rpc.h"
#include "proto/hone.grpc.pb.h"

namespace hone::rpc {
namespace {

using ::testing::HasSubstr;

constexpr int kBigLimit = 64 << 20;

// A RewardService whose handlers check the token first, as every Hone handler does.
class TestRewardService final : public proto::RewardService::Service {
 public:
  explicit TestRewardService(std::string token) : token_(std::move(token)) {}

  grpc::Status Health(grpc::ServerContext* context, const proto::HealthRequest*,
                      proto::HealthResponse* response) override {
    grpc::Status auth = CheckToken(*context, token_);
    if (!auth.ok()) return auth;
    int sleep_ms = health_sleep_ms.load();
    if (sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    response->set_role("reward");
    response->set_rank(3);
    return grpc::Status::OK;
  }

  // Echoes the batch through the codec, as a real worker decodes and re-encodes it.
  grpc::Status Score(grpc::ServerContext* context, const proto::ScoreRequest* request,
                     proto::ScoreResponse* response) override {
    grpc::Status auth = CheckToken(*context, token_);
    if (!auth.ok()) return auth;
    absl::StatusOr<Batch> batch = BatchFromProto(request->trajectories());
    if (!batch.ok()) return ToGrpc(batch.status());
    return ToGrpc(BatchToProto(*batch, response->mutable_scored()));
  }

  std::atomic<int> health_sleep_ms{0};

 private:
  std::string token_;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> token = RandomToken();
    ASSERT_TRUE(token.ok()) << token.status();
    token_ = *token;
    service_ = std::make_unique<TestRewardService>(token_);
    absl::StatusOr<RunningServer> server = StartServer("127.0.0.1", 0, {service_.get()}, kBigLimit);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = proto::RewardService::NewStub(MakeChannel(server_.endpoint, kBigLimit));
  }

  void TearDown() override {
    // Do not wait for a handler still sleeping after its client gave up.
    if (server_.server) server_.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  grpc::Status Health(std::unique_ptr<grpc::ClientContext> context) {
    proto::HealthResponse response;
    return stub_->Health(context.get(), proto::HealthRequest(), &response);
  }

  std::string token_;
  std::unique_ptr<TestRewardService> service_;
  RunningServer server_;
  std::unique_ptr<proto::RewardService::Stub> stub_;
};

TEST(RpcToken, RandomTokensAre32LowercaseHexAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<std::string> token = RandomToken();
    ASSERT_TRUE(token.ok()) << token.status();
    ASSERT_EQ(token->size(), 32u);
    EXPECT_EQ(token->find_first_not_of("0123456789abcdef"), std::string::npos) << *token;
    seen.insert(*token);
  }
  EXPECT_EQ(seen.size(), 20u);
}

TEST(RpcStatus, CodesAndMessagesSurviveBothWays) {
  grpc::Status g = ToGrpc(absl::InvalidArgumentError("batch tensor 'x' is bad"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(g.error_message(), "batch tensor 'x' is bad");
  EXPECT_TRUE(ToGrpc(absl::OkStatus()).ok());
  EXPECT_EQ(ToGrpc(absl::DeadlineExceededError("slow")).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(ToGrpc(absl::Status(static_cast<absl::StatusCode>(99), "odd")).error_code(), grpc::StatusCode::UNKNOWN);

  absl::Status a = FromGrpc(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"),
                            "Score on rank 3 (reward, node1)");
  EXPECT_EQ(a.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(a.message(), "Score on rank 3 (reward, node1): connection refused");
  EXPECT_EQ(FromGrpc(grpc::Status(grpc::StatusCode::NOT_FOUND, "nope"), "").message(), "nope");
  EXPECT_TRUE(FromGrpc(grpc::Status::OK, "ctx").ok());
}

TEST_F(ServerTest, EndpointNamesTheChosenPort) {
  EXPECT_GT(server_.port, 0);
  EXPECT_EQ(server_.endpoint, "127.0.0.1:" + std::to_string(server_.port));
}

TEST_F(ServerTest, RightTokenIsServed) {
  proto::HealthResponse response;
  auto context = MakeClientContext(token_, 10.0);
  grpc::Status s = stub_->Health(context.get(), proto::HealthRequest(), &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.role(), "reward");
  EXPECT_EQ(response.rank(), 3);
}

TEST_F(ServerTest, MissingOrWrongTokenIsUnauthenticated) {
  auto no_token = std::make_unique<grpc::ClientContext>();
  no_token->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status s = Health(std::move(no_token));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("missing or wrong job token"));

  std::string wrong = token_;
  wrong[31] = wrong[31] == '0' ? '1' : '0';
  s = Health(MakeClientContext(wrong, 10.0));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Health(MakeClientContext(token_.substr(0, 31), 10.0)).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Health(MakeClientContext("", 10.0)).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // The server keeps serving the right token afterwards.
  EXPECT_TRUE(Health(MakeClientContext(token_, 10.0)).ok());
}

TEST(RpcToken, EmptyServerTokenRejectsEverything) {
  TestRewardService service("");
  absl::StatusOr<RunningServer> server = StartServer("127.0.0.1", 0, {&service}, kBigLimit);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = proto::RewardService::NewStub(MakeChannel(server->endpoint, kBigLimit));
  proto::HealthResponse response;
  auto context = MakeClientContext("", 10.0);
  EXPECT_EQ(stub->Health(context.get(), proto::HealthRequest(), &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  server->server->Shutdown();
}

TEST_F(ServerTest, DeadlineTurnsAHangIntoAnError) {
  service_->health_sleep_ms = 2000;
  auto start = std::chrono::steady_clock::now();
  grpc::Status s = Health(MakeClientContext(token_, 0.2));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_GE(seconds, 0.15);
  EXPECT_LT(seconds, 1.5);
  service_->health_sleep_ms = 0;
}

// A 16 MiB batch: 4 Mi float32 values with a pattern that is checked element by element.
Batch BigBatch() {
  constexpr int64_t kRows = 1024;
  constexpr int64_t kCols = 4096;
  Batch batch;
  torch::Tensor values = torch::arange(kRows * kCols, torch::kInt64).to(torch::kFloat32).view({kRows, kCols}) * 0.5f;
  EXPECT_TRUE(batch.SetTensor("values", values).ok());
  std::vector<int64_t> ids(kRows);
  for (int64_t i = 0; i < kRows; ++i) ids[i] = i * 3;
  EXPECT_TRUE(batch.SetInts("ids", ids).ok());
  return batch;
}

TEST_F(ServerTest, SixteenMiBBatchRoundTripsThroughScore) {
  proto::ScoreRequest request;
  ASSERT_TRUE(BatchToProto(BigBatch(), request.mutable_trajectories()).ok());
  ASSERT_GT(request.ByteSizeLong(), size_t{16} << 20);
  proto::ScoreResponse response;
  auto context = MakeClientContext(token_, 60.0);
  grpc::Status s = stub_->Score(context.get(), request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  absl::StatusOr<Batch> back = BatchFromProto(response.scored());
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 1024);
  const torch::Tensor& values = back->tensor("values");
  ASSERT_EQ(values.sizes(), torch::IntArrayRef({1024, 4096}));
  ASSERT_EQ(values.scalar_type(), torch::kFloat32);
  // Against the generating formula (all values are exact in float32: k/2 with k < 2^24).
  const float* p = values.data_ptr<float>();
  int64_t mismatches = 0;
  for (int64_t k = 0; k < values.numel(); ++k) mismatches += p[k] != static_cast<float>(k) * 0.5f;
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(p[4096 * 1023 + 4095], 2097151.5f);
  EXPECT_EQ(back->ints("ids")[1023], 3069);
}

TEST_F(ServerTest, DefaultSizedLimitRefusesTheBigBatch) {
  // The same call through a channel left at gRPC's usual 4 MiB: the limit is what the
  // explicit max_message_bytes is there for.
  auto small = proto::RewardService::NewStub(MakeChannel(server_.endpoint, 4 << 20));
  proto::ScoreRequest request;
  ASSERT_TRUE(BatchToProto(BigBatch(), request.mutable_trajectories()).ok());
  proto::ScoreResponse response;
  auto context = MakeClientContext(token_, 60.0);
  EXPECT_EQ(small->Score(context.get(), request, &response).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_F(ServerTest, MalformedTensorIsInvalidArgumentAndServerLivesOn) {
  proto::ScoreRequest request;
  proto::Batch* batch = request.mutable_trajectories();
  batch->set_rows(2);
  proto::Tensor* t = batch->add_tensors();
  t->set_name("rewards");
  t->set_dtype("float32");
  t->add_shape(2);
  t->set_data(std::string(7, '\0'));  // 2 floats need 8 bytes
  proto::ScoreResponse response;
  auto context = MakeClientContext(token_, 10.0);
  grpc::Status s = stub_->Score(context.get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("rewards"));
  absl::Status a = FromGrpc(s, "Score on rank 3");
  EXPECT_EQ(a.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(a.message(), HasSubstr("Score on rank 3: "));
  EXPECT_TRUE(Health(MakeClientContext(token_, 10.0)).ok());
}

TEST_F(ServerTest, TakenPortIsAnErrorNamingIt) {
  TestRewardService other(token_);
  absl::StatusOr<RunningServer> second = StartServer("127.0.0.1", server_.port, {&other}, kBigLimit);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr(server_.endpoint));
}

TEST(AnnouncedEndpoint, WildcardBindsAreAnnouncedByHostName) {
  EXPECT_EQ(AnnouncedEndpoint("0.0.0.0", 4321, "node-7"), "node-7:4321");
  EXPECT_EQ(AnnouncedEndpoint("::", 4321, "node-7"), "node-7:4321");
  EXPECT_EQ(AnnouncedEndpoint("127.0.0.1", 4321, "node-7"), "127.0.0.1:4321");
  EXPECT_EQ(AnnouncedEndpoint("10.0.0.5", 80, "node-7"), "10.0.0.5:80");
  EXPECT_EQ(AnnouncedEndpoint("::1", 4321, "node-7"), "[::1]:4321");
}

TEST(AnnouncedEndpoint, AWildcardServerIsReachableAtTheAnnouncedName) {
  TestRewardService service("t");
  absl::StatusOr<RunningServer> server = StartServer("0.0.0.0", 0, {&service}, kBigLimit);
  ASSERT_TRUE(server.ok()) << server.status();
  // "localhost" stands for this machine's host name, which need not resolve in a sandbox.
  const std::string endpoint = AnnouncedEndpoint("0.0.0.0", server->port, "localhost");
  auto stub = proto::RewardService::NewStub(MakeChannel(endpoint, kBigLimit));
  proto::HealthResponse response;
  auto context = MakeClientContext("t", 10.0);
  EXPECT_TRUE(stub->Health(context.get(), proto::HealthRequest(), &response).ok()) << endpoint;
  server->server->Shutdown();
}

}  // namespace
}  // namespace hone::rpc
