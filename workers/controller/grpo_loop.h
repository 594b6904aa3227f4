// The controller's training loop (DESIGN.md §2): one screen per phase — generate, reward,
// old/ref log-probs, advantages, update, weight sync — each under a named timer whose
// name becomes a metric, then metrics, validation and checkpoints.
#pragma once

#include "absl/status/status.h"
#include "framework/core/config.h"

namespace hone {

// `hone train` with world size 1: every role in this process behind the role interfaces.
absl::Status RunGrpoTraining(const Config& config);

}  // namespace hone
