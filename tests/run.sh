#!/bin/bash
# Run the whole suite: every unit-test binary, then every integration script
# (tests/it_*.sh). Each prints "ok - ", "not ok - " or "skip - " lines; this
# script echoes them, counts them, and ends with "N passed, N failed".
# usage: tests/run.sh [BUILD] [--unit]   (--unit: the unit tests only, `make check`)
BUILD=${1:-build}
UNIT_ONLY=0
[ "$2" = --unit ] && UNIT_ONLY=1
export GENEINR="$PWD/$BUILD/geneinr"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export TESTTMP=$(mktemp -d /tmp/geneinr-test.XXXXXX)
trap 'rm -rf "$TESTTMP"' EXIT
passed=0; failed=0; skipped=0
times=()
# Integration scripts two at a time (TEST_JOBS, default 2): most of them run
# one process at a time, so a 2-core CI machine was half idle; each script
# works in its own folder of $TESTTMP. Their lines are reported in the usual
# order once all have run. Scripts whose checks race against the clock (the
# SLURM requeue, lock leases) run alone afterwards. Every part runs through run_part
# (output, status and time into files) and report_part (its lines and counts).
SERIAL=" it_slurm it_faults_locks "
JOBS=${TEST_JOBS:-2}
mkdir -p "$TESTTMP/.parts"
run_part() {   # name command...: output, status and wall time into $TESTTMP/.parts
    local name=$1 t0=$SECONDS; shift
    "$@" >"$TESTTMP/.parts/$name.out" 2>&1
    echo $? >"$TESTTMP/.parts/$name.rc"
    echo $((SECONDS - t0)) >"$TESTTMP/.parts/$name.time"
}
report_part() {   # a finished part's lines, counts, and on failure its last output
    local name=$1 out rc
    out=$(cat "$TESTTMP/.parts/$name.out"); rc=$(cat "$TESTTMP/.parts/$name.rc")
    times+=("$(cat "$TESTTMP/.parts/$name.time") s  $name")
    local p f s
    p=$(grep -c '^ok - ' <<<"$out"); f=$(grep -c '^not ok - ' <<<"$out"); s=$(grep -c '^skip - ' <<<"$out")
    grep -E '^(ok|not ok|skip) - ' <<<"$out" | sed "s|^|[$name] |"
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        echo "[$name] not ok - exited with status $rc:"; tail -n 20 <<<"$out" | sed 's/^/    /'
        f=1
    elif [ "$f" != 0 ]; then
        grep -vE '^(ok|not ok|skip) - ' <<<"$out" | tail -n 20 | sed 's/^/    /'
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    run_part "$n" "$t"
    report_part "$n"
done
if [ $UNIT_ONLY = 0 ]; then
    names=()
    for t in tests/it_*.sh; do
        [ -f "$t" ] || continue
        n=$(basename "$t" .sh)
        [[ "$SERIAL" == *" $n "* ]] && continue
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
        run_part "$n" bash "$t" &
        names+=("$n")
    done
    wait
    for n in "${names[@]}"; do report_part "$n"; done
    for t in tests/it_*.sh; do
        n=$(basename "$t" .sh)
        [[ "$SERIAL" == *" $n "* ]] || continue
        run_part "$n" bash "$t"
        report_part "$n"
    done
fi
echo "(wall time per part, the 12 slowest:"
printf '%s\n' "${times[@]}" | sort -rn | head -n 12 | sed 's/^/  /'
echo ")"
echo "($skipped skipped)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
