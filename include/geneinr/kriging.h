/* kriging.h - ordinary kriging and regression kriging (Gaussian-process regression).
 *
 * Model per gene g: y_g(x) = mu_g + s_g(x) + e, with s_g a stationary Gaussian
 * field of covariance sill_g * rho(|x - x'| / range) and e independent
 * measurement noise of variance nugget_g = lambda * sill_g. rho is the
 * exponential, Matern 3/2 or Matern 5/2 correlation. The mean mu_g is
 * unknown (ordinary kriging: estimated by generalised least squares).
 *
 * Fit: range and lambda by maximum likelihood with mu_g and sill_g profiled
 * out, either shared by all genes (the sum of the genes' log-likelihoods; one
 * Cholesky factor serves every gene) or per gene. The likelihood uses a
 * seeded random subsample of the training samples (baseline.fit_samples);
 * the predictor then conditions on all of them. A gene's unmeasured samples
 * are dropped exactly from the shared factor by a low-rank (Woodbury)
 * correction instead of refactorising: log|A_SS| = log|A| + log|(A^-1)_MM|.
 * Dense Cholesky (LAPACK dpotrf from OpenBLAS) costs n^3/3 flops and 8 n^2
 * bytes: about 1.5 s and 90 MB for the ~3,300 training samples of AHBA.
 *
 * Prediction: f_g(x) = mu_g + sum_i rho(|x - x_i|) alpha_gi, alpha_g =
 * A_g^-1 (y_g - mu_g). Points are taken in blocks of 256: one block's
 * correlations with all samples (256 x n floats) times alpha ([n][G]) is one
 * sgemm, so memory is bounded by the block, not by the volume.
 *
 * Regression kriging: the anatomy's labels act as a random effect in the
 * covariance, cov = sill * (rho + eta [same label] + lambda delta), with eta
 * fitted by maximum likelihood together with range and lambda. The predictor
 * is then the label effect (the BLUP: each label's mean shrunk toward the
 * global mean, the more the fewer samples it has) plus the kriged field,
 * estimated jointly, so label means are not confounded with gradients and
 * labels that do not matter get eta ~ 0 (ordinary kriging). Optionally
 * (baseline.label_shrink = k > 0) fixed label means shrunk with pseudo-count
 * k, (n_l mean_l + k mean) / (n_l + k), are removed first (the classic two-
 * step regression kriging; held-out r 0.7938 vs 0.7953 joint on the phantom).
 *
 * Uncertainty (method.h, issue 28): the kriging variance of the donor-average
 * map GP + label effect (+ unknown mean), sill_g v(x) with
 * v = 1 + eta - c'A^-1 c + (1 - 1'A^-1 c)^2 / 1'A^-1 1, c the covariance of
 * the map at x with the samples (nugget and donor effect excluded: they are
 * not in the map), plus, with label_shrink > 0, the fixed label mean's
 * estimation variance ~ (1 + eta + lambda + zeta) / (n_l + k). The smooth part
 * q = r'A^-1 r costs n^2 per point; the rest is O(n) from A^-1 1 and A^-1 s_l
 * kept per label. Noise SD: sqrt(sill (lambda + zeta)). Only with shared
 * hyperparameters: the fit then keeps the Cholesky factor (8 n^2 bytes,
 * 110 MB at 3,702 samples); per-gene fits have no SD.
 */
#ifndef GENEINR_KRIGING_H
#define GENEINR_KRIGING_H

#include "geneinr/method.h"

/* Correlation at distance h for the given range (GI_COV_*). */
double gi_cov_rho(int covariance, double h, double range);

/* Fitted hyperparameters of gene g of a fitted kriging or regression-kriging
 * method (range in mm; sill and nugget in the targets' units squared). */
int gi_kriging_params(const gi_method *m, int gene, double *range, double *sill, double *nugget);

/* The shared hyperparameters of a fitted kriging or regression-kriging
 * method (GI_PRIOR_HYPER_N values in config.h's order, 0 for a term the model
 * does not have); -1 when it has per-gene hyperparameters or is not kriging. */
int gi_kriging_hyper(const gi_method *m, double *hyper);

/* The profile negative log-likelihood that the ML fit minimises, summed over
 * the G genes of y ([n][G], NaN = unmeasured) at the hyperparameters hyper
 * (GI_PRIOR_HYPER_N; lab, don, R NULL = no label, donor or label-similarity
 * term): for tests. -1: not positive definite or out of memory. */
int gi_kriging_nll(int covariance, int n, const float *mni, const int *lab, const int *don, const double *R, int L,
                   int G, const float *y, const double *hyper, double *nll);

#endif
