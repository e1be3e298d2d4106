/* extend.h - new genes for a trained factorized model, in closed form
 * (`geneinr extend`).
 *
 * The factorized model (model.h) is a shared trunk h(x, donor, anatomy) and
 * one readout row (w_g, b_g) per gene. With the trunk, donor and anatomy
 * parts frozen (the checkpoint's best-validation weights), a new gene's row
 * is a ridge regression of its standardised training targets on h:
 *   minimise  sum_i (h_i . w + b - t_i)^2 + lambda |w|^2      (b not penalised)
 * over the gene's measured training samples of the config's split (the
 * split the trunk was trained on: train.validation, val_fraction, val_donor,
 * seed), each sample at its own donor's features. The targets are what
 * training would have given the gene: (value - mean) / std with the mean and
 * SD of its training samples (dataset.h), minus the training-time prior
 * (data.prior, GI_PRIOR_FOR_TRAIN, with data.prior_crossfit) when there is one.
 *
 * lambda: for each gene, the value of a fixed grid (GI_EXTEND_ALPHAS, times
 * the mean eigenvalue of the gene's centred Gram matrix, so the grid does not
 * depend on the features' scale or the sample count) with the lowest MSE on
 * the gene's measured validation samples, scored as training scores them
 * (donor-average features with train.val_average or a held-out donor, else
 * each sample's own donor); the first of the grid (strongest) on ties.
 * Without validation samples (train.validation: none), generalised
 * cross-validation on the training samples. The row is the ridge fit on the
 * training samples only at that lambda, like the trained genes (which never
 * saw the validation samples).
 *
 * Solved in double through the eigendecomposition of the centred Gram matrix
 * (LAPACK dsyev), shared by genes measured at the same training samples
 * (the last few patterns are kept), so the whole grid costs a few
 * matrix-vector products per gene.
 *
 * The same bits at every rank count: features are computed in blocks of
 * GI_READOUT_BLOCK points from the first (readout.h), dealt to the ranks and
 * gathered whole; genes are dealt to the ranks in contiguous blocks and each
 * gene's arithmetic depends on its own data only (run.threads fixed, as
 * everywhere); the rows are gathered in gene order.
 */
#ifndef GENEINR_EXTEND_H
#define GENEINR_EXTEND_H

#include <mpi.h>

#include "geneinr/checkpoint.h"
#include "geneinr/config.h"
#include "geneinr/error.h"

/* The grid of lambda / (mean eigenvalue of the centred Gram matrix), tried
 * from the strongest down. */
#define GI_EXTEND_N_ALPHAS 15
extern const double GI_EXTEND_ALPHAS[GI_EXTEND_N_ALPHAS];

/* What was fitted for one new gene. */
typedef struct gi_extend_gene {
    int n_train, n_val;      /* measured training / validation samples */
    double alpha, lambda;    /* chosen grid value and the lambda it gave */
    double val_mse;          /* validation MSE (standardised, residual units) at that lambda; NaN without */
    double val_mse_zero;     /* the same with a zero row: the prior alone (or the training mean) */
} gi_extend_gene;

/* Ridge rows for k target columns. Inputs: m (factorized; its params are the
 * weights used), the points of the training samples ftr [ntr] and validation
 * samples fv [nv] as row indices into features h [n][width] computed once
 * (gi_readout_features), targets t [n][k] with NaN = not measured. Outputs:
 * w [k][width], b [k], info [k]. Collective over comm (genes dealt to the
 * ranks, results gathered): every rank gets every row. */
int gi_extend_ridge(const gi_model *m, const float *h, int ntr, const int *ftr, int nv, const int *fv,
                    const float *t, int k, float *w, float *b, gi_extend_gene *info, MPI_Comm comm, gi_err *err);

typedef struct gi_extend_result {
    int n_old;               /* genes of the checkpoint, kept bit for bit */
    int n_new;               /* genes of the table appended after them */
    int n_shared;            /* genes of the table that the checkpoint already had (not refitted) */
    int all_in_table;        /* every gene of the extended checkpoint is in the table */
    double seconds_prior, seconds_features, seconds_ridge, seconds;
} gi_extend_result;

/* Extends the checkpoint ckpt with every gene of c's data.samples (data.genes)
 * that it lacks, and writes out_dir/checkpoint.h5 (old genes, then the new
 * ones in table order), out_dir/extend.csv (per new gene: the fit) and
 * out_dir/genes.txt (every gene of the new checkpoint, one a line: a
 * data.genes list that reads the table in the checkpoint's order). c must be
 * the config the checkpoint was trained with (model, split, anatomy and prior
 * settings are compared; its data.samples may differ). Refused: concat
 * models (no readout rows), train.ensemble > 1, data.prior_label_similarity
 * (a gene's prior depends on the others), donors the model has not seen, and
 * with data.prior a table that lacks a gene of the checkpoint (the render
 * rebuilds the prior from the table) or gives it another normalisation.
 * Collective over comm; rank 0 writes. */
int gi_extend(const gi_config *c, const char *ckpt, const char *out_dir, MPI_Comm comm, gi_extend_result *res,
              gi_err *err);

#endif
