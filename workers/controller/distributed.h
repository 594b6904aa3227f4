// `mpirun -np N hone train ...`: this rank's part of a distributed GRPO job (DESIGN.md
// §1-2). Rank 0 runs the controller's loop over remote roles; the other ranks serve
// their role (placement.*) until the controller shuts them down.
#pragma once

#include "absl/status/status.h"
#include "framework/core/config.h"
#include "framework/dist/world.h"

namespace hone {

absl::Status RunDistributedTraining(const Config& config, const dist::MpiWorld& world);

}  // namespace hone
