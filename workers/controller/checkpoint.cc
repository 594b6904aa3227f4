#include "workers/controller/checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/rpc/rpc.h"
#include "workers/controller/run_dir.h"

namespace hone {

namespace fs = std::filesystem;

std::string CheckpointDir(const std::string& output_dir, int64_t step) {
  return (fs::path(output_dir) / "checkpoints" / absl::StrFormat("step_%06d", step)).string();
}

absl::Status WriteCheckpoint(PolicyTrainer& trainer, const std::string& final_dir,
                             const std::map<std::string, int64_t>& state, const std::string& run_dir,
                             const std::function<absl::Status(const std::string& dir)>& write_extra) {
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
  HONE_RETURN_IF_ERROR(WriteRunInfo(tmp, run_dir));
  if (write_extra) HONE_RETURN_IF_ERROR(write_extra(tmp));
  fs::remove_all(final_dir, ec);
  fs::rename(tmp, final_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", final_dir, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<std::optional<ResumePoint>> PrepareResume(Config& config) {
  HONE_ASSIGN_OR_RETURN(std::optional<ResumePoint> point, FindResumePoint(config));
  if (point) {
    // The KL term's reference stays the model the run started from, not the checkpoint.
    if (config.String("model.reference_path").empty()) {
      HONE_RETURN_IF_ERROR(config.Set("model.reference_path", config.String("model.path"), "trainer.resume=auto"));
    }
    HONE_RETURN_IF_ERROR(config.Set("model.path", point->dir, "trainer.resume=auto"));
  }
  return point;
}

absl::StatusOr<std::optional<ResumePoint>> FindResumePoint(const Config& config) {
  if (config.String("trainer.resume") != "auto") return std::optional<ResumePoint>();
  const fs::path root = fs::path(config.String("trainer.output_dir")) / "checkpoints";
  std::error_code ec;
  std::optional<ResumePoint> best;
  if (!fs::is_directory(root, ec)) return best;
  const std::regex name("step_([0-9]+)");
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    std::smatch match;
    const std::string file = entry.path().filename().string();
    if (!entry.is_directory() || !std::regex_match(file, match, name)) continue;
    if (!fs::exists(entry.path() / "state.json")) continue;
    const int64_t step = std::stoll(match[1].str());
    if (best && best->step() >= step) continue;
    std::ifstream in(entry.path() / "state.json");
    auto json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object() || !json.contains("step")) {
      return absl::DataLossError(absl::StrCat((entry.path() / "state.json").string(),
                                              " is not valid JSON with a step: delete that checkpoint or set "
                                              "trainer.resume=off"));
    }
    ResumePoint point;
    point.dir = entry.path().string();
    for (const auto& [key, value] : json.items()) {
      if (value.is_number_integer()) point.state[key] = value.get<int64_t>();
    }
    best = point;
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", root.string(), ": ", ec.message()));
  return best;
}

absl::Status WriteRolloutsFile(const Batch& batch, const std::string& path) {
  proto::Batch message;
  HONE_RETURN_IF_ERROR(rpc::BatchToProto(batch, &message));
  std::ofstream out(path, std::ios::binary);
  if (!out || !message.SerializeToOstream(&out) || !out.flush()) {
    return absl::InternalError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<Batch> ReadRolloutsFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  proto::Batch message;
  const char* what_to_do = "delete that checkpoint, or resume with trainer.async_rollout=false";
  if (!in || !message.ParseFromIstream(&in)) {
    return absl::DataLossError(
        absl::StrCat(path, " cannot be read as rollouts (truncated or not written by hone): ", what_to_do));
  }
  absl::StatusOr<Batch> batch = rpc::BatchFromProto(message);
  if (!batch.ok()) return absl::DataLossError(absl::StrCat(path, ": ", batch.status().message(), ": ", what_to_do));
  return batch;
}

}  // namespace hone
