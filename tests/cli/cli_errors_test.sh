#!/usr/bin/env bash
# Runs `hone` as a user would, through each everyday failure mode. Every failure must exit
# non-zero with one "error:" line that names the input, and no C++ stack trace
# ("terminate called", libtorch's "Exception raised from" / "frame #").
# Every failure's error line also goes into a table, which must equal the one in
# docs/reliability.md ("Bad input on the command line"), so that the page stays true;
# HONE_UPDATE_DOCS=1 rewrites the page's table instead.
# Usage: cli_errors_test.sh HONE_BINARY
set -uo pipefail
hone=$(realpath "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: > "$work/table.md"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
no_trace() {  # $1 name, $2 output file
  if grep -Eq "terminate called|Exception raised from|frame #[0-9]" "$2"; then fail "$1: stack trace in the output"; cat "$2"; fi
}
# expect_fail NAME SUBSTRING CMD...: non-zero exit, exactly one error line, naming SUBSTRING.
expect_fail() {
  local name=$1 want=$2
  shift 2
  "$@" >"$work/out" 2>&1 </dev/null
  local rc=$?
  [ "$rc" -ne 0 ] || { fail "$name: exit code 0"; cat "$work/out"; return; }
  local errors
  errors=$(grep -c "error:" "$work/out")
  [ "$errors" -eq 1 ] || { fail "$name: $errors error lines, want 1"; cat "$work/out"; }
  grep "error:" "$work/out" | grep -qF -- "$want" || { fail "$name: the error line does not name '$want'"; cat "$work/out"; }
  no_trace "$name" "$work/out"
  # The row for the docs: temporary paths and the binary's path made stable, | escaped.
  local line
  line=$(grep -m1 "error:" "$work/out" | sed -e "s|$work|<tmp>|g" -e "s|$hone|hone|g" -e 's/|/\\|/g' -e 's/`/'"'"'/g')
  printf '| %s | `%s` |\n' "$name" "$line" >> "$work/table.md"
}
# expect_ok NAME SUBSTRING CMD...: exit 0 and SUBSTRING in stdout+stderr.
expect_ok() {
  local name=$1 want=$2
  shift 2
  "$@" >"$work/out" 2>&1
  local rc=$?
  [ "$rc" -eq 0 ] || { fail "$name: exit code $rc"; cat "$work/out"; return; }
  grep -qF -- "$want" "$work/out" || { fail "$name: output lacks '$want'"; cat "$work/out"; }
  no_trace "$name" "$work/out"
}

mkdir -p "$work/cfg" "$work/elsewhere"
cat > "$work/cfg/tiny.json" <<'JSON'
{"model_type": "llama", "vocab_size": 8, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
 "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 96, "tie_word_embeddings": true}
JSON
sed 's/"max_position_embeddings": 96/"max_position_embeddings": 12/' "$work/cfg/tiny.json" > "$work/cfg/short.json"
sed 's/"tie_word_embeddings": true/"tie_word_embeddings": true, "hidden_act": "gelu"/' "$work/cfg/tiny.json" > "$work/cfg/gelu.json"
# Relative paths in a config file resolve against the file's directory.
cat > "$work/cfg/sft.yaml" <<'YAML'
seed: 1
model: {init_config: tiny.json}
data: {dataset: arithmetic, prompt_template: raw, val_size: 16, arithmetic: {num_examples: 200}}
trainer: {total_steps: 2, sft_batch_size: 8}
YAML
data="data.dataset=arithmetic data.prompt_template=raw data.val_size=16 data.arithmetic.num_examples=200"

# --- run directories ---
cd "$work/elsewhere"  # not the config's directory
expect_ok "sft from another directory" "SFT done" "$hone" sft --config ../cfg/sft.yaml trainer.output_dir="$work/sft"
for f in config.yaml hone_version.txt final/config.yaml final/hone_version.txt final/model.safetensors; do
  [ -f "$work/sft/$f" ] || fail "sft: no $f in the run directory"
done
"$hone" sft --config ../cfg/sft.yaml trainer.output_dir="$work/sft" --print-config > "$work/printed.yaml"
cmp -s "$work/printed.yaml" "$work/sft/config.yaml" || fail "config.yaml differs from --print-config"
grep -q "hone 0.1.0" "$work/sft/final/hone_version.txt" || fail "hone_version.txt lacks the version"
expect_fail "sft into an earlier run" "trainer.overwrite=true" \
  "$hone" sft --config ../cfg/sft.yaml trainer.output_dir="$work/sft"
touch "$work/sft/notes.txt"
expect_ok "sft with overwrite" "deleted the earlier run" \
  "$hone" sft --config ../cfg/sft.yaml trainer.output_dir="$work/sft" trainer.overwrite=true
[ -f "$work/sft/notes.txt" ] || fail "overwrite deleted a file that is not Hone's"
expect_fail "missing init_config names the key" "model.init_config" \
  "$hone" sft --config ../cfg/sft.yaml trainer.output_dir="$work/sft2" model.init_config=nope.json
expect_fail "SFT example longer than the model" "max_position_embeddings=12" \
  "$hone" sft --config ../cfg/sft.yaml trainer.output_dir="$work/sft3" model.init_config="$work/cfg/short.json"

train="$data model.path=$work/sft/final data.train_batch_size=2 rollout.n=2 rollout.max_new_tokens=8"
expect_ok "train" "GRPO done" "$hone" train --config ../cfg/sft.yaml $train trainer.total_steps=1 trainer.output_dir="$work/run"
[ -f "$work/run/final/config.yaml" ] || fail "train: the final checkpoint has no config.yaml"
expect_fail "train into an earlier run" "trainer.resume=auto" \
  "$hone" train --config ../cfg/sft.yaml $train trainer.total_steps=1 trainer.output_dir="$work/run"
expect_fail "missing model.path names the key" "model.path" \
  "$hone" train --config ../cfg/sft.yaml $train model.path=nope trainer.output_dir="$work/run2"
expect_fail "overlong prompt" "data.filter_overlong_prompts=true" \
  "$hone" train --config ../cfg/sft.yaml $train data.max_prompt_length=3 trainer.output_dir="$work/run3"
expect_fail "dual clip in (0, 1] at start-up" "algorithm.clip_ratio_c" \
  "$hone" train --config ../cfg/sft.yaml $train algorithm.clip_ratio_c=0.5 trainer.output_dir="$work/run5"
[ -e "$work/run5/metrics.jsonl" ] && fail "dual clip: a step ran before the error"
expect_fail "eval.k above eval.n at start-up" "eval.k" \
  "$hone" train --config ../cfg/sft.yaml $train eval.n=2 eval.k=[1,4] trainer.output_dir="$work/run6"
for i in $(seq 1 30) 1 2 3 4 5; do echo "{\"question\": \"$i+1=?\", \"answer\": $((i + 1))}"; done > "$work/small.jsonl"
expect_ok "held-out split that leaves few prompts" "training prompts remain" \
  "$hone" train --config ../cfg/sft.yaml $train trainer.total_steps=1 data.dataset=jsonl data.train_path="$work/small.jsonl" \
  data.val_size=20 data.train_batch_size=4 trainer.output_dir="$work/run4"
expect_fail "a misspelt config key" "did you mean 'trainer.total_steps'" \
  "$hone" train --config ../cfg/sft.yaml $train trainer.totl_steps=1 trainer.output_dir="$work/run7"
expect_fail "an override without =" "key=value" \
  "$hone" train --config ../cfg/sft.yaml $train trainer.total_steps trainer.output_dir="$work/run7"
expect_fail "async rollouts with no lag allowed" "trainer.max_policy_lag" \
  "$hone" train --config ../cfg/sft.yaml $train trainer.async_rollout=true trainer.max_policy_lag=0 \
  trainer.output_dir="$work/run7"
{ echo '{"question": "1+1=?", "answer": 2}'; echo '{"question": "2+2=?", "answer": '; } > "$work/broken.jsonl"
expect_fail "a malformed dataset line" "broken.jsonl:2: bad JSON" \
  "$hone" train --config ../cfg/sft.yaml $train data.dataset=jsonl data.train_path="$work/broken.jsonl" \
  trainer.output_dir="$work/run7"
mkdir -p "$work/truncated"
cp "$work/sft/final/"* "$work/truncated/"
truncate -s -100 "$work/truncated/model.safetensors"
expect_fail "a truncated checkpoint" "model.safetensors" "$hone" generate --model "$work/truncated" --prompt 1
if command -v mpirun >/dev/null; then
  # Under mpirun the controller refuses before any rank works, and every rank stops.
  timeout 120 mpirun --oversubscribe -np 4 "$hone" train --config ../cfg/sft.yaml $train trainer.total_steps=1 \
    trainer.output_dir="$work/run" >"$work/out" 2>&1
  rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "mpirun into an earlier run: exit code $rc"
  grep -q "trainer.resume=auto" "$work/out" || { fail "mpirun into an earlier run: no message"; cat "$work/out"; }
  no_trace "mpirun into an earlier run" "$work/out"
fi
cd "$work"

# --- hone eval ---
expect_ok "eval writes next to the model" "wrote $work/sft/final/eval.json" \
  "$hone" eval --config cfg/sft.yaml --model "$work/sft/final" --limit 2 $data
expect_ok "eval says it overwrites" "overwriting the existing $work/sft/final/eval.json" \
  "$hone" eval --config cfg/sft.yaml --model "$work/sft/final" --limit 2 $data
expect_fail "eval --limit -1" "--limit" "$hone" eval --model "$work/sft/final" --limit -1
grep -q "17976931" "$work/out" && fail "eval --limit -1: unreadable bound"

# --- hone model ---
cp "$work/sft/final/tokenizer.json" tok.json  # char-level, more than tiny.json's 8 tokens
expect_fail "model init: vocab_size below the tokenizer's" "vocab_size" \
  "$hone" model init --config-json cfg/tiny.json --tokenizer tok.json --out "$work/m_small"
expect_fail "model init: hidden_act gelu" "hidden_act" \
  "$hone" model init --config-json cfg/gelu.json --out "$work/m_gelu"
expect_fail "model init --seed -1" "--seed" \
  "$hone" model init --config-json cfg/tiny.json --out "$work/m_seed" --seed -1
expect_ok "model init" "parameters to $work/m_init" \
  "$hone" model init --config-json cfg/tiny.json --out "$work/m_init"
expect_fail "model init over a model" "--overwrite" "$hone" model init --config-json cfg/tiny.json --out "$work/m_init"
expect_ok "model init --overwrite says so" "replacing config.json, model.safetensors" \
  "$hone" model init --config-json cfg/tiny.json --out "$work/m_init" --overwrite --seed 3
expect_ok "model info" "max_position_embeddings: 96" "$hone" model info "$work/sft/final"
grep -q "stop tokens: .*<|endoftext|>" "$work/out" || { fail "model info: no stop tokens"; cat "$work/out"; }

# --- hone generate ---
printf '{"prompt": "1+2=", "id": 7}\n\n3+4=\n' > prompts.jsonl
expect_ok "generate --prompts-file" '"prompt":"3+4="' \
  "$hone" generate --model "$work/sft/final" --prompts-file prompts.jsonl --n 2 --max-new-tokens 4
[ "$(grep -c '"responses"' "$work/out")" -eq 2 ] || { fail "generate --prompts-file: want 2 output lines"; cat "$work/out"; }
expect_ok "generate --prompts-file - (stdin)" '"prompt":"3+4="' \
  sh -c "\"\$0\" generate --model \"\$1\" --prompts-file - --n 2 --max-new-tokens 4 < prompts.jsonl" "$hone" "$work/sft/final"
[ "$(grep -c '"responses"' "$work/out")" -eq 2 ] || { fail "generate --prompts-file -: want 2 output lines"; cat "$work/out"; }
expect_fail "generate --top-p 2" "between 0 and 1" "$hone" generate --model "$work/sft/final" --prompt 1 --top-p 2
expect_fail "generate --seed -1" "--seed" "$hone" generate --model "$work/sft/final" --prompt 1 --seed -1

# --- hone reward ---
printf '{"response": "\\\\boxed{3}", "ground_truth": 3, "id": "a"}\n\n{"response": 5, "ground_truth": 1}\nnot json\n' > r.jsonl
"$hone" reward --skip-invalid < r.jsonl > "$work/rout" 2>&1 || fail "reward --skip-invalid: non-zero exit"
[ "$(wc -l < "$work/rout")" -eq 4 ] || { fail "reward --skip-invalid: want 4 lines (one per input line)"; cat "$work/rout"; }
sed -n 1p "$work/rout" | grep -q '"id":"a"' || fail "reward: the id field is not passed through"
sed -n 2p "$work/rout" | grep -q '^$' || fail "reward: a blank line in is not a blank line out"
sed -n 3p "$work/rout" | grep -q 'must be a string, not a number' || { fail "reward: wrong type not named"; cat "$work/rout"; }
sed -n 4p "$work/rout" | grep -q '"error":"bad JSON' || fail "reward: bad JSON not reported"
expect_fail "reward wrong type" 'line 3: field "response" must be a string' sh -c "'$hone' reward < r.jsonl"
expect_fail "reward --correct-weight -1" "--correct-weight" sh -c "'$hone' reward --correct-weight -1 < /dev/null"

# --- hone tokenize, bare hone, unknown command, --print-config ---
expect_ok "tokenize text argument" " " "$hone" tokenize --tokenizer tok.json "1+2"
[ "$(wc -l < "$work/out")" -eq 1 ] || { fail "tokenize text argument: want one line"; cat "$work/out"; }
expect_ok "bare hone lists the commands" "tokenize" "$hone"
expect_fail "unknown command" "unknown command 'trian'" "$hone" trian
grep -q "train" "$work/out" || fail "unknown command: no command list"
# train/sft without --config: the defaults plus the overrides.
expect_ok "sft without --config" "SFT done" "$hone" sft model.init_config="$work/cfg/tiny.json" $data \
  trainer.total_steps=1 trainer.sft_batch_size=4 trainer.output_dir="$work/sft_defaults"
expect_fail "train without --config names model.path" "model.path" "$hone" train trainer.output_dir="$work/run_defaults"
expect_ok "train --help shows defaults" "=1" "$hone" generate --help
grep -q -- "--max-new-tokens.*=64" "$work/out" || { fail "generate --help: no default for --max-new-tokens"; cat "$work/out"; }
expect_ok "print-config floats" "betas: [0.9, 0.999]" "$hone" train --config cfg/sft.yaml --print-config
grep -q "00000000" "$work/out" && fail "--print-config prints a long float"

# --- the table in docs/reliability.md ---
doc="$root/docs/reliability.md"
begin='<!-- cli-errors-table: begin (tests/cli/cli_errors_test.sh writes it) -->'
end='<!-- cli-errors-table: end -->'
{ echo "| Bad input | The one error line |"; echo "|---|---|"; awk '!seen[$0]++' "$work/table.md"; } > "$work/fresh.md"
awk -v b="$begin" -v e="$end" '$0 == e { inside = 0 } inside { print } $0 == b { inside = 1 }' "$doc" > "$work/documented.md"
if ! cmp -s "$work/fresh.md" "$work/documented.md"; then
  if [ "${HONE_UPDATE_DOCS:-0}" = 1 ]; then
    python3 - "$doc" "$begin" "$end" "$work/fresh.md" <<'PY'
import sys
doc, begin, end, fresh = sys.argv[1:]
text = open(doc).read()
head, rest = text.split(begin + "\n", 1)
_, tail = rest.split(end, 1)
open(doc, "w").write(head + begin + "\n" + open(fresh).read() + end + tail)
PY
    echo "updated the table in $doc"
  else
    fail "docs/reliability.md's table of CLI errors differs from what hone prints; rerun with HONE_UPDATE_DOCS=1 to update it"
    diff "$work/documented.md" "$work/fresh.md"
  fi
fi

if [ "$failures" -ne 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "PASS"
