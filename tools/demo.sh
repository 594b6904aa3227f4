#!/usr/bin/env bash
# The README's main command: the whole GRPO pipeline on the CPU, end to end.
#   1. install dependencies and build
#   2. SFT a ~0.8M-parameter model from scratch on step-by-step arithmetic (the warm start)
#   3. GRPO it (8 samples per prompt, boxed-integer reward)
#   4. evaluate base and trained side by side on the same held-out prompts: sampled at
#      temperature 1 (accuracy = pass@1, Pass@k for k = 1..16) and greedy
#   5. write <out>/summary.json (base_accuracy, trained_accuracy, base/trained_greedy_accuracy,
#      base/trained_pass_at_k, wall_seconds, ...), print Pass@k side by side, and write
#      <out>/plots/ (reward curves, Pass@k of base and trained; index.html shows them all)
# Usage: tools/demo.sh [OUT_DIR] (default runs/demo). Extra settings: edit
# configs/arith_tiny_cpu_sft.yaml and configs/arith_tiny_cpu.yaml.
set -euo pipefail
start=$(date +%s)
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-runs/demo}
cd "$root"
"$root/tools/build.sh" hone
hone="${HONE_BUILD_DIR:-$root/build}/workers/hone"
pipeline_start=$(date +%s)
mkdir -p "$out"

# Re-running the demo replaces its earlier run in OUT_DIR (only Hone's files are deleted).
echo "== 1/4 SFT warm start ==" >&2
"$hone" sft --config configs/arith_tiny_cpu_sft.yaml trainer.output_dir="$out/sft" trainer.overwrite=true

echo "== 2/4 GRPO ==" >&2
"$hone" train --config configs/arith_tiny_cpu.yaml model.path="$out/sft/final" trainer.output_dir="$out/grpo" \
  trainer.overwrite=true

echo "== 3/4 evaluate base vs trained on the same held-out prompts (sampled, T=1) ==" >&2
"$hone" eval --config configs/arith_tiny_cpu.yaml --model "$out/sft/final" --model "$out/grpo/final" \
  --output "$out/eval.json"

echo "== 4/4 the same, greedy ==" >&2
"$hone" eval --config configs/arith_tiny_cpu.yaml --model "$out/sft/final" --model "$out/grpo/final" \
  eval.temperature=0 eval.n=1 eval.k=[1] --output "$out/eval_greedy.json"

echo "== plots ==" >&2
/usr/bin/python3 "$root/tools/plot.py" "$out/sft" "$out/grpo" --eval "$out/eval.json" --out "$out/plots"

end=$(date +%s)
EVAL="$out/eval.json" GREEDY="$out/eval_greedy.json" OUT="$out/summary.json" WALL=$((end - start)) PIPELINE=$((end - pipeline_start)) \
  /usr/bin/python3 - <<'PY'
import json, os
ev = json.load(open(os.environ["EVAL"]))
base, trained = ev["models"][0], ev["models"][1]
greedy = json.load(open(os.environ["GREEDY"]))
summary = {
    "base_accuracy": base["accuracy"],
    "trained_accuracy": trained["accuracy"],
    "accuracy_gain_points": 100 * (trained["accuracy"] - base["accuracy"]),
    "base_greedy_accuracy": greedy["models"][0]["accuracy"],
    "trained_greedy_accuracy": greedy["models"][1]["accuracy"],
    "base_pass_at_k": base["pass_at_k"],
    "trained_pass_at_k": trained["pass_at_k"],
    "base_format_rate": base["format_rate"],
    "trained_format_rate": trained["format_rate"],
    "held_out_prompts": ev["num_prompts"],
    "wall_seconds": int(os.environ["WALL"]),
    "pipeline_seconds": int(os.environ["PIPELINE"]),
    "base_model": base["path"],
    "trained_model": trained["path"],
}
tmp = os.environ["OUT"] + ".tmp"
with open(tmp, "w") as f:
    json.dump(summary, f, indent=2)
    f.write("\n")
os.replace(tmp, os.environ["OUT"])
# Pass@k side by side: sharpening raises pass@1; where the base catches up at larger k,
# GRPO found no answers the base could not sample.
ks = sorted(int(k) for k in base["pass_at_k"])
print("%6s %8s %8s" % ("k", "base", "trained"))
meet = None
for k in ks:
    b, t = base["pass_at_k"][str(k)], trained["pass_at_k"][str(k)]
    print("%6s %7.1f%% %7.1f%%" % ("pass@%d" % k, 100 * b, 100 * t))
    if meet is None and b >= t:
        meet = k
print("the curves meet at k=%d (the base samples as many right answers there)" % meet if meet else
      "the trained model stays ahead up to k=%d" % ks[-1])
print("greedy accuracy: base %.1f%% -> trained %.1f%%" % (100 * summary["base_greedy_accuracy"],
                                                          100 * summary["trained_greedy_accuracy"]))
print("held-out accuracy: base %.1f%% -> trained %.1f%% (%+.1f points); %d s in all (%d s after the build)"
      % (100 * summary["base_accuracy"], 100 * summary["trained_accuracy"], summary["accuracy_gain_points"],
         summary["wall_seconds"], summary["pipeline_seconds"]))
print("wrote", os.environ["OUT"])
PY
