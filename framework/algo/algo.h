// The GRPO algorithm library: advantage estimators, group statistics, loss aggregation,
// the policy losses (clipped surrogate, GSPO), the rollout correction (truncated / masked
// importance sampling), KL-to-reference estimators, entropy / log-probs from logits and
// the unbiased Pass@k estimator. Pure tensor functions, no state, no I/O (verl's
// core_algos.py in C++).
//
// Algorithms are chosen by name through registries (static tables in registry.cc): adding
// an algorithm is adding one function below and one table entry. A Get...(name) lookup
// of an unknown name returns InvalidArgument listing the known names, so configuration
// errors surface before a step runs.
//
// Conventions:
//   * Shapes are given in comments: N sequences, B rows of a micro-batch, T response
//     tokens (padded), V vocabulary entries.
//   * A `mask` is 1 (or true) for a response token that counts and 0 for padding or prompt;
//     it may be bool or floating point.
//   * Functions returning a tensor state their preconditions as REQUIRES lines; violating
//     one throws c10::Error (like a torch op), which a module boundary turns into a Status
//     with CatchTorch (framework/core/torch_status.h).
//   * Tensors may live on any device; results live on the inputs' device.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hone::algo {

// ============================================================================
// Advantages from outcome rewards (one scalar per sequence)
// ============================================================================

struct AdvantageOptions {
  // Added to the standard deviation before dividing (grpo); keeps a group of equal
  // rewards at advantage 0 instead of 0/0.
  double norm_eps = 1e-6;
  // [N] response tokens of each sequence, for the estimators that weigh sequences by
  // length (reinforce_pp); undefined: every sequence counts as one token.
  torch::Tensor response_lengths;
};

// rewards [N] floating point, group_ids [N] int64 (the sequences sampled from one prompt
// share an id; ids need not be contiguous or sorted) -> advantages [N], same dtype as
// rewards. Computed in float64 internally; not differentiable (rewards carry no grad).
// REQUIRES: rewards and group_ids are 1-D of equal length; group_ids is int64.
using AdvantageFn = torch::Tensor (*)(const torch::Tensor& rewards,
                                      const torch::Tensor& group_ids,
                                      const AdvantageOptions& options);

// "grpo": A_i = (r_i - mean_g) / (std_g + norm_eps), std unbiased (Bessel, as torch.std
// and verl). As in verl, a group of one has mean 0 and std 1, so A = r / (1 + norm_eps).
torch::Tensor GrpoAdvantage(const torch::Tensor& rewards, const torch::Tensor& group_ids,
                            const AdvantageOptions& options);
// "dr_grpo" (Dr. GRPO): A_i = r_i - mean_g, no division by the std. A group of one has
// mean 0 (as in verl), so A = r.
torch::Tensor DrGrpoAdvantage(const torch::Tensor& rewards, const torch::Tensor& group_ids,
                              const AdvantageOptions& options);
// "rloo": A_i = r_i - mean of the OTHER members of i's group = (n r_i - sum_g) / (n - 1).
// A group of one has no baseline and gets advantage 0 (verl leaves r unchanged there).
torch::Tensor RlooAdvantage(const torch::Tensor& rewards, const torch::Tensor& group_ids,
                            const AdvantageOptions& options);
// "reinforce_pp" (REINFORCE++ with outcome rewards, as verl's
// compute_reinforce_plus_plus_outcome_advantage with gamma 1): every response token of
// sequence i has return r_i, and the returns are whitened over all response tokens of the
// batch (verl's masked_whiten): A_i = (r_i - mu) / sqrt(var + 1e-8), with mu and var the
// length-weighted mean and Bessel-corrected variance over the sum L of
// response_lengths (mu = sum L_i r_i / L, var = sum L_i (r_i - mu)^2 / (L - 1)). Groups
// are ignored; norm_eps does not apply (verl's 1e-8 under the root). With L <= 1 the
// advantage is 0 (verl divides by zero there). Sequences with no response tokens get 0.
torch::Tensor ReinforcePpAdvantage(const torch::Tensor& rewards,
                                   const torch::Tensor& group_ids,
                                   const AdvantageOptions& options);

// The estimator registered under `name`; InvalidArgument (listing the names) otherwise.
absl::StatusOr<AdvantageFn> GetAdvantageEstimator(const std::string& name);
// Registered names, in table order: grpo, dr_grpo, rloo, reinforce_pp.
std::vector<std::string> AdvantageEstimatorNames();

// ============================================================================
// Group statistics (metrics and DAPO-style filtering)
// ============================================================================

struct GroupStats {
  int64_t num_groups = 0;
  // Fraction of groups (of all num_groups) with >= 2 members whose rewards are all
  // exactly equal: they carry no learning signal. A group of one is not counted (as in
  // verl's DAPO filter, which keeps such groups).
  double frac_zero_std = 0;
  // Mean over groups with >= 2 members of the unbiased in-group reward std; 0 when there
  // are no such groups.
  double mean_group_std = 0;
  torch::Tensor in_zero_std_group;  // [N] bool: the sequence's group is counted above
};

// rewards [N], group_ids [N] int64 (as for AdvantageFn). "All equal" is exact equality
// of the rewards (max == min), not a std threshold.
// REQUIRES: as for AdvantageFn.
GroupStats ComputeGroupStats(const torch::Tensor& rewards, const torch::Tensor& group_ids);

// ============================================================================
// Loss aggregation: a per-token loss matrix to the scalar that is minimised
// ============================================================================

// Denominators counted over more rows than one loss matrix holds. A mini-batch is split
// into micro-batches (a memory knob) and over trainer ranks (a speed knob); when every
// piece divides by the whole mini-batch's counts, the pieces' losses (and gradients) sum
// to the loss of the whole, whatever the split. A value < 0 means "count it in this
// loss matrix", which is what a single, unsplit call wants.
struct LossDenominators {
  double tokens = -1;         // token_mean: counted tokens
  double nonempty_rows = -1;  // seq_mean_token_mean: rows with >= 1 counted token
  double rows = -1;           // seq_mean_token_sum_norm: all rows
};
// The counts of one piece (mask [B,T]); add pieces' counts with operator+=.
LossDenominators CountLossDenominators(const torch::Tensor& mask);
LossDenominators& operator+=(LossDenominators& a, const LossDenominators& b);

// loss_mat [B,T], mask [B,T] -> scalar (loss_mat's dtype), differentiable w.r.t. loss_mat.
// norm_length is used by seq_mean_token_sum_norm only; `whole` gives the denominators of
// the whole mini-batch when loss_mat is one piece of it (see LossDenominators).
using LossAggFn = torch::Tensor (*)(const torch::Tensor& loss_mat, const torch::Tensor& mask,
                                    int64_t norm_length, const LossDenominators& whole);

// "token_mean": sum(loss * mask) / sum(mask); 0 when the mask is empty.
torch::Tensor TokenMeanLoss(const torch::Tensor& loss_mat, const torch::Tensor& mask,
                            int64_t norm_length, const LossDenominators& whole = {});
// "seq_mean_token_mean": mean, over the rows with >= 1 counted token, of each row's
// token mean; 0 when no row has a counted token.
torch::Tensor SeqMeanTokenMeanLoss(const torch::Tensor& loss_mat, const torch::Tensor& mask,
                                   int64_t norm_length, const LossDenominators& whole = {});
// "seq_mean_token_sum_norm" (Dr. GRPO): mean over all B rows of
// sum_t(loss * mask) / L, with L = norm_length when > 0, else T (the padded response
// length). Every row counts in the mean, as in verl; a constant L keeps long and short
// responses weighted per token alike.
torch::Tensor SeqMeanTokenSumNormLoss(const torch::Tensor& loss_mat, const torch::Tensor& mask,
                                      int64_t norm_length, const LossDenominators& whole = {});

// The canonical name of a loss aggregation mode: a registered name, or verl's spelling
// with '-' for '_' ("seq-mean-token-mean"). InvalidArgument listing the names otherwise.
absl::StatusOr<std::string> ValidateLossAggMode(const std::string& mode);
// Aggregates with the mode `mode` (either spelling, see ValidateLossAggMode).
// REQUIRES: ValidateLossAggMode(mode).ok(); loss_mat and mask are [B,T] of equal shape;
// norm_length >= 0.
torch::Tensor AggregateLoss(const torch::Tensor& loss_mat, const torch::Tensor& mask,
                            const std::string& mode, int64_t norm_length = 0,
                            const LossDenominators& whole = {});
// Registered names: token_mean, seq_mean_token_mean, seq_mean_token_sum_norm.
std::vector<std::string> LossAggModeNames();

// ============================================================================
// Policy loss: PPO clipped surrogate with clip-higher and optional dual clip
// ============================================================================

struct PolicyLossOptions {
  // The ratio is clipped to [1 - clip_ratio_low, 1 + clip_ratio_high]; high > low is
  // DAPO's clip-higher (more room for raising unlikely tokens). REQUIRES 0 <= low <= 1,
  // high >= 0.
  double clip_ratio_low = 0.2;
  double clip_ratio_high = 0.2;
  // Dual clip: for A < 0 the per-token loss is at most c * (-A), bounding the loss of a
  // token whose ratio exploded. 0 = off; otherwise REQUIRES c > 1.
  double clip_ratio_c = 0.0;
  std::string loss_agg_mode = "token_mean";  // see ValidateLossAggMode
  int64_t norm_length = 0;                   // for seq_mean_token_sum_norm; 0 = T
  LossDenominators whole;                    // the mini-batch's counts when split
  // [B,T] (no grad) or undefined: multiplies each token's loss before aggregation, the
  // denominators unchanged. The rollout correction's weights (RolloutCorrection below);
  // undefined = every weight 1. The metrics (clip fractions, approx_kl) ignore it.
  torch::Tensor token_weights;
};

// OK when every field is within the ranges documented above.
absl::Status ValidatePolicyLossOptions(const PolicyLossOptions& options);

struct PolicyLossOutput {
  torch::Tensor loss;             // scalar, differentiable w.r.t. logp
  double clip_fraction = 0;       // fraction of counted tokens where the clipped term won
  double dual_clip_fraction = 0;  // fraction of counted tokens capped by the dual clip
  double approx_kl = 0;           // mean over counted tokens of (old_logp - logp) (k1)
};

// logp [B,T] (requires grad for training), old_logp [B,T], advantages [B,T] (already
// broadcast per token), mask [B,T] -> PolicyLossOutput. Metrics are 0 for an empty mask.
using PolicyLossFn = PolicyLossOutput (*)(const torch::Tensor& logp,
                                          const torch::Tensor& old_logp,
                                          const torch::Tensor& advantages,
                                          const torch::Tensor& mask,
                                          const PolicyLossOptions& options);

// "vanilla" (verl's compute_policy_loss_vanilla), per token:
//   rho = exp(clamp(logp - old_logp, -20, 20))
//   pg1 = -A * rho;  pg2 = -A * clamp(rho, 1 - low, 1 + high);  clipped = max(pg1, pg2)
//   loss = (c > 1 and A < 0) ? min(clipped, -A * c) : clipped
// then multiplied by options.token_weights (when defined) and aggregated with
// options.loss_agg_mode. clip_fraction counts pg2 > pg1; dual_clip_fraction counts A < 0
// and clipped > -A * c (0 when c is off).
// REQUIRES: ValidatePolicyLossOptions(options).ok(); all four tensors (and token_weights
// when defined) [B,T] of one shape.
PolicyLossOutput ClippedSurrogateLoss(const torch::Tensor& logp, const torch::Tensor& old_logp,
                                      const torch::Tensor& advantages,
                                      const torch::Tensor& mask,
                                      const PolicyLossOptions& options);

// "gspo" (Group Sequence Policy Optimization, arXiv 2507.18071; verl's
// compute_policy_loss_gspo, the GSPO-token form): one importance ratio per sequence, the
// geometric mean of its token ratios over the counted tokens,
//   s_i = exp( sum_t mask * (logp - old_logp) / max(1, sum_t mask) ),
// applied to every token as s_it = exp(min(10, sg[log s_i] + logp_t - sg[logp_t])): its
// value is s_i (so the clip acts per sequence), its gradient s_i * grad logp_t. Then
//   pg1 = -A * s_it;  pg2 = -A * clamp(s_it, 1 - low, 1 + high);  loss = max(pg1, pg2)
// per token, times options.token_weights, aggregated with options.loss_agg_mode (verl
// always uses seq_mean_token_mean here; Hone honours the mode). With an advantage constant
// over each sequence, the gradient equals that of the sequence-level GSPO objective. No
// dual clip. clip_fraction counts the counted tokens with pg2 > pg1 (i.e. of clipped
// sequences); approx_kl as for "vanilla"; dual_clip_fraction is 0.
// REQUIRES: as for ClippedSurrogateLoss, and options.clip_ratio_c == 0.
PolicyLossOutput GspoLoss(const torch::Tensor& logp, const torch::Tensor& old_logp,
                          const torch::Tensor& advantages, const torch::Tensor& mask,
                          const PolicyLossOptions& options);

// The policy loss registered under `name`; InvalidArgument listing the names otherwise.
absl::StatusOr<PolicyLossFn> GetPolicyLoss(const std::string& name);
// Registered names: vanilla, gspo.
std::vector<std::string> PolicyLossNames();

// ============================================================================
// Rollout correction: the mismatch between the rollout and the trainer
// ============================================================================
// The rollout samples with its own engine (log-probs rollout_logp); the trainer recomputes
// old_logp before the update. Importance sampling reweights each token's policy loss by
// w = pi_old / pi_rollout (verl's rollout_corr: rollout_is / rollout_rs; TIS as in slime's
// --use-tis), detached:
//   token modes: l_t = old_logp_t - rollout_logp_t,             w_t = exp(clamp(l_t, -20, 20))
//   seq modes:   L_i = sum_t mask * (old_logp - rollout_logp),  w_it = exp(clamp(L_i, -20, 20))
//   tis_*: weight min(w, C)              (truncated importance sampling)
//   mis_*: weight w if w <= C, else 0    (masked importance sampling; only an upper bound)
// with C = threshold. Weights are 0 where the mask is 0; "off" gives weight 1 on every
// counted token.

struct RolloutCorrectionOutput {
  torch::Tensor weights;  // [B,T], no grad, old_logp's dtype; 0 where the mask is 0
  // Sums over this piece (sums of pieces are the sums of the whole). A unit is a counted
  // token (off, *_token) or a sequence with >= 1 counted token (*_seq).
  double units = 0;
  double weight_sum = 0;   // sum over units of the untruncated w
  double exceeded = 0;     // units with w > C: truncated (tis_*) or masked (mis_*)
  double sequences = 0;    // rows with >= 1 counted token
  double seq_kl_sum = 0;   // sum over those rows of sum_t mask * (rollout_logp - old_logp)
};

// OK when `mode` is a registered name and C is finite and >= 1 (a smaller C would
// down-weight or drop even tokens that the trainer and the rollout agree on).
absl::Status ValidateRolloutCorrection(const std::string& mode, double threshold);
// old_logp [B,T], rollout_logp [B,T], mask [B,T] -> the weights and metric sums.
// REQUIRES: ValidateRolloutCorrection(mode, threshold).ok(); the three [B,T] of one shape.
RolloutCorrectionOutput RolloutCorrection(const torch::Tensor& old_logp,
                                          const torch::Tensor& rollout_logp,
                                          const torch::Tensor& mask, const std::string& mode,
                                          double threshold);
// Registered modes: off, tis_token, tis_seq, mis_token, mis_seq.
std::vector<std::string> RolloutCorrectionModes();

// ============================================================================
// KL to the reference policy, per token
// ============================================================================

// logp [B,T], ref_logp [B,T] -> [B,T] (logp's dtype), differentiable w.r.t. logp.
using KlFn = torch::Tensor (*)(const torch::Tensor& logp, const torch::Tensor& ref_logp);

// "k1": logp - ref_logp (unbiased, high variance, can be negative per token).
torch::Tensor KlK1(const torch::Tensor& logp, const torch::Tensor& ref_logp);
// "k2": 0.5 * (logp - ref_logp)^2.
torch::Tensor KlK2(const torch::Tensor& logp, const torch::Tensor& ref_logp);
// "k3" (verl's low_var_kl): with d = clamp(ref_logp - logp, -20, 20),
// clamp(exp(d) - d - 1, -10, 10). Always >= 0.
torch::Tensor KlK3(const torch::Tensor& logp, const torch::Tensor& ref_logp);

// The per-token KL under `estimator`; InvalidArgument listing the names for an unknown
// estimator or for inputs of different shapes.
absl::StatusOr<torch::Tensor> KlPenalty(const torch::Tensor& logp, const torch::Tensor& ref_logp,
                                        const std::string& estimator);
// Registered names: k1, k2, k3.
std::vector<std::string> KlEstimatorNames();

// ============================================================================
// Entropy and log-probabilities from logits
// ============================================================================
// Both are differentiable w.r.t. logits. Half-precision logits (float16, bfloat16) are
// computed in float32 and the result is float32; otherwise the result has logits' dtype.

// logits [B,T,V] (or any [..., V]) -> entropy [B,T] of softmax(logits), computed stably
// as -sum(p * log p) with log p = log_softmax(logits) (max-shifted: no overflow, and
// accurate even for logits of large magnitude).
torch::Tensor EntropyFromLogits(const torch::Tensor& logits);

// logits [B,T,V], tokens [B,T] int64 -> [B,T]: log_softmax(logits / temperature) at the
// tokens (log_softmax subtracts the row max first: large logits lose no precision).
// REQUIRES: temperature > 0; 0 <= tokens < V.
torch::Tensor GatherLogProbs(const torch::Tensor& logits, const torch::Tensor& tokens,
                             double temperature = 1.0);

// ============================================================================
// Evaluation
// ============================================================================

// Unbiased Pass@k from n samples of which c are correct (the Codex estimator):
// 1 - C(n-c, k) / C(n, k), computed stably as 1 - prod_{i=n-c+1..n} (1 - k / i); 1 when
// n - c < k. Returns NaN unless 1 <= k <= n and 0 <= c <= n.
double PassAtK(int64_t n, int64_t c, int64_t k);

}  // namespace hone::algo
