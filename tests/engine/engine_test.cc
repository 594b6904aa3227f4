// The generation engine against full forward passes of the same model.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

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
