#!/usr/bin/env bash
# The README's test command: install dependencies, build, run every test with ctest.
# Extra arguments go to ctest (e.g. `tools/test.sh -L unit`, `tools/test.sh -R Engine`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${HONE_BUILD_DIR:-$root/build}
"$root/tools/build.sh"
cd "$build"
# One intra-op thread per test process; ctest runs two processes at a time.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
ctest --output-on-failure -j "${HONE_TEST_JOBS:-2}" --timeout 1200 "$@"
