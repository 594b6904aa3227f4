#include "workers/rollout/remote_rollout.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/rpc/rpc.h"
#include "workers/rollout/rollout_service.h"

namespace hone {

RemoteRollout::RemoteRollout(std::vector<WorkerEndpoint> workers, RpcOptions options)
    : workers_(std::move(workers)), options_(std::move(options)) {
  for (const auto& w : workers_) {
    stubs_.push_back(proto::RolloutService::NewStub(rpc::MakeChannel(w.endpoint, options_.max_message_bytes)));
  }
}

absl::StatusOr<Batch> RemoteRollout::Generate(const Batch& prompts, const SamplingParams& params) {
  const int k = static_cast<int>(workers_.size());
  if (k == 0) return absl::FailedPreconditionError("there are no rollout workers to generate with");
  if (prompts.size() == 0) return absl::InvalidArgumentError("no prompts to generate from");
  std::vector<Batch> pieces = SplitByGroups(prompts, k, 1);
  proto::SamplingParams sampling;
  SamplingParamsToProto(params, &sampling);
  std::vector<Batch> results(k);
  std::vector<int64_t> versions(k, -1);
  std::vector<int64_t> first_prompt(k, 0);
  for (int i = 1; i < k; ++i) first_prompt[i] = first_prompt[i - 1] + pieces[i - 1].size();
  std::vector<double> rpc_seconds(k, 0);
  HONE_RETURN_IF_ERROR(FanOut(k, [&](int i) -> absl::Status {
    if (pieces[i].size() == 0) return absl::OkStatus();
    const std::string who = Describe(workers_[i]);
    const auto start = std::chrono::steady_clock::now();
    proto::GenerateRequest request;
    HONE_RETURN_IF_ERROR(Annotate(rpc::BatchToProto(pieces[i], request.mutable_prompts()),
                                  absl::StrCat(who, ": encoding the prompts")));
    *request.mutable_sampling() = sampling;
    proto::GenerateResponse response;
    auto context = rpc::MakeClientContext(options_.token, options_.timeout_s);
    grpc::Status status = stubs_[i]->Generate(context.get(), request, &response);
    if (!status.ok()) {
      const std::string call =
          absl::StrCat("Generate for prompts ", first_prompt[i], "-", first_prompt[i] + pieces[i].size() - 1);
      return CallError(status, workers_[i], call, options_.timeout_s);
    }
    absl::StatusOr<Batch> batch = rpc::BatchFromProto(response.trajectories());
    if (!batch.ok()) return Annotate(batch.status(), absl::StrCat(who, ": Generate answered a malformed batch"));
    if (batch->size() != pieces[i].size() * params.n) {
      return absl::InternalError(absl::StrCat(who, ": Generate answered ", batch->size(), " trajectories for ",
                                              pieces[i].size(), " prompts x n=", params.n));
    }
    results[i] = *std::move(batch);
    versions[i] = response.policy_version();
    rpc_seconds[i] = RpcSecondsOfCall(start, *context);
    return absl::OkStatus();
  }));
  rpc_seconds_.AddFanOut(rpc_seconds);

  std::vector<Batch> parts;
  int first = -1;
  for (int i = 0; i < k; ++i) {
    if (pieces[i].size() == 0) continue;
    if (first < 0) first = i;
    if (versions[i] != versions[first]) {
      return absl::FailedPreconditionError(absl::StrCat(
          "rollout workers generated with different policy versions: ", Describe(workers_[first]), " with ",
          versions[first], ", ", Describe(workers_[i]), " with ", versions[i],
          " (a weight sync did not reach every worker)"));
    }
    parts.push_back(std::move(results[i]));
  }
  HONE_ASSIGN_OR_RETURN(Batch joined, ConcatPadded(parts));
  joined.meta["policy_version"] = absl::StrCat(versions[first]);
  if (static_cast<int>(parts.size()) == k) version_ = versions[first];
  return joined;
}

absl::Status RemoteRollout::LoadWeights(const NamedTensors&, int64_t) {
  return absl::FailedPreconditionError(
      "RemoteRollout::LoadWeights: in distributed mode weights never travel through the "
      "controller; the trainers broadcast them to the rollout workers (use SyncWeights)");
}

absl::StatusOr<std::vector<proto::SyncWeightsResponse>> RemoteRollout::SyncWeights(int64_t version) {
  const int k = static_cast<int>(workers_.size());
  std::vector<proto::SyncWeightsResponse> answers(k);
  std::vector<double> rpc_seconds(k, 0);
  HONE_RETURN_IF_ERROR(FanOut(k, [&](int i) -> absl::Status {
    const auto start = std::chrono::steady_clock::now();
    proto::SyncWeightsRequest request;
    request.set_version(version);
    auto context = rpc::MakeClientContext(options_.token, options_.timeout_s);
    grpc::Status status = stubs_[i]->SyncWeights(context.get(), request, &answers[i]);
    if (!status.ok()) return CallError(status, workers_[i], "SyncWeights", options_.timeout_s);
    rpc_seconds[i] = RpcSecondsOfCall(start, *context);
    if (answers[i].version() != version) {
      return absl::InternalError(absl::StrCat(Describe(workers_[i]), ": SyncWeights(", version,
                                              ") answered version ", answers[i].version()));
    }
    return absl::OkStatus();
  }));
  rpc_seconds_.AddFanOut(rpc_seconds);
  version_ = version;
  return answers;
}

absl::Status RemoteRollout::Shutdown(const std::string& reason) {
  return ShutdownWorkers(workers_, stubs_, options_, reason);
}

}  // namespace hone
