// The rollout correction: importance weights pi_old / pi_rollout per token or per sequence,
// truncated (TIS) or masked (MIS) at a threshold (verl's rollout_corr_helper.py).
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/algo/algo.h"

namespace hone::algo {
namespace {

// Log-ratios are clamped to this before exp (verl's SAFETY_BOUND).
constexpr double kSafetyBound = 20.0;

const char* const kModes[] = {"off", "tis_token", "tis_seq", "mis_token", "mis_seq"};

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

double SumItem(const torch::Tensor& t) { return t.to(torch::kFloat64).sum().item<double>(); }

}  // namespace

std::vector<std::string> RolloutCorrectionModes() {
  return std::vector<std::string>(std::begin(kModes), std::end(kModes));
}

absl::Status ValidateRolloutCorrection(const std::string& mode, double threshold) {
  bool known = false;
  for (const char* name : kModes) known = known || mode == name;
  if (!known) {
    return absl::InvalidArgumentError(absl::StrCat("unknown rollout correction '", mode, "'; known: ",
                                                   absl::StrJoin(RolloutCorrectionModes(), ", ")));
  }
  if (!(threshold >= 1.0 && std::isfinite(threshold))) {
    return absl::InvalidArgumentError(
        absl::StrCat("rollout_is_threshold must be finite and >= 1, got ", threshold));
  }
  return absl::OkStatus();
}

RolloutCorrectionOutput RolloutCorrection(const torch::Tensor& old_logp,
                                          const torch::Tensor& rollout_logp,
                                          const torch::Tensor& mask, const std::string& mode,
                                          double threshold) {
  absl::Status valid = ValidateRolloutCorrection(mode, threshold);
  TORCH_CHECK(valid.ok(), "RolloutCorrection: ", std::string(valid.message()));
  TORCH_CHECK(old_logp.dim() == 2 && rollout_logp.sizes() == old_logp.sizes() &&
                  mask.sizes() == old_logp.sizes(),
              "RolloutCorrection: old_logp, rollout_logp, mask must be [B,T] of one shape, got ",
              old_logp.sizes(), ", ", rollout_logp.sizes(), ", ", mask.sizes());
  torch::NoGradGuard no_grad;
  const torch::Tensor counted = mask != 0;                            // [B,T]
  const torch::Tensor zero = torch::zeros({}, old_logp.options());
  const torch::Tensor log_ratio =
      torch::where(counted, old_logp.detach() - rollout_logp.detach(), zero);  // [B,T]
  const torch::Tensor has_tokens = counted.any(-1);                  // [B]
  const torch::Tensor seq_log_ratio = log_ratio.sum(-1);             // [B]

  RolloutCorrectionOutput out;
  out.sequences = SumItem(has_tokens);
  out.seq_kl_sum = -SumItem(seq_log_ratio.masked_select(has_tokens));

  torch::Tensor w;         // [B,T]: the untruncated weight of each token
  torch::Tensor exceeded;  // [B,T]: w > C
  if (EndsWith(mode, "_seq")) {
    torch::Tensor w_seq = seq_log_ratio.clamp(-kSafetyBound, kSafetyBound).exp();  // [B]
    torch::Tensor exceeded_seq = w_seq > threshold;
    out.units = out.sequences;
    out.weight_sum = SumItem(w_seq.masked_select(has_tokens));
    out.exceeded = SumItem(exceeded_seq.logical_and(has_tokens));
    w = w_seq.unsqueeze(-1).expand_as(old_logp);
    exceeded = exceeded_seq.unsqueeze(-1).expand_as(counted);
  } else {
    w = log_ratio.clamp(-kSafetyBound, kSafetyBound).exp();
    exceeded = w > threshold;
    if (mode == "off") {
      w = torch::ones_like(w);
      exceeded = torch::zeros_like(counted);
    }
    out.units = SumItem(counted);
    out.weight_sum = SumItem(w.masked_select(counted));
    out.exceeded = SumItem(exceeded.logical_and(counted));
  }
  torch::Tensor applied = w;  // off
  if (mode.rfind("tis_", 0) == 0) applied = w.clamp_max(threshold);
  if (mode.rfind("mis_", 0) == 0) applied = torch::where(exceeded, zero, w);
  out.weights = torch::where(counted, applied, zero);
  return out;
}

}  // namespace hone::algo
