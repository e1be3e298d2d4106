#!/bin/bash
# it_faults_names.sh - issue 27's output-name faults, each class reproduced:
#   manifest: geneinr removes or replaces only files it wrote (OUT/.geneinr-manifest);
#   names:    gene and donor names that would break the outputs are refused
#             when the sample table is read, before any work;
#   regions:  --out naming an input, a parcellation off the atlas, duplicate
#             label ids, integer label images of any width.
# Failure rule as in it_faults.sh: exit 1 with one message naming the cause,
# never a crash or a hang.
. "$(dirname "$0")/lib.sh" faults_names
fails() { fails_cleanly "$@"; }
same() { cmp -s "$1" "$2"; }

check "phantom (2 mm grid, 4 genes)" $G phantom --out "$T/ph" --grid 2 --genes 4 --seed 3
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/ph/samples.csv
  anatomy: $T/ph/anatomy.nii.gz
model: {arch: fourier, fourier_features: 8, width: 16, hidden_layers: 1}
train: {steps: 8, schedule: constant, val_every: 8}
render: {mask: $T/ph/mask.nii.gz, preview_genes: 2, report: false}
YAML

# ---- manifest: remove or replace only what geneinr wrote ----------------------------
U="$T/u"
mkdir -p "$U/nifti"
cp "$T/ph/mask.nii.gz" "$T/ph/anatomy.nii.gz" "$U/nifti/"
cp "$T/ph/mask.nii.gz" "$U/expression.nii.gz"
check "manifest: run with the user's mask and anatomy kept in OUT/nifti/ and a file at OUT/expression.nii.gz" \
    $G run "$T/cfg.yaml" --out "$U" --nifti --set render.mask="$U/nifti/mask.nii.gz" \
    --set data.anatomy="$U/nifti/anatomy.nii.gz"
check "manifest: the user's files are all still there, unchanged" bash -c \
    "cmp -s '$T/ph/mask.nii.gz' '$U/nifti/mask.nii.gz' && cmp -s '$T/ph/anatomy.nii.gz' '$U/nifti/anatomy.nii.gz' \
     && cmp -s '$T/ph/mask.nii.gz' '$U/expression.nii.gz'"
check "manifest: OUT/.geneinr-manifest lists the atlas, the maps and the previews" bash -c \
    "grep -q ' atlas.h5\$' '$U/.geneinr-manifest' && grep -q ' nifti/G01.nii.gz\$' '$U/.geneinr-manifest' \
     && grep -q ' preview/G01.png\$' '$U/.geneinr-manifest' && ! grep -q 'mask.nii.gz' '$U/.geneinr-manifest'"
cp -r "$U" "$T/copy"
echo "edited" >> "$U/nifti/G02.nii.gz"
cp "$U/nifti/G02.nii.gz" "$T/g02.edited"
check "manifest: retraining keeps the user's files and an output the user changed since, and says so" bash -c \
    "$G train '$T/cfg.yaml' --out '$U' --set data.anatomy='$U/nifti/anatomy.nii.gz' > '$T/retrain.out' 2>&1 \
     && cmp -s '$T/ph/mask.nii.gz' '$U/nifti/mask.nii.gz' && cmp -s '$T/ph/mask.nii.gz' '$U/expression.nii.gz' \
     && cmp -s '$T/g02.edited' '$U/nifti/G02.nii.gz' && test ! -e '$U/nifti/G01.nii.gz' && test ! -e '$U/atlas.h5' \
     && grep -Eq 'left [0-9]+ files? .*changed since' '$T/retrain.out'"
fails "manifest: render refuses to overwrite the changed output, naming it" "nifti/G02.nii.gz.*(not a file geneinr wrote|changed)" \
    $G render "$T/cfg.yaml" --out "$U" --nifti --set render.mask="$U/nifti/mask.nii.gz" \
    --set data.anatomy="$U/nifti/anatomy.nii.gz"
check "manifest: ... and leaves it as it was" same "$T/g02.edited" "$U/nifti/G02.nii.gz"
mkdir -p "$T/u4"
cp "$T/ph/mask.nii.gz" "$T/u4/expression.nii.gz"
fails "manifest: a run whose 4-D NIfTI would overwrite a user's file is refused before training" \
    "u4/expression.nii.gz is not a file geneinr" $G run "$T/cfg.yaml" --out "$T/u4" --set render.nifti=4d
check "manifest: ... nothing trained, the file unchanged" bash -c \
    "test ! -e '$T/u4/checkpoint.h5' && cmp -s '$T/ph/mask.nii.gz' '$T/u4/expression.nii.gz'"
mkdir -p "$T/legacy"
cp "$T/copy/checkpoint.h5" "$T/legacy/"
echo "my own atlas notes" > "$T/legacy/atlas.h5"
fails "manifest: a folder with output names but no manifest (made before manifests) is refused with how to proceed" \
    "legacy/atlas.h5 is not a file geneinr recorded.*no \.geneinr-manifest.*(delete it|another --out)" \
    $G render "$T/cfg.yaml" --out "$T/legacy" --set data.anatomy="$T/ph/anatomy.nii.gz"
check "manifest: ... and the file is untouched" grep -q "my own atlas notes" "$T/legacy/atlas.h5"
fails "manifest: an input that is an output of the run (render.mask = OUT/nifti/G01.nii.gz) is refused" \
    "render.mask .*an output of this run" \
    $G render "$T/cfg.yaml" --out "$T/copy" --nifti --set render.mask="$T/copy/nifti/G01.nii.gz" \
    --set data.anatomy="$T/ph/anatomy.nii.gz"
check "manifest: a copied run folder (cp -r changes mtimes) is still geneinr's: render replaces its outputs" \
    $G render "$T/cfg.yaml" --out "$T/copy" --nifti --set data.anatomy="$T/ph/anatomy.nii.gz"
mkdir -p "$T/pics"
echo "not a preview" > "$T/pics/holiday.png"
check "manifest: preview --out DIR leaves the user's PNGs in DIR alone" bash -c \
    "$G preview '$T/copy/atlas.h5' --out '$T/pics' >/dev/null 2>&1 && grep -q 'not a preview' '$T/pics/holiday.png' \
     && test -f '$T/pics/G01.png'"

# ---- names: refused when the table is read, before any work -------------------------
# gene NAME1 NEW OUT: the phantom's table with column NAME1 renamed to NEW
# (Python escapes: \t, \n, \xff), quoted as CSV needs.
rename_gene() {
    $PY - "$T/ph/samples.csv" "$3" "$1" "$2" <<'EOF'
import sys
src, dst, old, new = sys.argv[1], sys.argv[2], sys.argv[3].encode(), sys.argv[4].encode().decode('unicode_escape').encode('latin-1')
data = open(src, 'rb').read()
i = data.index(b'\n')
cols = data[:i].split(b',')
if any(c in new for c in b',"\n\r'):
    new = b'"' + new.replace(b'"', b'""') + b'"'
cols[cols.index(old)] = new
open(dst, 'wb').write(b','.join(cols) + data[i:])
EOF
}
rename_gene G02 'A/B' "$T/s_ab.csv" && sed -i '1s/,G03,/,A_B,/' "$T/s_ab.csv"
fails "names: genes 'A/B' and 'A_B' (one file name) are refused before training, NIfTIs off, naming both and file:line" \
    "s_ab.csv:1: genes 'A/B' \(column 9\) and 'A_B' \(column 10\)" $G train "$T/cfg.yaml" --out "$T/n1" \
    --set data.samples="$T/s_ab.csv"
check "names: ... nothing trained" test ! -e "$T/n1/checkpoint.h5"
rename_gene G02 'g01' "$T/s_case.csv"
fails "names: genes 'G01' and 'g01' (one file on case-insensitive file systems) are refused" \
    "genes 'G01' .* and 'g01'" $G train "$T/cfg.yaml" --out "$T/n2" --set data.samples="$T/s_case.csv"
rename_gene G02 'A\tB' "$T/s_tab.csv"
fails "names: a TAB in a gene name (would tear genes.tsv) is refused" "s_tab.csv:1: column 9: .*control character \(TAB\)" \
    $G run "$T/cfg.yaml" --out "$T/n3" --set render.nifti=4d --set data.samples="$T/s_tab.csv"
rename_gene G02 'A\nB' "$T/s_nl.csv"
fails "names: a line feed in a gene name is refused" "control character \(line feed\)" \
    $G train "$T/cfg.yaml" --out "$T/n4" --set data.samples="$T/s_nl.csv"
rename_gene G02 "$(printf 'L%.0s' {1..300})" "$T/s_long.csv"
fails "names: a 300-byte gene name is refused before training" "is 300 bytes long; at most 100" \
    $G run "$T/cfg.yaml" --out "$T/n5" --nifti --set data.samples="$T/s_long.csv"
check "names: ... no atlas, no empty nifti/ left" bash -c "test ! -e '$T/n5/atlas.h5' && test ! -e '$T/n5/nifti'"
rename_gene G02 'A\xffB' "$T/s_utf.csv"
fails "names: a gene name that is not UTF-8 is refused" "not valid UTF-8 \(byte 0xFF" \
    $G train "$T/cfg.yaml" --out "$T/n6" --set data.samples="$T/s_utf.csv"
$PY - "$T/ph/samples.csv" "$T/s_donor.csv" <<'EOF'
import sys
rows = open(sys.argv[1], 'rb').read().split(b'\n')
r = rows[1].split(b',')
r[1] = b'"H0351.2001\nX"'
rows[1] = b','.join(r)
open(sys.argv[2], 'wb').write(b'\n'.join(rows))
EOF
fails "names: a donor name with a line feed is refused, naming file:line" "s_donor.csv:2: column 'donor': .*line feed" \
    $G train "$T/cfg.yaml" --out "$T/n7" --set data.samples="$T/s_donor.csv"
fails "names: eval refuses the table before any fold" "s_tab.csv:1: column 9" \
    $G eval "$T/cfg.yaml" --out "$T/n8" --set data.samples="$T/s_tab.csv"
fails "names: a baseline render refuses the table before rendering" "genes 'A/B'" \
    $G render "$T/cfg.yaml" --out "$T/n9" --set render.method=idw --set data.samples="$T/s_ab.csv"

# ---- regions ---------------------------------------------------------------------------
A="$T/copy/atlas.h5"
if ! have_py nibabel; then
    skip "regions: label images" "no nibabel"
else
    $PY - "$T" <<'EOF'
import sys, numpy as np, nibabel as nib
t = sys.argv[1]
im = nib.load(t + '/ph/anatomy.nii.gz')
d = np.asarray(im.dataobj).astype(np.int64)
big = d.copy()
big[d == 1] = 3000000001          # beyond int32
big[d == 2] = 16777217            # 2^24 + 1: float32 would merge it with ...
big[d == 3] = 16777216            # ... 2^24
h = im.header.copy(); h.set_data_dtype(np.int64)
nib.save(nib.Nifti1Image(big, im.affine, h), t + '/lab_int64.nii.gz')
nib.save(nib.Nifti1Image(d.astype(np.uint16), im.affine), t + '/lab_u16.nii.gz')
off = im.affine.copy(); off[0, 3] += 1000
nib.save(nib.Nifti1Image(d.astype(np.uint16), off), t + '/lab_off.nii.gz')
half = im.affine.copy(); half[0, 3] += 120
nib.save(nib.Nifti1Image(d.astype(np.uint16), half), t + '/lab_half.nii.gz')
EOF
    # The --out checks work on copies (before the fix they destroy them).
    mkdir -p "$T/v"
    cp "$A" "$T/v/atlas.h5"
    cp "$A" "$T/v/atlas2.h5"
    cp "$T/lab_u16.nii.gz" "$T/v/lab.nii.gz"
    fails "regions: --out naming its own atlas (another spelling) is refused" "is the atlas" \
        $G regions "$T/v/atlas.h5" --parcellation "$T/lab_u16.nii.gz" --out "$T/v/../v/atlas.h5"
    check "regions: ... the atlas is intact" same "$A" "$T/v/atlas.h5"
    ln -sf "$T/v/atlas2.h5" "$T/v/link.h5"
    fails "regions: --out naming its atlas through a symlink is refused" "is the atlas" \
        $G regions "$T/v/atlas2.h5" --parcellation "$T/lab_u16.nii.gz" --out "$T/v/link.h5"
    fails "regions: --out naming the parcellation is refused" "is --parcellation" \
        $G regions "$A" --parcellation "$T/v/lab.nii.gz" --out "$T/v/lab.nii.gz"
    printf 'id,label\n1,a\n2,b\n1,c\n' > "$T/dup.csv"
    fails "regions: a labels CSV listing an id twice is refused, naming both lines" "dup.csv:4: id 1 is listed twice \(lines 2 and 4" \
        $G regions "$A" --parcellation "$T/lab_u16.nii.gz" --labels "$T/dup.csv" --out "$T/r.csv"
    fails "regions: a parcellation entirely outside the atlas is an error" "none of the .* labelled voxels" \
        $G regions "$A" --parcellation "$T/lab_off.nii.gz" --out "$T/r_off.csv"
    check "regions: a parcellation mostly outside the atlas warns" bash -c \
        "$G regions '$A' --parcellation '$T/lab_half.nii.gz' --out '$T/r_half.csv' 2>&1 | grep -q 'warning: .* fall outside the atlas'"
    check "regions: an int64 label image (labels past 2^31, and 2^24 vs 2^24+1) is read exactly" bash -c \
        "$G regions '$A' --parcellation '$T/lab_int64.nii.gz' --out '$T/r64.csv' >/dev/null 2>&1 \
         && grep -q '^3000000001,' '$T/r64.csv' && grep -q '^16777217,' '$T/r64.csv' && grep -q '^16777216,' '$T/r64.csv'"
fi
