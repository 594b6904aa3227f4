// A policy on disk in Hugging Face layout: config.json + model.safetensors + tokenizer.json.
// What `hone generate`, `hone eval` and the trainer load, and what checkpoints write.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/model/model.h"
#include "framework/model/tokenizer.h"

namespace hone {

struct Pretrained {
  CausalLM model{nullptr};
  std::unique_ptr<Tokenizer> tokenizer;
  std::string tokenizer_json;       // verbatim, so that saving copies it unchanged
  // tokenizer_config.json verbatim when the directory has one (the model's chat_template,
  // data.prompt_template=chat); empty otherwise. Checkpoints carry it on.
  std::string tokenizer_config_json;
  std::vector<int64_t> stop_token_ids;  // config eos ids + the tokenizer's end-of-turn tokens
};

// Loads model and tokenizer from `dir`. Errors name the file that is missing or broken.
absl::StatusOr<Pretrained> LoadPretrained(const std::string& dir,
                                          torch::Dtype dtype = torch::kFloat32);

// Writes `model` and `tokenizer_json` to `dir` (HF layout). The directory is first written
// under `dir`.tmp and renamed, so `dir` is either absent, the old one, or complete.
absl::Status SavePretrained(CausalLM& model, const std::string& tokenizer_json,
                            const std::string& dir, const std::string& save_dtype = "F32",
                            const std::string& tokenizer_config_json = "");

// Writes tokenizer.json and, when `tokenizer_config_json` is not empty,
// tokenizer_config.json into `dir` (which exists). Errors name the file.
absl::Status WriteTokenizerFiles(const std::string& tokenizer_json, const std::string& tokenizer_config_json,
                                 const std::string& dir);

// End-of-sequence ids: the config's eos_token_id(s) plus whichever of the usual end tokens
// (<|endoftext|>, <|im_end|>, <|eot_id|>, </s>) the tokenizer knows.
std::vector<int64_t> StopTokenIds(const ModelConfig& config, const Tokenizer& tokenizer);

}  // namespace hone
