#!/bin/bash
# it_sd_render.sh - the rendered uncertainty (issue 28): render.uncertainty
# with kriging writes atlas.h5 /uncertainty (the shape, chunks, deflate and
# per-gene content hashes of /expression, NaN outside the mask), /distance
# (equal to a brute-force nearest-sample distance), /sample_mni and
# /sample_donor; the atlas is byte-identical at 1 and 2 ranks and with gene
# groups (render.buffer_mb); the README's snippet reads it with h5py; nibabel
# reads uncertainty.nii.gz, nifti/GENE_sd.nii.gz and distance.nii.gz (shape,
# affine, values of the atlas); geneinr info verifies /uncertainty and finds
# a changed value; a method without an SD is refused before rendering.
# Small: 600 of the phantom's samples, a block of the 2 mm mask, 12 genes.
. "$(dirname "$0")/lib.sh" sd_render
if ! have_py h5py || ! have_py nibabel; then
    skip "uncertainty render" "h5py or nibabel missing for /usr/bin/python3"
    exit 0
fi
check "phantom (2 mm grid, 12 genes)" $G phantom --out "$T/ph" --grid 2 --genes 12 --seed 7
# every 6th sample; the mask cut to a block of 24 x 28 x 12 voxels (the lattice
# step 3 then has cells cut by the block's edge, and slices without voxels)
$PY - "$T" <<'PY'
import sys, nibabel as nib, numpy as np
t = sys.argv[1]
lines = open(t + "/ph/samples.csv").read().splitlines()
open(t + "/small.csv", "w").write("\n".join([lines[0]] + lines[1::6]) + "\n")
m = nib.load(t + "/ph/mask.nii.gz")
d = np.asarray(m.dataobj).astype(np.float32)
keep = np.zeros_like(d); keep[30:54, 40:68, 38:50] = 1
nib.save(nib.Nifti1Image(d * keep, m.affine, m.header), t + "/mask.nii.gz")
PY
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/small.csv
render:
  mask: $T/mask.nii.gz
  method: kriging
  uncertainty: true
  uncertainty_step: 3
  nifti: both
  preview_genes: 0
  report: false
YAML

check "render kriging + uncertainty, 1 rank" $MPIRUN -np 1 $G render "$T/cfg.yaml" --out "$T/r1"
check "render kriging + uncertainty, 2 ranks" $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$T/r2"
# one slice of 12 genes with their SDs takes 12 x 9919 x 8 B = 0.95 MB + scratch > 1 MB: gene groups
if $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$T/rg" --set render.buffer_mb=1 >"$T/rg.log" 2>&1 &&
    grep -q "rendering in groups of" "$T/rg.log"; then
    ok "render kriging + uncertainty, 2 ranks, in gene groups (render.buffer_mb=1)"
else
    notok "render kriging + uncertainty, 2 ranks, in gene groups (render.buffer_mb=1)" "$(tail -n 3 "$T/rg.log" | tr '\n' ' ')"
fi

# byte-identical datasets at 1 and 2 ranks (and in gene groups)
for other in r2 rg; do
    if $PY - "$T/r1/atlas.h5" "$T/$other/atlas.h5" >"$T/cmp.log" 2>&1 <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
for k in ["expression", "uncertainty", "distance", "mask", "sample_mni"]:
    x, y = a[k][()], b[k][()]
    assert x.dtype == y.dtype and x.shape == y.shape, k
    assert x.tobytes() == y.tobytes(), "%s differs" % k
assert list(a["sample_donor"].asstr()[()]) == list(b["sample_donor"].asstr()[()])
PY
    then ok "r1 and $other: /expression, /uncertainty, /distance, /mask, /sample_* byte-identical"
    else notok "r1 and $other: /expression, /uncertainty, /distance, /mask, /sample_* byte-identical" "$(tail -n 2 "$T/cmp.log" | tr '\n' ' ')"; fi
done

# layout, NaN outside the mask, distance by brute force
if $PY - "$T/r1/atlas.h5" "$T/small.csv" >"$T/layout.log" 2>&1 <<'PY'
import sys, csv, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
e, u, d, m = f["expression"], f["uncertainty"], f["distance"][()], f["mask"][()] > 0
assert u.shape == e.shape and u.dtype == np.float32, (u.shape, u.dtype)
assert u.chunks == e.chunks and u.compression == e.compression, (u.chunks, e.chunks)
assert "uncertainty_xxh3_rows" in f and f["uncertainty_xxh3_rows"].shape == f["expression_xxh3_rows"].shape
uv = u[()]
assert np.isnan(uv[:, ~m]).all() and np.isnan(d[~m]).all(), "values outside the mask"
assert np.isfinite(uv[:, m]).all() and (uv[:, m] > 0).all(), "SD not positive inside"
assert np.isfinite(d[m]).all()
rows = list(csv.DictReader(open(sys.argv[2])))
pts = np.array([[float(r["mni_x"]), float(r["mni_y"]), float(r["mni_z"])] for r in rows])
assert np.allclose(f["sample_mni"][()], pts.astype(np.float32)), "sample_mni"
assert list(f["sample_donor"].asstr()[()]) == [r["donor"] for r in rows], "sample_donor"
k, j, i = np.nonzero(m)
A = f["affine"][()]
vox = np.stack([i, j, k, np.ones_like(i)], 1).astype(np.float64) @ A.T
smp = f["sample_mni"][()]
brute = np.sqrt(((vox[:, None, :3] - smp[None]) ** 2).sum(-1)).min(1)
err = np.abs(d[m] - brute).max()
assert err < 1e-4, "distance differs from brute force by %g mm" % err
print("in-mask voxels", m.sum(), "max |distance - brute force|", err)
PY
then ok "/uncertainty as /expression (shape, chunks, deflate, row hashes), NaN outside the mask; /distance = brute force"
else notok "/uncertainty as /expression (shape, chunks, deflate, row hashes), NaN outside the mask; /distance = brute force" "$(tail -n 2 "$T/layout.log" | tr '\n' ' ')"; fi

# the README's snippet, exactly, on this atlas
snippet=$(awk '/^Reading the uncertainty/{f=1} f&&/^```python$/{g=1;next} g&&/^```$/{exit} g' README.md)
if [ -z "$snippet" ]; then
    notok "README's uncertainty snippet found"
else
    printf '%s\nassert sd.shape == mean.shape and np.nanmin(sd) > 0 and dist.shape == sd.shape and len(donor) == len(mni)\n' \
        "${snippet//runs\/demo/$T/r1}" >"$T/snippet.py"
    check "README's uncertainty snippet runs with h5py" $PY "$T/snippet.py"
fi

# NIfTIs: shape, affine, values as in the atlas
if $PY - "$T/r1" >"$T/nii.log" 2>&1 <<'PY'
import sys, h5py, nibabel as nib, numpy as np
r = sys.argv[1]
f = h5py.File(r + "/atlas.h5", "r")
A, u, d = f["affine"][()], f["uncertainty"][()], f["distance"][()]
genes = list(f["genes"].asstr()[()])
img = nib.load(r + "/uncertainty.nii.gz")
assert img.shape == (u.shape[3], u.shape[2], u.shape[1], u.shape[0]), img.shape
assert np.allclose(img.affine, A)
assert np.array_equal(np.asarray(img.dataobj).transpose(3, 2, 1, 0), u, equal_nan=True), "uncertainty.nii.gz values"
for g, name in enumerate(genes):
    im = nib.load(r + "/nifti/%s_sd.nii.gz" % name)
    assert np.allclose(im.affine, A)
    assert np.array_equal(np.asarray(im.dataobj).transpose(2, 1, 0), u[g], equal_nan=True), name
im = nib.load(r + "/distance.nii.gz")
assert im.shape == d.shape[::-1] and np.allclose(im.affine, A)
assert np.array_equal(np.asarray(im.dataobj).transpose(2, 1, 0), d, equal_nan=True), "distance.nii.gz values"
man = open(r + "/.geneinr-manifest").read()
for name in ["uncertainty.nii.gz", "distance.nii.gz"] + ["nifti/%s_sd.nii.gz" % g for g in genes]:
    assert name in man, "%s not in the manifest" % name
PY
then ok "nibabel reads uncertainty.nii.gz, nifti/GENE_sd.nii.gz, distance.nii.gz as the atlas (and the manifest lists them)"
else notok "nibabel reads uncertainty.nii.gz, nifti/GENE_sd.nii.gz, distance.nii.gz as the atlas (and the manifest lists them)" "$(tail -n 2 "$T/nii.log" | tr '\n' ' ')"; fi

# geneinr info verifies /uncertainty, and finds one changed value
if $G info "$T/r1/atlas.h5" 2>&1 | grep -q "of /expression and of /uncertainty match"; then
    ok "info verifies every gene of /uncertainty"
else
    notok "info verifies every gene of /uncertainty" "$($G info "$T/r1/atlas.h5" 2>&1 | tail -n 2 | tr '\n' ' ')"
fi
cp "$T/r1/atlas.h5" "$T/bad.h5"
$PY - "$T/bad.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    u = f["uncertainty"]
    m = f["mask"][()] > 0
    k, j, i = [int(v[0]) for v in np.nonzero(m)]
    u[1, k, j, i] = u[1, k, j, i] * 2
PY
fails_cleanly "info: a changed /uncertainty value fails its content hash" "uncertainty\[1\].*content hash" $G info "$T/bad.h5"

# a method without an SD: refused before anything is rendered (by the config's
# validation, so `run` refuses before training too)
fails_cleanly "render.uncertainty with idw is refused" "render.uncertainty: render.method idw.*has no predictive SD" \
    $G render "$T/cfg.yaml" --out "$T/ridw" --set render.method=idw
if [ ! -e "$T/ridw/atlas.h5" ]; then ok "no atlas after the refusal"; else notok "no atlas after the refusal"; fi

# The INR: an ensemble of 2 over a kriging prior, a
# few steps; its SD (prior variance + members' spread, calibrated) rendered
# the same at 1 and 2 ranks; a single network without a prior is refused.
cat > "$T/inr.yaml" <<YAML
data:
  samples: $T/small.csv
  prior: kriging
model:
  arch: fourier
  fourier_features: 16
  fourier_scale: 0.5
  width: 32
  hidden_layers: 2
  donor_dim: 2
train:
  steps: 20
  schedule: constant
  val_every: 10
  ensemble: 2
render:
  mask: $T/mask.nii.gz
  uncertainty: true
  uncertainty_step: 3
  nifti: none
  preview_genes: 0
  report: false
YAML
check "train an INR ensemble of 2 over a kriging prior" $MPIRUN -np 2 $G train "$T/inr.yaml" --out "$T/inr"
check "render its SD, 1 rank" $MPIRUN -np 1 $G render "$T/inr.yaml" --out "$T/inr"
cp "$T/inr/atlas.h5" "$T/inr1.h5"
check "render its SD, 2 ranks" $MPIRUN -np 2 $G render "$T/inr.yaml" --out "$T/inr"
if $PY - "$T/inr1.h5" "$T/inr/atlas.h5" >"$T/inr.log" 2>&1 <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
for k in ["expression", "uncertainty", "distance"]:
    assert a[k][()].tobytes() == b[k][()].tobytes(), "%s differs" % k
u, m = a["uncertainty"][()], a["mask"][()] > 0
assert np.isfinite(u[:, m]).all() and (u[:, m] > 0).all() and np.isnan(u[:, ~m]).all()
assert "calibrated" in a["uncertainty"].attrs["what"], a["uncertainty"].attrs["what"]
PY
then ok "INR: /expression, /uncertainty, /distance byte-identical at 1 and 2 ranks; SD > 0 inside, calibration recorded"
else notok "INR: /expression, /uncertainty, /distance byte-identical at 1 and 2 ranks; SD > 0 inside, calibration recorded" "$(tail -n 2 "$T/inr.log" | tr '\n' ' ')"; fi
check "train a single network without data.prior" $G train "$T/inr.yaml" --out "$T/one" --set train.ensemble=1 \
    --set data.prior=none --set train.steps=5 --set render.uncertainty=false
fails_cleanly "render.uncertainty with a single network without data.prior is refused" \
    "render.uncertainty: render.method inr has no predictive SD as a single network without data.prior" \
    $G render "$T/inr.yaml" --out "$T/one" --set train.ensemble=1 --set data.prior=none
