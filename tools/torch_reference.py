#!/usr/bin/python3
"""PyTorch reference of geneinr's conditional INR, written from the layout that
include/geneinr/model.h documents (not from model.c), to cross-check the C
forward and backward passes.

usage: torch_reference.py CASE.h5
CASE.h5 (written by tests/test_torch.c) holds the model spec as attributes,
/params and /fixed (the C buffers), a batch (/xyz, /donor, /label, /gene),
/weights w, and the C results: /out and /grads = d(sum(out * w))/d params.
Prints the largest relative differences and exits 0 when they are within
float tolerance, 1 otherwise.
"""
import sys

import h5py
import numpy as np
import torch

torch.set_default_dtype(torch.float64)  # the reference runs in double


def main(path):
    f = h5py.File(path, "r")
    a = {k: int(v) if float(v).is_integer() else float(v) for k, v in f.attrs.items()}
    params = torch.tensor(f["params"][()].astype(np.float64), requires_grad=True)
    fixed = torch.tensor(f["fixed"][()].astype(np.float64))
    xyz = torch.tensor(f["xyz"][()].astype(np.float64))
    donor = f["donor"][()]
    label = f["label"][()]
    gene = f["gene"][()]
    in_avg = f["donor_in_average"][()].astype(bool)
    w = torch.tensor(f["weights"][()].astype(np.float64))
    siren, factorized = a["arch"] == 0, a["gene_mode"] == 1
    spectral = not factorized and a["gene_code"] == 1
    G, W, L = a["n_genes"], a["width"], a["hidden_layers"]
    F = a["fourier_features"]
    n = xyz.shape[0]

    # input columns: coords, donor, anatomy, gene (model.h)
    if siren:
        cols = [xyz]
    else:
        B = fixed[: 3 * F].reshape(F, 3)
        ang = 2 * np.pi * xyz @ B.T
        cols = [torch.sin(ang), torch.cos(ang)]
    in_dim = sum(c.shape[1] for c in cols)
    dd, ad = a["donor_dim"], (a["anatomy_dim"] if a["n_labels"] > 0 else 0)
    gd = 0 if factorized else (2 * a["gene_frequencies"] if spectral else a["gene_dim"])
    in_dim += dd + ad + gd

    # parameter buffer: per layer W (out x in), b; then donor, anatomy, gene embeddings
    off = 0
    layers = []
    for l in range(L + 1):
        fan_in = in_dim if l == 0 else W
        fan_out = (G if factorized else 1) if l == L else W
        Wl = params[off: off + fan_in * fan_out].reshape(fan_out, fan_in)
        off += fan_in * fan_out
        bl = params[off: off + fan_out]
        off += fan_out
        layers.append((Wl, bl))
    Ed = params[off: off + a["n_donors"] * dd].reshape(a["n_donors"], dd)
    off += a["n_donors"] * dd
    Ea = params[off: off + a["n_labels"] * ad].reshape(a["n_labels"], ad) if ad else None
    off += a["n_labels"] * ad
    Eg = None
    if not factorized and not spectral:
        Eg = params[off: off + G * gd].reshape(G, gd)
        off += G * gd
    assert off == params.shape[0], (off, params.shape)

    if dd:
        # the donor average takes no gradient (model.h: used for rendering and
        # held-out donors only, never trained through)
        mean = Ed[torch.tensor(np.nonzero(in_avg)[0])].mean(0).detach()
        rows = [Ed[d] if d >= 0 else mean for d in donor]
        cols.append(torch.stack(rows))
    if ad:
        cols.append(Ea[torch.tensor(label.astype(np.int64))])
    if gd:
        if spectral:
            codes = fixed[3 * F if not siren else 0:].reshape(G, gd)
            cols.append(codes[torch.tensor(gene.astype(np.int64))])
        else:
            cols.append(Eg[torch.tensor(gene.astype(np.int64))])
    x = torch.cat(cols, 1)
    for l, (Wl, bl) in enumerate(layers):
        z = x @ Wl.T + bl
        if l == L:
            x = z
        elif siren:
            x = torch.sin((a["omega0"] if l == 0 else a["omega_hidden"]) * z)
        else:
            x = torch.relu(z)
    out = x
    (out * w).sum().backward()

    c_out = f["out"][()].astype(np.float64)
    c_grads = f["grads"][()].astype(np.float64)
    t_out = out.detach().numpy()
    t_grads = params.grad.numpy()
    e_out = np.max(np.abs(c_out - t_out)) / max(1e-12, np.max(np.abs(t_out)))
    e_grad = np.max(np.abs(c_grads - t_grads)) / max(1e-12, np.max(np.abs(t_grads)))
    print("%s: n=%d, max rel. difference: output %.2e, gradient %.2e" % (path, n, e_out, e_grad))
    return 0 if e_out < 1e-5 and e_grad < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
