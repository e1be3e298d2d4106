# jobs/launch.sh - sourced by the geneinr job scripts: start an MPI step on the
# job's tasks and requeue the job when it was asked to stop.
#
# geneinr_launch CMD [ARGS...]
#   Launcher: `srun --mpi=pmix` when this SLURM has the pmix plugin (Debian's Open MPI
#   needs PMIx: with SLURM's default MpiDefault=none, MPI_Init fails), otherwise
#   `mpirun -np $SLURM_NTASKS` inside the allocation (Open MPI reads the allocation
#   from SLURM). GENEINR_LAUNCHER="..." overrides both (e.g. "srun --mpi=pmi2").
#   Requeue: SIGUSR1 or SIGTERM to the batch shell (#SBATCH --signal=B:USR1@120 sends
#   USR1 two minutes before the time limit) is passed on to the ranks as SIGUSR1;
#   they checkpoint at the next step and exit with status 75. On status 75, or
#   after such a signal, the job requeues itself (`scontrol requeue`; needs
#   #SBATCH --requeue) and the next start continues from the checkpoint
#   (train.resume: auto). Any other status is the job's status.

geneinr_launcher() {
    if [ -n "${GENEINR_LAUNCHER:-}" ]; then
        echo "$GENEINR_LAUNCHER"
    elif srun --mpi=list 2>&1 | grep -qw pmix; then
        echo "srun --mpi=pmix"
    else
        echo "mpirun -np ${SLURM_NTASKS:-1}"
    fi
}

geneinr_launch() {
    local launcher rc pid stop=0
    launcher=$(geneinr_launcher)
    echo "geneinr: job ${SLURM_JOB_ID:-?}${SLURM_ARRAY_TASK_ID:+ (array task $SLURM_ARRAY_TASK_ID)}," \
         "start $((${SLURM_RESTART_COUNT:-0} + 1)), on ${SLURM_NTASKS:-1} task(s) of ${SLURM_JOB_NODELIST:-this node}:" \
         "$launcher $*"
    trap 'stop=1; echo "geneinr: stop requested: ranks checkpoint at their next step"; kill -USR1 "$pid" 2>/dev/null' USR1 TERM
    # shellcheck disable=SC2086 # the launcher is words
    $launcher "$@" &
    pid=$!
    # wait returns early when a trapped signal arrives; wait again until the step ends.
    while :; do
        wait "$pid"
        rc=$?
        kill -0 "$pid" 2>/dev/null || break
    done
    trap - USR1 TERM
    if [ "$rc" = 75 ] || [ "$stop" = 1 ]; then
        if [ -n "${SLURM_JOB_ID:-}" ] && scontrol requeue "$SLURM_JOB_ID"; then
            echo "geneinr: stopped with status $rc; job requeued, the next start resumes from the checkpoint"
            exit 0
        fi
        echo "geneinr: stopped with status $rc; could not requeue (submit with --requeue); resume by resubmitting" >&2
    fi
    return "$rc"
}
