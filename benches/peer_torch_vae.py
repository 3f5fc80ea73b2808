#!/usr/bin/env python3
"""Seconds per training epoch of the paper's VAE: collapse (candle, CPU)
against the same architecture in PyTorch on CPU, in one run (BENCHMARKS.md).

    cargo build --release --examples
    python3 benches/peer_torch_vae.py            # needs torch (pip install torch)

Same data (the committed 10k MNIST digits, first N), same batch size (256),
same architecture: encoder conv 1->64->128 (4x4, stride 2, padding 1),
linear to mu/logvar (latent 20); decoder linear, transposed convs 128->64->1;
loss BCE(sum) + KL; Adam lr 1e-3, weight decay 1e-5. ARCH=mlp times the
784-400-20 variant. EPOCHS (default 3) epochs each; the median is reported.
"""
import gzip, json, os, statistics, subprocess, sys, time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
IMAGES = os.path.join(ROOT, "datasets", "mnist-10k", "images-idx3-ubyte.gz")
N = int(os.environ.get("N", "10000"))
EPOCHS = int(os.environ.get("EPOCHS", "3"))
ARCH = os.environ.get("ARCH", "conv")
BATCH = 256


class ConvVAE(nn.Module):
    def __init__(self, latent=20):
        super().__init__()
        self.c1 = nn.Conv2d(1, 64, 4, 2, 1)
        self.c2 = nn.Conv2d(64, 128, 4, 2, 1)
        self.mu = nn.Linear(128 * 7 * 7, latent)
        self.logvar = nn.Linear(128 * 7 * 7, latent)
        self.fc = nn.Linear(latent, 128 * 7 * 7)
        self.u1 = nn.ConvTranspose2d(128, 64, 4, 2, 1)
        self.u2 = nn.ConvTranspose2d(64, 1, 4, 2, 1)

    def forward(self, x):
        h = F.relu(self.c2(F.relu(self.c1(x.view(-1, 1, 28, 28))))).flatten(1)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        h = F.relu(self.fc(z)).view(-1, 128, 7, 7)
        return self.u2(F.relu(self.u1(h))).flatten(1), mu, logvar


class MlpVAE(nn.Module):
    def __init__(self, latent=20):
        super().__init__()
        self.fc1, self.mu, self.logvar = nn.Linear(784, 400), nn.Linear(400, latent), nn.Linear(400, latent)
        self.fc3, self.fc4 = nn.Linear(latent, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.fc4(F.relu(self.fc3(z))), mu, logvar


def torch_epochs(x):
    torch.manual_seed(0)
    model = ConvVAE() if ARCH == "conv" else MlpVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    times = []
    for _ in range(EPOCHS):
        t = time.perf_counter()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), BATCH):
            b = x[perm[i:i + BATCH]]
            logits, mu, logvar = model(b)
            loss = F.binary_cross_entropy_with_logits(logits, b, reduction="sum") \
                - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t)
    return times


def main():
    with gzip.open(IMAGES) as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 784)[:N]
    x = torch.tensor(raw, dtype=torch.float32) / 255.0
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cores {os.cpu_count()}, N {N}, arch {ARCH}")
    theirs = torch_epochs(x)
    ours = json.loads(subprocess.run(
        [os.path.join(TARGET, "release", "examples", "vae_epoch"), IMAGES, str(N), ARCH, str(EPOCHS), str(BATCH)],
        check=True, capture_output=True, text=True).stdout)
    t, o = statistics.median(theirs), statistics.median(ours["epoch_s"])
    print(json.dumps({"arch": ARCH, "images": N, "batch": BATCH,
                      "pytorch_epoch_s": [round(v, 2) for v in theirs],
                      "collapse_epoch_s": [round(v, 2) for v in ours["epoch_s"]],
                      "ratio_pytorch_over_collapse": round(t / o, 2)}))


if __name__ == "__main__":
    sys.exit(main())
