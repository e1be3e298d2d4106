#!/bin/bash
# Previews, 4-D NIfTI, BIDS description and the HTML report of a small run
# (2 mm phantom, 4 genes), each checked with a real client: the PNGs decoded
# and read back through their colour bar against the atlas (h5py), the 4-D
# NIfTI in nibabel against the mask and the atlas, the JSON parsed, and the
# report loaded in headless Chromium (SKIP when it is not installed).
# SCREENSHOT_TO=FILE keeps the browser's screenshot (docs/report.png is one).
. "$(dirname "$0")/lib.sh" report
HERE=$(cd "$(dirname "$0")" && pwd)

check "phantom (2 mm grid, 4 genes)" $G phantom --out "$T/ph" --grid 2 --genes 4 --seed 5
cat > "$T/cfg.yaml" <<YAML
data:
  samples: $T/ph/samples.csv
  anatomy: $T/ph/anatomy.nii.gz
model:
  arch: fourier
  fourier_scale: 0.35
  fourier_features: 64
  width: 64
train:
  steps: 200
  batch_size: 512
  weight_decay: 1
  val_every: 20
  log_every: 100
render:
  mask: $T/ph/mask.nii.gz
  nifti: both
  background: zero
YAML
R=$T/run
check "run, 2 ranks, render.nifti both, background zero" $MPIRUN -np 2 $G run "$T/cfg.yaml" --out "$R"
cp "$T/last.log" "$T/run.log"
check "run prints the report's and the previews' paths" \
    bash -c "grep -q 'report: $R/report.html' '$T/run.log' && grep -q 'previews $R/preview/' '$T/run.log'"
check "report.html, previews, 4-D NIfTI, genes.tsv, dataset_description.json, README.md, run.json exist" \
    bash -c "cd '$R' && ls report.html preview/G01.png preview/G04.png expression.nii.gz genes.tsv dataset_description.json run.json nifti/G01.nii.gz README.md"
check "the folder's README.md says how nilearn and FSLeyes open the 4-D file" \
    bash -c "grep -q 'index_img(\"expression.nii.gz\", i)' '$R/README.md' && grep -q 'fsleyes expression.nii.gz' '$R/README.md'"
check "score against the truth" $G score "$R/atlas.h5" --truth "$T/ph/truth.h5" --samples "$T/ph/samples.csv" --json "$R/score.json"
check "geneinr report rebuilds the report" $G report "$R"
check "the report has the score table, the curve with the best step and 4 inline images, nothing remote" \
    bash -c "grep -q 'id=\"score\"' '$R/report.html' && grep -q '<svg id=\"curve\"' '$R/report.html' &&
             grep -q 'id=\"best-step\"' '$R/report.html' &&
             [ \$(grep -o 'src=\"data:image/png;base64,' '$R/report.html' | wc -l) = 4 ] && ! grep -q 'src=\"http' '$R/report.html'"
# geneinr eval (the baselines only: fast) puts its summary into the run's report.
check "geneinr eval (nearest, idw; 2 folds) into the run folder" \
    $MPIRUN -np 2 $G eval "$T/cfg.yaml" --out "$R/eval-kfold" --set eval.methods=nearest,idw --set eval.folds=2
cp "$T/last.log" "$T/eval.log"
check "  ... rebuilds the run's report with eval's summary table (and says where)" \
    bash -c "grep -q 'report: $R/report.html' '$T/eval.log' &&
             grep -q 'id=\"eval-summary-0\"' '$R/report.html' && grep -q '<td>nearest</td>' '$R/report.html' &&
             grep -q '<td>idw</td>' '$R/report.html' && grep -q '<th>median_r</th>' '$R/report.html'"

if have_py h5py && have_py numpy; then
    $PY "$HERE/check_maps.py" previews "$R"
else
    skip "preview pixels against the atlas (needs python3-h5py, python3-numpy)"
fi
if have_py nibabel && have_py h5py; then
    $PY "$HERE/check_maps.py" nifti4d "$R" "$T/ph/mask.nii.gz" zero
    check "3-D NIfTI with background zero has no NaN" $PY -c "
import nibabel as nib, numpy as np, sys
d = nib.load('$R/nifti/G01.nii.gz').get_fdata()
sys.exit(0 if not np.isnan(d).any() and (d == 0).sum() > 0 else 1)"
else
    skip "4-D NIfTI in nibabel (needs python3-nibabel)"
fi
$PY "$HERE/check_maps.py" bids "$R"
check "4-D NIfTI is one valid gzip stream (a member per gene), no part files left" \
    bash -c "gzip -t '$R/expression.nii.gz' && [ -z \"\$(ls -A '$R' | grep '^\.expression')\" ]"
check "4-D NIfTI from 1 rank" $MPIRUN -np 1 $G render "$T/cfg.yaml" --out "$T/r1" --checkpoint "$R/checkpoint.h5" \
    --set render.nifti=4d --set render.preview_genes=0 --set render.report=false
check "  ... is byte-identical to the 2-rank one" cmp "$T/r1/expression.nii.gz" "$R/expression.nii.gz"

# geneinr preview on any atlas
check "geneinr preview --genes G02,G01 --at" $G preview "$R/atlas.h5" --genes G02,G01 --at=-20,-10,10 --out "$T/pv"
check "  ... writes exactly those genes, crossing at the given point" $PY -c "
import json, os, sys
sys.path.insert(0, '$HERE'); import pngread
files = sorted(f for f in os.listdir('$T/pv') if not f.startswith('.'))  # .geneinr-manifest: what geneinr wrote here
m = json.loads(pngread.read('$T/pv/G02.png')[4]['geneinr:preview'])
sys.exit(0 if files == ['G01.png', 'G02.png'] and m['at_mm'] == [-20, -10, 10] and m['panels'][0]['plane_mm'] == 10 else 1)"
expect_fail() { # name, message fragment, command...
    local name=$1 frag=$2; shift 2
    if "$@" >"$T/fail.log" 2>&1; then notok "$name" "exit 0"; elif grep -q -- "$frag" "$T/fail.log"; then ok "$name"
    else notok "$name" "$(tr '\n' ' ' <"$T/fail.log" | head -c 300)"; fi
}
expect_fail "preview of an unknown gene is refused by name" "gene 'NOPE' is not in" $G preview "$R/atlas.h5" --genes NOPE --out "$T/pv2"
expect_fail "preview --at outside the grid is refused" "outside the grid" $G preview "$R/atlas.h5" --at 0,0,400 --out "$T/pv2"
expect_fail "preview --at that is not x,y,z is refused" "is not x,y,z" $G preview "$R/atlas.h5" --at 1,2 --out "$T/pv2"
expect_fail "report of a missing folder is refused" "is not a run folder" $G report "$T/nope"
expect_fail "render.preview_at is validated" "render.preview_at" $G render "$T/cfg.yaml" --out "$R" --set render.preview_at=1,2

# Re-render differently: stale 4-D file and previews go, radiological, NaN background.
check "re-render: nifti 3d, 2 previews, radiological, background nan" $MPIRUN -np 2 $G render "$T/cfg.yaml" --out "$R" \
    --set render.nifti=3d --set render.preview_genes=2 --set render.preview_orientation=radiological --set render.background=nan
check "  ... the 4-D file and genes.tsv of the earlier render are gone, 2 previews remain" \
    bash -c "[ ! -e '$R/expression.nii.gz' ] && [ ! -e '$R/genes.tsv' ] && [ \$(ls '$R/preview' | wc -l) = 2 ]"
check "  ... radiological previews mirror x (the axial panel runs right to left)" $PY -c "
import json, sys
sys.path.insert(0, '$HERE'); import pngread
m = json.loads(pngread.read('$R/preview/G01.png')[4]['geneinr:preview'])
sys.exit(0 if m['orientation'] == 'radiological' and m['panels'][0]['du'] < 0 and m['panels'][2]['du'] > 0 else 1)"
if have_py nibabel; then
    check "  ... 3-D NIfTI with background nan holds NaN outside the mask" $PY -c "
import nibabel as nib, numpy as np, sys
sys.exit(0 if np.isnan(nib.load('$R/nifti/G01.nii.gz').get_fdata()).any() else 1)"
fi
$G report "$R" >/dev/null 2>&1

# A baseline rendered as an atlas gets the same previews, 4-D file and report.
check "render.method nearest: previews, 4-D NIfTI and report too" bash -c "$MPIRUN -np 2 $G render '$T/cfg.yaml' \
    --out '$T/nn' --set render.method=nearest --set render.nifti=4d --set render.preview_genes=1 >'$T/nn.log' 2>&1 &&
    ls '$T/nn/preview/G01.png' '$T/nn/expression.nii.gz' '$T/nn/report.html' '$T/nn/dataset_description.json'"

# A report of a train-only folder says what is missing instead of failing.
check "train only (no render)" $MPIRUN -np 1 $G train "$T/cfg.yaml" --out "$T/tonly" --set train.steps=40
check "  ... geneinr report on it works and says the previews are missing" \
    bash -c "$G report '$T/tonly' && grep -q 'No previews' '$T/tonly/report.html' && grep -q '<svg id=\"curve\"' '$T/tonly/report.html'"

# The report in a real browser.
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then
    skip "report in headless Chromium (chromium not installed; make test installs it as root)"
else
    SHOT=$T/report-screenshot.png
    if timeout 120 $PY "$HERE/browser_check.py" "$CHROME" "$R/report.html" "$SHOT" >"$T/browser.json" 2>"$T/browser.err"; then
        ok "Chromium loads report.html and takes a screenshot"
        check "  ... every image loaded (complete, natural width > 0), 2 previews" $PY -c "
import json, sys
d = json.load(open('$T/browser.json'))
sys.exit(0 if d['images'] == 2 and d['images_loaded'] == 2 and min(d['image_widths']) > 500 else 1)"
        check "  ... the training curve (with the best step) and the accuracy tables are there" $PY -c "
import json, sys
d = json.load(open('$T/browser.json'))
t = d['tables']
sys.exit(0 if d['curve'] and d['curve_points'] > 10 and d['best_marked'] and d['curve_width'] > 300 and
         'score' in t and 'eval-summary-0' in t and 'validation' in t and d['accuracy_rows'] >= 11 else 1)"
        check "  ... the screenshot is not blank" $PY -c "
import sys
sys.path.insert(0, '$HERE'); import pngread
w, h, ch, rows, _ = pngread.read('$SHOT')
ink = sum(1 for y in range(0, h, 7) for x in range(0, w, 7) if sum(pngread.pixel(rows, ch, x, y)) < 600)
total = len(range(0, h, 7)) * len(range(0, w, 7))
print(w, h, ink / total)
sys.exit(0 if w == 1280 and h > 1500 and ink / total > 0.03 else 1)"
        if [ -n "$SCREENSHOT_TO" ]; then cp "$SHOT" "$SCREENSHOT_TO"; fi
    else
        notok "Chromium loads report.html and takes a screenshot" "$(cat "$T/browser.json" "$T/browser.err" | head -c 300)"
    fi
fi

# Retraining a rendered folder: the maps of the old weights go, the report is rebuilt without them.
check "retrain the rendered folder" $MPIRUN -np 1 $G train "$T/cfg.yaml" --out "$R" --set train.steps=30
check "  ... previews, dataset_description.json and README.md of the old atlas are gone; the report says so" \
    bash -c "[ -z \"\$(ls '$R/preview')\" ] && [ ! -e '$R/dataset_description.json' ] && [ ! -e '$R/README.md' ] &&
             grep -q 'No previews' '$R/report.html' && ! grep -q 'data:image/png' '$R/report.html'"
check "render.report false removes an old report" bash -c "$MPIRUN -np 1 $G render '$T/cfg.yaml' --out '$R' \
    --set render.report=false --set render.preview_genes=0 --set render.nifti=none >/dev/null 2>&1 && [ ! -e '$R/report.html' ]"

# Uncertainty (issue 28): a map rendered with render.uncertainty shows its SD beside every preview,
# the distance map and a coverage line; `regions` counts the samples and donors of each region.
U=$T/sd
check "render.uncertainty: the kriging map with its SD (lattice step 8 to stay fast), 2 ranks, 2 previews" $MPIRUN -np 2 $G render "$T/cfg.yaml" \
    --out "$U" --set render.method=kriging --set render.uncertainty=true --set render.uncertainty_step=8 \
    --set render.preview_genes=2 --set render.nifti=none
check "  ... preview/sd/G01.png, sd/G02.png and coverage/distance.png beside the previews" \
    bash -c "cd '$U/preview' && ls G01.png G02.png sd/G01.png sd/G02.png coverage/distance.png"
check "  ... report.html shows each SD map beside its preview, the distance map and the coverage line (5 images)" \
    bash -c "grep -q 'alt=\"G01 SD\" src=\"data:image/png;base64,' '$U/report.html' &&
             grep -q 'alt=\"G02 SD\" src=\"data:image/png;base64,' '$U/report.html' &&
             grep -q 'alt=\"distance to the nearest sample (mm)\" src=\"data:image/png;base64,' '$U/report.html' &&
             [ \$(grep -o 'src=\"data:image/png;base64,' '$U/report.html' | wc -l) = 5 ] &&
             grep -q '<p id=\"coverage\"><b>Coverage:</b> [0-9.]*% of the [0-9]* in-mask voxels lie more than 10 mm' '$U/report.html' &&
             grep -q 'thinnest in the \(left\|right\) hemisphere' '$U/report.html' &&
             grep -q 'the regions of <code>data.anatomy</code> with the largest share' '$U/report.html'"
check "  ... a report without /uncertainty is as before: no SD maps, no coverage section" \
    bash -c "[ ! -e '$R/preview/sd' ] && ! grep -q ' SD\" src=' '$R/report.html' && ! grep -q 'id=\"coverage\"' '$R/report.html'"
if [ -n "$CHROME" ]; then
    if timeout 120 $PY "$HERE/browser_check.py" "$CHROME" "$U/report.html" "$T/sd-shot.png" >"$T/sd-browser.json" \
        2>"$T/sd-browser.err"; then
        check "  ... in Chromium: 5 images loaded, each map beside its SD map (one row, side by side)" $PY -c "
import json, sys
d = json.load(open('$T/sd-browser.json'))
sys.exit(0 if d['images'] == 5 and d['images_loaded'] == 5 and d['pairs_side_by_side'] == [True, True] else 1)"
    else
        notok "  ... Chromium loads the uncertainty report" "$(cat "$T/sd-browser.json" "$T/sd-browser.err" | head -c 300)"
    fi
fi
if have_py h5py && have_py numpy; then
    $PY "$HERE/check_maps.py" uncertainty "$U"
else
    skip "SD and distance previews against the atlas (needs python3-h5py, python3-numpy)"
fi
check "regions of the uncertainty atlas (phantom anatomy, tolerance 3 mm)" $G regions "$U/atlas.h5" \
    --parcellation "$T/ph/anatomy.nii.gz" --out "$U/regions3.csv" --tolerance 3
cp "$T/last.log" "$T/regions3.log"
check "  ... says how the samples matched" grep -q 'samples matched at tolerance 3 mm: [0-9]* by voxel, [0-9]* by distance' \
    "$T/regions3.log"
check "regions with the atlas's own tolerance (data.anatomy_tolerance, 0 here)" $G regions "$U/atlas.h5" \
    --parcellation "$T/ph/anatomy.nii.gz" --out "$U/regions0.csv"
cp "$T/last.log" "$T/regions0.log"
check "  ... says whose tolerance it is" grep -q "tolerance 0 mm (the atlas's data.anatomy_tolerance" "$T/regions0.log"
if have_py h5py && have_py numpy && have_py nibabel; then
    $PY "$HERE/check_regions.py" "$U/atlas.h5" "$T/ph/anatomy.nii.gz" "$U/regions3.csv" 3
    $PY "$HERE/check_regions.py" "$U/atlas.h5" "$T/ph/anatomy.nii.gz" "$U/regions0.csv" 0
    DK=${GENEINR_SHARED_DATA:-$PWD/../shared/data}
    if [ -f "$DK/atlas-desikankilliany.nii.gz" ]; then
        check "regions: the real DK parcellation (1 mm grid) at tolerance 5 mm" $G regions "$U/atlas.h5" \
            --parcellation "$DK/atlas-desikankilliany.nii.gz" --labels "$DK/atlas-desikankilliany.csv" \
            --out "$U/dk.csv" --tolerance 5
        $PY "$HERE/check_regions.py" "$U/atlas.h5" "$DK/atlas-desikankilliany.nii.gz" "$U/dk.csv" 5
    else
        skip "regions counts on the real DK atlas" "../shared/data not present"
    fi
else
    skip "regions counts against numpy (needs python3-h5py, python3-numpy, python3-nibabel)"
fi
check "regions of an atlas without /uncertainty or samples (the truth): those columns empty, one note" \
    bash -c "$G regions '$T/ph/truth.h5' --parcellation '$T/ph/anatomy.nii.gz' --out '$T/truth_regions.csv' >'$T/tr.log' &&
             [ \$(grep -c 'note: .* mean_uncertainty, n_samples and n_donors are empty' '$T/tr.log') = 1 ] &&
             [ \$(awk -F, 'NR > 1 && (\$7 != \"\" || \$8 != \"\" || \$9 != \"\")' '$T/truth_regions.csv' | wc -l) = 0 ] &&
             [ \$(awk -F, 'NR > 1 && \$5 != \"\"' '$T/truth_regions.csv' | wc -l) -gt 0 ]"
