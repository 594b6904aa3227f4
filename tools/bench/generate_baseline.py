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
Prints one JSON object on stdout. Needs Debian's python3-torch (/usr/bin/python3).
"""
import argparse
import json
import math
import time

import torch


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Layer(torch.nn.Module):
    def __init__(self, d, heads, ffn):
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.q_proj = torch.nn.Linear(d, d, bias=False)
        self.k_proj = torch.nn.Linear(d, d, bias=False)
        self.v_proj = torch.nn.Linear(d, d, bias=False)
        self.o_proj = torch.nn.Linear(d, d, bias=False)
        self.gate_proj = torch.nn.Linear(d, ffn, bias=False)
        self.up_proj = torch.nn.Linear(d, ffn, bias=False)
        self.down_proj = torch.nn.Linear(ffn, d, bias=False)
        self.input_layernorm = RMSNorm(d)
        self.post_attention_layernorm = RMSNorm(d)

    def forward(self, h, cos, sin, past, mask):
        b, t, _ = h.shape
        x = self.input_layernorm(h)
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if past is not None:  # DynamicCache.update: torch.cat along the sequence
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores + mask
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, -1)
        h = h + self.o_proj(out)
        x = self.post_attention_layernorm(h)
        h = h + self.down_proj(torch.nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))
        return h, (k, v)


class Model(torch.nn.Module):
    def __init__(self, vocab, d, layers, heads, ffn, theta=10000.0):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(vocab, d)
        self.layers = torch.nn.ModuleList(Layer(d, heads, ffn) for _ in range(layers))
        self.norm = RMSNorm(d)
        self.lm_head = torch.nn.Linear(d, vocab, bias=False)
        head_dim = d // heads
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2).float() / head_dim))

    def forward(self, ids, positions, past, mask):
        h = self.embed_tokens(ids)
        freqs = positions[..., None].float() * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]
        new_past = []
        for i, layer in enumerate(self.layers):
            h, kv = layer(h, cos, sin, None if past is None else past[i], mask)
            new_past.append(kv)
        return self.lm_head(self.norm(h)), new_past


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
