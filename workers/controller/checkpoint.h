// Checkpoint directories: <output_dir>/checkpoints/step_<N>/ holding the policy in HF
// layout (loads with `hone generate --model`), the optimizer state and the controller's
// state.json (step, data loader position, seed, policy version). Each is written under a
// .tmp name and renamed when complete, so a crash never leaves a half-written checkpoint
// under a final name.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "workers/roles/roles.h"

namespace hone {

std::string CheckpointDir(const std::string& output_dir, int64_t step);

// Writes the trainer's checkpoint plus `state` (as state.json) atomically to `final_dir`.
absl::Status WriteCheckpoint(PolicyTrainer& trainer, const std::string& final_dir,
                             const std::map<std::string, int64_t>& state);

}  // namespace hone
