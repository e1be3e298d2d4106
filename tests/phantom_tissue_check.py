#!/usr/bin/python3
"""phantom_tissue_check.py - checks of the realistic phantoms (sample_truth tissue).

usage: phantom_tissue_check.py builtin|dk DIR [REF]
       phantom_tissue_check.py builtin-voxel|dk-voxel DIR
  DIR  a phantom written with the default --sample-truth tissue (or, for the
       -voxel modes, with --sample-truth voxel: the old phantoms)
  REF  (dk) the reference folder the phantom was made from (real coordinates, label table)
Prints "ok - ..." / "not ok - ..." lines (tests/run.sh counts them) and the
figures it measured, as "# ..." lines.
"""
import csv
import gzip
import os
import sys

import h5py
import nibabel as nib
import numpy as np
from scipy import ndimage

failed = 0


def check(cond, what, detail=""):
    global failed
    print(("ok - " if cond else "not ok - ") + what + ("" if cond or not detail else " (%s)" % detail))
    failed += not cond


def read_csv(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rt", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def voxel_mode(mode, d):
    """The old phantoms: no class column or extra files; a DK sample outside
    the brain is white matter (its value follows the nearest white matter's
    truth); a built-in sample's coordinate lies in the mask."""
    hdr, rows = read_csv(os.path.join(d, "samples.csv"))
    col = {h: i for i, h in enumerate(hdr)}
    check("class" not in col and not os.path.exists(os.path.join(d, "anatomy.csv")) and
          not os.path.exists(os.path.join(d, "sample_tissue.csv")),
          "%s: no class column, no anatomy.csv or sample_tissue.csv" % mode)
    xyz = np.array([[float(r[col[c]]) for c in ("mni_x", "mni_y", "mni_z")] for r in rows])
    anat = nib.load(os.path.join(d, "anatomy.nii.gz"))
    lab = np.asarray(anat.dataobj).astype(int)
    mask = np.asarray(nib.load(os.path.join(d, "mask.nii.gz")).dataobj) > 0
    ijk = np.rint(np.c_[xyz, np.ones(len(xyz))] @ np.linalg.inv(anat.affine).T)[:, :3].astype(int)
    ijk = np.clip(ijk, 0, np.array(lab.shape) - 1)
    vin = mask[tuple(ijk.T)]
    if mode == "builtin-voxel":
        check(vin.all(), "builtin-voxel: every coordinate is in the mask", "%d outside" % (~vin).sum())
        return
    genes = [h for h in hdr[5:]]
    with h5py.File(os.path.join(d, "truth.h5"), "r") as h:
        T = h["expression"][()]
    # compare with the truth of the nearest labelled (grey-matter) voxel,
    # which the realistic phantom would use
    rm = {}
    for name_, region in (("white matter", mask & (lab == 0)), ("grey matter", lab > 0)):
        _, near = ndimage.distance_transform_edt(~region, return_indices=True)
        w = near[:, ijk[~vin, 0], ijk[~vin, 1], ijk[~vin, 2]].T
        e = []
        for g, name in enumerate(genes):
            v = np.array([float(r[col[name]]) if r[col[name]] else np.nan for r in rows])[~vin]
            t = T[g][w[:, 2], w[:, 1], w[:, 0]]
            f = np.isfinite(v) & np.isfinite(t)
            e.append(np.sqrt(np.mean((v[f] - t[f]) ** 2)))
        rm[name_] = np.mean(e)
    print("# dk-voxel: %d samples outside the mask, rms vs nearest white matter truth %.4f, vs nearest grey matter %.4f"
          % ((~vin).sum(), rm["white matter"], rm["grey matter"]))
    check(rm["white matter"] < 0.8 * rm["grey matter"],
          "dk-voxel: a sample outside the brain is white matter (the old rule)",
          "rms %.4f vs %.4f" % (rm["white matter"], rm["grey matter"]))


mode, d = sys.argv[1], sys.argv[2]
ref = sys.argv[3] if len(sys.argv) > 3 else None
if mode.endswith("-voxel"):
    voxel_mode(mode, d)
    sys.exit(1 if failed else 0)
hdr, rows = read_csv(os.path.join(d, "samples.csv"))
col = {h: i for i, h in enumerate(hdr)}
genes = [h for h in hdr[5:] if h not in ("class", "hemisphere")]
check("class" in col and "hemisphere" in col and "structure_id" not in col,
      "%s: samples.csv has class and hemisphere columns (no structure id)" % mode, ",".join(hdr[:8]))
xyz = np.array([[float(r[col[c]]) for c in ("mni_x", "mni_y", "mni_z")] for r in rows])
val = np.array([[float(r[col[g]]) if r[col[g]] else np.nan for g in genes] for r in rows])
klass = [r[col["class"]] for r in rows]
hemi = [r[col["hemisphere"]] for r in rows]

ahdr, arows = read_csv(os.path.join(d, "anatomy.csv"))
check(ahdr == ["id", "label", "hemisphere", "structure"] and len(arows) > 0,
      "%s: anatomy.csv is a label table id,label,hemisphere,structure" % mode)
table = {int(r[0]): (r[1], r[2], r[3]) for r in arows}
if mode == "dk":
    rhdr, rrows = read_csv(os.path.join(ref, "atlas-desikankilliany.csv"))
    check([list(r) for r in rrows] == [list(r) for r in arows], "dk: anatomy.csv holds the reference label table")

thdr, trows = read_csv(os.path.join(d, "sample_tissue.csv"))
tc = {h: i for i, h in enumerate(thdr)}
check([r[tc["well_id"]] for r in trows] == [r[col["well_id"]] for r in rows],
      "%s: sample_tissue.csv lists the samples in order" % mode)
txyz = np.array([[float(r[tc[c]]) for c in ("tissue_x", "tissue_y", "tissue_z")] for r in trows])
tlab = np.array([int(r[tc["tissue_label"]]) for r in trows])
ok = True
for i, l in enumerate(tlab):
    if l > 0:
        want = (table[l][2], table[l][1])
    else:   # DK has no cerebellum: cerebellar tissue, hemisphere by the sign of x
        want = ("cerebellum", "L" if xyz[i, 0] < 0 else "R")
    ok &= (klass[i], hemi[i]) == want
check(ok, "%s: class and hemisphere are those of the tissue's label (cerebellum by sign of x)" % mode)

if mode == "dk":
    _, crows = read_csv(os.path.join(ref, "corrected_mni_coordinates.csv.gz"))
    real = np.array([[float(v) for v in r[1:4]] for r in crows])
    check(real.shape == xyz.shape and np.abs(real - xyz).max() < 1e-4 and
          [r[0] for r in crows] == [r[col["well_id"]] for r in rows],
          "dk: samples keep the real AHBA well ids and coordinates")
    ncb = int((tlab == 0).sum())
    print("# dk: %d cerebellar samples" % ncb)
    check(200 <= ncb <= 320, "dk: 200-320 samples are cerebellar (real cluster: ~250)", str(ncb))

# Where the coordinates land on the grid.
anat = nib.load(os.path.join(d, "anatomy.nii.gz"))
lab = np.asarray(anat.dataobj).astype(int)
mask = np.asarray(nib.load(os.path.join(d, "mask.nii.gz")).dataobj) > 0
inv = np.linalg.inv(anat.affine)


def vox(p):
    ijk = np.rint(np.c_[p, np.ones(len(p))] @ inv.T)[:, :3].astype(int)
    inside = np.all((ijk >= 0) & (ijk < lab.shape), 1)
    return np.clip(ijk, 0, np.array(lab.shape) - 1), inside


ijk, in_img = vox(xyz)
vlab = np.where(in_img, lab[tuple(ijk.T)], 0)
vin = in_img & mask[tuple(ijk.T)]
n = len(rows)
own = np.mean((vlab == tlab) & (tlab > 0))   # cerebellar samples have no label to be in
other = np.mean((vlab != tlab) & (vlab > 0))
unl = np.mean((vlab == 0) & vin)
out = np.mean(~vin)
dist = np.linalg.norm(xyz - txyz, axis=1)
print("# %s: own label %.1f%%, another label %.1f%%, unlabelled inside %.1f%%, outside %.1f%%; "
      "coordinate->tissue median %.2f mm, p90 %.2f mm" % (mode, 100 * own, 100 * other, 100 * unl, 100 * out,
                                                        np.median(dist), np.percentile(dist, 90)))
lo, hi = (0.38, 0.58) if mode == "dk" else (0.35, 0.55)
check(lo <= 1 - own <= hi, "%s: %.0f-%.0f%% of samples are not in their tissue's label" % (mode, 100 * lo, 100 * hi),
      "%.3f" % (1 - own))
check(0.12 <= out <= 0.26, "%s: 12-26%% of samples lie outside the brain mask" % mode, "%.3f" % out)

# Expression follows the tissue: for samples outside the mask, the values
# match the truth at the tissue, not the truth of the white matter nearest
# to the coordinate (what a voxel rule would say they are).
with h5py.File(os.path.join(d, "truth.h5"), "r") as h:
    T = h["expression"][()]          # [gene][z][y][x]
tijk, _ = vox(txyz)
wm = mask & ((lab == 0) if mode == "dk" else np.isin(lab, (3, 4)))
_, near = ndimage.distance_transform_edt(~wm, return_indices=True)
sel = ~vin & (tlab > 0)
wijk = near[:, ijk[sel, 0], ijk[sel, 1], ijk[sel, 2]].T
r_t, rm_t, rm_w = [], [], []
for g in range(len(genes)):
    v = val[sel, g]
    at_t = T[g][tijk[sel, 2], tijk[sel, 1], tijk[sel, 0]]
    at_w = T[g][wijk[:, 2], wijk[:, 1], wijk[:, 0]]
    f = np.isfinite(v) & np.isfinite(at_t) & np.isfinite(at_w)
    r_t.append(np.corrcoef(v[f], at_t[f])[0, 1])
    rm_t.append(np.sqrt(np.mean((v[f] - at_t[f]) ** 2)))
    rm_w.append(np.sqrt(np.mean((v[f] - at_w[f]) ** 2)))
print("# %s: %d samples outside the mask: r(value, truth at tissue) median %.3f; rms vs tissue %.4f, "
      "vs nearest white matter %.4f" % (mode, sel.sum(), np.median(r_t), np.mean(rm_t), np.mean(rm_w)))
check(np.median(r_t) > 0.7 and np.mean(rm_t) < 0.8 * np.mean(rm_w),
      "%s: a sample outside the brain carries its tissue's value, not white matter's" % mode,
      "r %.3f rms %.4f vs %.4f" % (np.median(r_t), np.mean(rm_t), np.mean(rm_w)))
sys.exit(1 if failed else 0)
