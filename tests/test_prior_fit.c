/* test_prior_fit.c - the prior's fit (issue 31): the batched likelihood
 * (A^-1 once, genes' solves in blocks) against the textbook formula on a
 * small problem with unmeasured values, the weights from given
 * hyperparameters against a direct solve, and the checkpoint's prior_hyper
 * round-trip (and its absence in older files). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "check.h"
#include "geneinr/checkpoint.h"
#include "geneinr/config.h"
#include "geneinr/kriging.h"
#include "geneinr/method.h"
#include "geneinr/model.h"

#define N 70
#define G 6
#define NL 4

/* In-place lower Cholesky of the k x k row-major M; log-determinant into *ld. */
static int chol(double *M, int k, double *ld)
{
    *ld = 0;
    for (int j = 0; j < k; j++) {
        double d = M[j * k + j];
        for (int p = 0; p < j; p++)
            d -= M[j * k + p] * M[j * k + p];
        if (!(d > 0))
            return -1;
        M[j * k + j] = sqrt(d);
        *ld += 2 * log(M[j * k + j]);
        for (int i = j + 1; i < k; i++) {
            double s = M[i * k + j];
            for (int p = 0; p < j; p++)
                s -= M[i * k + p] * M[j * k + p];
            M[i * k + j] = s / M[j * k + j];
        }
    }
    return 0;
}

static void chol_solve(const double *L, int k, double *b)
{
    for (int i = 0; i < k; i++) {
        for (int p = 0; p < i; p++)
            b[i] -= L[i * k + p] * b[p];
        b[i] /= L[i * k + i];
    }
    for (int i = k - 1; i >= 0; i--) {
        for (int p = i + 1; p < k; p++)
            b[i] -= L[p * k + i] * b[p];
        b[i] /= L[i * k + i];
    }
}

/* The covariance over sill between samples i and j (kriging.h's model). */
static double cov_ij(int cov, const float *p, const int *lab, const int *don, const double *R, int i, int j,
                     const double *h)
{
    if (i == j)
        return 1 + h[1] + (lab ? h[2] : 0) + (don ? h[3] : 0);
    double dx = p[3 * i] - p[3 * j], dy = p[3 * i + 1] - p[3 * j + 1], dz = p[3 * i + 2] - p[3 * j + 2];
    double r = gi_cov_rho(cov, sqrt(dx * dx + dy * dy + dz * dz), h[0]);
    if (lab && lab[i] == lab[j])
        r += h[2];
    else if (lab && R)
        r += h[2] * h[4] * R[lab[i] * NL + lab[j]];
    if (don && don[i] == don[j])
        r += h[3];
    return r;
}

/* Reference: each gene's profile NLL from a dense solve on its measured
 * samples, 0.5 cnt log(sill) + 0.5 log|A_SS|; optionally gene g's weights
 * (alpha [N], 0 where unmeasured) and mean. */
static double reference_nll(int cov, const float *p, const int *lab, const int *don, const double *R, const float *y,
                            const double *h, int want_g, double *alpha, double *mu_out)
{
    double tot = 0;
    static double A[N * N], u[N], v[N];
    int idx[N];
    for (int g = 0; g < G; g++) {
        int k = 0;
        for (int i = 0; i < N; i++)
            if (!isnan(y[i * G + g]))
                idx[k++] = i;
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++)
                A[a * k + b] = cov_ij(cov, p, lab, don, R, idx[a], idx[b], h);
        double ld;
        if (chol(A, k, &ld) != 0)
            return NAN;
        for (int a = 0; a < k; a++) {
            u[a] = 1;
            v[a] = y[idx[a] * G + g];
        }
        chol_solve(A, k, u);
        chol_solve(A, k, v);
        double su = 0, sv = 0, yv = 0;
        for (int a = 0; a < k; a++) {
            su += u[a];
            sv += v[a];
            yv += y[idx[a] * G + g] * v[a];
        }
        double mu = sv / su, sill = (yv - 2 * mu * sv + mu * mu * su) / k;
        tot += 0.5 * k * log(sill) + 0.5 * ld;
        if (g == want_g) {
            for (int i = 0; i < N; i++)
                alpha[i] = 0;
            for (int a = 0; a < k; a++)
                alpha[idx[a]] = v[a] - mu * u[a];
            *mu_out = mu;
        }
    }
    return tot;
}

/* A small problem: smooth genes plus noise, label and donor offsets; a
 * fraction miss of the values unmeasured, gene 0 measured everywhere. */
static void make_problem(float *p, int *lab, int *don, double *R, float *y, double miss)
{
    unsigned s = 12345;
#define RND() ((s = s * 1103515245u + 12345u), (double)((s >> 8) & 0xffff) / 65536.0)
    for (int i = 0; i < N; i++) {
        for (int a = 0; a < 3; a++)
            p[3 * i + a] = (float)(60 * RND() - 30);
        lab[i] = (int)(RND() * NL) % NL;
        don[i] = (int)(RND() * 3) % 3;
    }
    for (int l = 0; l < NL; l++)
        for (int m = 0; m < NL; m++)
            R[l * NL + m] = l == m ? 1 : 0.3 * cos(l - m);
    for (int i = 0; i < N; i++)
        for (int g = 0; g < G; g++) {
            double v = sin(0.1 * (g + 1) * p[3 * i]) + cos(0.07 * p[3 * i + 1] - g) + 0.3 * lab[i] - 0.2 * don[i]
                       + 0.3 * (RND() - 0.5);
            y[i * G + g] = g > 0 && RND() < miss ? NAN : (float)v;
        }
#undef RND
}

/* miss 0.15: each gene's (A^-1)_MM from L^-1; 0.45: from A^-1 (kriging.c
 * switches when the genes' sum of n m^2 passes n^3/3). */
static void test_likelihood(double miss)
{
    static float p[3 * N], y[N * G];
    static int lab[N], don[N];
    static double R[NL * NL];
    make_problem(p, lab, don, R, y, miss);
    struct {
        const char *name;
        int cov, use_lab, use_don, use_R;
        double h[5];
    } cases[] = {
        {"ordinary kriging, exponential", GI_COV_EXPONENTIAL, 0, 0, 0, {12, 0.3, 0, 0, 0}},
        {"Matern 3/2 + donor effect", GI_COV_MATERN32, 0, 1, 0, {20, 0.1, 0, 0.4, 0}},
        {"regression kriging + donor, Matern 5/2", GI_COV_MATERN52, 1, 1, 0, {15, 0.2, 0.5, 0.2, 0}},
        {"regression kriging + label similarity", GI_COV_EXPONENTIAL, 1, 1, 1, {9, 0.05, 0.8, 0.1, 0.4}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int *L = cases[c].use_lab ? lab : NULL, *D = cases[c].use_don ? don : NULL;
        const double *Rp = cases[c].use_R ? R : NULL;
        double fast = NAN;
        int rc = gi_kriging_nll(cases[c].cov, N, p, L, D, Rp, NL, G, y, cases[c].h, &fast);
        double ref = reference_nll(cases[c].cov, p, L, D, Rp, y, cases[c].h, -1, NULL, NULL);
        char name[160];
        snprintf(name, sizeof name, "prior fit: batched likelihood = direct solve (%s, %.0f%% unmeasured)",
                 cases[c].name, 100 * miss);
        CHECKF(rc == 0 && fabs(fast - ref) <= 1e-9 * fabs(ref), name, "rc %d, batched %.15g, direct %.15g", rc, fast,
               ref);
    }
}

/* Weights from given hyperparameters (o.hyper): the prediction at new points
 * = mu + r'alpha with alpha from the direct solve. */
static void test_given_hyper_weights(void)
{
    static float p[3 * N], y[N * G];
    static int lab[N], don[N];
    static double R[NL * NL], alpha[N];
    make_problem(p, lab, don, R, y, 0.15);
    double h[5] = {14, 0.25, 0, 0, 0};
    gi_fit_data fd = {.n = N, .n_genes = G, .mni = p, .y = y, .donor = don};
    gi_method_opts o;
    memset(&o, 0, sizeof o);
    o.covariance = GI_COV_EXPONENTIAL;
    o.hyper = h;
    gi_err err = {{0}};
    gi_method *m = gi_method_fit(GI_METHOD_KRIGING, &o, &fd, &err);
    CHECKF(m != NULL, "prior fit: kriging with given hyperparameters fits", "%s", err.msg);
    if (!m)
        return;
    double got[5] = {0};
    CHECK(gi_kriging_hyper(m, got) == 0 && got[0] == h[0] && got[1] == h[1] && got[2] == 0 && got[3] == 0,
          "prior fit: the given hyperparameters are the model's");
    float q[3 * 4] = {0, 0, 0, 10, -5, 3, -20, 12, 7, 25, 25, -25};
    float out[4 * G];
    int rc = gi_method_predict(m, 4, q, NULL, out, &err);
    double worst = 0;
    for (int g = 0; rc == 0 && g < G; g++) {
        double mu;
        reference_nll(GI_COV_EXPONENTIAL, p, NULL, NULL, NULL, y, h, g, alpha, &mu);
        for (int k = 0; k < 4; k++) {
            double f = mu;
            for (int i = 0; i < N; i++) {
                double dx = q[3 * k] - p[3 * i], dy = q[3 * k + 1] - p[3 * i + 1], dz = q[3 * k + 2] - p[3 * i + 2];
                f += gi_cov_rho(GI_COV_EXPONENTIAL, sqrt(dx * dx + dy * dy + dz * dz), h[0]) * alpha[i];
            }
            worst = fmax(worst, fabs(f - out[k * G + g]) / (1 + fabs(f)));
        }
    }
    CHECKF(rc == 0 && worst < 1e-5, "prior fit: weights with unmeasured values = direct solve",
           "rc %d, worst relative difference %g", rc, worst);
    gi_method_free(m);
}

/* A small state (as test_checkpoint.c's), with or without prior_hyper. */
static int make_state(gi_state *st, gi_err *err)
{
    memset(st, 0, sizeof *st);
    gi_model_spec s = {.arch = GI_ARCH_SIREN, .gene_mode = GI_GENE_FACTORIZED, .hidden_layers = 1, .width = 8,
                       .omega0 = 10, .omega_hidden = 30, .fourier_features = 4, .fourier_scale = 1, .n_genes = 2,
                       .gene_dim = 4, .gene_frequencies = 3, .n_donors = 2, .donor_dim = 2, .n_labels = 0,
                       .anatomy_dim = 2};
    if (gi_model_init(&st->model, &s, 3, err) != 0 || gi_adam_init(&st->adam, st->model.n_params, err) != 0)
        return -1;
    st->best_params = calloc(st->model.n_params, sizeof(float));
    st->n_genes = 2;
    st->genes = calloc(2, sizeof(char *));
    st->genes[0] = strdup("A");
    st->genes[1] = strdup("B");
    st->n_donors = 2;
    st->donors = calloc(2, sizeof(char *));
    st->donors[0] = strdup("d1");
    st->donors[1] = strdup("d2");
    st->gene_mean = calloc(2, sizeof(float));
    st->gene_std = malloc(2 * sizeof(float));
    st->gene_std[0] = st->gene_std[1] = 1;
    st->gene_position = calloc(2, sizeof(float));
    st->label_values = calloc(1, sizeof(int));
    st->config_yaml = strdup("train:\n  steps: 5\n");
    st->best_val = INFINITY;
    return 0;
}

static void test_checkpoint_round_trip(void)
{
    gi_state st, back;
    gi_err err = {{0}};
    char path[] = "/tmp/geneinr-priorhyper-XXXXXX";
    close(mkstemp(path));
    int ok = make_state(&st, &err) == 0;
    st.n_prior_hyper = GI_PRIOR_HYPER_N;
    double h[GI_PRIOR_HYPER_N] = {64.52118445, 0.214485196, 0.3144219244, 0.3305211382, 0.25};
    memcpy(st.prior_hyper, h, sizeof h);
    ok = ok && gi_checkpoint_save(&st, path, &err) == 0;
    int rc = ok ? gi_checkpoint_load(&back, path, &err) : -1;
    CHECKF(rc == 0 && back.n_prior_hyper == GI_PRIOR_HYPER_N && memcmp(back.prior_hyper, h, sizeof h) == 0 &&
               back.sealed == 1,
           "prior fit: checkpoint round-trips prior_hyper bit for bit (sealed)", "%s", rc ? err.msg : "differs");
    if (rc == 0) {
        /* A state saved again as loaded (what `extend` does) keeps them. */
        char path2[] = "/tmp/geneinr-priorhyper2-XXXXXX";
        close(mkstemp(path2));
        gi_state again;
        int rc2 = gi_checkpoint_save(&back, path2, &err) == 0 ? gi_checkpoint_load(&again, path2, &err) : -1;
        CHECKF(rc2 == 0 && again.n_prior_hyper == GI_PRIOR_HYPER_N && memcmp(again.prior_hyper, h, sizeof h) == 0,
               "prior fit: a loaded state saved again keeps prior_hyper", "%s", rc2 ? err.msg : "differs");
        if (rc2 == 0)
            gi_state_free(&again);
        unlink(path2);
        gi_state_free(&back);
    }
    /* Without them (no prior, or an older checkpoint): loads with none. */
    st.n_prior_hyper = 0;
    ok = gi_checkpoint_save(&st, path, &err) == 0;
    rc = ok ? gi_checkpoint_load(&back, path, &err) : -1;
    CHECKF(rc == 0 && back.n_prior_hyper == 0, "prior fit: a checkpoint without prior_hyper loads with none", "%s",
           rc ? err.msg : "has some");
    if (rc == 0)
        gi_state_free(&back);
    gi_state_free(&st);
    unlink(path);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    test_likelihood(0.15);
    test_likelihood(0.45);
    test_given_hyper_weights();
    test_checkpoint_round_trip();
    MPI_Finalize();
    return check_summary();
}
