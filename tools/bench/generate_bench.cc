// Hone's side of tools/bench/generate: G prompts x n samples through GenerationEngine on a
// randomly initialised model, plus the machine's measured fp32 matrix-product peak.
// Workload `uniform`: every sequence runs to --new-tokens. Workload `lengths`: a stop token
// whose probability is about 1/45 at every step (SetStopBias) ends sequences at roughly
// geometric lengths, capped at --new-tokens. Prints one JSON object on stdout. Run it
// through tools/bench/generate, which sets the thread environment and runs the Python
// baseline side by side.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "framework/engine/engine.h"
#include "tools/bench/bench_common.h"
#include "workers/cli/threads.h"

namespace {

using hone::bench::MeasurePeakGflops;
using hone::bench::Seconds;

// The stop token of workload `lengths` and its logit bias (see SetStopBias).
constexpr int64_t kStopToken = 95;
constexpr double kStopBias = 0.8;
constexpr double kStopChannel = 30.0;  // the constant channel, large against the rest of the stream

// Gives token `stop` a logit of about `bias` at every step, whatever the context, the
// other logits staying near 0 (normal(0, 0.02) weights): p(stop) = e^bias / (e^bias + 95),
// about 1/45 for bias 0.8. Hidden channel 0 is made a constant of the residual stream
// (30 in every embedding row, nothing added by any layer) that dominates its RMS, so it
// is about sqrt(d) after the final norm, and the stop row of the LM head reads only that
// channel. tools/bench/generate_baseline.py builds the same on its model. Speed does not
// depend on the weights.
void SetStopBias(hone::CausalLM& model, int64_t stop, double bias) {
  torch::NoGradGuard no_grad;
  const double root_d = std::sqrt(static_cast<double>(model->config().hidden_size));
  for (auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    auto& w = p.value();
    if (name.find("embed_tokens.weight") != std::string::npos) w.select(1, 0).fill_(kStopChannel);
    if (name.find("o_proj.weight") != std::string::npos ||
        name.find("down_proj.weight") != std::string::npos) {
      w.select(0, 0).zero_();
    }
    if (name.find("lm_head.weight") != std::string::npos) {
      w.select(0, stop).zero_();
      w[stop][0].fill_(bias / root_d);
    }
  }
}

// FLOPs of the work the engine does: matrix products of every token it pushes through
// the model (prompt once per group, each decoded token once) plus attention scores and
// weighted sums over the context each query sees. `lengths`: each sequence's new tokens.
double EngineFlops(const hone::ModelConfig& c, int64_t prompts, int64_t prompt_len,
                   const std::vector<int64_t>& lengths) {
  const double d = c.hidden_size, q = c.num_attention_heads * c.head_dim,
               kv = c.num_key_value_heads * c.head_dim, f = c.intermediate_size;
  const double per_token_matmul =
      2.0 * c.num_hidden_layers * (d * q + 2 * d * kv + q * d + 3 * d * f) + 2.0 * d * c.vocab_size;
  const double attention_per_context = 4.0 * c.num_hidden_layers * q;  // QK^T and PV
  double flops = 0;
  // Prefill: every prompt token; causal context 1..P; logits only for the last token.
  flops += prompts * prompt_len * (per_token_matmul - 2.0 * d * c.vocab_size);
  flops += prompts * 2.0 * d * c.vocab_size;
  flops += prompts * attention_per_context * prompt_len * (prompt_len + 1) / 2.0;
  // Decode: length - 1 steps for each sequence.
  for (int64_t length : lengths) {
    for (int64_t t = 1; t < length; ++t) {
      flops += per_token_matmul + attention_per_context * (prompt_len + t);
    }
  }
  return flops;
}

}  // namespace

int main(int argc, char** argv) {
  hone::cli::EnsureBlasCoreType(argv);
  CLI::App app{"Generation throughput of Hone's engine (one JSON object on stdout)"};
  int64_t prompts = 64, n = 8, prompt_len = 64, new_tokens = 48, repeats = 3;
  int threads = 1;
  std::string workload = "uniform";
  app.add_option("--prompts", prompts, "prompts (groups)");
  app.add_option("--n", n, "samples per prompt");
  app.add_option("--prompt-len", prompt_len, "prompt tokens");
  app.add_option("--new-tokens", new_tokens, "new tokens per sequence");
  app.add_option("--repeats", repeats, "timed runs (the best is reported)");
  app.add_option("--threads", threads, "threads (the engine runs blocks of groups on them)");
  app.add_option("--workload", workload, "uniform: no stop token; lengths: stop token 95 at p ~ 1/45")
      ->check(CLI::IsMember({"uniform", "lengths"}));
  CLI11_PARSE(app, argc, argv);
  hone::cli::SetComputeThreads(threads);

  hone::ModelConfig config;  // ~3.5M parameters, char-level vocabulary
  config.vocab_size = 96;
  config.hidden_size = 256;
  config.intermediate_size = 768;
  config.num_hidden_layers = 4;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 4;
  config.head_dim = 64;
  config.max_position_embeddings = 512;
  hone::CausalLM model = hone::InitModel(config, 0);
  const bool lengths = workload == "lengths";
  if (lengths) SetStopBias(model, kStopToken, kStopBias);
  hone::GenerationEngine engine(model);

  torch::manual_seed(1);
  auto ids = torch::randint(0, config.vocab_size, {prompts, prompt_len}, torch::kInt64);
  std::vector<std::vector<int64_t>> prompt_ids(prompts);
  for (int64_t g = 0; g < prompts; ++g) {
    prompt_ids[g].assign(ids[g].data_ptr<int64_t>(), ids[g].data_ptr<int64_t>() + prompt_len);
  }
  hone::SamplingParams params;
  params.n = n;
  params.temperature = 1.0;
  params.max_new_tokens = new_tokens;  // uniform: no stop tokens, every sequence runs to the end
  if (lengths) params.stop_token_ids = {kStopToken};

  double best_seconds = 1e30;
  int64_t generated = 0;
  std::vector<int64_t> best_lengths;
  for (int64_t r = 0; r <= repeats; ++r) {  // run 0 warms up
    params.seed = r;
    auto start = std::chrono::steady_clock::now();
    auto result = engine.Generate(prompt_ids, params);
    double seconds = Seconds(start);
    if (!result.ok()) {
      std::cerr << "generation failed: " << result.status() << "\n";
      return 1;
    }
    if (r > 0 && seconds / result->new_tokens < best_seconds / std::max<int64_t>(generated, 1)) {
      best_seconds = seconds;
      generated = result->new_tokens;
      best_lengths.clear();
      for (const auto& seq : result->sequences) best_lengths.push_back(seq.tokens.size());
    }
  }
  const double peak = MeasurePeakGflops(5);
  const double flops = EngineFlops(config, prompts, prompt_len, best_lengths);
  int64_t longest = 0;
  for (int64_t length : best_lengths) longest = std::max(longest, length);
  std::cout << "{\"workload\": \"" << workload << "\", \"threads\": " << threads
            << ", \"hone_tokens_per_s\": " << generated / best_seconds
            << ", \"hone_seconds\": " << best_seconds << ", \"new_tokens\": " << generated
            << ", \"hone_gflops\": " << flops / best_seconds / 1e9
            << ", \"peak_gflops\": " << peak
            << ", \"parameters\": " << config.NumParameters()
            << ", \"flops_per_new_token\": " << flops / generated
            << ", \"mean_length\": " << static_cast<double>(generated) / best_lengths.size()
            << ", \"longest\": " << longest << "}\n";
  return 0;
}
