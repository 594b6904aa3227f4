#include "framework/metrics/metrics_log.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace hone {

absl::StatusOr<MetricsLog> MetricsLog::Open(const std::string& path, bool append) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", parent.string(), ": ", ec.message()));
  std::ofstream out(path, append ? std::ios::app : std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrCat("cannot open metrics log ", path));
  return MetricsLog(path, std::move(out));
}

absl::Status MetricsLog::Write(int64_t step, const std::map<std::string, double>& metrics) {
  nlohmann::ordered_json line;
  line["step"] = step;
  for (const auto& [name, value] : metrics) {
    if (std::isfinite(value)) {
      line[name] = value;
    } else {
      line[name] = nullptr;
    }
  }
  out_ << line.dump() << "\n";
  out_.flush();
  if (!out_) return absl::InternalError(absl::StrCat("cannot write metrics log ", path_));
  return absl::OkStatus();
}

absl::Status MetricsLog::DropStepsAfter(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return absl::OkStatus();
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.contains("step") || !parsed["step"].is_number_integer()) continue;
    if (parsed["step"].get<int64_t>() <= step) kept += line + "\n";
  }
  in.close();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << kept;
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot replace ", path, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace hone
