// One GRPO update against an independent reference. tools/reference/grpo_update_reference.py
// (PyTorch, float64, its own Llama forward and verl's core_algos formulas; no Hone code)
// computed one update from the same tiny model and trajectories and wrote the resulting
// parameters to tests/fixtures/grpo_reference/expected_params.safetensors. Hone's update
// must land on the same parameters to 1e-5: that checks the gradient of the whole
// forward/backward (token_mean over the mini-batch, clip-higher, dual clip, k3 KL, entropy
// bonus, two micro-batches of different widths, grad-norm clipping, AdamW), not only a
// loss value. The second group of tests shows that the check can fail: plausible wrong
// gradients miss the fixture by far more than the tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "framework/algo/algo.h"
#include "framework/model/pretrained.h"
#include "framework/model/safetensors.h"
#include "workers/trainer/local_trainer.h"
#include "workers/trainer/policy_gradient.h"

namespace hone {
namespace {

// Tests run with the project root as working directory.
const std::string kFixture = "tests/fixtures/grpo_reference";
constexpr double kTolerance = 1e-5;

using Tensors = std::map<std::string, torch::Tensor>;

Tensors ReadTensors(const std::string& path) {
  auto raw = ReadSafetensors(path);
  EXPECT_TRUE(raw.ok()) << raw.status();
  Tensors out;
  if (!raw.ok()) return out;
  for (const auto& [name, t] : *raw) {
    torch::Dtype dtype = torch::kFloat32;
    switch (t.dtype) {
      case DType::kF32: dtype = torch::kFloat32; break;
      case DType::kF64: dtype = torch::kFloat64; break;
      case DType::kI64: dtype = torch::kInt64; break;
      case DType::kBool: dtype = torch::kBool; break;
      default: ADD_FAILURE() << path << ": unexpected dtype of " << name; continue;
    }
    auto tensor = torch::empty(t.shape, dtype);
    EXPECT_EQ(static_cast<size_t>(tensor.nbytes()), t.data.size()) << name;
    std::memcpy(tensor.data_ptr(), t.data.data(), t.data.size());
    out[name] = tensor;
  }
  return out;
}

// The trajectories the reference trained on, as Hone's rollout would hand them over.
Batch Trajectories() {
  Tensors t = ReadTensors(kFixture + "/trajectories.safetensors");
  Batch batch;
  for (const char* name : {"input_ids", "attention_mask", "response_mask", "advantages", "old_logprobs",
                           "ref_logprobs"}) {
    if (t.count(name) == 0) {
      ADD_FAILURE() << "trajectories.safetensors has no " << name;
      continue;
    }
    EXPECT_TRUE(batch.SetTensor(name, t[name]).ok()) << name;
  }
  if (t.count("temperature")) {
    batch.meta["temperature"] = absl::StrFormat("%.17g", t["temperature"].item<double>());
  }
  return batch;
}

// The settings of the reference (OPTIONS in tools/reference/grpo_update_reference.py).
TrainerOptions ReferenceOptions() {
  TrainerOptions o;
  o.ppo_epochs = 1;
  o.ppo_mini_batch_size = 0;  // one mini-batch: all 6 rows, one optimizer step
  o.micro_batch_size = 4;     // micro-batches of 4 and 2 rows, 35 and 21 positions wide
  o.loss_agg_mode = "token_mean";
  o.clip_ratio_low = 0.2;
  o.clip_ratio_high = 0.28;  // clip-higher
  o.clip_ratio_c = 3.0;      // verl's vanilla loss always applies the dual clip (default 3)
  o.kl_coef = 0.2;
  o.kl_estimator = "k3";
  o.reference_path = "";  // a copy of the initial policy; Update reads ref_logprobs from the batch
  o.entropy_coef = 0.01;
  // AdamW's first step is lr * g / (|g| + eps): eps = 1 keeps it about lr * g, so a gradient
  // error shows in the parameters linearly instead of vanishing in sign(g); lr = 10 puts
  // the 1e-5 tolerance at 1e-6 of gradient.
  o.lr = 10.0;
  o.beta1 = 0.9;
  o.beta2 = 0.999;
  o.eps = 1.0;
  o.weight_decay = 0.01;
  o.grad_clip = 1.0;  // the gradient's norm is about 1.96: the clip is active
  o.warmup_steps = 0;
  o.schedule = "constant";
  return o;
}

Pretrained InitialModel() {
  auto p = LoadPretrained(kFixture + "/model");
  EXPECT_TRUE(p.ok()) << p.status();
  return std::move(*p);
}

// Largest |param - expected| over all parameters (and the parameter where it is).
// Every expected tensor must exist in the model with its shape, and the other way round.
double MaxDiffToExpected(CausalLM& model, const Tensors& expected, std::string* where = nullptr) {
  double worst = 0;
  size_t seen = 0;
  for (const auto& item : model->named_parameters()) {
    auto it = expected.find(item.key());
    if (it == expected.end()) {
      ADD_FAILURE() << "expected_params has no " << item.key();
      return INFINITY;
    }
    EXPECT_EQ(it->second.sizes(), item.value().sizes()) << item.key();
    if (it->second.sizes() != item.value().sizes()) return INFINITY;
    ++seen;
    const double diff =
        (item.value().detach().to(torch::kFloat64) - it->second.to(torch::kFloat64)).abs().max().item<double>();
    if (!(diff <= worst)) {
      worst = diff;
      if (where) *where = item.key();
    }
  }
  EXPECT_EQ(seen, expected.size()) << "expected_params has tensors the model does not";
  return worst;
}

TEST(ReferenceUpdate, FixtureHasTwoMicroBatchesOfDifferentLengths) {
  Batch batch = Trajectories();
  const TrainerOptions o = ReferenceOptions();
  ASSERT_EQ(batch.size(), 6);
  const auto& attention = batch.tensor("attention_mask");
  const auto& mask = batch.tensor("response_mask");
  EXPECT_EQ(UsedWidth(attention, 0, 4), 35);
  EXPECT_EQ(UsedWidth(attention, 4, 2), 21);
  EXPECT_NE(CountRows(mask, 0, o.micro_batch_size).tokens, CountRows(mask, o.micro_batch_size, 6).tokens);
}

TEST(ReferenceUpdate, MatchesIndependentReference) {
  const Batch batch = Trajectories();
  Pretrained initial = InitialModel();
  auto trainer = LocalPolicyTrainer::Create(std::move(initial), ReferenceOptions());
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  auto metrics = (*trainer)->Update(batch);
  ASSERT_TRUE(metrics.ok()) << metrics.status();

  const Tensors expected = ReadTensors(kFixture + "/expected_params.safetensors");
  std::string where;
  const double diff = MaxDiffToExpected((*trainer)->policy().model, expected, &where);
  EXPECT_LT(diff, kTolerance) << "worst parameter: " << where;
  std::printf("max |Hone - reference| over all parameters: %.3e (at %s)\n", diff, where.c_str());

  // The reported numbers agree too: the pre-clip grad norm (so clipping really acted) and
  // the mini-batch's loss terms.
  const Tensors expected_metrics = ReadTensors(kFixture + "/expected_metrics.safetensors");
  for (const char* key : {"grad_norm", "policy_loss", "kl", "entropy", "clip_fraction", "dual_clip_fraction"}) {
    ASSERT_TRUE(expected_metrics.count(key)) << key;
    ASSERT_TRUE(metrics->count(key)) << key;
    EXPECT_NEAR((*metrics)[key], expected_metrics.at(key).item<double>(), 1e-5) << key;
  }
  EXPECT_GT((*metrics)["grad_norm"], ReferenceOptions().grad_clip) << "the clip must be active";
  EXPECT_GT((*metrics)["clip_fraction"], 0);
  EXPECT_GT((*metrics)["dual_clip_fraction"], 0);
  EXPECT_GT((*metrics)["kl"], 0);
}

// --- the check can fail ---------------------------------------------------------------

// One optimizer step done by hand from AccumulatePolicyGradient, with the denominators
// `counts_for(begin, end)` for each micro-batch instead of the mini-batch's.
template <typename CountsFn>
double HandMadeStepDiff(CountsFn counts_for) {
  const Batch batch = Trajectories();
  const TrainerOptions o = ReferenceOptions();
  Pretrained p = InitialModel();
  CausalLM& model = p.model;
  model->train();
  torch::optim::AdamWOptions adam(o.lr);
  adam.betas(std::make_tuple(o.beta1, o.beta2));
  adam.eps(o.eps);
  adam.weight_decay(o.weight_decay);
  torch::optim::AdamW optimizer(model->parameters(), adam);
  optimizer.zero_grad();
  for (int64_t start = 0; start < batch.size(); start += o.micro_batch_size) {
    const int64_t end = std::min(batch.size(), start + o.micro_batch_size);
    AccumulatePolicyGradient(model, batch, start, end, o, counts_for(batch, start, end));
  }
  torch::nn::utils::clip_grad_norm_(model->parameters(), o.grad_clip);
  optimizer.step();
  return MaxDiffToExpected(model, ReadTensors(kFixture + "/expected_params.safetensors"));
}

// Aggregating per micro-batch (each micro-batch's own token mean, divided by the number of
// micro-batches: older verl's `loss / gradient_accumulation`) instead of over the
// mini-batch is a different gradient here, because the two micro-batches hold different
// token counts. The same hand-made step with the mini-batch's counts matches, so the
// difference is the aggregation alone.
TEST(ReferenceUpdateSensitivity, PerMicroBatchTokenMeanIsCaught) {
  const double right = HandMadeStepDiff([](const Batch& b, int64_t, int64_t) {
    return CountRows(b.tensor("response_mask"), 0, b.size());
  });
  EXPECT_LT(right, kTolerance);
  const double wrong = HandMadeStepDiff([](const Batch& b, int64_t begin, int64_t end) {
    const int64_t micro = ReferenceOptions().micro_batch_size;
    const int64_t pieces = (b.size() + micro - 1) / micro;
    algo::LossDenominators counts = CountRows(b.tensor("response_mask"), begin, end);
    counts.tokens *= static_cast<double>(pieces);
    return counts;
  });
  EXPECT_GT(wrong, 100 * kTolerance);
  std::printf("hand-made step: mini-batch token mean %.3e, per-micro-batch token mean %.3e\n", right, wrong);
}

// Smaller mistakes in the loss are caught as well: each changes the gradient of a few
// tokens or a small term, and still misses the fixture by more than 10x the tolerance.
struct WrongSetting {
  const char* name;
  void (*apply)(TrainerOptions&, Batch&);
};

void PrintTo(const WrongSetting& setting, std::ostream* os) { *os << setting.name; }

class ReferenceUpdateWrongSetting : public ::testing::TestWithParam<WrongSetting> {};

TEST_P(ReferenceUpdateWrongSetting, IsCaught) {
  Batch batch = Trajectories();
  TrainerOptions options = ReferenceOptions();
  GetParam().apply(options, batch);
  auto trainer = LocalPolicyTrainer::Create(InitialModel(), options);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  ASSERT_TRUE((*trainer)->Update(batch).ok());
  const double diff = MaxDiffToExpected((*trainer)->policy().model,
                                        ReadTensors(kFixture + "/expected_params.safetensors"));
  EXPECT_GT(diff, 10 * kTolerance) << GetParam().name;
  std::printf("%s: max |Hone - reference| %.3e\n", GetParam().name, diff);
}

INSTANTIATE_TEST_SUITE_P(
    Mistakes, ReferenceUpdateWrongSetting,
    ::testing::Values(
        WrongSetting{"symmetric_clip", [](TrainerOptions& o, Batch&) { o.clip_ratio_high = o.clip_ratio_low; }},
        WrongSetting{"no_dual_clip", [](TrainerOptions& o, Batch&) { o.clip_ratio_c = 0; }},
        WrongSetting{"kl_k2_for_k3", [](TrainerOptions& o, Batch&) { o.kl_estimator = "k2"; }},
        WrongSetting{"no_entropy_bonus", [](TrainerOptions& o, Batch&) { o.entropy_coef = 0; }},
        WrongSetting{"temperature_ignored", [](TrainerOptions&, Batch& b) { b.meta["temperature"] = "1"; }},
        WrongSetting{"no_grad_clip", [](TrainerOptions& o, Batch&) { o.grad_clip = 0; }}),
    [](const ::testing::TestParamInfo<WrongSetting>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace hone
