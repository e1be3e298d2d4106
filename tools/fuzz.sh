#!/bin/bash
# tools/fuzz.sh - build the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang,
# AddressSanitizer and UBSan, and run each for a fixed budget. Called by
# `make fuzz` (not part of `make test`).
#   tools/fuzz.sh [SECONDS] [TARGET ...]     default 600 s each; targets:
#                                            config csv nifti checkpoint ahba
# Seeds: tests/fuzz/corpus/TARGET (kept in git). New inputs go to
# build-fuzz/corpus/TARGET, crashes to build-fuzz/crash/TARGET/. The last line
# per target: "fuzz TARGET: N executions in S s, C crashes".
set -u
SECONDS_EACH=${1:-600}
shift || true
TARGETS=${*:-config csv nifti checkpoint ahba}
CLANG=${CLANG:-clang-14}
command -v "$CLANG" >/dev/null || { echo "fuzz: $CLANG not found (apt-get install clang-14 libclang-rt-14-dev)"; exit 1; }
B=build-fuzz
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
# The library objects are instrumented for coverage (fuzzer-no-link); only the
# targets link libFuzzer's main.
make --no-print-directory BUILD=$B CC="$CLANG" OPT="-O1 -g -fno-omit-frame-pointer" \
    SAN="-fsanitize=fuzzer-no-link $SAN" $B/geneinr >/dev/null || exit 1
CFLAGS=$(make --no-print-directory -s -f - print-cflags <<'MK'
include Makefile
print-cflags: ; @echo $(filter-out -O2 -g,$(CFLAGS)) '|' $(LDLIBS)
MK
)
LIBS=${CFLAGS#*|}
CFLAGS=${CFLAGS%|*}
# The library objects of today's sources (src/<layer>/ and src/render/products/;
# not main.o, and not a stale object of a file that has moved).
OBJ=$(for f in src/*/*.c src/*/*/*.c; do [ -f "$f" ] && f=${f#src/} && echo "$B/obj/${f%.c}.o"; done)
mkdir -p $B/fuzz
status=0
for t in $TARGETS; do
    src=tests/fuzz/fuzz_$t.c
    [ -f "$src" ] || { echo "fuzz: no target $t"; status=1; continue; }
    "$CLANG" -O1 -g $CFLAGS -fsanitize=fuzzer $SAN -Itests/fuzz "$src" $OBJ -o $B/fuzz/fuzz_$t $LIBS -fsanitize=fuzzer \
        || { status=1; continue; }
    mkdir -p $B/corpus/$t $B/crash/$t
    log=$B/fuzz/$t.log
    # The checkpoint target runs MPI_Init and HDF5, whose internal allocations
    # (vasprintf'd error stacks, MPI start-up) LeakSanitizer cannot attribute
    # (no frame pointers in those libraries): leak detection is off there only.
    leaks=1
    [ "$t" = checkpoint ] && leaks=0
    # One process, fixed time; rss and malloc limits catch runaway allocations.
    ASAN_OPTIONS=detect_leaks=$leaks:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
    LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0 \
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        $B/fuzz/fuzz_$t -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=20 \
        -max_len=262144 -detect_leaks=$leaks -print_final_stats=1 -artifact_prefix=$B/crash/$t/ $B/corpus/$t tests/fuzz/corpus/$t \
        >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    crashes=$(ls $B/crash/$t | wc -l)
    echo "fuzz $t: ${execs:-0} executions in $SECONDS_EACH s, $crashes crashes (exit $rc; log $log)"
    [ "$rc" = 0 ] && [ "$crashes" = 0 ] || status=1
done
exit $status
