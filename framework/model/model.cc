#include "framework/model/model.h"

#include <cmath>

namespace hone {

namespace {

// Half-precision activations are normalised and soft-maxed in float32 (as HF does);
// float32 and float64 stay as they are, so float64 reference runs stay float64.
torch::Tensor Upcast(const torch::Tensor& x) {
  const auto type = x.scalar_type();
  return (type == torch::kFloat16 || type == torch::kBFloat16) ? x.to(torch::kFloat32) : x;
}

}  // namespace

torch::Tensor RopeInverseFrequencies(const ModelConfig& config) {
  const int64_t dim = config.head_dim;
  auto exponents = torch::arange(0, dim, 2, torch::kFloat64) / static_cast<double>(dim);
  auto inv_freq = 1.0 / torch::pow(config.rope_theta, exponents);
  const RopeScaling& rs = config.rope_scaling;
  if (rs.rope_type == "linear") {
    inv_freq = inv_freq / rs.factor;
  } else if (rs.rope_type == "llama3") {
    // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, and the band in
    // between interpolated smoothly (transformers' _compute_llama3_parameters).
    const double old_len = static_cast<double>(rs.original_max_position_embeddings);
    const double low_wavelen = old_len / rs.low_freq_factor;
    const double high_wavelen = old_len / rs.high_freq_factor;
    auto accessor = inv_freq.accessor<double, 1>();
    for (int64_t i = 0; i < inv_freq.size(0); ++i) {
      const double freq = accessor[i];
      const double wavelen = 2.0 * M_PI / freq;
      if (wavelen < high_wavelen) continue;
      if (wavelen > low_wavelen) {
        accessor[i] = freq / rs.factor;
      } else {
        const double smooth = (old_len / wavelen - rs.low_freq_factor) /
                              (rs.high_freq_factor - rs.low_freq_factor);
        accessor[i] = (1.0 - smooth) * freq / rs.factor + smooth * freq;
      }
    }
  }
  return inv_freq;
}

RotaryTable::RotaryTable(const ModelConfig& config, int64_t max_positions) {
  torch::NoGradGuard no_grad;
  auto inv_freq = RopeInverseFrequencies(config);
  auto positions = torch::arange(max_positions, torch::kFloat64);
  auto freqs = torch::outer(positions, inv_freq);  // [P, D/2]
  auto angles = torch::cat({freqs, freqs}, -1);    // [P, D]
  cos_ = torch::cos(angles).to(torch::kFloat32);
  sin_ = torch::sin(angles).to(torch::kFloat32);
}

std::pair<torch::Tensor, torch::Tensor> RotaryTable::Lookup(const torch::Tensor& positions,
                                                            torch::Dtype dtype) const {
  auto flat = positions.reshape({-1});
  auto shape = positions.sizes().vec();
  shape.push_back(1);
  shape.push_back(cos_.size(1));
  auto cos = cos_.to(positions.device()).index_select(0, flat).view(shape).to(dtype);
  auto sin = sin_.to(positions.device()).index_select(0, flat).view(shape).to(dtype);
  return {cos, sin};
}

torch::Tensor ApplyRotary(const torch::Tensor& x, const torch::Tensor& cos,
                          const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half);
  auto x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({-x2, x1}, -1);
  return x * cos + rotated * sin;
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto x32 = Upcast(x);
  auto normed = x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

AttentionImpl::AttentionImpl(const ModelConfig& c) {
  const int64_t q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim;
  // Llama's attention_bias puts a bias on o_proj too; Qwen2 biases q/k/v only.
  const bool o_bias = c.attention_bias && c.model_type == "llama";
  q_proj = register_module(
      "q_proj", torch::nn::Linear(torch::nn::LinearOptions(c.hidden_size, q_dim).bias(c.attention_bias)));
  k_proj = register_module(
      "k_proj", torch::nn::Linear(torch::nn::LinearOptions(c.hidden_size, kv_dim).bias(c.attention_bias)));
  v_proj = register_module(
      "v_proj", torch::nn::Linear(torch::nn::LinearOptions(c.hidden_size, kv_dim).bias(c.attention_bias)));
  o_proj = register_module(
      "o_proj", torch::nn::Linear(torch::nn::LinearOptions(q_dim, c.hidden_size).bias(o_bias)));
  if (c.qk_norm) {
    q_norm = register_module("q_norm", RMSNorm(c.head_dim, c.rms_norm_eps));
    k_norm = register_module("k_norm", RMSNorm(c.head_dim, c.rms_norm_eps));
  }
}

MlpImpl::MlpImpl(const ModelConfig& c) {
  auto linear = [](int64_t in, int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
  };
  gate_proj = register_module("gate_proj", linear(c.hidden_size, c.intermediate_size));
  up_proj = register_module("up_proj", linear(c.hidden_size, c.intermediate_size));
  down_proj = register_module("down_proj", linear(c.intermediate_size, c.hidden_size));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return down_proj->forward(torch::silu(gate_proj->forward(x)) * up_proj->forward(x));
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c)
    : num_heads(c.num_attention_heads), num_kv_heads(c.num_key_value_heads), head_dim(c.head_dim) {
  self_attn = register_module("self_attn", Attention(c));
  mlp = register_module("mlp", Mlp(c));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

DecoderLayerImpl::Qkv DecoderLayerImpl::ProjectQkv(const torch::Tensor& h,
                                                   const torch::Tensor& cos,
                                                   const torch::Tensor& sin,
                                                   const FusedLayerWeights* fused) {
  const int64_t batch = h.size(0), time = h.size(1);
  auto x = input_layernorm->forward(h);
  torch::Tensor q, k, v;
  if (fused != nullptr) {
    auto qkv = torch::nn::functional::linear(x, fused->qkv_weight, fused->qkv_bias)
                   .view({batch, time, num_heads + 2 * num_kv_heads, head_dim});
    if (self_attn->q_norm.is_empty()) {
      // Rotate q and k heads together: one set of element-wise ops instead of two.
      auto qk = ApplyRotary(qkv.narrow(2, 0, num_heads + num_kv_heads), cos, sin);
      return {qk.narrow(2, 0, num_heads), qk.narrow(2, num_heads, num_kv_heads),
              qkv.narrow(2, num_heads + num_kv_heads, num_kv_heads)};
    }
    q = qkv.narrow(2, 0, num_heads);
    k = qkv.narrow(2, num_heads, num_kv_heads);
    v = qkv.narrow(2, num_heads + num_kv_heads, num_kv_heads);
  } else {
    q = self_attn->q_proj->forward(x).view({batch, time, num_heads, head_dim});
    k = self_attn->k_proj->forward(x).view({batch, time, num_kv_heads, head_dim});
    v = self_attn->v_proj->forward(x).view({batch, time, num_kv_heads, head_dim});
  }
  if (!self_attn->q_norm.is_empty()) {
    q = self_attn->q_norm->forward(q);
    k = self_attn->k_norm->forward(k);
  }
  return {ApplyRotary(q, cos, sin), ApplyRotary(k, cos, sin), v};
}

torch::Tensor DecoderLayerImpl::Finish(const torch::Tensor& h, const torch::Tensor& attention,
                                       const FusedLayerWeights* fused) {
  auto after_attention = h + self_attn->o_proj->forward(attention);
  auto x = post_attention_layernorm->forward(after_attention);
  if (fused == nullptr) return after_attention + mlp->forward(x);
  auto gate_up = torch::nn::functional::linear(x, fused->gate_up_weight);
  const int64_t f = gate_up.size(-1) / 2;
  auto hidden = torch::silu(gate_up.narrow(-1, 0, f)) * gate_up.narrow(-1, f, f);
  return after_attention + mlp->down_proj->forward(hidden);
}

FusedLayerWeights DecoderLayerImpl::Fuse() {
  torch::NoGradGuard no_grad;
  FusedLayerWeights fused;
  fused.qkv_weight = torch::cat({self_attn->q_proj->weight, self_attn->k_proj->weight,
                                 self_attn->v_proj->weight});
  if (self_attn->q_proj->bias.defined()) {
    fused.qkv_bias = torch::cat({self_attn->q_proj->bias, self_attn->k_proj->bias,
                                 self_attn->v_proj->bias});
  }
  fused.gate_up_weight = torch::cat({mlp->gate_proj->weight, mlp->up_proj->weight});
  return fused;
}

torch::Tensor CausalAttention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, const torch::Tensor& key_valid) {
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), D = q.size(3), K = k.size(2);
  const int64_t rep = H / K;
  // Query heads h = kv * rep + r share key/value head kv (HF's repeat_kv order).
  auto qg = q.view({B, T, K, rep, D}).permute({0, 2, 3, 1, 4});  // [B,K,rep,T,D]
  auto kg = k.permute({0, 2, 1, 3}).unsqueeze(2);                 // [B,K,1,T,D]
  auto vg = v.permute({0, 2, 1, 3}).unsqueeze(2);                 // [B,K,1,T,D]
  auto scores = torch::matmul(qg, kg.transpose(-1, -2)) * (1.0 / std::sqrt(double(D)));
  auto options = torch::TensorOptions().dtype(torch::kBool).device(q.device());
  auto causal = torch::ones({T, T}, options).tril();                  // [T,T]
  auto diagonal = torch::eye(T, options);
  auto allowed = causal.unsqueeze(0) & (key_valid.unsqueeze(1) | diagonal.unsqueeze(0));
  scores = scores.masked_fill(allowed.logical_not().view({B, 1, 1, T, T}),
                              -std::numeric_limits<float>::infinity());
  auto probs = torch::softmax(Upcast(scores), -1).to(q.scalar_type());
  auto out = torch::matmul(probs, vg);  // [B,K,rep,T,D]
  return out.permute({0, 3, 1, 2, 4}).reshape({B, T, H * D});
}

DecoderStackImpl::DecoderStackImpl(const ModelConfig& c) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(DecoderLayer(c));
  register_module("layers", layers);
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

CausalLMImpl::CausalLMImpl(const ModelConfig& config) : config_(config) {
  model_ = register_module("model", DecoderStack(config));
  if (!config.tie_word_embeddings) {
    lm_head_ = register_module(
        "lm_head",
        torch::nn::Linear(torch::nn::LinearOptions(config.hidden_size, config.vocab_size).bias(false)));
  }
  rotary_ = std::make_unique<RotaryTable>(config, config.max_position_embeddings);
}

DecoderLayerImpl& CausalLMImpl::layer(int64_t i) {
  return *model_->layers[i]->as<DecoderLayerImpl>();
}

torch::Tensor CausalLMImpl::Embed(const torch::Tensor& ids) {
  return model_->embed_tokens->forward(ids);
}

torch::Tensor CausalLMImpl::OutputWeight() {
  return lm_head_.is_empty() ? model_->embed_tokens->weight : lm_head_->weight;
}

torch::Tensor CausalLMImpl::Logits(const torch::Tensor& hidden) {
  auto normed = model_->norm->forward(hidden);
  return Upcast(torch::matmul(normed, OutputWeight().t()));
}

torch::Tensor CausalLMImpl::FinalHidden(const torch::Tensor& ids, const torch::Tensor& positions,
                                        const torch::Tensor& key_valid) {
  auto h = Embed(ids);
  auto [cos, sin] = rotary_->Lookup(positions, h.scalar_type());
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    DecoderLayerImpl& block = layer(i);
    auto qkv = block.ProjectQkv(h, cos, sin);
    h = block.Finish(h, CausalAttention(qkv.q, qkv.k, qkv.v, key_valid));
  }
  return model_->norm->forward(h);
}

torch::Tensor CausalLMImpl::Forward(const torch::Tensor& ids, const torch::Tensor& positions,
                                    const torch::Tensor& key_valid) {
  return Upcast(torch::matmul(FinalHidden(ids, positions, key_valid), OutputWeight().t()));
}

torch::Tensor CausalLMImpl::Forward(const torch::Tensor& ids) {
  const int64_t B = ids.size(0), T = ids.size(1);
  auto positions = torch::arange(T, torch::TensorOptions().dtype(torch::kInt64).device(ids.device()))
                       .unsqueeze(0)
                       .expand({B, T});
  auto valid = torch::ones({B, T}, torch::TensorOptions().dtype(torch::kBool).device(ids.device()));
  return Forward(ids, positions, valid);
}

CausalLM InitModel(const ModelConfig& config, uint64_t seed) {
  torch::manual_seed(seed);
  CausalLM model(config);
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    if (name.find("norm.weight") != std::string::npos || name.find("layernorm") != std::string::npos) {
      p.fill_(1.0);
    } else if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0) {
      p.zero_();
    } else {
      p.normal_(0.0, config.initializer_range);
    }
  }
  return model;
}

}  // namespace hone
