// Hone's side of tools/bench/train_step: the trainer's forward + backward + AdamW step
// (LocalPolicyTrainer::SftStep: cross-entropy on every token, grad-norm clip, AdamW) on
// randomly initialised models of two shapes, the demo's (configs/models/arith_tiny.json)
// and a ~110M-parameter Llama, plus the machine's fp32 matrix-product peak measured in
// the same process at the same thread count. Also the padding figures of micro-batches
// cut in batch order and sorted by length (PlanMicroBatches) on a GRPO-like length mix,
// and the demo shape's GRPO Update throughput both ways. Prints one JSON object on stdout;
// run it through tools/bench/train_step, which runs the Python baseline side by side.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "framework/core/status.h"
#include "framework/model/model_config.h"
#include "tools/bench/bench_common.h"
#include "workers/cli/threads.h"
#include "workers/trainer/local_trainer.h"
#include "workers/trainer/policy_gradient.h"

namespace {

using hone::bench::MeasurePeakGflops;
using hone::bench::Seconds;

// A Llama of about 110M parameters (85M in the 12 layers, a 32000 x 768 tied embedding).
hone::ModelConfig Llama110M() {
  hone::ModelConfig c;
  c.vocab_size = 32000;
  c.hidden_size = 768;
  c.intermediate_size = 2048;
  c.num_hidden_layers = 12;
  c.num_attention_heads = 12;
  c.num_key_value_heads = 12;
  c.head_dim = 64;
  c.max_position_embeddings = 2048;
  c.tie_word_embeddings = true;
  return c;
}

// Model FLOPs of one training step on `sequences` x `length` tokens, counted as the
// generation bench's EngineFlops counts a forward (tools/bench/generate_bench.cc): the
// matrix products of every token, the LM head on the scored positions (all but the
// first of each sequence), attention scores and weighted sums (4 x layers x q FLOPs per
// query and context position) over each query's causal context; backward is twice the
// forward. So 6 x (matrix) parameters x tokens plus attention. Recomputation (the
// chunked head's logits in backward) is not useful work and is not counted.
double TrainStepFlops(const hone::ModelConfig& c, int64_t sequences, int64_t length) {
  const double d = c.hidden_size, q = c.num_attention_heads * c.head_dim,
               kv = c.num_key_value_heads * c.head_dim, f = c.intermediate_size;
  const double body_per_token = 2.0 * c.num_hidden_layers * (d * q + 2 * d * kv + q * d + 3 * d * f);
  const double head_per_token = 2.0 * d * c.vocab_size;
  const double attention_per_context = 4.0 * c.num_hidden_layers * q;
  const double forward = sequences * (length * body_per_token + (length - 1) * head_per_token +
                                      attention_per_context * length * (length + 1) / 2.0);
  return 3.0 * forward;
}

std::string ShapeJson(const hone::ModelConfig& c, int64_t batch, int64_t length) {
  std::ostringstream out;
  out << "{\"parameters\": " << c.NumParameters() << ", \"vocab_size\": " << c.vocab_size
      << ", \"hidden_size\": " << c.hidden_size << ", \"intermediate_size\": " << c.intermediate_size
      << ", \"num_hidden_layers\": " << c.num_hidden_layers << ", \"num_attention_heads\": " << c.num_attention_heads
      << ", \"num_key_value_heads\": " << c.num_key_value_heads << ", \"head_dim\": " << c.head_dim
      << ", \"rope_theta\": " << c.rope_theta << ", \"rms_norm_eps\": " << c.rms_norm_eps
      << ", \"tie_word_embeddings\": " << (c.tie_word_embeddings ? "true" : "false") << ", \"batch\": " << batch
      << ", \"seq_len\": " << length << ", \"flops_per_step\": " << TrainStepFlops(c, batch, length) << "}";
  return out.str();
}

absl::StatusOr<std::unique_ptr<hone::LocalPolicyTrainer>> MakeTrainer(const hone::ModelConfig& config,
                                                                      hone::TrainerOptions options) {
  hone::Pretrained policy;
  policy.model = hone::InitModel(config, 0);
  return hone::LocalPolicyTrainer::Create(std::move(policy), options);
}

// Times `steps` SFT steps after `warmup` untimed ones on random tokens; returns the best
// step's seconds.
absl::StatusOr<double> TimeSftSteps(const hone::ModelConfig& config, int64_t batch, int64_t length, int warmup,
                                    int steps) {
  hone::TrainerOptions options;
  options.lr = 1e-5;
  options.grad_clip = 1.0;
  options.micro_batch_size = batch;  // one forward/backward per step, as the Python side
  auto trainer = MakeTrainer(config, options);
  if (!trainer.ok()) return trainer.status();
  torch::manual_seed(1);
  hone::Batch sft;
  auto response = torch::ones({batch, length});
  response.select(1, 0).zero_();  // position 0 is never predicted
  HONE_RETURN_IF_ERROR(sft.SetTensor("input_ids", torch::randint(0, config.vocab_size, {batch, length}, torch::kInt64)));
  HONE_RETURN_IF_ERROR(sft.SetTensor("attention_mask", torch::ones({batch, length}, torch::kBool)));
  HONE_RETURN_IF_ERROR(sft.SetTensor("response_mask", response));
  double best = 1e30;
  for (int s = 0; s < warmup + steps; ++s) {
    auto start = std::chrono::steady_clock::now();
    auto metrics = (*trainer)->SftStep(sft);
    const double seconds = Seconds(start);
    if (!metrics.ok()) return metrics.status();
    if (s >= warmup) best = std::min(best, seconds);
  }
  return best;
}

// A GRPO-like batch: `prompts` groups of `n` samples, each group's prompt uniform in
// [prompt_min, prompt_max] tokens, responses of geometric length (stop probability
// 1/mean at every token, at least 1 token) capped at `cap`, right-padded to the longest;
// random advantages per sequence.
hone::Batch LengthMix(const hone::ModelConfig& config, int64_t prompts, int64_t n, int64_t prompt_min,
                      int64_t prompt_max, double mean, int64_t cap, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> prompt_len(prompt_min, prompt_max);
  std::geometric_distribution<int64_t> extra(1.0 / mean);
  std::vector<int64_t> lengths, prompt_lengths;
  for (int64_t g = 0; g < prompts; ++g) {
    const int64_t p = prompt_len(rng);
    for (int64_t i = 0; i < n; ++i) {
      prompt_lengths.push_back(p);
      lengths.push_back(p + std::min(cap, 1 + extra(rng)));
    }
  }
  const int64_t N = prompts * n, T = *std::max_element(lengths.begin(), lengths.end());
  torch::manual_seed(static_cast<int64_t>(seed));
  auto ids = torch::randint(0, config.vocab_size, {N, T}, torch::kInt64);
  auto attention = torch::zeros({N, T}, torch::kBool);
  auto response = torch::zeros({N, T});
  for (int64_t i = 0; i < N; ++i) {
    attention[i].narrow(0, 0, lengths[i]).fill_(true);
    response[i].narrow(0, prompt_lengths[i], lengths[i] - prompt_lengths[i]).fill_(1.0);
  }
  hone::Batch batch;
  (void)batch.SetTensor("input_ids", ids.masked_fill(attention.logical_not(), 0));
  (void)batch.SetTensor("attention_mask", attention);
  (void)batch.SetTensor("response_mask", response);
  (void)batch.SetTensor("advantages", torch::randn({N, 1}) * response);
  batch.meta["temperature"] = "1";
  return batch;
}

struct UpdateTiming {
  double seconds = 0;
  int64_t tokens = 0;
};

// The best of `repeats` GRPO Updates of the demo shape on `batch`; old log-probs are the
// policy's own. No untimed Update first: computing the old log-probs has already run the
// model once, and an Update of this mix takes seconds, so a warm-up would double the cost.
absl::StatusOr<UpdateTiming> TimeUpdate(const hone::ModelConfig& config, hone::Batch batch, int64_t micro,
                                        bool sort, int repeats) {
  hone::TrainerOptions options;
  options.lr = 1e-6;
  options.micro_batch_size = micro;
  options.sort_micro_batches = sort;
  auto trainer = MakeTrainer(config, options);
  if (!trainer.ok()) return trainer.status();
  auto logprobs = (*trainer)->ComputeLogProbs(batch);
  if (!logprobs.ok()) return logprobs.status();
  HONE_RETURN_IF_ERROR(batch.SetTensor("old_logprobs", logprobs->old_logprobs));
  UpdateTiming timing;
  timing.seconds = 1e30;
  timing.tokens = batch.tensor("attention_mask").sum().item<int64_t>();
  for (int r = 0; r < std::max(1, repeats); ++r) {
    auto start = std::chrono::steady_clock::now();
    auto metrics = (*trainer)->Update(batch);
    const double seconds = Seconds(start);
    if (!metrics.ok()) return metrics.status();
    timing.seconds = std::min(timing.seconds, seconds);
  }
  return timing;
}

}  // namespace

int main(int argc, char** argv) {
  hone::cli::EnsureBlasCoreType(argv);
  CLI::App app{"Training-step throughput of Hone's trainer (one JSON object on stdout)"};
  std::string demo_config = "configs/models/arith_tiny.json";
  int threads = 1, steps = 3, warmup = 1, update_repeats = 1;
  int64_t demo_batch = 64, demo_len = 64, large_batch = 2, large_len = 256;
  int64_t mix_prompts = 32, mix_n = 8, mix_micro = 32;
  bool quick = false;
  app.add_option("--demo-config", demo_config, "config.json of the demo's model shape");
  app.add_option("--threads", threads, "intra-op threads");
  app.add_option("--steps", steps, "timed steps per shape (the best is reported)");
  app.add_option("--warmup", warmup, "untimed steps first");
  app.add_option("--demo-batch", demo_batch, "sequences per step, demo shape");
  app.add_option("--demo-len", demo_len, "tokens per sequence, demo shape");
  app.add_option("--large-batch", large_batch, "sequences per step, ~110M shape");
  app.add_option("--large-len", large_len, "tokens per sequence, ~110M shape");
  app.add_option("--mix-prompts", mix_prompts, "length mix: prompts (groups)");
  app.add_option("--mix-n", mix_n, "length mix: samples per prompt");
  app.add_option("--mix-micro", mix_micro, "length mix: micro-batch size");
  app.add_option("--update-repeats", update_repeats, "timed GRPO Updates on the length mix, each way");
  app.add_flag("--quick", quick, "one timed step per shape, a shorter ~110M batch (1 x 128)");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    steps = 1;
    large_batch = 1;
    large_len = 128;
  }
  hone::cli::SetComputeThreads(threads);

  auto demo = hone::LoadModelConfig(demo_config);
  if (!demo.ok()) {
    std::cerr << demo.status() << "\n";
    return 1;
  }
  const hone::ModelConfig large = Llama110M();
  const double peak = MeasurePeakGflops(5);

  std::ostringstream out;
  out << "{\"threads\": " << threads << ", \"peak_gflops\": " << peak << ", \"shapes\": {";
  const std::vector<std::tuple<std::string, hone::ModelConfig, int64_t, int64_t>> shapes = {
      {"demo", *demo, demo_batch, demo_len}, {"llama_110m", large, large_batch, large_len}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    const auto& [name, config, batch, length] = shapes[i];
    std::cerr << "hone: " << name << " (" << config.NumParameters() << " parameters), " << batch << " x " << length
              << " tokens, " << warmup << " + " << steps << " steps, " << threads << " thread(s)\n";
    auto seconds = TimeSftSteps(config, batch, length, warmup, steps);
    if (!seconds.ok()) {
      std::cerr << name << ": " << seconds.status() << "\n";
      return 1;
    }
    const double gflops = TrainStepFlops(config, batch, length) / *seconds / 1e9;
    out << (i ? ", " : "") << "\"" << name << "\": {\"shape\": " << ShapeJson(config, batch, length)
        << ", \"hone_seconds\": " << *seconds << ", \"hone_tokens_per_s\": " << batch * length / *seconds
        << ", \"hone_gflops\": " << gflops << ", \"fraction_of_peak\": " << gflops / peak << "}";
  }
  out << "}";

  // Padding: a GRPO-like mix (the generation bench's geometric lengths, mean 45, cap 256,
  // behind prompts of 32-96 tokens) in one mini-batch, cut in micro-batches both ways.
  hone::ModelConfig mix_model = *demo;
  mix_model.max_position_embeddings = std::max<int64_t>(mix_model.max_position_embeddings, 512);
  const hone::Batch mix = LengthMix(mix_model, mix_prompts, mix_n, 32, 96, 45.0, 256, 7);
  const auto& attention = mix.tensor("attention_mask");
  const int64_t rows = mix.size();
  const auto unsorted = hone::CountPadding(attention, hone::PlanMicroBatches(attention, 0, rows, mix_micro, false));
  const auto sorted = hone::CountPadding(attention, hone::PlanMicroBatches(attention, 0, rows, mix_micro, true));
  out << ", \"padding\": {\"rows\": " << rows << ", \"micro_batch_size\": " << mix_micro
      << ", \"real_tokens\": " << sorted.real << ", \"positions_unsorted\": " << unsorted.positions
      << ", \"positions_sorted\": " << sorted.positions
      << ", \"padding_fraction_unsorted\": " << static_cast<double>(unsorted.padding()) / unsorted.positions
      << ", \"padding_fraction_sorted\": " << static_cast<double>(sorted.padding()) / sorted.positions << "}";

  std::cerr << "hone: GRPO Update of the demo shape on the length mix, batch order and sorted\n";
  auto update_unsorted = TimeUpdate(mix_model, mix, mix_micro, false, update_repeats);
  auto update_sorted = TimeUpdate(mix_model, mix, mix_micro, true, update_repeats);
  if (!update_unsorted.ok() || !update_sorted.ok()) {
    std::cerr << "update: " << (update_unsorted.ok() ? update_sorted.status() : update_unsorted.status()) << "\n";
    return 1;
  }
  out << ", \"update\": {\"tokens\": " << update_sorted->tokens
      << ", \"seconds_unsorted\": " << update_unsorted->seconds << ", \"seconds_sorted\": " << update_sorted->seconds
      << ", \"tokens_per_s_unsorted\": " << update_unsorted->tokens / update_unsorted->seconds
      << ", \"tokens_per_s_sorted\": " << update_sorted->tokens / update_sorted->seconds << "}}\n";
  std::cout << out.str();
  return 0;
}
