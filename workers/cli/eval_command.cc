// `hone eval`: compare models on the same held-out prompts.
//
//   hone eval --config configs/arith_tiny_cpu.yaml --model runs/sft/final
//       --model runs/train/final eval.n=8 eval.temperature=1.0 eval.k=[1,4,8]
//
// Every model answers the same prompts (the config's held-out set, or a seeded subset of
// --limit / eval.limit of them) with the same sampling settings and seed. Prints one table
// (a column per model, plus B - A with two models) and, with two models, the prompts where
// their first samples disagree; writes everything as JSON to --output / eval.output
// (default: eval.json in the last --model directory). Progress goes to stderr.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/config.h"
#include "framework/core/status.h"
#include "framework/data/from_config.h"
#include "framework/model/pretrained.h"
#include "nlohmann/json.hpp"
#include "workers/cli/command.h"
#include "workers/cli/threads.h"
#include "workers/cli/validators.h"
#include "workers/eval/evaluator.h"

namespace hone::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kPrintedDisagreements = 5;
constexpr size_t kJsonDisagreements = 50;
constexpr size_t kPrintedResponseChars = 400;

struct EvalArgs {
  std::string config_path;
  std::vector<std::string> models;
  std::vector<std::string> overrides;
  int64_t limit = -1;  // -1: not given, eval.limit applies
  std::string output;
  bool print_config = false;
};

struct ModelRun {
  std::string label;  // "A", "B", ...
  std::string path;
  eval::EvalResult result;
};

std::string Label(size_t i) { return std::string(1, static_cast<char>('A' + i % 26)); }

// Writes `text` to `path` through a temporary file and a rename, so readers never see a
// half-written file.
absl::Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const fs::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) {
    fs::create_directories(target.parent_path(), ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create ", target.parent_path().string(), ": ", ec.message()));
  }
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      return absl::InternalError(absl::StrCat("cannot write ", tmp));
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path, ": ", ec.message()));
  }
  return absl::OkStatus();
}

json ModelJson(const ModelRun& run) {
  const eval::EvalResult& r = run.result;
  json pass = json::object();
  for (const auto& [k, v] : r.pass_at_k) pass[std::to_string(k)] = v;
  json words = json::object();
  for (const auto& [w, v] : r.reflection_counts) words[w] = v;
  return {{"label", run.label},
          {"path", run.path},
          {"num_prompts", r.num_prompts},
          {"samples_per_prompt", r.samples_per_prompt},
          {"accuracy", r.accuracy},
          {"pass_at_k", pass},
          {"format_rate", r.format_rate},
          {"mean_reward", r.mean_reward},
          {"mean_response_length", r.mean_response_length},
          {"max_response_length", r.max_response_length},
          {"truncated_fraction", r.truncated_fraction},
          {"reflection_counts", words},
          {"generated_tokens", r.generated_tokens},
          {"seconds", r.seconds},
          {"generation_seconds", r.generation_seconds},
          {"tokens_per_second", r.tokens_per_second}};
}

json DisagreementJson(const eval::EvalResult& a, const eval::EvalResult& b, int64_t pos) {
  const eval::PromptOutcome& pa = a.prompts[static_cast<size_t>(pos)];
  const eval::PromptOutcome& pb = b.prompts[static_cast<size_t>(pos)];
  return {{"index", pa.example.index},
          {"prompt", pa.example.prompt},
          {"ground_truth", pa.example.ground_truth},
          {"a_correct", pa.samples.front().score.correct > 0},
          {"b_correct", pb.samples.front().score.correct > 0},
          {"a_response", pa.samples.front().response},
          {"b_response", pb.samples.front().response}};
}

// One table row: a name, a value per model, and B - A with exactly two models.
void PrintRow(const std::string& name, const std::vector<double>& values, const char* fmt) {
  std::cout << absl::StrFormat("%-26s", name);
  for (double v : values) std::cout << absl::StrFormat(" %12s", absl::StrFormat(fmt, v));
  if (values.size() == 2) {
    const double d = values[1] - values[0];
    std::cout << absl::StrFormat(" %12s", (d >= 0 ? "+" : "") + absl::StrFormat(fmt, d));
  }
  std::cout << "\n";
}

std::string Clip(const std::string& text) {
  if (text.size() <= kPrintedResponseChars) return text;
  return text.substr(0, kPrintedResponseChars) + " [...]";
}

void PrintReport(const std::vector<ModelRun>& runs, const eval::EvalOptions& options,
                 const eval::Comparison* cmp) {
  for (const ModelRun& run : runs) std::cout << run.label << " = " << run.path << "\n";
  const eval::EvalResult& first = runs.front().result;
  std::cout << absl::StrFormat(
      "%d held-out prompts, %d sample(s) each (%s), max_new_tokens %d, seed %d\n\n",
      first.num_prompts, first.samples_per_prompt,
      options.temperature == 0 ? std::string("greedy")
                               : absl::StrFormat("temperature %g", options.temperature),
      options.max_new_tokens, options.seed);
  std::cout << absl::StrFormat("%-26s", "metric");
  for (const ModelRun& run : runs) std::cout << absl::StrFormat(" %12s", run.label);
  if (runs.size() == 2) std::cout << absl::StrFormat(" %12s", "B - A");
  std::cout << "\n";
  auto row = [&](const std::string& name, const char* fmt, auto get) {
    std::vector<double> values;
    for (const ModelRun& run : runs) values.push_back(get(run.result));
    PrintRow(name, values, fmt);
  };
  using R = eval::EvalResult;
  row("accuracy", "%.4f", [](const R& r) { return r.accuracy; });
  for (int64_t k : options.ks) {
    row(absl::StrCat("pass@", k), "%.4f", [k](const R& r) { return r.pass_at_k.at(k); });
  }
  row("format_rate", "%.4f", [](const R& r) { return r.format_rate; });
  row("mean_reward", "%.4f", [](const R& r) { return r.mean_reward; });
  row("mean_response_length", "%.2f", [](const R& r) { return r.mean_response_length; });
  row("max_response_length", "%.0f", [](const R& r) { return double(r.max_response_length); });
  row("truncated_fraction", "%.4f", [](const R& r) { return r.truncated_fraction; });
  for (const std::string& w : options.reflection_words) {
    row(absl::StrCat("words/response \"", w, "\""), "%.3f",
        [&w](const R& r) { return r.reflection_counts.at(w); });
  }
  row("seconds", "%.2f", [](const R& r) { return r.seconds; });
  row("tokens_per_second", "%.0f", [](const R& r) { return r.tokens_per_second; });
  if (cmp == nullptr) return;

  const eval::EvalResult& a = runs[0].result;
  const eval::EvalResult& b = runs[1].result;
  std::cout << absl::StrFormat(
      "\nfirst samples: A right/B wrong %d, A wrong/B right %d, both right %d, both wrong %d\n",
      cmp->a_right_b_wrong, cmp->a_wrong_b_right, cmp->both_right, cmp->both_wrong);
  const size_t shown = std::min(kPrintedDisagreements, cmp->disagreements.size());
  for (size_t i = 0; i < shown; ++i) {
    const eval::PromptOutcome& pa = a.prompts[static_cast<size_t>(cmp->disagreements[i])];
    const eval::PromptOutcome& pb = b.prompts[static_cast<size_t>(cmp->disagreements[i])];
    const bool a_right = pa.samples.front().score.correct > 0;
    std::cout << absl::StrFormat("\n--- disagreement %d/%d: example %d, ground truth %s, %s\n",
                                 i + 1, cmp->disagreements.size(), pa.example.index,
                                 pa.example.ground_truth,
                                 a_right ? "A right, B wrong" : "A wrong, B right");
    std::cout << "prompt: " << Clip(pa.example.prompt) << "\n";
    std::cout << "A: " << Clip(pa.samples.front().response) << "\n";
    std::cout << "B: " << Clip(pb.samples.front().response) << "\n";
  }
  if (cmp->disagreements.size() > shown) {
    std::cout << absl::StrFormat("(%d more in the JSON output)\n",
                                 std::min(cmp->disagreements.size(), kJsonDisagreements) - shown);
  }
}

absl::Status RunEval(const EvalArgs& args) {
  HONE_ASSIGN_OR_RETURN(Config config, Config::Load(HoneConfigSchema(), args.config_path, args.overrides));
  if (args.limit >= 0) HONE_RETURN_IF_ERROR(config.Set("eval.limit", std::to_string(args.limit), "--limit"));
  if (!args.output.empty()) HONE_RETURN_IF_ERROR(config.Set("eval.output", args.output, "--output"));
  if (args.print_config) {
    std::cout << config.ToYaml();
    return absl::OkStatus();
  }
  if (args.models.empty()) return absl::InvalidArgumentError("--model is required (give it once or twice)");
  for (const std::string& dir : args.models) {
    if (!fs::is_directory(dir)) {
      return absl::NotFoundError(absl::StrCat("--model: model directory '", dir, "' does not exist"));
    }
  }
  HONE_ASSIGN_OR_RETURN(eval::EvalOptions options, eval::EvalOptionsFromConfig(config));
  SetComputeThreads(static_cast<int>(config.Int("runtime.num_threads")));
  // By default the report goes next to the weights it describes (the last --model: B when
  // comparing), never into trainer.output_dir, which may be another run's directory.
  std::string output = config.String("eval.output");
  if (output.empty()) output = (fs::path(args.models.back()) / "eval.json").string();

  HONE_ASSIGN_OR_RETURN(data::DataSplits splits, data::LoadSplits(config));
  const std::vector<data::Example> examples =
      eval::SelectEvalExamples(splits.held_out, config.Int("eval.limit"), options.seed);
  if (options.temperature == 0 && options.n > 1) {
    std::cerr << "eval: greedy decoding (eval.temperature=0) gives identical samples: generating 1 per "
                 "prompt instead of eval.n=" << options.n << "; pass@k equals accuracy\n";
  }

  std::vector<ModelRun> runs;
  for (size_t i = 0; i < args.models.size(); ++i) {
    ModelRun run{Label(i), args.models[i], {}};
    absl::StatusOr<Pretrained> policy = LoadPretrained(run.path);
    if (!policy.ok()) return Annotate(policy.status(), absl::StrCat("model ", run.label));
    std::cerr << "eval " << run.label << ": " << run.path << ", " << examples.size() << " prompts\n";
    auto progress = [&run](int64_t done, int64_t total) {
      std::cerr << "eval " << run.label << ": " << done << "/" << total << " prompts\n";
    };
    eval::EvalOptions model_options = options;
    model_options.model_dir = run.path;  // data.prompt_template=chat: this model's own template
    absl::StatusOr<eval::EvalResult> result = eval::Evaluate(
        policy->model, *policy->tokenizer, policy->stop_token_ids, examples, model_options, progress);
    if (!result.ok()) return Annotate(result.status(), absl::StrCat("model ", run.label, " (", run.path, ")"));
    run.result = std::move(*result);
    runs.push_back(std::move(run));
  }

  json report = {{"num_prompts", static_cast<int64_t>(examples.size())},
                 {"samples_per_prompt", runs.front().result.samples_per_prompt},
                 {"n", options.n},
                 {"temperature", options.temperature},
                 {"max_new_tokens", options.max_new_tokens},
                 {"seed", options.seed},
                 {"dataset", config.String("data.dataset")},
                 {"prompt_template", options.prompt_template},
                 {"models", json::array()},
                 {"disagreements", json::array()}};
  for (const ModelRun& run : runs) report["models"].push_back(ModelJson(run));
  std::optional<eval::Comparison> cmp;
  if (runs.size() == 2) {
    HONE_ASSIGN_OR_RETURN(cmp, eval::Compare(runs[0].result, runs[1].result));
    report["comparison"] = {{"a_right_b_wrong", cmp->a_right_b_wrong},
                            {"a_wrong_b_right", cmp->a_wrong_b_right},
                            {"both_right", cmp->both_right},
                            {"both_wrong", cmp->both_wrong},
                            {"num_disagreements", cmp->disagreements.size()}};
    for (size_t i = 0; i < std::min(kJsonDisagreements, cmp->disagreements.size()); ++i) {
      report["disagreements"].push_back(DisagreementJson(runs[0].result, runs[1].result, cmp->disagreements[i]));
    }
  }
  PrintReport(runs, options, cmp ? &*cmp : nullptr);
  // Byte-level BPE may decode a cut multi-byte character: replace it rather than fail.
  std::error_code exists_error;
  if (fs::exists(output, exists_error)) std::cerr << "eval: overwriting the existing " << output << "\n";
  HONE_RETURN_IF_ERROR(WriteFileAtomically(output, report.dump(2, ' ', false, json::error_handler_t::replace) + "\n"));
  std::cout << "\nwrote " << output << "\n";
  return absl::OkStatus();
}

}  // namespace

CommandAction SetupEvalCommand(CLI::App& sub) {
  auto args = std::make_shared<EvalArgs>();
  sub.add_option("--config", args->config_path, "YAML config (data.*, eval.*, rollout.*, reward.*)");
  sub.add_option("--model", args->models, "model directory in HF layout; give twice to compare A and B")
      ->allow_extra_args(false);  // one directory per --model: overrides may follow
  sub.add_option("--limit", args->limit, "evaluate a seeded random subset of N held-out prompts (eval.limit)")
      ->check(NonNegative())
      ->default_str("");  // not -1: without --limit, eval.limit applies
  sub.add_option("--output", args->output, "JSON report path (eval.output; default: eval.json in the last --model directory)");
  sub.add_flag("--print-config", args->print_config, "print the resolved config as YAML and exit");
  sub.add_option("overrides", args->overrides, "config overrides key=value, e.g. eval.n=8 eval.k=[1,8]");
  sub.footer(
      "Greedy decoding (eval.temperature=0, the default) generates one sample per prompt: n "
      "identical samples would add nothing, and pass@k then equals accuracy for every k <= eval.n.");
  return [args]() { return RunEval(*args); };
}

}  // namespace hone::cli
