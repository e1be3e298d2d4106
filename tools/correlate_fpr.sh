#!/bin/bash
# False-positive rates of `geneinr correlate` (docs/ACCURACY.md, "Spatial nulls"):
# M independent smooth random maps (FWHM cycling 15, 25, 40 mm) against every gene of a
# phantom's truth; counts genes with p_naive < 0.05 and p_spatial < 0.05 over all tests.
# usage: tools/correlate_fpr.sh [M=50] [NULLS=200] [RESOLUTION=4]   (env: GENEINR, WORK)
set -e
M=${1:-50}; NULLS=${2:-200}; RES=${3:-4}
G=${GENEINR:-build/geneinr}
W=${WORK:-$(mktemp -d)}
[ -f "$W/p/truth.h5" ] || "$G" phantom --out "$W/p" --grid 2 >/dev/null
fw=(15 25 40)
for i in $(seq 1 "$M"); do
    /usr/bin/python3 tests/correlate_maps.py "$W/p/truth.h5" "$W/m$i.nii.gz" --seed "$i" --fwhm "${fw[$((i % 3))]}"
    "$G" correlate "$W/p/truth.h5" --map "$W/m$i.nii.gz" --out "$W/c$i" --nulls "$NULLS" --resolution "$RES" \
        --seed "$i" --top 0 >/dev/null
done
cat "$W"/c*/correlations.csv | awk -F, '$1 != "gene" { n++; if ($3 < 0.05) a++; if ($4 < 0.05) b++ }
    END { printf "tests %d: p_naive < 0.05 in %d (%.1f%%), p_spatial < 0.05 in %d (%.1f%%)\n", n, a, 100*a/n, b, 100*b/n }'
