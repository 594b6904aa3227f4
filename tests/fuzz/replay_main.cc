// Replays the committed fuzz corpus through every fuzz target, without libFuzzer: the
// regression test of tests/fuzz in the normal build (ctest label `fuzz`).
//
//   fuzz_replay CORPUS_DIR [TARGET...]
//
// Each target's LLVMFuzzerTestOneInput is compiled in under the name HoneFuzz_<target>
// (tests/fuzz/CMakeLists.txt) and run on every file of CORPUS_DIR/<target>/. A crash,
// an abort (a failed invariant) or an escaping exception fails the test; so does a target
// with no corpus. Prints one line per target with the number of inputs replayed.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#define HONE_FUZZ_TARGET(name) extern "C" int HoneFuzz_##name(const uint8_t* data, size_t size);
#include "tests/fuzz/targets.inc"
#undef HONE_FUZZ_TARGET

namespace {

struct Target {
  const char* name;
  int (*run)(const uint8_t*, size_t);
};

constexpr Target kTargets[] = {
#define HONE_FUZZ_TARGET(name) {#name, HoneFuzz_##name},
#include "tests/fuzz/targets.inc"
#undef HONE_FUZZ_TARGET
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [TARGET...]\n", argv[0]);
    return 2;
  }
  namespace fs = std::filesystem;
  const fs::path corpus = argv[1];
  std::vector<std::string> only(argv + 2, argv + argc);
  int failures = 0;
  for (const Target& target : kTargets) {
    if (!only.empty() && std::find(only.begin(), only.end(), target.name) == only.end()) continue;
    const fs::path dir = corpus / target.name;
    std::vector<fs::path> files;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file()) files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      std::fprintf(stderr, "FAIL %s: no corpus files in %s\n", target.name, dir.c_str());
      ++failures;
      continue;
    }
    const auto start = std::chrono::steady_clock::now();
    for (const fs::path& file : files) {
      std::ifstream in(file, std::ios::binary);
      std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      // Print the input first: if the target crashes, the last line names the reproducer.
      std::fprintf(stderr, "  %s <- %s\n", target.name, file.c_str());
      target.run(bytes.data(), bytes.size());
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("ok   %-18s %4zu inputs  %.2f s\n", target.name, files.size(), seconds);
  }
  return failures == 0 ? 0 : 1;
}
