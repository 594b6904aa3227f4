#!/usr/bin/env bash
# The NCCL backend's GPU check in one go: build against a CUDA libtorch, run the NCCL tests.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: tools/gpu_check.sh [--build-dir DIR] [--jobs N] [--help]

Run on a machine with a GPU, CUDA, NCCL, MPI and Hone's other build dependencies
installed. It downloads nothing and installs nothing. It:
  1. takes a CUDA libtorch from python3's torch (torch.utils.cmake_prefix_path), or from
     $HONE_TORCH_PREFIX (a libtorch directory) when that is set;
  2. finds NCCL in /usr/local/cuda, else in python3's nvidia-nccl package;
  3. configures a Release build in DIR (default: build-gpu) against that libtorch;
  4. builds the distributed tests (dist_nccl_mpi_test, build_info_test);
  5. runs `ctest -L mpi -R nccl` (mpirun -np 2) and fails if the GPU tests failed or
     skipped (a skip means no CUDA device was visible);
  6. prints the NCCL versions (the one Hone runs with, and torch's).

The logs are kept in DIR/gpu_check_configure.log and DIR/gpu_check_ctest.log. With one
GPU the two ranks share it (the test gives each rank its own NCCL_HOSTID: NCCL then
connects them over loopback sockets); with more, each takes local_rank % device count.

Options:
  --build-dir DIR   build directory, relative to the checkout or absolute (default build-gpu)
  --jobs N          ninja jobs (default: nproc)
  -h, --help        this text
EOF
}

root=$(cd "$(dirname "$0")/.." && pwd)
build="build-gpu"
jobs=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --build-dir) build=${2:?--build-dir needs a directory}; shift 2 ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
    *) echo "gpu_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$build" in /*) ;; *) build="$root/$build" ;; esac

fail() { echo "gpu_check: error: $*" >&2; exit 1; }
step() { echo; echo "== $*"; }

for tool in cmake ninja python3 mpiexec; do
  command -v "$tool" >/dev/null || fail "'$tool' is not on the PATH"
done

step "GPU"
if command -v nvidia-smi >/dev/null; then nvidia-smi -L || true; else echo "(no nvidia-smi on the PATH)"; fi

step "libtorch"
if [ -n "${HONE_TORCH_PREFIX:-}" ]; then
  torch_prefix=$HONE_TORCH_PREFIX
  echo "libtorch from HONE_TORCH_PREFIX: $torch_prefix"
else
  python3 - <<'EOF' || fail "python3 cannot import torch: set HONE_TORCH_PREFIX to a CUDA libtorch directory"
import torch
print(f"python3's torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"devices visible: {torch.cuda.device_count() if torch.cuda.is_available() else 0}")
if torch.version.cuda is None:
    raise SystemExit("gpu_check: error: this torch is a CPU build; a CUDA libtorch is needed")
EOF
  torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
  echo "CMAKE_PREFIX_PATH=$torch_prefix"
fi

step "NCCL"
nccl_flags=()
if [ -f /usr/local/cuda/include/nccl.h ]; then
  echo "NCCL headers in /usr/local/cuda/include"
else
  nccl_dir=$(python3 -c 'import nvidia.nccl as m; print(list(m.__path__)[0])' 2>/dev/null) ||
    fail "no nccl.h in /usr/local/cuda/include and no python3 nvidia-nccl package"
  nccl_lib=""
  for f in "$nccl_dir"/lib/libnccl.so*; do [ -f "$f" ] && nccl_lib=$f && break; done
  if [ ! -f "$nccl_dir/include/nccl.h" ] || [ -z "$nccl_lib" ]; then
    fail "no nccl.h / libnccl.so under $nccl_dir"
  fi
  echo "NCCL from python3's nvidia-nccl: $nccl_dir"
  nccl_flags=(-DNCCL_INCLUDE_DIR="$nccl_dir/include" -DNCCL_LIBRARY="$nccl_lib")
fi

step "configure $build"
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
mkdir -p "$build"
cfg_log="$build/gpu_check_configure.log"
set +e
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix" \
  "${nccl_flags[@]}" >"$cfg_log" 2>&1
cfg_rc=$?
set -e
grep -E '^-- (hone|Found Torch|Found CUDA)' "$cfg_log" || true
[ "$cfg_rc" -eq 0 ] || fail "cmake failed (its output: $cfg_log); Hone's build dependencies must be installed first (tools/install-deps.sh; this script installs nothing)"
grep -q 'hone: NCCL found' "$cfg_log" || fail "CMake did not find NCCL (see $cfg_log)"

step "build"
ninja -C "$build" -j "$jobs" dist_nccl_mpi_test build_info_test

step "ctest -L mpi -R nccl"
log="$build/gpu_check_ctest.log"
set +e
(cd "$build" && ctest -L mpi -R nccl --output-on-failure -V) 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

step "NCCL version"
grep -m1 -E '^([0-9]+: )?NCCL [0-9]' "$log" | sed -E 's/^[0-9]+: //; s/^/Hone: /' || echo "Hone: (not printed by the test)"
if [ -z "${HONE_TORCH_PREFIX:-}" ]; then
  python3 -c 'import torch; v = torch.cuda.nccl.version(); print("torch:", ".".join(map(str, v)) if isinstance(v, tuple) else v)' ||
    true
fi

step "result"
[ "$rc" -eq 0 ] || fail "ctest failed (rc $rc); the log: $log"
if grep -q 'SKIPPED \].*NcclTest\.' "$log"; then
  fail "the NCCL GPU tests skipped (no CUDA device visible to the MPI ranks?); the log: $log"
fi
echo "gpu_check: the NCCL backend's tests passed on the GPU"
