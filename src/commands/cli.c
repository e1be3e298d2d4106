/* cli.c - commands: phantom, train, render, run, info, score, config.
 *
 * Phases are visible per command: set-up (config, run folder), compute
 * (train / render), report. Every command runs under MPI (a plain
 * `geneinr ...` is a one-rank job); commands that are not parallel do their
 * work on rank 0. Errors are agreed across ranks before being reported once.
 */
#include "geneinr/cli.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "geneinr/atlas.h"
#include "geneinr/checkpoint.h"
#include "geneinr/cmd.h"
#include "geneinr/config.h"
#include "geneinr/dist.h"
#include "geneinr/ensemble.h"
#include "geneinr/export.h"
#include "geneinr/files.h"
#include "geneinr/h5.h"
#include "geneinr/nifti.h"
#include "geneinr/phantom.h"
#include "geneinr/prepare.h"
#include "geneinr/prior.h" /* gi_train_ex, gi_ensemble_train: training over data.prior */
#include "geneinr/method.h"
#include "geneinr/render.h"
#include "geneinr/rundir.h"
#include "geneinr/render_method.h"
#include "geneinr/report.h"
#include "geneinr/samples.h"
#include "geneinr/score.h"
#include "geneinr/stop.h"
#include "geneinr/sweep.h"
#include "geneinr/train.h"
#include "geneinr/version.h"

#define MAX_SETS 256

static const char *USAGE =
    "geneinr " GENEINR_VERSION " - voxel-level whole-brain gene expression maps from sparse tissue samples\n"
    "with one conditional implicit neural representation, trained data-parallel over MPI.\n"
    "\n"
    "usage: geneinr COMMAND [options]      (run under mpirun/srun for several ranks)\n"
    "\n"
    "commands:\n"
    "  phantom --out DIR [--seed N] [--genes G] [--grid 1|2] [--ahba [--ahba-probes N] [--reference DIR]]\n"
    "                         write the synthetic dataset with known truth (samples.csv, mask.nii.gz,\n"
    "                         anatomy.nii.gz, truth.h5, README.txt); --ahba also writes DIR/ahba/, the\n"
    "                         samples as AHBA donor folders (N probes in all; --reference: a folder of\n"
    "                         real tables, e.g. ../shared/data, for real well ids, coordinates, probe names)\n"
    "                         --dk: on the real Desikan-Killiany grid at the real AHBA sample coordinates\n"
    "                         (from --reference, default ../shared/data), tissue-class effects + gradients\n"
    "                         --sample-truth tissue|voxel: tissue (default) = each sample is grey matter cut\n"
    "                         from a structure, its coordinate that tissue + registration error (it may miss\n"
    "                         every label), its value the truth at the tissue; adds class/hemisphere columns,\n"
    "                         anatomy.csv (label table), sample_tissue.csv; voxel = the phantoms before issue 25\n"
    "  prepare CONFIG [--out DIR] [--set k=v]...\n"
    "                         AHBA donor folders (prepare.data_dir) -> OUT/samples.csv as abagen computes\n"
    "                         it, and OUT/report.json (default OUT: prepare.out, else prepared/<config name>)\n"
    "  train CONFIG [opts]    train the model; writes OUT/checkpoint.h5 and OUT/train_log.csv\n"
    "  render CONFIG [opts]   render every gene on the mask's grid into OUT/atlas.h5 (+ NIfTI, previews,\n"
    "                         report.html)\n"
    "  run CONFIG [opts]      train then render, one job\n"
    "  info FILE              describe a sample table, NIfTI, checkpoint or atlas\n"
    "  score ATLAS --truth TRUTH.h5 --samples CSV [--stride N] [--json FILE]\n"
    "                         accuracy of an atlas against a known truth, and of the nearest-sample map\n"
    "  eval CONFIG [--out DIR] [--set k=v ...]\n"
    "                         held-out accuracy of the INR and the baselines (nearest, idw, kriging,\n"
    "                         regression_kriging) on the same folds (eval.split kfold|donor|block);\n"
    "                         writes OUT/eval.csv and OUT/summary.csv (default OUT runs/NAME/eval-SPLIT)\n"
    "  regions ATLAS --parcellation LABELS.nii.gz [--labels LABELS.csv] --out regions.csv\n"
    "                         region x gene mean, SD and voxel count of an atlas for any parcellation\n"
    "  config [CONFIG] [--set k=v ...] [--reference]\n"
    "                         print the effective config (validated), or the reference of all keys\n"
    "  preview ATLAS [--genes a,b] [--at x,y,z] [--out DIR]\n"
    "                         PNG slices of genes of any atlas (default DIR: preview/ beside the atlas)\n"
    "  report RUN_DIR         rebuild RUN_DIR/report.html (run, data, training curve, accuracy, maps)\n"
    "\n"
    "options of train, render and run:\n"
    "  --out DIR              run folder (default: run.out, else runs/<config name>)\n"
    "  --set KEY=VALUE        override a config key, e.g. --set train.steps=500 (repeatable)\n"
    "  --resume               (train, run) continue from OUT/checkpoint.h5\n"
    "  --resume-from FILE     (train, run) continue from FILE\n"
    "  --force                (train, run) resume even though training settings changed (recorded)\n"
    "  --checkpoint FILE      (render) render this checkpoint instead of OUT/checkpoint.h5\n"
    "  --nifti                (render, run) also write OUT/nifti/<gene>.nii.gz (= --set render.nifti=3d)\n"
    "\n"
    "  --help                 this text;  --version  the version\n"
    "\n"
    "Config reference: docs/CONFIG.md or `geneinr config --reference`.\n";

typedef struct args {
    const char *cmd;
    const char *positional;
    const char *out;
    const char *sets[MAX_SETS];
    int n_sets;
    int resume;
    int force;
    const char *resume_from;
    const char *checkpoint;
    int nifti;
    int reference;
    const char *truth, *samples, *json;
    const char *parcellation, *labels;
    long stride, seed, genes, grid;     /* -1 = not given */
    const char *gene_list, *at;         /* preview: --genes a,b  --at x,y,z */
    int argc;
    char **argv;
    long trial;                         /* sweep --trial, -1 = not given */
    int collect, retry_failed;          /* sweep --collect, --retry-failed */
    int ahba;                           /* phantom --ahba */
    int dk;                             /* phantom --dk */
    int sample_truth_voxel;             /* phantom --sample-truth voxel */
    long ahba_probes;                   /* phantom --ahba-probes N, -1 = not given */
    const char *reference_dir;          /* phantom --reference DIR */
    const char *given[32];              /* the options seen, to refuse those a command does not take */
    int n_given;
} args;

typedef struct ctx {
    MPI_Comm comm;
    int rank, size;
} ctx;

static int usage_error(const ctx *x, const char *fmt, const char *what)
{
    if (x->rank == 0) {
        fprintf(stderr, "geneinr: ");
        fprintf(stderr, fmt, what);
        fprintf(stderr, "\nRun 'geneinr --help' for usage.\n");
    }
    return 2;
}

static int report(const ctx *x, int rc, const gi_err *err)
{
    if (rc != 0 && x->rank == 0)
        fprintf(stderr, "geneinr: error: %s\n", err->msg);
    return rc != 0 ? 1 : 0;
}

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

/* Parse argv after the command. Returns 0, or 2 after printing a usage error. */
static int parse_args(const ctx *x, int argc, char **argv, args *a)
{
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (s[0] == '-' && s[1] == '-' && a->n_given < 32)
            a->given[a->n_given++] = s;
#define NEED_VALUE()                                                         \
    do {                                                                     \
        if (!next)                                                           \
            return usage_error(x, "option %s needs a value", s);             \
        i++;                                                                 \
    } while (0)
        if (!strcmp(s, "--out")) {
            NEED_VALUE();
            a->out = next;
        } else if (!strcmp(s, "--set")) {
            NEED_VALUE();
            if (a->n_sets == MAX_SETS)
                return usage_error(x, "too many --set options (at most %s)", "256");
            a->sets[a->n_sets++] = next;
        } else if (!strncmp(s, "--set=", 6)) {
            if (a->n_sets == MAX_SETS)
                return usage_error(x, "too many --set options (at most %s)", "256");
            a->sets[a->n_sets++] = s + 6;
        } else if (!strcmp(s, "--resume")) {
            a->resume = 1;
        } else if (!strcmp(s, "--force")) {
            a->force = 1;
        } else if (!strcmp(s, "--resume-from")) {
            NEED_VALUE();
            a->resume = 1;
            a->resume_from = next;
        } else if (!strcmp(s, "--checkpoint")) {
            NEED_VALUE();
            a->checkpoint = next;
        } else if (!strcmp(s, "--nifti")) {
            a->nifti = 1;
        } else if (!strcmp(s, "--reference")) {
            a->reference = 1;
            if (!strcmp(a->cmd, "phantom")) {   /* phantom --reference DIR: real AHBA tables */
                NEED_VALUE();
                a->reference_dir = next;
            }
        } else if (!strcmp(s, "--dk")) {
            a->dk = 1;
        } else if (!strcmp(s, "--sample-truth")) {
            NEED_VALUE();
            if (strcmp(next, "tissue") != 0 && strcmp(next, "voxel") != 0)
                return usage_error(x, "--sample-truth must be tissue or voxel, got '%s'", next);
            a->sample_truth_voxel = !strcmp(next, "voxel");
        } else if (!strcmp(s, "--ahba")) {
            a->ahba = 1;
        } else if (!strcmp(s, "--ahba-probes")) {
            NEED_VALUE();
            if (parse_long(next, &a->ahba_probes) != 0 || a->ahba_probes < 1 || a->ahba_probes > 10000000)
                return usage_error(x, "--ahba-probes needs a probe count in 1..10000000, got '%s'", next);
        } else if (!strcmp(s, "--truth")) {
            NEED_VALUE();
            a->truth = next;
        } else if (!strcmp(s, "--samples")) {
            NEED_VALUE();
            a->samples = next;
        } else if (!strcmp(s, "--parcellation")) {
            NEED_VALUE();
            a->parcellation = next;
        } else if (!strcmp(s, "--labels")) {
            NEED_VALUE();
            a->labels = next;
        } else if (!strcmp(s, "--json")) {
            NEED_VALUE();
            a->json = next;
        } else if (!strcmp(s, "--genes") && a->cmd && !strcmp(a->cmd, "preview")) {
            NEED_VALUE();
            a->gene_list = next;
        } else if (!strcmp(s, "--at")) {
            NEED_VALUE();
            a->at = next;
        } else if (!strncmp(s, "--at=", 5)) {   /* --at=-20,0,10: a value that starts with '-' */
            a->at = s + 5;
        } else if (!strcmp(s, "--collect")) {
            a->collect = 1;
        } else if (!strcmp(s, "--retry-failed")) {
            a->retry_failed = 1;
        } else if (!strcmp(s, "--trial")) {
            NEED_VALUE();
            if (parse_long(next, &a->trial) != 0 || a->trial < 0 || a->trial > 1000000)
                return usage_error(x, "--trial needs a trial number (0, 1, ...), got '%s'", next);
        } else if (!strcmp(s, "--stride") || !strcmp(s, "--seed") || !strcmp(s, "--genes") || !strcmp(s, "--grid")) {
            NEED_VALUE();
            long v;
            if (parse_long(next, &v) != 0 || v < 0)
                return usage_error(x, "this option needs a non-negative integer, got '%s'", next);
            if (!strcmp(s, "--stride"))
                a->stride = v;
            else if (!strcmp(s, "--seed"))
                a->seed = v;
            else if (!strcmp(s, "--genes"))
                a->genes = v;
            else
                a->grid = v;
        } else if (s[0] == '-' && s[1] == '-') {
            return usage_error(x, "unknown option '%s'", s);
        } else if (!a->positional) {
            a->positional = s;
        } else {
            return usage_error(x, "unexpected argument '%s'", s);
        }
#undef NEED_VALUE
    }
    return 0;
}

/* Refuse options the command does not use, rather than ignore them. */
static int check_options(const ctx *x, const args *a)
{
    static const struct { const char *cmd, *opts; } allowed[] = {
        {"train", " --out --set --resume --resume-from --force "},
        {"render", " --out --set --checkpoint --nifti "},
        {"run", " --out --set --resume --resume-from --force --nifti "},
        {"phantom", " --out --seed --genes --grid --ahba --ahba-probes --reference --dk --sample-truth "},
        {"score", " --truth --samples --stride --json "},
        {"info", " "},
        {"prepare", " --out --set "},
        {"config", " --set --reference "},
        {"eval", " --out --set "},
        {"regions", " --parcellation --labels --out "},
        {"preview", " --genes --at --out "},
        {"report", " "},
        {"sweep", " --out --trial --collect --retry-failed "},
    };
    for (size_t c = 0; c < sizeof allowed / sizeof allowed[0]; c++) {
        if (strcmp(a->cmd, allowed[c].cmd) != 0)
            continue;
        for (int i = 0; i < a->n_given; i++) {
            char key[64];
            snprintf(key, sizeof key, " %.*s ", (int)strcspn(a->given[i], "="), a->given[i]);
            if (!strstr(allowed[c].opts, key)) {
                char what[160];
                snprintf(what, sizeof what, "%s does not take %.*s", a->cmd, (int)strcspn(a->given[i], "="),
                         a->given[i]);
                return usage_error(x, "%s", what);
            }
        }
    }
    return 0;
}

/* OpenBLAS threads per rank: run.threads, or the node's cores shared by the
 * ranks on that node. */
static void set_threads(const ctx *x, const gi_config *c)
{
    int threads = c->run.threads;
    if (threads <= 0) {
        MPI_Comm node;
        int local = 1;
        MPI_Comm_split_type(x->comm, MPI_COMM_TYPE_SHARED, x->rank, MPI_INFO_NULL, &node);
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = (int)(cores / local);
        if (threads < 1)
            threads = 1;
    }
    openblas_set_num_threads(threads);
}

/* Config + run folder for train/render/run. */
static int setup_run(const ctx *x, const args *a, gi_config *c, char *out, gi_err *err)
{
    if (!a->positional)
        return gi_fail(err, "%s needs a CONFIG file (e.g. configs/demo.yaml)", a->cmd);
    const char *sets[MAX_SETS + 1];
    int n = 0;
    for (int i = 0; i < a->n_sets; i++)
        sets[n++] = a->sets[i];
    if (a->nifti)
        sets[n++] = "render.nifti=3d";
    int rc = gi_config_load(c, a->positional, sets, n, err);
    if (gi_dist_agree(x->comm, rc, err) != 0)
        return -1;
    const char *o = a->out ? a->out : c->run.out;
    if (o[0]) {
        if (snprintf(out, GI_PATH_MAX, "%s", o) >= GI_PATH_MAX)
            return gi_fail(err, "run folder path too long");
    } else {
        const char *base = strrchr(a->positional, '/');
        base = base ? base + 1 : a->positional;
        int len = (int)strcspn(base, ".");
        snprintf(out, GI_PATH_MAX, "runs/%.*s", len, base);
    }
    snprintf(c->run.out, sizeof c->run.out, "%s", out);
    rc = x->rank == 0 ? gi_make_dirs(out, err) : 0;
    if (gi_dist_agree(x->comm, rc, err) != 0)
        return -1;
    set_threads(x, c);
    return 0;
}

/* What the run cost: wall time and the largest peak resident memory of any rank. */
static void report_resources(const ctx *x, double t0)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long mine = ru.ru_maxrss, most = 0; /* kilobytes on Linux */
    MPI_Reduce(&mine, &most, 1, MPI_LONG, MPI_MAX, 0, x->comm);
    if (x->rank == 0)
        printf("resources: %.1f s wall, peak memory %.0f MB per rank (largest of %d)\n", MPI_Wtime() - t0,
               most / 1024.0, x->size);
}

/* Rank 0: OUT/config.yaml, the effective config of the training that made
 * OUT/checkpoint.h5 (written once that training has succeeded). */
static int write_run_config(const ctx *x, const gi_config *c, const char *out, gi_err *err)
{
    int rc = 0;
    if (x->rank == 0) {
        char path[GI_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/config.yaml", out);
        char *yaml = gi_config_to_yaml(c);
        FILE *f = yaml ? fopen(path, "w") : NULL;
        if (!f || fputs(yaml, f) < 0)
            rc = gi_fail(err, "cannot write %s", path);
        if (f && fclose(f) != 0)
            rc = gi_fail(err, "cannot write %s", path);
        free(yaml);
    }
    return gi_dist_agree(x->comm, rc, err);
}

/* OUT/run.json (what this command cost) and, after a render, OUT/report.html. */
static int record_and_report(const ctx *x, const args *a, const gi_config *c, const char *out, double t0,
                             int html, gi_err *err)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long mine = ru.ru_maxrss, most = 0;
    MPI_Reduce(&mine, &most, 1, MPI_LONG, MPI_MAX, 0, x->comm);
    int rc = 0;
    if (x->rank == 0) {
        char line[4096] = "geneinr";
        for (int i = 1; i < a->argc; i++)
            snprintf(line + strlen(line), sizeof line - strlen(line), " %s", a->argv[i]);
        gi_run_record r = {line, x->size, MPI_Wtime() - t0, most / 1024.0, openblas_get_num_threads()};
        rc = gi_report_record_run(out, &r, err);
        char page[GI_PATH_MAX + 32];
        snprintf(page, sizeof page, "%s/report.html", out);
        /* After a render, and after a training that replaced the weights of a
         * reported run (the old page would show the old maps). */
        if (rc == 0 && c->render.report && (html || access(page, F_OK) == 0)) {
            rc = gi_report_write(out, err);
            if (rc == 0)
                printf("report: %s\n", page);
        } else if (rc == 0 && !c->render.report) {
            gi_remove_partial(page);   /* not this run's */
        }
    }
    return gi_dist_agree(x->comm, rc, err);
}

/* The prior a model was trained over is part of the model: rendering a
 * checkpoint with a config that names another prior (or none) would add a
 * prior its network never learned around, or leave out the one it did, and
 * give a wrong atlas that looks right. Rank 0 reads the checkpoint's config;
 * agreed across ranks. data.prior_refit and data.prior_crossfit are not
 * compared: the first is a choice made at prediction time, the second only
 * shaped the training targets (a prediction never cross-fits). */
static const char *prior_name(int p)
{
    return p == GI_PRIOR_RK ? "regression_kriging" : p == GI_PRIOR_KRIGING ? "kriging" : "none";
}

static int check_prior_matches(const ctx *x, const gi_config *c, const char *ckpt, gi_err *err)
{
    int rc = 0;
    if (x->rank == 0) {
        char *yaml = NULL;
        gi_config t;
        if (gi_checkpoint_read_config(ckpt, &yaml, err) != 0 || gi_config_load_text(&t, yaml, ckpt, err) != 0) {
            rc = -1;
        } else {
            char what[160] = "";
            if (t.data.prior != c->data.prior)
                snprintf(what, sizeof what, "data.prior %s, the config %s", prior_name(t.data.prior),
                         prior_name(c->data.prior));
            else if (t.data.prior != GI_PRIOR_NONE && t.data.prior_donor_effect != c->data.prior_donor_effect)
                snprintf(what, sizeof what, "data.prior_donor_effect %s, the config %s",
                         t.data.prior_donor_effect ? "true" : "false", c->data.prior_donor_effect ? "true" : "false");
            else if (t.data.prior == GI_PRIOR_RK && t.data.prior_label_similarity != c->data.prior_label_similarity)
                snprintf(what, sizeof what, "data.prior_label_similarity %s, the config %s",
                         t.data.prior_label_similarity ? "true" : "false",
                         c->data.prior_label_similarity ? "true" : "false");
            else if (t.data.prior != GI_PRIOR_NONE &&
                     (t.baseline.covariance != c->baseline.covariance || t.baseline.per_gene != c->baseline.per_gene ||
                      t.baseline.fit_samples != c->baseline.fit_samples ||
                      t.baseline.label_shrink != c->baseline.label_shrink))
                snprintf(what, sizeof what, "other baseline.* settings for its prior than the config");
            if (what[0])
                rc = gi_fail(err, "%s was trained with %s: the prior is part of the model; render with the config it "
                             "was trained with (OUT/config.yaml), or --set the training's value", ckpt, what);
        }
        free(yaml);
    }
    return gi_dist_agree(x->comm, rc, err);
}

/* train / render / run in a run folder that this job holds (rundir.h). */
static int train_render_locked(const ctx *x, const args *a, int do_train, int do_render, gi_config *cfg,
                               const char *out, double t0)
{
    gi_config c = *cfg;
    gi_err err = {{0}};
    int rc;
    char ckpt[GI_PATH_MAX + 32];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.h5", out);
    if (do_render && c.render.method != GI_METHOD_INR) {
        /* A baseline is fitted at render time: nothing to train. */
        gi_render_result rr;
        if (gi_render_method(&c, x->comm, out, NULL, &rr, &err) != 0)
            return report(x, -1, &err);
        report_resources(x, t0);
        return report(x, record_and_report(x, a, &c, out, t0, 1, &err), &err);
    }
    if (do_train) {
        const char *resume = a->resume_from ? a->resume_from : (a->resume ? ckpt : NULL);
        /* train.resume: auto continues a checkpoint if there is one; rank 0 looks, so all agree. */
        int found = !resume && c.train.resume == GI_RESUME_AUTO && x->rank == 0 && access(ckpt, R_OK) == 0;
        MPI_Bcast(&found, 1, MPI_INT, 0, x->comm);
        if (found)
            resume = ckpt;
        /* Agreed: a path visible on some nodes only must fail everywhere,
         * not leave the others waiting in the first collective. */
        rc = 0;
        if (resume && access(resume, R_OK) != 0)
            rc = gi_fail(&err, "nothing to resume: %s: %s; train without --resume, or name a checkpoint with "
                         "--resume-from FILE", resume, strerror(errno));
        if (gi_dist_agree(x->comm, rc, &err) != 0)
            return report(x, -1, &err);
        gi_train_result tr;
        if (x->rank == 0)
            gi_export_remove_derived(out);   /* maps of earlier weights (train removes atlas.h5) */
        if (x->rank == 0 && !resume)
            gi_ensemble_clear(out);          /* members of earlier weights */
        gi_stop_install();
        rc = gi_train_ex(&c, x->comm, out, resume, a->force, &tr, &err);
        gi_stop_uninstall();
        if (rc != 0)
            return report(x, -1, &err);
        if (tr.interrupted)
            return GI_EXIT_REQUEUE;
        if (gi_ensemble_size(&c) > 1) {
            /* Members 2..K; a resumed run (a requeued job) picks up each where it stopped. */
            gi_stop_install();
            rc = gi_ensemble_train(&c, x->comm, out, 1, resume != NULL, a->force, &tr, &err);
            gi_stop_uninstall();
            if (rc != 0)
                return report(x, -1, &err);
            if (tr.interrupted)
                return GI_EXIT_REQUEUE;
        }
        if (write_run_config(x, &c, out, &err) != 0)
            return report(x, -1, &err);
    }
    if (do_render) {
        gi_render_result rr;
        const char *from = a->checkpoint ? a->checkpoint : ckpt;
        /* A model trained over data.prior, or an ensemble, renders through the method interface
         * (network + prior, mean of the members). */
        int via_method = c.data.prior != GI_PRIOR_NONE || gi_ensemble_size(&c) > 1;
        if (via_method && strcmp(c.render.donor, "average") != 0) {
            gi_fail(&err, "render.donor: a model trained over data.prior or as a train.ensemble renders the donor "
                    "average only");
            return report(x, -1, &err);
        }
        if (check_prior_matches(x, &c, from, &err) != 0)
            return report(x, -1, &err);
        if ((via_method ? gi_render_method(&c, x->comm, out, from, &rr, &err)
                        : gi_render(&c, x->comm, out, from, &rr, &err)) != 0)
            return report(x, -1, &err);
    }
    report_resources(x, t0);
    return report(x, record_and_report(x, a, &c, out, t0, do_render, &err), &err);
}

static int cmd_train_render(const ctx *x, const args *a, int do_train, int do_render)
{
    double t0 = MPI_Wtime();
    gi_config c;
    gi_err err = {{0}};
    char out[GI_PATH_MAX];
    if (setup_run(x, a, &c, out, &err) != 0)
        return report(x, -1, &err);
    /* One job per run folder: rank 0 holds the lock until the command ends. */
    gi_rundir_lock lock;
    char note[GI_PATH_MAX + 200] = "";
    memset(&lock, 0, sizeof lock);
    int rc = x->rank == 0 ? gi_rundir_lock_take(&lock, out, note, sizeof note, &err) : 0;
    if (rc == 0 && note[0]) {
        printf("%s\n", note);
        fflush(stdout);
    }
    if (gi_dist_agree(x->comm, rc, &err) != 0) {
        gi_rundir_lock_release(&lock);
        return report(x, -1, &err);
    }
    rc = train_render_locked(x, a, do_train, do_render, &c, out, t0);
    gi_rundir_lock_release(&lock);
    return rc;
}

static int cmd_phantom(const ctx *x, const args *a)
{
    gi_err err = {{0}};
    if (!a->out)
        return usage_error(x, "%s needs --out DIR", "phantom");
    gi_phantom_spec s;
    gi_phantom_defaults(&s);
    if (a->seed >= 0)
        s.seed = (uint64_t)a->seed;
    if (a->genes >= 0)
        s.n_genes = a->genes > 100000 ? 100001 : (int)a->genes;
    if (a->grid >= 0)
        s.grid_step = a->grid > 100 ? 101 : (int)a->grid;
    if (s.grid_step != 1 && s.grid_step != 2)
        return usage_error(x, "--grid must be 1 (1 mm) or 2 (2 mm)%s", "");
    if (s.n_genes < 1 || s.n_genes > 1000)
        return usage_error(x, "--genes must be in 1..1000%s", "");
    s.sample_truth = a->sample_truth_voxel ? GI_PHANTOM_TRUTH_VOXEL : GI_PHANTOM_TRUTH_TISSUE;
    int rc = 0;
    if (x->rank == 0) {
        double t0 = MPI_Wtime();
        rc = a->dk ? gi_phantom_write_dk(a->out, &s, a->reference_dir ? a->reference_dir : "../shared/data", &err)
                   : gi_phantom_write(a->out, &s, &err);
        if (rc == 0)
            printf("phantom: wrote %s%s (seed %llu, %d genes, %d mm grid) in %.1f s\n", a->out,
                   a->dk ? " on the real DK grid at the AHBA sample locations" : "",
                   (unsigned long long)s.seed, s.n_genes, s.grid_step, MPI_Wtime() - t0);
        if (rc == 0 && a->ahba) {
            char dir[GI_PATH_MAX + 16], csv[GI_PATH_MAX + 16];
            snprintf(dir, sizeof dir, "%s/ahba", a->out);
            snprintf(csv, sizeof csv, "%s/samples.csv", a->out);
            gi_phantom_ahba_spec as = {csv, a->reference_dir, a->ahba_probes > 0 ? (int)a->ahba_probes : 0, 0};
            double t1 = MPI_Wtime();
            rc = gi_phantom_write_ahba(dir, &s, &as, &err);
            if (rc == 0)
                printf("phantom: wrote the AHBA-format donor folders in %s%s in %.1f s\n", dir,
                       a->reference_dir ? " (real well ids, coordinates and probe names)" : "",
                       MPI_Wtime() - t1);
        }
    }
    return report(x, gi_dist_agree(x->comm, rc, &err), &err);
}

static int cmd_score(const ctx *x, const args *a)
{
    gi_err err = {{0}};
    if (!a->positional || !a->truth || !a->samples)
        return usage_error(x, "%s needs ATLAS --truth TRUTH.h5 --samples CSV", "score");
    if (a->stride == 0 || a->stride > 64)
        return usage_error(x, "--stride must be in 1..64%s", "");
    int rc = 0;
    if (x->rank == 0) {
        gi_score s;
        rc = gi_score_atlas(a->positional, a->truth, a->samples, a->stride > 0 ? (int)a->stride : 2, &s, &err);
        if (rc == 0) {
            gi_score_print(stdout, &s);
            if (a->json)
                rc = gi_score_write_json(a->json, &s, &err);
            gi_score_free(&s);
        }
    }
    return report(x, gi_dist_agree(x->comm, rc, &err), &err);
}

static void print_affine(const double *A)
{
    for (int r = 0; r < 3; r++)
        printf("    [%8.3f %8.3f %8.3f %9.3f]\n", A[4 * r], A[4 * r + 1], A[4 * r + 2], A[4 * r + 3]);
}

static void print_names(const char *what, char *const *names, int n)
{
    printf("  %s (%d):", what, n);
    for (int i = 0; i < n && i < 12; i++)
        printf(" %s", names[i]);
    printf("%s\n", n > 12 ? " ..." : "");
}

static int info_checkpoint(const char *path, gi_err *err)
{
    gi_state st;
    if (gi_checkpoint_load(&st, path, err) != 0)
        return -1;
    const gi_model_spec *s = &st.model.spec;
    static const char *arch[] = {"siren", "fourier"}, *mode[] = {"concat", "factorized"},
                      *code[] = {"embedding", "spectral"};
    printf("%s: geneinr checkpoint\n", path);
    printf("  model: %s, %d hidden layers x %d, omega0 %g, omega_hidden %g, gene mode %s", arch[s->arch & 1],
           s->hidden_layers, s->width, s->omega0, s->omega_hidden, mode[s->gene_mode & 1]);
    if (s->gene_mode == 0)
        printf(" (%s code)", code[s->gene_code & 1]);
    printf("\n  inputs: donor_dim %d, anatomy labels %d (dim %d)\n", s->donor_dim, s->n_labels, s->anatomy_dim);
    printf("  parameters: %zu\n", st.model.n_params);
    printf("  steps: %ld%s\n", st.step, st.stopped ? " (stopped early)" : "");
    if (isfinite(st.best_val))
        printf("  best validation MSE: %.5f (standardised units) at step %ld\n", st.best_val, st.best_step);
    print_names("genes", st.genes, st.n_genes);
    print_names("donors", st.donors, st.n_donors);
    for (int i = 0; i < st.n_history; i++)
        printf("  settings changed at step %ld: %s\n", st.history_step[i], st.history[i]);
    gi_state_free(&st);
    return 0;
}

static int info_atlas(const char *path, gi_err *err)
{
    gi_atlas a;
    if (gi_atlas_open(&a, path, err) != 0)
        return -1;
    long inside = 0;
    for (size_t q = 0; q < (size_t)a.nx * a.ny * a.nz; q++)
        inside += a.mask[q] != 0;
    printf("%s: geneinr %s (geneinr %s)\n", path, a.kind ? a.kind : "atlas", a.version ? a.version : "?");
    printf("  /expression: %d genes x %d x %d x %d (gene, k, j, i), float32; %ld in-mask voxels\n", a.n_genes,
           a.nz, a.ny, a.nx, inside);
    if (a.rendered_for)
        printf("  rendered for: %s\n", a.rendered_for);
    printf("  affine (voxel i,j,k -> MNI mm):\n");
    print_affine(a.affine);
    print_names("genes", a.genes, a.n_genes);
    print_names("donors", a.donors, a.n_donors);
    gi_atlas_close(&a);
    return 0;
}

static int info_nifti(const char *path, gi_err *err)
{
    gi_volume v;
    if (gi_volume_read(&v, path, 1, err) != 0)
        return -1;
    long nonzero = 0;
    for (size_t q = 0; q < (size_t)v.nx * v.ny * v.nz; q++)
        nonzero += v.data[q] != 0 && !isnan(v.data[q]);
    printf("%s: NIfTI volume %d x %d x %d, %ld non-zero voxels\n  affine (voxel i,j,k -> mm):\n", path, v.nx, v.ny,
           v.nz, nonzero);
    print_affine(v.affine);
    gi_volume_free(&v);
    return 0;
}

static int info_samples(const char *path, gi_err *err)
{
    gi_samples s;
    if (gi_samples_read_csv(&s, path, err) != 0)
        return -1;
    long measured = gi_samples_n_measured(&s);
    printf("%s: sample table, %d samples x %d genes, %d donors, %.1f%% of values measured\n", path, s.n,
           s.n_genes, s.n_donors, 100.0 * measured / ((double)s.n * s.n_genes));
    for (int d = 0; d < s.n_donors; d++) {
        int cnt = 0;
        for (int i = 0; i < s.n; i++)
            cnt += s.donor[i] == d;
        printf("  donor %-12s %5d samples\n", s.donor_names[d], cnt);
    }
    float lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
    for (int i = 0; i < s.n; i++)
        for (int k = 0; k < 3; k++) {
            lo[k] = fminf(lo[k], s.mni[3 * i + k]);
            hi[k] = fmaxf(hi[k], s.mni[3 * i + k]);
        }
    printf("  MNI range: x %.1f..%.1f, y %.1f..%.1f, z %.1f..%.1f mm\n", lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]);
    if (s.n_annot)
        print_names("annotation columns", s.annot_names, s.n_annot);
    print_names("genes", s.gene_names, s.n_genes);
    gi_samples_free(&s);
    return 0;
}

static int cmd_info(const ctx *x, const args *a)
{
    gi_err err = {{0}};
    if (!a->positional)
        return usage_error(x, "%s needs a FILE", "info");
    int rc = 0;
    if (x->rank == 0) {
        const char *p = a->positional;
        gi_h5_printer printer = gi_h5_quiet();
        if (access(p, R_OK) != 0)
            rc = gi_fail(&err, "%s: %s", p, strerror(errno));
        else if (H5Fis_hdf5(p) > 0)
            rc = gi_h5_has_dataset(p, "expression") ? info_atlas(p, &err) : info_checkpoint(p, &err);
        else if (gi_ends_with(p, ".nii") || gi_ends_with(p, ".nii.gz"))
            rc = info_nifti(p, &err);
        else
            rc = info_samples(p, &err);
        gi_h5_loud(printer);
    }
    return report(x, gi_dist_agree(x->comm, rc, &err), &err);
}

static int cmd_preview(const ctx *x, const args *a)
{
    gi_err err = {{0}};
    if (!a->positional)
        return usage_error(x, "%s needs an ATLAS (e.g. runs/demo/atlas.h5)", "preview");
    return report(x, gi_export_preview_command(x->comm, a->positional, a->gene_list, a->at, a->out, &err), &err);
}

static int cmd_report(const ctx *x, const args *a)
{
    gi_err err = {{0}};
    if (!a->positional)
        return usage_error(x, "%s needs a RUN_DIR (e.g. runs/demo)", "report");
    int rc = x->rank == 0 ? gi_report_write(a->positional, &err) : 0;
    if (rc == 0 && x->rank == 0)
        printf("report: %s/report.html\n", a->positional);
    return report(x, gi_dist_agree(x->comm, rc, &err), &err);
}

static int cmd_config(const ctx *x, const args *a)
{
    if (a->reference) {
        if (x->rank == 0)
            gi_config_print_reference(stdout);
        return 0;
    }
    gi_config c;
    gi_err err = {{0}};
    int rc = gi_config_load(&c, a->positional, a->sets, a->n_sets, &err);
    if (rc == 0 && x->rank == 0) {
        char *yaml = gi_config_to_yaml(&c);
        fputs(yaml, stdout);
        free(yaml);
    }
    return report(x, rc, &err);
}

int gi_cli_main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    ctx x = {MPI_COMM_WORLD, 0, 1};
    MPI_Comm_rank(x.comm, &x.rank);
    MPI_Comm_size(x.comm, &x.size);
    args a;
    memset(&a, 0, sizeof a);
    a.stride = a.seed = a.genes = a.grid = a.trial = -1;
    a.argc = argc;
    a.argv = argv;
    int rc;
    const char *cmd = argc > 1 ? argv[1] : NULL;
    a.cmd = cmd;
    int wants_help = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            wants_help = 1;
    if (!cmd || wants_help) {
        if (x.rank == 0)
            fputs(USAGE, cmd || wants_help ? stdout : stderr);
        rc = cmd || wants_help ? 0 : 2;
    } else if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        if (x.rank == 0)
            printf("geneinr %s\n", GENEINR_VERSION);
        rc = 0;
    } else if ((rc = parse_args(&x, argc, argv, &a)) != 0 || (rc = check_options(&x, &a)) != 0) {
        /* usage error already printed */
    } else if (!strcmp(cmd, "train")) {
        rc = cmd_train_render(&x, &a, 1, 0);
    } else if (!strcmp(cmd, "render")) {
        rc = cmd_train_render(&x, &a, 0, 1);
    } else if (!strcmp(cmd, "run")) {
        rc = cmd_train_render(&x, &a, 1, 1);
    } else if (!strcmp(cmd, "phantom")) {
        rc = cmd_phantom(&x, &a);
    } else if (!strcmp(cmd, "info")) {
        rc = cmd_info(&x, &a);
    } else if (!strcmp(cmd, "prepare")) {
        rc = a.positional ? gi_prepare_command(x.comm, a.positional, a.out, a.sets, a.n_sets)
                          : usage_error(&x, "%s needs a CONFIG file", "prepare");
    } else if (!strcmp(cmd, "score")) {
        rc = cmd_score(&x, &a);
    } else if (!strcmp(cmd, "eval")) {
        gi_err err = {{0}};
        rc = report(&x, gi_cmd_eval(x.comm, a.positional, a.out, a.sets, a.n_sets, &err), &err);
    } else if (!strcmp(cmd, "regions")) {
        gi_err err = {{0}};
        rc = report(&x, gi_cmd_regions(x.comm, a.positional, a.parcellation, a.labels, a.out, &err), &err);
    } else if (!strcmp(cmd, "config")) {
        rc = cmd_config(&x, &a);
    } else if (!strcmp(cmd, "preview")) {
        rc = cmd_preview(&x, &a);
    } else if (!strcmp(cmd, "report")) {
        rc = cmd_report(&x, &a);
    } else if (!strcmp(cmd, "sweep")) {
        gi_sweep_opts so = {a.out, (int)a.trial, a.collect, a.retry_failed};
        rc = a.positional ? gi_sweep_command(a.positional, &so, x.comm)
                          : usage_error(&x, "%s needs a SWEEP.yaml file", "sweep");
    } else {
        rc = usage_error(&x, "unknown command '%s'", cmd);
    }
    fflush(stdout);
    MPI_Finalize();
    return rc;
}
