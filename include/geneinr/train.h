/* train.h - data-parallel training of the conditional INR over MPI.
 *
 * Every rank holds the same model and the whole (small) sample table, and
 * works on its share of each step's units: a unit is a sample (factorized
 * mode: all its measured genes at once) or a measured (sample, gene) pair
 * (concat mode). Gradients of the global mean squared error are summed with
 * one MPI_Allreduce and every rank takes the same optimizer step, so results
 * depend on the rank count only through float rounding. Mini-batches are a
 * pure function of (seed, step) - the same global batch for any rank count and
 * after a resume - which, with the checkpointed optimizer state, makes a
 * resumed run bit-identical to an uninterrupted one.
 *
 * Output in out_dir: checkpoint.h5 (every train.checkpoint_every steps and at
 * the end) and train_log.csv (step, loss, val_loss, lr, grad_norm, seconds),
 * written by rank 0; rank 0 prints a progress line every train.log_every steps.
 *
 * A stop signal (stop.h: SIGTERM, SIGUSR1 while installed) is agreed across
 * ranks at every step boundary with a non-blocking allreduce that overlaps
 * the step; once any rank has one, every rank checkpoints that step and
 * gi_train returns 0 with res->interrupted set. Resuming from that checkpoint
 * continues bit-identically.
 */
#ifndef GENEINR_TRAIN_H
#define GENEINR_TRAIN_H

#include <mpi.h>

#include "geneinr/config.h"
#include "geneinr/dataset.h"
#include "geneinr/error.h"
#include "geneinr/model.h"

typedef struct gi_train_result {
    long steps;              /* optimizer steps completed */
    double loss;             /* last training MSE (standardised units) */
    double best_val;         /* best validation MSE, NAN without validation */
    long best_step;
    int stopped_early;
    int interrupted;         /* a stop signal (stop.h) ended training early; checkpoint written */
    double seconds;
} gi_train_result;

/* Units per forward/backward call for a model of this shape: the fixed grid
 * that the gradient reduction is cut on (a function of the shape alone, so
 * 1 and N ranks compute the same chunks). */
int gi_train_chunk(const gi_model_spec *s);

/* The targets the network learns: fills d from c (inputs, targets, split);
 * collective over comm, the training's ranks (which may share the work).
 * NULL = gi_dataset_build. A data.prior is composed above training by a
 * caller that hands in its residual targets (prior.h: gi_prior_targets, and
 * gi_train / gi_train_ex there, which call gi_train_on with it). */
typedef int (*gi_targets_fn)(gi_dataset *d, const gi_config *c, MPI_Comm comm, gi_err *err);

/* Trains c's model on targets(c), into out_dir. resume: checkpoint to continue
 * from, or NULL. Collective over comm. force: on resume, accept changed
 * training settings that make the continuation differ from a run that had
 * them from the start (lr, schedule, batch size, validation, ...), recording
 * each in the checkpoint's settings history; without force they are refused.
 * Changes of train.checkpoint_every, train.log_every, and of train.steps under
 * a schedule that does not depend on it, are always accepted. Every change is
 * reported. */
int gi_train_on(const gi_config *c, gi_targets_fn targets, MPI_Comm comm, const char *out_dir, const char *resume,
                int force, gi_train_result *res, gi_err *err);

#endif
