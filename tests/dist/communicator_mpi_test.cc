// Collectives of the MPI communicator, run under mpirun (ctest runs it with 2 and 4 ranks).
// Every result is checked against a reference computed here in float64 from the inputs
// that each rank is known to hold (rank-dependent aranges and sines).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>

#include "framework/dist/communicator.h"
#include "tests/dist/mpi_test_util.h"

namespace hone::dist {
namespace {

using mpitest::AllRanks;
using mpitest::WorldRank;
using mpitest::WorldSize;

constexpr double kTimeout = 60;  // a failing rank turns into an error, not a hang

std::unique_ptr<Communicator> WorldComm() {
  auto comm = CreateMpiCommunicator(AllRanks(), "world", kTimeout);
  EXPECT_TRUE(comm.ok()) << comm.status();
  return comm.ok() ? std::move(*comm) : nullptr;
}

// The input rank r holds in the tests below, in float64: r * 1000 + i (exact in every
// dtype used with it when n is small), or sin(0.1 * i + r) for the floating reductions.
torch::Tensor Arange(int r, int64_t n, double base = 1000) {
  return torch::arange(n, torch::kDouble) + base * r;
}
torch::Tensor Sines(int r, int64_t n) { return torch::sin(torch::arange(n, torch::kDouble) * 0.1 + r); }

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

const std::vector<torch::ScalarType> kMoveTypes = {torch::kFloat, torch::kDouble, torch::kLong,
                                                   torch::kInt,   torch::kByte,   torch::kBFloat16};

TEST(MpiCommunicatorTest, DescribesItsGroup) {
  auto comm = WorldComm();
  ASSERT_NE(comm, nullptr);
  EXPECT_EQ(comm->size(), WorldSize());
  EXPECT_EQ(comm->rank(), WorldRank());
  EXPECT_EQ(comm->name(), "world");
  EXPECT_EQ(comm->world_ranks(), AllRanks());
  EXPECT_TRUE(comm->Barrier().ok());
}

TEST(MpiCommunicatorTest, BroadcastCopiesTheRootsTensorInEveryDtype) {
  auto comm = WorldComm();
  ASSERT_NE(comm, nullptr);
  const int root = comm->size() - 1;
  for (auto dtype : kMoveTypes) {
    // uint8 and bfloat16 hold the small integers i + 50 * r exactly.
    torch::Tensor t = Arange(comm->rank(), 37, 50).to(dtype);
    ASSERT_TRUE(comm->Broadcast(t, root).ok()) << dtype;
    EXPECT_EQ(MaxAbsDiff(t, Arange(root, 37, 50)), 0) << dtype;  // exact
  }
}

TEST(MpiCommunicatorTest, AllGatherPlacesRankRAtOffsetRTimesN) {
  auto comm = WorldComm();
  ASSERT_NE(comm, nullptr);
  const int64_t n = 29;
  torch::Tensor expected = torch::empty({0}, torch::kDouble);
  for (int r = 0; r < comm->size(); ++r) expected = torch::cat({expected, Arange(r, n, 50)});
  for (auto dtype : kMoveTypes) {
    torch::Tensor out = torch::full({comm->size() * n}, -1, torch::dtype(dtype));
    ASSERT_TRUE(comm->AllGather(Arange(comm->rank(), n, 50).to(dtype), out).ok()) << dtype;
    EXPECT_EQ(MaxAbsDiff(out, expected), 0) << dtype;  // exact
  }
}

TEST(MpiCommunicatorTest, ReduceScatterSumsAndSplitsByRank) {
  auto comm = WorldComm();
  ASSERT_NE(comm, nullptr);
  const int w = comm->size(), r = comm->rank();
  const int64_t n = 41;
  torch::Tensor sum = torch::zeros({w * n}, torch::kDouble);
  for (int q = 0; q < w; ++q) sum += Sines(q, w * n);
  const torch::Tensor mine = sum.narrow(0, r * n, n);
  // Tolerances: a few float32 ulps of values |x| <= w; float64 near-exact.
  for (auto [dtype, tol] : {std::pair{torch::kFloat, 1e-5}, {torch::kDouble, 1e-12},
                            {torch::kBFloat16, 0.05 * w}}) {
    torch::Tensor out = torch::empty({n}, torch::dtype(dtype));
    ASSERT_TRUE(comm->ReduceScatter(Sines(r, w * n).to(dtype), out).ok()) << dtype;
    EXPECT_LT(MaxAbsDiff(out, mine), tol) << dtype;
  }
  torch::Tensor ints = torch::empty({n}, torch::kLong);
  ASSERT_TRUE(comm->ReduceScatter(Arange(r, w * n).to(torch::kLong), ints).ok());
  torch::Tensor int_sum = torch::zeros({w * n}, torch::kDouble);
  for (int q = 0; q < w; ++q) int_sum += Arange(q, w * n);
  EXPECT_EQ(MaxAbsDiff(ints, int_sum.narrow(0, r * n, n)), 0);
}

TEST(MpiCommunicatorTest, AllReduceSumInPlace) {
  auto comm = WorldComm();
  ASSERT_NE(comm, nullptr);
  const int w = comm->size(), r = comm->rank();
  const int64_t n = 53;
  torch::Tensor sines = torch::zeros({n}, torch::kDouble), ints = torch::zeros({n}, torch::kDouble);
  for (int q = 0; q < w; ++q) {
    sines += Sines(q, n);
    ints += Arange(q, n, 3);  // <= 256 for n = 53, w <= 8: exact in bfloat16 too
  }
  for (auto [dtype, tol] : {std::pair{torch::kFloat, 1e-5}, {torch::kDouble, 1e-12}}) {
    torch::Tensor t = Sines(r, n).to(dtype);
    ASSERT_TRUE(comm->AllReduceSum(t).ok()) << dtype;
    EXPECT_LT(MaxAbsDiff(t, sines), tol) << dtype;
  }
  for (auto dtype : {torch::kLong, torch::kInt, torch::kBFloat16}) {
    torch::Tensor t = Arange(r, n, 3).to(dtype);
    ASSERT_TRUE(comm->AllReduceSum(t).ok()) << dtype;
    EXPECT_EQ(MaxAbsDiff(t, ints), 0) << dtype;
  }
}

// With a 64-byte chunk limit every collective takes its chunked path (the one that lets
// tensors beyond 2^31 elements through); the results must not change.
TEST(MpiCommunicatorTest, ChunkedCollectivesGiveTheSameResults) {
  auto comm = WorldComm();
  ASSERT_NE(comm, nullptr);
  const int w = comm->size(), r = comm->rank();
  const int64_t n = 1001;
  SetMpiChunkBytesForTesting(64);
  torch::Tensor b = Arange(r, n).to(torch::kFloat);
  EXPECT_TRUE(comm->Broadcast(b, 0).ok());
  EXPECT_EQ(MaxAbsDiff(b, Arange(0, n)), 0);

  torch::Tensor gathered = torch::empty({w * n}, torch::kDouble), expected_gather;
  EXPECT_TRUE(comm->AllGather(Arange(r, n), gathered).ok());
  std::vector<torch::Tensor> parts;
  for (int q = 0; q < w; ++q) parts.push_back(Arange(q, n));
  EXPECT_EQ(MaxAbsDiff(gathered, torch::cat(parts)), 0);

  torch::Tensor sum = torch::zeros({w * n}, torch::kDouble);
  for (int q = 0; q < w; ++q) sum += Sines(q, w * n);
  torch::Tensor scattered = torch::empty({n}, torch::kDouble);
  EXPECT_TRUE(comm->ReduceScatter(Sines(r, w * n), scattered).ok());
  EXPECT_LT(MaxAbsDiff(scattered, sum.narrow(0, r * n, n)), 1e-12);

  torch::Tensor all = Sines(r, w * n);
  EXPECT_TRUE(comm->AllReduceSum(all).ok());
  EXPECT_LT(MaxAbsDiff(all, sum), 1e-12);
  SetMpiChunkBytesForTesting(int64_t{1} << 30);
}

// A group of world ranks 1..W-1: rank 0 never calls into it, and is refused membership.
TEST(MpiCommunicatorTest, SubsetGroupWorksWithoutTheOtherRanks) {
  std::vector<int> members;
  for (int r = 1; r < WorldSize(); ++r) members.push_back(r);
  if (WorldRank() == 0) {
    auto refused = CreateMpiCommunicator(members, "subset", kTimeout);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("not a member"));
  } else {
    auto comm = CreateMpiCommunicator(members, "subset", kTimeout);
    ASSERT_TRUE(comm.ok()) << comm.status();
    EXPECT_EQ((*comm)->size(), WorldSize() - 1);
    EXPECT_EQ((*comm)->rank(), WorldRank() - 1);
    EXPECT_EQ((*comm)->world_ranks(), members);
    torch::Tensor t = torch::full({5}, static_cast<double>(WorldRank()), torch::kDouble);
    ASSERT_TRUE((*comm)->AllReduceSum(t).ok());
    const double expected = (WorldSize() - 1) * WorldSize() / 2.0;  // 1 + ... + W-1
    EXPECT_EQ(MaxAbsDiff(t, torch::full({5}, expected, torch::kDouble)), 0);
    torch::Tensor b = torch::full({3}, WorldRank(), torch::kLong);
    ASSERT_TRUE((*comm)->Broadcast(b, 0).ok());  // group rank 0 = world rank 1
    EXPECT_EQ(b[2].item<int64_t>(), 1);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(MpiCommunicatorTest, RejectsBadArgumentsWithoutBreakingTheGroup) {
  auto comm = WorldComm();
  ASSERT_NE(comm, nullptr);
  torch::Tensor out = torch::empty({3}, torch::kFloat);
  EXPECT_EQ(comm->AllGather(torch::ones({2}), out).code(), absl::StatusCode::kInvalidArgument);
  torch::Tensor strided = torch::ones({4, 4}).t();
  EXPECT_EQ(comm->AllReduceSum(strided).code(), absl::StatusCode::kInvalidArgument);
  torch::Tensor flags = torch::ones({2}, torch::kBool);
  EXPECT_EQ(comm->AllReduceSum(flags).code(), absl::StatusCode::kInvalidArgument);
  torch::Tensor t = torch::ones({2});
  EXPECT_EQ(comm->Broadcast(t, comm->size()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(CreateMpiCommunicator({0, 0}, "dup", kTimeout).ok());
  EXPECT_TRUE(comm->AllReduceSum(t).ok());
  EXPECT_EQ(t[0].item<float>(), comm->size());
}

// Beyond 2^31 elements (needs ~4 GiB per rank): HONE_DIST_LARGE_TEST=1 to run it.
TEST(MpiCommunicatorTest, MessagesBeyondTwoToThe31Elements) {
  if (std::getenv("HONE_DIST_LARGE_TEST") == nullptr) GTEST_SKIP() << "set HONE_DIST_LARGE_TEST=1";
  auto comm = WorldComm();
  ASSERT_NE(comm, nullptr);
  const int64_t big = (int64_t{1} << 31) + 7;
  torch::Tensor t = torch::full({big}, comm->rank() + 1, torch::kByte);
  if (comm->rank() == 0) t[big - 1] = 200;
  ASSERT_TRUE(comm->Broadcast(t, 0).ok());
  EXPECT_EQ(t[big - 1].item<int>(), 200);
  EXPECT_EQ(t[big - 2].item<int>(), 1);
  t.fill_(1);
  ASSERT_TRUE(comm->AllReduceSum(t).ok());
  EXPECT_EQ(t[0].item<int>(), comm->size());
  EXPECT_EQ(t[big - 1].item<int>(), comm->size());
  t = torch::Tensor();
  const int64_t n = big / comm->size() + 1;  // output > 2^31 elements
  torch::Tensor in = torch::full({n}, comm->rank() + 1, torch::kByte);
  torch::Tensor gathered = torch::empty({n * comm->size()}, torch::kByte);
  ASSERT_TRUE(comm->AllGather(in, gathered).ok());
  for (int r = 0; r < comm->size(); ++r) {
    EXPECT_EQ(gathered[r * n].item<int>(), r + 1);
    EXPECT_EQ(gathered[r * n + n - 1].item<int>(), r + 1);
  }
}

}  // namespace
}  // namespace hone::dist

int main(int argc, char** argv) {
  if (int rc = hone::dist::mpitest::InitMpiAndGTest(&argc, &argv)) return rc;
  const int rc = RUN_ALL_TESTS();
  MPI_Finalize();
  return rc;
}
