#!/bin/bash
# geneinr eval (same folds for every method, summary columns, splits, errors)
# and geneinr regions against a numpy reference. Small on purpose: 2 mm
# phantom, 3 genes, a tiny INR, the kriging likelihood on 300 samples.
. "$(dirname "$0")/lib.sh" eval

check "phantom (2 mm grid, 3 genes)" $G phantom --out "$T/ph" --grid 2 --genes 3 --seed 4
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/ph/samples.csv
  anatomy: $T/ph/anatomy.nii.gz
model:
  arch: fourier
  fourier_scale: 0.5
  fourier_features: 32
  width: 32
  hidden_layers: 2
train:
  steps: 150
  batch_size: 512
  val_every: 25
  patience: 3
  log_every: 1000
  weight_decay: 1
baseline:
  fit_samples: 300
eval:
  folds: 3
render:
  mask: $T/ph/mask.nii.gz
YAML

check "eval, kfold, all methods, 2 ranks" $MPIRUN -np 2 $G eval "$T/cfg.yaml" --out "$T/kf"
check "summary.csv has exactly method,split,folds,genes,median_r,mean_mse,coverage_50,coverage_90" \
    test "$(head -n 1 "$T/kf/summary.csv")" = "method,split,folds,genes,median_r,mean_mse,coverage_50,coverage_90"
# Coverage: kriging and regression kriging have an SD; nearest, idw and this INR (no prior, one member) none.
check "coverage cells: empty for nearest, idw and an INR without prior or ensemble; kriging's 50%/90% near nominal" \
    awk -F, 'NR > 1 { if ($1 ~ /kriging/) { if (!($7 > 0.35 && $7 < 0.65 && $8 > 0.8 && $8 < 0.97)) bad++ }
                      else if ($7 != "" || $8 != "") bad++ } END { exit bad }' "$T/kf/summary.csv"
check "eval.csv: coverage per fold and gene for kriging (fractions), empty cells for idw" \
    awk -F, 'NR > 1 && $1 == "kriging" { if (!($8 >= 0 && $8 <= 1 && $9 >= $8)) bad++; k++ }
             NR > 1 && $1 == "idw" { if ($8 != "" || $9 != "") bad++ } END { exit bad || k != 12 }' "$T/kf/eval.csv"
check "summary.csv: one row per method (inr, nearest, idw, kriging, regression_kriging), 3 folds, 3 genes" \
    test "$(tail -n +2 "$T/kf/summary.csv" | cut -d, -f1-4 | tr '\n' ' ')" = \
    "inr,kfold,3,3 nearest,kfold,3,3 idw,kfold,3,3 kriging,kfold,3,3 regression_kriging,kfold,3,3 "
check "eval.csv: method,split,fold,gene,n_test,r,mse,coverage_50,coverage_90 with a row per method x gene x (3 folds + pooled)" \
    bash -c "test \"\$(head -n 1 '$T/kf/eval.csv')\" = method,split,fold,gene,n_test,r,mse,coverage_50,coverage_90 && test \$(tail -n +2 '$T/kf/eval.csv' | wc -l) = 60"
# Every method is scored on the same test samples: per fold and gene, n_test agrees.
check "every method scored on the same held-out samples (n_test per fold and gene identical)" \
    bash -c "test \$(tail -n +2 '$T/kf/eval.csv' | cut -d, -f3-5 | sort -u | wc -l) = 12"
check "held-out r is finite and positive for every method; the pooled n_test covers every measured value" \
    awk -F, 'NR > 1 { if (!($6 > 0) || $6 > 1) bad++ } $3 == "all" { n += $5 } END { exit bad || n < 10000 }' "$T/kf/eval.csv"
check "the INR's training table holds only the other folds (2/3 of the samples)" \
    bash -c "n=\$(tail -n +2 '$T/kf/folds/1/inr/train_samples.csv' | wc -l); test \$n -gt 2400 && test \$n -lt 2540"
check "eval, 1 rank group (data-parallel folds) gives the same baselines" \
    $MPIRUN -np 2 $G eval "$T/cfg.yaml" --out "$T/kf1" --set eval.groups=1
check "baseline scores do not depend on the rank grouping" \
    cmp <(grep -v '^inr' "$T/kf/eval.csv") <(grep -v '^inr' "$T/kf1/eval.csv")

check "eval, donor split (6 donors), baselines" $G eval "$T/cfg.yaml" --out "$T/dn" --set eval.split=donor \
    --set eval.methods=nearest,idw
printf '%s\n' method,split,fold,gene,n_test,r,mse inr,kfold,1,A,5,0.1,1 inr,kfold,all,A,9,0.5,1 \
    inr,kfold,all,B,9,0.6,1 inr,kfold,all,C,9,0.7,1 idw,kfold,all,A,9,0.4,1 idw,kfold,all,B,9,0.7,1 \
    idw,kfold,all,C,9,0.6,1 idw,kfold,1,A,5,0.9,1 >"$T/wins.csv"
check "tools/eval_wins.sh: per-gene wins and mean r from the pooled rows only (hand-checked fixture)" \
    bash -c "tools/eval_wins.sh '$T/wins.csv' | grep -Eq '^idw +0\.5667 +2 of 3 +\+0\.0333\$' && tools/eval_wins.sh '$T/wins.csv' | grep -Eq '^inr +0\.6000 '"
fails "tools/eval_wins.sh: a method not in the file is named" "no method kriging" tools/eval_wins.sh "$T/wins.csv" kriging
check "donor split: 6 folds, each one donor" bash -c "grep -q '^idw,donor,6,3,' '$T/dn/summary.csv'"
check "eval, block split (20 mm), baselines" $G eval "$T/cfg.yaml" --out "$T/bl" --set eval.split=block \
    --set eval.methods=nearest,idw,kriging
check "block split: kriging and idw beat nearest; block r below kfold r (neighbours held out too)" \
    awk -F, 'FNR > 1 && FILENAME ~ /bl/ { b[$1] = $5 } FNR > 1 && FILENAME ~ /kf\// { k[$1] = $5 }
             END { exit !(b["idw"] > b["nearest"] && b["kriging"] > b["nearest"] && b["idw"] < k["idw"]) }' \
    "$T/bl/summary.csv" "$T/kf/summary.csv"

fails "unknown eval.methods name is refused with the key" "eval.methods: 'krig' is not a method" \
    $G eval "$T/cfg.yaml" --out "$T/bad" --set eval.methods=idw,krig
fails "regression_kriging without data.anatomy is refused" "needs data.anatomy" \
    $G eval "$T/cfg.yaml" --out "$T/bad" --set data.anatomy= --set eval.methods=regression_kriging
fails "blocks larger than the brain for 3 folds are refused" "occupied blocks" \
    $G eval "$T/cfg.yaml" --out "$T/bad" --set eval.split=block --set eval.block_mm=500 --set eval.folds=10 --set eval.methods=idw

# regions: the phantom truth (an atlas on the 2 mm grid) summarised by its own
# anatomy, and by the real DK atlas on the 1 mm grid when the shared data is there.
regions_ref() { # atlas parcellation regions.csv
    $PY - "$@" <<'PY'
import sys, csv, numpy as np, h5py, nibabel as nib
atlas, parc, out = sys.argv[1:4]
with h5py.File(atlas, "r") as f:
    E = f["expression"][()]; M = f["mask"][()]; A = f["affine"][()]
    genes = [g.decode() if isinstance(g, bytes) else g for g in f["genes"][()]]
img = nib.load(parc); P = np.asarray(img.dataobj).astype(np.float64)
i, j, k = np.nonzero(P)
lab = P[i, j, k].astype(np.int64)
mm = img.affine @ np.vstack([i, j, k, np.ones_like(i)])
ijk = np.floor(np.linalg.inv(A) @ mm + 0.5 + 1e-6)[:3].astype(np.int64)
ok = np.all((ijk >= 0) & (ijk < np.array(E.shape[:0:-1])[:, None]), axis=0)
ai, aj, ak = ijk[0, ok], ijk[1, ok], ijk[2, ok]; lab = lab[ok]
inside = M[ak, aj, ai] != 0
ai, aj, ak, lab = ai[inside], aj[inside], ak[inside], lab[inside]
rows = {(int(r["id"]), r["gene"]): r for r in csv.DictReader(open(out))}
bad = 0
for g, name in enumerate(genes):
    v = E[g, ak, aj, ai].astype(np.float64)
    fin = np.isfinite(v)
    for L in np.unique(P[P != 0]).astype(np.int64):
        sel = (lab == L) & fin
        r = rows[(int(L), name)]
        n = int(sel.sum())
        if int(r["n_voxels"]) != n: bad += 1; continue
        if n == 0: continue
        m, s = v[sel].mean(), v[sel].std()
        if abs(float(r["mean"]) - m) > 1e-5 * (1 + abs(m)) or abs(float(r["sd"]) - s) > 1e-4 * (1 + s): bad += 1
print("checked", len(genes), "genes; mismatches", bad)
sys.exit(bad != 0)
PY
}
check "regions: truth atlas x phantom anatomy" $G regions "$T/ph/truth.h5" --parcellation "$T/ph/anatomy.nii.gz" \
    --out "$T/regions.csv"
check "regions.csv header id,label,gene,n_voxels,mean,sd,mean_uncertainty,n_samples,n_donors" \
    test "$(head -n 1 "$T/regions.csv")" = "id,label,gene,n_voxels,mean,sd,mean_uncertainty,n_samples,n_donors"
if have_py numpy && have_py h5py && have_py nibabel; then
    check "regions match numpy (same grid)" regions_ref "$T/ph/truth.h5" "$T/ph/anatomy.nii.gz" "$T/regions.csv"
    DK=${GENEINR_SHARED_DATA:-$PWD/../shared/data}
    if [ -f "$DK/atlas-desikankilliany.nii.gz" ]; then
        check "regions: 2 mm atlas x real DK parcellation (1 mm grid) with names" $G regions "$T/ph/truth.h5" \
            --parcellation "$DK/atlas-desikankilliany.nii.gz" --labels "$DK/atlas-desikankilliany.csv" --out "$T/dk.csv"
        check "regions match numpy (DK on another grid, nearest voxel through the affines)" \
            regions_ref "$T/ph/truth.h5" "$DK/atlas-desikankilliany.nii.gz" "$T/dk.csv"
        check "regions: DK names from the labels CSV (83 regions)" \
            bash -c "grep -q '^1,bankssts,' '$T/dk.csv' && test \$(tail -n +2 '$T/dk.csv' | cut -d, -f1 | sort -u | wc -l) = 83"
    else
        echo "skip - regions on the real DK atlas: ../shared/data not present"
    fi
else
    echo "skip - regions vs numpy: numpy, h5py or nibabel missing"
fi
fails "regions without --parcellation is refused" "regions needs --parcellation" $G regions "$T/ph/truth.h5" --out "$T/x.csv"
fails "regions of a missing atlas names the file" "nosuch.h5" $G regions "$T/nosuch.h5" --parcellation "$T/ph/anatomy.nii.gz" --out "$T/x.csv"
check "a failed regions run leaves no output" test ! -e "$T/x.csv"

# render.method: every baseline into the same atlas layout (on a 12-slice slab of the mask to stay fast).
if have_py numpy && have_py nibabel && have_py h5py; then
    $PY - "$T/ph/mask.nii.gz" "$T/slab.nii.gz" <<'PY'
import sys, numpy as np, nibabel as nib
m = nib.load(sys.argv[1]); d = np.asarray(m.dataobj).copy(); d[:, :, :40] = 0; d[:, :, 52:] = 0
nib.save(nib.Nifti1Image(d.astype(np.uint8), m.affine, m.header), sys.argv[2])
PY
    for m in nearest idw kriging regression_kriging; do
        check "render.method=$m writes an atlas (2 ranks)" $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$T/rm_$m" \
            --set render.method=$m --set render.mask="$T/slab.nii.gz" --nifti
    done
    check "run with render.method=idw renders without training (no checkpoint)" \
        bash -c "$G run '$T/cfg.yaml' --out '$T/rm_run' --set render.method=idw --set render.mask='$T/slab.nii.gz' && test -f '$T/rm_run/atlas.h5' && test ! -e '$T/rm_run/checkpoint.h5'"
    check "baseline atlases: same layout as the model's, values where the mask is, NIfTI per gene; nearest equals the nearest sample" \
        $PY - "$T" <<'PY'
import sys, csv, numpy as np, h5py, nibabel as nib
T = sys.argv[1]
rows = list(csv.DictReader(open(T + "/ph/samples.csv")))
xyz = np.array([[float(r["mni_x"]), float(r["mni_y"]), float(r["mni_z"])] for r in rows])
genes = [k for k in rows[0] if k.startswith("G")]
for m in ["nearest", "idw", "kriging", "regression_kriging"]:
    with h5py.File(T + "/rm_%s/atlas.h5" % m, "r") as f:
        E = f["expression"][()]; M = f["mask"][()]; A = f["affine"][()]
        assert E.shape[0] == len(genes), (m, E.shape)
        assert np.all(np.isfinite(E[:, M != 0])) and np.all(np.isnan(E[:, M == 0])), m
        assert f.attrs["kind"] in ("atlas", b"atlas")
    nii = nib.load(T + "/rm_%s/nifti/%s.nii.gz" % (m, genes[0]))
    assert np.allclose(nii.affine, A), m
    if m == "nearest":
        k, j, i = [a[:50] for a in np.nonzero(M)]
        mm = (A @ np.vstack([i, j, k, np.ones_like(i)]))[:3].T
        for g, name in enumerate(genes):
            vals = np.array([float(r[name]) if r[name] not in ("", "NaN") else np.nan for r in rows])
            ok = np.isfinite(vals)
            d = ((mm[:, None, :] - xyz[None, ok, :]) ** 2).sum(-1)
            want = vals[ok][d.argmin(1)]
            assert np.allclose(E[g, k, j, i], want, rtol=1e-5, atol=1e-5), (name, E[g, k, j, i][:5], want[:5])
print("ok")
PY
    check "score: regression_kriging and kriging atlases beat the nearest-sample map against the truth" \
        bash -c "for m in kriging regression_kriging; do $G score '$T/rm_'\$m/atlas.h5 --truth '$T/ph/truth.h5' --samples '$T/ph/samples.csv' --json '$T/'\$m.json >/dev/null || exit 1; done; $PY -c \"import json,sys; a=[json.load(open('$T/'+m+'.json')) for m in ('kriging','regression_kriging')]; sys.exit(not all(x['mean_r_model'] > x['mean_r_nearest'] for x in a))\""
    # data.prior: the INR learns the residual over regression kriging; eval and run both add the prior back.
    check "eval with data.prior=regression_kriging (INR over the RK mean) and RK on the same folds" \
        $G eval "$T/cfg.yaml" --out "$T/kfp" --set data.prior=regression_kriging --set eval.methods=inr,regression_kriging
    check "INR over the RK prior is at least as good as RK alone on held-out r (tolerance 0.01)" \
        awk -F, 'NR > 1 { r[$1] = $5 } END { exit !(r["inr"] > r["regression_kriging"] - 0.01) }' "$T/kfp/summary.csv"
    check "run with data.prior=regression_kriging trains and renders network + prior" \
        $G run "$T/cfg.yaml" --out "$T/rp" --set data.prior=regression_kriging --set render.mask="$T/slab.nii.gz"
    check "the prior model's atlas beats the nearest-sample map against the truth" \
        bash -c "$G score '$T/rp/atlas.h5' --truth '$T/ph/truth.h5' --samples '$T/ph/samples.csv' --json '$T/rp.json' >/dev/null && $PY -c \"import json,sys; a=json.load(open('$T/rp.json')); sys.exit(not a['mean_r_model'] > a['mean_r_nearest'])\""
    # data.prior_refit: the same weights rendered over the prior refitted on every sample (validation
    # tenth included): a different map, close to the one over the training samples' prior.
    check "render with data.prior_refit=true of the same checkpoint" \
        $G render "$T/cfg.yaml" --out "$T/rpr" --checkpoint "$T/rp/checkpoint.h5" --set data.prior=regression_kriging \
        --set data.prior_refit=true --set render.mask="$T/slab.nii.gz" --set render.nifti=none --set render.report=false
    check "data.prior_refit changes the map a little (refitted prior), not the weights" \
        $PY - "$T/rp/atlas.h5" "$T/rpr/atlas.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f, h5py.File(sys.argv[2], "r") as g:
    a = f["expression"][...]; b = g["expression"][...]
ok = np.isfinite(a) & np.isfinite(b)
assert ok.sum() > 1000 and (np.isfinite(a) == np.isfinite(b)).all()
d = np.abs(a[ok] - b[ok]).max(); r = np.corrcoef(a[ok], b[ok])[0, 1]
assert d > 1e-4 and r > 0.98, (d, r)
PY
    check "render with data.prior_refit=true on 2 ranks" \
        $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$T/rpr2" --checkpoint "$T/rp/checkpoint.h5" \
        --set data.prior=regression_kriging --set data.prior_refit=true --set render.mask="$T/slab.nii.gz" \
        --set render.nifti=none --set render.report=false
    # Bit-identical: render batches never cross a slice, so a voxel's prior and network rows do not
    # depend on the rank that renders it, refitted prior included.
    check "data.prior_refit: 1 and 2 ranks render bit-identical maps" \
        $PY -c "import h5py, numpy as np, sys; a = h5py.File('$T/rpr/atlas.h5', 'r')['expression'][...]; b = h5py.File('$T/rpr2/atlas.h5', 'r')['expression'][...]; sys.exit(not np.array_equal(a, b, equal_nan=True))"
    check "eval with data.prior_refit=true: INR at least as good as RK alone on held-out r (tolerance 0.01)" \
        bash -c "$G eval '$T/cfg.yaml' --out '$T/kfr' --set data.prior=regression_kriging --set data.prior_refit=true --set eval.methods=inr,regression_kriging >/dev/null && awk -F, 'NR > 1 { r[\$1] = \$5 } END { exit !(r[\"inr\"] > r[\"regression_kriging\"] - 0.01) }' '$T/kfr/summary.csv'"
    # The prior is part of the model: a render config that names another prior is refused.
    fails "a checkpoint trained over data.prior is not rendered without its prior" \
        "was trained with data.prior regression_kriging, the config none" \
        $G render "$T/cfg.yaml" --out "$T/rp_none" --checkpoint "$T/rp/checkpoint.h5" --set data.prior=none \
        --set render.mask="$T/slab.nii.gz"
    check "a model without a prior (a few steps)" $G train "$T/cfg.yaml" --out "$T/np" --set train.steps=4
    fails "a checkpoint trained without a prior is not rendered over one, on 2 ranks" \
        "was trained with data.prior none, the config kriging" \
        $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$T/np" --set data.prior=kriging --set render.mask="$T/slab.nii.gz"
    [ ! -e "$T/np/atlas.h5" ] && [ ! -e "$T/rp_none/atlas.h5" ] && ok "the refused renders wrote no atlas" \
        || notok "the refused renders wrote no atlas"
else
    echo "skip - render.method checks: numpy, h5py or nibabel missing"
fi
fails "render.method=regression_kriging without data.anatomy is refused" "needs data.anatomy" \
    $G render "$T/cfg.yaml" --out "$T/rm_bad" --set render.method=regression_kriging --set data.anatomy=
