#!/bin/bash
# it_predict.sh - `geneinr predict CONFIG --points P.csv --out V.csv` (issue 29, item 5): the map
# at any MNI points. On a small phantom with a short training (anatomy and donor embeddings):
#   - at voxel centres of the mask, predict equals the rendered atlas (/expression) within 16 ulp
#     (the atlas and predict batch the points differently, and a GEMM kernel may round a row
#     by its place in the batch, render_plan.h: measured 0 or 1 ulp here, up to 16 on the demo's
#     width-256 model in calls of 100 points), for the donor average,
#     one donor (render.donor) and a baseline (render.method idw, bit for bit: no GEMM);
#   - 1, 2 and 3 ranks, in one round or several, all genes per call or groups of them
#     (render.buffer_mb), write the same file (cmp); an ensemble equals its atlas too;
#   - V.csv = P's columns unchanged and in order (quoted, empty, UTF-8 fields too), in_mask,
#     the genes in the atlas's order; points outside the mask or off the grid are predicted
#     (finite values) and flagged in_mask = 0;
#   - bad point tables, an existing --out without --force, --out naming an input fail cleanly
#     (exit 1, the message names the file:line or the file), never a crash.
. "$(dirname "$0")/lib.sh" predict
MPIRUN="timeout 120 mpirun --oversubscribe"

check "phantom (2 mm grid, 3 genes)" $G phantom --out "$T/ph" --grid 2 --genes 3 --seed 3
check "a 4-slice mask" $PY "$(dirname "$0")/atlas_check.py" slab "$T/ph/mask.nii.gz" "$T/slab.nii.gz"
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/ph/samples.csv
  anatomy: $T/ph/anatomy.nii.gz
model: {arch: fourier, fourier_features: 16, fourier_scale: 0.5, width: 32, hidden_layers: 2, donor_dim: 2,
        anatomy_dim: 2}
train: {steps: 40, schedule: constant, val_every: 10, seed: 7}
render: {mask: $T/slab.nii.gz, preview_genes: 0, report: false}
run: {out: $T/run}
YAML
check "train and render (average)" $G run "$T/cfg.yaml"
DONOR=$(awk -F, 'NR == 2 {print $2}' "$T/ph/samples.csv")
check "render one donor ($DONOR)" $G render "$T/cfg.yaml" --out "$T/donor" --checkpoint "$T/run/checkpoint.h5" \
    --set render.donor="$DONOR"
check "render the idw baseline" $G render "$T/cfg.yaml" --out "$T/idw" --set render.method=idw

# points ATLAS OUT.csv OUT.npy: 300 in-mask voxel centres of ATLAS (MNI mm written exactly, as
# the render computes them: the affine in double), their atlas values into OUT.npy, and three
# points outside: in the grid but off the slab mask, beyond the grid, and an electrode-like
# point with its columns in another order. Carried columns: an id, a quoted field with a comma
# and a quote, an empty field, UTF-8 text.
points() {
    $PY - "$@" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
A, ex, m = f["affine"][()], f["expression"][...], f["mask"][...]
k, j, i = np.nonzero(m)
sel = np.random.default_rng(1).choice(len(i), 300, replace=False)
with open(sys.argv[2], "w", encoding="utf-8") as o:
    o.write('id,z,"note, quoted",x,empty,y,région\n')
    for n, s in enumerate(sel):
        p = A @ np.array([i[s], j[s], k[s], 1.0])
        o.write('p%d,%r,"a ""b"", c",%r,,%r,é%d\n' % (n, p[2], p[0], p[1], n))
    o.write('off_slab,40,"x",0,,-20,a\n')      # inside the grid, outside the 4-slice mask
    o.write('off_grid,0,"y",150,,0,b\n')       # beyond the grid (x = 150 mm)
    o.write('edge,-1e1,"z",+0.5,,-12.25,c\n')
np.save(sys.argv[3], np.array([ex[:, k[s], j[s], i[s]] for s in sel], dtype=np.float32))
PY
}
check "points at voxel centres of the atlas" points "$T/run/atlas.h5" "$T/p.csv" "$T/p.npy"

# equal V.csv P.csv ATLAS.npy ULPS ATLAS.h5: V's values at the voxel centres are the atlas's
# within ULPS ulp; its header is P's, in_mask, the atlas's genes; P's fields come back unchanged;
# in_mask 1 at the centres, 0 for the three outside points, whose values are finite.
equal() {
    $PY - "$@" <<'PY'
import sys, csv, h5py, numpy as np
v_path, p_path, npy, ulps, atlas = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
V = list(csv.reader(open(v_path, encoding="utf-8", newline="")))
P = list(csv.reader(open(p_path, encoding="utf-8", newline="")))
genes = list(h5py.File(atlas, "r")["genes"].asstr()[()])
assert V[0] == P[0] + ["in_mask"] + genes, "header %r" % V[0]
assert len(V) == len(P), "%d rows, %d points" % (len(V) - 1, len(P) - 1)
w = len(P[0])
for a, b in zip(V[1:], P[1:]):
    assert a[:w] == b, "carried fields changed: %r -> %r" % (b, a[:w])
exp = np.load(npy)
n = len(exp)
got = np.array([[float(x) for x in r[w + 1:]] for r in V[1:]], dtype=np.float32)
assert [r[w] for r in V[1:n + 1]] == ["1"] * n, "in_mask not 1 at a voxel centre"
assert [r[w] for r in V[n + 1:]] == ["0", "0", "0"], "in_mask of the outside points: %r" % [r[w] for r in V[n + 1:]]
assert np.isfinite(got).all()
d = np.abs(got[:n].view(np.int32).astype(np.int64) - exp.view(np.int32).astype(np.int64))
print("max difference %d ulp, %.1f%% of values bit-identical" % (d.max(), 100.0 * (d == 0).mean()))
assert d.max() <= ulps, "differs from the atlas by %d ulp" % d.max()
PY
}
check "predict (average) at 1 rank" $G predict "$T/cfg.yaml" --points "$T/p.csv" --out "$T/v1.csv"
check "equals the atlas at voxel centres (16 ulp); columns carried, in_mask, outside points" \
    equal "$T/v1.csv" "$T/p.csv" "$T/p.npy" 16 "$T/run/atlas.h5"
check "2 ranks: the same file" $MPIRUN -np 2 $G predict "$T/cfg.yaml" --points "$T/p.csv" --out "$T/v2.csv"
check "... byte for byte" cmp "$T/v1.csv" "$T/v2.csv"
# Calls of 7 points: several chunks per rank, a last chunk cut short, rows at other places in
# their GEMM than in the render's batches.
check "calls of 7 points, 1 rank" $G predict "$T/cfg.yaml" --points "$T/p.csv" --out "$T/b1.csv" \
    --set render.batch_voxels=7
check "calls of 7 points, 2 and 3 ranks" bash -c "$MPIRUN -np 2 $G predict '$T/cfg.yaml' --points '$T/p.csv' \
    --out '$T/b2.csv' --set render.batch_voxels=7 && $MPIRUN -np 3 $G predict '$T/cfg.yaml' --points '$T/p.csv' \
    --out '$T/b3.csv' --set render.batch_voxels=7"
check "... 1, 2 and 3 ranks byte for byte" bash -c "cmp '$T/b1.csv' '$T/b2.csv' && cmp '$T/b1.csv' '$T/b3.csv'"
check "... and the atlas within 16 ulp" equal "$T/b1.csv" "$T/p.csv" "$T/p.npy" 16 "$T/run/atlas.h5"

# An ensemble of 2 over 48 genes (the phantom's 3, 16 times), and with render.buffer_mb = 1 a
# table of 6,000 points in 2 rounds of 5,456, each call's genes in groups (the members' scratch
# of 48 genes passes 1 MB): the same bits at 1 and 2 ranks, the atlas's values at voxel centres.
$PY - "$T/ph/samples.csv" "$T/wide.csv" <<'PY'
import sys, csv
r = list(csv.reader(open(sys.argv[1], newline="")))
g = [i for i, n in enumerate(r[0]) if n.startswith("G")]
keep = [i for i in range(len(r[0])) if i not in g]
with open(sys.argv[2], "w", newline="") as o:
    w = csv.writer(o, lineterminator="\n")
    w.writerow([r[0][i] for i in keep] + ["%s_%d" % (r[0][i], c) for c in range(16) for i in g])
    for row in r[1:]:
        w.writerow([row[i] for i in keep] + [row[i] for c in range(16) for i in g])
PY
W=(--set data.samples="$T/wide.csv" --set train.ensemble=2 --set train.steps=20)
check "train and render an ensemble of 2 over 48 genes" $G run "$T/cfg.yaml" --out "$T/wide" "${W[@]}"
W+=(--checkpoint "$T/wide/checkpoint.h5")
check "points of the ensemble's atlas" points "$T/wide/atlas.h5" "$T/pw.csv" "$T/pw.npy"
check "predict the ensemble, genes in groups" bash -c "$G predict '$T/cfg.yaml' ${W[*]} --points '$T/pw.csv' \
    --out '$T/vw.csv' --set render.buffer_mb=1 | grep -q 'genes in groups'"
check "... equals the ensemble's atlas (16 ulp)" equal "$T/vw.csv" "$T/pw.csv" "$T/pw.npy" 16 "$T/wide/atlas.h5"
$PY - "$T/pw.csv" "$T/many.csv" <<'PY'
import sys
rows = open(sys.argv[1], encoding="utf-8").read().splitlines()
open(sys.argv[2], "w", encoding="utf-8").write("\n".join([rows[0]] + [rows[1 + n % (len(rows) - 1)] for n in range(6000)]) + "\n")
PY
check "6,000 points in 2 rounds at 2 ranks" bash -c "$MPIRUN -np 2 $G predict '$T/cfg.yaml' ${W[*]} \
    --points '$T/many.csv' --out '$T/m2.csv' --set render.buffer_mb=1 >'$T/m2.log' && grep -q '2 rounds' '$T/m2.log'"
check "... equal 1 rank byte for byte" bash -c "$G predict '$T/cfg.yaml' ${W[*]} --points '$T/many.csv' \
    --out '$T/m1.csv' --set render.buffer_mb=1 >/dev/null && cmp '$T/m1.csv' '$T/m2.csv'"

check "points of the donor's atlas" points "$T/donor/atlas.h5" "$T/pd.csv" "$T/pd.npy"
check "predict render.donor=$DONOR" $G predict "$T/cfg.yaml" --points "$T/pd.csv" --out "$T/vd.csv" \
    --set render.donor="$DONOR"
check "... equals the donor's atlas (16 ulp)" equal "$T/vd.csv" "$T/pd.csv" "$T/pd.npy" 16 "$T/donor/atlas.h5"
check "points of the idw atlas" points "$T/idw/atlas.h5" "$T/pi.csv" "$T/pi.npy"
check "predict render.method=idw (fitted on data.samples, as render)" $G predict "$T/cfg.yaml" \
    --points "$T/pi.csv" --out "$T/vi.csv" --set render.method=idw
check "... equals the idw atlas bit for bit" equal "$T/vi.csv" "$T/pi.csv" "$T/pi.npy" 0 "$T/idw/atlas.h5"

# ---- failures: exit 1, a message naming the file (and line), no crash ------------------------
bad() { printf "$2" > "$T/$1.csv"; }
bad noz 'id,x,y\na,1,2\n'
bad inf 'x,y,z\n1,2,3\n1,inf,3\n'
bad nan 'x,y,z\n1,2,nan\n'
bad text 'x,y,z\n1,2,3\n1,two,3\n'
bad empty_coord 'x,y,z\n1,,3\n'
bad far 'x,y,z\n1,2,3000\n'
bad dup 'x,y,z,id,id\n1,2,3,a,b\n'
bad gene 'x,y,z,G02\n1,2,3,a\n'
bad inmask 'x,y,z,in_mask\n1,2,3,1\n'
bad header_only 'x,y,z\n'
bad nothing ''
bad semicolon 'x;y;z\n1;2;3\n'
bad ragged 'x,y,z\n1,2,3\n1,2\n'
bad quote 'x,y,z\n1,2,"3\n'
fc() { fails_cleanly "$1" "$2" $G predict "$T/cfg.yaml" --points "$T/$3.csv" --out "$T/bad_out.csv"; }
fc "no z column" "noz.csv:1: missing column 'z'" noz
fc "inf coordinate" "inf.csv:3: column 'y': 'inf' is not a finite number" inf
fc "nan coordinate" "nan.csv:2: column 'z': 'nan' is not a finite number" nan
fc "text coordinate" "text.csv:3: column 'y': 'two' is not a number" text
fc "empty coordinate" "empty_coord.csv:2: column 'y': empty coordinate" empty_coord
fc "a coordinate beyond the MNI box" "far.csv:2: column 'z': 3000 mm is outside the MNI box" far
fc "a column name twice" "dup.csv:1: column 'id' appears twice" dup
fc "a column named like a gene" "gene.csv:1: column 'G02' \(column 4\) has the name of a gene of" gene
fc "a column named in_mask" "inmask.csv:1: column 'in_mask' \(column 4\) has the name of the in_mask column" inmask
fc "a header without points" "header_only.csv:1: the table has a header but no points" header_only
fc "an empty file" "nothing.csv: empty file" nothing
fc "a ';'-delimited table" "semicolon.csv:1: .*';'-delimited" semicolon
fc "a short row" "ragged.csv:3: row has 2 fields but the header has 3" ragged
fc "an unterminated quote" "quote.csv:2: unterminated quoted field" quote
fails_cleanly "no points file" "nope.csv" $G predict "$T/cfg.yaml" --points "$T/nope.csv" --out "$T/bad_out.csv"
check "no table left behind by the failures" bash -c "! ls '$T'/bad_out.csv* 2>/dev/null"
fails_cleanly "an existing --out without --force" "v1.csv exists; add --force" \
    $G predict "$T/cfg.yaml" --points "$T/p.csv" --out "$T/v1.csv"
check "... kept as it was" cmp "$T/v1.csv" "$T/v2.csv"
check "--force replaces it" $G predict "$T/cfg.yaml" --points "$T/p.csv" --out "$T/v1.csv" --force \
    --set render.donor="$DONOR"
check "... with the new table" bash -c "! cmp -s '$T/v1.csv' '$T/v2.csv'"
fails_cleanly "--out naming --points, even with --force" "is --points.*overwrite its own input" \
    $G predict "$T/cfg.yaml" --points "$T/p.csv" --out "$T/p.csv" --force
fails_cleanly "--out naming the config" "is the config" \
    $G predict "$T/cfg.yaml" --points "$T/p.csv" --out "$T/cfg.yaml" --force
fails_cleanly "--out naming the sample table" "is data.samples" \
    $G predict "$T/cfg.yaml" --points "$T/p.csv" --out "$T/ph/samples.csv" --force
mkdir -p "$T/folder.csv"
fails_cleanly "--out naming a folder" "not a regular file" \
    $G predict "$T/cfg.yaml" --points "$T/p.csv" --out "$T/folder.csv" --force
fails_cleanly "--out naming a .gz file (the table is plain CSV)" "predict writes a plain CSV" \
    $G predict "$T/cfg.yaml" --points "$T/p.csv" --out "$T/v.csv.gz"
echo stale > "$T/v3.csv.tmp"
fails_cleanly "a V.csv.tmp left behind, without --force" "v3.csv.tmp exists" \
    $G predict "$T/cfg.yaml" --points "$T/p.csv" --out "$T/v3.csv"
fails_cleanly "no checkpoint" "no checkpoint at .*nope.h5" \
    $G predict "$T/cfg.yaml" --points "$T/p.csv" --out "$T/v4.csv" --checkpoint "$T/nope.h5"
fails_cleanly "--checkpoint with a baseline" "render.method idw is fitted on data.samples" \
    $G predict "$T/cfg.yaml" --points "$T/p.csv" --out "$T/v4.csv" --set render.method=idw \
    --checkpoint "$T/run/checkpoint.h5"
fails_cleanly "a baseline for one donor" "render.method idw has no donor term" \
    $G predict "$T/cfg.yaml" --points "$T/p.csv" --out "$T/v4.csv" --set render.method=idw \
    --set render.donor="$DONOR"
fails_cleanly "an unknown donor" "render.donor: 'nobody' is not a donor" \
    $G predict "$T/cfg.yaml" --points "$T/p.csv" --out "$T/v4.csv" --set render.donor=nobody
fails_cleanly "2 ranks: a bad table fails on every rank" "inf.csv:3" \
    $MPIRUN -np 2 $G predict "$T/cfg.yaml" --points "$T/inf.csv" --out "$T/v4.csv"
check "--points is required (usage error, exit 2)" bash -c \
    "$G predict '$T/cfg.yaml' --out '$T/v4.csv' >/dev/null 2>&1; [ \$? = 2 ]"
