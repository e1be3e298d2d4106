/* test_correlate.c - the statistics of `geneinr correlate` (naive p, Benjamini-Hochberg, checked
 * against scipy's values) and the null maps of nulls.h: surrogates reproducible from (seed, k),
 * demeaned, with the map's variogram; Moran surrogates keep the map's norm. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "geneinr/correlate.h"
#include "geneinr/nulls.h"
#include "geneinr/rng.h"

static void test_p_naive(void)
{
    /* scipy.stats: 2 * t.sf(|t|, n - 2), t = r sqrt((n - 2) / (1 - r^2)) */
    CHECKF(fabs(gi_corr_p_naive(0.5, 10) - 0.14111328125) < 1e-9, "p_naive r 0.5, n 10", "%.12g",
           gi_corr_p_naive(0.5, 10));
    CHECKF(fabs(gi_corr_p_naive(0.3, 50) - 0.03428618003293) < 1e-9, "p_naive r 0.3, n 50", "%.12g",
           gi_corr_p_naive(0.3, 50));
    CHECKF(fabs(gi_corr_p_naive(-0.05, 2000) - 0.02534727432661) < 1e-9, "p_naive r -0.05, n 2000", "%.12g",
           gi_corr_p_naive(-0.05, 2000));
    CHECK(gi_corr_p_naive(1.0, 10) == 0 && isnan(gi_corr_p_naive(NAN, 10)) && isnan(gi_corr_p_naive(0.5, 2)),
          "p_naive edge cases");
}

static void test_bh(void)
{
    double p[5] = {0.01, 0.04, 0.03, 0.5, NAN}, q[5];
    gi_corr_bh(p, 5, q);
    CHECKF(fabs(q[0] - 0.04) < 1e-12 && fabs(q[1] - 0.04 * 4 / 3) < 1e-12 && fabs(q[2] - 0.04 * 4 / 3) < 1e-12 &&
               fabs(q[3] - 0.5) < 1e-12 && isnan(q[4]),
           "Benjamini-Hochberg (NaN left out)", "%g %g %g %g %g", q[0], q[1], q[2], q[3], q[4]);
}

/* A smooth field on a 24^3 grid inside a ball (4 mm voxels): a sum of a few cosines. */
static int ball_map(int **ijk, double **x)
{
    int n = 0, N = 24;
    *ijk = malloc(sizeof(int) * 3 * N * N * N);
    *x = malloc(sizeof(double) * N * N * N);
    for (int k = 0; k < N; k++)
        for (int j = 0; j < N; j++)
            for (int i = 0; i < N; i++) {
                double dx = i - 11.5, dy = j - 11.5, dz = k - 11.5;
                if (dx * dx + dy * dy + dz * dz > 11.5 * 11.5)
                    continue;
                (*ijk)[3 * n] = i;
                (*ijk)[3 * n + 1] = j;
                (*ijk)[3 * n + 2] = k;
                (*x)[n] = cos(0.35 * i + 0.2 * j) + 0.8 * sin(0.3 * k - 0.25 * i) +
                          0.3 * gi_rng_normal(5, 9, (uint64_t)n);
                n++;
            }
    return n;
}

static void test_grid_surrogates(void)
{
    int *ijk;
    double *x;
    int n = ball_map(&ijk, &x);
    double lin[9] = {4, 0, 0, 0, 4, 0, 0, 0, 4};
    gi_smash s;
    gi_err err = {{0}};
    int rc = gi_smash_init_grid(&s, n, ijk, lin, x, 42, &err);
    CHECKF(rc == 0, "grid surrogates set up", "%s", err.msg);
    if (rc != 0)
        return;
    double *work = malloc(sizeof(double) * (size_t)gi_smash_work_size(&s));
    double *a = malloc(sizeof(double) * n), *b = malloc(sizeof(double) * n), *c = malloc(sizeof(double) * n);
    gi_smash_surrogate(&s, 3, a, work, NULL, NULL);
    gi_smash_surrogate(&s, 4, c, work, NULL, NULL);
    gi_smash_surrogate(&s, 3, b, work, NULL, NULL);
    CHECK(!memcmp(a, b, sizeof(double) * n), "surrogate k is a function of (seed, k)");
    CHECK(memcmp(a, c, sizeof(double) * n) != 0, "surrogates differ between k");
    double mean = 0;
    for (int i = 0; i < n; i++)
        mean += a[i];
    CHECKF(fabs(mean / n) < 1e-9, "surrogates are demeaned", "%g", mean / n);
    /* variogram: the median over 40 surrogates within 10% of the map's (mean absolute deviation / mean) */
    enum { K = 40 };
    double v[K][GI_NULLS_NH];
    for (int k = 0; k < K; k++)
        gi_smash_surrogate(&s, k, a, work, NULL, v[k]);
    double dev = 0, tot = 0;
    for (int h = 0; h < GI_NULLS_NH; h++) {
        double col[K];
        for (int k = 0; k < K; k++)
            col[k] = v[k][h];
        for (int i = 1; i < K; i++)   /* insertion sort */
            for (int j = i; j > 0 && col[j] < col[j - 1]; j--) {
                double t = col[j];
                col[j] = col[j - 1];
                col[j - 1] = t;
            }
        dev += fabs(0.5 * (col[K / 2 - 1] + col[K / 2]) - s.target[h]);
        tot += s.target[h];
    }
    CHECKF(dev / tot < 0.10, "grid surrogates match the map's variogram within 10%", "deviation %.3f", dev / tot);
    free(work);
    free(a);
    free(b);
    free(c);
    gi_smash_free(&s);
    free(ijk);
    free(x);
}

static void test_points_and_moran(void)
{
    enum { N = 80 };
    double xyz[3 * N], x[N];
    for (int i = 0; i < N; i++) {
        for (int c = 0; c < 3; c++)
            xyz[3 * i + c] = 100 * gi_rng_uniform(3, 1, 3 * (uint64_t)i + c);
        x[i] = xyz[3 * i] / 30 + sin(xyz[3 * i + 1] / 20) + 0.2 * gi_rng_normal(3, 2, (uint64_t)i);
    }
    gi_smash s;
    gi_err err = {{0}};
    int rc = gi_smash_init_points(&s, N, xyz, x, 7, &err);
    CHECKF(rc == 0, "region surrogates set up", "%s", err.msg);
    if (rc == 0) {
        double *work = malloc(sizeof(double) * (size_t)gi_smash_work_size(&s)), a[N], b[N];
        gi_smash_surrogate(&s, 11, a, work, NULL, NULL);
        gi_smash_surrogate(&s, 11, b, work, NULL, NULL);
        CHECK(!memcmp(a, b, sizeof a), "region surrogate k is a function of (seed, k)");
        free(work);
        gi_smash_free(&s);
    }
    gi_moran m;
    rc = gi_moran_init(&m, N, xyz, x, 7, &err);
    CHECKF(rc == 0, "Moran eigenvectors (LAPACK dsyev)", "%s", err.msg);
    if (rc != 0)
        return;
    double a[N], mean = 0, n0 = 0, n1 = 0, dif = 0;
    gi_moran_surrogate(&m, 5, a);
    for (int i = 0; i < N; i++)
        mean += x[i];
    mean /= N;
    for (int i = 0; i < N; i++) {
        n0 += (x[i] - mean) * (x[i] - mean);
        n1 += a[i] * a[i];
        dif += fabs(a[i] - (x[i] - mean));
    }
    CHECKF(fabs(n0 - n1) < 1e-8 * n0, "Moran surrogates keep the map's norm", "%g vs %g", n0, n1);
    CHECK(dif > 1e-3, "Moran surrogates differ from the map");
    gi_moran_free(&m);
    double same[3 * 4] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2};
    CHECK(gi_moran_init(&m, 4, same, x, 1, &err) != 0 && strstr(err.msg, "same centroid"),
          "Moran: coincident centroids are an error");
    gi_moran_free(&m);
}

int main(void)
{
    test_p_naive();
    test_bh();
    test_grid_surrogates();
    test_points_and_moran();
    return check_summary();
}
