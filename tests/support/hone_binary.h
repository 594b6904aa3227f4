// Where the `hone` binary under test is, for tests that run it as a user would.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

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

struct CommandResult {
  int exit_code = -1;  // -1 when the command could not run or was killed
  std::string out;     // what it wrote to the pipe (redirect stderr in `command` to include it)
};

// Runs `command` through the shell and collects its standard output.
inline CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) result.out.append(buf, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace hone::testing_support
