#include "workers/controller/checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status.h"

namespace hone {

namespace fs = std::filesystem;

std::string CheckpointDir(const std::string& output_dir, int64_t step) {
  return (fs::path(output_dir) / "checkpoints" / absl::StrFormat("step_%06d", step)).string();
}

absl::Status WriteCheckpoint(PolicyTrainer& trainer, const std::string& final_dir,
                             const std::map<std::string, int64_t>& state) {
  const std::string tmp = final_dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", ec.message()));
  HONE_RETURN_IF_ERROR(trainer.SaveCheckpoint(tmp));
  {
    nlohmann::json j(state);
    std::ofstream out(fs::path(tmp) / "state.json");
    out << j.dump(2) << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write state.json in ", tmp));
  }
  fs::remove_all(final_dir, ec);
  fs::rename(tmp, final_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", final_dir, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace hone
