// Batched autoregressive generation for GRPO rollouts.
//
// A request is G prompts x n samples. Each prompt is prefilled once and its keys/values are
// shared by its n samples: decode attention reads the prompt's cache once per group, and
// only the generated tokens have per-sample caches, time-major and grown by doubling (no
// per-step concatenation). Only live sequences are decoded: a sequence that emitted a stop
// token leaves the decode batch (float32 on the CPU: attention per live row over its own
// context; elsewhere, block attention per group), and re-laying out the caches drops
// finished groups and packs each group's live samples. With T intra-op threads
// (at::get_num_threads()), the groups are split into T blocks decoded at once, one thread
// each. docs/generation.md has the details. Sampling is a chain of small steps (temperature, top-k, top-p,
// draw) and is deterministic for a given seed: each sequence draws from its own
// counter-based random stream, keyed by the seed, its prompt's stream id and its sample
// index, so the tokens of a sequence do not depend on which other prompts share the call
// (splitting prompts over 1 or 4 rollout workers samples the same tokens).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/model/model.h"

namespace hone {

struct SamplingParams {
  double temperature = 1.0;  // 0 = greedy (argmax)
  int64_t top_k = 0;         // keep the k most likely tokens; 0 = off
  double top_p = 1.0;        // keep the smallest set with this much mass; 1 = off
  int64_t max_new_tokens = 64;
  int64_t n = 1;             // samples per prompt
  std::vector<int64_t> stop_token_ids;  // generation of a sequence ends after one of these
  uint64_t seed = 0;
  // One id per prompt naming its random stream (the GRPO group id); empty: the prompt's
  // index in the call.
  std::vector<int64_t> prompt_streams;
  bool return_logits = false;  // keep every step's raw logits (tests, debugging)
  // Ids at or above this are never sampled: their logits count as -inf before the
  // temperature, top-k, top-p and the reported log-prob, so the log-probs are those of the
  // distribution over [0, vocab_limit). The rollout passes its tokenizer's size, since
  // real checkpoints pad the embedding past the tokenizer (Qwen2.5: 151936 rows, 151665
  // ids). 0 = no limit here; Generate also applies the model's
  // config().UsableVocabSize(), whichever is smaller.
  int64_t vocab_limit = 0;
};

enum class FinishReason { kStop, kLength };
const char* FinishReasonName(FinishReason reason);

struct GeneratedSequence {
  int64_t prompt_index = 0;
  std::vector<int64_t> tokens;   // includes the stop token when finish == kStop
  // log p(token) under softmax(logits / temperature) before top-k/top-p filtering (plain
  // softmax when greedy): what a trainer recomputes from the same weights.
  std::vector<float> logprobs;
  FinishReason finish = FinishReason::kLength;
};

struct GenerationResult {
  std::vector<GeneratedSequence> sequences;  // prompt-major: prompt g, sample j at g*n + j
  // [G*n, S, V] when return_logits (S = the longest sequence's length), else undefined. Row
  // i, step t: the logits token t of sequence i was sampled from; zero for t at or past the
  // sequence's length (finished sequences are not decoded).
  torch::Tensor step_logits;
  int64_t prompt_tokens = 0;  // prefilled tokens (once per prompt)
  int64_t new_tokens = 0;     // generated tokens, all sequences
};

// The random stream of sample `sample` of the prompt with stream id `prompt_stream`.
uint64_t SequenceStream(uint64_t seed, int64_t prompt_stream, int64_t sample);
// Draw number `step` of `stream`: a uniform double in [0, 1) (53 random bits), a pure
// function of its arguments (SplitMix64 finaliser over the pair).
double StreamUniform(uint64_t stream, int64_t step);

// Picks next tokens from logits [N,V] (float32): the sampling chain, over ids
// [0, params.vocab_limit) when that is in (0, V), else all V. Row i draws
// StreamUniform(streams[i], step) and takes the token where the cumulative probability
// (float64) passes it. Returns tokens [N] (int64) and their log-probabilities [N] as
// documented above. REQUIRES streams.size() == N.
struct SampledTokens {
  torch::Tensor tokens;
  torch::Tensor logprobs;
};
SampledTokens SampleNextTokens(const torch::Tensor& logits, const SamplingParams& params,
                               const std::vector<uint64_t>& streams, int64_t step);

class GenerationEngine {
 public:
  explicit GenerationEngine(CausalLM model) : model_(std::move(model)) {}

  // REQUIRES: every prompt non-empty; prompt length + max_new_tokens within the model's
  // max_position_embeddings (else InvalidArgument). Token ids outside the vocabulary are
  // InvalidArgument too.
  absl::StatusOr<GenerationResult> Generate(const std::vector<std::vector<int64_t>>& prompts,
                                            const SamplingParams& params);

  CausalLM& model() { return model_; }

 private:
  CausalLM model_;
};

}  // namespace hone
