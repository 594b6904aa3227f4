// Fuzz target: reward extraction and scoring of arbitrary response text
// (framework/reward: ExtractLastBoxed, CountBoxes, ExtractLastInteger, NormalizeInteger,
// ParseGroundTruth, ScoreBoxedInteger), checking the contract reward.h states.
//
// Input: byte 0 picks the ground truth and options; the rest is the response text.
#include <cmath>
#include <cstdint>
#include <string>

#include "framework/reward/reward.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace hone::reward;

void CheckNormalizeStable(std::string_view text) {
  std::optional<int64_t> v = NormalizeInteger(text);
  if (!v) return;
  // The canonical spelling of an integer must normalise back to itself.
  std::optional<int64_t> again = NormalizeInteger(std::to_string(*v));
  HONE_FUZZ_CHECK(again && *again == *v, std::to_string(*v));
  absl::StatusOr<int64_t> gt = ParseGroundTruth(std::to_string(*v));
  HONE_FUZZ_CHECK(gt.ok() && *gt == *v, std::to_string(*v));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  const std::string_view text = hone::fuzz::AsView(data + 1, size - 1);

  constexpr int64_t kTruths[] = {0, 42, -7, 1234, INT64_MAX, INT64_MIN};
  int64_t truth = kTruths[selector % 6];
  absl::StatusOr<int64_t> parsed_truth = ParseGroundTruth(text);
  if (parsed_truth.ok()) {
    truth = *parsed_truth;
    absl::StatusOr<int64_t> again = ParseGroundTruth(std::to_string(truth));
    HONE_FUZZ_CHECK(again.ok() && *again == truth, std::to_string(truth));
  }

  RewardOptions options;
  options.fallback = (selector & 0x40) ? "none" : "last_integer";
  options.format_weight = (selector & 0x80) ? 0.5 : 0.1;
  HONE_FUZZ_CHECK(ValidateRewardOptions(options).ok(), "options");

  const std::optional<std::string> boxed = ExtractLastBoxed(text);
  const BoxCount boxes = CountBoxes(text);
  HONE_FUZZ_CHECK(boxed.has_value() == (boxes.total > 0), "ExtractLastBoxed vs CountBoxes");
  HONE_FUZZ_CHECK(0 <= boxes.complete && boxes.complete <= boxes.total, "CountBoxes");
  if (boxed) CheckNormalizeStable(*boxed);
  const std::optional<std::string> last = ExtractLastInteger(text);
  if (last) {
    HONE_FUZZ_CHECK(!last->empty(), "ExtractLastInteger gave an empty match");
    CheckNormalizeStable(*last);
  }
  CheckNormalizeStable(text);

  const RewardResult r = ScoreBoxedInteger(text, truth, options);
  HONE_FUZZ_CHECK(r.correct == 0 || r.correct == 1, "correct");
  HONE_FUZZ_CHECK(r.format == 0 || r.format == 1, "format");
  HONE_FUZZ_CHECK(r.total == options.correct_weight * r.correct + options.format_weight * r.format,
                  "total");
  if (r.format == 1) {
    HONE_FUZZ_CHECK(boxes.total == 1 && boxes.complete == 1 && r.answer.has_value(),
                    "format 1 needs exactly one complete box holding an integer");
  }
  if (boxed) HONE_FUZZ_CHECK(r.extracted == boxed, "a box answers, not the fallback");
  if (!boxed && options.fallback == "none") HONE_FUZZ_CHECK(!r.extracted, "fallback none");
  if (!boxed && options.fallback == "last_integer") HONE_FUZZ_CHECK(r.extracted == last, "fallback");
  if (r.answer) {
    HONE_FUZZ_CHECK(r.extracted && NormalizeInteger(*r.extracted) == r.answer, "answer");
  } else {
    HONE_FUZZ_CHECK(!r.extracted || !NormalizeInteger(*r.extracted), "answer missing");
  }
  HONE_FUZZ_CHECK((r.correct == 1) == (r.answer.has_value() && *r.answer == truth), "correct");

  for (const std::string& fn : RewardFnNames()) {
    absl::StatusOr<RewardFn> f = GetRewardFn(fn);
    HONE_FUZZ_CHECK(f.ok(), fn);
    const double value = (*f)(text, truth, options);
    HONE_FUZZ_CHECK(std::isfinite(value), fn);
  }
  absl::StatusOr<double> weighted = WeightedTotal({"boxed_integer", "format"}, text, truth, options);
  HONE_FUZZ_CHECK(weighted.ok() && *weighted == r.total, "WeightedTotal");
  return 0;
}
