/* nulls.c - variogram-matched surrogates and Moran spectral randomisation (see nulls.h). */
#include "geneinr/nulls.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/rng.h"

/* LAPACK from OpenBLAS (Fortran interface, as kriging.c calls dpotrf_). */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
            const int *lwork, int *info);

#define STREAM(p) ((uint64_t)GI_STREAM_CORRELATE + (uint64_t)(p))
#define PV 0.25                 /* dmax: this quantile of pairwise distances (BrainSMASH's pv = 25) */
#define GRID_RADIUS_MM 40.0     /* grid mode: the largest smoothing half-width */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double quantile_sorted(const double *v, long n, double q)
{
    double pos = q * (double)(n - 1);
    long i = (long)pos;
    if (i >= n - 1)
        return v[n - 1];
    return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

/* The h grid, bandwidth and kernel weights of every class (dist [n_class]). */
static int setup_kernel(gi_smash *s, double dmin, const double *dist, gi_err *err)
{
    for (int h = 0; h < GI_NULLS_NH; h++)
        s->h[h] = dmin + (s->dmax - dmin) * h / (GI_NULLS_NH - 1);
    s->bw = 3.0 * (s->h[1] - s->h[0]);
    if (!(s->bw > 0))
        return gi_fail(err, "the map's units are too close together for a variogram (distances %g..%g mm)", dmin,
                       s->dmax);
    s->wcls = malloc(sizeof(double) * GI_NULLS_NH * (size_t)s->n_class);
    if (!s->wcls)
        return gi_fail(err, "out of memory (variogram weights)");
    for (int h = 0; h < GI_NULLS_NH; h++)
        for (int c = 0; c < s->n_class; c++) {
            double u = 2.68 * fabs(dist[c] - s->h[h]) / s->bw;
            s->wcls[(long)h * s->n_class + c] = exp(-0.5 * u * u);
        }
    long *count = calloc((size_t)s->n_class, sizeof(long));
    if (!count)
        return gi_fail(err, "out of memory (variogram weights)");
    for (long p = 0; p < s->n_pairs; p++)
        count[s->pc[p]]++;
    for (int h = 0; h < GI_NULLS_NH; h++) {
        double d = 0;
        for (int c = 0; c < s->n_class; c++)
            d += s->wcls[(long)h * s->n_class + c] * (double)count[c];
        s->den[h] = d;
    }
    free(count);
    return 0;
}

void gi_smash_variogram(const gi_smash *s, const double *y, double *vgm)
{
    double *acc = calloc((size_t)s->n_class, sizeof(double));
    if (!acc) {   /* cannot happen at these sizes; a NaN variogram makes it visible */
        for (int h = 0; h < GI_NULLS_NH; h++)
            vgm[h] = NAN;
        return;
    }
    for (long p = 0; p < s->n_pairs; p++) {
        double d = y[s->pi[p]] - y[s->pj[p]];
        acc[s->pc[p]] += 0.5 * d * d;
    }
    for (int h = 0; h < GI_NULLS_NH; h++) {
        const double *w = s->wcls + (long)h * s->n_class;
        double num = 0;
        for (int c = 0; c < s->n_class; c++)
            num += w[c] * acc[c];
        vgm[h] = s->den[h] > 0 ? num / s->den[h] : 0;
    }
    free(acc);
}

/* ------------------------------------------------------------ grid mode */

static void grid_scales(gi_smash *s, double step_mm)
{
    int rmax = (int)ceil(GRID_RADIUS_MM / step_mm);
    if (rmax < 1)
        rmax = 1;
    if (rmax > 64)   /* the tap table of grid_smooth_box */
        rmax = 64;
    /* r = 0, the permuted map itself, for maps rougher than the smallest kernel (BrainSMASH's
     * smallest k still smooths, and a nearly white map then gets a poor fit) */
    s->scale[0] = 0;
    s->n_scales = 1;
    int last = 0;
    for (int j = 0; j < 8; j++) {
        int r = rmax <= 8 ? j + 1 : (int)lround(pow((double)rmax, j / 7.0));
        if (r > rmax)
            break;
        if (r > last)
            s->scale[s->n_scales++] = last = r;
    }
}

/* Separable smoothing of the units' values in (scattered into box a) with
 * radius r: the three passes leave the result in b. */
static void grid_smooth_box(const gi_smash *s, int r, double *a, double *b)
{
    double w[2 * 64 + 1];
    for (int d = -r; d <= r; d++)
        w[d + r] = exp(-1.25 * (double)d * d / ((double)r * r));
    const long bx = s->bx, by = s->by, bz = s->bz, plane = bx * by;
    /* x: a -> b */
    for (long row = 0; row < by * bz; row++) {
        const double *in = a + row * bx;
        double *out = b + row * bx;
        for (long i = 0; i < bx; i++) {
            long lo = i - r < 0 ? -i : -r, hi = i + r >= bx ? bx - 1 - i : r;
            double acc = 0;
            for (long d = lo; d <= hi; d++)
                acc += w[d + r] * in[i + d];
            out[i] = acc;
        }
    }
    /* y: b -> a (d outermost per row so the inner loop runs along x) */
    for (long z = 0; z < bz; z++)
        for (long y = 0; y < by; y++) {
            double *out = a + z * plane + y * bx;
            memset(out, 0, sizeof(double) * (size_t)bx);
            long lo = y - r < 0 ? -y : -r, hi = y + r >= by ? by - 1 - y : r;
            for (long d = lo; d <= hi; d++) {
                const double *in = b + z * plane + (y + d) * bx;
                double wd = w[d + r];
                for (long i = 0; i < bx; i++)
                    out[i] += wd * in[i];
            }
        }
    /* z: a -> b */
    for (long z = 0; z < bz; z++) {
        long lo = z - r < 0 ? -z : -r, hi = z + r >= bz ? bz - 1 - z : r;
        double *out = b + z * plane;
        memset(out, 0, sizeof(double) * (size_t)plane);
        for (long d = lo; d <= hi; d++) {
            const double *in = a + (z + d) * plane;
            double wd = w[d + r];
            for (long i = 0; i < plane; i++)
                out[i] += wd * in[i];
        }
    }
}

/* Smooth units' values at scale index si into out (units); box buffers a, b. */
static void grid_smooth(const gi_smash *s, int si, const double *in, double *out, double *a, double *b)
{
    long box = (long)s->bx * s->by * s->bz;
    if (s->scale[si] == 0) {
        memcpy(out, in, sizeof(double) * (size_t)s->n);
        return;
    }
    memset(a, 0, sizeof(double) * (size_t)box);
    for (int u = 0; u < s->n; u++)
        a[s->cell[u]] = in[u];
    grid_smooth_box(s, s->scale[si], a, b);
    const double *nrm = s->norm + (long)si * s->n;
    for (int u = 0; u < s->n; u++)
        out[u] = b[s->cell[u]] / nrm[u];
}

typedef struct offset {
    int dx, dy, dz, cls, bin;
    double d;
} offset;

static int cmp_offset(const void *a, const void *b)
{
    const offset *x = a, *y = b;
    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    if (x->dz != y->dz)
        return x->dz - y->dz;
    if (x->dy != y->dy)
        return x->dy - y->dy;
    return x->dx - y->dx;
}

static double mm_len(const double lin[9], double dx, double dy, double dz)
{
    double v0 = lin[0] * dx + lin[1] * dy + lin[2] * dz;
    double v1 = lin[3] * dx + lin[4] * dy + lin[5] * dz;
    double v2 = lin[6] * dx + lin[7] * dy + lin[8] * dz;
    return sqrt(v0 * v0 + v1 * v1 + v2 * v2);
}

int gi_smash_init_grid(gi_smash *s, int n, const int *ijk, const double lin[9], const double *x, uint64_t seed,
                       gi_err *err)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->grid = 1;
    s->seed = seed;
    if (n < 10)
        return gi_fail(err, "too few voxels for spatial nulls (%d; at least 10)", n);
    int lo[3] = {ijk[0], ijk[1], ijk[2]}, hi[3] = {ijk[0], ijk[1], ijk[2]};
    for (int u = 0; u < n; u++)
        for (int a = 0; a < 3; a++) {
            if (ijk[3 * u + a] < lo[a])
                lo[a] = ijk[3 * u + a];
            if (ijk[3 * u + a] > hi[a])
                hi[a] = ijk[3 * u + a];
        }
    s->bx = hi[0] - lo[0] + 1;
    s->by = hi[1] - lo[1] + 1;
    s->bz = hi[2] - lo[2] + 1;
    long box = (long)s->bx * s->by * s->bz;
    s->x = malloc(sizeof(double) * (size_t)n);
    s->cell = malloc(sizeof(long) * (size_t)n);
    int *unit_at = malloc(sizeof(int) * (size_t)box);
    if (!s->x || !s->cell || !unit_at) {
        free(unit_at);
        return gi_fail(err, "out of memory (null maps of %d voxels)", n);
    }
    memcpy(s->x, x, sizeof(double) * (size_t)n);
    for (long c = 0; c < box; c++)
        unit_at[c] = -1;
    for (int u = 0; u < n; u++) {
        long c = ((long)(ijk[3 * u + 2] - lo[2]) * s->by + (ijk[3 * u + 1] - lo[1])) * s->bx + (ijk[3 * u] - lo[0]);
        s->cell[u] = c;
        unit_at[c] = u;
    }
    /* dmax: the PV quantile of distances between random pairs of units. */
    enum { NQ = 20000 };
    double *dq = malloc(sizeof(double) * NQ);
    if (!dq) {
        free(unit_at);
        return gi_fail(err, "out of memory");
    }
    for (long q = 0; q < NQ; q++) {
        int a = (int)gi_rng_below(seed, STREAM(GI_NULLS_STREAM_PAIRS), 2 * (uint64_t)q, (uint64_t)n);
        int b = (int)gi_rng_below(seed, STREAM(GI_NULLS_STREAM_PAIRS), 2 * (uint64_t)q + 1, (uint64_t)n);
        dq[q] = mm_len(lin, ijk[3 * b] - ijk[3 * a], ijk[3 * b + 1] - ijk[3 * a + 1], ijk[3 * b + 2] - ijk[3 * a + 2]);
    }
    qsort(dq, NQ, sizeof(double), cmp_double);
    s->dmax = quantile_sorted(dq, NQ, PV);
    free(dq);
    double steps[3] = {mm_len(lin, 1, 0, 0), mm_len(lin, 0, 1, 0), mm_len(lin, 0, 0, 1)};
    double smin = fmin(steps[0], fmin(steps[1], steps[2]));
    grid_scales(s, (steps[0] + steps[1] + steps[2]) / 3);
    /* Offsets within dmax, sorted by length; classes are distinct lengths. */
    int R[3];
    for (int a = 0; a < 3; a++)
        R[a] = (int)ceil(s->dmax / steps[a]) + 1;
    long n_off_max = (long)(2 * R[0] + 1) * (2 * R[1] + 1) * (2 * R[2] + 1);
    offset *off = malloc(sizeof(offset) * (size_t)n_off_max);
    if (!off) {
        free(unit_at);
        return gi_fail(err, "out of memory");
    }
    long n_off = 0;
    for (int dz = -R[2]; dz <= R[2]; dz++)
        for (int dy = -R[1]; dy <= R[1]; dy++)
            for (int dx = -R[0]; dx <= R[0]; dx++) {
                double d = mm_len(lin, dx, dy, dz);
                if ((dx || dy || dz) && d <= s->dmax)
                    off[n_off++] = (offset){dx, dy, dz, 0, 0, d};
            }
    if (n_off == 0) {
        free(off);
        free(unit_at);
        return gi_fail(err, "the map's voxels are too far apart for a variogram");
    }
    qsort(off, (size_t)n_off, sizeof(offset), cmp_offset);
    double *cdist = malloc(sizeof(double) * (size_t)n_off);
    if (!cdist) {
        free(off);
        free(unit_at);
        return gi_fail(err, "out of memory");
    }
    int nc = 0;
    for (long o = 0; o < n_off; o++) {
        if (nc == 0 || off[o].d > cdist[nc - 1] * (1 + 1e-9))
            cdist[nc++] = off[o].d;
        off[o].cls = nc - 1;
    }
    s->n_class = nc;
    double dmin = fmax(off[0].d, smin * 0.999);
    for (int h = 0; h < GI_NULLS_NH; h++)
        s->h[h] = dmin + (s->dmax - dmin) * h / (GI_NULLS_NH - 1);
    /* Offsets by nearest bin: [first[b], first[b + 1]) (they are sorted by length). */
    long first[GI_NULLS_NH + 1];
    {
        long o = 0;
        for (int b = 0; b < GI_NULLS_NH; b++) {
            first[b] = o;
            double edge = b + 1 < GI_NULLS_NH ? 0.5 * (s->h[b] + s->h[b + 1]) : INFINITY;
            while (o < n_off && off[o].d < edge)
                o++;
        }
        first[GI_NULLS_NH] = n_off;
    }
    /* Pairs: the same number per bin, random unit + random offset of the bin. */
    long per_bin = GI_NULLS_PAIRS / GI_NULLS_NH;
    s->pi = malloc(sizeof(int) * GI_NULLS_PAIRS);
    s->pj = malloc(sizeof(int) * GI_NULLS_PAIRS);
    s->pc = malloc(sizeof(int) * GI_NULLS_PAIRS);
    if (!s->pi || !s->pj || !s->pc) {
        free(off);
        free(cdist);
        free(unit_at);
        return gi_fail(err, "out of memory");
    }
    uint64_t ctr = 1u << 20;   /* after the dmax draws */
    for (int b = 0; b < GI_NULLS_NH; b++) {
        long nb = first[b + 1] - first[b], got = 0;
        for (long t = 0; nb > 0 && got < per_bin && t < 50 * per_bin; t++, ctr += 2) {
            int u = (int)gi_rng_below(seed, STREAM(GI_NULLS_STREAM_PAIRS), ctr, (uint64_t)n);
            const offset *o =
                &off[first[b] + (long)gi_rng_below(seed, STREAM(GI_NULLS_STREAM_PAIRS), ctr + 1, (uint64_t)nb)];
            int i = ijk[3 * u] - lo[0] + o->dx, j = ijk[3 * u + 1] - lo[1] + o->dy, k = ijk[3 * u + 2] - lo[2] + o->dz;
            if (i < 0 || j < 0 || k < 0 || i >= s->bx || j >= s->by || k >= s->bz)
                continue;
            int v = unit_at[((long)k * s->by + j) * s->bx + i];
            if (v < 0)
                continue;
            s->pi[s->n_pairs] = u;
            s->pj[s->n_pairs] = v;
            s->pc[s->n_pairs] = o->cls;
            s->n_pairs++;
            got++;
        }
    }
    free(off);
    free(unit_at);
    int rc = s->n_pairs < 100 ? gi_fail(err, "too few voxel pairs for a variogram (%ld)", s->n_pairs)
                              : setup_kernel(s, dmin, cdist, err);
    free(cdist);
    if (rc != 0)
        return -1;
    /* Normalisers: the kernel's sum over the units, per scale. */
    s->norm = malloc(sizeof(double) * (size_t)s->n_scales * (size_t)n);
    double *a = malloc(sizeof(double) * (size_t)box), *b = malloc(sizeof(double) * (size_t)box);
    if (!s->norm || !a || !b) {
        free(a);
        free(b);
        return gi_fail(err, "out of memory");
    }
    for (int si = 0; si < s->n_scales; si++) {
        memset(a, 0, sizeof(double) * (size_t)box);
        for (int u = 0; u < n; u++)
            a[s->cell[u]] = 1;
        if (s->scale[si] > 0)
            grid_smooth_box(s, s->scale[si], a, b);
        else
            memcpy(b, a, sizeof(double) * (size_t)box);
        for (int u = 0; u < n; u++)
            s->norm[(long)si * n + u] = b[s->cell[u]];
    }
    free(a);
    free(b);
    gi_smash_variogram(s, s->x, s->target);
    return 0;
}

/* ---------------------------------------------------------- points mode */

typedef struct nd_pair {
    double d;
    int j;
} nd_pair;

static int cmp_nd(const void *a, const void *b)
{
    const nd_pair *x = a, *y = b;
    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    return x->j - y->j;
}

int gi_smash_init_points(gi_smash *s, int n, const double *xyz, const double *x, uint64_t seed, gi_err *err)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->seed = seed;
    if (n < 5)
        return gi_fail(err, "too few regions for spatial nulls (%d; at least 5)", n);
    long np = (long)n * (n - 1) / 2;
    s->x = malloc(sizeof(double) * (size_t)n);
    s->nn = malloc(sizeof(int) * (size_t)n * n);
    s->nd = malloc(sizeof(double) * (size_t)n * n);
    double *all = malloc(sizeof(double) * (size_t)np);
    nd_pair *row = malloc(sizeof(nd_pair) * (size_t)n);
    if (!s->x || !s->nn || !s->nd || !all || !row) {
        free(all);
        free(row);
        return gi_fail(err, "out of memory (nulls of %d regions)", n);
    }
    memcpy(s->x, x, sizeof(double) * (size_t)n);
    long q = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double dx = xyz[3 * i] - xyz[3 * j], dy = xyz[3 * i + 1] - xyz[3 * j + 1], dz = xyz[3 * i + 2] - xyz[3 * j + 2];
            all[q++] = sqrt(dx * dx + dy * dy + dz * dz);
        }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double dx = xyz[3 * i] - xyz[3 * j], dy = xyz[3 * i + 1] - xyz[3 * j + 1], dz = xyz[3 * i + 2] - xyz[3 * j + 2];
            row[j] = (nd_pair){i == j ? 0 : sqrt(dx * dx + dy * dy + dz * dz), j};
        }
        /* self first (distance 0, ties by index would not guarantee it) */
        nd_pair t = row[0];
        row[0] = row[i];
        row[i] = t;
        qsort(row + 1, (size_t)n - 1, sizeof(nd_pair), cmp_nd);
        for (int j = 0; j < n; j++) {
            s->nn[(long)i * n + j] = row[j].j;
            s->nd[(long)i * n + j] = row[j].d;
        }
    }
    free(row);
    double *sorted = malloc(sizeof(double) * (size_t)np);
    if (!sorted) {
        free(all);
        return gi_fail(err, "out of memory");
    }
    memcpy(sorted, all, sizeof(double) * (size_t)np);
    qsort(sorted, (size_t)np, sizeof(double), cmp_double);
    s->dmax = quantile_sorted(sorted, np, PV);
    double dmin = sorted[0];
    free(sorted);
    /* Every pair within dmax is its own class. */
    s->pi = malloc(sizeof(int) * (size_t)np);
    s->pj = malloc(sizeof(int) * (size_t)np);
    s->pc = malloc(sizeof(int) * (size_t)np);
    double *cd = malloc(sizeof(double) * (size_t)np);
    if (!s->pi || !s->pj || !s->pc || !cd) {
        free(all);
        free(cd);
        return gi_fail(err, "out of memory");
    }
    q = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++, q++)
            if (all[q] <= s->dmax) {
                s->pi[s->n_pairs] = i;
                s->pj[s->n_pairs] = j;
                s->pc[s->n_pairs] = (int)s->n_pairs;
                cd[s->n_pairs] = all[q];
                s->n_pairs++;
            }
    free(all);
    s->n_class = (int)s->n_pairs;
    int rc = setup_kernel(s, dmin, cd, err);
    free(cd);
    if (rc != 0)
        return -1;
    s->scale[0] = 1;   /* the permuted map itself (see grid_scales) */
    s->n_scales = 1;
    int last = 1;
    for (int j = 1; j <= 9; j++) {
        int k = (int)lround(0.1 * j * n);
        if (k < 2)
            k = 2;
        if (k > last)
            s->scale[s->n_scales++] = last = k;
    }
    gi_smash_variogram(s, s->x, s->target);
    return 0;
}

static void points_smooth(const gi_smash *s, int k, const double *in, double *out)
{
    for (int i = 0; i < s->n; i++) {
        const int *nn = s->nn + (long)i * s->n;
        const double *nd = s->nd + (long)i * s->n;
        double dk = nd[k - 1], num = 0, den = 0;
        for (int j = 0; j < k; j++) {
            double w = dk > 0 ? exp(-nd[j] / dk) : 1;
            num += w * in[nn[j]];
            den += w;
        }
        out[i] = num / den;
    }
}

/* ------------------------------------------------------------ surrogates */

long gi_smash_work_size(const gi_smash *s)
{
    long box = s->grid ? (long)s->bx * s->by * s->bz : 0;
    return 2 * box + 3L * s->n;
}

static void fit(const double *t, const double *v, double *a, double *b, double *sse)
{
    double mt = 0, mv = 0;
    for (int h = 0; h < GI_NULLS_NH; h++) {
        mt += t[h];
        mv += v[h];
    }
    mt /= GI_NULLS_NH;
    mv /= GI_NULLS_NH;
    double sxy = 0, sxx = 0;
    for (int h = 0; h < GI_NULLS_NH; h++) {
        sxy += (v[h] - mv) * (t[h] - mt);
        sxx += (v[h] - mv) * (v[h] - mv);
    }
    *b = sxx > 0 ? sxy / sxx : 0;
    *a = mt - *b * mv;
    /* Least squares with a >= 0 and b >= 0: the surrogate is sqrt(b) smoothed + sqrt(a) noise,
     * and noise cannot lower a variogram. (BrainSMASH takes |a| and |b| of the unconstrained
     * fit instead, which adds noise where the fit asked for less: surrogates rougher than
     * the map and too liberal a test.) The optimum with a bound active lies on it. */
    if (*b < 0) {
        *b = 0;
        *a = mt;
    }
    if (*a < 0) {
        double tv = 0, vv = 0;
        for (int h = 0; h < GI_NULLS_NH; h++) {
            tv += t[h] * v[h];
            vv += v[h] * v[h];
        }
        *a = 0;
        *b = vv > 0 && tv > 0 ? tv / vv : 0;
    }
    double e = 0;
    for (int h = 0; h < GI_NULLS_NH; h++) {
        double r = t[h] - *a - *b * v[h];
        e += r * r;
    }
    *sse = e;
}

void gi_smash_surrogate(const gi_smash *s, long k, double *out, double *work, int *scale, double *vgm)
{
    const int n = s->n;
    long box = s->grid ? (long)s->bx * s->by * s->bz : 0;
    double *ga = work, *gb = work + box, *xp = work + 2 * box, *sm = xp + n, *best = sm + n;
    uint64_t base = (uint64_t)k * (uint64_t)n;
    memcpy(xp, s->x, sizeof(double) * (size_t)n);
    for (int i = n - 1; i > 0; i--) {   /* Fisher-Yates */
        int j = (int)gi_rng_below(s->seed, STREAM(GI_NULLS_STREAM_PERM), base + (uint64_t)i, (uint64_t)i + 1);
        double t = xp[i];
        xp[i] = xp[j];
        xp[j] = t;
    }
    double best_sse = INFINITY, ba = 0, bb = 0;
    int bs = s->scale[0];
    for (int si = 0; si < s->n_scales; si++) {
        if (s->grid)
            grid_smooth(s, si, xp, sm, ga, gb);
        else
            points_smooth(s, s->scale[si], xp, sm);
        double v[GI_NULLS_NH], a, b, sse;
        gi_smash_variogram(s, sm, v);
        fit(s->target, v, &a, &b, &sse);
        if (sse < best_sse) {
            best_sse = sse;
            ba = a;
            bb = b;
            bs = s->scale[si];
            memcpy(best, sm, sizeof(double) * (size_t)n);
        }
    }
    double sb = sqrt(fabs(bb)), sa = sqrt(fabs(ba)), mean = 0;
    for (int i = 0; i < n; i++) {
        out[i] = sb * best[i] + sa * gi_rng_normal(s->seed, STREAM(GI_NULLS_STREAM_NOISE), base + (uint64_t)i);
        mean += out[i];
    }
    mean /= n;
    for (int i = 0; i < n; i++)
        out[i] -= mean;
    if (scale)
        *scale = bs;
    if (vgm)
        gi_smash_variogram(s, out, vgm);
}

void gi_smash_free(gi_smash *s)
{
    free(s->x);
    free(s->pi);
    free(s->pj);
    free(s->pc);
    free(s->wcls);
    free(s->cell);
    free(s->norm);
    free(s->nn);
    free(s->nd);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- Moran */

int gi_moran_init(gi_moran *m, int n, const double *xyz, const double *x, uint64_t seed, gi_err *err)
{
    memset(m, 0, sizeof *m);
    m->n = n;
    m->seed = seed;
    if (n < 3)
        return gi_fail(err, "too few regions for Moran spectral randomisation (%d)", n);
    double *w = malloc(sizeof(double) * (size_t)n * n), *rm = calloc((size_t)n, sizeof(double));
    m->c = malloc(sizeof(double) * (size_t)n);
    if (!w || !rm || !m->c) {
        free(w);
        free(rm);
        return gi_fail(err, "out of memory (Moran eigenvectors of %d regions)", n);
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double dx = xyz[3 * i] - xyz[3 * j], dy = xyz[3 * i + 1] - xyz[3 * j + 1], dz = xyz[3 * i + 2] - xyz[3 * j + 2];
            double d = sqrt(dx * dx + dy * dy + dz * dz);
            if (i != j && !(d > 0)) {
                free(w);
                free(rm);
                return gi_fail(err, "regions %d and %d have the same centroid: no Moran weights", i + 1, j + 1);
            }
            w[(long)j * n + i] = i == j ? 0 : 1 / d;
        }
    /* Double centring: W - row means - column means + grand mean (W is symmetric). */
    double g = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++)
            rm[i] += w[(long)j * n + i];
        rm[i] /= n;
        g += rm[i];
    }
    g /= n;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++)
            w[(long)j * n + i] += g - rm[i] - rm[j];
    free(rm);
    double *ev = malloc(sizeof(double) * (size_t)n), q;
    int lwork = -1, info = 0;
    dsyev_("V", "U", &n, w, &n, ev, &q, &lwork, &info);
    lwork = info == 0 ? (int)q : 3 * n;
    double *wk = malloc(sizeof(double) * (size_t)lwork);
    if (!ev || !wk) {
        free(w);
        free(ev);
        free(wk);
        return gi_fail(err, "out of memory");
    }
    dsyev_("V", "U", &n, w, &n, ev, wk, &lwork, &info);
    free(wk);
    free(ev);
    if (info != 0) {
        free(w);
        return gi_fail(err, "Moran eigenvectors: LAPACK dsyev failed (info %d)", info);
    }
    m->v = w;
    double mean = 0;
    for (int i = 0; i < n; i++)
        mean += x[i];
    mean /= n;
    for (int j = 0; j < n; j++) {
        double c = 0;
        for (int i = 0; i < n; i++)
            c += w[(long)j * n + i] * (x[i] - mean);
        m->c[j] = c;
    }
    return 0;
}

void gi_moran_surrogate(const gi_moran *m, long k, double *out)
{
    const int n = m->n;
    for (int i = 0; i < n; i++)
        out[i] = 0;
    for (int j = 0; j < n; j++) {
        double c = m->c[j];
        if (gi_rng_below(m->seed, STREAM(GI_NULLS_STREAM_MORAN), (uint64_t)k * (uint64_t)n + (uint64_t)j, 2))
            c = -c;
        const double *v = m->v + (long)j * n;
        for (int i = 0; i < n; i++)
            out[i] += c * v[i];
    }
}

void gi_moran_free(gi_moran *m)
{
    free(m->v);
    free(m->c);
    memset(m, 0, sizeof *m);
}
