/* test_dataset.c - the training targets over data.prior (dataset.h, prior.h).
 *
 * A small sample table (a smooth field plus noise, two genes, three donors)
 * is built three ways with the kriging prior: in-sample residuals, cross-
 * fitted residuals (data.prior_crossfit) and, for prediction, the prior
 * refitted on every sample (data.prior_refit). Each is checked against the
 * kriging method fitted directly on the right samples: the cross-fitted prior
 * at a training sample must be exactly the prediction of a fit that did not
 * see that sample's fold, the refitted prior exactly a fit on all samples.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "geneinr/config.h"
#include "geneinr/dataset.h"
#include "geneinr/method.h"
#include "geneinr/prior.h"
#include "geneinr/rng.h"

enum { N = 240, G = 2, K = 4 };

static const char *write_table(void)
{
    static char path[512];
    const char *dir = getenv("TESTTMP");
    snprintf(path, sizeof path, "%s/test_dataset_samples.csv", dir && dir[0] ? dir : "/tmp");
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fprintf(f, "well_id,donor,mni_x,mni_y,mni_z,GA,GB\n");
    for (int i = 0; i < N; i++) {
        double x = -60 + 120 * gi_rng_uniform(7, 1, (uint64_t)(3 * i)), y = -80 + 140 * gi_rng_uniform(7, 1, (uint64_t)(3 * i + 1)),
               z = -40 + 100 * gi_rng_uniform(7, 1, (uint64_t)(3 * i + 2));
        double a = sin(x / 15) + cos(y / 20) + 0.3 * gi_rng_normal(7, 2, (uint64_t)i);
        double b = 0.02 * z + sin((x + y) / 25) + 0.3 * gi_rng_normal(7, 3, (uint64_t)i);
        fprintf(f, "w%d,D%d,%.4f,%.4f,%.4f,%.6f,%.6f\n", i, i % 3, x, y, z, a, b);
    }
    return fclose(f) == 0 ? path : NULL;
}

/* The kriging prior as prior.c fits it, on the standardised values std of
 * the samples with use[i] set. */
static gi_method *fit_on(const gi_config *c, const gi_dataset *d, const float *std, const unsigned char *use,
                         const gi_method *hyper_from, gi_err *err)
{
    static float mni[N * 3], y[N * G];
    static int don[N];
    int k = 0;
    for (int i = 0; i < N; i++)
        if (use[i]) {
            memcpy(mni + 3 * k, d->s.mni + 3 * i, sizeof(float) * 3);
            memcpy(y + G * k, std + G * i, sizeof(float) * G);
            don[k] = d->s.donor[i];
            k++;
        }
    gi_fit_data fd = {.n = k, .n_genes = G, .mni = mni, .y = y, .donor = don};
    gi_method_opts o;
    gi_method_opts_from_config(&o, c);
    o.donor_effect = c->data.prior_donor_effect;
    o.hyper_from = hyper_from;
    return gi_method_fit(GI_METHOD_KRIGING, &o, &fd, err);
}

/* The cross-fitted prior of each training sample must equal, bit for bit,
 * the prediction of a kriging fit (the training fit's hyperparameters) on
 * the training samples outside that sample's fold. */
static void test_crossfit_and_refit(const char *table)
{
    gi_config c;
    gi_err err = { "" };
    gi_config_defaults(&c);
    snprintf(c.data.samples, sizeof c.data.samples, "%s", table);
    c.data.prior = GI_PRIOR_KRIGING;
    c.data.prior_donor_effect = 1;
    c.train.val_mode = GI_VAL_FRACTION;
    c.train.val_fraction = 0.2f;
    c.baseline.fit_samples = 0;
    gi_config plain = c, cf = c, rf = c;
    plain.data.prior = GI_PRIOR_NONE;
    cf.data.prior_crossfit = K;
    rf.data.prior_refit = 1;
    CHECKF(gi_config_validate(&cf, &err) == 0 && gi_config_validate(&rf, &err) == 0, "test configs are valid", "%s",
           err.msg);
    gi_dataset d0, din, dcf, drf;
    gi_prior_fit pin, pcf, prf;
    int ok = gi_dataset_build(&d0, &plain, &err) == 0;
    ok = ok && gi_dataset_build(&din, &c, &err) == 0 && gi_prior_apply(&pin, &din, &c, GI_PRIOR_FOR_TRAIN, &err) == 0;
    ok = ok && gi_dataset_build(&dcf, &cf, &err) == 0 && gi_prior_apply(&pcf, &dcf, &cf, GI_PRIOR_FOR_TRAIN, &err) == 0;
    ok = ok && gi_dataset_build(&drf, &rf, &err) == 0 && gi_prior_apply(&prf, &drf, &rf, GI_PRIOR_FOR_PREDICT, &err) == 0;
    CHECKF(ok, "datasets with in-sample, cross-fitted and refitted priors build", "%s", err.msg);
    if (!ok)
        return;
    CHECK(d0.n_val > 10 && d0.n_train > 100, "the split has training and validation samples");

    /* Validation samples: the prior fitted on the training samples, untouched by cross-fitting. */
    int val_same = 1, train_differs = 0;
    double se_in = 0, se_cf = 0, se_val = 0;
    int n_tr = 0, n_val = 0;
    for (int i = 0; i < N; i++)
        for (int g = 0; g < G; g++) {
            size_t q = (size_t)i * G + g;
            if (isnan(d0.y[q]))
                continue;
            if (d0.is_val[i]) {
                val_same &= pcf.at[q] == pin.at[q];
                se_val += (double)din.y[q] * din.y[q];
                n_val++;
            } else {
                train_differs += pcf.at[q] != pin.at[q];
                se_in += (double)din.y[q] * din.y[q];
                se_cf += (double)dcf.y[q] * dcf.y[q];
                n_tr++;
            }
        }
    CHECK(val_same, "crossfit: validation samples keep the training fit's prior");
    CHECK(train_differs > n_tr / 2, "crossfit: training samples get another prior than the in-sample one");
    printf("# residual MSE: in-sample %.4f, cross-fitted %.4f, validation %.4f\n", se_in / n_tr, se_cf / n_tr,
           se_val / n_val);
    CHECKF(se_cf / n_tr > 1.2 * (se_in / n_tr), "crossfit: out-of-fold residuals are larger than in-sample ones",
           "%.4f vs %.4f", se_cf / n_tr, se_in / n_tr);

    /* Each training sample's cross-fitted prior is the prediction of the fit on the other folds
     * (hyperparameters from the training fit). */
    static unsigned char use[N];
    static float pred[K][N * G];
    int fits = 1, matched = 0, unmatched = 0;
    int fold[N];
    for (int i = 0; i < N; i++)
        fold[i] = d0.is_val[i] ? -1 : gi_prior_crossfit_fold(&cf, i);
    /* Predicted at the fold's samples in index order, as prior.c does (a kernel may round a
     * row by its place in the batch). */
    static float fmni[N * 3];
    static int fidx[N];
    for (int f = 0; f < K && fits; f++) {
        int nf = 0;
        for (int i = 0; i < N; i++) {
            use[i] = fold[i] >= 0 && fold[i] != f;
            if (fold[i] == f) {
                memcpy(fmni + 3 * nf, d0.s.mni + 3 * i, sizeof(float) * 3);
                fidx[nf++] = i;
            }
        }
        gi_method *m = fit_on(&c, &d0, d0.y, use, pin.m, &err);
        fits = m && gi_method_predict(m, nf, fmni, NULL, pred[f], &err) == 0;
        gi_method_free(m);
        for (int k = 0; k < nf && fits; k++) {
            int same = 1;
            for (int g = 0; g < G; g++)
                same &= pred[f][k * G + g] == pcf.at[(size_t)fidx[k] * G + g];
            matched += same;
            unmatched += !same;
        }
    }
    CHECKF(fits, "leave-one-fold-out kriging fits", "%s", err.msg);
    CHECKF(fits && unmatched == 0 && matched == d0.n_train,
           "crossfit: each training sample's prior is exactly the fit without its fold", "%d of %d matched", matched,
           d0.n_train);
    int folds_used[K] = {0};
    for (int i = 0; i < N; i++)
        if (fold[i] >= 0 && fold[i] < K)
            folds_used[fold[i]]++;
    int all_used = 1;
    for (int f = 0; f < K; f++)
        all_used &= folds_used[f] > d0.n_train / (2 * K);
    CHECK(all_used, "crossfit: every fold holds a fair share of the training samples");

    /* Refit: the prediction prior is an ML fit on every sample (validation included). */
    for (int i = 0; i < N; i++)
        use[i] = 1;
    gi_method *all = fit_on(&c, &d0, d0.y, use, NULL, &err);
    int same = all != NULL, differs = 0;
    if (all && gi_method_predict(all, N, d0.s.mni, NULL, pred[0], &err) == 0)
        for (int q = 0; q < N * G; q++) {
            same &= pred[0][q] == prf.at[q];
            differs += prf.at[q] != pin.at[q];
        }
    else
        same = 0;
    gi_method_free(all);
    CHECKF(same, "refit: the prediction prior is the fit on every sample", "%s", err.msg);
    CHECK(differs > N, "refit: it differs from the training samples' fit");
    int norm_same = 1;
    for (int g = 0; g < G; g++)
        norm_same &= drf.gene_mean[g] == din.gene_mean[g] && drf.gene_std[g] == din.gene_std[g];
    CHECK(norm_same, "refit: the normalisation stays that of the training samples");

    /* A PREDICT build without refit is the training prior, without the cross-fitting cost. */
    gi_dataset dp;
    gi_prior_fit pp;
    if (gi_dataset_build(&dp, &cf, &err) == 0 && gi_prior_apply(&pp, &dp, &cf, GI_PRIOR_FOR_PREDICT, &err) == 0) {
        int eq = 1;
        for (int q = 0; q < N * G; q++)
            eq &= pp.at[q] == pin.at[q];
        CHECK(eq, "predict build of a crossfit config: the prior fitted on the training samples");
        gi_prior_free(&pp);
        gi_dataset_free(&dp);
    } else
        CHECKF(0, "predict build of a crossfit config", "%s", err.msg);
    gi_prior_free(&pin);
    gi_prior_free(&pcf);
    gi_prior_free(&prf);
    gi_dataset_free(&d0);
    gi_dataset_free(&din);
    gi_dataset_free(&dcf);
    gi_dataset_free(&drf);
}

/* A gene with one value in every training sample is refused by name (issue
 * 27: it used to get std 1 and render the network's noise as a range). */
static void test_constant_gene(void)
{
    char path[512];
    const char *dir = getenv("TESTTMP");
    snprintf(path, sizeof path, "%s/test_dataset_const.csv", dir && dir[0] ? dir : "/tmp");
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "well_id,donor,mni_x,mni_y,mni_z,GA,FLAT\n");
    for (int i = 0; i < 20; i++)
        fprintf(f, "w%d,D%d,%d,%d,%d,%d,0.1\n", i, i % 2, i, -i, 2 * i, i % 7);
    fclose(f);
    gi_config c;
    gi_config_defaults(&c);
    snprintf(c.data.samples, sizeof c.data.samples, "%s", path);
    c.train.val_mode = GI_VAL_NONE;
    gi_dataset d;
    gi_err err = {{0}};
    int rc = gi_dataset_build(&d, &c, &err);
    CHECKF(rc != 0 && strstr(err.msg, "gene 'FLAT' has the same value (0.1) in all 20 training samples"),
           "a constant gene is refused by name, with its value", "rc %d: %s", rc, err.msg);
    if (rc == 0)
        gi_dataset_free(&d);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    const char *table = write_table();
    CHECK(table != NULL, "sample table written");
    if (table)
        test_crossfit_and_refit(table);
    test_constant_gene();
    MPI_Finalize();
    return check_summary();
}
