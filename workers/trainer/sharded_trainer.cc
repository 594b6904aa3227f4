#include "workers/trainer/sharded_trainer.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "framework/core/status.h"
#include "framework/core/torch_status.h"
#include "workers/trainer/optimizer_slices.h"
#include "workers/trainer/policy_gradient.h"

namespace hone {
namespace {

namespace fs = std::filesystem;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

absl::StatusOr<std::vector<int64_t>> MiniBatchRows(const Batch& share) {
  auto it = share.meta.find(kMiniBatchRowsKey);
  if (it == share.meta.end()) {
    return absl::InvalidArgumentError(absl::StrCat("an Update share needs meta \"", kMiniBatchRowsKey, "\""));
  }
  std::vector<int64_t> rows;
  int64_t total = 0;
  for (absl::string_view piece : absl::StrSplit(it->second, ',', absl::SkipEmpty())) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(piece, &n) || n < 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad ", kMiniBatchRowsKey, " \"", it->second, "\""));
    }
    rows.push_back(n);
    total += n;
  }
  if (total != share.size()) {
    return absl::InvalidArgumentError(absl::StrCat(kMiniBatchRowsKey, " sums to ", total, " but the share has ",
                                                   share.size(), " rows"));
  }
  return rows;
}

}  // namespace

ShardedPolicyTrainer::ShardedPolicyTrainer(Pretrained policy, TrainerOptions options, dist::Communicator* comm)
    : policy_(std::move(policy)), options_(std::move(options)), comm_(comm),
      skip_guard_(options_.max_skipped_updates) {}

absl::StatusOr<std::unique_ptr<ShardedPolicyTrainer>> ShardedPolicyTrainer::Create(Pretrained policy,
                                                                                   TrainerOptions options,
                                                                                   dist::Communicator* comm,
                                                                                   dist::FsdpOptions fsdp) {
  std::unique_ptr<ShardedPolicyTrainer> t(new ShardedPolicyTrainer(std::move(policy), options, comm));
  HONE_RETURN_IF_ERROR(CatchTorch("creating the FSDP trainer", [&]() -> absl::Status {
    CausalLM& model = t->policy_.model;
    model->train();
    if (options.kl_coef > 0) {
      HONE_ASSIGN_OR_RETURN(t->reference_, MakeReferencePolicy(model, options.reference_path));
      HONE_ASSIGN_OR_RETURN(t->sharded_reference_, dist::ShardedParameters::Create(*t->reference_, comm, fsdp, false));
    }
    HONE_ASSIGN_OR_RETURN(t->sharded_policy_, dist::ShardedParameters::Create(*model, comm, fsdp, true));
    torch::optim::AdamWOptions adam(options.lr);
    adam.betas(std::make_tuple(options.beta1, options.beta2));
    adam.eps(options.eps);
    adam.weight_decay(options.weight_decay);
    return t->sharded_policy_->InitOptimizer(adam);
  }));
  return t;
}

template <typename Fn>
absl::Status ShardedPolicyTrainer::WithGathered(dist::ShardedParameters& params, Fn&& fn) {
  HONE_RETURN_IF_ERROR(params.Gather());
  absl::Status status = fn();
  params.Release();
  return status;
}

absl::StatusOr<LogProbs> ShardedPolicyTrainer::ComputeLogProbs(const Batch& share) {
  HONE_RETURN_IF_ERROR(share.Require({"input_ids", "attention_mask"}));
  HONE_ASSIGN_OR_RETURN(const double temperature, RequireTemperature(share));
  const auto& ids = share.tensor("input_ids");
  const auto& mask = share.tensor("attention_mask");
  const int64_t N = ids.size(0), T = ids.size(1), micro = options_.micro_batch_size;
  LogProbs out;
  out.old_logprobs = torch::zeros({N, T});
  out.entropy = torch::zeros({N, T});
  // Every rank runs the same collectives even with an empty share.
  auto run = [&](CausalLM& model, torch::Tensor* logprobs, torch::Tensor* entropy, double* seconds) {
    return CatchTorch("computing log-probs", [&] {
      const auto start_time = std::chrono::steady_clock::now();
      for (int64_t start = 0; start < N; start += micro) {
        const int64_t rows = std::min(micro, N - start);
        const int64_t width = UsedWidth(mask, start, rows);
        auto result = ComputeTokenLogProbs(model, Rows(ids, start, rows, width), Rows(mask, start, rows, width),
                                           temperature, false);
        logprobs->narrow(0, start, rows).narrow(1, 0, width).copy_(result.logprobs);
        if (entropy) entropy->narrow(0, start, rows).narrow(1, 0, width).copy_(result.entropy);
      }
      *seconds = Seconds(start_time);
    });
  };
  HONE_RETURN_IF_ERROR(WithGathered(*sharded_policy_, [&] {
    return run(policy_.model, &out.old_logprobs, &out.entropy, &out.policy_seconds);
  }));
  if (sharded_reference_) {
    out.ref_logprobs = torch::zeros({N, T});
    HONE_RETURN_IF_ERROR(WithGathered(*sharded_reference_, [&] {
      return run(reference_, &out.ref_logprobs, nullptr, &out.reference_seconds);
    }));
  }
  return out;
}

absl::StatusOr<Metrics> ShardedPolicyTrainer::Update(const Batch& share) {
  std::vector<std::string> needed = {"input_ids", "attention_mask", "response_mask", "advantages", "old_logprobs"};
  if (options_.kl_coef > 0) needed.push_back("ref_logprobs");
  if (options_.rollout_correction != "off") needed.push_back("rollout_logprobs");
  HONE_RETURN_IF_ERROR(share.Require(needed));
  HONE_RETURN_IF_ERROR(RequireTemperature(share).status());
  HONE_ASSIGN_OR_RETURN(std::vector<int64_t> mini_rows, MiniBatchRows(share));
  const double lr = ScheduledLearningRate(options_, schedule_steps_);
  UpdateAccumulator acc(options_.rollout_correction);
  for (int64_t epoch = 0; epoch < options_.ppo_epochs; ++epoch) {
    int64_t begin = 0;
    for (int64_t rows : mini_rows) {
      const int64_t end = begin + rows;
      // The whole global mini-batch's counts: every rank divides by the same numbers.
      const algo::LossDenominators local = CountRows(share.tensor("response_mask"), begin, end);
      auto counts = torch::tensor({local.tokens, local.nonempty_rows, local.rows}, torch::kFloat64);
      HONE_RETURN_IF_ERROR(comm_->AllReduceSum(counts));
      const algo::LossDenominators whole{counts[0].item<double>(), counts[1].item<double>(),
                                         counts[2].item<double>()};
      MiniBatchSums sums;
      HONE_RETURN_IF_ERROR(WithGathered(*sharded_policy_, [&]() -> absl::Status {
        HONE_RETURN_IF_ERROR(CatchTorch("policy update", [&] {
          if (end > begin) sums = AccumulatePolicyGradient(policy_.model, share, begin, end, options_, whole);
        }));
        return sharded_policy_->ReduceScatterGrads();
      }));
      HONE_ASSIGN_OR_RETURN(double norm, sharded_policy_->ClipGradNorm(options_.grad_clip));
      HONE_ASSIGN_OR_RETURN(bool step, skip_guard_.Check(norm));
      if (step) {
        HONE_RETURN_IF_ERROR(sharded_policy_->OptimizerStep(lr));
      } else {
        sharded_policy_->ZeroGrad();
      }
      // Every rank reports the group's totals.
      const auto fields = sums.ToArray();
      auto totals = torch::tensor(std::vector<double>(fields.begin(), fields.end()), torch::kFloat64);
      HONE_RETURN_IF_ERROR(comm_->AllReduceSum(totals));
      acc.Add(MiniBatchSums::FromArray(totals.contiguous().data_ptr<double>()));
      acc.AddStep(norm);
      begin = end;
    }
  }
  Metrics metrics = acc.Finish();
  metrics["learning_rate"] = lr;
  metrics["skipped_updates"] = static_cast<double>(skip_guard_.skipped_total());
  metrics["trainer_resident_bytes"] = static_cast<double>(resident_bytes());
  ++schedule_steps_;
  return metrics;
}

absl::StatusOr<NamedTensors> ShardedPolicyTrainer::FullWeights() { return sharded_policy_->FullParameters(); }

absl::Status ShardedPolicyTrainer::SaveCheckpoint(const std::string& dir) {
  HONE_RETURN_IF_ERROR(WithGathered(*sharded_policy_, [&]() -> absl::Status {
    if (comm_->rank() != 0) return absl::OkStatus();
    HONE_RETURN_IF_ERROR(SaveModel(policy_.model, dir));
    return WriteTokenizerFiles(policy_.tokenizer_json, policy_.tokenizer_config_json, dir);
  }));
  HONE_ASSIGN_OR_RETURN(OptimizerSlice slice, sharded_policy_->SaveOptimizerSlice());
  HONE_RETURN_IF_ERROR(
      WriteOptimizerSlice((fs::path(dir) / OptimizerSliceFileName(comm_->rank(), comm_->size())).string(), slice));
  if (comm_->rank() != 0) return absl::OkStatus();
  return WriteTrainerState(dir, schedule_steps_, skip_guard_.skipped_total());
}

absl::Status ShardedPolicyTrainer::LoadCheckpoint(const std::string& dir) {
  HONE_ASSIGN_OR_RETURN(std::vector<OptimizerSlice> slices, ReadOptimizerSlices(dir));
  HONE_RETURN_IF_ERROR(Annotate(sharded_policy_->LoadOptimizerSlices(slices), absl::StrCat("resuming from ", dir)));
  HONE_ASSIGN_OR_RETURN(TrainerState state, ReadTrainerState(dir));
  schedule_steps_ = state.schedule_steps;
  skip_guard_.RestoreSkippedTotal(state.skipped_updates);
  return absl::OkStatus();
}

int64_t ShardedPolicyTrainer::resident_bytes() const {
  return sharded_policy_->resident_bytes() + (sharded_reference_ ? sharded_reference_->resident_bytes() : 0);
}

}  // namespace hone
