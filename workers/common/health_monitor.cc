#include "workers/common/health_monitor.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/rpc/rpc.h"
#include "proto/hone.grpc.pb.h"

namespace hone {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A Health call on `channel` through the stub of `Service` (each role serves its own).
template <typename Service>
std::function<grpc::Status(grpc::ClientContext*, proto::HealthResponse*)> MakeProbe(
    const std::shared_ptr<grpc::Channel>& channel) {
  std::shared_ptr<typename Service::Stub> stub = Service::NewStub(channel);
  return [stub](grpc::ClientContext* context, proto::HealthResponse* response) {
    return stub->Health(context, proto::HealthRequest(), response);
  };
}

}  // namespace

HealthMonitor::HealthMonitor(std::vector<WorkerEndpoint> workers, RpcOptions options, double interval_s,
                             std::function<void(const std::string&)> on_failure)
    : workers_(std::move(workers)),
      options_(std::move(options)),
      interval_s_(interval_s),
      on_failure_(std::move(on_failure)) {
  for (const auto& w : workers_) {
    auto channel = rpc::MakeChannel(w.endpoint, options_.max_message_bytes);
    if (w.role == "rollout") {
      probes_.push_back(MakeProbe<proto::RolloutService>(channel));
    } else if (w.role == "reward") {
      probes_.push_back(MakeProbe<proto::RewardService>(channel));
    } else if (w.role == "trainer") {
      probes_.push_back(MakeProbe<proto::TrainerService>(channel));
    } else {
      std::string role = w.role;
      probes_.push_back([role](grpc::ClientContext*, proto::HealthResponse*) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("unknown role '", role, "' (expected rollout, reward or trainer)"));
      });
    }
  }
}

HealthMonitor::~HealthMonitor() {
  Stop();
  if (thread_.joinable()) thread_.detach();  // only when destroyed on its own thread (a misuse)
}

void HealthMonitor::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void HealthMonitor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (grpc::ClientContext* context : in_flight_) context->TryCancel();
    cv_.notify_all();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::string HealthMonitor::Check(int i, std::vector<double>& last_answer, double started) {
  auto context = rpc::MakeClientContext(options_.token, options_.health_timeout_s);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return "";
    in_flight_.push_back(context.get());
  }
  proto::HealthResponse response;
  grpc::Status status = probes_[i](context.get(), &response);
  const double now = Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_.erase(std::find(in_flight_.begin(), in_flight_.end(), context.get()));
    if (stopping_) return "";
  }
  if (observer_) observer_(workers_[i], status.ok());
  if (status.ok()) {  // busy or idle: it answers, so it is alive
    last_answer[i] = now;
    return "";
  }
  std::string what;
  switch (status.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      what = absl::StrFormat(
          "did not answer Health within %g s: it is hung (deadlocked, stopped or stuck in a "
          "collective) or its host is unreachable",
          options_.health_timeout_s);
      break;
    case grpc::StatusCode::UNAVAILABLE:
      what = absl::StrCat("did not answer Health (UNAVAILABLE: ", status.error_message(),
                          "): its process has exited or stopped serving, or its host is unreachable");
      break;
    default:
      what = absl::StrCat("answered Health with error code ", static_cast<int>(status.error_code()), ": ",
                          status.error_message());
  }
  std::string last = last_answer[i] < 0
                         ? absl::StrFormat("it has not answered since the heartbeat started %.1f s ago", now - started)
                         : absl::StrFormat("it last answered %.1f s ago", now - last_answer[i]);
  return absl::StrCat(Describe(workers_[i]), " ", what, "; ", last);
}

void HealthMonitor::Run() {
  const int n = static_cast<int>(workers_.size());
  const double started = Now();
  std::vector<double> last_answer(n, -1);
  while (true) {
    std::vector<std::string> failures(n);
    (void)FanOut(n, [&](int i) {
      failures[i] = Check(i, last_answer, started);
      return absl::OkStatus();
    });
    failures.erase(std::remove(failures.begin(), failures.end(), std::string()), failures.end());
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) return;
      if (failures.empty()) {
        cv_.wait_for(lock, std::chrono::duration<double>(std::max(interval_s_, 0.0)), [&] { return stopping_; });
        if (stopping_) return;
        continue;
      }
    }
    if (on_failure_) on_failure_(absl::StrCat("health check failed: ", absl::StrJoin(failures, "; ")));
    return;  // reported once; the job is going down
  }
}

}  // namespace hone
