#!/usr/bin/python3
"""Independent numpy reference of abagen's default sample-level pipeline.

Written from ../shared/docs/AHBA-PIPELINE.md (abagen get_samples_in_mask
with return_donors=True and defaults), with numpy and the csv module only,
to cross-check `geneinr prepare` (abagen itself cannot be installed here).
Nothing is shared with the C code: ranks by argsort, quantiles by
np.percentile (linear), medians by np.median, correlations by np.corrcoef.

usage: prepare_reference.py DATA_DIR OUT.csv [--coordinates F] [--reannotation F]
           [--probe-selection diff_stability|max_intensity|max_variance|mean]
           [--ibf-threshold T] [--lr-mirror none|leftright|rightleft|bidirectional]
           [--genes LIST] [--val-mask FILE]
--val-mask: a file with one 0/1 a line per output row (1 = held out): the
within-donor normalisation is then fitted on the other rows only.
Writes OUT.csv with well_id, donor, mni_x, mni_y, mni_z, structure_id,
structure_acronym, class, hemisphere, then genes (empty = dropped for that donor).
"""
import argparse
import csv
import gzip
import math
import os
import re
import sys

import numpy as np

CLASS_IDS = {"4008": "cortex", "4249": "subcortex/brainstem", "4275": "subcortex/brainstem",
             "4391": "subcortex/brainstem", "4696": "cerebellum", "9001": "subcortex/brainstem",
             "9131": "subcortex/brainstem", "9218": "white matter", "9352": "other",
             "9512": "subcortex/brainstem"}
NAMES = {"9861": "H0351.2001", "10021": "H0351.2002", "12876": "H0351.1009",
         "14380": "H0351.1012", "15496": "H0351.1015", "15697": "H0351.1016"}


def read_table(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def read_matrix(path):
    ids, vals = [], []
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if not row:
                continue
            ids.append(int(row[0]))
            vals.append([float(v) for v in row[1:]])
    return np.array(ids), np.array(vals, dtype=float)


def avg_rank(x):
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    xs = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    return ranks


def srs(v, fit=None):
    f = v if fit is None else v[fit]
    with np.errstate(all="ignore"):
        med = np.median(f)
        q1, q3 = np.percentile(f, [25, 75])
        s = (q3 - q1) / 1.3489795003921634
        y = 1.0 / (1.0 + np.exp(-(v - med) / s))
        yf = y if fit is None else y[fit]
        return (y - yf.min()) / (yf.max() - yf.min())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("out")
    ap.add_argument("--coordinates", default="")
    ap.add_argument("--reannotation", default="")
    ap.add_argument("--probe-selection", default="diff_stability")
    ap.add_argument("--ibf-threshold", type=float, default=0.5)
    ap.add_argument("--lr-mirror", default="none")
    ap.add_argument("--genes", default="")
    ap.add_argument("--val-mask", default="")
    ap.add_argument("--compare", default="", help="geneinr's samples.csv: exit 1 unless equal within --tol")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()

    donors = sorted((int(m.group(1)), d) for d in os.listdir(a.data_dir)
                    for m in [re.fullmatch(r"normalized_microarray_donor(\d+)", d)] if m)
    dirs = [os.path.join(a.data_dir, d) for _, d in donors]

    # 1. probes
    hdr, rows = read_table(os.path.join(dirs[0], "Probes.csv"))
    c = {n: i for i, n in enumerate(hdr)}
    probes = {}   # probe_id -> (symbol)
    if a.reannotation:
        rh, rr = read_table(a.reannotation)
        rc = {n: i for i, n in enumerate(rh)}
        by_name = {}
        for r in rr:
            by_name.setdefault(r[rc["probe_name"]], (r[rc["gene_symbol"]], r[rc["entrez_id"]]))
        for r in rows:
            hit = by_name.get(r[c["probe_name"]])
            if hit and hit[1] not in ("", "NaN", "nan") and hit[0]:
                probes[int(r[c["probe_id"]])] = hit[0]
    else:
        for r in rows:
            if r[c["entrez_id"]] not in ("", "NaN") and r[c["gene_symbol"]]:
                probes[int(r[c["probe_id"]])] = r[c["gene_symbol"]]
    pid = np.array(sorted(probes))
    psym = [probes[p] for p in pid]

    coords = {}
    if a.coordinates:
        ch, cr = read_table(a.coordinates)
        cc = {n: i for i, n in enumerate(ch)}
        for r in cr:
            coords[r[cc["well_id"]]] = [float(r[cc["corrected_mni_" + k]]) for k in "xyz"]

    # 2. samples
    D = []
    for (num, _), d in zip(donors, dirs):
        oh, orows = read_table(os.path.join(d, "Ontology.csv"))
        oc = {n: i for i, n in enumerate(oh)}
        ont = {}
        for r in orows:
            path = [t for t in r[oc["structure_id_path"]].split("/") if t]
            cls = ""
            for t in path:
                if t in CLASS_IDS:
                    cls = CLASS_IDS[t]
            ont[r[oc["id"]]] = dict(acr=r[oc["acronym"]], hemi=r[oc["hemisphere"]] or "B", cls=cls)
        by_acr_hemi = {}
        for sid, o in ont.items():
            by_acr_hemi.setdefault((o["acr"], o["hemi"]), sid)
        sh, srows = read_table(os.path.join(d, "SampleAnnot.csv"))
        sc = {n: i for i, n in enumerate(sh)}
        samples = []
        for j, r in enumerate(srows):
            well = r[sc["well_id"]]
            xyz = coords[well] if a.coordinates else [float(r[sc["mni_" + k]]) for k in "xyz"]
            samples.append(dict(col=j, well=well, sid=r[sc["structure_id"]], xyz=list(xyz)))
        allsamp = list(samples)
        for side, keep in (("leftright", lambda x: x < 0), ("rightleft", lambda x: x > 0)):
            if a.lr_mirror in (side, "bidirectional"):
                for s in samples:
                    if keep(s["xyz"][0]):
                        o = ont[s["sid"]]
                        h = {"L": "R", "R": "L"}.get(o["hemi"], "B")
                        new = by_acr_hemi.get((o["acr"], h))
                        if new is None:
                            continue
                        allsamp.append(dict(col=s["col"], well=s["well"], sid=new,
                                            xyz=[-s["xyz"][0], s["xyz"][1], s["xyz"][2]]))
        kept = []
        for s in allsamp:
            h, x = ont[s["sid"]]["hemi"], s["xyz"][0]
            if (h == "L" and x < 0) or (h == "R" and x > 0) or (h == "B" and x == 0):
                kept.append(s)
        ids_e, E = read_matrix(os.path.join(d, "MicroarrayExpression.csv"))
        ids_p, PA = read_matrix(os.path.join(d, "PACall.csv"))
        rowof = {p: i for i, p in enumerate(ids_e)}
        rowp = {p: i for i, p in enumerate(ids_p)}
        cols = [s["col"] for s in kept]
        X = E[[rowof[p] for p in pid]][:, cols]          # probes x samples
        P = PA[[rowp[p] for p in pid]][:, cols]
        D.append(dict(num=num, name=NAMES.get(str(num), str(num)), samples=kept, X=X, P=P, ont=ont))

    # 3. intensity filter
    n_s = sum(len(d["samples"]) for d in D)
    frac = sum(d["P"].sum(axis=1) for d in D) / n_s
    keep = frac >= a.ibf_threshold
    kidx = np.nonzero(keep)[0]

    # 4. probe selection
    genes = sorted(set(psym[i] for i in kidx))
    score = {}
    if a.probe_selection == "diff_stability":
        means = []
        for d in D:
            sids = np.array([int(s["sid"]) for s in d["samples"]])
            regions = np.unique(sids)
            M = np.stack([d["X"][:, sids == r].mean(axis=1) for r in regions], axis=1)
            means.append((regions, M))
        nd = len(D)
        for i in kidx:
            corrs = []
            for p in range(nd):
                for q in range(p + 1, nd):
                    rp, Mp = means[p]
                    rq, Mq = means[q]
                    common = np.intersect1d(rp, rq)
                    if len(common) < 2:
                        corrs.append(np.nan)
                        continue
                    xa = Mp[i, np.searchsorted(rp, common)]
                    xb = Mq[i, np.searchsorted(rq, common)]
                    ra, rb = avg_rank(xa), avg_rank(xb)
                    if ra.std() == 0 or rb.std() == 0:
                        corrs.append(np.nan)
                    else:
                        corrs.append(np.corrcoef(ra, rb)[0, 1])
            score[i] = np.mean(corrs)
    elif a.probe_selection in ("max_intensity", "max_variance"):
        allX = np.concatenate([d["X"] for d in D], axis=1)
        for i in kidx:
            score[i] = allX[i].mean() if a.probe_selection == "max_intensity" else allX[i].std(ddof=1)
    chosen = {}
    for g in genes:
        members = [i for i in kidx if psym[i] == g]   # ascending probe id
        if a.probe_selection == "mean":
            chosen[g] = members
            continue
        best = None
        for i in members:
            if np.isnan(score[i]):
                continue
            if best is None or score[i] > score[best]:
                best = i
        if best is not None:
            chosen[g] = [best]
    genes = [g for g in genes if g in chosen]

    # 5. normalisation
    val = None
    if a.val_mask:
        val = np.array([int(x) for x in open(a.val_mask).read().split()], dtype=bool)
    listed = None
    if a.genes:
        listed = set(l.strip() for l in open(a.genes) if l.strip() and not l.startswith("#"))
    out_genes = [g for g in genes if listed is None or g in listed]
    gi = [genes.index(g) for g in out_genes]
    row0 = 0
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["well_id", "donor", "mni_x", "mni_y", "mni_z", "structure_id",
                    "structure_acronym", "class", "hemisphere"] + out_genes)
        for d in D:
            n = len(d["samples"])
            Y = np.stack([d["X"][chosen[g]].mean(axis=0) for g in genes], axis=1)  # samples x genes
            for s in range(n):
                Y[s] = srs(Y[s])
            fit = None if val is None else ~val[row0:row0 + n]
            if fit is not None and not fit.any():
                fit = None   # a held-out donor: fitted on its own samples
            for g in range(len(genes)):
                Y[:, g] = srs(Y[:, g], fit)
            bad = np.isnan(Y).any(axis=0)
            for s, smp in enumerate(d["samples"]):
                o = d["ont"][smp["sid"]]
                vals = ["" if bad[k] else repr(float(Y[s, k])) for k in gi]
                w.writerow([smp["well"], d["name"]] + [repr(float(v)) for v in smp["xyz"]] +
                           [smp["sid"], o["acr"], o["cls"], o["hemi"]] + vals)
            row0 += n
    if a.compare:
        sys.exit(compare(a.out, a.compare, a.tol))


def compare(ref_path, ours_path, tol):
    rh, rr = read_table(ref_path)
    oh, orr = read_table(ours_path)
    if rh != oh:
        print("header differs:\n  reference %s\n  geneinr   %s" % (rh[:12], oh[:12]))
        extra = sorted(set(oh) - set(rh))[:10]
        missing = sorted(set(rh) - set(oh))[:10]
        print("  only in geneinr: %s; only in the reference: %s" % (extra, missing))
        return 1
    if len(rr) != len(orr):
        print("%d rows in the reference, %d in geneinr's" % (len(rr), len(orr)))
        return 1
    worst, where, bad = 0.0, "", 0
    for k, (r, o) in enumerate(zip(rr, orr)):
        for j, (x, y) in enumerate(zip(r, o)):
            if j in (0, 1, 5, 6, 7, 8):
                if x != y:
                    print("row %d column %s: reference %r, geneinr %r" % (k + 2, rh[j], x, y))
                    return 1
                continue
            if (x == "") != (y == ""):
                print("row %d column %s: reference %r, geneinr %r" % (k + 2, rh[j], x, y))
                return 1
            if x == "":
                continue
            d = abs(float(x) - float(y))
            if d > worst:
                worst, where = d, "row %d column %s (%s vs %s)" % (k + 2, rh[j], x, y)
            bad += d > tol
    print("%d rows x %d genes; largest difference %.3g at %s" % (len(rr), len(rh) - 9, worst, where))
    return 1 if bad else 0


if __name__ == "__main__":
    main()
