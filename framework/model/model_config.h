// The Hugging Face `config.json` of a decoder-only transformer, torch-free so that
// CPU-only roles and tools can read model shapes without linking libtorch.
//
// Covered families (model_type): "llama" (Llama 2/3, incl. llama3 rope scaling),
// "qwen2" (Qwen2/Qwen2.5: bias on q/k/v), "qwen3" (per-head RMSNorm on q and k).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hone {

struct RopeScaling {
  std::string rope_type = "default";  // "default", "linear" or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
};

struct ModelConfig {
  std::string model_type = "llama";
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // grouped-query attention when < num_attention_heads
  int64_t head_dim = 0;             // hidden_size / num_attention_heads unless set
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v (and o for llama's attention_bias) carry a bias
  bool qk_norm = false;         // qwen3
  double initializer_range = 0.02;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;
  std::string torch_dtype = "float32";
  // Not part of config.json: how many leading ids the tokenizer can decode, when the
  // embedding is padded past it (Qwen2.5's config says 151936 rows, its tokenizer has
  // 151665 ids). Sampling and the trainer's log-probs give ids at or above it probability
  // 0, so a padded row is never sampled. 0 = all vocab_size ids. LoadPretrained sets it
  // from the tokenizer; a copy of the config (the reference policy, the rollout's model)
  // carries it along.
  int64_t tokenizer_vocab_size = 0;

  int64_t NumParameters() const;
  // The ids that may be sampled and scored: [0, UsableVocabSize()).
  int64_t UsableVocabSize() const {
    return tokenizer_vocab_size > 0 && tokenizer_vocab_size < vocab_size ? tokenizer_vocab_size : vocab_size;
  }
};

// Parses config.json text; `source` names the file in errors. Rejects missing or
// inconsistent shapes (heads not dividing hidden size, kv heads not dividing heads) and
// unsupported families or rope scaling types, naming the field.
absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text,
                                             const std::string& source);
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& config_json_path);

// config.json text that Hugging Face transformers loads (architectures, model_type, ...).
std::string ModelConfigToJson(const ModelConfig& config);

}  // namespace hone
