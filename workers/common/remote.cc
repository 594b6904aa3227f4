#include "workers/common/remote.h"

#include <algorithm>
#include <exception>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/core/torch_status.h"
#include "framework/rpc/rpc.h"
#include "workers/common/serving.h"

namespace hone {

std::string Describe(const WorkerEndpoint& w) {
  return absl::StrCat(w.role, " worker ", w.index, " (rank ", w.rank, " on host ", w.host, ", ",
                      w.endpoint, ")");
}

absl::Status FanOut(int n, const std::function<absl::Status(int)>& fn) {
  if (n <= 0) return absl::OkStatus();
  std::vector<absl::Status> results(n);
  auto run = [&](int i) {
    try {
      results[i] = fn(i);
    } catch (const std::exception& e) {
      results[i] = absl::InternalError(absl::StrCat("call ", i, " of a fan-out threw: ", e.what()));
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(n - 1);
  for (int i = 1; i < n; ++i) threads.emplace_back(run, i);
  run(0);  // the calling thread takes the first call
  for (auto& t : threads) t.join();
  for (const auto& status : results) {
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<Batch> ConcatPadded(const std::vector<Batch>& parts) {
  std::vector<Batch> kept;
  for (const Batch& part : parts) {
    const bool no_columns = part.TensorNames().empty() && part.StringNames().empty() && part.IntNames().empty();
    if (part.size() == 0 && no_columns) continue;
    kept.push_back(part);
  }
  if (kept.empty()) {
    Batch empty;
    if (!parts.empty()) empty.meta = parts.front().meta;
    return empty;
  }
  for (const std::string& name : kept.front().TensorNames()) {
    int64_t width = -1;
    bool all_2d = true;
    for (const Batch& part : kept) {
      if (!part.HasTensor(name) || part.tensor(name).dim() != 2) {
        all_2d = false;
        break;
      }
      width = std::max<int64_t>(width, part.tensor(name).size(1));
    }
    if (!all_2d) continue;  // Concat reports a missing column or a shape mismatch
    for (Batch& part : kept) {
      const torch::Tensor& t = part.tensor(name);
      if (t.size(1) == width) continue;
      torch::Tensor padded;
      HONE_RETURN_IF_ERROR(CatchTorch(absl::StrCat("padding batch tensor '", name, "'"), [&] {
        padded = torch::zeros({t.size(0), width}, t.options());
        padded.narrow(1, 0, t.size(1)).copy_(t);
      }));
      HONE_RETURN_IF_ERROR(part.SetTensor(name, padded));
    }
  }
  return Batch::Concat(kept);
}

std::vector<Batch> SplitByGroups(const Batch& batch, int parts, int64_t group_size) {
  parts = std::max(parts, 1);
  if (group_size <= 1) return batch.Split(parts);
  const int64_t rows = batch.size();
  const int64_t groups = (rows + group_size - 1) / group_size;
  std::vector<Batch> pieces;
  int64_t group = 0;
  for (int p = 0; p < parts; ++p) {
    const int64_t count = groups / parts + (p < groups % parts ? 1 : 0);
    const int64_t begin = std::min(rows, group * group_size);
    const int64_t end = std::min(rows, (group + count) * group_size);
    std::vector<int64_t> indices;
    for (int64_t r = begin; r < end; ++r) indices.push_back(r);
    pieces.push_back(*batch.Select(indices));  // in range by construction
    group += count;
  }
  return pieces;
}

absl::Status CallError(const grpc::Status& status, const WorkerEndpoint& w, absl::string_view call,
                       double timeout_s) {
  std::string context = absl::StrCat(Describe(w), ": ", call);
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    absl::StrAppend(&context, absl::StrFormat(
                                  " did not finish within %g s (the worker is hung, overloaded "
                                  "or its host is unreachable; raise the timeout if the step is "
                                  "just slow)",
                                  timeout_s));
  } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    absl::StrAppend(&context, " is unavailable (the worker is shutting down, its process exited or its host is unreachable)");
  }
  return rpc::FromGrpc(status, context);
}

double ReportedWorkSeconds(const grpc::ClientContext& context) {
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find(kWorkSecondsMetadataKey);
  if (it == trailers.end()) return 0;
  double seconds = 0;
  if (!absl::SimpleAtod(absl::string_view(it->second.data(), it->second.size()), &seconds)) return 0;
  return seconds > 0 ? seconds : 0;
}

double RpcSecondsOfCall(std::chrono::steady_clock::time_point start, const grpc::ClientContext& context) {
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return std::max(0.0, wall - ReportedWorkSeconds(context));
}

void RpcSecondsTotal::AddFanOut(const std::vector<double>& per_call_seconds) {
  if (per_call_seconds.empty()) return;
  const double slowest = *std::max_element(per_call_seconds.begin(), per_call_seconds.end());
  std::lock_guard<std::mutex> lock(mu_);
  total_ += slowest;
}

double RpcSecondsTotal::Take() {
  std::lock_guard<std::mutex> lock(mu_);
  const double total = total_;
  total_ = 0;
  return total;
}

}  // namespace hone
