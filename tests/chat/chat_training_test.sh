#!/usr/bin/env bash
# data.prompt_template=chat end to end: a tiny Qwen3-shaped model with the real Qwen3
# tokenizer and chat template trains one GRPO step and is evaluated; the checkpoint keeps
# tokenizer_config.json; the length check sees the rendered prompt (longer than the raw
# one); a model without a chat template is a one-line error naming the key and the file.
# Usage: chat_training_test.sh HONE_BINARY TESTDATA_DIR   (run from the project root)
set -uo pipefail
hone=$1
testdata=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$hone" model init --config-json configs/models/tiny_qwen3.json --tokenizer "$testdata/qwen3/tokenizer.json" \
  --out "$tmp/model" >/dev/null || { echo "FAIL: model init"; exit 1; }
cp -r "$tmp/model" "$tmp/model_no_chat"
cp tests/fixtures/chat_templates/qwen3/tokenizer_config.json "$tmp/model/"

common=(data.dataset=arithmetic data.val_size=4 data.arithmetic.num_examples=40 data.train_batch_size=2
        rollout.n=2 rollout.max_new_tokens=4 trainer.total_steps=1 eval.limit=2 metrics.port=0)
run() { "$@" >"$tmp/out" 2>&1; }

run "$hone" train model.path="$tmp/model" data.prompt_template=chat "${common[@]}" trainer.output_dir="$tmp/run" \
  || { fail "train with the chat template"; cat "$tmp/out"; }
cmp -s "$tmp/model/tokenizer_config.json" "$tmp/run/final/tokenizer_config.json" \
  || fail "the final checkpoint does not carry tokenizer_config.json"
run "$hone" eval --model "$tmp/run/final" data.prompt_template=chat "${common[@]}" --output "$tmp/eval.json" \
  || { fail "eval with the chat template"; cat "$tmp/out"; }
[ -s "$tmp/eval.json" ] || fail "eval wrote no report"

# An arithmetic prompt is a few tokens raw; Qwen3's template adds its turn markers.
run "$hone" train model.path="$tmp/model" data.prompt_template=raw data.max_prompt_length=12 "${common[@]}" \
  trainer.output_dir="$tmp/run_raw" || { fail "raw prompts should fit 12 tokens"; cat "$tmp/out"; }
if run "$hone" train model.path="$tmp/model" data.prompt_template=chat data.max_prompt_length=12 "${common[@]}" \
  trainer.output_dir="$tmp/run_long"; then
  fail "chat prompts fit data.max_prompt_length=12: the template was not applied"
fi
grep -q "data.max_prompt_length=12" "$tmp/out" || { fail "no prompt-length error"; cat "$tmp/out"; }

if run "$hone" train model.path="$tmp/model_no_chat" data.prompt_template=chat "${common[@]}" \
  trainer.output_dir="$tmp/run_none"; then
  fail "chat without tokenizer_config.json succeeded"
fi
grep "error:" "$tmp/out" | grep -q "data.prompt_template=chat.*tokenizer_config.json" \
  || { fail "the error does not name data.prompt_template and the file"; cat "$tmp/out"; }
[ "$(grep -c "error:" "$tmp/out")" -eq 1 ] || { fail "want one error line"; cat "$tmp/out"; }

if [ "$failures" -ne 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "chat_training: ok"
