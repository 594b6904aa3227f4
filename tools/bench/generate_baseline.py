#!/usr/bin/python3
"""Baseline for tools/bench/generate: the same workload done the way Hugging Face
`generate` does it in PyTorch eager mode.

The model is the same architecture as Hone's (Llama-style: RMSNorm, rotary embeddings,
SwiGLU MLP) with random weights; speed does not depend on the weight values. As in HF's
`generate(num_return_sequences=n)`, every prompt is expanded n times before the prefill,
and the KV cache grows by concatenation at each step (transformers' DynamicCache).
Workload `lengths` adds stop token 95 with the same construction as Hone's side
(generate_bench.cc, SetStopBias): all weights normal(0, 0.02), hidden channel 0 a constant
30 of the residual stream, and the stop row of lm_head reading only that channel, so that
p(stop) is about 1/45 at every step on both sides. As HF generate does, finished rows stay
in the batch (fed the pad token, their output discarded) until every row has finished or
the limit is reached; only real new tokens (up to and including the stop) are counted.
Prints one JSON object on stdout. Needs Debian's python3-torch (/usr/bin/python3). The
model is llama_reference.Model, shared with train_step_baseline.py.
"""
import argparse
import json
import math
import time

import torch

from llama_reference import Model


STOP_TOKEN, STOP_BIAS, STOP_CHANNEL = 95, 0.8, 30.0


@torch.no_grad()
def set_stop_bias(model, d):
    """The same construction as SetStopBias in generate_bench.cc."""
    for p in model.parameters():
        if p.dim() == 2:
            p.normal_(0.0, 0.02)
    model.embed_tokens.weight[:, 0] = STOP_CHANNEL
    for layer in model.layers:
        layer.o_proj.weight[0, :] = 0
        layer.down_proj.weight[0, :] = 0
    model.lm_head.weight[STOP_TOKEN, :] = 0
    model.lm_head.weight[STOP_TOKEN, 0] = STOP_BIAS / math.sqrt(d)


@torch.no_grad()
def hf_style_generate(model, prompts, n, new_tokens, temperature, generator, stop=None):
    """Returns the new tokens [b, steps] and the number of real new tokens."""
    ids = prompts.repeat_interleave(n, dim=0)  # num_return_sequences expands the input
    b, t = ids.shape
    positions = torch.arange(t).expand(b, t)
    causal = torch.full((t, t), float("-inf")).triu(1)
    logits, past = model(ids, positions, None, causal)
    out = []
    unfinished = torch.ones(b, 1, dtype=torch.long)
    real = 0
    for step in range(new_tokens):
        probs = torch.softmax(logits[:, -1, :] / temperature, dim=-1)
        token = torch.multinomial(probs, 1, generator=generator)
        if stop is not None:  # HF: finished rows get the pad token and stay in the batch
            real += int(unfinished.sum())
            token = token * unfinished + 0 * (1 - unfinished)
            unfinished = unfinished * (token != stop).long()
        out.append(token)
        if step + 1 == new_tokens or (stop is not None and int(unfinished.max()) == 0):
            break
        positions = torch.full((b, 1), t + step)
        logits, past = model(token, positions, past, None)
    tokens = torch.cat(out, dim=1)
    return tokens, (real if stop is not None else tokens.numel())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workload", choices=["uniform", "lengths"], default="uniform")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Model(vocab=96, d=256, layers=4, heads=4, ffn=768).eval()
    stop = None
    if args.workload == "lengths":
        set_stop_bias(model, 256)
        stop = STOP_TOKEN
    prompts = torch.randint(0, 96, (args.prompts, args.prompt_len))
    best_rate, best, generated, steps = 0.0, float("inf"), 0, 0
    for r in range(args.repeats + 1):  # run 0 warms up (lengths: a short run, 8 new tokens)
        generator = torch.Generator().manual_seed(r)
        limit = args.new_tokens if r > 0 or stop is None else 8
        start = time.perf_counter()
        tokens, real = hf_style_generate(model, prompts, args.n, limit, 1.0, generator, stop)
        seconds = time.perf_counter() - start
        if r > 0 and real / seconds > best_rate:
            best_rate, best, generated, steps = real / seconds, seconds, real, tokens.shape[1]
    print(json.dumps({"workload": args.workload, "threads": args.threads,
                      "baseline_tokens_per_s": best_rate, "baseline_seconds": best,
                      "new_tokens": generated, "steps": steps,
                      "mean_length": generated / (args.prompts * args.n)}))


if __name__ == "__main__":
    main()
