#!/usr/bin/python3
"""Baseline for tools/bench/train_step: one training step written the way a TRL / Hugging
Face Trainer user's step runs in PyTorch eager mode.

The model is a plain Llama-style module (RMSNorm, rotary embeddings, eager attention with
an additive causal mask as transformers' "eager" attention, SwiGLU MLP, tied or untied
LM head) with random weights, in the shapes Hone's side reports (--shapes-json, from
train_step_bench's output). The step: full [B,T,V] logits, cross-entropy of every next
token (the shift HF's LlamaForCausalLM does), loss.backward(), clip_grad_norm_(1.0)
(HF Trainer's default max_grad_norm), AdamW, zero_grad(set_to_none=True). The fp32
matrix-product peak is measured in the same process too. Prints one JSON object on
stdout. Needs Debian's python3-torch (/usr/bin/python3). The model is
llama_reference.Model, shared with generate_baseline.py.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

from llama_reference import Model


def model_from_shape(s):
    """The Llama shape Hone's side reports, weights normal(0, 0.02) as Hone initialises."""
    model = Model(s["vocab_size"], s["hidden_size"], s["num_hidden_layers"], s["num_attention_heads"],
                  s["intermediate_size"], kv_heads=s["num_key_value_heads"], head_dim=s["head_dim"],
                  eps=s["rms_norm_eps"], theta=s["rope_theta"], tie=s["tie_word_embeddings"])
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.02)
    return model


def forward(model, ids):
    """Full [B,T,V] logits, causal mask as transformers' eager attention builds it."""
    t = ids.shape[1]
    mask = torch.full((t, t), torch.finfo(torch.float32).min).triu(1)[None, None]
    logits, _ = model(ids, torch.arange(t), None, mask)
    return logits


def peak_gflops(repeats=5):
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2.0 * 2048 ** 3 / (time.perf_counter() - start) / 1e9)
    return best


def time_steps(shape, warmup, steps):
    torch.manual_seed(0)
    model = model_from_shape(shape)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    b, t, vocab = shape["batch"], shape["seq_len"], shape["vocab_size"]
    ids = torch.randint(0, vocab, (b, t))
    best = float("inf")
    for s in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        logits = forward(model, ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        seconds = time.perf_counter() - start
        if s >= warmup:
            best = min(best, seconds)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes-json", required=True, help="train_step_bench's \"shapes\" object")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shapes = json.loads(args.shapes_json)
    result = {"threads": args.threads, "torch": torch.__version__, "peak_gflops": peak_gflops(), "shapes": {}}
    for name, entry in shapes.items():
        shape = entry["shape"]
        print("python: %s, %d x %d tokens, %d + %d steps, %d thread(s)" % (
            name, shape["batch"], shape["seq_len"], args.warmup, args.steps, args.threads), file=sys.stderr)
        seconds = time_steps(shape, args.warmup, args.steps)
        result["shapes"][name] = {
            "python_seconds": seconds,
            "python_tokens_per_s": shape["batch"] * shape["seq_len"] / seconds,
            "python_gflops": shape["flops_per_step"] / seconds / 1e9,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
