#!/bin/bash
# it_prior_hyper.sh - the prior's fitted hyperparameters (issue 31): training
# keeps them in the checkpoint (/prior_hyper), fitted to the same bits at 1
# and 2 ranks (the genes' likelihood terms are shared by the ranks); the
# prediction prior (data.prior_refit, the calibration's refit) reuses them
# with no likelihood evaluations; predict's values are the same at 1 and 2
# ranks. Small: every 4th sample of the 2 mm phantom, 40 genes
# (three 16-gene blocks of likelihood terms: 1 and 2 at 2 ranks).
. "$(dirname "$0")/lib.sh" prior_hyper
if ! have_py h5py; then
    skip "prior hyperparameters" "h5py missing for /usr/bin/python3"
    exit 0
fi
check "phantom (2 mm grid, 40 genes)" $G phantom --out "$T/ph" --grid 2 --genes 40 --seed 3
$PY - "$T" <<'PY'
import sys
t = sys.argv[1]
lines = open(t + "/ph/samples.csv").read().splitlines()
open(t + "/small.csv", "w").write("\n".join([lines[0]] + lines[1::4]) + "\n")
open(t + "/pts.csv", "w").write("x,y,z\n0,0,0\n12,-30,8\n-40,10,20\n25,25,-10\n")
PY
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/small.csv
  anatomy: $T/ph/anatomy.nii.gz
  anatomy_tolerance: 5
  prior: regression_kriging
  prior_donor_effect: true
  prior_refit: true
baseline:
  fit_samples: 300
model:
  arch: fourier
  fourier_features: 16
  fourier_scale: 0.5
  width: 32
  hidden_layers: 2
  donor_dim: 2
train:
  steps: 10
  val_every: 5
render:
  mask: $T/ph/mask.nii.gz
YAML
export GENEINR_PROGRESS_EVERY=0   # every evaluation gets a progress line
check "train, 1 rank" $G train "$T/cfg.yaml" --out "$T/r1"
cp "$T/last.log" "$T/train1.log"
check "train, 2 ranks" $MPIRUN -np 2 $G train "$T/cfg.yaml" --out "$T/r2"
grep -q "prior fit: .*likelihood evaluations" "$T/train1.log" \
    && ok "training fits the prior's hyperparameters by ML" \
    || notok "training fits the prior's hyperparameters by ML" "$(grep prior "$T/train1.log" | tail -n 2 | tr '\n' ' ')"
check "the checkpoint keeps them, the same bits at 1 and 2 ranks" $PY - "$T" <<'PY'
import sys, h5py, numpy as np
t = sys.argv[1]
a = h5py.File(t + "/r1/checkpoint.h5", "r")["prior_hyper"][...]
b = h5py.File(t + "/r2/checkpoint.h5", "r")["prior_hyper"][...]
assert a.shape == (5,), a.shape
assert np.array_equal(a, b), (a, b)
assert a[0] > 0 and a[1] > 0 and a[2] > 0 and a[3] > 0 and a[4] == 0, a   # range, nugget, label, donor; no similarity
PY
for np_ in 1 2; do
    check "predict, $np_ rank(s)" $MPIRUN -np $np_ $G predict "$T/cfg.yaml" --checkpoint "$T/r2/checkpoint.h5" \
        --points "$T/pts.csv" --out "$T/v$np_.csv"
    cp "$T/last.log" "$T/predict$np_.log"
done
if grep -q "likelihood evaluations\|keeps no prior hyperparameters" "$T/predict1.log"; then
    notok "the prediction prior reuses them (no ML refit)" "$(grep 'prior\|note' "$T/predict1.log" | head -n 2 | tr '\n' ' ')"
else
    ok "the prediction prior reuses them (no ML refit)"
fi
cmp -s "$T/v1.csv" "$T/v2.csv" && ok "predict: the same values at 1 and 2 ranks" \
    || notok "predict: the same values at 1 and 2 ranks" "v1.csv and v2.csv differ"
