#!/bin/bash
# geneinr prepare: the phantom's AHBA-format donor folders -> samples.csv,
# checked against an independent numpy reference of abagen's pipeline
# (tests/prepare_reference.py) for the default and the other options, then
# prepare -> train -> render -> score end to end, and clean failures. With
# ../shared/data: the real well ids, corrected coordinates, reannotation
# table and the AD gene list (SKIP otherwise).
. "$(dirname "$0")/lib.sh" prepare
REF=tests/prepare_reference.py
SHARED=${GENEINR_SHARED_DATA:-$PWD/../shared/data}
fails_with() { # name, expected text, command...
    local name=$1 want=$2; shift 2
    if "$@" >"$T/last.log" 2>&1; then notok "$name" "succeeded"; return; fi
    if grep -qF -- "$want" "$T/last.log"; then ok "$name"; else notok "$name" "$(tail -n 3 "$T/last.log" | tr '\n' ' ')"; fi
}
if ! $PY -c "import numpy" 2>/dev/null; then
    skip "prepare" "numpy is not installed for /usr/bin/python3"; exit 0
fi

check "phantom --ahba (2 mm grid, 4 genes)" $G phantom --out "$T/ph" --grid 2 --genes 4 --seed 7 --ahba
A="$T/ph/ahba"
COORD="$A/corrected_mni_coordinates.csv"
REANN="$A/reannotated.csv"
cat > "$T/prep.yaml" <<YAML
prepare:
  data_dir: $A
  coordinates: $COORD
  reannotation: $REANN
YAML

# One case: name, geneinr --set options, reference options.
same_as_reference() {
    local name=$1 sets=$2 refopts=$3 out="$T/out_$1"
    rm -rf "$out"
    if ! $G prepare "$T/prep.yaml" --out "$out" $sets > "$T/prep_$name.log" 2>&1; then
        notok "prepare ($name)" "$(tail -n 3 "$T/prep_$name.log" | tr '\n' ' ')"; return
    fi
    if $PY $REF "$A" "$out/ref.csv" $refopts --compare "$out/samples.csv" > "$T/ref_$name.log" 2>&1; then
        ok "prepare ($name) equals the numpy reference within 1e-4: $(tail -n 1 "$T/ref_$name.log" | cut -d';' -f1)"
    else
        notok "prepare ($name) equals the numpy reference within 1e-4" "$(tail -n 3 "$T/ref_$name.log" | tr '\n' ' ')"
    fi
}
same_as_reference default "" "--coordinates $COORD --reannotation $REANN"
check "under mpirun -np 2 (rank 0 works, the other waits): the same samples.csv" \
    bash -c "timeout 300 mpirun --oversubscribe -np 2 $G prepare '$T/prep.yaml' --out '$T/out_np2' >/dev/null && cmp '$T/out_np2/samples.csv' '$T/out_default/samples.csv'"
same_as_reference mirror_maxvar "--set prepare.lr_mirror=bidirectional --set prepare.probe_selection=max_variance" \
    "--coordinates $COORD --reannotation $REANN --lr-mirror bidirectional --probe-selection max_variance"
same_as_reference own_annotation_maxint "--set prepare.coordinates= --set prepare.reannotation= --set prepare.probe_selection=max_intensity --set prepare.lr_mirror=leftright" \
    "--probe-selection max_intensity --lr-mirror leftright"
printf 'G02\nF00003\nG04\nNOSUCH\n' > "$T/list.txt"
same_as_reference genes_mean_ibf "--set prepare.genes=$T/list.txt --set prepare.probe_selection=mean --set prepare.ibf_threshold=0.3" \
    "--coordinates $COORD --reannotation $REANN --genes $T/list.txt --probe-selection mean --ibf-threshold 0.3"

# Ties in the region means (values rounded to whole numbers): Spearman's
# average ranks decide which probe wins.
cp -r "$A" "$T/ties"
for f in "$T"/ties/normalized_microarray_donor*/MicroarrayExpression.csv; do
    awk -F, -v OFS=, '{ for (i = 2; i <= NF; i++) $i = sprintf("%.0f", $i); print }' "$f" > "$f.tmp" && mv "$f.tmp" "$f"
done
rm -rf "$T/out_ties"
if $G prepare "$T/prep.yaml" --out "$T/out_ties" --set prepare.data_dir="$T/ties" > "$T/prep_ties.log" 2>&1 &&
   $PY $REF "$T/ties" "$T/out_ties/ref.csv" --coordinates "$COORD" --reannotation "$REANN" \
       --compare "$T/out_ties/samples.csv" > "$T/ref_ties.log" 2>&1; then
    ok "prepare (whole-number values: tied region means) equals the numpy reference: $(tail -n 1 "$T/ref_ties.log" | cut -d';' -f1)"
else
    notok "prepare (tied region means) equals the numpy reference" "$(tail -n 3 "$T/prep_ties.log" "$T/ref_ties.log" | tr '\n' ' ')"
fi

# norm_train_only: the validation rows of train.validation: fraction are
# those of dataset.c (splitmix64 of seed, stream 4000, row < val_fraction).
$PY - "$T/valmask.txt" 3636 <<'PYEOF'
import sys
import numpy as np
M = (1 << 64) - 1
def mix(z):
    z = (z + 0x9e3779b97f4a7c15) & M
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)
def u(seed, stream, c):
    h = mix(seed ^ 0x243f6a8885a308d3); h = mix(h ^ stream); h = mix(h ^ c)
    return (h >> 40) * (1.0 / 16777216.0)
frac = float(np.float32(0.25))
with open(sys.argv[1], "w") as f:
    for i in range(20000):
        f.write("%d\n" % (u(11, 4000, i) < frac))
PYEOF
rows=$(($(wc -l < "$T/out_default/samples.csv") - 1))
head -n "$rows" "$T/valmask.txt" > "$T/valmask_n.txt"
same_as_reference norm_train_only "--set prepare.norm_train_only=true --set train.val_fraction=0.25 --set train.seed=11" \
    "--coordinates $COORD --reannotation $REANN --val-mask $T/valmask_n.txt"
check "norm_train_only with a held-out donor: that donor is fitted on its own samples, so nothing changes" \
    bash -c "$G prepare '$T/prep.yaml' --out '$T/out_vd' --set prepare.norm_train_only=true --set train.validation=donor --set train.val_donor=12876 >/dev/null && cmp '$T/out_vd/samples.csv' '$T/out_default/samples.csv'"
check "norm_train_only changes the values (held-out samples no longer enter the fit)" \
    $PY -c "import sys; a=open('$T/out_default/samples.csv').read(); b=open('$T/out_norm_train_only/samples.csv').read(); sys.exit(a == b)"

# The report and the printed summary.
check "report.json: samples kept and dropped per donor, probes, genes, missing listed genes" \
    $PY - "$T/out_default/report.json" "$T/out_genes_mean_ibf/report.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert len(r["donors"]) == 6 and [d["id"] for d in r["donors"]] == [9861, 10021, 12876, 14380, 15496, 15697]
assert all(d["dropped_hemisphere_mismatch"] > 0 and d["kept"] + d["dropped_hemisphere_mismatch"] == d["samples_in_file"] for d in r["donors"])
assert r["samples"] == sum(d["kept"] for d in r["donors"])
p = r["probes"]
assert p["in_file"] > p["with_entrez_id"] > p["passed_intensity_filter"] > 0, p
assert r["genes"]["written"] == r["genes"]["selected"] > 4
g = json.load(open(sys.argv[2]))["genes"]
assert g["written"] == 3 and g["missing"] == ["NOSUCH"], g
PYEOF
check "the summary names the listed gene that is missing" grep -q "missing: NOSUCH" "$T/prep_genes_mean_ibf.log"
check "the summary shows progress per donor and file" grep -q "donor 15697  MicroarrayExpression.csv" "$T/prep_default.log"

# prepare -> train -> render -> score, on the phantom genes of the prepared table.
printf 'G01\nG02\nG03\nG04\n' > "$T/phantom_genes.txt"
cat > "$T/train.yaml" <<YAML
data:
  samples: $T/out_default/samples.csv
  genes: $T/phantom_genes.txt
model:
  arch: fourier
  width: 64
  hidden_layers: 2
  fourier_scale: 0.35
train:
  steps: 300
  val_every: 50
  log_every: 100
  weight_decay: 0.0001
render:
  mask: $T/ph/mask.nii.gz
YAML
check "prepare -> run (train and render) on the prepared table" $G run "$T/train.yaml" --out "$T/run"
check "the atlas scores against the phantom's truth" $G score "$T/run/atlas.h5" --truth "$T/ph/truth.h5" \
    --samples "$T/out_default/samples.csv" --json "$T/score.json"
check "the prepared genes follow the truth (mean Pearson r of the rendered maps > 0.5)" \
    $PY -c "import json; s = json.load(open('$T/score.json')); r = s['mean_r_model'] if 'mean_r_model' in s else s['mean']['r_model']; print(r); assert r > 0.5"

# Failures: clear messages, nothing left that looks like a result.
fails_with "no data_dir: an error naming the key" "prepare.data_dir is not set" \
    $G prepare "$T/prep.yaml" --out "$T/bad1" --set prepare.data_dir=
check "a failed prepare leaves no samples.csv" test ! -e "$T/bad1/samples.csv"
cp -r "$A" "$T/broken"
sed -i '5s/,[^,]*$//' "$T/broken/normalized_microarray_donor12876/MicroarrayExpression.csv"
fails_with "a short matrix row: an error naming file:line" \
    "normalized_microarray_donor12876/MicroarrayExpression.csv:5: row has 362 values but SampleAnnot.csv lists 363 samples" \
    $G prepare "$T/prep.yaml" --out "$T/bad2" --set prepare.data_dir="$T/broken"
check "a failed prepare leaves no samples.csv" test ! -e "$T/bad2/samples.csv"
grep -v '^10005,' "$COORD" > "$T/coord_missing.csv"
fails_with "a well id missing from the coordinates: an error naming it" \
    "well_id 10005 of donor H0351.2001 is not in prepare.coordinates" \
    $G prepare "$T/prep.yaml" --out "$T/bad3" --set prepare.coordinates="$T/coord_missing.csv"
mkdir -p "$T/one" && cp -r "$A/normalized_microarray_donor9861" "$T/one/"
fails_with "diff_stability with one donor: an error saying what to use instead" \
    "diff_stability compares donors and needs at least 2 (found 1)" \
    $G prepare "$T/prep.yaml" --out "$T/bad4" --set prepare.data_dir="$T/one"
check "one donor with max_intensity works" $G prepare "$T/prep.yaml" --out "$T/one_out" \
    --set prepare.data_dir="$T/one" --set prepare.probe_selection=max_intensity
fails_with "a bad option value is refused with the allowed values" "diff_stability, max_intensity, max_variance, mean" \
    $G prepare "$T/prep.yaml" --set prepare.probe_selection=best

# Real reference tables (well ids, corrected coordinates, probe names, AD genes).
if [ -f "$SHARED/corrected_mni_coordinates.csv.gz" ] && [ -f "$SHARED/reannotated.csv.gz" ] && [ -f "$SHARED/genes-ad99.txt" ]; then
    check "phantom --ahba --reference (real well ids, coordinates, probe names)" \
        $G phantom --out "$T/real" --grid 2 --genes 6 --seed 8 --ahba --reference "$SHARED"
    cat > "$T/real.yaml" <<YAML
prepare:
  data_dir: $T/real/ahba
  coordinates: $SHARED/corrected_mni_coordinates.csv.gz
  reannotation: $SHARED/reannotated.csv.gz
  genes: configs/genes/ad99.txt
YAML
    if $G prepare "$T/real.yaml" --out "$T/real_out" > "$T/real.log" 2>&1 &&
       $PY $REF "$T/real/ahba" "$T/real_out/ref.csv" --coordinates "$SHARED/corrected_mni_coordinates.csv.gz" \
           --reannotation "$SHARED/reannotated.csv.gz" --genes configs/genes/ad99.txt \
           --compare "$T/real_out/samples.csv" > "$T/real_ref.log" 2>&1; then
        ok "prepare with the real tables and configs/genes/ad99.txt equals the numpy reference: $(tail -n 1 "$T/real_ref.log" | cut -d';' -f1)"
    else
        notok "prepare with the real tables equals the numpy reference" "$(tail -n 3 "$T/real.log" "$T/real_ref.log" | tr '\n' ' ')"
    fi
    check "the documented call: geneinr prepare configs/prepare.yaml --set prepare.data_dir=... --out DIR" \
        bash -c "$G prepare configs/prepare.yaml --set prepare.data_dir='$T/real/ahba' --out '$T/real_cfg' \
                 --set prepare.coordinates='$SHARED/corrected_mni_coordinates.csv.gz' \
                 --set prepare.reannotation='$SHARED/reannotated.csv.gz' >/dev/null &&
                 test \$(wc -l < '$T/real_cfg/samples.csv') = \$(wc -l < '$T/real_out/samples.csv')"
    check "real well ids and corrected coordinates are in the table" \
        $PY -c "
import csv, gzip
real = {r['well_id']: r for r in csv.DictReader(gzip.open('$SHARED/corrected_mni_coordinates.csv.gz', 'rt'))}
rows = list(csv.DictReader(open('$T/real_out/samples.csv')))
assert len(rows) > 3000
for r in rows:
    c = real[r['well_id']]
    assert abs(float(r['mni_x']) - float(c['corrected_mni_x'])) < 1e-3
"
    check "AD genes of the list appear, the others are reported missing" \
        $PY -c "
import json
g = json.load(open('$T/real_out/report.json'))['genes']
assert g['written'] >= 4 and g['listed'] == 99 and len(g['missing']) == 99 - g['written'], g
"
else
    skip "prepare with the real reference tables" "$SHARED not found"
fi
