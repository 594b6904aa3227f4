// A run directory (trainer.output_dir) belongs to one run. Starting a job in a directory
// that already holds a run would interleave two runs' metrics and checkpoints, so it is
// refused unless the user says what to do with the earlier run: continue it
// (trainer.resume=auto), or delete it (trainer.overwrite=true). Every run directory and
// every checkpoint also records the resolved config and the Hone version that made it.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "framework/core/config.h"

namespace hone {

// The files that say which run made a directory: the resolved config (exactly what
// `--print-config` prints) and `hone --version`'s text.
inline constexpr char kRunConfigFile[] = "config.yaml";
inline constexpr char kVersionFile[] = "hone_version.txt";

// True when `dir` holds an earlier run: metrics.jsonl, checkpoints/step_* or final/.
bool HoldsRun(const std::string& dir);

// Checks trainer.output_dir before anything is written, then creates it and writes
// config.yaml (`config_yaml`) and hone_version.txt into it.
// * no earlier run there: a fresh start;
// * trainer.resume=auto (when `can_resume`): the earlier run continues; when its
//   config.yaml differs from `config_yaml`, the earlier one is kept as config.yaml.N and
//   the changed keys are listed on stderr;
// * trainer.overwrite=true: the earlier run's files are deleted first (only Hone's own:
//   metrics.jsonl, checkpoints/step_*, final/, config.yaml, hone_version.txt), and a line
//   on stderr says so;
// * otherwise FailedPrecondition naming the choices.
// `command` ("hone train") starts the messages.
absl::Status PrepareRunDir(const Config& config, const std::string& config_yaml, bool can_resume,
                           const std::string& command);

// Writes hone_version.txt into `dir`, and copies <run_dir>/config.yaml there when it exists
// (a checkpoint then says which run made it).
absl::Status WriteRunInfo(const std::string& dir, const std::string& run_dir);

}  // namespace hone
