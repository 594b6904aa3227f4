#include "workers/controller/validation.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "workers/rollout/local_rollout.h"

namespace hone {
namespace {

Metrics ValidationMetrics(const eval::EvalResult& result) {
  Metrics m;
  m["val_accuracy"] = result.accuracy;
  m["val_format_rate"] = result.format_rate;
  m["val_response_length_mean"] = result.mean_response_length;
  for (const auto& [k, value] : result.pass_at_k) m[absl::StrCat("val_pass_at_", k)] = value;
  return m;
}

}  // namespace

absl::StatusOr<Validator> Validator::Create(const Config& config, const std::vector<data::Example>& held_out) {
  HONE_ASSIGN_OR_RETURN(eval::EvalOptions options, eval::EvalOptionsFromConfig(config));
  HONE_RETURN_IF_ERROR(eval::ValidateEvalOptions(options));
  auto examples = eval::SelectEvalExamples(held_out, config.Int("eval.limit"), options.seed);
  return Validator(std::move(options), std::move(examples));
}

absl::StatusOr<Metrics> Validator::Run(Pretrained& policy) {
  HONE_ASSIGN_OR_RETURN(eval::EvalResult result,
                        eval::Evaluate(policy.model, *policy.tokenizer, policy.stop_token_ids, examples_, options_));
  return ValidationMetrics(result);
}

absl::StatusOr<Metrics> Validator::Run(const eval::GenerateFn& generate, int64_t max_positions,
                                       const Tokenizer& tokenizer, const std::vector<int64_t>& stop_token_ids) {
  HONE_ASSIGN_OR_RETURN(eval::EvalResult result,
                        eval::Evaluate(generate, max_positions, tokenizer, stop_token_ids, examples_, options_));
  return ValidationMetrics(result);
}

eval::GenerateFn GenerateWithRollout(RolloutEngine& rollout) {
  return [&rollout](const std::vector<std::vector<int64_t>>& prompt_ids,
                    const SamplingParams& params) -> absl::StatusOr<GenerationResult> {
    const int64_t G = static_cast<int64_t>(prompt_ids.size());
    // Group ids 0..G-1: the stream ids of the prompts' positions. The evaluator scores from
    // the tokens; the texts only travel through.
    const std::vector<std::string> no_text(G);
    HONE_ASSIGN_OR_RETURN(Batch prompts, PromptBatchFromIds(prompt_ids, no_text, no_text, /*first_group_id=*/0));
    HONE_ASSIGN_OR_RETURN(Batch out, rollout.Generate(prompts, params));
    const int64_t N = out.size();
    if (N != G * params.n) {
      return absl::InternalError(absl::StrCat("validation: the rollout returned ", N, " sequences for ", G,
                                              " prompts x ", params.n, " samples"));
    }
    GenerationResult result;
    result.sequences.resize(N);
    auto input_ids = out.tensor("input_ids").accessor<int64_t, 2>();
    auto logprobs = out.tensor("rollout_logprobs").accessor<float, 2>();
    const auto& prompt_len = out.ints("prompt_len");
    const auto& response_len = out.ints("response_len");
    const auto& truncated = out.ints("truncated");
    for (int64_t i = 0; i < N; ++i) {
      GeneratedSequence& seq = result.sequences[i];
      seq.prompt_index = i / params.n;
      for (int64_t t = prompt_len[i]; t < prompt_len[i] + response_len[i]; ++t) {
        seq.tokens.push_back(input_ids[i][t]);
        seq.logprobs.push_back(logprobs[i][t]);
      }
      seq.finish = truncated[i] ? FinishReason::kLength : FinishReason::kStop;
      result.new_tokens += response_len[i];
    }
    return result;
  };
}

}  // namespace hone
