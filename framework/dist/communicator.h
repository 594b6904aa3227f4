// CPU collectives over a group of ranks: the interface every distributed piece of Hone
// talks to (FSDP sharding, weight sync), and its MPI backend.
//
// A Communicator is one group of world ranks under a name ("trainer", "weight_sync").
// Collectives operate on contiguous CPU tensors; every member of the group must call the
// same collectives in the same order with tensors of matching dtype and size. Supported
// dtypes: float32, float64, int32, int64, int8, uint8 and bool for every collective;
// bfloat16/float16 move as raw 16-bit words in Broadcast/AllGather and are summed in
// float32 (then rounded back) by ReduceScatter/AllReduceSum.
//
// No collective can hang forever: each waits at most the communicator's timeout and then
// returns DEADLINE_EXCEEDED naming the collective, the group, its world ranks, this rank
// and the policy step (set_step), so the hung peer can be found from one log line. After
// any failure the communicator is unusable: later calls fail fast with the same error.
//
// A Communicator is not thread-safe: call it from one thread at a time.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hone::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  // Rank inside this group, 0..size()-1 (the order of world_ranks()).
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The group's name, used in errors ("trainer", "weight_sync").
  virtual const std::string& name() const = 0;
  // Group rank -> world rank.
  virtual const std::vector<int>& world_ranks() const = 0;
  // Diagnostics only: the policy step that timeout errors report.
  virtual void set_step(int64_t step) = 0;

  // Copies root's (group rank) tensor into every member's tensor, in place.
  virtual absl::Status Broadcast(torch::Tensor& tensor, int root) = 0;
  // output has size()*input.numel() elements; rank r's input lands at [r*n, (r+1)*n).
  virtual absl::Status AllGather(const torch::Tensor& input, torch::Tensor& output) = 0;
  // Sums input (size()*n elements) over ranks; rank r receives elements [r*n, (r+1)*n)
  // of the sum into output (n elements).
  virtual absl::Status ReduceScatter(const torch::Tensor& input, torch::Tensor& output) = 0;
  // Sums tensor over ranks, in place.
  virtual absl::Status AllReduceSum(torch::Tensor& tensor) = 0;
  virtual absl::Status Barrier() = 0;

  // Collective: `bytes` of memory that every member maps (the same bytes, written by one
  // member and read by the others between two Barrier() calls), owned by the communicator
  // and kept for later calls (a larger request replaces it). nullptr when the members do
  // not all share one machine's memory, or the backend has no such memory: callers then
  // move the bytes with Broadcast.
  virtual absl::StatusOr<unsigned char*> SharedMemory(int64_t bytes) { return nullptr; }
};

// The MPI backend. The group is made of the members of `world_ranks` only (ranks of
// MPI_COMM_WORLD, in group-rank order; this rank must be one of them): creation is
// collective over those members alone, so other ranks need not call it. Two groups that
// are created concurrently and overlap need different names.
//
// MPI must already be initialised (MPI_Init_thread; FUNNELED suffices when one thread
// drives MPI). Every collective is non-blocking and polled (Open MPI has no asynchronous
// progress) against a deadline of `timeout_s` seconds per MPI operation. Tensors larger
// than 1 GiB move in chunks, so element counts beyond 2^31 work.
absl::StatusOr<std::unique_ptr<Communicator>> CreateMpiCommunicator(
    const std::vector<int>& world_ranks, const std::string& name, double timeout_s);

// Testing only: the largest message (bytes) one MPI call carries before a collective is
// split into chunks (default 1 GiB). Lets tests cover the chunked paths with small tensors.
void SetMpiChunkBytesForTesting(int64_t bytes);

// Testing only: false makes SharedMemory() answer nullptr, as on a group that spans
// machines, so that tests cover the Broadcast path on one machine too.
void SetMpiSharedMemoryForTesting(bool enabled);

}  // namespace hone::dist
