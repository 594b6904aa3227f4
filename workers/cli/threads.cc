#include "workers/cli/threads.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <torch/torch.h>
#include <unistd.h>

namespace hone::cli {

void SetComputeThreads(int threads) {
  if (threads < 1) threads = 1;
  torch::set_num_threads(threads);
  using SetThreadsFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    fn(threads);
  }
}

void EnsureBlasCoreType(char** argv) {
  if (getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const char* core = nullptr;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    core = "SkylakeX";
  } else if (__builtin_cpu_supports("avx2")) {
    core = "Haswell";
  }
  if (core == nullptr) return;
  setenv("OPENBLAS_CORETYPE", core, 1);
  execv("/proc/self/exe", argv);  // on failure, carry on with the kernels we have
}

}  // namespace hone::cli
