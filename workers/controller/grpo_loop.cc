#include "workers/controller/grpo_loop.h"

#include <chrono>
#include <filesystem>
#include <future>
#include <iostream>
#include <limits>
#include <optional>
#include <set>

#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/algo/algo.h"
#include "framework/core/status.h"
#include "framework/core/torch_status.h"
#include "framework/data/from_config.h"
#include "framework/metrics/metrics_log.h"
#include "workers/controller/checkpoint.h"
#include "workers/controller/data_checks.h"
#include "workers/controller/shutdown.h"
#include "workers/controller/step_metrics.h"
#include "workers/controller/validation.h"
#include "workers/reward/local_reward.h"
#include "workers/rollout/local_rollout.h"
#include "workers/trainer/local_trainer.h"

namespace hone {
namespace {

using Clock = std::chrono::steady_clock;

std::string HostName() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return host;
}

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

SamplingParams RolloutSampling(const Config& c, const std::vector<int64_t>& stop_ids) {
  SamplingParams p;
  p.n = c.Int("rollout.n");
  p.temperature = c.Float("rollout.temperature");
  p.top_k = c.Int("rollout.top_k");
  p.top_p = c.Float("rollout.top_p");
  p.max_new_tokens = c.Int("rollout.max_new_tokens");
  p.stop_token_ids = stop_ids;
  return p;
}

reward::RewardOptions RewardOptionsFromConfig(const Config& c) {
  reward::RewardOptions o;
  o.fallback = c.String("reward.fallback");
  o.correct_weight = c.Float("reward.correct_weight");
  o.format_weight = c.Float("reward.format_weight");
  return o;
}

// One step's rollouts, and when and from which loader position they were made.
struct Rollouts {
  Batch batch;
  Clock::time_point started, finished;
  data::LoaderState loader_state;  // after this step's prompts were drawn
};

// Rows of `batch` whose group has rewards that are not all equal (DAPO dynamic sampling).
absl::StatusOr<Batch> DropZeroStdGroups(const Batch& batch, const torch::Tensor& in_zero_std_group) {
  std::vector<int64_t> keep;
  auto flags = in_zero_std_group.to(torch::kBool).contiguous();
  auto zero_std = flags.accessor<bool, 1>();
  for (int64_t i = 0; i < batch.size(); ++i) {
    if (!zero_std[i]) keep.push_back(i);
  }
  return batch.Select(keep);
}

}  // namespace

absl::Status RunGrpoTraining(const Config& config) {
  if (config.String("model.path").empty()) {
    return absl::InvalidArgumentError("model.path is empty: name the policy's HF model directory");
  }
  HONE_RETURN_IF_ERROR(CheckTrainingConfig(config));
  HONE_ASSIGN_OR_RETURN(TrainerOptions trainer_options, TrainerOptionsFromConfig(config));
  HONE_ASSIGN_OR_RETURN(data::DataSplits splits, data::LoadSplits(config));
  absl::StatusOr<Pretrained> loaded = LoadPretrained(config.String("model.path"));
  if (!loaded.ok()) return Annotate(loaded.status(), "model.path");
  Pretrained policy = *std::move(loaded);
  HONE_RETURN_IF_ERROR(
      CheckPromptLengths(config, *policy.tokenizer, policy.model->config().max_position_embeddings, splits));
  Pretrained controller_view;
  controller_view.tokenizer_json = policy.tokenizer_json;
  controller_view.stop_token_ids = policy.stop_token_ids;
  HONE_ASSIGN_OR_RETURN(std::unique_ptr<LocalRollout> rollout, LocalRollout::Create(policy));
  HONE_ASSIGN_OR_RETURN(std::unique_ptr<LocalRewardScorer> scorer,
                        LocalRewardScorer::Create(config.StringList("reward.fns"), RewardOptionsFromConfig(config)));
  HONE_ASSIGN_OR_RETURN(std::unique_ptr<LocalPolicyTrainer> trainer,
                        LocalPolicyTrainer::Create(std::move(policy), trainer_options));
  std::optional<Validator> validator;  // eval.* settings matter only when validating
  if (config.Int("trainer.val_every") > 0) {
    HONE_ASSIGN_OR_RETURN(Validator created, Validator::Create(config, splits.held_out));
    validator.emplace(std::move(created));
  }
  GrpoRoles roles;
  roles.rollout = rollout.get();
  roles.scorer = scorer.get();
  roles.trainer = trainer.get();
  roles.sync_weights = [&](int64_t version) -> absl::StatusOr<Metrics> {
    const auto start = Clock::now();
    HONE_ASSIGN_OR_RETURN(NamedTensors weights, trainer->PolicyWeights());
    HONE_RETURN_IF_ERROR(rollout->LoadWeights(weights, version));
    // The same keys as the distributed sync, so dashboards read the same either way.
    double bytes = 0;
    for (const auto& [name, tensor] : weights) bytes += static_cast<double>(tensor.numel() * tensor.element_size());
    const double seconds = Since(start);
    return Metrics{{"weight_sync_bytes", bytes}, {"weight_sync_gbps", seconds > 0 ? bytes / seconds / 1e9 : 0}};
  };
  if (validator) roles.validate = [&] { return validator->Run(trainer->policy()); };
  std::unique_ptr<MetricsExporter> exporter = StartMetricsExporter(config);
  if (exporter) {
    // Every role lives in this process: it is up while the loop runs.
    for (const char* role : {"rollout", "reward", "trainer"}) exporter->SetWorkerUp(role, 0, HostName(), true);
    roles.exporter = exporter.get();
  }
  return RunGrpoLoop(config, roles, controller_view, splits);
}

absl::Status RunGrpoLoop(const Config& config, GrpoRoles& roles, const Pretrained& policy,
                         const data::DataSplits& splits) {
  const auto job_start = Clock::now();
  // The trainer recomputes log-probs of the unfiltered distribution; with a top-k/top-p
  // filter the rollout samples from another one, and the importance ratio is biased.
  if (config.Int("rollout.top_k") > 0 || config.Float("rollout.top_p") < 1.0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hone train needs rollout.top_k=0 and rollout.top_p=1 (got ", config.Int("rollout.top_k"), " and ",
        config.Float("rollout.top_p"), "): the trainer's log-probs are those of the unfiltered distribution, so "
        "sampling from a filtered one would bias the PPO ratio. Filters stay available in hone eval and hone generate"));
  }
  const std::string output_dir = config.String("trainer.output_dir");
  if (splits.report.skipped > 0) {
    std::cerr << "warning: skipped " << splits.report.skipped << " malformed dataset lines\n";
  }
  WarnAboutSplit(splits, config.Int("data.train_batch_size"), "data.train_batch_size");
  const std::vector<int64_t> stop_ids = policy.stop_token_ids;
  HONE_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, TokenizerFromJson(policy.tokenizer_json));
  const std::vector<std::string> reward_fns = config.StringList("reward.fns");
  HONE_ASSIGN_OR_RETURN(algo::AdvantageFn advantage_fn,
                        algo::GetAdvantageEstimator(config.String("algorithm.adv_estimator")));
  // trainer.resume=auto: the roles were built from the checkpoint's model (PrepareResume
  // set model.path); here the optimizer, the schedule, the data position and the policy
  // version continue, and metrics.jsonl is appended to.
  HONE_ASSIGN_OR_RETURN(std::optional<ResumePoint> resume, FindResumePoint(config));
  const std::string metrics_path = (std::filesystem::path(output_dir) / "metrics.jsonl").string();
  if (resume) HONE_RETURN_IF_ERROR(MetricsLog::DropStepsAfter(metrics_path, resume->step()));
  HONE_ASSIGN_OR_RETURN(MetricsLog metrics_log, MetricsLog::Open(metrics_path, /*append=*/resume.has_value()));
  RolloutEngine* rollout = roles.rollout;
  RewardScorer* scorer = roles.scorer;
  PolicyTrainer* trainer = roles.trainer;

  const int64_t total_steps = config.Int("trainer.total_steps");
  const int64_t batch_prompts = config.Int("data.train_batch_size");
  const int64_t save_every = config.Int("trainer.save_every");
  const int64_t val_every = config.Int("trainer.val_every");
  HONE_ASSIGN_OR_RETURN(data::PromptFormatter prompt_format, data::PromptFormatterFromConfig(config));
  const uint64_t seed = static_cast<uint64_t>(config.Int("seed"));
  algo::AdvantageOptions advantage_options{config.Float("algorithm.norm_eps")};
  data::DataLoader loader(splits.train, seed);
  int64_t first_step = 1;
  std::optional<Batch> resumed_next_rollouts;  // async: what the checkpointed step had in flight
  if (resume) {
    if (config.String("model.path") != resume->dir) {
      return absl::FailedPreconditionError(absl::StrCat("resuming from ", resume->dir, " but the policy was loaded from ",
                                                        config.String("model.path")));
    }
    HONE_RETURN_IF_ERROR(Annotate(loader.Restore({resume->state["loader_epoch"], resume->state["loader_position"]}),
                                  absl::StrCat("resuming from ", resume->dir)));
    const std::string next_rollouts = (std::filesystem::path(resume->dir) / kNextRolloutsFile).string();
    if (config.Bool("trainer.async_rollout") && std::filesystem::exists(next_rollouts)) {
      HONE_ASSIGN_OR_RETURN(Batch batch, ReadRolloutsFile(next_rollouts));
      resumed_next_rollouts = std::move(batch);
    }
    HONE_RETURN_IF_ERROR(trainer->LoadCheckpoint(resume->dir));
    // The rollout holds the checkpoint's weights too; the sync sets its version.
    HONE_RETURN_IF_ERROR(roles.sync_weights(resume->step()).status());
    first_step = resume->step() + 1;
    std::cerr << absl::StrFormat("resuming from %s (step %d)\n", resume->dir, resume->step());
  }
  std::cerr << absl::StrFormat("GRPO: %d training / %d held-out prompts, %d steps of %d prompts x %d samples\n",
                               splits.train.size(), splits.held_out.size(), total_steps, batch_prompts,
                               config.Int("rollout.n"));

  // The keys an Update reports: these, plus whatever earlier Updates of this run reported.
  std::set<std::string> update_keys = {"policy_loss", "kl", "entropy", "clip_fraction", "dual_clip_fraction",
                                       "approx_kl", "grad_norm", "learning_rate", "skipped_updates"};
  if (config.String("algorithm.rollout_correction") != "off") {
    const bool tis = config.String("algorithm.rollout_correction").rfind("tis", 0) == 0;
    update_keys.insert({"rollout_is_weight_mean", tis ? "rollout_is_truncated_fraction" : "rollout_is_masked_fraction",
                        "rollout_seq_kl"});
  }
  // The loader's position after the prompts of the last step trained: with
  // trainer.async_rollout the next step's prompts are already drawn, and a resumed run
  // draws them again.
  data::LoaderState trained_state = loader.State();
  // With trainer.async_rollout, the next step's rollouts (generated with the previous
  // policy, which the checkpoint does not hold) are saved beside it, so that a resumed run
  // trains on the very same ones.
  std::shared_future<absl::StatusOr<Rollouts>> pending;
  auto save = [&](const std::string& dir, int64_t step) -> absl::Status {
    const data::LoaderState state = trained_state;
    std::map<std::string, int64_t> saved = {{"step", step},
                                            {"loader_epoch", state.epoch},
                                            {"loader_position", state.position},
                                            {"seed", static_cast<int64_t>(seed)},
                                            {"policy_version", step}};
    const Rollouts* next = nullptr;
    if (pending.valid() && pending.get().ok()) {
      next = &*pending.get();
      saved["next_rollouts_loader_epoch"] = next->loader_state.epoch;
      saved["next_rollouts_loader_position"] = next->loader_state.position;
    }
    return WriteCheckpoint(*trainer, dir, saved, output_dir, [&](const std::string& tmp) -> absl::Status {
      return next ? WriteRolloutsFile(next->batch, (std::filesystem::path(tmp) / kNextRolloutsFile).string())
                  : absl::OkStatus();
    });
  };
  // --- rollouts: drawn and generated here, or (trainer.async_rollout) on a thread of their
  // own while the previous step trains ---
  const bool async_rollout = config.Bool("trainer.async_rollout");
  const int64_t max_policy_lag = MaxPolicyLag(config);
  const int intra_op_threads = at::get_num_threads();
  auto next_rollouts = [&](int64_t step) -> absl::StatusOr<std::function<absl::StatusOr<Rollouts>()>> {
    std::vector<std::string> prompts, truths;
    for (const auto& example : loader.NextBatch(batch_prompts)) {
      HONE_ASSIGN_OR_RETURN(std::string text, prompt_format.Format(example.prompt));
      prompts.push_back(std::move(text));
      truths.push_back(example.ground_truth);
    }
    HONE_ASSIGN_OR_RETURN(Batch prompt_batch, MakePromptBatch(*tokenizer, prompts, truths, step * batch_prompts));
    SamplingParams sampling = RolloutSampling(config, stop_ids);
    sampling.seed = seed * 1000003ULL + static_cast<uint64_t>(step);
    const data::LoaderState after_draw = loader.State();
    return [=, prompt_batch = std::move(prompt_batch)]() -> absl::StatusOr<Rollouts> {
      // A new thread starts with the process default of intra-op threads (OpenMP's is per
      // thread): keep runtime.num_threads, so that results do not depend on which thread runs.
      if (at::get_num_threads() != intra_op_threads) at::set_num_threads(intra_op_threads);
      Rollouts out;
      out.started = Clock::now();
      HONE_ASSIGN_OR_RETURN(out.batch, rollout->Generate(prompt_batch, sampling));
      out.finished = Clock::now();
      out.loader_state = after_draw;
      return out;
    };
  };
  std::optional<Clock::time_point> last_generation_end;
  if (resumed_next_rollouts) {
    HONE_RETURN_IF_ERROR(Annotate(loader.Restore({resume->state["next_rollouts_loader_epoch"],
                                                  resume->state["next_rollouts_loader_position"]}),
                                  absl::StrCat("resuming from ", resume->dir)));
    std::promise<absl::StatusOr<Rollouts>> ready;
    Rollouts saved;
    saved.batch = *std::move(resumed_next_rollouts);
    saved.started = saved.finished = Clock::now();
    saved.loader_state = loader.State();
    ready.set_value(std::move(saved));
    pending = ready.get_future().share();
  }

  for (int64_t step = first_step; step <= total_steps; ++step) {
    // SIGTERM (shutdown.h) stops the run between steps: step - 1 is complete and logged, so
    // its checkpoint lets trainer.resume=auto continue with no step run twice or lost.
    if (StopRequested()) {
      if (pending.valid()) pending.wait();  // its prompts are drawn again on resume
      const int64_t done = step - 1;
      std::string dir = done == first_step - 1 && resume ? resume->dir : "";
      if (done > first_step - 1) {
        dir = CheckpointDir(output_dir, done);
        if (!(save_every > 0 && done % save_every == 0)) HONE_RETURN_IF_ERROR(save(dir, done));
      }
      std::cerr << StoppedLine("hone train", done, dir) << std::endl;
      return absl::OkStatus();
    }
    const auto step_start = Clock::now();
    Metrics m;

    // --- generate (or collect what the previous step started) ---
    auto timer = Clock::now();
    if (!pending.valid()) {
      HONE_ASSIGN_OR_RETURN(auto generate, next_rollouts(step));
      pending = std::async(std::launch::deferred, std::move(generate)).share();
    }
    HONE_ASSIGN_OR_RETURN(Rollouts rollouts, pending.get());
    pending = {};
    m["seconds_wait_rollout"] = Since(timer);  // the training side, idle until the rollouts came
    m["seconds_wait_trainer"] =                // the rollout side, idle until it was given work
        last_generation_end ? std::chrono::duration<double>(rollouts.started - *last_generation_end).count() : 0.0;
    m["seconds_wait_trainer"] = std::max(0.0, m["seconds_wait_trainer"]);
    last_generation_end = rollouts.finished;
    trained_state = rollouts.loader_state;
    Batch batch = std::move(rollouts.batch);
    // Rollouts must come from the policy of the previous step, or (trainer.max_policy_lag)
    // at most that many versions before it: anything older means the weight sync failed,
    // and training on it would be silently off-policy.
    int64_t rollout_version = -1;
    if (!absl::SimpleAtoi(batch.meta["policy_version"], &rollout_version) || rollout_version > step - 1 ||
        rollout_version < step - 1 - max_policy_lag) {
      return absl::FailedPreconditionError(absl::StrCat(
          "step ", step, ": rollout generated with policy version ", batch.meta["policy_version"], ", expected ",
          max_policy_lag == 0 ? absl::StrCat(step - 1)
                              : absl::StrCat(std::max<int64_t>(0, step - 1 - max_policy_lag), " to ", step - 1,
                                             " (trainer.max_policy_lag=", max_policy_lag, ")"),
          " (stale weights: the weight sync did not reach the rollout worker)"));
    }
    m["rollout_policy_version"] = static_cast<double>(rollout_version);
    m["policy_lag"] = static_cast<double>(step - 1 - rollout_version);
    m["seconds_gen"] = std::chrono::duration<double>(rollouts.finished - rollouts.started).count();
    const double new_tokens = batch.tensor("response_mask").sum().item<double>();
    m["generated_tokens"] = new_tokens;
    m["tokens_per_second_gen"] = new_tokens / std::max(1e-9, m["seconds_gen"]);

    // --- one step off: the rollout workers take the policy of step - 1 and generate the
    // next step's rollouts while this step trains ---
    if (async_rollout) {
      timer = Clock::now();
      HONE_ASSIGN_OR_RETURN(Metrics sync_metrics, roles.sync_weights(step - 1));
      m.insert(sync_metrics.begin(), sync_metrics.end());
      m["seconds_sync"] = Since(timer);
      if (step < total_steps) {
        HONE_ASSIGN_OR_RETURN(auto generate, next_rollouts(step + 1));
        pending = std::async(std::launch::async, std::move(generate)).share();
      }
    }

    // --- reward ---
    timer = Clock::now();
    HONE_RETURN_IF_ERROR(scorer->Score(batch));
    m["seconds_reward"] = Since(timer);
    Metrics reward_metrics = RewardAndLengthMetrics(batch, reward_fns);
    m.insert(reward_metrics.begin(), reward_metrics.end());

    // --- old / reference log-probs ---
    HONE_ASSIGN_OR_RETURN(LogProbs logprobs, trainer->ComputeLogProbs(batch));
    m["seconds_old_logp"] = logprobs.policy_seconds;
    m["seconds_ref"] = logprobs.reference_seconds;
    Metrics agreement = LogProbAgreement(batch.tensor("rollout_logprobs"), logprobs.old_logprobs,
                                         batch.tensor("response_mask"));
    m.insert(agreement.begin(), agreement.end());
    HONE_RETURN_IF_ERROR(batch.SetTensor("old_logprobs", logprobs.old_logprobs));
    if (logprobs.ref_logprobs.defined()) HONE_RETURN_IF_ERROR(batch.SetTensor("ref_logprobs", logprobs.ref_logprobs));

    // --- advantages ---
    auto rewards = batch.tensor("reward");
    auto group_ids = torch::tensor(batch.ints("group_id"), torch::kInt64);
    // Lengths before algorithm.mask_truncated, as verl's estimators see them.
    advantage_options.response_lengths = batch.tensor("response_mask").sum(1);
    auto advantages = advantage_fn(rewards, group_ids, advantage_options);
    algo::GroupStats groups = algo::ComputeGroupStats(rewards, group_ids);
    m["frac_reward_zero_std"] = groups.frac_zero_std;
    m["group_reward_std_mean"] = groups.mean_group_std;
    auto response_mask = batch.tensor("response_mask");
    if (config.Bool("algorithm.mask_truncated")) {
      auto truncated = torch::tensor(batch.ints("truncated"), torch::kFloat32).unsqueeze(1);
      response_mask = response_mask * (1 - truncated);
    }
    HONE_RETURN_IF_ERROR(batch.SetTensor("response_mask", response_mask));
    HONE_RETURN_IF_ERROR(batch.SetTensor("advantages", advantages.unsqueeze(1) * response_mask));
    if (config.Bool("algorithm.filter_zero_std_groups")) {
      HONE_ASSIGN_OR_RETURN(batch, DropZeroStdGroups(batch, groups.in_zero_std_group));
    }
    m["trained_sequences"] = static_cast<double>(batch.size());

    // --- update ---
    timer = Clock::now();
    if (batch.size() > 0) {
      HONE_ASSIGN_OR_RETURN(Metrics train_metrics, trainer->Update(batch));
      for (const auto& [name, value] : train_metrics) update_keys.insert(name);
      m.insert(train_metrics.begin(), train_metrics.end());
    } else {
      // Every group was filtered out: no update this step. The update's metrics are still
      // written (as null), so that every line of metrics.jsonl has the same keys.
      for (const std::string& name : update_keys) m[name] = std::numeric_limits<double>::quiet_NaN();
    }
    m["seconds_train"] = Since(timer);
    const double trained_tokens = batch.size() > 0 ? batch.tensor("attention_mask").sum().item<double>() : 0;
    m["trained_tokens"] = trained_tokens;
    m["tokens_per_second_train"] = trained_tokens / std::max(1e-9, m["seconds_train"]);

    // --- weight sync (async: at the start of the next step, when the rollouts are in) ---
    if (!async_rollout) {
      timer = Clock::now();
      HONE_ASSIGN_OR_RETURN(Metrics sync_metrics, roles.sync_weights(step));
      m.insert(sync_metrics.begin(), sync_metrics.end());
      m["seconds_sync"] = Since(timer);
    }
    m["policy_version"] = static_cast<double>(rollout->policy_version());

    // --- validation, checkpoint ---
    if (roles.validate && val_every > 0 && (step % val_every == 0 || step == total_steps)) {
      // Validation generates too: not beside the next step's rollouts.
      if (pending.valid()) pending.wait();
      timer = Clock::now();
      HONE_ASSIGN_OR_RETURN(Metrics val, roles.validate());
      m.insert(val.begin(), val.end());
      m["seconds_val"] = Since(timer);
    }
    if (save_every > 0 && step % save_every == 0) HONE_RETURN_IF_ERROR(save(CheckpointDir(output_dir, step), step));
    m["seconds_step"] = Since(step_start);
    HONE_RETURN_IF_ERROR(metrics_log.Write(step, m));
    if (roles.exporter) roles.exporter->PublishStep(step, m);
    std::cerr << absl::StrFormat(
        "step %d/%d | reward %.3f | acc %.3f | format %.3f | len %.1f | kl %.4f | entropy %.3f | "
        "|dlogp| %.1e | %.1fs%s\n",
        step, total_steps, m["reward_mean"], m["accuracy"], m["format_rate"], m["response_length_mean"],
        m["kl"], m["entropy"], m["rollout_logprob_diff_mean"], m["seconds_step"],
        m.count("val_accuracy") ? absl::StrFormat(" | val acc %.3f", m["val_accuracy"]) : "");
  }
  const std::string final_dir = (std::filesystem::path(output_dir) / "final").string();
  HONE_RETURN_IF_ERROR(save(final_dir, total_steps));
  std::cerr << absl::StrFormat("GRPO done in %.1fs; final policy in %s (metrics: %s)\n", Since(job_start),
                               final_dir, metrics_log.path());
  return absl::OkStatus();
}

}  // namespace hone
