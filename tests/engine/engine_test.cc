// The generation engine against full forward passes of the same model.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "framework/engine/engine.h"

namespace hone {
namespace {

ModelConfig EngineTestConfig() {
  ModelConfig c;
  c.vocab_size = 29;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 64;
  c.initializer_range = 0.2;
  return c;
}

const std::vector<std::vector<int64_t>> kPrompts = {{1, 2, 3, 4, 5, 6, 7}, {9, 3}, {4, 4, 4, 20}};

// Full forward over prompt + generated tokens (no cache, no padding).
torch::Tensor FullLogits(CausalLM& model, const std::vector<int64_t>& prompt,
                         const std::vector<int64_t>& generated) {
  std::vector<int64_t> all = prompt;
  all.insert(all.end(), generated.begin(), generated.end());
  torch::NoGradGuard no_grad;
  auto logits = model->Forward(torch::tensor(all).unsqueeze(0)).squeeze(0);
  // Row t predicts generated token t.
  return logits.narrow(0, prompt.size() - 1, generated.size());
}

// Log-probs of the same tokens computed in batches of different shapes: equal up to the
// rounding of matrix products of different sizes (about 1e-6).
void ExpectSameLogprobs(const std::vector<float>& a, const std::vector<float>& b,
                        const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t t = 0; t < a.size(); ++t) EXPECT_NEAR(a[t], b[t], 1e-5) << what << " step " << t;
}

// Cached decode logits equal a full forward to 1e-4 (float32; logits are O(1)); the
// returned log-probs equal log_softmax(full logits / temperature) at the sampled tokens.
TEST(EngineTest, CachedDecodeMatchesFullForwardAndLogprobs) {
  CausalLM model = InitModel(EngineTestConfig(), 5);
  GenerationEngine engine(model);
  SamplingParams params;
  params.n = 3;
  params.temperature = 0.7;
  params.max_new_tokens = 10;
  params.seed = 42;
  params.return_logits = true;
  auto result = engine.Generate(kPrompts, params);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->sequences.size(), 9u);
  for (size_t i = 0; i < result->sequences.size(); ++i) {
    const auto& seq = result->sequences[i];
    ASSERT_EQ(seq.prompt_index, static_cast<int64_t>(i / 3));
    ASSERT_EQ(seq.tokens.size(), 10u);
    auto full = FullLogits(model, kPrompts[seq.prompt_index], seq.tokens);
    auto cached = result->step_logits[i];
    EXPECT_LT((full - cached).abs().max().item<double>(), 1e-4) << "sequence " << i;
    auto logp = torch::log_softmax(full / params.temperature, -1);
    for (size_t t = 0; t < seq.tokens.size(); ++t) {
      EXPECT_NEAR(seq.logprobs[t], logp[t][seq.tokens[t]].item<double>(), 1e-4);
    }
  }
}

// The fused projection paths with q/k/v bias (qwen2) and q/k norm (qwen3).
TEST(EngineTest, CachedDecodeMatchesFullForwardForQwenVariants) {
  for (const std::string family : {"qwen2", "qwen3"}) {
    ModelConfig config = EngineTestConfig();
    config.model_type = family;
    config.attention_bias = family == "qwen2";
    config.qk_norm = family == "qwen3";
    config.tie_word_embeddings = true;
    CausalLM model = InitModel(config, 12);
    {
      torch::NoGradGuard ng;
      for (auto& p : model->named_parameters())
        if (p.key().find("bias") != std::string::npos || p.key().find("norm") != std::string::npos)
          p.value().uniform_(0.5, 1.5);
    }
    GenerationEngine engine(model);
    SamplingParams params;
    params.n = 2;
    params.max_new_tokens = 6;
    params.return_logits = true;
    auto result = engine.Generate(kPrompts, params);
    ASSERT_TRUE(result.ok()) << result.status();
    for (size_t i = 0; i < result->sequences.size(); ++i) {
      const auto& seq = result->sequences[i];
      auto full = FullLogits(model, kPrompts[seq.prompt_index], seq.tokens);
      EXPECT_LT((full - result->step_logits[i]).abs().max().item<double>(), 1e-4) << family;
    }
  }
}

TEST(EngineTest, GreedyIsDeterministicAndFollowsArgmax) {
  CausalLM model = InitModel(EngineTestConfig(), 6);
  GenerationEngine engine(model);
  SamplingParams params;
  params.temperature = 0.0;
  params.n = 2;
  params.max_new_tokens = 8;
  params.seed = 1;
  auto a = engine.Generate(kPrompts, params);
  params.seed = 2;
  auto b = engine.Generate(kPrompts, params);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t i = 0; i < a->sequences.size(); ++i) {
    EXPECT_EQ(a->sequences[i].tokens, b->sequences[i].tokens);
    auto full = FullLogits(model, kPrompts[a->sequences[i].prompt_index], a->sequences[i].tokens);
    auto argmax = full.argmax(-1);
    for (size_t t = 0; t < a->sequences[i].tokens.size(); ++t)
      EXPECT_EQ(a->sequences[i].tokens[t], argmax[t].item<int64_t>());
  }
}

TEST(EngineTest, SamplingIsDeterministicForASeed) {
  CausalLM model = InitModel(EngineTestConfig(), 7);
  GenerationEngine engine(model);
  SamplingParams params;
  params.n = 4;
  params.max_new_tokens = 12;
  params.seed = 123;
  auto a = engine.Generate(kPrompts, params);
  auto b = engine.Generate(kPrompts, params);
  params.seed = 124;
  auto c = engine.Generate(kPrompts, params);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  bool any_difference = false;
  for (size_t i = 0; i < a->sequences.size(); ++i) {
    EXPECT_EQ(a->sequences[i].tokens, b->sequences[i].tokens);
    EXPECT_EQ(a->sequences[i].logprobs, b->sequences[i].logprobs);
    any_difference |= a->sequences[i].tokens != c->sequences[i].tokens;
  }
  EXPECT_TRUE(any_difference) << "a different seed should change some sample";
}

TEST(EngineTest, TopKNeverSamplesOutsideTheKBest) {
  CausalLM model = InitModel(EngineTestConfig(), 8);
  GenerationEngine engine(model);
  SamplingParams params;
  params.n = 16;
  params.temperature = 2.0;  // flat distribution: without top-k, outsiders would appear
  params.top_k = 3;
  params.max_new_tokens = 6;
  params.return_logits = true;
  auto result = engine.Generate(kPrompts, params);
  ASSERT_TRUE(result.ok());
  std::set<int64_t> seen;
  for (size_t i = 0; i < result->sequences.size(); ++i) {
    const auto& seq = result->sequences[i];
    for (size_t t = 0; t < seq.tokens.size(); ++t) {
      auto best = std::get<1>(result->step_logits[i][t].topk(3));
      std::set<int64_t> allowed;
      for (int64_t j = 0; j < 3; ++j) allowed.insert(best[j].item<int64_t>());
      EXPECT_TRUE(allowed.count(seq.tokens[t])) << "token outside the top 3 at step " << t;
      seen.insert(seq.tokens[t]);
    }
  }
  EXPECT_GT(seen.size(), 3u) << "different steps should have different top-3 sets";
}

TEST(EngineTest, TopPKeepsTheNucleus) {
  torch::manual_seed(0);
  auto logits = torch::tensor(std::vector<float>{3.0, 2.0, 1.0, -5.0, -6.0}).unsqueeze(0).repeat({2000, 1});
  SamplingParams params;
  params.top_p = 0.8;  // probs ~ .66 .24 .09 ...: the nucleus is {0, 1}
  std::vector<uint64_t> streams;
  for (int64_t i = 0; i < 2000; ++i) streams.push_back(SequenceStream(3, i, 0));
  auto sampled = SampleNextTokens(logits, params, streams, 0);
  auto counts = torch::bincount(sampled.tokens, {}, 5);
  EXPECT_GT(counts[0].item<int64_t>(), 0);
  EXPECT_GT(counts[1].item<int64_t>(), 0);
  EXPECT_EQ(counts[2].item<int64_t>() + counts[3].item<int64_t>() + counts[4].item<int64_t>(), 0);
}

// The counter-based draws follow the sampled distribution: 200k draws of a 5-token
// distribution land within 4 standard errors of every probability (float64 reference).
TEST(EngineTest, StreamDrawsFollowTheDistribution) {
  const std::vector<double> p = {0.5, 0.25, 0.15, 0.07, 0.03};
  auto logits = torch::tensor(p, torch::kFloat64).log().to(torch::kFloat32).unsqueeze(0).repeat({200000, 1});
  std::vector<uint64_t> streams;
  for (int64_t i = 0; i < 200000; ++i) streams.push_back(SequenceStream(17, i / 8, i % 8));
  auto counts = torch::bincount(SampleNextTokens(logits, SamplingParams{}, streams, 5).tokens, {}, 5);
  for (int64_t k = 0; k < 5; ++k) {
    const double freq = counts[k].item<double>() / 200000, se = std::sqrt(p[k] * (1 - p[k]) / 200000);
    EXPECT_NEAR(freq, p[k], 4 * se) << "token " << k;
  }
}

// A sequence's tokens depend on its stream, not on which prompts share the call: prompts
// generated together or one at a time (with their stream ids) give the same tokens.
TEST(EngineTest, SplittingPromptsKeepsTokens) {
  CausalLM model = InitModel(EngineTestConfig(), 4);
  GenerationEngine engine(model);
  SamplingParams params;
  params.n = 3;
  params.max_new_tokens = 10;
  params.seed = 77;
  params.prompt_streams = {100, 101, 102};
  auto together = engine.Generate(kPrompts, params);
  ASSERT_TRUE(together.ok());
  ASSERT_EQ(kPrompts.size(), 3u);
  for (size_t g = 0; g < kPrompts.size(); ++g) {
    SamplingParams one = params;
    one.prompt_streams = {params.prompt_streams[g]};
    auto alone = engine.Generate({kPrompts[g]}, one);
    ASSERT_TRUE(alone.ok());
    for (int64_t j = 0; j < 3; ++j) {
      EXPECT_EQ(alone->sequences[j].tokens, together->sequences[g * 3 + j].tokens) << "prompt " << g << " sample " << j;
    }
  }
}

TEST(EngineTest, StopTokensEndSequences) {
  CausalLM model = InitModel(EngineTestConfig(), 9);
  GenerationEngine engine(model);
  SamplingParams params;
  params.n = 8;
  params.temperature = 1.5;
  params.max_new_tokens = 20;
  params.stop_token_ids = {3, 7, 11};
  auto result = engine.Generate(kPrompts, params);
  ASSERT_TRUE(result.ok());
  int stopped = 0;
  for (const auto& seq : result->sequences) {
    const std::set<int64_t> stops = {3, 7, 11};
    for (size_t t = 0; t + 1 < seq.tokens.size(); ++t) EXPECT_FALSE(stops.count(seq.tokens[t]));
    if (seq.finish == FinishReason::kStop) {
      ++stopped;
      EXPECT_TRUE(stops.count(seq.tokens.back()));
    } else {
      EXPECT_EQ(seq.tokens.size(), 20u);
    }
    EXPECT_EQ(seq.tokens.size(), seq.logprobs.size());
  }
  EXPECT_GT(stopped, 0);
}

// Finished sequences leave the decode batch (docs/generation.md). With stop tokens that
// make lengths vary widely, every sequence still equals an independent reference: its
// step logits equal a full forward pass (no cache, no batch) over prompt + tokens, the
// sampling chain on those logits with the sequence's own stream picks the same token at
// every step, and the log-probs agree; rows past a sequence's end are zero. Generating
// each prompt alone gives the same tokens, and log-probs equal up to rounding.
TEST(EngineTest, DroppingFinishedSequencesKeepsEverySequence) {
  ModelConfig config = EngineTestConfig();
  config.max_position_embeddings = 128;  // room for 90 new tokens: the cache grows past 64
  CausalLM model = InitModel(config, 11);
  GenerationEngine engine(model);
  const std::vector<std::vector<int64_t>> prompts = {
      {1, 2, 3, 4, 5, 6, 7}, {9, 3}, {4, 4, 4, 20}, {17, 2, 5}, {8}, {12, 13, 14, 15, 16}};
  for (double temperature : {1.0, 0.0}) {
    SamplingParams params;
    params.n = 4;
    params.temperature = temperature;
    params.max_new_tokens = 90;
    params.seed = 5;
    params.prompt_streams = {30, 31, 32, 33, 34, 35};
    params.return_logits = true;
    if (temperature > 0) {
      params.stop_token_ids = {3};  // ~1 in 29 per step: most stop early, some run on
    } else {
      // Greedy: stop on tokens the greedy continuations really emit, at varied steps.
      SamplingParams probe = params;
      probe.return_logits = false;
      auto free_run = engine.Generate(prompts, probe);
      ASSERT_TRUE(free_run.ok());
      params.stop_token_ids = {free_run->sequences[0].tokens[2], free_run->sequences[8].tokens[9]};
    }
    auto result = engine.Generate(prompts, params);
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->sequences.size(), prompts.size() * params.n);
    size_t shortest = params.max_new_tokens, longest = 0;
    for (size_t i = 0; i < result->sequences.size(); ++i) {
      const auto& seq = result->sequences[i];
      const int64_t g = i / params.n, j = i % params.n;
      shortest = std::min(shortest, seq.tokens.size());
      longest = std::max(longest, seq.tokens.size());
      ASSERT_EQ(seq.tokens.size(), seq.logprobs.size());
      auto full = FullLogits(model, prompts[g], seq.tokens);
      const int64_t len = seq.tokens.size();
      auto rows = result->step_logits[i];
      EXPECT_LT((full - rows.narrow(0, 0, len)).abs().max().item<double>(), 1e-4) << "sequence " << i;
      if (len < rows.size(0)) {
        EXPECT_EQ(rows.narrow(0, len, rows.size(0) - len).abs().max().item<double>(), 0.0);
      }
      const std::vector<uint64_t> stream = {SequenceStream(params.seed, params.prompt_streams[g], j)};
      for (int64_t t = 0; t < len; ++t) {
        auto again = SampleNextTokens(full.narrow(0, t, 1), params, stream, t);
        EXPECT_EQ(again.tokens[0].item<int64_t>(), seq.tokens[t]) << "sequence " << i << " step " << t;
        EXPECT_NEAR(again.logprobs[0].item<double>(), seq.logprobs[t], 1e-4);
      }
    }
    EXPECT_LE(shortest, 3u) << "temperature " << temperature;
    EXPECT_GE(longest, 65u) << "temperature " << temperature;
    EXPECT_EQ(result->step_logits.size(1), static_cast<int64_t>(longest));
    for (size_t g = 0; g < prompts.size(); ++g) {
      SamplingParams one = params;
      one.prompt_streams = {params.prompt_streams[g]};
      one.return_logits = false;
      auto alone = engine.Generate({prompts[g]}, one);
      ASSERT_TRUE(alone.ok());
      for (int64_t j = 0; j < params.n; ++j) {
        const auto& together = result->sequences[g * params.n + j];
        EXPECT_EQ(alone->sequences[j].tokens, together.tokens) << "prompt " << g << " sample " << j;
        ExpectSameLogprobs(alone->sequences[j].logprobs, together.logprobs,
                           "prompt " + std::to_string(g) + " sample " + std::to_string(j));
      }
    }
  }
}

// Models that are not float32 on the CPU (other dtypes, other devices) decode through the
// slot-layout attention instead of the row kernel, with the caches re-laid out as
// sequences finish. A float64 copy of the model takes that path and gives the same
// sequences (log-probs to rounding), and step logits equal to a full forward pass.
TEST(EngineTest, SlotLayoutPathMatchesTheRowKernel) {
  ModelConfig config = EngineTestConfig();
  config.max_position_embeddings = 128;
  CausalLM model = InitModel(config, 14);
  CausalLM wide = InitModel(config, 14);
  wide->to(torch::kFloat64);
  GenerationEngine engine(model), wide_engine(wide);
  const std::vector<std::vector<int64_t>> prompts = {{1, 2, 3, 4, 5, 6, 7}, {9, 3}, {4, 4, 4, 20}, {8}};
  SamplingParams params;
  params.n = 4;
  params.temperature = 1.0;
  params.max_new_tokens = 80;
  params.seed = 21;
  params.stop_token_ids = {3};
  params.return_logits = true;
  auto narrow = engine.Generate(prompts, params);
  auto result = wide_engine.Generate(prompts, params);
  ASSERT_TRUE(narrow.ok() && result.ok()) << result.status();
  size_t shortest = params.max_new_tokens, longest = 0;
  for (size_t i = 0; i < result->sequences.size(); ++i) {
    const auto& seq = result->sequences[i];
    shortest = std::min(shortest, seq.tokens.size());
    longest = std::max(longest, seq.tokens.size());
    EXPECT_EQ(seq.tokens, narrow->sequences[i].tokens) << "sequence " << i;
    ExpectSameLogprobs(seq.logprobs, narrow->sequences[i].logprobs, "sequence " + std::to_string(i));
    auto full = FullLogits(wide, prompts[seq.prompt_index], seq.tokens).to(torch::kFloat32);
    EXPECT_LT((full - result->step_logits[i].narrow(0, 0, seq.tokens.size())).abs().max().item<double>(), 1e-4);
  }
  EXPECT_LE(shortest, 3u);
  EXPECT_GE(longest, 65u);
}

// With T threads the engine runs blocks of groups on T threads at once; the sequences are
// the same as with one thread (log-probs up to rounding).
TEST(EngineTest, ThreadsKeepTokensAndLogprobs) {
  CausalLM model = InitModel(EngineTestConfig(), 13);
  GenerationEngine engine(model);
  SamplingParams params;
  params.n = 3;
  params.max_new_tokens = 30;
  params.seed = 9;
  params.stop_token_ids = {5};
  const int threads_before = torch::get_num_threads();
  torch::set_num_threads(1);
  auto one = engine.Generate(kPrompts, params);
  torch::set_num_threads(3);
  auto three = engine.Generate(kPrompts, params);
  torch::set_num_threads(threads_before);
  ASSERT_TRUE(one.ok() && three.ok());
  ASSERT_EQ(one->sequences.size(), three->sequences.size());
  for (size_t i = 0; i < one->sequences.size(); ++i) {
    EXPECT_EQ(one->sequences[i].tokens, three->sequences[i].tokens) << "sequence " << i;
    ExpectSameLogprobs(one->sequences[i].logprobs, three->sequences[i].logprobs,
                       "sequence " + std::to_string(i));
    EXPECT_EQ(one->sequences[i].finish, three->sequences[i].finish) << "sequence " << i;
  }
  EXPECT_EQ(one->new_tokens, three->new_tokens);
}

TEST(EngineTest, BadRequestsAreClearErrors) {
  CausalLM model = InitModel(EngineTestConfig(), 1);
  GenerationEngine engine(model);
  SamplingParams params;
  params.max_new_tokens = 60;
  auto too_long = engine.Generate({{1, 2, 3, 4, 5}}, params);
  ASSERT_FALSE(too_long.ok());
  EXPECT_THAT(too_long.status().message(), ::testing::HasSubstr("max_position_embeddings"));
  params.max_new_tokens = 4;
  auto bad_id = engine.Generate({{1, 200}}, params);
  ASSERT_FALSE(bad_id.ok());
  EXPECT_THAT(bad_id.status().message(), ::testing::HasSubstr("200"));
  auto empty = engine.Generate({{}}, params);
  EXPECT_FALSE(empty.ok());
}

}  // namespace
}  // namespace hone
