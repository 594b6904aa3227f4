// `hone generate`: sample responses to one prompt from a model directory.
#include <chrono>
#include <iostream>

#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/engine/engine.h"
#include "framework/model/pretrained.h"
#include "workers/cli/command.h"
#include "workers/cli/threads.h"

namespace hone::cli {
namespace {

struct GenerateOptions {
  std::string model;
  std::string prompt;
  SamplingParams sampling;
  int threads = 1;
  bool show_logprobs = false;
};

absl::Status RunGenerate(GenerateOptions o) {
  SetComputeThreads(o.threads);
  HONE_ASSIGN_OR_RETURN(Pretrained policy, LoadPretrained(o.model));
  HONE_ASSIGN_OR_RETURN(std::vector<int64_t> prompt_ids, policy.tokenizer->Encode(o.prompt));
  if (prompt_ids.empty()) return absl::InvalidArgumentError("the prompt encodes to no tokens");
  o.sampling.stop_token_ids = policy.stop_token_ids;
  GenerationEngine engine(policy.model);
  const auto start = std::chrono::steady_clock::now();
  HONE_ASSIGN_OR_RETURN(GenerationResult result, engine.Generate({prompt_ids}, o.sampling));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (size_t i = 0; i < result.sequences.size(); ++i) {
    const GeneratedSequence& seq = result.sequences[i];
    std::vector<int64_t> text_tokens;  // special tokens (the stop token) are not text
    for (int64_t token : seq.tokens) {
      if (!policy.tokenizer->IsSpecialToken(token)) text_tokens.push_back(token);
    }
    HONE_ASSIGN_OR_RETURN(std::string text, policy.tokenizer->Decode(text_tokens));
    double logprob_sum = 0;
    for (float lp : seq.logprobs) logprob_sum += lp;
    std::cout << absl::StrFormat("--- sample %d (%d tokens, finish=%s, logprob=%.3f)\n", i,
                                 seq.tokens.size(), FinishReasonName(seq.finish), logprob_sum);
    std::cout << o.prompt << text << "\n";
    if (o.show_logprobs) {
      for (size_t t = 0; t < seq.tokens.size(); ++t) {
        std::cout << absl::StrFormat("  %d %.4f\n", seq.tokens[t], seq.logprobs[t]);
      }
    }
  }
  std::cerr << absl::StrFormat("generated %d tokens in %.2f s (%.0f tokens/s)\n",
                               result.new_tokens, seconds, result.new_tokens / seconds);
  return absl::OkStatus();
}

}  // namespace

CommandAction SetupGenerateCommand(CLI::App& sub) {
  auto o = std::make_shared<GenerateOptions>();
  sub.add_option("--model", o->model, "model directory (config.json, model.safetensors, tokenizer.json)")
      ->required();
  sub.add_option("--prompt", o->prompt, "prompt text")->required();
  sub.add_option("--n", o->sampling.n, "samples")->check(CLI::Range(1, 1 << 16));
  sub.add_option("--temperature", o->sampling.temperature, "sampling temperature; 0 = greedy")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--top-k", o->sampling.top_k, "keep the k most likely tokens; 0 = off")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--top-p", o->sampling.top_p, "nucleus mass; 1 = off")->check(CLI::Range(0.0, 1.0));
  sub.add_option("--max-new-tokens", o->sampling.max_new_tokens, "longest response")
      ->check(CLI::Range(1, 1 << 20));
  sub.add_option("--seed", o->sampling.seed, "sampling seed");
  sub.add_option("--threads", o->threads, "intra-op threads")->check(CLI::Range(1, 256));
  sub.add_flag("--logprobs", o->show_logprobs, "print each token id with its log-probability");
  return [o]() { return RunGenerate(*o); };
}

}  // namespace hone::cli
