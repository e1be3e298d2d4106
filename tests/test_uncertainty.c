/* test_uncertainty.c - the predictive SD of kriging and regression kriging
 * (method.h's uncertainty interface, issue 28).
 *
 * The kriging variance against a direct dense computation; zero at a training
 * sample when the fit finds no nugget (noise-free smooth data: ML drives the
 * nugget to its lower bound, no setter involved) and growing with distance;
 * the smooth part q from gi_method_sd_smooth giving the SD of q = NULL; the
 * bits of a point's SD independent of its batch and of the gene range; and
 * held-out coverage on simulated Gaussian fields near nominal. The INR: a
 * train.ensemble of 2 has an SD (the members' spread), and 0 when the two
 * members are the same network.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "geneinr/checkpoint.h"
#include "geneinr/config.h"
#include "geneinr/kriging.h"
#include "geneinr/method.h"
#include "geneinr/rng.h"

void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda, double *b,
             const int *ldb, int *info);

static gi_method_opts opts(int cov)
{
    gi_method_opts o;
    memset(&o, 0, sizeof o);
    o.covariance = cov;
    o.seed = 1;
    o.comm = MPI_COMM_SELF;
    return o;
}

/* G Gaussian fields (covariance sill rho(h / range), mean 3) plus noise of
 * variance nugget at n random points in a cube of side extent. */
static void simulate(int cov, int n, int G, double extent, double range, double nugget, uint64_t seed, float *pts,
                     float *y)
{
    for (int i = 0; i < 3 * n; i++)
        pts[i] = (float)(extent * gi_rng_uniform(seed, 1, (uint64_t)i));
    double *C = malloc(sizeof(double) * (size_t)n * n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double dx = pts[3 * i] - pts[3 * j], dy = pts[3 * i + 1] - pts[3 * j + 1], dz = pts[3 * i + 2] - pts[3 * j + 2];
            C[(size_t)i * n + j] = gi_cov_rho(cov, sqrt(dx * dx + dy * dy + dz * dz), range) + (i == j ? 1e-9 : 0);
        }
    int info;
    dpotrf_("U", &n, C, &n, &info);
    for (int g = 0; g < G; g++)
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int j = 0; j <= i; j++)
                s += C[(size_t)i * n + j] * gi_rng_normal(seed, 2 + g, (uint64_t)j);
            y[(size_t)i * G + g] = (float)(3.0 + s + sqrt(nugget) * gi_rng_normal(seed, 1000 + g, (uint64_t)i));
        }
    free(C);
}

/* Ordinary kriging variance / sill by a dense solve of [A 1; 1' 0]: the
 * textbook form, independent of the factor-based one in kriging.c. */
static double direct_variance(int cov, const float *p, int n, double range, double lambda, const float *x)
{
    int m = n + 1;
    double *K = calloc((size_t)m * m, sizeof(double)), *b = calloc((size_t)m, sizeof(double));
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double dx = p[3 * i] - p[3 * j], dy = p[3 * i + 1] - p[3 * j + 1], dz = p[3 * i + 2] - p[3 * j + 2];
            K[(size_t)i * m + j] = gi_cov_rho(cov, sqrt(dx * dx + dy * dy + dz * dz), range) + (i == j ? lambda : 0);
        }
        K[(size_t)i * m + n] = K[(size_t)n * m + i] = 1;
        double dx = p[3 * i] - x[0], dy = p[3 * i + 1] - x[1], dz = p[3 * i + 2] - x[2];
        b[i] = gi_cov_rho(cov, sqrt(dx * dx + dy * dy + dz * dz), range);
    }
    b[n] = 1;
    double *c = malloc(sizeof(double) * (size_t)m);
    memcpy(c, b, sizeof(double) * (size_t)m);
    /* Gaussian elimination with partial pivoting (the system is indefinite). */
    for (int k = 0; k < m; k++) {
        int piv = k;
        for (int i = k + 1; i < m; i++)
            if (fabs(K[(size_t)i * m + k]) > fabs(K[(size_t)piv * m + k]))
                piv = i;
        for (int j = 0; j < m; j++) {
            double t = K[(size_t)k * m + j];
            K[(size_t)k * m + j] = K[(size_t)piv * m + j];
            K[(size_t)piv * m + j] = t;
        }
        double t = b[k]; b[k] = b[piv]; b[piv] = t;
        for (int i = k + 1; i < m; i++) {
            double f = K[(size_t)i * m + k] / K[(size_t)k * m + k];
            for (int j = k; j < m; j++)
                K[(size_t)i * m + j] -= f * K[(size_t)k * m + j];
            b[i] -= f * b[k];
        }
    }
    for (int k = m - 1; k >= 0; k--) {
        for (int j = k + 1; j < m; j++)
            b[k] -= K[(size_t)k * m + j] * b[j];
        b[k] /= K[(size_t)k * m + k];
    }
    /* v = C(x,x) - weights' c - Lagrange multiplier */
    double v = 1;
    for (int i = 0; i < m; i++)
        v -= b[i] * c[i];
    free(K); free(b); free(c);
    return v;
}

static void test_variance_direct(void)
{
    enum { N = 150, G = 3, Q = 6 };
    static float pts[N * 3], y[N * G];
    simulate(GI_COV_EXPONENTIAL, N, G, 60, 15, 0.2, 5, pts, y);
    gi_fit_data d = {.n = N, .n_genes = G, .mni = pts, .y = y};
    gi_method_opts o = opts(GI_COV_EXPONENTIAL);
    gi_err err;
    gi_method *m = gi_method_fit(GI_METHOD_KRIGING, &o, &d, &err);
    CHECKF(m && gi_method_has_sd(m), "kriging (shared hyperparameters) has an SD", "%s", m ? "has_sd 0" : err.msg);
    if (!m)
        return;
    float q[Q][3] = {{30, 30, 30}, {0, 0, 0}, {70, 20, 10}, {-40, 30, 30}, {15, 45, 5}};
    memcpy(q[5], pts + 3 * 7, sizeof(float) * 3);
    float sd[Q][G], noise[G];
    int ok = gi_method_predict_sd(m, Q, &q[0][0], NULL, NULL, 0, G, &sd[0][0], &err) == 0
             && gi_method_noise_sd(m, noise, &err) == 0;
    CHECKF(ok, "kriging predict_sd and noise_sd succeed", "%s", err.msg);
    double worst = 0, worst_noise = 0;
    for (int g = 0; g < G && ok; g++) {
        double range, sill, nugget;
        gi_kriging_params(m, g, &range, &sill, &nugget);
        worst_noise = fmax(worst_noise, fabs(noise[g] - sqrt(nugget)) / sqrt(nugget));
        for (int k = 0; k < Q; k++) {
            double v = direct_variance(GI_COV_EXPONENTIAL, pts, N, range, nugget / sill, q[k]);
            worst = fmax(worst, fabs(sd[k][g] - sqrt(sill * v)) / sqrt(sill));
        }
    }
    CHECKF(ok && worst < 1e-5, "kriging SD equals the textbook ordinary-kriging variance (bordered system)",
           "largest difference %g sill^0.5", worst);
    CHECKF(ok && worst_noise < 1e-6, "kriging noise SD is the nugget's", "relative difference %g", worst_noise);
    gi_method_free(m);
    o.per_gene = 1;
    m = gi_method_fit(GI_METHOD_KRIGING, &o, &d, &err);
    CHECK(m && !gi_method_has_sd(m) && gi_method_predict_sd(m, 1, &q[0][0], NULL, NULL, 0, 1, &sd[0][0], &err) != 0
              && strstr(err.msg, "no uncertainty"),
          "per-gene kriging has no SD (refused with a message)");
    gi_method_free(m);
}

/* Noise-free smooth fields: ML takes the nugget to its floor, the variance at
 * a training sample is ~0 and grows along a ray leaving the samples. */
static void test_zero_at_samples(void)
{
    enum { N = 250, G = 2, R = 9 };
    static float pts[N * 3], y[N * G];
    for (int i = 0; i < 3 * N; i++)
        pts[i] = (float)(60 * gi_rng_uniform(21, 1, (uint64_t)i));
    for (int i = 0; i < N; i++) {
        const float *p = pts + 3 * i;
        double f = sin(p[0] / 15.0) + cos(p[1] / 20.0) + 0.5 * sin(p[2] / 12.0 + p[0] / 30.0);
        y[i * G] = (float)f;
        y[i * G + 1] = (float)(5 - 3 * f);
    }
    gi_fit_data d = {.n = N, .n_genes = G, .mni = pts, .y = y};
    gi_method_opts o = opts(GI_COV_MATERN52);
    gi_err err;
    gi_method *m = gi_method_fit(GI_METHOD_KRIGING, &o, &d, &err);
    CHECKF(m != NULL, "kriging fits a noise-free smooth field", "%s", err.msg);
    if (!m)
        return;
    double range, sill, nugget;
    gi_kriging_params(m, 0, &range, &sill, &nugget);
    CHECKF(nugget / sill < 1e-4, "noise-free data: the ML nugget is ~0", "nugget/sill %g", nugget / sill);
    /* the sample nearest the (60, 60, 60) corner, and a ray away from the cube */
    int c = 0;
    for (int i = 1; i < N; i++)
        if (pts[3 * i] + pts[3 * i + 1] + pts[3 * i + 2] > pts[3 * c] + pts[3 * c + 1] + pts[3 * c + 2])
            c = i;
    const double t[R] = {0, 1, 2, 4, 8, 16, 32, 64, 200};
    float ray[R][3], sd[R][G];
    for (int k = 0; k < R; k++)
        for (int a = 0; a < 3; a++)
            ray[k][a] = (float)(pts[3 * c + a] + t[k] / sqrt(3.0));
    int ok = gi_method_predict_sd(m, R, &ray[0][0], NULL, NULL, 0, G, &sd[0][0], &err) == 0;
    CHECKF(ok && sd[0][0] < 0.01 * sqrt(sill), "kriging SD at a training sample with no nugget is ~0",
           "sd %g, sill^0.5 %g", sd[0][0], sqrt(sill));
    printf("# nugget/sill %.2g; SD / sill^0.5 along the ray: at the sample %.2g, 8 mm %.3f, 200 mm %.3f\n",
           nugget / sill, sd[0][0] / sqrt(sill), sd[4][0] / sqrt(sill), sd[R - 1][0] / sqrt(sill));
    int mono = ok;
    for (int k = 1; k < R && ok; k++)
        mono &= sd[k][0] > sd[k - 1][0];
    CHECKF(mono, "kriging SD grows with the distance from the samples (ray of 0-200 mm)",
           "sd %g %g %g %g %g %g %g %g %g", sd[0][0], sd[1][0], sd[2][0], sd[3][0], sd[4][0], sd[5][0], sd[6][0],
           sd[7][0], sd[8][0]);
    CHECKF(ok && sd[R - 1][0] > 0.95 * sqrt(sill), "far from the samples the SD reaches the sill's",
           "sd %g, sill^0.5 %g", sd[R - 1][0], sqrt(sill));
    double sill1, r1, n1;
    gi_kriging_params(m, 1, &r1, &sill1, &n1);
    CHECKF(ok && fabs(sd[5][1] / sd[5][0] - sqrt(sill1 / sill)) < 1e-5, "the SD scales with each gene's sill",
           "ratio %g, want %g", sd[5][1] / sd[5][0], sqrt(sill1 / sill));
    gi_method_free(m);
}

/* The render's contract: q from sd_smooth (here exact) gives the SD of
 * q = NULL; a point's bits do not depend on its batch or gene range. Regression
 * kriging with a donor effect and label similarity, the atlas's prior. */
static void test_batches(void)
{
    enum { N = 300, G = 5, Q = 41, D = 3, L = 4 };
    static float pts[N * 3], y[N * G], q[Q][3];
    static int lab[N], don[N], ql[Q];
    simulate(GI_COV_EXPONENTIAL, N, G, 60, 12, 0.3, 7, pts, y);
    for (int i = 0; i < N; i++) {
        lab[i] = pts[3 * i] < 20 ? 1 : pts[3 * i] < 40 ? 2 : 3; /* label 0: no sample */
        don[i] = i % D;
        for (int g = 0; g < G; g++)
            y[i * G + g] += (float)(0.8 * lab[i] * (g % 2 ? 1 : -1) + 0.4 * don[i]);
    }
    for (int k = 0; k < Q; k++) {
        for (int a = 0; a < 3; a++)
            q[k][a] = (float)(-10 + 80 * gi_rng_uniform(8, 1, (uint64_t)(3 * k + a)));
        ql[k] = k % L;
    }
    gi_fit_data d = {.n = N, .n_genes = G, .mni = pts, .y = y, .label = lab, .n_labels = L, .donor = don, .n_donors = D};
    gi_method_opts o = opts(GI_COV_EXPONENTIAL);
    o.donor_effect = 1;
    o.label_similarity = 1;
    gi_err err;
    gi_method *m = gi_method_fit(GI_METHOD_RK, &o, &d, &err);
    CHECKF(m && gi_method_has_sd(m), "regression kriging (donor effect, label similarity) has an SD", "%s",
           m ? "has_sd 0" : err.msg);
    if (!m)
        return;
    /* the smooth part: q, r'A^-1 1 and r'A^-1 s_l of the L labels per point (issue 31) */
    enum { W = 2 + L };
    CHECKF(gi_method_sd_width(m) == W, "regression kriging's SD smooth part has 2 + labels values per point",
           "width %d", gi_method_sd_width(m));
    static float qs[Q][W], qs1[Q][W], all[Q][G], bysmooth[Q][G], one[G], part[Q][2];
    int ok = gi_method_sd_smooth(m, Q, &q[0][0], &qs[0][0], &err) == 0
             && gi_method_predict_sd(m, Q, &q[0][0], ql, NULL, 0, G, &all[0][0], &err) == 0
             && gi_method_predict_sd(m, Q, &q[0][0], ql, &qs[0][0], 0, G, &bysmooth[0][0], &err) == 0;
    CHECKF(ok, "regression kriging sd_smooth and predict_sd succeed", "%s", err.msg);
    if (!ok) {
        gi_method_free(m);
        return;
    }
    /* q in float vs double: |dv| <= ~1e-7 (q <= 1 + eta), so |dsd| <= sqrt(sill 1e-7) at worst */
    double worst = 0;
    for (int k = 0; k < Q; k++)
        for (int g = 0; g < G; g++)
            worst = fmax(worst, fabs(bysmooth[k][g] - all[k][g]));
    CHECKF(worst < 1e-3, "predict_sd with the exact q of sd_smooth equals predict_sd with q = NULL (float q rounding)",
           "largest difference %g", worst);
    /* sd_smooth is BLAS-3 (one dtrsm per block of points): a point's bits may
     * depend on its place in the block, which the render's lattice fixes
     * (uncertainty.h); alone or at another offset it agrees to float rounding. */
    int same = 1, pos = 1;
    double dq = 0;
    for (int k = 0; k < Q; k++) {
        float qk[W];
        same &= gi_method_predict_sd(m, 1, q[k], ql + k, NULL, 0, G, one, &err) == 0
                && memcmp(one, all[k], sizeof one) == 0;
        if (gi_method_sd_smooth(m, 1, q[k], qk, &err) != 0)
            dq = INFINITY;
        for (int j = 0; j < W; j++)
            dq = fmax(dq, fabs(qk[j] - qs[k][j]));
        for (int g = 0; g < G; g++)
            pos &= all[k][g] > 0 && isfinite(all[k][g]);
    }
    /* batches that start mid-way: points 3..40 in one call */
    if (gi_method_sd_smooth(m, Q - 3, q[3], &qs1[3][0], &err) != 0)
        dq = INFINITY;
    for (int k = 3; k < Q; k++)
        for (int j = 0; j < W; j++)
            dq = fmax(dq, fabs(qs1[k][j] - qs[k][j]));
    int same_q = dq < 1e-5;
    same &= gi_method_predict_sd(m, Q, &q[0][0], ql, NULL, 2, 2, &part[0][0], &err) == 0;
    for (int k = 0; k < Q; k++)
        same &= memcmp(part[k], &all[k][2], sizeof part[k]) == 0;
    CHECKF(same_q, "sd_smooth: a point's smooth part alone or in a batch at any offset agrees to float rounding",
           "largest difference %g", dq);
    CHECK(same, "predict_sd: a point's SD has the same bits alone, in a batch, or for a gene range");
    CHECK(pos, "regression kriging SD is positive and finite everywhere (nugget > 0)");
    /* The map's smooth part (issue 31, render.prior_step): rest + the exact
     * smooth part is predict's map bit for bit, for all genes and a range. */
    static float mp[Q][G], sm[Q][G], ws[Q][G], sm2[Q][2], ws2[Q][2];
    ok = gi_method_has_smooth(m) && gi_method_predict(m, Q, &q[0][0], ql, &mp[0][0], &err) == 0
         && gi_method_predict_smooth(m, Q, &q[0][0], 0, G, &sm[0][0], &err) == 0
         && gi_method_predict_with_smooth(m, Q, &q[0][0], ql, &sm[0][0], 0, G, &ws[0][0], &err) == 0
         && gi_method_predict_smooth(m, Q, &q[0][0], 2, 2, &sm2[0][0], &err) == 0
         && gi_method_predict_with_smooth(m, Q, &q[0][0], ql, &sm2[0][0], 2, 2, &ws2[0][0], &err) == 0;
    int split = ok && memcmp(mp, ws, sizeof mp) == 0, differs = 0;
    for (int k = 0; k < Q && ok; k++) {
        split &= memcmp(ws2[k], &mp[k][2], sizeof ws2[k]) == 0;
        differs |= sm[k][0] != mp[k][0];
    }
    CHECKF(split && differs, "kriging: rest + exact smooth part = predict bit for bit (all genes, genes 2..3)", "%s",
           ok ? "differs" : err.msg);
    /* A label without samples is less certain than a sampled one at the same point. */
    float x[2][3] = {{30, 30, 30}, {30, 30, 30}}, s2[2][G];
    int l2[2] = {2, 0};
    ok = gi_method_predict_sd(m, 2, &x[0][0], l2, NULL, 0, G, &s2[0][0], &err) == 0;
    CHECKF(ok && s2[1][0] > s2[0][0], "regression kriging: an unsampled label has a larger SD than a sampled one",
           "sampled %g, unsampled %g", s2[0][0], s2[1][0]);
    CHECK(gi_method_predict_sd(m, 1, q[0], NULL, NULL, 0, 1, one, &err) != 0 && strstr(err.msg, "label"),
          "regression kriging's SD refuses points without labels");
    gi_method_free(m);
}

/* Held-out samples of the simulated field fall in the central 90% / 50%
 * interval map +- z sqrt(sd^2 + noise^2) about as often as nominal. */
static void test_coverage(void)
{
    enum { N = 700, NT = 450, G = 12 };
    static float pts[N * 3], y[N * G], pred[N * G], sd[N * G], noise[G];
    simulate(GI_COV_EXPONENTIAL, N, G, 70, 14, 0.3, 31, pts, y);
    gi_fit_data d = {.n = NT, .n_genes = G, .mni = pts, .y = y};
    gi_method_opts o = opts(GI_COV_EXPONENTIAL);
    gi_err err;
    gi_method *m = gi_method_fit(GI_METHOD_KRIGING, &o, &d, &err);
    int nh = N - NT;
    int ok = m && gi_method_predict(m, nh, pts + 3 * NT, NULL, pred, &err) == 0
             && gi_method_predict_sd(m, nh, pts + 3 * NT, NULL, NULL, 0, G, sd, &err) == 0
             && gi_method_noise_sd(m, noise, &err) == 0;
    CHECKF(ok, "kriging predicts mean and SD at held-out samples", "%s", err.msg);
    long in90 = 0, in50 = 0, tot = 0;
    for (int k = 0; k < nh && ok; k++)
        for (int g = 0; g < G; g++) {
            double s = sqrt((double)sd[k * G + g] * sd[k * G + g] + (double)noise[g] * noise[g]);
            double e = fabs(y[(size_t)(NT + k) * G + g] - pred[k * G + g]);
            in90 += e <= 1.6449 * s;
            in50 += e <= 0.6745 * s;
            tot++;
        }
    double c90 = tot ? (double)in90 / tot : 0, c50 = tot ? (double)in50 / tot : 0;
    printf("# simulated held-out coverage: 90%% %.3f, 50%% %.3f (%ld values)\n", c90, c50, tot);
    CHECKF(ok && c90 > 0.87 && c90 < 0.93 && c50 > 0.45 && c50 < 0.55,
           "kriging's interval covers held-out samples of a simulated field at the nominal rate",
           "90%%: %.3f, 50%%: %.3f", c90, c50);
    gi_method_free(m);
}

/* A tiny INR ensemble of 2 (no prior): its SD is the spread of the members'
 * maps; with member 2 replaced by a copy of member 1 (seed relabelled so
 * that the ensemble accepts it) the spread, hence the SD, is exactly 0. */
static void test_inr_ensemble(void)
{
    enum { N = 240, G = 2, Q = 30 };
    static float pts[N * 3], y[N * G], q[Q][3], sd[Q][G], noise[G];
    static int donor[N];
    simulate(GI_COV_EXPONENTIAL, N, G, 60, 15, 0.1, 41, pts, y);
    for (int i = 0; i < N; i++) {
        donor[i] = i % 2;
        for (int a = 0; a < 3; a++)
            pts[3 * i + a] -= 30; /* inside the MNI box */
    }
    for (int k = 0; k < Q; k++)
        for (int a = 0; a < 3; a++)
            q[k][a] = (float)(-40 + 80 * gi_rng_uniform(12, 1, (uint64_t)(3 * k + a)));
    char work[] = "/tmp/geneinr-unc.XXXXXX";
    if (!mkdtemp(work)) {
        CHECK(0, "a scratch folder for the INR");
        return;
    }
    const char *yaml = "model:\n  arch: fourier\n  fourier_features: 16\n  width: 16\n  hidden_layers: 1\n"
                       "  donor_dim: 2\ntrain:\n  steps: 40\n  val_every: 10\n  log_every: 1000\n  ensemble: 2\n"
                       "  seed: 7\n";
    gi_config c;
    gi_err err;
    char *dn[2] = {"d1", "d2"}, *gn[2] = {"gA", "gB"};
    int ok = gi_config_load_text(&c, yaml, "unc.yaml", &err) == 0;
    gi_method_opts o;
    memset(&o, 0, sizeof o);
    o.config = &c;
    o.comm = MPI_COMM_SELF;
    o.work_dir = work;
    gi_fit_data d = {.n = N, .n_genes = G, .mni = pts, .y = y, .donor = donor, .n_donors = 2, .donor_names = dn,
                     .gene_names = gn};
    gi_method *m = ok ? gi_method_fit(GI_METHOD_INR, &o, &d, &err) : NULL;
    ok = m && gi_method_has_sd(m) && gi_method_predict_sd(m, Q, &q[0][0], NULL, NULL, 0, G, &sd[0][0], &err) == 0
         && gi_method_noise_sd(m, noise, &err) == 0;
    CHECKF(ok, "an INR ensemble of 2 (no prior) has an SD", "%s", err.msg);
    double mx = 0;
    for (int k = 0; k < Q && ok; k++)
        mx = fmax(mx, sd[k][0]);
    CHECKF(ok && mx > 0 && isfinite(mx) && noise[0] > 0, "two members trained with different seeds: SD > 0, noise > 0",
           "largest SD %g, noise %g", mx, ok ? noise[0] : 0.0);
    gi_method_free(m);
    /* member 2 := member 1 */
    char p0[600], p1[600];
    snprintf(p0, sizeof p0, "%s/checkpoint.h5", work);
    snprintf(p1, sizeof p1, "%s/ensemble/1/checkpoint.h5", work);
    gi_state st;
    ok = ok && gi_checkpoint_load(&st, p0, &err) == 0;
    if (ok) {
        st.seed = c.train.seed + 1;
        ok = gi_checkpoint_save(&st, p1, &err) == 0;
        gi_state_free(&st);
    }
    gi_config cl = c; /* as the fit ran it (method_inr.c's inr_fit) */
    snprintf(cl.data.samples, sizeof cl.data.samples, "%s/train_samples.csv", work);
    snprintf(cl.run.out, sizeof cl.run.out, "%s", work);
    cl.data.max_outside = 1;
    m = ok ? gi_method_inr_load(p0, &cl, NULL, 0, &err) : NULL;
    ok = m && gi_method_predict_sd(m, Q, &q[0][0], NULL, NULL, 0, G, &sd[0][0], &err) == 0;
    mx = 0;
    for (int k = 0; k < Q && ok; k++)
        for (int g = 0; g < G; g++)
            mx = fmax(mx, fabs(sd[k][g]));
    CHECKF(ok && mx == 0, "the ensemble SD of identical members is 0", "%s; largest SD %g", ok ? "" : err.msg, mx);
    gi_method_free(m);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", work);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    test_variance_direct();
    test_zero_at_samples();
    test_batches();
    test_coverage();
    test_inr_ensemble();
    MPI_Finalize();
    return check_summary();
}
