#!/bin/bash
# make bench: speed and memory figures of this machine. Record the output, with
# this command, in docs/BENCHMARKS.md. Uses runs/bench/ for its data.
#   tools/bench.sh [BUILD]     env: NP (2); SKIP_LONG=1 leaves out the prepare and
#                              whole-transcriptome benchmarks (tens of minutes; bench_trunk.sh ~7 min)
set -e
BUILD=${1:-build}
G=$BUILD/geneinr
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_rmaps_base_oversubscribe=1
NP=${NP:-2}
B=runs/bench
mkdir -p $B
# An OPENBLAS_CORETYPE inherited from the shell (or a job script) would pin every run
# below, PyTorch's too, to those kernels instead of the best ones for this CPU (blas.h);
# KEEP_CORETYPE=1 measures with it.
INHERITED_CORE=${OPENBLAS_CORETYPE-}
if [ -n "$INHERITED_CORE" ] && [ "${KEEP_CORETYPE:-0}" != 1 ]; then
    unset OPENBLAS_CORETYPE
    echo "note: ignoring the inherited OPENBLAS_CORETYPE=$INHERITED_CORE (KEEP_CORETYPE=1 keeps it)"
fi
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%d)"
echo "   load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "== sgemm: peak and every training GEMM at its shape ($BUILD/bench/bench_sgemm)"
$BUILD/bench/bench_sgemm
# the peak of other kernel choices, for comparison (empty = OpenBLAS's own choice)
for core in "" Haswell $INHERITED_CORE; do
    echo "   OPENBLAS_CORETYPE=$core: $(OPENBLAS_CORETYPE=$core $BUILD/bench/bench_sgemm --peak | tr '\n' ' ' | sed 's/OpenBLAS kernels: //')"
done
echo
[ -f $B/ph100/samples.csv ] || $G phantom --out $B/ph100 --genes 100 >/dev/null
tools/bench_train.sh $BUILD
echo
cfg="configs/demo.yaml --set data.samples=$B/ph100/samples.csv --set data.anatomy=$B/ph100/anatomy.nii.gz
     --set render.mask=$B/ph100/mask.nii.gz --set render.nifti=false"
echo "== training: 500 full-batch steps, 100 genes, no early stop (mpirun -np $NP geneinr train configs/demo.yaml ...)"
mpirun -np $NP $G train $cfg --out $B/train100 --set train.steps=500 --set train.patience=0 \
    --set train.log_every=500 | grep -E "^(train|step|resources)"
echo
echo "== render: full 1 mm MNI grid x 100 genes into one HDF5 atlas (mpirun -np $NP geneinr render ...)"
mpirun -np $NP $G render $cfg --out $B/train100 | grep -E "^(render|resources)"
ls -l $B/train100/atlas.h5 | awk '{printf "atlas size: %.0f MB\n", $5 / 1048576}'
echo
tools/bench_prior.sh $BUILD
echo
echo "== correlate: 1,000 spatial nulls of a 1 mm map against the 100 genes (mpirun -np $NP geneinr correlate ...)"
[ -f $B/map1mm.nii.gz ] || /usr/bin/python3 tests/correlate_maps.py $B/train100/atlas.h5 $B/map1mm.nii.gz --seed 3 --fwhm 20
/usr/bin/time -f "correlate: %e s wall, %U s user, %M KB peak RSS (mpirun)" \
    mpirun -np $NP $G correlate $B/train100/atlas.h5 --map $B/map1mm.nii.gz --out $B/correlate --nulls 1000 2>&1 |
    grep -E "^correlate"
echo
if [ "${SKIP_LONG:-0}" != 1 ]; then
    tools/bench_prepare.sh $BUILD
    tools/bench_transcriptome.sh $BUILD
    tools/bench_trunk.sh $BUILD
fi
echo "   load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
