// The algorithm registries: one static table per kind, name -> function. Adding an
// algorithm is adding its function (algo.h) and one line here.
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/algo/algo.h"

namespace hone::algo {
namespace {

template <typename Fn>
struct Entry {
  const char* name;
  Fn fn;
};

const Entry<AdvantageFn> kAdvantageEstimators[] = {
    {"grpo", &GrpoAdvantage},
    {"dr_grpo", &DrGrpoAdvantage},
    {"rloo", &RlooAdvantage},
    {"reinforce_pp", &ReinforcePpAdvantage},
};

const Entry<LossAggFn> kLossAggModes[] = {
    {"token_mean", &TokenMeanLoss},
    {"seq_mean_token_mean", &SeqMeanTokenMeanLoss},
    {"seq_mean_token_sum_norm", &SeqMeanTokenSumNormLoss},
};

const Entry<PolicyLossFn> kPolicyLosses[] = {
    {"vanilla", &ClippedSurrogateLoss},
    {"gspo", &GspoLoss},
};

const Entry<KlFn> kKlEstimators[] = {
    {"k1", &KlK1},
    {"k2", &KlK2},
    {"k3", &KlK3},
};

template <typename Fn, size_t N>
std::vector<std::string> Names(const Entry<Fn> (&table)[N]) {
  std::vector<std::string> names;
  for (const Entry<Fn>& entry : table) names.emplace_back(entry.name);
  return names;
}

// The entry named `name`, or nullptr.
template <typename Fn, size_t N>
const Entry<Fn>* Find(const Entry<Fn> (&table)[N], const std::string& name) {
  for (const Entry<Fn>& entry : table) {
    if (name == entry.name) return &entry;
  }
  return nullptr;
}

template <typename Fn, size_t N>
std::string UnknownMessage(const Entry<Fn> (&table)[N], const std::string& kind,
                           const std::string& name) {
  return absl::StrCat("unknown ", kind, " '", name, "'; known: ",
                      absl::StrJoin(Names(table), ", "));
}

template <typename Fn, size_t N>
absl::StatusOr<Fn> Lookup(const Entry<Fn> (&table)[N], const std::string& kind,
                          const std::string& name) {
  if (const Entry<Fn>* entry = Find(table, name)) return entry->fn;
  return absl::InvalidArgumentError(UnknownMessage(table, kind, name));
}

// verl spells loss aggregation modes with '-'; Hone with '_'.
std::string CanonicalLossAggMode(std::string mode) {
  std::replace(mode.begin(), mode.end(), '-', '_');
  return mode;
}

}  // namespace

absl::StatusOr<AdvantageFn> GetAdvantageEstimator(const std::string& name) {
  return Lookup(kAdvantageEstimators, "advantage estimator", name);
}
std::vector<std::string> AdvantageEstimatorNames() { return Names(kAdvantageEstimators); }

absl::StatusOr<std::string> ValidateLossAggMode(const std::string& mode) {
  std::string canonical = CanonicalLossAggMode(mode);
  if (Find(kLossAggModes, canonical) == nullptr) {
    return absl::InvalidArgumentError(UnknownMessage(kLossAggModes, "loss_agg_mode", mode));
  }
  return canonical;
}

torch::Tensor AggregateLoss(const torch::Tensor& loss_mat, const torch::Tensor& mask,
                            const std::string& mode, int64_t norm_length,
                            const LossDenominators& whole) {
  const Entry<LossAggFn>* entry = Find(kLossAggModes, CanonicalLossAggMode(mode));
  TORCH_CHECK(entry != nullptr, UnknownMessage(kLossAggModes, "loss_agg_mode", mode));
  TORCH_CHECK(loss_mat.dim() == 2 && loss_mat.sizes() == mask.sizes(),
              "AggregateLoss: loss_mat and mask must be [B,T] of one shape, got ",
              loss_mat.sizes(), " and ", mask.sizes());
  TORCH_CHECK(norm_length >= 0, "AggregateLoss: norm_length must be >= 0, got ", norm_length);
  return entry->fn(loss_mat, mask, norm_length, whole);
}

std::vector<std::string> LossAggModeNames() { return Names(kLossAggModes); }

absl::StatusOr<PolicyLossFn> GetPolicyLoss(const std::string& name) {
  return Lookup(kPolicyLosses, "policy loss", name);
}
std::vector<std::string> PolicyLossNames() { return Names(kPolicyLosses); }

absl::StatusOr<torch::Tensor> KlPenalty(const torch::Tensor& logp, const torch::Tensor& ref_logp,
                                        const std::string& estimator) {
  absl::StatusOr<KlFn> fn = Lookup(kKlEstimators, "KL estimator", estimator);
  if (!fn.ok()) return fn.status();
  if (logp.sizes() != ref_logp.sizes()) {
    std::string got = absl::StrCat("[", absl::StrJoin(logp.sizes(), ","), "] and [",
                                   absl::StrJoin(ref_logp.sizes(), ","), "]");
    return absl::InvalidArgumentError(
        absl::StrCat("KlPenalty: logp and ref_logp must have one shape, got ", got));
  }
  return (*fn)(logp, ref_logp);
}
std::vector<std::string> KlEstimatorNames() { return Names(kKlEstimators); }

}  // namespace hone::algo
