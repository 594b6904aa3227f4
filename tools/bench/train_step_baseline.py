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
stdout. Needs Debian's python3-torch (/usr/bin/python3).
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps):
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
    def __init__(self, d, heads, kv_heads, head_dim, ffn, eps):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.q_proj = torch.nn.Linear(d, heads * head_dim, bias=False)
        self.k_proj = torch.nn.Linear(d, kv_heads * head_dim, bias=False)
        self.v_proj = torch.nn.Linear(d, kv_heads * head_dim, bias=False)
        self.o_proj = torch.nn.Linear(heads * head_dim, d, bias=False)
        self.gate_proj = torch.nn.Linear(d, ffn, bias=False)
        self.up_proj = torch.nn.Linear(d, ffn, bias=False)
        self.down_proj = torch.nn.Linear(ffn, d, bias=False)
        self.input_layernorm = RMSNorm(d, eps)
        self.post_attention_layernorm = RMSNorm(d, eps)

    def forward(self, h, cos, sin, mask):
        b, t, _ = h.shape
        x = self.input_layernorm(h)
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.kv_heads != self.heads:  # transformers' repeat_kv
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim) + mask
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, -1)
        h = h + self.o_proj(out)
        x = self.post_attention_layernorm(h)
        return h + self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Model(torch.nn.Module):
    def __init__(self, s):
        super().__init__()
        d, eps = s["hidden_size"], s["rms_norm_eps"]
        self.embed_tokens = torch.nn.Embedding(s["vocab_size"], d)
        self.layers = torch.nn.ModuleList(
            Layer(d, s["num_attention_heads"], s["num_key_value_heads"], s["head_dim"], s["intermediate_size"], eps)
            for _ in range(s["num_hidden_layers"]))
        self.norm = RMSNorm(d, eps)
        self.lm_head = torch.nn.Linear(d, s["vocab_size"], bias=False)
        if s["tie_word_embeddings"]:
            self.lm_head.weight = self.embed_tokens.weight
        head_dim = s["head_dim"]
        self.inv_freq = 1.0 / (s["rope_theta"] ** (torch.arange(0, head_dim, 2).float() / head_dim))
        with torch.no_grad():
            for p in self.parameters():
                if p.dim() == 2:
                    p.normal_(0.0, 0.02)

    def forward(self, ids):
        b, t = ids.shape
        h = self.embed_tokens(ids)
        freqs = torch.arange(t).float()[:, None] * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        mask = torch.full((t, t), torch.finfo(torch.float32).min).triu(1)[None, None]
        for layer in self.layers:
            h = layer(h, cos, sin, mask)
        return self.lm_head(self.norm(h))


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
    model = Model(shape)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    b, t, vocab = shape["batch"], shape["seq_len"], shape["vocab_size"]
    ids = torch.randint(0, vocab, (b, t))
    best = float("inf")
    for s in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        logits = model(ids)
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
