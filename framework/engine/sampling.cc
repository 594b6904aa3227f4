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

uint64_t Mix(uint64_t x) {  // SplitMix64's finaliser: a bijection with good avalanche
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t SequenceStream(uint64_t seed, int64_t prompt_stream, int64_t sample) {
  return Mix(Mix(Mix(seed) ^ static_cast<uint64_t>(prompt_stream)) ^ static_cast<uint64_t>(sample));
}

double StreamUniform(uint64_t stream, int64_t step) {
  return static_cast<double>(Mix(stream ^ Mix(static_cast<uint64_t>(step))) >> 11) * 0x1.0p-53;
}

SampledTokens SampleNextTokens(const torch::Tensor& all_logits, const SamplingParams& params,
                               const std::vector<uint64_t>& streams, int64_t step) {
  // Ids past the limit get probability 0: the same as setting their logits to -inf, done
  // by leaving them out (they are a suffix, so the kept ids keep their numbers).
  const int64_t limit = params.vocab_limit;
  const torch::Tensor logits =
      limit > 0 && limit < all_logits.size(-1) ? all_logits.narrow(-1, 0, limit) : all_logits;
  if (params.temperature <= 0.0) {
    auto tokens = logits.argmax(-1);
    auto logprobs = torch::log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
    return {tokens, logprobs};
  }
  auto scaled = params.temperature == 1.0 ? logits : logits / params.temperature;
  auto filtered = KeepTopP(KeepTopK(scaled, params.top_k), params.top_p);
  auto probs = torch::softmax(filtered, -1);
  const int64_t N = probs.size(0), V = probs.size(-1);
  TORCH_CHECK(static_cast<int64_t>(streams.size()) == N, "SampleNextTokens: ", streams.size(),
              " streams for ", N, " rows");
  // Inverse CDF in float64: the first token whose cumulative mass exceeds u * total. A
  // filtered token (probability 0) never wins, since the cumulative mass does not rise there.
  auto cdf = probs.to(torch::kFloat64).cumsum(-1);
  std::vector<double> draws(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) draws[i] = StreamUniform(streams[i], step);
  auto threshold = torch::tensor(draws, torch::kFloat64).unsqueeze(1) * cdf.narrow(1, V - 1, 1);
  auto tokens = (cdf <= threshold).sum(-1).clamp_max(V - 1);
  auto logprobs = torch::log_softmax(scaled, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
  return {tokens, logprobs};
}

const char* FinishReasonName(FinishReason reason) {
  return reason == FinishReason::kStop ? "stop" : "length";
}

}  // namespace hone
