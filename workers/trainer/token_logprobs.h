// The trainer's token log-probabilities (and entropies) without [B,T,V] logits.
//
// The logits of a batch are B x T x V floats: at Qwen's V = 151,936, a micro-batch of 16 x
// 640 tokens is 6.2 GB per copy, and a plain log_softmax under autograd keeps several such
// copies alive until backward. Here the model stops at the final hidden states, only the
// scored positions are projected, and the projection, log-softmax, gather and entropy run
// over chunks of positions; backward recomputes each chunk's logits instead of storing
// them (the approach of Liger's fused linear cross-entropy and verl's fused kernels). Peak
// memory for the head is then one chunk's logits, whatever B x T is.
//
// Vocabulary: only ids [0, vocab_limit) are scored, the ones the tokenizer can decode
// (ModelConfig::UsableVocabSize()). The distribution is renormalised over them, exactly as
// the rollout samples (framework/engine: SamplingParams::vocab_limit), so the rollout's and
// the trainer's log-probs agree on models whose embedding is padded past the tokenizer.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "framework/model/model.h"

namespace hone {

// Token log-probs of `input_ids` under `model` at `temperature`, aligned to token
// positions ([B,T]: entry t is log p(token t | tokens < t); position 0 is 0), and the
// entropy of the distribution that predicted each position (0 at position 0).
//
// Only scored positions are computed; the others are 0 in both outputs. A position t >= 1
// is scored when `score_mask` [B,T] (e.g. the response mask) is non-zero there, or, when
// `score_mask` is undefined, when attention_mask is true there (every real token).
//
// `with_grad`: build the autograd graph of the log-probs (for the policy loss).
// `entropy_grad`: the entropy is differentiable too (only when it is in the loss: an
// entropy bonus); otherwise it is a detached value, computed alongside for the metric.
// Temperatures <= 0 (a greedy rollout) score at 1. Ids at or above the model's
// config().UsableVocabSize() have probability 0 (a target there scores -inf).
struct TokenLogProbs {
  torch::Tensor logprobs;
  torch::Tensor entropy;
};
TokenLogProbs ComputeTokenLogProbs(CausalLM& model, const torch::Tensor& input_ids,
                                   const torch::Tensor& attention_mask, double temperature,
                                   bool with_grad, bool entropy_grad = false,
                                   const torch::Tensor& score_mask = {});

// The chunked head itself, differentiable w.r.t. `hidden` and `weight`:
//   hidden  [N,C]  final hidden states of the scored positions (after the final norm)
//   weight  [V,C]  the LM head (CausalLMImpl::OutputWeight())
//   targets [N]    int64 token ids to score
// -> logprobs [N] = log softmax(hidden @ weight[:vocab_limit]^T / temperature)[target]
//    entropy  [N] = entropy of that softmax
// in float32 for half-precision inputs, else the inputs' dtype. Ids >= vocab_limit are
// left out of the softmax (the same as a -inf logit); a target outside [0, vocab_limit)
// scores -inf (with zero gradient). vocab_limit <= 0 or > V means V.
//
// Forward and backward run over `chunk_positions` rows at a time (0 = a size that keeps
// one chunk's logits near 128 MiB); nothing of size V is kept between chunks, and
// backward recomputes each chunk's logits. At temperature 1 the logits are not copied
// for scaling. The entropy carries a gradient only with `entropy_grad`.
struct ChunkedLogProbs {
  torch::Tensor logprobs;
  torch::Tensor entropy;
};
ChunkedLogProbs ChunkedTokenLogProbs(const torch::Tensor& hidden, const torch::Tensor& weight,
                                     const torch::Tensor& targets, double temperature,
                                     int64_t vocab_limit, int64_t chunk_positions = 0,
                                     bool entropy_grad = false);

// The default chunk: rows such that rows x vocab is about 2^25 logits (at least 1).
int64_t DefaultChunkPositions(int64_t vocab);

}  // namespace hone
