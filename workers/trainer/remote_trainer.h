// The controller's side of the FSDP trainer group: PolicyTrainer over gRPC. Rows are
// spread over the trainer ranks in equal shares (data parallel under FSDP); for Update,
// every global mini-batch is cut across the ranks, so that rank r's k-th local mini-batch
// is its piece of the k-th global one and the group takes the optimizer steps a single
// trainer would take.
#pragma once

#include <memory>
#include <vector>

#include "proto/hone.grpc.pb.h"
#include "workers/common/remote.h"
#include "workers/roles/roles.h"

namespace hone {

class RemoteTrainer : public PolicyTrainer {
 public:
  // ppo_mini_batch_size as in TrainerOptions (sequences; 0 = the whole batch).
  RemoteTrainer(std::vector<WorkerEndpoint> workers, RpcOptions options, int64_t ppo_mini_batch_size);

  absl::StatusOr<LogProbs> ComputeLogProbs(const Batch& trajectories) override;
  absl::StatusOr<Metrics> Update(const Batch& trajectories) override;
  // Weights never travel through the controller: FailedPrecondition (use SyncWeights).
  absl::StatusOr<NamedTensors> PolicyWeights() override;
  absl::Status SaveCheckpoint(const std::string& dir) override;
  absl::Status LoadCheckpoint(const std::string& dir) override;
  // SyncWeights(version) on every trainer rank; answers in rank order.
  absl::StatusOr<std::vector<proto::SyncWeightsResponse>> SyncWeights(int64_t version);
  absl::Status Shutdown(const std::string& reason);
  const std::vector<WorkerEndpoint>& workers() const { return workers_; }

  // The gRPC overhead (RpcSecondsOfCall, the slowest rank of each fan-out) of the step
  // and checkpoint calls since the last take; resets it to 0.
  double TakeRpcSeconds() { return rpc_seconds_.Take(); }

 private:
  // SaveCheckpoint or LoadCheckpoint(dir) on every trainer rank at once.
  absl::Status CheckpointCall(const std::string& dir, bool save);

  std::vector<WorkerEndpoint> workers_;
  RpcOptions options_;
  int64_t ppo_mini_batch_size_;
  std::vector<std::unique_ptr<proto::TrainerService::Stub>> stubs_;
  RpcSecondsTotal rpc_seconds_;
};

}  // namespace hone
