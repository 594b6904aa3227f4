// Checkpoint directories: <output_dir>/checkpoints/step_<N>/ holding the policy in HF
// layout (loads with `hone generate --model`), the optimizer state and the controller's
// state.json (step, data loader position, seed, policy version). Each is written under a
// .tmp name and renamed when complete, so a crash never leaves a half-written checkpoint
// under a final name.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "framework/core/config.h"

#include "absl/status/statusor.h"
#include "workers/roles/roles.h"

namespace hone {

std::string CheckpointDir(const std::string& output_dir, int64_t step);

// Writes the trainer's checkpoint plus `state` (as state.json) atomically to `final_dir`,
// with hone_version.txt and a copy of <run_dir>/config.yaml (when there is one), so the
// checkpoint says which run and build made it.
// `write_extra`, when given, adds files to the checkpoint before it is renamed into place.
absl::Status WriteCheckpoint(PolicyTrainer& trainer, const std::string& final_dir,
                             const std::map<std::string, int64_t>& state, const std::string& run_dir = "",
                             const std::function<absl::Status(const std::string& dir)>& write_extra = nullptr);

// An async run's checkpoint also holds the rollouts generated for the next step (by a
// policy the checkpoint does not hold), as a proto::Batch: the format of the wire.
inline constexpr char kNextRolloutsFile[] = "next_rollouts.pb";
absl::Status WriteRolloutsFile(const Batch& batch, const std::string& path);
// DATA_LOSS naming the file when it is truncated or not a Batch.
absl::StatusOr<Batch> ReadRolloutsFile(const std::string& path);

// A checkpoint to continue from (trainer.resume=auto).
struct ResumePoint {
  std::string dir;
  std::map<std::string, int64_t> state;  // state.json: step, loader_epoch, loader_position, ...
  int64_t step() const { return state.at("step"); }
};

// With trainer.resume=auto: the newest complete checkpoint under
// <trainer.output_dir>/checkpoints (a step_N directory holding state.json; *.tmp
// directories are unfinished and ignored), with model.path set to it so that every role
// loads the checkpoint's weights. nullopt when resume is off or there is no checkpoint yet.
absl::StatusOr<std::optional<ResumePoint>> PrepareResume(Config& config);
// The same search without changing the config (every rank of a job finds the same one).
absl::StatusOr<std::optional<ResumePoint>> FindResumePoint(const Config& config);

}  // namespace hone
