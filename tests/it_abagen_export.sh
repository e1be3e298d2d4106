#!/bin/bash
# abagen's exports train as they are: the phantom's sample table is rewritten
# the ways pandas saves abagen's get_samples_in_mask(return_donors=True)
# output (x,y,z coordinates, numeric donors, a well_id index, pandas' unnamed
# index columns, Allen annotation columns such as polygon_id, mri_voxel_x and
# abagen's text 'structure'), and each one must read with the same genes and
# values and train a few steps. Text in an unknown column is an error naming
# it and saying how to mark it; data.genes selects the gene columns.
. "$(dirname "$0")/lib.sh" abagen_export
fails_with() { # name, expected text, command...
    local name=$1 want=$2; shift 2
    if "$@" >"$T/last.log" 2>&1; then notok "$name" "succeeded"; return; fi
    if grep -qF -- "$want" "$T/last.log"; then ok "$name"; else notok "$name" "$(tail -n 3 "$T/last.log" | tr '\n' ' ')"; fi
}

check "phantom (2 mm grid, 4 genes)" $G phantom --out "$T/ph" --grid 2 --genes 4 --seed 5

# Rewrite the table as pandas writes abagen's output. Numeric donor ids are
# the AHBA ones (9861 = H0351.2001, ...).
$PY - "$T" <<'PYEOF' || notok "write the abagen-style tables"
import csv, sys
T = sys.argv[1]
rows = list(csv.reader(open(f"{T}/ph/samples.csv")))
hdr, body = rows[0], rows[1:]
ix = {n: i for i, n in enumerate(hdr)}
genes = [n for n in hdr if n.startswith("G")]
num = {"H0351.2001": "9861", "H0351.2002": "10021", "H0351.1009": "12876",
       "H0351.1012": "14380", "H0351.1015": "15496", "H0351.1016": "15697"}
def out(name, header, make):
    with open(f"{T}/{name}", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for k, r in enumerate(body):
            w.writerow(make(k, r))
def base(r):
    return [r[ix["mni_x"]], r[ix["mni_y"]], r[ix["mni_z"]]]
def g(r):
    return [r[ix[n]] for n in genes]
# pd.concat({d: coords[d].join(exp[d]) for d in exp}, names=['donor']).to_csv(...)
out("named.csv", ["donor", "well_id", "x", "y", "z"] + genes,
    lambda k, r: [num[r[ix["donor"]]], r[ix["well_id"]]] + base(r) + g(r))
# the same without names=['donor']: an unnamed first index level
out("unnamed.csv", ["", "well_id", "x", "y", "z"] + genes,
    lambda k, r: [num[r[ix["donor"]]], r[ix["well_id"]]] + base(r) + g(r))
# read back by pandas and saved again: "Unnamed: 0" for the row number
out("resaved.csv", ["Unnamed: 0", "donor", "well_id", "x", "y", "z"] + genes,
    lambda k, r: [str(k), num[r[ix["donor"]]], r[ix["well_id"]]] + base(r) + g(r))
# joined with Allen's SampleAnnot columns and abagen's 'structure'
out("annotated.csv", ["well_id", "donor", "structure_id", "slab_num", "slab_type",
                      "structure_acronym", "structure_name", "polygon_id", "mri_voxel_x",
                      "mri_voxel_y", "mri_voxel_z", "mni_x", "mni_y", "mni_z", "structure",
                      "x", "y", "z"] + genes,
    lambda k, r: [r[ix["well_id"]], r[ix["donor"]], "4251", "3", "CX", "LHM",
                  "\"lateral, hypothalamic\"", str(100000 + k), "101", "102", "103"] + base(r) +
                 ["cortex"] + base(r) + g(r))
# an unknown text column, and an unknown numeric one
out("text.csv", ["well_id", "donor", "x", "y", "z", "batch"] + genes,
    lambda k, r: [r[ix["well_id"]], num[r[ix["donor"]]]] + base(r) + ["run%d" % (k % 3)] + g(r))
out("extra.csv", ["well_id", "donor", "x", "y", "z", "age"] + genes,
    lambda k, r: [r[ix["well_id"]], num[r[ix["donor"]]]] + base(r) + ["42"] + g(r))
open(f"{T}/genes.txt", "w").write("\n".join(genes) + "\n")
PYEOF

# info lists genes and donors: same table as the phantom's.
same_table() { # file: 4 genes, 6 donors named H0351.*, same sample count
    $G info "$1" > "$T/info.txt" || return 1
    grep -q "3702 samples x 4 genes, 6 donors" "$T/info.txt" || { cat "$T/info.txt"; return 1; }
    grep -q "donor H0351.2001" "$T/info.txt"
}
for f in named unnamed resaved annotated; do
    check "abagen export '$f' reads as the phantom's table (3702 samples, 4 genes, 6 donors)" same_table "$T/$f.csv"
done
fails_with "text in an unknown column is an error naming it and saying how to mark it" \
    "column 'batch': 'run0' is not a number, but the column is read as a gene. If 'batch' is not a gene, list the gene columns in data.genes" \
    $G info "$T/text.csv"

cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/named.csv
model:
  width: 32
  hidden_layers: 2
train:
  steps: 20
  val_every: 10
  log_every: 10
YAML
check "train on abagen's natural export (numeric donors, x,y,z, well_id index)" \
    $G train "$T/cfg.yaml" --out "$T/run_named"
check "train on the unnamed-index export" $G train "$T/cfg.yaml" --out "$T/run_unnamed" \
    --set data.samples="$T/unnamed.csv"
same_curve() { cmp <(cut -d, -f1-5 "$1/train_log.csv") <(cut -d, -f1-5 "$2/train_log.csv"); }
check "the two exports give identical loss curves" same_curve "$T/run_named" "$T/run_unnamed"
check "train on the annotated export" $G train "$T/cfg.yaml" --out "$T/run_annot" \
    --set data.samples="$T/annotated.csv"
check "numeric donor ids work as train.val_donor" $G train "$T/cfg.yaml" --out "$T/run_vd" \
    --set train.validation=donor --set train.val_donor=10021
check "data.genes: text and unknown columns are left out" $G train "$T/cfg.yaml" --out "$T/run_text" \
    --set data.samples="$T/text.csv" --set data.genes="$T/genes.txt"
check "data.genes: same loss curve as without the extra column" same_curve "$T/run_named" "$T/run_text"
echo "G99" >> "$T/genes.txt"
fails_with "data.genes: a listed gene missing from the table is an error naming it" \
    "gene 'G99' of data.genes ($T/genes.txt:5) is not a column" \
    $G train "$T/cfg.yaml" --out "$T/run_missing" --set data.samples="$T/extra.csv" --set data.genes="$T/genes.txt"
