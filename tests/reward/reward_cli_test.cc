// `hone reward` end to end: JSONL in, JSONL out, errors naming the line. Runs the binary
// named by HONE_BIN, else the build tree's workers/hone next to this test; skipped when
// neither exists.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/hone_binary.h"

namespace {

using ::testing::HasSubstr;
using nlohmann::json;

struct CliRun {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

using hone::testing_support::HoneBinary;

CliRun RunHone(const std::string& args, const std::string& input) {
  // Unique per test and process: ctest runs these tests in parallel.
  const std::string in_path = ::testing::TempDir() + "hone_reward_cli_" +
                              ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                              "_" + std::to_string(getpid()) + ".jsonl";
  std::ofstream(in_path, std::ios::binary) << input;
  std::string cmd = HoneBinary() + " reward " + args + " < " + in_path + " 2>&1";
  auto result = hone::testing_support::RunCommand(cmd);
  std::remove(in_path.c_str());
  return CliRun{result.exit_code, std::move(result.out)};
}

std::vector<json> Lines(const std::string& out) {
  std::vector<json> lines;
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    if (end > start) lines.push_back(json::parse(out.substr(start, end - start)));
    start = end + 1;
  }
  return lines;
}

class RewardCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (HoneBinary().empty()) GTEST_SKIP() << "no hone binary: set HONE_BIN";
  }
};

TEST_F(RewardCli, ScoresEachLine) {
  CliRun run = RunHone("--fn boxed_integer",
                    "{\"response\": \"so \\\\boxed{72}\", \"ground_truth\": \"x\\n#### 72\"}\n"
                    "{\"response\": \"7+12=19. 19-5=14\", \"ground_truth\": 14}\n"
                    "\n"
                    "{\"response\": \"\\\\boxed{1} \\\\boxed{2}\", \"ground_truth\": \"1,234\"}\n");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  std::vector<json> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 3u) << run.out;
  EXPECT_EQ(lines[0]["correct"], 1.0);
  EXPECT_EQ(lines[0]["format"], 1.0);
  EXPECT_DOUBLE_EQ(lines[0]["total"].get<double>(), 1.1);
  EXPECT_EQ(lines[0]["extracted"], "72");
  EXPECT_EQ(lines[1]["correct"], 1.0);  // last_integer fallback
  EXPECT_EQ(lines[1]["format"], 0.0);
  EXPECT_DOUBLE_EQ(lines[1]["total"].get<double>(), 1.0);
  EXPECT_EQ(lines[2]["correct"], 0.0);
  EXPECT_EQ(lines[2]["extracted"], "2");
  EXPECT_EQ(lines[2]["total"], 0.0);
}

TEST_F(RewardCli, OptionsChangeTheScore) {
  CliRun run = RunHone("--fn format --fallback none --correct-weight 2 --format-weight 0.5",
                    "{\"response\": \"7+12=19. 19-5=14\", \"ground_truth\": 14}\n"
                    "{\"response\": \"\\\\boxed{13}\", \"ground_truth\": 14}\n");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  std::vector<json> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 2u) << run.out;
  EXPECT_EQ(lines[0]["correct"], 0.0);
  EXPECT_TRUE(lines[0]["extracted"].is_null());
  EXPECT_EQ(lines[1]["format"], 1.0);
  EXPECT_EQ(lines[1]["score"], 1.0);  // --fn format
  EXPECT_DOUBLE_EQ(lines[1]["total"].get<double>(), 0.5);
}

TEST_F(RewardCli, MalformedLineNamesItsNumber) {
  CliRun run = RunHone("", "{\"response\": \"\\\\boxed{1}\", \"ground_truth\": 1}\n\n{\"response\": 5}\n");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.out, HasSubstr("line 3:"));
  run = RunHone("", "not json\n");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.out, HasSubstr("line 1: bad JSON"));
  run = RunHone("", "{\"response\": \"x\", \"ground_truth\": \"#### many\"}\n");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.out, HasSubstr("line 1: ground truth"));
}

// With --skip-invalid, output line N answers input line N: bad lines get an "error", blank
// lines stay blank, and extra fields such as an id are copied through.
TEST_F(RewardCli, SkipInvalidKeepsOneLinePerInputLine) {
  CliRun run = RunHone("--skip-invalid",
                       "{\"response\": \"\\\\boxed{3}\", \"ground_truth\": 3, \"id\": \"a\"}\n"
                       "\n"
                       "{\"response\": 5, \"ground_truth\": 1, \"id\": \"c\"}\n"
                       "not json\n"
                       "{\"response\": \"x\", \"ground_truth\": [1]}\n");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  std::vector<std::string> lines;
  for (size_t start = 0; start < run.out.size();) {
    size_t end = run.out.find('\n', start);
    lines.push_back(run.out.substr(start, end - start));
    start = end + 1;
  }
  ASSERT_EQ(lines.size(), 5u) << run.out;
  EXPECT_EQ(json::parse(lines[0])["id"], "a");
  EXPECT_EQ(json::parse(lines[0])["correct"], 1.0);
  EXPECT_EQ(lines[1], "");
  EXPECT_EQ(json::parse(lines[2])["id"], "c");
  EXPECT_EQ(json::parse(lines[2])["error"], "field \"response\" must be a string, not a number");
  EXPECT_THAT(json::parse(lines[3])["error"].get<std::string>(), HasSubstr("bad JSON"));
  EXPECT_EQ(json::parse(lines[4])["error"], "field \"ground_truth\" must be an integer or a string, not an array");
}

TEST_F(RewardCli, NegativeWeightsAreRefused) {
  for (const char* option : {"--correct-weight -1", "--format-weight -0.5"}) {
    CliRun run = RunHone(option, "");
    EXPECT_NE(run.exit_code, 0) << option;
    EXPECT_THAT(run.out, HasSubstr("must be >= 0")) << option;
    EXPECT_THAT(run.out, ::testing::Not(HasSubstr("179769"))) << option;
  }
}

TEST_F(RewardCli, UnknownNamesAreErrors) {
  CliRun run = RunHone("--fn nope", "");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.out, HasSubstr("boxed_integer, format"));
  run = RunHone("--fallback first", "");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.out, HasSubstr("last_integer, none"));
}

}  // namespace
