// The MPI backend of Communicator: non-blocking collectives polled against a deadline.
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"
#include "framework/dist/communicator.h"

namespace hone::dist {
namespace {

std::atomic<int64_t> g_chunk_bytes{int64_t{1} << 30};
std::atomic<bool> g_shared_memory{true};

// FNV-1a: the same on every rank and build, unlike std::hash.
int TagFromName(const std::string& name) {
  uint32_t h = 2166136261u;
  for (unsigned char c : name) h = (h ^ c) * 16777619u;
  return static_cast<int>(h % 32767u);  // MPI guarantees MPI_TAG_UB >= 32767
}

bool IsHalf(torch::ScalarType t) {
  return t == torch::kBFloat16 || t == torch::kHalf;
}

// The MPI type for moving (reduce = false) or summing (reduce = true) a dtype.
absl::StatusOr<MPI_Datatype> MpiType(torch::ScalarType t, bool reduce) {
  switch (t) {
    case torch::kFloat: return MPI_FLOAT;
    case torch::kDouble: return MPI_DOUBLE;
    case torch::kLong: return MPI_INT64_T;
    case torch::kInt: return MPI_INT32_T;
    case torch::kChar: return MPI_INT8_T;
    case torch::kByte: return MPI_UINT8_T;
    case torch::kBool:
      if (!reduce) return MPI_UINT8_T;
      break;
    case torch::kBFloat16:
    case torch::kHalf:
      if (!reduce) return MPI_UINT16_T;
      break;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("dtype ", c10::toString(t), " is not supported",
                                                 reduce ? " by summing collectives" : ""));
}

absl::Status CheckTensor(const torch::Tensor& t, const char* what) {
  if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat(what, " is undefined"));
  if (!t.device().is_cpu()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " must be a CPU tensor"));
  }
  if (!t.is_contiguous()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " must be contiguous"));
  }
  return absl::OkStatus();
}

// [offset, count) pieces of n elements, at most max_elems each; at least one piece so that
// every member still takes part in the collective when n == 0.
std::vector<std::pair<int64_t, int64_t>> Chunks(int64_t n, int64_t max_elems) {
  std::vector<std::pair<int64_t, int64_t>> out;
  max_elems = std::max<int64_t>(1, std::min<int64_t>(max_elems, INT32_MAX));
  for (int64_t off = 0; off < n; off += max_elems) out.push_back({off, std::min(max_elems, n - off)});
  if (out.empty()) out.push_back({0, 0});
  return out;
}

char* Ptr(const torch::Tensor& t, int64_t elem_offset) {
  return static_cast<char*>(t.data_ptr()) + elem_offset * t.element_size();
}

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, std::vector<int> world_ranks, std::string name, int rank,
                  int world_rank, double timeout_s)
      : comm_(comm), world_ranks_(std::move(world_ranks)), name_(std::move(name)),
        rank_(rank), world_rank_(world_rank), timeout_s_(timeout_s) {}

  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    // After a failure a request may still reference the communicator, and freeing a
    // window waits for every member: leak both.
    if (finalized || !failed_.ok()) return;
    FreeWindow();
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
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
      return absl::InvalidArgumentError(absl::StrCat("broadcast root ", root, " outside group '",
                                                     name_, "' of size ", size()));
    }
    HONE_ASSIGN_OR_RETURN(MPI_Datatype type, MpiType(tensor.scalar_type(), false));
    for (auto [off, count] : Chunks(tensor.numel(), ChunkBytes() / tensor.element_size())) {
      MPI_Request req;
      HONE_RETURN_IF_ERROR(Check(MPI_Ibcast(Ptr(tensor, off), static_cast<int>(count), type, root,
                                            comm_, &req), "broadcast"));
      HONE_RETURN_IF_ERROR(Wait(&req, "broadcast"));
    }
    return absl::OkStatus();
  }

  absl::Status AllGather(const torch::Tensor& input, torch::Tensor& output) override {
    HONE_RETURN_IF_ERROR(Usable());
    HONE_RETURN_IF_ERROR(CheckTensor(input, "allgather input"));
    HONE_RETURN_IF_ERROR(CheckTensor(output, "allgather output"));
    HONE_RETURN_IF_ERROR(CheckPair(input, output, "allgather", output.numel()));
    HONE_ASSIGN_OR_RETURN(MPI_Datatype type, MpiType(input.scalar_type(), false));
    const int64_t n = input.numel(), es = input.element_size(), w = size();
    if (w * n * es <= ChunkBytes()) {
      MPI_Request req;
      HONE_RETURN_IF_ERROR(Check(MPI_Iallgather(input.data_ptr(), static_cast<int>(n), type,
                                                output.data_ptr(), static_cast<int>(n), type,
                                                comm_, &req), "allgather"));
      return Wait(&req, "allgather");
    }
    // Chunk j of every rank arrives packed as [w, c] and is scattered into place.
    const int64_t c = std::max<int64_t>(1, ChunkBytes() / (w * es));
    torch::Tensor tmp = torch::empty({w * std::min(c, n)}, input.options());
    torch::Tensor out2d = output.view({w, n});
    for (auto [off, count] : Chunks(n, c)) {
      MPI_Request req;
      HONE_RETURN_IF_ERROR(Check(MPI_Iallgather(Ptr(input, off), static_cast<int>(count), type,
                                                tmp.data_ptr(), static_cast<int>(count), type,
                                                comm_, &req), "allgather"));
      HONE_RETURN_IF_ERROR(Wait(&req, "allgather"));
      out2d.narrow(1, off, count).copy_(tmp.narrow(0, 0, w * count).view({w, count}));
    }
    return absl::OkStatus();
  }

  absl::Status ReduceScatter(const torch::Tensor& input, torch::Tensor& output) override {
    HONE_RETURN_IF_ERROR(Usable());
    HONE_RETURN_IF_ERROR(CheckTensor(input, "reduce_scatter input"));
    HONE_RETURN_IF_ERROR(CheckTensor(output, "reduce_scatter output"));
    HONE_RETURN_IF_ERROR(CheckPair(output, input, "reduce_scatter", input.numel()));
    if (IsHalf(input.scalar_type())) {
      torch::Tensor out32 = torch::empty({output.numel()}, output.options().dtype(torch::kFloat));
      HONE_RETURN_IF_ERROR(ReduceScatter(input.to(torch::kFloat), out32));
      output.view({-1}).copy_(out32);
      return absl::OkStatus();
    }
    HONE_ASSIGN_OR_RETURN(MPI_Datatype type, MpiType(input.scalar_type(), true));
    const int64_t n = output.numel(), es = input.element_size(), w = size();
    if (w * n * es <= ChunkBytes()) {
      MPI_Request req;
      HONE_RETURN_IF_ERROR(Check(MPI_Ireduce_scatter_block(input.data_ptr(), output.data_ptr(),
                                                           static_cast<int>(n), type, MPI_SUM,
                                                           comm_, &req), "reduce_scatter"));
      return Wait(&req, "reduce_scatter");
    }
    // Chunk j of every rank's block is packed as [w, c] before reducing.
    const int64_t c = std::max<int64_t>(1, ChunkBytes() / (w * es));
    torch::Tensor tmp = torch::empty({w * std::min(c, n)}, input.options());
    torch::Tensor in2d = input.view({w, n});
    for (auto [off, count] : Chunks(n, c)) {
      tmp.narrow(0, 0, w * count).view({w, count}).copy_(in2d.narrow(1, off, count));
      MPI_Request req;
      HONE_RETURN_IF_ERROR(Check(MPI_Ireduce_scatter_block(tmp.data_ptr(), Ptr(output, off),
                                                           static_cast<int>(count), type, MPI_SUM,
                                                           comm_, &req), "reduce_scatter"));
      HONE_RETURN_IF_ERROR(Wait(&req, "reduce_scatter"));
    }
    return absl::OkStatus();
  }

  absl::Status AllReduceSum(torch::Tensor& tensor) override {
    HONE_RETURN_IF_ERROR(Usable());
    HONE_RETURN_IF_ERROR(CheckTensor(tensor, "allreduce tensor"));
    if (IsHalf(tensor.scalar_type())) {
      torch::Tensor t32 = tensor.to(torch::kFloat);
      HONE_RETURN_IF_ERROR(AllReduceSum(t32));
      tensor.copy_(t32);
      return absl::OkStatus();
    }
    HONE_ASSIGN_OR_RETURN(MPI_Datatype type, MpiType(tensor.scalar_type(), true));
    for (auto [off, count] : Chunks(tensor.numel(), ChunkBytes() / tensor.element_size())) {
      MPI_Request req;
      HONE_RETURN_IF_ERROR(Check(MPI_Iallreduce(MPI_IN_PLACE, Ptr(tensor, off),
                                                static_cast<int>(count), type, MPI_SUM, comm_,
                                                &req), "allreduce"));
      HONE_RETURN_IF_ERROR(Wait(&req, "allreduce"));
    }
    return absl::OkStatus();
  }

  absl::Status Barrier() override {
    HONE_RETURN_IF_ERROR(Usable());
    // With shared memory in use, the barrier also orders one member's writes to it before
    // the others' reads (MPI_Win_sync: the window's memory barrier).
    if (window_ != MPI_WIN_NULL) MPI_Win_sync(window_);
    MPI_Request req;
    HONE_RETURN_IF_ERROR(Check(MPI_Ibarrier(comm_, &req), "barrier"));
    HONE_RETURN_IF_ERROR(Wait(&req, "barrier"));
    if (window_ != MPI_WIN_NULL) MPI_Win_sync(window_);
    return absl::OkStatus();
  }

  absl::StatusOr<unsigned char*> SharedMemory(int64_t bytes) override {
    HONE_RETURN_IF_ERROR(Usable());
    if (!g_shared_memory.load(std::memory_order_relaxed)) return nullptr;
    if (window_ != MPI_WIN_NULL && window_bytes_ >= bytes) return window_base_;
    // Every member must be here before the blocking calls below (MPI has no non-blocking
    // form of them): the polled barrier turns a missing member into a timeout instead.
    HONE_RETURN_IF_ERROR(Barrier());
    if (!same_machine_.has_value()) {
      MPI_Comm local = MPI_COMM_NULL;
      HONE_RETURN_IF_ERROR(Check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local),
                                 "shared-memory split"));
      int local_size = 0;
      MPI_Comm_size(local, &local_size);
      MPI_Comm_free(&local);
      same_machine_ = local_size == size();
    }
    if (!*same_machine_) return nullptr;
    FreeWindow();
    // The whole segment belongs to group rank 0; the others map it.
    void* base = nullptr;
    HONE_RETURN_IF_ERROR(Check(MPI_Win_allocate_shared(rank_ == 0 ? bytes : 0, 1, MPI_INFO_NULL, comm_, &base,
                                                       &window_),
                               "shared-memory allocation"));
    MPI_Aint size = 0;
    int disp_unit = 0;
    HONE_RETURN_IF_ERROR(Check(MPI_Win_shared_query(window_, 0, &size, &disp_unit, &base), "shared-memory query"));
    // One passive epoch for the window's lifetime: what MPI_Win_sync needs.
    HONE_RETURN_IF_ERROR(Check(MPI_Win_lock_all(MPI_MODE_NOCHECK, window_), "shared-memory lock"));
    window_base_ = static_cast<unsigned char*>(base);
    window_bytes_ = bytes;
    return window_base_;
  }

 private:
  static int64_t ChunkBytes() { return g_chunk_bytes.load(std::memory_order_relaxed); }

  // small has n elements, big has size()*n, same dtype.
  absl::Status CheckPair(const torch::Tensor& small, const torch::Tensor& big, const char* op,
                         int64_t big_numel) {
    if (small.scalar_type() != big.scalar_type()) {
      return absl::InvalidArgumentError(absl::StrCat(op, ": input and output dtypes differ (",
                                                     c10::toString(small.scalar_type()), " vs ",
                                                     c10::toString(big.scalar_type()), ")"));
    }
    if (big_numel != small.numel() * size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          op, ": the larger tensor has ", big_numel, " elements, expected group size ", size(),
          " x ", small.numel()));
    }
    return absl::OkStatus();
  }

  std::string Where(const char* op) const {
    return absl::StrCat(op, " on group '", name_, "' (world ranks ", absl::StrJoin(world_ranks_, ","),
                        ")");
  }

  std::string StepText() const {
    return step_ >= 0 ? absl::StrCat("at step ", step_) : std::string("before the first step");
  }

  absl::Status Usable() const {
    if (failed_.ok()) return failed_;
    return absl::Status(failed_.code(), absl::StrCat("communicator '", name_,
                                                     "' is unusable after an earlier error: ",
                                                     failed_.message()));
  }

  absl::Status Fail(absl::Status status) {
    failed_ = status;
    return status;
  }

  absl::Status Check(int rc, const char* op) {
    if (rc == MPI_SUCCESS) return absl::OkStatus();
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    return Fail(absl::InternalError(absl::StrCat(Where(op), " failed ", StepText(),
                                                 " on world rank ", world_rank_, ": ",
                                                 std::string(text, len))));
  }

  // Polls the request (which is what advances it: Open MPI has no progress thread) until it
  // completes or the deadline passes.
  absl::Status Wait(MPI_Request* req, const char* op) {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(timeout_s_));
    const auto start = Clock::now();
    constexpr auto kSpinPhase = std::chrono::seconds(5);
    for (;;) {
      int done = 0;
      HONE_RETURN_IF_ERROR(Check(MPI_Test(req, &done, MPI_STATUS_IGNORE), op));
      if (done) return absl::OkStatus();
      if (Clock::now() > deadline) {
        return Fail(absl::DeadlineExceededError(absl::StrCat(
            Where(op), " timed out after ", timeout_s_, " s ", StepText(), " on world rank ",
            world_rank_, ": a peer never joined or is stuck; check the other ranks' logs")));
      }
      // Data moves only while this thread is inside MPI, so a large message needs
      // continuous polling: spin (yielding the core) for the first seconds of a wait,
      // and only then, when a peer is clearly late rather than the data slow, poll every
      // millisecond to leave the CPU to others.
      if (Clock::now() - start < kSpinPhase) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }

  void FreeWindow() {
    if (window_ == MPI_WIN_NULL) return;
    MPI_Win_unlock_all(window_);
    MPI_Win_free(&window_);
    window_base_ = nullptr;
    window_bytes_ = 0;
  }

  MPI_Comm comm_;
  MPI_Win window_ = MPI_WIN_NULL;
  unsigned char* window_base_ = nullptr;
  int64_t window_bytes_ = 0;
  std::optional<bool> same_machine_;  // every member in one shared-memory domain
  std::vector<int> world_ranks_;
  std::string name_;
  int rank_;
  int world_rank_;
  double timeout_s_;
  int64_t step_ = -1;
  absl::Status failed_;
};

}  // namespace

void SetMpiChunkBytesForTesting(int64_t bytes) {
  g_chunk_bytes.store(std::max<int64_t>(1, bytes), std::memory_order_relaxed);
}

void SetMpiSharedMemoryForTesting(bool enabled) { g_shared_memory.store(enabled, std::memory_order_relaxed); }

absl::StatusOr<std::unique_ptr<Communicator>> CreateMpiCommunicator(
    const std::vector<int>& world_ranks, const std::string& name, double timeout_s) {
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
  if (world_ranks.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("communicator '", name, "' has no ranks"));
  }
  int my_index = -1;
  for (size_t i = 0; i < world_ranks.size(); ++i) {
    const int r = world_ranks[i];
    if (r < 0 || r >= world_size ||
        std::find(world_ranks.begin(), world_ranks.begin() + i, r) != world_ranks.begin() + i) {
      return absl::InvalidArgumentError(absl::StrCat("communicator '", name, "': world ranks ",
                                                     ranks_text, " must be distinct and below ",
                                                     world_size));
    }
    if (r == world_rank) my_index = static_cast<int>(i);
  }
  if (my_index < 0) {
    return absl::InvalidArgumentError(absl::StrCat("world rank ", world_rank,
                                                   " is not a member of communicator '", name,
                                                   "' (world ranks ", ranks_text, ")"));
  }
  MPI_Group world_group, group;
  MPI_Comm_group(MPI_COMM_WORLD, &world_group);
  MPI_Group_incl(world_group, static_cast<int>(world_ranks.size()), world_ranks.data(), &group);
  MPI_Comm comm = MPI_COMM_NULL;
  const int rc = MPI_Comm_create_group(MPI_COMM_WORLD, group, TagFromName(name), &comm);
  MPI_Group_free(&group);
  MPI_Group_free(&world_group);
  if (rc != MPI_SUCCESS || comm == MPI_COMM_NULL) {
    return absl::InternalError(absl::StrCat("creating communicator '", name, "' (world ranks ",
                                            ranks_text, ") failed with MPI error ", rc));
  }
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  MPI_Comm_set_name(comm, name.c_str());
  int rank = -1;
  MPI_Comm_rank(comm, &rank);
  if (rank != my_index) {
    MPI_Comm_free(&comm);
    return absl::InternalError(absl::StrCat("communicator '", name, "': group rank ", rank,
                                            " does not match position ", my_index));
  }
  return std::unique_ptr<Communicator>(
      new MpiCommunicator(comm, world_ranks, name, rank, world_rank, timeout_s));
}

}  // namespace hone::dist
