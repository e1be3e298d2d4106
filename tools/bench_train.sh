#!/bin/bash
# Training speed beside PyTorch (part of make bench): geneinr on NP ranks x 1
# OpenBLAS thread and its PyTorch twin (tools/bench_torch.py, 2 threads) on the
# same shapes, interleaved (geneinr, torch, geneinr, torch, ...) REPEATS times so
# that other load on the machine hits both alike. Each run's figure is the
# median step time; the table shows the median over the repeats and the ratio.
#
# PyTorch runs twice per repeat: with the default OpenMP wait policy (threads
# spin between parallel regions) and with OMP_WAIT_POLICY=PASSIVE (they sleep),
# which is much faster for PyTorch at 2 threads on a 2-core machine where the
# spinning thread competes with the working one. The ratio is taken against the
# FASTER of the two, so that geneinr is compared with PyTorch at its best.
# The atlas twin caches the Fourier features of the training points as geneinr
# does; the variant that recomputes them every step is shown as an extra row.
# The atlas twin as written (torch.cat of features and embeddings) also pays
# for an input gradient through the 512 fixed feature columns that geneinr
# never computes; "atlas_split" splits the first layer's matmul and does
# geneinr's work only. The atlas ratio is taken against the fastest of both
# twins in both policies; the paper twin computes no such extra gradient.
#
# The atlas model runs twice: at full batch (3,702 samples per step, where a
# step is GEMM-bound: docs/BENCHMARKS.md) and as configs/atlas.yaml trains it,
# with mini-batches of 512 samples drawn each step (train.batch_size: 512; the
# twins atlas_batch and atlas_batch_split draw theirs the same way). A batch
# step takes ~10 ms, too short to time one by one at train_log.csv's 1 ms
# resolution, so geneinr's figure is the median over 10-step blocks (which
# counts an occasional slow step against geneinr; the twins time each step).
#   tools/bench_train.sh [BUILD]     env: NP (2), REPEATS (3), ATLAS_STEPS (40), BATCH_STEPS (300),
#                                    PAPER_STEPS (6),
#                                    KEEP_CORETYPE (0: an inherited OPENBLAS_CORETYPE is cleared)
set -e
BUILD=${1:-build}
G=$BUILD/geneinr
NP=${NP:-2} REPEATS=${REPEATS:-3} ATLAS_STEPS=${ATLAS_STEPS:-40} BATCH_STEPS=${BATCH_STEPS:-300} PAPER_STEPS=${PAPER_STEPS:-6}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_rmaps_base_oversubscribe=1
# measure the best kernels for this CPU, not whatever the shell had pinned (tools/bench.sh)
if [ -n "${OPENBLAS_CORETYPE-}" ] && [ "${KEEP_CORETYPE:-0}" != 1 ]; then
    echo "note: ignoring the inherited OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE (KEEP_CORETYPE=1 keeps it)"
    unset OPENBLAS_CORETYPE
fi
B=runs/bench
P=$B/ph100
[ -f $P/samples.csv ] || $G phantom --out $P --genes 100 >/dev/null
PY=/usr/bin/python3
# PyTorch reaches OpenBLAS through libblas.so.3: give it the kernels geneinr runs (blas.h).
CORE=$($BUILD/bench/bench_sgemm --core)
NLAB=14 # anatomy labels of the phantom (geneinr info OUT/checkpoint.h5)
atlas_cfg="configs/atlas.yaml --set data.prior=none --set data.prior_refit=false --set train.batch_size=0 --set data.samples=$P/samples.csv --set data.anatomy=$P/anatomy.nii.gz
  --set render.mask=$P/mask.nii.gz --set train.validation=none --set train.checkpoint_every=0
  --set train.log_every=100000"
# the recommended model as configured: the same, with its mini-batches of 512 (a prior only
# changes the targets, fitted once before the first step, and validation is off as above)
batch_cfg=${atlas_cfg/train.batch_size=0/train.batch_size=512}
paper_cfg="bench/paper.yaml --set data.samples=$P/samples.csv --set render.mask=$P/mask.nii.gz"

# median_step LOG [K]: median per-step milliseconds of a train_log.csv (one row per step, seconds
# since the start at 1 ms resolution) over K-step blocks (1: every step); step 1 excluded
# (first-touch allocations)
median_step() {
    awk -F, -v k=${2:-1} 'NR > 1 && ($1 - 1) % k == 0 { if ($1 > 1) print ($6 - p) / k; p = $6 }' "$1" |
        sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] * 1000 }'
}
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# torch MODEL STEPS [PASSIVE]: one twin run's median ms per step
torch() {
    if [ "$3" = passive ]; then
        OMP_WAIT_POLICY=PASSIVE OPENBLAS_CORETYPE=$CORE $PY tools/bench_torch.py $1 $2 $NLAB | awk '{ print $3 }'
    else
        OPENBLAS_CORETYPE=$CORE $PY tools/bench_torch.py $1 $2 $NLAB | awk '{ print $3 }'
    fi
}
min() { echo "$1 $2" | awk '{ print $1 < $2 ? $1 : $2 }'; }

echo "== training beside PyTorch: $NP ranks x 1 thread vs PyTorch $($PY -c 'import torch; print(torch.__version__)') at 2 threads (OPENBLAS_CORETYPE=$CORE), $REPEATS interleaved repeats"
echo "   load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   geneinr: mpirun -np $NP $G train {configs/atlas.yaml (validation none, prior none) at batch 512 and at full batch 3,702 | bench/paper.yaml}"
echo "   PyTorch: [OMP_WAIT_POLICY=PASSIVE] OPENBLAS_CORETYPE=$CORE tools/bench_torch.py {atlas_batch | atlas_batch_split | atlas | atlas_split | atlas_recompute | paper} STEPS"
echo "   steps per run: batch 512 $BATCH_STEPS (geneinr: median over 10-step blocks), full batch $ATLAS_STEPS, paper $PAPER_STEPS"
gb=() tb=() tbp=() tbs=() tbsp=() ga=() ta=() tap=() ts=() tsp=() tr=() trp=() gp=() tp=() tpp=()
for r in $(seq 1 $REPEATS); do
    mpirun -np $NP $G train $batch_cfg --set train.steps=$BATCH_STEPS --out $B/speed_batch >/dev/null
    gb+=($(median_step $B/speed_batch/train_log.csv 10))
    tb+=($(torch atlas_batch $BATCH_STEPS)) tbp+=($(torch atlas_batch $BATCH_STEPS passive))
    tbs+=($(torch atlas_batch_split $BATCH_STEPS)) tbsp+=($(torch atlas_batch_split $BATCH_STEPS passive))
    mpirun -np $NP $G train $atlas_cfg --set train.steps=$ATLAS_STEPS --out $B/speed_atlas >/dev/null
    ga+=($(median_step $B/speed_atlas/train_log.csv))
    ta+=($(torch atlas $ATLAS_STEPS)) tap+=($(torch atlas $ATLAS_STEPS passive))
    ts+=($(torch atlas_split $ATLAS_STEPS)) tsp+=($(torch atlas_split $ATLAS_STEPS passive))
    tr+=($(torch atlas_recompute $ATLAS_STEPS)) trp+=($(torch atlas_recompute $ATLAS_STEPS passive))
    mpirun -np $NP $G train $paper_cfg --set train.steps=$PAPER_STEPS --out $B/speed_paper >/dev/null
    gp+=($(median_step $B/speed_paper/train_log.csv))
    tp+=($(torch paper $PAPER_STEPS)) tpp+=($(torch paper $PAPER_STEPS passive))
    echo "   repeat $r: batch 512 geneinr ${gb[-1]} ms, PyTorch ${tb[-1]} / passive ${tbp[-1]} ms (split ${tbs[-1]} / ${tbsp[-1]});" \
         "atlas geneinr ${ga[-1]} ms, PyTorch ${ta[-1]} / passive ${tap[-1]} ms (split ${ts[-1]} / ${tsp[-1]}; recompute ${tr[-1]} / ${trp[-1]});" \
         "paper geneinr ${gp[-1]} ms, PyTorch ${tp[-1]} / passive ${tpp[-1]} ms"
done
med() { printf '%s\n' "$@" | median; }
mgb=$(med "${gb[@]}") mtb=$(med "${tb[@]}") mtbp=$(med "${tbp[@]}") mtbs=$(med "${tbs[@]}") mtbsp=$(med "${tbsp[@]}")
mga=$(med "${ga[@]}") mta=$(med "${ta[@]}") mtap=$(med "${tap[@]}") mts=$(med "${ts[@]}") mtsp=$(med "${tsp[@]}")
mtr=$(med "${tr[@]}") mtrp=$(med "${trp[@]}") mgp=$(med "${gp[@]}") mtp=$(med "${tp[@]}") mtpp=$(med "${tpp[@]}")
fa=$(min $mta $mtap) fs=$(min $mts $mtsp) fr=$(min $mtr $mtrp) fp=$(min $mtp $mtpp)
fb=$(min $mtb $mtbp) fbs=$(min $mtbs $mtbsp)
bbest=$(min $fb $fbs) # the fastest batch-512 twin that does geneinr's work (or more)
fbest=$(min $fa $fs)  # the fastest full-batch atlas twin that does geneinr's work (or more)
row() { printf "%-50s %7.${6}f ms %7.${6}f ms %7.${6}f ms %7.2fx %7.2fx %8s\n" "$1" $2 $3 $4 \
    $(echo "$(min $3 $4) / $2" | bc -l) $(echo "$3 / $2" | bc -l) "$5"; }
printf "%-50s %10s %10s %10s %8s %8s %8s\n" "per training step (median of $REPEATS)" geneinr "PyTorch" "passive" ratio "(dflt)" target
row "atlas model as configured (batch 512)" $mgb $mtb $mtbp 2.5x 1
row "  PyTorch, first layer split (geneinr's work)" $mgb $mtbs $mtbsp - 1
row "atlas model, full batch 3,702 (GEMM-bound)" $mga $mta $mtap 2.5x 1
row "  PyTorch, first layer split (geneinr's work)" $mga $mts $mtsp - 1
row "  PyTorch recomputing the Fourier features" $mga $mtr $mtrp - 1
row "paper net (6 x 512 SIREN, batch 16,384)" $mgp $mtp $mtpp 2.0x 0
echo "   ratio = PyTorch's faster wait policy / geneinr; (dflt) = PyTorch's default policy / geneinr"
printf "   against the fastest PyTorch twin doing geneinr's work: atlas as configured (batch 512) %.2fx (target 2.5x)," \
    $(echo "$bbest / $mgb" | bc -l)
printf " atlas at full batch %.2fx (GEMM-bound), paper %.2fx (target 2.0x)\n" $(echo "$fbest / $mga" | bc -l) $(echo "$fp / $mgp" | bc -l)
echo "   load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
