#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan + libFuzzer) in
# build-fuzz/ and runs each for SECONDS (default 30) on its committed corpus.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]     # all targets (tests/fuzz/targets.inc) by default
#
# Each target runs as
#   <target>_fuzz -max_total_time=SECONDS -timeout=10 -rss_limit_mb=2048 [-dict=...]
#       build-fuzz/fuzz-work/<target>/new tests/fuzz/corpus/<target>
# so new inputs land in the scratch dir and the committed corpus is only read. Prints a
# table target | executions | result, writes build-fuzz/fuzz_summary.json, and exits
# non-zero on any crash, leak, timeout (> 10 s on one input), out-of-memory or sanitizer
# report, printing the reproducer. To keep a reproducer as a regression test, copy it into
# tests/fuzz/corpus/<target>/ with the fix (docs/reliability.md).
#
# Environment: HONE_FUZZ_BUILD (default <repo>/build-fuzz), HONE_FUZZ_JOBS (build
# parallelism, default 1), HONE_FUZZ_SEED (default 1; 0 = random), CXX_FUZZ / CC_FUZZ
# (default clang++ / clang).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH="${1:-30}"
shift || true
BUILD="${HONE_FUZZ_BUILD:-$ROOT/build-fuzz}"
JOBS="${HONE_FUZZ_JOBS:-1}"
# A fixed seed makes a CI run repeat the same inputs (as far as its time allows), so a
# green build stays green; HONE_FUZZ_SEED=0 asks libFuzzer for a random seed (long local
# runs that look for new bugs).
SEED="${HONE_FUZZ_SEED:-1}"
FUZZ_DIR="$ROOT/tests/fuzz"

if ! [[ "$SECONDS_EACH" =~ ^[0-9]+$ ]]; then
  echo "usage: tools/fuzz.sh [SECONDS] [TARGET...]" >&2
  exit 2
fi

ALL_TARGETS=$(sed -n 's/^HONE_FUZZ_TARGET(\([a-z0-9_]*\)).*/\1/p' "$FUZZ_DIR/targets.inc")
if [ "$#" -gt 0 ]; then
  TARGETS="$*"
  for t in $TARGETS; do
    grep -qx "$t" <<<"$ALL_TARGETS" || { echo "fuzz.sh: unknown target '$t' (known: ${ALL_TARGETS//$'\n'/ })" >&2; exit 2; }
  done
else
  TARGETS="$ALL_TARGETS"
fi

# ccache with paths relative to the checkout, as tools/build.sh: a fresh clone (.ci/run)
# hits the cache of an earlier run.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
SAN_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  echo "fuzz.sh: configuring $BUILD (clang, HONE_FUZZ=ON)"
  mkdir -p "$BUILD"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja \
    -DCMAKE_C_COMPILER="${CC_FUZZ:-clang}" -DCMAKE_CXX_COMPILER="${CXX_FUZZ:-clang++}" \
    -DCMAKE_BUILD_TYPE=Fuzz -DHONE_FUZZ=ON \
    -DCMAKE_C_FLAGS="$SAN_FLAGS" -DCMAKE_CXX_FLAGS="$SAN_FLAGS" >"$BUILD/configure.log" 2>&1 || {
      cat "$BUILD/configure.log" >&2; exit 1; }
fi
build_targets=""
for t in $TARGETS; do build_targets="$build_targets ${t}_fuzz"; done
echo "fuzz.sh: building$build_targets"
# shellcheck disable=SC2086
nice -n 10 cmake --build "$BUILD" -j "$JOBS" --target $build_targets

export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

WORK="$BUILD/fuzz-work"
SUMMARY="$BUILD/fuzz_summary.json"
failed=0
json_rows=""
printf '\n%-18s | %12s | %s\n' target executions result
printf '%s\n' "-------------------+--------------+---------------------------------------------"
for t in $TARGETS; do
  dir="$WORK/$t"
  rm -rf "$dir"
  mkdir -p "$dir/new" "$dir/artifacts"
  args=(-max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -seed="$SEED" -artifact_prefix="$dir/artifacts/")
  [ -f "$FUZZ_DIR/dict/$t.dict" ] && args+=(-dict="$FUZZ_DIR/dict/$t.dict")
  start=$(date +%s)
  set +e
  "$BUILD/tests/fuzz/${t}_fuzz" "${args[@]}" "$dir/new" "$FUZZ_DIR/corpus/$t" >"$dir/log" 2>&1
  rc=$?
  set -e
  elapsed=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$dir/log" | tail -1)
  execs="${execs:-0}"
  artifact=$(find "$dir/artifacts" -maxdepth 1 -type f -printf '%f\n' 2>/dev/null | sort | head -1 || true)
  if [ "$rc" -eq 0 ] && [ -z "$artifact" ]; then
    result="ok"
  else
    failed=1
    kind="${artifact%%-*}"
    [ -z "$artifact" ] && kind="error (exit $rc)"
    grep -q "ERROR: LeakSanitizer" "$dir/log" && kind="leak"
    grep -q "runtime error:" "$dir/log" && kind="ubsan"
    grep -q "ERROR: AddressSanitizer" "$dir/log" && kind="asan"
    grep -q "fuzz invariant failed" "$dir/log" && kind="invariant"
    result="FAIL $kind${artifact:+: $dir/artifacts/$artifact}"
  fi
  printf '%-18s | %12s | %s\n' "$t" "$execs" "$result"
  [ -n "$json_rows" ] && json_rows="$json_rows,"
  json_rows="$json_rows
    {\"target\": \"$t\", \"seconds\": $elapsed, \"executions\": $execs, \"exit_code\": $rc, \"result\": \"${result%%:*}\", \"reproducer\": \"${artifact:+$dir/artifacts/$artifact}\", \"log\": \"$dir/log\"}"
  if [ "$result" != "ok" ]; then
    echo "---- $t: last lines of $dir/log ----"
    grep -v '^#[0-9]' "$dir/log" | tail -40
    echo "---- reproduce: $BUILD/tests/fuzz/${t}_fuzz ${artifact:+$dir/artifacts/$artifact}"
  fi
done
cat >"$SUMMARY" <<JSON
{
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "seconds_per_target": $SECONDS_EACH,
  "ok": $([ "$failed" -eq 0 ] && echo true || echo false),
  "targets": [$json_rows
  ]
}
JSON
echo "fuzz.sh: summary in $SUMMARY"
exit "$failed"
