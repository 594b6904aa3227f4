// The controller's Prometheus exporter from the metrics.* keys, shared by hone train (one
// process or under mpirun) and hone sft.
#pragma once

#include <memory>

#include "framework/core/config.h"
#include "framework/metrics/exporter.h"

namespace hone {

// The Prometheus exporter of metrics.* (run label: trainer.run_name, or the output
// directory's name); nullptr when metrics.port is 0 or the port cannot be bound (a warning
// says so: monitoring is not a reason to lose a training job).
std::unique_ptr<MetricsExporter> StartMetricsExporter(const Config& config);

}  // namespace hone
