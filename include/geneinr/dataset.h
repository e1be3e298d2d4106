/* dataset.h - a sample table turned into model inputs and training targets.
 *
 * Coordinates are normalised with the fixed MNI box (model.h); targets are
 * standardised per gene, (value - mean) / std, with mean and std taken over
 * the training samples only so the validation set stays unseen. Each sample is
 * assigned to training or validation by the split in the config: a random
 * fraction (a pure function of seed and sample index, so identical on every
 * rank and for every rank count) or every sample of one donor.
 */
#ifndef GENEINR_DATASET_H
#define GENEINR_DATASET_H

#include "geneinr/config.h"
#include "geneinr/error.h"
#include "geneinr/label_match.h"
#include "geneinr/samples.h"

typedef struct gi_dataset {
    gi_samples s;            /* the table as read, except s.values: moved into y (one copy per rank) */
    float *xyz;              /* [n][3] normalised coordinates */
    int *label;              /* [n] anatomy label index, NULL without data.anatomy (label_match.h) */
    gi_match_summary match;  /* how the samples met their labels (n = 0 without data.anatomy) */
    int n_labels;            /* 0 without data.anatomy */
    int *label_values;       /* [n_labels] */
    float *y;                /* [n][n_genes] standardised targets, NaN = not measured (the table's buffer) */
    float *gene_mean, *gene_std;  /* [n_genes] */
    unsigned char *is_val;   /* [n] 1 = validation sample */
    int val_donor;           /* held-out donor index (validation: donor), else -1 */
    int n_train, n_val;
    /* data.prior: the baseline fitted on the training samples (standardised
     * units) and its prediction at every sample (at training samples the
     * out-of-fold prediction with data.prior_crossfit); y holds the residual
     * (standardised value - prior_at), so the network learns what the
     * baseline misses. NULL without a prior. */
    struct gi_method *prior;
    float *prior_at;         /* [n][n_genes] */
} gi_dataset;

int gi_dataset_build(gi_dataset *d, const gi_config *c, gi_err *err);

/* What a dataset is built for. TRAIN: the prior is fitted on the training
 * samples, and with data.prior_crossfit the training targets are residuals
 * over out-of-fold prior fits. PREDICT (a trained model's prior, for eval and
 * render): no cross-fitting, and with data.prior_refit the prior is fitted on
 * every sample, validation included. Normalisation is the same for both. */
enum { GI_DATASET_TRAIN = 0, GI_DATASET_PREDICT = 1 };
int gi_dataset_build_for(gi_dataset *d, const gi_config *c, int purpose, gi_err *err);

/* The cross-fitting fold (0 .. data.prior_crossfit-1) of training sample i:
 * a pure function of train.seed and i, so every rank and rank count agree. */
int gi_dataset_crossfit_fold(const gi_config *c, int i);

/* The prior (data.prior) of a built dataset at n MNI points (mm) with their
 * label indices (NULL without anatomy): out [n][n_genes] in standardised
 * units; zeros without a prior. */
int gi_dataset_prior_predict(const gi_dataset *d, int n, const float *mni, const int *label, float *out, gi_err *err);
/* The same for genes g0 .. g0+ng-1 only: out [n][ng]. */
int gi_dataset_prior_predict_genes(const gi_dataset *d, int n, const float *mni, const int *label, int g0, int ng,
                                   float *out, gi_err *err);
void gi_dataset_free(gi_dataset *d);

#endif
