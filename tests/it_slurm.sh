#!/bin/bash
# SLURM end to end on a real one-node cluster brought up here: munged, slurmctld and
# slurmd on loopback with a private slurm.conf (MpiDefault=none, as SLURM ships it),
# private ports and private state/spool folders under a temp dir. It runs
# jobs/atlas.sbatch (checkpoint byte-identical to mpirun's), the array form of
# jobs/sweep.sbatch plus --collect, and a requeue after SIGUSR1 (the job checkpoints,
# requeues itself, resumes and ends byte-identical to an uninterrupted run). Every
# daemon it started is stopped by PID on exit.
# Needs root and the Debian packages slurm-wlm and munge (make test installs them as
# root, tools/deps.sh); prints skip otherwise.
. "$(dirname "$0")/lib.sh" slurm
REPO=$(cd "$(dirname "$0")/.." && pwd)
skip() { echo "skip - $1"; exit 0; }
check() { local name=$1; shift; if "$@" >"$D/last.log" 2>&1; then ok "$name"; else notok "$name" "$(tail -n 8 "$D/last.log" | tr '\n' ' ')"; fi; }

[ "$(id -u)" = 0 ] || skip "SLURM test: needs root to run munged, slurmctld and slurmd"
for b in munged slurmctld slurmd sbatch srun scontrol squeue sacct; do
    command -v $b >/dev/null 2>&1 || [ -x /usr/sbin/$b ] || skip "SLURM test: $b not installed (apt-get install slurm-wlm munge)"
done
export PATH=$PATH:/usr/sbin

D=$(mktemp -d "${TESTTMP:-/tmp}/slurm.XXXXXX")
chmod 700 "$D"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
}
trap cleanup EXIT

# Free TCP ports on loopback: slurmctld, slurmd, and a range for srun.
free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$(( (RANDOM % 20000) + 30000 ))
        # A port is taken when something accepts a connection on it.
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo $p; return; }
    done
    echo 0
}
CTLD_PORT=$(free_port); SLURMD_PORT=$(free_port); SRUN_LO=$(free_port)
[ "$CTLD_PORT" != 0 ] && [ "$SLURMD_PORT" != 0 ] || skip "SLURM test: no free port"

# munge: own key, socket, pid, log, seed.
mkdir -p "$D/munge" "$D/state" "$D/spool" "$D/log" "$D/work"
chmod 700 "$D/munge"
dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$D/munge/munge.key"
SOCK=$D/munge/munge.sock
munged --force --socket="$SOCK" --key-file="$D/munge/munge.key" --pid-file="$D/munge/munged.pid" \
    --log-file="$D/log/munged.log" --seed-file="$D/munge/seed" 2>"$D/log/munged.err"
for _ in $(seq 1 50); do [ -s "$D/munge/munged.pid" ] && break; sleep 0.1; done
[ -s "$D/munge/munged.pid" ] || { notok "munged starts" "$(cat "$D/log/munged.err" "$D/log/munged.log" 2>/dev/null | tail -3 | tr '\n' ' ')"; exit 0; }
PIDS+=("$(cat "$D/munge/munged.pid")")

NODE=gi-node
CPUS=4
cat > "$D/slurm.conf" <<CONF
ClusterName=geneinr-test
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SrunPortRange=$SRUN_LO-$((SRUN_LO + 50))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=600
SlurmdParameters=config_overrides
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
PlugStackConfig=$D/plugstack.conf
NodeName=$NODE NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=test Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
: > "$D/plugstack.conf"
export SLURM_CONF=$D/slurm.conf
mkdir -p "$D/spool/$NODE"

slurmctld -f "$SLURM_CONF" -i 2>"$D/log/slurmctld.err"
for _ in $(seq 1 100); do [ -s "$D/slurmctld.pid" ] && break; sleep 0.1; done
[ -s "$D/slurmctld.pid" ] && PIDS+=("$(cat "$D/slurmctld.pid")")
slurmd -f "$SLURM_CONF" -N $NODE 2>"$D/log/slurmd.err"
for _ in $(seq 1 100); do [ -s "$D/slurmd.pid" ] && break; sleep 0.1; done
[ -s "$D/slurmd.pid" ] && PIDS+=("$(cat "$D/slurmd.pid")")
up=0
for _ in $(seq 1 150); do
    sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && { up=1; break; }
    sleep 0.2
done
if [ $up = 0 ]; then
    notok "one-node SLURM comes up (munged, slurmctld, slurmd)" \
        "$(sinfo -N 2>&1 | tail -2 | tr '\n' ' '); $(tail -n 4 "$D/log/slurmctld.log" "$D/log/slurmd.log" 2>/dev/null | tr '\n' ' ')"
    exit 0
fi
ok "one-node SLURM comes up (munged, slurmctld, slurmd on loopback, ports $CTLD_PORT/$SLURMD_PORT)"
check "srun with MpiDefault=none: the pmix plugin is available" bash -c "srun --mpi=list 2>&1 | grep -qw pmix"

# Wait for a job (or every task of an array) to leave the queue; print its final state(s).
wait_job() {
    local id=$1 limit=${2:-300} t=0
    while squeue -h -j "$id" 2>/dev/null | grep -q .; do
        sleep 1; t=$((t + 1)); [ $t -ge "$limit" ] && { scancel "$id"; echo TIMEOUT; return 1; }
    done
    scontrol show job "$id" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | sort -u | tr '\n' ' '
}

# A tiny config in a copy of the repo layout the job scripts expect (build/, jobs/, configs/).
W=$D/work
mkdir -p "$W/build" "$W/configs"
ln -s "$G" "$W/build/geneinr"
cp -r "$REPO/jobs" "$W/jobs"
$G phantom --out "$W/ph" --grid 2 --genes 3 --seed 9 >/dev/null
cat > "$W/configs/tiny.yaml" <<YAML
data:
  samples: ph/samples.csv
model:
  width: 16
  hidden_layers: 2
train:
  steps: 60
  val_every: 20
  log_every: 1000
render:
  mask: ph/mask.nii.gz
YAML
cd "$W" || exit 1
export OMPI_MCA_rmaps_base_oversubscribe=1

# 1. atlas.sbatch on MpiDefault=none, 2 tasks; the same training under mpirun.
id=$(sbatch --parsable --ntasks-per-node=2 jobs/atlas.sbatch configs/tiny.yaml --set train.steps=60 2>"$D/sbatch.err")
st=$(wait_job "$id" 300)
check "jobs/atlas.sbatch completes on MpiDefault=none (state: $st)" bash -c "[ '$st' = 'COMPLETED ' ] && [ -f runs/atlas-$id/atlas.h5 ]"
check "it launched with srun --mpi=pmix and logged to geneinr-atlas-$id.out" grep -q "srun --mpi=pmix" "geneinr-atlas-$id.out"
timeout 300 mpirun --oversubscribe -np 2 $G train configs/tiny.yaml --out "$D/mpirun_atlas" >/dev/null 2>&1
check "its checkpoint is byte-identical to mpirun -np 2's" cmp "runs/atlas-$id/checkpoint.h5" "$D/mpirun_atlas/checkpoint.h5"

# 1b. The fallback launcher, mpirun inside the allocation (used where SLURM lacks pmix).
mid=$(GENEINR_LAUNCHER="mpirun -np 2" sbatch --parsable --ntasks-per-node=2 jobs/atlas.sbatch configs/tiny.yaml 2>"$D/sbatch.err")
st=$(wait_job "$mid" 300)
check "jobs/atlas.sbatch with mpirun inside the allocation gives the same checkpoint (state: $st)" bash -c "
    [ '$st' = 'COMPLETED ' ] && grep -q 'mpirun -np 2 build/geneinr' geneinr-atlas-$mid.out &&
    cmp runs/atlas-$mid/checkpoint.h5 $D/mpirun_atlas/checkpoint.h5"

# 2. The array form of sweep.sbatch, then --collect.
cat > sweep.yaml <<YAML
base: configs/tiny.yaml
ranks_per_trial: 1
grid:
  model.width: [8, 16]
  train.lr: [0.001, 0.003]
YAML
aid=$(sbatch --parsable --array=0-3 --ntasks=1 jobs/sweep.sbatch sweep.yaml --out sw 2>"$D/sbatch.err")
st=$(wait_job "$aid" 300)
check "sbatch --array=0-3 jobs/sweep.sbatch: every task completes (states: $st)" [ "$st" = "COMPLETED " ]
check "geneinr sweep --collect: results.csv with 4 ok trials" bash -c "
    $G sweep sweep.yaml --out sw --collect >/dev/null && [ \$(grep -c ',ok,' sw/results.csv) = 4 ]"
timeout 120 $G train configs/tiny.yaml --out "$D/alone3" --set model.width=16 --set train.lr=0.003 >/dev/null 2>&1
check "an array task's trial equals its standalone run" cmp sw/trials/003/checkpoint.h5 "$D/alone3/checkpoint.h5"

# 3. Requeue: USR1 to the batch shell (as --signal=B:USR1@120 does), checkpoint, requeue, resume.
# Long enough (~4 s on an idle machine) that USR1 lands mid-training, however fast the machine.
LONG="--set train.steps=200000 --set train.val_every=1000 --set train.batch_size=64 --set train.schedule=constant"
rid=$(sbatch --parsable --ntasks-per-node=2 jobs/atlas.sbatch configs/tiny.yaml $LONG 2>"$D/sbatch.err")
for _ in $(seq 1 600); do [ -s "runs/atlas-$rid/train_log.csv" ] && break; sleep 0.1; done
sleep 0.5
scancel --batch --signal=USR1 "$rid"
# SLURM holds a requeued job back for a while (BeginTime); start it now, as a free cluster would.
for _ in $(seq 1 300); do
    scontrol show job "$rid" 2>/dev/null | grep -q 'Restarts=1' && scontrol show job "$rid" | grep -q 'JobState=PENDING' && {
        scontrol update JobId="$rid" StartTime=now; break; }
    sleep 0.2
done
st=$(wait_job "$rid" 400)
check "after SIGUSR1 the job checkpoints, requeues itself and completes (state: $st)" bash -c "
    [ '$st' = 'COMPLETED ' ] && grep -q 'job requeued' geneinr-atlas-$rid.out && grep -q 'resuming' geneinr-atlas-$rid.out"
check "it ran twice (SLURM restart count 1)" bash -c "scontrol show job $rid | grep -q 'Restarts=1'"
timeout 300 mpirun --oversubscribe -np 2 $G train configs/tiny.yaml $LONG --out "$D/mpirun_long" >/dev/null 2>&1
check "the requeued job's checkpoint is byte-identical to an uninterrupted run" cmp "runs/atlas-$rid/checkpoint.h5" "$D/mpirun_long/checkpoint.h5"
