#include "workers/controller/validation.h"

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"

namespace hone {

absl::StatusOr<Validator> Validator::Create(const Config& config, const std::vector<data::Example>& held_out) {
  HONE_ASSIGN_OR_RETURN(eval::EvalOptions options, eval::EvalOptionsFromConfig(config));
  HONE_RETURN_IF_ERROR(eval::ValidateEvalOptions(options));
  auto examples = eval::SelectEvalExamples(held_out, config.Int("eval.limit"), options.seed);
  return Validator(std::move(options), std::move(examples));
}

absl::StatusOr<Metrics> Validator::Run(Pretrained& policy) {
  HONE_ASSIGN_OR_RETURN(eval::EvalResult result,
                        eval::Evaluate(policy.model, *policy.tokenizer, policy.stop_token_ids, examples_, options_));
  Metrics m;
  m["val_accuracy"] = result.accuracy;
  m["val_format_rate"] = result.format_rate;
  m["val_response_length_mean"] = result.mean_response_length;
  for (const auto& [k, value] : result.pass_at_k) m[absl::StrCat("val_pass_at_", k)] = value;
  return m;
}

}  // namespace hone
