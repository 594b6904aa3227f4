#include "framework/dist/weight_sync.h"

#include <algorithm>
#include <chrono>
#include <cstring>

// Header-only: the hash inlines into the copy loops (libxxhash-dev, docs/dependencies.md).
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/core/torch_status.h"

namespace hone::dist {
namespace {

int64_t Bytes(const torch::Tensor& t) { return t.numel() * static_cast<int64_t>(t.element_size()); }

// A tensor at least this large is broadcast in place, without packing: copying it into a
// bucket and out again would cost two extra passes over the bytes.
constexpr int64_t kInPlaceBytes = 1 << 20;

// Checksums hash each tensor in blocks of this size (then fold the block values), so a
// block can be hashed right after it is copied, while it is still in cache.
constexpr int64_t kChecksumBlockBytes = 1 << 20;
// The shared-memory path's slot: dist.sync_bucket_mb, within [one block, 4 MiB]. Two slots
// of 4 MiB stay in the last-level cache between the root's write and the receivers' read,
// so the bytes cross main memory once less: measured on the 2-core VM, 4 MiB slots gave
// 51-56% of memcpy, 8 MiB 36-45%, 64 MiB 32-44% (docs/benchmarks.md).
constexpr int64_t kMaxSlotBytes = int64_t{4} << 20;

// Consecutive tensors [first, last) sent as one message: small ones packed into a bucket
// of about bucket_bytes, or one large tensor in place.
struct BucketRange {
  size_t first = 0, last = 0;
  int64_t bytes = 0;
  bool in_place = false;
};

std::vector<BucketRange> PlanBuckets(const NamedWeights& weights, int64_t bucket_bytes) {
  std::vector<BucketRange> buckets;
  BucketRange current;
  auto close = [&](size_t next) {
    if (current.last > current.first) buckets.push_back(current);
    current = BucketRange{next, next, 0, false};
  };
  for (size_t i = 0; i < weights.size(); ++i) {
    const int64_t bytes = Bytes(weights[i].second);
    if (bytes >= kInPlaceBytes) {
      close(i);
      buckets.push_back(BucketRange{i, i + 1, bytes, true});
      current = BucketRange{i + 1, i + 1, 0, false};
      continue;
    }
    if (current.bytes > 0 && current.bytes + bytes > bucket_bytes) close(i);
    current.last = i + 1;
    current.bytes += bytes;
  }
  close(weights.size());
  return buckets;
}

constexpr uint64_t kFnvPrime = 1099511628211ULL;
constexpr uint64_t kChecksumSeed = 1469598103934665603ULL;

// XXH3 (64-bit) of one block: a vectorised hash, ~34 GB/s on a block in cache on the 2-core
// VM, twice its memcpy bandwidth from memory, so hashing each block right after copying it
// costs well under the copy.
uint64_t BlockChecksum(const unsigned char* bytes, int64_t n) {
  return XXH3_64bits(bytes, static_cast<size_t>(n)) ^ static_cast<uint64_t>(n);
}

uint64_t FoldChecksum(uint64_t sum, uint64_t block) { return (sum ^ block) * kFnvPrime; }
uint64_t FinishChecksum(uint64_t sum, int64_t n) { return sum ^ static_cast<uint64_t>(n); }

// One block of one tensor in the shared-memory stream: tensor `index`, bytes
// [offset, offset + bytes) of it, at `slot_offset` in its slot.
struct StreamPiece {
  size_t index = 0;
  int64_t offset = 0, bytes = 0, slot_offset = 0;
};

// The tensors' checksum blocks, in order, packed into slots of `slot_bytes` (>= one block):
// the same plan on every member, as the layouts were checked equal.
std::vector<std::vector<StreamPiece>> PlanSlots(const NamedWeights& weights, int64_t slot_bytes) {
  std::vector<std::vector<StreamPiece>> slots(1);
  int64_t used = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const int64_t n = Bytes(weights[i].second);
    for (int64_t offset = 0; offset < n; offset += kChecksumBlockBytes) {
      const int64_t bytes = std::min(kChecksumBlockBytes, n - offset);
      if (used + bytes > slot_bytes) {
        slots.emplace_back();
        used = 0;
      }
      slots.back().push_back(StreamPiece{i, offset, bytes, used});
      used += bytes;
    }
  }
  if (slots.back().empty()) slots.pop_back();
  return slots;
}

// The shared-memory path, for a group on one machine: two slots, double-buffered. In round
// k the root copies slot k's blocks in while the receivers copy slot k-1's out, then all
// meet at a barrier; each side hashes each block right after copying it, while it is
// still in cache. One copy per side instead of the transport's two, and the checksum
// pass over memory is gone. Per-tensor checksums go to `sums`.
absl::Status StreamThroughSharedMemory(Communicator& comm, int root, NamedWeights& weights, unsigned char* shared,
                                       int64_t slot_bytes, std::vector<uint64_t>& sums) {
  const bool sending = comm.rank() == root;
  const std::vector<std::vector<StreamPiece>> slots = PlanSlots(weights, slot_bytes);
  sums.assign(weights.size(), kChecksumSeed);
  for (size_t round = 0; round <= slots.size(); ++round) {
    if (sending && round < slots.size()) {
      unsigned char* slot = shared + static_cast<int64_t>(round % 2) * slot_bytes;
      for (const StreamPiece& piece : slots[round]) {
        const auto* src = static_cast<const unsigned char*>(weights[piece.index].second.data_ptr()) + piece.offset;
        std::memcpy(slot + piece.slot_offset, src, static_cast<size_t>(piece.bytes));
        sums[piece.index] = FoldChecksum(sums[piece.index], BlockChecksum(src, piece.bytes));
      }
    }
    if (!sending && round > 0) {
      const unsigned char* slot = shared + static_cast<int64_t>((round - 1) % 2) * slot_bytes;
      for (const StreamPiece& piece : slots[round - 1]) {
        auto* dst = static_cast<unsigned char*>(weights[piece.index].second.data_ptr()) + piece.offset;
        std::memcpy(dst, slot + piece.slot_offset, static_cast<size_t>(piece.bytes));
        sums[piece.index] = FoldChecksum(sums[piece.index], BlockChecksum(dst, piece.bytes));
      }
    }
    HONE_RETURN_IF_ERROR(comm.Barrier());
  }
  for (size_t i = 0; i < weights.size(); ++i) sums[i] = FinishChecksum(sums[i], Bytes(weights[i].second));
  return absl::OkStatus();
}

// The Broadcast path (a group across machines): buckets of small tensors and large
// tensors in place.
absl::Status StreamByBroadcast(Communicator& comm, int root, NamedWeights& weights, int64_t bucket_bytes) {
  const bool sending = comm.rank() == root;
  for (const BucketRange& bucket : PlanBuckets(weights, bucket_bytes)) {
    if (bucket.in_place) {
      HONE_RETURN_IF_ERROR(comm.Broadcast(weights[bucket.first].second, root));
      continue;
    }
    auto buffer = torch::empty({bucket.bytes}, torch::kUInt8);
    auto* data = static_cast<unsigned char*>(buffer.data_ptr());
    if (sending) {
      int64_t offset = 0;
      for (size_t i = bucket.first; i < bucket.last; ++i) {
        const auto& t = weights[i].second;
        std::memcpy(data + offset, t.data_ptr(), static_cast<size_t>(Bytes(t)));
        offset += Bytes(t);
      }
    }
    HONE_RETURN_IF_ERROR(comm.Broadcast(buffer, root));
    if (!sending) {
      int64_t offset = 0;
      for (size_t i = bucket.first; i < bucket.last; ++i) {
        auto& t = weights[i].second;
        std::memcpy(t.data_ptr(), data + offset, static_cast<size_t>(Bytes(t)));
        offset += Bytes(t);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

uint64_t TensorChecksum(const torch::Tensor& tensor) {
  torch::Tensor t = tensor.contiguous();
  const auto* bytes = static_cast<const unsigned char*>(t.data_ptr());
  const int64_t n = Bytes(t);
  uint64_t sum = kChecksumSeed;
  for (int64_t offset = 0; offset < n; offset += kChecksumBlockBytes) {
    sum = FoldChecksum(sum, BlockChecksum(bytes + offset, std::min(kChecksumBlockBytes, n - offset)));
  }
  return FinishChecksum(sum, n);
}

absl::StatusOr<WeightSyncStats> BroadcastWeights(Communicator& comm, int root, NamedWeights& weights,
                                                 int64_t bucket_bytes) {
  const auto start = std::chrono::steady_clock::now();
  WeightSyncStats stats;
  for (auto& [name, tensor] : weights) {
    if (!tensor.is_contiguous() || tensor.device().type() != torch::kCPU) {
      return absl::InvalidArgumentError(absl::StrCat("weight sync: tensor ", name, " must be a contiguous CPU tensor"));
    }
  }
  // The sides must agree on the layout before any bytes move: compare the tensor count
  // and total bytes with the root's.
  int64_t total = 0;
  for (const auto& [name, tensor] : weights) total += Bytes(tensor);
  auto layout = torch::tensor({static_cast<int64_t>(weights.size()), total}, torch::kInt64);
  auto root_layout = layout.clone();
  HONE_RETURN_IF_ERROR(comm.Broadcast(root_layout, root));
  if (!torch::equal(layout, root_layout)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "weight sync on group '", comm.name(), "': this rank holds ", layout[0].item<int64_t>(), " tensors (",
        layout[1].item<int64_t>(), " bytes) but the sender holds ", root_layout[0].item<int64_t>(), " (",
        root_layout[1].item<int64_t>(), " bytes): the rollout and trainer models differ in config"));
  }
  const int64_t slot_bytes = std::clamp(bucket_bytes, kChecksumBlockBytes, kMaxSlotBytes);
  HONE_ASSIGN_OR_RETURN(unsigned char* shared,
                        comm.size() > 1 ? comm.SharedMemory(2 * slot_bytes) : absl::StatusOr<unsigned char*>(nullptr));
  std::vector<uint64_t> sums;
  if (shared != nullptr) {
    HONE_RETURN_IF_ERROR(StreamThroughSharedMemory(comm, root, weights, shared, slot_bytes, sums));
  } else {
    HONE_RETURN_IF_ERROR(StreamByBroadcast(comm, root, weights, bucket_bytes));
  }
  stats.bytes = static_cast<double>(total);
  stats.transfer_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (shared == nullptr) {  // each member hashes what it now holds
    sums.resize(weights.size());
    for (size_t i = 0; i < weights.size(); ++i) sums[i] = TensorChecksum(weights[i].second);
  }
  stats.shared_memory = shared != nullptr;
  // Checksums: the root's per-tensor values against each receiver's own.
  std::vector<int64_t> mine(weights.size());
  uint64_t combined = kChecksumSeed;
  for (size_t i = 0; i < weights.size(); ++i) {
    mine[i] = static_cast<int64_t>(sums[i]);
    combined = FoldChecksum(combined, sums[i]);
  }
  auto expected = torch::tensor(mine, torch::kInt64);
  HONE_RETURN_IF_ERROR(comm.Broadcast(expected, root));
  auto expected_acc = expected.accessor<int64_t, 1>();
  for (size_t i = 0; i < weights.size(); ++i) {
    if (expected_acc[i] != mine[i]) {
      return absl::DataLossError(absl::StrCat(
          "weight sync on group '", comm.name(), "': tensor ", weights[i].first, " differs from the trainer's after the ",
          "broadcast (checksum ", static_cast<uint64_t>(mine[i]), " vs ", static_cast<uint64_t>(expected_acc[i]),
          "): the rollout would generate with corrupt weights; stopping"));
    }
  }
  stats.checksum = combined;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace hone::dist
