#include "workers/trainer/local_trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "framework/algo/algo.h"
#include "framework/core/status.h"
#include "framework/core/torch_status.h"

namespace hone {
namespace {

namespace fs = std::filesystem;

double MetaDouble(const Batch& batch, const std::string& key, double fallback) {
  auto it = batch.meta.find(key);
  return it == batch.meta.end() ? fallback : std::stod(it->second);
}

// Rows [start, start+rows) of a tensor, trimmed to the first `width` positions.
torch::Tensor Rows(const torch::Tensor& t, int64_t start, int64_t rows, int64_t width) {
  auto r = t.narrow(0, start, rows);
  return r.dim() > 1 ? r.narrow(1, 0, width) : r;
}

// Longest real sequence among the rows: positions beyond it are padding in every row.
int64_t UsedWidth(const torch::Tensor& attention_mask, int64_t start, int64_t rows) {
  return attention_mask.narrow(0, start, rows).to(torch::kInt64).sum(1).max().item<int64_t>();
}

}  // namespace

absl::StatusOr<TrainerOptions> TrainerOptionsFromConfig(const Config& c) {
  TrainerOptions o;
  o.lr = c.Float("optim.lr");
  const auto& betas = c.FloatList("optim.betas");
  if (betas.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat("optim.betas must be two numbers like [0.9, 0.999], got ",
                                                   betas.size()));
  }
  o.beta1 = betas[0];
  o.beta2 = betas[1];
  o.eps = c.Float("optim.eps");
  o.weight_decay = c.Float("optim.weight_decay");
  o.warmup_steps = c.Int("optim.warmup_steps");
  o.schedule = c.String("optim.schedule");
  o.total_steps = std::max<int64_t>(1, c.Int("trainer.total_steps"));
  o.grad_clip = c.Float("optim.grad_clip");
  o.ppo_epochs = c.Int("trainer.ppo_epochs");
  o.ppo_mini_batch_size = c.Int("trainer.ppo_mini_batch_size");
  o.micro_batch_size = c.Int("trainer.micro_batch_size");
  o.clip_ratio_low = c.Float("algorithm.clip_ratio_low");
  o.clip_ratio_high = c.Float("algorithm.clip_ratio_high");
  o.clip_ratio_c = c.Float("algorithm.clip_ratio_c");
  o.loss_agg_mode = c.String("algorithm.loss_agg_mode");
  o.loss_norm_length = c.Int("rollout.max_new_tokens");
  o.kl_coef = c.Float("algorithm.kl_coef");
  o.kl_estimator = c.String("algorithm.kl_estimator");
  o.entropy_coef = c.Float("algorithm.entropy_coef");
  algo::PolicyLossOptions loss;
  loss.clip_ratio_low = o.clip_ratio_low;
  loss.clip_ratio_high = o.clip_ratio_high;
  loss.clip_ratio_c = o.clip_ratio_c;
  loss.loss_agg_mode = o.loss_agg_mode;
  absl::Status valid = algo::ValidatePolicyLossOptions(loss);
  if (!valid.ok()) return Annotate(valid, "algorithm.clip_ratio_* / algorithm.loss_agg_mode");
  return o;
}

TokenLogProbs ComputeTokenLogProbs(CausalLM& model, const torch::Tensor& input_ids,
                                   const torch::Tensor& attention_mask, double temperature,
                                   bool with_grad) {
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  std::optional<torch::NoGradGuard> no_grad;
  if (!with_grad) no_grad.emplace();
  auto positions = torch::arange(T, torch::kInt64).unsqueeze(0).expand({B, T});
  auto logits = model->Forward(input_ids, positions, attention_mask.to(torch::kBool));
  auto predicting = logits.narrow(1, 0, T - 1);  // row t predicts token t+1
  auto targets = input_ids.narrow(1, 1, T - 1);
  const double temp = temperature > 0 ? temperature : 1.0;
  auto logprobs = algo::GatherLogProbs(predicting, targets, temp);
  auto entropy = algo::EntropyFromLogits(predicting / temp);
  auto zero = torch::zeros({B, 1}, logprobs.options());
  return {torch::cat({zero, logprobs}, 1), torch::cat({zero, entropy}, 1)};
}

LocalPolicyTrainer::LocalPolicyTrainer(Pretrained policy, TrainerOptions options)
    : policy_(std::move(policy)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<LocalPolicyTrainer>> LocalPolicyTrainer::Create(Pretrained policy,
                                                                               TrainerOptions options) {
  std::unique_ptr<LocalPolicyTrainer> trainer(new LocalPolicyTrainer(std::move(policy), options));
  HONE_RETURN_IF_ERROR(CatchTorch("creating the trainer", [&] {
    CausalLM& model = trainer->policy_.model;
    model->train();
    if (options.kl_coef > 0) {
      trainer->reference_ = CausalLM(model->config());
      torch::NoGradGuard no_grad;
      auto ref_params = trainer->reference_->named_parameters();
      for (const auto& item : model->named_parameters()) ref_params[item.key()].copy_(item.value());
      for (auto& p : trainer->reference_->parameters()) p.set_requires_grad(false);
    }
    torch::optim::AdamWOptions adam(options.lr);
    adam.betas(std::make_tuple(options.beta1, options.beta2));
    adam.eps(options.eps);
    adam.weight_decay(options.weight_decay);
    trainer->optimizer_ = std::make_unique<torch::optim::AdamW>(model->parameters(), adam);
  }));
  return trainer;
}

double LocalPolicyTrainer::current_lr() const {
  const double step = static_cast<double>(schedule_steps_);
  if (options_.warmup_steps > 0 && step < options_.warmup_steps) {
    return options_.lr * (step + 1) / options_.warmup_steps;
  }
  if (options_.schedule == "cosine") {
    const double span = std::max<double>(1, options_.total_steps - options_.warmup_steps);
    const double progress = std::min(1.0, (step - options_.warmup_steps) / span);
    return options_.lr * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  return options_.lr;
}

double LocalPolicyTrainer::OptimizerStep() {
  auto params = policy_.model->parameters();
  double norm = 0;
  if (options_.grad_clip > 0) {
    norm = torch::nn::utils::clip_grad_norm_(params, options_.grad_clip);
  } else {
    double sq = 0;
    for (const auto& p : params) {
      if (p.grad().defined()) sq += p.grad().pow(2).sum().item<double>();
    }
    norm = std::sqrt(sq);
  }
  for (auto& group : optimizer_->param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(current_lr());
  }
  optimizer_->step();
  return norm;
}

absl::StatusOr<LogProbs> LocalPolicyTrainer::ComputeLogProbs(const Batch& batch) {
  HONE_RETURN_IF_ERROR(batch.Require({"input_ids", "attention_mask"}));
  LogProbs out;
  HONE_RETURN_IF_ERROR(CatchTorch("computing log-probs", [&] {
    const double temperature = MetaDouble(batch, "temperature", 1.0);
    const auto& ids = batch.tensor("input_ids");
    const auto& mask = batch.tensor("attention_mask");
    const int64_t N = ids.size(0), T = ids.size(1), micro = options_.micro_batch_size;
    out.old_logprobs = torch::zeros({N, T});
    out.entropy = torch::zeros({N, T});
    if (reference_) out.ref_logprobs = torch::zeros({N, T});
    for (int64_t start = 0; start < N; start += micro) {
      const int64_t rows = std::min(micro, N - start);
      const int64_t width = UsedWidth(mask, start, rows);
      auto ids_m = Rows(ids, start, rows, width), mask_m = Rows(mask, start, rows, width);
      auto timer = std::chrono::steady_clock::now();
      auto current = ComputeTokenLogProbs(policy_.model, ids_m, mask_m, temperature, false);
      out.policy_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - timer).count();
      out.old_logprobs.narrow(0, start, rows).narrow(1, 0, width).copy_(current.logprobs);
      out.entropy.narrow(0, start, rows).narrow(1, 0, width).copy_(current.entropy);
      if (reference_) {
        timer = std::chrono::steady_clock::now();
        auto ref = ComputeTokenLogProbs(reference_, ids_m, mask_m, temperature, false);
        out.reference_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - timer).count();
        out.ref_logprobs.narrow(0, start, rows).narrow(1, 0, width).copy_(ref.logprobs);
      }
    }
  }));
  return out;
}

absl::StatusOr<Metrics> LocalPolicyTrainer::Update(const Batch& batch) {
  std::vector<std::string> needed = {"input_ids", "attention_mask", "response_mask", "advantages",
                                     "old_logprobs"};
  if (options_.kl_coef > 0) needed.push_back("ref_logprobs");
  HONE_RETURN_IF_ERROR(batch.Require(needed));
  Metrics metrics;
  HONE_RETURN_IF_ERROR(CatchTorch("policy update", [&]() -> absl::Status {
    const double temperature = MetaDouble(batch, "temperature", 1.0);
    const auto& ids = batch.tensor("input_ids");
    const auto& attention = batch.tensor("attention_mask");
    const int64_t N = ids.size(0);
    const int64_t mini = options_.ppo_mini_batch_size > 0 ? std::min(options_.ppo_mini_batch_size, N) : N;
    algo::PolicyLossOptions loss_options;
    loss_options.clip_ratio_low = options_.clip_ratio_low;
    loss_options.clip_ratio_high = options_.clip_ratio_high;
    loss_options.clip_ratio_c = options_.clip_ratio_c;
    loss_options.loss_agg_mode = options_.loss_agg_mode;
    loss_options.norm_length = options_.loss_norm_length;
    double sum_pg = 0, sum_kl = 0, sum_entropy = 0, sum_clip = 0, sum_dual_clip = 0, sum_approx_kl = 0,
           sum_norm = 0;
    int64_t micro_count = 0, optimizer_count = 0;
    for (int64_t epoch = 0; epoch < options_.ppo_epochs; ++epoch) {
      for (int64_t mb_start = 0; mb_start < N; mb_start += mini) {
        const int64_t mb_rows = std::min(mini, N - mb_start);
        optimizer_->zero_grad();
        for (int64_t start = mb_start; start < mb_start + mb_rows; start += options_.micro_batch_size) {
          const int64_t rows = std::min(options_.micro_batch_size, mb_start + mb_rows - start);
          const int64_t width = UsedWidth(attention, start, rows);
          auto mask = Rows(batch.tensor("response_mask"), start, rows, width);
          auto current = ComputeTokenLogProbs(policy_.model, Rows(ids, start, rows, width),
                                              Rows(attention, start, rows, width), temperature, true);
          auto pg = algo::ClippedSurrogateLoss(current.logprobs,
                                               Rows(batch.tensor("old_logprobs"), start, rows, width),
                                               Rows(batch.tensor("advantages"), start, rows, width), mask,
                                               loss_options);
          auto loss = pg.loss;
          if (options_.kl_coef > 0) {
            HONE_ASSIGN_OR_RETURN(torch::Tensor kl,
                                  algo::KlPenalty(current.logprobs,
                                                  Rows(batch.tensor("ref_logprobs"), start, rows, width),
                                                  options_.kl_estimator));
            auto kl_loss = algo::AggregateLoss(kl, mask, options_.loss_agg_mode, options_.loss_norm_length);
            loss = loss + options_.kl_coef * kl_loss;
            sum_kl += kl_loss.item<double>();
          }
          auto entropy = algo::AggregateLoss(current.entropy, mask, "token_mean");
          if (options_.entropy_coef > 0) loss = loss - options_.entropy_coef * entropy;
          (loss * (static_cast<double>(rows) / mb_rows)).backward();
          sum_pg += pg.loss.item<double>();
          sum_entropy += entropy.item<double>();
          sum_clip += pg.clip_fraction;
          sum_dual_clip += pg.dual_clip_fraction;
          sum_approx_kl += pg.approx_kl;
          ++micro_count;
        }
        sum_norm += OptimizerStep();
        ++optimizer_count;
      }
    }
    const double m = std::max<int64_t>(1, micro_count);
    metrics["policy_loss"] = sum_pg / m;
    metrics["kl"] = sum_kl / m;
    metrics["entropy"] = sum_entropy / m;
    metrics["clip_fraction"] = sum_clip / m;
    metrics["dual_clip_fraction"] = sum_dual_clip / m;
    metrics["approx_kl"] = sum_approx_kl / m;
    metrics["grad_norm"] = sum_norm / std::max<int64_t>(1, optimizer_count);
    metrics["learning_rate"] = current_lr();
    ++schedule_steps_;
    return absl::OkStatus();
  }));
  return metrics;
}

absl::StatusOr<Metrics> LocalPolicyTrainer::SftStep(const Batch& batch) {
  HONE_RETURN_IF_ERROR(batch.Require({"input_ids", "attention_mask", "response_mask"}));
  Metrics metrics;
  HONE_RETURN_IF_ERROR(CatchTorch("SFT step", [&] {
    const auto& ids = batch.tensor("input_ids");
    const auto& attention = batch.tensor("attention_mask");
    const auto& response = batch.tensor("response_mask");
    const int64_t N = ids.size(0);
    const double tokens = std::max(1.0, response.sum().item<double>());
    optimizer_->zero_grad();
    double nll = 0;
    for (int64_t start = 0; start < N; start += options_.micro_batch_size) {
      const int64_t rows = std::min(options_.micro_batch_size, N - start);
      const int64_t width = UsedWidth(attention, start, rows);
      auto current = ComputeTokenLogProbs(policy_.model, Rows(ids, start, rows, width),
                                          Rows(attention, start, rows, width), 1.0, true);
      auto loss = -(current.logprobs * Rows(response, start, rows, width)).sum() / tokens;
      loss.backward();
      nll += loss.item<double>();
    }
    metrics["grad_norm"] = OptimizerStep();
    metrics["sft_loss"] = nll;
    metrics["learning_rate"] = current_lr();
    metrics["tokens"] = tokens;
    ++schedule_steps_;
  }));
  return metrics;
}

absl::StatusOr<NamedTensors> LocalPolicyTrainer::PolicyWeights() {
  NamedTensors weights;
  for (const auto& item : policy_.model->named_parameters()) {
    weights.emplace_back(item.key(), item.value().detach());
  }
  return weights;
}

absl::Status LocalPolicyTrainer::SaveCheckpoint(const std::string& dir) {
  HONE_RETURN_IF_ERROR(SaveModel(policy_.model, dir));
  {
    std::ofstream out(fs::path(dir) / "tokenizer.json", std::ios::binary);
    out << policy_.tokenizer_json;
    if (!out) return absl::InternalError(absl::StrCat("cannot write tokenizer.json into ", dir));
  }
  return CatchTorch(absl::StrCat("saving optimizer state to ", dir),
                    [&] { torch::save(*optimizer_, (fs::path(dir) / "optimizer.pt").string()); });
}

}  // namespace hone
