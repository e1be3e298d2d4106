/* test_baselines.c - the standard interpolators behind method.h.
 *
 * IDW against a fixture worked by hand (abagen's rule: k nearest measured
 * samples, weights 1/d, zero-distance samples alone and equally), the grid
 * k-nearest search against brute force, and the kriging fit recovering the
 * known covariance parameters of simulated Gaussian fields within 10%.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "geneinr/knn.h"
#include "geneinr/kriging.h"
#include "geneinr/method.h"
#include "geneinr/rng.h"

void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda, double *b,
             const int *ldb, int *info);

static gi_method_opts opts(void)
{
    gi_method_opts o;
    memset(&o, 0, sizeof o);
    o.idw_k = 10;
    o.covariance = GI_COV_EXPONENTIAL;
    o.fit_samples = 0;
    o.label_shrink = 0;
    o.seed = 1;
    o.comm = MPI_COMM_SELF;
    return o;
}

static void test_idw_fixture(void)
{
    /* Five samples, two genes; gene 1 not measured at sample 1. Sample 4 sits
     * on sample 0 (as abagen's mirrored duplicates do). */
    const float mni[5][3] = {{0, 0, 0}, {3, 0, 0}, {0, 4, 0}, {10, 0, 0}, {0, 0, 0}};
    const float y[5][2] = {{1, 10}, {4, NAN}, {5, 20}, {7, 30}, {3, 40}};
    gi_fit_data d = {.n = 5, .n_genes = 2, .mni = &mni[0][0], .y = &y[0][0]};
    gi_method_opts o = opts();
    gi_err err;
    o.idw_k = 3;
    gi_method *m = gi_method_fit(GI_METHOD_IDW, &o, &d, &err);
    CHECK(m != NULL, "idw fits a 5-sample fixture");
    if (!m)
        return;
    const float q[3][3] = {{1, 0, 0}, {0, 0, 0}, {100, 0, 0}};
    float out[3][2];
    CHECK(gi_method_predict(m, 3, &q[0][0], NULL, &out[0][0], &err) == 0, "idw predicts");
    /* (1,0,0), k = 3: samples 0 and 4 at d 1, sample 1 at d 2 (gene 0);
     * gene 1 skips sample 1 and takes sample 2 at d sqrt(17). */
    double e0 = (1.0 / 1 + 3.0 / 1 + 4.0 / 2) / (1.0 + 1.0 + 0.5);
    double s17 = sqrt(17.0);
    double e1 = (10.0 / 1 + 40.0 / 1 + 20.0 / s17) / (1.0 + 1.0 + 1.0 / s17);
    CHECKF(fabs(out[0][0] - e0) < 1e-5 && fabs(out[0][1] - e1) < 1e-5, "idw: 1/d weights of the k nearest measured samples",
           "got %g %g, want %g %g", out[0][0], out[0][1], e0, e1);
    /* On a sample: only the zero-distance samples count, equally (1 and 3). */
    CHECKF(fabs(out[1][0] - 2.0f) < 1e-6 && fabs(out[1][1] - 25.0f) < 1e-6,
           "idw: zero-distance samples alone, averaged", "got %g %g", out[1][0], out[1][1]);
    /* Far away (x = 100): k = 3 nearest are 3 (d 90), 1 (d 97), then 0/4 tie at d 100 -> index 0. */
    double f0 = (7.0 / 90 + 4.0 / 97 + 1.0 / 100) / (1.0 / 90 + 1.0 / 97 + 1.0 / 100);
    CHECKF(fabs(out[2][0] - f0) < 1e-5, "idw: ties at the k-th distance broken by sample order", "got %g want %g",
           out[2][0], f0);
    gi_method_free(m);

    m = gi_method_fit(GI_METHOD_NEAREST, &o, &d, &err);
    CHECK(m && gi_method_predict(m, 3, &q[0][0], NULL, &out[0][0], &err) == 0, "nearest fits and predicts");
    CHECKF(m && out[0][0] == 1 && out[0][1] == 10 && out[2][0] == 7 && out[2][1] == 30,
           "nearest: value of the nearest measured sample", "got %g %g %g %g", out[0][0], out[0][1], out[2][0], out[2][1]);
    gi_method_free(m);
}

static void test_knn(void)
{
    enum { N = 700, Q = 200, K = 12 };
    float *p = malloc(sizeof(float) * 3 * N);
    for (int i = 0; i < 3 * N; i++)
        p[i] = (float)(100 * gi_rng_uniform(7, 1, (uint64_t)i) - 50) * (i % 3 == 2 ? 0.3f : 1.0f);
    gi_knn t;
    CHECK(gi_knn_build(&t, p, N) == 0, "knn index builds");
    int bad = 0, idx[K];
    double dist[K];
    for (int q = 0; q < Q; q++) {
        double x[3];
        for (int a = 0; a < 3; a++)
            x[a] = 140 * gi_rng_uniform(7, 2, (uint64_t)(3 * q + a)) - 70;
        int m = gi_knn_query(&t, x, K, idx, dist);
        /* brute force k-th distance */
        double best[K];
        for (int j = 0; j < K; j++) best[j] = INFINITY;
        for (int i = 0; i < N; i++) {
            double dx = p[3 * i] - x[0], dy = p[3 * i + 1] - x[1], dz = p[3 * i + 2] - x[2];
            double d = sqrt(dx * dx + dy * dy + dz * dz);
            for (int j = 0; j < K; j++)
                if (d < best[j]) {
                    memmove(best + j + 1, best + j, sizeof(double) * (K - 1 - j));
                    best[j] = d;
                    break;
                }
        }
        if (m != K)
            bad++;
        for (int j = 0; j < K && m == K; j++)
            if (fabs(dist[j] - best[j]) > 1e-9)
                bad++;
    }
    CHECKF(bad == 0, "knn grid search equals brute force (200 queries, some outside the points' box)", "%d mismatches", bad);
    gi_knn_free(&t);
    free(p);
}

/* G independent Gaussian fields at n random points with covariance
 * sill * rho(h / range) + nugget * delta. */
static void simulate(int cov, int n, int G, double extent, double range, double sill, double nugget, float *pts,
                     float *y)
{
    for (int i = 0; i < 3 * n; i++)
        pts[i] = (float)(extent * gi_rng_uniform(11, 1, (uint64_t)i));
    double *C = malloc(sizeof(double) * (size_t)n * n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double dx = pts[3 * i] - pts[3 * j], dy = pts[3 * i + 1] - pts[3 * j + 1], dz = pts[3 * i + 2] - pts[3 * j + 2];
            C[(size_t)i * n + j] = sill * gi_cov_rho(cov, sqrt(dx * dx + dy * dy + dz * dz), range);
        }
    int info;
    dpotrf_("U", &n, C, &n, &info); /* column-major upper = row-major lower: C = L L^T, L[i][j] = C[i*n+j], j <= i */
    for (int g = 0; g < G; g++) {
        double *z = malloc(sizeof(double) * n);
        for (int i = 0; i < n; i++)
            z[i] = gi_rng_normal(11, 2 + g, (uint64_t)i);
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int j = 0; j <= i; j++)
                s += C[(size_t)i * n + j] * z[j];
            y[(size_t)i * G + g] = (float)(3.0 + s + sqrt(nugget) * gi_rng_normal(11, 100 + g, (uint64_t)i));
        }
        free(z);
    }
    free(C);
}

static void test_kriging_recovery(int cov, const char *name, int per_gene)
{
    enum { N = 900, G = 32 };
    const double range = 12, sill = 1.0, nugget = 0.25;
    float *pts = malloc(sizeof(float) * 3 * N), *y = malloc(sizeof(float) * N * G);
    simulate(cov, N, G, 85, range, sill, nugget, pts, y);
    y[5 * G + 1] = NAN; /* a few unmeasured values, as in real data */
    y[17 * G + 3] = NAN;
    y[400 * G + 3] = NAN;
    gi_fit_data d = {.n = N, .n_genes = G, .mni = pts, .y = y};
    gi_method_opts o = opts();
    o.covariance = cov;
    o.per_gene = per_gene;
    gi_err err;
    gi_method *m = gi_method_fit(GI_METHOD_KRIGING, &o, &d, &err);
    char nm[160];
    snprintf(nm, sizeof nm, "kriging (%s, %s) fits %d samples x %d genes", name, per_gene ? "per gene" : "shared", N, G);
    CHECKF(m != NULL, nm, "%s", err.msg);
    if (!m) {
        free(pts);
        free(y);
        return;
    }
    double r = 0, s = 0, u = 0;
    for (int g = 0; g < G; g++) {
        double rg, sg, ug;
        gi_kriging_params(m, g, &rg, &sg, &ug);
        r += rg / G;
        s += sg / G;
        u += ug / G;
    }
    snprintf(nm, sizeof nm, "kriging (%s, %s) ML recovers range, sill and nugget within 10%%", name,
             per_gene ? "per gene, mean" : "shared");
    CHECKF(fabs(r / range - 1) < 0.1 && fabs(s / sill - 1) < 0.1 && fabs(u / nugget - 1) < 0.1, nm,
           "range %.3f (true %g), sill %.3f (%g), nugget %.3f (%g)", r, range, s, sill, u, nugget);
    printf("# %s: range %.3f sill %.3f nugget %.3f\n", nm, r, s, u);
    /* Prediction at a training point is smoothed toward the field (nugget), not
     * the noisy value, and the held-out error is near the nugget. */
    float q[3] = {40, 40, 40}, out[G];
    CHECK(gi_method_predict(m, 1, q, NULL, out, &err) == 0 && isfinite(out[0]), "kriging predicts");
    gi_method_free(m);
    free(pts);
    free(y);
}

static void test_regression_kriging(void)
{
    /* Two labels with levels 0 and 4 plus small noise; label 2 has 1 sample
     * and is shrunk toward the global mean. */
    enum { N = 300 };
    float pts[N][3], y[N];
    int lab[N];
    for (int i = 0; i < N; i++) {
        for (int a = 0; a < 3; a++)
            pts[i][a] = (float)(80 * gi_rng_uniform(3, 1, (uint64_t)(3 * i + a)));
        lab[i] = i == 0 ? 2 : pts[i][0] < 40 ? 0 : 1;
        y[i] = (float)((lab[i] == 1 ? 4 : 0) + 0.1 * gi_rng_normal(3, 2, (uint64_t)i));
    }
    y[0] = 100;
    gi_fit_data d = {.n = N, .n_genes = 1, .mni = &pts[0][0], .y = y, .label = lab, .n_labels = 3};
    gi_method_opts o = opts();
    gi_err err;
    gi_method *m = gi_method_fit(GI_METHOD_RK, &o, &d, &err);
    CHECKF(m != NULL, "regression kriging fits label means + residual field", "%s", err.msg);
    if (!m)
        return;
    float q[2][3] = {{10, 40, 40}, {70, 40, 40}}, out[2];
    int ql[2] = {0, 1};
    CHECK(gi_method_predict(m, 2, &q[0][0], ql, out, &err) == 0, "regression kriging predicts");
    CHECKF(fabs(out[0]) < 0.3 && fabs(out[1] - 4) < 0.3, "regression kriging: label levels recovered", "got %g %g",
           out[0], out[1]);
    CHECK(gi_method_predict(m, 2, &q[0][0], NULL, out, &err) != 0, "regression kriging refuses points without labels");
    gi_method_free(m);
    gi_fit_data nol = d;
    nol.label = NULL;
    nol.n_labels = 0;
    CHECK(gi_method_fit(GI_METHOD_RK, &o, &nol, &err) == NULL && strstr(err.msg, "data.anatomy"),
          "regression kriging without an anatomy is refused with a clear message");
}

/* Donor offsets in the samples: with a donor random effect the donor-average
 * prediction is closer to the shared field than without (and the effect's
 * variance is found). Donors cluster in space, as AHBA's do by hemisphere. */
static void test_donor_effect(void)
{
    enum { N = 600, Q = 200, D = 3 };
    static float pts[N][3], y[N], q[Q][3], out[2][Q];
    static int don[N];
    const double off[D] = {1.0, -0.6, -0.4};
    for (int i = 0; i < N; i++) {
        for (int a = 0; a < 3; a++)
            pts[i][a] = (float)(80 * gi_rng_uniform(5, 1, (uint64_t)(3 * i + a)));
        don[i] = pts[i][0] < 30 ? 0 : (int)gi_rng_below(5, 2, (uint64_t)i, D);
        y[i] = (float)(sin(pts[i][0] / 12.0) + cos(pts[i][1] / 15.0) + off[don[i]] + 0.2 * gi_rng_normal(5, 3, (uint64_t)i));
    }
    for (int k = 0; k < Q; k++)
        for (int a = 0; a < 3; a++)
            q[k][a] = (float)(80 * gi_rng_uniform(5, 4, (uint64_t)(3 * k + a)));
    gi_fit_data d = {.n = N, .n_genes = 1, .mni = &pts[0][0], .y = y, .donor = don, .n_donors = D};
    double rmse[2];
    gi_err err;
    for (int with = 0; with < 2; with++) {
        gi_method_opts o = opts();
        o.donor_effect = with;
        gi_method *m = gi_method_fit(GI_METHOD_KRIGING, &o, &d, &err);
        if (!m || gi_method_predict(m, Q, &q[0][0], NULL, out[with], &err) != 0) {
            CHECKF(0, "kriging with a donor effect fits", "%s", err.msg);
            gi_method_free(m);
            return;
        }
        gi_method_free(m);
        /* The field up to a constant: compare after removing the mean difference. */
        double md = 0, se = 0;
        for (int k = 0; k < Q; k++)
            md += (out[with][k] - (sin(q[k][0] / 12.0) + cos(q[k][1] / 15.0))) / Q;
        for (int k = 0; k < Q; k++) {
            double e = out[with][k] - (sin(q[k][0] / 12.0) + cos(q[k][1] / 15.0)) - md;
            se += e * e / Q;
        }
        rmse[with] = sqrt(se);
    }
    CHECKF(rmse[1] < 0.9 * rmse[0], "a donor random effect brings the donor-average prediction closer to the shared field",
           "rmse %.4f with vs %.4f without", rmse[1], rmse[0]);
    printf("# donor effect: rmse %.4f with vs %.4f without\n", rmse[1], rmse[0]);
}

/* Label similarity (data.prior_label_similarity): eight labels in two groups
 * that share a profile over 30 genes (as the 68 cortical DK regions share
 * the cortex's expression), noise 0.8; label 3 has only 2 samples. Without similarity its
 * effect is shrunk toward the mean; with it, it borrows from labels 0-2, which
 * express alike, and its points are predicted closer to the truth. */
static void test_label_similarity(void)
{
    enum { N = 400, G = 30, L = 8, Q = 60 };
    static float pts[N][3], y[N][G], q[Q][3], out[Q][G];
    static int lab[N], ql[Q];
    double prof[2][G];
    const int others[7] = {0, 1, 2, 4, 5, 6, 7};
    for (int g = 0; g < G; g++)
        for (int k = 0; k < 2; k++)
            prof[k][g] = gi_rng_normal(9, 1, (uint64_t)(2 * g + k));
    for (int i = 0; i < N; i++) {
        for (int a = 0; a < 3; a++)
            pts[i][a] = (float)(80 * gi_rng_uniform(9, 2, (uint64_t)(3 * i + a)));
        lab[i] = i < 2 ? 3 : others[i % 7];
        for (int g = 0; g < G; g++)
            y[i][g] = (float)(prof[lab[i] >= 4][g] + 0.5 * sin(pts[i][0] / 12.0 + g) +
                              0.8 * gi_rng_normal(9, 3, (uint64_t)(i * G + g)));
    }
    for (int k = 0; k < Q; k++) {
        for (int a = 0; a < 3; a++)
            q[k][a] = (float)(80 * gi_rng_uniform(9, 4, (uint64_t)(3 * k + a)));
        ql[k] = 3;
    }
    gi_fit_data d = {.n = N, .n_genes = G, .mni = &pts[0][0], .y = &y[0][0], .label = lab, .n_labels = L};
    double rmse[2];
    gi_err err;
    for (int with = 0; with < 2; with++) {
        gi_method_opts o = opts();
        o.label_similarity = with;
        gi_method *m = gi_method_fit(GI_METHOD_RK, &o, &d, &err);
        if (!m || gi_method_predict(m, Q, &q[0][0], ql, &out[0][0], &err) != 0) {
            CHECKF(0, "regression kriging with label similarity fits", "%s", err.msg);
            gi_method_free(m);
            return;
        }
        gi_method_free(m);
        double se = 0;
        for (int k = 0; k < Q; k++)
            for (int g = 0; g < G; g++) {
                double e = out[k][g] - (prof[0][g] + 0.5 * sin(q[k][0] / 12.0 + g));
                se += e * e / (Q * G);
            }
        rmse[with] = sqrt(se);
    }
    CHECKF(rmse[1] < 0.9 * rmse[0], "label similarity: a sparsely sampled label borrows from labels that express alike",
           "rmse %.4f with vs %.4f without", rmse[1], rmse[0]);
    printf("# label similarity: rmse %.4f with vs %.4f without\n", rmse[1], rmse[0]);
}

/* hyper_from (data.prior_crossfit's fold fits): a fit given another fit's
 * hyperparameters keeps them exactly and skips the ML fit, so on the same
 * samples it predicts exactly what that fit predicts; on other samples the
 * weights change but not the hyperparameters. A model of another kind is
 * refused. */
static void test_hyper_from(void)
{
    enum { N = 300, Q = 50 };
    static float pts[N][3], y[N], q[Q][3], a[Q], b[Q];
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 3; k++)
            pts[i][k] = (float)(80 * gi_rng_uniform(9, 1, (uint64_t)(3 * i + k)));
        y[i] = (float)(sin(pts[i][0] / 10.0) + 0.3 * gi_rng_normal(9, 2, (uint64_t)i));
    }
    for (int k = 0; k < Q; k++)
        for (int c = 0; c < 3; c++)
            q[k][c] = (float)(80 * gi_rng_uniform(9, 3, (uint64_t)(3 * k + c)));
    gi_fit_data d = {.n = N, .n_genes = 1, .mni = &pts[0][0], .y = y};
    gi_method_opts o = opts();
    gi_err err;
    gi_method *full = gi_method_fit(GI_METHOD_KRIGING, &o, &d, &err);
    o.hyper_from = full;
    gi_method *same = full ? gi_method_fit(GI_METHOD_KRIGING, &o, &d, &err) : NULL;
    gi_fit_data half = d;
    half.n = N / 2;
    gi_method *part = full ? gi_method_fit(GI_METHOD_KRIGING, &o, &half, &err) : NULL;
    int ok = full && same && part && gi_method_predict(full, Q, &q[0][0], NULL, a, &err) == 0
             && gi_method_predict(same, Q, &q[0][0], NULL, b, &err) == 0;
    CHECKF(ok, "kriging fits with hyper_from", "%s", err.msg);
    if (ok) {
        CHECK(memcmp(a, b, sizeof a) == 0, "hyper_from on the same samples predicts exactly as the fit it copies");
        double r0, s0, n0, r1, s1, n1;
        gi_kriging_params(full, 0, &r0, &s0, &n0);
        gi_kriging_params(part, 0, &r1, &s1, &n1);
        CHECKF(r1 == r0 && fabs(n1 / s1 - n0 / s0) < 1e-12 * (n0 / s0), "hyper_from keeps range and nugget ratio on other samples",
               "range %g vs %g, nugget/sill %g vs %g", r1, r0, n1 / s1, n0 / s0);
        int lab[N] = {0};
        gi_fit_data dl = d;
        dl.label = lab;
        dl.n_labels = 1;
        gi_method *rk = gi_method_fit(GI_METHOD_RK, &o, &dl, &err);
        CHECKF(rk == NULL && strstr(err.msg, "not the same kind"), "hyper_from refuses a model of another kind", "%s",
               err.msg);
        gi_method_free(rk);
    }
    gi_method_free(full);
    gi_method_free(same);
    gi_method_free(part);
}

/* gi_method_predict_genes (render's gene groups): a range of genes gives
 * exactly the columns of the full prediction, for every baseline, with
 * shared and per-gene kriging, and a range past the genes is refused. */
static void test_gene_range(void)
{
    enum { N = 160, G = 7, Q = 300 };
    static float pts[N][3], y[N][G], q[Q][3], full[Q][G], part[Q][G];
    static int lab[N], ql[Q];
    for (int i = 0; i < N; i++) {
        for (int a = 0; a < 3; a++)
            pts[i][a] = (float)(60 * gi_rng_uniform(9, 1, (uint64_t)(3 * i + a)));
        lab[i] = pts[i][2] < 30 ? 1 : 2;
        for (int g = 0; g < G; g++)
            y[i][g] = (float)(sin(pts[i][0] / (8.0 + g)) + 0.5 * lab[i] * (g % 3) + 0.2 * gi_rng_normal(9, 2, (uint64_t)(i * G + g)));
    }
    y[3][2] = NAN;
    for (int k = 0; k < Q; k++) {
        for (int a = 0; a < 3; a++)
            q[k][a] = (float)(60 * gi_rng_uniform(9, 3, (uint64_t)(3 * k + a)));
        ql[k] = q[k][2] < 30 ? 1 : 2;
    }
    gi_fit_data d = {.n = N, .n_genes = G, .mni = &pts[0][0], .y = &y[0][0], .label = lab, .n_labels = 3};
    const int kinds[] = {GI_METHOD_NEAREST, GI_METHOD_IDW, GI_METHOD_KRIGING, GI_METHOD_KRIGING, GI_METHOD_RK};
    for (int t = 0; t < 5; t++) {
        gi_method_opts o = opts();
        o.per_gene = t == 3;
        gi_err err;
        gi_method *m = gi_method_fit(kinds[t], &o, &d, &err);
        char nm[160];
        snprintf(nm, sizeof nm, "%s%s: genes 2..5 predicted alone equal those columns of all genes",
                 GI_METHOD_NAMES[kinds[t]], t == 3 ? " (per gene)" : "");
        if (!m) {
            CHECKF(0, nm, "fit failed: %s", err.msg);
            continue;
        }
        int rc = gi_method_predict(m, Q, &q[0][0], ql, &full[0][0], &err);
        rc |= gi_method_predict_genes(m, Q, &q[0][0], ql, 2, 4, &part[0][0], &err);
        int same = rc == 0;
        for (int k = 0; same && k < Q; k++)
            for (int j = 0; j < 4; j++)
                same &= memcmp(&part[0][0] + (size_t)k * 4 + j, &full[k][2 + j], sizeof(float)) == 0;
        CHECK(same, nm);
        CHECK(gi_method_predict_genes(m, 1, &q[0][0], ql, 5, 3, &part[0][0], &err) != 0 && strstr(err.msg, "genes 5..7"),
              "a gene range past the fitted genes is refused by name");
        gi_method_free(m);
    }
}

/* The kriging weights against a direct computation: with the fitted range
 * and nugget ratio, alpha = A^-1 (y - mu 1) with mu the GLS mean, over the
 * samples where the gene is measured, and a prediction mu + k(x)^T alpha.
 * Genes measured everywhere take the blocked solves, a gene with missing
 * samples the restricted one: both must match. */
static void test_kriging_weights(void)
{
    enum { N = 150, G = 3, Q = 20 };
    static float pts[N][3], y[N][G], q[Q][3], out[Q][G];
    for (int i = 0; i < N; i++) {
        for (int a = 0; a < 3; a++)
            pts[i][a] = (float)(50 * gi_rng_uniform(11, 1, (uint64_t)(3 * i + a)));
        for (int g = 0; g < G; g++)
            y[i][g] = (float)(sin(pts[i][0] / (7.0 + 3 * g)) + cos(pts[i][1] / 9.0) + 0.3 * gi_rng_normal(11, 2, (uint64_t)(i * G + g)));
    }
    y[5][2] = y[77][2] = NAN;
    for (int k = 0; k < Q; k++)
        for (int a = 0; a < 3; a++)
            q[k][a] = (float)(50 * gi_rng_uniform(11, 3, (uint64_t)(3 * k + a)));
    gi_fit_data d = {.n = N, .n_genes = G, .mni = &pts[0][0], .y = &y[0][0]};
    gi_method_opts o = opts();
    gi_err err;
    gi_method *m = gi_method_fit(GI_METHOD_KRIGING, &o, &d, &err);
    if (!m || gi_method_predict(m, Q, &q[0][0], NULL, &out[0][0], &err) != 0) {
        CHECKF(0, "kriging fits 3 genes, one with missing samples", "%s", err.msg);
        gi_method_free(m);
        return;
    }
    double worst = 0;
    static double A[N * N], u[N], v[N];
    for (int g = 0; g < G; g++) {
        double range, sill, nugget;
        gi_kriging_params(m, g, &range, &sill, &nugget);
        int idx[N], n = 0;
        for (int i = 0; i < N; i++)
            if (!isnan(y[i][g]))
                idx[n++] = i;
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++) {
                double dx = pts[idx[a]][0] - pts[idx[b]][0], dy = pts[idx[a]][1] - pts[idx[b]][1],
                       dz = pts[idx[a]][2] - pts[idx[b]][2];
                A[a * n + b] = exp(-sqrt(dx * dx + dy * dy + dz * dz) / range) + (a == b ? nugget / sill : 0);
            }
        int info, one = 1;
        dpotrf_("L", &n, A, &n, &info);
        for (int a = 0; a < n; a++) {
            u[a] = 1;
            v[a] = y[idx[a]][g];
        }
        dpotrs_("L", &n, &one, A, &n, u, &n, &info);
        dpotrs_("L", &n, &one, A, &n, v, &n, &info);
        double su = 0, sv = 0;
        for (int a = 0; a < n; a++) {
            su += u[a];
            sv += v[a];
        }
        double mu = sv / su;
        for (int k = 0; k < Q; k++) {
            double p = mu;
            for (int a = 0; a < n; a++) {
                double dx = q[k][0] - pts[idx[a]][0], dy = q[k][1] - pts[idx[a]][1], dz = q[k][2] - pts[idx[a]][2];
                p += exp(-sqrt(dx * dx + dy * dy + dz * dz) / range) * (v[a] - mu * u[a]);
            }
            worst = fmax(worst, fabs(p - out[k][g]));
        }
    }
    CHECKF(worst < 1e-4, "kriging weights (blocked for fully measured genes, restricted otherwise) match a direct solve",
           "largest difference %g", worst);
    gi_method_free(m);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    test_idw_fixture();
    test_knn();
    test_kriging_recovery(GI_COV_EXPONENTIAL, "exponential", 0);
    test_kriging_recovery(GI_COV_MATERN52, "matern52", 0);
    test_regression_kriging();
    test_donor_effect();
    test_label_similarity();
    test_hyper_from();
    test_gene_range();
    test_kriging_weights();
    MPI_Finalize();
    return check_summary();
}
