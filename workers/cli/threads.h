// Compute-thread and BLAS set-up for a Hone process.
#pragma once

namespace hone::cli {

// Intra-op thread count. Debian's libtorch does not forward set_num_threads to OpenBLAS,
// so this sets both (OpenBLAS through its own entry point, looked up at run time because
// libtorch reaches it only via libblas.so.3).
void SetComputeThreads(int threads);

// Debian's OpenBLAS 0.3.21 does not recognise some virtualised Xeons and falls back to its
// generic Prescott kernels, about 4x slower than the AVX-512 ones (measured: ~30 vs ~120
// GFLOP/s at 2048^3 on one core). OpenBLAS reads OPENBLAS_CORETYPE once, when it is
// loaded, so when the variable is unset this sets it from the CPU's features and re-executes
// the program. Returns only if no re-exec was needed (or it failed).
void EnsureBlasCoreType(char** argv);

}  // namespace hone::cli
