// Fuzz target: a Hugging Face config.json (framework/model/model_config.h,
// ParseModelConfig). A config that parses must write (ModelConfigToJson) to JSON that
// parses to the same config, and its parameter count must be computable (no overflow).
#include <string>

#include "framework/model/model_config.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// Every field config.json carries (not tokenizer_vocab_size, which comes from elsewhere).
bool SameConfig(const hone::ModelConfig& a, const hone::ModelConfig& b) {
  const hone::RopeScaling& x = a.rope_scaling;
  const hone::RopeScaling& y = b.rope_scaling;
  return a.model_type == b.model_type && a.vocab_size == b.vocab_size &&
         a.hidden_size == b.hidden_size && a.intermediate_size == b.intermediate_size &&
         a.num_hidden_layers == b.num_hidden_layers &&
         a.num_attention_heads == b.num_attention_heads &&
         a.num_key_value_heads == b.num_key_value_heads && a.head_dim == b.head_dim &&
         a.max_position_embeddings == b.max_position_embeddings &&
         a.rms_norm_eps == b.rms_norm_eps && a.rope_theta == b.rope_theta &&
         x.rope_type == y.rope_type && (x.rope_type == "default" || x.factor == y.factor) &&
         (x.rope_type != "llama3" ||
          (x.low_freq_factor == y.low_freq_factor && x.high_freq_factor == y.high_freq_factor &&
           x.original_max_position_embeddings == y.original_max_position_embeddings)) &&
         a.tie_word_embeddings == b.tie_word_embeddings && a.attention_bias == b.attention_bias &&
         a.qk_norm == b.qk_norm && a.initializer_range == b.initializer_range &&
         a.bos_token_id == b.bos_token_id && a.eos_token_ids == b.eos_token_ids &&
         a.torch_dtype == b.torch_dtype;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(hone::fuzz::AsView(data, size));
  absl::StatusOr<hone::ModelConfig> config = hone::ParseModelConfig(text, "fuzz/config.json");
  if (!config.ok()) {
    HONE_FUZZ_CHECK(config.status().message().find("fuzz/config.json") != std::string::npos,
                    "the error names the file: " + config.status().ToString());
    return 0;
  }
  (void)config->NumParameters();
  (void)config->UsableVocabSize();
  const std::string written = hone::ModelConfigToJson(*config);
  absl::StatusOr<hone::ModelConfig> reread = hone::ParseModelConfig(written, "written");
  HONE_FUZZ_CHECK(reread.ok(), reread.status().ToString() + "\n" + written);
  HONE_FUZZ_CHECK(SameConfig(*config, *reread), "config.json written back reads differently:\n" + written);
  return 0;
}
