// A collective whose peer never arrives turns into DEADLINE_EXCEEDED instead of a hang.
// Run with 2 ranks: world rank 1 skips the AllReduceSum that rank 0 enters. Afterwards
// rank 1 joins the abandoned collective late so that both ranks finalise MPI cleanly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>

#include "framework/dist/communicator.h"
#include "tests/dist/mpi_test_util.h"

namespace hone::dist {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Communicator> g_comm;  // outlives the test: rank 1 drains it in main()

TEST(MpiTimeoutTest, PeerThatNeverJoinsIsReportedWithinTheTimeout) {
  ASSERT_NE(g_comm, nullptr);
  if (g_comm->rank() != 0) return;  // the peer that never joins
  g_comm->set_step(7);
  torch::Tensor t = torch::ones({16});
  const auto start = std::chrono::steady_clock::now();
  const absl::Status status = g_comm->AllReduceSum(t);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_GE(seconds, 2.0);
  // Only catches a wait that never ends; a loaded machine may be slow to notice.
  EXPECT_LT(seconds, 30.0);
  const std::string message(status.message());
  std::fprintf(stderr, "[rank 0] the error, as a log would show it: %s\n", message.c_str());
  EXPECT_THAT(message, HasSubstr("allreduce"));
  EXPECT_THAT(message, HasSubstr("group 'trainer'"));
  EXPECT_THAT(message, HasSubstr("world ranks 0,1"));
  EXPECT_THAT(message, HasSubstr("step 7"));
  EXPECT_THAT(message, HasSubstr("after 2 s"));
  EXPECT_THAT(message, HasSubstr("on world rank 0"));

  // The communicator is now unusable: the next call fails at once with the same error.
  const auto again = std::chrono::steady_clock::now();
  const absl::Status second = g_comm->Barrier();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - again).count(), 1.9)
      << "a second wait for the dead peer instead of failing fast";
  EXPECT_EQ(second.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(second.message()), HasSubstr("unusable"));
  EXPECT_THAT(std::string(second.message()), HasSubstr("allreduce"));
}

}  // namespace
}  // namespace hone::dist

int main(int argc, char** argv) {
  using namespace hone::dist;
  if (int rc = mpitest::InitMpiAndGTest(&argc, &argv)) return rc;
  if (mpitest::WorldSize() != 2) {
    std::fprintf(stderr, "dist_timeout_test needs exactly 2 ranks\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  auto comm = CreateMpiCommunicator({0, 1}, "trainer", /*timeout_s=*/2);
  if (!comm.ok()) {
    std::fprintf(stderr, "%s\n", comm.status().ToString().c_str());
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  g_comm = std::move(*comm);
  int rc = RUN_ALL_TESTS();
  // Rank 0 has given up on the allreduce; rank 1 now completes it, while rank 0 sits in a
  // world barrier (whose polling also progresses the abandoned request).
  MPI_Barrier(MPI_COMM_WORLD);
  if (g_comm->rank() == 1) {
    torch::Tensor t = torch::ones({16});
    const absl::Status drained = g_comm->AllReduceSum(t);
    if (!drained.ok()) {
      std::fprintf(stderr, "[rank 1] draining the abandoned allreduce: %s\n",
                   drained.ToString().c_str());
      rc = 1;
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  g_comm.reset();
  MPI_Finalize();
  return rc;
}
