#!/bin/bash
# it_render_bound.sh - render.buffer_mb is a real bound: when one z-slice of all
# genes does not fit, render splits the genes into groups, and the atlas is the
# same (bit for bit) as one rendered with a buffer that holds everything, at 1
# and 2 ranks, in factorized and concat mode. The same up to float rounding:
# batches of voxels are cut differently when a write holds fewer slices, and
# sgemm may round a row differently in another batch (1 ulp seen). Also: resume reports changed
# training settings and refuses those that break bit-identical continuation
# unless --force, which records them in the checkpoint's settings history.
. "$(dirname "$0")/lib.sh" render_bound
MPIRUN="timeout 300 mpirun --oversubscribe"

# 40 genes on the 2 mm grid (91 x 109 voxels a slice): one slice of all genes
# with 4096-voxel batches takes 40 x (9919 + 4096) x 4 B = 2.1 MB > 1 MB.
check "phantom (2 mm grid, 40 genes)" $G phantom --out "$T/ph" --grid 2 --genes 40 --seed 5
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/ph/samples.csv
model:
  arch: fourier
  fourier_features: 16
  fourier_scale: 0.5
  width: 32
  hidden_layers: 2
  donor_dim: 2
train:
  steps: 10
  schedule: constant
  checkpoint_every: 5
  val_every: 5
render:
  mask: $T/ph/mask.nii.gz
  batch_voxels: 4096
YAML

same_expression() {
    $PY - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a = h5py.File(sys.argv[1], "r"); b = h5py.File(sys.argv[2], "r")
ea, eb = a["expression"][...], b["expression"][...]
assert ea.shape == eb.shape, (ea.shape, eb.shape)
assert np.array_equal(np.isnan(ea), np.isnan(eb)), "NaN pattern differs"
m = ~np.isnan(ea)
assert m.sum() > 0
d = np.abs(ea[m] - eb[m]).max(); scale = np.abs(eb[m]).max()
assert d <= 1e-5 * scale, "max diff %g (values up to %g)" % (d, scale)
assert np.array_equal(a["mask"][...], b["mask"][...]), "mask differs"
PY
}

# render_in_groups NAME NP DIR SETTINGS...: render DIR's model at buffer_mb=1 on NP ranks; it must
# split the genes into groups, keep its output buffers within 1 MB and give DIR/whole.h5's atlas.
render_in_groups() {
    local name=$1 np=$2 dir=$3; shift 3
    if $MPIRUN -np $np $G render "$T/cfg.yaml" --out "$dir" "$@" --set render.buffer_mb=1 >"$T/$name.log" 2>&1 \
        && grep -q "rendering in groups of" "$T/$name.log"; then
        ok "$name, $np rank(s): buffer_mb=1 renders in gene groups"
    else
        notok "$name, $np rank(s): buffer_mb=1 renders in gene groups" "$(tail -n 3 "$T/$name.log" | tr '\n' ' ')"
    fi
    local mb
    mb=$(grep -o "per rank [0-9.]* MB output buffers" "$T/$name.log" | grep -o "[0-9.]* MB" | cut -d' ' -f1)
    awk -v m="$mb" 'BEGIN { exit !(m != "" && m <= 1.0) }' \
        && ok "$name, $np rank(s): the output buffers stay within render.buffer_mb ($mb MB)" \
        || notok "$name, $np rank(s): the output buffers stay within render.buffer_mb" "'$mb' MB"
    check "$name, $np rank(s): gene groups give the same atlas (1e-5 relative)" \
        same_expression "$dir/atlas.h5" "$dir/whole.h5"
}

for mode in factorized concat; do
    S="--set model.gene_mode=$mode"
    ranks="1 2"
    [ $mode = concat ] && S="$S --set model.gene_dim=4 --set train.steps=3 --set render.batch_voxels=2048" && ranks=2
    check "$mode: train" $MPIRUN -np 1 $G train "$T/cfg.yaml" --out "$T/$mode" $S
    check "$mode: render with a buffer for all genes" $MPIRUN -np 1 $G render "$T/cfg.yaml" --out "$T/$mode" $S
    cp "$T/$mode/atlas.h5" "$T/$mode/whole.h5"
    for np in $ranks; do
        render_in_groups "$mode" $np "$T/$mode" $S
    done
done

# Atlas chunks of several genes (render.chunk_genes; automatic past 20,000 chunks, atlas.h):
# gene groups cut on chunk boundaries (8-gene chunks: groups of 16, not the 17 that fit), and
# groups narrower than a chunk (40-gene chunks over groups of 17: every write rewrites a
# chunk it shares with the next group). Both read back (h5py, the NIfTI export through
# gi_atlas_read_gene, geneinr info, preview and regions) as the one-gene-per-chunk atlas.
R="$T/factorized"
for cg in 8 40; do
    if $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$R" --set render.chunk_genes=$cg --set render.buffer_mb=1 \
        --set render.nifti=3d --set render.preview_genes=2 >"$T/cg$cg.log" 2>&1; then
        ok "chunks of $cg genes: render (2 ranks, buffer_mb=1)"
    else
        notok "chunks of $cg genes: render (2 ranks, buffer_mb=1)" "$(tail -n 3 "$T/cg$cg.log" | tr '\n' ' ')"
    fi
    want="rendering in groups of 16 genes$" && [ $cg = 40 ] && want="rendering in groups of 17 genes (fewer than"
    grep -q "$want" "$T/cg$cg.log" && grep -q "atlas chunks: 1 slice x $cg genes" "$T/cg$cg.log" \
        && ok "chunks of $cg genes: gene groups as planned ($want)" \
        || notok "chunks of $cg genes: gene groups as planned ($want)" "$(grep -m2 "render:" "$T/cg$cg.log" | tr '\n' ' ')"
    check "chunks of $cg genes: the dataset's chunks are ($cg, 1, 109, 91)" \
        $PY -c "import h5py, sys; c = h5py.File('$R/atlas.h5', 'r')['expression'].chunks; sys.exit(c != ($cg, 1, 109, 91) and print(c))"
    check "chunks of $cg genes: the same atlas as one gene per chunk (1e-5 relative)" \
        same_expression "$R/atlas.h5" "$R/whole.h5"
    check "chunks of $cg genes: the NIfTI maps are the atlas's genes (nibabel)" $PY - "$R" <<'PY'
import sys, h5py, numpy as np, nibabel as nib
R = sys.argv[1]
with h5py.File(R + "/atlas.h5", "r") as f:
    genes = list(f["genes"].asstr()[:])
    for g in (0, 7, 8, 17, 18, 39):
        vol = nib.load("%s/nifti/%s.nii.gz" % (R, genes[g])).get_fdata(dtype=np.float32)
        want = f["expression"][g].transpose(2, 1, 0)    # (k, j, i) -> (i, j, k)
        assert np.array_equal(np.isnan(vol), np.isnan(want)), genes[g]
        m = ~np.isnan(want)
        assert np.array_equal(vol[m], want[m]), genes[g]
PY
    check "chunks of $cg genes: geneinr info, preview and regions read it" bash -c "
        $G info '$R/atlas.h5' | grep -q '40 genes' && $G preview '$R/atlas.h5' --genes G40,G09 --out '$T/pv$cg' &&
        ls '$T/pv$cg/G40.png' '$T/pv$cg/G09.png' >/dev/null &&
        $G regions '$R/atlas.h5' --parcellation '$T/ph/anatomy.nii.gz' --out '$T/reg$cg.csv' && [ \$(wc -l <'$T/reg$cg.csv') -gt 2 ]"
done

# Fit/predict methods (render.c, the same loop) keep the same bound: a baseline (kriging) and the INR
# over a kriging prior (data.prior, as configs/atlas.yaml renders) split the genes into
# groups at buffer_mb=1; the atlas matches the one-write render (1e-5 relative: sgemm may round
# a block of genes differently from all genes) and is bit-identical at 1 and 2 ranks. On 4
# slices of the mask and a quarter of the samples: kriging factors the samples' covariance and
# evaluates one with every sample at every voxel.
same_bits() { $PY "$(dirname "$0")/atlas_check.py" same-bits "$1" "$2"; }
check "a 4-slice mask" $PY "$(dirname "$0")/atlas_check.py" slab "$T/ph/mask.nii.gz" "$T/slab.nii.gz"
awk 'NR == 1 || NR % 4 == 0' "$T/ph/samples.csv" >"$T/quarter.csv"   # 925 samples: a quick kriging fit
K="--set data.samples=$T/quarter.csv --set baseline.fit_samples=300 --set render.mask=$T/slab.nii.gz
   --set render.preview_genes=0 --set render.report=false"
check "kriging prior: train the INR over it" $MPIRUN -np 1 $G train "$T/cfg.yaml" --out "$T/prior" --set data.prior=kriging $K
for what in baseline prior; do
    if [ $what = baseline ]; then S="--set render.method=kriging $K"; R="$T/krig"; else S="--set data.prior=kriging $K"; R="$T/prior"; fi
    check "$what: render with a buffer for all genes" $MPIRUN -np 1 $G render "$T/cfg.yaml" --out "$R" $S
    cp "$R/atlas.h5" "$R/whole.h5"
    for np in 1 2; do
        render_in_groups "$what" $np "$R" $S
        cp "$R/atlas.h5" "$R/groups$np.h5"
    done
    check "$what: 1 and 2 ranks give the same atlas, bit for bit" same_bits "$R/groups1.h5" "$R/groups2.h5"
done

# A baseline's per-gene NIfTI maps come from the same writer as the INR's: a file geneinr did not
# write (OLD.nii.gz, the user's) stays (only maps OUT/.geneinr-manifest lists go, see
# it_faults_names.sh), every gene's map is its atlas volume (nibabel), and genes whose file names
# would collide are refused by name before anything is rendered or written, on 2 ranks.
R="$T/krig"
mkdir -p "$R/nifti" && : >"$R/nifti/OLD.nii.gz"
check "baseline: render with NIfTI maps (2 ranks)" $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$R" \
    --set render.method=idw $K --set render.nifti=3d
check "baseline: a file geneinr did not write stays, every gene has its map" \
    bash -c "[ -e '$R/nifti/OLD.nii.gz' ] && [ \$(ls '$R/nifti' | wc -l) = 41 ]"
check "baseline: each NIfTI map is its gene's atlas volume (nibabel)" $PY - "$R" <<'PY'
import sys, h5py, numpy as np, nibabel as nib
R = sys.argv[1]
with h5py.File(R + "/atlas.h5", "r") as f:
    genes = list(f["genes"].asstr()[:])
    for g in (0, 21, 39):
        img = nib.load("%s/nifti/%s.nii.gz" % (R, genes[g]))
        vol, want = img.get_fdata(dtype=np.float32), f["expression"][g].transpose(2, 1, 0)
        assert "idw" in img.header["descrip"].tobytes().decode(), img.header["descrip"]
        m = ~np.isnan(want)
        assert m.sum() > 0 and np.array_equal(vol[m], want[m]), genes[g]
PY
sed '1s/,G01,G02,/,A B,A_B,/' "$T/quarter.csv" >"$T/collide.csv"
rm -rf "$T/collide"
if $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$T/collide" --set render.method=idw $K \
    --set data.samples="$T/collide.csv" --set render.nifti=3d >"$T/collide.log" 2>&1; then
    notok "genes whose NIfTI file names collide are refused" "exit 0"
else
    grep -q "genes 'A B' .*and 'A_B' .*would share the output file name A_B" "$T/collide.log" \
        && [ ! -e "$T/collide/nifti/A_B.nii.gz" ] && [ ! -e "$T/collide/atlas.h5" ] \
        && ok "genes whose NIfTI file names collide are refused by name before rendering (2 ranks)" \
        || notok "genes whose NIfTI file names collide are refused by name before rendering (2 ranks)" \
            "$(grep -m1 error "$T/collide.log")"
fi

# Resume with changed settings (the factorized run stopped at 10 steps).
R="$T/factorized"
if $MPIRUN -np 1 $G train "$T/cfg.yaml" --out "$R" --resume --set train.steps=15 --set train.lr=0.0005 \
    >"$T/rs.log" 2>&1; then
    notok "resume with a changed train.lr is refused without --force" "exit 0"
else
    grep -q "train.lr (0.001 -> 0.0005)" "$T/rs.log" && grep -q -- "--force" "$T/rs.log" \
        && ok "resume with a changed train.lr is refused without --force, naming the change" \
        || notok "resume with a changed train.lr is refused without --force, naming the change" "$(tail -n 2 "$T/rs.log" | tr '\n' ' ')"
fi
if $MPIRUN -np 1 $G train "$T/cfg.yaml" --out "$R" --resume --set train.steps=15 --set data.prior=kriging \
    >"$T/rs2.log" 2>&1; then
    notok "resume with a changed data.prior is refused (the prior defines the targets)" "exit 0"
else
    grep -q "data.prior (none -> kriging)" "$T/rs2.log" \
        && ok "resume with a changed data.prior is refused (the prior defines the targets)" \
        || notok "resume with a changed data.prior is refused (the prior defines the targets)" "$(tail -n 2 "$T/rs2.log" | tr '\n' ' ')"
fi
check "resume with only train.steps changed (constant schedule) is accepted" \
    $MPIRUN -np 1 $G train "$T/cfg.yaml" --out "$R" --resume --set train.steps=15
grep -q "train.steps changed from 10 to 15" "$T/last.log" && ok "resume reports the changed step budget" \
    || notok "resume reports the changed step budget" "$(head -n 3 "$T/last.log" | tr '\n' ' ')"
check "resume --force with changed lr and batch size continues" \
    $MPIRUN -np 1 $G train "$T/cfg.yaml" --out "$R" --resume --force --set train.steps=20 --set train.lr=0.0005 \
    --set train.batch_size=64
check "the settings history is kept in the checkpoint" \
    bash -c "$G info '$R/checkpoint.h5' | grep -q 'settings changed at step 15: train.lr: 0.001 -> 0.0005' &&
             $G info '$R/checkpoint.h5' | grep -q 'settings changed at step 15: train.batch_size: 0 -> 64'"
