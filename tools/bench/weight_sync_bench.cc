// The trainer -> rollout weight broadcast (framework/dist/weight_sync.h) on a model-sized
// set of tensors, against this machine's memcpy bandwidth measured in the same run.
// Run under mpirun: rank 0 sends, every other rank receives. Prints one JSON object (rank 0)
// with both paths of the sync: shared memory (sync_gbps) and Broadcast (broadcast_sync_gbps).
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "framework/dist/communicator.h"
#include "framework/dist/weight_sync.h"

namespace {

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int64_t model_mb = argc > 1 ? std::stoll(argv[1]) : 256;
  const int64_t bucket_mb = argc > 2 ? std::stoll(argv[2]) : 256;
  const int repeats = argc > 3 ? std::stoi(argv[3]) : 3;
  std::vector<int> ranks(size);
  for (int r = 0; r < size; ++r) ranks[r] = r;
  auto comm = hone::dist::CreateMpiCommunicator(ranks, "weight_sync", 600);
  if (!comm.ok()) {
    std::fprintf(stderr, "%s\n", std::string(comm.status().message()).c_str());
    return 1;
  }
  // A model-shaped set: 4 MiB matrices and a few small vectors, model_mb in all.
  hone::dist::NamedWeights weights;
  int64_t bytes = 0;
  torch::manual_seed(rank);
  for (int i = 0; bytes < (model_mb << 20); ++i) {
    auto t = torch::randn({1024, 1024});
    bytes += t.numel() * 4;
    weights.emplace_back("layers." + std::to_string(i) + ".weight", t);
    auto v = torch::randn({1024});
    bytes += v.numel() * 4;
    weights.emplace_back("layers." + std::to_string(i) + ".norm", v);
  }
  // Both paths in the same run: through shared memory (what a group on one machine uses)
  // and through Broadcast (a group across machines; the path before shared memory).
  struct Best {
    double sync = 1e30, transfer = 1e30;
    bool shared = false;
  };
  Best best[2];
  for (int path = 0; path < 2; ++path) {
    hone::dist::SetMpiSharedMemoryForTesting(path == 0);
    for (int r = 0; r < repeats; ++r) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double start = Now();
      auto stats = hone::dist::BroadcastWeights(**comm, 0, weights, bucket_mb << 20);
      MPI_Barrier(MPI_COMM_WORLD);  // every receiver done
      const double seconds = Now() - start;
      if (!stats.ok()) {
        std::fprintf(stderr, "%s\n", std::string(stats.status().message()).c_str());
        return 1;
      }
      best[path].sync = std::min(best[path].sync, seconds);
      best[path].transfer = std::min(best[path].transfer, stats->transfer_seconds);
      best[path].shared = stats->shared_memory;
    }
  }
  // memcpy of the same number of bytes, one thread, best of `repeats`.
  double best_copy = 1e30;
  if (rank == 0) {
    std::vector<char> src(static_cast<size_t>(bytes), 1), dst(static_cast<size_t>(bytes), 0);
    for (int r = 0; r < repeats; ++r) {
      const double start = Now();
      std::memcpy(dst.data(), src.data(), src.size());
      best_copy = std::min(best_copy, Now() - start);
    }
    std::printf(
        "{\"model_bytes\": %lld, \"bucket_mb\": %lld, \"receivers\": %d, \"shared_memory\": %s, "
        "\"sync_seconds\": %.6f, \"sync_gbps\": %.3f, \"transfer_gbps\": %.3f, "
        "\"broadcast_sync_gbps\": %.3f, \"broadcast_transfer_gbps\": %.3f, \"memcpy_gbps\": %.3f}\n",
        static_cast<long long>(bytes), static_cast<long long>(bucket_mb), size - 1, best[0].shared ? "true" : "false",
        best[0].sync, bytes / best[0].sync / 1e9, bytes / best[0].transfer / 1e9, bytes / best[1].sync / 1e9,
        bytes / best[1].transfer / 1e9, bytes / best_copy / 1e9);
  }
  comm->reset();
  MPI_Finalize();
  return 0;
}
