#!/bin/bash
# it_faults_locks.sh - issue 27's lock and signal classes (docs/ROBUSTNESS.md):
# every command that writes a folder holds its lock (eval, sweep by trial,
# prepare); a zombie holder is dead; a lock from another host is settled by
# the SLURM job id or by its lease, which the holder renews; SIGTERM/SIGINT
# stop eval and render cleanly (exit 75, one line, no temporaries, no lock)
# and a stopped eval resumes to the same summary.csv. Signals are sent at a
# moment read from the log, never after a fixed sleep.
. "$(dirname "$0")/lib.sh" faults_locks
HOST=$(hostname)
LOCK=.geneinr.lock

# wait_for FILE PATTERN [PID]: until FILE holds PATTERN (at most 60 s; gives up early if PID ends).
wait_for() {
    for _ in $(seq 1 3000); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        [ -n "$3" ] && ! kill -0 "$3" 2>/dev/null && return 1
        sleep 0.02
    done
    return 1
}
# stop_wait PID: its exit status, or 137 after a kill -9 when it has not
# ended 30 s after being signalled (a signal it ignored).
stop_wait() {
    for _ in $(seq 1 1500); do kill -0 "$1" 2>/dev/null || break; sleep 0.02; done
    kill -9 "$1" 2>/dev/null
    wait "$1"
}
# with_sigint CMD... &: CMD in place of this (background) shell, with SIGINT at its default (a
# script's background job has it ignored), so that $! is CMD's PID.
with_sigint() { exec $PY -c 'import os,signal,sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' "$@"; }
# holder: a live process of ours to name in a lock (killed at the end).
sleep 300 & HOLDER=$!
# zombie: a child that has exited and is never reaped (its parent sleeps).
$PY -c 'import os,sys,time
pid=os.fork()
if pid==0: os._exit(0)
print(pid,flush=True); time.sleep(300)' > "$T/zombie.pid" & ZPARENT=$!
cleanup() { kill $HOLDER $ZPARENT 2>/dev/null; }
trap cleanup EXIT
# lock_file DIR PID [HOST] [JOB]: a lock as a holder writes it.
lock_file() { mkdir -p "$1"; echo "${3:-$HOST} $2 $(date +%s) job=${4:--} task=-" > "$1/$LOCK"; }

check "phantom (2 mm grid, 4 genes)" $G phantom --out "$T/ph" --grid 2 --genes 4 --seed 3
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/ph/samples.csv
model: {arch: fourier, fourier_features: 16, width: 32, hidden_layers: 2}
train: {steps: 300, schedule: constant, val_every: 50, log_every: 1000}
eval: {folds: 3, methods: "inr,nearest"}
render: {mask: $T/ph/mask.nii.gz, report: false}
YAML

# ---- 1. every writer of a folder holds a lock ---------------------------------
lock_file "$T/evl" $HOLDER
fails "eval into a folder another job holds is refused" "in use by process $HOLDER" $G eval "$T/cfg.yaml" --out "$T/evl"
check "  ... and writes nothing there" bash -c "[ ! -e '$T/evl/folds' ] && [ ! -e '$T/evl/summary.csv' ]"
cat > "$T/sw.yaml" <<YAML
base: $T/cfg.yaml
ranks_per_trial: 1
grid:
  train.steps: [20, 30]
YAML
lock_file "$T/sw/trials/000" $HOLDER
check "sweep: a trial another job holds is skipped, the others run" \
    bash -c "$G sweep '$T/sw.yaml' --out '$T/sw' > '$T/sw.log' 2>&1; grep -q 'trial 0 skipped: another job runs it' '$T/sw.log' &&
             [ ! -e '$T/sw/trials/000/checkpoint.h5' ] && grep -q '^1,ok' '$T/sw/results.csv'"
check "sweep --trial K of a held trial does nothing and keeps the holder's lock" \
    bash -c "$G sweep '$T/sw.yaml' --out '$T/sw' --trial 0 > '$T/sw0.log' 2>&1; grep -q 'skipped' '$T/sw0.log' &&
             [ ! -e '$T/sw/trials/000/checkpoint.h5' ] && grep -q ' $HOLDER ' '$T/sw/trials/000/$LOCK'"
check "sweep releases its trial claims" test ! -e "$T/sw/trials/001/$LOCK"
lock_file "$T/prep" $HOLDER
fails "prepare --out into a folder another job holds is refused" "in use by process $HOLDER" \
    $G prepare "$T/cfg.yaml" --out "$T/prep"

# ---- 2. a zombie holder is dead ------------------------------------------------
wait_for "$T/zombie.pid" . && ZPID=$(cat "$T/zombie.pid")
check "(the zombie is a zombie)" bash -c "grep -q '^[0-9]* (.*) Z' /proc/$ZPID/stat"
lock_file "$T/zb" "$ZPID"
check "a lock of a zombie process is taken over with a note" \
    bash -c "$G eval '$T/cfg.yaml' --out '$T/zb' --set eval.methods=nearest > '$T/zb.log' 2>&1 &&
             grep -q 'took over the lock .* from process $ZPID' '$T/zb.log' && [ ! -e '$T/zb/$LOCK' ]"

# ---- 3. other hosts: SLURM job id and the lease --------------------------------
lock_file "$T/oh" 4242 otherhost.example
fails "a fresh lock from another host is refused, saying when it goes stale" "renewed .* ago.*GENEINR_LOCK_LEASE" \
    $G eval "$T/cfg.yaml" --out "$T/oh" --set eval.methods=nearest
touch -d '-20 min' "$T/oh/$LOCK"
check "a lock from another host not renewed for 20 min is taken over with a note" \
    bash -c "$G eval '$T/cfg.yaml' --out '$T/oh' --set eval.methods=nearest > '$T/oh.log' 2>&1 &&
             grep -q 'took over .*otherhost.example.*not renewed' '$T/oh.log'"
lock_file "$T/rq" 4242 othernode 777
fails "a fresh lock of another step of this SLURM job (same restart count) is refused" "SLURM job 777" \
    env SLURM_JOB_ID=777 $G eval "$T/cfg.yaml" --out "$T/rq" --set eval.methods=nearest
check "a lock of this SLURM job on another node (requeued) is taken over with a note" \
    bash -c "SLURM_JOB_ID=777 SLURM_RESTART_COUNT=1 $G eval '$T/cfg.yaml' --out '$T/rq' --set eval.methods=nearest > '$T/rq.log' 2>&1 &&
             grep -q 'earlier run of this SLURM job 777' '$T/rq.log'"
lock_file "$T/rq2" 4242 othernode 778
fails "a lock of another SLURM job on another node is refused" "SLURM job 778" \
    env SLURM_JOB_ID=777 $G eval "$T/cfg.yaml" --out "$T/rq2" --set eval.methods=nearest
fails "GENEINR_LOCK_LEASE must be a number of seconds" "GENEINR_LOCK_LEASE=soon" \
    env GENEINR_LOCK_LEASE=soon $G eval "$T/cfg.yaml" --out "$T/lease0" --set eval.methods=nearest
# The holder renews its lease during training (a renewal every lease/4 s), and
# SIGINT stops the training cleanly (checkpoint, exit 75, no lock).
GENEINR_LOCK_LEASE=4 SLURM_JOB_ID=4711 with_sigint $G train "$T/cfg.yaml" --out "$T/ls" --set train.steps=1000000 \
    --set train.log_every=100 > "$T/ls.log" 2>&1 & P=$!
renewed=no
if wait_for "$T/ls.log" "step .*100/" $P; then
    m0=$(stat -c %Y "$T/ls/$LOCK" 2>/dev/null)
    for _ in $(seq 1 150); do
        m1=$(stat -c %Y "$T/ls/$LOCK" 2>/dev/null)
        [ -n "$m0" ] && [ -n "$m1" ] && [ "$m1" -gt "$m0" ] && { renewed=yes; break; }
        sleep 0.05
    done
fi
check "the lock records the SLURM job id" grep -q "job=4711" "$T/ls/$LOCK"
kill -INT $P; stop_wait $P; rc=$?
check "the holder renews its lease while it trains" test $renewed = yes
check "SIGINT during training: checkpoint, exit 75, lock removed" \
    bash -c "[ $rc = 75 ] && [ -f '$T/ls/checkpoint.h5' ] && [ ! -e '$T/ls/$LOCK' ]"

# ---- 4. signals: eval stops cleanly and resumes; render stops cleanly ----------
check "eval, uninterrupted (the reference)" $G eval "$T/cfg.yaml" --out "$T/ev0"
$G eval "$T/cfg.yaml" --out "$T/ev1" > "$T/ev1.log" 2>&1 & P=$!
wait_for "$T/ev1.log" "fold 2/3" $P
kill -TERM $P; stop_wait $P; rc=$?
check "SIGTERM during eval: exit 75 and one line saying how to resume" \
    bash -c "[ $rc = 75 ] && grep -q 'eval stopped by SIGTERM; rerun the same command to resume' '$T/ev1.log'"
check "  ... no lock and no temporary file left" \
    bash -c "[ ! -e '$T/ev1/$LOCK' ] && ! find '$T/ev1' -name '*.tmp*' | grep -q ."
check "  ... every training log has whole rows only" \
    bash -c "for f in \$(find '$T/ev1' -name train_log.csv); do [ -z \"\$(tail -c 1 \$f)\" ] && ! grep -qP '\\x00' \$f || exit 1; done"
check "the rerun skips the finished fold and gives the uninterrupted summary.csv and eval.csv" \
    bash -c "$G eval '$T/cfg.yaml' --out '$T/ev1' > '$T/ev1b.log' 2>&1 && grep -q 'fold 1/3: results of an earlier run' '$T/ev1b.log' &&
             cmp '$T/ev0/summary.csv' '$T/ev1/summary.csv' && cmp '$T/ev0/eval.csv' '$T/ev1/eval.csv'"
$PY - "$T/ev1/folds/1/result.bin" <<'PY'
import sys; p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[8] ^= 1; open(p, 'wb').write(b)
PY
check "a fold result of another config is not reused (its key differs)" \
    bash -c "$G eval '$T/cfg.yaml' --out '$T/ev1' > '$T/ev1c.log' 2>&1 && ! grep -q 'fold 1/3: results of an earlier' '$T/ev1c.log' &&
             cmp '$T/ev0/summary.csv' '$T/ev1/summary.csv'"
# 2 ranks, SIGTERM to one rank only: both agree to stop.
$MPIRUN -np 2 $G eval "$T/cfg.yaml" --out "$T/ev2" --set eval.groups=1 > "$T/ev2.log" 2>&1 & P=$!
wait_for "$T/ev2.log" "fold 2/3" $P
R1=$(pgrep -P $(pgrep -P $P | head -n 1) | tail -n 1)
[ -n "$R1" ] && kill -TERM $R1; stop_wait $P; rc=$?
check "2 ranks, SIGTERM to one rank: every rank stops (exit 75), no lock" \
    bash -c "[ $rc = 75 ] && grep -q 'eval stopped by SIGTERM' '$T/ev2.log' && [ ! -e '$T/ev2/$LOCK' ]"

# Render: a slow model (wide, many features) in small batches, stopped once it renders.
check "a model slow to render (1 step)" $G train "$T/cfg.yaml" --out "$T/rd" --set train.steps=1 \
    --set model.width=512 --set model.fourier_features=256 --set model.hidden_layers=4
$G render "$T/cfg.yaml" --out "$T/rd" --set model.width=512 --set model.fourier_features=256 \
    --set model.hidden_layers=4 --set render.batch_voxels=256 > "$T/rd.log" 2>&1 & P=$!
wait_for "$T/rd.log" "in-mask voxels" $P
kill -TERM $P; stop_wait $P; rc=$?
check "SIGTERM during render: exit 75, one line, no atlas.h5.tmp, no lock" \
    bash -c "[ $rc = 75 ] && grep -q 'render stopped by SIGTERM' '$T/rd.log' && [ ! -e '$T/rd/atlas.h5.tmp' ] &&
             [ ! -e '$T/rd/$LOCK' ]"
