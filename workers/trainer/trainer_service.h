// The trainer role's gRPC service: the server side of RemoteTrainer on every FSDP trainer
// rank, wrapping a ShardedPolicyTrainer. Every handler checks the job token first; step
// calls run on the main thread through the MainThreadQueue (they run collectives over the
// trainer group, and MPI is called from the main thread only); Health answers at once.
#pragma once

#include <functional>

#include "proto/hone.grpc.pb.h"
#include "workers/common/serving.h"
#include "workers/trainer/sharded_trainer.h"

namespace hone {

class TrainerServiceImpl final : public proto::TrainerService::Service {
 public:
  // Called on the main thread for SyncWeights(version): gathers the full weights (every
  // trainer rank) and the leader broadcasts them to the rollout workers.
  using SyncFn = std::function<absl::StatusOr<proto::SyncWeightsResponse>(int64_t version)>;

  TrainerServiceImpl(WorkerIdentity id, ShardedPolicyTrainer* trainer, MainThreadQueue* queue, SyncFn sync);

  grpc::Status ComputeLogProbs(grpc::ServerContext* context, const proto::ComputeLogProbsRequest* request,
                               proto::ComputeLogProbsResponse* response) override;
  grpc::Status Update(grpc::ServerContext* context, const proto::UpdateRequest* request,
                      proto::UpdateResponse* response) override;
  grpc::Status SaveCheckpoint(grpc::ServerContext* context, const proto::CheckpointRequest* request,
                              proto::CheckpointResponse* response) override;
  grpc::Status LoadCheckpoint(grpc::ServerContext* context, const proto::CheckpointRequest* request,
                              proto::CheckpointResponse* response) override;
  grpc::Status SyncWeights(grpc::ServerContext* context, const proto::SyncWeightsRequest* request,
                           proto::SyncWeightsResponse* response) override;
  grpc::Status Health(grpc::ServerContext* context, const proto::HealthRequest* request,
                      proto::HealthResponse* response) override;
  grpc::Status Shutdown(grpc::ServerContext* context, const proto::ShutdownRequest* request,
                        proto::ShutdownResponse* response) override;

 private:
  WorkerIdentity id_;
  ShardedPolicyTrainer* trainer_;
  MainThreadQueue* queue_;
  SyncFn sync_;
};

}  // namespace hone
