/* test_config.c - the run configuration: defaults, a full file, every kind
 * of error (with its line and key), --set overrides, the YAML round trip and
 * the reference table. Temporary YAML files go to $TESTTMP (set by
 * tests/run.sh) or /tmp. */
#include "geneinr/config.h"

#include "check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every key, as the documentation promises them. */
static const char *const ALL_KEYS[] = {
    "data.samples", "data.anatomy", "data.anatomy_tolerance", "data.anatomy_labels", "data.max_outside", "data.genes", "data.trunk_genes", "data.prior", "data.prior_donor_effect",
    "data.prior_crossfit", "data.prior_refit", "data.prior_label_similarity",
    "model.arch", "model.hidden_layers", "model.width", "model.omega0", "model.omega_hidden",
    "model.fourier_features", "model.fourier_scale", "model.gene_mode", "model.gene_code", "model.gene_dim",
    "model.gene_frequencies", "model.donor_dim", "model.anatomy_dim",
    "train.steps", "train.batch_size", "train.optimizer", "train.lr", "train.weight_decay", "train.beta1",
    "train.beta2", "train.eps", "train.schedule", "train.warmup_steps", "train.min_lr", "train.step_every",
    "train.step_gamma", "train.clip_norm", "train.validation", "train.val_fraction", "train.val_donor",
    "train.val_every", "train.patience", "train.checkpoint_every", "train.log_every", "train.seed", "train.ensemble", "train.val_average", "train.resume",
    "render.mask", "render.batch_voxels", "render.donor", "render.nifti", "render.buffer_mb", "render.compress",
    "render.chunk_genes",
    "render.method", "render.uncertainty", "render.uncertainty_step", "render.prior_step",
    "baseline.idw_k", "baseline.covariance", "baseline.per_gene", "baseline.fit_samples", "baseline.label_shrink",
    "eval.split", "eval.folds", "eval.block_mm", "eval.methods", "eval.seed", "eval.groups", "eval.new_genes",
    "render.background", "render.dtype", "render.preview_genes", "render.preview_at", "render.preview_samples",
    "render.preview_orientation", "render.report",
    "run.out", "run.threads",
    "prepare.data_dir", "prepare.coordinates", "prepare.reannotation", "prepare.genes",
    "prepare.probe_selection", "prepare.ibf_threshold", "prepare.lr_mirror", "prepare.norm_train_only",
    "prepare.out", "prepare.threads",
};
enum { N_ALL = sizeof ALL_KEYS / sizeof ALL_KEYS[0] };

/* Temp files are recorded here and removed at the end. */
static char tmp_paths[128][256];
static int n_tmp;

/* Write text to a fresh temp file ending in .yaml; returns its path. */
static const char *write_yaml(const char *text)
{
    const char *dir = getenv("TESTTMP");
    char *path = tmp_paths[n_tmp < 127 ? n_tmp++ : 127];
    snprintf(path, 256, "%s/geneinr-config-XXXXXX.yaml", dir && *dir ? dir : "/tmp");
    int fd = mkstemps(path, 5);
    if (fd < 0) {
        perror("mkstemps");
        exit(2);
    }
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len) {
        perror("write");
        exit(2);
    }
    close(fd);
    return path;
}

/* Load text from a temp file; returns the load's result, err filled. */
static int load_yaml(gi_config *c, const char *text, const char **path_out, gi_err *err)
{
    const char *path = write_yaml(text);
    if (path_out) *path_out = path;
    err->msg[0] = '\0';
    return gi_config_load(c, path, NULL, 0, err);
}

/* The load fails and its message contains "<file>:<line>" and every
 * fragment given. */
static void expect_error(const char *name, const char *text, int line, const char *frag1, const char *frag2)
{
    gi_config c;
    gi_err err;
    const char *path;
    int rc = load_yaml(&c, text, &path, &err);
    char where[300];
    if (line > 0) snprintf(where, sizeof where, "%s:%d: ", path, line);
    else snprintf(where, sizeof where, "%s: ", path);
    CHECKF(rc == -1 && strstr(err.msg, where) && (!frag1 || strstr(err.msg, frag1)) && (!frag2 || strstr(err.msg, frag2)),
           name, "rc=%d, message '%s' (wanted '%s' + '%s' + '%s')", rc, err.msg, where, frag1 ? frag1 : "",
           frag2 ? frag2 : "");
}

/* An override list fails with a message containing both fragments. */
static void expect_set_error(const char *name, const char *path, const char *ov, const char *frag1, const char *frag2)
{
    gi_config c;
    gi_err err = { "" };
    const char *ovs[] = { ov };
    int rc = gi_config_load(&c, path, ovs, 1, &err);
    CHECKF(rc == -1 && strstr(err.msg, frag1) && (!frag2 || strstr(err.msg, frag2)), name,
           "rc=%d, message '%s' (wanted '%s' + '%s')", rc, err.msg, frag1, frag2 ? frag2 : "");
}

static void test_defaults(void)
{
    gi_config c, d;
    gi_err err = { "" };
    gi_config_defaults(&c);
    CHECK(c.model.arch == GI_ARCH_SIREN && c.model.hidden_layers == 3 && c.model.width == 128 &&
              c.model.omega0 == 30.0f && c.model.omega_hidden == 30.0f && c.model.fourier_features == 64 &&
              c.model.fourier_scale == 2.0f && c.model.gene_mode == GI_GENE_FACTORIZED &&
              c.model.gene_code == GI_CODE_EMBEDDING && c.model.gene_dim == 16 && c.model.gene_frequencies == 11 &&
              c.model.donor_dim == 4 && c.model.anatomy_dim == 4,
          "defaults: model section");
    CHECK(c.train.steps == 2000 && c.train.batch_size == 0 && c.train.optimizer == GI_OPT_ADAMW &&
              c.train.lr == 1e-3f && c.train.weight_decay == 0.0f && c.train.beta1 == 0.9f &&
              c.train.beta2 == 0.999f && c.train.eps == 1e-8f && c.train.schedule == GI_SCHED_COSINE &&
              c.train.warmup_steps == 50 && c.train.min_lr == 1e-5f && c.train.step_every == 1000 &&
              c.train.step_gamma == 0.5f && c.train.clip_norm == 0.0f && c.train.val_mode == GI_VAL_FRACTION &&
              c.train.val_fraction == 0.1f && c.train.val_donor[0] == '\0' && c.train.val_every == 50 &&
              c.train.patience == 0 && c.train.checkpoint_every == 0 && c.train.log_every == 100 &&
              c.train.seed == 1,
          "defaults: train section");
    CHECK(c.data.samples[0] == '\0' && c.data.anatomy[0] == '\0' && c.render.mask[0] == '\0' &&
              c.render.batch_voxels == 16384 && strcmp(c.render.donor, "average") == 0 && c.render.nifti == 0 &&
              c.render.buffer_mb == 256 && c.render.compress == 1 && c.run.out[0] == '\0' && c.run.threads == 1 &&
              c.source[0] == '\0',
          "defaults: data, render, run sections");
    CHECKF(gi_config_validate(&c, &err) == 0, "defaults validate", "%s", err.msg);

    memset(&d, 0xAB, sizeof d);
    CHECKF(gi_config_load(&d, NULL, NULL, 0, &err) == 0 && memcmp(&c, &d, sizeof c) == 0,
           "load with no file and no overrides gives the defaults", "%s", err.msg);

    const char *path;
    CHECKF(load_yaml(&d, "", &path, &err) == 0 && strcmp(d.source, path) == 0 && d.train.steps == 2000,
           "empty file: all defaults, source recorded", "%s", err.msg);
    CHECKF(load_yaml(&d, "# nothing here\n\n# still nothing\n", NULL, &err) == 0 && d.model.width == 128,
           "comments-only file: all defaults", "%s", err.msg);
    CHECKF(load_yaml(&d, "---\n", NULL, &err) == 0, "empty document: all defaults", "%s", err.msg);
    CHECKF(load_yaml(&d, "train:\n# lr: 1\nmodel:\n  width: 8\n", NULL, &err) == 0 && d.model.width == 8,
           "a section with every key commented out is fine", "%s", err.msg);
}

static const char FULL[] =
    "# every key, none at its default\n"
    "data:\n"
    "  samples: data/samples.csv\n"
    "  anatomy: 'atlas/labels.nii.gz'\n"
    "model:\n"
    "  arch: fourier\n"
    "  hidden_layers: 5\n"
    "  width: 256\n"
    "  omega0: 20.5\n"
    "  omega_hidden: 1e1\n"
    "  fourier_features: 128\n"
    "  fourier_scale: 3.25\n"
    "  gene_mode: concat\n"
    "  gene_code: spectral\n"
    "  gene_dim: 32\n"
    "  gene_frequencies: 9\n"
    "  donor_dim: 0\n"
    "  anatomy_dim: 8\n"
    "train:\n"
    "  steps: 5000\n"
    "  batch_size: 4096\n"
    "  optimizer: adam\n"
    "  lr: 3e-4\n"
    "  weight_decay: 0.01\n"
    "  beta1: 0.8\n"
    "  beta2: 0.99\n"
    "  eps: 1e-6\n"
    "  schedule: step\n"
    "  warmup_steps: 100\n"
    "  min_lr: 1e-6\n"
    "  step_every: 500\n"
    "  step_gamma: 0.25\n"
    "  clip_norm: 1.5\n"
    "  validation: donor\n"
    "  val_fraction: 0.2\n"
    "  val_donor: \"H0351.2001\"\n"
    "  val_every: 25\n"
    "  patience: 10\n"
    "  checkpoint_every: 1000\n"
    "  log_every: 10\n"
    "  seed: 18446744073709551615\n"
    "render:\n"
    "  mask: masks/brain.nii.gz\n"
    "  batch_voxels: 65536\n"
    "  donor: H0351.2002\n"
    "  nifti: yes\n"
    "  buffer_mb: 1024\n"
    "  compress: 0\n"
    "run:\n"
    "  out: runs/full\n"
    "  threads: 4\n";

static void test_full_file(void)
{
    gi_config c;
    gi_err err = { "" };
    const char *path;
    int rc = load_yaml(&c, FULL, &path, &err);
    CHECKF(rc == 0, "full file loads", "%s", err.msg);
    CHECK(strcmp(c.data.samples, "data/samples.csv") == 0 && strcmp(c.data.anatomy, "atlas/labels.nii.gz") == 0,
          "full file: data paths");
    CHECK(c.model.arch == GI_ARCH_FOURIER && c.model.hidden_layers == 5 && c.model.width == 256 &&
              c.model.omega0 == 20.5f && c.model.omega_hidden == 10.0f && c.model.fourier_scale == 3.25f &&
              c.model.gene_mode == GI_GENE_CONCAT && c.model.gene_code == GI_CODE_SPECTRAL &&
              c.model.donor_dim == 0,
          "full file: model values");
    CHECK(c.train.optimizer == GI_OPT_ADAM && c.train.lr == 3e-4f && c.train.schedule == GI_SCHED_STEP &&
              c.train.val_mode == GI_VAL_DONOR && strcmp(c.train.val_donor, "H0351.2001") == 0 &&
              c.train.seed == UINT64_MAX && c.train.clip_norm == 1.5f,
          "full file: train values (uint64 seed at its maximum)");
    CHECK(c.render.nifti == 1 && c.render.compress == 0 && strcmp(c.render.donor, "H0351.2002") == 0 &&
              strcmp(c.run.out, "runs/full") == 0 && c.run.threads == 4,
          "full file: render and run values");

    /* Dotted keys at the top level mean the same as nested ones. */
    rc = load_yaml(&c, "train.lr: 0.01\nmodel: {width: 64}\n", NULL, &err);
    CHECKF(rc == 0 && c.train.lr == 0.01f && c.model.width == 64, "dotted top-level keys and flow mappings",
           "%s", err.msg);

    /* Booleans, nulls and quoting. */
    int all_bool = 1;
    const char *yes[] = { "true", "True", "YES", "on", "1" }, *no[] = { "false", "No", "OFF", "0", "FALSE" };
    for (int i = 0; i < 5; i++) {
        char text[64];
        snprintf(text, sizeof text, "render:\n  preview_samples: %s\n", yes[i]);
        all_bool &= load_yaml(&c, text, NULL, &err) == 0 && c.render.preview_samples == 1;
        snprintf(text, sizeof text, "render:\n  preview_samples: %s\n", no[i]);
        all_bool &= load_yaml(&c, text, NULL, &err) == 0 && c.render.preview_samples == 0;
    }
    CHECKF(all_bool, "booleans: true/false/yes/no/on/off/1/0 in any case", "%s", err.msg);

    /* render.nifti was a boolean: its spellings stay aliases of 3d / none. */
    int all_alias = 1;
    for (int i = 0; i < 5; i++) {
        char text[64];
        snprintf(text, sizeof text, "render:\n  nifti: %s\n", yes[i]);
        all_alias &= load_yaml(&c, text, NULL, &err) == 0 && c.render.nifti == GI_NIFTI_3D;
        snprintf(text, sizeof text, "render:\n  nifti: %s\n", no[i]);
        all_alias &= load_yaml(&c, text, NULL, &err) == 0 && c.render.nifti == GI_NIFTI_NONE;
    }
    CHECKF(all_alias, "render.nifti: the boolean spellings mean 3d / none", "%s", err.msg);
    rc = load_yaml(&c, "render:\n  nifti: both\n  background: zero\n  preview_at: \"-10, 12.5,3\"\n", NULL, &err);
    CHECKF(rc == 0 && c.render.nifti == GI_NIFTI_BOTH && (c.render.nifti & GI_NIFTI_4D) &&
           c.render.background == GI_BACKGROUND_ZERO && strcmp(c.render.preview_at, "-10, 12.5,3") == 0,
           "render.nifti both, render.background zero, render.preview_at x,y,z", "%s", err.msg);
    char *dumped = rc == 0 ? gi_config_to_yaml(&c) : NULL;
    CHECKF(dumped && strstr(dumped, "nifti: both") && strstr(dumped, "background: zero"),
           "the effective config names render.nifti and render.background", "%s", dumped ? dumped : "(none)");
    free(dumped);
    rc = load_yaml(&c, "render:\n  nifti: yes\n", NULL, &err);
    dumped = rc == 0 ? gi_config_to_yaml(&c) : NULL;
    CHECKF(dumped && strstr(dumped, "nifti: 3d"), "an old boolean render.nifti is recorded as 3d", "%s",
           dumped ? dumped : err.msg);
    free(dumped);
    rc = load_yaml(&c, "render:\n  donor:\n", NULL, &err);
    CHECKF(rc == -1 && strstr(err.msg, ":2: render.donor is empty"), "an empty render.donor is refused with its line",
           "rc %d: %s", rc, err.msg);
    rc = load_yaml(&c, "data:\n  anatomy:\nrender:\n  mask: ~\nrun:\n  out: \"null\"\n", NULL, &err);
    CHECKF(rc == 0 && c.data.anatomy[0] == '\0' && c.render.mask[0] == '\0' && strcmp(c.run.out, "null") == 0,
           "empty/null string values are \"\", a quoted \"null\" is text", "%s", err.msg);
}

static void test_errors(void)
{
    expect_error("error: not a number names line and key", "model:\n  width: 8\ntrain:\n  lr: fast\n", 4,
                 "train.lr: expected a number", "'fast'");
    expect_error("error: unknown key suggests the nearest", "train:\n  steps: 10\n  stepz: 10\n", 3,
                 "unknown key 'train.stepz'", "did you mean 'train.steps'?");
    expect_error("error: unknown key with a transposition", "model:\n  widht: 10\n", 2, "unknown key 'model.widht'",
                 "did you mean 'model.width'?");
    expect_error("error: unknown key far from any lists the section", "train:\n  zzzzzz: 1\n", 2,
                 "unknown key 'train.zzzzzz'", "train keys: steps, batch_size");
    expect_error("error: misspelt section", "trian:\n  lr: 1\n", 1, "unknown key 'trian'", "did you mean 'train'?");
    expect_error("error: key outside its section", "lr: 0.1\n", 1, "unknown key 'lr'", "did you mean 'train.lr'?");
    expect_error("error: enum value not allowed", "\n\nmodel:\n  arch: sirne\n", 4, "model.arch: 'sirne' is not one of",
                 "siren, fourier");
    expect_error("error: number out of range", "train:\n  lr: 20\n", 2, "train.lr: 20 is out of range (0, 10]", NULL);
    expect_error("error: open interval bound excluded", "train:\n  beta1: 1\n", 2, "train.beta1: 1 is out of range [0, 1)",
                 NULL);
    expect_error("error: int rejects a fraction", "model:\n  width: 2.5\n", 2, "model.width: expected a whole number",
                 "'2.5'");
    expect_error("error: int rejects exponent notation", "train:\n  steps: 1e3\n", 2, "train.steps", "'1e3'");
    expect_error("error: int below its minimum", "model:\n  hidden_layers: 0\n", 2,
                 "model.hidden_layers: 0 is out of range [1, 64]", NULL);
    expect_error("error: .inf rejected", "train:\n  clip_norm: .inf\n", 2, "train.clip_norm", "finite");
    expect_error("error: nan rejected", "train:\n  lr: .nan\n", 2, "train.lr", "'.nan'");
    expect_error("error: bad boolean", "render:\n  preview_samples: maybe\n", 2,
                 "render.preview_samples: expected true or false", "'maybe'");
    expect_error("error: render.nifti names its choices", "render:\n  nifti: 5d\n", 2,
                 "render.nifti: '5d' is not one of", "none, 3d, 4d, both");
    expect_error("error: render.preview_at needs x,y,z", "\nrender:\n  preview_at: 1,2\n", 3,
                 "render.preview_at: '1,2' is not \"x,y,z\"", NULL);
    expect_error("error: render.preview_at refuses non-finite", "render:\n  preview_at: 1,nan,3\n", 2,
                 "render.preview_at", "three finite numbers");
    expect_error("error: render.uncertainty with idw", "render:\n  method: idw\n  uncertainty: true\n", 3,
                 "render.uncertainty: render.method idw has no predictive SD", NULL);
    expect_error("error: render.uncertainty with a single network without a prior", "render:\n  uncertainty: true\n",
                 2, "render.method inr has no predictive SD as a single network without data.prior", NULL);
    expect_error("error: render.uncertainty with per-gene kriging",
                 "baseline:\n  per_gene: true\nrender:\n  method: kriging\n  uncertainty: true\n", 5,
                 "render.uncertainty: render.method kriging has no predictive SD with baseline.per_gene", NULL);
    expect_error("error: render.uncertainty_step 0", "render:\n  uncertainty_step: 0\n", 2,
                 "render.uncertainty_step: 0 is out of range [1, 64]", NULL);
    expect_error("error: missing number", "train:\n  lr:\n", 2, "train.lr: expected a number", NULL);
    expect_error("error: duplicate key", "train:\n  lr: 0.1\n  steps: 3\n  lr: 0.2\n", 4, "duplicate key 'train.lr'",
                 "first set at line 2");
    expect_error("error: duplicate key, dotted and nested", "train:\n  lr: 0.1\ntrain.lr: 0.2\n", 3,
                 "duplicate key 'train.lr'", NULL);
    expect_error("error: duplicate section", "train:\n  lr: 0.1\nmodel:\n  width: 3\ntrain:\n  steps: 3\n", 5,
                 "duplicate section 'train'", "first at line 1");
    expect_error("error: mapping where a value is expected", "train:\n  lr:\n    value: 3\n", 2,
                 "train.lr: expected a single value, got a mapping", NULL);
    expect_error("error: list where a value is expected", "train:\n  lr: [1, 2]\n", 2,
                 "train.lr: expected a single value, got a list", NULL);
    expect_error("error: value where a section is expected", "model:\n  width: 4\ntrain: 5\n", 3,
                 "train: expected a mapping of train keys", "'5'");
    expect_error("error: list where a section is expected", "train:\n  - 1\n", 1,
                 "train: expected a mapping of train keys, got a list", NULL);
    expect_error("error: YAML syntax error with libyaml's line", "train:\n  lr: 0.1\n bad: 2\n", 3,
                 "YAML syntax error", "did not find expected key");
    expect_error("error: unterminated quote", "train:\n  lr: 0.1\n  val_donor: \"abc\n", 4, "YAML syntax error",
                 "quoted scalar");
    expect_error("error: tab indentation", "train:\n  lr: 0.1\n\tsteps: 3\n", 3, "YAML syntax error", "tab");
    expect_error("error: top level is a list", "- a\n- b\n", 1, "top level must be a mapping", "got a list");
    expect_error("error: top level is a scalar", "hello\n", 1, "top level must be a mapping", "data, model, train");
    expect_error("error: two documents", "train:\n  lr: 0.1\n---\nmodel:\n  width: 3\n", 3, "only one YAML document",
                 NULL);
    expect_error("error: aliases", "train:\n  lr: &x 0.1\n  min_lr: *x\n", 3, "train.min_lr", "aliases");

    /* Strings must fit their buffers: an error, never a truncation. */
    char text[2200];
    snprintf(text, sizeof text, "train:\n  val_donor: %064d\n", 7);
    expect_error("error: name longer than its buffer", text, 2, "train.val_donor", "at most 63");
    char *p = text + sprintf(text, "data:\n  samples: ");
    memset(p, 'a', 1024);
    strcpy(p + 1024, "\n");
    expect_error("error: path longer than its buffer", text, 2, "data.samples", "at most 1023");
    snprintf(text, sizeof text, "data:\n  samples: %01023d\n", 7);
    {
        gi_config c;
        gi_err err;
        CHECKF(load_yaml(&c, text, NULL, &err) == 0 && strlen(c.data.samples) == 1023,
               "a path of exactly 1023 bytes fits", "%s", err.msg);
    }

    /* Cross-field rules cite a key's line. */
    expect_error("error: min_lr above lr cites min_lr's line", "train:\n  lr: 0.001\n  steps: 3\n  min_lr: 0.01\n", 4,
                 "train.min_lr", "must not exceed train.lr");
    expect_error("error: min_lr above lr cites lr's line if only lr was set", "train:\n  steps: 3\n  lr: 1e-6\n", 3,
                 "train.min_lr", "train.lr");
    expect_error("error: prior_crossfit of 1 fold", "data:\n  prior: kriging\n  prior_crossfit: 1\n", 3,
                 "data.prior_crossfit: 1 fold", "K >= 2");
    expect_error("error: prior_crossfit without a prior", "data:\n  prior_crossfit: 5\n", 2,
                 "data.prior_crossfit has no effect without data.prior", NULL);
    expect_error("error: prior_refit without a prior", "train:\n  steps: 3\ndata:\n  prior_refit: true\n", 4,
                 "data.prior_refit has no effect without data.prior", NULL);
    expect_error("error: label similarity without a regression-kriging prior",
                 "data:\n  prior: kriging\n  prior_label_similarity: true\n", 3,
                 "data.prior_label_similarity needs data.prior: regression_kriging", NULL);
    expect_error("error: anatomy_tolerance without an anatomy", "data:\n  anatomy_tolerance: 2\n", 2,
                 "data.anatomy_tolerance has no effect without data.anatomy", NULL);
    expect_error("error: anatomy_labels without an anatomy", "data:\n  samples: s.csv\n  anatomy_labels: dk.csv\n", 3,
                 "data.anatomy_labels has no effect without data.anatomy", NULL);
    expect_error("error: anatomy_tolerance above 50 mm", "data:\n  anatomy: a.nii\n  anatomy_tolerance: 51\n", 3,
                 "data.anatomy_tolerance", "out of range");
    expect_error("error: negative anatomy_tolerance", "data:\n  anatomy: a.nii\n  anatomy_tolerance: -1\n", 3,
                 "data.anatomy_tolerance", "out of range");
    {
        gi_config c;
        gi_err err = { "" };
        int rc = load_yaml(&c, "data:\n  anatomy: a.nii\n  anatomy_tolerance: 2.5\n  anatomy_labels: dk.csv\n", NULL,
                           &err);
        CHECKF(rc == 0 && c.data.anatomy_tolerance == 2.5f && strcmp(c.data.anatomy_labels, "dk.csv") == 0,
               "anatomy_tolerance and anatomy_labels load with an anatomy", "%s", err.msg);
        gi_config d;
        gi_config_defaults(&d);
        CHECK(d.data.anatomy_tolerance == 0 && d.data.anatomy_labels[0] == 0,
              "anatomy matching defaults: tolerance 0 (the voxel rule), no label table");
    }
    expect_error("error: an ensemble of 0", "train:\n  ensemble: 0\n", 2, "train.ensemble: 0 is out of range [1, 64]",
                 NULL);
    {
        gi_config c;
        gi_err err = { "" };
        int rc = load_yaml(&c, "data:\n  prior: kriging\n  prior_crossfit: 5\n  prior_refit: true\n", NULL, &err);
        CHECKF(rc == 0 && c.data.prior_crossfit == 5 && c.data.prior_refit == 1,
               "prior_crossfit and prior_refit load with a prior", "%s", err.msg);
    }
    expect_error("error: validation donor without a donor", "train:\n  steps: 3\n  validation: donor\n", 3,
                 "train.validation is 'donor'", "train.val_donor is empty");

    /* A missing file reports the system's reason. */
    {
        gi_config c;
        gi_err err = { "" };
        int rc = gi_config_load(&c, "/nonexistent/geneinr/x.yaml", NULL, 0, &err);
        CHECKF(rc == -1 && strstr(err.msg, "/nonexistent/geneinr/x.yaml") && strstr(err.msg, strerror(ENOENT)),
               "error: missing file names the file and the reason", "%s", err.msg);
    }

    /* A failed load leaves the config untouched. */
    {
        gi_config c, before;
        gi_err err;
        gi_config_defaults(&c);
        c.model.width = 77;
        memcpy(&before, &c, sizeof c);
        int rc = load_yaml(&c, "model:\n  width: 8\ntrain:\n  lr: fast\n", NULL, &err);
        CHECK(rc == -1 && memcmp(&c, &before, sizeof c) == 0, "a failed load leaves the config unchanged");
    }

    /* Validation of a struct filled by code. */
    {
        gi_config c;
        gi_err err = { "" };
        gi_config_defaults(&c);
        c.model.width = 0;
        int rc1 = gi_config_validate(&c, &err);
        int ok1 = rc1 == -1 && strstr(err.msg, "model.width") && strstr(err.msg, "[1, 4096]");
        gi_config_defaults(&c);
        c.train.schedule = 7;
        int ok2 = gi_config_validate(&c, &err) == -1 && strstr(err.msg, "train.schedule");
        gi_config_defaults(&c);
        memset(c.render.donor, 'x', sizeof c.render.donor);
        int ok3 = gi_config_validate(&c, &err) == -1 && strstr(err.msg, "render.donor");
        CHECKF(ok1 && ok2 && ok3, "validate rejects out-of-range, bad enum and unterminated fields", "%s", err.msg);
    }
}

static void test_overrides(void)
{
    gi_config c;
    gi_err err = { "" };
    const char *path = write_yaml("train:\n  lr: 0.01\n  steps: 100\nrender:\n  donor: H1\n");
    const char *ovs[] = { "train.lr=0.002", "render.donor=\"null\"", "model.arch=fourier", "train.lr=0.003",
                          "run.out=", "data.samples=my data/s.csv" };
    int rc = gi_config_load(&c, path, ovs, 6, &err);
    CHECKF(rc == 0 && c.train.lr == 0.003f && c.train.steps == 100 && c.model.arch == GI_ARCH_FOURIER &&
               strcmp(c.render.donor, "null") == 0 && c.run.out[0] == '\0' &&
               strcmp(c.data.samples, "my data/s.csv") == 0,
           "overrides win over the file, later overrides win over earlier, YAML quoting applies", "%s", err.msg);

    expect_set_error("override error names --set", path, "train.lr=abc", "--set train.lr=abc: train.lr",
                     "expected a number");
    expect_set_error("override out of range", path, "train.lr=20", "--set train.lr=20", "out of range (0, 10]");
    expect_set_error("override without '='", path, "train.lr", "--set train.lr", "expected key=value");
    expect_set_error("override with an empty key", path, "=3", "--set =3", "key before '=' is empty");
    expect_set_error("override unknown key suggests", path, "train.stepz=4", "unknown key 'train.stepz'",
                     "did you mean 'train.steps'?");
    expect_set_error("override of a whole section", path, "train=4", "'train' is a section", "lr");
    expect_set_error("override with a mapping value", path, "data.samples=a: b", "--set data.samples=a: b",
                     "got a mapping");
    expect_set_error("override that breaks a cross-field rule is cited", path, "train.min_lr=0.5", "--set train.min_lr=0.5",
                     "must not exceed train.lr");
    expect_set_error("override with a too long name", NULL,
                     "train.val_donor=0123456789012345678901234567890123456789012345678901234567890123456789",
                     "--set train.val_donor=", "at most 63");

    const char *ov_only[] = { "train.steps=7", "render.nifti=on" };
    rc = gi_config_load(&c, NULL, ov_only, 2, &err);
    CHECKF(rc == 0 && c.train.steps == 7 && c.render.nifti == 1 && c.source[0] == '\0',
           "overrides without a file", "%s", err.msg);

    /* Every documented key can be set with --set. */
    int all_set = 1;
    for (int i = 0; i < N_ALL; i++) {
        char ov[128];
        const char *value = strstr(ALL_KEYS[i], "arch") ? "siren"
                            : strstr(ALL_KEYS[i], "gene_mode") ? "concat"
                            : strstr(ALL_KEYS[i], "gene_code") ? "spectral"
                            : strstr(ALL_KEYS[i], "optimizer") ? "adam"
                            : strstr(ALL_KEYS[i], "schedule") ? "constant"
                            : strstr(ALL_KEYS[i], "validation") ? "none"
                            : strstr(ALL_KEYS[i], "nifti") ? "true"
                            : strstr(ALL_KEYS[i], "background") ? "zero"
                            : strstr(ALL_KEYS[i], "dtype") ? "uint16"
                            : strstr(ALL_KEYS[i], "preview_at") ? "0,0,0"
                            : strstr(ALL_KEYS[i], "orientation") ? "radiological"
                            : strstr(ALL_KEYS[i], "beta") || strstr(ALL_KEYS[i], "fraction") ? "0.5"
                            : strstr(ALL_KEYS[i], "min_lr") ? "0"
                            : strstr(ALL_KEYS[i], "probe_selection") ? "max_variance"
                            : strstr(ALL_KEYS[i], "lr_mirror") ? "bidirectional"
                            : strstr(ALL_KEYS[i], "norm_train_only") ? "true"
                            : strstr(ALL_KEYS[i], "resume") ? "auto"
                            : strstr(ALL_KEYS[i], "render.method") ? "kriging"
                            : strcmp(ALL_KEYS[i], "render.uncertainty") == 0 ? "false"
                            : strstr(ALL_KEYS[i], "prior_donor_effect") ? "true"
                            : strstr(ALL_KEYS[i], "prior_crossfit") ? "0"
                            : strstr(ALL_KEYS[i], "anatomy_tolerance") ? "0"
                            : strstr(ALL_KEYS[i], "anatomy_labels") ? "\"\""
                            : strstr(ALL_KEYS[i], "prior_refit") ? "false"
                            : strstr(ALL_KEYS[i], "prior_label_similarity") ? "false"
                            : strstr(ALL_KEYS[i], "data.prior") ? "kriging"
                            : strstr(ALL_KEYS[i], "covariance") ? "matern52"
                            : strstr(ALL_KEYS[i], "eval.split") ? "block"
                            : strstr(ALL_KEYS[i], "eval.methods") ? "idw,nearest"
                            : strstr(ALL_KEYS[i], "eval.folds") ? "3"
                            : strstr(ALL_KEYS[i], "per_gene") ? "true"
                            : "1";
        snprintf(ov, sizeof ov, "%s=%s", ALL_KEYS[i], value);
        const char *one[] = { ov };
        if (gi_config_load(&c, NULL, one, 1, &err) != 0) {
            all_set = 0;
            break;
        }
    }
    CHECKF(all_set, "every documented key can be set with --set", "%s", err.msg);
}

static void test_round_trip(void)
{
    gi_config a, b;
    gi_err err = { "" };
    const char *path;

    /* The full file, with awkward strings and floats added by --set. */
    const char *ovs[] = { "data.anatomy=\"quote \\\" back\\\\slash\\ttab\\nnewline: #hash\"",
                          "run.out='caf\xc3\xa9 / ~ null'", "train.lr=0.1234567", "train.min_lr=3.3e-7",
                          "model.omega0=1e-30", "train.clip_norm=123456.789", "train.val_donor=1e3" };
    write_yaml(FULL);
    path = tmp_paths[n_tmp - 1];
    memset(&a, 0, sizeof a);
    int rc = gi_config_load(&a, path, ovs, 7, &err);
    CHECKF(rc == 0 && strcmp(a.data.anatomy, "quote \" back\\slash\ttab\nnewline: #hash") == 0 &&
               strcmp(a.train.val_donor, "1e3") == 0,
           "round trip: setup with awkward strings", "%s / anatomy='%s'", err.msg, a.data.anatomy);
    char *yaml = gi_config_to_yaml(&a);
    CHECK(yaml != NULL, "to_yaml returns text");
    if (!yaml) return;
    memset(&b, 0, sizeof b);
    rc = gi_config_load_text(&b, yaml, path, &err);
    CHECKF(rc == 0 && memcmp(&a, &b, sizeof a) == 0, "round trip: to_yaml -> load_text gives the same config",
           "%s\n%s", err.msg, yaml);
    int every_key = 1;
    for (int i = 0; i < N_ALL; i++) {
        char line[80];
        snprintf(line, sizeof line, "\n  %s: ", strchr(ALL_KEYS[i], '.') + 1);
        every_key &= strstr(yaml, line) != NULL;
    }
    CHECK(every_key, "to_yaml writes every key");
    free(yaml);

    /* And the defaults. */
    gi_config_defaults(&a);
    yaml = gi_config_to_yaml(&a);
    memset(&b, 0x5A, sizeof b);
    rc = yaml ? gi_config_load_text(&b, yaml, NULL, &err) : -1;
    CHECKF(rc == 0 && memcmp(&a, &b, sizeof a) == 0, "round trip of the defaults", "%s", err.msg);
    free(yaml);

    /* load_text errors carry the given name. */
    rc = gi_config_load_text(&b, "model:\n  width: -1\n", "checkpoint.h5:/config", &err);
    CHECKF(rc == -1 && strstr(err.msg, "checkpoint.h5:/config:2: model.width"), "load_text errors use the given name",
           "%s", err.msg);
}

static void test_reference(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        CHECK(0, "open_memstream");
        return;
    }
    gi_config_print_reference(f);
    fclose(f);
    int every = 1, lines = 0;
    const char *missing = "";
    for (int i = 0; i < N_ALL; i++) {
        char cell[80];
        snprintf(cell, sizeof cell, "| `%s` |", ALL_KEYS[i]);
        if (!strstr(text, cell)) every = 0, missing = ALL_KEYS[i];
    }
    for (const char *p = text; *p; p++) lines += *p == '\n';
    CHECKF(every, "reference mentions every key", "missing %s", missing);
    CHECKF(lines == N_ALL + 2, "reference has one row per key (and no undocumented keys)", "%d lines for %d keys",
           lines, N_ALL);
    CHECK(strncmp(text, "| key | type | default | allowed | meaning |\n", 44) == 0, "reference header row");
    CHECK(strstr(text, "| `train.lr` | float | `0.001` | (0, 10] |") != NULL &&
              strstr(text, "| `model.arch` | enum | `siren` | siren, fourier |") != NULL,
          "reference rows show type, default and allowed values");
    free(text);
}

int main(void)
{
    test_defaults();
    test_full_file();
    test_errors();
    test_overrides();
    test_round_trip();
    test_reference();
    for (int i = 0; i < n_tmp; i++) unlink(tmp_paths[i]);
    return check_summary();
}
