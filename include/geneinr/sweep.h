/* sweep.h - hyper-parameter sweeps: the sweep file and the runner.
 *
 * A sweep file is YAML:
 *
 *   base: configs/demo.yaml        # the run config every trial starts from (required)
 *   set:                           # overrides for every trial (as --set; dotted or nested keys)
 *     train.steps: 500
 *   ranks_per_trial: 2             # MPI ranks per trial (default 1)
 *   grid:                          # every combination; the last key varies fastest
 *     model.width: [64, 128]
 *     train.lr: [0.001, 0.003]
 *   random:                        # trials drawn at random (counter-based, seeded)
 *     trials: 8
 *     seed: 1
 *     space:
 *       train.weight_decay: {log_uniform: [0.0001, 1]}
 *       model.fourier_scale: {uniform: [0.2, 0.6]}
 *       model.donor_dim: {choice: [4, 8]}
 *   render_best: true              # render the best trial to OUT/best/ (default false)
 *
 * Trials. With a grid of n combinations and random.trials = m, the sweep has
 * n * m trials (n = 1 without a grid, m = 1 without random): trial t uses
 * random draw t / n and grid combination t % n. Draw r of key k is a pure
 * function of (random.seed, k's position in space, r), so adding trials at
 * the end never changes earlier ones. uniform and log_uniform draws of an
 * integer key are rounded (uniform over the integers a..b); those of a float
 * key are written with 6 significant digits, the text the trial records.
 *
 * Validation. Every key and every value (each grid value, each choice, both
 * ends of a range) is checked as `--set` checks it, on top of the base config
 * and the `set` overrides; an error names the sweep file's line. A trial whose
 * combination of values is refused (a rule between keys), or that fails when
 * it runs (a donor that does not exist, divergence), is marked failed and the
 * sweep goes on.
 */
#ifndef GENEINR_SWEEP_H
#define GENEINR_SWEEP_H

#include <mpi.h>

#include "geneinr/config.h"
#include "geneinr/error.h"

typedef struct gi_sweep {
    char path[GI_PATH_MAX];     /* the sweep file */
    char base[GI_PATH_MAX];     /* base: the run config */
    int ranks_per_trial;
    int render_best;
    int n_set;
    char **set;                 /* [n_set] "key=value" applied to every trial */
    int n_keys;
    char **keys;                /* [n_keys] swept keys: grid keys, then random keys, in file order */
    int n_trials;
    char **values;              /* [n_trials * n_keys] the value text of key k in trial t (YAML scalar) */
} gi_sweep;

/* Parse and validate a sweep file (every value against its base config).
 * On failure *s is empty and err names file:line. */
int gi_sweep_load(gi_sweep *s, const char *path, gi_err *err);
void gi_sweep_free(gi_sweep *s);

/* The overrides of trial t: the `set` list, then "key=value" of each swept key.
 * Returns a NULL-terminated malloc'd array of malloc'd strings (free with
 * gi_sweep_free_overrides), or NULL when out of memory; *n gets the count. */
char **gi_sweep_overrides(const gi_sweep *s, int t, int *n);
void gi_sweep_free_overrides(char **ov);

/* What `geneinr sweep` was asked to do. */
typedef struct gi_sweep_opts {
    const char *out;            /* sweep folder; NULL = sweeps/<sweep file name> */
    int trial;                  /* >= 0: run this trial alone on all ranks (job arrays) */
    int collect;                /* rebuild OUT/results.csv from the trial folders (and render_best) */
    int retry_failed;           /* rerun failed trials too */
} gi_sweep_opts;

/* The sweep command, collective over world: prints its progress and errors on
 * world rank 0 and returns the process exit status: 0 done, 1 error (or every
 * trial failed), GI_EXIT_REQUEUE (stop.h) when a stop signal interrupted it
 * (finished trials are kept, interrupted ones resume from their checkpoints). */
int gi_sweep_command(const char *path, const gi_sweep_opts *o, MPI_Comm world);

#endif
