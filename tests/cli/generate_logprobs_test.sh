#!/usr/bin/env bash
# `hone generate --logprobs` prints one line per sampled token: its id, a finite
# log-probability <= 0, and its text as a JSON string, which must equal what
# `hone tokenize --decode --jsonl` makes of that id on its own (an independent path).
# Usage: generate_logprobs_test.sh HONE_BINARY TOKENIZER_JSON   (run from the project root)
set -euo pipefail
hone=$1
tokenizer=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$hone" model init --config-json configs/models/tiny_qwen3.json --out "$tmp/model" --tokenizer "$tokenizer" \
  > /dev/null
"$hone" generate --model "$tmp/model" --prompt "Hello 世界" --max-new-tokens 12 --seed 3 --logprobs \
  > "$tmp/out.txt" 2> /dev/null
grep '^  ' "$tmp/out.txt" > "$tmp/tokens.txt" || true
[ "$(wc -l < "$tmp/tokens.txt")" -eq 12 ] || { echo "FAIL: expected 12 token lines:" >&2; cat "$tmp/out.txt" >&2; exit 1; }
while read -r id logprob text; do
  awk -v lp="$logprob" 'BEGIN { exit !(lp + 0 <= 0 && lp + 0 > -1000) }' ||
    { echo "FAIL: token $id: log-probability '$logprob' is not in (-1000, 0]" >&2; exit 1; }
  expected=$(echo "$id" | "$hone" tokenize --tokenizer "$tokenizer" --decode --jsonl)
  [ "$text" = "$expected" ] || { echo "FAIL: token $id shows $text, tokenize --decode says $expected" >&2; exit 1; }
done < "$tmp/tokens.txt"
echo "generate_logprobs: ok"
