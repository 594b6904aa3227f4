// Where the `hone` binary under test is, for tests that run it as a user would.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace hone::testing_support {

// $HONE_BIN when set; else <build>/workers/hone, found from this test binary's own path
// (<build>/tests/<dir>/<test>). Empty when neither exists.
inline std::string HoneBinary() {
  const char* env = std::getenv("HONE_BIN");
  if (env != nullptr && *env != '\0') return env;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "";
  std::string path(self, static_cast<size_t>(n));
  for (int up = 0; up < 3; ++up) path = path.substr(0, path.rfind('/'));
  path += "/workers/hone";
  return access(path.c_str(), X_OK) == 0 ? path : "";
}

}  // namespace hone::testing_support
