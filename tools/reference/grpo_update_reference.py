#!/usr/bin/python3
"""One GRPO policy update, computed independently of Hone, as a test fixture.

tests/workers/reference_update_test.cc loads the same initial model and trajectories into
Hone, runs LocalPolicyTrainer::Update once with the options in OPTIONS below, and requires
every parameter to match this script's result to 1e-5. It checks the gradient (and so
the whole forward/backward), not only a loss value.

Nothing here calls Hone. The model is a Llama-style decoder written from the Hugging Face
formulas (LlamaForCausalLM: RMSNorm, rotary embeddings with rotate_half, grouped-query
attention as repeat_kv, SwiGLU MLP, untied lm_head), run on each sequence unpadded, in
float64. The loss follows verl (github.com/verl-project/verl, commit 1dda039b, version
0.10.0.dev):

  * log-probs: logits / temperature, then gather(logits) - logsumexp(logits)
    (verl.utils.torch_functional.logprobs_from_logits_v2); entropy as
    logsumexp(logits) - sum(softmax(logits) * logits) (entropy_from_logits);
  * policy loss: core_algos.compute_policy_loss_vanilla: ratio = exp(clamp(logp - old,
    -20, 20)), max(-A ratio, -A clamp(ratio, 1 - clip_ratio_low, 1 + clip_ratio_high)),
    and for A < 0 the dual clip min(., -A clip_ratio_c) (verl always applies it; 3.0 is
    its default);
  * KL: core_algos.kl_penalty_forward "low_var_kl" (k3): d = clamp(ref - logp, -20, 20),
    clamp(exp(d) - d - 1, -10, 10);
  * aggregation: core_algos.agg_loss "token-mean" with the global batch info that
    verl.workers.utils.losses.ppo_loss passes in: masked_sum(loss, mask) /
    batch_num_tokens * dp_size, where batch_num_tokens is the token count of the whole
    mini-batch (engine/fsdp/transformer_impl.py forward_backward_batch counts it before
    cutting micro-batches) and dp_size = 1. So each micro-batch's loss is already scaled
    for the mini-batch and the micro-batch gradients simply add up. (Older verl, e.g.
    v0.4, took each micro-batch's own token mean and divided by the number of
    micro-batches; that is a different gradient when micro-batches hold different token
    counts, and the C++ test shows it is caught.)
  * policy_loss = pg_loss - entropy_coeff * entropy_loss + kl_loss_coef * kl_loss, one
    backward per micro-batch;
  * torch.nn.utils.clip_grad_norm_ to grad_clip, then one torch.optim.AdamW step.

Usage (Debian's python3 has python3-torch; no `safetensors` package is needed, the file
format is read and written here with struct: 8-byte little-endian header length, JSON
header, raw little-endian tensor bytes):

    /usr/bin/python3 tools/reference/grpo_update_reference.py all tests/fixtures/grpo_reference

`inputs DIR` writes DIR/model/ (config.json, model.safetensors, tokenizer.json in Hone's
HF layout) and DIR/trajectories.safetensors; `update DIR` reads them and writes
DIR/expected_params.safetensors and DIR/expected_metrics.safetensors; `all` does both.
Both steps are deterministic (fixed seeds, float64 on the CPU).
"""
import argparse
import json
import math
import os
import struct
from collections import OrderedDict

import numpy as np
import torch

# The update's settings. tests/workers/reference_update_test.cc sets the same values in
# TrainerOptions; change both together.
OPTIONS = {
    "micro_batch_size": 4,  # 6 rows -> micro-batches of 4 and 2 rows, of different widths
    "clip_ratio_low": 0.2,
    "clip_ratio_high": 0.28,  # clip-higher
    "clip_ratio_c": 3.0,  # verl's default dual clip
    "kl_coef": 0.2,  # k3 to the reference log-probs
    "entropy_coef": 0.01,
    # AdamW's first step is lr * g / (|g| + eps): with eps = 1 it is about lr * g, so the
    # parameters show gradient differences linearly (a small eps would turn the step into
    # lr * sign(g)). lr = 10 puts the test's 1e-5 tolerance at 1e-6 of gradient.
    "lr": 10.0,
    "betas": (0.9, 0.999),
    "eps": 1.0,
    "weight_decay": 0.01,
    "grad_clip": 1.0,  # below the gradient norm (about 1.96 here): the clip is active
}

SEED = 20240611

# ---------------------------------------------------------------------------------------
# safetensors without the safetensors package
# ---------------------------------------------------------------------------------------

_NP = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "u1", "BOOL": "?"}
_ST = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<i8"): "I64",
       np.dtype("<i4"): "I32", np.dtype("u1"): "U8", np.dtype("?"): "BOOL"}


def read_safetensors(path):
    """name -> numpy array (file order)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    out = OrderedDict()
    entries = [(k, v) for k, v in header.items() if k != "__metadata__"]
    entries.sort(key=lambda kv: kv[1]["data_offsets"][0])
    for name, info in entries:
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype=_NP[info["dtype"]]).copy()
        out[name] = arr.reshape(info["shape"])
    return out


def write_safetensors(path, tensors):
    """tensors: list of (name, numpy array), written in that order."""
    header = {"__metadata__": {"format": "pt"}}
    chunks, offset = [], 0
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr)
        dtype = _ST[arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype]
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------
# The model: Hugging Face Llama formulas, one unpadded sequence at a time
# ---------------------------------------------------------------------------------------


class Config:
    def __init__(self, j):
        self.vocab_size = j["vocab_size"]
        self.hidden_size = j["hidden_size"]
        self.intermediate_size = j["intermediate_size"]
        self.num_layers = j["num_hidden_layers"]
        self.num_heads = j["num_attention_heads"]
        self.num_kv_heads = j.get("num_key_value_heads", self.num_heads)
        self.head_dim = j.get("head_dim", self.hidden_size // self.num_heads)
        self.rms_norm_eps = j.get("rms_norm_eps", 1e-6)
        self.rope_theta = j.get("rope_theta", 10000.0)
        assert j.get("model_type", "llama") == "llama" and not j.get("attention_bias", False)
        assert not j.get("tie_word_embeddings", False) and "rope_scaling" not in j


def rms_norm(x, weight, eps):
    # LlamaRMSNorm: hidden * rsqrt(mean(hidden^2) + eps), times the weight.
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rotary(cfg, length):
    # LlamaRotaryEmbedding (default rope): inv_freq = 1 / theta^(2i/d), emb = cat(freqs, freqs).
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float64) / cfg.head_dim))
    freqs = torch.outer(torch.arange(length, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()  # [L, D]


def forward(p, cfg, ids):
    """ids: [L] int64 -> logits [L, V] (float64)."""
    L = ids.shape[0]
    H, K, D = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    h = p["model.embed_tokens.weight"][ids]  # [L, d]
    cos, sin = rotary(cfg, L)
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    for i in range(cfg.num_layers):
        pre = f"model.layers.{i}."
        x = rms_norm(h, p[pre + "input_layernorm.weight"], cfg.rms_norm_eps)
        q = (x @ p[pre + "self_attn.q_proj.weight"].T).view(L, H, D).transpose(0, 1)  # [H, L, D]
        k = (x @ p[pre + "self_attn.k_proj.weight"].T).view(L, K, D).transpose(0, 1)  # [K, L, D]
        v = (x @ p[pre + "self_attn.v_proj.weight"].T).view(L, K, D).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin  # apply_rotary_pos_emb
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // K, dim=0)  # repeat_kv: query head h uses kv head h // (H/K)
        v = v.repeat_interleave(H // K, dim=0)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        scores = scores.masked_fill(~causal, float("-inf"))
        attn = torch.softmax(scores, dim=-1) @ v  # [H, L, D]
        attn = attn.transpose(0, 1).reshape(L, H * D)
        h = h + attn @ p[pre + "self_attn.o_proj.weight"].T
        x = rms_norm(h, p[pre + "post_attention_layernorm.weight"], cfg.rms_norm_eps)
        gate = x @ p[pre + "mlp.gate_proj.weight"].T
        up = x @ p[pre + "mlp.up_proj.weight"].T
        h = h + (torch.nn.functional.silu(gate) * up) @ p[pre + "mlp.down_proj.weight"].T
    h = rms_norm(h, p["model.norm.weight"], cfg.rms_norm_eps)
    return h @ p["lm_head.weight"].T


def token_logprobs(p, cfg, ids, temperature):
    """Log-prob and entropy of tokens 1..L-1 of one sequence at the temperature ([L-1] each)."""
    logits = forward(p, cfg, ids)[:-1] / temperature  # row t predicts token t+1
    labels = ids[1:]
    lse = torch.logsumexp(logits, dim=-1)
    logp = logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1) - lse
    entropy = lse - (torch.softmax(logits, dim=-1) * logits).sum(-1)
    return logp, entropy


def batch_logprobs(p, cfg, input_ids, attention_mask, rows, temperature):
    """[len(rows), width] log-probs / entropies aligned to token positions (position 0 and
    padding are 0), width = the longest sequence among the rows."""
    lengths = [int(attention_mask[r].sum()) for r in rows]
    width = max(lengths)
    logp = torch.zeros(len(rows), width, dtype=torch.float64)
    ent = torch.zeros(len(rows), width, dtype=torch.float64)
    out_lp, out_ent = [], []
    for j, r in enumerate(rows):
        lp, e = token_logprobs(p, cfg, input_ids[r, : lengths[j]], temperature)
        out_lp.append(torch.cat([torch.zeros(1, dtype=lp.dtype), lp, torch.zeros(width - lengths[j], dtype=lp.dtype)]))
        out_ent.append(torch.cat([torch.zeros(1, dtype=e.dtype), e, torch.zeros(width - lengths[j], dtype=e.dtype)]))
    return torch.stack(out_lp), torch.stack(out_ent), width


# ---------------------------------------------------------------------------------------
# verl's formulas
# ---------------------------------------------------------------------------------------


def masked_sum(values, mask):
    return (values * mask).sum()


def agg_loss_token_mean(loss_mat, loss_mask, batch_num_tokens, dp_size=1):
    return masked_sum(loss_mat, loss_mask) / batch_num_tokens * dp_size


def compute_policy_loss_vanilla(old_log_prob, log_prob, advantages, response_mask, batch_num_tokens,
                                clip_ratio_low, clip_ratio_high, clip_ratio_c):
    negative_approx_kl = torch.clamp(log_prob - old_log_prob, min=-20.0, max=20.0)
    ratio = torch.exp(negative_approx_kl)
    pg_losses1 = -advantages * ratio
    pg_losses2 = -advantages * torch.clamp(ratio, 1 - clip_ratio_low, 1 + clip_ratio_high)
    clip_pg_losses1 = torch.maximum(pg_losses1, pg_losses2)
    pg_losses3 = -advantages * clip_ratio_c
    clip_pg_losses2 = torch.min(pg_losses3, clip_pg_losses1)
    pg_losses = torch.where(advantages < 0, clip_pg_losses2, clip_pg_losses1)
    pg_loss = agg_loss_token_mean(pg_losses, response_mask, batch_num_tokens)
    counted = response_mask > 0
    stats = {
        "clip_tokens": float((torch.gt(pg_losses2, pg_losses1) & counted).sum()),
        "dual_clip_tokens": float((torch.gt(clip_pg_losses1, pg_losses3) & (advantages < 0) & counted).sum()),
    }
    return pg_loss, stats


def low_var_kl(logprob, ref_logprob):
    kl = torch.clamp(ref_logprob - logprob, min=-20, max=20)
    return torch.clamp(torch.exp(kl) - kl - 1, min=-10, max=10)


# ---------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------

SYMBOLS = list(" +-.0123456789=?\\bdeox{}")  # tests/support/tiny_policy.h's alphabet
SPECIAL = ["<|endoftext|>"]

# (prompt, response, reward, finished): two groups of three samples. Rows 0-3 and 4-5 form
# the two micro-batches; their widths (35 and 21 tokens) and token counts differ.
SAMPLES = [
    ("1+2=?", "3", 1.0, True),
    ("1+2=?", "1+2=3. \\boxed{3}", 1.1, True),
    ("1+2=?", "\\boxed{4}", 0.1, True),
    ("13-4+7=?", "13-4=9. 9+7=16. \\boxed{16}", 1.1, True),
    ("13-4+7=?", "\\boxed{15}", 0.1, True),
    ("13-4+7=?", "13-4=9. 9+7=1", 0.0, False),  # truncated: no end-of-text
]


def tokenizer_json():
    """What Hone's MakeCharLevelTokenizerJson(SYMBOLS, {"<|endoftext|>"}) writes."""
    vocab = OrderedDict()
    added = []
    for s in SPECIAL:
        added.append(OrderedDict([("id", len(vocab)), ("content", s), ("single_word", False), ("lstrip", False),
                                  ("rstrip", False), ("normalized", False), ("special", True)]))
        vocab[s] = len(vocab)
    for s in SYMBOLS:
        vocab[s] = len(vocab)
    root = OrderedDict([
        ("version", "1.0"), ("truncation", None), ("padding", None), ("added_tokens", added),
        ("normalizer", None),
        ("pre_tokenizer", OrderedDict([("type", "Split"), ("pattern", {"Regex": "[\\s\\S]"}),
                                       ("behavior", "Isolated"), ("invert", False)])),
        ("post_processor", None), ("decoder", {"type": "Fuse"}),
        ("model", OrderedDict([("type", "WordLevel"), ("vocab", vocab), ("unk_token", "")])),
    ])
    return json.dumps(root, indent=2, ensure_ascii=False), vocab


def model_config(vocab_size):
    # tests/support/tiny_policy.h's shape, in the config.json layout Hone writes.
    return OrderedDict([
        ("architectures", ["LlamaForCausalLM"]), ("model_type", "llama"), ("vocab_size", vocab_size),
        ("hidden_size", 32), ("intermediate_size", 64), ("num_hidden_layers", 2),
        ("num_attention_heads", 4), ("num_key_value_heads", 2), ("head_dim", 8),
        ("max_position_embeddings", 64), ("rms_norm_eps", 1e-6), ("rope_theta", 10000.0),
        ("tie_word_embeddings", False), ("hidden_act", "silu"), ("initializer_range", 0.02),
        ("torch_dtype", "float32"), ("attention_bias", False), ("eos_token_id", 0),
    ])


def param_shapes(cfg):
    d, f, H, K, D = cfg.hidden_size, cfg.intermediate_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    shapes = [("model.embed_tokens.weight", (cfg.vocab_size, d))]
    for i in range(cfg.num_layers):
        pre = f"model.layers.{i}."
        shapes += [(pre + "input_layernorm.weight", (d,)), (pre + "self_attn.q_proj.weight", (H * D, d)),
                   (pre + "self_attn.k_proj.weight", (K * D, d)), (pre + "self_attn.v_proj.weight", (K * D, d)),
                   (pre + "self_attn.o_proj.weight", (d, H * D)), (pre + "post_attention_layernorm.weight", (d,)),
                   (pre + "mlp.gate_proj.weight", (f, d)), (pre + "mlp.up_proj.weight", (f, d)),
                   (pre + "mlp.down_proj.weight", (d, f))]
    shapes += [("model.norm.weight", (d,)), ("lm_head.weight", (cfg.vocab_size, d))]
    return shapes


def grpo_advantages(rewards, groups, eps=1e-6):
    # verl's compute_grpo_outcome_advantage: (r - mean_g) / (std_g + eps), std unbiased.
    rewards = torch.tensor(rewards, dtype=torch.float64)
    out = torch.zeros_like(rewards)
    for g in sorted(set(groups)):
        idx = torch.tensor([i for i, x in enumerate(groups) if x == g])
        r = rewards[idx]
        out[idx] = (r - r.mean()) / (r.std() + eps)
    return out


def make_inputs(out_dir):
    gen = torch.Generator().manual_seed(SEED)
    model_dir = os.path.join(out_dir, "model")
    os.makedirs(model_dir, exist_ok=True)
    tok_text, vocab = tokenizer_json()
    config = model_config(len(vocab))
    cfg = Config(config)
    # Weights: normal(0, 0.1) (larger than initializer_range, so attention and the MLP are
    # far from uniform / linear), norm weights 1 + normal(0, 0.1) (a forward that ignored
    # them would show).
    params = []
    for name, shape in param_shapes(cfg):
        if name.endswith("norm.weight"):
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        else:
            t = 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        params.append((name, t.to(torch.float32).numpy()))
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        f.write(json.dumps(config, indent=2) + "\n")
    with open(os.path.join(model_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(tok_text)
    write_safetensors(os.path.join(model_dir, "model.safetensors"), params)

    # Trajectories: prompt + response (+ end-of-text), right-padded, as Hone's rollout lays
    # them out; response_mask marks the response tokens at their positions.
    seqs, resp_ranges = [], []
    for prompt, response, _, finished in SAMPLES:
        ids = [vocab[c] for c in prompt]
        start = len(ids)
        ids += [vocab[c] for c in response] + ([vocab["<|endoftext|>"]] if finished else [])
        seqs.append(ids)
        resp_ranges.append((start, len(ids)))
    N, T = len(seqs), max(len(s) for s in seqs)
    input_ids = torch.zeros(N, T, dtype=torch.int64)
    attention = torch.zeros(N, T, dtype=torch.bool)
    response_mask = torch.zeros(N, T, dtype=torch.float64)
    for i, s in enumerate(seqs):
        input_ids[i, : len(s)] = torch.tensor(s)
        attention[i, : len(s)] = True
        response_mask[i, resp_ranges[i][0]: resp_ranges[i][1]] = 1.0
    temperature = 0.75
    groups = [0 if p == SAMPLES[0][0] else 1 for p, _, _, _ in SAMPLES]
    adv = grpo_advantages([r for _, _, r, _ in SAMPLES], groups)
    advantages = adv.unsqueeze(1) * response_mask

    p64 = {name: torch.from_numpy(arr).to(torch.float64) for name, arr in params}
    with torch.no_grad():
        current, _, _ = batch_logprobs(p64, cfg, input_ids, attention, list(range(N)), temperature)
    current = torch.nn.functional.pad(current, (0, T - current.shape[1]))
    # old log-probs a little off the current policy, so that ratio, clip-higher and the
    # dual clip all act; one token of a negative-advantage row gets ratio e^1.5 > 3.
    old = current + 0.25 * torch.randn(N, T, generator=gen, dtype=torch.float64)
    neg_row = int(torch.nonzero(adv < 0)[0])
    old[neg_row, resp_ranges[neg_row][0]] = current[neg_row, resp_ranges[neg_row][0]] - 1.5
    # Reference log-probs. The trainer's reference is the initial model, which equals the
    # policy before this first update, so its log-probs would equal the current ones and
    # k3's gradient (1 - exp(ref - logp)) would vanish. Here they are moved off by a fixed
    # perturbation, as if the policy had already drifted, so the KL term has a gradient.
    ref = current + 0.3 * torch.randn(N, T, generator=gen, dtype=torch.float64)
    old, ref = old * response_mask, ref * response_mask
    write_safetensors(os.path.join(out_dir, "trajectories.safetensors"), [
        ("input_ids", input_ids.numpy()),
        ("attention_mask", attention.numpy()),
        ("response_mask", response_mask.to(torch.float32).numpy()),
        ("advantages", advantages.to(torch.float32).numpy()),
        ("old_logprobs", old.to(torch.float32).numpy()),
        ("ref_logprobs", ref.to(torch.float32).numpy()),
        ("temperature", np.array(temperature, dtype="<f8")),
    ])


# ---------------------------------------------------------------------------------------
# The update
# ---------------------------------------------------------------------------------------


def update(fixture_dir, per_micro_batch_mean=False):
    """One mini-batch (all rows), micro-batches of OPTIONS["micro_batch_size"] rows.

    per_micro_batch_mean=True is a deliberately wrong variant (old verl: each micro-batch's
    own token mean / number of micro-batches), for checking that the fixture catches it."""
    model_dir = os.path.join(fixture_dir, "model")
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = Config(json.load(f))
    weights = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    traj = read_safetensors(os.path.join(fixture_dir, "trajectories.safetensors"))
    o = OPTIONS
    params = OrderedDict((name, torch.tensor(arr, dtype=torch.float64, requires_grad=True))
                         for name, arr in weights.items())
    input_ids = torch.from_numpy(traj["input_ids"])
    attention = torch.from_numpy(traj["attention_mask"])
    f64 = {k: torch.from_numpy(traj[k]).to(torch.float64)
           for k in ("response_mask", "advantages", "old_logprobs", "ref_logprobs")}
    temperature = float(traj["temperature"])
    N = input_ids.shape[0]
    mask = f64["response_mask"]
    batch_num_tokens = float(mask.sum())  # the mini-batch's tokens (dp_size = 1)
    micro_starts = list(range(0, N, o["micro_batch_size"]))

    sums = {"policy_loss": 0.0, "kl": 0.0, "entropy": 0.0, "clip_tokens": 0.0, "dual_clip_tokens": 0.0}
    for start in micro_starts:
        rows = list(range(start, min(N, start + o["micro_batch_size"])))
        logp, entropy, width = batch_logprobs(params, cfg, input_ids, attention, rows, temperature)
        cut = lambda t: t[rows[0]: rows[-1] + 1, :width]  # noqa: E731
        m = cut(mask)
        denom = float(m.sum()) * len(micro_starts) if per_micro_batch_mean else batch_num_tokens
        pg_loss, stats = compute_policy_loss_vanilla(cut(f64["old_logprobs"]), logp, cut(f64["advantages"]), m,
                                                     denom, o["clip_ratio_low"], o["clip_ratio_high"],
                                                     o["clip_ratio_c"])
        entropy_loss = agg_loss_token_mean(entropy, m, denom)
        kl_loss = agg_loss_token_mean(low_var_kl(logp, cut(f64["ref_logprobs"])), m, denom)
        loss = pg_loss - o["entropy_coef"] * entropy_loss + o["kl_coef"] * kl_loss
        loss.backward()
        sums["policy_loss"] += float(pg_loss)
        sums["kl"] += float(kl_loss)
        sums["entropy"] += float(entropy_loss)
        sums["clip_tokens"] += stats["clip_tokens"]
        sums["dual_clip_tokens"] += stats["dual_clip_tokens"]

    plist = list(params.values())
    grad_norm = float(torch.nn.utils.clip_grad_norm_(plist, o["grad_clip"]))
    optimizer = torch.optim.AdamW(plist, lr=o["lr"], betas=o["betas"], eps=o["eps"],
                                  weight_decay=o["weight_decay"])
    optimizer.step()

    metrics = OrderedDict([
        ("grad_norm", grad_norm),
        ("policy_loss", sums["policy_loss"]),
        ("kl", sums["kl"]),
        ("entropy", sums["entropy"]),
        ("clip_fraction", sums["clip_tokens"] / batch_num_tokens),
        ("dual_clip_fraction", sums["dual_clip_tokens"] / batch_num_tokens),
    ])
    updated = [(name, p.detach().to(torch.float32).numpy()) for name, p in params.items()]
    return updated, metrics, weights


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["inputs", "update", "all"])
    parser.add_argument("dir", nargs="?", default="tests/fixtures/grpo_reference")
    parser.add_argument("--per-micro-batch-mean", action="store_true",
                        help="deliberately wrong aggregation; prints its distance to expected_params "
                             "instead of writing files")
    args = parser.parse_intermixed_args()
    torch.set_num_threads(1)
    if args.command in ("inputs", "all"):
        make_inputs(args.dir)
    if args.command in ("update", "all"):
        updated, metrics, initial = update(args.dir, args.per_micro_batch_mean)
        if args.per_micro_batch_mean:
            expected = read_safetensors(os.path.join(args.dir, "expected_params.safetensors"))
            diff = max(float(np.abs(arr - expected[name]).max()) for name, arr in updated)
            print(f"per-micro-batch mean: max |param - expected| = {diff:.3e}")
            return
        write_safetensors(os.path.join(args.dir, "expected_params.safetensors"), updated)
        write_safetensors(os.path.join(args.dir, "expected_metrics.safetensors"),
                          [(k, np.array(v, dtype="<f8")) for k, v in metrics.items()])
        moved = max(float(np.abs(arr - initial[name]).max()) for name, arr in updated)
        for k, v in metrics.items():
            print(f"{k} = {v:.10g}")
        print(f"max |update| = {moved:.3e}")


if __name__ == "__main__":
    main()
