#!/bin/bash
# it_extend.sh - `geneinr extend CONFIG --checkpoint FILE` (issue 29, item 1): genes the model was
# not trained on, as ridge readout rows of its frozen trunk. On a small phantom (anatomy and donor
# embeddings), a model trained on 4 of 6 genes:
#   - extend at 1 and 2 ranks writes byte-identical checkpoints and reports;
#   - the old genes' parameters, moments, names and normalisation keep their bits; the new genes
#     follow, in table order; OUT/genes.txt and OUT/config.yaml (data.genes = genes.txt) go with it;
#   - the extended checkpoint renders every gene (OUT/config.yaml), the old genes' maps equal the
#     original atlas's within float rounding, and training resumes from it;
#   - trained genes fitted again as new (copies under other names) give maps close to the trained
#     rows' (the rows differ: training's are AdamW + weight decay + early stopping jointly with the
#     trunk, not the ridge minimiser; test_extend.c checks the ridge's exact property);
#   - with data.prior the new genes get the training-time prior, and a table without the trained
#     genes is refused; concat models, nothing new, an existing OUT/checkpoint.h5 without --force,
#     the checkpoint's own folder as --out and another split are refused cleanly.
. "$(dirname "$0")/lib.sh" extend
MPIRUN="timeout 300 mpirun --oversubscribe"

check "phantom (2 mm grid, 6 genes)" $G phantom --out "$T/ph" --grid 2 --genes 6 --seed 3
check "a 4-slice mask" $PY "$(dirname "$0")/atlas_check.py" slab "$T/ph/mask.nii.gz" "$T/slab.nii.gz"
printf 'G01\nG02\nG03\nG04\n' > "$T/old.txt"
cfg() { # cfg FILE DATA-LINE EXTRA-YAML...
    local f=$1 dline=$2; shift 2
    cat > "$f" <<YAML
data:
  samples: $T/ph/samples.csv
  anatomy: $T/ph/anatomy.nii.gz
  genes: $T/old.txt
  $dline
model: {arch: fourier, fourier_features: 16, fourier_scale: 0.5, width: 32, hidden_layers: 2, donor_dim: 2,
        anatomy_dim: 2}
train: {steps: 60, schedule: constant, val_every: 10, seed: 7, val_average: true}
render: {mask: $T/slab.nii.gz, preview_genes: 0, report: false}
YAML
    for extra in "$@"; do echo "$extra" >> "$f"; done
}
cfg "$T/cfg.yaml" ""
check "train and render 4 genes" $G run "$T/cfg.yaml" --out "$T/run"
check "extend to the table's 6 genes (1 rank)" $G extend "$T/cfg.yaml" --set data.genes= --checkpoint "$T/run/checkpoint.h5" \
    --out "$T/e1"
check "extend (2 ranks)" $MPIRUN -np 2 $G extend "$T/cfg.yaml" --set data.genes= --checkpoint "$T/run/checkpoint.h5" \
    --out "$T/e2"
check "1 and 2 ranks: the same checkpoint bytes" cmp "$T/e1/checkpoint.h5" "$T/e2/checkpoint.h5"
check "1 and 2 ranks: the same extend.csv" cmp "$T/e1/extend.csv" "$T/e2/extend.csv"
check "genes.txt: old genes, then the new ones" test "$(tr '\n' ' ' < "$T/e1/genes.txt")" = "G01 G02 G03 G04 G05 G06 "
check "config.yaml reads the table through genes.txt" grep -q "genes: \"$T/e1/genes.txt\"" "$T/e1/config.yaml"

check "old genes keep their bits in the checkpoint" $PY - "$T/run/checkpoint.h5" "$T/e1/checkpoint.h5" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
W, L, F = int(a.attrs["width"]), int(a.attrs["hidden_layers"]), int(a.attrs["fourier_features"])
ind = 2 * F + int(a.attrs["donor_dim"]) + int(a.attrs["anatomy_dim"])
G, K = int(a.attrs["n_genes"]), int(b.attrs["n_genes"]) - int(a.attrs["n_genes"])
assert K == 2 and list(b["genes"].asstr()[()]) == list(a["genes"].asstr()[()]) + ["G05", "G06"]
hidden = ind * W + W + (L - 1) * (W * W + W)
for name in ["params", "best_params", "adam_m", "adam_v"]:
    x, y = a[name][()], b[name][()]
    assert x.tobytes()[:4 * hidden] == y.tobytes()[:4 * hidden], name + ": hidden layers"
    assert np.array_equal(x[hidden:hidden + G * W], y[hidden:hidden + G * W]), name + ": old rows"
    o = hidden + G * W
    assert np.array_equal(x[o:o + G], y[o + K * W:o + K * W + G]), name + ": old biases"
    assert np.array_equal(x[o + G:], y[o + K * W + G + K:]), name + ": embeddings"
    new = y[o:o + K * W]
    assert (new == 0).all() == name.startswith("adam"), name + ": new rows"
for name in ["gene_mean", "gene_std"]:
    assert np.array_equal(a[name][()], b[name][()][:G]), name
assert np.array_equal(a["fixed"][()], b["fixed"][()]) and np.array_equal(a["donor_in_average"][()], b["donor_in_average"][()])
assert int(a.attrs["step"]) == int(b.attrs["step"]) and int(a.attrs["seed"]) == int(b.attrs["seed"])
PY

check "render the extended checkpoint (OUT/config.yaml)" $G render "$T/e1/config.yaml"
check "old genes' maps equal the original atlas's, new genes mapped" $PY - "$T/run/atlas.h5" "$T/e1/atlas.h5" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
ea, eb, m = a["expression"][()], b["expression"][()], a["mask"][()] > 0
assert list(b["genes"].asstr()[()]) == ["G01", "G02", "G03", "G04", "G05", "G06"]
d = np.abs(ea - eb[:4])[:, m].max()
scale = np.abs(ea[:, m]).max()
print("old genes: largest difference %.3g (largest value %.3g); bit-identical: %s" % (d, scale, d == 0))
assert d <= 1e-6 * scale
assert np.isfinite(eb[4:, m]).all() and eb[4:, m].std() > 0
PY
check "train --resume on the extended checkpoint" $G train "$T/e1/config.yaml" --resume --set train.steps=80

# Trained genes fitted as new ones: copies of G01..G04 under other names.
$PY - "$T/ph/samples.csv" "$T/copies.csv" <<'PY'
import sys, csv
rows = list(csv.reader(open(sys.argv[1])))
h = rows[0]
idx = [h.index(g) for g in ["G01", "G02", "G03", "G04"]]
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(h + ["C01", "C02", "C03", "C04"])
    for r in rows[1:]:
        w.writerow(r + [r[i] for i in idx])
PY
printf 'G01\nG02\nG03\nG04\nC01\nC02\nC03\nC04\n' > "$T/copies.txt"
check "extend copies of the trained genes" $G extend "$T/cfg.yaml" --set data.samples="$T/copies.csv" \
    --set data.genes="$T/copies.txt" --checkpoint "$T/run/checkpoint.h5" --out "$T/ec"
check "render them" $G render "$T/ec/config.yaml"
# Held out: the validation samples of the split (train.seed 7, fraction 0.1: rng.c's stream 4000),
# where both rows are scored as training scores them (the donor average).
$PY - "$T/copies.csv" "$T/val.csv" "$T/valy.csv" <<'PY'
import sys, csv
M = (1 << 64) - 1
def mix(z):
    z = (z + 0x9e3779b97f4a7c15) & M
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)
def uniform(seed, stream, i):
    return (mix(mix(mix(seed ^ 0x243f6a8885a308d3) ^ stream) ^ i) >> 40) / 16777216.0
rows = list(csv.reader(open(sys.argv[1])))
h = rows[0]
x, y, z = h.index("mni_x"), h.index("mni_y"), h.index("mni_z")
g = [h.index("G0%d" % k) for k in range(1, 5)]
with open(sys.argv[2], "w") as p, open(sys.argv[3], "w") as v:
    p.write("x,y,z\n")
    for i, r in enumerate(rows[1:]):
        if uniform(7, 4000, i) < 0.1:
            p.write("%s,%s,%s\n" % (r[x], r[y], r[z]))
            v.write(",".join(r[j] for j in g) + "\n")
PY
check "predict both rows at the validation samples" $G predict "$T/ec/config.yaml" --points "$T/val.csv" --out "$T/valp.csv"
check "a trained gene refitted by the ridge: held-out error close to its trained row's" $PY - "$T/valp.csv" "$T/valy.csv" "$T/ec/atlas.h5" <<'PY'
import sys, numpy as np, h5py
p = np.genfromtxt(sys.argv[1], delimiter=",", names=True)
y = np.genfromtxt(sys.argv[2], delimiter=",", ndmin=2)
f = h5py.File(sys.argv[3], "r")
e, m = f["expression"][()], f["mask"][()] > 0
for k in range(4):
    t, c, v = p["G0%d" % (k + 1)], p["C0%d" % (k + 1)], y[:, k]
    ok = ~np.isnan(v)
    mt, mc = np.mean((t[ok] - v[ok]) ** 2), np.mean((c[ok] - v[ok]) ** 2)
    r = np.corrcoef(e[k][m], e[4 + k][m])[0, 1]
    print("G0%d: held-out MSE trained row %.4f, ridge row %.4f (%d samples); maps r = %.3f" % (k + 1, mt, mc, ok.sum(), r))
    assert mc <= 1.1 * mt
PY

# With data.prior (kriging; a small likelihood subsample keeps it quick).
cfg "$T/pcfg.yaml" "prior: kriging" "baseline: {fit_samples: 300}"
printf 'G05\nG06\n' > "$T/new.txt"
check "train over a kriging prior" $G train "$T/pcfg.yaml" --out "$T/prun"
fails_cleanly "prior: a table without the trained genes is refused" "must hold the trained genes" \
    $G extend "$T/pcfg.yaml" --set data.genes="$T/new.txt" --checkpoint "$T/prun/checkpoint.h5" --out "$T/pbad"
check "prior: extend with the whole table" $G extend "$T/pcfg.yaml" --set data.genes= --checkpoint "$T/prun/checkpoint.h5" \
    --out "$T/pe"
check "prior: render it" $G render "$T/pe/config.yaml"

# Refusals.
fails_cleanly "nothing new" "nothing to extend" $G extend "$T/cfg.yaml" --checkpoint "$T/run/checkpoint.h5" --out "$T/n"
fails_cleanly "an existing OUT/checkpoint.h5 without --force" "exists; add --force" \
    $G extend "$T/cfg.yaml" --set data.genes= --checkpoint "$T/run/checkpoint.h5" --out "$T/e1"
fails_cleanly "--out holding the checkpoint itself" "holds the checkpoint being extended" \
    $G extend "$T/cfg.yaml" --set data.genes= --checkpoint "$T/run/checkpoint.h5" --out "$T/run" --force
fails_cleanly "another validation split" "train.val_fraction differs" \
    $G extend "$T/cfg.yaml" --set data.genes= --set train.val_fraction=0.2 --checkpoint "$T/run/checkpoint.h5" --out "$T/x"
cfg "$T/ccfg.yaml" ""
sed -i 's/anatomy_dim: 2}/anatomy_dim: 2, gene_mode: concat}/; s/steps: 60/steps: 5/' "$T/ccfg.yaml"
check "train a concat model" $G train "$T/ccfg.yaml" --out "$T/crun"
fails_cleanly "concat: refused" "gene_mode is concat" \
    $G extend "$T/ccfg.yaml" --set data.genes= --checkpoint "$T/crun/checkpoint.h5" --out "$T/cx"
$G extend "$T/cfg.yaml" >"$T/u.log" 2>&1
rc=$?
if [ $rc = 2 ] && grep -q -- "--checkpoint" "$T/u.log"; then ok "no --checkpoint: usage error (exit 2)"
else notok "no --checkpoint: usage error (exit 2)" "exit $rc"; fi

# eval's new-gene mode (item 2): 2 of the 6 genes held out of inr_extended's trunk.
sed '/genes: .*old.txt/d' "$T/cfg.yaml" > "$T/ecfg.yaml"
check "eval --set eval.new_genes=2 (2 folds, inr and idw)" $G eval "$T/ecfg.yaml" --out "$T/ev" \
    --set eval.new_genes=2 --set eval.folds=2 --set eval.methods=inr,idw
check "summary.csv: inr, idw and inr_extended on the 2 held-out genes" $PY - "$T/ev" <<'PY'
import sys, csv
s = list(csv.DictReader(open(sys.argv[1] + "/summary.csv")))
assert [r["method"] for r in s] == ["inr", "idw", "inr_extended"], s
assert all(r["genes"] == "2" for r in s) and all(float(r["median_r"]) > 0.3 for r in s), s
e = list(csv.DictReader(open(sys.argv[1] + "/eval.csv")))
ext = {r["gene"] for r in e if r["method"] == "inr_extended"}
assert len(ext) == 2 and len({r["gene"] for r in e if r["method"] == "inr"}) == 6, ext
assert all(r["r"] not in ("", "nan") for r in e if r["method"] == "inr_extended")
PY
fails_cleanly "eval.new_genes without the inr method" "add inr to eval.methods" \
    $G eval "$T/ecfg.yaml" --out "$T/ev2" --set eval.new_genes=2 --set eval.methods=idw
fails_cleanly "eval.new_genes: every gene held out" "leaves none to train the trunk on" \
    $G eval "$T/ecfg.yaml" --out "$T/ev3" --set eval.new_genes=6 --set eval.methods=inr
