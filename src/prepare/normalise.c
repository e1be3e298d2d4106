/* normalise.c - prepare's phase 5: the scaled robust sigmoid across genes and
 * within donors (prep.h; gi_srs in prepare.h). */
#include "prep.h"

#include "geneinr/prepare.h"
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "geneinr/ahba.h"
#include "geneinr/csv.h"
#include "geneinr/genelist.h"
#include "geneinr/grow.h"
#include "geneinr/rng.h"
#include "geneinr/samples.h"

/* ------------------------------------------------------ 5. normalisation */

/* The k-th smallest of a[lo..hi] (inclusive; lo <= k <= hi), a reordered so
 * that a[lo..k) <= a[k] <= a(k..hi]. */
static double select_kth(double *a, int lo, int hi, int k)
{
    while (hi > lo) {
        int mid = lo + (hi - lo) / 2;
        double x = a[lo], y = a[mid], z = a[hi];
        double pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                double t = a[i];
                a[i] = a[j], a[j] = t;
                i++, j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

static double min_of(const double *a, int lo, int hi)   /* a[lo..hi), lo < hi */
{
    double m = a[lo];
    for (int i = lo + 1; i < hi; i++)
        if (a[i] < m)
            m = a[i];
    return m;
}

/* numpy's linear-interpolation 25th, 50th and 75th percentiles of a[0..n)
 * (NaN-free; a is reordered). The median is selected first; the quartiles
 * then only search their half, and the upper neighbour of each order
 * statistic is the minimum of the part between it and the next one. */
static void quartiles(double *a, int n, double *q1, double *med, double *q3)
{
    double h[3] = {(n - 1) * 0.25, (n - 1) * 0.5, (n - 1) * 0.75};
    int k[3] = {(int)floor(h[0]), (int)floor(h[1]), (int)floor(h[2])};
    double lo_v[3], hi_v[3];
    lo_v[1] = select_kth(a, 0, n - 1, k[1]);
    if (k[0] < k[1])
        lo_v[0] = select_kth(a, 0, k[1] - 1, k[0]);
    else
        lo_v[0] = lo_v[1];
    if (k[2] > k[1])
        lo_v[2] = select_kth(a, k[1] + 1, n - 1, k[2]);
    else
        lo_v[2] = lo_v[1];
    /* Upper neighbours (sorted position k + 1). The selected positions split
     * a into parts ordered by value, so the neighbour of k is the next selected
     * position p when p = k + 1, else the minimum of a(k..p). */
    int sel[3] = {k[0], k[1], k[2]};   /* ascending */
    for (int i = 0; i < 3; i++) {
        int p = n;
        for (int j = 0; j < 3; j++)
            if (sel[j] > k[i] && sel[j] < p)
                p = sel[j];
        if (k[i] + 1 >= n)
            hi_v[i] = lo_v[i];
        else if (k[i] + 1 == p)
            hi_v[i] = a[p];
        else
            hi_v[i] = min_of(a, k[i] + 1, p);
    }
    double out[3];
    for (int i = 0; i < 3; i++) {
        double frac = h[i] - k[i];
        out[i] = frac == 0 || k[i] + 1 >= n ? lo_v[i] : lo_v[i] + (hi_v[i] - lo_v[i]) * frac;
    }
    *q1 = out[0], *med = out[1], *q3 = out[2];
}

void gi_srs(double *v, int n, const unsigned char *fit, double *tmp)
{
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!fit || fit[i])
            tmp[m++] = v[i];
    if (m == 0) {
        for (int i = 0; i < n; i++)
            v[i] = NAN;
        return;
    }
    for (int i = 0; i < m; i++)
        if (isnan(tmp[i])) {
            for (int j = 0; j < n; j++)
                v[j] = NAN;
            return;
        }
    double q1, med, q3;
    quartiles(tmp, m, &q1, &med, &q3);
    double s = (q3 - q1) / 1.3489795003921634;
    /* numpy's min and max propagate NaN (an IQR of 0 gives 0/0 at the median) */
    double lo = INFINITY, hi = -INFINITY;
    int any_nan = 0;
    for (int i = 0; i < n; i++) {
        double y = 1.0 / (1.0 + exp(-(v[i] - med) / s));
        v[i] = y;
        if (fit && !fit[i])
            continue;
        if (isnan(y))
            any_nan = 1;
        else if (y < lo)
            lo = y;
        if (y > hi)
            hi = y;
    }
    if (any_nan)
        lo = hi = NAN;
    for (int i = 0; i < n; i++)
        v[i] = (v[i] - lo) / (hi - lo);
}

void prep_srs_samples_range(void *ctx, int lo, int hi)
{
    norm_ctx *c = ctx;
    double *tmp = malloc((size_t)c->G * sizeof *tmp);
    if (!tmp) {
        atomic_store(&c->oom, 1);
        return;
    }
    for (int s = lo; s < hi; s++)
        gi_srs(c->X + (size_t)s * c->G, c->G, NULL, tmp);
    free(tmp);
}

/* Within-donor SRS of genes [lo, hi): c->X is gene-major here, [G][n]. */
void prep_srs_genes_range(void *ctx, int lo, int hi)
{
    norm_ctx *c = ctx;
    int n = c->D->n;
    double *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp) {
        atomic_store(&c->oom, 1);
        return;
    }
    for (int g = lo; g < hi; g++)
        gi_srs(c->X + (size_t)g * n, n, c->fit, tmp);
    free(tmp);
}

/* dst[c][r] = src[r][c] for a rows x cols matrix, in cache-sized blocks. */
void prep_transpose(const double *src, double *dst, int rows, int cols)
{
    enum { B = 32 };
    for (int r0 = 0; r0 < rows; r0 += B)
        for (int c0 = 0; c0 < cols; c0 += B) {
            int r1 = r0 + B < rows ? r0 + B : rows, c1 = c0 + B < cols ? c0 + B : cols;
            for (int r = r0; r < r1; r++)
                for (int c = c0; c < c1; c++)
                    dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
        }
}

