// The trainer's chunked log-probs (workers/trainer/token_logprobs.h) against the plain
// [B,T,V] computation and finite differences, and padded vocabularies end to end: a model
// whose embedding is larger than its tokenizer (the real Qwen shape) never samples a
// padded id, and the rollout's log-probs equal the trainer's.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "framework/algo/algo.h"
#include "framework/engine/engine.h"
#include "framework/model/pretrained.h"
#include "tests/support/test_data.h"
#include "tests/support/tiny_policy.h"
#include "workers/controller/step_metrics.h"
#include "workers/rollout/local_rollout.h"
#include "workers/trainer/local_trainer.h"
#include "workers/trainer/token_logprobs.h"

namespace hone {
namespace {

namespace fs = std::filesystem;
constexpr double kInf = std::numeric_limits<double>::infinity();

double MaxDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// The plain computation: full logits, ids >= limit at -inf, log_softmax, gather, entropy.
struct Plain {
  torch::Tensor logprobs, entropy;
};
Plain PlainLogProbs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                    double temperature, int64_t limit) {
  auto logits = torch::matmul(hidden, weight.t());
  auto padded = torch::arange(weight.size(0), torch::kInt64) >= limit;
  auto logp = torch::log_softmax(logits.masked_fill(padded, -kInf) / temperature, -1);
  auto p = logp.exp();
  auto entropy = -(p * logp.masked_fill(padded, 0)).sum(-1);
  return {logp.gather(1, targets.unsqueeze(1)).squeeze(1), entropy};
}

struct Inputs {
  torch::Tensor hidden, weight, targets, a, b;  // a, b: weights of a test loss
};
Inputs RandomInputs(int64_t N, int64_t C, int64_t V, int64_t limit, torch::Dtype dtype) {
  torch::manual_seed(7);
  Inputs in;
  in.hidden = (torch::randn({N, C}, dtype) * 2).requires_grad_(true);
  in.weight = torch::randn({V, C}, dtype).requires_grad_(true);
  in.targets = torch::randint(0, limit, {N}, torch::kInt64);
  in.a = torch::randn({N}, dtype);
  in.b = torch::randn({N}, dtype);
  return in;
}

// Chunked against plain in float64: values and both gradients, for chunk sizes that do
// and do not divide N, at T = 1 and T != 1, with and without a padded vocabulary, with
// the entropy in the loss or not.
TEST(ChunkedLogProbsTest, EqualsPlainInFloat64) {
  const int64_t N = 13, C = 8, V = 50;
  for (int64_t limit : {V, int64_t{37}}) {
    for (double temperature : {1.0, 0.7}) {
      for (bool entropy_grad : {false, true}) {
        for (int64_t chunk : {int64_t{1}, int64_t{4}, N, int64_t{100}, int64_t{0}}) {
          SCOPED_TRACE(testing::Message() << "limit " << limit << " T " << temperature << " entropy_grad "
                                          << entropy_grad << " chunk " << chunk);
          Inputs in = RandomInputs(N, C, V, limit, torch::kFloat64);
          Plain plain = PlainLogProbs(in.hidden, in.weight, in.targets, temperature, limit);
          auto plain_loss = (in.a * plain.logprobs).sum() + (entropy_grad ? (in.b * plain.entropy).sum() : torch::zeros({}, torch::kFloat64));
          auto plain_grads = torch::autograd::grad({plain_loss}, {in.hidden, in.weight});

          ChunkedLogProbs chunked =
              ChunkedTokenLogProbs(in.hidden, in.weight, in.targets, temperature, limit, chunk, entropy_grad);
          EXPECT_EQ(chunked.logprobs.scalar_type(), torch::kFloat64);
          EXPECT_LT(MaxDiff(chunked.logprobs, plain.logprobs), 1e-12);
          EXPECT_LT(MaxDiff(chunked.entropy, plain.entropy), 1e-12);
          EXPECT_EQ(chunked.entropy.requires_grad(), entropy_grad);
          auto loss = (in.a * chunked.logprobs).sum();
          if (entropy_grad) loss = loss + (in.b * chunked.entropy).sum();
          auto grads = torch::autograd::grad({loss}, {in.hidden, in.weight});
          EXPECT_LT(MaxDiff(grads[0], plain_grads[0]), 1e-12);
          EXPECT_LT(MaxDiff(grads[1], plain_grads[1]), 1e-12);
          // Padded rows of the head get no gradient.
          if (limit < V) {
            EXPECT_EQ(grads[1].narrow(0, limit, V - limit).abs().max().item<double>(), 0.0);
          }
        }
      }
    }
  }
}

// Backward against central finite differences of the forward, in float64.
TEST(ChunkedLogProbsTest, GradientsMatchFiniteDifferences) {
  const int64_t N = 6, C = 5, V = 23, limit = 19;
  const double temperature = 0.8, eps = 1e-6;
  Inputs in = RandomInputs(N, C, V, limit, torch::kFloat64);
  auto loss_of = [&](const torch::Tensor& hidden, const torch::Tensor& weight) {
    ChunkedLogProbs out = ChunkedTokenLogProbs(hidden, weight, in.targets, temperature, limit, 4, true);
    return (in.a * out.logprobs).sum() + (in.b * out.entropy).sum();
  };
  auto grads = torch::autograd::grad({loss_of(in.hidden, in.weight)}, {in.hidden, in.weight});
  torch::NoGradGuard no_grad;
  for (int which = 0; which < 2; ++which) {
    torch::Tensor base = (which == 0 ? in.hidden : in.weight).detach();
    auto flat_grad = grads[which].reshape(-1);
    for (int64_t i = 0; i < base.numel(); i += (which == 0 ? 1 : 3)) {
      auto plus = base.clone(), minus = base.clone();
      plus.view(-1)[i] += eps;
      minus.view(-1)[i] -= eps;
      const double up = (which == 0 ? loss_of(plus, in.weight) : loss_of(in.hidden, plus)).item<double>();
      const double down = (which == 0 ? loss_of(minus, in.weight) : loss_of(in.hidden, minus)).item<double>();
      EXPECT_NEAR(flat_grad[i].item<double>(), (up - down) / (2 * eps), 1e-7) << (which == 0 ? "hidden " : "weight ") << i;
    }
  }
}

// A target the softmax leaves out scores -inf and passes no gradient; nothing is NaN.
TEST(ChunkedLogProbsTest, TargetsOutsideTheVocabularyScoreMinusInfinity) {
  const int64_t N = 4, C = 3, V = 10, limit = 7;
  Inputs in = RandomInputs(N, C, V, limit, torch::kFloat64);
  auto targets = torch::tensor({1, 8, 6, 9}, torch::kInt64);
  ChunkedLogProbs out = ChunkedTokenLogProbs(in.hidden, in.weight, targets, 1.0, limit, 3);
  EXPECT_TRUE(std::isfinite(out.logprobs[0].item<double>()));
  EXPECT_EQ(out.logprobs[1].item<double>(), -kInf);
  EXPECT_EQ(out.logprobs[3].item<double>(), -kInf);
  auto grads = torch::autograd::grad({(out.logprobs.masked_fill(out.logprobs.isinf(), 0) * in.a).sum()},
                                     {in.hidden, in.weight});
  EXPECT_FALSE(grads[0].isnan().any().item<bool>());
  EXPECT_FALSE(grads[1].isnan().any().item<bool>());
  auto only_valid = torch::autograd::grad(
      {(PlainLogProbs(in.hidden, in.weight, torch::tensor({1, 0, 6, 0}, torch::kInt64), 1.0, limit).logprobs *
        in.a * torch::tensor({1.0, 0.0, 1.0, 0.0}, torch::kFloat64))
           .sum()},
      {in.hidden, in.weight});
  EXPECT_LT(MaxDiff(grads[0], only_valid[0]), 1e-12);
  EXPECT_LT(MaxDiff(grads[1], only_valid[1]), 1e-12);
}

// What ComputeTokenLogProbs computed before it was chunked: full [B,T,V] logits.
TokenLogProbs FullLogitsReference(CausalLM& model, const torch::Tensor& ids, const torch::Tensor& attention,
                                  double temperature) {
  const int64_t B = ids.size(0), T = ids.size(1);
  auto positions = torch::arange(T, torch::kInt64).unsqueeze(0).expand({B, T});
  auto logits = model->Forward(ids, positions, attention.to(torch::kBool));
  auto predicting = logits.narrow(1, 0, T - 1);
  auto logprobs = algo::GatherLogProbs(predicting, ids.narrow(1, 1, T - 1), temperature);
  auto entropy = algo::EntropyFromLogits(predicting / temperature);
  auto zero = torch::zeros({B, 1}, logprobs.options());
  return {torch::cat({zero, logprobs}, 1), torch::cat({zero, entropy}, 1)};
}

// The model-level function equals the full-logits computation at every scored position
// (values and parameter gradients), and is 0 elsewhere; in float32 and float64.
TEST(ComputeTokenLogProbsTest, EqualsFullLogitsComputation) {
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    for (double temperature : {1.0, 0.6}) {
      SCOPED_TRACE(testing::Message() << "dtype " << dtype << " T " << temperature);
      Pretrained policy = testing_support::TinyPolicy(3);
      policy.model->to(dtype);
      const int64_t B = 3, T = 9, V = policy.model->config().vocab_size;
      torch::manual_seed(1);
      auto ids = torch::randint(0, V, {B, T}, torch::kInt64);
      auto lengths = torch::tensor({9, 6, 4}, torch::kInt64);
      auto attention = torch::arange(T).unsqueeze(0) < lengths.unsqueeze(1);
      auto response = attention.logical_and(torch::arange(T).unsqueeze(0) >= 3).to(torch::kFloat32);
      const double tol = dtype == torch::kFloat64 ? 1e-12 : 2e-5;
      auto params = policy.model->parameters();

      auto reference = FullLogitsReference(policy.model, ids, attention, temperature);
      auto weights = torch::randn({B, T}, reference.logprobs.options());
      auto ref_grads = torch::autograd::grad(
          {(reference.logprobs * weights * response).sum() + (reference.entropy * response).sum()}, params);

      // Every real token scored (no score mask).
      auto all = ComputeTokenLogProbs(policy.model, ids, attention, temperature, true, true);
      auto scored = attention.clone();
      scored.select(1, 0).fill_(false);
      EXPECT_LT(MaxDiff(all.logprobs * scored, reference.logprobs * scored), tol);
      EXPECT_LT(MaxDiff(all.entropy * scored, reference.entropy * scored), tol);
      EXPECT_EQ(all.logprobs.masked_select(scored.logical_not()).abs().max().item<double>(), 0.0);

      // Only the response scored; the loss's gradients are the reference's.
      auto resp = ComputeTokenLogProbs(policy.model, ids, attention, temperature, true, true, response);
      EXPECT_LT(MaxDiff(resp.logprobs * response, reference.logprobs * response), tol);
      EXPECT_EQ(resp.logprobs.masked_select(response == 0).abs().max().item<double>(), 0.0);
      auto grads = torch::autograd::grad({(resp.logprobs * weights * response).sum() + (resp.entropy * response).sum()},
                                         params);
      for (size_t i = 0; i < params.size(); ++i) {
        const double scale = std::max(1.0, ref_grads[i].abs().max().item<double>());
        EXPECT_LT(MaxDiff(grads[i], ref_grads[i]) / scale, tol * 10) << i;
      }

      // Without entropy_grad the entropy is a value only; without grad nothing is tracked.
      auto no_entropy_grad = ComputeTokenLogProbs(policy.model, ids, attention, temperature, true, false, response);
      EXPECT_TRUE(no_entropy_grad.logprobs.requires_grad());
      EXPECT_FALSE(no_entropy_grad.entropy.requires_grad());
      auto no_grad = ComputeTokenLogProbs(policy.model, ids, attention, temperature, false);
      EXPECT_FALSE(no_grad.logprobs.requires_grad());
      EXPECT_LT(MaxDiff(no_grad.logprobs, all.logprobs), tol);
    }
  }
}

// The sampling chain never picks an id at or above vocab_limit, even when those logits
// are the largest, and reports log-probs of the distribution over the kept ids.
TEST(SamplingVocabLimitTest, NeverSamplesPastTheLimit) {
  const int64_t N = 64, V = 40, limit = 30;
  torch::manual_seed(2);
  auto logits = torch::randn({N, V});
  logits.narrow(1, limit, V - limit).fill_(50.0f);
  std::vector<uint64_t> streams;
  for (int64_t i = 0; i < N; ++i) streams.push_back(SequenceStream(5, i, 0));
  for (double temperature : {0.0, 1.0, 0.7}) {
    for (int64_t top_k : {0, 5}) {
      SamplingParams params;
      params.temperature = temperature;
      params.top_k = top_k;
      params.vocab_limit = limit;
      SampledTokens out = SampleNextTokens(logits, params, streams, 0);
      EXPECT_LT(out.tokens.max().item<int64_t>(), limit);
      const double t = temperature > 0 ? temperature : 1.0;
      auto expected = torch::log_softmax(logits.narrow(1, 0, limit) / t, -1).gather(1, out.tokens.unsqueeze(1)).squeeze(1);
      EXPECT_LT(MaxDiff(out.logprobs, expected), 1e-6);
      params.vocab_limit = 0;  // the test bites: without the limit the padded ids win
      EXPECT_GE(SampleNextTokens(logits, params, streams, 0).tokens.min().item<int64_t>(), limit);
    }
  }
}

// The real shape: config.json vocab_size 151936, the Qwen3 tokenizer's 151669 ids, a tiny
// body. The padded rows of the head are set to give the largest logits on purpose.
class PaddedVocabularyTest : public ::testing::Test {
 protected:
  static constexpr int64_t kModelVocab = 151936;

  void SetUp() override {
    const std::string tokenizer_path = testing_support::TestDataDir() + "/qwen3/tokenizer.json";
    auto tokenizer = LoadTokenizer(tokenizer_path);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    decodable_ = (*tokenizer)->VocabSize();
    ASSERT_EQ(decodable_, 151669);
    ModelConfig c;
    c.model_type = "qwen2";
    c.attention_bias = true;
    c.vocab_size = kModelVocab;
    c.hidden_size = 16;
    c.intermediate_size = 32;
    c.num_hidden_layers = 1;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 1;
    c.head_dim = 8;
    c.max_position_embeddings = 128;
    c.tie_word_embeddings = false;
    c.eos_token_ids = {151643};
    CausalLM model = InitModel(c, 4);
    {
      torch::NoGradGuard no_grad;
      auto head = model->OutputWeight();
      torch::manual_seed(3);
      // Random directions of norm 40: for any hidden state some padded row's logit is
      // tens of nats above every real one.
      auto padded = torch::randn({kModelVocab - decodable_, c.hidden_size});
      head.narrow(0, decodable_, kModelVocab - decodable_).copy_(padded / padded.norm(2, 1, true) * 40);
    }
    dir_ = (fs::temp_directory_path() / ("hone_padded_vocab_" + std::to_string(::getpid()))).string();
    std::ifstream in(tokenizer_path, std::ios::binary);
    std::stringstream json;
    json << in.rdbuf();
    ASSERT_TRUE(SavePretrained(model, json.str(), dir_).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_;
  int64_t decodable_ = 0;
};

TEST_F(PaddedVocabularyTest, RolloutNeverSamplesPaddedIdsAndAgreesWithTheTrainer) {
  auto loaded = LoadPretrained(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  Pretrained policy = std::move(*loaded);
  EXPECT_EQ(policy.model->config().vocab_size, kModelVocab);
  EXPECT_EQ(policy.model->config().UsableVocabSize(), decodable_);

  auto prompts = MakePromptBatch(*policy.tokenizer, {"Natalia sold clips to 48 of her friends.", "2+2="},
                                 {"72", "4"}, 0);
  ASSERT_TRUE(prompts.ok()) << prompts.status();
  // The test bites: without the mask the padded rows win the next token.
  {
    torch::NoGradGuard no_grad;
    auto logits = policy.model->Forward(prompts->tensor("prompt_ids").narrow(0, 0, 1));
    EXPECT_GE(logits[0][-1].argmax().item<int64_t>(), decodable_);
  }

  auto rollout = LocalRollout::Create(policy);
  ASSERT_TRUE(rollout.ok()) << rollout.status();
  SamplingParams sampling;
  sampling.n = 4;
  sampling.temperature = 1.0;
  sampling.max_new_tokens = 16;
  sampling.seed = 11;
  auto batch = (*rollout)->Generate(*prompts, sampling);
  ASSERT_TRUE(batch.ok()) << batch.status();
  auto ids = batch->tensor("input_ids"), mask = batch->tensor("response_mask");
  EXPECT_GT(mask.sum().item<double>(), 0);
  EXPECT_LT(ids.max().item<int64_t>(), decodable_);

  auto trainer = LocalPolicyTrainer::Create(std::move(policy), TrainerOptions{});
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  auto logprobs = (*trainer)->ComputeLogProbs(*batch);
  ASSERT_TRUE(logprobs.ok()) << logprobs.status();
  auto agreement = LogProbAgreement(batch->tensor("rollout_logprobs"), logprobs->old_logprobs, mask);
  EXPECT_LT(agreement["rollout_logprob_diff_max"], 1e-4);

  // And a policy update runs on them (the step that failed before).
  ASSERT_TRUE(batch->SetTensor("old_logprobs", logprobs->old_logprobs).ok());
  ASSERT_TRUE(batch->SetTensor("advantages", torch::randn({batch->size(), 1}) * mask).ok());
  auto metrics = (*trainer)->Update(*batch);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_TRUE(std::isfinite(metrics->at("grad_norm")));
}

// The engine alone applies the model's limit too (hone generate / eval), and the decoded
// text of a padded id is empty rather than an error.
TEST_F(PaddedVocabularyTest, EngineUsesTheModelsLimitAndDecodingIsNeverFatal) {
  Pretrained policy = *LoadPretrained(dir_);
  GenerationEngine engine(policy.model);
  SamplingParams sampling;
  sampling.n = 8;
  sampling.max_new_tokens = 8;
  auto result = engine.Generate({{9707, 1879}}, sampling);
  ASSERT_TRUE(result.ok()) << result.status();
  for (const auto& seq : result->sequences) {
    for (int64_t token : seq.tokens) EXPECT_LT(token, decodable_);
  }
  auto text = policy.tokenizer->Decode({9707, 151769, 1879});
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "Hello world");
}

}  // namespace
}  // namespace hone
