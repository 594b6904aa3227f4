// The `boxed_integer` reward and the registries of reward components and fallbacks.
#include "framework/reward/reward.h"

#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"

namespace hone::reward {
namespace {

using FallbackFn = std::optional<std::string> (*)(std::string_view text);

std::optional<std::string> NoFallback(std::string_view) { return std::nullopt; }

struct FallbackEntry {
  std::string_view name;
  FallbackFn fn;
};

constexpr FallbackEntry kFallbacks[] = {
    {"last_integer", ExtractLastInteger},
    {"none", NoFallback},
};

const FallbackEntry* FindFallback(std::string_view name) {
  for (const FallbackEntry& entry : kFallbacks) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

double CorrectComponent(std::string_view response, int64_t ground_truth,
                        const RewardOptions& options) {
  return ScoreBoxedInteger(response, ground_truth, options).correct;
}

double FormatComponent(std::string_view response, int64_t ground_truth,
                       const RewardOptions& options) {
  return ScoreBoxedInteger(response, ground_truth, options).format;
}

struct RewardEntry {
  std::string_view name;
  RewardFn fn;
  double RewardOptions::*weight;  // what scales this component in the total
};

// Adding a reward component is adding a row here.
const RewardEntry kRewardFns[] = {
    {"boxed_integer", CorrectComponent, &RewardOptions::correct_weight},
    {"format", FormatComponent, &RewardOptions::format_weight},
};

absl::StatusOr<const RewardEntry*> GetEntry(std::string_view name) {
  for (const RewardEntry& entry : kRewardFns) {
    if (entry.name == name) return &entry;
  }
  return absl::NotFoundError(absl::StrCat("unknown reward function '", std::string(name),
                                          "'; known: ", absl::StrJoin(RewardFnNames(), ", ")));
}

}  // namespace

absl::Status ValidateRewardOptions(const RewardOptions& options) {
  if (FindFallback(options.fallback) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown reward fallback '", options.fallback,
                                                   "'; known: ",
                                                   absl::StrJoin(FallbackNames(), ", ")));
  }
  if (!std::isfinite(options.correct_weight) || !std::isfinite(options.format_weight)) {
    return absl::InvalidArgumentError("reward weights must be finite numbers");
  }
  return absl::OkStatus();
}

RewardResult ScoreBoxedInteger(std::string_view response, int64_t ground_truth,
                               const RewardOptions& options) {
  RewardResult result;
  const BoxCount boxes = CountBoxes(response);
  if (boxes.total > 0) {
    result.extracted = ExtractLastBoxed(response);
  } else if (const FallbackEntry* fallback = FindFallback(options.fallback)) {
    result.extracted = fallback->fn(response);
  }
  if (result.extracted) result.answer = NormalizeInteger(*result.extracted);
  result.correct = result.answer.has_value() && *result.answer == ground_truth ? 1.0 : 0.0;
  // With a single box, that box is the last one, so `answer` is its content's value.
  result.format = boxes.total == 1 && boxes.complete == 1 && result.answer.has_value() ? 1.0 : 0.0;
  result.total = options.correct_weight * result.correct + options.format_weight * result.format;
  return result;
}

const RewardFn* FindRewardFn(std::string_view name) {
  for (const RewardEntry& entry : kRewardFns) {
    if (entry.name == name) return &entry.fn;
  }
  return nullptr;
}

std::vector<std::string> RewardFnNames() {
  std::vector<std::string> names;
  for (const RewardEntry& entry : kRewardFns) names.emplace_back(entry.name);
  return names;
}

absl::StatusOr<RewardFn> GetRewardFn(std::string_view name) {
  HONE_ASSIGN_OR_RETURN(const RewardEntry* entry, GetEntry(name));
  return entry->fn;
}

absl::StatusOr<double> RewardFnWeight(std::string_view name, const RewardOptions& options) {
  HONE_ASSIGN_OR_RETURN(const RewardEntry* entry, GetEntry(name));
  return options.*(entry->weight);
}

absl::StatusOr<double> WeightedTotal(const std::vector<std::string>& fns,
                                     std::string_view response, int64_t ground_truth,
                                     const RewardOptions& options) {
  double total = 0;
  for (const std::string& name : fns) {
    HONE_ASSIGN_OR_RETURN(const RewardEntry* entry, GetEntry(name));
    total += options.*(entry->weight) * entry->fn(response, ground_truth, options);
  }
  return total;
}

std::vector<std::string> FallbackNames() {
  std::vector<std::string> names;
  for (const FallbackEntry& entry : kFallbacks) names.emplace_back(entry.name);
  return names;
}

}  // namespace hone::reward
