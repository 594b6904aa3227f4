#include "workers/controller/run_dir.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"
#include "framework/dist/build_info.h"

namespace hone {
namespace {

namespace fs = std::filesystem;

bool IsStepDir(const fs::path& path) { return path.filename().string().rfind("step_", 0) == 0; }

// Checkpoint directories, finished or not (step_N.tmp).
std::vector<fs::path> StepDirs(const fs::path& dir) {
  std::vector<fs::path> steps;
  std::error_code ec;
  if (!fs::is_directory(dir / "checkpoints", ec)) return steps;
  for (const auto& entry : fs::directory_iterator(dir / "checkpoints", ec)) {
    if (entry.is_directory(ec) && IsStepDir(entry.path())) steps.push_back(entry.path());
  }
  return steps;
}

absl::Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

// Deletes the earlier run's files, and nothing else a user may keep there.
absl::Status DeleteRun(const fs::path& dir, const std::string& command) {
  std::vector<std::string> deleted;
  std::error_code ec;
  for (const char* file : {"metrics.jsonl", kRunConfigFile, kVersionFile}) {
    if (fs::remove(dir / file, ec)) deleted.push_back(file);
    if (ec) return absl::InternalError(absl::StrCat("cannot delete ", (dir / file).string(), ": ", ec.message()));
  }
  // The configs a resumed run kept (config.yaml.1, .2, ...).
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string prefix = absl::StrCat(kRunConfigFile, ".");
    if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size() ||
        name.find_first_not_of("0123456789", prefix.size()) != std::string::npos) {
      continue;
    }
    if (fs::remove(entry.path(), ec)) deleted.push_back(name);
    if (ec) return absl::InternalError(absl::StrCat("cannot delete ", entry.path().string(), ": ", ec.message()));
  }
  const std::vector<fs::path> steps = StepDirs(dir);
  for (const fs::path& step : steps) {
    fs::remove_all(step, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot delete ", step.string(), ": ", ec.message()));
  }
  if (!steps.empty()) deleted.push_back(absl::StrCat("checkpoints/step_* (", steps.size(), ")"));
  if (fs::is_empty(dir / "checkpoints", ec) && !ec) fs::remove(dir / "checkpoints", ec);
  for (const char* name : {"final", "final.tmp"}) {
    if (fs::exists(dir / name, ec)) {
      fs::remove_all(dir / name, ec);
      if (ec) return absl::InternalError(absl::StrCat("cannot delete ", (dir / name).string(), ": ", ec.message()));
      deleted.push_back(absl::StrCat(name, "/"));
    }
  }
  std::cerr << command << ": trainer.overwrite=true: deleted the earlier run in " << dir.string() << " ("
            << absl::StrJoin(deleted, ", ") << ")\n";
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A resumed run may change settings (more steps, a lower learning rate). config.yaml then
// says what the run continues with, and the config it ran with so far is kept beside it as
// config.yaml.N (the next free N), with a line per changed key on stderr, so no earlier
// settings are lost and every checkpoint still says which settings made it. trainer.resume
// itself (off in the first run, auto now) is not a change of settings.
absl::Status KeepEarlierConfig(const fs::path& dir, const std::string& config_yaml, const std::string& command) {
  const fs::path current = dir / kRunConfigFile;
  std::error_code ec;
  if (!fs::exists(current, ec)) return absl::OkStatus();
  HONE_ASSIGN_OR_RETURN(std::string earlier_yaml, ReadText(current));
  if (earlier_yaml == config_yaml) return absl::OkStatus();
  const fs::path incoming = dir / absl::StrCat(kRunConfigFile, ".incoming");
  HONE_RETURN_IF_ERROR(WriteText(incoming, config_yaml));
  const ConfigSchema& schema = HoneConfigSchema();
  absl::StatusOr<Config> earlier = Config::Load(schema, current.string(), {});
  absl::StatusOr<Config> now = Config::Load(schema, incoming.string(), {});
  fs::remove(incoming, ec);
  std::vector<std::string> changes;
  if (earlier.ok() && now.ok()) {
    for (std::string& change : ConfigChanges(*earlier, *now)) {
      if (change.rfind("trainer.resume: ", 0) != 0) changes.push_back(std::move(change));
    }
    if (changes.empty()) return absl::OkStatus();
  }
  fs::path kept;
  for (int n = 1;; ++n) {
    kept = dir / absl::StrCat(kRunConfigFile, ".", n);
    if (!fs::exists(kept, ec)) break;
  }
  fs::rename(current, kept, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot keep ", current.string(), " as ", kept.string(), ": ", ec.message()));
  }
  if (!earlier.ok() || !now.ok()) {
    std::cerr << command << ": resuming with a config that differs from the run's; the earlier one is kept as "
              << kept.string() << " (cannot compare them key by key: "
              << (earlier.ok() ? now.status() : earlier.status()).message() << ")\n";
    return absl::OkStatus();
  }
  std::cerr << command << ": resuming with " << changes.size()
            << " changed setting(s); the earlier config is kept as " << kept.string() << "\n";
  for (const std::string& change : changes) std::cerr << "  " << change << "\n";
  return absl::OkStatus();
}

}  // namespace

bool HoldsRun(const std::string& dir) {
  std::error_code ec;
  const fs::path root(dir);
  return fs::exists(root / "metrics.jsonl", ec) || fs::exists(root / "final", ec) || !StepDirs(root).empty();
}

absl::Status PrepareRunDir(const Config& config, const std::string& config_yaml, bool can_resume,
                           const std::string& command) {
  const std::string& dir = config.String("trainer.output_dir");
  if (dir.empty()) return absl::InvalidArgumentError("trainer.output_dir is empty: name the run's directory");
  const bool resume = config.String("trainer.resume") == "auto";
  const bool overwrite = config.Bool("trainer.overwrite");
  if (resume && overwrite) {
    return absl::InvalidArgumentError(
        "trainer.resume=auto continues the run in trainer.output_dir and trainer.overwrite=true deletes it: set one");
  }
  const bool holds_run = HoldsRun(dir);
  if (holds_run && resume && !can_resume) {
    return absl::InvalidArgumentError(absl::StrCat(
        "trainer.output_dir '", dir, "' already holds a run and ", command,
        " does not resume (trainer.resume=auto is for hone train): choose a new trainer.output_dir, or set "
        "trainer.overwrite=true (with trainer.resume=off) to delete that run's files"));
  }
  if (holds_run && !resume) {
    if (!overwrite) {
      return absl::FailedPreconditionError(absl::StrCat(
          "trainer.output_dir '", dir, "' already holds a run (metrics.jsonl, checkpoints or final/): ",
          can_resume ? "continue it with trainer.resume=auto, " : "", "choose a new trainer.output_dir, or ",
          "set trainer.overwrite=true to delete that run's files"));
    }
    HONE_RETURN_IF_ERROR(DeleteRun(dir, command));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create trainer.output_dir '", dir, "': ", ec.message()));
  if (holds_run && resume) HONE_RETURN_IF_ERROR(KeepEarlierConfig(dir, config_yaml, command));
  HONE_RETURN_IF_ERROR(WriteText(fs::path(dir) / kRunConfigFile, config_yaml));
  return WriteText(fs::path(dir) / kVersionFile, VersionText());
}

absl::Status WriteRunInfo(const std::string& dir, const std::string& run_dir) {
  HONE_RETURN_IF_ERROR(WriteText(fs::path(dir) / kVersionFile, VersionText()));
  std::error_code ec;
  const fs::path run_config = fs::path(run_dir) / kRunConfigFile;
  if (run_dir.empty() || !fs::exists(run_config, ec)) return absl::OkStatus();
  fs::copy_file(run_config, fs::path(dir) / kRunConfigFile, fs::copy_options::overwrite_existing, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot copy ", run_config.string(), " into ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace hone
