// docs/config_reference.md is the schema rendered: when they differ (a key added, a default
// changed) this test fails and writes the expected page into the build directory.
#include "framework/core/config_reference.h"

#include <fstream>
#include <sstream>

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

}  // namespace
}  // namespace hone
