/* test_extend.c - new readout rows (readout.h) and their ridge fit (extend.h).
 *
 *  - gi_state_add_genes keeps every old parameter, moment and name bit for
 *    bit, puts the new rows in both weight buffers with zero moments, and the
 *    grown model's outputs for the old genes equal the old model's bit for bit;
 *  - gi_readout_features are the trunk of gi_model_forward: the features
 *    times a row plus its bias are that gene's output;
 *  - the ridge rows have zero gradient of their own objective (the property
 *    that holds exactly, to float rounding of the stored row), recover an
 *    exact linear readout with the weakest penalty, and choose the penalty
 *    that the validation samples favour.
 * Why not "a trained gene re-extended gives its trained row": training reaches
 * its rows by AdamW with decoupled weight decay, stopped early, jointly with
 * the trunk; that row minimises no ridge objective on the final trunk. It is
 * compared by its map in tests/it_extend.sh.
 */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "geneinr/checkpoint.h"
#include "geneinr/config.h"
#include "geneinr/extend.h"
#include "geneinr/readout.h"
#include "geneinr/rng.h"

static gi_model_spec spec_of(int arch)
{
    gi_model_spec s;
    memset(&s, 0, sizeof s);
    s.arch = arch;
    s.gene_mode = GI_GENE_FACTORIZED;
    s.hidden_layers = 2;
    s.width = 16;
    s.omega0 = 3.0f;
    s.omega_hidden = 3.0f;
    s.fourier_features = 6;
    s.fourier_scale = 0.5f;
    s.n_genes = 3;
    s.n_donors = 3;
    s.donor_dim = 2;
    s.n_labels = 4;
    s.anatomy_dim = 3;
    return s;
}

#define NP 300

static void points(float *xyz, int *donor, int *label, int n, uint64_t seed)
{
    for (int i = 0; i < n; i++) {
        for (int a = 0; a < 3; a++)
            xyz[3 * i + a] = (float)(2 * gi_rng_uniform(seed, 1, (uint64_t)(3 * i + a)) - 1);
        donor[i] = (int)gi_rng_below(seed, 2, (uint64_t)i, 3) - (i % 7 == 0); /* some donor averages (-1) */
        label[i] = (int)gi_rng_below(seed, 3, (uint64_t)i, 4);
    }
}

static void test_add_genes(int arch)
{
    gi_err err;
    gi_state st;
    memset(&st, 0, sizeof st);
    gi_model_spec spec = spec_of(arch);
    int ok = gi_model_init(&st.model, &spec, 5, &err) == 0 && gi_adam_init(&st.adam, st.model.n_params, &err) == 0;
    CHECKF(ok, "add_genes: model", "%s", err.msg);
    if (!ok)
        return;
    size_t np = st.model.n_params;
    st.n_genes = 3;
    st.genes = calloc(4, sizeof(char *));
    st.gene_mean = malloc(sizeof(float) * 3);
    st.gene_std = malloc(sizeof(float) * 3);
    st.gene_position = calloc(3, sizeof(float));
    st.best_params = malloc(sizeof(float) * np);
    for (int g = 0; g < 3; g++) {
        char name[8];
        snprintf(name, sizeof name, "A%d", g);
        st.genes[g] = strdup(name);
        st.gene_mean[g] = (float)g;
        st.gene_std[g] = 1.0f + g;
    }
    for (size_t q = 0; q < np; q++) {
        st.best_params[q] = st.model.params[q] * 0.5f;
        st.adam.m[q] = (float)q;
        st.adam.v[q] = (float)(2 * q);
    }
    st.model.donor_in_average[1] = 0;
    gi_state old;   /* what must not change */
    gi_model_alloc(&old.model, &spec, &err);
    memcpy(old.model.params, st.model.params, sizeof(float) * np);
    memcpy(old.model.fixed, st.model.fixed, sizeof(float) * st.model.n_fixed);
    memcpy(old.model.donor_in_average, st.model.donor_in_average, 3);
    float *oldbest = malloc(sizeof(float) * np);
    memcpy(oldbest, st.best_params, sizeof(float) * np);

    int W = spec.width, k = 2;
    float w[2 * 16], b[2] = {0.25f, -0.5f}, mean[2] = {10, 11}, sd[2] = {2, 3};
    for (int q = 0; q < k * W; q++)
        w[q] = (float)q / 7;
    char *names[2] = {"N0", "N1"};
    ok = gi_state_add_genes(&st, k, names, mean, sd, w, b, &err) == 0;
    CHECKF(ok, "add_genes: grows", "%s", err.msg);
    if (!ok)
        return;
    const gi_model *nm = &st.model;
    const gi_layer *lo = &old.model.layers[old.model.n_layers - 1], *ln = &nm->layers[nm->n_layers - 1];
    CHECK(st.n_genes == 5 && nm->spec.n_genes == 5 && nm->n_out == 5 && st.adam.n == nm->n_params, "add_genes: sizes");
    int same = memcmp(nm->params, old.model.params, sizeof(float) * lo->w_off) == 0 &&
               memcmp(nm->params + ln->w_off, old.model.params + lo->w_off, sizeof(float) * 3 * W) == 0 &&
               memcmp(nm->params + ln->b_off, old.model.params + lo->b_off, sizeof(float) * 3) == 0 &&
               memcmp(nm->params + nm->donor_off, old.model.params + old.model.donor_off,
                      sizeof(float) * (old.model.n_params - old.model.donor_off)) == 0 &&
               memcmp(st.best_params, oldbest, sizeof(float) * lo->w_off) == 0 &&
               memcmp(st.best_params + ln->b_off, oldbest + lo->b_off, sizeof(float) * 3) == 0;
    CHECK(same, "add_genes: old parameters (latest and best) keep their bits and places");
    CHECK(memcmp(nm->params + ln->w_off + 3 * W, w, sizeof w) == 0 && memcmp(nm->params + ln->b_off + 3, b, sizeof b) == 0
              && memcmp(st.best_params + ln->w_off + 3 * W, w, sizeof w) == 0,
          "add_genes: new rows and biases in both weight buffers");
    int zero = 1, mom = 1;
    for (int q = 0; q < k * W; q++)
        zero &= st.adam.m[ln->w_off + 3 * W + q] == 0 && st.adam.v[ln->w_off + 3 * W + q] == 0;
    for (size_t q = 0; q < lo->w_off; q++)
        mom &= st.adam.m[q] == (float)q && st.adam.v[q] == (float)(2 * q);
    CHECK(zero && mom, "add_genes: new moments zero, old moments kept");
    CHECK(!strcmp(st.genes[1], "A1") && !strcmp(st.genes[4], "N1") && st.gene_mean[3] == 10 && st.gene_std[4] == 3 &&
              st.gene_std[2] == 3 && nm->donor_in_average[1] == 0 &&
              memcmp(nm->fixed, old.model.fixed, sizeof(float) * nm->n_fixed) == 0,
          "add_genes: names, normalisation, donor average and fixed part");

    /* Outputs: the old genes bit for bit; a new gene = features . row + bias. */
    float xyz[3 * NP], *o1 = malloc(sizeof(float) * NP * 3), *o2 = malloc(sizeof(float) * NP * 5);
    float *h = malloc(sizeof(float) * NP * W);
    int donor[NP], label[NP];
    points(xyz, donor, label, NP, 11);
    gi_batch bt = {NP, xyz, donor, label, NULL};
    gi_workspace *w1 = gi_workspace_new_inference(&old.model, NP), *w2 = gi_workspace_new_inference(nm, NP);
    gi_model_forward(&old.model, &bt, w1, o1);
    gi_model_forward(nm, &bt, w2, o2);
    /* The output layer's GEMM has more rows now: a kernel may round a
     * product otherwise by the matrix's shape (the render's gene groups do
     * the same), so equal within float rounding, reported in ulp. */
    double dmax = 0, omax = 0;
    for (int i = 0; i < NP; i++)
        for (int g = 0; g < 3; g++) {
            dmax = fmax(dmax, fabs((double)o1[3 * i + g] - o2[5 * i + g]));
            omax = fmax(omax, fabs((double)o1[3 * i + g]));
        }
    printf("# add_genes: the old genes' outputs differ by at most %.3g (largest output %.3g)\n", dmax, omax);
    CHECKF(dmax <= 1e-6 * omax, "add_genes: the old genes' outputs are equal within float rounding",
           "%g of %g", dmax, omax);
    ok = gi_readout_features(nm, NP, xyz, donor, label, h, &err) == 0;
    double worst = 0;
    for (int i = 0; ok && i < NP; i++) {
        double s = b[1];
        for (int j = 0; j < W; j++)
            s += (double)h[i * W + j] * w[W + j];
        worst = fmax(worst, fabs(s - o2[5 * i + 4]) / (1 + fabs(s)));
    }
    CHECKF(ok && worst < 1e-5, "readout features: features . row + bias = the gene's output", "rel err %g", worst);
    gi_workspace_free(w1);
    gi_workspace_free(w2);
    free(o1); free(o2); free(h); free(oldbest);
    gi_model_free(&old.model);
    gi_state_free(&st);

    /* concat: refused */
    gi_state cs;
    memset(&cs, 0, sizeof cs);
    gi_model_spec sc = spec_of(arch);
    sc.gene_mode = GI_GENE_CONCAT;
    sc.gene_code = GI_CODE_EMBEDDING;
    sc.gene_dim = 2;
    gi_model_init(&cs.model, &sc, 1, &err);
    CHECK(gi_state_add_genes(&cs, 1, names, mean, sd, w, b, &err) != 0 && strstr(err.msg, "factorized"),
          "add_genes: a concat model is refused");
    gi_model_free(&cs.model);
}

/* Ridge on synthetic features: t = h . w0 + b0 + noise. */
static void test_ridge(void)
{
    gi_err err;
    gi_model_spec spec = spec_of(GI_ARCH_FOURIER);
    gi_model m;
    gi_model_alloc(&m, &spec, &err);
    int W = spec.width, n = 400, ntr = 340, nv = n - ntr, k = 3;
    float *h = malloc(sizeof(float) * n * W), *t = malloc(sizeof(float) * n * k);
    float *w = malloc(sizeof(float) * k * W), b[3];
    int *ftr = malloc(sizeof(int) * ntr), *fv = malloc(sizeof(int) * nv);
    double w0[16];
    for (int j = 0; j < W; j++)
        w0[j] = gi_rng_uniform(3, 9, (uint64_t)j) - 0.5;
    for (int i = 0; i < n; i++) {
        double s = 0.3;
        for (int j = 0; j < W; j++) {
            /* correlated, positive (ReLU-like) features */
            float v = (float)(gi_rng_uniform(3, 1, (uint64_t)(i * W + j)) + 0.5 * gi_rng_uniform(3, 2, (uint64_t)i));
            h[i * W + j] = v;
            s += v * w0[j];
        }
        double noise = gi_rng_normal(3, 5, (uint64_t)i);
        t[i * k + 0] = (float)s;                       /* exact */
        t[i * k + 1] = (float)(s + 2 * noise);         /* noisy */
        t[i * k + 2] = i % 5 == 0 ? NAN : (float)(s + 0.5 * noise); /* missing values */
    }
    for (int i = 0; i < ntr; i++)
        ftr[i] = i;
    for (int i = 0; i < nv; i++)
        fv[i] = ntr + i;
    gi_extend_gene info[3];
    int ok = gi_extend_ridge(&m, h, ntr, ftr, nv, fv, t, k, w, b, info, MPI_COMM_SELF, &err) == 0;
    CHECKF(ok, "ridge: fits", "%s", err.msg);
    if (!ok)
        return;
    /* Zero gradient: sum_i r_i = 0 (the bias) and sum_i h_i r_i + lambda w = 0,
     * relative to the size of the terms (the row is stored as floats). */
    for (int g = 0; g < k; g++) {
        double gb = 0, gw = 0, g0 = 0, sr = 0, mt = 0;
        int cnt = 0;
        double *gr = calloc((size_t)W, sizeof(double)), *gz = calloc((size_t)W, sizeof(double));
        for (int i = 0; i < ntr; i++)
            if (!isnan(t[i * k + g])) {
                mt += t[i * k + g];
                cnt++;
            }
        mt /= cnt;
        for (int i = 0; i < ntr; i++) {
            double y = t[i * k + g];
            if (isnan(y))
                continue;
            double p = b[g];
            for (int j = 0; j < W; j++)
                p += (double)h[i * W + j] * w[g * W + j];
            double r = p - y;
            gb += r;
            sr += fabs(y - mt);
            for (int j = 0; j < W; j++) {
                gr[j] += h[i * W + j] * r;
                gz[j] += h[i * W + j] * (mt - y);
            }
        }
        for (int j = 0; j < W; j++) {
            double gj = gr[j] + info[g].lambda * w[g * W + j];
            gw += gj * gj;
            g0 += gz[j] * gz[j];
        }
        free(gr);
        free(gz);
        char name[80];
        snprintf(name, sizeof name, "ridge: gene %d: zero gradient of the ridge objective at its row", g + 1);
        /* |gradient at the row| against |gradient at the zero row (bias = mean)| */
        CHECKF(fabs(gb) < 1e-5 * sr && sqrt(gw) < 1e-5 * sqrt(g0), name,
               "bias gradient %g (sum |t - mean| %g), row gradient %g (at zero %g), lambda %g", gb, sr, sqrt(gw),
               sqrt(g0), info[g].lambda);
    }
    double e0 = 0;
    for (int j = 0; j < W; j++)
        e0 = fmax(e0, fabs(w[j] - w0[j]));
    CHECKF(info[0].alpha == GI_EXTEND_ALPHAS[GI_EXTEND_N_ALPHAS - 1] && e0 < 0.02 && fabs(b[0] - 0.3) < 0.05,
           "ridge: an exact readout is recovered with the weakest penalty", "alpha %g, max |w - w0| %g, b %g",
           info[0].alpha, e0, b[0]);
    CHECKF(info[1].alpha > info[0].alpha && info[1].val_mse < info[1].val_mse_zero,
           "ridge: noisy targets get a stronger penalty and beat the zero row", "alpha %g, val mse %g vs %g",
           info[1].alpha, info[1].val_mse, info[1].val_mse_zero);
    CHECK(info[2].n_train == ntr - (ntr + 4) / 5 && info[2].n_val < nv && info[0].n_val == nv,
          "ridge: counts of measured samples");
    /* A gene's row depends on its own column only (not on the genes fitted
     * with it, nor on the factorisations kept from them): what makes the
     * rows the same whatever rank fits which gene. */
    float *t1 = malloc(sizeof(float) * n), w1[16], b1[1];
    gi_extend_gene i1[1];
    for (int i = 0; i < n; i++)
        t1[i] = t[i * k + 2];
    ok = gi_extend_ridge(&m, h, ntr, ftr, nv, fv, t1, 1, w1, b1, i1, MPI_COMM_SELF, &err) == 0;
    CHECK(ok && memcmp(w1, w + 2 * W, sizeof w1) == 0 && b1[0] == b[2] && i1[0].alpha == info[2].alpha,
          "ridge: a gene fitted alone gets the same bits as among others");
    free(t1);
    /* Without validation samples: generalised cross-validation chooses. */
    gi_extend_gene i2[3];
    float w2[3 * 16], b2[3];
    ok = gi_extend_ridge(&m, h, ntr, ftr, 0, fv, t, k, w2, b2, i2, MPI_COMM_SELF, &err) == 0;
    CHECKF(ok && isnan(i2[1].val_mse) && i2[1].alpha >= i2[0].alpha, "ridge: no validation samples (GCV)", "%s",
           ok ? "" : err.msg);
    /* A gene with one training value is refused. */
    for (int i = 1; i < n; i++)
        t[i * k + 2] = NAN;
    CHECK(gi_extend_ridge(&m, h, ntr, ftr, nv, fv, t, k, w, b, info, MPI_COMM_SELF, &err) != 0 &&
              strstr(err.msg, "at least 2"),
          "ridge: a gene with one measured training sample is refused");
    free(h); free(t); free(w); free(ftr); free(fv);
    gi_model_free(&m);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    test_add_genes(GI_ARCH_FOURIER);
    test_add_genes(GI_ARCH_SIREN);
    test_ridge();
    MPI_Finalize();
    return check_summary();
}
