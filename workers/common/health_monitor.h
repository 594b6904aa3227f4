// The controller's heartbeat (DESIGN.md §2, §9): a rank that hangs (deadlock, SIGSTOP, a
// stuck collective) is invisible to mpirun, and a step call's deadline is long (a step can
// take many minutes). So beside the step calls, a background thread calls Health on every
// worker every interval with a short deadline. Health answers from the worker's gRPC
// handler thread without queuing (workers/common/serving.h), so a worker busy in a long
// step still answers (busy = true, which is fine); one that does not answer in time is hung
// or dead, and the monitor reports it once through `on_failure`, naming the worker (rank,
// role, host, endpoint), what happened and when it last answered. What to do then (log,
// exit non-zero so mpirun tears the job down) is the caller's choice.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/client_context.h>

#include "proto/hone.pb.h"
#include "workers/common/remote.h"

namespace hone {

class HealthMonitor {
 public:
  // `workers` of any role ("rollout", "reward", "trainer": the role picks the service whose
  // Health is called; another role is reported as a failure). Each round calls every
  // worker concurrently with deadline options.health_timeout_s, then waits `interval_s`.
  // `on_failure` runs on the monitor's thread, at most once; the monitor stops after it.
  // It may call Stop() but must not destroy the monitor.
  HealthMonitor(std::vector<WorkerEndpoint> workers, RpcOptions options, double interval_s,
                std::function<void(const std::string&)> on_failure);
  ~HealthMonitor();  // Stop()

  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // Called after every Health call with the worker and whether it answered (feeds
  // hone_worker_up). Runs on the monitor's call threads, concurrently: must be
  // thread-safe. Set before Start().
  void SetProbeObserver(std::function<void(const WorkerEndpoint&, bool answered)> observer) {
    observer_ = std::move(observer);
  }

  // Starts the background thread (once; no-op when started or stopped before).
  void Start();
  // Cancels the Health calls in flight and joins the thread (no join when called from
  // on_failure). Idempotent.
  void Stop();

 private:
  using Probe = std::function<grpc::Status(grpc::ClientContext*, proto::HealthResponse*)>;
  void Run();
  // "" when worker i answered; otherwise what happened to it.
  std::string Check(int i, std::vector<double>& last_answer, double started);

  std::vector<WorkerEndpoint> workers_;
  RpcOptions options_;
  double interval_s_;
  std::function<void(const std::string&)> on_failure_;
  std::function<void(const WorkerEndpoint&, bool)> observer_;
  std::vector<Probe> probes_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool stopping_ = false;
  std::vector<grpc::ClientContext*> in_flight_;
  std::thread thread_;
};

}  // namespace hone
