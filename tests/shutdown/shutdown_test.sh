#!/usr/bin/env bash
# `hone train` stops cleanly on SIGTERM and resumes without running a step twice or losing
# one (workers/controller/shutdown.h):
#   1. SIGTERM after the first logged step: exit 0, a checkpoint of the last completed
#      step, the "stopped by SIGTERM after step N; checkpoint in DIR" line; then
#      trainer.resume=auto runs the remaining steps: metrics.jsonl holds 1..TOTAL once each.
#      (A step of this tiny model takes milliseconds, so the stopped run is set up for far
#      more steps than it can reach, and the resumed one ends a few steps after the stop.)
#   2. A second SIGTERM right after the first: the process exits non-zero at once, and no
#      checkpoint directory without state.json is left under a final name.
#   3. (single) trainer.shutdown_grace_s shorter than a step: exits non-zero, nothing saved.
# single: `hone train` in one process. mpi: under mpirun (controller, rollout, reward,
# trainer); SIGTERM goes to every rank at once, as srun and Slurm's scancel deliver it, so
# the workers must stay until the controller has saved and sends Shutdown.
# Usage: shutdown_test.sh single|mpi HONE_BINARY
set -uo pipefail
mode=$1
hone=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
work=$(mktemp -d)
job=""
cleanup() {
  if [ -n "$job" ]; then
    for p in $(pgrep -P "$job"); do kill -9 "$p" 2>/dev/null; done
    kill -9 "$job" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
log=""
fail() { echo "FAIL ($mode): $*"; [ -n "$log" ] && { echo "--- $log ---"; cat "$log"; }; exit 1; }

cat > "$work/model.json" <<'JSON'
{"model_type": "llama", "vocab_size": 8, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 96, "tie_word_embeddings": true}
JSON
echo "seed: 1" > "$work/config.yaml"
data=(--config "$work/config.yaml" data.dataset=arithmetic data.prompt_template=raw data.val_size=16
      data.arithmetic.num_examples=400 runtime.num_threads=1)
log=$work/sft.log
"$hone" sft "${data[@]}" model.init_config="$work/model.json" trainer.total_steps=2 trainer.sft_batch_size=8 \
  trainer.output_dir="$work/sft" >"$log" 2>&1 || fail "hone sft"

train_args=("${data[@]}" model.path="$work/sft/final" trainer.total_steps=100000 data.train_batch_size=2 rollout.n=2
            rollout.max_new_tokens=8)
launch=("$hone")
[ "$mode" = mpi ] && launch=(mpirun --oversubscribe -np 4 "$hone")

# Starts a run in the background (its PID in $job); waits until `step 1/` is logged.
start_run() {
  local out=$1
  shift
  log=$work/$(basename "$out").log
  "${launch[@]}" train "${train_args[@]}" trainer.output_dir="$out" "$@" >"$log" 2>&1 &
  job=$!
  for _ in $(seq 1 1200); do
    grep -q "^step 1/" "$log" && return 0
    kill -0 "$job" 2>/dev/null || fail "the run ended before its first step"
    sleep 0.1
  done
  fail "no step logged within 120 s"
}
# The processes to signal: the run itself, or every rank under mpirun (mpirun's children).
targets() { if [ "$mode" = mpi ]; then pgrep -P "$job"; else echo "$job"; fi; }
# The controller: rank 0 (its environment says so under mpirun).
controller() {
  if [ "$mode" != mpi ]; then echo "$job"; return; fi
  for p in $(pgrep -P "$job"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=0" && echo "$p"
  done
}
# Waits for the background run; its exit status goes to $rc. Fails after `limit` seconds.
finish() {
  local limit=$1
  for _ in $(seq 1 $((limit * 10))); do
    kill -0 "$job" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$job" 2>/dev/null && fail "still running ${limit}s after the signal"
  wait "$job"
  rc=$?
  job=""
}
steps() { grep -o '"step":[0-9]*' "$1/metrics.jsonl" | cut -d: -f2 | tr '\n' ' '; }

# --- 1. SIGTERM, checkpoint, resume ---
start_run "$work/run"
kill -TERM $(targets)
finish 60
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM (expected 0)"
line=$(grep "stopped by SIGTERM after step" "$log") || fail "no 'stopped by SIGTERM' line"
stopped=$(sed -n 's/.*stopped by SIGTERM after step \([0-9]*\); checkpoint in \([^;]*\);.*/\1/p' <<<"$line")
dir=$(sed -n 's/.*stopped by SIGTERM after step \([0-9]*\); checkpoint in \([^;]*\);.*/\2/p' <<<"$line")
[ -n "$stopped" ] && [ "$stopped" -ge 1 ] || fail "stopped after step '$stopped'"
[ -f "$dir/state.json" ] && [ -f "$dir/model.safetensors" ] || fail "no complete checkpoint in '$dir'"
grep -q "\"step\": *$stopped" "$dir/state.json" || fail "$dir/state.json is not step $stopped"
[ "$(steps "$work/run")" = "$(seq -s ' ' 1 "$stopped") " ] || fail "metrics.jsonl before resume: $(steps "$work/run")"
[ -d "$work/run/final" ] && fail "a stopped run wrote final/"
if [ "$mode" = mpi ]; then
  grep -q "waiting for the controller to save" "$log" || fail "the workers did not note the SIGTERM"
  grep -q "stopped (the controller stopped on SIGTERM)" "$log" || fail "the workers were not shut down by the controller"
fi
echo "stopped after step $stopped with exit status 0; checkpoint $dir"

log=$work/resume.log
total=$((stopped + 4))
"${launch[@]}" train "${train_args[@]}" trainer.output_dir="$work/run" trainer.resume=auto trainer.total_steps=$total \
  >"$log" 2>&1 ||
  fail "the resumed run failed"
grep -q "resuming from .*step_0*$stopped (step $stopped)" "$log" || fail "did not resume from step $stopped"
[ "$(steps "$work/run")" = "$(seq -s ' ' 1 "$total") " ] ||
  fail "metrics.jsonl after resume holds steps $(steps "$work/run"), expected 1..$total once each"
[ -f "$work/run/final/state.json" ] || fail "the resumed run wrote no final/"
echo "resumed from step $stopped; metrics.jsonl holds steps 1..$total once each"

# --- 2. a second signal ends the process at once, non-zero ---
start_run "$work/twice"
pid=$(controller)
[ -n "$pid" ] || fail "cannot find the controller's PID"
kill -TERM $(targets)
sleep 0.05
kill -TERM "$pid"
finish 20
[ "$rc" != 0 ] || fail "exit status 0 after a second SIGTERM"
grep -q "second stop signal" "$log" || fail "no 'second stop signal' line"
for d in "$work"/twice/checkpoints/step_*; do
  [ -e "$d" ] || continue
  case "$d" in *.tmp) continue ;; esac
  [ -f "$d/state.json" ] || fail "$d is a checkpoint without state.json"
done
echo "a second SIGTERM: exit status $rc, no partial checkpoint"

# --- 3. the grace runs out before the step ends ---
if [ "$mode" = single ]; then
  start_run "$work/grace" trainer.shutdown_grace_s=0.001
  kill -TERM "$job"
  finish 20
  [ "$rc" != 0 ] || fail "exit status 0 although the grace ran out"
  grep -q "did not stop within" "$log" || fail "no line about the grace"
  echo "grace ran out: exit status $rc"
fi
echo "PASS ($mode)"
