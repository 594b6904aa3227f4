#include "workers/controller/metrics_exporter.h"

#include <filesystem>
#include <iostream>

#include "absl/strings/str_format.h"

namespace hone {

std::unique_ptr<MetricsExporter> StartMetricsExporter(const Config& config) {
  const int64_t port = config.Int("metrics.port");
  if (port == 0) return nullptr;
  std::string run = config.String("trainer.run_name");
  if (run.empty()) {
    std::filesystem::path dir = std::filesystem::path(config.String("trainer.output_dir")).lexically_normal();
    run = dir.has_filename() ? dir.filename().string() : dir.parent_path().filename().string();
  }
  auto exporter = MetricsExporter::Serve(config.String("metrics.address"), static_cast<int>(port), run);
  if (!exporter.ok()) {
    std::cerr << "warning: Prometheus metrics are off for this run: " << exporter.status().message() << "\n";
    return nullptr;
  }
  (*exporter)->set_linger_s(config.Float("metrics.linger_s"));
  std::cerr << absl::StrFormat("metrics: serving Prometheus metrics on http://%s:%d/metrics (run=\"%s\")\n",
                               config.String("metrics.address"), (*exporter)->port(), run);
  return std::move(*exporter);
}

}  // namespace hone
