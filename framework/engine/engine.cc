#include "framework/engine/engine.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/core/torch_status.h"

namespace hone {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

// Keys/values of one layer. Shapes: G prompts, n samples, K kv heads, P padded prompt
// length, M max new tokens, D head dim.
struct LayerCache {
  torch::Tensor prompt_k, prompt_v;  // [G,K,P,D], shared by the group's samples
  // [G,K,M,n,D], preallocated and time-major: the first `steps` rows of all n samples
  // form one contiguous [steps*n, D] block per (prompt, kv head).
  torch::Tensor gen_k, gen_v;
};

// Decode-step attention for one new token per sequence.
// q [G,K,n,rep,D]; prompt_bias [G,1,1,P] (0 or -inf for left padding; undefined when no
// prompt is padded); `steps` = number of generated tokens now cached (including the
// current one). Returns [G,K,n,rep,D].
//
// Both halves run as one matrix product per (prompt, kv head): the prompt's keys are read
// once for the whole group, and the generated keys of the group's n samples are scored
// all against all, keeping the diagonal blocks (sample i against its own keys). That
// spends n times the (small) attention FLOPs to replace G*K*n matrix-vector products,
// whose per-call cost dominated decode time, by G*K larger products.
torch::Tensor GroupedDecodeAttention(const torch::Tensor& q, const LayerCache& cache,
                                     const torch::Tensor& prompt_bias, int64_t steps) {
  const int64_t G = q.size(0), K = q.size(1), n = q.size(2), rep = q.size(3), D = q.size(4);
  const int64_t P = cache.prompt_k.size(2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  auto q_rows = q.reshape({G, K, n * rep, D});
  auto prompt_scores = torch::matmul(q_rows, cache.prompt_k.transpose(-1, -2));  // [G,K,n*rep,P]
  if (prompt_bias.defined()) prompt_scores = prompt_scores + prompt_bias;
  auto gen_k = cache.gen_k.narrow(2, 0, steps).reshape({G, K, steps * n, D});
  auto gen_v = cache.gen_v.narrow(2, 0, steps).reshape({G, K, steps * n, D});
  auto all_pairs = torch::matmul(q_rows, gen_k.transpose(-1, -2));  // [G,K,n*rep,steps*n]
  auto gen_scores = all_pairs.view({G, K, n, rep, steps, n})
                        .diagonal(0, 2, 5)              // [G,K,rep,steps,n]
                        .permute({0, 1, 4, 2, 3});      // [G,K,n,rep,steps]
  auto scores = torch::cat({prompt_scores.view({G, K, n, rep, P}), gen_scores}, -1) * scale;
  auto probs = torch::softmax(scores, -1);
  auto out = torch::matmul(probs.narrow(-1, 0, P).reshape({G, K, n * rep, P}), cache.prompt_v);
  // Spread each sample's weights over its own block of the group's [steps*n] values.
  auto spread = torch::zeros({G, K, n, rep, steps, n}, probs.options());
  spread.diagonal(0, 2, 5).copy_(probs.narrow(-1, P, steps).permute({0, 1, 3, 4, 2}));
  out = out + torch::matmul(spread.view({G, K, n * rep, steps * n}), gen_v);
  return out.view({G, K, n, rep, D});
}

absl::Status ValidateRequest(const CausalLM& model,
                             const std::vector<std::vector<int64_t>>& prompts,
                             const SamplingParams& params) {
  const ModelConfig& config = model->config();
  if (prompts.empty()) return absl::InvalidArgumentError("no prompts to generate from");
  if (params.n < 1) return absl::InvalidArgumentError("samples per prompt (n) must be >= 1");
  if (params.max_new_tokens < 1) return absl::InvalidArgumentError("max_new_tokens must be >= 1");
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) return absl::InvalidArgumentError(absl::StrCat("prompt ", i, " is empty"));
    const int64_t total = static_cast<int64_t>(prompts[i].size()) + params.max_new_tokens;
    if (total > config.max_position_embeddings) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt ", i, " has ", prompts[i].size(), " tokens; with max_new_tokens ",
          params.max_new_tokens, " it exceeds the model's max_position_embeddings ",
          config.max_position_embeddings));
    }
    for (int64_t id : prompts[i]) {
      if (id < 0 || id >= config.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("prompt ", i, " has token id ", id,
                                                       " outside the vocabulary (size ",
                                                       config.vocab_size, ")"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<GenerationResult> GenerationEngine::Generate(
    const std::vector<std::vector<int64_t>>& prompts, const SamplingParams& requested) {
  HONE_RETURN_IF_ERROR(ValidateRequest(model_, prompts, requested));
  // Sample only ids the tokenizer can decode: the request's limit and the model's own.
  SamplingParams params = requested;
  const int64_t usable = model_->config().UsableVocabSize();
  params.vocab_limit = params.vocab_limit > 0 ? std::min(params.vocab_limit, usable) : usable;
  GenerationResult result;
  absl::Status status = CatchTorch("generation", [&] {
    c10::InferenceMode inference;
    CausalLMImpl& model = *model_;
    const ModelConfig& config = model.config();
    const auto param = model.parameters().front();
    const auto device = param.device();
    const auto dtype = param.scalar_type();
    const int64_t G = prompts.size(), n = params.n, N = G * n, M = params.max_new_tokens;
    const int64_t K = config.num_key_value_heads, H = config.num_attention_heads;
    const int64_t D = config.head_dim, rep = H / K, L = config.num_hidden_layers;
    int64_t P = 0;
    for (const auto& p : prompts) P = std::max<int64_t>(P, p.size());

    // Left-pad prompts so that every prompt's last token sits at column P-1.
    std::vector<int64_t> ids(G * P, 0), positions(G * P, 0), prompt_lengths(G);
    std::vector<uint8_t> valid(G * P, 0);
    for (int64_t g = 0; g < G; ++g) {
      const int64_t len = prompts[g].size(), pad = P - len;
      prompt_lengths[g] = len;
      for (int64_t t = 0; t < len; ++t) {
        ids[g * P + pad + t] = prompts[g][t];
        positions[g * P + pad + t] = t;
        valid[g * P + pad + t] = 1;
      }
      result.prompt_tokens += len;
    }
    auto long_options = torch::TensorOptions().dtype(torch::kInt64);
    auto ids_t = torch::tensor(ids, long_options).view({G, P}).to(device);
    auto pos_t = torch::tensor(positions, long_options).view({G, P}).to(device);
    auto valid_t = torch::tensor(std::vector<int64_t>(valid.begin(), valid.end()), long_options)
                       .view({G, P}).to(torch::kBool).to(device);
    torch::Tensor prompt_bias;  // only needed when some prompt is left-padded
    if (result.prompt_tokens != G * P) {
      prompt_bias = torch::zeros({G, 1, 1, P}, torch::TensorOptions().dtype(dtype).device(device))
                        .masked_fill(valid_t.logical_not().view({G, 1, 1, P}), kMinusInf);
    }

    // Prefill: one pass per prompt, keeping every layer's keys and values.
    std::vector<LayerCache> caches(L);
    std::vector<FusedLayerWeights> fused(L);
    for (int64_t l = 0; l < L; ++l) fused[l] = model.layer(l).Fuse();
    auto h = model.Embed(ids_t);
    auto [cos, sin] = model.rotary().Lookup(pos_t, dtype);
    auto cache_options = torch::TensorOptions().dtype(dtype).device(device);
    for (int64_t l = 0; l < L; ++l) {
      DecoderLayerImpl& layer = model.layer(l);
      auto qkv = layer.ProjectQkv(h, cos, sin, &fused[l]);
      h = layer.Finish(h, CausalAttention(qkv.q, qkv.k, qkv.v, valid_t), &fused[l]);
      caches[l].prompt_k = qkv.k.permute({0, 2, 1, 3}).contiguous();
      caches[l].prompt_v = qkv.v.permute({0, 2, 1, 3}).contiguous();
      caches[l].gen_k = torch::empty({G, K, M, n, D}, cache_options);
      caches[l].gen_v = torch::empty({G, K, M, n, D}, cache_options);
    }
    auto last_logits = model.Logits(h.narrow(1, P - 1, 1)).squeeze(1);  // [G,V]
    auto logits = last_logits.repeat_interleave(n, 0).to(torch::kFloat32);  // [N,V]

    std::vector<uint64_t> streams(N);
    for (int64_t i = 0; i < N; ++i) {
      const int64_t g = i / n;
      const int64_t prompt_stream = params.prompt_streams.empty() ? g : params.prompt_streams[g];
      streams[i] = SequenceStream(params.seed, prompt_stream, i % n);
    }
    std::vector<std::vector<int64_t>> tokens(N);
    std::vector<std::vector<float>> logprobs(N);
    std::vector<bool> finished(N, false);
    std::vector<FinishReason> reasons(N, FinishReason::kLength);
    std::vector<torch::Tensor> step_logits;
    auto next_positions = torch::tensor(prompt_lengths, long_options).to(device)
                              .repeat_interleave(n).view({N, 1});
    int64_t alive = N;
    for (int64_t step = 0; step < M && alive > 0; ++step) {
      if (params.return_logits) step_logits.push_back(logits.to(torch::kCPU).clone());
      SampledTokens sampled = SampleNextTokens(logits.to(torch::kCPU), params, streams, step);
      auto sampled_logprobs = sampled.logprobs.to(torch::kFloat32).contiguous();
      auto token_acc = sampled.tokens.accessor<int64_t, 1>();
      auto logprob_acc = sampled_logprobs.accessor<float, 1>();
      for (int64_t i = 0; i < N; ++i) {
        if (finished[i]) continue;
        tokens[i].push_back(token_acc[i]);
        logprobs[i].push_back(logprob_acc[i]);
        const auto& stops = params.stop_token_ids;
        if (std::find(stops.begin(), stops.end(), token_acc[i]) != stops.end()) {
          finished[i] = true;
          reasons[i] = FinishReason::kStop;
          --alive;
        }
      }
      if (step + 1 == M || alive == 0) break;

      // Decode one token for every sequence (finished ones too: their outputs are dropped,
      // and keeping the batch fixed keeps the cache layout simple).
      auto h_step = model.Embed(sampled.tokens.to(device).view({N, 1}));
      auto [cos_s, sin_s] = model.rotary().Lookup(next_positions + step, dtype);
      for (int64_t l = 0; l < L; ++l) {
        DecoderLayerImpl& layer = model.layer(l);
        // q [N,1,H,D], k/v [N,1,K,D]
        auto qkv = layer.ProjectQkv(h_step, cos_s, sin_s, &fused[l]);
        auto q = qkv.q.reshape({G, n, K, rep, D}).permute({0, 2, 1, 3, 4});
        auto new_k = qkv.k.reshape({G, n, K, D}).permute({0, 2, 1, 3});  // [G,K,n,D]
        auto new_v = qkv.v.reshape({G, n, K, D}).permute({0, 2, 1, 3});
        caches[l].gen_k.select(2, step).copy_(new_k);
        caches[l].gen_v.select(2, step).copy_(new_v);
        auto attention = GroupedDecodeAttention(q, caches[l], prompt_bias, step + 1);
        h_step = layer.Finish(h_step, attention.permute({0, 2, 1, 3, 4}).reshape({N, 1, H * D}),
                              &fused[l]);
      }
      logits = model.Logits(h_step).squeeze(1).to(torch::kFloat32);
    }

    result.sequences.resize(N);
    for (int64_t i = 0; i < N; ++i) {
      auto& seq = result.sequences[i];
      seq.prompt_index = i / n;
      seq.tokens = std::move(tokens[i]);
      seq.logprobs = std::move(logprobs[i]);
      seq.finish = reasons[i];
      result.new_tokens += seq.tokens.size();
    }
    if (params.return_logits) {
      auto stacked = torch::stack(step_logits, 1);  // [N, steps, V]
      result.step_logits = stacked;
    }
  });
  HONE_RETURN_IF_ERROR(status);
  return result;
}

}  // namespace hone
