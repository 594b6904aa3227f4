// A trainer's part of a checkpoint, besides the model. AdamW state on disk in a form that does not depend on the placement: each file holds
// the slice [begin, end) of the concatenation of all (unpadded) policy parameters, in
// named_parameters order, with the moments and the step count. An in-process trainer
// writes one slice covering everything; W FSDP ranks write W slices. Any set of slices
// that covers every element loads into any placement (the shards are re-split).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/dist/fsdp.h"

namespace hone {

using OptimizerSlice = dist::ShardedParameters::OptimizerSlice;

// "optimizer_shard_<rank>_of_<ranks>.pt"
std::string OptimizerSliceFileName(int rank, int ranks);
absl::Status WriteOptimizerSlice(const std::string& path, const OptimizerSlice& slice);
// Every optimizer_shard_*_of_*.pt in `dir`; NotFound when there is none.
absl::StatusOr<std::vector<OptimizerSlice>> ReadOptimizerSlices(const std::string& dir);

// The whole AdamW state of `params` (in this order) as one slice; zeros and step 0 for
// parameters AdamW has not stepped yet.
OptimizerSlice AdamWToSlice(torch::optim::AdamW& optimizer, const std::vector<torch::Tensor>& params);
// Loads slices covering [0, total) into `optimizer`'s state for `params`. InvalidArgument
// when the slices do not cover every element exactly or the sizes differ.
absl::Status AdamWFromSlices(torch::optim::AdamW& optimizer, const std::vector<torch::Tensor>& params,
                             const std::vector<OptimizerSlice>& slices);

// Trainer-side state beside the optimizer: the schedule's position.
absl::Status WriteTrainerState(const std::string& dir, int64_t schedule_steps, int64_t skipped_updates);
struct TrainerState {
  int64_t schedule_steps = 0;
  int64_t skipped_updates = 0;
};
absl::StatusOr<TrainerState> ReadTrainerState(const std::string& dir);

}  // namespace hone
