#!/bin/sh
# make run: the main job on the embedded default data.
#   1. the phantom (synthetic AHBA-like data with known truth) in runs/phantom
#   2. mpirun -np 2 geneinr run configs/demo.yaml  -> runs/demo/atlas.h5 (+ NIfTI per gene)
#   3. accuracy of the atlas against the phantom's truth, next to the nearest-sample map
#   4. the run report (runs/demo/report.html) rebuilt with that accuracy
set -e
cd "$(dirname "$0")/.."
G=build/geneinr
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_rmaps_base_oversubscribe=1
NP=${NP:-2}
[ -f runs/phantom/truth.h5 ] || $G phantom --out runs/phantom
mpirun -np "$NP" $G run configs/demo.yaml
echo
echo "== accuracy against the phantom's truth (voxel-wise Pearson r, every 2nd voxel) =="
$G score runs/demo/atlas.h5 --truth runs/phantom/truth.h5 --samples runs/phantom/samples.csv \
    --json runs/demo/score.json
$G report runs/demo >/dev/null
echo
echo "atlas:    runs/demo/atlas.h5   (geneinr info runs/demo/atlas.h5)"
echo "NIfTI:    runs/demo/nifti/<gene>.nii.gz, 4-D runs/demo/expression.nii.gz (volumes: runs/demo/genes.tsv)"
echo "scores:   runs/demo/score.json"
echo "previews: runs/demo/preview/<gene>.png ($(ls runs/demo/preview/*.png 2>/dev/null | wc -l) genes)"
echo "report:   runs/demo/report.html   (open it in any browser; offline, one file)"
