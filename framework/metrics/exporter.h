// The controller's Prometheus exporter (DESIGN.md §5): every per-step metric of
// metrics.jsonl as a gauge, counters for steps, tokens and skipped updates, and
// hone_worker_up fed by the Health heartbeat. prometheus-cpp stays out of this header so
// that the training loop does not compile against it.
//
// Naming (Prometheus conventions: snake_case, base units, `_total` on counters), from the
// metrics.jsonl name:
//   seconds_<phase>            -> hone_phase_seconds{phase="<phase>"}
//   tokens_per_second_<phase>  -> hone_phase_tokens_per_second{phase="<phase>"}
//   reward_<stat>              -> hone_reward_<stat>               (stat: mean, std, min, max)
//   reward_<fn>_<stat>         -> hone_reward_component_<stat>{component="<fn>"}
//   val_pass_at_<k>            -> hone_val_pass_at_k{k="<k>"}
//   response_length_<stat>     -> hone_response_length_<stat>_tokens (val_ too)
//   weight_sync_bytes          -> hone_weight_sync_bytes
//   weight_sync_gbps           -> hone_weight_sync_bytes_per_second (x 1e9)
//   generated_tokens           -> counter hone_generated_tokens_total (added each step)
//   trained_tokens             -> counter hone_trained_tokens_total (added each step)
//   skipped_updates            -> counter hone_skipped_updates_total (the run's total)
//   anything else <name>       -> hone_<name>
// plus hone_steps_total, hone_step (the last step published) and
// hone_last_step_timestamp_seconds. Every series carries the label run="<run name>".
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hone {

// Where one metrics.jsonl name goes: the family name, its labels beyond `run`, the factor
// that converts the value to base units, and whether it is a counter.
struct PrometheusSeries {
  std::string family;
  std::map<std::string, std::string> labels;
  double scale = 1.0;
  enum class Kind { kGauge, kCounterDelta, kCounterTotal } kind = Kind::kGauge;
};
PrometheusSeries PrometheusSeriesFor(const std::string& metric_name);

class MetricsExporter {
 public:
  // Serves /metrics on address:port (port 0 picks a free one). An address that cannot be
  // bound is an error naming it and the metrics.* keys.
  static absl::StatusOr<std::unique_ptr<MetricsExporter>> Serve(const std::string& address, int port,
                                                                std::string run);
  // Keeps the metrics without an HTTP server (tests read ExpositionText()).
  static std::unique_ptr<MetricsExporter> WithoutServer(std::string run);
  // With a server and after at least one step: first waits linger_s (set_linger_s), so
  // that Prometheus scrapes the last step of a job that ends between two scrapes.
  ~MetricsExporter();

  MetricsExporter(const MetricsExporter&) = delete;
  MetricsExporter& operator=(const MetricsExporter&) = delete;

  // One step's metrics (the same map metrics.jsonl gets). Thread-safe.
  void PublishStep(int64_t step, const std::map<std::string, double>& metrics);
  // hone_worker_up{role,rank,host} = 1 or 0. Thread-safe (called from the heartbeat).
  void SetWorkerUp(const std::string& role, int rank, const std::string& host, bool up);

  void set_linger_s(double seconds);

  // The port the server listens on (0 without a server).
  int port() const;
  // What a scrape of /metrics returns now (Prometheus text format 0.0.4).
  std::string ExpositionText() const;

 private:
  struct State;
  explicit MetricsExporter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace hone
