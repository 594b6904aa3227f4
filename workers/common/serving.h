// What every worker process shares: the queue that runs step calls on the main thread, the
// worker's identity for Health answers and start-up lines, and how a handler reports the
// time its work took (so that the controller can tell gRPC's share of a call).
//
// Why a queue: MPI is called from the main thread only (MPI_THREAD_FUNNELED), and a step
// call on a trainer or rollout worker runs collectives (FSDP all-gathers, the weight
// broadcast). gRPC handlers run on gRPC's threads, so they hand the work to the main thread
// and wait for it. Health never queues: it answers from the handler thread at once, which
// is how the controller tells a busy worker from a hung one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "proto/hone.pb.h"

namespace grpc {
class ServerContext;
}

namespace hone {

// The trailing-metadata entry in which a worker's handler reports how long the call's
// work itself took (seconds, decimal text): the role's computation on the main thread,
// without decoding the request, encoding the answer or waiting in the queue. The
// controller subtracts it from the call's wall time to get the gRPC overhead
// (RpcSecondsOfCall in workers/common/remote.h).
inline constexpr char kWorkSecondsMetadataKey[] = "x-hone-work-seconds";

// Adds the wall time of its lifetime to *seconds. A handler opens one around the work
// inside its RunOnMain function:
//   double work = 0;
//   queue_->RunOnMain("SaveCheckpoint", [&] { ScopedWorkTimer timer(&work); return trainer_->SaveCheckpoint(dir); });
//   AttachWorkSeconds(context, work);
class ScopedWorkTimer {
 public:
  explicit ScopedWorkTimer(double* seconds) : seconds_(seconds), start_(std::chrono::steady_clock::now()) {}
  ~ScopedWorkTimer() {
    *seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  ScopedWorkTimer(const ScopedWorkTimer&) = delete;
  ScopedWorkTimer& operator=(const ScopedWorkTimer&) = delete;

 private:
  double* seconds_;
  std::chrono::steady_clock::time_point start_;
};

// Reports `seconds` of work in the call's trailing metadata (kWorkSecondsMetadataKey).
// Call it before the handler returns, on success and on error alike.
void AttachWorkSeconds(grpc::ServerContext* context, double seconds);

struct WorkerIdentity;
class MainThreadQueue;

// The Health and Shutdown handlers every service shares. Health answers from the handler
// thread with the worker's identity and its queue's state (never queuing: that is how a
// busy worker is told from a hung one); Shutdown stops the queue. Both check the token first.
grpc::Status AnswerHealth(const grpc::ServerContext& context, const WorkerIdentity& id, const MainThreadQueue& queue,
                          proto::HealthResponse* response);
grpc::Status AnswerShutdown(const grpc::ServerContext& context, const WorkerIdentity& id, MainThreadQueue& queue,
                            const proto::ShutdownRequest& request);

struct WorkerIdentity {
  std::string role;  // "rollout", "reward", "trainer"
  int rank = 0;      // world rank
  int index = 0;     // position among the workers of its role
  std::string host;
  std::string endpoint;  // host:port of its gRPC server
  std::string token;     // the job's token every request must carry
};

class MainThreadQueue {
 public:
  // From any thread: runs `fn` on the main thread (inside Serve) and returns its status.
  // UNAVAILABLE once the queue has stopped.
  absl::Status RunOnMain(const std::string& call, std::function<absl::Status()> fn);

  // Main thread: runs queued calls one at a time until Stop(); returns Stop's reason.
  std::string Serve();
  // From any thread: Serve returns after the call in progress.
  void Stop(const std::string& reason);

  struct State {
    bool busy = false;
    std::string call;
    double busy_seconds = 0;
  };
  State state() const;

 private:
  struct Item {
    std::string call;
    std::function<absl::Status()> fn;
    absl::Status result;
    bool done = false;
  };
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item*> queue_;
  bool stopped_ = false;
  std::string stop_reason_;
  std::string current_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace hone
