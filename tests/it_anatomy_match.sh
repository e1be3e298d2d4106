#!/bin/bash
# Label matching for samples (label_match.h, data.anatomy_tolerance,
# data.anatomy_labels) end to end: on the 2 mm phantom, training with a
# tolerance prints the same matching summary at 1, 2 and 3 ranks and gives
# byte-identical checkpoints run to run; the default is the voxel rule (same
# checkpoint as an explicit tolerance 0); resume refuses a changed tolerance;
# the class/hemisphere rule applies through a label table; eval prints the
# summary, writes anatomy_match.json, and the baselines without anatomy do
# not change. With ../shared/data (else SKIP): the real AHBA coordinates on
# the Desikan-Killiany image give the issue's counts.
. "$(dirname "$0")/lib.sh" anatomy_match
SHARED=${GENEINR_SHARED_DATA:-$PWD/../shared/data}

# The phantom as it was before realistic samples (--sample-truth voxel) puts every sample in
# its tissue, with structure_id; this test moves them itself, by a known amount: every sample
# 3 mm away from the midline (x), so cortical samples near the surface leave the brain.
check "phantom (2 mm grid, 3 genes)" $G phantom --out "$T/ph" --grid 2 --genes 3 --seed 4 --sample-truth voxel
$PY - "$T/ph/samples.csv" "$T/moved.csv" <<'PYEOF'
import csv, sys
r = csv.reader(open(sys.argv[1])); w = csv.writer(open(sys.argv[2], 'w', newline=''), lineterminator='\n')
h = next(r); w.writerow(h); x = h.index('mni_x')
for row in r:
    v = float(row[x]); row[x] = '%.6f' % (v + (3 if v >= 0 else -3)); w.writerow(row)
PYEOF
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/moved.csv
  anatomy: $T/ph/anatomy.nii.gz
model:
  width: 32
  hidden_layers: 2
  omega0: 10
train:
  steps: 30
  val_every: 10
  log_every: 30
YAML
TOL="--set data.anatomy_tolerance=3"
for np in 1 2 3; do
    for run in a b; do
        $MPIRUN -np $np $G train "$T/cfg.yaml" --out "$T/t$np$run" $TOL > "$T/t$np$run.log" 2>&1 ||
            notok "train, tolerance 3, $np rank(s), run $run" "$(tail -n 3 "$T/t$np$run.log" | tr '\n' ' ')"
    done
    check "tolerance 3, $np rank(s): two runs give byte-identical checkpoints" \
        cmp "$T/t${np}a/checkpoint.h5" "$T/t${np}b/checkpoint.h5"
done
grep '^anatomy: ' "$T/t1a.log" > "$T/sum1"
check "the matching summary is printed (by voxel, by distance, not at all)" \
    grep -qE '^anatomy: 3702 samples: [0-9]+ matched by voxel, [1-9][0-9]* by distance \(median [0-9.]+ mm, max [0-9.]+ mm\), [0-9]+ not at all \(tolerance 3 mm' "$T/sum1"
check "the matching summary is identical at 1, 2 and 3 ranks" \
    bash -c "[ -s '$T/sum1' ] && grep '^anatomy: ' '$T/t2a.log' | cmp - '$T/sum1' && grep '^anatomy: ' '$T/t3a.log' | cmp - '$T/sum1'"
check "train writes anatomy_match.json with the same counts" \
    $PY -c "
import json, re, sys
j = json.load(open('$T/t1a/anatomy_match.json'))
s = open('$T/sum1').read()
n = [int(x) for x in re.findall(r'(\d+) (?:samples|matched by voxel|by distance|not at all)', s)]
sys.exit(0 if [j['samples'], j['by_voxel'], j['by_distance'], j['not_matched']] == n and j['tolerance_mm'] == 3 else 1)"

# Default = the voxel rule: the same checkpoint as an explicit tolerance 0.
check "train, default matching" $MPIRUN -np 2 $G train "$T/cfg.yaml" --out "$T/d"
check "train, tolerance 0 explicitly" bash -c "$MPIRUN -np 2 $G train '$T/cfg.yaml' --out '$T/d0' --set data.anatomy_tolerance=0 > '$T/d0.log'"
check "the default checkpoint is byte-identical to tolerance 0's" cmp "$T/d/checkpoint.h5" "$T/d0/checkpoint.h5"
check "tolerance 0 matches nothing by distance" grep -qE '^anatomy: .* 0 by distance' "$T/d0.log"
check "a tolerance changes what the model learns from (checkpoints differ)" \
    bash -c "[ -s '$T/d/checkpoint.h5' ] && [ -s '$T/t2a/checkpoint.h5' ] && ! cmp -s '$T/d/checkpoint.h5' '$T/t2a/checkpoint.h5'"

# Resume: the matching is part of the training data.
check "train 10 steps at tolerance 0" $MPIRUN -np 2 $G train "$T/cfg.yaml" --out "$T/rs" --set train.steps=10
check "resume with another tolerance is refused" \
    bash -c "! $MPIRUN -np 2 $G train '$T/cfg.yaml' --out '$T/rs' --resume $TOL > '$T/rs.log' 2>&1 && grep -q 'data.anatomy_tolerance' '$T/rs.log'"

# Class and hemisphere: a label table for the phantom's labels and a class column from structure_id.
cat > "$T/labels.csv" <<CSV
id,label,hemisphere,structure
1,cortex_L,L,cortex
2,cortex_R,R,cortex
3,wm_L,L,white matter
4,wm_R,R,white matter
5,thal_L,L,subcortex/brainstem
6,thal_R,R,subcortex/brainstem
7,caud_L,L,subcortex/brainstem
8,caud_R,R,subcortex/brainstem
9,put_L,L,subcortex/brainstem
10,put_R,R,subcortex/brainstem
11,cbl_L,L,cerebellum
12,cbl_R,R,cerebellum
13,stem,B,subcortex/brainstem
CSV
$PY - "$T/moved.csv" "$T/classed.csv" <<'PYEOF'
import csv, sys
CLS = {1: 'cortex', 2: 'cortex', 3: 'white matter', 4: 'white matter', 11: 'cerebellum', 12: 'cerebellum'}
r = csv.reader(open(sys.argv[1])); w = csv.writer(open(sys.argv[2], 'w', newline=''), lineterminator='\n')
h = next(r); s = h.index('structure_id'); w.writerow(h[:s] + ['class'] + h[s:])
for row in r:
    w.writerow(row[:s] + [CLS.get(int(row[s]), 'subcortex/brainstem')] + row[s:])
PYEOF
CL="--set data.samples=$T/classed.csv --set data.anatomy_labels=$T/labels.csv"
check "train with the class/hemisphere rule" bash -c "$G train '$T/cfg.yaml' --out '$T/cl' $TOL $CL --set train.steps=2 > '$T/cl.log'"
check "... prints how many samples were constrained" grep -qE '^anatomy: .*class/hemisphere: 3702 constrained\)' "$T/cl.log"
check "... some samples of another class's voxel reach their own class's label" \
    grep -qE '^anatomy: 3702 samples: [0-9]+ matched by voxel, [1-9][0-9]* by distance' "$T/cl.log"
check "a label table without class columns in the samples says it cannot apply" \
    bash -c "$G train '$T/cfg.yaml' --out '$T/nc' $TOL --set data.anatomy_labels=$T/labels.csv --set train.steps=2 | grep -q 'class/hemisphere rule cannot apply'"
printf 'id,label,hemisphere,structure\n1,a,L,cortex\n1,b,R,cortex\n' > "$T/dup.csv"
check "a bad label table is refused with file:line" \
    bash -c "! $G train '$T/cfg.yaml' --out '$T/bad' $CL --set data.anatomy_labels=$T/dup.csv > '$T/bad.log' 2>&1 && grep -q 'dup.csv:3: id 1 appears twice' '$T/bad.log'"

# prepare with data.anatomy: the prepared samples (with prepare's class and hemisphere) matched, in report.json.
check "phantom --ahba (2 mm grid)" $G phantom --out "$T/pha" --grid 2 --genes 3 --seed 7 --ahba
printf 'prepare:\n  data_dir: %s\n  coordinates: %s\n  reannotation: %s\n' "$T/pha/ahba" \
    "$T/pha/ahba/corrected_mni_coordinates.csv" "$T/pha/ahba/reannotated.csv" > "$T/prep.yaml"
check "prepare with data.anatomy, a tolerance and the label table" \
    bash -c "$G prepare '$T/prep.yaml' --out '$T/prep' --set data.anatomy=$T/pha/anatomy.nii.gz $TOL \
        --set data.anatomy_labels=$T/labels.csv > '$T/prep.log'"
check "... prints the matching summary, every sample constrained by its class and hemisphere" \
    grep -qE '^anatomy: ([0-9]+) samples: .*class/hemisphere: \1 constrained\)' "$T/prep.log"
check "... and report.json holds it" $PY -c "
import json, sys
j = json.load(open('$T/prep/report.json'))['anatomy_match']
sys.exit(0 if j['samples'] == j['by_voxel'] + j['by_distance'] + j['not_matched'] and j['class_rule'] == 'applied' else 1)"

# eval: the summary once, anatomy_match.json, regression kriging on matched labels, IDW unchanged.
E="--set eval.methods=idw,regression_kriging --set eval.folds=3 --set eval.split=kfold"
check "eval at tolerance 0" $MPIRUN -np 2 $G eval "$T/cfg.yaml" --out "$T/e0" $E
check "eval at tolerance 3" bash -c "$MPIRUN -np 2 $G eval '$T/cfg.yaml' --out '$T/e3' $E $TOL > '$T/e3.log'"
check "eval prints the matching summary once" \
    bash -c "[ \$(grep -c '^eval: anatomy: 3702 samples' '$T/e3.log') = 1 ] && grep -q 'tolerance 3 mm' '$T/e3.log'"
check "eval writes anatomy_match.json" grep -q '"tolerance_mm": 3' "$T/e3/anatomy_match.json"
check "eval's summary equals training's" \
    bash -c "[ -s '$T/sum1' ] && grep '^eval: anatomy: ' '$T/e3.log' | sed 's/^eval: //' | cmp - '$T/sum1'"
check "IDW (no anatomy) scores the same with and without matching" \
    bash -c "grep -q '^idw,' '$T/e0/eval.csv' && cmp <(grep '^idw,' '$T/e0/eval.csv') <(grep '^idw,' '$T/e3/eval.csv')"
check "regression kriging learns from the matched labels (scores differ)" \
    bash -c "grep -q '^regression_kriging,' '$T/e3/eval.csv' && ! cmp -s <(grep '^regression_kriging,' '$T/e0/eval.csv') <(grep '^regression_kriging,' '$T/e3/eval.csv')"

# The real AHBA coordinates on the Desikan-Killiany image.
DK=$SHARED/atlas-desikankilliany.nii.gz COORD=$SHARED/corrected_mni_coordinates.csv.gz
if [ ! -f "$DK" ] || [ ! -f "$COORD" ]; then
    echo "skip - real AHBA coordinates on the DK image: $SHARED lacks the files"
    exit 0
fi
$PY - "$COORD" "$T/real.csv" <<'PYEOF'
import csv, gzip, sys
rows = list(csv.reader(gzip.open(sys.argv[1], 'rt')))[1:]
with open(sys.argv[2], 'w') as f:
    f.write('well_id,donor,mni_x,mni_y,mni_z,G1\n')
    for n, r in enumerate(rows):
        f.write('%s,d%d,%s,%s,%s,%g\n' % (r[0], n % 2, r[1], r[2], r[3], (n * 37 % 101) / 101.0))
PYEOF
R="--set data.samples=$T/real.csv --set data.anatomy=$DK --set train.steps=1"
# The issue's figures: 2,144 of 3,702 in a labelled voxel; 1,232 within 5 mm.
# Within 2 mm we count 896 (sample point to voxel centre); the issue's 921 is
# the distance from the sample's own voxel centre to the labelled voxel centre
# (the point first snapped to the grid), a coarser measure.
for t in 0:2144:0 2:2144:896 5:2144:1232; do
    IFS=: read tol vox dist <<< "$t"
    check "real coordinates, DK image, tolerance $tol: $vox by voxel, $dist by distance" \
        bash -c "$G train '$T/cfg.yaml' --out '$T/real$tol' $R --set data.anatomy_tolerance=$tol | grep -q '^anatomy: 3702 samples: $vox matched by voxel, $dist by distance'"
done
