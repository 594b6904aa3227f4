// The rollout role's gRPC service (DESIGN.md §2): the server side of RemoteRollout,
// wrapping a RolloutEngine (LocalRollout) on a rollout worker.
//
// Every handler checks the job token first. Step calls (Generate, SyncWeights) run on the
// worker's main thread through its MainThreadQueue, one at a time; Health answers from the
// handler thread at once, so a worker busy in a long Generate still answers it (that is
// how the controller tells busy from hung). Malformed requests (a bad tensor, a prompts
// batch that breaks the contract of roles.h, invalid sampling parameters) are answered
// with INVALID_ARGUMENT and the worker keeps serving.
#pragma once

#include <functional>

#include "absl/status/statusor.h"
#include "proto/hone.grpc.pb.h"
#include "workers/common/serving.h"
#include "workers/roles/roles.h"

namespace hone {

class RolloutServiceImpl final : public proto::RolloutService::Service {
 public:
  // Called on the main thread for SyncWeights(version): joins the weight broadcast, loads
  // the weights into the engine and returns the response (version, checksum, seconds,
  // bytes). May be empty: SyncWeights then answers FAILED_PRECONDITION.
  using SyncFn = std::function<absl::StatusOr<proto::SyncWeightsResponse>(int64_t version)>;

  // `engine` and `queue` are not owned and must outlive the server.
  RolloutServiceImpl(WorkerIdentity id, RolloutEngine* engine, MainThreadQueue* queue, SyncFn sync);

  // The trajectories of engine->Generate and the policy version they were sampled with.
  grpc::Status Generate(grpc::ServerContext* context, const proto::GenerateRequest* request,
                        proto::GenerateResponse* response) override;
  grpc::Status SyncWeights(grpc::ServerContext* context, const proto::SyncWeightsRequest* request,
                           proto::SyncWeightsResponse* response) override;
  // Role, rank, host and the queue's state (busy, current call, seconds in it); never queues.
  grpc::Status Health(grpc::ServerContext* context, const proto::HealthRequest* request,
                      proto::HealthResponse* response) override;
  // Stops the queue: the worker's Serve() returns with the reason after the call in progress.
  grpc::Status Shutdown(grpc::ServerContext* context, const proto::ShutdownRequest* request,
                        proto::ShutdownResponse* response) override;

 private:
  WorkerIdentity id_;
  RolloutEngine* engine_;
  MainThreadQueue* queue_;
  SyncFn sync_;
};

// SamplingParams from the wire, INVALID_ARGUMENT naming the field when out of range
// (n < 1, max_new_tokens < 1, temperature < 0 or not finite, top_k < 0, top_p outside (0, 1]).
absl::StatusOr<SamplingParams> SamplingParamsFromProto(const proto::SamplingParams& msg);
void SamplingParamsToProto(const SamplingParams& params, proto::SamplingParams* out);

}  // namespace hone
