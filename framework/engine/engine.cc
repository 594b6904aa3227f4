#include "framework/engine/engine.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <thread>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/core/torch_status.h"

namespace hone {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

// Keys/values of one layer. Shapes: S slots (one live prompt each), K kv heads, P padded
// prompt length, C rows of capacity (<= max new tokens), W sample positions per slot (<= n),
// D head dim.
struct LayerCache {
  // [S,K,P+C*W,D]: per (slot, kv head), the prompt's P keys (shared by the slot's samples)
  // followed by the generated keys, time-major: generated token t of position w at row
  // P + t*W + w. The first P + steps*W rows form one contiguous block that one matrix
  // product reads.
  torch::Tensor k, v;
};

// Decode-step attention for one new token per sequence.
// q [S,K,W,rep,D] (S slots, W positions each); prompt_bias [S,1,1,P] (0 or -inf for left
// padding; undefined when no prompt is padded); `steps` = number of generated tokens now
// cached (including the current one). Returns [S,K,W,rep,D].
//
// One matrix product per (slot, kv head) for the scores and one for the weighted sum: the
// W queries of a slot against the prompt's keys (read once for the group) and against
// **all** W*steps generated keys of the slot, keeping the diagonal blocks (sample i
// against its own keys). That spends W times the (small) generated-part FLOPs to replace
// S*K*W matrix-vector products, whose per-call cost dominated decode time, by S*K larger
// products; and prompt and generated keys share one product, halving the calls again.
torch::Tensor GroupedDecodeAttention(const torch::Tensor& q, const LayerCache& cache, int64_t P,
                                     const torch::Tensor& prompt_bias, int64_t steps) {
  const int64_t S = q.size(0), K = q.size(1), W = q.size(2), rep = q.size(3), D = q.size(4);
  const int64_t T = P + steps * W;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  auto q_rows = q.reshape({S, K, W * rep, D});
  auto keys = cache.k.narrow(2, 0, T), values = cache.v.narrow(2, 0, T);
  auto all_scores = torch::matmul(q_rows, keys.transpose(-1, -2));  // [S,K,W*rep,T]
  auto prompt_scores = all_scores.narrow(-1, 0, P);
  if (prompt_bias.defined()) prompt_scores = prompt_scores + prompt_bias;
  auto gen_scores = all_scores.narrow(-1, P, steps * W)
                        .view({S, K, W, rep, steps, W})
                        .diagonal(0, 2, 5)              // [S,K,rep,steps,W]
                        .permute({0, 1, 4, 2, 3});      // [S,K,W,rep,steps]
  auto scores = torch::cat({prompt_scores.reshape({S, K, W, rep, P}), gen_scores}, -1) * scale;
  auto probs = torch::softmax(scores, -1);  // [S,K,W,rep,P+steps]
  // Spread each sample's weights over the prompt and its own block of generated values.
  auto spread = torch::zeros({S, K, W, rep, T}, probs.options());
  spread.narrow(-1, 0, P).copy_(probs.narrow(-1, 0, P));
  spread.narrow(-1, P, steps * W)
      .view({S, K, W, rep, steps, W})
      .diagonal(0, 2, 5)
      .copy_(probs.narrow(-1, P, steps).permute({0, 1, 3, 4, 2}));
  return torch::matmul(spread.view({S, K, W * rep, T}), values).view({S, K, W, rep, D});
}

// Attention of one new token per live row, for float32 caches on the CPU: each query
// scores only the keys it sees (its prompt's and its own generated ones), so the work
// follows the live rows exactly and no per-(slot, head) matrix product is dispatched.
// q and out [R,H,D]; k_cache/v_cache [S,K,rows,D] laid out as LayerCache (rows = P + C*W);
// row r sits at slot row_slot[r], sample position row_position[r]; prompt_valid[s] points
// at P flags (0 = left padding) or is null when no prompt is padded; `steps` generated
// tokens are cached (including the current one). A row's result depends on that row's
// data only, whatever the other rows. Compiled for AVX-512F, AVX2 and baseline x86-64,
// picked at run time.
__attribute__((always_inline)) inline float Dot(const float* a, const float* b, int64_t D) {
  float acc[16] = {};
  int64_t d = 0;
  for (; d + 16 <= D; d += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += a[d + j] * b[d + j];
  }
  float sum = 0;
  for (; d < D; ++d) sum += a[d] * b[d];
  for (int j = 0; j < 16; ++j) sum += acc[j];
  return sum;
}

__attribute__((always_inline)) inline void AddScaled(float* out, float weight, const float* v, int64_t D) {
  for (int64_t d = 0; d < D; ++d) out[d] += weight * v[d];
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void RowDecodeAttention(const float* q, float* out, const float* k_cache, const float* v_cache,
                        const int64_t* row_slot, const int64_t* row_position,
                        const int64_t* const* prompt_valid, int64_t R, int64_t H, int64_t K,
                        int64_t D, int64_t P, int64_t rows, int64_t W, int64_t steps, float scale,
                        float* scores) {
  const int64_t rep = H / K;
  for (int64_t r = 0; r < R; ++r) {
    const int64_t s = row_slot[r], w = row_position[r];
    const int64_t* valid = prompt_valid[s];
    for (int64_t h = 0; h < H; ++h) {
      const int64_t block = (s * K + h / rep) * rows * D;
      const float* keys = k_cache + block;
      const float* values = v_cache + block;
      const float* query = q + (r * H + h) * D;
      float best = -std::numeric_limits<float>::infinity();
      for (int64_t p = 0; p < P; ++p) {
        scores[p] = valid == nullptr || valid[p] ? Dot(query, keys + p * D, D) * scale : kMinusInf;
        best = std::max(best, scores[p]);
      }
      for (int64_t t = 0; t < steps; ++t) {
        scores[P + t] = Dot(query, keys + (P + t * W + w) * D, D) * scale;
        best = std::max(best, scores[P + t]);
      }
      float total = 0;
      for (int64_t i = 0; i < P + steps; ++i) {
        scores[i] = std::exp(scores[i] - best);
        total += scores[i];
      }
      const float inverse = 1.0f / total;
      float* o = out + (r * H + h) * D;
      for (int64_t d = 0; d < D; ++d) o[d] = 0;
      for (int64_t p = 0; p < P; ++p) {
        if (scores[p] != 0) AddScaled(o, scores[p] * inverse, values + p * D, D);
      }
      for (int64_t t = 0; t < steps; ++t) {
        AddScaled(o, scores[P + t] * inverse, values + (P + t * W + w) * D, D);
      }
    }
  }
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

// Sets OpenBLAS's own thread count (Debian's libtorch does not pass set_num_threads on)
// and returns the previous one; -1 when the library is not OpenBLAS.
int SetBlasThreads(int threads) {
  using GetFn = int (*)();
  using SetFn = void (*)(int);
  auto get = reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  auto set = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (get == nullptr || set == nullptr) return -1;
  const int previous = get();
  set(threads);
  return previous;
}

// Slot s holds prompt group `slot_group[s]` of the block; its sample position j holds row
// `position_row[s * width + j]` (g * n + sample) or -1 (finished, or padding).
struct DecodeLayout {
  int64_t slots = 0, width = 0, capacity = 0;
  std::vector<int64_t> slot_group;
  std::vector<int64_t> position_row;
};

// Generates prompts [first, first + count) of the request with its own prefill, caches and
// decode loop, writing sequences [first * n, (first + count) * n) of `out` and, when
// defined, rows of `step_logits` ([count * n, M, V], CPU). `P` is the request's padded
// prompt length. Only live sequences are decoded: a finished sequence leaves the batch at
// once, and the caches are re-laid out (slots of finished groups dropped, each slot's
// live samples packed to the front, width = most live samples in any slot) when they are
// full, and for the block attention also when that frees a quarter of the positions (see
// docs/generation.md).
void GenerateBlock(CausalLMImpl& model, const std::vector<FusedLayerWeights>& fused,
                   const std::vector<std::vector<int64_t>>& prompts, int64_t first,
                   int64_t count, int64_t P, const SamplingParams& params,
                   std::vector<GeneratedSequence>& out, torch::Tensor step_logits) {
  c10::InferenceMode inference;
  const ModelConfig& config = model.config();
  const auto param = model.parameters().front();
  const auto device = param.device();
  const auto dtype = param.scalar_type();
  const int64_t G = count, n = params.n, N = G * n, M = params.max_new_tokens;
  const int64_t K = config.num_key_value_heads, H = config.num_attention_heads;
  const int64_t D = config.head_dim, rep = H / K, L = config.num_hidden_layers;

  // Left-pad prompts so that every prompt's last token sits at column P-1.
  std::vector<int64_t> ids(G * P, 0), positions(G * P, 0), prompt_lengths(G);
  std::vector<int64_t> valid(G * P, 0);
  int64_t prompt_tokens = 0;
  for (int64_t g = 0; g < G; ++g) {
    const auto& prompt = prompts[first + g];
    const int64_t len = prompt.size(), pad = P - len;
    prompt_lengths[g] = len;
    for (int64_t t = 0; t < len; ++t) {
      ids[g * P + pad + t] = prompt[t];
      positions[g * P + pad + t] = t;
      valid[g * P + pad + t] = 1;
    }
    prompt_tokens += len;
  }
  auto long_options = torch::TensorOptions().dtype(torch::kInt64);
  auto ids_t = torch::tensor(ids, long_options).view({G, P}).to(device);
  auto pos_t = torch::tensor(positions, long_options).view({G, P}).to(device);
  auto valid_t = torch::tensor(valid, long_options).view({G, P}).to(torch::kBool).to(device);
  torch::Tensor prompt_bias;  // [S,1,1,P]; only needed when some prompt is left-padded
  if (prompt_tokens != G * P) {
    prompt_bias = torch::zeros({G, 1, 1, P}, torch::TensorOptions().dtype(dtype).device(device))
                      .masked_fill(valid_t.logical_not().view({G, 1, 1, P}), kMinusInf);
  }

  // Generated keys/values start with room for kInitialCapacity steps and double when full,
  // so that short generations never touch (page in) a max_new_tokens-sized cache.
  constexpr int64_t kInitialCapacity = 64;
  DecodeLayout layout;
  layout.slots = G;
  layout.width = n;
  layout.capacity = std::min(M, kInitialCapacity);
  for (int64_t g = 0; g < G; ++g) layout.slot_group.push_back(g);
  for (int64_t i = 0; i < N; ++i) layout.position_row.push_back(i);

  // Prefill: one pass per prompt, keeping every layer's keys and values.
  std::vector<LayerCache> caches(L);
  auto h = model.Embed(ids_t);
  auto [cos, sin] = model.rotary().Lookup(pos_t, dtype);
  auto cache_options = torch::TensorOptions().dtype(dtype).device(device);
  for (int64_t l = 0; l < L; ++l) {
    DecoderLayerImpl& layer = model.layer(l);
    auto qkv = layer.ProjectQkv(h, cos, sin, &fused[l]);
    h = layer.Finish(h, CausalAttention(qkv.q, qkv.k, qkv.v, valid_t), &fused[l]);
    caches[l].k = torch::empty({G, K, P + layout.capacity * n, D}, cache_options);
    caches[l].v = torch::empty({G, K, P + layout.capacity * n, D}, cache_options);
    caches[l].k.narrow(2, 0, P).copy_(qkv.k.permute({0, 2, 1, 3}));
    caches[l].v.narrow(2, 0, P).copy_(qkv.v.permute({0, 2, 1, 3}));
  }
  // float32 on the CPU: RowDecodeAttention on the live rows. Otherwise (other devices and
  // dtypes): GroupedDecodeAttention on the slot layout, live rows scattered into it.
  const bool row_kernel = device.is_cpu() && dtype == torch::kFloat32;
  auto last_logits = model.Logits(h.narrow(1, P - 1, 1)).squeeze(1);  // [G,V]
  auto logits = last_logits.repeat_interleave(n, 0).to(torch::kFloat32);  // [R,V], live rows

  std::vector<uint64_t> streams(N);
  for (int64_t i = 0; i < N; ++i) {
    const int64_t g = first + i / n;
    const int64_t prompt_stream = params.prompt_streams.empty() ? g : params.prompt_streams[g];
    streams[i] = SequenceStream(params.seed, prompt_stream, i % n);
  }
  // Live rows in position order (ascending row index), with their streams and positions.
  std::vector<int64_t> live(N);
  for (int64_t i = 0; i < N; ++i) live[i] = i;
  std::vector<uint64_t> live_streams = streams;
  torch::Tensor live_positions;  // [R] int64 position of each live row; undefined when dense

  // Moves the caches to a new layout: the slots still holding a live row, each with its
  // live rows packed to the front, `width` = the most live rows in a slot; `capacity`
  // rows of time. `steps` rows of generated keys/values are kept.
  auto relayout = [&](int64_t capacity, int64_t steps) {
    std::vector<int64_t> row_position(N, -1);
    for (size_t p = 0; p < layout.position_row.size(); ++p) {
      if (layout.position_row[p] >= 0) row_position[layout.position_row[p]] = p;
    }
    std::vector<std::vector<int64_t>> slot_rows;  // live rows of each kept slot
    std::vector<int64_t> kept_slots;
    int64_t width = 0;
    for (int64_t s = 0; s < layout.slots; ++s) {
      std::vector<int64_t> rows;
      for (int64_t j = 0; j < layout.width; ++j) {
        const int64_t row = layout.position_row[s * layout.width + j];
        if (row >= 0) rows.push_back(row);
      }
      if (rows.empty()) continue;
      width = std::max<int64_t>(width, rows.size());
      kept_slots.push_back(s);
      slot_rows.push_back(std::move(rows));
    }
    const int64_t slots = kept_slots.size();
    DecodeLayout next;
    next.slots = slots;
    next.width = width;
    next.capacity = capacity;
    std::vector<int64_t> source_slot, source_sample;  // old slot and position of each new one
    for (int64_t s = 0; s < slots; ++s) {
      next.slot_group.push_back(layout.slot_group[kept_slots[s]]);
      for (int64_t j = 0; j < width; ++j) {
        // Padding positions copy the slot's first live row: finite values, never read.
        const bool real = j < static_cast<int64_t>(slot_rows[s].size());
        const int64_t row = slot_rows[s][real ? j : 0];
        next.position_row.push_back(real ? row : -1);
        source_slot.push_back(kept_slots[s]);
        source_sample.push_back(row_position[row] % layout.width);
      }
    }
    auto slot_index = torch::tensor(kept_slots, long_options).to(device);
    auto gather_slot = torch::tensor(source_slot, long_options).to(device);
    auto gather_sample = torch::tensor(source_sample, long_options).to(device);
    using torch::indexing::Slice;
    for (auto& cache : caches) {
      for (torch::Tensor* kv : {&cache.k, &cache.v}) {
        auto moved = torch::empty({slots, K, P + capacity * width, D}, cache_options);
        auto prompt = kv->narrow(2, 0, P);
        moved.narrow(2, 0, P).copy_(slots == layout.slots ? prompt : prompt.index_select(0, slot_index));
        if (steps > 0) {
          // [slots*width, K, steps, D]: the advanced indices go first.
          auto kept = kv->narrow(2, P, steps * layout.width)
                          .view({layout.slots, K, steps, layout.width, D})
                          .index({gather_slot, Slice(), Slice(), gather_sample});
          moved.narrow(2, P, steps * width)
              .view({slots, K, steps, width, D})
              .copy_(kept.view({slots, width, K, steps, D}).permute({0, 2, 3, 1, 4}));
        }
        *kv = moved;
      }
    }
    if (prompt_bias.defined() && slots != layout.slots) prompt_bias = prompt_bias.index_select(0, slot_index);
    layout = std::move(next);
  };

  const auto& stops = params.stop_token_ids;
  for (int64_t step = 0; step < M; ++step) {
    const int64_t R = live.size();
    auto cpu_logits = logits.to(torch::kCPU);
    if (step_logits.defined()) {
      step_logits.select(1, step).index_copy_(0, torch::tensor(live, long_options), cpu_logits);
    }
    SampledTokens sampled = SampleNextTokens(cpu_logits, params, live_streams, step);
    auto sampled_logprobs = sampled.logprobs.to(torch::kFloat32).contiguous();
    auto token_acc = sampled.tokens.accessor<int64_t, 1>();
    auto logprob_acc = sampled_logprobs.accessor<float, 1>();
    std::vector<int64_t> keep;  // indices into `live` of rows that go on
    keep.reserve(R);
    for (int64_t r = 0; r < R; ++r) {
      auto& seq = out[first * n + live[r]];
      seq.tokens.push_back(token_acc[r]);
      seq.logprobs.push_back(logprob_acc[r]);
      if (std::find(stops.begin(), stops.end(), token_acc[r]) != stops.end()) {
        seq.finish = FinishReason::kStop;
      } else {
        keep.push_back(r);
      }
    }
    if (step + 1 == M || keep.empty()) break;

    auto next_tokens = sampled.tokens;
    const bool finished_some = static_cast<int64_t>(keep.size()) < R;
    if (finished_some) {
      std::vector<int64_t> still(keep.size());
      std::vector<uint64_t> still_streams(keep.size());
      for (size_t k = 0; k < keep.size(); ++k) {
        still[k] = live[keep[k]];
        still_streams[k] = live_streams[keep[k]];
      }
      std::vector<int64_t> alive(N, 0);
      for (int64_t row : still) alive[row] = 1;
      for (auto& row : layout.position_row) {
        if (row >= 0 && !alive[row]) row = -1;
      }
      next_tokens = next_tokens.index_select(0, torch::tensor(keep, long_options));
      live = std::move(still);
      live_streams = std::move(still_streams);
    }
    // Re-lay out when the cache is full; for the block attention also when that frees a
    // quarter of the positions (the row kernel reads only live rows: re-laying out would
    // save memory, not time).
    bool compact = false;
    if (finished_some && !row_kernel) {
      int64_t empty_slots = 0, width = 0;
      for (int64_t s = 0; s < layout.slots; ++s) {
        int64_t rows = 0;
        for (int64_t j = 0; j < layout.width; ++j) rows += layout.position_row[s * layout.width + j] >= 0;
        empty_slots += rows == 0;
        width = std::max(width, rows);
      }
      compact = 4 * (layout.slots - empty_slots) * width <= 3 * layout.slots * layout.width;
    }
    if (step >= layout.capacity) {
      relayout(std::min(M, 2 * layout.capacity), step);
    } else if (compact) {
      relayout(layout.capacity, step);
    }
    const int64_t S = layout.slots, W = layout.width, Rn = live.size();
    const bool dense = Rn == S * W;
    std::vector<int64_t> row_slot, row_in_slot;
    std::vector<const int64_t*> slot_valid;
    if (row_kernel) {
      std::vector<int64_t> row_position(N, -1);
      for (int64_t p = 0; p < S * W; ++p) {
        if (layout.position_row[p] >= 0) row_position[layout.position_row[p]] = p;
      }
      for (int64_t row : live) {
        row_slot.push_back(row_position[row] / W);
        row_in_slot.push_back(row_position[row] % W);
      }
      for (int64_t s = 0; s < S; ++s) {
        slot_valid.push_back(prompt_bias.defined() ? valid.data() + layout.slot_group[s] * P : nullptr);
      }
    } else if (finished_some || !dense) {
      std::vector<int64_t> row_position(N, -1);
      for (int64_t p = 0; p < S * W; ++p) {
        if (layout.position_row[p] >= 0) row_position[layout.position_row[p]] = p;
      }
      std::vector<int64_t> live_pos(Rn);
      for (int64_t r = 0; r < Rn; ++r) live_pos[r] = row_position[live[r]];
      live_positions = dense ? torch::Tensor() : torch::tensor(live_pos, long_options).to(device);
    }
    std::vector<int64_t> next_position(Rn);
    for (int64_t r = 0; r < Rn; ++r) next_position[r] = prompt_lengths[live[r] / n] + step;

    // Decode one token for every live sequence. Projections, MLP and logits run on the Rn
    // live rows; so does the row kernel's attention, while the block attention runs on the
    // slot layout with the live rows scattered into it.
    auto h_step = model.Embed(next_tokens.to(device).view({Rn, 1}));
    auto [cos_s, sin_s] = model.rotary().Lookup(
        torch::tensor(next_position, long_options).to(device).view({Rn, 1}), dtype);
    auto scatter = [&](const torch::Tensor& x) {
      if (dense) return x;
      auto sizes = x.sizes().vec();
      sizes[0] = S * W;
      return torch::zeros(sizes, x.options()).index_copy_(0, live_positions, x);
    };
    std::vector<float> scores(row_kernel ? P + step + 1 : 0);
    for (int64_t l = 0; l < L && row_kernel; ++l) {
      DecoderLayerImpl& layer = model.layer(l);
      auto qkv = layer.ProjectQkv(h_step, cos_s, sin_s, &fused[l]);
      auto q = qkv.q.reshape({Rn, H, D}).contiguous();
      auto new_k = qkv.k.reshape({Rn, K, D}).contiguous();
      auto new_v = qkv.v.reshape({Rn, K, D}).contiguous();
      const int64_t rows = caches[l].k.size(2);
      float* k_cache = caches[l].k.data_ptr<float>();
      float* v_cache = caches[l].v.data_ptr<float>();
      for (int64_t r = 0; r < Rn; ++r) {
        for (int64_t k = 0; k < K; ++k) {
          const int64_t at = ((row_slot[r] * K + k) * rows + P + step * W + row_in_slot[r]) * D;
          std::copy_n(new_k.data_ptr<float>() + (r * K + k) * D, D, k_cache + at);
          std::copy_n(new_v.data_ptr<float>() + (r * K + k) * D, D, v_cache + at);
        }
      }
      auto attention = torch::empty({Rn, 1, H * D}, q.options());
      RowDecodeAttention(q.data_ptr<float>(), attention.data_ptr<float>(), k_cache, v_cache,
                         row_slot.data(), row_in_slot.data(), slot_valid.data(), Rn, H, K, D, P,
                         rows, W, step + 1, static_cast<float>(1.0 / std::sqrt(static_cast<double>(D))),
                         scores.data());
      h_step = layer.Finish(h_step, attention, &fused[l]);
    }
    for (int64_t l = 0; l < L && !row_kernel; ++l) {
      DecoderLayerImpl& layer = model.layer(l);
      // q [Rn,1,H,D], k/v [Rn,1,K,D]
      auto qkv = layer.ProjectQkv(h_step, cos_s, sin_s, &fused[l]);
      auto q = scatter(qkv.q).reshape({S, W, K, rep, D}).permute({0, 2, 1, 3, 4});
      auto new_k = scatter(qkv.k).reshape({S, W, K, D}).permute({0, 2, 1, 3});  // [S,K,W,D]
      auto new_v = scatter(qkv.v).reshape({S, W, K, D}).permute({0, 2, 1, 3});
      caches[l].k.narrow(2, P + step * W, W).copy_(new_k);
      caches[l].v.narrow(2, P + step * W, W).copy_(new_v);
      auto attention = GroupedDecodeAttention(q, caches[l], P, prompt_bias, step + 1)
                           .permute({0, 2, 1, 3, 4}).reshape({S * W, 1, H * D});
      if (!dense) attention = attention.index_select(0, live_positions);
      h_step = layer.Finish(h_step, attention, &fused[l]);
    }
    logits = model.Logits(h_step).squeeze(1).to(torch::kFloat32);
  }
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
    const int64_t G = prompts.size(), n = params.n, N = G * n, M = params.max_new_tokens;
    const int64_t L = model.config().num_hidden_layers;
    int64_t P = 0;
    for (const auto& p : prompts) {
      P = std::max<int64_t>(P, p.size());
      result.prompt_tokens += p.size();
    }
    std::vector<FusedLayerWeights> fused(L);
    for (int64_t l = 0; l < L; ++l) fused[l] = model.layer(l).Fuse();
    result.sequences.resize(N);
    for (int64_t i = 0; i < N; ++i) result.sequences[i].prompt_index = i / n;
    torch::Tensor step_logits;
    if (params.return_logits) step_logits = torch::zeros({N, M, model.config().vocab_size});

    // Groups are independent: with T intra-op threads, T blocks of groups run at once, one
    // thread each (the caller's and T-1 std::threads), with torch's intra-op threads and
    // OpenBLAS's held to one meanwhile and restored after. (An at::parallel_for over the
    // blocks measured far slower on a loaded machine: the OpenMP team's spin-waiting.)
    const int threads = at::get_num_threads();
    const int64_t blocks = std::min<int64_t>(threads, G);
    auto run_block = [&](int64_t b) {
      const int64_t first = b * G / blocks, last = (b + 1) * G / blocks;
      GenerateBlock(model, fused, prompts, first, last - first, P, params, result.sequences,
                    step_logits.defined() ? step_logits.narrow(0, first * n, (last - first) * n)
                                          : torch::Tensor());
    };
    if (blocks <= 1) {
      run_block(0);
    } else {
      const int blas_threads = SetBlasThreads(1);
      at::set_num_threads(1);
      std::vector<std::exception_ptr> errors(blocks);
      std::vector<std::thread> workers;
      for (int64_t b = 1; b < blocks; ++b) {
        workers.emplace_back([&, b] {
          try {
            at::set_num_threads(1);
            run_block(b);
          } catch (...) {
            errors[b] = std::current_exception();
          }
        });
      }
      try {
        run_block(0);
      } catch (...) {
        errors[0] = std::current_exception();
      }
      for (auto& worker : workers) worker.join();
      at::set_num_threads(threads);
      if (blas_threads > 0) SetBlasThreads(blas_threads);
      for (auto& error : errors) {
        if (error) std::rethrow_exception(error);
      }
    }

    size_t longest = 0;
    for (const auto& seq : result.sequences) {
      result.new_tokens += seq.tokens.size();
      longest = std::max(longest, seq.tokens.size());
    }
    if (step_logits.defined()) result.step_logits = step_logits.narrow(1, 0, longest);
  });
  HONE_RETURN_IF_ERROR(status);
  return result;
}

}  // namespace hone
