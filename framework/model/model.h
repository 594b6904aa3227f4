// The policy model family: a decoder-only transformer (Llama / Qwen2 / Qwen3) built from a
// Hugging Face config.json, with HF tensor names, plus loading and saving in HF layout.
//
// Shapes in comments: B batch, T time, C hidden size, H query heads, K key/value heads,
// D head dim, V vocabulary.
//
// Attention is written from matmul + softmax (Debian's libtorch 1.13 has no SDPA) and the
// layer exposes its two halves (QKV projection, then output + MLP) so that the generation
// engine can run its own cache-aware attention between them with the same weights.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "framework/model/model_config.h"

namespace hone {

// cos/sin tables for rotary position embeddings (HF's rotate_half convention), honouring
// rope_theta and rope_scaling (linear, llama3).
class RotaryTable {
 public:
  RotaryTable(const ModelConfig& config, int64_t max_positions);
  // positions [B,T] (int64) -> cos, sin [B,T,1,D] in `dtype`.
  std::pair<torch::Tensor, torch::Tensor> Lookup(const torch::Tensor& positions,
                                                 torch::Dtype dtype) const;
  int64_t max_positions() const { return cos_.size(0); }

 private:
  torch::Tensor cos_, sin_;  // [max_positions, D] float32
};

// Inverse frequencies [D/2] in float64 after rope scaling (exposed for reference tests).
torch::Tensor RopeInverseFrequencies(const ModelConfig& config);

// x [B,T,H,D], cos/sin [B,T,1,D] -> x rotated.
torch::Tensor ApplyRotary(const torch::Tensor& x, const torch::Tensor& cos,
                          const torch::Tensor& sin);

struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // normalises the last dim, in float32
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const ModelConfig& config);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // qwen3 only
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // SwiGLU: down(silu(gate(x)) * up(x))
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

// Inference-only copies of a layer's projections concatenated along the output dim, so
// that q/k/v (and gate/up) are one matrix product each. Made by DecoderLayerImpl::Fuse();
// stale once the layer's weights change.
struct FusedLayerWeights {
  torch::Tensor qkv_weight;      // [(H+2K)*D, C]
  torch::Tensor qkv_bias;        // undefined without attention bias
  torch::Tensor gate_up_weight;  // [2F, C]
};

struct DecoderLayerImpl : torch::nn::Module {
  explicit DecoderLayerImpl(const ModelConfig& config);

  struct Qkv {
    torch::Tensor q;  // [B,T,H,D], rotary applied
    torch::Tensor k;  // [B,T,K,D], rotary applied
    torch::Tensor v;  // [B,T,K,D]
  };
  // First half: pre-norm of the residual stream h [B,T,C], projections, q/k norm, rotary.
  // With `fused`, the same values come from fewer, larger matrix products.
  Qkv ProjectQkv(const torch::Tensor& h, const torch::Tensor& cos, const torch::Tensor& sin,
                 const FusedLayerWeights* fused = nullptr);
  // Second half: h + o_proj(attention [B,T,H*D]), then + MLP(post-norm). Returns [B,T,C].
  torch::Tensor Finish(const torch::Tensor& h, const torch::Tensor& attention,
                       const FusedLayerWeights* fused = nullptr);
  FusedLayerWeights Fuse();

  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  int64_t num_heads, num_kv_heads, head_dim;
};
TORCH_MODULE(DecoderLayer);

// Causal self-attention over a whole (padded) sequence.
// q [B,T,H,D], k/v [B,T,K,D], key_valid [B,T] bool (false = padding) -> [B,T,H*D].
// A query may attend to keys at or before its own index that are valid (and always to
// itself, so that padded rows stay finite).
torch::Tensor CausalAttention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, const torch::Tensor& key_valid);

struct DecoderStackImpl : torch::nn::Module {  // HF's "model." prefix
  explicit DecoderStackImpl(const ModelConfig& config);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers;
  RMSNorm norm{nullptr};
};
TORCH_MODULE(DecoderStack);

class CausalLMImpl : public torch::nn::Module {
 public:
  explicit CausalLMImpl(const ModelConfig& config);

  // ids [B,T] int64, positions [B,T] int64, key_valid [B,T] bool -> logits [B,T,V]
  // (float32 for half-precision models, else the model's dtype).
  torch::Tensor Forward(const torch::Tensor& ids, const torch::Tensor& positions,
                        const torch::Tensor& key_valid);
  // Convenience: right-padded or unpadded batch, positions 0..T-1, all keys valid.
  torch::Tensor Forward(const torch::Tensor& ids);

  // The final hidden states [B,T,C] (after the final norm, in the model's dtype): what
  // the LM head multiplies. Forward(...) == Upcast(FinalHidden(...) @ OutputWeight()^T).
  // Lets a caller project only the positions it needs, in chunks (the trainer's
  // log-probs, workers/trainer/token_logprobs.h), instead of holding [B,T,V] logits.
  torch::Tensor FinalHidden(const torch::Tensor& ids, const torch::Tensor& positions,
                            const torch::Tensor& key_valid);
  // The LM head's weight [V,C]: lm_head.weight, or the token embedding when
  // tie_word_embeddings (the same tensor, so gradients reach the embedding).
  torch::Tensor OutputWeight();

  torch::Tensor Embed(const torch::Tensor& ids);         // [B,T] -> [B,T,C]
  torch::Tensor Logits(const torch::Tensor& hidden);     // final norm + lm_head
  DecoderLayerImpl& layer(int64_t i);
  const RotaryTable& rotary() const { return *rotary_; }
  const ModelConfig& config() const { return config_; }
  // Sets config().tokenizer_vocab_size: ids at or above it are never sampled or scored.
  void set_tokenizer_vocab_size(int64_t size) { config_.tokenizer_vocab_size = size; }

 private:
  ModelConfig config_;
  DecoderStack model_{nullptr};
  torch::nn::Linear lm_head_{nullptr};  // absent when embeddings are tied
  std::unique_ptr<RotaryTable> rotary_;
};
TORCH_MODULE(CausalLM);

// A model with HF-style random initialisation (normal(0, initializer_range), norms 1,
// biases 0), deterministic for `seed`.
CausalLM InitModel(const ModelConfig& config, uint64_t seed);

// Loads config.json and model.safetensors (or a sharded index) from an HF model directory.
// Every tensor the architecture needs must be present with the right shape; unexpected
// tensors are an error too (lm_head.weight is accepted and ignored for tied models).
// Parameters are converted to `dtype`.
absl::StatusOr<CausalLM> LoadModel(const std::string& dir,
                                   torch::Dtype dtype = torch::kFloat32);

// Writes config.json and model.safetensors (HF names, `save_dtype` "F32" / "BF16" / "F16")
// into `dir`, creating it. Files are written atomically, so an interrupted save never
// leaves a half-written file under the final name.
absl::Status SaveModel(CausalLM& model, const std::string& dir,
                       const std::string& save_dtype = "F32");

}  // namespace hone
