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
run_one() {
    local name=$1; shift
    local out rc t0=$SECONDS
    out=$("$@" 2>&1); rc=$?
    # Each part's wall time, so the 10-minute budget can be watched part by part.
    times+=("$((SECONDS - t0)) s  $name")
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
    run_one "$(basename "$t")" "$t"
done
# Integration scripts two at a time (TEST_JOBS, default 2): most of them run
# one process at a time, so a 2-core CI machine was half idle; each script
# works in its own folder of $TESTTMP. Their lines are reported in the usual
# order once all have run. Scripts whose checks race against the clock (the
# SLURM requeue, lock leases, stop signals) run alone afterwards.
SERIAL=" it_slurm it_faults_locks it_signals "
JOBS=${TEST_JOBS:-2}
mkdir -p "$TESTTMP/.parts"
run_part() {   # name script: output, status and wall time into $TESTTMP/.parts
    local t0=$SECONDS
    bash "$2" >"$TESTTMP/.parts/$1.out" 2>&1
    echo $? >"$TESTTMP/.parts/$1.rc"
    echo $((SECONDS - t0)) >"$TESTTMP/.parts/$1.time"
}
report_part() {   # as run_one, from a finished part's files
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
if [ $UNIT_ONLY = 0 ]; then
    names=()
    for t in tests/it_*.sh; do
        [ -f "$t" ] || continue
        n=$(basename "$t" .sh)
        [[ "$SERIAL" == *" $n "* ]] && continue
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
        run_part "$n" "$t" &
        names+=("$n")
    done
    wait
    for n in "${names[@]}"; do report_part "$n"; done
    for t in tests/it_*.sh; do
        n=$(basename "$t" .sh)
        [[ "$SERIAL" == *" $n "* ]] || continue
        run_part "$n" "$t"
        report_part "$n"
    done
fi
echo "(wall time per part, the 12 slowest:"
printf '%s\n' "${times[@]}" | sort -rn | head -n 12 | sed 's/^/  /'
echo ")"
echo "($skipped skipped)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
