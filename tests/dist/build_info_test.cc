#include "framework/dist/build_info.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace hone {
namespace {

// When CMake found NCCL, the library answers with its own version (no GPU needed).
TEST(BuildInfoTest, NcclVersionMatchesTheBuild) {
#ifdef HONE_EXPECT_NCCL
  auto version = NcclVersion();
  ASSERT_TRUE(version.has_value());
  EXPECT_THAT(*version, ::testing::MatchesRegex("[0-9]+\\.[0-9]+\\.[0-9]+"));
  EXPECT_THAT(BuildInfo(), ::testing::HasSubstr("NCCL " + *version));
#else
  EXPECT_FALSE(NcclVersion().has_value());
  EXPECT_THAT(BuildInfo(), ::testing::HasSubstr("NCCL not built in"));
#endif
  EXPECT_THAT(BuildInfo(), ::testing::HasSubstr("libtorch"));
}

}  // namespace
}  // namespace hone
