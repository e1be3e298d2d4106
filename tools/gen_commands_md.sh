#!/bin/bash
# Regenerate the command table of README.md from the command table in the
# code (`geneinr --help-markdown`, src/commands/), between the two marker
# lines, keeping the prose around it. tests/it_cli.sh checks the README matches.
# usage: tools/gen_commands_md.sh [build/geneinr]
set -e
G=${1:-build/geneinr}
DOC=README.md
BEGIN='<!-- commands: made by tools/gen_commands_md.sh from src/commands/; do not edit by hand -->'
END='<!-- end of commands -->'
grep -qxF "$BEGIN" "$DOC" && grep -qxF "$END" "$DOC" || { echo "$DOC: command table markers not found" >&2; exit 1; }
table=$(mktemp)
"$G" --help-markdown > "$table"
tmp=$(mktemp)
awk -v b="$BEGIN" -v e="$END" -v t="$table" '
    $0 == b { print; while ((getline line < t) > 0) print line; skip = 1; next }
    $0 == e { skip = 0 }
    !skip' "$DOC" > "$tmp"
rm -f "$table"
cat "$tmp" > "$DOC"   # in place: keep the file's mode
rm -f "$tmp"
