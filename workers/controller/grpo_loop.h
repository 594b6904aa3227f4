// The controller's training loop (DESIGN.md §2): one screen per phase — generate, reward,
// old/ref log-probs, advantages, update, weight sync — each under a named timer whose
// name becomes a metric, then metrics, validation and checkpoints.
#pragma once

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "framework/core/config.h"
#include "framework/data/from_config.h"
#include "framework/metrics/exporter.h"
#include "workers/controller/metrics_exporter.h"
#include "framework/model/pretrained.h"
#include "workers/roles/roles.h"

namespace hone {

// Where the roles run is decided once, at start-up; the loop only sees these.
struct GrpoRoles {
  RolloutEngine* rollout = nullptr;
  RewardScorer* scorer = nullptr;
  PolicyTrainer* trainer = nullptr;
  // Brings the rollout's weights to the trainer's after step `version`; returns metrics
  // (e.g. sync bytes). In process: PolicyWeights -> LoadWeights. Distributed: the
  // trainer group broadcasts to the rollout workers and they compare checksums.
  std::function<absl::StatusOr<Metrics>(int64_t version)> sync_weights;
  // Validation metrics (val_*); empty when validation cannot run where the policy lives.
  std::function<absl::StatusOr<Metrics>()> validate;
  // Gets every step's metrics too; nullptr when metrics.port=0.
  MetricsExporter* exporter = nullptr;
};

// The GRPO loop over `roles`. `policy` supplies the tokenizer and stop ids (its weights
// are not used here); `splits` the data.
absl::Status RunGrpoLoop(const Config& config, GrpoRoles& roles, const Pretrained& policy,
                         const data::DataSplits& splits);

// `hone train` with world size 1: every role in this process behind the role interfaces.
absl::Status RunGrpoTraining(const Config& config);

}  // namespace hone
