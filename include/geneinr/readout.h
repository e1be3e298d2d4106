/* readout.h - the factorized model's readout: the trunk features that every
 * gene's output row reads, and a trained state grown by rows for new genes
 * (`geneinr extend`, extend.h).
 *
 * In factorized mode (model.h) the output for gene g at a point is
 *   h(x, donor, label) . W[g] + b[g],
 * where h is the last hidden layer (width values): the shared trunk. A new
 * gene is one more row (W[g], b[g]); nothing else of the network changes, so
 * the render, predict and eval treat it exactly as a trained gene.
 */
#ifndef GENEINR_READOUT_H
#define GENEINR_READOUT_H

#include "geneinr/checkpoint.h"
#include "geneinr/error.h"
#include "geneinr/model.h"

/* Points per forward pass of gi_readout_features: a point's features depend
 * only on its place in its block (a GEMM kernel may round a row by its
 * place), so callers that cut a list of points into blocks of this size from
 * the first get the same bits whatever rank computes which block. */
#define GI_READOUT_BLOCK 256

/* The trunk features h [n][width] of n points (xyz normalised, [n][3]; donor
 * [n] indices, -1 = the donor average, NULL when donor_dim = 0; label [n],
 * NULL without anatomy), with m's params, computed in passes of
 * GI_READOUT_BLOCK points from the first. Factorized models only. */
int gi_readout_features(const gi_model *m, int n, const float *xyz, const int *donor, const int *label, float *h,
                        gi_err *err);

/* Grows st (factorized) in place by k genes appended after its own: names,
 * gene_mean, gene_std (gene_position 0), readout rows w [k][width] and
 * biases b [k] in both params and best_params; the Adam moments of the new
 * rows are 0. Every existing parameter, moment, gene and name keeps its bits,
 * and every field of st that is not named here (the step, the seed, the
 * history, the config, the donors and labels, ...) is left as it is. On
 * failure st is unchanged. */
int gi_state_add_genes(gi_state *st, int k, char *const *names, const float *mean, const float *std, const float *w,
                       const float *b, gi_err *err);

#endif
