#!/usr/bin/env python3
"""Training and generation tokens per second of the text transformer:
collapse (candle, CPU) against the same architecture in PyTorch on CPU, in
one run (BENCHMARKS.md).

    cargo build --release --examples
    python3 benches/peer_torch_transformer.py     # needs torch (pip install torch)

Same architecture (GPT-2 layout: token + learned position embeddings,
pre-norm blocks of causal multi-head attention and a 4x GELU(tanh) MLP,
final layer norm, output tied to the token embedding), same sizes, same
batch of windows, AdamW (lr 1e-3, weight decay 0.01) with global-norm
clipping at 1.0, one epoch over the same number of uniform random tokens.
Generation: batches of 64 rows, KV cache, plain sampling (temperature 1),
rows of CONTEXT-1 tokens. Sizes from the environment: LAYERS HEADS DMODEL
CONTEXT BATCH VOCAB TRAIN_TOKENS GEN_ROWS.
"""
import json, math, os, subprocess, time

import torch
from torch import nn
from torch.nn import functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
E = lambda k, d: int(os.environ.get(k, d))
LAYERS, HEADS, DMODEL, CONTEXT = E("LAYERS", 4), E("HEADS", 4), E("DMODEL", 256), E("CONTEXT", 128)
BATCH, VOCAB, TRAIN_TOKENS, GEN_ROWS = E("BATCH", 32), E("VOCAB", 4096), E("TRAIN_TOKENS", 200000), E("GEN_ROWS", 128)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(DMODEL), nn.LayerNorm(DMODEL)
        self.qkv, self.proj = nn.Linear(DMODEL, 3 * DMODEL), nn.Linear(DMODEL, DMODEL)
        self.fc, self.fc2 = nn.Linear(DMODEL, 4 * DMODEL), nn.Linear(4 * DMODEL, DMODEL)

    def attn(self, x, cache):
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(b, t, HEADS, d // HEADS).transpose(1, 2) for z in (q, k, v))
        if cache is not None:
            if cache:
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            cache[:] = [k, v]
        att = q @ k.transpose(-2, -1) / math.sqrt(d // HEADS)
        if t > 1:
            past = k.shape[2] - t
            mask = torch.ones(t, past + t, dtype=torch.bool).tril(past)
            att = att.masked_fill(~mask, float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, d))

    def forward(self, x, cache=None):
        x = x + self.attn(self.ln1(x), cache)
        return x + self.fc2(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, DMODEL), nn.Embedding(CONTEXT, DMODEL)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.lnf = nn.LayerNorm(DMODEL)
        # collapse's initialisation: N(0, 0.02) weights, the residual
        # projections scaled by 1/sqrt(2 layers), zero biases.
        for name, p in self.named_parameters():
            if name.endswith("bias") or ".ln" in name or name.startswith("lnf"):
                continue
            std = 0.02 / math.sqrt(2 * LAYERS) if name.endswith(("proj.weight", "fc2.weight")) else 0.02
            nn.init.normal_(p, 0.0, std)
        for b in self.blocks:
            for lin in (b.qkv, b.proj, b.fc, b.fc2):
                nn.init.zeros_(lin.bias)

    def forward(self, ids, pos0=0, caches=None):
        t = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(pos0, pos0 + t))
        for i, b in enumerate(self.blocks):
            x = b(x, None if caches is None else caches[i])
        return self.lnf(x) @ self.wte.weight.t()


def torch_run():
    torch.manual_seed(0)
    vocab = VOCAB + 2
    rows = torch.randint(0, VOCAB, (TRAIN_TOKENS // 30, 30))
    stream = torch.cat([torch.full((rows.shape[0], 1), VOCAB), rows, torch.full((rows.shape[0], 1), VOCAB + 1)], 1).flatten()
    n = (stream.numel() - 1) // CONTEXT
    model = Gpt(vocab)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    order = torch.randperm(n)
    t0 = time.perf_counter()
    losses = []
    for i in range(0, n, BATCH):
        idx = order[i:i + BATCH] * CONTEXT
        x = torch.stack([stream[j:j + CONTEXT] for j in idx])
        y = torch.stack([stream[j + 1:j + CONTEXT + 1] for j in idx])
        loss = F.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    train_s = time.perf_counter() - t0
    model.eval()
    generated = 0
    t0 = time.perf_counter()
    with torch.no_grad():
        left = GEN_ROWS
        while left > 0:
            b = min(64, left)
            caches = [[] for _ in range(LAYERS)]
            nxt = torch.full((b, 1), VOCAB)
            done = torch.zeros(b, dtype=torch.bool)
            for pos in range(CONTEXT - 1):
                logits = model(nxt, pos, caches)[:, -1]
                logits[:, VOCAB] = float("-inf")
                nxt = torch.multinomial(F.softmax(logits, -1), 1)
                generated += int((~done).sum())
                done |= nxt[:, 0] == VOCAB + 1
                if bool(done.all()):
                    break
            left -= b
    gen_s = time.perf_counter() - t0
    return {"train_tokens": n * CONTEXT, "train_s": train_s, "train_tok_per_s": n * CONTEXT / train_s,
            "gen_tokens": generated, "gen_s": gen_s, "gen_tok_per_s": generated / gen_s, "loss": sum(losses[-5:]) / 5,
            "threads": torch.get_num_threads()}


def collapse_run():
    exe = os.path.join(TARGET, "release", "examples", "transformer_speed")
    args = [LAYERS, HEADS, DMODEL, CONTEXT, BATCH, VOCAB, TRAIN_TOKENS, GEN_ROWS]
    out = subprocess.run([exe] + [str(a) for a in args], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


if __name__ == "__main__":
    sizes = dict(layers=LAYERS, heads=HEADS, d_model=DMODEL, context=CONTEXT, batch=BATCH, vocab=VOCAB)
    c = collapse_run()
    t = torch_run()
    print(json.dumps({"sizes": sizes, "collapse": c, "torch": t,
                      "train_ratio_collapse_over_torch": c["train_tok_per_s"] / t["train_tok_per_s"],
                      "gen_ratio_collapse_over_torch": c["gen_tok_per_s"] / t["gen_tok_per_s"]}, indent=1))
