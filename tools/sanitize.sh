#!/usr/bin/env bash
# Builds the whole test suite with a sanitizer and runs it with ctest.
#
#   tools/sanitize.sh address [--ci] [CTEST_ARGS...]   # ASan + UBSan (gcc), in build-asan/
#   tools/sanitize.sh thread  [--ci] [CTEST_ARGS...]   # TSan (gcc), in build-tsan/
#
# Without --ci: every test (address), every test that runs threads (thread, label
# `threads`). With --ci, what tools/test.sh runs in CI: the torch-free tests (address, label
# `torch_free`: the parsers, tokenizers, config, chat templates, rewards, data) and the
# threaded tests marked TSAN_CI (thread, label `tsan_ci`: the concurrent tokenizer, the
# Prometheus exporter, the gRPC servers). A whole-suite build links libtorch into ~60
# sanitized translation units, over an hour on two cores (docs/reliability.md).
#
# Any report fails the run: UBSan does not recover, ASan/TSan exit non-zero. The only
# suppressions are for reports inside libtorch, Open MPI, gRPC and other system libraries
# themselves, each with its reason, in tests/sanitizers/suppressions.txt (one file; this
# script splits it by runtime). Environment: HONE_SANITIZE_BUILD (build dir),
# HONE_BUILD_JOBS (default nproc), HONE_TEST_JOBS (default 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:-}
shift || true
scope=all
if [ "${1:-}" = --ci ]; then scope=ci; shift; fi
case "$kind" in
  address) flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g1"
           build=${HONE_SANITIZE_BUILD:-$root/build-asan} ;;
  thread)  flags="-fsanitize=thread -fno-omit-frame-pointer -g1"
           build=${HONE_SANITIZE_BUILD:-$root/build-tsan} ;;
  *) echo "usage: tools/sanitize.sh address|thread [--ci] [ctest args...]" >&2; exit 2 ;;
esac
"$root/tools/install-deps.sh" >/dev/null
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root}
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}

# One suppressions file, split by runtime: a line "<runtime> <type>:<pattern>  # reason".
supp_dir="$build/suppressions"
mkdir -p "$supp_dir"
for rt in asan lsan ubsan tsan; do
  sed -n "s/^$rt[[:space:]]\+\([^#[:space:]]*\).*/\1/p" "$root/tests/sanitizers/suppressions.txt" > "$supp_dir/$rt.supp"
done
# The test binaries also run while building (gtest test discovery), so the options apply
# to the build too.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:detect_odr_violation=0:suppressions=$supp_dir/asan.supp"
export LSAN_OPTIONS="suppressions=$supp_dir/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp_dir/ubsan.supp"
# ignore_noninstrumented_modules: gRPC, abseil and libtorch come from Debian, not built with
# TSan; their threads synchronise through atomics TSan cannot see, so the memmove/epoll
# calls they make look like races (seen: abseil's GraphCycles, gRPC's epoll poller and
# channel args). Hone's own accesses, instrumented, are all still checked.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp_dir/tsan.supp:report_signal_unsafe=0:ignore_noninstrumented_modules=1"
# nproc counts OMP_NUM_THREADS (set to 1 below, and by tools/test.sh): ask without it.
build_jobs=${HONE_BUILD_JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# -O1: a sanitized -O3 build compiles ~1.7x slower (measured: tokenizer.cc 33 s vs 19 s),
# and -O1 is what the ASan documentation suggests for usable speed with exact reports.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE=-O1 -DCMAKE_C_FLAGS_RELEASE=-O1 \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" >/dev/null
case "$kind/$scope" in
  address/all) targets=(all);                   label_args=() ;;
  address/ci)  targets=(hone_torch_free_tests); label_args=(-L torch_free) ;;
  thread/all)  targets=(hone_tsan_tests);       label_args=(-L threads) ;;
  thread/ci)   targets=(hone_tsan_ci_tests);    label_args=(-L tsan_ci) ;;
esac
echo "sanitize: building ${targets[*]} with the $kind sanitizer in $build..." >&2
ninja -C "$build" -j "$build_jobs" "${targets[@]}"
cd "$build"
ctest --output-on-failure -j "${HONE_TEST_JOBS:-2}" --timeout 1800 "${label_args[@]}" "$@"
