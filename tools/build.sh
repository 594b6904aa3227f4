#!/usr/bin/env bash
# Configures and builds Hone (Release, Ninja, ccache) into ${HONE_BUILD_DIR:-build}.
# Installs the Debian packages first (tools/install-deps.sh, idempotent).
# Arguments are ninja targets (default: everything, tests included), e.g. `tools/build.sh hone`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${HONE_BUILD_DIR:-$root/build}
"$root/tools/install-deps.sh"
# ccache and precompiled headers: tolerate PCH timestamps, or every build is a miss.
# Paths relative to the checkout, so that a fresh clone elsewhere (.ci/run) hits the cache.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root}
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
jobs=${HONE_BUILD_JOBS:-$(nproc)}
echo "building hone in $build with $jobs jobs (the first build takes several minutes)..." >&2
ninja -C "$build" -j "$jobs" "$@"
