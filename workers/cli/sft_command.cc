// `hone sft`: supervised fine-tuning on reference solutions (the GRPO warm start).
#include "framework/core/status.h"
#include "workers/cli/command.h"
#include "workers/cli/config_args.h"
#include "workers/controller/run_dir.h"
#include "workers/controller/shutdown.h"
#include "workers/controller/sft_loop.h"

namespace hone::cli {

CommandAction SetupSftCommand(CLI::App& sub) {
  auto args = std::make_shared<ConfigArgs>();
  AddConfigArgs(sub, *args, /*config_required=*/false);
  sub.footer("Example: hone sft --config configs/arith_tiny_cpu_sft.yaml trainer.total_steps=100");
  return [args]() -> absl::Status {
    auto config = ResolveConfig(*args);
    if (absl::IsCancelled(config.status())) return absl::OkStatus();
    HONE_RETURN_IF_ERROR(config.status());
    HONE_RETURN_IF_ERROR(PrepareRunDir(*config, config->ToYaml(), /*can_resume=*/false, "hone sft"));
    InstallStopHandlers(StopRole::kController, config->Float("trainer.shutdown_grace_s"), "hone sft");
    return RunSft(*config);
  };
}

}  // namespace hone::cli
