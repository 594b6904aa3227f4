#include "workers/cli/threads.h"

#include <dlfcn.h>
#include <torch/torch.h>

namespace hone::cli {

void SetComputeThreads(int threads) {
  if (threads < 1) threads = 1;
  torch::set_num_threads(threads);
  using SetThreadsFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    fn(threads);
  }
}

}  // namespace hone::cli
