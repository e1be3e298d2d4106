"""check_regions.py - `geneinr regions` sample counts and mean uncertainty against numpy.

usage: check_regions.py ATLAS PARCELLATION REGIONS_CSV TOLERANCE_MM

From the atlas's /sample_mni and /sample_donor (h5py) and the parcellation
(nibabel), by brute force: each sample's own voxel (nearest centre through the
parcellation's affine) when labelled, else the nearest labelled voxel centre
within the tolerance (every labelled voxel, no search box; ties, which random
real coordinates do not produce, are not modelled), else none. n_samples and
n_donors of every row must equal those counts, and mean_uncertainty the mean of
/uncertainty over the atlas voxels that the region's labelled voxels map to
(nearest atlas voxel, in the mask, finite; regions.h).
Prints "ok - ..." / "not ok - ..." lines.
"""
import csv
import sys

import h5py
import nibabel as nib
import numpy as np


def report(ok, name, why=""):
    print(("ok - " if ok else "not ok - ") + name + ("" if ok or not why else ": " + why))


def main(atlas, parc, table, tol):
    with h5py.File(atlas, "r") as f:
        P = f["sample_mni"][()]
        donors = list(f["sample_donor"].asstr()[()])
        A = f["affine"][()]
        M = f["mask"][()]
        genes = list(f["genes"].asstr()[()])
        U = f["uncertainty"][()] if "uncertainty" in f else None
    img = nib.load(parc)
    L = np.asarray(img.dataobj).astype(np.int64)
    inv = np.linalg.inv(img.affine)
    ijk = np.rint((inv @ np.c_[P, np.ones(len(P))].T)[:3]).astype(np.int64).T
    inside = np.all((ijk >= 0) & (ijk < np.array(L.shape)), axis=1)
    own = np.zeros(len(P), np.int64)
    own[inside] = L[ijk[inside, 0], ijk[inside, 1], ijk[inside, 2]]
    lab = own.copy()
    if tol > 0:
        vi = np.array(np.nonzero(L)).T
        vmm = (img.affine @ np.c_[vi, np.ones(len(vi))].T)[:3].T
        vlab = L[vi[:, 0], vi[:, 1], vi[:, 2]]
        for s in np.nonzero(own == 0)[0]:
            d = np.sqrt(((vmm - P[s]) ** 2).sum(1))
            b = np.argmin(d)
            if d[b] <= tol + 1e-6:
                lab[s] = vlab[b]
    count = {}
    donor_sets = {}
    for s in range(len(P)):
        if lab[s]:
            count[lab[s]] = count.get(lab[s], 0) + 1
            donor_sets.setdefault(lab[s], set()).add(donors[s])
    rows = list(csv.DictReader(open(table)))
    bad, worst = 0, ""
    for r in rows:
        want_n, want_d = count.get(int(r["id"]), 0), len(donor_sets.get(int(r["id"]), ()))
        if r["n_samples"] == "" or int(r["n_samples"]) != want_n or int(r["n_donors"]) != want_d:
            bad += 1
            worst = "id %s: %s samples / %s donors, numpy %d / %d" % (r["id"], r["n_samples"], r["n_donors"], want_n,
                                                                      want_d)
    matched = int((lab != 0).sum())
    report(bad == 0 and len(count) > 1, "regions at tolerance %g mm: n_samples and n_donors of %d rows = numpy's "
           "(%d of %d samples in %d regions)" % (tol, len(rows), matched, len(P), len(count)), "%d off; %s" % (bad, worst))
    if U is None:
        report(all(r["mean_uncertainty"] == "" for r in rows), "no /uncertainty: mean_uncertainty empty")
        return
    # mean_uncertainty: the parcellation's voxels through the affines to the nearest atlas voxel.
    vi = np.array(np.nonzero(L))
    vlab = L[vi[0], vi[1], vi[2]]
    mm = img.affine @ np.vstack([vi, np.ones(vi.shape[1])])
    a = np.floor(np.linalg.inv(A) @ mm + 0.5 + 1e-6)[:3].astype(np.int64)
    ok = np.all((a >= 0) & (a < np.array(M.shape[::-1])[:, None]), axis=0)
    a, vlab = a[:, ok], vlab[ok]
    keep = M[a[2], a[1], a[0]] != 0
    a, vlab = a[:, keep], vlab[keep]
    by = {(int(r["id"]), r["gene"]): r for r in rows}
    bad, worst, checked = 0, "", 0
    for g, name in enumerate(genes[:2]):
        u = U[g, a[2], a[1], a[0]].astype(np.float64)
        for lv in np.unique(vlab):
            sel = (vlab == lv) & np.isfinite(u)
            r = by[(int(lv), name)]
            if not sel.any():
                continue
            checked += 1
            m = u[sel].mean()
            if abs(float(r["mean_uncertainty"]) - m) > 1e-5 * (1 + abs(m)):
                bad += 1
                worst = "%s id %d: %s vs %.7g" % (name, lv, r["mean_uncertainty"], m)
    report(bad == 0 and checked > 0, "mean_uncertainty = numpy's mean of /uncertainty over the region (%d rows)" % checked,
           "%d off; %s" % (bad, worst))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
