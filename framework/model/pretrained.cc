#include "framework/model/pretrained.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"

namespace hone {

namespace fs = std::filesystem;

std::vector<int64_t> StopTokenIds(const ModelConfig& config, const Tokenizer& tokenizer) {
  std::vector<int64_t> ids = config.eos_token_ids;
  for (const char* token : {"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "</s>"}) {
    if (auto id = tokenizer.TokenToId(token)) ids.push_back(*id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

absl::StatusOr<Pretrained> LoadPretrained(const std::string& dir, torch::Dtype dtype) {
  if (!fs::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat("model directory '", dir, "' does not exist"));
  }
  Pretrained out;
  const std::string tokenizer_path = (fs::path(dir) / "tokenizer.json").string();
  std::ifstream in(tokenizer_path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(
        "model directory '", dir, "' has no tokenizer.json (copy the tokenizer next to the weights)"));
  }
  std::stringstream text;
  text << in.rdbuf();
  out.tokenizer_json = text.str();
  std::ifstream config_in(fs::path(dir) / "tokenizer_config.json", std::ios::binary);
  if (config_in) {
    std::stringstream config_text;
    config_text << config_in.rdbuf();
    out.tokenizer_config_json = config_text.str();
  }
  HONE_ASSIGN_OR_RETURN(out.tokenizer, TokenizerFromJson(out.tokenizer_json));
  HONE_ASSIGN_OR_RETURN(out.model, LoadModel(dir, dtype));
  out.stop_token_ids = StopTokenIds(out.model->config(), *out.tokenizer);
  if (out.tokenizer->VocabSize() > out.model->config().vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer in ", dir, " has ", out.tokenizer->VocabSize(),
        " tokens but the model's vocab_size is ", out.model->config().vocab_size));
  }
  out.model->set_tokenizer_vocab_size(out.tokenizer->VocabSize());
  return out;
}

absl::Status WriteTokenizerFiles(const std::string& tokenizer_json, const std::string& tokenizer_config_json,
                                 const std::string& dir) {
  for (const auto& [name, text] : {std::pair<const char*, const std::string*>{"tokenizer.json", &tokenizer_json},
                                   {"tokenizer_config.json", &tokenizer_config_json}}) {
    if (text->empty() && std::string(name) == "tokenizer_config.json") continue;
    const fs::path path = fs::path(dir) / name;
    std::ofstream out(path, std::ios::binary);
    out << *text;
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  }
  return absl::OkStatus();
}

absl::Status SavePretrained(CausalLM& model, const std::string& tokenizer_json,
                            const std::string& dir, const std::string& save_dtype,
                            const std::string& tokenizer_config_json) {
  const fs::path final_dir = fs::path(dir).lexically_normal();
  const fs::path tmp_dir = final_dir.string() + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp_dir, ec);
  HONE_RETURN_IF_ERROR(SaveModel(model, tmp_dir.string(), save_dtype));
  HONE_RETURN_IF_ERROR(WriteTokenizerFiles(tokenizer_json, tokenizer_config_json, tmp_dir.string()));
  fs::remove_all(final_dir, ec);
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot move ", tmp_dir.string(), " to ", final_dir.string(),
                                            ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace hone
