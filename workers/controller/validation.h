// Periodic validation during training: the evaluator (workers/eval) on the held-out
// prompts with the eval.* settings, reported as val_* metrics.
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
  // The same with generation done by `generate` (GenerateWithRollout under mpirun), for a
  // model of `max_positions` positions whose tokenizer and stop ids the caller holds.
  absl::StatusOr<Metrics> Run(const eval::GenerateFn& generate, int64_t max_positions, const Tokenizer& tokenizer,
                              const std::vector<int64_t>& stop_token_ids);

 private:
  Validator(eval::EvalOptions options, std::vector<data::Example> examples)
      : options_(std::move(options)), examples_(std::move(examples)) {}
  eval::EvalOptions options_;
  std::vector<data::Example> examples_;
};

// Generation for the evaluator by a rollout role (the rollout workers under mpirun, which
// hold the policy): each call is one Generate of its prompts with group ids 0..G-1, the
// prompts' stream ids in a GenerationEngine call, so the sampled tokens are those of
// Evaluate on the same weights in one process, however the prompts are spread over the
// workers.
eval::GenerateFn GenerateWithRollout(RolloutEngine& rollout);

}  // namespace hone
