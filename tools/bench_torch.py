#!/usr/bin/python3
"""PyTorch twins of the two training benchmarks of tools/bench.sh (make bench):
the same layer shapes, batch sizes, losses and optimizers as geneinr's runs,
on data of the same size (coordinates, donors, labels and values are random:
speed does not depend on the values). One training step = zero_grad, forward,
masked-free MSE, backward, optimizer step, as a PyTorch user would write it.

usage: bench_torch.py atlas|atlas_split|atlas_recompute|atlas_batch|atlas_batch_split|paper STEPS [N_LABELS]
Prints one line: "torch MODEL: MEDIAN ms/step (STEPS steps, T threads)".

"atlas" is the twin as a PyTorch user would write it: the Fourier features of
the fixed training points are computed once, before training, as geneinr does
(the points never move; only the weights after them are trained), and joined
to the embeddings with torch.cat. "atlas_recompute"
computes them in every forward pass, as a first PyTorch version would; it is
reported as a second row, not used for the ratio.

"atlas_split" is "atlas" with the first layer's matmul split in two: the 512
fixed Fourier columns (no gradient wanted) and the 12 embedding columns.
With torch.cat, autograd must propagate the input gradient through all 524
columns (a 3,702 x 256 x 524 GEMM, ~1 GFLOP per step) only to slice off the
12 it needs; geneinr computes just those 12. The split twin does the same
work as geneinr (the same function and the same parameters: W = [W_f | W_e]),
so the atlas ratio is taken against the faster of the two. The paper twin
needs no such split: its input (xyz and the fixed gene codes) wants no
gradient, so autograd already skips the first layer's input gradient, as
geneinr does.

"atlas_batch" and "atlas_batch_split" are "atlas" and "atlas_split" as
configs/atlas.yaml trains them (train.batch_size: 512): each step draws a
fresh mini-batch of 512 of the 3,702 samples with replacement (torch.randint),
as geneinr does (train.c: 512 independent draws of a (seed, step) generator),
and indexes the cached features, donors, labels and targets with it.

The OpenMP wait policy matters for PyTorch at 2 threads on a 2-core machine:
tools/bench_train.sh runs every twin with the default (active spinning) and
with OMP_WAIT_POLICY=PASSIVE and compares geneinr with the faster of the two.
"""
import math
import sys
import time

import torch

torch.set_num_threads(2)
torch.manual_seed(0)


class Atlas(torch.nn.Module):
    """configs/atlas.yaml: 256 Fourier features (scale 0.35), donor 8, anatomy 4,
    3 x 256 ReLU, factorized readout of 100 genes."""

    def __init__(self, n_labels, F=256, G=100, donors=6):
        super().__init__()
        self.register_buffer("B", torch.randn(F, 3) * 0.35)
        self.donor = torch.nn.Embedding(donors, 8)
        self.anat = torch.nn.Embedding(n_labels, 4)
        w = 256
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(2 * F + 8 + 4, w), torch.nn.ReLU(),
            torch.nn.Linear(w, w), torch.nn.ReLU(),
            torch.nn.Linear(w, w), torch.nn.ReLU(),
            torch.nn.Linear(w, G))

    def split(self):
        """First layer as [feature columns | embedding columns]: the same
        parameters, so that no input gradient flows into the fixed features."""
        lin = self.mlp[0]
        F2 = lin.in_features - (8 + 4)  # donor 8 + anatomy 4
        self.lin_f = torch.nn.Linear(F2, lin.out_features)
        self.lin_e = torch.nn.Linear(8 + 4, lin.out_features, bias=False)
        with torch.no_grad():
            self.lin_f.weight.copy_(lin.weight[:, :F2])
            self.lin_f.bias.copy_(lin.bias)
            self.lin_e.weight.copy_(lin.weight[:, F2:])
        self.rest = self.mlp[1:]
        del self.mlp
        return self

    def features(self, xyz):
        a = 2 * math.pi * xyz @ self.B.T
        return torch.cat([torch.sin(a), torch.cos(a)], 1)

    def forward(self, xyz, donor, label, feats=None):
        f = self.features(xyz) if feats is None else feats
        e = torch.cat([self.donor(donor), self.anat(label)], 1)
        if hasattr(self, "lin_f"):
            return self.rest(self.lin_f(f) + self.lin_e(e))
        return self.mlp(torch.cat([f, e], 1))


class Sine(torch.nn.Module):
    def __init__(self, fan_in, fan_out, omega):
        super().__init__()
        self.lin = torch.nn.Linear(fan_in, fan_out)
        self.omega = omega

    def forward(self, x):
        return torch.sin(self.omega * self.lin(x))


class Paper(torch.nn.Module):
    """arXiv 2506.11158: conditional SIREN, xyz + 11-frequency spectral gene
    code (22 values) -> 6 x 512 sine (omega 30) -> 1."""

    def __init__(self, G=100, freqs=11, width=512, layers=6):
        super().__init__()
        t = torch.linspace(0, 1, G)[:, None] * (2.0 ** torch.arange(freqs))[None, :] * math.pi
        self.register_buffer("codes", torch.cat([torch.sin(t), torch.cos(t)], 1))
        dims = [3 + 2 * freqs] + [width] * layers
        self.net = torch.nn.Sequential(*[Sine(dims[i], dims[i + 1], 30.0) for i in range(layers)],
                                       torch.nn.Linear(width, 1))

    def forward(self, xyz, gene):
        return self.net(torch.cat([xyz, self.codes[gene]], 1))[:, 0]


def main():
    which, steps = sys.argv[1], int(sys.argv[2])
    n_labels = int(sys.argv[3]) if len(sys.argv) > 3 else 14
    n, G = 3702, 100
    xyz = torch.rand(n, 3) * 2 - 1
    donor = torch.randint(0, 6, (n,))
    label = torch.randint(0, n_labels, (n,))
    y = torch.randn(n, G)
    if which in ("atlas_batch", "atlas_batch_split"):
        net = Atlas(n_labels)
        if which == "atlas_batch_split":
            net.split()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1.0)
        feats = net.features(xyz).detach()
        batch = 512  # configs/atlas.yaml train.batch_size

        def step():
            # a fresh random mini-batch of samples, with replacement, as geneinr draws
            s = torch.randint(0, n, (batch,))
            opt.zero_grad()
            loss = ((net(None, donor[s], label[s], feats[s]) - y[s]) ** 2).mean()
            loss.backward()
            opt.step()
    elif which in ("atlas", "atlas_split", "atlas_recompute"):
        net = Atlas(n_labels)
        if which == "atlas_split":
            net.split()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1.0)
        # the fixed points' features, once (no gradient flows into them)
        feats = net.features(xyz).detach() if which != "atlas_recompute" else None

        def step():
            opt.zero_grad()
            loss = ((net(xyz, donor, label, feats) - y) ** 2).mean()
            loss.backward()
            opt.step()
    else:
        net = Paper()
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        batch = 16384

        def step():
            # a fresh random mini-batch of (sample, gene) pairs, as geneinr draws
            s = torch.randint(0, n, (batch,))
            g = torch.randint(0, G, (batch,))
            opt.zero_grad()
            loss = ((net(xyz[s], g) - y[s, g]) ** 2).mean()
            loss.backward()
            opt.step()
    step()  # warm-up: first-call allocations
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    print("torch %s: %.1f ms/step (%d steps, %d threads)" % (which, 1e3 * times[len(times) // 2], steps,
                                                            torch.get_num_threads()))


if __name__ == "__main__":
    main()
