// `hone model init` makes a randomly initialised model of any shape in HF layout;
// `hone model info` prints a model directory's shape, parameter count and dtype.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"
#include "framework/model/model.h"
#include "framework/model/pretrained.h"
#include "framework/model/safetensors.h"
#include "framework/model/tokenizer.h"
#include "workers/cli/command.h"
#include "workers/cli/validators.h"

namespace hone::cli {
namespace {

namespace fs = std::filesystem;

struct ModelInitOptions {
  std::string config_json;
  std::string out;
  std::string tokenizer;
  std::string dtype = "F32";
  uint64_t seed = 0;
  bool overwrite = false;
};

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status RunInit(const ModelInitOptions& o) {
  HONE_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(o.config_json));
  // A model directory is somebody's work: replace it only when asked to, and say so.
  std::error_code ec;
  std::vector<std::string> existing;
  for (const char* name : {"config.json", "model.safetensors", "model.safetensors.index.json", "tokenizer.json"}) {
    if (fs::exists(fs::path(o.out) / name, ec)) existing.emplace_back(name);
  }
  if (!existing.empty() && !o.overwrite) {
    return absl::AlreadyExistsError(absl::StrCat("--out ", o.out, " already holds a model (",
                                                 absl::StrJoin(existing, ", "),
                                                 "): choose another directory or pass --overwrite to replace it"));
  }
  if (!existing.empty()) {
    std::cerr << "hone model init: --overwrite: replacing " << absl::StrJoin(existing, ", ") << " in " << o.out << "\n";
  }
  std::string tokenizer_json;
  if (!o.tokenizer.empty()) {
    HONE_ASSIGN_OR_RETURN(tokenizer_json, ReadFile(o.tokenizer));
    HONE_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, TokenizerFromJson(tokenizer_json));
    // Ids at or above vocab_size have no embedding row: the model could not be loaded.
    if (tokenizer->VocabSize() > config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          o.config_json, ": field 'vocab_size' is ", config.vocab_size, " but the tokenizer ", o.tokenizer, " has ",
          tokenizer->VocabSize(), " tokens: vocab_size must be at least ", tokenizer->VocabSize()));
    }
  }
  CausalLM model = InitModel(config, o.seed);
  if (!o.tokenizer.empty()) {
    HONE_RETURN_IF_ERROR(SavePretrained(model, tokenizer_json, o.out, o.dtype));
  } else {
    HONE_RETURN_IF_ERROR(SaveModel(model, o.out, o.dtype));
  }
  std::cout << "wrote " << config.model_type << " model with " << config.NumParameters()
            << " parameters to " << o.out << "\n";
  return absl::OkStatus();
}

absl::Status RunInfo(const std::string& dir) {
  HONE_ASSIGN_OR_RETURN(ModelConfig c, LoadModelConfig((fs::path(dir) / "config.json").string()));
  HONE_ASSIGN_OR_RETURN(TensorMap tensors, ReadSafetensorsDir(dir));
  std::map<std::string, int64_t> dtype_counts;
  int64_t stored = 0;
  for (const auto& [name, t] : tensors) {
    dtype_counts[std::string(DTypeName(t.dtype))] += t.numel();
    stored += t.numel();
  }
  std::string dtypes;
  for (const auto& [name, count] : dtype_counts) absl::StrAppend(&dtypes, dtypes.empty() ? "" : ", ", name);
  // What generation stops on: config.json's eos_token_id plus the tokenizer's end tokens.
  std::string stops = c.eos_token_ids.empty() ? "none in config.json" : "";
  const fs::path tokenizer_path = fs::path(dir) / "tokenizer.json";
  if (fs::exists(tokenizer_path)) {
    HONE_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, LoadTokenizer(tokenizer_path.string()));
    stops.clear();
    for (int64_t id : StopTokenIds(c, *tokenizer)) {
      std::optional<std::string> text = tokenizer->IdToToken(id);
      absl::StrAppend(&stops, stops.empty() ? "" : ", ", id, text ? absl::StrCat(" ", *text) : "");
    }
    if (stops.empty()) stops = "none";
  } else {
    for (int64_t id : c.eos_token_ids) absl::StrAppend(&stops, stops.empty() ? "" : ", ", id);
  }
  std::cout << absl::StrFormat(
      "model_type:        %s\n"
      "layers:            %d\n"
      "hidden_size:       %d\n"
      "intermediate_size: %d\n"
      "attention heads:   %d (key/value heads %d, head_dim %d)\n"
      "vocab_size:        %d\n"
      "max_position_embeddings: %d\n"
      "stop tokens:       %s\n"
      "tie_embeddings:    %s\n"
      "rope:              theta %g, scaling %s\n"
      "parameters:        %d (%.2fM)\n"
      "stored tensors:    %d tensors, %d values, dtype %s\n"
      "tokenizer.json:    %s\n",
      c.model_type, c.num_hidden_layers, c.hidden_size, c.intermediate_size,
      c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.vocab_size,
      c.max_position_embeddings, stops, c.tie_word_embeddings ? "yes" : "no", c.rope_theta, c.rope_scaling.rope_type,
      c.NumParameters(), c.NumParameters() / 1e6, tensors.size(), stored, dtypes,
      fs::exists(fs::path(dir) / "tokenizer.json") ? "present" : "absent");
  return absl::OkStatus();
}

}  // namespace

CommandAction SetupModelCommand(CLI::App& sub) {
  sub.require_subcommand(1);
  auto init = std::make_shared<ModelInitOptions>();
  CLI::App* init_cmd = sub.add_subcommand("init", "Write a randomly initialised model in HF layout");
  init_cmd->add_option("--config-json", init->config_json, "HF config.json giving the shape")
      ->required()->check(CLI::ExistingFile);
  init_cmd->add_option("--out", init->out, "output directory")->required();
  init_cmd->add_option("--tokenizer", init->tokenizer, "tokenizer.json to copy next to the weights")
      ->check(CLI::ExistingFile);
  init_cmd->add_option("--dtype", init->dtype, "stored dtype")->check(CLI::IsMember({"F32", "BF16", "F16"}));
  init_cmd->add_option("--seed", init->seed, "initialisation seed")->check(SeedValue());
  init_cmd->add_flag("--overwrite", init->overwrite, "replace a model already in --out");
  auto info_dir = std::make_shared<std::string>();
  CLI::App* info_cmd = sub.add_subcommand("info", "Print a model directory's shape, parameters and dtype");
  info_cmd->add_option("dir", *info_dir, "model directory")->required();
  return [init, init_cmd, info_dir]() -> absl::Status {
    if (init_cmd->parsed()) return RunInit(*init);
    return RunInfo(*info_dir);
  };
}

}  // namespace hone::cli
