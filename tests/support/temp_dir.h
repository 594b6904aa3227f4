// Scratch space for a test process. Tests used to write fixed names straight into the
// temp dir ("/tmp/bf16", "/tmp/ok.yaml"): left behind after every run, and shared by
// ctest's parallel processes and by two checkouts testing at once.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace hone::testing_support {

// A directory private to this process, created on first use and removed with everything
// in it when the process exits.
inline const std::string& ProcessTempDir() {
  static const struct Dir {
    std::string path;
    Dir() : path(::testing::TempDir() + "hone_test_" + std::to_string(getpid())) {
      std::filesystem::remove_all(path);
      std::filesystem::create_directories(path);
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } dir;
  return dir.path;
}

}  // namespace hone::testing_support
