#include "workers/trainer/local_trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "framework/algo/algo.h"
#include "framework/core/status.h"
#include "framework/core/torch_status.h"
#include "workers/trainer/optimizer_slices.h"
#include "workers/trainer/policy_gradient.h"

namespace hone {
namespace {

namespace fs = std::filesystem;

}  // namespace

absl::StatusOr<bool> NonFiniteStepGuard::Check(double grad_norm) {
  if (std::isfinite(grad_norm)) {
    in_a_row_ = 0;
    return true;
  }
  ++skipped_total_;
  if (++in_a_row_ >= max_in_a_row_) {
    return absl::AbortedError(absl::StrCat(
        "the global gradient norm was ", grad_norm, " in ", in_a_row_,
        " optimizer steps in a row (trainer.max_skipped_updates=", max_in_a_row_,
        "); the steps were skipped, so the weights are still finite, but the run has diverged: lower optim.lr, "
        "raise optim.eps or algorithm.norm_eps, or resume from the last checkpoint"));
  }
  return false;
}

void UpdateAccumulator::Add(const MiniBatchSums& sums) {
  policy_loss_ += sums.policy_loss;
  kl_ += sums.kl;
  entropy_ += sums.entropy;
  clip_ += sums.clip_tokens;
  dual_clip_ += sums.dual_clip_tokens;
  approx_kl_ += sums.approx_kl_tokens;
  tokens_ += sums.tokens;
  is_units_ += sums.is_units;
  is_weight_sum_ += sums.is_weight_sum;
  is_exceeded_ += sums.is_exceeded;
  sequences_ += sums.sequences;
  seq_kl_sum_ += sums.seq_kl_sum;
  ++mini_batches_;
}

void UpdateAccumulator::AddStep(double grad_norm) {
  norm_sum_ += grad_norm;
  ++steps_;
}

Metrics UpdateAccumulator::Finish() const {
  const double batches = std::max<int64_t>(1, mini_batches_), tokens = std::max(1.0, tokens_);
  Metrics metrics = {{"policy_loss", policy_loss_ / batches}, {"kl", kl_ / batches},
                     {"entropy", entropy_ / batches}, {"clip_fraction", clip_ / tokens},
                     {"dual_clip_fraction", dual_clip_ / tokens}, {"approx_kl", approx_kl_ / tokens},
                     {"grad_norm", norm_sum_ / std::max<int64_t>(1, steps_)}};
  if (rollout_correction_ != "off") {
    const double units = std::max(1.0, is_units_);
    const bool masked = rollout_correction_.rfind("mis_", 0) == 0;
    metrics["rollout_is_weight_mean"] = is_weight_sum_ / units;
    metrics[masked ? "rollout_is_masked_fraction" : "rollout_is_truncated_fraction"] = is_exceeded_ / units;
    metrics["rollout_seq_kl"] = seq_kl_sum_ / std::max(1.0, sequences_);
  }
  return metrics;
}

absl::StatusOr<double> RequireTemperature(const Batch& batch) {
  auto it = batch.meta.find("temperature");
  double value = 0;
  if (it == batch.meta.end() || !absl::SimpleAtod(it->second, &value) || !(value > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "trajectories need meta \"temperature\" (the sampling temperature, > 0) so that the trainer's log-probs "
        "match the rollout's; got ", it == batch.meta.end() ? "none" : "\"" + it->second + "\""));
  }
  return value;
}

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
  // The config counts prompts, as verl does; the trainer cuts rows (group-major, so a
  // mini-batch of whole groups).
  o.ppo_mini_batch_size = c.Int("trainer.ppo_mini_batch_size") * c.Int("rollout.n");
  o.micro_batch_size = c.Int("trainer.micro_batch_size");
  o.policy_loss = c.String("algorithm.policy_loss");
  o.rollout_correction = c.String("algorithm.rollout_correction");
  o.rollout_is_threshold = c.Float("algorithm.rollout_is_threshold");
  o.clip_ratio_low = c.Float("algorithm.clip_ratio_low");
  o.clip_ratio_high = c.Float("algorithm.clip_ratio_high");
  o.clip_ratio_c = c.Float("algorithm.clip_ratio_c");
  o.loss_agg_mode = c.String("algorithm.loss_agg_mode");
  o.loss_norm_length = c.Int("rollout.max_new_tokens");
  o.kl_coef = c.Float("algorithm.kl_coef");
  o.kl_estimator = c.String("algorithm.kl_estimator");
  o.entropy_coef = c.Float("algorithm.entropy_coef");
  o.max_skipped_updates = c.Int("trainer.max_skipped_updates");
  o.reference_path = c.String("model.reference_path");
  algo::PolicyLossOptions loss;
  loss.clip_ratio_low = o.clip_ratio_low;
  loss.clip_ratio_high = o.clip_ratio_high;
  loss.clip_ratio_c = o.clip_ratio_c;
  loss.loss_agg_mode = o.loss_agg_mode;
  absl::Status valid = algo::ValidatePolicyLossOptions(loss);
  // The loss names its fields (clip_ratio_c, loss_agg_mode, ...): they are the algorithm.* keys.
  if (!valid.ok()) return absl::InvalidArgumentError(absl::StrCat("algorithm.", valid.message()));
  HONE_RETURN_IF_ERROR(Annotate(algo::GetPolicyLoss(o.policy_loss).status(), "algorithm.policy_loss"));
  if (o.policy_loss == "gspo" && o.clip_ratio_c != 0.0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "algorithm.clip_ratio_c (the dual clip) is not defined for algorithm.policy_loss=gspo; set it to 0, got ",
        o.clip_ratio_c));
  }
  HONE_RETURN_IF_ERROR(Annotate(algo::ValidateRolloutCorrection(o.rollout_correction, o.rollout_is_threshold),
                                "algorithm.rollout_correction / algorithm.rollout_is_threshold"));
  return o;
}

LocalPolicyTrainer::LocalPolicyTrainer(Pretrained policy, TrainerOptions options)
    : policy_(std::move(policy)), options_(std::move(options)), skip_guard_(options_.max_skipped_updates) {}

absl::StatusOr<CausalLM> MakeReferencePolicy(CausalLM& policy, const std::string& reference_path) {
  CausalLM reference{nullptr};
  HONE_RETURN_IF_ERROR(CatchTorch("creating the reference policy", [&]() -> absl::Status {
    reference = CausalLM(policy->config());
    torch::NoGradGuard no_grad;
    auto ref_params = reference->named_parameters();
    if (reference_path.empty()) {
      for (const auto& item : policy->named_parameters()) ref_params[item.key()].copy_(item.value());
    } else {
      absl::StatusOr<Pretrained> reference_model = LoadPretrained(reference_path);
      if (!reference_model.ok()) return Annotate(reference_model.status(), "model.reference_path");
      Pretrained loaded = *std::move(reference_model);
      auto loaded_params = loaded.model->named_parameters();
      for (const auto& item : policy->named_parameters()) {
        const torch::Tensor* source = loaded_params.find(item.key());
        if (source == nullptr || source->sizes() != item.value().sizes()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "the reference policy in ", reference_path, " does not match the policy's shape at ", item.key(),
              ": model.reference_path must name the model the run started from"));
        }
        ref_params[item.key()].copy_(*source);
      }
    }
    for (auto& p : reference->parameters()) p.set_requires_grad(false);
    return absl::OkStatus();
  }));
  return reference;
}

absl::StatusOr<std::unique_ptr<LocalPolicyTrainer>> LocalPolicyTrainer::Create(Pretrained policy,
                                                                               TrainerOptions options) {
  std::unique_ptr<LocalPolicyTrainer> trainer(new LocalPolicyTrainer(std::move(policy), options));
  if (options.kl_coef > 0) {
    HONE_ASSIGN_OR_RETURN(trainer->reference_, MakeReferencePolicy(trainer->policy_.model, options.reference_path));
  }
  HONE_RETURN_IF_ERROR(CatchTorch("creating the trainer", [&] {
    CausalLM& model = trainer->policy_.model;
    model->train();
    torch::optim::AdamWOptions adam(options.lr);
    adam.betas(std::make_tuple(options.beta1, options.beta2));
    adam.eps(options.eps);
    adam.weight_decay(options.weight_decay);
    trainer->optimizer_ = std::make_unique<torch::optim::AdamW>(model->parameters(), adam);
  }));
  return trainer;
}

double ScheduledLearningRate(const TrainerOptions& options, int64_t steps_done) {
  const double step = static_cast<double>(steps_done);
  if (options.warmup_steps > 0 && step < options.warmup_steps) {
    return options.lr * (step + 1) / options.warmup_steps;
  }
  if (options.schedule == "cosine") {
    const double span = std::max<double>(1, options.total_steps - options.warmup_steps);
    const double progress = std::min(1.0, (step - options.warmup_steps) / span);
    return options.lr * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  return options.lr;
}

double LocalPolicyTrainer::current_lr() const { return ScheduledLearningRate(options_, schedule_steps_); }

void LocalPolicyTrainer::DropGradients() {
  for (auto& p : policy_.model->parameters()) p.mutable_grad().reset();
}

absl::StatusOr<double> LocalPolicyTrainer::OptimizerStep() {
  torch::NoGradGuard no_grad;
  auto params = policy_.model->parameters();
  // One read of each gradient: float32 norms per tensor, squared and summed in double.
  // (Float64 copies of the gradients, and clip_grad_norm_ computing the norm again, cost
  // three more passes over ~4 bytes per parameter: at 110M parameters about a tenth of a
  // one-thread training step.)
  double sq = 0;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    const double n = p.grad().norm().item<double>();
    sq += n * n;
  }
  const double norm = std::sqrt(sq);
  HONE_ASSIGN_OR_RETURN(bool step, skip_guard_.Check(norm));
  if (!step) {
    DropGradients();
    return norm;
  }
  // clip_grad_norm_'s rule (and ShardedParameters::ClipGradNorm's).
  const double coef = options_.grad_clip / (norm + 1e-6);
  if (options_.grad_clip > 0 && coef < 1) {
    for (auto& p : params) {
      if (p.grad().defined()) p.mutable_grad().mul_(coef);
    }
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
  HONE_RETURN_IF_ERROR(CatchTorch("computing log-probs", [&]() -> absl::Status {
    HONE_ASSIGN_OR_RETURN(const double temperature, RequireTemperature(batch));
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
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<Metrics> LocalPolicyTrainer::Update(const Batch& batch) {
  std::vector<std::string> needed = {"input_ids", "attention_mask", "response_mask", "advantages",
                                     "old_logprobs"};
  if (options_.kl_coef > 0) needed.push_back("ref_logprobs");
  if (options_.rollout_correction != "off") needed.push_back("rollout_logprobs");
  HONE_RETURN_IF_ERROR(batch.Require(needed));
  HONE_RETURN_IF_ERROR(RequireTemperature(batch).status());
  Metrics metrics;
  HONE_RETURN_IF_ERROR(CatchTorch("policy update", [&]() -> absl::Status {
    const int64_t N = batch.tensor("input_ids").size(0);
    const int64_t mini = options_.ppo_mini_batch_size > 0 ? std::min(options_.ppo_mini_batch_size, N) : N;
    UpdateAccumulator acc(options_.rollout_correction);
    for (int64_t epoch = 0; epoch < options_.ppo_epochs; ++epoch) {
      for (int64_t mb_start = 0; mb_start < N; mb_start += mini) {
        const int64_t mb_end = std::min(N, mb_start + mini);
        DropGradients();
        // The loss of the whole mini-batch, whatever the micro-batch size.
        const algo::LossDenominators whole = CountRows(batch.tensor("response_mask"), mb_start, mb_end);
        acc.Add(AccumulatePolicyGradient(policy_.model, batch, mb_start, mb_end, options_, whole));
        HONE_ASSIGN_OR_RETURN(double norm, OptimizerStep());
        acc.AddStep(norm);
      }
    }
    metrics = acc.Finish();
    metrics["learning_rate"] = current_lr();
    metrics["skipped_updates"] = static_cast<double>(skip_guard_.skipped_total());
    ++schedule_steps_;
    return absl::OkStatus();
  }));
  return metrics;
}

absl::StatusOr<Metrics> LocalPolicyTrainer::SftStep(const Batch& batch) {
  HONE_RETURN_IF_ERROR(batch.Require({"input_ids", "attention_mask", "response_mask"}));
  Metrics metrics;
  HONE_RETURN_IF_ERROR(CatchTorch("SFT step", [&]() -> absl::Status {
    const auto& ids = batch.tensor("input_ids");
    const auto& attention = batch.tensor("attention_mask");
    const auto& response = batch.tensor("response_mask");
    const int64_t N = ids.size(0);
    const double tokens = std::max(1.0, response.sum().item<double>());
    DropGradients();
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
    HONE_ASSIGN_OR_RETURN(metrics["grad_norm"], OptimizerStep());
    metrics["sft_loss"] = nll;
    metrics["learning_rate"] = current_lr();
    metrics["tokens"] = tokens;
    ++schedule_steps_;
    return absl::OkStatus();
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
  HONE_RETURN_IF_ERROR(WriteTokenizerFiles(policy_.tokenizer_json, policy_.tokenizer_config_json, dir));
  // One slice covering every parameter: the format FSDP ranks write too, so that either
  // placement resumes from the other's checkpoint.
  OptimizerSlice slice;
  HONE_RETURN_IF_ERROR(CatchTorch("collecting the optimizer state", [&] {
    slice = AdamWToSlice(*optimizer_, policy_.model->parameters());
  }));
  HONE_RETURN_IF_ERROR(WriteOptimizerSlice((fs::path(dir) / OptimizerSliceFileName(0, 1)).string(), slice));
  return WriteTrainerState(dir, schedule_steps_, skip_guard_.skipped_total());
}

absl::Status LocalPolicyTrainer::LoadCheckpoint(const std::string& dir) {
  HONE_ASSIGN_OR_RETURN(std::vector<OptimizerSlice> slices, ReadOptimizerSlices(dir));
  HONE_RETURN_IF_ERROR(Annotate(AdamWFromSlices(*optimizer_, policy_.model->parameters(), slices),
                                absl::StrCat("resuming from ", dir)));
  HONE_ASSIGN_OR_RETURN(TrainerState state, ReadTrainerState(dir));
  schedule_steps_ = state.schedule_steps;
  skip_guard_.RestoreSkippedTotal(state.skipped_updates);
  return absl::OkStatus();
}

}  // namespace hone
