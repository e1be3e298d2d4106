#!/bin/bash
# sweep_phantom.sh - the hyper-parameter sweep behind docs/ACCURACY.md.
#
# Every row is one `geneinr run configs/demo.yaml --out runs/sweep/NAME --set ...` on the
# 1 mm phantom (train + render), scored against the phantom's truth with `geneinr score`.
# The selection criterion is the best validation MSE the run reports (standardised units);
# the truth correlation is reported alongside to check that validation picks well.
#
#   tools/sweep_phantom.sh [GROUP ...]     groups: base smooth fourier reg size input gene noise
#                                          combo final seed2 donor atlas (default: all)
#   NP=2 (ranks)  SWEEP=runs/sweep (run folders)  FORCE=1 (re-run finished rows)
#
# Rows already finished (their score.json exists) are not re-run, so the sweep can be
# interrupted and resumed. Results: $SWEEP/results.tsv (one line per row, appended; the last
# line of a name wins) and a Markdown table printed at the end (tools/sweep_phantom.sh table).
set -u
cd "$(dirname "$0")/.."
G=build/geneinr
NP=${NP:-2}
SWEEP=${SWEEP:-runs/sweep}
TSV=$SWEEP/results.tsv
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
mkdir -p "$SWEEP"
[ -f "$TSV" ] || printf 'name\tgroup\tphantom\tsettings\tbest_val\tbest_step\tsteps\tstopped\tr_model\tr_nearest\ttrain_s\ttotal_s\n' >"$TSV"
[ -x $G ] || make --no-print-directory all || exit 1

# Phantoms: seed 1 (the default data) and seed 2 (the robustness check).
phantom() { [ -f "$1/truth.h5" ] || $G phantom --out "$1" ${2:+--seed $2} >/dev/null || exit 1; }
phantom runs/phantom
P2=runs/phantom_s2

# Common to every row: no NIfTI (the score reads atlas.h5), generous step budget so that
# patience (12 checks x 25 steps) decides when to stop.
COMMON=(--set render.nifti=false --set train.steps=4000)

# row NAME GROUP PHANTOM_DIR [--set k=v ...]
row() {
    local name=$1 group=$2 ph=$3; shift 3
    local out=$SWEEP/$name
    if [ -f "$out/score.json" ] && [ -z "${FORCE:-}" ]; then return 0; fi
    rm -rf "$out"; mkdir -p "$out"
    local phs=()
    [ "$ph" != runs/phantom ] && phs=(--set data.samples=$ph/samples.csv --set render.mask=$ph/mask.nii.gz
                                      --set data.anatomy=$ph/anatomy.nii.gz)
    local t0=$(date +%s.%N)
    echo "== $name: $*" >&2
    if ! mpirun -np "$NP" $G run configs/demo.yaml --out "$out" "${COMMON[@]}" "${phs[@]}" "$@" >"$out/run.log" 2>&1; then
        echo "   FAILED (see $out/run.log)" >&2; tail -3 "$out/run.log" >&2; return 1
    fi
    local t1=$(date +%s.%N)
    $G score "$out/atlas.h5" --truth "$ph/truth.h5" --samples "$ph/samples.csv" --json "$out/score.json" \
        >"$out/score.txt" 2>&1 || { echo "   score FAILED" >&2; return 1; }
    local bv bs steps stopped rm rn ts tt
    bv=$(sed -n 's/.*best validation MSE \([0-9.eE+-]*\) at step \([0-9]*\).*/\1/p' "$out/run.log" | tail -1)
    bs=$(sed -n 's/.*best validation MSE \([0-9.eE+-]*\) at step \([0-9]*\).*/\2/p' "$out/run.log" | tail -1)
    steps=$(tail -1 "$out/train_log.csv" | cut -d, -f1)
    stopped=$(grep -q "stopped early" "$out/run.log" && echo early || echo budget)
    ts=$(tail -1 "$out/train_log.csv" | cut -d, -f6)
    tt=$(echo "$t1 - $t0" | bc)
    rm=$(sed -n 's/.*"mean_r_model":\([0-9.eE+-]*\).*/\1/p' "$out/score.json")
    rn=$(sed -n 's/.*"mean_r_nearest":\([0-9.eE+-]*\).*/\1/p' "$out/score.json")
    local settings; settings=$(printf '%s ' "$@" | sed 's/--set //g; s/ $//')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\n' "$name" "$group" "$ph" "$settings" \
        "${bv:--}" "${bs:--}" "$steps" "$stopped" "$rm" "$rn" "$ts" "$tt" >>"$TSV"
    printf '   val %s @%s  r %.4f (nearest %.4f)  %s steps  %.0f s\n' "${bv:--}" "${bs:--}" "$rm" "$rn" "$steps" "$tt" >&2
}

# r NAME GROUP k=v ...   (phantom seed 1)     r2 NAME GROUP k=v ...  (phantom seed 2)
r()  { local n=$1 g=$2; shift 2; local a=(); for kv in "$@"; do a+=(--set "$kv"); done; row "$n" "$g" runs/phantom "${a[@]}"; }
r2() { local n=$1 g=$2; shift 2; local a=(); for kv in "$@"; do a+=(--set "$kv"); done; phantom $P2 2; row "$n" "$g" $P2 "${a[@]}"; }

NOANAT=data.anatomy=

group_base() {
    # The current demo.yaml as it was (siren omega0 10 / omega_hidden 30, wd 1e-4).
    r base base
    # Paper-like: plain SIREN omega 30/30, no anatomy, no weight decay, no validation,
    # trained to convergence (full cosine schedule); the final weights are rendered.
    r plain_siren30 base model.omega0=30 model.omega_hidden=30 $NOANAT train.weight_decay=0 \
        train.validation=none train.patience=0
    # Its twin with a 10% validation split and no early stop (patience 0): the validation MSE of
    # the paper-like recipe (final weights: last val in train_log.csv). Note the render uses the
    # best-validation weights, so this row's r is "plain SIREN + best-val checkpoint".
    r plain_siren30_val base model.omega0=30 model.omega_hidden=30 $NOANAT train.weight_decay=0 \
        train.patience=0
}

group_smooth() {
    # SIREN frequencies (first layer omega0, hidden omega_hidden).
    for o0 in 1 3 5 10 30; do
        for oh in 1 3 10 30; do
            [ "$o0" = 10 ] && [ "$oh" = 30 ] && continue   # = base
            r "siren_o${o0}_h${oh}" smooth model.omega0=$o0 model.omega_hidden=$oh
        done
    done
}

group_fourier() {
    # ReLU MLP on random Fourier features: scale = std of the frequencies (cycles per unit of
    # normalised coordinates; the brain spans about 2 units).
    for fs in 0.5 1 2 4 0.25 0.35 0.7; do
        r "fourier_s${fs}" fourier model.arch=fourier model.fourier_scale=$fs
    done
    for ff in 32 128 256; do
        r "fourier_s0.5_ff${ff}" fourier model.arch=fourier model.fourier_scale=0.5 model.fourier_features=$ff
    done
}

# The best single change so far (fourier, scale 0.5); the next groups vary one thing around it.
F=(model.arch=fourier model.fourier_scale=0.5)

group_reg() {
    for wd in 0 1e-3 1e-2 1e-1 1; do
        r "F_wd${wd}" reg "${F[@]}" train.weight_decay=$wd
    done
    for lr in 3e-4 3e-3; do
        r "F_lr${lr}" reg "${F[@]}" train.lr=$lr
    done
    for bs in 256 1024; do
        r "F_bs${bs}" reg "${F[@]}" train.batch_size=$bs
    done
    # SIREN's best (omega0 3, omega_hidden 30) with stronger weight decay / lower lr.
    r "siren_o3_h30_wd1e-2" reg model.omega0=3 model.omega_hidden=30 train.weight_decay=1e-2
    r "siren_o3_h30_lr3e-4" reg model.omega0=3 model.omega_hidden=30 train.lr=3e-4
}

group_size() {
    for w in 64 256; do r "F_w${w}" size "${F[@]}" model.width=$w; done
    for d in 2 4; do r "F_d${d}" size "${F[@]}" model.hidden_layers=$d; done
}

group_input() {
    r F_noanat input "${F[@]}" $NOANAT
    r F_anat8 input "${F[@]}" model.anatomy_dim=8
    r F_donor0 input "${F[@]}" model.donor_dim=0
    r F_donor8 input "${F[@]}" model.donor_dim=8
    r siren_o3_h30_noanat input model.omega0=3 model.omega_hidden=30 $NOANAT
}

group_gene() {
    r F_concat gene "${F[@]}" model.gene_mode=concat
    r F_concat_spectral gene "${F[@]}" model.gene_mode=concat model.gene_code=spectral
}

group_noise() {
    # Seed-to-seed spread (train.seed changes the initialisation and the validation split).
    for s in 2 3; do
        r "F_seed$s" noise "${F[@]}" train.seed=$s
        r "base_seed$s" noise train.seed=$s
    done
}

group_combo() { :; }
group_final() { :; }
group_seed2() { :; }
group_donor() { :; }
group_atlas() { :; }

table() {
    # Markdown table of the TSV (last line per name wins), in file order.
    awk -F'\t' 'NR > 1 { last[$1] = $0; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
        END { print "| run | group | phantom | settings (--set on top of configs/demo.yaml) | best val MSE | at step | steps | mean r model | mean r nearest | train s | total s |";
              print "|---|---|---|---|---|---|---|---|---|---|---|";
              for (i = 1; i <= n; i++) { split(last[order[i]], f, "\t"); ph = f[3]; sub("runs/", "", ph);
                  printf "| %s | %s | %s | %s | %s | %s | %s | %.4f | %.4f | %.1f | %.1f |\n", f[1], f[2], ph, f[4], f[5], f[6], f[7], f[9], f[10], f[11], f[12] } }' "$TSV"
}

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(base smooth fourier reg size input gene noise combo final seed2 donor atlas)
for g in "${groups[@]}"; do
    if [ "$g" = table ]; then table; continue; fi
    declare -F "group_$g" >/dev/null || { echo "unknown group $g" >&2; exit 2; }
    "group_$g"
done
[ "${groups[*]}" = table ] || table
