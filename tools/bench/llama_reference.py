"""The Llama-style model of the Python baselines (generate_baseline.py, train_step_baseline.py),
written as transformers' eager Llama computes it: RMSNorm, rotary embeddings, attention
with an additive mask and a KV cache grown by concatenation (DynamicCache), grouped-query
heads repeated (repeat_kv), SwiGLU MLP, optionally tied LM head. Modules are created in
the same order as transformers' LlamaModel, so a seed gives the same initial weights."""
import math

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

    def forward(self, h, cos, sin, mask, past=None):
        """Returns the new hidden states and this layer's cache (k, v), before repeat_kv."""
        b, t, _ = h.shape
        x = self.input_layernorm(h)
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if past is not None:  # DynamicCache.update: torch.cat along the sequence
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        cache = (k, v)
        if self.kv_heads != self.heads:  # transformers' repeat_kv
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores + mask
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, -1)
        h = h + self.o_proj(out)
        x = self.post_attention_layernorm(h)
        return h + self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x)), cache


class Model(torch.nn.Module):
    def __init__(self, vocab, d, layers, heads, ffn, kv_heads=None, head_dim=None, eps=1e-6, theta=10000.0,
                 tie=False):
        super().__init__()
        kv_heads = kv_heads or heads
        head_dim = head_dim or d // heads
        self.embed_tokens = torch.nn.Embedding(vocab, d)
        self.layers = torch.nn.ModuleList(Layer(d, heads, kv_heads, head_dim, ffn, eps) for _ in range(layers))
        self.norm = RMSNorm(d, eps)
        self.lm_head = torch.nn.Linear(d, vocab, bias=False)
        if tie:
            self.lm_head.weight = self.embed_tokens.weight
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2).float() / head_dim))

    def forward(self, ids, positions, past=None, mask=None):
        """ids and positions [b, t] (positions may be [t], shared by the batch). Returns the
        logits [b, t, vocab] and the new cache (one (k, v) per layer)."""
        if positions.dim() == 1:
            positions = positions[None]
        h = self.embed_tokens(ids)
        freqs = positions[..., None].float() * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]
        new_past = []
        for i, layer in enumerate(self.layers):
            h, kv = layer(h, cos, sin, mask, None if past is None else past[i])
            new_past.append(kv)
        return self.lm_head(self.norm(h)), new_past
