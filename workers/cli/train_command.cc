// `hone train`: GRPO training (with world size 1, every role in this process).
#include "framework/core/status.h"
#include "workers/cli/command.h"
#include "workers/cli/config_args.h"
#include "workers/controller/grpo_loop.h"

namespace hone::cli {

CommandAction SetupTrainCommand(CLI::App& sub) {
  auto args = std::make_shared<ConfigArgs>();
  AddConfigArgs(sub, *args);
  sub.footer("Example: hone train --config configs/arith_tiny_cpu.yaml trainer.total_steps=20");
  return [args]() -> absl::Status {
    auto config = ResolveConfig(*args);
    if (absl::IsCancelled(config.status())) return absl::OkStatus();
    HONE_RETURN_IF_ERROR(config.status());
    return RunGrpoTraining(*config);
  };
}

}  // namespace hone::cli
