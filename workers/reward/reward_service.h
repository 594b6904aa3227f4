// The reward role's gRPC service (DESIGN.md §2): the server side of RemoteRewardScorer,
// wrapping a RewardScorer (LocalRewardScorer) on a reward worker.
//
// Every handler checks the job token first. Score runs on the worker's main thread through
// its MainThreadQueue; Health answers from the handler thread at once (busy or not). A
// malformed batch is answered with INVALID_ARGUMENT and the worker keeps serving.
#pragma once

#include "proto/hone.grpc.pb.h"
#include "workers/common/serving.h"
#include "workers/roles/roles.h"

namespace hone {

class RewardServiceImpl final : public proto::RewardService::Service {
 public:
  // `scorer` and `queue` are not owned and must outlive the server.
  RewardServiceImpl(WorkerIdentity id, RewardScorer* scorer, MainThreadQueue* queue);

  // Answers the received batch with the scorer's columns (reward, reward/<fn>) added.
  grpc::Status Score(grpc::ServerContext* context, const proto::ScoreRequest* request,
                     proto::ScoreResponse* response) override;
  grpc::Status Health(grpc::ServerContext* context, const proto::HealthRequest* request,
                      proto::HealthResponse* response) override;
  grpc::Status Shutdown(grpc::ServerContext* context, const proto::ShutdownRequest* request,
                        proto::ShutdownResponse* response) override;

 private:
  WorkerIdentity id_;
  RewardScorer* scorer_;
  MainThreadQueue* queue_;
};

}  // namespace hone
