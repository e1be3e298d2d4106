/* method.h - one fit/predict interface for every interpolation method.
 *
 * The INR and the standard interpolators (nearest sample, abagen's IDW,
 * ordinary kriging, regression kriging) are all "methods": fit on a set of
 * training samples, then predict at any MNI points. `eval` and `render` treat
 * them alike through this interface instead of branching on names.
 *
 * Units. Targets are whatever the caller passes in gi_fit_data.y - `eval`
 * and `render` pass per-gene standardised values ((value - mean) / std over
 * the training samples, as the INR trains on) - and predictions come back in
 * the same units. Every method predicts the donor average: the baselines have
 * no donor term, so pooling the donors' samples is their donor average; the
 * INR predicts with its donor-average embedding (model.h, donor -1).
 *
 * Points are MNI millimetres (x, y, z). Anatomy enters as a label index per
 * point (anatomy.h: 0 = outside/unlabelled, 1.. = the image's labels in
 * ascending order), the same list for the fit and the prediction.
 *
 * A fitted method is immutable: predict may be called from any rank, any
 * number of times, on any batch of points, and memory per call is bounded by
 * the batch size, not by the number of points of a volume.
 */
#ifndef GENEINR_METHOD_H
#define GENEINR_METHOD_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "geneinr/config.h"
#include "geneinr/error.h"
#include "geneinr/method_kind.h" /* enum gi_method_kind, GI_METHOD_NAMES, gi_method_parse */

/* The training samples a method is fitted on. All arrays are borrowed: fit
 * copies what it keeps. */
typedef struct gi_fit_data {
    int n, n_genes;
    const float *mni;            /* [n][3] MNI mm */
    const float *y;              /* [n][n_genes] targets, NaN = not measured */
    const int *donor;            /* [n] donor index (INR only) */
    int n_donors;
    char *const *donor_names;    /* [n_donors] (INR only) */
    char *const *gene_names;     /* [n_genes] (INR only) */
    const int *label;            /* [n] anatomy label index, NULL = no anatomy */
    int n_labels;
    /* The samples' annotation columns (INR only: written into the table it
     * trains on, so its dataset matches labels by the same class and
     * hemisphere rule, label_match.h). n_annot = 0: none. */
    int n_annot;
    char *const *annot_names;    /* [n_annot] */
    char *const *annot;          /* [n][n_annot] */
} gi_fit_data;

/* d's samples as a sample table at path (CSV, samples.h; well ids s0, s1, ...):
 * what an INR fitted inside eval trains on, written as its config's data.samples. */
int gi_fit_data_write_csv(const gi_fit_data *d, const char *path, gi_err *err);

/* Settings of the baselines (from the config's baseline.* keys) and, for the
 * INR, the run config plus where it may write its training files. */
typedef struct gi_method_opts {
    int idw_k;                   /* IDW: nearest samples averaged (abagen: 10) */
    int covariance;              /* kriging: GI_COV_* (enum_names.h) */
    int per_gene;                /* kriging: 1 = hyperparameters per gene, 0 = shared */
    int fit_samples;             /* kriging: samples used by the likelihood fit (subsample), 0 = all */
    float label_shrink;          /* regression kriging: pseudo-count of the label-mean shrinkage */
    int donor_effect;            /* kriging: a donor random effect in the covariance, left out of the
                                  * (donor-average) prediction (data.prior_donor_effect) */
    int label_similarity;        /* regression kriging: the label effects of labels with similar gene
                                  * profiles are correlated (data.prior_label_similarity) */
    const struct gi_method *hyper_from; /* kriging: a fitted kriging model of the same kind whose
                                  * hyperparameters are reused (no ML fit), NULL = fit them */
    const double *hyper;         /* kriging, shared hyperparameters: these (GI_PRIOR_HYPER_N, config.h's
                                  * order) instead of an ML fit; NULL = fit them (or hyper_from's) */
    uint64_t seed;               /* subsample draws */
    int verbose;                 /* print the fitted hyperparameters */
    struct gi_progress *progress; /* kriging: counts likelihood evaluations and genes into it (progress.h); NULL = none */
    /* INR */
    const gi_config *config;     /* model and train settings */
    MPI_Comm comm;               /* ranks that train together */
    const char *work_dir;        /* folder for the fold's sample table, checkpoint and log */
} gi_method_opts;

/* Options from a config (baseline.* keys; INR fields left for the caller). */
void gi_method_opts_from_config(gi_method_opts *o, const gi_config *c);

typedef struct gi_method gi_method;

/* Fit. Collective over o->comm for the INR (every rank passes the same
 * data); the baselines are local. NULL on failure (message in err).
 * (method_table.c: the table of kinds.) */
gi_method *gi_method_fit(int kind, const gi_method_opts *o, const gi_fit_data *d, gi_err *err);

/* Predict at n points: out [n][n_genes]. label may be NULL for methods that
 * do not use anatomy. Local (no communication). */
int gi_method_predict(const gi_method *m, int n, const float *mni, const int *label, float *out, gi_err *err);

/* Bytes a predict call takes beyond the caller's out, for memory plans: per
 * gene predicted (the INR's output rows and prior values of one internal
 * batch) and fixed (the INR's outputs of one gene in concat mode); 0 for the
 * baselines, whose scratch does not grow with the genes. */
void gi_method_predict_bytes(const gi_method *m, size_t *per_gene, size_t *fixed);

/* Predict genes g0 .. g0+ng-1 only: out [n][ng], each value bit-identical to
 * gi_method_predict's for that gene. For renders whose buffer holds a group of
 * genes: the gene-independent work (neighbours, covariances, the INR's trunk)
 * is redone per group, the per-gene work is not. */
int gi_method_predict_genes(const gi_method *m, int n, const float *mni, const int *label, int g0, int ng,
                            float *out, gi_err *err);

/* The INR of a trained checkpoint (best-validation weights; with data.prior
 * the prior rebuilt from c; with train.ensemble the members beside it).
 * Predicts in the sample table's units, for donor `donor` (a donor name of
 * the checkpoint; NULL or "average" = the donor average), in network passes
 * of `batch` points (0 = the default, 1024). */
gi_method *gi_method_inr_load(const char *checkpoint, const gi_config *c, const char *donor, int batch, gi_err *err);

/* A loaded INR's (first member's) checkpoint: genes, donors, labels, the
 * config it was trained with. NULL for the other methods. (method_inr.c) */
const struct gi_state *gi_method_inr_checkpoint(const gi_method *m);

/* A loaded INR's uncertainty calibration (method_inr.c): the scale s applied
 * to its SD and noise (s = max(1, raw)), the scale its validation samples
 * alone asked for (raw), the number of validation values (0: none, s = 1) and
 * their 50% / 90% coverage at s. -1 for other methods or an INR without an SD. */
int gi_method_inr_calibration(const gi_method *m, double *scale, double *raw, int *n, double *c50, double *c90);

/* ---- uncertainty: how far the map may be from the truth (issue 28) ----
 *
 * A method "has an SD" when it can give, at any point, the predictive
 * standard deviation of its donor-average map (the map predict returns, in
 * the same units), calibrated: any scale the method chose on its own inner
 * validation is already applied. Kriging and regression kriging take it from
 * the kriging variance; the INR from the spread of its train.ensemble members
 * and, with data.prior, the prior's kriging variance. IDW and the nearest
 * sample have none.
 *
 * The SD is split in two so that a render of 1.5 M voxels can afford it:
 *  - the smooth part q(x) (kriging: r(x)' A^-1 r(x), the spatial variance
 *    the samples explain, in units of the sill; O(N^2) per point), which a
 *    render may evaluate exactly on a coarse lattice and interpolate;
 *  - the rest, cheap per point (label and mean terms, sill per gene,
 *    ensemble spread, calibration), computed by gi_method_predict_sd from q.
 * Exact SD = gi_method_predict_sd with q = NULL (or q from gi_method_sd_smooth
 * at the same points). Methods without a smooth part ignore q. */

/* 1 = the method gives an SD (the calls below succeed), 0 = it has none. */
int gi_method_has_sd(const gi_method *m);

/* Values per point of the smooth part (1 for a method without one; kriging:
 * 2 + its labels, q = r'A^-1 r, r'A^-1 1 and r'A^-1 s_l per label, so that
 * with them interpolated the SD costs O(1) per voxel, issue 31). */
int gi_method_sd_width(const gi_method *m);

/* The smooth part at n points: q [n][gi_method_sd_width]; zeros for a method
 * without one. Local. A point's bits may depend on its place in the batch
 * (BLAS-3 kernels): the lattice calls it in fixed batches (uncertainty.h). */
int gi_method_sd_smooth(const gi_method *m, int n, const float *mni, float *q, gi_err *err);

/* The map's SD at n points for genes g0 .. g0+ng-1: sd [n][ng], predict's
 * units. q: the smooth part at each point (exact or interpolated), NULL =
 * computed here exactly. Fails (message) for a method without an SD. Local;
 * bit-identical for a point whatever batch it comes in. */
int gi_method_predict_sd(const gi_method *m, int n, const float *mni, const int *label, const float *q, int g0,
                         int ng, float *sd, gi_err *err);

/* The SD of one sample about the map, per gene (noise [n_genes], predict's
 * units): what the method estimates from its training samples of measurement
 * noise and of the donor effects the donor-average map leaves out, with the
 * same calibration as gi_method_predict_sd. A held-out sample's central
 * interval is map +- z sqrt(sd^2 + noise^2). Fails for a method without an SD. */
int gi_method_noise_sd(const gi_method *m, float *noise, gi_err *err);

/* ---- the smooth part of the map: the prior's cost in a render (issue 31) ----
 *
 * Kriging's map is a Gaussian-process part sum_i rho(|x - x_i|) alpha_gi,
 * O(samples) per point and gene window (a covariance row against every
 * sample, then a GEMM), plus the rest (mean and label effect), cheap per
 * point. The GP part varies on the covariance range (centimetres), so a
 * render may compute it on a coarse lattice and interpolate it, as it does
 * the SD's q (uncertainty.h); the label effect, discontinuous at label
 * borders, stays exact per voxel. The INR's smooth part is its prior's, in
 * table units (x gene_std, averaged over members that fit their own prior).
 * map = rest + smooth; with the exact smooth part, the same bits as predict
 * for kriging and within float rounding for the INR. */

/* 1 = the map splits as above (the calls below succeed), 0 = no smooth part. */
int gi_method_has_smooth(const gi_method *m);

/* The smooth part for genes g0 .. g0+ng-1 at n points: out [n][ng],
 * predict's units. Local. A point's bits may depend on its place in the
 * batch (GEMM kernels): callers that need rank-independent bits use fixed
 * batches (the lattice's planes). Fails for a method without one. */
int gi_method_predict_smooth(const gi_method *m, int n, const float *mni, int g0, int ng, float *out, gi_err *err);

/* The map for genes g0 .. g0+ng-1 given its smooth part at the points
 * (smooth [n][ng], e.g. interpolated from a lattice): out = rest + smooth.
 * smooth NULL, or a method without a smooth part: gi_method_predict_genes. */
int gi_method_predict_with_smooth(const gi_method *m, int n, const float *mni, const int *label, const float *smooth,
                                  int g0, int ng, float *out, gi_err *err);

/* The map without its smooth part (out [n][ng]): what gi_method_predict_with_smooth adds the smooth part to. */
int gi_method_predict_rest(const gi_method *m, int n, const float *mni, const int *label, int g0, int ng, float *out,
                           gi_err *err);

int gi_method_n_genes(const gi_method *m);
int gi_method_kind(const gi_method *m);
void gi_method_free(gi_method *m);

/* ---- per-method entry points, behind a gi_method (method.c) ---- */
typedef struct gi_method_impl {
    void *(*fit)(const gi_method_opts *o, const gi_fit_data *d, gi_err *err);
    /* genes g0 .. g0+ng-1, out [n][ng] */
    int (*predict)(const void *state, int n, const float *mni, const int *label, int g0, int ng, float *out,
                   gi_err *err);
    void (*free)(void *state);
    /* gi_method_predict_bytes; NULL = nothing beyond out */
    void (*predict_bytes)(const void *state, size_t *per_gene, size_t *fixed);
    /* uncertainty (see gi_method_has_sd); has_sd NULL = none. sd_smooth NULL
     * = no smooth part (q is zeros). */
    int (*has_sd)(const void *state);
    int (*sd_smooth)(const void *state, int n, const float *mni, float *q, gi_err *err);
    int (*predict_sd)(const void *state, int n, const float *mni, const int *label, const float *q, int g0, int ng,
                      float *sd, gi_err *err);
    int (*noise_sd)(const void *state, float *noise, gi_err *err);
    /* gi_method_sd_width; NULL = 1 */
    int (*sd_width)(const void *state);
    /* the smooth part of the map (see gi_method_has_smooth); has_smooth NULL
     * = none. rest: the map without it, out [n][ng]. */
    int (*has_smooth)(const void *state);
    int (*smooth)(const void *state, int n, const float *mni, int g0, int ng, float *out, gi_err *err);
    int (*rest)(const void *state, int n, const float *mni, const int *label, int g0, int ng, float *out,
                gi_err *err);
} gi_method_impl;

/* Fit with one implementation, named directly: for code that stands below
 * the table of kinds (the prior fits kriging this way, prior.c). */
gi_method *gi_method_fit_impl(const gi_method_impl *impl, int kind, const gi_method_opts *o, const gi_fit_data *d,
                              gi_err *err);
/* A method around a state an implementation made (NULL state: NULL, err as
 * set by the maker; the state is freed on failure). */
gi_method *gi_method_of(const gi_method_impl *impl, int kind, int n_genes, void *state, gi_err *err);

extern const gi_method_impl gi_nearest_impl, gi_idw_impl, gi_kriging_impl, gi_rk_impl, gi_inr_impl;

#endif
