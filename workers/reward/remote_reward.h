// The reward role on the controller's side in distributed mode (DESIGN.md §2-3): the
// RewardScorer interface over gRPC, fanning each batch out to the reward workers
// (workers/reward/reward_service.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "proto/hone.grpc.pb.h"
#include "workers/common/remote.h"
#include "workers/roles/roles.h"

namespace hone {

class RemoteRewardScorer : public RewardScorer {
 public:
  // One channel per worker; channels connect lazily, on the first call.
  RemoteRewardScorer(std::vector<WorkerEndpoint> workers, RpcOptions options);

  // Splits the rows over the workers (contiguous, sizes differing by at most one; a worker
  // with no rows is not called), scores concurrently (deadline options.timeout_s), joins,
  // and copies the new columns (reward, reward/<fn>) into `trajectories`. Only the string
  // and integer columns travel (reward functions read text; the token tensors would be
  // most of the bytes). On error `trajectories` is unchanged; errors name the worker and
  // keep the gRPC status code.
  absl::Status Score(Batch& trajectories) override;

  // Asks every worker to shut down (best effort, deadline options.health_timeout_s);
  // returns the first failure.
  absl::Status Shutdown(const std::string& reason);

  const std::vector<WorkerEndpoint>& workers() const { return workers_; }

  // The gRPC overhead (RpcSecondsOfCall, the slowest worker of each fan-out) of the Score
  // calls since the last take; resets it to 0.
  double TakeRpcSeconds() { return rpc_seconds_.Take(); }

 private:
  std::vector<WorkerEndpoint> workers_;
  RpcOptions options_;
  std::vector<std::unique_ptr<proto::RewardService::Stub>> stubs_;
  RpcSecondsTotal rpc_seconds_;
};

}  // namespace hone
