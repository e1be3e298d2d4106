# atlas_diff.py EXACT.h5 OTHER.h5 [SAMPLES.csv]: per gene, the max and RMS of |OTHER - EXACT| over
# the mask (/expression, and /uncertainty relative to EXACT's when both have it), summarised over
# the genes (median and largest), in map units, relative to the gene's sample SD (with SAMPLES)
# and to its spatial SD in EXACT; the largest difference within 2 mm of a sample and beyond
# (/distance). Prints whether the datasets are byte-identical.
import sys, csv, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
m = a["mask"][()] > 0
dist = a["distance"][()][m] if "distance" in a else None
genes = list(a["genes"].asstr()[()])
ssd = None
if len(sys.argv) > 3:
    rows = list(csv.reader(open(sys.argv[3])))
    col = {n: i for i, n in enumerate(rows[0])}
    ssd = [np.std([float(r[col[g]]) for r in rows[1:] if r[col[g]] != ""]) for g in genes]
f = lambda v: "median %.3g, max %.3g" % (np.median(v), np.max(v))
for ds in ["expression", "uncertainty"]:
    if ds not in a or ds not in b:
        continue
    mx, rms, rs, rx, near, far, ident = [], [], [], [], [], [], True
    for g in range(len(genes)):
        x, y = a[ds][g], b[ds][g]
        ident &= x.tobytes() == y.tobytes()
        x, y = x[m].astype(np.float64), y[m].astype(np.float64)
        d = np.abs(y - x) if ds == "expression" else np.abs(y - x) / x
        mx.append(d.max()); rms.append(np.sqrt((d * d).mean()))
        if ds == "expression":
            rx.append(d.max() / x.std())
            if ssd: rs.append((d.max() / ssd[g], rms[-1] / ssd[g]))
        if dist is not None:
            near.append(d[dist <= 2].max()); far.append(d[dist > 2].max())
    print("/%s: %d genes x %d voxels; byte-identical: %s" % (ds, len(genes), m.sum(), ident))
    unit = "map units" if ds == "expression" else "relative to the exact SD"
    print("   per gene, max |diff| (%s): %s; RMS: %s" % (unit, f(mx), f(rms)))
    if rs:
        print("   relative to the gene's sample SD: max %s; RMS %s" % (f([r[0] for r in rs]), f([r[1] for r in rs])))
    if rx:
        print("   max |diff| / the gene's spatial SD in the exact atlas: %s" % f(rx))
    if near:
        print("   max |diff| within 2 mm of a sample: %s; beyond 2 mm: %s" % (f(near), f(far)))
