// JSONL datasets (gsm8k, jsonl) and the dataset registry.
#include <cmath>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"
#include "framework/data/dataset.h"
#include "framework/reward/reward.h"
#include "nlohmann/json.hpp"

namespace hone::data {
namespace {

using nlohmann::json;

// What one JSONL record becomes; an error here is one malformed line.
using RecordParser = std::function<absl::StatusOr<Example>(const json& record)>;

bool IsBlank(std::string_view line) {
  for (char c : line) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<std::string> StringField(const json& record, const std::string& key) {
  auto it = record.find(key);
  if (it == record.end()) return absl::InvalidArgumentError(absl::StrCat("missing field \"", key, "\""));
  if (!it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("field \"", key, "\" is not a string"));
  }
  return it->get<std::string>();
}

// The answer as text: a string as is, an integral number in decimal. JSON numbers such as
// 42.0 count as integers; 42.5 does not.
absl::StatusOr<std::string> AnswerText(const json& record, const std::string& key) {
  auto it = record.find(key);
  if (it == record.end()) return absl::InvalidArgumentError(absl::StrCat("missing field \"", key, "\""));
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return it->dump();
  if (it->is_number_float()) {
    double v = it->get<double>();
    if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 9.0e15) {
      return std::to_string(static_cast<int64_t>(v));
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("field \"", key, "\" is neither a string nor an integer"));
}

absl::StatusOr<Example> ParseGsm8kRecord(const json& record) {
  Example example;
  HONE_ASSIGN_OR_RETURN(example.prompt, StringField(record, "question"));
  HONE_ASSIGN_OR_RETURN(std::string answer, StringField(record, "answer"));
  if (answer.find("####") == std::string::npos) {
    return absl::InvalidArgumentError("GSM8K answer has no '#### N' line");
  }
  HONE_ASSIGN_OR_RETURN(int64_t value, reward::ParseGroundTruth(answer));
  example.ground_truth = std::to_string(value);
  HONE_ASSIGN_OR_RETURN(example.solution, Gsm8kSolution(answer));
  return example;
}

absl::StatusOr<Example> ParseJsonlRecord(const json& record, const DatasetOptions& options) {
  Example example;
  HONE_ASSIGN_OR_RETURN(example.prompt, StringField(record, options.prompt_key));
  HONE_ASSIGN_OR_RETURN(std::string answer, AnswerText(record, options.answer_key));
  HONE_ASSIGN_OR_RETURN(int64_t value, reward::ParseGroundTruth(answer));
  example.ground_truth = std::to_string(value);
  if (!options.solution_key.empty()) {
    HONE_ASSIGN_OR_RETURN(example.solution, StringField(record, options.solution_key));
  } else if (answer.find("####") != std::string::npos) {
    HONE_ASSIGN_OR_RETURN(example.solution, Gsm8kSolution(answer));
  } else {
    example.solution = absl::StrCat("\\boxed{", example.ground_truth, "}");
  }
  return example;
}

// Reads `path` line by line; blank lines are ignored but still counted for line numbers.
absl::StatusOr<std::vector<Example>> LoadJsonl(const DatasetOptions& options,
                                               const RecordParser& parse, LoadReport* report) {
  if (options.path.empty()) return absl::InvalidArgumentError("dataset path is empty");
  std::ifstream in(options.path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open dataset file ", options.path));
  LoadReport local;
  LoadReport& rep = report != nullptr ? *report : local;
  rep = LoadReport{};
  std::vector<Example> examples;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (IsBlank(line)) continue;
    ++rep.lines;
    absl::StatusOr<Example> example = absl::InternalError("unparsed");
    try {
      example = parse(json::parse(line));
    } catch (const json::exception& e) {
      example = absl::InvalidArgumentError(absl::StrCat("bad JSON: ", e.what()));
    }
    if (!example.ok()) {
      std::string where = absl::StrCat(options.path, ":", line_no, ": ", example.status().message());
      if (!options.skip_invalid) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, " (fix the line, or set data.skip_invalid=true to skip such lines with a warning)"));
      }
      ++rep.skipped;
      if (static_cast<int>(rep.warnings.size()) < LoadReport::kMaxWarnings) rep.warnings.push_back(std::move(where));
      continue;
    }
    example->index = static_cast<int64_t>(examples.size());
    examples.push_back(*std::move(example));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", options.path));
  if (examples.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dataset file ", options.path, " holds no valid examples (", rep.skipped, " skipped)"));
  }
  return examples;
}

absl::StatusOr<std::vector<Example>> LoadGsm8k(const DatasetOptions& options, LoadReport* report) {
  return LoadJsonl(options, ParseGsm8kRecord, report);
}

absl::StatusOr<std::vector<Example>> LoadGenericJsonl(const DatasetOptions& options,
                                                      LoadReport* report) {
  if (options.prompt_key.empty() || options.answer_key.empty()) {
    return absl::InvalidArgumentError("jsonl dataset needs prompt_key and answer_key");
  }
  return LoadJsonl(
      options, [&options](const json& record) { return ParseJsonlRecord(record, options); },
      report);
}

absl::StatusOr<std::vector<Example>> LoadArithmetic(const DatasetOptions& options,
                                                    LoadReport* report) {
  if (report != nullptr) *report = LoadReport{};
  HONE_ASSIGN_OR_RETURN(std::vector<Example> examples, GenerateArithmetic(options));
  if (report != nullptr) report->lines = static_cast<int64_t>(examples.size());
  return examples;
}

struct DatasetEntry {
  std::string_view name;
  absl::StatusOr<std::vector<Example>> (*load)(const DatasetOptions&, LoadReport*);
};

// Adding a dataset is adding a row here.
constexpr DatasetEntry kDatasets[] = {
    {"gsm8k", LoadGsm8k},
    {"jsonl", LoadGenericJsonl},
    {"arithmetic", LoadArithmetic},
};

}  // namespace

absl::StatusOr<std::vector<Example>> LoadDataset(std::string_view name,
                                                 const DatasetOptions& options,
                                                 LoadReport* report) {
  for (const DatasetEntry& entry : kDatasets) {
    if (entry.name == name) return entry.load(options, report);
  }
  return absl::NotFoundError(absl::StrCat("unknown dataset '", std::string(name), "'; known: ",
                                          absl::StrJoin(DatasetNames(), ", ")));
}

std::vector<std::string> DatasetNames() {
  std::vector<std::string> names;
  for (const DatasetEntry& entry : kDatasets) names.emplace_back(entry.name);
  return names;
}

absl::StatusOr<std::string> Gsm8kSolution(std::string_view answer) {
  size_t marker = answer.rfind("####");
  if (marker == std::string_view::npos) {
    return absl::InvalidArgumentError("GSM8K answer has no '#### N' line");
  }
  HONE_ASSIGN_OR_RETURN(int64_t value, reward::ParseGroundTruth(answer));
  std::string_view steps = answer.substr(0, marker);
  std::string out;
  out.reserve(steps.size() + 16);
  // `<<48/2=24>>` is GSM8K's calculator annotation, not part of the reasoning a model
  // should learn to write.
  size_t i = 0;
  while (i < steps.size()) {
    size_t open = steps.find("<<", i);
    size_t close = open == std::string_view::npos ? open : steps.find(">>", open + 2);
    if (close == std::string_view::npos) {
      out.append(steps.substr(i));
      break;
    }
    out.append(steps.substr(i, open - i));
    i = close + 2;
  }
  while (!out.empty() && absl::ascii_isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  if (!out.empty()) out.push_back('\n');
  absl::StrAppend(&out, "\\boxed{", value, "}");
  return out;
}

}  // namespace hone::data
