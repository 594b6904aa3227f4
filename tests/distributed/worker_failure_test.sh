#!/usr/bin/env bash
# A rollout worker that hangs (SIGSTOP: mpirun cannot see it) or dies (SIGKILL) ends the
# whole job within 60 s, non-zero, and the output names the worker: for a hang the
# controller's Health heartbeat names role, rank and host; for a death mpirun names the
# rank, which the controller's placement table (printed at start-up) maps to a role.
# Usage: worker_failure_test.sh stop|kill HONE_BINARY
set -uo pipefail
mode=$1
hone=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
work=$(mktemp -d)
mpirun_pid=""
cleanup() {
  [ -n "$mpirun_pid" ] && kill -9 "$mpirun_pid" 2>/dev/null
  [ -n "${victim:-}" ] && kill -CONT "$victim" 2>/dev/null && kill -9 "$victim" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- job output ---"; cat "$work/job.log" 2>/dev/null; exit 1; }

cat > "$work/model.json" <<'JSON'
{"model_type": "llama", "vocab_size": 8, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 96, "tie_word_embeddings": true}
JSON
echo "seed: 1" > "$work/config.yaml"
data="--config $work/config.yaml data.dataset=arithmetic data.prompt_template=raw data.val_size=16 data.arithmetic.num_examples=400"
"$hone" sft $data model.init_config="$work/model.json" trainer.total_steps=2 trainer.sft_batch_size=8 \
  trainer.output_dir="$work/sft" >"$work/sft.log" 2>&1 || { cat "$work/sft.log"; fail "hone sft"; }

# A long job with the default heartbeat (rpc.health_interval_s=5, rpc.health_timeout_s=10).
mpirun --oversubscribe -np 4 "$hone" train $data model.path="$work/sft/final" trainer.total_steps=100000 \
  data.train_batch_size=2 rollout.n=2 rollout.max_new_tokens=8 trainer.output_dir="$work/run" >"$work/job.log" 2>&1 &
mpirun_pid=$!

victim=""
for _ in $(seq 1 600); do
  victim=$(sed -n 's/^hone worker: role rollout 0, rank 1, .* pid \([0-9]*\)$/\1/p' "$work/job.log" | head -1)
  [ -n "$victim" ] && grep -q "^step 1/" "$work/job.log" && break
  kill -0 "$mpirun_pid" 2>/dev/null || fail "the job ended before the test could start"
  sleep 0.1
done
[ -n "$victim" ] || fail "no start-up line from the rollout worker"
grep -q "rank 1: rollout 0 on" "$work/job.log" || fail "the controller did not print the placement"

if [ "$mode" = stop ]; then kill -STOP "$victim"; else kill -KILL "$victim"; fi
start=$(date +%s)
for _ in $(seq 1 900); do
  kill -0 "$mpirun_pid" 2>/dev/null || break
  sleep 0.1
done
elapsed=$(( $(date +%s) - start ))
kill -0 "$mpirun_pid" 2>/dev/null && fail "the job still runs ${elapsed}s after the rollout worker was ${mode}ped"
wait "$mpirun_pid"
rc=$?
mpirun_pid=""
[ "$rc" -ne 0 ] || fail "the job exited 0 after losing a worker"
[ "$elapsed" -le 60 ] || fail "the job took ${elapsed}s to end (limit 60 s)"
if [ "$mode" = stop ]; then
  grep -q "rollout worker 0 (rank 1 on host .*did not answer Health" "$work/job.log" ||
    fail "the controller's error does not name the hung rollout worker"
else
  # Whoever notices first names it: mpirun (the rank, which the placement table maps to
  # the role) or the controller (its call to the worker failed, or its heartbeat did).
  grep -Eq "rank 1 .*(exited on signal 9|killed)|process rank 1|rollout worker 0 \(rank 1 on host" "$work/job.log" ||
    fail "neither mpirun's report nor the controller's error names rank 1"
fi
echo "PASS: $mode: the job ended in ${elapsed}s with exit code $rc"
