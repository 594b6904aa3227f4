// The one place where Hone's configuration keys and their defaults live. Names follow
// verl where a verl user would look for them (data.train_batch_size, rollout.n, ...).
// docs/configuration.md lists every key of this table.
#include "framework/core/config.h"

namespace hone {
namespace {

using S = std::vector<std::string>;

ConfigField Int(std::string key, int64_t value, std::string help, std::optional<double> min,
                std::optional<double> max = std::nullopt) {
  return {std::move(key), ConfigType::kInt, value, std::move(help), min, max, {}};
}
ConfigField Float(std::string key, double value, std::string help, std::optional<double> min,
                  std::optional<double> max = std::nullopt) {
  return {std::move(key), ConfigType::kFloat, value, std::move(help), min, max, {}};
}
// A float that must be strictly greater than `min`.
ConfigField FloatAbove(std::string key, double value, std::string help, double min,
                       std::optional<double> max = std::nullopt) {
  ConfigField f = Float(std::move(key), value, std::move(help), min, max);
  f.min_exclusive = true;
  return f;
}
ConfigField Bool(std::string key, bool value, std::string help) {
  return {std::move(key), ConfigType::kBool, value, std::move(help), {}, {}, {}};
}
ConfigField Str(std::string key, std::string value, std::string help, S choices = {}) {
  return {std::move(key), ConfigType::kString, std::move(value), std::move(help), {}, {},
          std::move(choices)};
}
// An input file or directory: relative values resolve against the config file's directory.
ConfigField Path(std::string key, std::string help) {
  ConfigField f = Str(std::move(key), "", std::move(help));
  f.is_path = true;
  return f;
}
ConfigField IntList(std::string key, std::vector<int64_t> value, std::string help,
                    std::optional<double> min) {
  return {std::move(key), ConfigType::kIntList, std::move(value), std::move(help), min, {}, {}};
}
ConfigField FloatList(std::string key, std::vector<double> value, std::string help,
                      std::optional<double> min, std::optional<double> max) {
  return {std::move(key), ConfigType::kFloatList, std::move(value), std::move(help), min, max,
          {}};
}
ConfigField StrList(std::string key, S value, std::string help) {
  return {std::move(key), ConfigType::kStringList, std::move(value), std::move(help), {}, {}, {}};
}

ConfigSchema BuildSchema() {
  ConfigSchema s;
  s.Add(Int("seed", 1, "seed for data order, sampling and initialisation", 0));
  s.Add(Int("runtime.num_threads", 1, "intra-op threads per process (also set OPENBLAS_NUM_THREADS)", 1, 256));

  s.Add(Str("runtime.device", "auto", "where tensors live: cpu, cuda (the local rank's GPU), auto (cuda when available)", {"cpu", "cuda", "auto"}));

  s.Add(Int("placement.rollout", 1, "mpirun: rollout worker ranks (ranks 1..rollout)", 1, 4096));
  s.Add(Int("placement.reward", 1, "mpirun: reward worker ranks (after the rollout ranks)", 1, 4096));
  s.Add(Int("placement.trainer", 1, "mpirun: FSDP trainer ranks (the last ranks)", 1, 4096));
  s.Add(Str("rpc.host", "127.0.0.1", "address each worker's gRPC server binds to and announces; 0.0.0.0 (several nodes): every interface, announced as the node's host name"));
  s.Add(Int("rpc.port", 0, "port of each worker's gRPC server; 0 = a free port", 0, 65535));
  s.Add(Float("rpc.timeout_s", 1800, "deadline of one step call (Generate, Score, Update, ...)", 0.001));
  s.Add(Float("rpc.health_interval_s", 5, "seconds between Health heartbeats to every worker", 0.01));
  s.Add(Float("rpc.health_timeout_s", 10, "a worker whose Health call gets no answer within this is hung: the job stops naming it", 0.01));
  s.Add(Str("metrics.address", "127.0.0.1", "address the controller's Prometheus exporter binds to (0.0.0.0: every interface)"));
  s.Add(Int("metrics.port", 9464, "port of the controller's Prometheus exporter (/metrics); 0 = off", 0, 65535));
  s.Add(Float("metrics.linger_s", 0, "keep serving /metrics this long after the job ends, so that a scrape sees the last step (short jobs, tests)", 0, 3600));
  s.Add(Int("rpc.max_message_mb", 1024, "largest gRPC message (a step's batch must fit)", 4, 2047));
  s.Add(Float("dist.timeout_s", 600, "longest wait of one collective (MPI/NCCL) before the rank fails naming it", 0.001));
  s.Add(Int("dist.sync_bucket_mb", 256, "weight sync: megabytes per broadcast bucket (across machines); on one machine the shared-memory slot, at most 4", 1));
  s.Add(Int("dist.fsdp_bucket_mb", 64, "FSDP: megabytes per flat parameter bucket", 1));

  s.Add(Path("model.path", "policy model directory in Hugging Face layout (config.json, model.safetensors, tokenizer.json)"));
  s.Add(Path("model.reference_path", "frozen reference policy for the KL term (HF directory); empty: model.path as loaded at the start (trainer.resume keeps the run's original model here)"));
  s.Add(Path("model.init_config", "with an empty model.path: config.json to initialise a fresh model from (hone sft)"));

  s.Add(Str("data.dataset", "arithmetic", "dataset loader", {"gsm8k", "jsonl", "arithmetic"}));
  s.Add(Path("data.train_path", "training file (gsm8k, jsonl)"));
  s.Add(Path("data.val_path", "held-out file (gsm8k, jsonl); empty: hold out data.val_size training examples"));
  s.Add(Str("data.prompt_key", "question", "jsonl: field holding the question"));
  s.Add(Str("data.answer_key", "answer", "jsonl: field holding the answer (integer or '#### N')"));
  s.Add(Str("data.prompt_template", "plain", "prompt template: raw, plain, qwen, llama3, or chat (the model's own chat_template from tokenizer_config.json in model.path)"));
  s.Add(Int("data.train_batch_size", 8, "prompts per policy step (each sampled rollout.n times)", 1));
  s.Add(Int("data.val_size", 100, "held-out prompts used for validation and hone eval", 1));
  s.Add(Bool("data.skip_invalid", false, "skip malformed dataset lines with a counted warning instead of failing"));
  s.Add(Int("data.max_prompt_length", 512, "longest prompt in tokens (template applied); also at most the model's max_position_embeddings - rollout.max_new_tokens", 1));
  s.Add(Bool("data.filter_overlong_prompts", false, "drop prompts longer than data.max_prompt_length with a counted warning; false: a longer prompt is an error naming it"));
  s.Add(Int("data.arithmetic.num_examples", 20000, "arithmetic: problems generated for training", 1));
  s.Add(Int("data.arithmetic.min_ops", 2, "arithmetic: fewest operations per problem", 1, 8));
  s.Add(Int("data.arithmetic.max_ops", 2, "arithmetic: most operations per problem", 1, 8));
  s.Add(Int("data.arithmetic.operand_min", 1, "arithmetic: smallest operand", 0));
  s.Add(Int("data.arithmetic.operand_max", 20, "arithmetic: largest operand", 1));
  s.Add(Bool("data.arithmetic.allow_negative", false, "arithmetic: let running values go below zero"));
  s.Add(Float("data.arithmetic.unboxed_fraction", 0.0, "arithmetic: fraction of reference solutions without \\boxed{} (a warm start that boxes only sometimes)", 0.0, 1.0));

  s.Add(Int("rollout.n", 8, "samples per prompt (the GRPO group size)", 1, 1024));
  s.Add(Float("rollout.temperature", 1.0, "sampling temperature; 0 = greedy", 0.0));
  s.Add(Int("rollout.top_k", 0, "keep the k most likely tokens; 0 = off", 0));
  s.Add(FloatAbove("rollout.top_p", 1.0, "nucleus sampling mass, in (0, 1]; 1 = off", 0.0, 1.0));
  s.Add(Int("rollout.max_new_tokens", 64, "longest response in tokens", 1));

  s.Add(StrList("reward.fns", {"boxed_integer", "format"}, "reward components"));
  s.Add(Str("reward.fallback", "last_integer", "answer when no \\boxed{} exists", {"last_integer", "none"}));
  s.Add(Float("reward.correct_weight", 1.0, "weight of correctness in the total reward", 0.0));
  s.Add(Float("reward.format_weight", 0.1, "weight of the format reward in the total", 0.0));

  s.Add(Str("algorithm.adv_estimator", "grpo", "advantage estimator", {"grpo", "dr_grpo", "rloo", "reinforce_pp"}));
  s.Add(FloatAbove("algorithm.norm_eps", 1e-6, "epsilon added to the group std (> 0: an all-equal group would divide 0 by 0)", 0.0));
  s.Add(Float("algorithm.kl_coef", 0.0, "KL-to-reference loss coefficient; 0 keeps no reference model", 0.0));
  s.Add(Str("algorithm.kl_estimator", "k3", "KL estimator", {"k1", "k2", "k3"}));
  s.Add(Str("algorithm.policy_loss", "vanilla", "policy loss: vanilla (PPO clip per token) or gspo (one geometric-mean ratio per sequence, clipped per sequence; wants tiny clip ratios and clip_ratio_c = 0)", {"vanilla", "gspo"}));
  s.Add(Str("algorithm.rollout_correction", "off", "rollout/trainer mismatch correction: weight each token's policy loss by pi_old/pi_rollout per token or per sequence, truncated at rollout_is_threshold (tis_*) or zeroed beyond it (mis_*)", {"off", "tis_token", "tis_seq", "mis_token", "mis_seq"}));
  s.Add(Float("algorithm.rollout_is_threshold", 2.0, "rollout correction: the importance weight's upper bound C (>= 1); tis_* truncate weights at C, mis_* drop tokens/sequences whose weight exceeds C", 1.0));
  s.Add(Float("algorithm.clip_ratio_low", 0.2, "PPO clip: lower bound 1 - eps_low", 0.0, 1.0));
  s.Add(Float("algorithm.clip_ratio_high", 0.2, "PPO clip: upper bound 1 + eps_high (> low: clip-higher)", 0.0));
  s.Add(Float("algorithm.clip_ratio_c", 0.0, "dual clip constant for negative advantages (> 1); 0 = off", 0.0));
  s.Add(Str("algorithm.loss_agg_mode", "token_mean", "loss aggregation", {"token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"}));
  s.Add(Float("algorithm.entropy_coef", 0.0, "entropy bonus coefficient (entropy is always measured)", 0.0));
  s.Add(Bool("algorithm.filter_zero_std_groups", false, "drop groups whose rewards are all equal (DAPO dynamic sampling)"));
  s.Add(Bool("algorithm.mask_truncated", false, "leave responses cut at max_new_tokens out of the loss"));

  s.Add(Str("optim.name", "adamw", "optimizer", {"adamw"}));
  s.Add(Float("optim.lr", 1e-5, "peak learning rate", 0.0));
  s.Add(FloatList("optim.betas", {0.9, 0.999}, "AdamW betas", 0.0, 1.0));
  s.Add(Float("optim.eps", 1e-8, "AdamW epsilon", 0.0));
  s.Add(Float("optim.weight_decay", 0.0, "AdamW decoupled weight decay", 0.0));
  s.Add(Int("optim.warmup_steps", 0, "linear warm-up steps", 0));
  s.Add(Str("optim.schedule", "constant", "learning-rate schedule after warm-up", {"constant", "cosine"}));
  s.Add(Float("optim.grad_clip", 1.0, "clip the global grad norm to this; 0 = off", 0.0));

  s.Add(Int("trainer.total_steps", 100, "policy steps (GRPO) or optimizer steps (SFT)", 0));
  s.Add(Str("trainer.output_dir", "runs/train", "metrics.jsonl, checkpoints, the final model and config.yaml go here (relative: to the working directory)"));
  s.Add(Str("trainer.run_name", "", "the run label of every Prometheus series; empty: the name of trainer.output_dir"));
  s.Add(Str("trainer.resume", "off", "auto: continue from the newest complete checkpoint in trainer.output_dir (appending to metrics.jsonl); off: start fresh", {"off", "auto"}));
  s.Add(Bool("trainer.overwrite", false, "start fresh in a trainer.output_dir that holds an earlier run, deleting that run's metrics.jsonl, checkpoints, final/ and config.yaml; false: such a directory is refused"));
  s.Add(Int("trainer.save_every", 0, "checkpoint every N steps; 0 = only at the end", 0));
  s.Add(Float("trainer.shutdown_grace_s", 60, "on SIGTERM/SIGINT: seconds to finish the step, checkpoint and stop the workers before exiting non-zero without saving; 0 = no limit", 0.0));
  s.Add(Int("trainer.val_every", 0, "validate every N steps; 0 = off", 0));
  s.Add(Bool("trainer.async_rollout", false, "one-step-off: the rollouts of step s+1 are generated (with the policy of step s-1) while the trainers update on step s's; true needs trainer.max_policy_lag >= 1"));
  s.Add(Int("trainer.max_policy_lag", -1, "the oldest rollouts a step may train on, in policy versions behind the previous step's policy (older is an error: stale weights); -1 = 1 with trainer.async_rollout, else 0", -1));
  s.Add(Int("trainer.ppo_epochs", 1, "passes over each step's rollouts", 1));
  s.Add(Int("trainer.ppo_mini_batch_size", 0, "prompts per optimizer step, as in verl: each mini-batch is that many whole groups (x rollout.n sequences); 0 = the whole batch", 0));
  s.Add(Int("trainer.micro_batch_size", 64, "sequences per forward/backward (gradient accumulation)", 1));
  s.Add(Int("trainer.max_skipped_updates", 3, "stop the job after this many optimizer steps in a row skipped for a non-finite grad norm", 1));
  s.Add(Int("trainer.sft_batch_size", 64, "SFT: sequences per optimizer step", 1));

  s.Add(Int("eval.n", 1, "samples per prompt in hone eval", 1, 1024));
  s.Add(Float("eval.temperature", 0.0, "hone eval sampling temperature; 0 = greedy", 0.0));
  s.Add(IntList("eval.k", {1}, "Pass@k values to report (each <= eval.n)", 1));
  s.Add(Int("eval.limit", 0, "evaluate a seeded random subset of this many prompts; 0 = all", 0));
  s.Add(Int("eval.max_new_tokens", 0, "longest response; 0 = rollout.max_new_tokens", 0));
  s.Add(StrList("eval.reflection_words", {"Wait", "Now", "Hmm", "But", "Check"}, "words counted in responses"));
  s.Add(Str("eval.output", "", "write the evaluation JSON here (default: eval.json in the last --model directory)"));
  return s;
}

}  // namespace

const ConfigSchema& HoneConfigSchema() {
  static const ConfigSchema* schema = new ConfigSchema(BuildSchema());
  return *schema;
}

}  // namespace hone
