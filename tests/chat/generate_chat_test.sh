#!/usr/bin/env bash
# `hone generate --chat --print-prompt` prints exactly jinja2's render of the model's chat
# template (the golden in tests/fixtures/chat_templates/renders.jsonl), for every model
# directory there; and a model without tokenizer_config.json is an error naming the file.
# Usage: generate_chat_test.sh HONE_BINARY   (run from the project root)
set -euo pipefail
hone=$1
fixtures=tests/fixtures/chat_templates
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for model in qwen2_5 qwen3 llama3 llama3_1; do
  mkdir -p "$tmp/$model"
  cp "$fixtures/$model/tokenizer_config.json" "$tmp/$model/"
  # The golden: single user turn, with the generation prompt.
  /usr/bin/python3 - "$fixtures/renders.jsonl" "$model" "$tmp/$model" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    if r["model"] == sys.argv[2] and r["case"] == "single_user" and r["add_generation_prompt"]:
        open(sys.argv[3] + "/prompt.txt", "w", encoding="utf-8").write(r["messages"][0]["content"])
        open(sys.argv[3] + "/golden.txt", "w", encoding="utf-8").write(r["text"])
PY
  "$hone" generate --model "$tmp/$model" --chat --print-prompt --prompt "$(cat "$tmp/$model/prompt.txt")" \
    > "$tmp/$model/out.txt"
  if ! cmp "$tmp/$model/out.txt" "$tmp/$model/golden.txt"; then
    echo "FAIL: $model: hone generate --chat --print-prompt differs from the golden" >&2
    diff "$tmp/$model/out.txt" "$tmp/$model/golden.txt" >&2 || true
    exit 1
  fi
done
mkdir -p "$tmp/none"
if "$hone" generate --model "$tmp/none" --chat --print-prompt --prompt hi > "$tmp/none.out" 2>&1; then
  echo "FAIL: --chat without tokenizer_config.json succeeded" >&2
  exit 1
fi
grep -q "tokenizer_config.json" "$tmp/none.out" || { echo "FAIL: error does not name the file:" >&2; cat "$tmp/none.out" >&2; exit 1; }
# Without --chat the prompt is printed as given.
[ "$("$hone" generate --model "$tmp/none" --print-prompt --prompt 'a b')" = "a b" ] || { echo "FAIL: plain --print-prompt" >&2; exit 1; }
echo "generate_chat: ok"
