// `hone train`: GRPO training. Without mpirun (world size 1) every role runs in this
// process; under `mpirun -np N` rank 0 is the controller and the other ranks take the
// roles of placement.* (the same config file works both ways).
#include <iostream>

#include "framework/core/status.h"
#include "framework/dist/world.h"
#include "workers/cli/command.h"
#include "workers/cli/config_args.h"
#include "workers/controller/checkpoint.h"
#include "workers/controller/distributed.h"
#include "workers/controller/grpo_loop.h"
#include "workers/controller/run_dir.h"
#include "workers/controller/shutdown.h"

namespace hone::cli {

CommandAction SetupTrainCommand(CLI::App& sub) {
  auto args = std::make_shared<ConfigArgs>();
  AddConfigArgs(sub, *args, /*config_required=*/false);
  sub.footer(
      "Examples:\n"
      "  hone train --config configs/arith_tiny_cpu.yaml trainer.total_steps=20\n"
      "  mpirun -np 6 hone train --config configs/arith_tiny_cpu.yaml placement.rollout=2 placement.trainer=2\n"
      "Under mpirun, rank 0 is the controller; then placement.rollout rollout ranks, placement.reward reward\n"
      "ranks and placement.trainer FSDP trainer ranks, in that order.");
  return [args]() -> absl::Status {
    auto config = ResolveConfig(*args);
    if (absl::IsCancelled(config.status())) return absl::OkStatus();
    // trainer.resume=auto points model.path at the newest complete checkpoint, for every role.
    absl::Status status = config.status();
    // config.yaml in the run directory is the config as resolved, before resume moves model.path.
    const std::string config_yaml = status.ok() ? config->ToYaml() : "";
    if (status.ok()) status = PrepareResume(*config).status();
    if (!dist::LaunchedAsManyRanks()) {
      HONE_RETURN_IF_ERROR(status);
      HONE_RETURN_IF_ERROR(PrepareRunDir(*config, config_yaml, /*can_resume=*/true, "hone train"));
      InstallStopHandlers(StopRole::kController, config->Float("trainer.shutdown_grace_s"), "hone train");
      return RunGrpoTraining(*config);
    }
    HONE_ASSIGN_OR_RETURN(dist::MpiWorld world, dist::MpiWorld::Init(nullptr, nullptr));
    // Only the controller writes the run directory; it checks it before any rank starts
    // work, and a refusal ends every rank (below).
    if (status.ok() && world.rank() == 0) status = PrepareRunDir(*config, config_yaml, true, "hone train");
    if (status.ok()) {
      // Workers outlast the controller's grace by the Shutdown call's deadline and some
      // slack: they must still be there when it saves (their shards are in the checkpoint).
      const double grace = config->Float("trainer.shutdown_grace_s");
      if (world.rank() == 0) {
        InstallStopHandlers(StopRole::kController, grace, "hone train");
      } else {
        InstallStopHandlers(StopRole::kWorker, grace > 0 ? grace + config->Float("rpc.health_timeout_s") + 20 : 0,
                            "hone worker rank " + std::to_string(world.rank()));
      }
    }
    if (status.ok()) status = RunDistributedTraining(*config, world);
    if (!status.ok()) {
      // Peers may be waiting in a collective or a call: end the whole job now, non-zero.
      std::cerr << "hone train: error: " << status.message() << std::endl;
      world.Abort(1);
    }
    dist::MpiWorld::Finalize();
    return absl::OkStatus();
  };
}

}  // namespace hone::cli
