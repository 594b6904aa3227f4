// The JSONL metrics log: one JSON object per step, so that runs can be plotted and
// compared without a Prometheus server. Names are snake_case with units in the name
// (the Prometheus exporter adds the `hone_` prefix to the same names).
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace hone {

class MetricsLog {
 public:
  // Creates parent directories. `append` keeps earlier lines (resuming a run).
  static absl::StatusOr<MetricsLog> Open(const std::string& path, bool append = false);

  // Writes {"step": step, <metrics...>} as one line and flushes, so a crash loses at most
  // the line being written. Non-finite values are written as null.
  absl::Status Write(int64_t step, const std::map<std::string, double>& metrics);

  const std::string& path() const { return path_; }

  // Resuming from the checkpoint of step `step`: drops the lines of later steps (written
  // after that checkpoint by the run that stopped), so that the resumed run's lines follow
  // without duplicates. A missing file is fine.
  static absl::Status DropStepsAfter(const std::string& path, int64_t step);

 private:
  MetricsLog(std::string path, std::ofstream out) : path_(std::move(path)), out_(std::move(out)) {}
  std::string path_;
  std::ofstream out_;
};

}  // namespace hone
