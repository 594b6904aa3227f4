#include "workers/eval/evaluator.h"

#include "framework/algo/algo.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/data/prompt_formatter.h"
#include "framework/engine/engine.h"

namespace hone::eval {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

bool IsWordByte(unsigned char c) {
  return c >= 0x80 || c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z');
}

// A templated, tokenised prompt with its parsed ground truth.
struct PreparedPrompt {
  std::vector<int64_t> ids;
  int64_t ground_truth = 0;
};

absl::StatusOr<PreparedPrompt> Prepare(const data::Example& example, const Tokenizer& tokenizer,
                                       const data::PromptFormatter& format, const EvalOptions& options,
                                       int64_t max_positions) {
  const std::string where = absl::StrCat("held-out example ", example.index);
  PreparedPrompt out;
  absl::StatusOr<int64_t> truth = reward::ParseGroundTruth(example.ground_truth);
  if (!truth.ok()) return Annotate(truth.status(), where);
  out.ground_truth = *truth;
  absl::StatusOr<std::string> text = format.Format(example.prompt);
  if (!text.ok()) return Annotate(text.status(), where);
  absl::StatusOr<std::vector<int64_t>> ids = tokenizer.Encode(*text);
  if (!ids.ok()) return Annotate(ids.status(), where);
  out.ids = std::move(*ids);
  if (out.ids.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": the prompt encodes to no tokens"));
  const int64_t needed = static_cast<int64_t>(out.ids.size()) + options.max_new_tokens;
  if (needed > max_positions) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": prompt of ", out.ids.size(), " tokens + max_new_tokens ", options.max_new_tokens,
        " exceeds the model's max_position_embeddings ", max_positions));
  }
  return out;
}

// Decodes and scores one generated sequence; the final stop token is not response text.
absl::StatusOr<SampleOutcome> Score(const GeneratedSequence& seq, const Tokenizer& tokenizer,
                                    int64_t ground_truth, const EvalOptions& options) {
  SampleOutcome out;
  out.num_tokens = static_cast<int64_t>(seq.tokens.size());
  out.truncated = seq.finish == FinishReason::kLength;
  size_t keep = seq.tokens.size();
  if (seq.finish == FinishReason::kStop && keep > 0) --keep;
  HONE_ASSIGN_OR_RETURN(out.response,
                        tokenizer.Decode(absl::MakeConstSpan(seq.tokens.data(), keep)));
  out.score = reward::ScoreBoxedInteger(out.response, ground_truth, options.reward);
  return out;
}

}  // namespace

absl::StatusOr<EvalOptions> EvalOptionsFromConfig(const Config& config) {
  EvalOptions o;
  o.n = config.Int("eval.n");
  o.temperature = config.Float("eval.temperature");
  o.top_k = config.Int("rollout.top_k");
  o.top_p = config.Float("rollout.top_p");
  o.max_new_tokens = config.Int("eval.max_new_tokens");
  if (o.max_new_tokens == 0) o.max_new_tokens = config.Int("rollout.max_new_tokens");
  o.seed = static_cast<uint64_t>(config.Int("seed"));
  o.ks = config.IntList("eval.k");
  o.reflection_words = config.StringList("eval.reflection_words");
  o.prompt_template = config.String("data.prompt_template");
  o.model_dir = config.String("model.path");
  o.reward.fallback = config.String("reward.fallback");
  o.reward.correct_weight = config.Float("reward.correct_weight");
  o.reward.format_weight = config.Float("reward.format_weight");
  HONE_RETURN_IF_ERROR(ValidateEvalOptions(o));
  return o;
}

absl::Status ValidateEvalOptions(const EvalOptions& o) {
  if (o.n < 1) return absl::InvalidArgumentError(absl::StrCat("eval.n=", o.n, " must be >= 1"));
  if (o.ks.empty()) return absl::InvalidArgumentError("eval.k is empty: give at least one k, e.g. [1]");
  for (int64_t k : o.ks) {
    if (k < 1 || k > o.n) {
      return absl::InvalidArgumentError(absl::StrCat(
          "eval.k contains ", k, ", but Pass@k needs 1 <= k <= eval.n (", o.n,
          "): raise eval.n or drop k"));
    }
  }
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature)) {
    return absl::InvalidArgumentError(absl::StrCat("eval.temperature=", o.temperature, " must be >= 0"));
  }
  if (o.max_new_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat("eval.max_new_tokens=", o.max_new_tokens, " must be >= 1"));
  }
  if (o.prompt_batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("eval prompt_batch=", o.prompt_batch, " must be >= 1"));
  }
  for (const std::string& w : o.reflection_words) {
    if (w.empty()) return absl::InvalidArgumentError("eval.reflection_words contains an empty word");
  }
  HONE_RETURN_IF_ERROR(Annotate(reward::ValidateRewardOptions(o.reward), "reward"));
  // `chat` needs the model's directory, known only when a model is evaluated (Evaluate).
  if (o.prompt_template != data::kChatPromptTemplate) {
    absl::StatusOr<std::string> probe = data::ApplyPromptTemplate(o.prompt_template, "1+1=?");
    if (!probe.ok()) return Annotate(probe.status(), "data.prompt_template");
  }
  return absl::OkStatus();
}

std::vector<data::Example> SelectEvalExamples(const std::vector<data::Example>& examples,
                                              int64_t limit, uint64_t seed) {
  const int64_t size = static_cast<int64_t>(examples.size());
  if (limit <= 0 || limit >= size) return examples;
  // A salt of its own, so the subset is not the prefix of some other permutation of the
  // same seed (the held-out split, the loader's first epoch).
  constexpr int64_t kEvalSalt = 0x6576616c;  // "eval"
  std::vector<int64_t> order = data::ShuffledOrder(size, seed, kEvalSalt);
  order.resize(static_cast<size_t>(limit));
  std::sort(order.begin(), order.end());
  std::vector<data::Example> subset;
  subset.reserve(order.size());
  for (int64_t i : order) subset.push_back(examples[static_cast<size_t>(i)]);
  return subset;
}

double PassAtK(int64_t n, int64_t c, int64_t k) { return algo::PassAtK(n, c, k); }

int64_t CountWholeWord(std::string_view text, std::string_view word) {
  if (word.empty()) return 0;
  int64_t count = 0;
  for (size_t pos = text.find(word); pos != std::string_view::npos; pos = text.find(word, pos + 1)) {
    const size_t end = pos + word.size();
    const bool left_ok = pos == 0 || !IsWordByte(static_cast<unsigned char>(text[pos - 1]));
    const bool right_ok = end == text.size() || !IsWordByte(static_cast<unsigned char>(text[end]));
    if (left_ok && right_ok) ++count;
  }
  return count;
}

absl::StatusOr<EvalResult> Evaluate(CausalLM& model, const Tokenizer& tokenizer,
                                    const std::vector<int64_t>& stop_token_ids,
                                    const std::vector<data::Example>& examples,
                                    const EvalOptions& options,
                                    const std::function<void(int64_t, int64_t)>& progress) {
  GenerationEngine engine(model);
  const GenerateFn generate = [&engine](const std::vector<std::vector<int64_t>>& prompt_ids,
                                        const SamplingParams& params) { return engine.Generate(prompt_ids, params); };
  return Evaluate(generate, model->config().max_position_embeddings, tokenizer, stop_token_ids, examples, options,
                  progress);
}

absl::StatusOr<EvalResult> Evaluate(const GenerateFn& generate, int64_t max_positions, const Tokenizer& tokenizer,
                                    const std::vector<int64_t>& stop_token_ids,
                                    const std::vector<data::Example>& examples, const EvalOptions& options,
                                    const std::function<void(int64_t, int64_t)>& progress) {
  HONE_RETURN_IF_ERROR(ValidateEvalOptions(options));
  if (examples.empty()) return absl::InvalidArgumentError("no examples to evaluate");
  const auto start = Clock::now();
  const int64_t total = static_cast<int64_t>(examples.size());

  HONE_ASSIGN_OR_RETURN(data::PromptFormatter format,
                        data::PromptFormatter::Create(options.prompt_template, options.model_dir));
  std::vector<PreparedPrompt> prepared;
  prepared.reserve(examples.size());
  for (const data::Example& e : examples) {
    HONE_ASSIGN_OR_RETURN(PreparedPrompt p, Prepare(e, tokenizer, format, options, max_positions));
    prepared.push_back(std::move(p));
  }

  const bool greedy = options.temperature == 0;
  SamplingParams params;
  params.temperature = options.temperature;
  params.top_k = options.top_k;
  params.top_p = options.top_p;
  params.max_new_tokens = options.max_new_tokens;
  params.n = greedy ? 1 : options.n;
  params.stop_token_ids = stop_token_ids;

  EvalResult result;
  result.num_prompts = total;
  result.samples_per_prompt = params.n;
  result.prompts.reserve(examples.size());
  for (int64_t begin = 0, batch = 0; begin < total; begin += options.prompt_batch, ++batch) {
    const int64_t end = std::min(total, begin + options.prompt_batch);
    std::vector<std::vector<int64_t>> prompt_ids;
    for (int64_t i = begin; i < end; ++i) prompt_ids.push_back(prepared[i].ids);
    params.seed = data::MixSeed(options.seed, static_cast<uint64_t>(batch));
    const auto gen_start = Clock::now();
    absl::StatusOr<GenerationResult> generated = generate(prompt_ids, params);
    result.generation_seconds += SecondsSince(gen_start);
    if (!generated.ok()) {
      return Annotate(generated.status(), absl::StrCat("generating for prompts ", begin, "..", end - 1));
    }
    result.generated_tokens += generated->new_tokens;
    for (int64_t i = begin; i < end; ++i) {
      PromptOutcome outcome;
      outcome.example = examples[i];
      for (int64_t j = 0; j < params.n; ++j) {
        const GeneratedSequence& seq = generated->sequences[(i - begin) * params.n + j];
        HONE_ASSIGN_OR_RETURN(SampleOutcome sample,
                              Score(seq, tokenizer, prepared[i].ground_truth, options));
        outcome.num_correct += sample.score.correct > 0 ? 1 : 0;
        outcome.samples.push_back(std::move(sample));
      }
      result.prompts.push_back(std::move(outcome));
    }
    if (progress) progress(end, total);
  }

  // Aggregates over all samples, and Pass@k over prompts.
  int64_t samples = 0, truncated = 0, length_sum = 0;
  double correct_sum = 0, format_sum = 0, reward_sum = 0;
  std::map<std::string, int64_t> word_sums;
  for (const std::string& w : options.reflection_words) word_sums[w] = 0;
  for (const PromptOutcome& p : result.prompts) {
    for (const SampleOutcome& s : p.samples) {
      ++samples;
      correct_sum += s.score.correct;
      format_sum += s.score.format;
      reward_sum += s.score.total;
      length_sum += s.num_tokens;
      result.max_response_length = std::max(result.max_response_length, s.num_tokens);
      truncated += s.truncated ? 1 : 0;
      for (auto& [w, sum] : word_sums) sum += CountWholeWord(s.response, w);
    }
    for (int64_t k : options.ks) {
      // Greedy: the one sample stands for n identical ones, so c is 0 or n.
      result.pass_at_k[k] += greedy ? (p.num_correct > 0 ? 1.0 : 0.0)
                                    : PassAtK(params.n, p.num_correct, k);
    }
  }
  for (auto& [k, v] : result.pass_at_k) v /= static_cast<double>(total);
  const double ns = static_cast<double>(samples);
  result.accuracy = correct_sum / ns;
  result.format_rate = format_sum / ns;
  result.mean_reward = reward_sum / ns;
  result.mean_response_length = static_cast<double>(length_sum) / ns;
  result.truncated_fraction = static_cast<double>(truncated) / ns;
  for (const auto& [w, sum] : word_sums) result.reflection_counts[w] = static_cast<double>(sum) / ns;
  result.tokens_per_second = result.generation_seconds > 0
                                 ? static_cast<double>(result.generated_tokens) / result.generation_seconds
                                 : 0.0;
  result.seconds = SecondsSince(start);
  return result;
}

absl::StatusOr<Comparison> Compare(const EvalResult& a, const EvalResult& b) {
  if (a.prompts.size() != b.prompts.size()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot compare evaluations of ", a.prompts.size(),
                                                   " and ", b.prompts.size(), " prompts"));
  }
  Comparison out;
  for (size_t i = 0; i < a.prompts.size(); ++i) {
    const PromptOutcome& pa = a.prompts[i];
    const PromptOutcome& pb = b.prompts[i];
    if (pa.example.index != pb.example.index || pa.example.prompt != pb.example.prompt) {
      return absl::InvalidArgumentError(absl::StrCat(
          "evaluations differ at position ", i, ": example ", pa.example.index, " vs ", pb.example.index));
    }
    if (pa.samples.empty() || pb.samples.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("position ", i, " has no samples"));
    }
    const bool ra = pa.samples.front().score.correct > 0;
    const bool rb = pb.samples.front().score.correct > 0;
    if (ra && rb) ++out.both_right;
    if (!ra && !rb) ++out.both_wrong;
    if (ra && !rb) ++out.a_right_b_wrong;
    if (!ra && rb) ++out.a_wrong_b_right;
    if (ra != rb) out.disagreements.push_back(static_cast<int64_t>(i));
  }
  return out;
}

}  // namespace hone::eval
