#include "workers/reward/remote_reward.h"

#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/rpc/rpc.h"

namespace hone {

RemoteRewardScorer::RemoteRewardScorer(std::vector<WorkerEndpoint> workers, RpcOptions options)
    : workers_(std::move(workers)), options_(std::move(options)) {
  for (const auto& w : workers_) {
    stubs_.push_back(proto::RewardService::NewStub(rpc::MakeChannel(w.endpoint, options_.max_message_bytes)));
  }
}

absl::Status RemoteRewardScorer::Score(Batch& trajectories) {
  const int k = static_cast<int>(workers_.size());
  if (k == 0) return absl::FailedPreconditionError("there are no reward workers to score with");
  // What travels: the text and integer columns and meta. A batch of tensors only would
  // become a batch without columns, which cannot carry its rows: send it whole then.
  Batch slim;
  for (const auto& name : trajectories.StringNames()) {
    HONE_RETURN_IF_ERROR(slim.SetStrings(name, trajectories.strings(name)));
  }
  for (const auto& name : trajectories.IntNames()) HONE_RETURN_IF_ERROR(slim.SetInts(name, trajectories.ints(name)));
  slim.meta = trajectories.meta;
  const Batch& sent = slim.size() == trajectories.size() ? slim : trajectories;

  std::vector<Batch> pieces = SplitByGroups(sent, k, 1);
  std::vector<Batch> scored(k);
  std::vector<int64_t> first_row(k, 0);
  for (int i = 1; i < k; ++i) first_row[i] = first_row[i - 1] + pieces[i - 1].size();
  std::vector<double> rpc_seconds(k, 0);
  HONE_RETURN_IF_ERROR(FanOut(k, [&](int i) -> absl::Status {
    if (pieces[i].size() == 0 && i > 0) return absl::OkStatus();  // worker 0 scores even an empty batch
    const std::string who = Describe(workers_[i]);
    const auto start = std::chrono::steady_clock::now();
    proto::ScoreRequest request;
    HONE_RETURN_IF_ERROR(Annotate(rpc::BatchToProto(pieces[i], request.mutable_trajectories()),
                                  absl::StrCat(who, ": encoding the trajectories")));
    proto::ScoreResponse response;
    auto context = rpc::MakeClientContext(options_.token, options_.timeout_s);
    grpc::Status status = stubs_[i]->Score(context.get(), request, &response);
    if (!status.ok()) {
      const std::string call = absl::StrCat("Score of rows ", first_row[i], "-", first_row[i] + pieces[i].size() - 1);
      return CallError(status, workers_[i], call, options_.timeout_s);
    }
    absl::StatusOr<Batch> batch = rpc::BatchFromProto(response.scored());
    if (!batch.ok()) return Annotate(batch.status(), absl::StrCat(who, ": Score answered a malformed batch"));
    if (batch->size() != pieces[i].size()) {
      return absl::InternalError(absl::StrCat(who, ": Score answered ", batch->size(), " rows for ",
                                              pieces[i].size()));
    }
    scored[i] = *std::move(batch);
    rpc_seconds[i] = RpcSecondsOfCall(start, *context);
    return absl::OkStatus();
  }));
  rpc_seconds_.AddFanOut(rpc_seconds);

  std::vector<Batch> parts;
  for (int i = 0; i < k; ++i) {
    if (pieces[i].size() > 0 || i == 0) parts.push_back(std::move(scored[i]));
  }
  absl::StatusOr<Batch> joined = ConcatPadded(parts);
  if (!joined.ok()) return Annotate(joined.status(), "joining the reward workers' answers (they disagree on columns)");
  Batch out = trajectories;  // shallow for tensors; replaces `trajectories` only when complete
  for (const auto& name : joined->TensorNames()) {
    const bool reward_column = name == "reward" || absl::StartsWith(name, "reward/");
    if (!reward_column && sent.HasTensor(name)) continue;
    HONE_RETURN_IF_ERROR(out.SetTensor(name, joined->tensor(name)));
  }
  if (!joined->HasTensor("reward")) {
    return absl::InternalError("the reward workers answered without a 'reward' column");
  }
  trajectories = std::move(out);
  return absl::OkStatus();
}

absl::Status RemoteRewardScorer::Shutdown(const std::string& reason) {
  return ShutdownWorkers(workers_, stubs_, options_, reason);
}

}  // namespace hone
