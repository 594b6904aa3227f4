#include "framework/model/model_config.h"

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/core/json_depth.h"

namespace hone {
namespace {

using json = nlohmann::json;

struct FamilyTraits {
  const char* model_type;
  const char* architecture;
  bool default_attention_bias;
  bool qk_norm;
};

// One row per supported family: adding a family is adding a row (and its tensors, if any
// are new, in model.cc).
constexpr FamilyTraits kFamilies[] = {
    {"llama", "LlamaForCausalLM", false, false},
    {"qwen2", "Qwen2ForCausalLM", true, false},
    {"qwen3", "Qwen3ForCausalLM", false, true},
};

const FamilyTraits* FindFamily(const std::string& model_type) {
  for (const auto& family : kFamilies) {
    if (model_type == family.model_type) return &family;
  }
  return nullptr;
}

// Far deeper than any real config.json (a few levels).
constexpr int kMaxJsonDepth = 128;

// A JSON integer that fits int64_t. nlohmann converts any number to int64_t on request:
// a float outside its range (1e300) is undefined behaviour, an unsigned one above
// INT64_MAX wraps. Integer fields are checked with this before they are read.
bool IsInt64(const json& v) {
  return v.is_number_integer() &&
         (!v.is_number_unsigned() ||
          v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
}

// ModelConfig::NumParameters, or nullopt when it (or a partial sum) overflows int64_t.
std::optional<int64_t> CheckedNumParameters(const ModelConfig& c) {
  bool overflow = false;
  auto mul = [&overflow](int64_t a, int64_t b) {
    int64_t r = 0;
    overflow |= __builtin_mul_overflow(a, b, &r);
    return r;
  };
  auto add = [&overflow](int64_t a, int64_t b) {
    int64_t r = 0;
    overflow |= __builtin_add_overflow(a, b, &r);
    return r;
  };
  const int64_t d = c.hidden_size, q = mul(c.num_attention_heads, c.head_dim),
                kv = mul(c.num_key_value_heads, c.head_dim);
  int64_t attention = add(add(mul(d, q), mul(2, mul(d, kv))), mul(q, d));
  if (c.attention_bias) attention = add(attention, add(q, mul(2, kv)));
  if (c.qk_norm) attention = add(attention, mul(2, c.head_dim));
  const int64_t mlp = mul(3, mul(d, c.intermediate_size));
  const int64_t layer = add(add(attention, mlp), mul(2, d));
  const int64_t embeddings = mul(mul(c.vocab_size, d), c.tie_word_embeddings ? 1 : 2);
  const int64_t total = add(add(embeddings, mul(c.num_hidden_layers, layer)), d);
  if (overflow) return std::nullopt;
  return total;
}

}  // namespace

int64_t ModelConfig::NumParameters() const {
  const int64_t d = hidden_size, q = num_attention_heads * head_dim,
                kv = num_key_value_heads * head_dim;
  int64_t attention = d * q + 2 * d * kv + q * d;
  if (attention_bias) attention += q + 2 * kv;
  if (qk_norm) attention += 2 * head_dim;
  const int64_t mlp = 3 * d * intermediate_size;
  const int64_t layer = attention + mlp + 2 * d;
  const int64_t embeddings = vocab_size * d * (tie_word_embeddings ? 1 : 2);
  return embeddings + num_hidden_layers * layer + d;
}

absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text,
                                             const std::string& source) {
  if (JsonDeeperThan(json_text, kMaxJsonDepth)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, " is not valid JSON: nested deeper than ", kMaxJsonDepth, " levels"));
  }
  json j;
  try {
    j = json::parse(json_text);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, " is not valid JSON: ", e.what()));
  }
  if (!j.is_object()) return absl::InvalidArgumentError(source + " must be a JSON object");
  ModelConfig c;
  auto error = [&](const std::string& field, const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": field '", field, "' ", why));
  };
  try {
    c.model_type = j.value("model_type", std::string("llama"));
    const FamilyTraits* family = FindFamily(c.model_type);
    if (family == nullptr) {
      return error("model_type", absl::StrCat("is '", c.model_type,
                                              "'; supported: llama, qwen2, qwen3"));
    }
    for (const char* required : {"vocab_size", "hidden_size", "intermediate_size",
                                 "num_hidden_layers", "num_attention_heads"}) {
      if (!j.contains(required) || !IsInt64(j[required]) || j[required].get<int64_t>() <= 0) {
        return error(required, "must be a positive integer");
      }
    }
    c.vocab_size = j["vocab_size"];
    c.hidden_size = j["hidden_size"];
    c.intermediate_size = j["intermediate_size"];
    c.num_hidden_layers = j["num_hidden_layers"];
    c.num_attention_heads = j["num_attention_heads"];
    for (const char* optional_int : {"num_key_value_heads", "head_dim", "max_position_embeddings"}) {
      if (j.contains(optional_int) && !j[optional_int].is_null() && !IsInt64(j[optional_int])) {
        return error(optional_int, "must be an integer");
      }
    }
    c.num_key_value_heads = j.value("num_key_value_heads", c.num_attention_heads);
    if (j.contains("head_dim") && !j["head_dim"].is_null()) {
      c.head_dim = j["head_dim"];
    } else {
      if (c.hidden_size % c.num_attention_heads != 0) {
        return error("num_attention_heads", "must divide hidden_size when head_dim is not set");
      }
      c.head_dim = c.hidden_size / c.num_attention_heads;
    }
    if (c.num_key_value_heads <= 0 || c.num_attention_heads % c.num_key_value_heads != 0) {
      return error("num_key_value_heads", "must be positive and divide num_attention_heads");
    }
    if (c.head_dim <= 0 || c.head_dim % 2 != 0) return error("head_dim", "must be positive and even");
    // The MLP is SwiGLU: another activation would load, run and give wrong outputs, and
    // writing the config back would silently turn it into silu.
    if (j.contains("hidden_act") && !(j["hidden_act"].is_string() && j["hidden_act"] == "silu")) {
      return error("hidden_act", absl::StrCat("is ", j["hidden_act"].dump(), "; supported: \"silu\" (the MLP is SwiGLU)"));
    }
    c.max_position_embeddings = j.value("max_position_embeddings", int64_t{2048});
    if (c.max_position_embeddings <= 0) return error("max_position_embeddings", "must be a positive integer");
    c.rms_norm_eps = j.value("rms_norm_eps", 1e-6);
    c.rope_theta = j.value("rope_theta", 10000.0);
    c.tie_word_embeddings = j.value("tie_word_embeddings", false);
    c.attention_bias = family->default_attention_bias || j.value("attention_bias", false);
    c.qk_norm = family->qk_norm;
    c.initializer_range = j.value("initializer_range", 0.02);
    c.torch_dtype = j.value("torch_dtype", std::string("float32"));
    if (j.contains("bos_token_id") && IsInt64(j["bos_token_id"])) {
      c.bos_token_id = j["bos_token_id"].get<int64_t>();
    }
    if (j.contains("eos_token_id")) {
      const json& eos = j["eos_token_id"];
      if (eos.is_number_integer()) {
        if (!IsInt64(eos)) return error("eos_token_id", "must be an integer or a list of integers");
        c.eos_token_ids.push_back(eos.get<int64_t>());
      }
      if (eos.is_array()) {
        for (const auto& id : eos) {
          if (!IsInt64(id)) return error("eos_token_id", "must be an integer or a list of integers");
          c.eos_token_ids.push_back(id.get<int64_t>());
        }
      }
    }
    if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
      const json& rs = j["rope_scaling"];
      c.rope_scaling.rope_type = rs.value("rope_type", rs.value("type", std::string("default")));
      c.rope_scaling.factor = rs.value("factor", 1.0);
      c.rope_scaling.low_freq_factor = rs.value("low_freq_factor", 1.0);
      c.rope_scaling.high_freq_factor = rs.value("high_freq_factor", 4.0);
      if (rs.contains("original_max_position_embeddings") &&
          !IsInt64(rs["original_max_position_embeddings"])) {
        return error("rope_scaling.original_max_position_embeddings", "must be an integer");
      }
      c.rope_scaling.original_max_position_embeddings =
          rs.value("original_max_position_embeddings", int64_t{8192});
      const std::string& type = c.rope_scaling.rope_type;
      if (type != "default" && type != "linear" && type != "llama3") {
        return error("rope_scaling.rope_type",
                     absl::StrCat("is '", type, "'; supported: default, linear, llama3"));
      }
      if (c.rope_scaling.factor <= 0) return error("rope_scaling.factor", "must be positive");
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
  // Absurd shapes would overflow every size computed from them (NumParameters, tensor
  // sizes); no real model comes near.
  if (!CheckedNumParameters(c)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": shapes too large: the parameter count overflows int64"));
  }
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& config_json_path) {
  std::ifstream in(config_json_path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", config_json_path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseModelConfig(text.str(), config_json_path);
}

std::string ModelConfigToJson(const ModelConfig& c) {
  const FamilyTraits* family = FindFamily(c.model_type);
  json j;
  j["architectures"] = {family ? family->architecture : "LlamaForCausalLM"};
  j["model_type"] = c.model_type;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["hidden_act"] = "silu";
  j["initializer_range"] = c.initializer_range;
  j["torch_dtype"] = c.torch_dtype;
  // Families whose attention has no bias by default (llama, qwen3) read attention_bias
  // from config.json, so it must be written for them; qwen2 always has one.
  if (family == nullptr || !family->default_attention_bias) j["attention_bias"] = c.attention_bias;
  if (c.rope_scaling.rope_type != "default") {
    j["rope_scaling"] = {{"rope_type", c.rope_scaling.rope_type},
                         {"factor", c.rope_scaling.factor}};
    if (c.rope_scaling.rope_type == "llama3") {
      j["rope_scaling"]["low_freq_factor"] = c.rope_scaling.low_freq_factor;
      j["rope_scaling"]["high_freq_factor"] = c.rope_scaling.high_freq_factor;
      j["rope_scaling"]["original_max_position_embeddings"] =
          c.rope_scaling.original_max_position_embeddings;
    }
  }
  if (c.bos_token_id) j["bos_token_id"] = *c.bos_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  if (c.eos_token_ids.size() > 1) j["eos_token_id"] = c.eos_token_ids;
  return j.dump(2) + "\n";
}

}  // namespace hone
