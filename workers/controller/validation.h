// Periodic validation during training: the evaluator (workers/eval) on the held-out
// prompts with the eval.* sampling settings, reported as val_* metrics.
#pragma once

#include <vector>

#include "framework/core/config.h"
#include "framework/data/dataset.h"
#include "framework/model/pretrained.h"
#include "workers/eval/evaluator.h"
#include "workers/roles/roles.h"

namespace hone {

class Validator {
 public:
  // Uses eval.limit held-out prompts (all when 0), chosen with the job's seed.
  static absl::StatusOr<Validator> Create(const Config& config, const std::vector<data::Example>& held_out);

  // val_accuracy, val_pass_at_<k>, val_format_rate, val_response_length_mean.
  absl::StatusOr<Metrics> Run(Pretrained& policy);

 private:
  Validator(eval::EvalOptions options, std::vector<data::Example> examples)
      : options_(std::move(options)), examples_(std::move(examples)) {}
  eval::EvalOptions options_;
  std::vector<data::Example> examples_;
};

}  // namespace hone
