// Loss aggregation, the policy losses (clipped surrogate, GSPO) and the per-token KL
// estimators.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "framework/algo/algo.h"

namespace hone::algo {
namespace {

// loss * mask with masked entries exactly 0, so that a non-finite loss at a padding
// position (e.g. an exploded ratio) cannot leak into the sum as NaN = inf * 0.
torch::Tensor MaskedLoss(const torch::Tensor& loss_mat, const torch::Tensor& counted) {
  return torch::where(counted, loss_mat, torch::zeros({}, loss_mat.options()));
}

// The mask as bool: 1 / true = counted.
torch::Tensor Counted(const torch::Tensor& mask) { return mask != 0; }

// Mean of `values` over the counted entries, as a double; 0 when none counts.
double MaskedMeanItem(const torch::Tensor& values, const torch::Tensor& counted) {
  int64_t n = counted.sum().item<int64_t>();
  if (n == 0) return 0.0;
  return values.to(torch::kFloat64).masked_select(counted).sum().item<double>() /
         static_cast<double>(n);
}

// The shape checks shared by the policy losses.
void CheckPolicyLossInputs(const char* name, const torch::Tensor& logp, const torch::Tensor& old_logp,
                           const torch::Tensor& advantages, const torch::Tensor& mask,
                           const PolicyLossOptions& options) {
  absl::Status valid = ValidatePolicyLossOptions(options);
  TORCH_CHECK(valid.ok(), name, ": ", std::string(valid.message()));
  TORCH_CHECK(logp.dim() == 2 && old_logp.sizes() == logp.sizes() &&
                  advantages.sizes() == logp.sizes() && mask.sizes() == logp.sizes(),
              name, ": logp, old_logp, advantages, mask must be [B,T] of one shape, got ",
              logp.sizes(), ", ", old_logp.sizes(), ", ", advantages.sizes(), ", ", mask.sizes());
  TORCH_CHECK(!options.token_weights.defined() || options.token_weights.sizes() == logp.sizes(),
              name, ": token_weights must be [B,T] like logp, got ", options.token_weights.sizes());
}

// The per-token losses times options.token_weights (detached), when given.
torch::Tensor Weighted(const torch::Tensor& losses, const PolicyLossOptions& options) {
  if (!options.token_weights.defined()) return losses;
  return losses * options.token_weights.detach().to(losses.scalar_type());
}

}  // namespace

// ---- loss aggregation ----

LossDenominators CountLossDenominators(const torch::Tensor& mask) {
  torch::Tensor counted = Counted(mask);
  LossDenominators d;
  d.tokens = static_cast<double>(counted.sum().item<int64_t>());
  d.nonempty_rows = static_cast<double>(counted.any(-1).sum().item<int64_t>());
  d.rows = static_cast<double>(mask.size(0));
  return d;
}

LossDenominators& operator+=(LossDenominators& a, const LossDenominators& b) {
  a.tokens = std::max(0.0, a.tokens) + std::max(0.0, b.tokens);
  a.nonempty_rows = std::max(0.0, a.nonempty_rows) + std::max(0.0, b.nonempty_rows);
  a.rows = std::max(0.0, a.rows) + std::max(0.0, b.rows);
  return a;
}

torch::Tensor TokenMeanLoss(const torch::Tensor& loss_mat, const torch::Tensor& mask,
                            int64_t norm_length, const LossDenominators& whole) {
  torch::Tensor counted = Counted(mask);
  const double tokens = whole.tokens >= 0 ? whole.tokens : counted.sum().item<double>();
  return MaskedLoss(loss_mat, counted).sum() / std::max(1.0, tokens);
}

torch::Tensor SeqMeanTokenMeanLoss(const torch::Tensor& loss_mat, const torch::Tensor& mask,
                                   int64_t norm_length, const LossDenominators& whole) {
  torch::Tensor counted = Counted(mask);
  torch::Tensor row_tokens = counted.sum(-1).to(loss_mat.scalar_type());  // [B]
  torch::Tensor row_mean = MaskedLoss(loss_mat, counted).sum(-1) / row_tokens.clamp_min(1);
  torch::Tensor has_tokens = row_tokens > 0;
  const double rows = whole.nonempty_rows >= 0 ? whole.nonempty_rows : has_tokens.sum().item<double>();
  return MaskedLoss(row_mean, has_tokens).sum() / std::max(1.0, rows);
}

torch::Tensor SeqMeanTokenSumNormLoss(const torch::Tensor& loss_mat, const torch::Tensor& mask,
                                      int64_t norm_length, const LossDenominators& whole) {
  const int64_t length = norm_length > 0 ? norm_length : loss_mat.size(-1);
  const double rows = whole.rows >= 0 ? whole.rows : static_cast<double>(loss_mat.size(0));
  torch::Tensor row_sum = MaskedLoss(loss_mat, Counted(mask)).sum(-1);  // [B]
  return row_sum.sum() / static_cast<double>(length) / std::max(1.0, rows);
}

// ---- policy loss ----

absl::Status ValidatePolicyLossOptions(const PolicyLossOptions& options) {
  if (!(options.clip_ratio_low >= 0.0 && options.clip_ratio_low <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("clip_ratio_low must be in [0, 1], got ", options.clip_ratio_low));
  }
  if (!(options.clip_ratio_high >= 0.0 && std::isfinite(options.clip_ratio_high))) {
    return absl::InvalidArgumentError(
        absl::StrCat("clip_ratio_high must be finite and >= 0, got ", options.clip_ratio_high));
  }
  if (!(options.clip_ratio_c == 0.0 ||
        (options.clip_ratio_c > 1.0 && std::isfinite(options.clip_ratio_c)))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "clip_ratio_c (dual clip) must be 0 (off) or > 1, got ", options.clip_ratio_c));
  }
  if (options.norm_length < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("norm_length must be >= 0, got ", options.norm_length));
  }
  absl::StatusOr<std::string> mode = ValidateLossAggMode(options.loss_agg_mode);
  return mode.status();
}

PolicyLossOutput ClippedSurrogateLoss(const torch::Tensor& logp, const torch::Tensor& old_logp,
                                      const torch::Tensor& advantages,
                                      const torch::Tensor& mask,
                                      const PolicyLossOptions& options) {
  CheckPolicyLossInputs("ClippedSurrogateLoss", logp, old_logp, advantages, mask, options);

  // [B,T] each.
  torch::Tensor log_ratio = (logp - old_logp).clamp(-20.0, 20.0);
  torch::Tensor ratio = log_ratio.exp();
  torch::Tensor pg1 = -advantages * ratio;
  torch::Tensor pg2 =
      -advantages * ratio.clamp(1.0 - options.clip_ratio_low, 1.0 + options.clip_ratio_high);
  torch::Tensor clipped = torch::maximum(pg1, pg2);
  torch::Tensor losses = clipped;
  torch::Tensor pg3;
  const bool dual_clip = options.clip_ratio_c > 0.0;
  if (dual_clip) {
    pg3 = -advantages * options.clip_ratio_c;
    losses = torch::where(advantages < 0, torch::minimum(clipped, pg3), clipped);
  }

  PolicyLossOutput out;
  out.loss = AggregateLoss(Weighted(losses, options), mask, options.loss_agg_mode,
                           options.norm_length, options.whole);

  torch::NoGradGuard no_grad;
  torch::Tensor counted = Counted(mask);
  out.clip_fraction = MaskedMeanItem(pg2 > pg1, counted);
  if (dual_clip) {
    out.dual_clip_fraction = MaskedMeanItem((advantages < 0).logical_and(clipped > pg3), counted);
  }
  out.approx_kl = MaskedMeanItem(old_logp - logp, counted);
  return out;
}

PolicyLossOutput GspoLoss(const torch::Tensor& logp, const torch::Tensor& old_logp,
                          const torch::Tensor& advantages, const torch::Tensor& mask,
                          const PolicyLossOptions& options) {
  CheckPolicyLossInputs("GspoLoss", logp, old_logp, advantages, mask, options);
  TORCH_CHECK(options.clip_ratio_c == 0.0,
              "GspoLoss: the dual clip (clip_ratio_c) is not defined for gspo; set it to 0, got ",
              options.clip_ratio_c);
  torch::Tensor counted = Counted(mask);
  const torch::Tensor zero = torch::zeros({}, logp.options());
  // [B]: the mean log-ratio over each sequence's counted tokens, log s_i.
  torch::Tensor lengths = counted.sum(-1).clamp_min(1).to(logp.scalar_type());
  torch::Tensor seq_log_ratio = torch::where(counted, logp - old_logp, zero).sum(-1) / lengths;
  // [B,T]: value s_i, gradient s_i * d logp_t (sg = detach).
  torch::Tensor log_ratio =
      (logp - logp.detach() + seq_log_ratio.detach().unsqueeze(-1)).clamp_max(10.0);
  torch::Tensor ratio = log_ratio.exp();
  torch::Tensor pg1 = -advantages * ratio;
  torch::Tensor pg2 =
      -advantages * ratio.clamp(1.0 - options.clip_ratio_low, 1.0 + options.clip_ratio_high);
  torch::Tensor losses = torch::maximum(pg1, pg2);

  PolicyLossOutput out;
  out.loss = AggregateLoss(Weighted(losses, options), mask, options.loss_agg_mode,
                           options.norm_length, options.whole);

  torch::NoGradGuard no_grad;
  out.clip_fraction = MaskedMeanItem(pg2 > pg1, counted);
  out.approx_kl = MaskedMeanItem(old_logp - logp, counted);
  return out;
}

// ---- KL estimators ----

torch::Tensor KlK1(const torch::Tensor& logp, const torch::Tensor& ref_logp) {
  return logp - ref_logp;
}

torch::Tensor KlK2(const torch::Tensor& logp, const torch::Tensor& ref_logp) {
  return 0.5 * (logp - ref_logp).square();
}

torch::Tensor KlK3(const torch::Tensor& logp, const torch::Tensor& ref_logp) {
  torch::Tensor d = (ref_logp - logp).clamp(-20.0, 20.0);
  return (d.exp() - d - 1.0).clamp(-10.0, 10.0);
}

}  // namespace hone::algo
