"""check_maps.py - cross-check geneinr's previews, 4-D NIfTI and BIDS files with real clients.

usage: check_maps.py WHAT RUN_DIR [MASK]
  previews   decode preview/<gene>.png of the first and last gene (tests/pngread.py): size as its
             geometry chunk says, many distinct colours, a viridis colour bar
             (yellow top, purple bottom), and at 60 voxels per gene the pixel
             colour read back through the bar equals the atlas value (h5py)
  uncertainty  (an atlas rendered with render.uncertainty) preview/sd/<gene>.png beside every
             preview and preview/coverage/distance.png: geometry chunk map "sd" / "distance", a
             magma colour bar from 0, and pixels read back through the bar equal the atlas's
             /uncertainty and /distance at their voxels; report.html shows each (by its alt text)
  nifti4d    expression.nii.gz in nibabel: 4-D, one volume per gene, the
             mask's affine, values = the atlas (background as configured),
             genes.tsv = the atlas's gene order
  bids       dataset_description.json: valid JSON, the BIDS derivative fields
Prints "ok - ..." / "not ok - ..." lines.
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pngread  # noqa: E402


def report(ok, name, why=""):
    print(("ok - " if ok else "not ok - ") + name + ("" if ok or not why else ": " + why))


def previews(run):
    import h5py
    import numpy as np
    with h5py.File(os.path.join(run, "atlas.h5"), "r") as f:
        genes = list(f["genes"].asstr()[()])
        affine = f["affine"][()]
        mask = f["mask"][()]
        expr = {g: f["expression"][i] for i, g in enumerate(genes)}
    inv = np.linalg.inv(affine)
    pdir = os.path.join(run, "preview")
    files = sorted(x for x in os.listdir(pdir) if x.endswith(".png"))
    report(files == sorted(g + ".png" for g in genes), "a preview per gene", "%s vs %s" % (files, genes))
    rng = random.Random(1)
    # Decoding in pure Python is slow: the first and the last gene stand for all.
    for g in sorted(set([genes[0], genes[-1]])):
        w, h, ch, rows, text = pngread.read(os.path.join(pdir, g + ".png"))
        meta = json.loads(text["geneinr:preview"])
        bar = meta["colorbar"]
        report(meta["gene"] == g and w > bar["x"] + bar["w"] and h > bar["y"] + bar["h"] and ch == 3,
               "%s: PNG decodes, %dx%d RGB, geometry chunk names the gene" % (g, w, h))
        colours = set()
        for p in meta["panels"]:
            for q in range(p["y"], p["y"] + p["h"], 3):
                for x in range(p["x"], p["x"] + p["w"], 3):
                    colours.add(pngread.pixel(rows, ch, x, q))
        report(len(colours) > 50, "%s: panels are not constant (%d distinct colours)" % (g, len(colours)))
        # The bar: one colour per row, yellow on top, purple at the bottom.
        cx = bar["x"] + bar["w"] // 2
        ramp = [pngread.pixel(rows, ch, cx, bar["y"] + r) for r in range(bar["h"])]
        top, bottom = ramp[0], ramp[-1]
        near = lambda a, b, tol: all(abs(int(u) - int(v)) <= tol for u, v in zip(a, b))
        report(near(top, (253, 231, 37), 8) and near(bottom, (68, 1, 84), 8) and len(set(ramp)) > 100,
               "%s: colour bar present (viridis %s at the top, %s at the bottom, %d levels)" % (g, top, bottom, len(set(ramp))))
        # Pixels back to values through the bar's own rows.
        lo, hi = meta["lo"], meta["hi"]
        lut = {}
        for r, c in enumerate(ramp):
            lut.setdefault(c, 1.0 - r / (bar["h"] - 1))
        checked, bad, worst = 0, 0, ""
        tries = 0
        while checked < 60 and tries < 20000:
            tries += 1
            p = meta["panels"][rng.randrange(3)]
            px, py = rng.randrange(p["w"]), rng.randrange(p["h"])
            mm = [0.0, 0.0, 0.0]
            mm[p["u_axis"]] = p["u0"] + px * p["du"]
            mm[p["v_axis"]] = p["v0"] + py * p["dv"]
            mm[p["w_axis"]] = p["plane_mm"]
            ijk = inv @ np.array(mm + [1.0])
            i, j, k = (int(np.floor(v + 0.5)) for v in ijk[:3])
            if not (0 <= i < mask.shape[2] and 0 <= j < mask.shape[1] and 0 <= k < mask.shape[0]) or not mask[k, j, i]:
                continue
            c = pngread.pixel(rows, ch, p["x"] + px, p["y"] + py)
            if c not in lut:
                continue  # a sample dot or its rim
            value = float(expr[g][k, j, i])
            t_expect = min(1.0, max(0.0, (value - lo) / (hi - lo)))
            checked += 1
            if abs(lut[c] - t_expect) > 1.5 / 255 + 1.0 / (bar["h"] - 1):
                bad += 1
                worst = "voxel (%d,%d,%d) value %.5g: colour level %.4f, expected %.4f" % (i, j, k, value, lut[c], t_expect)
        report(checked >= 40 and bad == 0, "%s: %d pixels read back through the colour bar match the atlas at their voxels"
               % (g, checked), "%d off; %s" % (bad, worst))


def readback(path, vol, mask, inv, rng, name, top_rgb, bottom_rgb, map_name):
    """Decode one preview PNG and read 60 of its map pixels back through its colour bar."""
    w, h, ch, rows, text = pngread.read(path)
    meta = json.loads(text["geneinr:preview"])
    bar = meta["colorbar"]
    report(meta.get("map") == map_name and w > bar["x"] + bar["w"] and h > bar["y"] + bar["h"] and ch == 3,
           "%s: PNG decodes, %dx%d RGB, geometry chunk says map %s" % (name, w, h, map_name), str(meta.get("map")))
    cx = bar["x"] + bar["w"] // 2
    ramp = [pngread.pixel(rows, ch, cx, bar["y"] + r) for r in range(bar["h"])]
    near = lambda a, b, tol: all(abs(int(u) - int(v)) <= tol for u, v in zip(a, b))
    report(near(ramp[0], top_rgb, 8) and near(ramp[-1], bottom_rgb, 8) and len(set(ramp)) > 100,
           "%s: its own colour bar (%s at the top, %s at the bottom, %d levels)" % (name, ramp[0], ramp[-1], len(set(ramp))))
    lo, hi = meta["lo"], meta["hi"]
    report(lo == 0 and hi > 0, "%s: the bar runs from 0 (%g .. %g)" % (name, lo, hi))
    lut = {}
    for r, c in enumerate(ramp):
        lut.setdefault(c, 1.0 - r / (bar["h"] - 1))
    checked, bad, worst, tries = 0, 0, "", 0
    while checked < 60 and tries < 20000:
        tries += 1
        p = meta["panels"][rng.randrange(3)]
        px, py = rng.randrange(p["w"]), rng.randrange(p["h"])
        mm = [0.0, 0.0, 0.0]
        mm[p["u_axis"]] = p["u0"] + px * p["du"]
        mm[p["v_axis"]] = p["v0"] + py * p["dv"]
        mm[p["w_axis"]] = p["plane_mm"]
        ijk = inv @ [mm[0], mm[1], mm[2], 1.0]
        i, j, k = (int(v + 0.5) if v >= 0 else -1 for v in ijk[:3])
        if not (0 <= i < mask.shape[2] and 0 <= j < mask.shape[1] and 0 <= k < mask.shape[0]) or not mask[k, j, i]:
            continue
        c = pngread.pixel(rows, ch, p["x"] + px, p["y"] + py)
        if c not in lut:
            continue  # a sample dot or its rim
        value = float(vol[k, j, i])
        t_expect = min(1.0, max(0.0, (value - lo) / (hi - lo)))
        checked += 1
        if abs(lut[c] - t_expect) > 1.5 / 255 + 1.0 / (bar["h"] - 1):
            bad += 1
            worst = "voxel (%d,%d,%d) value %.5g: colour level %.4f, expected %.4f" % (i, j, k, value, lut[c], t_expect)
    report(checked >= 40 and bad == 0, "%s: %d pixels read back through the colour bar match the atlas at their voxels"
           % (name, checked), "%d off; %s" % (bad, worst))


def uncertainty(run):
    import h5py
    import numpy as np
    with h5py.File(os.path.join(run, "atlas.h5"), "r") as f:
        genes = list(f["genes"].asstr()[()])
        inv = np.linalg.inv(f["affine"][()])
        mask = f["mask"][()]
        sd = {g: f["uncertainty"][i] for i, g in enumerate(genes)}
        dist = f["distance"][()]
    pdir = os.path.join(run, "preview")
    maps = sorted(x for x in os.listdir(pdir) if x.endswith(".png"))
    sds = sorted(x for x in os.listdir(os.path.join(pdir, "sd")) if x.endswith(".png"))
    report(maps and sds == maps, "an SD map beside every preview (preview/sd/)", "%s vs %s" % (sds, maps))
    html = open(os.path.join(run, "report.html")).read()
    shown = [g for g in genes if ('alt="%s SD" src="data:image/png;base64,' % g) in html]
    want = [g for g in genes if g + ".png" in maps]
    report(shown == want, "report.html shows the SD map of every previewed gene inline (%d)" % len(shown),
           "%s vs %s" % (shown, want))
    report('alt="distance to the nearest sample (mm)" src="data:image/png;base64,' in html and
           'id="coverage"' in html, "report.html shows the distance map and the coverage line")
    rng = random.Random(2)
    magma_top, magma_bottom = (252, 253, 191), (0, 0, 4)
    g = [x[:-4] for x in maps][0]
    readback(os.path.join(pdir, "sd", g + ".png"), sd[g], mask, inv, rng, g + " SD", magma_top, magma_bottom, "sd")
    readback(os.path.join(pdir, "coverage", "distance.png"), dist, mask, inv, rng, "distance map", magma_top,
             magma_bottom, "distance")


def nifti4d(run, mask_path, background):
    import h5py
    import nibabel as nib
    import numpy as np
    img = nib.load(os.path.join(run, "expression.nii.gz"))
    mask = nib.load(mask_path)
    with h5py.File(os.path.join(run, "atlas.h5"), "r") as f:
        genes = list(f["genes"].asstr()[()])
        expr = f["expression"][()]
    report(img.ndim == 4 and img.shape == mask.shape[:3] + (len(genes),),
           "4-D NIfTI: shape %s = mask %s x %d genes" % (img.shape, mask.shape, len(genes)))
    report(np.allclose(img.affine, mask.affine, atol=1e-5), "4-D NIfTI has the mask's affine",
           "%s vs %s" % (img.affine.tolist(), mask.affine.tolist()))
    lines = open(os.path.join(run, "genes.tsv")).read().splitlines()
    rows = [ln.split("\t") for ln in lines[1:]]
    report(lines[0] == "index\tgene" and [r[1] for r in rows] == genes and [int(r[0]) for r in rows] == list(range(len(genes))),
           "genes.tsv lists the genes in atlas order, 0-based", "%s" % lines[:4])
    data = img.get_fdata(dtype=np.float32)
    want = expr.transpose(3, 2, 1, 0)
    if background == "zero":
        want = np.where(np.isnan(want), 0, want)
    same = np.array_equal(data, want, equal_nan=True)
    report(same, "4-D NIfTI volume g = atlas gene g (background %s)" % background)
    report(background != "zero" or not np.isnan(data).any(), "render.background zero: no NaN in the 4-D file")
    if background == "zero":
        try:
            from scipy import ndimage
        except ImportError:
            ndimage = None
        if ndimage is not None:
            # The symptom: a trilinear resample (half a voxel off) of the NaN map
            # loses in-brain voxels next to the edge; the zero-background map loses none.
            want_nan = expr[0].transpose(2, 1, 0)
            idx = np.nonzero(~np.isnan(want_nan))
            pts = np.array(idx, dtype=float) + 0.5
            lost_nan = np.isnan(ndimage.map_coordinates(want_nan, pts, order=1, mode="nearest")).mean()
            lost_zero = np.isnan(ndimage.map_coordinates(data[..., 0], pts, order=1, mode="nearest")).mean()
            report(lost_zero == 0 and lost_nan > 0,
                   "trilinear resample (scipy): %.1f%% of in-brain voxels lost with NaN outside, %.1f%% with zero"
                   % (100 * lost_nan, 100 * lost_zero))
    try:
        from nilearn import image  # optional: the user
        v = image.index_img(img, 1)
        report(np.array_equal(v.get_fdata(), data[..., 1]), "nilearn index_img(…, 1) is the second gene")
    except ImportError:
        pass


def bids(run):
    try:
        d = json.load(open(os.path.join(run, "dataset_description.json")))
    except ValueError as e:
        report(False, "dataset_description.json is valid JSON", str(e))
        return
    report(True, "dataset_description.json is valid JSON")
    gb = d.get("GeneratedBy") or [{}]
    report(isinstance(d.get("Name"), str) and d.get("Name") and isinstance(d.get("BIDSVersion"), str) and
           d.get("DatasetType") == "derivative", "dataset_description.json: Name, BIDSVersion, DatasetType derivative")
    report(gb[0].get("Name") == "geneinr" and gb[0].get("Version") and "model:" in gb[0].get("Config", ""),
           "dataset_description.json: GeneratedBy geneinr with its version and the config", json.dumps(gb)[:200])


if __name__ == "__main__":
    what, run = sys.argv[1], sys.argv[2]
    if what == "previews":
        previews(run)
    elif what == "uncertainty":
        uncertainty(run)
    elif what == "nifti4d":
        nifti4d(run, sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "nan")
    elif what == "bids":
        bids(run)
    else:
        sys.exit("unknown check " + what)
