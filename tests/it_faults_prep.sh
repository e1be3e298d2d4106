#!/bin/bash
# it_faults_prep.sh - the prepare and input faults of issue 27, each a class
# (docs/ROBUSTNESS.md has the table): non-finite or missing values in the AHBA
# files (NaN once spun the probe selection forever, or emptied a donor with
# exit 0), donor folders that are dangling links or link loops (once skipped
# without a word), ';'- and tab-delimited tables (once "missing column"), a
# constant gene (once std 1 and a spurious range), a donor named `average`
# (the name of the donor-average map), and `phantom --out` over an earlier
# phantom (once overwritten without a word). The rule checked throughout:
# exit 1 within 20 s (never a hang or a crash) with one message naming the
# file (and line) and what is allowed.
# The AHBA donors are the tiny phantom donor of the fuzz seed
# (tests/fuzz/corpus/ahba/donor.txt: 16 probes x 12 samples, its five files
# cut at "=====" lines), written as two donors, so each prepare takes ~0.1 s.
. "$(dirname "$0")/lib.sh" faults_prep
# refused NAME PATTERN CMD...: CMD exits 1 within 20 s (124 = a hang) and its
# output matches PATTERN (extended regex).
refused() {
    local name=$1 pattern=$2; shift 2
    timeout 20 bash -c '"$@"' _ "$@" >"$T/r.out" 2>&1   # bash -c: CMD may be a function below
    local rc=$?
    if [ "$rc" = 1 ] && grep -Eq -- "$pattern" "$T/r.out"; then ok "$name"
    else notok "$name" "exit $rc$([ $rc = 124 ] && echo ' (timeout: a hang)'); $(grep -v '^ *$' "$T/r.out" | tail -n 2 | tr '\n' ' ')"; fi
}
SEED=tests/fuzz/corpus/ahba/donor.txt
FILES=(Probes.csv SampleAnnot.csv Ontology.csv MicroarrayExpression.csv PACall.csv)
# donors DIR: DIR/normalized_microarray_donor{9861,10021} from the seed.
donors() {
    local d
    for d in 9861 10021; do
        mkdir -p "$1/normalized_microarray_donor$d"
        awk -v dir="$1/normalized_microarray_donor$d" -v names="${FILES[*]}" \
            'BEGIN { split(names, n, " "); k = 1 } /^=====$/ { k++; next } { print > (dir "/" n[k]) }' "$SEED"
    done
}
donors "$T/ahba"
echo "prepare: {}" > "$T/prep.yaml"
prep() { local data=$1; shift; $G prepare "$T/prep.yaml" --set prepare.data_dir="$data" --set prepare.threads=1 "$@"; }
export G T
export -f prep
check "prepare on two tiny donors" prep "$T/ahba" --out "$T/good"
# fresh DIR: a copy of the good donors to damage
fresh() { rm -rf "$1"; cp -r "$T/ahba" "$1"; }
D1=normalized_microarray_donor9861

# ---- 1. non-finite, empty and non-number values in the AHBA files ---------------
# sub DIR FILE LINE FIELD VALUE: field FIELD (negative: from the end, past any
# quoted commas) of line LINE of the donor 9861 file becomes VALUE.
sub() {
    awk -F, -v OFS=, -v l="$3" -v f="$4" -v v="$5" 'NR == l { $(f < 0 ? NF + 1 + f : f) = v } { print }' \
        "$1/$D1/$2" > "$1/$D1/$2.tmp" &&
        mv "$1/$D1/$2.tmp" "$1/$D1/$2"
}
probe2=$(sed -n 2p "$T/ahba/$D1/MicroarrayExpression.csv" | cut -d, -f1)
for sel in diff_stability mean; do   # (max_intensity, max_variance: the same reader check)
    fresh "$T/nan"; sub "$T/nan" MicroarrayExpression.csv 2 3 nan
    refused "NaN in MicroarrayExpression.csv ($sel): refused naming file:line, probe and sample column" \
        "MicroarrayExpression.csv:2: field 3 \('nan'\) is not a finite number \(probe $probe2, sample column 2\)" \
        prep "$T/nan" --out "$T/o_nan" --set prepare.probe_selection=$sel
done
fresh "$T/nan"
sed -i 's/^\([0-9]*\),[^,]*,/\1,NaN,/' "$T/nan/$D1/MicroarrayExpression.csv"   # every probe, sample 1
refused "NaN in every row (default selection, which once spun in the rank ties): refused, no hang" \
    "MicroarrayExpression.csv:1: field 2 \('NaN'\) is not a finite number" prep "$T/nan" --out "$T/o_nan"
for v in inf 1e999; do   # (-Infinity and the other spellings: test_prepare)
    fresh "$T/inf"; sub "$T/inf" MicroarrayExpression.csv 3 5 "$v"
    refused "'$v' in MicroarrayExpression.csv: refused (not finite, or beyond float range)" \
        "MicroarrayExpression.csv:3: field 5 \('$v'\) is not a finite number" prep "$T/inf" --out "$T/o_inf"
done
fresh "$T/empty"; sub "$T/empty" MicroarrayExpression.csv 4 2 ""
refused "an empty cell in MicroarrayExpression.csv: refused naming the probe and sample column" \
    "MicroarrayExpression.csv:4: field 2 \(''\) is not a number \(probe [0-9]+, sample column 1\)" prep "$T/empty" --out "$T/o_e"
fresh "$T/pa"; sub "$T/pa" PACall.csv 2 4 nan
refused "NaN in PACall.csv (once: the probe silently dropped by the filter): refused" \
    "PACall.csv:2: field 4 \('nan'\) is not a finite number" prep "$T/pa" --out "$T/o_pa"
fresh "$T/sa"; sub "$T/sa" SampleAnnot.csv 3 -3 nan
refused "NaN as a SampleAnnot.csv coordinate: refused naming file:line and column" \
    "SampleAnnot.csv:3: mni_x 'nan' is not a finite number" prep "$T/sa" --out "$T/o_sa"
fresh "$T/pr"; sub "$T/pr" Probes.csv 3 1 x12
refused "a probe_id that is no integer in Probes.csv: refused naming file:line" \
    "Probes.csv:3: probe_id 'x12' is not an integer" prep "$T/pr" --out "$T/o_pr"
fresh "$T/on"; head -n 1 "$T/ahba/$D1/Ontology.csv" > "$T/on/$D1/Ontology.csv"
refused "an Ontology.csv with a header alone (found by fuzzing: UB in qsort): refused" \
    "Ontology.csv: no structures" prep "$T/on" --out "$T/o_on"
echo "well_id,corrected_mni_x,corrected_mni_y,corrected_mni_z" > "$T/coords.csv"
refused "a prepare.coordinates table without rows (once ignored without a word): refused" \
    "prepare.coordinates: .*coords.csv: no rows" prep "$T/ahba" --out "$T/o_co" --set prepare.coordinates="$T/coords.csv"

# ---- 2. donor folders that are links ---------------------------------------------
fresh "$T/lk"; ln -s "$T/lk/$D1" "$T/lk/normalized_microarray_donor12876"
if prep "$T/lk" --out "$T/o_lk" >"$T/lk.log" 2>&1 && grep -q "3 donors\|donors: 3\|3 donor" "$T/lk.log"; then
    ok "a donor folder that is a link to a folder is a donor (3 donors)"
else notok "a donor folder that is a link to a folder is a donor" "$(tail -n 2 "$T/lk.log" | tr '\n' ' ')"; fi
fresh "$T/dl"; ln -s "$T/nowhere" "$T/dl/normalized_microarray_donor12876"
refused "a dangling donor link (once skipped: one donor fewer, exit 0): refused naming it" \
    "normalized_microarray_donor12876: a dangling symbolic link" prep "$T/dl" --out "$T/o_dl"
fresh "$T/lp"; ln -s "$T/lp/normalized_microarray_donor12876" "$T/lp/normalized_microarray_donor12876"
refused "a donor link loop (once skipped): refused naming it" \
    "normalized_microarray_donor12876: a symbolic link loop" prep "$T/lp" --out "$T/o_lp"
fresh "$T/ef"; mkdir "$T/ef/normalized_microarray_donor12876"
refused "an empty donor folder: refused naming the missing file" "normalized_microarray_donor12876/.*csv" \
    prep "$T/ef" --out "$T/o_ef"

# ---- 3. another delimiter -----------------------------------------------------------
fresh "$T/semi"; sed -i 's/,/;/g' "$T/semi/$D1/SampleAnnot.csv"
refused "a ';'-delimited SampleAnnot.csv (once: missing column): named as ';'-delimited" \
    "SampleAnnot.csv:1: the first row is not comma-separated but holds ';': the file looks ';'-delimited" \
    prep "$T/semi" --out "$T/o_semi"
fresh "$T/semi"; sed -i 's/,/;/g' "$T/semi/$D1/MicroarrayExpression.csv"
refused "a ';'-delimited MicroarrayExpression.csv: named as ';'-delimited" \
    "MicroarrayExpression.csv:1: .*looks ';'-delimited" prep "$T/semi" --out "$T/o_semi"
# a small sample table to train on: 30 samples, 3 donors, 3 genes
S="$T/s.csv"
awk 'BEGIN { print "well_id,donor,mni_x,mni_y,mni_z,GA,GB,GC"
             for (i = 1; i <= 30; i++) printf "w%d,D%d,%d,%d,%d,%.4f,%.4f,%.4f\n", i, i % 3, -50 + 3 * i, -60 + 4 * i, -20 + 2 * i, sin(i), cos(i), i / 30 }' > "$S"
cat > "$T/train.yaml" <<YAML
model: {arch: fourier, fourier_features: 8, width: 16, hidden_layers: 1}
train: {steps: 4, val_every: 2, checkpoint_every: 4, batch_size: 8, validation: none}
YAML
train() { $G train "$T/train.yaml" --out "$T/run_$1" --set data.samples="$2"; }
export -f train
tr ',' '\t' < "$S" > "$T/tab.csv"
refused "a tab-delimited samples.csv (once: missing required column 'well_id'): named as tab-delimited" \
    "tab.csv:1: the first row is not comma-separated but holds TABs: the file looks tab-delimited" train tab "$T/tab.csv"

# ---- 4. a constant gene --------------------------------------------------------------
awk -F, -v OFS=, 'NR > 1 { $NF = "0.25" } { print }' "$S" > "$T/const.csv"
gene=$(head -n 1 "$S" | awk -F, '{ print $NF }')
refused "a constant gene (once: std 1 and a spurious range): refused naming it and its value" \
    "const.csv: gene '$gene' has the same value \(0.25\) in all [0-9]+ training samples" train const "$T/const.csv"

# ---- 5. a donor named average -------------------------------------------------------
awk -F, -v OFS=, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "donor") c = i } NR > 1 && NR % 2 { $c = "average" } { print }' \
    "$S" > "$T/avg.csv"
refused "a donor named 'average' (render.donor: average): refused naming file:line" \
    "avg.csv:3: column 'donor': the name 'average' is reserved" train avg "$T/avg.csv"

# ---- 6. phantom --out over files that are there --------------------------------------
mkdir -p "$T/ph"
echo "my own table" > "$T/ph/samples.csv"
refused "phantom --out DIR holding a samples.csv (once overwritten without a word): refused naming it" \
    "phantom --out .*already holds samples.csv.*--force" $G phantom --out "$T/ph" --grid 2 --genes 1
check "... and the user's samples.csv is untouched" grep -qx "my own table" "$T/ph/samples.csv"
mkdir -p "$T/pa2/ahba"
refused "phantom --ahba into a DIR holding ahba/: refused naming it" "already holds ahba/" \
    $G phantom --out "$T/pa2" --grid 2 --genes 1 --ahba
check "phantom --force overwrites an earlier phantom" \
    bash -c "$G phantom --out '$T/ph' --grid 2 --genes 1 --force >/dev/null && ! grep -q 'my own table' '$T/ph/samples.csv'"
