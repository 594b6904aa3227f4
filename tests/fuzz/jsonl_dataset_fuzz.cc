// Fuzz target: JSONL dataset files (framework/data/dataset.h: LoadDataset "gsm8k" and
// "jsonl", Gsm8kSolution). The input is written to a scratch file and loaded; byte 0
// picks the dataset, its field names and skip_invalid.
#include <cstdint>
#include <string>

#include "framework/data/dataset.h"
#include "framework/reward/reward.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  const std::string_view rest = hone::fuzz::AsView(data + 1, size - 1);
  hone::data::DatasetOptions options;
  options.path = hone::fuzz::ScratchDir() + "/data.jsonl";
  options.skip_invalid = selector & 1;
  if (selector & 2) options.solution_key = "solution";
  if (selector & 4) {
    options.prompt_key = "prompt";
    options.answer_key = "ground_truth";
  }
  const char* name = (selector & 8) ? "jsonl" : "gsm8k";
  hone::fuzz::WriteFileOrDie(options.path, rest);
  hone::data::LoadReport report;
  absl::StatusOr<std::vector<hone::data::Example>> examples =
      hone::data::LoadDataset(name, options, &report);
  if (examples.ok()) {
    HONE_FUZZ_CHECK(!examples->empty(), "an empty dataset is an error");
    for (size_t i = 0; i < examples->size(); ++i) {
      const hone::data::Example& e = (*examples)[i];
      HONE_FUZZ_CHECK(e.index == static_cast<int64_t>(i), "index");
      // Ground truth is canonical and reads back through the reward's own parser.
      absl::StatusOr<int64_t> truth = hone::reward::ParseGroundTruth(e.ground_truth);
      HONE_FUZZ_CHECK(truth.ok() && std::to_string(*truth) == e.ground_truth, e.ground_truth);
    }
    HONE_FUZZ_CHECK(report.skipped <= report.lines, "report");
    HONE_FUZZ_CHECK(report.warnings.size() <= hone::data::LoadReport::kMaxWarnings, "report");
  } else {
    HONE_FUZZ_CHECK(!examples.status().message().empty(), "an error says why");
  }
  absl::StatusOr<std::string> solution = hone::data::Gsm8kSolution(rest);
  if (solution.ok()) HONE_FUZZ_CHECK(solution->find("\\boxed{") != std::string::npos, *solution);
  return 0;
}
