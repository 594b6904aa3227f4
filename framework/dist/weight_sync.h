// The weight path after every policy step (DESIGN.md §2): the trainer group's leader
// broadcasts the full policy straight to every rollout worker over the weight-sync
// communicator, in buckets, never through the controller; then every receiver checks a
// per-tensor checksum against the sender's, because silently stale or corrupt weights are
// the failure users of RL frameworks report most.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/dist/communicator.h"

namespace hone::dist {

using NamedWeights = std::vector<std::pair<std::string, torch::Tensor>>;

struct WeightSyncStats {
  double seconds = 0;           // the whole sync, checksum check included
  double transfer_seconds = 0;  // the broadcasts alone
  double bytes = 0;        // payload bytes moved
  uint64_t checksum = 0;   // over every tensor, in order (the same on every member after a sync)
  bool shared_memory = false;  // moved through memory all members map (one machine), not Broadcast
};

// XXH3 (64-bit) of each 1 MiB block of the tensor's bytes (contiguous, native
// little-endian), the block values folded by FNV-1a: equal for
// bit-identical tensors, different for any changed bit (with overwhelming probability).
uint64_t TensorChecksum(const torch::Tensor& tensor);

// Collective over `comm`. The member with group rank `root` sends `weights`; every other
// member receives into its `weights` in place (same names, order, shapes and dtypes as
// the root's: both sides hold the same model config).
// * Members on one machine (Communicator::SharedMemory): the bytes go through two shared
//   slots of `bucket_bytes` (clamped to [1 MiB, 4 MiB]), double-buffered, one copy in by
//   the root and one copy out by each receiver, each block hashed as it is copied.
// * Otherwise tensors are packed into buckets of about `bucket_bytes`, each bucket one
//   Broadcast; a tensor of 1 MiB or more is broadcast in place.
// Afterwards the root broadcasts the per-tensor checksums and each receiver compares
// them with its own: DataLoss naming the first tensor that differs.
absl::StatusOr<WeightSyncStats> BroadcastWeights(Communicator& comm, int root, NamedWeights& weights,
                                                 int64_t bucket_bytes);

}  // namespace hone::dist
