// FSDP-style sharding of one module's parameters (and its AdamW state) over a
// communicator: each rank keeps 1/W of every flat parameter bucket at rest, parameters are
// all-gathered for forward/backward and gradients reduce-scattered.
//
// One optimizer step on a trainer rank:
//
//   HONE_RETURN_IF_ERROR(sharded->Gather());           // full params, requires_grad kept
//   for (micro-batch) { loss(micro-batch).backward(); } // grads accumulate on the params
//   HONE_RETURN_IF_ERROR(sharded->ReduceScatterGrads()); // summed over ranks into shards
//   sharded->Release();                                 // optional: free the full params
//   HONE_ASSIGN_OR_RETURN(double norm, sharded->ClipGradNorm(1.0));
//   if (std::isfinite(norm)) { HONE_RETURN_IF_ERROR(sharded->OptimizerStep(lr)); }
//   else { sharded->ZeroGrad(); }
//
// Gradients are summed (not averaged) over ranks, so each rank's loss should already be
// divided by the global batch size. Every method that communicates (Create, Gather,
// ReduceScatterGrads, ClipGradNorm, FullParameters, SaveOptimizerSlice) is collective: every
// member of the communicator calls it, in the same order.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/dist/communicator.h"

namespace hone::dist {

struct FsdpOptions {
  // A bucket of consecutive parameters closes once it holds at least this many bytes.
  int64_t bucket_bytes = 64 << 20;
};

class ShardedParameters {
 public:
  // Takes over the parameters of `module` (named_parameters order; all of one floating
  // dtype, on the CPU). They are packed into flat buckets of consecutive parameters, each
  // padded to a multiple of comm->size(); this rank keeps only its 1/W slice of every
  // bucket. Rank 0's weights are broadcast first, so ranks need not start identical. The
  // module's parameters are left empty (0 elements) until Gather(). A parameter registered
  // under several names (tied weights) is sharded once, under its first name.
  // `comm` must outlive the result. A frozen (trainable = false) module, e.g. the
  // reference policy, has no gradients or optimizer.
  static absl::StatusOr<std::unique_ptr<ShardedParameters>> Create(torch::nn::Module& module,
                                                                   Communicator* comm,
                                                                   FsdpOptions options,
                                                                   bool trainable);
  ~ShardedParameters();

  // All-gathers every bucket and points each module parameter at its view of the full
  // buffer (requires_grad kept). Call again after OptimizerStep: it updates the shards only.
  absl::Status Gather();
  // Frees the full buffers; parameters become empty again and their grads are dropped.
  void Release();

  // After backward on the gathered params: packs the param grads into flat full-grad
  // buckets (zeros where a param has no grad), reduce-scatters (sum) them into the shard
  // grads and drops the param grads. Shard grads accumulate over calls until OptimizerStep
  // or ZeroGrad, so either call this once after all micro-batch backwards, or once per
  // micro-batch (releasing the full params in between).
  absl::Status ReduceScatterGrads();
  // Drops the shard grads (e.g. to skip a step whose grad norm is not finite).
  void ZeroGrad();
  // Global grad norm (sqrt of the all-reduced sum of squares of the shard grads). When
  // max_norm > 0, scales the shard grads like torch::nn::utils::clip_grad_norm_:
  // clip_coef = max_norm / (norm + 1e-6), applied when < 1. Returns the norm before
  // clipping, which may be inf or nan: callers check.
  absl::StatusOr<double> ClipGradNorm(double max_norm);

  // Sharded AdamW: one torch::optim::AdamW over the shard tensors, so the math is
  // elementwise identical to AdamW on the full model. amsgrad is not supported.
  absl::Status InitOptimizer(const torch::optim::AdamWOptions& options);
  // Sets the learning rate, steps, and drops the shard grads.
  absl::Status OptimizerStep(double lr);

  // Full parameters by name, all-gathered (the same on every rank): for saving or weight
  // sync. The tensors are views of one fresh buffer per bucket, independent of Gather().
  absl::StatusOr<std::vector<std::pair<std::string, torch::Tensor>>> FullParameters();

  // Optimizer state independent of the placement. Rank r of W saves the slice
  // [r*T/W, (r+1)*T/W) of the concatenation of all T (unpadded) parameter elements
  // (collective: it all-gathers one bucket at a time). Loading takes the slices written by
  // any number of ranks, whose union must cover every element, and keeps what this
  // placement's shards need (local, no communication). Both need InitOptimizer first.
  // step is 0 and the moments are zeros before the first OptimizerStep.
  struct OptimizerSlice {
    int64_t begin = 0, end = 0;
    int64_t step = 0;
    torch::Tensor exp_avg, exp_avg_sq;
  };
  absl::StatusOr<OptimizerSlice> SaveOptimizerSlice();
  absl::Status LoadOptimizerSlices(const std::vector<OptimizerSlice>& slices);

  // Bytes this rank holds at rest: parameter shards + optimizer state + shard grads (not
  // the gathered full buffers). Falls as ~1/W.
  int64_t resident_bytes() const;
  // Parameter elements of the whole model, without padding.
  int64_t total_elements() const;
  int num_buckets() const { return static_cast<int>(buckets_.size()); }

 private:
  struct Param {
    std::string name;
    torch::Tensor tensor;  // the module's parameter (same TensorImpl)
    std::vector<int64_t> shape;
    int64_t numel = 0;
    int64_t offset = 0;  // inside its bucket
  };
  struct Bucket {
    std::vector<int> params;
    int64_t begin = 0;   // first element in the unpadded concatenation of all params
    int64_t numel = 0;   // unpadded
    int64_t padded = 0;  // multiple of the group size
    torch::Tensor shard;  // this rank's padded/W elements; leaf, carries .grad
    torch::Tensor full;   // while gathered
  };

  ShardedParameters() = default;
  int64_t shard_numel(const Bucket& b) const;
  absl::StatusOr<torch::Tensor> GatherBucket(const Bucket& b, const torch::Tensor& shard);
  absl::Status CheckTrainable(const char* what) const;
  absl::Status LoadSlicesInto(const std::vector<OptimizerSlice>& slices);

  Communicator* comm_ = nullptr;
  bool trainable_ = false;
  torch::ScalarType dtype_ = torch::kFloat;
  std::vector<Param> params_;
  std::vector<Bucket> buckets_;
  int64_t total_elements_ = 0;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
};

}  // namespace hone::dist
