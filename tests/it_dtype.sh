#!/bin/bash
# it_dtype.sh - the smaller atlas (issue 29, render.dtype uint16): /expression
# as uint16 codes with each gene's scale and offset, decoded by the README's
# h5py snippet as written and by nibabel from the 3-D NIfTI maps
# (scl_slope/scl_inter) to within scale / 2 (+ float rounding) of the float32
# render, NaN / code 0 where float32 has NaN; byte-identical at 1 and 2 ranks,
# whether the range comes from one write (slab in render.buffer_mb) or from a
# first pass (one slice per write); `geneinr info` verifies it and `regions`
# gives the float32 atlas's means within the bound; uint16 with a 4-D NIfTI is
# refused. Small: the 2 mm phantom, 6 genes, IDW (no training).
. "$(dirname "$0")/lib.sh" dtype
if ! have_py h5py || ! have_py nibabel; then
    skip "render.dtype uint16" "h5py or nibabel missing for /usr/bin/python3"
    exit 0
fi
check "phantom (2 mm grid, 6 genes)" $G phantom --out "$T/ph" --grid 2 --genes 6 --seed 11
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/ph/samples.csv
render:
  mask: $T/ph/mask.nii.gz
  method: idw
  nifti: 3d
  preview_genes: 0
  report: false
YAML

check "render float32, 1 rank" $MPIRUN -np 1 $G render "$T/cfg.yaml" --out "$T/f32"
check "render uint16, 1 rank (one write: the range from the slab)" \
    $MPIRUN -np 1 $G render "$T/cfg.yaml" --out "$T/u1" --set render.dtype=uint16
check "render uint16, 2 ranks" $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$T/u2" --set render.dtype=uint16
# one slice of 6 genes is 6 x 91 x 109 x 6 B ~ 0.36 MB: buffer_mb 1 gives a few slices per write, many writes
if $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$T/u2b" --set render.dtype=uint16 --set render.buffer_mb=1 \
    >"$T/u2b.log" 2>&1 && grep -q "uint16: each gene group is rendered twice" "$T/u2b.log"; then
    ok "render uint16, 2 ranks, several writes per slab (the range from a first pass)"
else
    notok "render uint16, 2 ranks, several writes per slab (the range from a first pass)" \
        "$(tail -n 3 "$T/u2b.log" | tr '\n' ' ')"
fi
check "render uint16, 1 rank, several writes" \
    $MPIRUN -np 1 $G render "$T/cfg.yaml" --out "$T/u1b" --set render.dtype=uint16 --set render.buffer_mb=1

# byte-identical codes, scales and offsets whatever the ranks and writes
if $PY - "$T" >"$T/same.log" 2>&1 <<'PY'
import sys, h5py, numpy as np
t = sys.argv[1]
ref = h5py.File(t + "/u1/atlas.h5", "r")["expression"]
assert ref.dtype == np.uint16, ref.dtype
for other in ["u2", "u2b", "u1b"]:
    e = h5py.File(t + "/" + other + "/atlas.h5", "r")["expression"]
    assert e.dtype == np.uint16 and np.array_equal(e[()], ref[()]), other
    for k in ["scale", "offset"]:
        assert np.array_equal(e.attrs[k], ref.attrs[k]), (other, k)
PY
then ok "uint16 /expression, scale and offset byte-identical at 1 and 2 ranks, in one write or several"
else notok "uint16 /expression, scale and offset byte-identical at 1 and 2 ranks, in one write or several" \
    "$(tail -n 2 "$T/same.log" | tr '\n' ' ')"; fi

# the README's snippet as written, for every gene, against the float32 atlas
snippet=$(awk '/^Reading it:/{f=1} f&&/^```python$/{g=1;next} g&&/^```$/{exit} g' README.md)
if [ -z "$snippet" ]; then
    notok "README's atlas snippet found"
else
    for gene in G01 G04; do
        printf '%s\n' "${snippet//runs\/demo/$T/u1}" | sed "s/\"G01\"/\"$gene\"/" >"$T/snippet.py"
        cat >>"$T/snippet.py" <<PY
with h5py.File("$T/f32/atlas.h5") as f32:
    ref = f32["expression"][g]
    sc = h5py.File("$T/u1/atlas.h5")["expression"].attrs["scale"][g]
assert vol.dtype == np.float64 and vol.shape == ref.shape
assert np.array_equal(np.isnan(vol), np.isnan(ref)), "NaN exactly where float32 has NaN (outside the mask)"
inside = ~np.isnan(ref)
err, bound = np.abs(vol[inside] - ref[inside]).max(), sc / 2 + 2.0**-22 * np.abs(ref[inside]).max()
rng = ref[inside].max() - ref[inside].min()
assert err <= bound, (err, bound)
assert sc <= rng / 65534 * (1 + 2.0**-20) and err > 0, (sc, rng, err)
print("$gene", "max error", err, "bound", bound, "range", rng)
PY
        check "README's h5py snippet decodes uint16 $gene within scale/2 of float32" $PY "$T/snippet.py"
    done
fi

# nibabel: nifti/GENE.nii.gz is uint16 with the gene's scale and offset as scl_slope/scl_inter
if $PY - "$T" >"$T/nii.log" 2>&1 <<'PY'
import sys, h5py, nibabel as nib, numpy as np
t = sys.argv[1]
a = h5py.File(t + "/u1/atlas.h5", "r")
genes = list(a["genes"].asstr()[()])
sc, off, m = a["expression"].attrs["scale"], a["expression"].attrs["offset"], a["mask"][()].T > 0
for g, name in enumerate(genes):
    img = nib.load(t + "/u1/nifti/" + name + ".nii.gz")
    ref = nib.load(t + "/f32/nifti/" + name + ".nii.gz").get_fdata()
    assert img.get_data_dtype() == np.uint16, img.get_data_dtype()
    slope, inter = img.dataobj.slope, img.dataobj.inter   # nibabel moves them from the header to the proxy
    assert slope == sc[g] and inter == off[g], (slope, sc[g], inter, off[g])
    assert np.allclose(img.affine, nib.load(t + "/f32/nifti/" + name + ".nii.gz").affine)
    v = img.get_fdata()
    err = np.abs(v[m] - ref[m]).max()
    bound = sc[g] / 2 + 2.0**-22 * np.abs(ref[m]).max()
    assert err <= bound, (name, err, bound)
    assert np.all(np.isnan(ref[~m])) and np.all(v[~m] == inter), "outside the mask: float32 NaN, uint16 scl_inter"
    assert np.all(np.asarray(img.dataobj.get_unscaled())[~m] == 0)
print("ok", len(genes))
PY
then ok "nibabel: nifti/GENE.nii.gz uint16 with scl_slope/scl_inter = scale/offset, within scale/2 of float32; code 0 outside"
else notok "nibabel: nifti/GENE.nii.gz uint16 with scl_slope/scl_inter = scale/offset, within scale/2 of float32; code 0 outside" \
    "$(tail -n 2 "$T/nii.log" | tr '\n' ' ')"; fi

# sizes: uint16 is smaller
s32=$(stat -c %s "$T/f32/atlas.h5"); s16=$(stat -c %s "$T/u1/atlas.h5")
if [ "$s16" -lt "$s32" ]; then ok "uint16 atlas smaller ($s16 B) than float32 ($s32 B)"
else notok "uint16 atlas smaller than float32" "$s16 vs $s32"; fi

# info verifies the codes' hashes and says what the file is; a changed code is found
if $G info "$T/u1/atlas.h5" >"$T/info.log" 2>&1 && grep -q "uint16 codes" "$T/info.log" &&
    grep -q "all 6 genes of /expression match" "$T/info.log"; then
    ok "info: uint16 atlas, every gene's codes match their content hash"
else notok "info: uint16 atlas, every gene's codes match their content hash" "$(tail -n 3 "$T/info.log" | tr '\n' ' ')"; fi
cp "$T/u1/atlas.h5" "$T/damaged.h5"
$PY - "$T/damaged.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    e = f["expression"]; q = e[2]; k = np.argwhere(q > 0)[0]; q[tuple(k)] ^= 1; e[2] = q
PY
fails_cleanly "info: a changed uint16 code is found" "does not match its content hash" $G info "$T/damaged.h5"

# regions: the uint16 atlas's region means within the bound of the float32 atlas's
check "regions on the float32 atlas" $G regions "$T/f32/atlas.h5" --parcellation "$T/ph/anatomy.nii.gz" --out "$T/r32.csv"
check "regions on the uint16 atlas" $G regions "$T/u1/atlas.h5" --parcellation "$T/ph/anatomy.nii.gz" --out "$T/r16.csv"
if $PY - "$T" >"$T/reg.log" 2>&1 <<'PY'
import sys, csv, h5py, numpy as np
t = sys.argv[1]
sc = dict(zip(h5py.File(t + "/u1/atlas.h5", "r")["genes"].asstr()[()], h5py.File(t + "/u1/atlas.h5", "r")["expression"].attrs["scale"]))
a = list(csv.DictReader(open(t + "/r32.csv"))); b = list(csv.DictReader(open(t + "/r16.csv")))
assert len(a) == len(b) > 0
n = 0
for x, y in zip(a, b):
    assert (x["id"], x["gene"], x["n_voxels"]) == (y["id"], y["gene"], y["n_voxels"])
    if x["mean"]:
        m = float(x["mean"])
        assert abs(float(y["mean"]) - m) <= sc[x["gene"]] / 2 + 1e-6 * abs(m) + 1e-9, (x, y)
        n += 1
assert n > 0
print(n, "region means")
PY
then ok "regions: uint16 region means within scale/2 of float32's"
else notok "regions: uint16 region means within scale/2 of float32's" "$(tail -n 2 "$T/reg.log" | tr '\n' ' ')"; fi

# the other readers: score against the truth (r and RMSE as float32's), correlate (the same r), preview
if $G score "$T/f32/atlas.h5" --truth "$T/ph/truth.h5" --samples "$T/ph/samples.csv" --json "$T/s32.json" >/dev/null 2>&1 &&
    $G score "$T/u1/atlas.h5" --truth "$T/ph/truth.h5" --samples "$T/ph/samples.csv" --json "$T/s16.json" >"$T/s.log" 2>&1 &&
    $PY - "$T/s32.json" "$T/s16.json" >>"$T/s.log" 2>&1 <<'PY'
import sys, json
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
def nums(x, path=""):
    if isinstance(x, dict):
        for k, v in x.items(): yield from nums(v, path + "/" + k)
    elif isinstance(x, list):
        for i, v in enumerate(x): yield from nums(v, path + "/" + str(i))
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield path, x
A, B = dict(nums(a)), dict(nums(b))
assert A.keys() == B.keys() and len(A) > 0
for k in A:
    if "seconds" not in k:
        assert abs(A[k] - B[k]) <= 1e-4 * max(1, abs(A[k])), (k, A[k], B[k])
PY
then ok "score: the uint16 atlas scores as the float32 one (r and RMSE within 1e-4)"
else notok "score: the uint16 atlas scores as the float32 one (r and RMSE within 1e-4)" "$(tail -n 2 "$T/s.log" | tr '\n' ' ')"; fi
$PY - "$T/ph/mask.nii.gz" "$T/map.nii.gz" <<'PY'
import sys, nibabel as nib, numpy as np
m = nib.load(sys.argv[1]); i, j, k = np.indices(m.shape)
nib.save(nib.Nifti1Image((np.sin(i / 9.0) + np.cos(k / 7.0) + j / 50.0).astype(np.float32), m.affine), sys.argv[2])
PY
check "correlate on the float32 atlas" $G correlate "$T/f32/atlas.h5" --map "$T/map.nii.gz" --out "$T/c32" --nulls 20
check "correlate on the uint16 atlas" $G correlate "$T/u1/atlas.h5" --map "$T/map.nii.gz" --out "$T/c16" --nulls 20
if $PY - "$T/c32/correlations.csv" "$T/c16/correlations.csv" >"$T/c.log" 2>&1 <<'PY'
import sys, csv
a = {r["gene"]: float(r["r"]) for r in csv.DictReader(open(sys.argv[1]))}
b = {r["gene"]: float(r["r"]) for r in csv.DictReader(open(sys.argv[2]))}
assert a.keys() == b.keys() and len(a) == 6
assert all(abs(a[g] - b[g]) < 1e-4 for g in a), [(g, a[g], b[g]) for g in a]
PY
then ok "correlate: the uint16 atlas's r within 1e-4 of float32's"
else notok "correlate: the uint16 atlas's r within 1e-4 of float32's" "$(tail -n 2 "$T/c.log" | tr '\n' ' ')"; fi
check "preview of the uint16 atlas" $G preview "$T/u1/atlas.h5" --genes G01,G02 --out "$T/pv"

# kriging with its SD on a block of the mask: /uncertainty stays float32, /expression uint16,
# byte-identical at 1 and 2 ranks with several writes per slab (the first pass skips the SD)
$PY - "$T" <<'PY'
import sys, nibabel as nib, numpy as np
t = sys.argv[1]
lines = open(t + "/ph/samples.csv").read().splitlines()
open(t + "/small.csv", "w").write("\n".join([lines[0]] + lines[1::6]) + "\n")
m = nib.load(t + "/ph/mask.nii.gz")
d = np.asarray(m.dataobj).astype(np.float32)
keep = np.zeros_like(d); keep[30:54, 40:68, 38:50] = 1
nib.save(nib.Nifti1Image(d * keep, m.affine, m.header), t + "/block.nii.gz")
PY
kset="--set data.samples=$T/small.csv --set render.mask=$T/block.nii.gz --set render.method=kriging --set render.uncertainty=true --set render.dtype=uint16"
check "kriging + uncertainty, uint16, 1 rank" $MPIRUN -np 1 $G render "$T/cfg.yaml" --out "$T/k1" $kset
check "kriging + uncertainty, uint16, 2 ranks, one slice per write" \
    $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$T/k2" $kset --set render.buffer_mb=1
check "kriging + uncertainty, float32, 1 rank" $MPIRUN -np 1 $G render "$T/cfg.yaml" --out "$T/kf" $kset --set render.dtype=float32
if $PY - "$T" >"$T/k.log" 2>&1 <<'PY'
import sys, h5py, numpy as np
t = sys.argv[1]
a, b, f = (h5py.File(t + "/" + r + "/atlas.h5", "r") for r in ["k1", "k2", "kf"])
assert a["expression"].dtype == np.uint16 and a["uncertainty"].dtype == np.float32
for k in ["expression", "uncertainty", "distance", "mask"]:
    assert np.array_equal(a[k][()], b[k][()], equal_nan=k != "expression"), k
assert np.array_equal(a["uncertainty"][()], f["uncertainty"][()], equal_nan=True)
q, ref = a["expression"][()], f["expression"][()]
sc, off = a["expression"].attrs["scale"], a["expression"].attrs["offset"]
v = np.where(q == 0, np.nan, off[:, None, None, None] + sc[:, None, None, None] * q)
assert np.array_equal(np.isnan(v), np.isnan(ref))
err = np.nanmax(np.abs(v - ref).reshape(len(sc), -1), axis=1)
assert np.all(err <= sc / 2 + 2.0**-22 * np.nanmax(np.abs(ref))), (err, sc)
PY
then ok "kriging + uncertainty: uint16 /expression within scale/2 of float32, /uncertainty float32 and unchanged, 1 = 2 ranks"
else notok "kriging + uncertainty: uint16 /expression within scale/2 of float32, /uncertainty float32 and unchanged, 1 = 2 ranks" \
    "$(tail -n 2 "$T/k.log" | tr '\n' ' ')"; fi

# uint16 with a 4-D NIfTI: refused before anything is rendered
fails_cleanly "render.dtype uint16 with render.nifti 4d is refused" "one scl_slope for all genes" \
    $G render "$T/cfg.yaml" --out "$T/u4" --set render.dtype=uint16 --set render.nifti=4d
fails_cleanly "render.dtype int8 is refused" "render.dtype" $G render "$T/cfg.yaml" --out "$T/u5" --set render.dtype=int8
