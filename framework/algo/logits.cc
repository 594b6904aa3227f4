// Entropy and log-probabilities from logits, computed stably via log_softmax.
#include "framework/algo/algo.h"

namespace hone::algo {
namespace {

// Half-precision logits are reduced in float32.
torch::Tensor ComputeDtype(const torch::Tensor& logits) {
  const auto type = logits.scalar_type();
  if (type == torch::kHalf || type == torch::kBFloat16) return logits.to(torch::kFloat32);
  return logits;
}

}  // namespace

torch::Tensor EntropyFromLogits(const torch::Tensor& logits) {
  TORCH_CHECK(logits.dim() >= 1, "EntropyFromLogits: logits must be [..., V]");
  // -sum(p log p) from log_softmax: every term is >= 0, so nothing cancels, unlike
  // logsumexp(z) - sum(p z), which loses ~ulp(|z|) when the logits are large.
  torch::Tensor logp = torch::log_softmax(ComputeDtype(logits), -1);  // [..., V]
  return -(logp.exp() * logp).sum(-1);
}

torch::Tensor GatherLogProbs(const torch::Tensor& logits, const torch::Tensor& tokens,
                             double temperature) {
  TORCH_CHECK(temperature > 0.0, "GatherLogProbs: temperature must be > 0, got ", temperature);
  TORCH_CHECK(logits.dim() == tokens.dim() + 1 &&
                  logits.sizes().slice(0, tokens.dim()) == tokens.sizes(),
              "GatherLogProbs: logits [B,T,V] and tokens [B,T] disagree: ", logits.sizes(),
              " vs ", tokens.sizes());
  TORCH_CHECK(tokens.scalar_type() == torch::kLong, "GatherLogProbs: tokens must be int64");
  torch::Tensor z = ComputeDtype(logits);
  if (temperature != 1.0) z = z / temperature;
  // log_softmax subtracts the row max before anything is rounded, so the result keeps
  // full precision even for large logits (z[token] - logsumexp(z) would not).
  return torch::log_softmax(z, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);  // [B,T]
}

}  // namespace hone::algo
