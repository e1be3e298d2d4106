/* prior.h - data.prior, composed above training.
 *
 * The prior is a method fitted first (kriging, or regression kriging over the
 * anatomy) on the training samples in standardised units; the network is then
 * trained over its prediction as an offset: it learns the residual
 * (standardised value - prior), what the baseline misses, and a prediction is
 * network + prior. The dataset (inputs, targets, splits) and the training know
 * nothing of it: this file fits the prior on a built dataset, and hands
 * training the residual targets through train.h's gi_targets_fn.
 */
#ifndef GENEINR_PRIOR_H
#define GENEINR_PRIOR_H

#include <mpi.h>

#include "geneinr/config.h"
#include "geneinr/dataset.h"
#include "geneinr/ensemble.h"
#include "geneinr/error.h"
#include "geneinr/method.h"
#include "geneinr/train.h"

typedef struct gi_prior_fit {
    /* fitted on the training samples in standardised units (every sample for
     * GI_PRIOR_FOR_PREDICT with data.prior_refit); NULL without data.prior */
    gi_method *m;
    /* [n][n_genes] its prediction at every sample of the dataset (at training
     * samples the out-of-fold prediction with data.prior_crossfit) */
    float *at;
} gi_prior_fit;

/* What a prior is fitted for. TRAIN: on the training samples, and with
 * data.prior_crossfit the training targets are residuals over out-of-fold
 * fits. PREDICT (a trained model's prior, for eval and render): no
 * cross-fitting, and with data.prior_refit the prior is fitted on every
 * sample, validation included. */
enum { GI_PRIOR_FOR_TRAIN = 0, GI_PRIOR_FOR_PREDICT = 1 };

/* Fits c's data.prior on d (just built: d->y standardised) and subtracts its
 * prediction from d->y, which then holds the residual the network learns.
 * Without data.prior p is empty and d is unchanged. */
int gi_prior_apply(gi_prior_fit *p, gi_dataset *d, const gi_config *c, int purpose, gi_err *err);
/* The same with given shared kriging hyperparameters (GI_PRIOR_HYPER_N,
 * config.h; a checkpoint's prior_hyper): the fit is then one factorisation,
 * no maximum likelihood. hyper NULL = an ML fit whose genes' likelihood
 * terms the ranks of comm share (collective over comm: every rank passes the
 * same data; MPI_COMM_SELF = alone, as gi_prior_apply). For
 * GI_PRIOR_FOR_TRAIN the fitted (or given) shared hyperparameters are left in
 * d->prior_hyper. */
int gi_prior_apply_with(gi_prior_fit *p, gi_dataset *d, const gi_config *c, int purpose, const double *hyper,
                        MPI_Comm comm, gi_err *err);

/* The cross-fitting fold (0 .. data.prior_crossfit-1) of training sample i:
 * a pure function of train.seed and i, so every rank and rank count agree. */
int gi_prior_crossfit_fold(const gi_config *c, int i);

/* The prior at n MNI points (mm) with their label indices (NULL without
 * anatomy), genes g0 .. g0+ng-1: out [n][ng] in standardised units; zeros
 * without a prior. */
int gi_prior_predict_genes(const gi_prior_fit *p, int n, const float *mni, const int *label, int g0, int ng, float *out,
                           gi_err *err);
void gi_prior_free(gi_prior_fit *p);

/* c's data.prior fitted on d's training samples (is_val 0) with targets y
 * ([n][n_genes] standardised, d->y before the prior was subtracted), with
 * the hyperparameters of hyper_from (NULL = fitted by ML): the INR's
 * calibration scores validation samples against a prior that has not seen
 * them (method_inr.c). */
gi_method *gi_prior_fit_training(const gi_dataset *d, const float *y, const gi_config *c, const gi_method *hyper_from,
                                 gi_err *err);
/* The same with given shared hyperparameters (GI_PRIOR_HYPER_N, a
 * checkpoint's prior_hyper; NULL = hyper_from or ML): `geneinr extend` fits a
 * new gene's prior with the training prior's own. */
gi_method *gi_prior_fit_training_with(const gi_dataset *d, const float *y, const gi_config *c,
                                      const gi_method *hyper_from, const double *hyper, gi_err *err);

/* The training targets of c (a gi_targets_fn): the dataset, over data.prior
 * its residual. */
int gi_prior_targets(gi_dataset *d, const gi_config *c, MPI_Comm comm, gi_err *err);

/* Training composed over the prior: train.h's gi_train_on and ensemble.h's
 * gi_ensemble_train_on with gi_prior_targets (arguments as there). */
int gi_train(const gi_config *c, MPI_Comm comm, const char *out_dir, const char *resume, gi_train_result *res,
             gi_err *err);
int gi_train_ex(const gi_config *c, MPI_Comm comm, const char *out_dir, const char *resume, int force,
                gi_train_result *res, gi_err *err);
int gi_ensemble_train(const gi_config *c, MPI_Comm comm, const char *dir, int from, int resume, int force,
                      gi_train_result *res, gi_err *err);

#endif
