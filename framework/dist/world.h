// The job's processes: which rank plays which role (placement), and the MPI bootstrap that
// tells every rank who the others are (DESIGN.md §1). Torch-free.
//
// Rank 0 is the controller; the other ranks take roles in the order rollout, reward,
// trainer, as many of each as the config's placement.* keys say. One thread per process
// calls MPI (the main thread); gRPC's threads never do.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hone::dist {

enum class Role { kController, kRollout, kReward, kTrainer };
const char* RoleName(Role role);  // "controller", "rollout", "reward", "trainer"

struct Placement {
  int rollout = 1, reward = 1, trainer = 1;

  int world_size() const { return 1 + rollout + reward + trainer; }
  Role RoleOf(int rank) const;
  // World ranks of a role, ascending.
  std::vector<int> RanksOf(Role role) const;
  // Position of `rank` among the ranks of its role (0-based).
  int IndexInRole(int rank) const;
};

// InvalidArgument naming the numbers to use when world_size != placement.world_size().
absl::Status CheckWorldSize(const Placement& placement, int world_size);

// True when this process was started by mpirun/srun as one of several ranks.
bool LaunchedAsManyRanks();

// This process in the MPI job. Construct once, from main(), before any threads start.
class MpiWorld {
 public:
  // MPI_Init_thread (MPI_THREAD_FUNNELED: only the main thread calls MPI).
  static absl::StatusOr<MpiWorld> Init(int* argc, char*** argv);

  int rank() const { return rank_; }
  int size() const { return size_; }
  // Rank among the processes on this host (MPI_COMM_TYPE_SHARED): picks the CUDA device.
  int local_rank() const { return local_rank_; }
  const std::string& host() const { return host_; }

  // Every rank's string, in rank order. Waits at most timeout_s (non-blocking MPI polled
  // against a deadline); DEADLINE_EXCEEDED names `what` and the ranks that never arrived
  // cannot be known, so it names the collective.
  absl::StatusOr<std::vector<std::string>> AllGatherStrings(const std::string& mine, const std::string& what,
                                                            double timeout_s) const;
  // Root's string on every rank.
  absl::StatusOr<std::string> BroadcastString(const std::string& value, int root, const std::string& what,
                                              double timeout_s) const;

  // Ends the whole job now (MPI_Abort): for errors after which peers would wait forever.
  [[noreturn]] void Abort(int code) const;
  // MPI_Finalize; safe to call once.
  static void Finalize();

 private:
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::string host_;
};

}  // namespace hone::dist
