#include "workers/trainer/remote_trainer.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"
#include "framework/rpc/rpc.h"
#include "workers/trainer/sharded_trainer.h"

namespace hone {
namespace {

// Rows [begin, end) of every piece-wise cut: `parts` contiguous pieces, sizes differing by
// at most one, the first ones larger (as Batch::Split).
std::vector<std::pair<int64_t, int64_t>> Cut(int64_t begin, int64_t end, int parts) {
  std::vector<std::pair<int64_t, int64_t>> pieces;
  const int64_t n = end - begin;
  int64_t start = begin;
  for (int p = 0; p < parts; ++p) {
    const int64_t size = n / parts + (p < n % parts ? 1 : 0);
    pieces.emplace_back(start, start + size);
    start += size;
  }
  return pieces;
}

std::vector<int64_t> Range(int64_t begin, int64_t end) {
  std::vector<int64_t> rows;
  for (int64_t i = begin; i < end; ++i) rows.push_back(i);
  return rows;
}

}  // namespace

RemoteTrainer::RemoteTrainer(std::vector<WorkerEndpoint> workers, RpcOptions options, int64_t ppo_mini_batch_size)
    : workers_(std::move(workers)), options_(std::move(options)), ppo_mini_batch_size_(ppo_mini_batch_size) {
  for (const auto& w : workers_) {
    stubs_.push_back(proto::TrainerService::NewStub(rpc::MakeChannel(w.endpoint, options_.max_message_bytes)));
  }
}

absl::StatusOr<LogProbs> RemoteTrainer::ComputeLogProbs(const Batch& trajectories) {
  const int W = static_cast<int>(workers_.size());
  const std::vector<Batch> shares = trajectories.Split(W);
  std::vector<proto::ComputeLogProbsResponse> answers(W);
  std::vector<double> rpc_seconds(W, 0);
  HONE_RETURN_IF_ERROR(FanOut(W, [&](int i) -> absl::Status {
    const auto start = std::chrono::steady_clock::now();
    proto::ComputeLogProbsRequest request;
    HONE_RETURN_IF_ERROR(rpc::BatchToProto(shares[i], request.mutable_trajectories()));
    auto context = rpc::MakeClientContext(options_.token, options_.timeout_s);
    HONE_RETURN_IF_ERROR(rpc::FromGrpc(stubs_[i]->ComputeLogProbs(context.get(), request, &answers[i]),
                                       absl::StrCat(Describe(workers_[i]), ": ComputeLogProbs")));
    rpc_seconds[i] = RpcSecondsOfCall(start, *context);
    return absl::OkStatus();
  }));
  std::vector<torch::Tensor> old_lp, ref_lp, entropy;
  LogProbs out;
  for (int i = 0; i < W; ++i) {
    const auto decode_start = std::chrono::steady_clock::now();  // decoding counts as rpc time
    const std::string who = Describe(workers_[i]);
    HONE_ASSIGN_OR_RETURN(torch::Tensor lp, rpc::TensorFromProto(answers[i].old_logprobs()));
    HONE_ASSIGN_OR_RETURN(torch::Tensor ent, rpc::TensorFromProto(answers[i].entropy()));
    old_lp.push_back(lp);
    entropy.push_back(ent);
    if (answers[i].has_ref_logprobs()) {
      HONE_ASSIGN_OR_RETURN(torch::Tensor ref, rpc::TensorFromProto(answers[i].ref_logprobs()));
      ref_lp.push_back(ref);
    }
    rpc_seconds[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - decode_start).count();
    // The group works in lockstep: the slowest rank is the phase's time.
    out.policy_seconds = std::max(out.policy_seconds, answers[i].policy_seconds());
    out.reference_seconds = std::max(out.reference_seconds, answers[i].reference_seconds());
  }
  rpc_seconds_.AddFanOut(rpc_seconds);
  out.old_logprobs = torch::cat(old_lp, 0);
  out.entropy = torch::cat(entropy, 0);
  if (!ref_lp.empty()) out.ref_logprobs = torch::cat(ref_lp, 0);
  return out;
}

absl::StatusOr<Metrics> RemoteTrainer::Update(const Batch& trajectories) {
  const int W = static_cast<int>(workers_.size());
  const int64_t N = trajectories.size();
  const int64_t mini = ppo_mini_batch_size_ > 0 ? std::min(ppo_mini_batch_size_, N) : N;
  std::vector<std::vector<int64_t>> rows(W);
  std::vector<std::vector<std::string>> mini_rows(W);
  for (int64_t begin = 0; begin < N; begin += mini) {
    const auto pieces = Cut(begin, std::min(N, begin + mini), W);
    for (int r = 0; r < W; ++r) {
      for (int64_t i : Range(pieces[r].first, pieces[r].second)) rows[r].push_back(i);
      mini_rows[r].push_back(absl::StrCat(pieces[r].second - pieces[r].first));
    }
  }
  std::vector<proto::UpdateResponse> answers(W);
  std::vector<double> rpc_seconds(W, 0);
  HONE_RETURN_IF_ERROR(FanOut(W, [&](int i) -> absl::Status {
    HONE_ASSIGN_OR_RETURN(Batch share, trajectories.Select(rows[i]));
    share.meta[kMiniBatchRowsKey] = absl::StrJoin(mini_rows[i], ",");
    const auto start = std::chrono::steady_clock::now();
    proto::UpdateRequest request;
    HONE_RETURN_IF_ERROR(rpc::BatchToProto(share, request.mutable_trajectories()));
    auto context = rpc::MakeClientContext(options_.token, options_.timeout_s);
    HONE_RETURN_IF_ERROR(rpc::FromGrpc(stubs_[i]->Update(context.get(), request, &answers[i]),
                                       absl::StrCat(Describe(workers_[i]), ": Update")));
    rpc_seconds[i] = RpcSecondsOfCall(start, *context);
    return absl::OkStatus();
  }));
  rpc_seconds_.AddFanOut(rpc_seconds);
  // Every rank reports the group's totals (all-reduced); resident bytes are per rank.
  Metrics metrics(answers[0].metrics().values().begin(), answers[0].metrics().values().end());
  double resident_max = 0;
  for (const auto& a : answers) {
    auto it = a.metrics().values().find("trainer_resident_bytes");
    if (it != a.metrics().values().end()) resident_max = std::max(resident_max, it->second);
  }
  metrics["trainer_resident_bytes"] = resident_max;
  return metrics;
}

absl::StatusOr<NamedTensors> RemoteTrainer::PolicyWeights() {
  return absl::FailedPreconditionError(
      "in a distributed job the weights go from the trainer group straight to the rollout workers (SyncWeights), "
      "never through the controller");
}

absl::Status RemoteTrainer::CheckpointCall(const std::string& dir, bool save) {
  const char* call = save ? "SaveCheckpoint" : "LoadCheckpoint";
  std::vector<double> rpc_seconds(workers_.size(), 0);
  HONE_RETURN_IF_ERROR(FanOut(static_cast<int>(workers_.size()), [&](int i) -> absl::Status {
    const auto start = std::chrono::steady_clock::now();
    proto::CheckpointRequest request;
    request.set_dir(dir);
    proto::CheckpointResponse response;
    auto context = rpc::MakeClientContext(options_.token, options_.timeout_s);
    grpc::Status status = save ? stubs_[i]->SaveCheckpoint(context.get(), request, &response)
                               : stubs_[i]->LoadCheckpoint(context.get(), request, &response);
    HONE_RETURN_IF_ERROR(rpc::FromGrpc(status, absl::StrCat(Describe(workers_[i]), ": ", call)));
    rpc_seconds[i] = RpcSecondsOfCall(start, *context);
    return absl::OkStatus();
  }));
  rpc_seconds_.AddFanOut(rpc_seconds);
  return absl::OkStatus();
}

absl::Status RemoteTrainer::SaveCheckpoint(const std::string& dir) { return CheckpointCall(dir, /*save=*/true); }

absl::Status RemoteTrainer::LoadCheckpoint(const std::string& dir) { return CheckpointCall(dir, /*save=*/false); }

absl::StatusOr<std::vector<proto::SyncWeightsResponse>> RemoteTrainer::SyncWeights(int64_t version) {
  std::vector<proto::SyncWeightsResponse> answers(workers_.size());
  std::vector<double> rpc_seconds(workers_.size(), 0);
  HONE_RETURN_IF_ERROR(FanOut(static_cast<int>(workers_.size()), [&](int i) -> absl::Status {
    const auto start = std::chrono::steady_clock::now();
    proto::SyncWeightsRequest request;
    request.set_version(version);
    auto context = rpc::MakeClientContext(options_.token, options_.timeout_s);
    HONE_RETURN_IF_ERROR(rpc::FromGrpc(stubs_[i]->SyncWeights(context.get(), request, &answers[i]),
                                       absl::StrCat(Describe(workers_[i]), ": SyncWeights")));
    rpc_seconds[i] = RpcSecondsOfCall(start, *context);
    return absl::OkStatus();
  }));
  rpc_seconds_.AddFanOut(rpc_seconds);
  return answers;
}

absl::Status RemoteTrainer::Shutdown(const std::string& reason) {
  return ShutdownWorkers(workers_, stubs_, options_, reason);
}

}  // namespace hone
