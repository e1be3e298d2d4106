#!/bin/bash
# Regenerate the reference table at the end of docs/CONFIG.md from the key
# table (`geneinr config --reference`), keeping the prose above it.
# usage: tools/gen_config_md.sh [build/geneinr]
set -e
G=${1:-build/geneinr}
DOC=docs/CONFIG.md
n=$(grep -n '^| key | type | default | allowed | meaning |$' "$DOC" | cut -d: -f1)
[ -n "$n" ] || { echo "$DOC: reference table header not found" >&2; exit 1; }
tmp=$(mktemp)
head -n $((n - 1)) "$DOC" > "$tmp"
"$G" config --reference >> "$tmp"
mv "$tmp" "$DOC"
