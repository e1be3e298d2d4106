#!/bin/bash
# it_faults_integ.sh - issue 27's integrity, geometry and progress classes:
#   1. content hashes: a checkpoint dataset zeroed in full (its fletcher32 is 0
#      too), replaced with a valid checksum, or transplanted from another
#      checkpoint fails the load; so does a damaged gene of an atlas (preview,
#      info); files from before the hashes still load, and `info` says so;
#   2. geometry: a mask or label image on a wrong affine (identity instead of
#      MNI), or a render.mask that cannot be read, is refused before any
#      training by train, eval and sweep (data.max_outside); a warning below it;
#   3. progress: the prior fit, eval's kriging folds and render print progress
#      lines with an ETA (GENEINR_PROGRESS_EVERY=0 prints every unit).
# Tiny phantom (2 mm, 4 genes), one shared trained model: ~15 s.
. "$(dirname "$0")/lib.sh" faults_integ
# fails NAME PATTERN CMD...: exit 1 (not a crash, not a hang) with PATTERN (extended regex) in the output.
fails() {
    local name=$1 pattern=$2; shift 2
    timeout 120 "$@" >"$T/f.out" 2>&1
    local rc=$?
    if [ "$rc" = 1 ] && grep -Eq -- "$pattern" "$T/f.out"; then ok "$name"
    else notok "$name" "exit $rc; $(grep -v '^step' "$T/f.out" | head -n 3 | tr '\n' ' ')"; fi
}
# says NAME PATTERN CMD...: exit 0 with PATTERN in the output.
says() {
    local name=$1 pattern=$2; shift 2
    timeout 120 "$@" >"$T/s.out" 2>&1
    local rc=$?
    if [ "$rc" = 0 ] && grep -Eq -- "$pattern" "$T/s.out"; then ok "$name"
    else notok "$name" "exit $rc; $(grep -v '^step' "$T/s.out" | tail -n 3 | tr '\n' ' ')"; fi
}
HASH='does not match its content hash'

check "phantom (2 mm grid, 4 genes)" $G phantom --out "$T/ph" --grid 2 --genes 4 --seed 3
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/ph/samples.csv
  anatomy: $T/ph/anatomy.nii.gz
model: {arch: fourier, fourier_features: 16, width: 32, hidden_layers: 2}
train: {steps: 30, checkpoint_every: 30, schedule: constant, val_every: 10}
render: {mask: $T/ph/mask.nii.gz, preview_genes: 0, report: false}
YAML
check "train the model the checks share" $G train "$T/cfg.yaml" --out "$T/base"
check "  ... and a second one (another seed) to transplant from" $G train "$T/cfg.yaml" --out "$T/other" \
    --set train.seed=2
CK=$T/base/checkpoint.h5

# ---- 1. content hashes -----------------------------------------------------------------
edit() { $PY - "$@" >/dev/null 2>"$T/py.err"; }
# The /best_params chunk zeroed in full, its stored checksum included.
cp "$CK" "$T/zero.h5"
edit "$T/zero.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    c = f["best_params"].id.get_chunk_info(0)
with open(sys.argv[1], "r+b") as fh:
    fh.seek(c.byte_offset); fh.write(b"\0" * c.size)
PY
mkdir -p "$T/zr" && cp "$T/zero.h5" "$T/zr/checkpoint.h5"
fails "hashes: render of a checkpoint whose /best_params chunk is zeroed in full fails (no flat atlas)" \
    "/best_params $HASH" $G render "$T/cfg.yaml" --out "$T/zr"
check "  ... and leaves no atlas" bash -c "grep -q 'content hash' '$T/f.out' && test ! -e '$T/zr/atlas.h5'"
# Replaced with h5py: a valid fletcher32, the old hash attribute kept.
cp "$CK" "$T/repl.h5"
edit "$T/repl.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    a = dict(f["best_params"].attrs); n = f["best_params"].shape
    del f["best_params"]
    d = f.create_dataset("best_params", data=np.zeros(n, np.float32), chunks=True, fletcher32=True)
    for k, v in a.items(): d.attrs[k] = v
PY
fails "hashes: a /best_params replaced with h5py (valid fletcher32) fails the load" "/best_params $HASH" \
    $G info "$T/repl.h5"
# Transplanted, attributes and all, from another checkpoint.
cp "$CK" "$T/trans.h5"
edit "$T/trans.h5" "$T/other/checkpoint.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f, h5py.File(sys.argv[2], "r") as g:
    del f["best_params"]; g.copy("best_params", f)
PY
fails "hashes: a /best_params transplanted from another checkpoint fails the load" "/best_params $HASH" \
    $G info "$T/trans.h5"
says "hashes: an intact checkpoint: info says its hashes check" "content hashes: ok" $G info "$CK"
# A checkpoint from before the hashes (its hash attributes removed): loads, with a note.
cp "$CK" "$T/old.h5"
edit "$T/old.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    del f.attrs["content_id"]
    for k in f: del f[k].attrs["xxh3_128"]
PY
says "hashes: a checkpoint without hashes (older) still loads; info says it is unchecked" \
    "content hashes: none" $G info "$T/old.h5"
# The atlas: a gene rewritten with h5py, /mask replaced, and an atlas without hashes.
check "render the shared model" $G render "$T/cfg.yaml" --out "$T/base"
says "hashes: info checks every gene of an intact atlas" "content hashes: ok .*all 4 genes" $G info "$T/base/atlas.h5"
cp "$T/base/atlas.h5" "$T/gene.h5"
edit "$T/gene.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f: f["expression"][1] = 0.5
PY
fails "hashes: preview of an atlas whose gene was rewritten fails, naming the gene" "gene G02 .*$HASH" \
    $G preview "$T/gene.h5" --genes G02 --out "$T/pv"
fails "hashes: info of that atlas fails" "$HASH" $G info "$T/gene.h5"
cp "$T/base/atlas.h5" "$T/mask.h5"
edit "$T/mask.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f: f["mask"][...] = np.ones(f["mask"].shape, np.uint8)
PY
fails "hashes: an atlas whose /mask was rewritten fails to open (regions, preview, score)" "/mask $HASH" \
    $G preview "$T/mask.h5" --out "$T/pv"
cp "$T/base/atlas.h5" "$T/oldatlas.h5"
edit "$T/oldatlas.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    del f.attrs["content_id"]; del f["expression_xxh3_rows"]
    for k in f: del f[k].attrs["xxh3_128"]
PY
says "hashes: an atlas without hashes (older) still opens; info says it is unchecked" "content hashes: none" \
    $G info "$T/oldatlas.h5"

# ---- 2. geometry -----------------------------------------------------------------------
$PY - "$T/ph" <<'PY' 2>"$T/py.err"
import sys, nibabel as nib, numpy as np
for n in ("mask", "anatomy"):
    im = nib.load(f"{sys.argv[1]}/{n}.nii.gz")
    o = nib.Nifti1Image(np.asarray(im.dataobj), np.eye(4), im.header)
    o.set_sform(np.eye(4), 4); o.set_qform(np.eye(4), 4)
    nib.save(o, f"{sys.argv[1]}/{n}_identity.nii.gz")
PY
fails "geometry: train with a mask on an identity affine is refused before training" \
    "mask_identity.nii.gz \(render.mask\): [0-9]+ of 3702 samples .* outside the mask, more than data.max_outside" \
    $G train "$T/cfg.yaml" --out "$T/gm" --set render.mask="$T/ph/mask_identity.nii.gz"
check "  ... no checkpoint written" bash -c "grep -q 'outside the mask' '$T/f.out' && test ! -e '$T/gm/checkpoint.h5'"
fails "geometry: train with a label image on an identity affine is refused before training" \
    "anatomy_identity.nii.gz \(data.anatomy\): [0-9]+ of 3702 samples .* get no label" \
    $G train "$T/cfg.yaml" --out "$T/ga" --set data.anatomy="$T/ph/anatomy_identity.nii.gz"
fails "geometry: a render.mask that does not exist is found before training, not after" \
    "nothere.nii.gz.*render.mask" $G train "$T/cfg.yaml" --out "$T/gn" --set render.mask="$T/nothere.nii.gz"
check "  ... no checkpoint written" bash -c "grep -q 'render.mask' '$T/f.out' && test ! -e '$T/gn/checkpoint.h5'"
fails "geometry: eval with a mask on an identity affine is refused before any fold" "outside the mask" \
    $G eval "$T/cfg.yaml" --out "$T/ge" --set render.mask="$T/ph/mask_identity.nii.gz" --set eval.methods=nearest \
    --set eval.folds=2
check "  ... no fold run" bash -c "grep -q 'outside the mask' '$T/f.out' && test ! -e '$T/ge/folds/1'"
cat > "$T/sweep.yaml" <<YAML
base: $T/cfg.yaml
set: {data.anatomy: $T/ph/anatomy_identity.nii.gz, train.steps: 5}
grid: {model.width: [8, 16]}
YAML
fails "geometry: sweep with a label image on an identity affine is refused before any trial" "get no label" \
    $G sweep "$T/sweep.yaml" --out "$T/gs"
check "  ... no trial started" bash -c "grep -q 'no label' '$T/f.out' && test ! -e '$T/gs/trials/000'"
says "geometry: below data.max_outside but above half of it: trains with a warning" \
    "warning: 654 of 3702 samples .* get no anatomy label" \
    $G train "$T/cfg.yaml" --out "$T/gw" --set data.max_outside=0.3 --set train.steps=2
$PY - "$T/ph/mask.nii.gz" "$T/slab.nii.gz" <<'PY' 2>"$T/py.err"
import sys, nibabel as nib, numpy as np
im = nib.load(sys.argv[1]); d = np.asarray(im.dataobj).copy(); d[:, :, :40] = 0; d[:, :, 52:] = 0
nib.save(nib.Nifti1Image(d, im.affine, im.header), sys.argv[2])
PY
says "geometry: a region-of-interest mask (a slab: 81% of samples outside) trains, with a note" \
    "note: [0-9]+ of 3702 samples .* outside render.mask .* lies among them" \
    $G train "$T/cfg.yaml" --out "$T/gr" --set render.mask="$T/slab.nii.gz" --set train.steps=2
fails "geometry: data.max_outside is validated" "data.max_outside: 2 is out of range" \
    $G config "$T/cfg.yaml" --set data.max_outside=2
says "geometry: a mask and labels centred far apart are named (with data.max_outside 1)" \
    "centred [0-9]+ mm apart" $G train "$T/cfg.yaml" --out "$T/gc" --set data.max_outside=1 --set train.steps=2 \
    --set data.anatomy="$T/ph/anatomy_identity.nii.gz"

# ---- 3. progress -----------------------------------------------------------------------
export GENEINR_PROGRESS_EVERY=0
says "progress: the prior fit prints progress with an ETA, then its time" \
    "^prior fit: [0-9]+/~[0-9]+ likelihood evaluations .*ETA" \
    $G train "$T/cfg.yaml" --out "$T/pp" --set data.prior=kriging --set baseline.fit_samples=200 --set train.steps=2
check "  ... and a final line with the phase's time" grep -q "^prior fit: done in" "$T/s.out"
says "progress: render prints progress with an ETA" "^render: [0-9]+/[0-9]+ rounds of slices .*ETA" \
    $G render "$T/cfg.yaml" --out "$T/base"
says "progress: eval's kriging folds print progress with an ETA" \
    "^eval: fold 1/2 kriging: [0-9]+/~[0-9]+ likelihood evaluations .*ETA" \
    $G eval "$T/cfg.yaml" --out "$T/pe" --set eval.methods=kriging --set eval.folds=2 --set baseline.fit_samples=200
unset GENEINR_PROGRESS_EVERY
