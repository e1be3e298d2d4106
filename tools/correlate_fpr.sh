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
# How closely the surrogates match each map's variogram: mean |median surrogate - map| / mean map.
/usr/bin/python3 - "$W" "$M" <<'P'
import sys, h5py, numpy as np
w, m = sys.argv[1], int(sys.argv[2])
d = []
for i in range(1, m + 1):
    f = h5py.File(f'{w}/c{i}/nulls.h5', 'r')
    vm, vn = f['variogram_map'][()], f['variogram_nulls'][()]
    d.append(np.mean(np.abs(np.median(vn, axis=0) - vm)) / np.mean(vm))
d = np.array(d)
print(f'variogram deviation over {m} maps: median {np.median(d):.3f}, max {d.max():.3f}')
P
