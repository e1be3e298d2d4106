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
for t in tests/it_*.sh; do
    [ -f "$t" ] && [ $UNIT_ONLY = 0 ] || continue
    run_one "$(basename "$t" .sh)" bash "$t"
done
echo "(wall time per part, the 12 slowest:"
printf '%s\n' "${times[@]}" | sort -rn | head -n 12 | sed 's/^/  /'
echo ")"
echo "($skipped skipped)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
