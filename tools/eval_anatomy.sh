#!/bin/bash
# Issue 25's choice of the sample-to-label rule, by held-out error (docs/ACCURACY.md, "Samples meet the anatomy").
#   tools/eval_anatomy.sh [OUT]
# For each phantom (built-in "ph", and "dk" on the real DK grid when ../shared/data exists; both realistic:
# samples keep their registered coordinate and carry their tissue's class and hemisphere) and each rule
# (RULES: name=tolerance[:class]), geneinr eval of configs/atlas.yaml on the kfold, block and donor splits
# (METHODS: eval.methods, default regression_kriging only: the rule's cheap screen; "" = every method), then
# the truth r of the rule's atlas (RENDER=rk: render.method=regression_kriging; RENDER=inr: geneinr run; none).
# EVAL_GENES (default 100), EVAL_PHANTOMS ("ph dk"), SPLITS ("kfold block donor"). Finished cells are kept.
set -e
G=${GENEINR:-build/geneinr}
OUT=${1:-runs/eval_anatomy}
REF=${GENEINR_SHARED_DATA:-../shared/data}
GENES=${EVAL_GENES:-100}
RULES=${RULES:-"voxel=0 t2c=2:class t5c=5:class t10c=10:class t5=5"}
METHODS=${METHODS-regression_kriging}
SPLITS=${SPLITS:-"kfold block donor"}
RENDER=${RENDER:-rk}
mkdir -p "$OUT"
tags="ph"
[ -f "$REF/atlas-desikankilliany.nii.gz" ] && tags="ph dk"
tags=${EVAL_PHANTOMS:-$tags}
for tag in $tags; do
    P=$OUT/$tag
    if [ ! -f "$P/samples.csv" ]; then
        if [ "$tag" = dk ]; then $G phantom --out "$P" --dk --grid 2 --reference "$REF" --genes "$GENES" >/dev/null
        else $G phantom --out "$P" --grid 2 --genes "$GENES" >/dev/null; fi
    fi
    S="--set data.samples=$P/samples.csv --set data.anatomy=$P/anatomy.nii.gz --set render.mask=$P/mask.nii.gz"
    for rule in $RULES; do
        name=${rule%%=*}; spec=${rule#*=}; tol=${spec%%:*}
        A="--set data.anatomy_tolerance=$tol --set data.anatomy_labels="   # no class rule unless the rule says so
        [ "$spec" != "${spec%:class}" ] && A="--set data.anatomy_tolerance=$tol --set data.anatomy_labels=$P/anatomy.csv"
        M=""; [ -n "$METHODS" ] && M="--set eval.methods=$METHODS"
        mtag=${METHODS:-all}; mtag=${mtag//,/+}
        for split in $SPLITS; do
            D=$OUT/eval_${tag}_${name}_${mtag}_$split
            [ -f "$D/summary.csv" ] && continue
            nice -n ${NICE:-10} $G eval configs/atlas.yaml --out "$D" $S $A $M --set eval.split=$split \
                --set eval.folds=3 --set train.log_every=100000 > "$D.log" 2>&1 || { echo "FAILED: $D (see $D.log)"; continue; }
        done
        R="--set render.preview_genes=0 --set render.report=false --set render.nifti=false"
        D=$OUT/atlas_${tag}_${name}_$RENDER
        if [ "$RENDER" != none ] && [ ! -f "$D/score.txt" ]; then
            if [ "$RENDER" = inr ]; then nice -n ${NICE:-10} $G run configs/atlas.yaml --out "$D" $S $A $R --set train.log_every=100000 > "$D.log" 2>&1
            else nice -n ${NICE:-10} $G render configs/atlas.yaml --out "$D" $S $A $R --set render.method=regression_kriging > "$D.log" 2>&1; fi
            $G score "$D/atlas.h5" --truth "$P/truth.h5" --samples "$P/samples.csv" > "$D/score.txt"
        fi
    done
done
# The table: median held-out r (mean MSE) per phantom x rule x split, and the atlas's truth r.
for tag in $tags; do
    for rule in $RULES; do
        name=${rule%%=*}
        for f in "$OUT"/eval_${tag}_${name}_*/summary.csv; do
            [ -f "$f" ] && awk -F, -v t="$tag" -v n="$name" 'NR > 1 { printf "%s %-6s %-7s %-20s median r %.4f  MSE %.4f\n", t, n, $2, $1, $5, $6 }' "$f"
        done
        for f in "$OUT"/atlas_${tag}_${name}_*/score.txt; do
            [ -f "$f" ] && printf '%s %-6s truth    %s\n' "$tag" "$name" "$(tail -n 1 "$f")"
        done
    done
done
