// Helpers shared by the fuzz targets in tests/fuzz (docs/reliability.md).
//
// Every target is a plain libFuzzer entry point, LLVMFuzzerTestOneInput. Built with
// HONE_FUZZ=ON (clang, tools/fuzz.sh) each is its own fuzzer; in the normal build all of
// them are compiled into one replay binary (replay_main.cc), each under its own name, that
// runs them over the committed corpus as a regression test.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace hone::fuzz {

// An invariant the parser promises does not hold: report and abort, which libFuzzer (and
// the replay test) count as a crash.
#define HONE_FUZZ_CHECK(cond, what)                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s (%s)\n", __FILE__,      \
                   __LINE__, #cond, std::string(what).c_str());                      \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

// A scratch directory private to this process (for parsers that read files), created on
// first use and reused for every input. Prefers /dev/shm (no disk writes per input).
inline const std::string& ScratchDir() {
  static const std::string dir = [] {
    const char* base = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string pattern = std::string(base) + "/hone_fuzz_XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    // The directory holds a few small files; remove it at exit.
    static std::string to_remove;
    to_remove = pattern;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(to_remove, ec);
    });
    return pattern;
  }();
  return dir;
}

inline void WriteFileOrDie(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::abort();
  }
}

inline std::string_view AsView(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace hone::fuzz
