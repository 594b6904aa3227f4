// Where the unpacked external test data lives (tests/fixtures/SOURCES.md): the
// HONE_TEST_DATA environment variable when set, else the build's testdata/ directory.
#pragma once

#include <cstdlib>
#include <string>

namespace hone::testing_support {

inline std::string TestDataDir() {
  if (const char* env = std::getenv("HONE_TEST_DATA"); env != nullptr && *env != '\0') return env;
  return HONE_TEST_DATA;
}

}  // namespace hone::testing_support
