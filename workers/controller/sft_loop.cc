#include "workers/controller/sft_loop.h"

#include <chrono>
#include <filesystem>
#include <iostream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/data/from_config.h"
#include "framework/metrics/metrics_log.h"
#include "workers/controller/metrics_exporter.h"
#include "workers/controller/checkpoint.h"
#include "workers/controller/data_checks.h"
#include "workers/controller/shutdown.h"
#include "workers/trainer/local_trainer.h"

namespace hone {
namespace {

constexpr char kEndOfText[] = "<|endoftext|>";

// UTF-8 characters of every prompt and solution (plus the prompt template's own text).
std::vector<std::string> CharacterSet(const std::vector<data::Example>& examples,
                                      const std::string& template_name) {
  std::set<std::string> chars;
  auto add = [&](const std::string& text) {
    for (size_t i = 0; i < text.size();) {
      const unsigned char c = text[i];
      const size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : 4;
      chars.insert(text.substr(i, len));
      i += len;
    }
  };
  for (const auto& e : examples) {
    auto templated = data::ApplyPromptTemplate(template_name, e.prompt);
    add(templated.ok() ? *templated : e.prompt);
    add(e.solution);
  }
  return {chars.begin(), chars.end()};
}

// A fresh model from model.init_config, with a char-level tokenizer covering the data.
absl::StatusOr<Pretrained> FreshPolicy(const Config& config, const data::DataSplits& splits) {
  absl::StatusOr<ModelConfig> loaded = LoadModelConfig(config.String("model.init_config"));
  if (!loaded.ok()) return Annotate(loaded.status(), "model.init_config");
  ModelConfig model_config = *std::move(loaded);
  std::vector<data::Example> all = splits.train;
  all.insert(all.end(), splits.held_out.begin(), splits.held_out.end());
  HONE_ASSIGN_OR_RETURN(std::string tokenizer_json,
                        MakeCharLevelTokenizerJson(CharacterSet(all, config.String("data.prompt_template")),
                                                   {kEndOfText}));
  Pretrained policy;
  HONE_ASSIGN_OR_RETURN(policy.tokenizer, TokenizerFromJson(tokenizer_json));
  // The vocabulary is exactly the tokenizer's: spare rows would be untrained ids that
  // sampling could still pick and no decoder could print.
  model_config.vocab_size = policy.tokenizer->VocabSize();
  model_config.eos_token_ids = {*policy.tokenizer->TokenToId(kEndOfText)};
  policy.tokenizer_json = std::move(tokenizer_json);
  policy.model = InitModel(model_config, static_cast<uint64_t>(config.Int("seed")));
  policy.stop_token_ids = StopTokenIds(model_config, *policy.tokenizer);
  return policy;
}

// input_ids / attention_mask / response_mask for prompt + solution + end-of-text.
absl::StatusOr<Batch> MakeSftBatch(const Tokenizer& tokenizer, const std::vector<data::Example>& examples,
                                   const data::PromptFormatter& format, int64_t eos_id) {
  std::vector<std::vector<int64_t>> ids(examples.size());
  std::vector<int64_t> prompt_lens(examples.size());
  int64_t T = 2;
  for (size_t i = 0; i < examples.size(); ++i) {
    HONE_ASSIGN_OR_RETURN(std::string prompt, format.Format(examples[i].prompt));
    HONE_ASSIGN_OR_RETURN(ids[i], tokenizer.Encode(prompt));
    prompt_lens[i] = static_cast<int64_t>(ids[i].size());
    HONE_ASSIGN_OR_RETURN(std::vector<int64_t> solution, tokenizer.Encode(examples[i].solution));
    ids[i].insert(ids[i].end(), solution.begin(), solution.end());
    ids[i].push_back(eos_id);
    T = std::max<int64_t>(T, ids[i].size());
  }
  const int64_t N = static_cast<int64_t>(examples.size());
  auto input_ids = torch::zeros({N, T}, torch::kInt64);
  auto attention = torch::zeros({N, T}, torch::kBool);
  auto response = torch::zeros({N, T}, torch::kFloat32);
  for (int64_t i = 0; i < N; ++i) {
    const int64_t len = static_cast<int64_t>(ids[i].size());
    input_ids[i].narrow(0, 0, len).copy_(torch::tensor(ids[i], torch::kInt64));
    attention[i].narrow(0, 0, len).fill_(true);
    response[i].narrow(0, prompt_lens[i], len - prompt_lens[i]).fill_(1.0f);
  }
  Batch batch;
  HONE_RETURN_IF_ERROR(batch.SetTensor("input_ids", input_ids));
  HONE_RETURN_IF_ERROR(batch.SetTensor("attention_mask", attention));
  HONE_RETURN_IF_ERROR(batch.SetTensor("response_mask", response));
  return batch;
}

}  // namespace

absl::Status RunSft(const Config& config) {
  const auto start = std::chrono::steady_clock::now();
  const std::string output_dir = config.String("trainer.output_dir");
  HONE_ASSIGN_OR_RETURN(TrainerOptions trainer_options, TrainerOptionsFromConfig(config));
  HONE_ASSIGN_OR_RETURN(data::DataSplits splits, data::LoadSplits(config));
  Pretrained policy;
  if (!config.String("model.path").empty()) {
    absl::StatusOr<Pretrained> loaded = LoadPretrained(config.String("model.path"));
    if (!loaded.ok()) return Annotate(loaded.status(), "model.path");
    policy = *std::move(loaded);
  } else if (!config.String("model.init_config").empty()) {
    HONE_ASSIGN_OR_RETURN(policy, FreshPolicy(config, splits));
  } else {
    return absl::InvalidArgumentError(
        "set model.path (a model to fine-tune) or model.init_config (a config.json to start from scratch)");
  }
  if (policy.stop_token_ids.empty()) {
    return absl::InvalidArgumentError("the policy has no end-of-text token (eos_token_id in config.json)");
  }
  // The config's own end-of-sequence token when it names one (what HF generate stops on).
  const auto& config_eos = policy.model->config().eos_token_ids;
  const int64_t eos_id = config_eos.empty() ? policy.stop_token_ids.front() : config_eos.front();
  HONE_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, TokenizerFromJson(policy.tokenizer_json));
  HONE_RETURN_IF_ERROR(
      CheckSftLengths(config, *tokenizer, policy.model->config().max_position_embeddings, splits.train));
  WarnAboutSplit(splits, config.Int("trainer.sft_batch_size"), "trainer.sft_batch_size");
  const int64_t parameters = policy.model->config().NumParameters();
  HONE_ASSIGN_OR_RETURN(std::unique_ptr<LocalPolicyTrainer> trainer,
                        LocalPolicyTrainer::Create(std::move(policy), trainer_options));
  HONE_ASSIGN_OR_RETURN(MetricsLog metrics_log,
                        MetricsLog::Open((std::filesystem::path(output_dir) / "metrics.jsonl").string()));
  std::unique_ptr<MetricsExporter> exporter = StartMetricsExporter(config);
  const int64_t total_steps = config.Int("trainer.total_steps");
  const int64_t batch_size = config.Int("trainer.sft_batch_size");
  const int64_t save_every = config.Int("trainer.save_every");
  HONE_ASSIGN_OR_RETURN(data::PromptFormatter prompt_format, data::PromptFormatterFromConfig(config));
  data::DataLoader loader(splits.train, static_cast<uint64_t>(config.Int("seed")));
  std::cerr << absl::StrFormat("SFT: %d examples, %.2fM parameters, %d steps of %d sequences\n",
                               splits.train.size(), parameters / 1e6, total_steps, batch_size);
  double recent_loss = 0;
  int64_t recent = 0;
  for (int64_t step = 1; step <= total_steps; ++step) {
    // SIGTERM (shutdown.h): keep the completed steps. hone sft has no resume; the
    // checkpoint is a model in HF layout that model.path can start from.
    if (StopRequested()) {
      const int64_t done = step - 1;
      std::string dir;
      if (done > 0) {
        dir = CheckpointDir(output_dir, done);
        if (!(save_every > 0 && done % save_every == 0)) {
          HONE_RETURN_IF_ERROR(WriteCheckpoint(*trainer, dir, {{"step", done}}, output_dir));
        }
      }
      std::cerr << StoppedLine("hone sft", done, dir, /*resumable=*/false) << std::endl;
      return absl::OkStatus();
    }
    const auto step_start = std::chrono::steady_clock::now();
    HONE_ASSIGN_OR_RETURN(Batch batch, MakeSftBatch(*tokenizer, loader.NextBatch(batch_size), prompt_format, eos_id));
    HONE_ASSIGN_OR_RETURN(Metrics m, trainer->SftStep(batch));
    m["seconds_step"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    m["tokens_per_second_train"] = batch.tensor("attention_mask").sum().item<double>() / m["seconds_step"];
    HONE_RETURN_IF_ERROR(metrics_log.Write(step, m));
    if (exporter) exporter->PublishStep(step, m);
    recent_loss += m["sft_loss"];
    ++recent;
    if (step % 10 == 0 || step == total_steps) {
      std::cerr << absl::StrFormat("sft step %d/%d | loss %.4f | lr %.2e | grad norm %.3f | %.2fs/step\n", step,
                                   total_steps, recent_loss / recent, m["learning_rate"], m["grad_norm"],
                                   m["seconds_step"]);
      recent_loss = 0;
      recent = 0;
    }
    if (save_every > 0 && step % save_every == 0) {
      HONE_RETURN_IF_ERROR(WriteCheckpoint(*trainer, CheckpointDir(output_dir, step), {{"step", step}}, output_dir));
    }
  }
  const std::string final_dir = (std::filesystem::path(output_dir) / "final").string();
  HONE_RETURN_IF_ERROR(WriteCheckpoint(*trainer, final_dir, {{"step", total_steps}}, output_dir));
  std::cerr << absl::StrFormat("SFT done in %.1fs; model in %s\n",
                               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                               final_dir);
  return absl::OkStatus();
}

}  // namespace hone
