// Intra-op thread count for this process. Debian's libtorch does not forward
// set_num_threads to OpenBLAS, so this sets both (OpenBLAS through its own entry point,
// looked up at run time because libtorch reaches it only via libblas.so.3).
#pragma once

namespace hone::cli {

void SetComputeThreads(int threads);

}  // namespace hone::cli
