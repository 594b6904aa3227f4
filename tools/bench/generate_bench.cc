// Hone's side of tools/bench/generate: G prompts x n samples through GenerationEngine on a
// randomly initialised model, plus the machine's measured fp32 matrix-product peak.
// Prints one JSON object on stdout. Run it through tools/bench/generate, which sets the
// thread environment and runs the Python baseline side by side.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <iostream>

#include "CLI/CLI.hpp"
#include "framework/engine/engine.h"
#include "workers/cli/threads.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Best of several 2048^3 fp32 products: the peak a generation step could reach.
double MeasurePeakGflops(int repeats) {
  torch::NoGradGuard no_grad;
  auto a = torch::randn({2048, 2048});
  auto b = torch::randn({2048, 2048});
  auto c = torch::mm(a, b);
  double best = 0;
  for (int i = 0; i < repeats; ++i) {
    auto start = std::chrono::steady_clock::now();
    c = torch::mm(a, b);
    best = std::max(best, 2.0 * 2048 * 2048 * 2048 / Seconds(start) / 1e9);
  }
  return best;
}

// FLOPs of the work the engine does: matrix products of every token it pushes through
// the model (prompt once per group, each decoded token once) plus attention scores and
// weighted sums over the context each query sees.
double EngineFlops(const hone::ModelConfig& c, int64_t prompts, int64_t n, int64_t prompt_len,
                   int64_t new_tokens) {
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
  // Decode: new_tokens - 1 steps for each of prompts * n sequences.
  for (int64_t t = 1; t < new_tokens; ++t) {
    flops += prompts * n * (per_token_matmul + attention_per_context * (prompt_len + t));
  }
  return flops;
}

}  // namespace

int main(int argc, char** argv) {
  hone::cli::EnsureBlasCoreType(argv);
  CLI::App app{"Generation throughput of Hone's engine (one JSON object on stdout)"};
  int64_t prompts = 64, n = 8, prompt_len = 64, new_tokens = 48, repeats = 3;
  int threads = 1;
  app.add_option("--prompts", prompts, "prompts (groups)");
  app.add_option("--n", n, "samples per prompt");
  app.add_option("--prompt-len", prompt_len, "prompt tokens");
  app.add_option("--new-tokens", new_tokens, "new tokens per sequence");
  app.add_option("--repeats", repeats, "timed runs (the best is reported)");
  app.add_option("--threads", threads, "intra-op threads");
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
  config.max_position_embeddings = 256;
  hone::CausalLM model = hone::InitModel(config, 0);
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
  params.max_new_tokens = new_tokens;  // no stop tokens: every sequence runs to the end

  double best_seconds = 1e30;
  int64_t generated = 0;
  for (int64_t r = 0; r <= repeats; ++r) {  // run 0 warms up
    params.seed = r;
    auto start = std::chrono::steady_clock::now();
    auto result = engine.Generate(prompt_ids, params);
    double seconds = Seconds(start);
    if (!result.ok()) {
      std::cerr << "generation failed: " << result.status() << "\n";
      return 1;
    }
    generated = result->new_tokens;
    if (r > 0) best_seconds = std::min(best_seconds, seconds);
  }
  const double peak = MeasurePeakGflops(5);
  const double flops = EngineFlops(config, prompts, n, prompt_len, new_tokens);
  std::cout << "{\"hone_tokens_per_s\": " << generated / best_seconds
            << ", \"hone_seconds\": " << best_seconds << ", \"new_tokens\": " << generated
            << ", \"hone_gflops\": " << flops / best_seconds / 1e9
            << ", \"peak_gflops\": " << peak
            << ", \"parameters\": " << config.NumParameters()
            << ", \"flops_per_new_token\": " << flops / generated << "}\n";
  return 0;
}
