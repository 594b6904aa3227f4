// The transformer against an independent float64 reference written with plain loops,
// for each family variant; save/load round trips; gradients against finite differences.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "framework/model/model.h"
#include "framework/model/safetensors.h"
#include "tests/support/temp_dir.h"

namespace hone {
namespace {

using Vec = std::vector<double>;
using Mat = std::vector<Vec>;  // rows

// ---- independent reference: weights as double matrices, everything in loops ----
struct Ref {
  std::map<std::string, Mat> w;  // 2-d weights [out][in], 1-d stored as one row
  const Mat& W(const std::string& n) const { return w.at(n); }
  bool Has(const std::string& n) const { return w.count(n) > 0; }
};

Ref ExtractWeights(CausalLM& model) {
  Ref ref;
  for (const auto& item : model->named_parameters()) {
    auto t = item.value().detach().to(torch::kFloat64).contiguous();
    if (t.dim() == 1) t = t.unsqueeze(0);
    Mat m(t.size(0), Vec(t.size(1)));
    auto a = t.accessor<double, 2>();
    for (int64_t i = 0; i < t.size(0); ++i)
      for (int64_t j = 0; j < t.size(1); ++j) m[i][j] = a[i][j];
    ref.w[item.key()] = m;
  }
  return ref;
}

Vec MatVec(const Mat& m, const Vec& x) {
  Vec y(m.size(), 0.0);
  for (size_t i = 0; i < m.size(); ++i)
    for (size_t j = 0; j < x.size(); ++j) y[i] += m[i][j] * x[j];
  return y;
}
void AddBias(const Ref& r, const std::string& name, Vec& y) {
  if (!r.Has(name)) return;
  for (size_t i = 0; i < y.size(); ++i) y[i] += r.W(name)[0][i];
}
Vec RmsNorm(const Vec& x, const Vec& weight, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  double scale = 1.0 / std::sqrt(ss / x.size() + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * scale * weight[i];
  return y;
}
// Frequencies straight from the published formulas (HF rotate_half convention).
Vec RefInvFreq(const ModelConfig& c) {
  Vec f;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    double freq = 1.0 / std::pow(c.rope_theta, (2.0 * i) / c.head_dim);
    const auto& rs = c.rope_scaling;
    if (rs.rope_type == "linear") freq /= rs.factor;
    if (rs.rope_type == "llama3") {
      double wavelen = 2 * M_PI / freq;
      double lo = rs.original_max_position_embeddings / rs.low_freq_factor;
      double hi = rs.original_max_position_embeddings / rs.high_freq_factor;
      if (wavelen > lo) {
        freq = freq / rs.factor;
      } else if (wavelen >= hi) {
        double s = (rs.original_max_position_embeddings / wavelen - rs.low_freq_factor) /
                   (rs.high_freq_factor - rs.low_freq_factor);
        freq = (1 - s) * freq / rs.factor + s * freq;
      }
    }
    f.push_back(freq);
  }
  return f;
}
void Rope(Vec& x, int64_t head, int64_t dim, int64_t pos, const Vec& inv_freq) {
  const int64_t half = dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    double a = x[head * dim + i], b = x[head * dim + i + half];
    double angle = pos * inv_freq[i];
    x[head * dim + i] = a * std::cos(angle) - b * std::sin(angle);
    x[head * dim + i + half] = b * std::cos(angle) + a * std::sin(angle);
  }
}

// logits[t][v] for one unpadded sequence.
Mat ReferenceForward(const ModelConfig& c, const Ref& r, const std::vector<int64_t>& ids) {
  const int64_t T = ids.size(), H = c.num_attention_heads, K = c.num_key_value_heads,
                D = c.head_dim;
  const Vec inv_freq = RefInvFreq(c);
  Mat h(T);
  for (int64_t t = 0; t < T; ++t) h[t] = r.W("model.embed_tokens.weight")[ids[t]];
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    Mat q(T), k(T), v(T);
    for (int64_t t = 0; t < T; ++t) {
      Vec x = RmsNorm(h[t], r.W(p + "input_layernorm.weight")[0], c.rms_norm_eps);
      q[t] = MatVec(r.W(p + "self_attn.q_proj.weight"), x);
      k[t] = MatVec(r.W(p + "self_attn.k_proj.weight"), x);
      v[t] = MatVec(r.W(p + "self_attn.v_proj.weight"), x);
      AddBias(r, p + "self_attn.q_proj.bias", q[t]);
      AddBias(r, p + "self_attn.k_proj.bias", k[t]);
      AddBias(r, p + "self_attn.v_proj.bias", v[t]);
      for (int64_t hh = 0; hh < H; ++hh) {
        if (c.qk_norm) {
          Vec part(q[t].begin() + hh * D, q[t].begin() + (hh + 1) * D);
          part = RmsNorm(part, r.W(p + "self_attn.q_norm.weight")[0], c.rms_norm_eps);
          std::copy(part.begin(), part.end(), q[t].begin() + hh * D);
        }
        Rope(q[t], hh, D, t, inv_freq);
      }
      for (int64_t kk = 0; kk < K; ++kk) {
        if (c.qk_norm) {
          Vec part(k[t].begin() + kk * D, k[t].begin() + (kk + 1) * D);
          part = RmsNorm(part, r.W(p + "self_attn.k_norm.weight")[0], c.rms_norm_eps);
          std::copy(part.begin(), part.end(), k[t].begin() + kk * D);
        }
        Rope(k[t], kk, D, t, inv_freq);
      }
    }
    for (int64_t t = 0; t < T; ++t) {
      Vec attn(H * D, 0.0);
      for (int64_t hh = 0; hh < H; ++hh) {
        const int64_t kv = hh / (H / K);
        Vec scores(t + 1);
        double mx = -1e300;
        for (int64_t s = 0; s <= t; ++s) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += q[t][hh * D + d] * k[s][kv * D + d];
          scores[s] = dot / std::sqrt(double(D));
          mx = std::max(mx, scores[s]);
        }
        double z = 0;
        for (double& sc : scores) z += (sc = std::exp(sc - mx));
        for (int64_t s = 0; s <= t; ++s)
          for (int64_t d = 0; d < D; ++d) attn[hh * D + d] += scores[s] / z * v[s][kv * D + d];
      }
      Vec o = MatVec(r.W(p + "self_attn.o_proj.weight"), attn);
      AddBias(r, p + "self_attn.o_proj.bias", o);
      for (size_t i = 0; i < o.size(); ++i) h[t][i] += o[i];
      Vec x = RmsNorm(h[t], r.W(p + "post_attention_layernorm.weight")[0], c.rms_norm_eps);
      Vec g = MatVec(r.W(p + "mlp.gate_proj.weight"), x);
      Vec u = MatVec(r.W(p + "mlp.up_proj.weight"), x);
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      Vec down = MatVec(r.W(p + "mlp.down_proj.weight"), g);
      for (size_t i = 0; i < down.size(); ++i) h[t][i] += down[i];
    }
  }
  const Mat& head = c.tie_word_embeddings ? r.W("model.embed_tokens.weight") : r.W("lm_head.weight");
  Mat logits(T);
  for (int64_t t = 0; t < T; ++t)
    logits[t] = MatVec(head, RmsNorm(h[t], r.W("model.norm.weight")[0], c.rms_norm_eps));
  return logits;
}

ModelConfig TinyConfig(const std::string& variant) {
  ModelConfig c;
  c.vocab_size = 37;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 4;
  c.max_position_embeddings = 64;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000;
  c.initializer_range = 0.3;  // large weights: differences between variants show up
  if (variant == "llama3") {
    c.head_dim = 8;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 1;
    c.rope_scaling = {"llama3", 4.0, 1.0, 4.0, 64};  // every llama3 branch is taken
  } else if (variant == "qwen2") {
    c.model_type = "qwen2";
    c.attention_bias = true;
    c.tie_word_embeddings = true;
  } else if (variant == "qwen3") {
    c.model_type = "qwen3";
    c.qk_norm = true;
    c.head_dim = 8;  // not hidden/heads: q_proj is 16 -> 32
  }
  return c;
}

class ModelFamilyTest : public ::testing::TestWithParam<std::string> {};

// float32 model vs float64 loops: logits agree to 2e-4 absolute (values are O(1)).
TEST_P(ModelFamilyTest, ForwardMatchesFloat64Reference) {
  ModelConfig config = TinyConfig(GetParam());
  CausalLM model = InitModel(config, 7);
  {
    // Non-trivial norm weights and biases, so that they are exercised.
    torch::NoGradGuard ng;
    for (auto& p : model->named_parameters())
      if (p.key().find("norm") != std::string::npos || p.key().find("bias") != std::string::npos)
        p.value().uniform_(0.5, 1.5);
  }
  Ref ref = ExtractWeights(model);
  std::vector<int64_t> ids = {3, 17, 0, 36, 5, 5, 12, 30, 1, 9, 22, 4};
  torch::NoGradGuard no_grad;
  auto logits = model->Forward(torch::tensor(ids).unsqueeze(0));
  Mat expected = ReferenceForward(config, ref, ids);
  double max_err = 0;
  for (size_t t = 0; t < ids.size(); ++t)
    for (int64_t v = 0; v < config.vocab_size; ++v)
      max_err = std::max(max_err, std::abs(logits[0][t][v].item<double>() - expected[t][v]));
  EXPECT_LT(max_err, 2e-4) << GetParam();
}

// Left padding with a key mask and shifted positions gives the unpadded logits.
TEST_P(ModelFamilyTest, LeftPaddingIsInvisible) {
  ModelConfig config = TinyConfig(GetParam());
  CausalLM model = InitModel(config, 3);
  torch::NoGradGuard no_grad;
  auto ids = torch::tensor(std::vector<int64_t>{4, 8, 15, 16, 23}).unsqueeze(0);
  auto plain = model->Forward(ids);
  auto padded_ids = torch::tensor(std::vector<int64_t>{0, 0, 4, 8, 15, 16, 23}).unsqueeze(0);
  auto positions = torch::tensor(std::vector<int64_t>{0, 0, 0, 1, 2, 3, 4}).unsqueeze(0);
  auto valid = torch::tensor(std::vector<int64_t>{0, 0, 1, 1, 1, 1, 1}).to(torch::kBool).unsqueeze(0);
  auto padded = model->Forward(padded_ids, positions, valid);
  EXPECT_TRUE(torch::allclose(padded.narrow(1, 2, 5), plain, 1e-5, 1e-5));
}

INSTANTIATE_TEST_SUITE_P(Families, ModelFamilyTest,
                         ::testing::Values("llama", "llama3", "qwen2", "qwen3"));

TEST(ModelIoTest, SaveLoadRoundTripIsBitExact) {
  for (const std::string variant : {"llama", "qwen2", "qwen3"}) {
    ModelConfig config = TinyConfig(variant);
    CausalLM model = InitModel(config, 11);
    const std::string dir = hone::testing_support::ProcessTempDir() + "/roundtrip_" + variant;
    ASSERT_TRUE(SaveModel(model, dir).ok());
    auto loaded = LoadModel(dir);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    auto a = model->named_parameters();
    auto b = (*loaded)->named_parameters();
    ASSERT_EQ(a.size(), b.size());
    for (const auto& item : a) EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
    EXPECT_EQ((*loaded)->config().model_type, config.model_type);
    EXPECT_EQ((*loaded)->config().head_dim, config.head_dim);
  }
}

TEST(ModelIoTest, Bf16SaveRoundsLikeTorch) {
  CausalLM model = InitModel(TinyConfig("llama"), 5);
  const std::string dir = hone::testing_support::ProcessTempDir() + "/bf16";
  ASSERT_TRUE(SaveModel(model, dir, "BF16").ok());
  auto loaded = LoadModel(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto b = (*loaded)->named_parameters();
  for (const auto& item : model->named_parameters())
    EXPECT_TRUE(torch::equal(item.value().to(torch::kBFloat16).to(torch::kFloat32), b[item.key()]));
}

TEST(ModelIoTest, MissingOrMisshapenTensorsAreClearErrors) {
  ModelConfig config = TinyConfig("llama");
  CausalLM model = InitModel(config, 1);
  const std::string dir = hone::testing_support::ProcessTempDir() + "/broken";
  ASSERT_TRUE(SaveModel(model, dir).ok());
  auto tensors = ReadSafetensorsDir(dir);
  ASSERT_TRUE(tensors.ok());
  TensorMap missing = *tensors;
  missing.erase("model.layers.1.mlp.up_proj.weight");
  ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", missing).ok());
  auto loaded = LoadModel(dir);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), ::testing::HasSubstr("model.layers.1.mlp.up_proj.weight"));

  // Truncated weights file.
  ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", *tensors).ok());
  std::filesystem::resize_file(dir + "/model.safetensors",
                               std::filesystem::file_size(dir + "/model.safetensors") / 2);
  loaded = LoadModel(dir);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), ::testing::HasSubstr("model.safetensors"));
}

// d(loss)/d(param) by autograd vs central differences, all in float64.
TEST(ModelGradientTest, MatchesFiniteDifferences) {
  for (const std::string variant : {"llama", "qwen3"}) {
    ModelConfig config = TinyConfig(variant);
    CausalLM model = InitModel(config, 2);
    model->to(torch::kFloat64);
    auto ids = torch::tensor(std::vector<int64_t>{1, 5, 9, 2, 7}).unsqueeze(0);
    auto probe = torch::randn({1, 5, config.vocab_size}, torch::kFloat64);
    auto loss_fn = [&] { return (model->Forward(ids) * probe).sum(); };
    model->zero_grad();
    loss_fn().backward();
    torch::NoGradGuard no_grad;
    for (const char* name : {"model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.up_proj.weight",
                             "model.embed_tokens.weight", "model.norm.weight"}) {
      auto param = model->named_parameters()[name];
      auto flat = param.view({-1});
      auto grad = param.grad().view({-1});
      for (int64_t i : {int64_t{0}, flat.size(0) / 3, flat.size(0) - 1}) {
        const double eps = 1e-6, original = flat[i].item<double>();
        flat[i] = original + eps;
        double plus = loss_fn().item<double>();
        flat[i] = original - eps;
        double minus = loss_fn().item<double>();
        flat[i] = original;
        double numeric = (plus - minus) / (2 * eps);
        EXPECT_NEAR(grad[i].item<double>(), numeric, 1e-6 + 1e-5 * std::abs(numeric))
            << variant << " " << name << "[" << i << "]";
      }
    }
  }
}

}  // namespace
}  // namespace hone
