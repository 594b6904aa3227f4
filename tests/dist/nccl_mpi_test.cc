// The NCCL communicator under mpirun -np 2 (ctest: dist_nccl_mpi_test_np2).
//
// Without a CUDA device (CPU machines, CI) every GPU test skips with a message, and only the
// checks that need no GPU run: creation and device picking fail at once with a clear
// FAILED_PRECONDITION. With devices, every collective is checked against float64 references
// (as communicator_mpi_test.cc does for MPI), then creation and collective timeouts.
//
// CUDA tensors are made with cudaMalloc/cudaMemcpy and at::for_blob, never with libtorch's
// CUDA kernels, so this test also runs when Hone is built against a CPU-only libtorch on a
// GPU machine. NCCL refuses two ranks of one communicator on one GPU ("duplicate GPU"); on a
// host with fewer GPUs than ranks, main() gives each rank its own NCCL_HOSTID so that NCCL
// treats them as separate hosts (socket transport over loopback).
#include <cuda_runtime.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <mpi.h>
#include <nccl.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "framework/dist/build_info.h"
#include "framework/dist/communicator.h"
#include "framework/dist/nccl_communicator.h"
#include "tests/dist/mpi_test_util.h"

namespace hone::dist {
namespace {

using ::testing::HasSubstr;
using mpitest::AllRanks;
using mpitest::WorldRank;
using mpitest::WorldSize;

constexpr double kTimeout = 60;  // a failing rank turns into an error, not a hang

// This process's rank and the number of processes on its host (MPI_COMM_TYPE_SHARED).
std::pair<int, int> LocalRankAndSize() {
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
  int rank = 0, size = 1;
  MPI_Comm_rank(local, &rank);
  MPI_Comm_size(local, &size);
  MPI_Comm_free(&local);
  return {rank, size};
}

int g_device = -1;  // set in main() when a device is visible

// A CUDA copy of a CPU tensor (contiguous, on g_device), freed with cudaFree.
torch::Tensor ToDevice(const torch::Tensor& cpu_in) {
  const torch::Tensor cpu = cpu_in.contiguous();
  void* ptr = nullptr;
  const size_t bytes = cpu.numel() * cpu.element_size();
  cudaSetDevice(g_device);
  EXPECT_EQ(cudaMalloc(&ptr, std::max<size_t>(bytes, 1)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(ptr, cpu.data_ptr(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
  const torch::Device device(torch::kCUDA, static_cast<c10::DeviceIndex>(g_device));
  return at::for_blob(ptr, cpu.sizes())
      .options(torch::dtype(cpu.scalar_type()).device(device))
      .target_device(device)
      .deleter([](void* p) { cudaFree(p); })
      .make_tensor();
}

torch::Tensor ToHost(const torch::Tensor& gpu) {
  torch::Tensor cpu = torch::empty(gpu.sizes(), torch::dtype(gpu.scalar_type()));
  EXPECT_EQ(cudaMemcpy(cpu.data_ptr(), gpu.data_ptr(), cpu.numel() * cpu.element_size(), cudaMemcpyDeviceToHost),
            cudaSuccess);
  return cpu;
}

torch::Tensor Arange(int r, int64_t n, double base = 1000) { return torch::arange(n, torch::kDouble) + base * r; }
torch::Tensor Sines(int r, int64_t n) { return torch::sin(torch::arange(n, torch::kDouble) * 0.1 + r); }
// Small integers (i % 20 + r) whose sums over a few ranks fit int8 and uint8.
torch::Tensor SmallInts(int r, int64_t n) { return torch::remainder(torch::arange(n, torch::kDouble), 20) + r; }

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.numel() == 0 && b.numel() == 0) return 0;
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

const std::vector<torch::ScalarType> kAllTypes = {torch::kFloat, torch::kDouble, torch::kHalf, torch::kBFloat16,
                                                  torch::kInt,   torch::kLong,   torch::kByte, torch::kChar};

// Runs everywhere: without a device, creation and device picking fail at once, clearly.
TEST(NcclWithoutDeviceTest, CreationAndDevicePickingFailClearly) {
  EXPECT_EQ(PickCudaDevice(-1).status().code(), absl::StatusCode::kInvalidArgument);
  // Bad arguments are reported before the device is looked for.
  EXPECT_EQ(CreateNcclCommunicator({0, 0}, "dup", kTimeout, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateNcclCommunicator(AllRanks(), "world", 0, 0).status().code(), absl::StatusCode::kInvalidArgument);
  if (CudaDeviceAvailable()) {
    auto device = PickCudaDevice(LocalRankAndSize().first);
    ASSERT_TRUE(device.ok()) << device.status();
    int count = 0;
    ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
    EXPECT_GE(*device, 0);
    EXPECT_LT(*device, count);
    std::fprintf(stderr, "[rank %d] %d CUDA device(s); this rank uses cuda:%d\n", WorldRank(), count, *device);
    return;
  }
  auto device = PickCudaDevice(0);
  EXPECT_EQ(device.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(device.status().message()), HasSubstr("no CUDA device"));

  const auto start = std::chrono::steady_clock::now();
  auto comm = CreateNcclCommunicator(AllRanks(), "world", kTimeout, 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 5.0);  // fails at once, before any communication
  EXPECT_EQ(comm.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(comm.status().message());
  EXPECT_THAT(message, HasSubstr("no CUDA device"));
  EXPECT_THAT(message, HasSubstr("'world'"));
  if (WorldRank() == 0) std::fprintf(stderr, "[rank 0] without a GPU, as a log would show it: %s\n", message.c_str());
}

// Every test below needs a CUDA device on each rank.
class NcclTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (g_device < 0) {
      GTEST_SKIP() << "no CUDA device visible to this process: the NCCL backend is built, but its GPU "
                      "tests need a GPU (tools/gpu_check.sh runs them on a GPU machine)";
    }
  }

  std::unique_ptr<Communicator> Create(const std::vector<int>& ranks, const std::string& name,
                                       double timeout_s = kTimeout) {
    auto comm = CreateNcclCommunicator(ranks, name, timeout_s, g_device);
    EXPECT_TRUE(comm.ok()) << comm.status();
    return comm.ok() ? std::move(*comm) : nullptr;
  }
};

TEST_F(NcclTest, DescribesItsGroup) {
  auto comm = Create(AllRanks(), "world");
  ASSERT_NE(comm, nullptr);
  EXPECT_EQ(comm->size(), WorldSize());
  EXPECT_EQ(comm->rank(), WorldRank());
  EXPECT_EQ(comm->name(), "world");
  EXPECT_EQ(comm->world_ranks(), AllRanks());
  EXPECT_TRUE(comm->Barrier().ok());
  EXPECT_TRUE(comm->Barrier().ok());
}

TEST_F(NcclTest, BroadcastCopiesTheRootsTensorInEveryDtype) {
  auto comm = Create(AllRanks(), "world");
  ASSERT_NE(comm, nullptr);
  const int root = comm->size() - 1;
  for (auto dtype : kAllTypes) {
    // i + 50 * r for i < 37 fits every dtype exactly (int8 up to rank 1).
    torch::Tensor t = ToDevice(Arange(comm->rank(), 37, 50).to(dtype));
    ASSERT_TRUE(comm->Broadcast(t, root).ok()) << dtype;
    EXPECT_EQ(MaxAbsDiff(ToHost(t), Arange(root, 37, 50).to(dtype)), 0) << dtype;  // exact
  }
  torch::Tensor flags = ToDevice(torch::full({5}, comm->rank() == root, torch::kBool));
  ASSERT_TRUE(comm->Broadcast(flags, root).ok());
  EXPECT_TRUE(ToHost(flags).all().item<bool>());
  torch::Tensor empty = ToDevice(torch::empty({0}));
  EXPECT_TRUE(comm->Broadcast(empty, 0).ok());
}

TEST_F(NcclTest, AllGatherPlacesRankRAtOffsetRTimesN) {
  auto comm = Create(AllRanks(), "world");
  ASSERT_NE(comm, nullptr);
  const int64_t n = 29;
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < comm->size(); ++r) parts.push_back(Arange(r, n, 50));
  const torch::Tensor expected = torch::cat(parts);
  for (auto dtype : kAllTypes) {
    torch::Tensor out = ToDevice(torch::full({comm->size() * n}, -1, torch::dtype(dtype)));
    ASSERT_TRUE(comm->AllGather(ToDevice(Arange(comm->rank(), n, 50).to(dtype)), out).ok()) << dtype;
    EXPECT_EQ(MaxAbsDiff(ToHost(out), expected.to(dtype)), 0) << dtype;  // exact
  }
}

TEST_F(NcclTest, ReduceScatterSumsAndSplitsByRank) {
  auto comm = Create(AllRanks(), "world");
  ASSERT_NE(comm, nullptr);
  const int w = comm->size(), r = comm->rank();
  const int64_t n = 41;
  torch::Tensor sum = torch::zeros({w * n}, torch::kDouble), int_sum = torch::zeros({w * n}, torch::kDouble);
  for (int q = 0; q < w; ++q) {
    sum += Sines(q, w * n);
    int_sum += SmallInts(q, w * n);
  }
  // Tolerances: a few ulps of values |x| <= w in each dtype; float64 near-exact.
  for (auto [dtype, tol] : {std::pair{torch::kFloat, 1e-5}, {torch::kDouble, 1e-12}, {torch::kHalf, 0.01 * w},
                            {torch::kBFloat16, 0.05 * w}}) {
    torch::Tensor out = ToDevice(torch::empty({n}, torch::dtype(dtype)));
    ASSERT_TRUE(comm->ReduceScatter(ToDevice(Sines(r, w * n).to(dtype)), out).ok()) << dtype;
    EXPECT_LT(MaxAbsDiff(ToHost(out), sum.narrow(0, r * n, n)), tol) << dtype;
  }
  for (auto dtype : {torch::kInt, torch::kLong, torch::kByte, torch::kChar}) {
    torch::Tensor out = ToDevice(torch::empty({n}, torch::dtype(dtype)));
    ASSERT_TRUE(comm->ReduceScatter(ToDevice(SmallInts(r, w * n).to(dtype)), out).ok()) << dtype;
    EXPECT_EQ(MaxAbsDiff(ToHost(out), int_sum.narrow(0, r * n, n)), 0) << dtype;
  }
}

TEST_F(NcclTest, AllReduceSumInPlace) {
  auto comm = Create(AllRanks(), "world");
  ASSERT_NE(comm, nullptr);
  const int w = comm->size(), r = comm->rank();
  const int64_t n = 53;
  torch::Tensor sines = torch::zeros({n}, torch::kDouble), ints = torch::zeros({n}, torch::kDouble);
  for (int q = 0; q < w; ++q) {
    sines += Sines(q, n);
    ints += SmallInts(q, n);
  }
  for (auto [dtype, tol] : {std::pair{torch::kFloat, 1e-5}, {torch::kDouble, 1e-12}, {torch::kHalf, 0.01 * w},
                            {torch::kBFloat16, 0.05 * w}}) {
    torch::Tensor t = ToDevice(Sines(r, n).to(dtype));
    ASSERT_TRUE(comm->AllReduceSum(t).ok()) << dtype;
    EXPECT_LT(MaxAbsDiff(ToHost(t), sines), tol) << dtype;
  }
  for (auto dtype : {torch::kInt, torch::kLong, torch::kByte, torch::kChar}) {
    torch::Tensor t = ToDevice(SmallInts(r, n).to(dtype));
    ASSERT_TRUE(comm->AllReduceSum(t).ok()) << dtype;
    EXPECT_EQ(MaxAbsDiff(ToHost(t), ints), 0) << dtype;
  }
  // A larger tensor (4 MiB of float32), so that NCCL splits it over its channels.
  const int64_t big = int64_t{1} << 20;
  torch::Tensor t = ToDevice(torch::full({big}, r + 1.0, torch::kFloat));
  ASSERT_TRUE(comm->AllReduceSum(t).ok());
  const torch::Tensor host = ToHost(t);
  EXPECT_EQ(host[0].item<float>(), w * (w + 1) / 2.0f);
  EXPECT_EQ(host[big - 1].item<float>(), w * (w + 1) / 2.0f);
}

// A group of world ranks 1..W-1: rank 0 never calls into it, and is refused membership.
TEST_F(NcclTest, SubsetGroupWorksWithoutTheOtherRanks) {
  std::vector<int> members;
  for (int r = 1; r < WorldSize(); ++r) members.push_back(r);
  if (WorldRank() == 0) {
    auto refused = CreateNcclCommunicator(members, "subset", kTimeout, g_device);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr("not a member"));
  } else {
    auto comm = Create(members, "subset");
    ASSERT_NE(comm, nullptr);
    EXPECT_EQ(comm->size(), WorldSize() - 1);
    EXPECT_EQ(comm->rank(), WorldRank() - 1);
    torch::Tensor t = ToDevice(torch::full({5}, static_cast<double>(WorldRank()), torch::kDouble));
    ASSERT_TRUE(comm->AllReduceSum(t).ok());
    const double expected = (WorldSize() - 1) * WorldSize() / 2.0;  // 1 + ... + W-1
    EXPECT_EQ(MaxAbsDiff(ToHost(t), torch::full({5}, expected, torch::kDouble)), 0);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST_F(NcclTest, RejectsBadArgumentsWithoutBreakingTheGroup) {
  EXPECT_EQ(CreateNcclCommunicator(AllRanks(), "world", kTimeout, 1 << 20).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto comm = Create(AllRanks(), "world");
  ASSERT_NE(comm, nullptr);
  torch::Tensor cpu = torch::ones({4});
  const absl::Status on_cpu = comm->AllReduceSum(cpu);
  EXPECT_EQ(on_cpu.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(on_cpu.message()), HasSubstr("CUDA tensor"));
  // A transposed 4x4 view of device memory: not contiguous.
  torch::Tensor square = ToDevice(torch::ones({4, 4}));
  torch::Tensor strided = at::for_blob(square.data_ptr(), {4, 4})
                              .strides({1, 4})
                              .options(square.options())
                              .target_device(square.device())
                              .make_tensor();
  EXPECT_EQ(comm->AllReduceSum(strided).code(), absl::StatusCode::kInvalidArgument);
  torch::Tensor flags = ToDevice(torch::ones({2}, torch::kBool));
  EXPECT_EQ(comm->AllReduceSum(flags).code(), absl::StatusCode::kInvalidArgument);
  torch::Tensor out = ToDevice(torch::empty({3}));
  EXPECT_EQ(comm->AllGather(ToDevice(torch::ones({2})), out).code(), absl::StatusCode::kInvalidArgument);
  torch::Tensor t = ToDevice(torch::ones({2}));
  EXPECT_EQ(comm->Broadcast(t, comm->size()).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(comm->AllReduceSum(t).ok());
  EXPECT_EQ(ToHost(t)[0].item<float>(), comm->size());
}

// World rank 1 never creates the communicator that rank 0 waits for: rank 0's creation
// (the ncclUniqueId goes out eagerly; NCCL's initialisation then waits for rank 1) ends with
// DEADLINE_EXCEEDED instead of a hang.
TEST_F(NcclTest, CreationTimesOutWhenAMemberNeverJoins) {
  if (WorldSize() < 2) GTEST_SKIP() << "needs 2 ranks";
  if (WorldRank() == 0) {
    const auto start = std::chrono::steady_clock::now();
    auto comm = CreateNcclCommunicator({0, 1}, "never_joined", /*timeout_s=*/3, g_device);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(comm.status().code(), absl::StatusCode::kDeadlineExceeded) << comm.status();
    EXPECT_GE(seconds, 3.0);
    EXPECT_LT(seconds, 3.0 + 10.0);
    EXPECT_THAT(std::string(comm.status().message()), HasSubstr("'never_joined'"));
    std::fprintf(stderr, "[rank 0] creation timeout after %.2f s, as a log would show it: %s\n", seconds,
                 std::string(comm.status().message()).c_str());
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

// Last: world rank 1 skips the all-reduce that rank 0 enters.
TEST_F(NcclTest, PeerThatNeverJoinsIsReportedWithinTheTimeout) {
  if (WorldSize() < 2) GTEST_SKIP() << "needs 2 ranks";
  std::vector<int> pair = {0, 1};
  std::unique_ptr<Communicator> comm;
  if (WorldRank() <= 1) {
    comm = Create(pair, "trainer", /*timeout_s=*/3);
    ASSERT_NE(comm, nullptr);
  }
  if (WorldRank() == 0) {
    comm->set_step(7);
    torch::Tensor t = ToDevice(torch::ones({16}));
    const auto start = std::chrono::steady_clock::now();
    const absl::Status status = comm->AllReduceSum(t);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
    EXPECT_GE(seconds, 3.0);
    EXPECT_LT(seconds, 3.0 + 5.0);  // the timeout, then ncclCommAbort
    const std::string message(status.message());
    std::fprintf(stderr, "[rank 0] after %.2f s, the error as a log would show it: %s\n", seconds, message.c_str());
    EXPECT_THAT(message, HasSubstr("allreduce"));
    EXPECT_THAT(message, HasSubstr("group 'trainer'"));
    EXPECT_THAT(message, HasSubstr("world ranks 0,1"));
    EXPECT_THAT(message, HasSubstr("step 7"));
    EXPECT_THAT(message, HasSubstr("after 3 s"));
    EXPECT_THAT(message, HasSubstr("on world rank 0"));

    // The communicator is now unusable: the next call fails at once with the same error.
    const auto again = std::chrono::steady_clock::now();
    const absl::Status second = comm->Barrier();
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - again).count(), 0.1);
    EXPECT_EQ(second.code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_THAT(std::string(second.message()), HasSubstr("unusable"));
    EXPECT_THAT(std::string(second.message()), HasSubstr("allreduce"));
  }
  MPI_Barrier(MPI_COMM_WORLD);
  // Rank 1's communicator finalises against an aborted peer: its destructor gives up after
  // the timeout and aborts, so this returns instead of hanging.
  const auto start = std::chrono::steady_clock::now();
  comm.reset();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 3.0 + 5.0);
}

}  // namespace
}  // namespace hone::dist

int main(int argc, char** argv) {
  using namespace hone::dist;
  if (int rc = mpitest::InitMpiAndGTest(&argc, &argv)) return rc;
  const auto [local_rank, local_size] = LocalRankAndSize();
  const bool have_device = CudaDeviceAvailable();
  int count = 0;
  if (have_device && cudaGetDeviceCount(&count) == cudaSuccess && count < local_size) {
    // NCCL refuses two ranks of one communicator on one GPU unless they seem to be on
    // different hosts: give each rank its own host id (before any NCCL call).
    const std::string host_id = "hone-nccl-test-rank-" + std::to_string(mpitest::WorldRank());
    setenv("NCCL_HOSTID", host_id.c_str(), 1);
    setenv("NCCL_SOCKET_IFNAME", "lo", 0);
    if (mpitest::WorldRank() == 0) {
      std::fprintf(stderr, "%d rank(s) on this host share %d GPU(s): each rank gets its own NCCL_HOSTID "
                   "(NCCL then connects them over sockets on the loopback interface)\n", local_size, count);
    }
  }
  if (have_device) {
    auto device = PickCudaDevice(local_rank);
    if (device.ok()) g_device = *device;
  }
  if (mpitest::WorldRank() == 0) {
    std::fprintf(stderr, "NCCL %s (headers %d.%d.%d); CUDA device visible: %s\n",
                 hone::NcclVersion().value_or("unknown").c_str(), NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH,
                 have_device ? "yes" : "no (the GPU tests skip)");
  }
  const int rc = RUN_ALL_TESTS();
  MPI_Finalize();
  return rc;
}
