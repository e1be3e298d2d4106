#!/bin/bash
# Per-gene comparison of one method with the others in a `geneinr eval` output: on how many genes
# its held-out r (pooled over folds) is higher, and the mean r of each method. The summary's median
# over genes is set by the middle genes; this shows the rest of the distribution.
#   tools/eval_wins.sh OUT/eval.csv [METHOD]      (METHOD default: inr)
set -e
[ -f "${1:-}" ] || { echo "usage: tools/eval_wins.sh EVAL.csv [METHOD]" >&2; exit 2; }
awk -F, -v ref="${2:-inr}" '
NR == 1 { next }
$3 == "all" && $6 != "nan" { r[$1, $4] = $6; if (!($1 in seen)) { seen[$1] = 1; order[++nm] = $1 } genes[$4] = 1 }
END {
    if (!(ref in seen)) { print "eval_wins: no method " ref " in the file" > "/dev/stderr"; exit 2 }
    printf "%-20s %8s %14s %14s\n", "method", "mean r", ref " higher on", "mean r diff"
    for (i = 1; i <= nm; i++) {
        m = order[i]; n = 0; s = 0; w = 0; d = 0
        for (g in genes) if ((m, g) in r && (ref, g) in r) {
            n++; s += r[m, g]; d += r[ref, g] - r[m, g]; if (r[ref, g] > r[m, g]) w++
        }
        if (m == ref) printf "%-20s %8.4f %14s %14s\n", m, s / n, "-", "-"
        else printf "%-20s %8.4f %9d of %-3d %+14.4f\n", m, s / n, w, n, d / n
    }
}' "$1"
