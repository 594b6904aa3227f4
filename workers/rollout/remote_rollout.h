// The rollout role on the controller's side in distributed mode (DESIGN.md §2-3): the
// RolloutEngine interface over gRPC, fanning each call out to the rollout workers
// (workers/rollout/rollout_service.h). The controller's loop cannot tell it from
// LocalRollout, except that weights reach the workers over the weight-sync communicator
// (SyncWeights), never through the controller.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "proto/hone.grpc.pb.h"
#include "workers/common/remote.h"
#include "workers/roles/roles.h"

namespace hone {

class RemoteRollout : public RolloutEngine {
 public:
  // One channel per worker; channels connect lazily, on the first call.
  RemoteRollout(std::vector<WorkerEndpoint> workers, RpcOptions options);

  // Splits the prompts by prompt over the workers (contiguous, sizes differing by at most
  // one; a worker with no prompts is not called), calls Generate on all concurrently with
  // deadline options.timeout_s, and joins the trajectories in order with ConcatPadded.
  // Every worker must report the same policy version (FAILED_PRECONDITION naming them
  // otherwise: a weight sync missed one); it becomes meta "policy_version". Errors name the
  // worker (Describe) and keep the gRPC status code. Tokens do not depend on the number of
  // workers: every group samples from its own random stream, keyed by its group id.
  absl::StatusOr<Batch> Generate(const Batch& prompts, const SamplingParams& params) override;

  // FAILED_PRECONDITION: in distributed mode the weights never travel through the
  // controller; the trainers broadcast them to the rollout workers (SyncWeights).
  absl::Status LoadWeights(const NamedTensors& weights, int64_t version) override;

  // The last version every worker confirmed (by a Generate all of them took part in, or by
  // SyncWeights); 0 before any, as a freshly started worker holds version 0.
  int64_t policy_version() const override { return version_.load(); }

  // Sends SyncWeights(version) to every worker concurrently (deadline options.timeout_s)
  // and returns their answers in worker order. An answer for another version is an error.
  // Comparing checksums (with each other and with the trainers') is the caller's job.
  absl::StatusOr<std::vector<proto::SyncWeightsResponse>> SyncWeights(int64_t version);

  // Asks every worker to shut down (best effort: every worker is asked, with deadline
  // options.health_timeout_s); returns the first failure.
  absl::Status Shutdown(const std::string& reason);

  const std::vector<WorkerEndpoint>& workers() const { return workers_; }

  // The gRPC overhead (RpcSecondsOfCall, the slowest worker of each fan-out) of the
  // Generate and SyncWeights calls since the last take; resets it to 0.
  double TakeRpcSeconds() { return rpc_seconds_.Take(); }

 private:
  std::vector<WorkerEndpoint> workers_;
  RpcOptions options_;
  std::vector<std::unique_ptr<proto::RolloutService::Stub>> stubs_;
  std::atomic<int64_t> version_{0};
  RpcSecondsTotal rpc_seconds_;
};

}  // namespace hone
