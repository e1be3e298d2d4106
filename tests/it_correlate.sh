#!/bin/bash
# geneinr correlate (issue 30): a map made from one gene ranks it first; spatial nulls keep the
# false-positive rate near 5% where the naive p does not; surrogates match the map's variogram;
# 1 and 2 ranks give the same files; gene sets; parcellations with Moran nulls; bad inputs fail cleanly.
# The atlas is the phantom's truth.h5 (same layout as a rendered atlas.h5), 2 mm, 12 genes.
. "$(dirname "$0")/lib.sh" correlate
MAPS="$PY tests/correlate_maps.py"
$G phantom --out "$T/p" --grid 2 >/dev/null || { notok "phantom"; exit 1; }
A=$T/p/truth.h5
# 1. a map from one gene's truth plus smooth noise ranks that gene first (two genes)
for g in G03 G07; do
    $MAPS "$A" "$T/m_$g.nii.gz" --gene $g --noise 1 --seed 7 --fwhm 25
    if $G correlate "$A" --map "$T/m_$g.nii.gz" --out "$T/c_$g" --nulls 100 --resolution 8 >"$T/c_$g.log" 2>&1 &&
        [ "$(sed -n 2p "$T/c_$g/correlations.csv" | cut -d, -f1)" = $g ]; then ok "map from $g's truth + noise ranks $g first"
    else notok "map from $g's truth + noise ranks $g first" "$(head -3 "$T/c_$g/correlations.csv" 2>&1 | tr '\n' ' ')"; fi
done
check "correlations.csv has the issue's columns" grep -qx 'gene,r,p_naive,p_spatial,q_spatial' <(head -1 "$T/c_G03/correlations.csv")
check "one row per gene" [ "$(wc -l < "$T/c_G03/correlations.csv")" = 13 ]
check "report.html and its figures" bash -c "grep -q 'figures/variogram.png' '$T/c_G03/report.html' &&
    for f in \$(grep -o 'figures/[^\"]*png' '$T/c_G03/report.html'); do [ -s '$T/c_G03/'\$f ] || exit 1; done"
# 2. surrogates' variograms match the map's: mean |median surrogate - map| / mean map <= 10%
check "surrogates' variograms within 10% of the map's" $PY -c "
import h5py, numpy as np
f = h5py.File('$T/c_G03/nulls.h5', 'r')
vm, vn = f['variogram_map'][()], f['variogram_nulls'][()]
dev = np.mean(np.abs(np.median(vn, axis=0) - vm)) / np.mean(vm)
print('deviation', dev); assert dev <= 0.10, dev
assert f['r_null'].shape == (12, 100) and f.attrs['seed'] == 1"
# 3. false positives on independent smooth maps: 8 maps x 12 genes = 96 tests
fpr=""
for i in 1 2 3 4 5 6 7 8; do
    $MAPS "$A" "$T/r$i.nii.gz" --seed $((100 + i)) --fwhm $((15 + 5 * i))
    $G correlate "$A" --map "$T/r$i.nii.gz" --out "$T/r$i" --nulls 100 --resolution 8 --seed $i --top 0 >/dev/null 2>&1
done
read -r n a b < <(cat "$T"/r[1-8]/correlations.csv | awk -F, '$1 != "gene" { n++; if ($3 < 0.05) a++; if ($4 < 0.05) b++ } END { print n, a, b }')
echo "# independent smooth maps: $n tests, p_naive < 0.05 in $a, p_spatial < 0.05 in $b"
check "p_spatial < 0.05 in at most 15% of $n null tests ($b)" [ "$n" = 96 -a "$b" -le 14 ]
check "p_naive < 0.05 in at least 40% of them ($a)" [ "$a" -ge 38 ]
# 4. identical at 1 and 2 ranks
$MPIRUN -np 2 $G correlate "$A" --map "$T/m_G03.nii.gz" --out "$T/c2" --nulls 100 --resolution 8 >/dev/null 2>&1
check "correlations.csv identical at 1 and 2 ranks" cmp "$T/c_G03/correlations.csv" "$T/c2/correlations.csv"
check "nulls.h5 data identical at 1 and 2 ranks" $PY -c "
import h5py, numpy as np
a, b = h5py.File('$T/c_G03/nulls.h5', 'r'), h5py.File('$T/c2/nulls.h5', 'r')
assert sorted(a) == sorted(b)
for k in a: assert np.array_equal(a[k][()], b[k][()]), k
assert dict(a.attrs) == dict(b.attrs)"
# 5. gene sets
printf '# a test set\nG03\nG07\nNOT_A_GENE\n' > "$T/set1.txt"
printf 'G03\nNOPE\n' > "$T/set_one.txt"
printf 'G01\nG02\nG04\nG05\n' > "$T/set2.txt"
if $G correlate "$A" --map "$T/m_G03.nii.gz" --out "$T/gs" --nulls 50 --resolution 8 --gene-set "$T/set1.txt" \
    --gene-set "$T/set2.txt" >"$T/gs.log" 2>&1 && grep -q 'NOT_A_GENE' "$T/gs.log"; then ok "gene set: unknown symbols noted"
else notok "gene set: unknown symbols noted" "$(tail -2 "$T/gs.log")"; fi
check "gene_sets.csv" bash -c "head -1 '$T/gs/gene_sets.csv' | grep -qx 'set,n_genes,mean_r,p_gene_resampling,p_spatial' &&
    grep -q '^set1,2,' '$T/gs/gene_sets.csv' && grep -q '^set2,4,' '$T/gs/gene_sets.csv'"
fails_cleanly "a set with fewer than 2 known genes is refused" "at least 2" \
    $G correlate "$A" --map "$T/m_G03.nii.gz" --out "$T/gs1" --nulls 10 --gene-set "$T/set_one.txt"
# 6. parcellation: region means, Moran nulls too
check "parcellation: region means with Moran nulls" bash -c "$G correlate '$A' --map '$T/m_G03.nii.gz' --out '$T/parc' \
    --nulls 100 --parcellation '$T/p/anatomy.nii.gz' --top 1 >/dev/null &&
    head -1 '$T/parc/correlations.csv' | grep -qx 'gene,r,p_naive,p_spatial,q_spatial,p_moran,q_moran' &&
    [ \$(wc -l < '$T/parc/correlations.csv') = 13 ]"
# 7. bad inputs
fails_cleanly "missing map" "nope.nii.gz" $G correlate "$A" --map "$T/nope.nii.gz" --out "$T/bad1"
$PY -c "
import nibabel as nib, numpy as np
i = nib.load('$T/m_G03.nii.gz'); A = i.affine.copy(); A[0, 3] += 400
nib.save(nib.Nifti1Image(np.asarray(i.dataobj), A), '$T/far.nii.gz')"
fails_cleanly "a map outside the atlas: its share is named" "covers 0.0% of the atlas mask" \
    $G correlate "$A" --map "$T/far.nii.gz" --out "$T/bad2"
$PY -c "
import nibabel as nib, numpy as np
i = nib.load('$T/m_G03.nii.gz'); nib.save(nib.Nifti1Image(np.ones(i.shape, np.float32), i.affine), '$T/const.nii.gz')"
fails_cleanly "a constant map" "is constant" $G correlate "$A" --map "$T/const.nii.gz" --out "$T/bad6"
fails_cleanly "not an atlas" "samples.csv" $G correlate "$T/p/samples.csv" --map "$T/m_G03.nii.gz" --out "$T/bad3"
fails_cleanly "2 ranks: a bad map fails on both, no hang" "covers 0.0%" \
    $MPIRUN -np 2 $G correlate "$A" --map "$T/far.nii.gz" --out "$T/bad4"
mkdir -p "$T/user" && echo "mine" > "$T/user/correlations.csv"
fails_cleanly "a user's file in the output folder is not replaced" "correlations.csv" \
    $G correlate "$A" --map "$T/m_G03.nii.gz" --out "$T/user" --nulls 10
check "... and is left as it was" grep -qx mine "$T/user/correlations.csv"
$G correlate "$A" --map "$T/m_G03.nii.gz" --out "$T/bad5" --nulls 0 >/dev/null 2>&1
check "--nulls 0 is a usage error (exit 2)" [ $? = 2 ]
check "no temporaries left" bash -c "! ls '$T'/*/*.tmp '$T'/*/.correlate-map.h5 2>/dev/null | grep -q ."
