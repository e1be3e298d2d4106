#!/bin/bash
# The command line: the command table (src/commands/) drives the global help,
# each `geneinr CMD --help`, the README's command table and the usage errors
# (exit 2). Fast: no command does any work here.
. "$(dirname "$0")/lib.sh" cli

COMMANDS="phantom prepare train render run info score eval regions config preview report sweep predict correlate extend"

readme_matches() {
    local table
    table=$(sed -n '/^<!-- commands: made by tools\/gen_commands_md.sh/,/^<!-- end of commands -->/p' README.md | sed '1d;$d')
    [ -n "$table" ] || { echo "README.md: command table markers not found"; return 1; }
    diff <(echo "$table") <($G --help-markdown) || { echo "README.md is stale: run tools/gen_commands_md.sh"; return 1; }
}
check "the README's command table is the one the code makes (tools/gen_commands_md.sh)" readme_matches

every_command_in_help() {
    $G --help > "$T/help.txt" || return 1
    for c in $COMMANDS; do grep -q "^  $c" "$T/help.txt" || { echo "$c missing from --help"; return 1; }; done
}
check "geneinr --help lists every command (sweep included)" every_command_in_help

command_help() { # CMD: specific usage, exit 0, not the global help
    local out
    out=$($G "$1" --help) || return 1
    head -n 1 <<<"$out" | grep -q "^usage: geneinr $1" || { head -n 3 <<<"$out"; return 1; }
    ! grep -q '^commands:' <<<"$out"
}
for c in $COMMANDS; do check "geneinr $c --help is specific to $c" command_help "$c"; done
check "geneinr help train is train's help" bash -c "$G help train | head -n 1 | grep -q '^usage: geneinr train'"
check "each option of phantom is documented in its help" \
    bash -c "h=\$($G phantom --help); for o in --out --seed --genes --grid --ahba --ahba-probes --reference --force --dk; do grep -q -- \"  \$o\" <<<\"\$h\" || exit 1; done"

exits_2() { # expected-message args...: exit status 2 and the message on stderr
    local want=$1; shift
    $G "$@" >"$T/out.txt" 2>"$T/err.txt"; local rc=$?
    [ $rc -eq 2 ] && grep -q -- "$want" "$T/err.txt" || { cat "$T/err.txt"; echo "exit $rc"; return 1; }
}
check "no command: exit 2" exits_2 "usage: geneinr COMMAND"
check "unknown command: exit 2" exits_2 "unknown command" frobnicate
check "help for an unknown command: exit 2" exits_2 "unknown command" help frobnicate
check "run without a config: exit 2" exits_2 "run needs CONFIG" run
check "eval without a config: exit 2" exits_2 "eval needs CONFIG" eval
check "extend without --checkpoint: exit 2" exits_2 "extend needs --checkpoint" extend c.yaml
check "regions without --out: exit 2" exits_2 "regions needs --out" regions a.h5 --parcellation p.nii.gz
check "score without --truth: exit 2" exits_2 "score needs --truth" score a.h5 --samples s.csv
check "phantom without --out: exit 2" exits_2 "phantom needs --out" phantom
check "an option the command does not take: exit 2" exits_2 "train does not take --nifti" train c.yaml --nifti
check "an unknown option: exit 2" exits_2 "does not take --frob" render c.yaml --frob
check "a value out of range: exit 2" exits_2 "--grid needs an integer in 1..2" phantom --out "$T/p" --grid 3
check "a choice that is not one: exit 2, naming the choices" exits_2 "must be tissue or voxel" phantom --out "$T/p" --sample-truth x
check "a number that is not one: exit 2" exits_2 "--trial needs an integer" sweep s.yaml --trial x
check "a missing value: exit 2" exits_2 "--out needs a value" train c.yaml --out
check "a second operand: exit 2" exits_2 "unexpected argument" info a b
check "an operand to a command that takes none: exit 2" exits_2 "takes no argument" phantom x --out "$T/p"
check "preview --at that is not x,y,z: exit 2" exits_2 "is not x,y,z" preview a.h5 --at 1,2
check "a flag given a value: exit 2" exits_2 "takes no value" train c.yaml --resume=yes
check "no usage error leaves files behind" test ! -e "$T/p"
check "--opt=value is read like --opt value" bash -c "$G config --set=train.steps=7 | grep -q 'steps: 7'"
check "--version" bash -c "$G --version | grep -q '^geneinr '"
