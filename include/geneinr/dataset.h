/* dataset.h - a sample table turned into model inputs and training targets.
 *
 * Coordinates are normalised with the fixed MNI box (mni.h); targets are
 * standardised per gene, (value - mean) / std, with mean and std taken over
 * the training samples only so the validation set stays unseen. Each sample is
 * assigned to training or validation by the split in the config: a random
 * fraction (a pure function of seed and sample index, so identical on every
 * rank and for every rank count) or every sample of one donor.
 *
 * Inputs, targets and splits only: a data.prior, whose residual the network
 * learns instead, is composed above training (prior.h).
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
    /* set by a data.prior fitted over the dataset (prior.c, for training):
     * its shared kriging hyperparameters (GI_PRIOR_HYPER_N, config.h), which
     * training keeps in the checkpoint; 0 = none */
    int has_prior_hyper;
    double prior_hyper[GI_PRIOR_HYPER_N];
} gi_dataset;

int gi_dataset_build(gi_dataset *d, const gi_config *c, gi_err *err);
void gi_dataset_free(gi_dataset *d);

#endif
