#!/bin/bash
# geneinr sweep: 4 ranks in 2 groups of 2 on a 2 x 2 grid, each trial equal to
# its standalone `mpirun -np 2 geneinr train`; a rerun retrains nothing; a
# changed sweep file is refused; failing trials are marked failed while the
# sweep goes on; --retry-failed, --trial K + --collect (job arrays), random
# search, validation errors with the sweep file's line, render_best; and the
# stop signal: SIGUSR1 -> checkpoint, exit 75, resume bit-identical (sweep and
# train.resume: auto).
. "$(dirname "$0")/lib.sh" sweep
MPIRUN="timeout 300 mpirun --oversubscribe"

$G phantom --out "$T/ph" --grid 2 --genes 4 --seed 5 >/dev/null || { notok "phantom"; exit 1; }
cat > "$T/base.yaml" <<YAML
data:
  samples: $T/ph/samples.csv
  anatomy: $T/ph/anatomy.nii.gz
model:
  width: 24
  hidden_layers: 2
train:
  steps: 80
  val_every: 20
  log_every: 1000
render:
  mask: $T/ph/mask.nii.gz
YAML
cat > "$T/sw.yaml" <<YAML
base: $T/base.yaml
set:
  train.weight_decay: 0.0001
ranks_per_trial: 2
grid:
  model.width: [16, 24]
  train.lr: [0.001, 0.003]
render_best: true
YAML
S=$T/out
check "sweep: mpirun -np 4, 2 ranks per trial, 2 x 2 grid" $MPIRUN -np 4 $G sweep "$T/sw.yaml" --out $S
check "results.csv: header and 4 ok trials" bash -c "
    head -1 $S/results.csv | grep -qx 'trial,status,best_val,best_step,seconds,model.width,train.lr' &&
    [ \$(grep -c '^[0-3],ok,0\.[0-9]*,[0-9]*,' $S/results.csv) = 4 ]"
check "results.csv lists each trial's values" bash -c "grep -q '^3,ok,.*,24,0.003\$' $S/results.csv && grep -q '^0,ok,.*,16,0.001\$' $S/results.csv"
same=0
for t in 0 1 2 3; do
    w=$(sed -n "$((t + 2))p" $S/results.csv | cut -d, -f6); lr=$(sed -n "$((t + 2))p" $S/results.csv | cut -d, -f7)
    $MPIRUN -np 2 $G train "$T/base.yaml" --out "$T/alone$t" --set train.weight_decay=0.0001 --set model.width=$w \
        --set train.lr=$lr >/dev/null 2>&1 && cmp -s "$T/alone$t/checkpoint.h5" "$S/trials/00$t/checkpoint.h5" && same=$((same + 1))
done
check "each trial's checkpoint is byte-identical to its standalone mpirun -np 2 train ($same of 4)" [ $same = 4 ]
check "a trial folder is a normal run folder (config.yaml loads, info reads the checkpoint)" bash -c "
    $G config $S/trials/002/config.yaml | grep -q 'width: 24' && $G info $S/trials/002/checkpoint.h5 | grep -q 'steps: 80'"
check "the best trial is named and rendered to OUT/best/" bash -c "
    grep -q '^trial: ' $S/best_trial.txt && $G info $S/best/atlas.h5 | grep -q '4 genes'"
md5sum $S/trials/*/checkpoint.h5 $S/best/atlas.h5 > "$T/md5"
check "a rerun retrains nothing" bash -c "$MPIRUN -np 4 $G sweep $T/sw.yaml --out $S | grep -q '4 done, 0 failed before, 0 to run' &&
    md5sum -c --quiet $T/md5"
sed 's/0.003\]/0.01]/' "$T/sw.yaml" > "$T/sw_changed.yaml"
check "a changed sweep file that would change existing trials is refused with the reason" bash -c "
    ! $MPIRUN -np 4 $G sweep $T/sw_changed.yaml --out $S 2>$T/changed.err &&
    grep -q 'would change trial 1.*train.lr=0.003.*train.lr=0.01' $T/changed.err"
check "the refused sweep left the trials as they were" md5sum -c --quiet "$T/md5"
check "mpirun -np 3 with ranks_per_trial 2 is refused" bash -c "
    ! $MPIRUN -np 3 $G sweep $T/sw.yaml --out $T/np3 2>$T/np3.err && grep -q 'multiple of 2' $T/np3.err"

# Failing trials: a donor that does not exist (fails in training) and a
# combination refused by a rule between keys (min_lr > lr); the others finish.
cat > "$T/fail.yaml" <<YAML
base: $T/base.yaml
set:
  train:
    validation: donor
    min_lr: 0.002
grid:
  train.val_donor: [H0351.1009, NOPE]
  train.lr: [0.001, 0.003]
YAML
F=$T/fail
check "a sweep with failing trials finishes (no group hangs)" $MPIRUN -np 2 $G sweep "$T/fail.yaml" --out $F
check "failing trials are marked failed, the others ok" bash -c "
    grep -q '^0,failed' $F/results.csv && grep -q '^1,ok' $F/results.csv && grep -q '^2,failed' $F/results.csv &&
    grep -q '^3,failed' $F/results.csv && grep -q 'not a donor' $F/trials/003/status.yaml &&
    grep -q 'min_lr' $F/trials/000/status.yaml"
check "a rerun does not retry failed trials" bash -c "$MPIRUN -np 2 $G sweep $T/fail.yaml --out $F | grep -q '1 done, 3 failed before'"
check "--retry-failed reruns them (and they fail again)" bash -c "
    $MPIRUN -np 2 $G sweep $T/fail.yaml --out $F --retry-failed | grep -q '3 to run' && grep -c failed $F/results.csv | grep -qx 3"

# Job-array form: each trial alone with --trial K, then --collect.
A=$T/array
for k in 3 0 1 2; do $MPIRUN -np 2 $G sweep "$T/sw.yaml" --out $A --trial $k >/dev/null 2>&1; done
check "--trial K: the array's trials equal the one-allocation sweep's" bash -c "
    for t in 0 1 2 3; do cmp $A/trials/00\$t/checkpoint.h5 $S/trials/00\$t/checkpoint.h5 || exit 1; done"
rm -f $A/results.csv
check "--collect rebuilds results.csv from the trial folders and renders the best" bash -c "
    $MPIRUN -np 2 $G sweep $T/sw.yaml --out $A --collect | grep -q 'best trial' &&
    diff <(cut -d, -f1-4,6- $A/results.csv) <(cut -d, -f1-4,6- $S/results.csv) && [ -f $A/best/atlas.h5 ]"
check "--trial K beyond the sweep is refused" bash -c "! $G sweep $T/sw.yaml --out $A --trial 4 2>$T/k.err && grep -q 'has 4 trials (0..3)' $T/k.err"

# Random search: values drawn from the space, the same on every run.
cat > "$T/rand.yaml" <<YAML
base: $T/base.yaml
set: {train.steps: 20}
random:
  trials: 3
  seed: 11
  space:
    train.weight_decay: {log_uniform: [0.0001, 0.1]}
    model.width: {uniform: [8, 20]}
    model.arch: {choice: [siren, fourier]}
YAML
check "random search: 3 trials" $MPIRUN -np 2 $G sweep "$T/rand.yaml" --out "$T/rand1"
check "random draws lie in their ranges and repeat exactly" bash -c "
    $G sweep $T/rand.yaml --out $T/rand2 >/dev/null && diff <(cut -d, -f1,2,6- $T/rand1/results.csv) <(cut -d, -f1,2,6- $T/rand2/results.csv) &&
    awk -F, 'NR > 1 && !(\$6 >= 0.0001 && \$6 <= 0.1 && \$7 >= 8 && \$7 <= 20 && \$7 == int(\$7) && (\$8 == \"siren\" || \$8 == \"fourier\")) { exit 1 }' $T/rand1/results.csv"

# Validation: errors name the sweep file's line.
bad() { printf 'base: %s\n%b\n' "$T/base.yaml" "$1" > "$T/bad.yaml"; ! $G sweep "$T/bad.yaml" --out "$T/bad" 2>"$T/bad.err" && grep -q "$2" "$T/bad.err"; }
check "unknown key in grid: file:line and a suggestion" bad "grid:\n  model.widht: [1, 2]" "bad.yaml:3: unknown key 'model.widht' (did you mean 'model.width'?)"
check "value out of range in grid: its own line" bad "grid:\n  model.width:\n    - 16\n    - 0" "bad.yaml:5: model.width: 0 is out of range"
check "bad value in set: its line" bad "set:\n  train:\n    lr: fast" "bad.yaml:4: train.lr: expected a number"
check "range end out of bounds in random.space" bad "random:\n  trials: 2\n  space:\n    train.lr: {uniform: [0.1, 20]}" "bad.yaml:5: train.lr: 20 is out of range"
check "unknown distribution" bad "random:\n  trials: 2\n  space:\n    train.lr: {normal: [1, 2]}" "bad.yaml:5: "
check "unknown top-level key" bad "grdi: 1" "bad.yaml:2: unknown key 'grdi'"
check "missing base config" bash -c "printf 'base: $T/nope.yaml\n' > $T/nobase.yaml; ! $G sweep $T/nobase.yaml --out $T/bad 2>$T/nb.err && grep -q 'nobase.yaml: base.*nope.yaml' $T/nb.err"

# Stop signal: SIGUSR1 during a sweep -> every trial checkpoints, exit 75;
# the rerun resumes and ends bit-identical to an uninterrupted standalone run.
# (mpirun itself, not `timeout`, gets the signal: mpirun forwards SIGUSR1.)
# Long enough (~3 s a run on an idle machine) that the signal lands mid-training, however fast the machine.
LONG="train.steps: 100000, train.val_every: 1000, train.batch_size: 64, train.schedule: constant, model.width: 16"
cat > "$T/long.yaml" <<YAML
base: $T/base.yaml
set: {$LONG}
ranks_per_trial: 2
grid:
  train.lr: [0.001, 0.002]
YAML
# The watchdog must not hold the suite's output pipe open after it is cancelled (run.sh reads to EOF).
watchdog() { ( sleep 240; kill "$1" 2>/dev/null ) >/dev/null 2>&1 & WD=$!; }
unwatch() { pkill -P $WD 2>/dev/null; kill $WD 2>/dev/null; }
L=$T/long
mpirun --oversubscribe -np 4 $G sweep "$T/long.yaml" --out $L >"$T/long.log" 2>&1 & P=$!; watchdog $P
for i in $(seq 1 300); do [ -s $L/trials/000/train_log.csv ] && [ -s $L/trials/001/train_log.csv ] && break; sleep 0.05; done
kill -USR1 $P; wait $P; rc=$?; unwatch
check "SIGUSR1 stops the sweep with exit status 75" [ $rc = 75 ]
check "interrupted trials stay 'running' with a checkpoint" bash -c "grep -q '^0,running' $L/results.csv && [ -f $L/trials/000/checkpoint.h5 ]"
check "the rerun resumes them" bash -c "$MPIRUN -np 4 $G sweep $T/long.yaml --out $L | grep 'trial 0 resumes' >/dev/null && grep -c ',ok,' $L/results.csv | grep -qx 2"
R="--set train.steps=100000 --set train.val_every=1000 --set train.batch_size=64 --set train.schedule=constant --set model.width=16 --set train.lr=0.001"
$MPIRUN -np 2 $G train "$T/base.yaml" --out "$T/long_alone" $R >/dev/null 2>&1
check "a resumed trial is byte-identical to its uninterrupted standalone run" cmp $L/trials/000/checkpoint.h5 "$T/long_alone/checkpoint.h5"

# train.resume: auto - fresh without a checkpoint, resumes after SIGUSR1.
mpirun --oversubscribe -np 2 $G train "$T/base.yaml" --out "$T/auto" $R --set train.resume=auto >"$T/auto.log" 2>&1 & P=$!
watchdog $P
for i in $(seq 1 300); do [ -s "$T/auto/train_log.csv" ] && break; sleep 0.05; done
kill -USR1 $P; wait $P; rc=$?; unwatch
check "train: SIGUSR1 -> checkpoint and exit status 75" bash -c "[ $rc = 75 ] && grep -q 'stopped by a signal' $T/auto.log && [ -f $T/auto/checkpoint.h5 ] && [ ! -f $T/auto/config.yaml ]"
check "train.resume: auto continues the checkpoint" bash -c "$MPIRUN -np 2 $G train $T/base.yaml --out $T/auto $R --set train.resume=auto | grep 'resuming' >/dev/null"
check "... and ends byte-identical to the uninterrupted run" cmp "$T/auto/checkpoint.h5" "$T/long_alone/checkpoint.h5"
check "train.resume: auto starts fresh without a checkpoint" bash -c "$MPIRUN -np 1 $G train $T/base.yaml --out $T/auto2 --set train.resume=auto --set train.steps=10 | grep -q 'train: checkpoint' && ! grep -q resuming $T/auto2/train_log.csv"
