#!/bin/bash
# With the real reference files of ../shared/data (when present): render a
# model trained on the phantom onto the Desikan-Killiany atlas grid (RAS,
# 146x182x155, another origin) and check that it gives the same values as on
# the phantom's own LAS grid at the same MNI points - the fixed MNI box and
# the affines make a trained model mean the same on any grid. Then use the DK
# parcellation itself as the anatomical input.
. "$(dirname "$0")/lib.sh" shared
SHARED=${GENEINR_SHARED_DATA:-$PWD/../shared/data}
DK=$SHARED/atlas-desikankilliany.nii.gz
if [ ! -f "$DK" ]; then
    echo "skip - shared reference data: $SHARED not found"
    exit 0
fi
if ! $PY -c "import h5py, numpy, nibabel" >/dev/null 2>&1; then
    echo "skip - shared reference data: /usr/bin/python3 lacks h5py, numpy or nibabel"
    exit 0
fi

check "phantom (2 mm grid)" $G phantom --out "$T/ph" --grid 2 --genes 3 --seed 5
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/ph/samples.csv
model:
  width: 32
  omega0: 10
train:
  steps: 60
  log_every: 60
render:
  mask: $T/ph/mask.nii.gz
YAML
check "train without anatomy and render on the phantom grid" $MPIRUN -np 2 $G run "$T/cfg.yaml" --out "$T/a"
check "render the same checkpoint on the DK atlas grid" \
    $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$T/b" --checkpoint "$T/a/checkpoint.h5" --set render.mask=$DK
same_points() {
    $PY - "$T/a/atlas.h5" "$T/b/atlas.h5" <<'PY'
import sys, h5py, numpy as np
def load(p):
    with h5py.File(p, "r") as f:
        return f["expression"][()], f["mask"][()].astype(bool), f["affine"][()]
ea, ma, Aa = load(sys.argv[1])
eb, mb, Ab = load(sys.argv[2])
# in-mask voxels of b, to MNI mm, then to voxel indices of a
k, j, i = np.nonzero(mb)
mm = Ab @ np.vstack([i, j, k, np.ones_like(i)])
ia = np.linalg.inv(Aa) @ mm
ijk = np.rint(ia[:3]).astype(int)
on = np.all(np.abs(ia[:3] - ijk) < 1e-6, axis=0)
inside = on & np.all((ijk >= 0) & (ijk < np.array(ma.shape[::-1])[:, None]), axis=0)
ijk, sel = ijk[:, inside], np.nonzero(inside)[0]
keep = ma[ijk[2], ijk[1], ijk[0]]
ijk, sel = ijk[:, keep], sel[keep]
assert len(sel) > 10000, len(sel)
va = ea[:, ijk[2], ijk[1], ijk[0]]
vb = eb[:, k[sel], j[sel], i[sel]]
d = np.max(np.abs(va - vb))
print("%d shared MNI points, max |difference| %.2g" % (len(sel), d))
assert d < 1e-5, d
PY
}
check "the same MNI point gets the same value on the LAS phantom grid and the RAS DK grid" same_points
check "train and render with the DK parcellation as anatomical input" \
    $MPIRUN -np 2 $G run "$T/cfg.yaml" --out "$T/c" --set data.anatomy=$DK --set render.mask=$DK
check "info: the checkpoint knows the DK labels" bash -c "$G info $T/c/checkpoint.h5 | grep -q 'anatomy labels 8[0-9]'"
