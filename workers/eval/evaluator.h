// Held-out evaluation of a policy: sample responses to a fixed list of prompts, score
// them with the boxed-integer reward and summarise (accuracy, unbiased Pass@k, format
// rate, response lengths, truncation, reflection-word counts, throughput).
//
// Used by `hone eval` to compare models on the same prompts, and by the training loop
// for periodic validation: both build EvalOptions from the same config keys
// (EvalOptionsFromConfig), so a validation number in metrics.jsonl and a `hone eval`
// number of the saved model mean the same thing.
//
// Example:
//   HONE_ASSIGN_OR_RETURN(eval::EvalOptions options, eval::EvalOptionsFromConfig(config));
//   HONE_ASSIGN_OR_RETURN(data::DataSplits splits, data::LoadSplits(config));
//   std::vector<data::Example> prompts =
//       eval::SelectEvalExamples(splits.held_out, config.Int("eval.limit"), options.seed);
//   HONE_ASSIGN_OR_RETURN(eval::EvalResult result,
//       eval::Evaluate(policy.model, *policy.tokenizer, policy.stop_token_ids, prompts,
//                      options));
//   double val_acc = result.accuracy, pass8 = result.pass_at_k.at(8);
//
// Greedy decoding (temperature 0): every one of n samples would be the same text, so
// Evaluate generates ONE sample per prompt and lets it stand for all n. Accuracy is then
// the greedy accuracy, and Pass@k for every requested k (still required to be <= n)
// equals it exactly: with n identical samples c is 0 or n.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/core/config.h"
#include "framework/data/dataset.h"
#include "framework/engine/engine.h"
#include "framework/model/model.h"
#include "framework/model/tokenizer.h"
#include "framework/reward/reward.h"

namespace hone::eval {

struct EvalOptions {
  int64_t n = 1;             // samples per prompt (eval.n); greedy generates one, see above
  double temperature = 0.0;  // eval.temperature; 0 = greedy
  int64_t top_k = 0;         // rollout.top_k; 0 = off
  double top_p = 1.0;        // rollout.top_p; 1 = off
  int64_t max_new_tokens = 64;  // eval.max_new_tokens, or rollout.max_new_tokens when 0
  uint64_t seed = 0;            // sampling seed (the job's seed)
  std::vector<int64_t> ks = {1};  // Pass@k values to report; each in [1, n]
  std::vector<std::string> reflection_words = {"Wait", "Now", "Hmm", "But", "Check"};
  std::string prompt_template = "plain";  // data.prompt_template
  // data.prompt_template=chat: the evaluated model's directory (its tokenizer_config.json
  // holds the chat template). EvalOptionsFromConfig sets model.path; hone eval, each --model.
  std::string model_dir;
  reward::RewardOptions reward;           // reward.fallback / correct_weight / format_weight
  // Prompts per Generate call: bounds the KV-cache memory (prompt_batch * n sequences).
  // Each batch b samples with seed MixSeed(seed, b), so results depend on it: keep it fixed
  // when comparing runs.
  int64_t prompt_batch = 64;
};

// Reads the eval.* keys (plus rollout.top_k/top_p/max_new_tokens, data.prompt_template,
// reward.*, seed) and validates them.
absl::StatusOr<EvalOptions> EvalOptionsFromConfig(const Config& config);

// InvalidArgument naming the field (as its config key) when n < 1, a k is outside
// [1, n], temperature < 0, max_new_tokens < 1, prompt_batch < 1, a reflection word is
// empty, or the reward options / prompt template are unknown.
absl::Status ValidateEvalOptions(const EvalOptions& options);

// The examples an evaluation runs on: all of `examples` (in order) when limit <= 0 or
// limit >= size; otherwise `limit` of them picked by a permutation fixed by `seed`, kept
// in their original order. Every model compared under one seed sees the same subset.
std::vector<data::Example> SelectEvalExamples(const std::vector<data::Example>& examples,
                                              int64_t limit, uint64_t seed);

// Unbiased Pass@k (Chen et al. 2021, the Codex estimator) from n samples with c correct:
// 1 - C(n-c, k) / C(n, k), computed as 1 - prod_{i=n-c+1..n} (1 - k/i), which neither
// overflows nor loses precision for large n. 1 when n - c < k.
// REQUIRES: 0 <= c <= n, 1 <= k <= n.
double PassAtK(int64_t n, int64_t c, int64_t k);

// Whole-word, case-sensitive occurrences of `word` in `text`: an occurrence counts when
// the bytes right before and after it are not word characters (ASCII letters, digits,
// '_', or any non-ASCII byte). "Wait" occurs once in "Wait, no" and not in "Waited".
// 0 for an empty word.
int64_t CountWholeWord(std::string_view text, std::string_view word);

struct SampleOutcome {
  std::string response;  // decoded generated tokens, without the final stop token
  int64_t num_tokens = 0;  // generated tokens, counting the stop token when it ended
  bool truncated = false;  // cut at max_new_tokens (finish reason `length`)
  reward::RewardResult score;  // boxed_integer: correct, format, total, extracted
};

struct PromptOutcome {
  data::Example example;  // question (no template), ground truth, dataset index
  std::vector<SampleOutcome> samples;  // one per generated sample, in sampling order
  int64_t num_correct = 0;
};

struct EvalResult {
  int64_t num_prompts = 0;
  int64_t samples_per_prompt = 0;  // n, or 1 for greedy
  double accuracy = 0;             // mean `correct` over all samples (greedy: greedy accuracy)
  std::map<int64_t, double> pass_at_k;  // k -> mean over prompts of PassAtK(n, c, k)
  double format_rate = 0;               // mean `format` over all samples
  double mean_reward = 0;               // mean reward total over all samples
  double mean_response_length = 0;      // generated tokens per sample
  int64_t max_response_length = 0;
  double truncated_fraction = 0;        // samples cut at max_new_tokens
  // word -> mean whole-word occurrences per response (see CountWholeWord)
  std::map<std::string, double> reflection_counts;
  int64_t generated_tokens = 0;
  double seconds = 0;             // wall time of Evaluate
  double generation_seconds = 0;  // of which in GenerationEngine::Generate
  double tokens_per_second = 0;   // generated_tokens / generation_seconds
  std::vector<PromptOutcome> prompts;  // in the order of the examples given
};

// Runs `model` on `examples` with `options`: templates each question, generates
// (batches of options.prompt_batch prompts), decodes and scores every sample. Identical
// inputs give identical results. `progress`, when set, is called after each batch with
// (prompts done, total). Errors: invalid options, a ground truth that is not an integer,
// a prompt that encodes to no tokens or does not fit the model's context, named with
// the example's dataset index.
absl::StatusOr<EvalResult> Evaluate(CausalLM& model, const Tokenizer& tokenizer,
                                    const std::vector<int64_t>& stop_token_ids,
                                    const std::vector<data::Example>& examples,
                                    const EvalOptions& options,
                                    const std::function<void(int64_t done, int64_t total)>&
                                        progress = nullptr);

// What generates for Evaluate: the prompts' token ids and the sampling parameters (seed,
// n, temperature, stop ids) in; one GeneratedSequence per (prompt, sample) out,
// prompt-major, each prompt sampling from the stream of its index in the call (the
// engine's default). In process it is a GenerationEngine on the model; under mpirun the
// rollout workers, whose per-prompt streams make the tokens the same (workers/controller/
// validation.h).
using GenerateFn = std::function<absl::StatusOr<GenerationResult>(
    const std::vector<std::vector<int64_t>>& prompt_ids, const SamplingParams& params)>;

// Evaluate with generation done by `generate`; `max_positions` is the model's context
// (max_position_embeddings), for the prompt-length check.
absl::StatusOr<EvalResult> Evaluate(const GenerateFn& generate, int64_t max_positions, const Tokenizer& tokenizer,
                                    const std::vector<int64_t>& stop_token_ids,
                                    const std::vector<data::Example>& examples, const EvalOptions& options,
                                    const std::function<void(int64_t done, int64_t total)>& progress = nullptr);

// Prompt-level comparison of two evaluations of the same examples, by each model's
// first sample (its greedy answer under temperature 0).
struct Comparison {
  int64_t a_right_b_wrong = 0;
  int64_t a_wrong_b_right = 0;
  int64_t both_right = 0;
  int64_t both_wrong = 0;
  std::vector<int64_t> disagreements;  // positions in EvalResult::prompts, ascending
};

// InvalidArgument when the two results do not cover the same examples in the same order.
absl::StatusOr<Comparison> Compare(const EvalResult& a, const EvalResult& b);

}  // namespace hone::eval
