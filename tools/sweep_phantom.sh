#!/bin/bash
# sweep_phantom.sh - the hyper-parameter sweep behind docs/ACCURACY.md.
#
# Every row is one `mpirun -np 2 geneinr run CONFIG --out runs/sweep/NAME --set ...` on a 1 mm
# phantom (train + render), scored against the phantom's truth with `geneinr score`. CONFIG is
# runs/sweep/sweep_base.yaml (the demo config before this sweep, written below) for the sweep
# rows, and configs/atlas.yaml or configs/demo.yaml as they are for the "pick" rows.
# The selection criterion is the best validation MSE the run reports (standardised units);
# the truth correlation is reported alongside to check that validation picks well.
#
#   tools/sweep_phantom.sh [GROUP ...]     groups: base smooth fourier reg size input gene noise
#                                          combo refine final pick seed2 donor g100 (default: all)
#   NP=2 (ranks)  SWEEP=runs/sweep (run folders)  FORCE=1 (re-run finished rows)
#   STALE=1 (re-run finished rows made by a different build/geneinr; each row records the git
#   commit and the binary's md5 in its provenance.txt)
#
# Rows already finished (their score.json exists) are not re-run, so the sweep can be
# interrupted and resumed. Results: $SWEEP/results.tsv (one line per row, appended; the last
# line of a name wins); printed at the end as Markdown tables (tools/sweep_phantom.sh table) and
# the checks quoted in docs/ACCURACY.md (tools/sweep_phantom.sh stats).
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
BIN_MD5=$(md5sum $G | cut -d' ' -f1)

# Phantoms: seed 1 (the default data), seed 2 (the robustness check), and seed 1 with 100
# genes (the size of a real atlas; same samples and shapes, more genes).
phantom() { [ -f "$1/truth.h5" ] || $G phantom --out "$1" "${@:2}" >/dev/null || exit 1; }
phantom runs/phantom
P2=runs/phantom_s2
P100=runs/phantom_g100

# The sweep's starting point: configs/demo.yaml as it was before this sweep (siren omega0 10 /
# omega_hidden 30, width 128, 3 layers, factorized, donor 4, anatomy 4, adamw lr 1e-3 wd 1e-4,
# full batch, 10% validation every 25 steps, patience 12). Written here so that the rows do not
# depend on the current demo.yaml.
BASECFG=$SWEEP/sweep_base.yaml
cat >"$BASECFG" <<'YAML'
data:
  samples: runs/phantom/samples.csv
  anatomy: runs/phantom/anatomy.nii.gz
model:
  arch: siren
  hidden_layers: 3
  width: 128
  omega0: 10
  omega_hidden: 30
  gene_mode: factorized
  donor_dim: 4
  anatomy_dim: 4
train:
  steps: 1500
  batch_size: 0
  optimizer: adamw
  lr: 0.001
  weight_decay: 0.0001
  schedule: cosine
  warmup_steps: 50
  validation: fraction
  val_fraction: 0.1
  val_every: 25
  patience: 12
  log_every: 100
  seed: 1
render:
  mask: runs/phantom/mask.nii.gz
  donor: average
  nifti: true
YAML

# Rows on the sweep base: no NIfTI (the score reads atlas.h5) and a generous budget of 4000
# steps (cosine over 4000), so that patience (12 checks x 25 steps) decides when to stop.
# Rows on configs/atlas.yaml or configs/demo.yaml run those files as they are, without NIfTI.
COMMON=(--set render.nifti=false --set train.steps=4000)

# row NAME GROUP PHANTOM_DIR CONFIG [--set k=v ...]
row() {
    local name=$1 group=$2 ph=$3 cfg=$4; shift 4
    local out=$SWEEP/$name
    if [ -f "$out/score.json" ] && [ -z "${FORCE:-}" ]; then
        # STALE=1: also re-run rows made by another build of the binary.
        [ -n "${STALE:-}" ] && ! grep -qs "$BIN_MD5" "$out/provenance.txt" || return 0
    fi
    rm -rf "$out"; mkdir -p "$out"
    local phs=() common=(--set render.nifti=false) label=""
    [ "$cfg" = "$BASECFG" ] && common=("${COMMON[@]}") || label="$cfg "
    [ "$ph" != runs/phantom ] && phs=(--set data.samples=$ph/samples.csv --set render.mask=$ph/mask.nii.gz
                                      --set data.anatomy=$ph/anatomy.nii.gz)
    local t0=$(date +%s.%N)
    echo "== $name: $cfg $*" >&2
    if ! mpirun -np "$NP" $G run "$cfg" --out "$out" "${common[@]}" "${phs[@]}" "$@" >"$out/run.log" 2>&1; then
        echo "   FAILED (see $out/run.log)" >&2; tail -3 "$out/run.log" >&2; return 1
    fi
    local t1=$(date +%s.%N)
    { git rev-parse HEAD 2>/dev/null; md5sum $G; } >"$out/provenance.txt"
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
    local settings; settings=$(printf '%s ' "$label" "$@" | sed 's/--set //g; s/  */ /g; s/^ //; s/ $//')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\n' "$name" "$group" "$ph" "$settings" \
        "${bv:--}" "${bs:--}" "$steps" "$stopped" "$rm" "$rn" "$ts" "$tt" >>"$TSV"
    printf '   val %s @%s  r %.4f (nearest %.4f)  %s steps  %.0f s\n' "${bv:--}" "${bs:--}" "$rm" "$rn" "$steps" "$tt" >&2
}

# r NAME GROUP k=v ...          sweep base on phantom seed 1
# rp PHANTOM NAME GROUP k=v ...  sweep base on another phantom
# rc CONFIG PHANTOM NAME GROUP k=v ...  a config file as it is
r()  { local n=$1 g=$2; shift 2; local a=(); for kv in "$@"; do a+=(--set "$kv"); done; row "$n" "$g" runs/phantom "$BASECFG" "${a[@]}"; }
rp() { local ph=$1 n=$2 g=$3; shift 3; local a=(); for kv in "$@"; do a+=(--set "$kv"); done; row "$n" "$g" "$ph" "$BASECFG" "${a[@]}"; }
rc() { local cfg=$1 ph=$2 n=$3 g=$4; shift 4; local a=(); for kv in "$@"; do a+=(--set "$kv"); done; row "$n" "$g" "$ph" "$cfg" "${a[@]}"; }

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

group_combo() {
    # Combinations of the single changes that lowered validation MSE.
    r F_wd3 combo "${F[@]}" train.weight_decay=3
    r F_wd10 combo "${F[@]}" train.weight_decay=10
    local F35=(model.arch=fourier model.fourier_scale=0.35)
    r F35_w256 combo "${F35[@]}" model.width=256
    r F35_wd1 combo "${F35[@]}" train.weight_decay=1
    r F35_w256_wd1 combo "${F35[@]}" model.width=256 train.weight_decay=1
    r F_w256_wd1 combo "${F[@]}" model.width=256 train.weight_decay=1
    r F35_w256_d2 combo "${F35[@]}" model.width=256 model.hidden_layers=2
    r F35_w256_wd1_bs256 combo "${F35[@]}" model.width=256 train.weight_decay=1 train.batch_size=256
    r F35_w256_wd1_donor8 combo "${F35[@]}" model.width=256 train.weight_decay=1 model.donor_dim=8
    r F35_w256_wd1_ff256 combo "${F35[@]}" model.width=256 train.weight_decay=1 model.fourier_features=256
    r siren_o3_h30_wd1 combo model.omega0=3 model.omega_hidden=30 train.weight_decay=1
    r siren_o3_h30_wd1_noanat combo model.omega0=3 model.omega_hidden=30 train.weight_decay=1 $NOANAT
}
group_refine() {
    # Around the best combination: fourier scale 0.35, 256 features, width 256, weight decay 1.
    local R=(model.arch=fourier model.fourier_scale=0.35 model.fourier_features=256 model.width=256)
    r R_wd3 refine "${R[@]}" train.weight_decay=3
    r R_wd1_ff512 refine "${R[@]}" train.weight_decay=1 model.fourier_features=512
    r R_wd1_ff128 refine "${R[@]}" train.weight_decay=1 model.fourier_features=128
    r R_wd1_s0.25 refine "${R[@]}" train.weight_decay=1 model.fourier_scale=0.25
    r R_wd1_s0.5 refine "${R[@]}" train.weight_decay=1 model.fourier_scale=0.5
    r R_wd1_d2 refine "${R[@]}" train.weight_decay=1 model.hidden_layers=2
    r R_wd1_d4 refine "${R[@]}" train.weight_decay=1 model.hidden_layers=4
    r R_wd3_lr3e-4 refine "${R[@]}" train.weight_decay=3 train.lr=3e-4
    r R_wd1_lr3e-3 refine "${R[@]}" train.weight_decay=1 train.lr=3e-3
    r R_wd1_bs512 refine "${R[@]}" train.weight_decay=1 train.batch_size=512
    r R_wd1_donor8 refine "${R[@]}" train.weight_decay=1 model.donor_dim=8
    r R_wd1_noanat refine "${R[@]}" train.weight_decay=1 $NOANAT
    r R_wd1_anat8 refine "${R[@]}" train.weight_decay=1 model.anatomy_dim=8
}

group_final() {
    # The plateau's candidates at two more seeds (train.seed changes the initialisation and the
    # validation split), so that the pick rests on a mean over three splits, not one.
    local R=(model.arch=fourier model.fourier_scale=0.35 model.fourier_features=256 model.width=256
             train.weight_decay=1)
    for s in 2 3; do
        r "R_wd1_seed$s" final "${R[@]}" train.seed=$s
        r "R_wd1_bs512_seed$s" final "${R[@]}" train.batch_size=512 train.seed=$s
        r "R_wd1_d2_seed$s" final "${R[@]}" model.hidden_layers=2 train.seed=$s
        r "R_wd1_donor8_seed$s" final "${R[@]}" model.donor_dim=8 train.seed=$s
    done
}
VD=(train.validation=donor train.val_donor=H0351.2002)
A=configs/atlas.yaml
D=configs/demo.yaml

group_pick() {
    # The recommended configs as they are (atlas: full batch, 20000-step budget; demo: batch 512),
    # at three training seeds.
    rc $A runs/phantom atlas pick
    rc $D runs/phantom demo pick
    for s in 2 3; do
        rc $A runs/phantom "atlas_seed$s" pick train.seed=$s
        rc $D runs/phantom "demo_seed$s" pick train.seed=$s
    done
}

group_seed2() {
    # A second phantom (different fields, samples, noise): is the pick tuned to one dataset?
    phantom $P2 --seed 2
    rp $P2 p2_base seed2
    rp $P2 p2_plain_siren30 seed2 model.omega0=30 model.omega_hidden=30 $NOANAT train.weight_decay=0 \
        train.validation=none train.patience=0
    rp $P2 p2_siren_o3_h30 seed2 model.omega0=3 model.omega_hidden=30
    rp $P2 p2_fourier_s0.5 seed2 "${F[@]}"
    rp $P2 p2_fourier_s2 seed2 model.arch=fourier model.fourier_scale=2
    rc $A $P2 p2_atlas seed2
    rc $D $P2 p2_demo seed2
}

group_donor() {
    # Held-out donor H0351.2002 (893 samples, both hemispheres): the validation set is a brain
    # the model never saw, predicted with the average donor embedding, as the atlas is rendered.
    r vd_base donor "${VD[@]}"
    r vd_plain_siren30 donor model.omega0=30 model.omega_hidden=30 $NOANAT train.weight_decay=0 \
        train.patience=0 "${VD[@]}"
    r vd_siren_o3_h30 donor model.omega0=3 model.omega_hidden=30 "${VD[@]}"
    r vd_fourier_s0.5 donor "${F[@]}" "${VD[@]}"
    r vd_fourier_s2 donor model.arch=fourier model.fourier_scale=2 "${VD[@]}"
    r vd_F_donor0 donor "${F[@]}" model.donor_dim=0 "${VD[@]}"
    rc $A runs/phantom vd_atlas donor "${VD[@]}"
    rc $D runs/phantom vd_demo donor "${VD[@]}"
}

group_g100() {
    # 100 genes (the size of a real atlas) on the seed-1 phantom's samples.
    phantom $P100 --genes 100
    rp $P100 g100_base g100
    rc $A $P100 g100_atlas g100
    rc $D $P100 g100_demo g100
}

table() {
    # Markdown tables of the TSV, one per group, in file order (the last line of a name wins).
    # "settings" are --set overrides on runs/sweep/sweep_base.yaml, unless a config file is named.
    awk -F'\t' 'NR > 1 { last[$1] = $0; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
        END { for (i = 1; i <= n; i++) { split(last[order[i]], f, "\t");
                  if (f[2] != g) { g = f[2];
                      printf "\n#### %s\n\n", g;
                      print "| run | phantom | settings | best val MSE (step) | mean r model | mean r nearest | steps | seconds (train) |";
                      print "|---|---|---|---|---|---|---|---|" }
                  ph = f[3]; sub("runs/", "", ph); st = f[4] == "" ? "(sweep base)" : f[4];
                  bv = f[5] == "-" ? "- (no validation)" : sprintf("%.4f (%s)", f[5], f[6]);
                  printf "| %s | %s | `%s` | %s | %.3f | %.3f | %s | %.0f (%.0f) |\n", f[1], ph, st, bv, f[9], f[10], f[7], f[12], f[11] } }' "$TSV"
}

stats() {
    # Reference points and checks quoted in docs/ACCURACY.md (python3 with numpy and h5py).
    /usr/bin/python3 - "$TSV" <<'PY'
import csv, sys
import numpy as np, h5py
rows = {}
for r in csv.DictReader(open(sys.argv[1]), delimiter="\t"):
    rows[r["name"]] = r
def v(n, k): return float(rows[n][k])

# 1. Does validation pick well? Spearman rank correlation of best val MSE and truth r over the
#    sweep rows on phantom seed 1, fraction validation, train.seed 1.
sel = [r for r in rows.values() if r["phantom"] == "runs/phantom" and r["best_val"] != "-"
       and r["group"] not in ("base", "noise", "final", "pick", "donor")]
rank = lambda x: np.argsort(np.argsort(x))
a = np.array([float(r["best_val"]) for r in sel]); b = np.array([float(r["r_model"]) for r in sel])
print("validation vs truth: %d configs, Spearman rho(best val MSE, mean r) = %.3f" % (len(sel), np.corrcoef(rank(a), rank(b))[0, 1]))
best = min(sel, key=lambda r: float(r["best_val"])); top = max(sel, key=lambda r: float(r["r_model"]))
print("  lowest val: %s (val %.4f, r %.4f); highest r: %s (val %.4f, r %.4f)" % (best["name"], float(best["best_val"]),
      float(best["r_model"]), top["name"], float(top["best_val"]), float(top["r_model"])))

# 2. Three training seeds (each seed also draws its own validation split).
for base, names in [("sweep base", ["base", "base_seed2", "base_seed3"]),
                    ("fourier s0.5", ["fourier_s0.5", "F_seed2", "F_seed3"]),
                    ("R_wd1 (donor 4)", ["F35_w256_wd1_ff256", "R_wd1_seed2", "R_wd1_seed3"]),
                    ("R_wd1_donor8", ["R_wd1_donor8", "R_wd1_donor8_seed2", "R_wd1_donor8_seed3"]),
                    ("R_wd1_d2", ["R_wd1_d2", "R_wd1_d2_seed2", "R_wd1_d2_seed3"]),
                    ("R_wd1_bs512", ["R_wd1_bs512", "R_wd1_bs512_seed2", "R_wd1_bs512_seed3"]),
                    ("configs/atlas.yaml", ["atlas", "atlas_seed2", "atlas_seed3"]),
                    ("configs/demo.yaml", ["demo", "demo_seed2", "demo_seed3"])]:
    if all(n in rows for n in names):
        vals = [v(n, "best_val") for n in names]; rs = [v(n, "r_model") for n in names]
        print("seeds 1-3 %-20s val %s mean %.4f | r %s mean %.4f" % (base, " ".join("%.4f" % x for x in vals),
              np.mean(vals), " ".join("%.3f" % x for x in rs), np.mean(rs)))

# 3. Floors: the standardised MSE of the noise-free truth at each sample's reported position
#    (what a perfect donor-average map would score), with a per-donor-and-gene affine fit (what a
#    perfect map plus perfect donor offsets and scales would score), and on donor H0351.2002.
for ph in ["runs/phantom", "runs/phantom_s2"]:
    try:
        f = h5py.File(ph + "/truth.h5", "r")
    except OSError:
        continue
    E = f["expression"][()]; inv = np.linalg.inv(f["affine"][()])
    rd = list(csv.reader(open(ph + "/samples.csv"))); hdr, rd = rd[0], rd[1:]
    gi = [i for i, h in enumerate(hdr) if i >= 5 and h not in ("structure_id", "structure_acronym",
          "structure_name", "class", "hemisphere", "tissue", "slab_num", "sample_id")]
    xyz = np.array([[float(r[2]), float(r[3]), float(r[4])] for r in rd]); don = np.array([r[1] for r in rd])
    Y = np.array([[float(r[i]) if r[i] not in ("", "NaN", "NA") else np.nan for i in gi] for r in rd])
    ijk = np.rint((inv @ np.c_[xyz, np.ones(len(xyz))].T).T[:, :3]).astype(int)
    F = np.stack([E[g][ijk[:, 2], ijk[:, 1], ijk[:, 0]] for g in range(len(gi))], 1)
    hold = don == "H0351.2002"; m1, m2, m3 = [], [], []
    for g in range(len(gi)):
        y = Y[:, g]; ok = ~np.isnan(y) & ~np.isnan(F[:, g]); s2 = np.var(y[ok])
        m1.append(np.mean((y[ok] - F[ok, g]) ** 2) / s2)
        res = []
        for d in np.unique(don):
            k = ok & (don == d); X = np.c_[np.ones(k.sum()), F[k, g]]
            c = np.linalg.lstsq(X, y[k], rcond=None)[0]; res.append(y[k] - X @ c)
        m2.append(np.mean(np.concatenate(res) ** 2) / s2)
        tr = ok & ~hold
        m3.append(np.mean((y[ok & hold] - F[ok & hold, g]) ** 2) / np.var(y[tr]))
    print("floor %-16s truth at reported position %.4f; + per-donor affine %.4f; on donor H0351.2002 %.4f"
          % (ph, np.mean(m1), np.mean(m2), np.mean(m3)))
PY
}

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(base smooth fourier reg size input gene noise combo refine final pick seed2 donor g100)
for g in "${groups[@]}"; do
    if [ "$g" = table ]; then table; continue; fi
    if [ "$g" = stats ]; then stats; continue; fi
    declare -F "group_$g" >/dev/null || { echo "unknown group $g" >&2; exit 2; }
    "group_$g"
done
case "${groups[*]}" in table|stats) ;; *) table; stats ;; esac
