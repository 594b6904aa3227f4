#!/usr/bin/env bash
# The README's test command: install dependencies, build, run every test with ctest, then
# the sanitizer and fuzzing runs.
# Extra arguments go to ctest (e.g. `tools/test.sh -L unit`, `tools/test.sh -R Engine`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${HONE_BUILD_DIR:-$root/build}
"$root/tools/build.sh"
cd "$build"
# The build jobs of the sanitizer and fuzz builds: nproc counts OMP_NUM_THREADS, so ask without it.
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
# One intra-op thread per test process; ctest runs two processes at a time.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
ctest --output-on-failure -j "${HONE_TEST_JOBS:-2}" --timeout 1200 "$@"
# The sanitizer runs of CI (docs/reliability.md): ASan + UBSan over the torch-free tests,
# TSan over the threaded tests marked TSAN_CI; skipped when ctest was given a subset, or
# HONE_SANITIZE=0.
if [ "$#" -eq 0 ] && [ "${HONE_SANITIZE:-1}" != 0 ]; then
  HONE_BUILD_JOBS=${HONE_BUILD_JOBS:-$cores} "$root/tools/sanitize.sh" address --ci
  HONE_BUILD_JOBS=${HONE_BUILD_JOBS:-$cores} "$root/tools/sanitize.sh" thread --ci
fi
# The libFuzzer targets of tests/fuzz (clang, ASan + UBSan), 30 s each on their corpus
# (docs/reliability.md); skipped when ctest was given a subset, or HONE_FUZZ_SECONDS=0.
fuzz_seconds=${HONE_FUZZ_SECONDS:-30}
if [ "$#" -eq 0 ] && [ "$fuzz_seconds" -gt 0 ]; then
  HONE_FUZZ_JOBS=${HONE_FUZZ_JOBS:-$cores} "$root/tools/fuzz.sh" "$fuzz_seconds"
fi
