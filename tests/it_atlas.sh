#!/bin/bash
# it_atlas.sh - the atlas test program (tests/test_atlas.c) under mpirun with 1
# and 3 ranks: collective writes with an uneven slab per rank (one rank with no
# slices), compressed and not, read back serially and with h5py. Its "ok - " /
# "not ok - " / "skip - " lines pass through (names start with np1 / np3); this
# script adds one line per run for the exit status and for HDF5 error stacks
# leaking to stderr (library code must report through gi_err, not print).
# Run by tests/run.sh, which exports GENEINR (path of build/geneinr).
. "$(dirname "$0")/lib.sh" atlas
GENEINR=${GENEINR:-$PWD/build/geneinr}
BIN="$(dirname "$GENEINR")/tests/test_atlas"
if [ ! -x "$BIN" ]; then
    echo "not ok - atlas under mpirun: $BIN is not built (make test builds it)"
    exit 1
fi
status=0
for np in 1 3; do
    err=$(mktemp)
    # timeout: a collective that one rank skipped would hang, not fail.
    timeout 300 mpirun --oversubscribe -np "$np" "$BIN" 2>"$err"
    rc=$?
    if [ "$rc" = 0 ]; then
        echo "ok - np$np mpirun exits 0"
    else
        why="status $rc"
        [ "$rc" = 124 ] && why="timed out after 300 s"
        echo "not ok - np$np mpirun exits 0: $why"
        tail -n 20 "$err" | sed 's/^/    /'
        status=1
    fi
    if grep -q 'HDF5-DIAG' "$err"; then
        echo "not ok - np$np no HDF5 error stack printed:"
        grep -m 10 'HDF5-DIAG\|#0' "$err" | sed 's/^/    /'
        status=1
    else
        echo "ok - np$np no HDF5 error stack printed"
    fi
    rm -f "$err"
done
exit $status
