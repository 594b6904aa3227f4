#include <limits>

#include "framework/engine/engine.h"

namespace hone {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

// Each step narrows the candidate set by setting logits to -inf.
torch::Tensor KeepTopK(const torch::Tensor& logits, int64_t k) {
  if (k <= 0 || k >= logits.size(-1)) return logits;
  auto kth_best = std::get<0>(logits.topk(k, -1)).narrow(-1, k - 1, 1);
  return logits.masked_fill(logits < kth_best, kMinusInf);
}

torch::Tensor KeepTopP(const torch::Tensor& logits, double top_p) {
  if (top_p >= 1.0) return logits;
  auto [sorted, order] = logits.sort(-1, /*descending=*/true);
  auto probs = torch::softmax(sorted, -1);
  // Drop a token when the mass before it already reaches top_p (the best always stays).
  auto mass_before = probs.cumsum(-1) - probs;
  auto drop_sorted = mass_before >= top_p;
  auto drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
  return logits.masked_fill(drop, kMinusInf);
}

}  // namespace

SampledTokens SampleNextTokens(const torch::Tensor& logits, const SamplingParams& params,
                               at::Generator& generator) {
  if (params.temperature <= 0.0) {
    auto tokens = logits.argmax(-1);
    auto logprobs = torch::log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
    return {tokens, logprobs};
  }
  auto scaled = logits / params.temperature;
  auto filtered = KeepTopP(KeepTopK(scaled, params.top_k), params.top_p);
  auto probs = torch::softmax(filtered, -1);
  auto tokens = torch::multinomial(probs, 1, /*replacement=*/false, generator).squeeze(-1);
  auto logprobs = torch::log_softmax(scaled, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
  return {tokens, logprobs};
}

const char* FinishReasonName(FinishReason reason) {
  return reason == FinishReason::kStop ? "stop" : "length";
}

}  // namespace hone
