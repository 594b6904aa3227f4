// Shared by the MPI test binaries: world rank/size and a GoogleTest main for mpirun.
#pragma once

#include <mpi.h>

#include <numeric>
#include <vector>

namespace hone::dist::mpitest {

inline int WorldRank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

inline int WorldSize() {
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

inline std::vector<int> AllRanks() {
  std::vector<int> ranks(WorldSize());
  std::iota(ranks.begin(), ranks.end(), 0);
  return ranks;
}

// MPI_Init_thread, then keeps GoogleTest's full report on world rank 0 only; the other
// ranks print just their failures, prefixed with "[rank N]". Returns 0 or an exit code.
int InitMpiAndGTest(int* argc, char*** argv);

}  // namespace hone::dist::mpitest
