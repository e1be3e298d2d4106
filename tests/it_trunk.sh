#!/bin/bash
# it_trunk.sh - data.trunk_genes (issue 29, item 3): `geneinr run` trains the trunk on the table's
# most variable genes (OUT/trunk/), extends every other gene onto it (OUT/checkpoint.h5) and renders
# them all. On a small phantom (8 genes, trunk of 3, prior on):
#   - OUT/trunk/genes.txt holds the 3 genes of largest sample variance (checked with numpy), in
#     table order, and OUT/trunk/checkpoint.h5 was trained on those only;
#   - OUT/checkpoint.h5 and the atlas hold all 8 genes, trunk genes first (OUT/genes.txt), and
#     OUT/config.yaml renders the same atlas again (data.genes: OUT/genes.txt);
#   - the same bits at 1 and 2 ranks (the extended checkpoint's weights and the atlas's /expression);
#   - --resume of a job stopped while training the trunk (no OUT/checkpoint.h5 yet) continues it;
#   - a trunk of every gene, a concat model and an ensemble are refused before any training.
. "$(dirname "$0")/lib.sh" trunk
MPIRUN="timeout 300 mpirun --oversubscribe"

check "phantom (2 mm grid, 8 genes)" $G phantom --out "$T/ph" --grid 2 --genes 8 --seed 5
check "a 4-slice mask" $PY "$(dirname "$0")/atlas_check.py" slab "$T/ph/mask.nii.gz" "$T/slab.nii.gz"
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/ph/samples.csv
  anatomy: $T/ph/anatomy.nii.gz
  prior: kriging
  prior_refit: true
  trunk_genes: 3
baseline: {fit_samples: 300}
model: {arch: fourier, fourier_features: 16, fourier_scale: 0.5, width: 32, hidden_layers: 2, donor_dim: 2,
        anatomy_dim: 2}
train: {steps: 40, schedule: constant, val_every: 10, seed: 7, val_average: true}
render: {mask: $T/slab.nii.gz, preview_genes: 0, report: false, nifti: none}
YAML
check "run: trunk of 3, extended to 8, rendered (1 rank)" bash -c "$G run '$T/cfg.yaml' --out '$T/r1' > '$T/r1.log' 2>&1"
check "run at 2 ranks" $MPIRUN -np 2 $G run "$T/cfg.yaml" --out "$T/r2"
check "the run said what it did" grep -q "the trunk on 3 of the table's 8 genes" "$T/r1.log"
check "the trunk's genes are the 3 most variable, in table order; the atlas has all 8, trunk first" $PY - "$T" <<'PY'
import sys, csv, numpy as np, h5py
T = sys.argv[1]
rows = list(csv.reader(open(f"{T}/ph/samples.csv")))
head = rows[0]
genes = [h for h in head if h.startswith("G")]
idx = [head.index(g) for g in genes]
vals = np.array([[float(r[i]) if r[i] not in ("", "NA", "nan") else np.nan for i in idx] for r in rows[1:]])
var = np.nanvar(vals, axis=0, ddof=1)
top = sorted(np.argsort(-var, kind="stable")[:3])
want = [genes[i] for i in top]
got = open(f"{T}/r1/trunk/genes.txt").read().split()
assert got == want, (got, want)
with h5py.File(f"{T}/r1/trunk/checkpoint.h5") as f:
    tg = [g.decode() if isinstance(g, bytes) else g for g in f["genes"][:]]
assert [g.strip() for g in tg] == want, tg
allg = open(f"{T}/r1/genes.txt").read().split()
assert allg[:3] == want and sorted(allg) == sorted(genes), allg
with h5py.File(f"{T}/r1/atlas.h5") as f:
    ag = [g.decode() if isinstance(g, bytes) else g for g in f["genes"][:]]
    assert ag == allg, ag
    e = f["expression"][:]
    assert e.shape[0] == 8 and np.isfinite(e[:, f["mask"][:] > 0]).all()
PY
check "1 and 2 ranks: the same extended weights (the checkpoints differ only in the config's run folder)" $PY -c "
import h5py, numpy as np, sys
a = h5py.File('$T/r1/checkpoint.h5'); b = h5py.File('$T/r2/checkpoint.h5')
sys.exit(0 if all(np.array_equal(a[k][:], b[k][:]) for k in ('params', 'best_params', 'gene_mean', 'gene_std', 'genes'))
         else 1)"
check "1 and 2 ranks: the same /expression" $PY -c "
import h5py, numpy as np, sys
a = h5py.File('$T/r1/atlas.h5')['expression'][:]; b = h5py.File('$T/r2/atlas.h5')['expression'][:]
sys.exit(0 if np.array_equal(a, b, equal_nan=True) else 1)"
check "OUT/config.yaml renders the extended model again" $G render "$T/r1/config.yaml" --out "$T/r1"
# A job stopped while training the trunk has OUT/trunk/checkpoint.h5 and no OUT/checkpoint.h5 yet:
# --resume continues the trunk's training, then extends and renders.
mkdir -p "$T/r3/trunk" && cp "$T/r1/trunk/checkpoint.h5" "$T/r3/trunk/"
check "run --resume with only the trunk's checkpoint: the trunk resumes, all 8 genes are rendered" bash -c \
    "$G run '$T/cfg.yaml' --out '$T/r3' --resume > '$T/r3.log' 2>&1 && grep -q 'resuming $T/r3/trunk/checkpoint.h5' '$T/r3.log' &&
     [ \$(wc -l < '$T/r3/genes.txt') = 8 ] && [ -f '$T/r3/atlas.h5' ]"
fails_cleanly "a trunk of every gene is refused" "none would be extended" \
    $G run "$T/cfg.yaml" --out "$T/bad1" --set data.trunk_genes=8
fails_cleanly "a concat model is refused" "model.gene_mode: factorized" \
    $G run "$T/cfg.yaml" --out "$T/bad2" --set model.gene_mode=concat
fails_cleanly "an ensemble is refused" "train.ensemble: 1" \
    $G run "$T/cfg.yaml" --out "$T/bad3" --set train.ensemble=2
