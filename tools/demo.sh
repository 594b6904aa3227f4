#!/usr/bin/env bash
# The README's main command. For now: build, make a small randomly initialised Qwen3-shaped
# model with the real Qwen3 tokenizer, and sample from it with the group-aware engine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/runs/demo}
"$root/tools/build.sh"
hone="${HONE_BUILD_DIR:-$root/build}/workers/hone"
mkdir -p "$out"
"$hone" model init --config-json "$root/configs/models/tiny_qwen3.json" \
  --tokenizer "$root/../shared/data/tokenizers/qwen3/tokenizer.json" --out "$out/tiny-qwen3" --seed 1
"$hone" model info "$out/tiny-qwen3"
"$hone" generate --model "$out/tiny-qwen3" --prompt "Natalia sold clips to 48 of her friends." \
  --n 4 --temperature 1.0 --max-new-tokens 16 --seed 1
