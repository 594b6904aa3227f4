// Verifiable rewards for integer-answer math (GSM8K, the arithmetic demo): the interface
// of framework/reward. Torch-free: reward workers are CPU processes without a model.
//
// The contract of `boxed_integer`:
//   * The answer is the content of the LAST `\boxed{` up to its brace-balanced `}`. If
//     that last box never closes (generation cut at max length) the content runs to the
//     end of the text. Braces escaped as `\{` `\}` do not count towards the balance.
//   * Only when the text holds no `\boxed{` at all does the fallback strategy apply
//     (`last_integer` by default: the last number in the text, see ExtractLastInteger;
//     `none`: no answer). A box whose content is not an integer is wrong, not a fallback.
//   * The answer is normalised by NormalizeInteger and is correct when it equals the
//     ground truth as an integer.
//   * `format` is 1 when the text holds exactly one `\boxed{`, that box closes, and its
//     content normalises to an integer. A second, unclosed box after a complete one
//     therefore scores format 0 (the output was cut while answering again).
//   * total = correct_weight * correct + format_weight * format.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hone::reward {

struct RewardOptions {
  // What answers a response without any `\boxed{`: a name from FallbackNames().
  std::string fallback = "last_integer";
  // Correctness is weighted far above format so that format alone never looks like
  // progress on a reward curve.
  double correct_weight = 1.0;
  double format_weight = 0.1;
};

// Checks the fallback name and that both weights are finite.
absl::Status ValidateRewardOptions(const RewardOptions& options);

struct RewardResult {
  double correct = 0;  // 1 when the answer equals the ground truth, else 0
  double format = 0;   // 1 for exactly one complete box holding an integer, else 0
  double total = 0;    // correct_weight * correct + format_weight * format
  // The raw answer text: box content, or the fallback's match; nullopt when none.
  std::optional<std::string> extracted;
  // `extracted` after NormalizeInteger; nullopt when it is not an integer.
  std::optional<int64_t> answer;
};

// --- extraction and normalisation (public so that every rule is tested on its own) ---

// Content of the last `\boxed{`: up to its balancing `}`, or to the end of the text when
// it never closes. nullopt when the text has no `\boxed{`.
std::optional<std::string> ExtractLastBoxed(std::string_view text);

// Number of `\boxed{` occurrences, and how many of them close.
struct BoxCount {
  int total = 0;
  int complete = 0;
};
BoxCount CountBoxes(std::string_view text);

// The last number in the text, as written: an optional sign, digits, thousands groups
// (`,` followed by exactly three digits, first group at most three digits) and an
// optional `.digits` fraction. The sign counts only when it does not follow a letter,
// digit or closing bracket, so "is -5" gives "-5" but "10-5" gives "5". A comma that
// does not start a valid group ends the number: "1,2,3" gives "3". A period not followed
// by a digit is punctuation: "is 42." gives "42". "3.5" gives "3.5" (not an integer, so
// never correct) rather than "5".
std::optional<std::string> ExtractLastInteger(std::string_view text);

// The integer an answer denotes, or nullopt when it is not an integer. Rules:
//   * `\text{..}` and `\mathrm{..}` are unwrapped (nested ones too); an unclosed one
//     makes the answer not an integer;
//   * whitespace, `\$`, `$`, `\!` and `\,` are dropped (so "1\,234" is 1234);
//   * one leading `+` or `-`; leading zeros are allowed ("007" is 7, "-0" is 0);
//   * thousands separators must group correctly: "1,234" and "12,345,678" are integers,
//     "1,23", "1234,567", ",123" and "1,,234" are not;
//   * a fraction of zeros is integral ("42.0", "42.000"); "42.5", "42." and ".0" are not;
//   * anything else is not an integer: "", "-", `\frac{84}{2}`, "40+2", "4e1", "0x2A";
//   * values outside int64 are not integers.
std::optional<int64_t> NormalizeInteger(std::string_view answer);

// Ground truth: an integer string ("72", "-3", "1,234", surrounding whitespace allowed)
// or a GSM8K answer whose text after its last `####` is such an integer
// ("...\n#### 1,234"). Stricter than NormalizeInteger: no LaTeX, `$` or inner spaces.
absl::StatusOr<int64_t> ParseGroundTruth(std::string_view ground_truth);

// --- scoring ---

// The full `boxed_integer` reward with its components.
RewardResult ScoreBoxedInteger(std::string_view response, int64_t ground_truth,
                               const RewardOptions& options);

// A named reward component: a pure function of one response (0 or 1 for the built-in
// ones, before weighting).
using RewardFn = double (*)(std::string_view response, int64_t ground_truth,
                            const RewardOptions& options);

// Registry: `boxed_integer` (correctness) and `format`. nullptr for an unknown name.
const RewardFn* FindRewardFn(std::string_view name);
std::vector<std::string> RewardFnNames();  // in registry order

// Like FindRewardFn, but an unknown name is an error listing the known ones.
absl::StatusOr<RewardFn> GetRewardFn(std::string_view name);

// The weight RewardOptions gives a component in the total: correct_weight for
// `boxed_integer`, format_weight for `format`. Error for an unknown name.
absl::StatusOr<double> RewardFnWeight(std::string_view name, const RewardOptions& options);

// Sum of weight * value over the named components (the config's reward.fns). With
// {"boxed_integer", "format"} it equals ScoreBoxedInteger(...).total.
absl::StatusOr<double> WeightedTotal(const std::vector<std::string>& fns,
                                     std::string_view response, int64_t ground_truth,
                                     const RewardOptions& options);

// Fallback strategies by name (`last_integer`, `none`), in registry order.
std::vector<std::string> FallbackNames();

}  // namespace hone::reward
