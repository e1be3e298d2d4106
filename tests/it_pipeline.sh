#!/bin/bash
# End-to-end: phantom -> run at 1 and 2 ranks -> determinism, rank independence,
# resume, the atlas read back with h5py, NIfTI affines with nibabel, accuracy
# against the truth (better than the nearest-sample map), and clean failures.
# Uses the 2 mm phantom grid to stay fast; the 1 mm grid is exercised by `make run`.
. "$(dirname "$0")/lib.sh" pipeline

check "phantom (2 mm grid, 5 genes)" $G phantom --out "$T/ph" --grid 2 --genes 5 --seed 3
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/ph/samples.csv
  anatomy: $T/ph/anatomy.nii.gz
model:
  width: 64
  hidden_layers: 3
  omega0: 10
  omega_hidden: 30
train:
  steps: 300
  val_every: 25
  log_every: 100
  weight_decay: 0.0001
render:
  mask: $T/ph/mask.nii.gz
  nifti: true
YAML
check "run, 2 ranks"           $MPIRUN -np 2 $G run "$T/cfg.yaml" --out "$T/r2a"
check "run, 2 ranks, again"    $MPIRUN -np 2 $G run "$T/cfg.yaml" --out "$T/r2b"
check "run, 1 rank"            $MPIRUN -np 1 $G run "$T/cfg.yaml" --out "$T/r1"
check "two 2-rank runs give byte-identical checkpoints" cmp "$T/r2a/checkpoint.h5" "$T/r2b/checkpoint.h5"
check "two 2-rank runs give identical loss curves" \
    cmp <(cut -d, -f1-5 "$T/r2a/train_log.csv") <(cut -d, -f1-5 "$T/r2b/train_log.csv")

# 1 vs 2 ranks: loss curves within 1e-5 relative.
cmp_curves() {
    paste -d, "$1" "$2" | awk -F, -v n=6 'NR > 1 {
        a = $2; b = $(2 + n); d = a - b; if (d < 0) d = -d; m = (a < 0 ? -a : a);
        if (d > 1e-5 * m + 1e-12) { bad++; if (bad < 4) printf "step %s: %.9g vs %.9g\n", $1, a, b } }
        END { if (NR < 2) { print "empty"; exit 1 } exit bad > 0 }'
}
check "1 and 2 ranks give the same loss curve (1e-5 relative)" cmp_curves "$T/r1/train_log.csv" "$T/r2a/train_log.csv"

# Resume: 120 steps, then resume to 300 == 300 straight. The schedule is
# constant so that the first leg's learning rates match the full run's (a
# cosine schedule depends on train.steps, which the two legs set differently).
C="--set train.schedule=constant"
check "train 120 steps" $MPIRUN -np 2 $G train "$T/cfg.yaml" --out "$T/rs" $C --set train.steps=120
check "resume to 300 steps" $MPIRUN -np 2 $G train "$T/cfg.yaml" --out "$T/rs" $C --resume
check "train 300 steps straight" $MPIRUN -np 2 $G train "$T/cfg.yaml" --out "$T/rref" $C
check "resumed checkpoint is byte-identical to an uninterrupted run" cmp "$T/rs/checkpoint.h5" "$T/rref/checkpoint.h5"
check "resumed loss curve continues the uninterrupted one (step, loss, lr, grad norm)" \
    cmp <(cut -d, -f1,2,4,5 "$T/rs/train_log.csv") <(cut -d, -f1,2,4,5 "$T/rref/train_log.csv")

# Other model and data paths: concat mode with the spectral gene code on the
# Fourier-feature MLP, a held-out donor, one donor rendered; mini-batches.
check "concat + spectral + fourier, held-out donor, render one donor" \
    $MPIRUN -np 2 $G run "$T/cfg.yaml" --out "$T/cc" --set model.arch=fourier --set model.gene_mode=concat \
    --set model.gene_code=spectral --set train.validation=donor --set train.val_donor=H0351.1009 \
    --set render.donor=H0351.2001 --set train.steps=60 --set render.nifti=false
check "the atlas says which donor it was rendered for" bash -c "$G info $T/cc/atlas.h5 | grep -q 'rendered for: H0351.2001'"
check "score reads a concat-mode atlas" $G score "$T/cc/atlas.h5" --truth "$T/ph/truth.h5" --samples "$T/ph/samples.csv"
MB="--set train.batch_size=512 --set train.steps=80 --set render.nifti=false"
check "mini-batch run, 1 rank"  $MPIRUN -np 1 $G train "$T/cfg.yaml" --out "$T/mb1" $MB
check "mini-batch run, 3 ranks" $MPIRUN -np 3 $G train "$T/cfg.yaml" --out "$T/mb3" $MB
check "mini-batches: 1 and 3 ranks give the same loss curve (1e-5 relative)" cmp_curves "$T/mb1/train_log.csv" "$T/mb3/train_log.csv"

# Clean failures: non-zero exit, clear message, no hang, no atlas.
cat > "$T/bad.yaml" <<YAML
data:
  samples: $T/ph/samples.csv
train:
  lr: fast
YAML
fails_with() { # expected-message command...
    local want=$1; shift
    "$@" >"$T/fail.out" 2>&1; local rc=$?
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q -- "$want" "$T/fail.out" || { cat "$T/fail.out"; echo "exit $rc"; return 1; }
}
check "bad config value: exit 1 with file:line" fails_with "bad.yaml:4: train.lr" $MPIRUN -np 2 $G train "$T/bad.yaml" --out "$T/bad"
check "unknown --set key is refused" fails_with "unknown key" $G train "$T/cfg.yaml" --out "$T/bad" --set train.stepz=3
check "missing sample table fails on 2 ranks without hanging" \
    fails_with "nope.csv" $MPIRUN -np 2 $G train "$T/cfg.yaml" --out "$T/bad" --set data.samples=$T/nope.csv
check "render without a checkpoint fails cleanly" fails_with "checkpoint" $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$T/empty"
check "a mask that is not NIfTI is refused clearly" fails_with "render.mask" \
    $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$T/r2a" --set render.mask=$T/ph/samples.csv
check "an unknown render donor is refused clearly" fails_with "render.donor" \
    $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$T/r2a" --set render.donor=H9
check "no half-written atlas after a failed render" test ! -e "$T/empty/atlas.h5" -a ! -e "$T/empty/atlas.h5.tmp"
check "unknown command exits 2" bash -c "$G frobnicate >/dev/null 2>&1; test \$? -eq 2"
check "info describes the atlas" bash -c "$G info $T/r2a/atlas.h5 | grep -q '5 genes'"
check "info describes the checkpoint" bash -c "$G info $T/r2a/checkpoint.h5 | grep -q 'geneinr checkpoint'"
check "info describes the sample table" bash -c "$G info $T/ph/samples.csv | grep -q 'sample table'"

# Accuracy: the model must beat the nearest-sample map against the truth.
check "score" $G score "$T/r2a/atlas.h5" --truth "$T/ph/truth.h5" --samples "$T/ph/samples.csv" --json "$T/score.json"
beats_nearest() {
    $PY - "$T/score.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print("mean r model %.3f, nearest %.3f" % (s["mean_r_model"], s["mean_r_nearest"]))
sys.exit(0 if s["mean_r_model"] > s["mean_r_nearest"] else 1)
PY
}
check "rendered maps correlate with the truth better than the nearest-sample map" beats_nearest

if have_py h5py && have_py nibabel && have_py numpy; then
    readback() {
        $PY - "$T" <<'PY'
import sys, h5py, numpy as np, nibabel as nib
T = sys.argv[1]
with h5py.File(T + "/r2a/atlas.h5", "r") as f, h5py.File(T + "/r1/atlas.h5", "r") as g:
    e = f["expression"]
    assert e.dtype == np.float32, e.dtype
    genes = [x.decode() if isinstance(x, bytes) else x for x in f["genes"][()]]
    assert len(genes) == 5 and e.shape[0] == 5, (genes, e.shape)
    mask = f["mask"][()].astype(bool)
    m = nib.load(T + "/ph/mask.nii.gz")
    assert e.shape[1:] == m.shape[::-1], (e.shape, m.shape)
    assert np.allclose(f["affine"][()], m.affine), (f["affine"][()], m.affine)
    assert np.array_equal(mask, (np.asarray(m.dataobj) != 0).transpose(2, 1, 0))
    a = e[()]; b = g["expression"][()]
    assert np.all(np.isnan(a[:, ~mask])) and np.all(np.isfinite(a[:, mask]))
    d = np.nanmax(np.abs(a - b)); scale = np.nanmax(np.abs(a))
    print("1 vs 2 ranks: max |diff| %.3g (max |value| %.3g)" % (d, scale))
    assert d <= 1e-4 * max(1.0, scale), d
    for attr in ("geneinr_version", "created", "config", "layout", "kind", "rendered_for"):
        assert attr in f.attrs, attr
    assert "units" in e.attrs and "normalisation" in e.attrs
    img = nib.load(T + "/r2a/nifti/%s.nii.gz" % genes[0])
    assert np.allclose(img.affine, m.affine), (img.affine, m.affine)
    assert img.header.get_sform(coded=True)[1] == m.header.get_sform(coded=True)[1]
    vol = np.asarray(img.dataobj, dtype=np.float32)
    assert np.allclose(vol.transpose(2, 1, 0), a[0], equal_nan=True)
print("OK")
PY
    }
    check "atlas read back with h5py; NIfTI affine with nibabel; 1 vs 2 ranks maps within 1e-4" readback
else
    echo "skip - h5py/nibabel readback: /usr/bin/python3 lacks h5py, nibabel or numpy"
fi
