#include "workers/common/serving.h"

#include <grpcpp/server_context.h>

#include "framework/rpc/rpc.h"

#include <exception>

#include "absl/strings/str_format.h"

namespace hone {

void AttachWorkSeconds(grpc::ServerContext* context, double seconds) {
  context->AddTrailingMetadata(kWorkSecondsMetadataKey, absl::StrFormat("%.9f", seconds));
}

absl::Status MainThreadQueue::RunOnMain(const std::string& call, std::function<absl::Status()> fn) {
  Item item{call, std::move(fn), absl::OkStatus(), false};
  std::unique_lock<std::mutex> lock(mu_);
  if (stopped_) return absl::UnavailableError("the worker is shutting down: " + stop_reason_);
  queue_.push_back(&item);
  cv_.notify_all();
  cv_.wait(lock, [&] { return item.done; });
  return item.result;
}

std::string MainThreadQueue::Serve() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopped_ || !queue_.empty(); });
    if (stopped_) break;
    Item* item = queue_.front();
    queue_.pop_front();
    // state() tells busy from idle by a non-empty call name.
    current_ = item->call.empty() ? "(unnamed call)" : item->call;
    started_ = std::chrono::steady_clock::now();
    lock.unlock();
    absl::Status result;
    try {
      result = item->fn();
    } catch (const std::exception& e) {
      // An escaping exception would leave the caller waiting forever and end Serve.
      result = absl::InternalError(current_ + " threw: " + e.what());
    } catch (...) {
      result = absl::InternalError(current_ + " threw a non-standard exception");
    }
    lock.lock();
    current_.clear();
    item->result = std::move(result);
    item->done = true;
    cv_.notify_all();
  }
  // Callers still waiting get an answer rather than a hang.
  for (Item* item : queue_) {
    item->result = absl::UnavailableError("the worker is shutting down: " + stop_reason_);
    item->done = true;
  }
  queue_.clear();
  cv_.notify_all();
  return stop_reason_;
}

void MainThreadQueue::Stop(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!stopped_) stop_reason_ = reason;
  stopped_ = true;
  cv_.notify_all();
}

MainThreadQueue::State MainThreadQueue::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  State s;
  s.busy = !current_.empty();
  s.call = current_;
  if (s.busy) s.busy_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  return s;
}

grpc::Status AnswerHealth(const grpc::ServerContext& context, const WorkerIdentity& id, const MainThreadQueue& queue,
                          proto::HealthResponse* response) {
  grpc::Status auth = rpc::CheckToken(context, id.token);
  if (!auth.ok()) return auth;
  const MainThreadQueue::State state = queue.state();
  response->set_role(id.role);
  response->set_rank(id.rank);
  response->set_host(id.host);
  response->set_busy(state.busy);
  response->set_current_call(state.call);
  response->set_busy_seconds(state.busy_seconds);
  return grpc::Status::OK;
}

grpc::Status AnswerShutdown(const grpc::ServerContext& context, const WorkerIdentity& id, MainThreadQueue& queue,
                            const proto::ShutdownRequest& request) {
  grpc::Status auth = rpc::CheckToken(context, id.token);
  if (!auth.ok()) return auth;
  queue.Stop(request.reason().empty() ? "the controller asked to shut down" : request.reason());
  return grpc::Status::OK;
}

}  // namespace hone
