#!/bin/bash
# bench_prior.sh - the prior's cost (issue 31), side by side in one run on the same grid and genes
# (the built-in 100-gene phantom, 1 mm MNI grid, 1,518,288 in-mask voxels), NP ranks:
#   1. the network alone: configs/atlas.yaml with data.prior none, trained (run), then rendered;
#   2. the recommended configuration (configs/atlas.yaml as it stands: regression-kriging prior,
#      data.prior_refit, render.uncertainty, the prior and the SD on their lattices) end to end
#      (geneinr run: prior fit, training, render) ...
#   3. ... and its render alone (the prior's refit, the lattices, network + prior at every voxel);
#   4. with EXACT=1 also the exact prior (render.prior_step 1) and the atlas's difference from it.
#   tools/bench_prior.sh [BUILD]      env: NP (2), EXACT (0)
set -e
BUILD=${1:-build}
G=$BUILD/geneinr
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_rmaps_base_oversubscribe=1
NP=${NP:-2}
B=runs/bench
mkdir -p $B
[ -f $B/ph100/samples.csv ] || $G phantom --out $B/ph100 --genes 100 >/dev/null
S=(--set data.samples=$B/ph100/samples.csv --set data.anatomy=$B/ph100/anatomy.nii.gz
   --set render.mask=$B/ph100/mask.nii.gz --set render.nifti=false --set render.preview_genes=0
   --set render.report=false)
NONE=(--set data.prior=none --set data.prior_refit=false --set data.prior_donor_effect=false
      --set render.uncertainty=false)
T="/usr/bin/time -f %e"
wall() { grep -E '^[0-9.]+$' "$1" | tail -n 1; }
show() { grep -E "^(render|resources|prior|train: (validation|stopped|best))" "$1" | grep -v "ETA" | sed 's/^/   /'; }

echo "== the prior's cost: 1 mm x 100 genes, $NP ranks, configs/atlas.yaml (tools/bench_prior.sh)"
echo "   load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
$T mpirun -np $NP $G run configs/atlas.yaml "${S[@]}" "${NONE[@]}" --set run.out=$B/prior_none >$B/prior_none_run.log 2>&1
$T mpirun -np $NP $G render configs/atlas.yaml "${S[@]}" "${NONE[@]}" --out $B/prior_none >$B/prior_none.log 2>&1
echo "-- 1. network alone (data.prior none), render:"
show $B/prior_none.log
$T mpirun -np $NP $G run configs/atlas.yaml "${S[@]}" --set run.out=$B/prior_rec >$B/prior_rec_run.log 2>&1
echo "-- 2. recommended, geneinr run end to end:"
show $B/prior_rec_run.log
$T mpirun -np $NP $G render configs/atlas.yaml "${S[@]}" --out $B/prior_rec >$B/prior_rec.log 2>&1
echo "-- 3. recommended, render:"
show $B/prior_rec.log
n=$(wall $B/prior_none.log) r=$(wall $B/prior_rec.log) e=$(wall $B/prior_rec_run.log)
echo
echo "| 1 mm x 100 genes, $NP ranks | wall |"
echo "|---|---|"
echo "| render, the network alone (data.prior none) | $n s |"
echo "| render, configs/atlas.yaml (prior on its lattice, SD on its lattice) | $r s ($(echo "$r / $n" | bc -l | xargs printf %.2f)x) |"
echo "| geneinr run configs/atlas.yaml, end to end | $e s |"
if [ "${EXACT:-0}" = 1 ]; then
    $T mpirun -np $NP $G render configs/atlas.yaml "${S[@]}" --out $B/prior_exact --checkpoint $B/prior_rec/checkpoint.h5 \
        --set render.prior_step=1 >$B/prior_exact.log 2>&1
    echo "| render, configs/atlas.yaml with render.prior_step 1 (the exact prior; SD on its lattice) | $(wall $B/prior_exact.log) s |"
    echo
    echo "-- the atlas's difference from the exact prior (tools/atlas_diff.py)"
    /usr/bin/python3 tools/atlas_diff.py $B/prior_exact/atlas.h5 $B/prior_rec/atlas.h5 $B/ph100/samples.csv
fi
echo "   load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
