// `hone reward`: scores JSONL responses on stdin with a reward function, one JSONL line
// out per line in. Lets users check the reward on their own model outputs before a run.
//
//   echo '{"response": "so \\boxed{72}", "ground_truth": "#### 72"}' | hone reward
//   -> {"correct":1.0,"extracted":"72","format":1.0,"score":1.0,"total":1.1}
//
// Every line carries the full boxed_integer breakdown (correct, format, total, extracted);
// `score` is the value of the component chosen with --fn.
#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"
#include "framework/reward/reward.h"
#include "nlohmann/json.hpp"
#include "workers/cli/command.h"
#include "workers/cli/validators.h"

namespace hone::cli {
namespace {

using nlohmann::json;

struct RewardArgs {
  std::string fn = "boxed_integer";
  reward::RewardOptions options;
  bool skip_invalid = false;
};

const char* JsonTypeName(const json& value) {
  if (value.is_null()) return "null";
  if (value.is_boolean()) return "a boolean";
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_array()) return "an array";
  return "an object";
}

absl::StatusOr<int64_t> GroundTruthOf(const json& value) {
  if (value.is_string()) return reward::ParseGroundTruth(value.get<std::string>());
  if (value.is_number_integer()) {
    if (value.is_number_unsigned() && value.get<uint64_t>() > uint64_t{INT64_MAX}) {
      return absl::InvalidArgumentError("\"ground_truth\" is outside int64");
    }
    return value.get<int64_t>();
  }
  if (value.is_number_float()) {
    double v = value.get<double>();
    if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 9.0e15) {
      return static_cast<int64_t>(v);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("field \"ground_truth\" must be an integer or a string, not ",
                                                 JsonTypeName(value)));
}

// The input fields other than the scored ones (an "id", say), so that outputs can be
// joined back to inputs.
json PassedThrough(const json& record) {
  json out = json::object();
  if (!record.is_object()) return out;
  for (const auto& [key, value] : record.items()) {
    if (key != "response" && key != "ground_truth") out[key] = value;
  }
  return out;
}

// One input record to one output object; errors name the problem, the caller the line.
absl::StatusOr<json> ScoreRecord(const json& record, const RewardArgs& args, reward::RewardFn fn) {
  if (!record.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("expected a JSON object, not ", JsonTypeName(record)));
  }
  auto response = record.find("response");
  if (response == record.end()) return absl::InvalidArgumentError("missing field \"response\"");
  if (!response->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field \"response\" must be a string, not ", JsonTypeName(*response)));
  }
  auto gt_field = record.find("ground_truth");
  if (gt_field == record.end()) return absl::InvalidArgumentError("missing field \"ground_truth\"");
  HONE_ASSIGN_OR_RETURN(int64_t ground_truth, GroundTruthOf(*gt_field));

  const std::string text = response->get<std::string>();
  reward::RewardResult result = reward::ScoreBoxedInteger(text, ground_truth, args.options);
  json out = PassedThrough(record);
  out["correct"] = result.correct;
  out["format"] = result.format;
  out["total"] = result.total;
  out["extracted"] = result.extracted ? json(*result.extracted) : json(nullptr);
  out["score"] = fn(text, ground_truth, args.options);
  return out;
}

absl::Status RunReward(const RewardArgs& args) {
  HONE_ASSIGN_OR_RETURN(reward::RewardFn fn, reward::GetRewardFn(args.fn));
  HONE_RETURN_IF_ERROR(reward::ValidateRewardOptions(args.options));
  std::string line;
  int64_t line_no = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // A blank line in is a blank line out: output line N always answers input line N.
    if (line.find_first_not_of(" \t") == std::string::npos) {
      std::cout << '\n';
      continue;
    }
    json record;
    std::string parse_error;
    try {
      record = json::parse(line);
    } catch (const json::exception& e) {
      parse_error = e.what();
    }
    absl::StatusOr<json> out = absl::InvalidArgumentError(absl::StrCat("bad JSON: ", parse_error));
    if (parse_error.empty()) out = ScoreRecord(record, args, fn);
    if (!out.ok() && args.skip_invalid) {
      json error = PassedThrough(record);
      error["error"] = std::string(out.status().message());
      out = std::move(error);
    }
    if (!out.ok()) {
      std::cout.flush();
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": ", out.status().message(),
                                                     " (--skip-invalid writes an \"error\" line instead)"));
    }
    // Extraction cuts only at ASCII bytes, so valid UTF-8 in gives valid UTF-8 out;
    // `replace` only keeps one odd line from aborting a whole scoring run.
    std::cout << out->dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  }
  std::cout.flush();
  return absl::OkStatus();
}

}  // namespace

CommandAction SetupRewardCommand(CLI::App& sub) {
  auto args = std::make_shared<RewardArgs>();
  sub.add_option("--fn", args->fn,
                 "reward component reported as `score`: " +
                     absl::StrJoin(reward::RewardFnNames(), ", "))
      ->capture_default_str();
  sub.add_option("--fallback", args->options.fallback,
                 "answer when a response has no \\boxed{}: " +
                     absl::StrJoin(reward::FallbackNames(), ", "))
      ->capture_default_str();
  // The bounds of reward.correct_weight and reward.format_weight in the config schema.
  sub.add_option("--correct-weight", args->options.correct_weight,
                 "weight of correctness in total")
      ->capture_default_str()->check(NonNegative());
  sub.add_option("--format-weight", args->options.format_weight, "weight of format in total")
      ->capture_default_str()->check(NonNegative());
  sub.add_flag("--skip-invalid", args->skip_invalid,
               "write {\"error\": ...} for a malformed line and go on, instead of stopping");
  sub.footer(
      "Reads JSONL {\"response\": ..., \"ground_truth\": ...} on stdin (ground_truth: an integer "
      "or a GSM8K answer ending in '#### N') and writes one JSONL line per input with correct, "
      "format, total, extracted and score. Other input fields (an \"id\", say) are copied to the output line; "
      "a blank line in gives a blank line out, so output line N always answers input line N.");
  return [args]() { return RunReward(*args); };
}

}  // namespace hone::cli
