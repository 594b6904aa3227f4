#!/usr/bin/env bash
# deploy/slurm/hone.sbatch on a real single-node Slurm (tools/slurm/start.sh):
#   1. a short job (controller + rollout + reward + trainer) completes, exit 0, and its
#      metrics.jsonl holds every step: once with mpirun, once with srun --mpi=pmix; a
#      placement that does not fit the allocation is refused before launching;
#   2. a longer job gets `scancel --batch --signal=TERM` once a step is logged: the script
#      passes it on, Hone saves and the job ends COMPLETED; `scontrol requeue` runs it
#      again, it resumes from the checkpoint (trainer.resume=auto) and finishes: every step
#      in metrics.jsonl once, none lost.
# Exits 77 (skipped) only when the Slurm or munge binaries are missing or not root.
# Every daemon it starts is stopped by PID (tools/slurm/stop.sh) on exit.
# Usage: slurm_test.sh HONE_BINARY SOURCE_DIR
set -uo pipefail
hone=$1
src=$2
export PATH="$PATH:/usr/sbin"
for tool in munged slurmctld slurmd sbatch scontrol scancel sinfo; do
  command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not installed (tools/install-deps.sh installs slurm-wlm and munge)"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: a private Slurm needs root"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
work=$(mktemp -d)
jobs_submitted=()
cleanup() {
  for id in "${jobs_submitted[@]}"; do scancel --signal=KILL --full "$id" 2>/dev/null; scancel "$id" 2>/dev/null; done
  for _ in $(seq 1 100); do
    [ -z "$(squeue -h 2>/dev/null)" ] && break
    sleep 0.2
  done
  "$src/tools/slurm/stop.sh" "$work/slurm"
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$work"/*.out "$work"/slurm/log/*.log; do
    [ -f "$f" ] && { echo "--- $f ---"; grep -v "^step [0-9]" "$f" | tail -n 60; }
  done
  scontrol show job "${id:-0}" 2>/dev/null
  exit 1
}
job_field() { scontrol show job "$1" 2>/dev/null | grep -o "$2=[^ ]*" | head -1 | cut -d= -f2; }
steps() { grep -o '"step":[0-9]*' "$1/metrics.jsonl" 2>/dev/null | cut -d: -f2 | tr '\n' ' '; }
# Waits until job $1 is in state $2 (restart count $3, when given) within $4 seconds.
wait_state() {
  for _ in $(seq 1 $(($4 * 5))); do
    if [ "$(job_field "$1" JobState)" = "$2" ] && { [ -z "$3" ] || [ "$(job_field "$1" Restarts)" = "$3" ]; }; then
      return 0
    fi
    sleep 0.2
  done
  fail "job $1 is $(job_field "$1" JobState) (restarts $(job_field "$1" Restarts)), not $2 after $4 s"
}

# Submits a job and waits for its end (polling: `sbatch --wait` polls with growing pauses,
# tens of seconds); the job id goes to $id, its state to $state.
run_job() {
  id=$("${submit[@]}" "$@") || fail "sbatch $*"
  id=${id%%;*}
  jobs_submitted+=("$id")
  for _ in $(seq 1 1500); do
    state=$(job_field "$id" JobState)
    case "$state" in PENDING | RUNNING | CONFIGURING | COMPLETING | "") sleep 0.2 ;; *) return 0 ;; esac
  done
  fail "job $id is still $state after 300 s"
}

"$src/tools/slurm/start.sh" "$work/slurm" >"$work/start.log" 2>&1 || { cat "$work/start.log"; fail "start.sh"; }
export SLURM_CONF=$work/slurm/slurm.conf

cat > "$work/model.json" <<'JSON'
{"model_type": "llama", "vocab_size": 8, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 96, "tie_word_embeddings": true}
JSON
echo "seed: 1" > "$work/config.yaml"
data=(data.dataset=arithmetic data.prompt_template=raw data.val_size=16 data.arithmetic.num_examples=400
      runtime.num_threads=1)
"$hone" sft --config "$work/config.yaml" "${data[@]}" model.init_config="$work/model.json" trainer.total_steps=2 \
  trainer.sft_batch_size=8 trainer.output_dir="$work/sft" >"$work/sft.log" 2>&1 || { cat "$work/sft.log"; fail "hone sft"; }
train=("${data[@]}" model.path="$work/sft/final" data.train_batch_size=2 rollout.n=2 rollout.max_new_tokens=8)
export HONE=$hone
# One node, 4 ranks on however many cores: --overcommit, or the job pends (PartitionConfig).
submit=(sbatch --parsable --overcommit -N 1 -n 4 --chdir="$work")

# --- 1. a short job ---
run_job --output="$work/short-%j.out" "$src/deploy/slurm/hone.sbatch" "$work/config.yaml" "${train[@]}" \
  trainer.total_steps=3 trainer.output_dir="$work/short"
[ "$state" = COMPLETED ] && [ "$(job_field "$id" ExitCode)" = 0:0 ] ||
  fail "job $id is $state with exit code $(job_field "$id" ExitCode)"
[ "$(steps "$work/short")" = "1 2 3 " ] || fail "job $id logged steps '$(steps "$work/short")', expected 1 2 3"
[ -f "$work/short/final/state.json" ] || fail "job $id wrote no final/"
echo "[${SECONDS}s] job $id: COMPLETED, steps 1..3"

# The same with srun --mpi=pmix instead of mpirun.
export HONE_LAUNCHER=srun
run_job --output="$work/srun-%j.out" "$src/deploy/slurm/hone.sbatch" "$work/config.yaml" "${train[@]}" \
  trainer.total_steps=3 trainer.output_dir="$work/srun"
unset HONE_LAUNCHER
[ "$state" = COMPLETED ] || fail "job $id (srun) is $state with exit code $(job_field "$id" ExitCode)"
grep -q "placement (4 ranks)" "$work/srun-$id.out" || fail "job $id (srun) did not run as one 4-rank job"
[ "$(steps "$work/srun")" = "1 2 3 " ] || fail "job $id (srun) logged steps '$(steps "$work/srun")', expected 1 2 3"
echo "[${SECONDS}s] job $id (srun): COMPLETED, steps 1..3"

# A placement that does not fit the allocation is refused before launching.
run_job -n 3 --output="$work/misfit-%j.out" "$src/deploy/slurm/hone.sbatch" "$work/config.yaml" "${train[@]}" \
  trainer.output_dir="$work/misfit"
[ "$state" = FAILED ] || fail "a 3-task job with a 4-rank placement is $state"
grep -q "the allocation has 3 tasks but the placement needs" "$work"/misfit-*.out || fail "no placement message"

# --- 2. SIGTERM, requeue, resume ---
# A step of this tiny model takes milliseconds: the job is set up for far more steps than
# it reaches before the signal, and its config file is cut to a few steps past the stop
# before the requeue (the requeued job reads the file again; overrides stay as submitted).
printf 'seed: 1\ntrainer: {total_steps: 100000}\n' >"$work/long.yaml"
id=$("${submit[@]}" --output="$work/long-%j.out" "$src/deploy/slurm/hone.sbatch" "$work/long.yaml" "${train[@]}" \
  trainer.output_dir="$work/long")
id=${id%%;*}
jobs_submitted+=("$id")
for _ in $(seq 1 900); do
  [ -n "$(steps "$work/long")" ] && break
  case "$(job_field "$id" JobState)" in PENDING | RUNNING | CONFIGURING) ;; *) fail "job $id ended early" ;; esac
  sleep 0.2
done
[ -n "$(steps "$work/long")" ] || fail "job $id logged no step within 180 s"
# What Slurm does at --signal=B:TERM@120, by hand: SIGTERM to the batch script only.
scancel --batch --signal=TERM "$id" || fail "scancel --batch --signal=TERM $id"
wait_state "$id" COMPLETED "" 120
log=$work/long-$id.out
stopped=$(sed -n 's/.*stopped by SIGUSR1 after step \([0-9]*\); checkpoint in.*/\1/p' "$log")
[ -n "$stopped" ] || fail "job $id did not stop with a checkpoint"
[ "$(steps "$work/long")" = "$(seq -s ' ' 1 "$stopped") " ] || fail "after the stop: steps $(steps "$work/long")"
echo "[${SECONDS}s] job $id: stopped after step $stopped, COMPLETED"

total=$((stopped + 4))
printf 'seed: 1\ntrainer: {total_steps: %d}\n' "$total" >"$work/long.yaml"
scontrol requeue "$id" || fail "scontrol requeue $id"
# A requeued job waits for its BeginTime (about two minutes); start it a few seconds after
# the previous run's end. Not at once: slurmd refuses a job credential issued within about
# a second of that end ("Killing non-startable batch job: Job credential revoked"). (A
# future StartTime would wait for the scheduler's next periodic pass; `now` triggers one.)
for _ in $(seq 1 50); do
  [ "$(job_field "$id" JobState)" = PENDING ] && break
  sleep 0.2
done
sleep 3
scontrol update JobId="$id" StartTime=now >/dev/null 2>&1
wait_state "$id" COMPLETED 1 300
grep -q "resuming from .*step_0*$stopped (step $stopped)" "$log" || fail "job $id did not resume from step $stopped"
[ "$(steps "$work/long")" = "$(seq -s ' ' 1 "$total") " ] ||
  fail "after the requeue metrics.jsonl holds steps $(steps "$work/long"), expected 1..$total once each"
[ -f "$work/long/final/state.json" ] || fail "the requeued job wrote no final/"
echo "[${SECONDS}s] job $id: requeued, resumed from step $stopped, COMPLETED with steps 1..$total once each"
echo PASS
