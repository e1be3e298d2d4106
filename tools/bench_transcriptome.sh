#!/bin/bash
# Benchmark: the whole transcriptome (15,600 genes, as many as abagen keeps) in one job,
# on the 2 mm grid here; time and peak memory per rank of training, of the spectral gene
# ordering (concat + spectral) and of the render, the render bounded by render.buffer_mb.
# The sample table is the 100-gene phantom's widened to GENES noisy copies (bench_widen).
# Figures and the 1 mm projection: docs/BENCHMARKS.md "Whole transcriptome".
# usage: tools/bench_transcriptome.sh [BUILD]    NP=2 ranks, GENES=15600, BUFFER_MB=256,
#        RENDER=0 to skip the render (its atlas is ~12 GB of in-mask values on the 2 mm grid)
set -e
BUILD=${1:-build}
G=$BUILD/geneinr
NP=${NP:-2}
GENES=${GENES:-15600}
BUFFER_MB=${BUFFER_MB:-256}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_rmaps_base_oversubscribe=1
D=$(mktemp -d "${TMPDIR:-/tmp}/geneinr-bench-tx.XXXXXX")
trap 'rm -rf "$D"' EXIT
$G phantom --out "$D/ph" --grid 2 --genes 100 >/dev/null
t0=$(date +%s.%N)
$BUILD/bench/bench_widen "$D/ph/samples.csv" "$D/wide.csv" "$GENES"
printf "== whole transcriptome: %d genes x %d samples, sample table %.0f MB of text (written in %.1f s)\n" "$GENES" \
    $(($(wc -l <"$D/wide.csv") - 1)) "$(echo "$(stat -c %s "$D/wide.csv") / 1048576" | bc -l)" \
    "$(echo "$(date +%s.%N) - $t0" | bc -l)"
cfg=(configs/atlas.yaml --set data.prior=none --set data.prior_refit=false --set train.batch_size=0 --set data.samples=$D/wide.csv --set data.anatomy=$D/ph/anatomy.nii.gz
     --set render.mask=$D/ph/mask.nii.gz --set render.nifti=false --set render.buffer_mb=$BUFFER_MB
     --set render.preview_genes=0 --set render.report=false)
echo "== train, factorized (configs/atlas.yaml model, full batch), 20 steps, $NP ranks"
mpirun -np "$NP" $G train "${cfg[@]}" --out "$D/fac" --set train.steps=20 --set train.val_every=10 \
    --set train.log_every=10 --set train.patience=0 | grep -E "^(train: [0-9]|step +20|resources)"
awk -F, 'NR == 2 { a = $6 } END { printf "step time: %.2f s (mean of steps 2-%d; step 1 %.2f s)\n", ($6 - a) / (NR - 2), NR - 1, a }' "$D/fac/train_log.csv"
echo "== train, concat + spectral gene code: the gene ordering (once, rank 0) and 2 steps of 4096 units"
mpirun -np "$NP" $G train "${cfg[@]}" --out "$D/cat" --set train.steps=2 --set model.gene_mode=concat \
    --set model.gene_code=spectral --set train.batch_size=4096 --set train.log_every=1 | grep -E "^(train: spectral|resources)"
if [ "${RENDER:-1}" != 0 ]; then
    echo "== render: 2 mm MNI grid x $GENES genes into one HDF5 atlas, render.buffer_mb = $BUFFER_MB, $NP ranks"
    mpirun -np "$NP" $G render "${cfg[@]}" --out "$D/fac" | grep -E "^(render: [0-9]|render: .*voxels x|render: note|resources)"
    ls -l "$D/fac/atlas.h5" | awk '{printf "atlas size: %.1f GB\n", $5 / 1073741824}'
fi
