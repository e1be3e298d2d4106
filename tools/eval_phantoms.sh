#!/bin/bash
# The held-out comparison of docs/ACCURACY.md: geneinr eval of configs/atlas.yaml (the INR over the
# regression-kriging prior) against nearest, idw, kriging and regression_kriging on the same folds,
# for the kfold, block and donor splits, on the built-in phantom and (when ../shared/data exists) the
# phantom on the real DK grid at the real AHBA coordinates; then the truth r of each method's atlas.
#   tools/eval_phantoms.sh [OUT]        (default runs/eval_phantoms; ~1 h on a busy 2-core machine)
# EVAL_PHANTOMS="ph" or "dk" runs one phantom only (two such runs in parallel use both cores).
# EVAL_GENES=100 builds phantoms of 100 genes (the atlas's design point) instead of the default 12.
set -e
G=${GENEINR:-build/geneinr}
OUT=${1:-runs/eval_phantoms}
REF=${GENEINR_SHARED_DATA:-../shared/data}
GENES=${EVAL_GENES:-12}
mkdir -p "$OUT"
tags="ph"
[ -f "$REF/atlas-desikankilliany.nii.gz" ] && tags="ph dk"
tags=${EVAL_PHANTOMS:-$tags}
for tag in $tags; do
    P=$OUT/$tag
    if [ ! -f "$P/samples.csv" ]; then
        if [ "$tag" = dk ]; then $G phantom --out "$P" --dk --grid 2 --reference "$REF" --genes "$GENES"
        else $G phantom --out "$P" --grid 2 --genes "$GENES"; fi
    fi
    S="--set data.samples=$P/samples.csv --set data.anatomy=$P/anatomy.nii.gz --set render.mask=$P/mask.nii.gz"
    for split in kfold block donor; do
        nice -n 10 $G eval configs/atlas.yaml --out "$OUT/eval_${tag}_$split" $S --set eval.split=$split \
            --set eval.folds=3 --set train.log_every=100000 | tail -n 9
    done
    # Truth r (the phantom's noise-free maps) of every method's atlas.
    R="--set render.preview_genes=0 --set render.report=false"
    nice -n 10 $G run configs/atlas.yaml --out "$OUT/atlas_${tag}_inr" $S $R --set train.log_every=100000 >/dev/null
    for m in regression_kriging kriging idw nearest; do
        nice -n 10 $G render configs/atlas.yaml --out "$OUT/atlas_${tag}_$m" $S $R --set render.method=$m >/dev/null
    done
    for m in inr regression_kriging kriging idw nearest; do
        printf '%s %-20s ' "$tag" "$m"
        $G score "$OUT/atlas_${tag}_$m/atlas.h5" --truth "$P/truth.h5" --samples "$P/samples.csv" | tail -n 1
    done
done
