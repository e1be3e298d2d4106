#!/bin/bash
# Training speed beside PyTorch (part of make bench): geneinr on NP ranks x 1
# OpenBLAS thread and its PyTorch twin (tools/bench_torch.py, 2 threads) on the
# same shapes, interleaved (geneinr, torch, geneinr, torch, ...) REPEATS times so
# that other load on the machine hits both alike. Each run's figure is the
# median step time; the table shows the median over the repeats and the ratio.
#   tools/bench_train.sh [BUILD]     env: NP (2), REPEATS (3), ATLAS_STEPS (40), PAPER_STEPS (6)
set -e
BUILD=${1:-build}
G=$BUILD/geneinr
NP=${NP:-2} REPEATS=${REPEATS:-3} ATLAS_STEPS=${ATLAS_STEPS:-40} PAPER_STEPS=${PAPER_STEPS:-6}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_rmaps_base_oversubscribe=1
B=runs/bench
P=$B/ph100
[ -f $P/samples.csv ] || $G phantom --out $P --genes 100 >/dev/null
PY=/usr/bin/python3
# PyTorch reaches OpenBLAS through libblas.so.3: give it the kernels geneinr runs (blas.h).
CORE=$($BUILD/bench/bench_sgemm --core)
NLAB=14 # anatomy labels of the phantom (geneinr info OUT/checkpoint.h5)
atlas_cfg="configs/atlas.yaml --set data.prior=none --set train.batch_size=0 --set data.samples=$P/samples.csv --set data.anatomy=$P/anatomy.nii.gz
  --set render.mask=$P/mask.nii.gz --set train.validation=none --set train.checkpoint_every=0
  --set train.log_every=100000"
paper_cfg="bench/paper.yaml --set data.samples=$P/samples.csv --set render.mask=$P/mask.nii.gz"

# median per-step seconds of a train_log.csv (step 1 excluded: first-touch allocations)
median_step() { awk -F, 'NR > 2 { print $6 - p } { p = $6 }' "$1" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] * 1000 }'; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "== training beside PyTorch: $NP ranks x 1 thread vs PyTorch $($PY -c 'import torch; print(torch.__version__)') at 2 threads (OPENBLAS_CORETYPE=$CORE), $REPEATS interleaved repeats"
echo "   geneinr: mpirun -np $NP $G train {configs/atlas.yaml (full batch 3,702, validation none) | bench/paper.yaml}"
echo "   PyTorch: OPENBLAS_CORETYPE=$CORE tools/bench_torch.py {atlas | paper} STEPS"
ga=() ta=() gp=() tp=()
for r in $(seq 1 $REPEATS); do
    mpirun -np $NP $G train $atlas_cfg --set train.steps=$ATLAS_STEPS --out $B/speed_atlas >/dev/null
    ga+=($(median_step $B/speed_atlas/train_log.csv))
    ta+=($(OPENBLAS_CORETYPE=$CORE $PY tools/bench_torch.py atlas $ATLAS_STEPS $NLAB | awk '{ print $3 }'))
    mpirun -np $NP $G train $paper_cfg --set train.steps=$PAPER_STEPS --out $B/speed_paper >/dev/null
    gp+=($(median_step $B/speed_paper/train_log.csv))
    tp+=($(OPENBLAS_CORETYPE=$CORE $PY tools/bench_torch.py paper $PAPER_STEPS | awk '{ print $3 }'))
    echo "   repeat $r: atlas geneinr ${ga[-1]} ms, PyTorch ${ta[-1]} ms; paper geneinr ${gp[-1]} ms, PyTorch ${tp[-1]} ms"
done
mga=$(printf '%s\n' "${ga[@]}" | median) mta=$(printf '%s\n' "${ta[@]}" | median)
mgp=$(printf '%s\n' "${gp[@]}" | median) mtp=$(printf '%s\n' "${tp[@]}" | median)
printf "%-44s %10s %10s %8s %8s\n" "per training step (median of $REPEATS)" geneinr PyTorch ratio target
printf "%-44s %7.1f ms %7.1f ms %7.2fx %7.1fx\n" "atlas model (configs/atlas.yaml, 3,702 x 100)" $mga $mta $(echo "$mta / $mga" | bc -l) 2.5
printf "%-44s %7.0f ms %7.0f ms %7.2fx %7.1fx\n" "paper net (6 x 512 SIREN, batch 16,384)" $mgp $mtp $(echo "$mtp / $mgp" | bc -l) 2.0
