// The config arguments shared by the config-driven subcommands (train, sft, eval):
// `--config FILE`, trailing `a.b=c` overrides and `--print-config`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "framework/core/config.h"

namespace hone::cli {

struct ConfigArgs {
  std::string config_path;
  std::vector<std::string> overrides;
  bool print_config = false;
};

// Registers --config, --print-config and the positional overrides on `sub`.
void AddConfigArgs(CLI::App& sub, ConfigArgs& args, bool config_required);

// The resolved config, and the thread set-up (runtime.num_threads). When --print-config
// was given, prints the config as YAML and returns Cancelled: the caller stops, exit 0.
absl::StatusOr<Config> ResolveConfig(const ConfigArgs& args);

}  // namespace hone::cli
