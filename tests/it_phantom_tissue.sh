#!/bin/bash
# Realistic phantoms (issue 25): samples are tissue cut from a structure, their
# coordinates that tissue plus registration error. Checks (tests/phantom_tissue_check.py):
# class/hemisphere columns and anatomy.csv; the share of samples off their
# tissue's label and outside the brain; a sample outside the brain carries its
# tissue's value. --sample-truth voxel keeps the old phantoms (no class column;
# built-in coordinates inside the mask; a DK sample outside the brain is white
# matter). The DK part needs ../shared/data (else SKIP).
. "$(dirname "$0")/lib.sh" tissue
SHARED=${GENEINR_SHARED_DATA:-$PWD/../shared/data}
CHK=tests/phantom_tissue_check.py
if ! $PY -c "import h5py, numpy, nibabel, scipy" >/dev/null 2>&1; then
    echo "skip - realistic phantoms: /usr/bin/python3 lacks h5py, numpy, nibabel or scipy"
    exit 0
fi

check "built-in phantom, realistic samples (2 mm, 4 genes)" $G phantom --out "$T/b" --grid 2 --genes 4 --seed 6
$PY $CHK builtin "$T/b"
check "built-in phantom, --sample-truth voxel" $G phantom --out "$T/bv" --grid 2 --genes 4 --seed 6 --sample-truth voxel
$PY $CHK builtin-voxel "$T/bv"
check "the two differ only in their samples (same truth)" \
    $PY -c "import h5py, numpy as np, sys; a = h5py.File('$T/b/truth.h5')['expression'][()]; b = h5py.File('$T/bv/truth.h5')['expression'][()]; sys.exit(not np.array_equal(a, b, equal_nan=True))"
if $G phantom --out "$T/bad" --sample-truth nearest >"$T/bad.log" 2>&1; then
    notok "--sample-truth nearest is refused"
else
    grep -q "tissue or voxel" "$T/bad.log" && ok "--sample-truth nearest is refused, naming the choices" ||
        notok "--sample-truth nearest is refused, naming the choices" "$(cat "$T/bad.log")"
fi

if [ ! -f "$SHARED/atlas-desikankilliany.nii.gz" ]; then
    echo "skip - realistic DK phantom: shared reference data $SHARED not found"
    exit 0
fi
check "DK phantom, realistic samples (2 mm, 3 genes)" $G phantom --out "$T/dk" --dk --grid 2 --genes 3 --seed 4 --reference "$SHARED"
$PY $CHK dk "$T/dk" "$SHARED"
check "DK phantom, --sample-truth voxel" $G phantom --out "$T/dkv" --dk --grid 2 --genes 3 --seed 4 --reference "$SHARED" --sample-truth voxel
$PY $CHK dk-voxel "$T/dkv"
exit 0
