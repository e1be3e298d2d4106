/* eval.h - held-out accuracy of every interpolation method on the same folds.
 *
 * The sample table is partitioned into folds (eval.split):
 *   kfold  random, balanced folds of samples (eval.seed);
 *   donor  one fold per donor (leave one donor out);
 *   block  cubes of eval.block_mm mm (MNI), dealt to eval.folds folds in a
 *          seeded random order, so a held-out sample's neighbours are held
 *          out with it and no method can win by copying the next sample.
 * For each fold every method (method.h) is fitted on the other folds and
 * predicts the fold's samples; every method sees exactly the same partition.
 * Targets are standardised per gene with the mean and SD of the fold's
 * training samples (the INR's units), and every method predicts the donor
 * average. The INR's early stopping uses a validation split carved from the
 * training folds only (method_inr.c), so the test fold never steers training.
 *
 * Scores per method and gene: Pearson r and MSE (standardised units) per fold
 * and pooled over folds (every sample is predicted exactly once). Outputs:
 *   OUT/eval.csv     method,split,fold,gene,n_test,r,mse,coverage_50,coverage_90
 *                    (fold "all" = pooled)
 *   OUT/summary.csv  method,split,folds,genes,median_r,mean_mse,coverage_50,
 *                    coverage_90: the median over genes of the pooled r, the
 *                    mean over genes of the pooled MSE, and the share of all
 *                    held-out values inside the central 50% / 90% interval
 *                    prediction +- z sqrt(sd^2 + noise^2) (method.h's SD and
 *                    noise, from the fold's training fit); coverage cells are
 *                    empty for a method without an SD
 *   OUT/folds/F/inr  the INR's fold-F training table, checkpoint and log
 *   OUT/folds/F/result.bin  fold F's finished results (reused by a rerun)
 * and a table on stdout.
 *
 * New-gene mode (eval.new_genes = K > 0): K genes drawn with eval.seed are
 * held out of a second INR in every fold: it is trained on the fold's
 * training samples without them (OUT/folds/F/inr_trunk), then extended to
 * them from the same samples (extend.h; OUT/folds/F/inr_extended) and scored
 * as method inr_extended on the fold's held-out samples. summary.csv then
 * scores every method (inr trained with every gene, the baselines,
 * inr_extended) on those K genes only (its genes column says K); eval.csv
 * keeps every gene's rows of the other methods.
 *
 * MPI: ranks form eval.groups groups (0 = one group per fold, at most one
 * per rank); group p takes folds p, p + groups, ...; inside a group the INR
 * trains data-parallel (train.h) and the baselines are dealt to its ranks.
 * Results do not depend on the grouping beyond the INR's float rounding.
 */
#ifndef GENEINR_EVAL_H
#define GENEINR_EVAL_H

#include <mpi.h>

#include "geneinr/config.h"
#include "geneinr/error.h"
#include "geneinr/samples.h"

/* fold[i] in [0, *n_folds) for every sample. */
int gi_eval_partition(const gi_samples *s, const gi_config *c, int *fold, int *n_folds, gi_err *err);

/* Methods to compare (eval.methods, or all that apply), as GI_METHOD_* kinds. */
int gi_eval_methods(const gi_config *c, int *kinds, int max, gi_err *err);

/* gi_eval_run's return when a stop signal (stop.h) ended it early, on every
 * rank: the finished folds are kept in out_dir/folds/F/result.bin, and a
 * rerun with the same config, samples and methods reuses them (a fold's
 * results are checked to belong to the run: config, sample table, partition
 * and methods), so its summary.csv equals an uninterrupted run's. */
#define GI_EVAL_STOPPED 2

/* The whole evaluation; collective over comm; writes into out_dir (exists).
 * 0, -1 (err), or GI_EVAL_STOPPED. */
int gi_eval_run(const gi_config *c, MPI_Comm comm, const char *out_dir, gi_err *err);

#endif
