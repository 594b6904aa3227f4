// docs/config_reference.md is the schema rendered: when they differ (a key added, a default
// changed) this test fails and writes the expected page into the build directory.
#include "framework/core/config_reference.h"

#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>

#include "framework/core/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace hone {
namespace {

TEST(ConfigReference, CommittedPageMatchesTheSchema) {
  const std::string expected = ConfigReferenceMarkdown(HoneConfigSchema());
  std::ifstream in("docs/config_reference.md");  // tests run from the project root
  std::stringstream committed;
  committed << in.rdbuf();
  if (committed.str() != expected) {
    const std::string fresh = std::string(HONE_BUILD_DIR) + "/config_reference.md";
    std::ofstream(fresh) << expected;
    FAIL() << "docs/config_reference.md differs from the schema; the page for this schema is in " << fresh
           << ": cp " << fresh << " docs/config_reference.md";
  }
}

TEST(ConfigReference, EveryKeyHasARowWithItsDefault) {
  const std::string page = ConfigReferenceMarkdown(HoneConfigSchema());
  for (const ConfigField& f : HoneConfigSchema().fields()) {
    EXPECT_THAT(page, ::testing::HasSubstr("| `" + f.key + "` |")) << f.key;
    EXPECT_FALSE(f.help.empty()) << f.key << " has no help text";
  }
  // Spot checks of the rendering against values stated in the schema.
  EXPECT_THAT(page, ::testing::HasSubstr("| `metrics.port` | int | `9464` | >= 0 and <= 65535 |"));
  EXPECT_THAT(page, ::testing::HasSubstr("| `trainer.resume` | string | `off` | off, auto |"));
}

TEST(ConfigReference, RendersBoundsChoicesAndEscapesPipes) {
  ConfigSchema schema;
  ConfigField eps{"algo.eps", ConfigType::kFloat, 0.5, "a | b", 0.0, 1.0, {}};
  eps.min_exclusive = true;
  schema.Add(eps);
  schema.Add({"seed", ConfigType::kInt, int64_t{1}, "seed", 0.0, std::nullopt, {}});
  schema.Add({"algo.mode", ConfigType::kString, std::string("x"), "mode", std::nullopt, std::nullopt, {"x", "y"}});
  const std::string page = ConfigReferenceMarkdown(schema);
  EXPECT_THAT(page, ::testing::HasSubstr("## algo\n"));
  EXPECT_THAT(page, ::testing::HasSubstr("| `algo.eps` | float | `0.5` | > 0 and <= 1 | a \\| b |"));
  EXPECT_THAT(page, ::testing::HasSubstr("| `algo.mode` | string | `x` | x, y | mode |"));
  EXPECT_THAT(page, ::testing::HasSubstr("## top level\n"));
  // algo's two keys stay in one section although `seed` came between them.
  EXPECT_EQ(page.find("## algo"), page.rfind("## algo"));
}

// docs/configuration.md's "Ready-made configs" table states settings of each shipped
// config as `key=value`; every one must be what the file resolves to.
TEST(ConfigReference, ReadyMadeConfigTableMatchesTheFiles) {
  std::ifstream in("docs/configuration.md");
  ASSERT_TRUE(in) << "docs/configuration.md not found (tests run from the project root)";
  std::string line;
  bool in_table = false;
  int rows = 0, checked = 0;
  const std::regex file_cell(R"(^\| `(configs/[^`]+\.yaml)` \|)");
  const std::regex setting(R"(`([a-z_][a-z0-9_.]*)=([^`]+)`)");
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) in_table = line == "## Ready-made configs";
    std::smatch file;
    if (!in_table || !std::regex_search(line, file, file_cell)) continue;
    ++rows;
    absl::StatusOr<Config> config = Config::Load(HoneConfigSchema(), file[1], {});
    ASSERT_TRUE(config.ok()) << file[1] << ": " << config.status();
    for (std::sregex_iterator it(line.begin(), line.end(), setting), end; it != end; ++it) {
      const std::string key = (*it)[1], stated = (*it)[2];
      const ConfigField* field = HoneConfigSchema().Find(key);
      ASSERT_NE(field, nullptr) << file[1] << ": the table names unknown key " << key;
      ++checked;
      switch (field->type) {
        case ConfigType::kInt: EXPECT_EQ(config->Int(key), std::stoll(stated)) << file[1] << " " << key; break;
        case ConfigType::kFloat:
          EXPECT_NEAR(config->Float(key), std::stod(stated), 1e-12 * std::abs(std::stod(stated)))
              << file[1] << " " << key;
          break;
        case ConfigType::kBool: EXPECT_EQ(config->Bool(key), stated == "true") << file[1] << " " << key; break;
        case ConfigType::kString: EXPECT_EQ(config->String(key), stated) << file[1] << " " << key; break;
        default: ADD_FAILURE() << key << ": list keys are not stated in the table"; break;
      }
    }
  }
  EXPECT_EQ(rows, 3) << "rows of the Ready-made configs table";
  EXPECT_GE(checked, 10) << "settings checked";
}

}  // namespace
}  // namespace hone
