#!/usr/bin/env python3
"""Writes data/mini_bpe_tokenizer.json: a tiny byte-level BPE tokenizer in the layout of
Qwen2.5/Qwen3's tokenizer.json (NFC normalizer, the same Split regex then ByteLevel,
ByteLevel decoder, ChatML added tokens), with the 256 byte symbols and a few merges made
up here. Used by tokenizer_encode_fuzz and as a seed of tokenizer_json."""
import json, os

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
         list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}

b2u = bytes_to_unicode()
vocab = {}
for b in range(256):
    vocab[b2u[b]] = len(vocab)
words = ["the", "Ġthe", "in", "Ġin", "er", "ing", "Ġ=", "Ġ+", "00", "11", "ĠĠ", "ĠĠĠĠ",
         "\\b", "ox", "box", "\\box", "ed", "\\boxed", "Ċ", "ĊĊ", "Ġa", "an", "Ġan", "and", "Ġand"]
merges = []
def add(tok):
    if tok in vocab: return
    # split greedily into two known parts, preferring the longest left part
    for i in range(len(tok) - 1, 0, -1):
        l, r = tok[:i], tok[i:]
        if l in vocab and r in vocab:
            merges.append([l, r]); vocab[tok] = len(vocab); return
    for i in range(1, len(tok)):
        add(tok[:i + 1])
    add(tok)
for w in words:
    if len(w) > 1: add(w)
added = []
for name in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]:
    added.append({"id": len(vocab) + len(added), "content": name, "single_word": False,
                  "lstrip": False, "rstrip": False, "normalized": False, "special": True})
byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
doc = {
    "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
    "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
         "behavior": "Isolated", "invert": False}, byte_level]},
    "post_processor": byte_level, "decoder": byte_level,
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
              "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
              "ignore_merges": False, "vocab": vocab, "merges": merges},
}
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "mini_bpe_tokenizer.json"), "w", encoding="utf-8") as f:
    json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
    f.write("\n")
