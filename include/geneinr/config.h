/* config.h - the run configuration: one YAML file plus --set overrides.
 *
 * Every option has a default, a documented meaning and a validation. The
 * schema (key, type, default, allowed values, meaning) lives in one table in
 * config.c; parsing, --set overrides, validation, the printed reference
 * (`geneinr config --reference`, docs/CONFIG.md) and the effective-config dump
 * all come from that table, so they cannot disagree.
 *
 * Paths in the config are used as written (relative to the working directory
 * of the command), like every other command-line tool.
 */
#ifndef GENEINR_CONFIG_H
#define GENEINR_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "geneinr/enum_names.h"
#include "geneinr/error.h"
#include "geneinr/model_settings.h"

#define GI_PATH_MAX 1024
#define GI_NAME_MAX 64

/* The enumerated settings (GI_ARCH_*, GI_PRIOR_*, ...) and their names: enum_names.h. */

/* The shared kriging hyperparameters of a data.prior fit, in this order:
 * range (mm), nugget/sill, label effect/sill, donor effect/sill, label
 * similarity weight (0 for a term the model does not have). Kept in the
 * checkpoint (checkpoint.h) so that prediction reuses training's. */
#define GI_PRIOR_HYPER_N 5

typedef struct gi_config {
    char source[GI_PATH_MAX];          /* the YAML file this came from */

    struct {
        char samples[GI_PATH_MAX];     /* data.samples: sample table CSV (required) */
        char anatomy[GI_PATH_MAX];     /* data.anatomy: label NIfTI entering the network; "" = none */
        float anatomy_tolerance;       /* data.anatomy_tolerance: mm a sample may reach for its label (label_match.h) */
        char anatomy_labels[GI_PATH_MAX]; /* data.anatomy_labels: abagen label table (class/hemisphere rule); "" = none */
        float max_outside;             /* data.max_outside: refuse when more samples lie outside mask/labels (geometry.h) */
        char genes[GI_PATH_MAX];       /* data.genes: gene list file selecting the gene columns; "" = all */
        int trunk_genes;               /* data.trunk_genes: genes the trunk is trained on before `run` extends to all; 0 = all */
        int prior;                     /* data.prior: GI_PRIOR_*: baseline mean the INR learns the residual of */
        int prior_donor_effect;        /* data.prior_donor_effect: the prior models donor offsets (random effect) */
        int prior_label_similarity;    /* data.prior_label_similarity: label effects correlated by gene profile */
        int prior_crossfit;            /* data.prior_crossfit: K folds of out-of-fold prior residuals, 0 = off */
        int prior_refit;               /* data.prior_refit: the prior for prediction is fitted on every sample */
    } data;

    struct {
        /* model.*: one field per row of GI_MODEL_SETTINGS (model_settings.h),
         * where each setting's type, default, bounds and meaning are listed. */
        GI_MODEL_SETTINGS(GI_SETTING_MEMBER)
    } model;

    struct {
        int steps;                     /* train.steps: optimizer steps */
        int batch_size;                /* train.batch_size: samples per step, 0 = full batch */
        int optimizer;                 /* train.optimizer: adam | adamw */
        float lr;                      /* train.lr: peak learning rate */
        float weight_decay;            /* train.weight_decay */
        float beta1, beta2, eps;       /* train.beta1, train.beta2, train.eps */
        int schedule;                  /* train.schedule: constant | step | cosine */
        int warmup_steps;              /* train.warmup_steps: linear warm-up from 0 */
        float min_lr;                  /* train.min_lr: floor of the cosine schedule */
        int step_every;                /* train.step_every: step schedule period */
        float step_gamma;              /* train.step_gamma: step schedule factor */
        float clip_norm;               /* train.clip_norm: global gradient-norm clip, 0 = off */
        int val_mode;                  /* train.validation: none | fraction | donor */
        float val_fraction;            /* train.val_fraction: share of samples held out */
        char val_donor[GI_NAME_MAX];   /* train.val_donor: donor held out (validation: donor) */
        int val_every;                 /* train.val_every: steps between validation scores */
        int patience;                  /* train.patience: validations without improvement before stopping, 0 = never stop early */
        int checkpoint_every;          /* train.checkpoint_every: steps between checkpoints, 0 = only at the end */
        int log_every;                 /* train.log_every: steps between progress lines */
        uint64_t seed;                 /* train.seed */
        int ensemble;                  /* train.ensemble: members trained with seeds seed .. seed+ensemble-1, mean predicted */
        int val_average;               /* train.val_average: score validation with the donor-average prediction */
        int resume;                    /* train.resume: off | auto (continue from OUT/checkpoint.h5 if present) */
    } train;

    struct {
        char mask[GI_PATH_MAX];        /* render.mask: mask NIfTI defining the grid (required to render) */
        int batch_voxels;              /* render.batch_voxels: voxels evaluated per batch */
        char donor[GI_NAME_MAX];       /* render.donor: "average" or a donor name */
        int nifti;                     /* render.nifti: enum gi_nifti_mode (none | 3d | 4d | both) */
        int buffer_mb;                 /* render.buffer_mb: bound on the output buffer per rank */
        int compress;                  /* render.compress: HDF5 deflate level 0-9 for /expression (0 = none) */
        int chunk_genes;               /* render.chunk_genes: genes per HDF5 chunk of /expression, 0 = automatic */
        int method;                    /* render.method: GI_METHOD_* (method_kind.h): inr | nearest | idw | kriging | regression_kriging */
        int background;                /* render.background: nan | zero, NIfTI value outside the mask */
        int dtype;                     /* render.dtype: enum gi_dtype (float32 | uint16), /expression's storage */
        int preview_genes;             /* render.preview_genes: previews of the first N genes (0 = none) */
        char preview_at[GI_NAME_MAX];  /* render.preview_at: "x,y,z" MNI mm, "" = mask centre */
        int preview_samples;           /* render.preview_samples: mark samples near each slice */
        int preview_orientation;       /* render.preview_orientation: enum gi_orientation */
        int report;                    /* render.report: write OUT/report.html */
        int uncertainty;               /* render.uncertainty: write /uncertainty (the map's SD) */
        int uncertainty_step;          /* render.uncertainty_step: voxels between lattice points of the SD's smooth part */
        int prior_step;                /* render.prior_step: voxels between lattice points of the prior's smooth part (1 = exact) */
    } render;

    struct {
        int idw_k;                     /* baseline.idw_k: samples averaged by idw (abagen: 10) */
        int covariance;                /* baseline.covariance: GI_COV_* (method.h) */
        int per_gene;                  /* baseline.per_gene: kriging hyperparameters per gene (else shared) */
        int fit_samples;               /* baseline.fit_samples: samples in the kriging likelihood fit, 0 = all */
        float label_shrink;            /* baseline.label_shrink: regression kriging label-mean pseudo-count */
    } baseline;

    struct {
        int split;                     /* eval.split: kfold | donor | block */
        int folds;                     /* eval.folds: folds (kfold, block) */
        float block_mm;                /* eval.block_mm: edge of the spatial blocks (block) */
        char methods[256];             /* eval.methods: comma-separated method names, "" = all that apply */
        uint64_t seed;                 /* eval.seed: fold assignment */
        int groups;                    /* eval.groups: rank groups working on folds side by side, 0 = auto */
        int new_genes;                 /* eval.new_genes: genes held out of the trunk and extended (inr_extended), 0 = off */
    } eval;

    struct {
        char out[GI_PATH_MAX];         /* run.out: run folder ("" = runs/<config name>) */
        int threads;                   /* run.threads: OpenBLAS threads per rank (default 1), 0 = cores / ranks */
    } run;

    struct {                           /* `geneinr prepare`: AHBA donor folders -> sample table */
        char data_dir[GI_PATH_MAX];    /* prepare.data_dir: folder of normalized_microarray_donor<ID>/ */
        char coordinates[GI_PATH_MAX]; /* prepare.coordinates: corrected MNI table; "" = SampleAnnot's */
        char reannotation[GI_PATH_MAX];/* prepare.reannotation: probe reannotation table; "" = Probes.csv's */
        char genes[GI_PATH_MAX];       /* prepare.genes: gene list selecting the output columns; "" = all */
        int probe_selection;           /* prepare.probe_selection: gi_probe_sel */
        float ibf_threshold;           /* prepare.ibf_threshold: intensity-based filter */
        int lr_mirror;                 /* prepare.lr_mirror: gi_lr_mirror */
        int norm_train_only;           /* prepare.norm_train_only: fit the within-donor SRS on training samples */
        char out[GI_PATH_MAX];         /* prepare.out: output folder; "" = prepared/<config name> */
        int threads;                   /* prepare.threads: reader/compute threads, 0 = the node's cores */
    } prepare;
} gi_config;

/* Fill every field with its default. */
void gi_config_defaults(gi_config *c);

/* Load a YAML file over the defaults, then apply overrides ("key.path=value",
 * each parsed as YAML scalar), then validate everything. Errors name the
 * file:line (or "--set key") and what is allowed. path may be NULL (defaults
 * + overrides only). On failure *c is left unchanged. */
int gi_config_load(gi_config *c, const char *path, const char *const *overrides,
                   int n_overrides, gi_err *err);

/* Validate a filled config (also called by gi_config_load). */
int gi_config_validate(const gi_config *c, gi_err *err);

/* The effective config as YAML text (malloc'd, caller frees): stored in
 * checkpoints and atlases and re-loadable with gi_config_load. */
char *gi_config_to_yaml(const gi_config *c);

/* Parse YAML text (e.g. from a checkpoint) instead of a file: defaults, then
 * the text, then validation, as gi_config_load without overrides. name is used
 * in error messages and stored in c->source (NULL: ""). */
int gi_config_load_text(gi_config *c, const char *text, const char *name, gi_err *err);

/* For each key (starting with prefix; NULL = all) whose value differs between
 * a and b, in table order: fn(key, value in a, value in b, ctx), values as YAML
 * text. Returns the number of differing keys. */
typedef void (*gi_config_diff_fn)(const char *key, const char *a_value, const char *b_value, void *ctx);
int gi_config_diff(const gi_config *a, const gi_config *b, const char *prefix, gi_config_diff_fn fn, void *ctx);

/* Parse "x,y,z" (MNI mm, finite, |v| <= 500) into out (may be NULL to only check). */
int gi_parse_mni_point(const char *text, double out[3]);

/* The reference of all keys as a Markdown table (key, type, default, allowed, meaning). */
void gi_config_print_reference(FILE *f);

/* The type of a key as the reference names it ("int", "uint64", "float",
 * "bool", "string", "enum"), or NULL if there is no such key. */
const char *gi_config_key_type(const char *key);

/* Check one "key=value" override on its own, as --set reads it: the key
 * exists and the value has its type and range. Rules between keys are not
 * checked (they need the whole config). Errors start with "--set key=value: ". */
int gi_config_check_override(const char *override, gi_err *err);

#endif
