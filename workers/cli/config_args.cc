#include "workers/cli/config_args.h"

#include <iostream>

#include "framework/core/status.h"
#include "workers/cli/threads.h"

namespace hone::cli {

void AddConfigArgs(CLI::App& sub, ConfigArgs& args, bool config_required) {
  auto* option = sub.add_option("--config", args.config_path, config_required ? "YAML config file (configs/*.yaml)"
                                                 : "YAML config file (configs/*.yaml); without it the defaults apply "
                                                   "(--print-config shows them, docs/config_reference.md lists every key)");
  if (config_required) option->required();
  option->check(CLI::ExistingFile);
  sub.add_flag("--print-config", args.print_config, "print the resolved config and exit");
  sub.add_option("overrides", args.overrides, "config overrides: key=value (e.g. trainer.total_steps=10)");
}

absl::StatusOr<Config> ResolveConfig(const ConfigArgs& args) {
  HONE_ASSIGN_OR_RETURN(Config config, Config::Load(HoneConfigSchema(), args.config_path, args.overrides));
  if (args.print_config) {
    std::cout << config.ToYaml();
    return absl::CancelledError("printed the config");
  }
  SetComputeThreads(static_cast<int>(config.Int("runtime.num_threads")));
  return config;
}

}  // namespace hone::cli
