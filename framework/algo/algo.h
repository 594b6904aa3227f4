// The GRPO algorithm library: advantage estimators, group statistics, loss aggregation,
// the clipped policy loss, KL-to-reference estimators, entropy / log-probs from logits and
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
  // Added to the standard deviation before dividing (grpo, reinforce_pp); keeps a group
  // of equal rewards at advantage 0 instead of 0/0.
  double norm_eps = 1e-6;
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
// "reinforce_pp" (REINFORCE++ with outcome rewards): batch-normalised,
// A_i = (r_i - mean_batch) / (std_batch + norm_eps) over all N, std unbiased; groups are
// ignored. With N == 1 the std is taken as 1 (so A = 0).
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
// then aggregated with options.loss_agg_mode. clip_fraction counts pg2 > pg1;
// dual_clip_fraction counts A < 0 and clipped > -A * c (0 when c is off).
// REQUIRES: ValidatePolicyLossOptions(options).ok(); all four tensors [B,T] of one shape.
PolicyLossOutput ClippedSurrogateLoss(const torch::Tensor& logp, const torch::Tensor& old_logp,
                                      const torch::Tensor& advantages,
                                      const torch::Tensor& mask,
                                      const PolicyLossOptions& options);

// The policy loss registered under `name` ("vanilla"); InvalidArgument otherwise.
absl::StatusOr<PolicyLossFn> GetPolicyLoss(const std::string& name);
std::vector<std::string> PolicyLossNames();

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
