/* dataset.c - sample table -> normalised inputs, standardised targets, split. */
#include "geneinr/dataset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/anatomy.h"
#include "geneinr/label_match.h"
#include "geneinr/method.h"
#include "geneinr/model.h"
#include "geneinr/rng.h"

#define STREAM_CROSSFIT (GI_STREAM_SPLIT + 30)

/* Label indices of the samples (label_match.h: the voxel rule, or with
 * data.anatomy_tolerance / data.anatomy_labels the nearest allowed label):
 * every model that uses the anatomy (embedding, data.prior, regression
 * kriging) sees these same labels. */
static int attach_anatomy(gi_dataset *d, const gi_config *c, gi_err *err)
{
    gi_anatomy a;
    if (gi_anatomy_load(&a, c->data.anatomy, NULL, 0, err) != 0)
        return -1;
    gi_label_match m;
    if (gi_label_match_samples(&m, &a, &d->s, c, err) != 0) {
        gi_anatomy_free(&a);
        return -1;
    }
    d->label_values = malloc(sizeof *d->label_values * (size_t)a.n_labels);
    if (!d->label_values) {
        gi_label_match_free(&m);
        gi_anatomy_free(&a);
        return gi_fail(err, "out of memory");
    }
    memcpy(d->label_values, a.values, sizeof *a.values * (size_t)a.n_labels);
    d->n_labels = a.n_labels;
    d->label = m.label;       /* the dataset owns the labels now */
    m.label = NULL;
    d->match = m.sum;
    gi_label_match_free(&m);
    gi_anatomy_free(&a);
    return 0;
}

static int split(gi_dataset *d, const gi_config *c, gi_err *err)
{
    const gi_samples *s = &d->s;
    d->val_donor = -1;
    if (c->train.val_mode == GI_VAL_DONOR) {
        d->val_donor = gi_samples_donor_index(s, c->train.val_donor);
        if (d->val_donor < 0)
            return gi_fail(err, "train.val_donor: '%s' is not a donor of %s (donors: %s%s)",
                           c->train.val_donor, c->data.samples, s->donor_names[0],
                           s->n_donors > 1 ? ", ..." : "");
    }
    for (int i = 0; i < s->n; i++) {
        int v = 0;
        if (c->train.val_mode == GI_VAL_FRACTION)
            v = gi_rng_uniform(c->train.seed, GI_STREAM_SPLIT, (uint64_t)i) < c->train.val_fraction;
        else if (c->train.val_mode == GI_VAL_DONOR)
            v = s->donor[i] == d->val_donor;
        d->is_val[i] = (unsigned char)v;
        d->n_val += v;
    }
    d->n_train = s->n - d->n_val;
    if (d->n_train < 1)
        return gi_fail(err, "the validation split leaves no training samples");
    if (c->train.val_mode != GI_VAL_NONE && d->n_val < 1)
        return gi_fail(err, "the validation split is empty (train.val_fraction %g of %d samples); "
                       "raise train.val_fraction or set train.validation: none", c->train.val_fraction, s->n);
    return 0;
}

/* Standardise in place: the table's values become the targets (y), so a rank
 * holds the sample table once (15,600 genes x 3,700 samples is 230 MB).
 * Row-major passes with one accumulator per gene keep each gene's sums in
 * sample order, the same arithmetic as a gene-by-gene loop. */
static int standardise(gi_dataset *d, const char *path, gi_err *err)
{
    gi_samples *s = &d->s;
    int G = s->n_genes;
    double *sum = calloc((size_t)G, sizeof *sum), *sum2 = calloc((size_t)G, sizeof *sum2);
    long *cnt = calloc((size_t)G, sizeof *cnt);
    int rc = 0;
    if (!sum || !sum2 || !cnt) {
        rc = gi_fail(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < s->n; i++) {
        if (d->is_val[i])
            continue;
        const float *row = s->values + (size_t)i * G;
        for (int g = 0; g < G; g++)
            if (!isnan(row[g])) {
                sum[g] += row[g];
                cnt[g]++;
            }
    }
    for (int g = 0; g < G; g++)
        if (cnt[g] < 2) {
            rc = gi_fail(err, "%s: gene '%s' has %ld measured value%s among the training samples; at least 2 "
                         "are needed to learn it (drop the column or change the validation split)",
                         path, s->gene_names[g], cnt[g], cnt[g] == 1 ? "" : "s");
            goto done;
        }
    for (int g = 0; g < G; g++)
        sum[g] /= cnt[g]; /* the mean */
    for (int i = 0; i < s->n; i++) {
        if (d->is_val[i])
            continue;
        const float *row = s->values + (size_t)i * G;
        for (int g = 0; g < G; g++)
            if (!isnan(row[g]))
                sum2[g] += (row[g] - sum[g]) * (row[g] - sum[g]);
    }
    for (int g = 0; g < G; g++) {
        double sd = sqrt(sum2[g] / (double)(cnt[g] - 1));
        if (!(sd > 1e-12))
            sd = 1; /* constant gene: keep values, avoid dividing by zero */
        d->gene_mean[g] = (float)sum[g];
        d->gene_std[g] = (float)sd;
        sum2[g] = sd;
    }
    for (int i = 0; i < s->n; i++) {
        float *row = s->values + (size_t)i * G;
        for (int g = 0; g < G; g++)
            if (!isnan(row[g]))
                row[g] = (float)((row[g] - sum[g]) / sum2[g]);
    }
    /* The values now are the targets: y owns them, s.values is gone. */
    d->y = s->values;
    s->values = NULL;
done:
    free(sum);
    free(sum2);
    free(cnt);
    return rc;
}

/* The prior (data.prior) fitted on the samples with use[i] set, in
 * standardised units (d->y must still hold the standardised values).
 * hyper_from: reuse that fit's kriging hyperparameters instead of fitting
 * them. */
static gi_method *fit_prior(const gi_dataset *d, const gi_config *c, const unsigned char *use,
                            const gi_method *hyper_from, gi_err *err)
{
    const gi_samples *s = &d->s;
    size_t n = (size_t)s->n, G = (size_t)s->n_genes;
    int kind = c->data.prior == GI_PRIOR_RK ? GI_METHOD_RK : GI_METHOD_KRIGING;
    float *mni = malloc(sizeof(float) * 3 * n), *y = malloc(sizeof(float) * n * G);
    int *lab = d->label ? malloc(sizeof(int) * n) : NULL, *don = malloc(sizeof(int) * n);
    gi_method *m = NULL;
    if (!mni || !y || (d->label && !lab) || !don) {
        gi_fail(err, "out of memory for data.prior");
        goto done;
    }
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!use[i])
            continue;
        memcpy(mni + 3 * (size_t)k, s->mni + 3 * i, sizeof(float) * 3);
        memcpy(y + (size_t)k * G, d->y + i * G, sizeof(float) * G);
        if (lab)
            lab[k] = d->label[i];
        don[k] = s->donor[i];
        k++;
    }
    gi_fit_data fd = {.n = k, .n_genes = (int)G, .mni = mni, .y = y, .donor = don, .label = lab, .n_labels = d->n_labels};
    gi_method_opts o;
    gi_method_opts_from_config(&o, c);
    o.donor_effect = c->data.prior_donor_effect;
    o.label_similarity = c->data.prior_label_similarity;
    o.hyper_from = hyper_from;
    m = gi_method_fit(kind, &o, &fd, err);
    if (!m)
        gi_fail_prefix(err, "data.prior %s", GI_METHOD_NAMES[kind]);
done:
    free(mni); free(y); free(lab); free(don);
    return m;
}

int gi_dataset_crossfit_fold(const gi_config *c, int i)
{
    return (int)gi_rng_below(c->train.seed, STREAM_CROSSFIT, (uint64_t)i, (uint64_t)c->data.prior_crossfit);
}

/* data.prior_crossfit = K: the prior at each training sample comes from a
 * fit on the other K-1 folds of the training samples (hyperparameters of the
 * full training fit), so the residual the network learns is the prior's
 * held-out error, not its near-interpolating in-sample error. Folds are a
 * pure function of train.seed and the sample index (any rank, any count). */
static int crossfit_prior(gi_dataset *d, const gi_config *c, gi_err *err)
{
    const gi_samples *s = &d->s;
    size_t n = (size_t)s->n, G = (size_t)s->n_genes;
    int K = c->data.prior_crossfit;
    unsigned char *use = malloc(n);
    int *fold = malloc(sizeof(int) * n), *idx = malloc(sizeof(int) * n);
    float *mni = malloc(sizeof(float) * 3 * n), *pred = malloc(sizeof(float) * n * G);
    int *lab = malloc(sizeof(int) * n);
    int rc = 0;
    if (!use || !fold || !idx || !mni || !pred || !lab) {
        rc = gi_fail(err, "out of memory for data.prior_crossfit");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        fold[i] = d->is_val[i] ? -1 : gi_dataset_crossfit_fold(c, (int)i);
    for (int f = 0; f < K && rc == 0; f++) {
        int nf = 0;
        for (size_t i = 0; i < n; i++) {
            use[i] = fold[i] >= 0 && fold[i] != f;
            if (fold[i] == f) {
                idx[nf] = (int)i;
                memcpy(mni + 3 * (size_t)nf, s->mni + 3 * i, sizeof(float) * 3);
                lab[nf] = d->label ? d->label[i] : 0;
                nf++;
            }
        }
        if (nf == 0)
            continue;
        gi_method *m = fit_prior(d, c, use, d->prior, err);
        rc = m ? gi_method_predict(m, nf, mni, d->label ? lab : NULL, pred, err) : -1;
        gi_method_free(m);
        if (rc != 0)
            rc = gi_fail_prefix(err, "data.prior_crossfit fold %d of %d", f + 1, K);
        for (int k = 0; k < nf && rc == 0; k++)
            memcpy(d->prior_at + (size_t)idx[k] * G, pred + (size_t)k * G, sizeof(float) * G);
    }
done:
    free(use); free(fold); free(idx); free(mni); free(pred); free(lab);
    return rc;
}

/* data.prior: fit the baseline on the training (non-validation) samples and
 * keep the residual as the target. Validation samples get the prior's
 * prediction from the training samples only, as a test point would. For
 * prediction (GI_DATASET_PREDICT) with data.prior_refit, the prior is fitted
 * on every sample instead: the network was trained over the training-only
 * fit, the map it adds to is the one that has seen all the data. */
static int apply_prior(gi_dataset *d, const gi_config *c, int purpose, gi_err *err)
{
    const gi_samples *s = &d->s;
    size_t n = (size_t)s->n, G = (size_t)s->n_genes;
    int refit = purpose == GI_DATASET_PREDICT && c->data.prior_refit;
    unsigned char *use = malloc(n);
    d->prior_at = malloc(sizeof(float) * n * G);
    if (!use || !d->prior_at) {
        free(use);
        return gi_fail(err, "out of memory for data.prior");
    }
    for (size_t i = 0; i < n; i++)
        use[i] = refit || !d->is_val[i];
    d->prior = fit_prior(d, c, use, NULL, err);
    free(use);
    if (!d->prior || gi_method_predict(d->prior, (int)n, s->mni, d->label, d->prior_at, err) != 0)
        return -1;
    if (purpose == GI_DATASET_TRAIN && c->data.prior_crossfit > 0 && crossfit_prior(d, c, err) != 0)
        return -1;
    for (size_t q = 0; q < n * G; q++)
        if (!isnan(d->y[q]))
            d->y[q] -= d->prior_at[q];
    return 0;
}

int gi_dataset_prior_predict(const gi_dataset *d, int n, const float *mni, const int *label, float *out, gi_err *err)
{
    return gi_dataset_prior_predict_genes(d, n, mni, label, 0, d->s.n_genes, out, err);
}

int gi_dataset_prior_predict_genes(const gi_dataset *d, int n, const float *mni, const int *label, int g0, int ng,
                                   float *out, gi_err *err)
{
    if (!d->prior) {
        memset(out, 0, sizeof(float) * (size_t)n * ng);
        return 0;
    }
    return gi_method_predict_genes(d->prior, n, mni, label, g0, ng, out, err);
}

int gi_dataset_build(gi_dataset *d, const gi_config *c, gi_err *err)
{
    return gi_dataset_build_for(d, c, GI_DATASET_TRAIN, err);
}

int gi_dataset_build_for(gi_dataset *d, const gi_config *c, int purpose, gi_err *err)
{
    memset(d, 0, sizeof *d);
    if (!c->data.samples[0])
        return gi_fail(err, "%s: data.samples is not set (the sample table CSV to train on)",
                       c->source[0] ? c->source : "config");
    if (gi_samples_read_csv_genes(&d->s, c->data.samples, c->data.genes, err) != 0)
        return -1;
    const gi_samples *s = &d->s;
    size_t n = (size_t)s->n, G = (size_t)s->n_genes;
    d->xyz = malloc(sizeof *d->xyz * 3 * n);
    d->gene_mean = malloc(sizeof *d->gene_mean * G);
    d->gene_std = malloc(sizeof *d->gene_std * G);
    d->is_val = calloc(n, 1);
    if (!d->xyz || !d->gene_mean || !d->gene_std || !d->is_val) {
        gi_dataset_free(d);
        return gi_fail(err, "out of memory for %zu samples", n);
    }
    for (size_t i = 0; i < n; i++)
        gi_mni_normalise(s->mni[3 * i], s->mni[3 * i + 1], s->mni[3 * i + 2], d->xyz + 3 * i);
    if ((c->data.anatomy[0] && attach_anatomy(d, c, err) != 0) || split(d, c, err) != 0) {
        gi_dataset_free(d);
        return -1;
    }
    if (standardise(d, c->data.samples, err) != 0 || (c->data.prior != GI_PRIOR_NONE && apply_prior(d, c, purpose, err) != 0)) {
        gi_dataset_free(d);
        return -1;
    }
    return 0;
}

void gi_dataset_free(gi_dataset *d)
{
    gi_samples_free(&d->s);
    free(d->xyz);
    free(d->label);
    free(d->label_values);
    free(d->y);
    free(d->gene_mean);
    free(d->gene_std);
    free(d->is_val);
    gi_method_free(d->prior);
    free(d->prior_at);
    memset(d, 0, sizeof *d);
}
