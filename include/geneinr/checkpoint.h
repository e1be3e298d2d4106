/* checkpoint.h - everything needed to resume training or to render.
 *
 * A gi_state is the trained model plus what gives its numbers meaning: the
 * optimizer moments and step, the best-validation parameters, the per-gene
 * normalisation, gene/donor names, the anatomy label list and the config.
 *
 * HDF5 layout (written serially by one rank, to PATH.tmp then renamed):
 *   /params /best_params /adam_m /adam_v   float32 [n_params]
 *   /fixed                                 float32 [n_fixed] (Fourier B, gene codes)
 *   /gene_mean /gene_std                   float32 [n_genes] (targets = (value - mean) / std)
 *   /gene_position                         float32 [n_genes] (spectral 1-D position)
 *   /genes /donors                         UTF-8 strings (fixed length)
 *   /label_values                          int32 [n_labels] (anatomy index -> label value)
 *   /donor_in_average                      uint8 [n_donors] (donors that enter the donor average)
 *   /prior_hyper                           float64 [5] (optional: the data.prior's shared kriging
 *                                          hyperparameters fitted in training, config.h's
 *                                          GI_PRIOR_HYPER_N order; absent in older checkpoints)
 *   /settings_history                      strings: every change of a training
 *                                          setting accepted on resume (--force),
 *                                          "train.lr: 0.001 -> 0.0005", oldest first
 *   /settings_history_step                 int64: the step from which each applied
 *                                          (the config attribute holds the latest
 *                                          settings; with the history the earlier
 *                                          ones are known too)
 *   root attributes: kind = "checkpoint", geneinr_version, config (YAML, the
 *     latest), step, adam_t, best_step, bad_evals, stopped, best_val, seed (the
 *     random state: every draw is a function of seed and step, rng.h), and
 *     every model setting of GI_MODEL_SETTINGS under its field name (ints as
 *     int64, floats as float64) plus n_genes, n_donors, n_labels.
 * Integrity: the numeric datasets carry fletcher32 checksums, verified on every
 * load; the file uses the HDF5 1.8+ format, whose metadata (object headers,
 * attributes) is checksummed too, and every string is fixed-length (kept out
 * of HDF5's global heap, which has no checksum), so corrupted bytes make the load fail
 * instead of returning different numbers. The file is written to PATH.tmp,
 * fsync'd, renamed to PATH and the folder fsync'd: after a crash PATH is the
 * old or the new checkpoint, never a torn one.
 * Every dataset also carries a content hash (attribute xxh3_128, root attribute
 * content_id; h5_seal.h), verified on load: fletcher32 alone passes a chunk
 * zeroed in full and a dataset replaced or copied in with a valid checksum.
 * Object timestamps are off, so equal states give byte-identical files.
 * Checkpoints of earlier versions (no checksums, no history, no content
 * hashes: sealed = 0, which the commands report) still load.
 */
#ifndef GENEINR_CHECKPOINT_H
#define GENEINR_CHECKPOINT_H

#include <stdint.h>

#include "geneinr/config.h"
#include "geneinr/error.h"
#include "geneinr/model.h"
#include "geneinr/optim.h"

typedef struct gi_state {
    gi_model model;              /* params = the latest parameters */
    float *best_params;          /* [n_params] parameters at the best validation score */
    gi_adam adam;
    long step;                   /* optimizer steps completed */
    long best_step;
    double best_val;             /* best validation MSE (normalised units); INFINITY if none */
    int bad_evals;               /* validations since the best one */
    int stopped;                 /* 1 once early stopping has triggered */
    uint64_t seed;
    int n_genes;
    char **genes;
    float *gene_mean, *gene_std, *gene_position;
    int n_donors;
    char **donors;
    int n_labels;                /* 0 = no anatomical input */
    int *label_values;
    char *config_yaml;           /* the config in force now */
    int n_history;               /* settings changes accepted on resume */
    char **history;              /* [n_history] "key: old -> new", oldest first */
    long *history_step;          /* [n_history] step from which each applied */
    int n_prior_hyper;           /* GI_PRIOR_HYPER_N, or 0: none (no data.prior, per-gene hyperparameters,
                                  * or a checkpoint from before they were kept) */
    double prior_hyper[GI_PRIOR_HYPER_N]; /* the training prior's shared kriging hyperparameters
                                  * (config.h's order): every prediction prior reuses them */
    int sealed;                  /* load: 1 = every dataset matched its content hash,
                                  * 0 = written before content hashes (unchecked) */
} gi_state;

/* Record a settings change (a copy of text) applying from `step` on. */
int gi_state_add_history(gi_state *st, long step, const char *text, gi_err *err);

int gi_checkpoint_save(const gi_state *st, const char *path, gi_err *err);
int gi_checkpoint_load(gi_state *st, const char *path, gi_err *err);
/* Only the config a checkpoint was trained with (YAML, malloc'd): for checks
 * that need no weights. */
int gi_checkpoint_read_config(const char *path, char **yaml, gi_err *err);
void gi_state_free(gi_state *st);

#endif
