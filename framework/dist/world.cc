#include "framework/dist/world.h"

#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"

namespace hone::dist {
namespace {

// Polls a non-blocking MPI request against a deadline: Open MPI makes progress only
// inside MPI calls, so MPI_Test both advances and checks the operation.
absl::Status WaitFor(MPI_Request* request, const std::string& what, double timeout_s, int rank) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  int done = 0;
  auto pause = std::chrono::microseconds(20);
  while (true) {
    MPI_Test(request, &done, MPI_STATUS_IGNORE);
    if (done) return absl::OkStatus();
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          what, " timed out after ", timeout_s, " s on world rank ", rank,
          ": some rank never joined (it failed to start, crashed or hangs; check the other ranks' output)"));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(2000));
  }
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kController: return "controller";
    case Role::kRollout: return "rollout";
    case Role::kReward: return "reward";
    case Role::kTrainer: return "trainer";
  }
  return "unknown";
}

Role Placement::RoleOf(int rank) const {
  if (rank == 0) return Role::kController;
  if (rank <= rollout) return Role::kRollout;
  if (rank <= rollout + reward) return Role::kReward;
  return Role::kTrainer;
}

std::vector<int> Placement::RanksOf(Role role) const {
  std::vector<int> ranks;
  for (int r = 0; r < world_size(); ++r) {
    if (RoleOf(r) == role) ranks.push_back(r);
  }
  return ranks;
}

int Placement::IndexInRole(int rank) const {
  int index = 0;
  for (int r = 0; r < rank; ++r) index += RoleOf(r) == RoleOf(rank);
  return index;
}

absl::Status CheckWorldSize(const Placement& p, int world_size) {
  if (world_size == p.world_size()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the job has ", world_size, " ranks but the placement needs 1 controller + placement.rollout=", p.rollout,
      " + placement.reward=", p.reward, " + placement.trainer=", p.trainer, " = ", p.world_size(),
      ": run `mpirun -np ", p.world_size(), " ...`, or change placement.* so that they sum to ", world_size - 1));
}

bool LaunchedAsManyRanks() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"}) {
    const char* value = std::getenv(var);
    if (value != nullptr && std::atoi(value) > 1) return true;
  }
  // srun --mpi=pmix sets PMIX_RANK but no size variable: the step's task count is Slurm's.
  // (A batch script's own environment has no PMIX_RANK.)
  const char* step_tasks = std::getenv("SLURM_STEP_NUM_TASKS");
  if (std::getenv("PMIX_RANK") != nullptr && step_tasks != nullptr && std::atoi(step_tasks) > 1) return true;
  return false;
}

absl::StatusOr<MpiWorld> MpiWorld::Init(int* argc, char*** argv) {
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    return absl::InternalError("MPI_Init_thread failed: was this started by mpirun or srun --mpi=pmix?");
  }
  if (provided < MPI_THREAD_FUNNELED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the MPI library provides thread level ", provided, ", below MPI_THREAD_FUNNELED, which Hone needs"));
  }
  MpiWorld world;
  MPI_Comm_rank(MPI_COMM_WORLD, &world.rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &world.size_);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world.rank_, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &world.local_rank_);
  MPI_Comm_free(&local);
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  world.host_ = host;
  return world;
}

absl::StatusOr<std::vector<std::string>> MpiWorld::AllGatherStrings(const std::string& mine, const std::string& what,
                                                                    double timeout_s) const {
  int length = static_cast<int>(mine.size());
  std::vector<int> lengths(size_);
  MPI_Request request;
  MPI_Iallgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD, &request);
  if (auto s = WaitFor(&request, absl::StrCat(what, " (lengths)"), timeout_s, rank_); !s.ok()) return s;
  std::vector<int> offsets(size_, 0);
  int total = 0;
  for (int r = 0; r < size_; ++r) {
    offsets[r] = total;
    total += lengths[r];
  }
  std::string all(static_cast<size_t>(total), '\0');
  MPI_Iallgatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR,
                  MPI_COMM_WORLD, &request);
  if (auto s = WaitFor(&request, what, timeout_s, rank_); !s.ok()) return s;
  std::vector<std::string> out;
  for (int r = 0; r < size_; ++r) out.push_back(all.substr(offsets[r], lengths[r]));
  return out;
}

absl::StatusOr<std::string> MpiWorld::BroadcastString(const std::string& value, int root, const std::string& what,
                                                      double timeout_s) const {
  int length = static_cast<int>(value.size());
  MPI_Request request;
  MPI_Ibcast(&length, 1, MPI_INT, root, MPI_COMM_WORLD, &request);
  if (auto s = WaitFor(&request, absl::StrCat(what, " (length)"), timeout_s, rank_); !s.ok()) return s;
  std::string out = rank_ == root ? value : std::string(static_cast<size_t>(length), '\0');
  MPI_Ibcast(out.data(), length, MPI_CHAR, root, MPI_COMM_WORLD, &request);
  if (auto s = WaitFor(&request, what, timeout_s, rank_); !s.ok()) return s;
  return out;
}

void MpiWorld::Abort(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

void MpiWorld::Finalize() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

}  // namespace hone::dist
