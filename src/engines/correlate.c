/* correlate.c - `geneinr correlate`: genes of an atlas against a brain map with spatial nulls (see correlate.h). */
#include "geneinr/correlate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "geneinr/atlas.h"
#include "geneinr/correlate_report.h"
#include "geneinr/dist.h"
#include "geneinr/files.h"
#include "geneinr/genelist.h"
#include "geneinr/h5.h"
#include "geneinr/manifest.h"
#include "geneinr/mapfile.h"
#include "geneinr/nifti.h"
#include "geneinr/nulls.h"
#include "geneinr/rng.h"
#include "geneinr/strbuf.h"
#include "geneinr/version.h"

#define STREAM_RESAMPLE ((uint64_t)GI_STREAM_CORRELATE + 4)
#define BATCH 8   /* nulls generated before their correlations with every gene (cache reuse) */

/* ------------------------------------------------------------ statistics */

/* Continued fraction of the regularised incomplete beta function (modified Lentz). */
static double betacf(double a, double b, double x)
{
    const double tiny = 1e-300;
    double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
    if (fabs(d) < tiny)
        d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 10000; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < 1e-15)
            break;
    }
    return h;
}

/* I_x(a, b). */
static double betai(double a, double b, double x)
{
    if (x <= 0)
        return 0;
    if (x >= 1)
        return 1;
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1) / (a + b + 2))
        return exp(lbt) * betacf(a, b, x) / a;
    return 1 - exp(lbt) * betacf(b, a, 1 - x) / b;
}

double gi_corr_p_naive(double r, long n)
{
    if (!isfinite(r) || n < 3)
        return NAN;
    double df = (double)(n - 2), r2 = r * r;
    if (r2 >= 1)
        return 0;
    double t2 = df * r2 / (1 - r2);
    return betai(0.5 * df, 0.5, df / (df + t2));
}

typedef struct pidx {
    double p;
    int i;
} pidx;

static int cmp_pidx(const void *a, const void *b)
{
    const pidx *x = a, *y = b;
    if (x->p != y->p)
        return x->p < y->p ? -1 : 1;
    return x->i - y->i;
}

void gi_corr_bh(const double *p, int n, double *q)
{
    pidx *v = malloc(sizeof(pidx) * (size_t)(n > 0 ? n : 1));
    int m = 0;
    for (int i = 0; i < n; i++) {
        q[i] = NAN;
        if (v && isfinite(p[i]))
            v[m++] = (pidx){p[i], i};
    }
    if (!v)
        return;
    qsort(v, (size_t)m, sizeof(pidx), cmp_pidx);
    double run = 1;
    for (int j = m - 1; j >= 0; j--) {
        double t = v[j].p * m / (j + 1);
        if (t < run)
            run = t;
        q[v[j].i] = run;
    }
    free(v);
}

/* Dot product in a fixed order (four interleaved partial sums), so a value
 * never depends on what else is computed beside it. */
static double dot(const double *a, const double *b, long n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

/* ------------------------------------------------------------ the state */

typedef struct cstate {
    gi_atlas atlas;
    int atlas_open;
    long nvox;
    float *mapv;                /* [nvox] the map on the atlas grid (NaN: none) */
    double share;
    /* units */
    int n;                      /* units */
    int regions;                /* 1: parcellation */
    int f[3];                   /* voxel mode: block */
    long *ustart, *uvox;        /* CSR: atlas voxels of unit u */
    int *ijk;                   /* voxel mode: [n][3] block positions */
    double *xyz;                /* region mode: [n][3] centroids (mm) */
    long long *labels;          /* region mode: [n] */
    double *x;                  /* [n] map */
    int G;
    double *gv;                 /* [G][n] gene means (NaN: none) */
    /* standardised genes */
    double *z;                  /* [G][n], 0 outside the gene's units */
    unsigned char *partial;     /* [G]: 1 when the gene lacks some units */
    unsigned char *gmask;       /* [G][n] for partial genes */
    long *ng;                   /* [G] units of gene g */
    double *r;                  /* [G] observed */
} cstate;

static void cstate_free(cstate *s)
{
    if (s->atlas_open)
        gi_atlas_close(&s->atlas);
    free(s->mapv);
    free(s->ustart);
    free(s->uvox);
    free(s->ijk);
    free(s->xyz);
    free(s->labels);
    free(s->x);
    free(s->gv);
    free(s->z);
    free(s->partial);
    free(s->gmask);
    free(s->ng);
    free(s->r);
}

/* Phase 1: the map on the atlas grid and its share of the mask. */
static int resample_map(cstate *s, const char *map_path, gi_err *err)
{
    gi_map m;
    if (gi_map_read(&m, map_path, err) != 0)
        return -1;
    const gi_atlas *a = &s->atlas;
    s->nvox = (long)a->nx * a->ny * a->nz;
    s->mapv = malloc(sizeof(float) * (size_t)s->nvox);
    if (!s->mapv) {
        gi_map_free(&m);
        return gi_fail(err, "out of memory (the map on the atlas grid)");
    }
    long in_mask = 0, have = 0;
    for (long k = 0, v = 0; k < a->nz; k++)
        for (long j = 0; j < a->ny; j++)
            for (long i = 0; i < a->nx; i++, v++) {
                s->mapv[v] = NAN;
                if (!a->mask[v])
                    continue;
                in_mask++;
                double p[3];
                gi_affine_apply(a->affine, (double)i, (double)j, (double)k, p);
                double x = gi_map_sample(&m, p);
                if (isfinite(x)) {
                    s->mapv[v] = (float)x;
                    have++;
                }
            }
    gi_map_free(&m);
    s->share = in_mask ? (double)have / (double)in_mask : 0;
    if (s->share < GI_CORRELATE_MIN_SHARE)
        return gi_fail(err,
                       "%s covers %.1f%% of the atlas mask (%ld of %ld voxels have a map value); at least %.0f%% is "
                       "needed: is the map in the atlas's space (MNI) and is its affine right?",
                       map_path, 100 * s->share, have, in_mask, 100 * GI_CORRELATE_MIN_SHARE);
    return 0;
}

static double col_norm(const double *A, int c)
{
    return sqrt(A[c] * A[c] + A[4 + c] * A[4 + c] + A[8 + c] * A[8 + c]);
}

/* Phase 2, voxels: blocks of f^3 atlas voxels with a map value in at least half. */
static int units_voxels(cstate *s, double res, gi_err *err)
{
    const gi_atlas *a = &s->atlas;
    for (int c = 0; c < 3; c++) {
        long f = res > 0 ? lround(res / col_norm(a->affine, c)) : 1;
        s->f[c] = (int)(f < 1 ? 1 : f > 16 ? 16 : f);
    }
    int bx = (a->nx + s->f[0] - 1) / s->f[0], by = (a->ny + s->f[1] - 1) / s->f[1], bz = (a->nz + s->f[2] - 1) / s->f[2];
    long nb = (long)bx * by * bz, need = ((long)s->f[0] * s->f[1] * s->f[2] + 1) / 2;
    long *cnt = calloc((size_t)nb, sizeof(long));
    if (!cnt)
        return gi_fail(err, "out of memory");
    for (long k = 0, v = 0; k < a->nz; k++)
        for (long j = 0; j < a->ny; j++)
            for (long i = 0; i < a->nx; i++, v++)
                if (isfinite(s->mapv[v]))
                    cnt[((k / s->f[2]) * by + j / s->f[1]) * bx + i / s->f[0]]++;
    long n = 0, nv = 0;
    for (long b = 0; b < nb; b++)
        if (cnt[b] >= need) {
            n++;
            nv += cnt[b];
        }
    if (n < 10) {
        free(cnt);
        return gi_fail(err, "only %ld blocks of %dx%dx%d voxels hold the map (at least 10 are needed): use a smaller "
                            "--resolution", n, s->f[0], s->f[1], s->f[2]);
    }
    s->n = (int)n;
    long *unit_of = malloc(sizeof(long) * (size_t)nb);
    s->ustart = calloc((size_t)n + 1, sizeof(long));
    s->uvox = malloc(sizeof(long) * (size_t)nv);
    s->ijk = malloc(sizeof(int) * 3 * (size_t)n);
    if (!unit_of || !s->ustart || !s->uvox || !s->ijk) {
        free(cnt);
        free(unit_of);
        return gi_fail(err, "out of memory");
    }
    long u = 0;
    for (long b = 0; b < nb; b++) {
        unit_of[b] = -1;
        if (cnt[b] >= need) {
            s->ijk[3 * u] = (int)(b % bx);
            s->ijk[3 * u + 1] = (int)((b / bx) % by);
            s->ijk[3 * u + 2] = (int)(b / ((long)bx * by));
            s->ustart[u + 1] = s->ustart[u] + cnt[b];
            unit_of[b] = u++;
        }
    }
    /* fill in atlas voxel order: a unit's voxels in a fixed order */
    long *fill = calloc((size_t)n, sizeof(long));
    if (!fill) {
        free(cnt);
        free(unit_of);
        return gi_fail(err, "out of memory");
    }
    for (long k = 0, v = 0; k < a->nz; k++)
        for (long j = 0; j < a->ny; j++)
            for (long i = 0; i < a->nx; i++, v++) {
                if (!isfinite(s->mapv[v]))
                    continue;
                long w = unit_of[((k / s->f[2]) * by + j / s->f[1]) * bx + i / s->f[0]];
                if (w >= 0)
                    s->uvox[s->ustart[w] + fill[w]++] = v;
            }
    free(fill);
    free(cnt);
    free(unit_of);
    return 0;
}

typedef struct lab_count {
    long long label;
    long count;
} lab_count;

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* Phase 2, regions: each voxel with a map value takes the nearest parcellation voxel's label. */
static int units_regions(cstate *s, const char *parc_path, gi_err *err)
{
    const gi_atlas *a = &s->atlas;
    gi_volume pv;
    int64_t *lab = NULL;
    if (gi_volume_read_labels(&pv, parc_path, &lab, err) != 0)
        return -1;
    double inv[16];
    if (gi_affine_invert(pv.affine, inv) != 0) {
        gi_volume_free(&pv);
        free(lab);
        return gi_fail(err, "%s: its affine is singular", parc_path);
    }
    long long *vl = malloc(sizeof(long long) * (size_t)s->nvox);
    long long *sorted = malloc(sizeof(long long) * (size_t)s->nvox);
    if (!vl || !sorted) {
        gi_volume_free(&pv);
        free(lab);
        free(vl);
        free(sorted);
        return gi_fail(err, "out of memory");
    }
    long nl = 0;
    for (long k = 0, v = 0; k < a->nz; k++)
        for (long j = 0; j < a->ny; j++)
            for (long i = 0; i < a->nx; i++, v++) {
                vl[v] = 0;
                if (!isfinite(s->mapv[v]))
                    continue;
                double p[3], q[3];
                gi_affine_apply(a->affine, (double)i, (double)j, (double)k, p);
                gi_affine_apply(inv, p[0], p[1], p[2], q);
                long pi = (long)floor(q[0] + 0.5 + 1e-6), pj = (long)floor(q[1] + 0.5 + 1e-6),
                     pk = (long)floor(q[2] + 0.5 + 1e-6);
                if (pi < 0 || pj < 0 || pk < 0 || pi >= pv.nx || pj >= pv.ny || pk >= pv.nz)
                    continue;
                vl[v] = lab[(pk * pv.ny + pj) * pv.nx + pi];
                if (vl[v] != 0)
                    sorted[nl++] = vl[v];
            }
    gi_volume_free(&pv);
    free(lab);
    qsort(sorted, (size_t)nl, sizeof(long long), cmp_ll);
    long n = 0;
    for (long t = 0; t < nl; t++)
        if (t == 0 || sorted[t] != sorted[t - 1])
            sorted[n++] = sorted[t];
    if (n < 5) {
        free(vl);
        free(sorted);
        return gi_fail(err, "%s: %ld labelled regions meet the atlas mask and the map (at least 5 are needed)",
                       parc_path, n);
    }
    if (n > 5000) {
        free(vl);
        free(sorted);
        return gi_fail(err, "%s: %ld regions; at most 5000 (the nulls hold a region x region matrix)", parc_path, n);
    }
    s->n = (int)n;
    s->regions = 1;
    s->labels = malloc(sizeof(long long) * (size_t)n);
    s->ustart = calloc((size_t)n + 1, sizeof(long));
    s->uvox = malloc(sizeof(long) * (size_t)(nl > 0 ? nl : 1));
    s->xyz = calloc(3 * (size_t)n, sizeof(double));
    long *fill = calloc((size_t)n, sizeof(long));
    if (!s->labels || !s->ustart || !s->uvox || !s->xyz || !fill) {
        free(vl);
        free(sorted);
        free(fill);
        return gi_fail(err, "out of memory");
    }
    memcpy(s->labels, sorted, sizeof(long long) * (size_t)n);
    free(sorted);
    /* unit of a voxel by binary search over the sorted labels */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)   /* counts -> starts */
            for (long u = 0; u < n; u++)
                s->ustart[u + 1] += s->ustart[u];
        for (long k = 0, v = 0; k < a->nz; k++)
            for (long j = 0; j < a->ny; j++)
                for (long i = 0; i < a->nx; i++, v++) {
                    if (vl[v] == 0)
                        continue;
                    long lo = 0, hi = n - 1;
                    while (lo < hi) {
                        long mid = (lo + hi) / 2;
                        if (s->labels[mid] < vl[v])
                            lo = mid + 1;
                        else
                            hi = mid;
                    }
                    if (pass == 0) {
                        s->ustart[lo + 1]++;
                    } else {
                        s->uvox[s->ustart[lo] + fill[lo]++] = v;
                        double p[3];
                        gi_affine_apply(a->affine, (double)i, (double)j, (double)k, p);
                        for (int c = 0; c < 3; c++)
                            s->xyz[3 * lo + c] += p[c];
                    }
                }
    }
    free(vl);
    free(fill);
    for (long u = 0; u < n; u++)
        for (int c = 0; c < 3; c++)
            s->xyz[3 * u + c] /= (double)(s->ustart[u + 1] - s->ustart[u]);
    return 0;
}

/* Mean of vol over the voxels of unit u, finite values only (NaN: none). */
static double unit_mean(const cstate *s, const float *vol, int u)
{
    double sum = 0;
    long c = 0;
    for (long t = s->ustart[u]; t < s->ustart[u + 1]; t++) {
        float x = vol[s->uvox[t]];
        if (isfinite(x)) {
            sum += x;
            c++;
        }
    }
    return c ? sum / (double)c : NAN;
}

/* Phase 2: gene means, read in parallel (a block of genes per rank), gathered in order. */
static int read_genes(MPI_Comm comm, cstate *s, gi_err *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    s->G = s->atlas.n_genes;
    long lo, hi;
    gi_share(s->G, rank, size, &lo, &hi);
    s->gv = malloc(sizeof(double) * (size_t)s->G * (size_t)s->n);
    float *vol = malloc(sizeof(float) * (size_t)s->nvox);
    int rc = s->gv && vol ? 0 : gi_fail(err, "out of memory (%d genes x %d units)", s->G, s->n);
    for (long g = lo; rc == 0 && g < hi; g++) {
        rc = gi_atlas_read_gene(&s->atlas, (int)g, vol, err);
        for (int u = 0; rc == 0 && u < s->n; u++)
            s->gv[g * s->n + u] = unit_mean(s, vol, u);
    }
    free(vol);
    if (gi_dist_agree(comm, rc, err) != 0)
        return -1;
    int *counts = malloc(sizeof(int) * (size_t)size), *displs = malloc(sizeof(int) * (size_t)size);
    for (int p = 0; p < size; p++) {
        long a, b;
        gi_share(s->G, p, size, &a, &b);
        counts[p] = (int)((b - a) * s->n);
        displs[p] = (int)(a * s->n);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, s->gv, counts, displs, MPI_DOUBLE, comm);
    free(counts);
    free(displs);
    return 0;
}

/* Phase 3: standardised genes and the observed r. */
static int standardise(cstate *s, gi_err *err)
{
    const int n = s->n, G = s->G;
    s->z = calloc((size_t)G * n, sizeof(double));
    s->partial = calloc((size_t)G, 1);
    s->gmask = calloc((size_t)G * n, 1);
    s->ng = calloc((size_t)G, sizeof(long));
    s->r = malloc(sizeof(double) * (size_t)G);
    if (!s->z || !s->partial || !s->gmask || !s->ng || !s->r)
        return gi_fail(err, "out of memory");
    for (int g = 0; g < G; g++) {
        const double *v = s->gv + (long)g * n;
        double *z = s->z + (long)g * n;
        unsigned char *m = s->gmask + (long)g * n;
        double sum = 0;
        long c = 0;
        for (int u = 0; u < n; u++)
            if (isfinite(v[u])) {
                m[u] = 1;
                sum += v[u];
                c++;
            }
        s->ng[g] = c;
        s->partial[g] = c < n;
        double mean = c ? sum / (double)c : 0, ss = 0;
        for (int u = 0; u < n; u++)
            if (m[u]) {
                z[u] = v[u] - mean;
                ss += z[u] * z[u];
            }
        if (c < 3 || !(ss > 0)) {   /* no correlation: constant or (almost) no values */
            memset(z, 0, sizeof(double) * (size_t)n);
            s->ng[g] = 0;
            continue;
        }
        double inv = 1 / sqrt(ss);
        for (int u = 0; u < n; u++)
            z[u] *= inv;
    }
    return 0;
}

/* r of every gene with map y [n] (r[g]); NaN for genes without a correlation. */
static void correlate_all(const cstate *s, const double *y, double *r)
{
    const int n = s->n;
    double sum = 0, ss = 0;
    for (int u = 0; u < n; u++)
        sum += y[u];
    double mean = sum / n;
    for (int u = 0; u < n; u++)
        ss += (y[u] - mean) * (y[u] - mean);
    for (int g = 0; g < s->G; g++) {
        if (s->ng[g] == 0) {
            r[g] = NAN;
            continue;
        }
        double sd2 = ss;
        if (s->partial[g]) {
            const unsigned char *m = s->gmask + (long)g * n;
            double su = 0, sq = 0;
            for (int u = 0; u < n; u++)
                if (m[u])
                    su += y[u];
            double mu = su / (double)s->ng[g];
            for (int u = 0; u < n; u++)
                if (m[u])
                    sq += (y[u] - mu) * (y[u] - mu);
            sd2 = sq;
        }
        r[g] = sd2 > 0 ? dot(s->z + (long)g * n, y, n) / sqrt(sd2) : NAN;
    }
}

/* ------------------------------------------------------------- outputs */

static int write_2d(hid_t f, const char *path, const char *name, const double *v, hsize_t d0, hsize_t d1,
                    gi_err *err)
{
    hsize_t dims[2] = {d0, d1};
    hid_t sp = H5Screate_simple(d1 ? 2 : 1, dims, NULL);
    hid_t ds = sp < 0 ? -1 : H5Dcreate2(f, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = ds >= 0 && H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0
                 ? 0
                 : gi_h5_fail(err, "%s: cannot write /%s", path, name);
    if (ds >= 0)
        H5Dclose(ds);
    if (sp >= 0)
        H5Sclose(sp);
    return rc;
}

typedef struct null_results {
    long N;
    double *rn;        /* [G][N] variogram nulls */
    double *rm;        /* [G][N] Moran nulls (regions) */
    double *vg;        /* [N][NH] surrogates' variograms */
    int *scale;        /* [N] chosen scale */
} null_results;

static int write_nulls_h5(const char *dir, const cstate *s, const gi_correlate_opts *o, const gi_smash *sm,
                          const null_results *nr, gi_err *err)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/nulls.h5", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    gi_h5_printer pr = gi_h5_quiet();
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        gi_h5_loud(pr);
        return gi_h5_fail(err, "%s: cannot create", tmp);
    }
    int rc = gi_h5_put_strings(f, tmp, "genes", s->atlas.genes, s->G, 0, err);
    if (rc == 0)
        rc = write_2d(f, tmp, "r", s->r, (hsize_t)s->G, 0, err);
    if (rc == 0)
        rc = write_2d(f, tmp, "r_null", nr->rn, (hsize_t)s->G, (hsize_t)nr->N, err);
    if (rc == 0 && nr->rm)
        rc = write_2d(f, tmp, "r_null_moran", nr->rm, (hsize_t)s->G, (hsize_t)nr->N, err);
    if (rc == 0)
        rc = write_2d(f, tmp, "variogram_h", sm->h, GI_NULLS_NH, 0, err);
    if (rc == 0)
        rc = write_2d(f, tmp, "variogram_map", sm->target, GI_NULLS_NH, 0, err);
    if (rc == 0)
        rc = write_2d(f, tmp, "variogram_nulls", nr->vg, (hsize_t)nr->N, GI_NULLS_NH, err);
    if (rc == 0) {
        double *sc = malloc(sizeof(double) * (size_t)nr->N);
        for (long k = 0; sc && k < nr->N; k++)
            sc[k] = nr->scale[k];
        rc = sc ? write_2d(f, tmp, "null_scale", sc, (hsize_t)nr->N, 0, err) : gi_fail(err, "out of memory");
        free(sc);
    }
    char blk[64];
    snprintf(blk, sizeof blk, "%dx%dx%d", s->f[0], s->f[1], s->f[2]);
    if (rc == 0)
        rc = gi_h5_put_attr_u64(f, tmp, "seed", o->seed, err);
    if (rc == 0)
        rc = gi_h5_put_attr_i64(f, tmp, "n_nulls", nr->N, err);
    if (rc == 0)
        rc = gi_h5_put_attr_i64(f, tmp, "n_units", s->n, err);
    if (rc == 0)
        rc = gi_h5_put_attr_str(f, tmp, "units", s->regions ? "regions" : "voxel blocks", err);
    if (rc == 0 && !s->regions)
        rc = gi_h5_put_attr_f64(f, tmp, "resolution_mm", o->resolution_mm, err);
    if (rc == 0 && !s->regions)
        rc = gi_h5_put_attr_str(f, tmp, "block_voxels", blk, err);
    if (rc == 0)
        rc = gi_h5_put_attr_str(f, tmp, "atlas", o->atlas, err);
    if (rc == 0)
        rc = gi_h5_put_attr_str(f, tmp, "map", o->map, err);
    if (rc == 0 && o->parcellation)
        rc = gi_h5_put_attr_str(f, tmp, "parcellation", o->parcellation, err);
    if (rc == 0)
        rc = gi_h5_put_attr_str(f, tmp, "null_method",
                                s->regions ? "Burt 2020 variogram-matched surrogates (points: exp kernel over k = "
                                             "0.1..0.9 n nearest regions) and Moran spectral randomisation "
                                             "(singleton, inverse-distance weights)"
                                           : "Burt 2020 variogram-matched surrogates (grid: Gaussian kernel "
                                             "exp(-1.25 (d/r)^2) over the (2r+1)^3 cube, r = null_scale)",
                                err);
    if (rc == 0)
        rc = gi_h5_put_attr_str(f, tmp, "geneinr_version", GENEINR_VERSION, err);
    if (H5Fclose(f) < 0 && rc == 0)
        rc = gi_h5_fail(err, "%s: cannot close", tmp);
    gi_h5_loud(pr);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = gi_fail(err, "%s: cannot rename to %s", tmp, path);
    if (rc != 0)
        gi_remove_partial(tmp);
    return rc;
}

typedef struct row {
    int g;
    double r, pn, ps, q, pm, qm;
    const char *name;
} row;

static int cmp_row(const void *a, const void *b)
{
    const row *x = a, *y = b;
    int nx = !isfinite(x->ps), ny = !isfinite(y->ps);
    if (nx != ny)
        return nx - ny;
    if (!nx && x->ps != y->ps)
        return x->ps < y->ps ? -1 : 1;
    /* equal p_spatial (all nulls beaten: 1 / (N + 1)): the stronger correlation first */
    if (!nx && fabs(x->r) != fabs(y->r))
        return fabs(x->r) > fabs(y->r) ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void fmt(char *b, size_t n, double v)
{
    if (isfinite(v))
        snprintf(b, n, "%.6g", v);
    else
        snprintf(b, n, "NA");
}

static int write_text_atomic(const char *dir, const char *name, const char *text, gi_err *err)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return gi_fail(err, "%s: cannot create", tmp);
    size_t len = strlen(text);
    int bad = fwrite(text, 1, len, f) != len;
    if (fclose(f) != 0 || bad) {
        gi_remove_partial(tmp);
        return gi_fail(err, "%s: cannot write (disk full?)", tmp);
    }
    if (rename(tmp, path) != 0) {
        gi_remove_partial(tmp);
        return gi_fail(err, "%s: cannot rename to %s", tmp, path);
    }
    return 0;
}

/* A gene set as read and matched to the atlas. */
typedef struct gset {
    char name[256];
    int n;                /* known genes with an r */
    int *g;
    double mean_r, p_res, p_sp;
} gset;

static int read_sets(const cstate *s, const gi_correlate_opts *o, gset *sets, char *note, size_t note_size,
                     gi_err *err)
{
    for (int i = 0; i < o->n_gene_sets; i++) {
        gi_genelist l;
        if (gi_genelist_read(&l, o->gene_sets[i], err) != 0)
            return gi_fail_prefix(err, "--gene-set: ");
        const char *base = strrchr(o->gene_sets[i], '/');
        base = base ? base + 1 : o->gene_sets[i];
        snprintf(sets[i].name, sizeof sets[i].name, "%.*s", (int)strcspn(base, "."), base);
        sets[i].g = malloc(sizeof(int) * (size_t)(l.n > 0 ? l.n : 1));
        if (!sets[i].g) {
            gi_genelist_free(&l);
            return gi_fail(err, "out of memory");
        }
        char unknown[1024] = "";
        int n_unknown = 0;
        for (int t = 0; t < l.n; t++) {
            int g = gi_atlas_gene_index(&s->atlas, l.names[t]);
            if (g >= 0) {
                sets[i].g[sets[i].n++] = g;
            } else {
                if (n_unknown < 20)
                    snprintf(unknown + strlen(unknown), sizeof unknown - strlen(unknown), "%s%s",
                             n_unknown ? ", " : "", l.names[t]);
                n_unknown++;
            }
        }
        gi_genelist_free(&l);
        if (n_unknown && strlen(note) + 200 < note_size)
            snprintf(note + strlen(note), note_size - strlen(note),
                     "gene set %s: %d of its symbols are not genes of the atlas (%s%s)\n", o->gene_sets[i], n_unknown,
                     unknown, n_unknown > 20 ? ", ..." : "");
        if (sets[i].n < 2)
            return gi_fail(err, "gene set %s: %d of its genes are in the atlas; at least 2 are needed", o->gene_sets[i],
                           sets[i].n);
    }
    return 0;
}

/* Phase 5: the set's mean r against random sets and against the spatial nulls. */
static void test_sets(const cstate *s, const null_results *nr, uint64_t seed, gset *sets, int n_sets)
{
    int G = s->G;
    int *avail = malloc(sizeof(int) * (size_t)G), *swaps = malloc(sizeof(int) * (size_t)G);
    if (!avail || !swaps) {   /* cannot happen at these sizes; NaN says it did */
        for (int i = 0; i < n_sets; i++)
            sets[i].p_res = sets[i].p_sp = sets[i].mean_r = NAN;
        free(avail);
        free(swaps);
        return;
    }
    int na = 0;
    for (int g = 0; g < G; g++)
        if (isfinite(s->r[g]))
            avail[na++] = g;
    for (int i = 0; i < n_sets; i++) {
        gset *t = &sets[i];
        /* genes without a correlation (constant) drop out */
        int m = 0;
        for (int j = 0; j < t->n; j++)
            if (isfinite(s->r[t->g[j]]))
                t->g[m++] = t->g[j];
        t->n = m;
        double sum = 0;
        for (int j = 0; j < m; j++)
            sum += s->r[t->g[j]];
        t->mean_r = m ? sum / m : NAN;
        if (m == 0 || m > na) {
            t->p_res = t->p_sp = NAN;
            continue;
        }
        double obs = fabs(t->mean_r);
        long hits = 0;
        for (long d = 0; d < GI_CORRELATE_RESAMPLES; d++) {
            /* partial Fisher-Yates over a copy's first m places, undone after */
            double rs = 0;
            int ms = m;
            for (int j = 0; j < ms; j++) {
                uint64_t c = ((uint64_t)i << 56) | ((uint64_t)d << 24) | (uint64_t)j;   /* j < 2^24 genes */
                int pick = j + (int)gi_rng_below(seed, STREAM_RESAMPLE, c, (uint64_t)(na - j));
                swaps[j] = pick;
                int tmp = avail[j];
                avail[j] = avail[pick];
                avail[pick] = tmp;
                rs += s->r[avail[j]];
            }
            for (int j = ms - 1; j >= 0; j--) {
                int tmp = avail[j];
                avail[j] = avail[swaps[j]];
                avail[swaps[j]] = tmp;
            }
            if (fabs(rs / ms) >= obs)
                hits++;
        }
        t->p_res = (1.0 + hits) / (1.0 + GI_CORRELATE_RESAMPLES);
        hits = 0;
        for (long k = 0; k < nr->N; k++) {
            double sn = 0;
            for (int j = 0; j < m; j++)
                sn += nr->rn[(long)t->g[j] * nr->N + k];
            if (fabs(sn / m) >= obs)
                hits++;
        }
        t->p_sp = (1.0 + hits) / (1.0 + nr->N);
    }
    free(avail);
    free(swaps);
}

static double pval(const double *rn, long N, double r)
{
    if (!isfinite(r))
        return NAN;
    long hits = 0;
    for (long k = 0; k < N; k++)
        if (fabs(rn[k]) >= fabs(r))
            hits++;
    return (1.0 + hits) / (1.0 + N);
}

/* Phase 6 (rank 0): tables, nulls.h5, report. */
static int write_outputs(const cstate *s, const gi_correlate_opts *o, const gi_smash *sm, const null_results *nr,
                         gset *sets, gi_correlate_summary *sum, gi_err *err)
{
    const int G = s->G;
    const long N = nr->N;
    row *rows = malloc(sizeof(row) * (size_t)G);
    double *ps = malloc(sizeof(double) * (size_t)G), *q = malloc(sizeof(double) * (size_t)G);
    double *pm = malloc(sizeof(double) * (size_t)G), *qm = malloc(sizeof(double) * (size_t)G);
    if (!rows || !ps || !q || !pm || !qm) {
        free(rows);
        free(ps);
        free(q);
        free(pm);
        free(qm);
        return gi_fail(err, "out of memory");
    }
    for (int g = 0; g < G; g++) {
        ps[g] = pval(nr->rn + (long)g * N, N, s->r[g]);
        pm[g] = nr->rm ? pval(nr->rm + (long)g * N, N, s->r[g]) : NAN;
    }
    gi_corr_bh(ps, G, q);
    gi_corr_bh(pm, G, qm);
    for (int g = 0; g < G; g++)
        rows[g] = (row){g, s->r[g], gi_corr_p_naive(s->r[g], s->ng[g]), ps[g], q[g], pm[g], qm[g], s->atlas.genes[g]};
    qsort(rows, (size_t)G, sizeof(row), cmp_row);
    gi_strbuf b = {0};
    gi_strbuf_add(&b, "gene,r,p_naive,p_spatial,q_spatial%s\n", nr->rm ? ",p_moran,q_moran" : "");
    for (int i = 0; i < G; i++) {
        char f1[32], f2[32], f3[32], f4[32], f5[32], f6[32];
        fmt(f1, sizeof f1, rows[i].r);
        fmt(f2, sizeof f2, rows[i].pn);
        fmt(f3, sizeof f3, rows[i].ps);
        fmt(f4, sizeof f4, rows[i].q);
        fmt(f5, sizeof f5, rows[i].pm);
        fmt(f6, sizeof f6, rows[i].qm);
        /* a symbol with a comma or quote is quoted (RFC 4180) */
        if (strpbrk(rows[i].name, ",\"")) {
            gi_strbuf_add(&b, "\"");
            for (const char *c = rows[i].name; *c; c++)
                gi_strbuf_add(&b, *c == '"' ? "\"\"" : "%c", *c);
            gi_strbuf_add(&b, "\"");
        } else {
            gi_strbuf_add(&b, "%s", rows[i].name);
        }
        gi_strbuf_add(&b, ",%s,%s,%s,%s", f1, f2, f3, f4);
        if (nr->rm)
            gi_strbuf_add(&b, ",%s,%s", f5, f6);
        gi_strbuf_add(&b, "\n");
    }
    int rc = b.oom ? gi_fail(err, "out of memory") : write_text_atomic(o->out, "correlations.csv", b.s, err);
    gi_strbuf sets_html = {0};
    if (rc == 0 && o->n_gene_sets > 0) {
        test_sets(s, nr, o->seed, sets, o->n_gene_sets);
        gi_strbuf c = {0};
        gi_strbuf_add(&c, "set,n_genes,mean_r,p_gene_resampling,p_spatial\n");
        gi_strbuf_add(&sets_html, "<table><tr><th>set</th><th>genes</th><th>mean r</th><th>p (gene resampling)</th>"
                           "<th>p (spatial nulls)</th></tr>\n");
        for (int i = 0; i < o->n_gene_sets; i++) {
            char f1[32], f2[32], f3[32];
            fmt(f1, sizeof f1, sets[i].mean_r);
            fmt(f2, sizeof f2, sets[i].p_res);
            fmt(f3, sizeof f3, sets[i].p_sp);
            gi_strbuf_add(&c, "%s,%d,%s,%s,%s\n", sets[i].name, sets[i].n, f1, f2, f3);
            gi_strbuf_add(&sets_html, "<tr><td>");
            gi_strbuf_html(&sets_html, sets[i].name);
            gi_strbuf_add(&sets_html, "</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", sets[i].n, f1, f2, f3);
        }
        gi_strbuf_add(&sets_html, "</table>\n");
        rc = c.oom ? gi_fail(err, "out of memory") : write_text_atomic(o->out, "gene_sets.csv", c.s, err);
        free(c.s);
    }
    if (rc == 0)
        rc = write_nulls_h5(o->out, s, o, sm, nr, err);
    /* the report */
    int n_top = o->top_genes < G ? o->top_genes : G;
    while (n_top > 0 && !isfinite(rows[n_top - 1].r))
        n_top--;
    const char **names = malloc(sizeof(char *) * (size_t)G);
    double *rr = malloc(sizeof(double) * (size_t)G * 4);
    double *top_null = malloc(sizeof(double) * (size_t)(n_top > 0 ? n_top : 1) * (size_t)N);
    if (rc == 0 && (!names || !rr || !top_null))
        rc = gi_fail(err, "out of memory");
    if (rc == 0) {
        for (int i = 0; i < G; i++) {
            names[i] = rows[i].name;
            rr[i] = rows[i].r;
            rr[G + i] = rows[i].pn;
            rr[2 * G + i] = rows[i].ps;
            rr[3 * G + i] = rows[i].q;
        }
        for (int t = 0; t < n_top; t++)
            memcpy(top_null + (long)t * N, nr->rn + (long)rows[t].g * N, sizeof(double) * (size_t)N);
        gi_strbuf st = {0};
        gi_strbuf_add(&st, "<ul><li>atlas: <code>");
        gi_strbuf_html(&st, o->atlas);
        gi_strbuf_add(&st, "</code> (%d genes)</li><li>map: <code>", G);
        gi_strbuf_html(&st, o->map);
        gi_strbuf_add(&st, "</code>, %.1f%% of the atlas mask</li>", 100 * s->share);
        if (s->regions) {
            gi_strbuf_add(&st, "<li>units: %d regions of <code>", s->n);
            gi_strbuf_html(&st, o->parcellation);
            gi_strbuf_add(&st, "</code> (region means)</li>");
        } else {
            gi_strbuf_add(&st, "<li>units: %d blocks of %dx%dx%d atlas voxels (resolution %g mm; 0 = the atlas's voxels)</li>",
                   s->n, s->f[0], s->f[1], s->f[2], o->resolution_mm);
        }
        gi_strbuf_add(&st, "<li>nulls: %ld variogram-matched surrogates (Burt 2020)%s, seed %llu</li></ul>", N,
               nr->rm ? " and as many Moran spectral randomisations" : "", (unsigned long long)o->seed);
        gi_corr_report rep = {
            .dir = o->out, .atlas_path = o->atlas, .map_path = o->map, .settings_html = st.s,
            .nx = s->atlas.nx, .ny = s->atlas.ny, .nz = s->atlas.nz, .affine = s->atlas.affine,
            .mask = s->atlas.mask, .map_vol = s->mapv, .n_genes = G, .genes = names, .r = rr,
            .p_naive = rr + G, .p_spatial = rr + 2 * G, .q = rr + 3 * G, .n_top = n_top, .r_null_top = top_null,
            .n_nulls = N, .nh = GI_NULLS_NH, .vh = sm->h, .vmap = sm->target, .vnull = nr->vg,
            .sets_html = o->n_gene_sets ? sets_html.s : NULL,
        };
        rc = st.oom ? gi_fail(err, "out of memory") : gi_corr_report_write(&rep, err);
        free(st.s);
    }
    if (rc == 0 && G > 0 && isfinite(rows[0].r)) {
        snprintf(sum->top_gene, sizeof sum->top_gene, "%s", rows[0].name);
        sum->top_r = rows[0].r;
        sum->top_p = rows[0].ps;
    }
    free(names);
    free(rr);
    free(top_null);
    free(sets_html.s);
    free(b.s);
    free(rows);
    free(ps);
    free(q);
    free(pm);
    free(qm);
    return rc;
}

/* ------------------------------------------------------------ the run */

static const char *FIXED_OUTPUTS[] = {"correlations.csv", "nulls.h5", "gene_sets.csv",
                                      /* written by the report; checked here, before the work */
                                      "report.html", "figures/map.png", "figures/variogram.png"};

int gi_correlate_run(MPI_Comm comm, const gi_correlate_opts *o, gi_correlate_summary *sum, gi_err *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    memset(sum, 0, sizeof *sum);
    cstate s;
    memset(&s, 0, sizeof s);
    gset sets[GI_CORRELATE_MAX_SETS];
    memset(sets, 0, sizeof sets);
    gi_smash sm;
    gi_moran mo;
    memset(&sm, 0, sizeof sm);
    memset(&mo, 0, sizeof mo);
    null_results nr = {0};
    int rc = 0;

    /* 1. set-up: the folder is free for our outputs, the atlas, the map */
    if (rank == 0)
        rc = gi_manifest_check_free_in(o->out, FIXED_OUTPUTS, 6, "correlate", err);
    if (gi_dist_agree(comm, rc, err) != 0)
        return -1;
    rc = gi_atlas_open(&s.atlas, o->atlas, err);
    s.atlas_open = rc == 0;
    if (rc == 0)
        rc = read_sets(&s, o, sets, sum->note, sizeof sum->note, err);
    if (rc == 0)
        rc = resample_map(&s, o->map, err);
    /* 2. units */
    if (rc == 0)
        rc = o->parcellation ? units_regions(&s, o->parcellation, err) : units_voxels(&s, o->resolution_mm, err);
    if (rc == 0) {
        s.x = malloc(sizeof(double) * (size_t)s.n);
        if (!s.x)
            rc = gi_fail(err, "out of memory");
        double lo = INFINITY, hi = -INFINITY;
        for (int u = 0; rc == 0 && u < s.n; u++) {
            s.x[u] = unit_mean(&s, s.mapv, u);
            lo = fmin(lo, s.x[u]);
            hi = fmax(hi, s.x[u]);
        }
        if (rc == 0 && !(hi > lo))
            rc = gi_fail(err, "%s is constant (%g) over the atlas mask: nothing to correlate", o->map, lo);
    }
    if (gi_dist_agree(comm, rc, err) != 0)
        goto done;
    if (read_genes(comm, &s, err) != 0) {
        rc = -1;
        goto done;
    }
    /* 3. observed r */
    rc = standardise(&s, err);
    if (rc == 0)
        correlate_all(&s, s.x, s.r);
    /* 4. nulls */
    if (rc == 0)
        rc = s.regions ? gi_smash_init_points(&sm, s.n, s.xyz, s.x, o->seed, err)
                       : gi_smash_init_grid(&sm, s.n, s.ijk,
                                            (double[9]){s.atlas.affine[0] * s.f[0], s.atlas.affine[1] * s.f[1],
                                                        s.atlas.affine[2] * s.f[2], s.atlas.affine[4] * s.f[0],
                                                        s.atlas.affine[5] * s.f[1], s.atlas.affine[6] * s.f[2],
                                                        s.atlas.affine[8] * s.f[0], s.atlas.affine[9] * s.f[1],
                                                        s.atlas.affine[10] * s.f[2]},
                                            s.x, o->seed, err);
    if (rc == 0 && s.regions)
        rc = gi_moran_init(&mo, s.n, s.xyz, s.x, o->seed, err);
    if (gi_dist_agree(comm, rc, err) != 0)
        goto done;
    {
        const long N = o->n_nulls;
        const int G = s.G;
        long lo, hi;
        gi_share(N, rank, size, &lo, &hi);
        long nl = hi - lo;
        double *rl = malloc(sizeof(double) * (size_t)(nl > 0 ? nl : 1) * G * (s.regions ? 2 : 1));
        double *vl = malloc(sizeof(double) * (size_t)(nl > 0 ? nl : 1) * GI_NULLS_NH);
        int *scl = malloc(sizeof(int) * (size_t)(nl > 0 ? nl : 1));
        double *work = malloc(sizeof(double) * (size_t)gi_smash_work_size(&sm));
        double *sur = malloc(sizeof(double) * (size_t)s.n * BATCH);
        rc = rl && vl && scl && work && sur ? 0 : gi_fail(err, "out of memory (nulls)");
        double t0 = MPI_Wtime();
        for (long k0 = lo; rc == 0 && k0 < hi; k0 += BATCH) {
            long kb = hi - k0 < BATCH ? hi - k0 : BATCH;
            for (long b = 0; b < kb; b++)
                gi_smash_surrogate(&sm, k0 + b, sur + b * s.n, work, &scl[k0 - lo + b], vl + (k0 - lo + b) * GI_NULLS_NH);
            for (long b = 0; b < kb; b++)
                correlate_all(&s, sur + b * s.n, rl + (k0 - lo + b) * G);
            if (s.regions)
                for (long b = 0; b < kb; b++) {
                    gi_moran_surrogate(&mo, k0 + b, sur);
                    correlate_all(&s, sur, rl + (nl + k0 - lo + b) * G);
                }
        }
        free(work);
        free(sur);
        if (gi_dist_agree(comm, rc, err) != 0) {
            free(rl);
            free(vl);
            free(scl);
            goto done;
        }
        MPI_Barrier(comm);
        sum->seconds_nulls = MPI_Wtime() - t0;
        /* gather in null order to rank 0 */
        int *cnt = malloc(sizeof(int) * (size_t)size * 3), *dsp = cnt ? cnt + size : NULL, *cs = cnt ? cnt + 2 * size : NULL;
        double *all = NULL, *allm = NULL;
        if (rank == 0) {
            all = malloc(sizeof(double) * (size_t)N * G);
            allm = s.regions ? malloc(sizeof(double) * (size_t)N * G) : NULL;
            nr.vg = malloc(sizeof(double) * (size_t)N * GI_NULLS_NH);
            nr.scale = malloc(sizeof(int) * (size_t)N);
            nr.rn = malloc(sizeof(double) * (size_t)N * G);
            nr.rm = s.regions ? malloc(sizeof(double) * (size_t)N * G) : NULL;
            rc = all && nr.vg && nr.scale && nr.rn && (!s.regions || (allm && nr.rm)) ? 0 : -1;
        }
        rc = cnt ? rc : -1;
        if (gi_dist_agree(comm, rc ? gi_fail(err, "out of memory (gathering the nulls)") : 0, err) != 0) {
            free(rl);
            free(vl);
            free(scl);
            free(cnt);
            free(all);
            free(allm);
            goto done;
        }
        for (int p = 0; p < size; p++) {
            long a, bb;
            gi_share(N, p, size, &a, &bb);
            cnt[p] = (int)((bb - a) * G);
            dsp[p] = (int)(a * G);
            cs[p] = (int)(bb - a);
        }
        MPI_Gatherv(rl, (int)(nl * G), MPI_DOUBLE, all, cnt, dsp, MPI_DOUBLE, 0, comm);
        if (s.regions)
            MPI_Gatherv(rl + nl * G, (int)(nl * G), MPI_DOUBLE, allm, cnt, dsp, MPI_DOUBLE, 0, comm);
        for (int p = 0; p < size; p++) {
            cnt[p] = cs[p] * GI_NULLS_NH;
            long a, bb;
            gi_share(N, p, size, &a, &bb);
            dsp[p] = (int)(a * GI_NULLS_NH);
        }
        MPI_Gatherv(vl, (int)(nl * GI_NULLS_NH), MPI_DOUBLE, nr.vg, cnt, dsp, MPI_DOUBLE, 0, comm);
        for (int p = 0; p < size; p++) {
            long a, bb;
            gi_share(N, p, size, &a, &bb);
            dsp[p] = (int)a;
        }
        MPI_Gatherv(scl, (int)nl, MPI_INT, nr.scale, cs, dsp, MPI_INT, 0, comm);
        free(rl);
        free(vl);
        free(scl);
        free(cnt);
        if (rank == 0) {   /* [N][G] -> [G][N] */
            nr.N = N;
            for (long k = 0; k < N; k++)
                for (int g = 0; g < G; g++) {
                    nr.rn[(long)g * N + k] = all[k * G + g];
                    if (s.regions)
                        nr.rm[(long)g * N + k] = allm[k * G + g];
                }
        }
        free(all);
        free(allm);
    }
    /* 5, 6: statistics and outputs on rank 0 */
    rc = 0;
    if (rank == 0) {
        rc = gi_manifest_claim_in(o->out, FIXED_OUTPUTS, o->n_gene_sets ? 3 : 2, "correlate", err);
        if (rc == 0 && !o->n_gene_sets) {   /* a stale table of an earlier run with sets, if ours */
            int kept = 0;
            rc = gi_manifest_remove_in(o->out, "gene_sets.csv", NULL, &kept, err) < 0 ? -1 : 0;
        }
        if (rc == 0)
            rc = write_outputs(&s, o, &sm, &nr, sets, sum, err);
        if (rc == 0)
            rc = gi_manifest_commit_in(o->out, FIXED_OUTPUTS, o->n_gene_sets ? 3 : 2, err);
    }
    sum->n_genes = s.G;
    sum->n_units = s.n;
    memcpy(sum->block, s.f, sizeof s.f);
    sum->share = s.share;
    rc = gi_dist_agree(comm, rc, err);
done:
    for (int i = 0; i < GI_CORRELATE_MAX_SETS; i++)
        free(sets[i].g);
    free(nr.rn);
    free(nr.rm);
    free(nr.vg);
    free(nr.scale);
    gi_smash_free(&sm);
    gi_moran_free(&mo);
    cstate_free(&s);
    return rc;
}
