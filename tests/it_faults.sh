#!/bin/bash
# it_faults.sh - the faults of issue 16, each reproduced (docs/ROBUSTNESS.md
# has the table): a full disk under render (1 and 2 ranks) and under the final
# checkpoint, kill -9 then --resume and the training log, render with another
# anatomy image, masks with singular or non-finite affines, impossible sample
# coordinates, two jobs in one run folder, and stale outputs of earlier
# weights. The failure rule checked throughout: exit 1 (never a crash or a
# hang), one message naming the cause, nothing half-written at a final name,
# no temporary files left.
. "$(dirname "$0")/lib.sh" faults
MPIRUN="mpirun --oversubscribe"
# fails: lib.sh's fails_cleanly (exit 1, PATTERN on stderr, no crash or hang).
fails() { fails_cleanly "$@"; }

check "phantom (2 mm grid, 4 genes)" $G phantom --out "$T/ph" --grid 2 --genes 4 --seed 3
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/ph/samples.csv
  anatomy: $T/ph/anatomy.nii.gz
model: {arch: fourier, fourier_features: 16, width: 32, hidden_layers: 2}
train: {steps: 40, checkpoint_every: 20, schedule: constant, val_every: 20}
render: {mask: $T/ph/mask.nii.gz}
YAML
check "train the model the faults use" $G train "$T/cfg.yaml" --out "$T/base"

# ---- 1, 2: a full disk (a 2 MB tmpfs, as root) ---------------------------------
FULL="$T/full"
mkdir -p "$FULL"
cleanup() { mountpoint -q "$FULL" && umount "$FULL"; }
trap cleanup EXIT
if [ "$(id -u)" != 0 ]; then
    for n in "render onto a full disk, 2 ranks" "render onto a full disk, 1 rank" "final checkpoint onto a full disk"; do
        echo "skip - $n: needs root to mount a small tmpfs"
    done
elif ! mount -t tmpfs -o size=2m geneinr-full "$FULL" 2>/dev/null; then
    for n in "render onto a full disk, 2 ranks" "render onto a full disk, 1 rank" "final checkpoint onto a full disk"; do
        echo "skip - $n: cannot mount a tmpfs here"
    done
else
    no_leftovers() { ! ls "$FULL" | grep -q "atlas.h5\|\.tmp\|\.geneinr.lock"; }
    for np in 2 1; do
        rm -rf "${FULL:?}"/*
        cp "$T/base/checkpoint.h5" "$FULL/"
        fails "render onto a full disk, $np rank(s): exit 1 with the write error, no hang, no crash" \
            "geneinr: error: .*atlas.h5.tmp.*(write|disk)" $MPIRUN -np $np $G render "$T/cfg.yaml" --out "$FULL"
        check "render onto a full disk, $np rank(s): no atlas, no temporary file, no lock left" no_leftovers
    done
    # The final checkpoint: fill the disk up to a few sizes around the
    # checkpoint's, then train (the failure moves from the data to HDF5's
    # closing writes, where it used to crash in MPI_Finalize).
    bad=""
    for keep in 16384 40960 65536 98304 131072; do
        rm -rf "${FULL:?}"/*
        avail=$(df --output=avail -B1 "$FULL" | tail -n 1)
        head -c $((avail - keep)) /dev/zero > "$FULL/filler" 2>/dev/null
        timeout 120 $MPIRUN -np 1 $G train "$T/cfg.yaml" --out "$FULL" --set train.checkpoint_every=0 \
            >"$T/f.out" 2>"$T/f.err"
        rc=$?
        if [ $rc != 1 ] || ! grep -q "checkpoint.*\(space\|disk full\|failed\)" "$T/f.err" || grep -q "Segmentation" "$T/f.err"; then
            bad="$bad keep=$keep:exit=$rc"
        fi
        ls "$FULL" | grep -q 'checkpoint.h5\|\.tmp' && bad="$bad keep=$keep:leftover"
    done
    if [ -z "$bad" ]; then
        ok "final checkpoint onto a full disk (5 fill levels), 1 rank: exit 1 naming the checkpoint, no crash, nothing left"
    else
        notok "final checkpoint onto a full disk (5 fill levels), 1 rank: exit 1 naming the checkpoint, no crash, nothing left" "$bad"
    fi
    cleanup
fi

# ---- 3: kill -9, --resume and the training log --------------------------------
K="--set train.steps=400 --set train.log_every=1000"
check "uninterrupted reference run (400 steps)" $G train "$T/cfg.yaml" --out "$T/ref" $K
$G train "$T/cfg.yaml" --out "$T/k" $K >/dev/null 2>&1 &
pid=$!
for i in $(seq 1 200); do [ -f "$T/k/checkpoint.h5" ] && break; sleep 0.05; done
sleep 0.3
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
if [ -f "$T/k/checkpoint.h5" ]; then
    ok "kill -9 by PID after a checkpoint"
else
    notok "kill -9 by PID after a checkpoint" "no checkpoint was written before the kill"
fi
ckpt_step=$($G info "$T/k/checkpoint.h5" | sed -n 's/^  steps: \([0-9]*\).*/\1/p')
# Every row the checkpoint covers reached the disk before it.
check "after kill -9 the log holds every row up to the checkpoint's step ($ckpt_step)" \
    awk -F, -v s="$ckpt_step" 'NR > 1 && $1 <= s { n++ } END { exit n < s }' "$T/k/train_log.csv"
printf '999999,0.12' >> "$T/k/train_log.csv"     # a torn last line, as a kill while writing leaves
check "resume after kill -9" $G train "$T/cfg.yaml" --out "$T/k" $K --resume
check "the resumed log has whole rows only (6 fields)" \
    awk -F, 'NF != 6 { bad++ } END { exit bad > 0 }' "$T/k/train_log.csv"
check "the resumed log has steps 1..400 once each, in order" \
    awk -F, 'NR > 1 { if ($1 != NR - 1) bad++ } END { exit bad > 0 || NR != 401 }' "$T/k/train_log.csv"
check "the resumed log equals the uninterrupted one (step, loss, val, lr, grad norm)" \
    cmp <(cut -d, -f1-5 "$T/k/train_log.csv") <(cut -d, -f1-5 "$T/ref/train_log.csv")
check "the resumed checkpoint is byte-identical to the uninterrupted one" \
    cmp "$T/k/checkpoint.h5" "$T/ref/checkpoint.h5"

# ---- 4: render with an anatomy image that is not the checkpoint's ---------------
if $PY -c "import nibabel" 2>/dev/null; then
    $PY - "$T" <<'PY'
import sys, nibabel as nib, numpy as np
T = sys.argv[1]
a = nib.load(T + "/ph/anatomy.nii.gz"); d = np.asanyarray(a.dataobj).copy()
e = d.astype(np.int16); e[e == e.max()] = 777           # one label renamed
h = a.header.copy(); h.set_data_dtype(np.int16)
nib.save(nib.Nifti1Image(e, a.affine, h), T + "/other_labels.nii.gz")
f = d.astype(np.float32) * 0.5                          # non-integer labels
h = a.header.copy(); h.set_data_dtype(np.float32)
nib.save(nib.Nifti1Image(f, a.affine, h), T + "/half_labels.nii.gz")
m = nib.load(T + "/ph/mask.nii.gz"); md = np.asanyarray(m.dataobj)
def bad_sform(name, change):
    # Written through the header: nibabel itself refuses to build an image
    # around such an affine.
    hdr = m.header.copy(); s = m.affine.copy(); change(s)
    hdr["srow_x"], hdr["srow_y"], hdr["srow_z"] = s[0], s[1], s[2]
    hdr["sform_code"] = 4; hdr["qform_code"] = 0
    nib.save(nib.Nifti1Image(md, None, hdr), T + "/" + name)
bad_sform("singular_mask.nii.gz", lambda s: s.__setitem__((slice(0, 3), 2), 0))  # every slice at one z
bad_sform("inf_mask.nii.gz", lambda s: s.__setitem__((0, 0), np.inf))              # non-finite
PY
    fails "render refuses an anatomy image with other labels than the checkpoint's" \
        "not the image .* was trained with" $G render "$T/cfg.yaml" --out "$T/base" --set data.anatomy="$T/other_labels.nii.gz"
    fails "render refuses an anatomy image with non-integer labels" \
        "integer labels" $G render "$T/cfg.yaml" --out "$T/base" --set data.anatomy="$T/half_labels.nii.gz"
    # ---- 5: singular and non-finite affines ---------------------------------------
    fails "render refuses a mask with a singular sform" \
        "singular_mask.nii.gz: the voxel-to-mm affine \(sform\) is singular" \
        $G render "$T/cfg.yaml" --out "$T/base" --set render.mask="$T/singular_mask.nii.gz"
    fails "render refuses a mask with a non-finite sform" \
        "inf_mask.nii.gz: the voxel-to-mm affine \(sform\) has a non-finite entry" \
        $G render "$T/cfg.yaml" --out "$T/base" --set render.mask="$T/inf_mask.nii.gz"
    fails "train refuses an anatomy image with a singular sform" "singular" \
        $G train "$T/cfg.yaml" --out "$T/sing" --set data.anatomy="$T/singular_mask.nii.gz"
    check "no atlas was written by the refused renders" test ! -e "$T/base/atlas.h5"
else
    for n in "render: other anatomy labels" "render: non-integer labels" "singular sform" "non-finite sform" \
             "train: singular anatomy" "no atlas from refused renders"; do
        echo "skip - $n: nibabel (python3-nibabel) is not installed"
    done
fi

# ---- 6: impossible sample coordinates --------------------------------------------
awk -F, -v OFS=, 'NR == 7 { $3 = 100000 } { print }' "$T/ph/samples.csv" > "$T/far.csv"
fails "a sample at x = 100,000 mm is refused with path:line" "far.csv:7: column 'mni_x': 100000 mm is outside the MNI box" \
    $G train "$T/cfg.yaml" --out "$T/far" --set data.samples="$T/far.csv"
awk -F, -v OFS=, 'NR > 1 { $3 = $3 * 1000 } { print }' "$T/ph/samples.csv" > "$T/milli.csv"
fails "coordinates in micrometres (every x times 1000) are refused with path:line" \
    "milli.csv:[0-9]+: column 'mni_x': .* outside the MNI box" $G train "$T/cfg.yaml" --out "$T/milli" --set data.samples="$T/milli.csv"

# ---- 7: two jobs in one run folder ------------------------------------------------
$G train "$T/cfg.yaml" --out "$T/lock" --set train.steps=100000 --set train.checkpoint_every=0 >/dev/null 2>&1 &
pid=$!
for i in $(seq 1 200); do [ -f "$T/lock/.geneinr.lock" ] && break; sleep 0.05; done
fails "a second job in a busy run folder is refused, naming the holder" "in use by process $pid" \
    $G train "$T/cfg.yaml" --out "$T/lock" --set train.steps=5
fails "render into a folder that a training holds is refused" "in use by process $pid" \
    $G render "$T/cfg.yaml" --out "$T/lock"
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
check "a stale lock of a dead process is taken over with a note" \
    bash -c "$G train '$T/cfg.yaml' --out '$T/lock' --set train.steps=5 > '$T/lock.out' &&
             grep -q 'took over the lock .* from process $pid' '$T/lock.out'"
check "the lock is removed when the command ends" test ! -e "$T/lock/.geneinr.lock"
echo "otherhost.example 4242 1700000000" > "$T/lock/.geneinr.lock"
fails "a lock held on another host is refused with how to remove it" "locked by process 4242 on host otherhost.example" \
    $G train "$T/cfg.yaml" --out "$T/lock" --set train.steps=5
rm -f "$T/lock/.geneinr.lock"
fails "a failing command removes its lock too" "data.samples|nosuch" \
    $G train "$T/cfg.yaml" --out "$T/lock" --set data.samples="$T/nosuch.csv"
check "no lock left after the failure" test ! -e "$T/lock/.geneinr.lock"

# ---- 8: stale outputs --------------------------------------------------------------
S="$T/stale"
check "train and render with per-gene NIfTIs" $G run "$T/cfg.yaml" --out "$S" --set render.nifti=3d --set train.steps=5
check "the NIfTIs are there" bash -c "ls '$S'/nifti/*.nii.gz >/dev/null"
check "retraining removes the atlas and the NIfTIs of the earlier weights" \
    bash -c "$G train '$T/cfg.yaml' --out '$S' --set train.steps=6 && test ! -e '$S/atlas.h5' && ! ls '$S'/nifti/*.nii.gz 2>/dev/null"
check "render with NIfTIs again" $G render "$T/cfg.yaml" --out "$S" --set render.nifti=3d
check "rendering without NIfTIs removes the old ones beside the new atlas" \
    bash -c "$G render '$T/cfg.yaml' --out '$S' --set render.nifti=none && test -f '$S/atlas.h5' && ! ls '$S'/nifti/*.nii.gz 2>/dev/null"
