/* dataset.c - sample table -> normalised inputs, standardised targets, split. */
#include "geneinr/dataset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/anatomy.h"
#include "geneinr/label_match.h"
#include "geneinr/mni.h"
#include "geneinr/rng.h"

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
        /* A gene with one value in every training sample is refused, not
         * given std 1 (which trained the network on all-zero targets and
         * rendered its noise as a spurious range): it has no map to learn,
         * and every correlation score of eval and score is undefined for it.
         * Dropping the column (or data.genes) is the user's clean choice.
         * sum2 is 0 exactly when every value equals the mean. */
        if (!(sd > 0) || !isfinite(sd)) {
            rc = gi_fail(err, "%s: gene '%s' has the same value (%g) in all %ld training samples: a constant has "
                         "no map to learn and its scores would be undefined; drop the column (or leave it out of "
                         "data.genes)", path, s->gene_names[g], sum[g], cnt[g]);
            goto done;
        }
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

int gi_dataset_build(gi_dataset *d, const gi_config *c, gi_err *err)
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
    if (standardise(d, c->data.samples, err) != 0) {
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
    memset(d, 0, sizeof *d);
}
