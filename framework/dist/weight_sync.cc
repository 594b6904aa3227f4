#include "framework/dist/weight_sync.h"

#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/core/torch_status.h"

namespace hone::dist {
namespace {

int64_t Bytes(const torch::Tensor& t) { return t.numel() * static_cast<int64_t>(t.element_size()); }

// A tensor at least this large is broadcast in place, without packing: copying it into a
// bucket and out again would cost two extra passes over the bytes.
constexpr int64_t kInPlaceBytes = 1 << 20;

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

}  // namespace

uint64_t TensorChecksum(const torch::Tensor& tensor) {
  torch::Tensor t = tensor.contiguous();
  const auto* bytes = static_cast<const unsigned char*>(t.data_ptr());
  const int64_t n = Bytes(t);
  constexpr uint64_t kPrime = 1099511628211ULL;
  // FNV-1a over 64-bit words in four independent lanes (the multiply chain of one lane
  // would make hashing slower than the broadcast), then folded into one value.
  uint64_t lane[4] = {1469598103934665603ULL, 0x9E3779B97F4A7C15ULL, 0xC2B2AE3D27D4EB4FULL, 0x165667B19E3779F9ULL};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      uint64_t word;
      std::memcpy(&word, bytes + i + 8 * k, 8);
      lane[k] = (lane[k] ^ word) * kPrime;
    }
  }
  uint64_t hash = lane[0];
  for (int k = 1; k < 4; ++k) hash = (hash ^ lane[k]) * kPrime;
  for (; i < n; ++i) hash = (hash ^ bytes[i]) * kPrime;
  return hash ^ static_cast<uint64_t>(n);
}

absl::StatusOr<WeightSyncStats> BroadcastWeights(Communicator& comm, int root, NamedWeights& weights,
                                                 int64_t bucket_bytes) {
  const auto start = std::chrono::steady_clock::now();
  WeightSyncStats stats;
  const bool sending = comm.rank() == root;
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
  for (const BucketRange& bucket : PlanBuckets(weights, bucket_bytes)) {
    if (bucket.in_place) {
      HONE_RETURN_IF_ERROR(comm.Broadcast(weights[bucket.first].second, root));
      stats.bytes += static_cast<double>(bucket.bytes);
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
    stats.bytes += static_cast<double>(bucket.bytes);
  }
  stats.transfer_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Checksums: the root's per-tensor values against each receiver's own.
  std::vector<int64_t> mine(weights.size());
  uint64_t combined = 1469598103934665603ULL;
  for (size_t i = 0; i < weights.size(); ++i) {
    const uint64_t sum = TensorChecksum(weights[i].second);
    mine[i] = static_cast<int64_t>(sum);
    combined = (combined ^ sum) * 1099511628211ULL;
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
