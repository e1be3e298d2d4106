# tests/lib.sh - what every integration script (tests/it_*.sh) shares.
# Source it first, naming the script's scratch folder:
#     . "$(dirname "$0")/lib.sh" NAME
# It sets G (the geneinr binary: $GENEINR, else build/geneinr), T (a fresh
# folder $TESTTMP/NAME, made here), PY (/usr/bin/python3, the only Python the
# tests use) and MPIRUN (mpirun with a timeout, so a collective that one rank
# skipped fails instead of hanging), exports the MPI environment that
# tests/run.sh also sets (a script runs the same on its own), and defines the
# helpers below. A script may redefine any of them after sourcing.
G=${GENEINR:-$PWD/build/geneinr}
T=${TESTTMP:-$(mktemp -d)}/${1:?lib.sh: name the scratch folder}
mkdir -p "$T"
PY=/usr/bin/python3
MPIRUN="timeout 600 mpirun --oversubscribe"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none

# ok NAME / notok NAME [WHY] / skip NAME [WHY]: one TAP-like line each (tests/run.sh counts them).
ok() { echo "ok - $1"; }
notok() { echo "not ok - $1${2:+: $2}"; }
skip() { echo "skip - $1${2:+: $2}"; }

# check NAME COMMAND...: ok when the command succeeds, else notok with the tail of its output.
check() {
    local name=$1; shift
    if "$@" >"$T/last.log" 2>&1; then ok "$name"; else notok "$name" "$(tail -n 5 "$T/last.log" | tr '\n' ' ')"; fi
}

# fails NAME TEXT COMMAND...: ok when the command fails and its output holds TEXT.
fails() {
    local name=$1 want=$2; shift 2
    if "$@" >"$T/last.log" 2>&1; then notok "$name" "succeeded"
    elif grep -q -- "$want" "$T/last.log"; then ok "$name"
    else notok "$name" "$(tail -n 3 "$T/last.log" | tr '\n' ' ')"; fi
}

# fails_cleanly NAME PATTERN COMMAND...: the failure rule (docs/ROBUSTNESS.md):
# COMMAND exits 1 within 120 s (124 = a hang, 139 = a crash), prints PATTERN
# (extended regex) on stderr, and does not crash.
fails_cleanly() {
    local name=$1 pattern=$2; shift 2
    timeout 120 "$@" >"$T/f.out" 2>"$T/f.err"
    local rc=$?
    if [ "$rc" = 1 ] && grep -Eq -- "$pattern" "$T/f.err" && ! grep -q "Segmentation\|signal 11" "$T/f.err" "$T/f.out"; then
        ok "$name"
    else
        notok "$name" "exit $rc; $(grep -v '^\[vm\|^mca_fbtl\|^---\|^ *$' "$T/f.err" | head -n 3 | tr '\n' ' ')"
    fi
}

# have_py MODULE: does /usr/bin/python3 have it?
have_py() { $PY -c "import $1" >/dev/null 2>&1; }
