// The NCCL backend of Communicator: every NCCL call goes through the non-blocking API and is
// polled against a deadline, so that no collective (nor the communicator's creation) can
// hang forever. Compiled only when CMake finds NCCL (HONE_HAVE_NCCL).
//
// Only the CUDA runtime API and tensor metadata + data_ptr() are used, never libtorch's CUDA
// API: the file compiles against Debian's CPU-only libtorch as well as a CUDA libtorch.
#include "framework/dist/nccl_communicator.h"

#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"

#if !defined(NCCL_CONFIG_INITIALIZER)
// Configuring with -DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=ON builds Hone without NCCL.
#error "Hone's NCCL backend needs NCCL >= 2.14 (non-blocking communicators)"
#endif

namespace hone::dist {
namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point DeadlineAfter(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// The wait between polls: spin briefly (short collectives finish in microseconds), then back off.
void PollPause(int polls) {
  if (polls < 200) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(polls < 2000 ? 20 : 200));
  }
}

std::string CudaText(cudaError_t e) {
  return absl::StrCat(cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
}

// Number of CUDA devices, or the CUDA error that says why there are none.
absl::StatusOr<int> DeviceCount() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();  // not sticky: clear it
    return absl::FailedPreconditionError(
        absl::StrCat("no CUDA device is visible to this process (no GPU, or no usable NVIDIA driver; "
                     "cudaGetDeviceCount: ", CudaText(e), ")"));
  }
  if (count <= 0) {
    return absl::FailedPreconditionError("no CUDA device is visible to this process (cudaGetDeviceCount: 0)");
  }
  return count;
}

// Makes `device` current for a scope and restores the caller's device afterwards.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    status_ = cudaSetDevice(device);
  }
  ~DeviceGuard() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  cudaError_t status() const { return status_; }

 private:
  int previous_ = -1;
  cudaError_t status_;
};

// FNV-1a: the same on every rank and build. The tag of the ncclUniqueId message.
int TagFromName(const std::string& name) {
  uint32_t h = 2166136261u;
  for (unsigned char c : "nccl-id:" + name) h = (h ^ c) * 16777619u;
  return static_cast<int>(h % 32767u);  // MPI guarantees MPI_TAG_UB >= 32767
}

// The NCCL type for moving (reduce = false) or summing (reduce = true) a dtype.
absl::StatusOr<ncclDataType_t> NcclType(torch::ScalarType t, bool reduce) {
  switch (t) {
    case torch::kFloat: return ncclFloat32;
    case torch::kDouble: return ncclFloat64;
    case torch::kHalf: return ncclFloat16;
    case torch::kBFloat16: return ncclBfloat16;
    case torch::kInt: return ncclInt32;
    case torch::kLong: return ncclInt64;
    case torch::kByte: return ncclUint8;
    case torch::kChar: return ncclInt8;
    case torch::kBool:
      if (!reduce) return ncclUint8;
      break;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("dtype ", c10::toString(t), " is not supported by the NCCL backend",
                                                 reduce ? " in summing collectives" : ""));
}

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, cudaStream_t stream, cudaEvent_t ready, void* scratch,
                   std::vector<int> world_ranks, std::string name, int rank, int world_rank, double timeout_s,
                   int device)
      : comm_(comm), stream_(stream), ready_(ready), scratch_(scratch), world_ranks_(std::move(world_ranks)),
        name_(std::move(name)), rank_(rank), world_rank_(world_rank), timeout_s_(timeout_s), device_(device) {}

  ~NcclCommunicator() override {
    DeviceGuard guard(device_);
    if (comm_ != nullptr) {
      // Flush (ncclCommFinalize may need the peers); if that does not finish in time, abort.
      const ncclResult_t started = ncclCommFinalize(comm_);
      bool finalized = started == ncclSuccess || started == ncclInProgress;
      const auto deadline = DeadlineAfter(timeout_s_);
      for (int polls = 0; finalized; ++polls) {
        ncclResult_t state = ncclSuccess;
        if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) state = ncclInternalError;
        if (state == ncclSuccess) break;
        if (state != ncclInProgress || Clock::now() > deadline) finalized = false;
        PollPause(polls);
      }
      if (finalized) {
        ncclCommDestroy(comm_);
      } else {
        ncclCommAbort(comm_);
      }
      comm_ = nullptr;
    }
    // After a failure a kernel may still touch the stream or the scratch word, and
    // cudaFree would wait for it: leak them then.
    if (failed_.ok()) {
      if (scratch_ != nullptr) cudaFree(scratch_);
      if (ready_ != nullptr) cudaEventDestroy(ready_);
      if (stream_ != nullptr) cudaStreamDestroy(stream_);
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(world_ranks_.size()); }
  const std::string& name() const override { return name_; }
  const std::vector<int>& world_ranks() const override { return world_ranks_; }
  void set_step(int64_t step) override { step_ = step; }

  absl::Status Broadcast(torch::Tensor& tensor, int root) override {
    HONE_RETURN_IF_ERROR(Usable());
    HONE_RETURN_IF_ERROR(CheckTensor(tensor, "broadcast tensor"));
    if (root < 0 || root >= size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("broadcast root ", root, " outside group '", name_, "' of size ", size()));
    }
    HONE_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(tensor.scalar_type(), false));
    if (tensor.numel() == 0) return absl::OkStatus();  // every member has 0 elements too
    void* data = tensor.data_ptr();
    const size_t n = static_cast<size_t>(tensor.numel());
    return Run("broadcast", [&] { return ncclBroadcast(data, data, n, type, root, comm_, stream_); });
  }

  absl::Status AllGather(const torch::Tensor& input, torch::Tensor& output) override {
    HONE_RETURN_IF_ERROR(Usable());
    HONE_RETURN_IF_ERROR(CheckTensor(input, "allgather input"));
    HONE_RETURN_IF_ERROR(CheckTensor(output, "allgather output"));
    HONE_RETURN_IF_ERROR(CheckPair(input, output, "allgather"));
    HONE_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(input.scalar_type(), false));
    if (input.numel() == 0) return absl::OkStatus();
    const void* in = input.data_ptr();
    void* out = output.data_ptr();
    const size_t n = static_cast<size_t>(input.numel());
    return Run("allgather", [&] { return ncclAllGather(in, out, n, type, comm_, stream_); });
  }

  absl::Status ReduceScatter(const torch::Tensor& input, torch::Tensor& output) override {
    HONE_RETURN_IF_ERROR(Usable());
    HONE_RETURN_IF_ERROR(CheckTensor(input, "reduce_scatter input"));
    HONE_RETURN_IF_ERROR(CheckTensor(output, "reduce_scatter output"));
    HONE_RETURN_IF_ERROR(CheckPair(output, input, "reduce_scatter"));
    HONE_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(input.scalar_type(), true));
    if (output.numel() == 0) return absl::OkStatus();
    const void* in = input.data_ptr();
    void* out = output.data_ptr();
    const size_t n = static_cast<size_t>(output.numel());
    return Run("reduce_scatter", [&] { return ncclReduceScatter(in, out, n, type, ncclSum, comm_, stream_); });
  }

  absl::Status AllReduceSum(torch::Tensor& tensor) override {
    HONE_RETURN_IF_ERROR(Usable());
    HONE_RETURN_IF_ERROR(CheckTensor(tensor, "allreduce tensor"));
    HONE_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(tensor.scalar_type(), true));
    if (tensor.numel() == 0) return absl::OkStatus();
    void* data = tensor.data_ptr();
    const size_t n = static_cast<size_t>(tensor.numel());
    return Run("allreduce", [&] { return ncclAllReduce(data, data, n, type, ncclSum, comm_, stream_); });
  }

  // NCCL has no barrier: an all-reduce of one word completes on a rank only when every
  // member has joined it.
  absl::Status Barrier() override {
    HONE_RETURN_IF_ERROR(Usable());
    return Run("barrier", [&] { return ncclAllReduce(scratch_, scratch_, 1, ncclInt32, ncclSum, comm_, stream_); });
  }

 private:
  absl::Status CheckTensor(const torch::Tensor& t, const char* what) const {
    if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat(what, " is undefined"));
    if (!t.device().is_cuda()) {
      return absl::InvalidArgumentError(absl::StrCat(what, " must be a CUDA tensor (NCCL communicator '", name_,
                                                     "'), not on ", t.device().str()));
    }
    if (t.device().index() != device_) {
      return absl::InvalidArgumentError(absl::StrCat(what, " is on ", t.device().str(), " but NCCL communicator '",
                                                     name_, "' uses cuda:", device_));
    }
    if (!t.is_contiguous()) return absl::InvalidArgumentError(absl::StrCat(what, " must be contiguous"));
    return absl::OkStatus();
  }

  // small has n elements, big has size()*n, same dtype.
  absl::Status CheckPair(const torch::Tensor& small, const torch::Tensor& big, const char* op) const {
    if (small.scalar_type() != big.scalar_type()) {
      return absl::InvalidArgumentError(absl::StrCat(op, ": input and output dtypes differ (",
                                                     c10::toString(small.scalar_type()), " vs ",
                                                     c10::toString(big.scalar_type()), ")"));
    }
    if (big.numel() != small.numel() * size()) {
      return absl::InvalidArgumentError(absl::StrCat(op, ": the larger tensor has ", big.numel(),
                                                     " elements, expected group size ", size(), " x ", small.numel()));
    }
    return absl::OkStatus();
  }

  std::string Where(const char* op) const {
    return absl::StrCat(op, " on group '", name_, "' (NCCL, world ranks ", absl::StrJoin(world_ranks_, ","), ")");
  }

  std::string StepText() const {
    return step_ >= 0 ? absl::StrCat("at step ", step_) : std::string("before the first step");
  }

  absl::Status Usable() const {
    if (failed_.ok()) return failed_;
    return absl::Status(failed_.code(), absl::StrCat("communicator '", name_,
                                                     "' is unusable after an earlier error: ", failed_.message()));
  }

  // Aborts the NCCL communicator (which also ends its kernels still waiting for peers) and
  // makes this one unusable.
  absl::Status Fail(absl::Status status) {
    if (comm_ != nullptr) {
      ncclCommAbort(comm_);
      comm_ = nullptr;
    }
    failed_ = status;
    return status;
  }

  absl::Status NcclFailure(const char* op, const char* call, ncclResult_t r) {
    const char* detail = comm_ != nullptr ? ncclGetLastError(comm_) : nullptr;
    return Fail(absl::InternalError(absl::StrCat(Where(op), " failed ", StepText(), " on world rank ", world_rank_,
                                                 ": ", call, ": ", ncclGetErrorString(r),
                                                 detail != nullptr && *detail ? absl::StrCat(" (", detail, ")") : "")));
  }

  // Enqueues one collective on the stream (after the legacy default stream's pending work)
  // and waits for it to finish: first until NCCL has enqueued it (ncclCommGetAsyncError
  // leaves ncclInProgress; the first collective may be setting up connections to the
  // peers), then until the stream has run it. Each poll checks the deadline.
  absl::Status Run(const char* op, const std::function<ncclResult_t()>& collective) {
    DeviceGuard guard(device_);
    if (guard.status() != cudaSuccess) {
      return Fail(absl::InternalError(absl::StrCat(Where(op), ": cudaSetDevice(", device_,
                                                   ") failed: ", CudaText(guard.status()))));
    }
    cudaError_t e = cudaEventRecord(ready_, cudaStreamLegacy);
    if (e == cudaSuccess) e = cudaStreamWaitEvent(stream_, ready_, 0);
    if (e != cudaSuccess) {
      return Fail(absl::InternalError(absl::StrCat(Where(op), " on world rank ", world_rank_,
                                                   ": ordering after the default stream failed: ", CudaText(e))));
    }
    const auto deadline = DeadlineAfter(timeout_s_);
    ncclResult_t r = ncclGroupStart();
    if (r != ncclSuccess) return NcclFailure(op, "ncclGroupStart", r);
    r = collective();
    const ncclResult_t end = ncclGroupEnd();
    if (r != ncclSuccess && r != ncclInProgress) return NcclFailure(op, "enqueueing", r);
    if (end != ncclSuccess && end != ncclInProgress) return NcclFailure(op, "ncclGroupEnd", end);
    bool enqueued = false;
    for (int polls = 0;; ++polls) {
      if (!enqueued) {
        ncclResult_t state = ncclSuccess;
        r = ncclCommGetAsyncError(comm_, &state);
        if (r != ncclSuccess) return NcclFailure(op, "ncclCommGetAsyncError", r);
        if (state != ncclSuccess && state != ncclInProgress) return NcclFailure(op, "asynchronous error", state);
        enqueued = state == ncclSuccess;
      }
      if (enqueued) {
        e = cudaStreamQuery(stream_);
        if (e == cudaSuccess) {
          // A network error may surface only after the kernel gave up.
          ncclResult_t state = ncclSuccess;
          ncclCommGetAsyncError(comm_, &state);
          if (state != ncclSuccess && state != ncclInProgress) return NcclFailure(op, "asynchronous error", state);
          return absl::OkStatus();
        }
        if (e != cudaErrorNotReady) {
          return Fail(absl::InternalError(absl::StrCat(Where(op), " failed ", StepText(), " on world rank ",
                                                       world_rank_, ": CUDA stream error ", CudaText(e))));
        }
      }
      if (Clock::now() > deadline) {
        return Fail(absl::DeadlineExceededError(absl::StrCat(
            Where(op), " timed out after ", timeout_s_, " s ", StepText(), " on world rank ", world_rank_,
            enqueued ? "" : " (still connecting to the peers)",
            ": a peer never joined or is stuck; check the other ranks' logs (the NCCL communicator was aborted)")));
      }
      PollPause(polls);
    }
  }

  ncclComm_t comm_;
  cudaStream_t stream_;
  cudaEvent_t ready_;  // recorded on the legacy default stream before each collective
  void* scratch_;      // one int32 on the device, for Barrier
  std::vector<int> world_ranks_;
  std::string name_;
  int rank_;
  int world_rank_;
  double timeout_s_;
  int device_;
  int64_t step_ = -1;
  absl::Status failed_;
};

// The first member's ncclUniqueId, on every member: non-blocking point-to-point MPI on
// MPI_COMM_WORLD polled against the deadline (Open MPI progresses only inside MPI calls).
absl::Status ExchangeUniqueId(ncclUniqueId* id, const std::vector<int>& world_ranks, int my_index,
                              const std::string& name, double timeout_s, int world_rank) {
  const int tag = TagFromName(name);
  std::vector<MPI_Request> requests;
  // The sends' buffer outlives a timeout (the requests are freed, not completed, then).
  auto outgoing = std::make_unique<ncclUniqueId>();
  if (my_index == 0) {
    const ncclResult_t r = ncclGetUniqueId(id);
    if (r != ncclSuccess) {
      return absl::InternalError(absl::StrCat("communicator '", name, "': ncclGetUniqueId failed: ",
                                              ncclGetErrorString(r), " (", ncclGetLastError(nullptr), ")"));
    }
    *outgoing = *id;
    for (size_t i = 1; i < world_ranks.size(); ++i) {
      requests.emplace_back();
      MPI_Isend(outgoing.get(), sizeof(ncclUniqueId), MPI_BYTE, world_ranks[i], tag, MPI_COMM_WORLD,
                &requests.back());
    }
  } else {
    requests.emplace_back();
    MPI_Irecv(id, sizeof(*id), MPI_BYTE, world_ranks[0], tag, MPI_COMM_WORLD, &requests.back());
  }
  if (requests.empty()) return absl::OkStatus();
  const auto deadline = DeadlineAfter(timeout_s);
  for (int polls = 0;; ++polls) {
    int done = 0;
    const int rc = MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) {
      return absl::InternalError(
          absl::StrCat("communicator '", name, "': sending the ncclUniqueId failed with MPI error ", rc));
    }
    if (done) return absl::OkStatus();
    if (Clock::now() > deadline) {
      for (MPI_Request& req : requests) {
        if (req == MPI_REQUEST_NULL) continue;
        if (my_index == 0) {
          MPI_Request_free(&req);  // Open MPI cannot cancel a send
        } else {
          MPI_Cancel(&req);
          MPI_Wait(&req, MPI_STATUS_IGNORE);  // a cancelled receive completes at once
        }
      }
      if (my_index == 0) outgoing.release();  // may still be read by MPI
      return absl::DeadlineExceededError(absl::StrCat(
          "creating NCCL communicator '", name, "' (world ranks ", absl::StrJoin(world_ranks, ","),
          ") timed out after ", timeout_s, " s on world rank ", world_rank,
          my_index == 0 ? ": a member never took the ncclUniqueId"
                        : absl::StrCat(": the ncclUniqueId never came from world rank ", world_ranks[0]),
          "; check the other ranks' logs"));
    }
    PollPause(polls);
  }
}

}  // namespace

bool CudaDeviceAvailable() { return DeviceCount().ok(); }

absl::StatusOr<int> PickCudaDevice(int local_rank) {
  if (local_rank < 0) return absl::InvalidArgumentError(absl::StrCat("local rank ", local_rank, " is negative"));
  HONE_ASSIGN_OR_RETURN(int count, DeviceCount());
  return local_rank % count;
}

absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclCommunicator(const std::vector<int>& world_ranks,
                                                                     const std::string& name, double timeout_s,
                                                                     int device) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) {
    return absl::FailedPreconditionError(
        absl::StrCat("communicator '", name, "': MPI is not initialised (call MPI_Init_thread first)"));
  }
  if (!(timeout_s > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("communicator '", name, "': timeout must be > 0"));
  }
  int world_size = 0, world_rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  const std::string ranks_text = absl::StrJoin(world_ranks, ",");
  if (world_ranks.empty()) return absl::InvalidArgumentError(absl::StrCat("communicator '", name, "' has no ranks"));
  int my_index = -1;
  for (size_t i = 0; i < world_ranks.size(); ++i) {
    const int r = world_ranks[i];
    if (r < 0 || r >= world_size ||
        std::find(world_ranks.begin(), world_ranks.begin() + i, r) != world_ranks.begin() + i) {
      return absl::InvalidArgumentError(absl::StrCat("communicator '", name, "': world ranks ", ranks_text,
                                                     " must be distinct and below ", world_size));
    }
    if (r == world_rank) my_index = static_cast<int>(i);
  }
  if (my_index < 0) {
    return absl::InvalidArgumentError(absl::StrCat("world rank ", world_rank, " is not a member of communicator '",
                                                   name, "' (world ranks ", ranks_text, ")"));
  }
  // Before any communication, so that a machine without a GPU fails at once on every rank.
  absl::StatusOr<int> count = DeviceCount();
  if (!count.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("NCCL communicator '", name, "' on world rank ", world_rank,
                                                      ": ", count.status().message()));
  }
  if (device < 0 || device >= *count) {
    return absl::InvalidArgumentError(absl::StrCat("NCCL communicator '", name, "': CUDA device ", device,
                                                   " does not exist (this process sees ", *count, ")"));
  }
  DeviceGuard guard(device);
  if (guard.status() != cudaSuccess) {
    return absl::InternalError(absl::StrCat("NCCL communicator '", name, "': cudaSetDevice(", device,
                                            ") failed: ", CudaText(guard.status())));
  }

  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  HONE_RETURN_IF_ERROR(ExchangeUniqueId(&id, world_ranks, my_index, name, timeout_s, world_rank));

  const std::string where = absl::StrCat("creating NCCL communicator '", name, "' (world ranks ", ranks_text,
                                         ") on world rank ", world_rank, ", cuda:", device);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // initialisation runs in the background; polled below
  ncclComm_t comm = nullptr;
  ncclResult_t r = ncclCommInitRankConfig(&comm, static_cast<int>(world_ranks.size()), id, my_index, &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    const char* detail = ncclGetLastError(comm);
    if (comm != nullptr) ncclCommAbort(comm);
    return absl::InternalError(absl::StrCat(where, " failed: ncclCommInitRankConfig: ", ncclGetErrorString(r),
                                            detail != nullptr && *detail ? absl::StrCat(" (", detail, ")") : ""));
  }
  const auto deadline = DeadlineAfter(timeout_s);
  for (int polls = 0;; ++polls) {
    ncclResult_t state = ncclSuccess;
    r = ncclCommGetAsyncError(comm, &state);
    if (r != ncclSuccess) state = r;
    if (state == ncclSuccess) break;
    if (state != ncclInProgress) {
      const char* last = ncclGetLastError(comm);
      const std::string detail = last != nullptr ? last : "";
      ncclCommAbort(comm);
      return absl::InternalError(absl::StrCat(where, " failed: ", ncclGetErrorString(state),
                                              detail.empty() ? "" : absl::StrCat(" (", detail, ")")));
    }
    if (Clock::now() > deadline) {
      ncclCommAbort(comm);
      return absl::DeadlineExceededError(
          absl::StrCat(where, " timed out after ", timeout_s,
                       " s: a member never joined or is stuck; check the other ranks' logs"));
    }
    PollPause(polls);
  }

  cudaStream_t stream = nullptr;
  cudaEvent_t ready = nullptr;
  void* scratch = nullptr;
  cudaError_t e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (e == cudaSuccess) e = cudaEventCreateWithFlags(&ready, cudaEventDisableTiming);
  if (e == cudaSuccess) e = cudaMalloc(&scratch, sizeof(int32_t));
  if (e == cudaSuccess) e = cudaMemset(scratch, 0, sizeof(int32_t));
  if (e != cudaSuccess) {
    ncclCommAbort(comm);
    if (scratch != nullptr) cudaFree(scratch);
    if (ready != nullptr) cudaEventDestroy(ready);
    if (stream != nullptr) cudaStreamDestroy(stream);
    return absl::InternalError(absl::StrCat(where, ": CUDA setup failed: ", CudaText(e)));
  }
  return std::unique_ptr<Communicator>(new NcclCommunicator(comm, stream, ready, scratch, world_ranks, name, my_index,
                                                            world_rank, timeout_s, device));
}

}  // namespace hone::dist
