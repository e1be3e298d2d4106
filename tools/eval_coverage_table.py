#!/usr/bin/python3
# eval_coverage_table.py - the coverage table of docs/ACCURACY.md (issue 28) from runs/i28/eval_<phantom>_<split>:
# summary.csv when the cell finished, else its finished folds' folds/F/result.bin (format GIEVALF2; eval's
# definitions over those folds: median over genes of the pooled r, mean MSE, coverage of all values).
#   /usr/bin/python3 tools/eval_coverage_table.py
import sys, os, glob, struct, csv
import numpy as np
names = ['inr', 'kriging', 'regression_kriging']
def from_bins(d):
    fl = sorted(glob.glob(d + '/folds/*/result.bin'))
    T, P, S = [], [], []
    for f in fl:
        b = open(f, 'rb').read()
        key, fold, nt, G, M = struct.unpack('<Qiiii', b[8:32])
        off = 32 + 4 * nt
        T.append(np.frombuffer(b, np.float64, nt * G, off).reshape(nt, G)); off += 8 * nt * G
        P.append(np.frombuffer(b, np.float64, M * nt * G, off).reshape(M, nt, G)); off += 8 * M * nt * G
        S.append(np.frombuffer(b, np.float64, M * nt * G, off).reshape(M, nt, G))
    if not fl:
        return None, 0
    t = np.concatenate(T, 0); p = np.concatenate(P, 1); s = np.concatenate(S, 1)
    out = {}
    for mi, n in enumerate(names):
        rs, ms = [], []
        for g in range(t.shape[1]):
            a, b2 = p[mi][:, g], t[:, g]
            ok = np.isfinite(a) & np.isfinite(b2)
            rs.append(np.corrcoef(a[ok], b2[ok])[0, 1]); ms.append(np.mean((a[ok] - b2[ok]) ** 2))
        z = np.abs(t - p[mi]) / s[mi]
        z = z[np.isfinite(z)]
        out[n] = (np.median(rs), np.mean(ms), np.mean(z <= 0.6745), np.mean(z <= 1.6449))
    return out, len(fl)
def cell(tag, split):
    d = 'runs/i28/eval_%s_%s' % (tag, split)
    if os.path.exists(d + '/summary.csv'):
        out = {}
        for r in csv.DictReader(open(d + '/summary.csv')):
            out[r['method']] = (float(r['median_r']), float(r['mean_mse']), float(r['coverage_50']), float(r['coverage_90']))
        nf = int(next(csv.DictReader(open(d + '/summary.csv')))['folds'])
        return out, nf, nf
    out, k = from_bins(d)
    return out, k, 6 if split == 'donor' else 3
for tag, title in (('ph', 'built-in phantom'), ('dk', 'DK phantom')):
    cells = {sp: cell(tag, sp) for sp in ('kfold', 'block', 'donor')}
    hdr = ' | '.join('%s%s' % (sp, '' if cells[sp][1] == cells[sp][2] else ' (%d of %d folds)' % (cells[sp][1], cells[sp][2])) for sp in cells)
    print('| %s | %s |' % (title, hdr))
    print('|---|---|---|---|')
    for n in names:
        row = []
        for sp in cells:
            o = cells[sp][0]
            row.append('-' if not o else '%.3f / %.3f (r %.4f, MSE %.4f)' % (o[n][2], o[n][3], o[n][0], o[n][1]))
        print('| %s | %s |' % (n, ' | '.join(row)))
    print()
