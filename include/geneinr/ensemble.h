/* ensemble.h - the members of a train.ensemble: where each lives and how it
 * is trained.
 *
 * Member k (0-based) is the configured model trained with train.seed + k: its
 * own validation split, initialisation and mini-batches. Member 0 is the run
 * itself (OUT/checkpoint.h5); member k >= 1 is a run folder of its own,
 * OUT/ensemble/k, with its checkpoint and training log. The prediction is the
 * mean of the members' maps (method_inr.c).
 */
#ifndef GENEINR_ENSEMBLE_H
#define GENEINR_ENSEMBLE_H

#include <mpi.h>
#include <stddef.h>

#include "geneinr/config.h"
#include "geneinr/error.h"
#include "geneinr/train.h"

/* Members of c: train.ensemble, at least 1. */
int gi_ensemble_size(const gi_config *c);

/* Member k of the run in dir: its config (seed + k, run.out) and folder. */
void gi_ensemble_member(const gi_config *c, const char *dir, int k, gi_config *ck, char *kdir, size_t len);

/* Rank 0: removes the members of an earlier run in dir (OUT/ensemble/k,
 * every k), before a fresh run: they belong to other weights, and a render
 * must never average them in. */
void gi_ensemble_clear(const char *dir);

/* Trains members from .. size-1 of the run in dir (collective over comm).
 * resume: continue a member from its checkpoint when it has one (train.resume
 * auto or --resume: a requeued job picks up the member it was in), else each
 * starts fresh; targets and force as in gi_train_on. res->interrupted is set
 * (and the remaining members skipped) when a stop signal ended a member early. */
int gi_ensemble_train_on(const gi_config *c, gi_targets_fn targets, MPI_Comm comm, const char *dir, int from,
                         int resume, int force, gi_train_result *res, gi_err *err);

#endif
