#!/bin/bash
# it_ensemble.sh - train.ensemble: K members trained with seeds seed .. seed+K-1 (member 1 in
# OUT, member k in OUT/ensemble/k-1), the atlas their mean. Checked against each member rendered
# on its own (--checkpoint, its seed, ensemble 1): the ensemble atlas is their mean, with and
# without a data.prior; 1 and 2 ranks give the same atlas bit for bit; a run resumed with a
# larger ensemble trains only the new members and equals a fresh run of that size bit for bit;
# a fresh run removes an earlier run's members (never averaged into new weights); a missing member
# is refused by name; eval scores an ensemble.
. "$(dirname "$0")/lib.sh" ensemble
refused() { local name=$1 want=$2; shift 2; if "$@" >"$T/last.log" 2>&1; then notok "$name" "accepted"; elif grep -q -- "$want" "$T/last.log"; then ok "$name"; else notok "$name" "$(tail -n 3 "$T/last.log" | tr '\n' ' ')"; fi; }
MPIRUN="timeout 300 mpirun --oversubscribe"

# The old sample model: the refit tolerance below (2e-3) was measured on it; on
# the realistic phantom the members' refitted priors differ by up to 4e-3.
check "phantom (2 mm grid, 6 genes)" $G phantom --out "$T/ph" --grid 2 --genes 6 --seed 3 --sample-truth voxel
check "a 4-slice mask" $PY "$(dirname "$0")/atlas_check.py" slab "$T/ph/mask.nii.gz" "$T/slab.nii.gz"
awk 'NR == 1 || NR % 4 == 0' "$T/ph/samples.csv" >"$T/quarter.csv"   # a quick kriging fit
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/quarter.csv
model:
  arch: fourier
  fourier_features: 16
  fourier_scale: 0.5
  width: 32
  hidden_layers: 2
  donor_dim: 2
train:
  steps: 30
  schedule: constant
  val_every: 10
  ensemble: 3
  seed: 7
render:
  mask: $T/slab.nii.gz
  preview_genes: 0
  report: false
baseline:
  fit_samples: 200
YAML

# mean_of ATLAS TOL MEMBER...: ATLAS's expression is the mean of the members' (relative TOL).
mean_of() {
    $PY - "$@" <<'PY'
import sys, h5py, numpy as np
ens, tol, members = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
e = h5py.File(ens, "r")["expression"][...]
ms = [h5py.File(m, "r")["expression"][...] for m in members]
mean = np.mean(np.stack(ms).astype(np.float64), axis=0)
f = np.isfinite(e)
assert f.sum() > 1000 and np.array_equal(f, np.isfinite(mean))
d = np.abs(e[f] - mean[f]).max(); scale = np.abs(mean[f]).max()
spread = np.abs(ms[0][f] - ms[1][f]).max()
assert d <= tol * scale, "max diff %g (values up to %g)" % (d, scale)
# (with the refit's loose tolerance the members' own priors differ about as much as the members)
assert (spread > 2 * d or tol > 1e-2) and spread > 1e-3 * scale, "the members are too alike to tell (spread %g)" % spread
PY
}
same_bits() { $PY "$(dirname "$0")/atlas_check.py" same-bits "$1" "$2"; }

for what in plain prior refit; do
    S=""
    [ $what = prior ] && S="--set data.prior=kriging"
    [ $what = refit ] && S="--set data.prior=kriging --set data.prior_refit=true"
    R="$T/$what"
    check "$what: run an ensemble of 3 (2 ranks)" $MPIRUN -np 2 $G run "$T/cfg.yaml" --out "$R" $S
    check "$what: members 2 and 3 in OUT/ensemble/1 and 2, trained with seeds 8 and 9" $PY - "$R" <<'PY'
import sys, h5py
for k, seed in ((0, 7), (1, 8), (2, 9)):
    f = h5py.File(sys.argv[1] + ("/checkpoint.h5" if k == 0 else "/ensemble/%d/checkpoint.h5" % k), "r")
    assert int(f.attrs["seed"]) == seed, (k, int(f.attrs["seed"]))
PY
    members=""
    for k in 0 1 2; do
        ck="$R/checkpoint.h5"; [ $k -gt 0 ] && ck="$R/ensemble/$k/checkpoint.h5"
        check "$what: member $((k + 1)) rendered on its own" $MPIRUN -np 1 $G render "$T/cfg.yaml" --out "$R/m$k" $S \
            --checkpoint "$ck" --set train.seed=$((7 + k)) --set train.ensemble=1
        members="$members $R/m$k/atlas.h5"
    done
    # Without prior_refit every member adds its own prior, so the mean is exact. With it the
    # ensemble adds the one prior refitted on all samples (fitted once, member 1's, with member
    # 1's hyperparameters from its checkpoint), while a member rendered alone refits it with its
    # own checkpoint's hyperparameters (fitted in its training, on its own split: issue 31) and on
    # z-scores of its own split's mean and SD: 1.6% of the range seen (6e-4 when every refit fitted
    # its hyperparameters again by ML on all samples).
    tol=2e-6; [ $what = refit ] && tol=3e-2
    check "$what: the ensemble atlas is the mean of its members" mean_of "$R/atlas.h5" $tol $members
    check "$what: render on 1 rank" $MPIRUN -np 1 $G render "$T/cfg.yaml" --out "$R/r1" $S --checkpoint "$R/checkpoint.h5"
    check "$what: 1 and 2 ranks give the same ensemble atlas, bit for bit" same_bits "$R/atlas.h5" "$R/r1/atlas.h5"
done

# Resume with a larger ensemble: members 1-2 are finished (resumed, nothing to do), only 3 trains,
# and the result is a fresh 3-member run's, bit for bit.
R="$T/grow"
check "grow: run an ensemble of 2" $MPIRUN -np 2 $G run "$T/cfg.yaml" --out "$R" --set train.ensemble=2
check "grow: resume it as an ensemble of 3" bash -c "$MPIRUN -np 2 $G run '$T/cfg.yaml' --out '$R' --resume >'$T/grow.log' 2>&1"
check "grow: members 1-2 resumed finished, member 3 trained fresh" bash -c "
    grep -q 'member 2/3 (train.seed 8) in .*ensemble/1, resumed' '$T/grow.log' &&
    grep -q 'member 3/3 (train.seed 9) in .*ensemble/2\$' '$T/grow.log'"
check "grow: the grown ensemble equals a fresh one, bit for bit" same_bits "$R/atlas.h5" "$T/plain/atlas.h5"

check "a fresh run removes the members of the earlier one" bash -c "
    $MPIRUN -np 1 $G run '$T/cfg.yaml' --out '$T/plain' --set train.ensemble=1 >/dev/null 2>&1 && [ ! -e '$T/plain/ensemble' ]"
refused "a missing member is refused by name" "member 3" \
    bash -c "rm -rf '$R/ensemble/2' && $MPIRUN -np 1 $G render '$T/cfg.yaml' --out '$R'"

check "eval: an ensemble of 2 over the prior (kfold, 2 folds)" $MPIRUN -np 1 $G eval "$T/cfg.yaml" --out "$T/eval" \
    --set train.ensemble=2 --set data.prior=kriging --set eval.split=kfold --set eval.folds=2 --set eval.methods=inr,kriging
check "eval: both members of every fold were trained" bash -c "[ -f '$T/eval/folds/1/inr/ensemble/1/checkpoint.h5' ] && [ -f '$T/eval/folds/2/inr/ensemble/1/checkpoint.h5' ] && grep -q '^inr,kfold,2,6,' '$T/eval/summary.csv'"
