#!/bin/bash
# bench_trunk.sh - the whole transcriptome from one trunk (issue 29, item 3): configs/transcriptome.yaml
# end to end (`geneinr run`: the trunk trained on the 1,000 most variable genes, every other gene
# extended onto it, all rendered into a uint16 atlas) on the 100-gene 2 mm phantom's table widened to
# GENES genes (bench/bench_widen: noisy copies), NP ranks; wall time and peak memory per rank of the
# whole job and of each phase as printed. Figures: docs/BENCHMARKS.md "Whole transcriptome from one trunk".
#   tools/bench_trunk.sh [BUILD]      env: NP (2), GENES (15600), TRUNK (1000)
set -e
BUILD=${1:-build}
G=$BUILD/geneinr
NP=${NP:-2}
GENES=${GENES:-15600}
TRUNK=${TRUNK:-1000}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_rmaps_base_oversubscribe=1
D=$(mktemp -d "${TMPDIR:-/tmp}/geneinr-bench-trunk.XXXXXX")
trap 'rm -rf "$D"' EXIT
$G phantom --out "$D/ph" --grid 2 --genes 100 >/dev/null
$BUILD/bench/bench_widen "$D/ph/samples.csv" "$D/wide.csv" "$GENES"
echo "== configs/transcriptome.yaml: $GENES genes x $(($(wc -l <"$D/wide.csv") - 1)) samples, trunk of $TRUNK, 2 mm grid, $NP ranks"
echo "   load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f "wall %e s" mpirun -np "$NP" $G run configs/transcriptome.yaml --set data.samples=$D/wide.csv \
    --set data.anatomy=$D/ph/anatomy.nii.gz --set render.mask=$D/ph/mask.nii.gz --set data.trunk_genes=$TRUNK \
    --set run.out=$D/tx 2>&1 | grep -vE "ETA|^step|evaluations" | sed 's/^/   /'
ls -l "$D/tx/atlas.h5" | awk '{printf "   atlas size: %.2f GB\n", $5 / 1073741824}'
echo "   load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
