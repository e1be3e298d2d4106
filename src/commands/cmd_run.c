/* cmd_run.c - `geneinr run CONFIG`: train then render in one job; and the
 * stages train, render and run share (cmd_train.c, cmd_render.c).
 *
 * Phases: set-up (config, run folder, its lock), compute (train / render),
 * report (OUT/config.yaml, OUT/run.json, report.html, resources). Errors are
 * agreed across ranks before being reported once.
 */
#include "geneinr/cmd.h"
#include "geneinr/error.h"

#include <cblas.h>
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "geneinr/checkpoint.h"
#include "geneinr/config.h"
#include "geneinr/dist.h"
#include "geneinr/ensemble.h"
#include "geneinr/export.h"
#include "geneinr/extend.h"
#include "geneinr/files.h"
#include "geneinr/gene_select.h"
#include "geneinr/manifest.h"
#include "geneinr/method_kind.h"
#include "geneinr/prior.h" /* gi_train_ex, gi_ensemble_train: training over data.prior */
#include "geneinr/render.h"
#include "geneinr/samples.h"
#include "geneinr/report.h"
#include "geneinr/rundir.h"
#include "geneinr/stop.h"
#include "geneinr/train.h"

/* OpenBLAS threads per rank: run.threads, or the node's cores shared by the
 * ranks on that node. */
void gi_cmd_set_threads(const gi_cmd_ctx *x, const gi_config *c)
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
static int setup_run(const gi_cmd_ctx *x, const gi_cmd_args *a, gi_config *c, char *out, gi_err *err)
{
    const char *sets[GI_CMD_MAX_SETS + 1];
    int n = 0;
    for (int i = 0; i < a->n_sets; i++)
        sets[n++] = a->sets[i];
    if (a->nifti)
        sets[n++] = "render.nifti=3d";
    int rc = gi_config_load(c, a->operand, sets, n, err);
    if (gi_dist_agree(x->comm, rc, err) != 0)
        return -1;
    const char *o = a->out ? a->out : c->run.out;
    if (o[0]) {
        if (snprintf(out, GI_PATH_MAX, "%s", o) >= GI_PATH_MAX)
            return gi_fail(err, "run folder path too long");
    } else {
        const char *base = strrchr(a->operand, '/');
        base = base ? base + 1 : a->operand;
        int len = (int)strcspn(base, ".");
        snprintf(out, GI_PATH_MAX, "runs/%.*s", len, base);
    }
    snprintf(c->run.out, sizeof c->run.out, "%s", out);
    rc = x->rank == 0 ? gi_make_dirs(out, err) : 0;
    if (gi_dist_agree(x->comm, rc, err) != 0)
        return -1;
    gi_cmd_set_threads(x, c);
    return 0;
}

/* What the run cost: wall time and the largest peak resident memory of any rank. */
static void report_resources(const gi_cmd_ctx *x, double t0)
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
static int write_run_config(const gi_cmd_ctx *x, const gi_config *c, const char *out, gi_err *err)
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
static int record_and_report(const gi_cmd_ctx *x, const gi_config *c, const char *out, double t0, int html,
                             gi_err *err)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long mine = ru.ru_maxrss, most = 0;
    MPI_Reduce(&mine, &most, 1, MPI_LONG, MPI_MAX, 0, x->comm);
    int rc = 0;
    if (x->rank == 0) {
        char line[4096] = "geneinr";
        for (int i = 1; i < x->argc; i++)
            snprintf(line + strlen(line), sizeof line - strlen(line), " %s", x->argv[i]);
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
            /* not this run's; only if geneinr wrote it (manifest.h) */
            rc = gi_manifest_remove_in(out, "report.html", NULL, NULL, err) < 0 ? -1 : 0;
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
int gi_cmd_check_prior_matches(const gi_cmd_ctx *x, const gi_config *c, const char *ckpt, gi_err *err)
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
                snprintf(what, sizeof what, "data.prior %s, the config %s", GI_PRIOR_NAMES[t.data.prior],
                         GI_PRIOR_NAMES[c->data.prior]);
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

/* Rank 0: gi_export_check_outputs with the sample table's genes (its header
 * only), every gene's preview name (the trained gene order is not known yet). */
static int check_outputs_before_training(const gi_config *c, const char *out, gi_err *err)
{
    char **genes = NULL;
    int n = 0;
    if (!c->data.samples[0])
        return 0;   /* training reports it */
    int rc = gi_samples_read_gene_names(c->data.samples, c->data.genes, &genes, &n, err);
    if (rc == 0)
        rc = gi_export_check_outputs(c, out, (const char *const *)genes, n, 1, NULL, err);
    for (int g = 0; g < n; g++)
        free(genes[g]);
    free(genes);
    return rc;
}

/* A render that failed, or was stopped by a signal (render.c asks between
 * batches; the failure path has removed atlas.h5.tmp). */
static int render_failed(const gi_cmd_ctx *x, const gi_err *err)
{
    if (gi_cmd_stop_agreed(x))
        return gi_cmd_stopped(x, "render", "no atlas was written; run the same command again to render");
    return gi_cmd_status(x, -1, err);
}

/* data.trunk_genes: the trunk trained on the table's most variable genes in
 * OUT/trunk, then every gene extended onto it into OUT/checkpoint.h5 (extend.h).
 * On success c reads the table in the extended model's gene order (data.genes:
 * OUT/genes.txt), as render and OUT/config.yaml need. resume: the checkpoint
 * the trunk's training continues (OUT/trunk/checkpoint.h5, resolved by the
 * caller as any training's), or NULL. Returns 0, -1 (err) or GI_EXIT_REQUEUE
 * (training stopped by a signal; run again with --resume). */
static int train_trunk_extend(const gi_cmd_ctx *x, const gi_cmd_args *a, gi_config *c, const char *out,
                              const char *resume, gi_err *err)
{
    if (c->model.gene_mode != GI_GENE_FACTORIZED)
        return gi_fail(err, "data.trunk_genes: new genes are readout rows of a factorized model; set "
                       "model.gene_mode: factorized (or data.trunk_genes: 0)");
    if (gi_ensemble_size(c) > 1)
        return gi_fail(err, "data.trunk_genes: extension grows one network; set train.ensemble: 1 (or "
                       "data.trunk_genes: 0)");
    gi_config t = *c;
    char dir[GI_PATH_MAX], list[GI_PATH_MAX], ckpt[GI_PATH_MAX + 32];
    if (snprintf(dir, sizeof dir, "%s/trunk", out) >= (int)sizeof dir ||
        snprintf(list, sizeof list, "%.*s/genes.txt", (int)sizeof dir - 16, dir) >= (int)sizeof list ||
        strlen(dir) > sizeof dir - 16)
        return gi_fail(err, "run folder path too long");
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.h5", dir);
    int total = 0, rc = 0;
    if (x->rank == 0) {
        rc = gi_make_dirs(dir, err);
        if (rc == 0)
            rc = gi_select_trunk_genes(c->data.samples, c->data.genes, c->data.trunk_genes, list, &total, err);
    }
    if (gi_dist_agree(x->comm, rc, err) != 0)
        return -1;
    MPI_Bcast(&total, 1, MPI_INT, 0, x->comm);
    snprintf(t.data.genes, sizeof t.data.genes, "%.*s", (int)sizeof t.data.genes - 1, list);
    t.data.trunk_genes = 0;
    snprintf(t.run.out, sizeof t.run.out, "%s", dir);
    if (x->rank == 0) {
        printf("train: the trunk on %d of the table's %d genes (data.trunk_genes, the most variable: %s), then "
               "every other gene extended onto it\n", c->data.trunk_genes, total, list);
        fflush(stdout);
    }
    gi_train_result tr;
    if (gi_train_ex(&t, x->comm, dir, resume, a->force, &tr, err) != 0)
        return -1;
    if (tr.interrupted)
        return GI_EXIT_REQUEUE;
    if (write_run_config(x, &t, dir, err) != 0)
        return -1;
    gi_config e = *c;
    e.data.trunk_genes = 0;
    gi_extend_result res;
    if (gi_extend(&e, ckpt, out, x->comm, &res, err) != 0)
        return gi_fail_prefix(err, "data.trunk_genes: extending %s", ckpt);
    if (x->rank == 0) {
        printf("extend: %d genes added to the trunk's %d in %.1f s (prior %.1f s, features %.1f s, ridge %.1f s); "
               "%s/checkpoint.h5\n", res.n_new, res.n_old, res.seconds, res.seconds_prior, res.seconds_features,
               res.seconds_ridge, out);
        fflush(stdout);
    }
    if (strlen(out) > sizeof c->data.genes - 16)
        return gi_fail(err, "run folder path too long");
    snprintf(c->data.genes, sizeof c->data.genes, "%.*s/genes.txt", (int)sizeof c->data.genes - 16, out);
    c->data.trunk_genes = 0;
    return 0;
}

/* train / render / run in a run folder that this job holds (rundir.h). */
static int train_render_locked(const gi_cmd_ctx *x, const gi_cmd_args *a, int do_train, int do_render, gi_config *cfg,
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
        if (gi_render(&c, x->comm, out, NULL, &rr, &err) != 0)
            return render_failed(x, &err);
        report_resources(x, t0);
        return gi_cmd_status(x, record_and_report(x, &c, out, t0, 1, &err), &err);
    }
    if (do_train) {
        /* What a training continues: OUT/checkpoint.h5, or with data.trunk_genes the trunk's own
         * OUT/trunk/checkpoint.h5 (a job stopped while training the trunk has no OUT/checkpoint.h5). */
        char tckpt[GI_PATH_MAX + 32];
        snprintf(tckpt, sizeof tckpt, "%s%s/checkpoint.h5", out, c.data.trunk_genes > 0 ? "/trunk" : "");
        const char *resume = a->resume_from ? a->resume_from : (a->resume ? tckpt : NULL);
        /* train.resume: auto continues a checkpoint if there is one; rank 0 looks, so all agree. */
        int found = !resume && c.train.resume == GI_RESUME_AUTO && x->rank == 0 && access(tckpt, R_OK) == 0;
        MPI_Bcast(&found, 1, MPI_INT, 0, x->comm);
        if (found)
            resume = tckpt;
        /* Agreed: a path visible on some nodes only must fail everywhere,
         * not leave the others waiting in the first collective. */
        rc = 0;
        if (resume && access(resume, R_OK) != 0)
            rc = gi_fail(&err, "nothing to resume: %s: %s; train without --resume, or name a checkpoint with "
                         "--resume-from FILE", resume, strerror(errno));
        if (gi_dist_agree(x->comm, rc, &err) != 0)
            return gi_cmd_status(x, -1, &err);
        /* Before any work: the names the render will write are free (no
         * user's file there, no input among them) and the genes' names
         * follow the rules (export.h, manifest.h, names.h). */
        rc = x->rank == 0 ? check_outputs_before_training(&c, out, &err) : 0;
        if (gi_dist_agree(x->comm, rc, &err) != 0)
            return gi_cmd_status(x, -1, &err);
        gi_train_result tr;
        if (x->rank == 0)
            gi_export_remove_derived(out);   /* maps of earlier weights (train removes atlas.h5) */
        if (x->rank == 0 && !resume)
            gi_ensemble_clear(out);          /* members of earlier weights */
        if (c.data.trunk_genes > 0) {
            rc = train_trunk_extend(x, a, &c, out, resume, &err);
            if (rc == GI_EXIT_REQUEUE)
                return rc;
            if (rc != 0)
                return gi_cmd_status(x, -1, &err);
            tr.interrupted = 0;
        } else {
            rc = gi_train_ex(&c, x->comm, out, resume, a->force, &tr, &err);
        }
        if (rc != 0)
            return gi_cmd_status(x, -1, &err);
        if (tr.interrupted)
            return GI_EXIT_REQUEUE;
        if (gi_ensemble_size(&c) > 1) {
            /* Members 2..K; a resumed run (a requeued job) picks up each where it stopped. */
            rc = gi_ensemble_train(&c, x->comm, out, 1, resume != NULL, a->force, &tr, &err);
            if (rc != 0)
                return gi_cmd_status(x, -1, &err);
            if (tr.interrupted)
                return GI_EXIT_REQUEUE;
        }
        if (write_run_config(x, &c, out, &err) != 0)
            return gi_cmd_status(x, -1, &err);
    }
    if (do_render) {
        gi_render_result rr;
        const char *from = a->checkpoint ? a->checkpoint : ckpt;
        if (gi_cmd_check_prior_matches(x, &c, from, &err) != 0)
            return gi_cmd_status(x, -1, &err);
        if (gi_render(&c, x->comm, out, from, &rr, &err) != 0)
            return render_failed(x, &err);
    }
    report_resources(x, t0);
    return gi_cmd_status(x, record_and_report(x, &c, out, t0, do_render, &err), &err);
}

int gi_cmd_train_render(const gi_cmd_ctx *x, const gi_cmd_args *a, int do_train, int do_render)
{
    double t0 = MPI_Wtime();
    gi_config c;
    gi_err err = {{0}};
    char out[GI_PATH_MAX];
    if (setup_run(x, a, &c, out, &err) != 0)
        return gi_cmd_status(x, -1, &err);
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
        return gi_cmd_status(x, -1, &err);
    }
    /* SIGTERM/SIGINT/SIGUSR1: training checkpoints and stops, a render stops
     * between batches; either exits GI_EXIT_REQUEUE and the lock goes. */
    gi_stop_install();
    rc = train_render_locked(x, a, do_train, do_render, &c, out, t0);
    gi_stop_uninstall();
    gi_rundir_lock_release(&lock);
    return rc;
}

static int run_run(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    return gi_cmd_train_render(x, a, 1, 1);
}

static const gi_cmd_opt RUN_OPTS[] = {
    GI_OPT_RUN_OUT, GI_OPT_SETS, GI_OPT_RUN_RESUME, GI_OPT_RUN_RESUME_FROM, GI_OPT_RUN_FORCE, GI_OPT_RUN_NIFTI,
    GI_OPT_END,
};

const gi_cmd gi_cmd_run = {
    .name = "run",
    .run = run_run,
    .operand = "CONFIG",
    .synopsis = "train then render in one job",
    .help = "`train` then `render` with one config and one run folder, holding the folder's lock for both:\n"
            "OUT/checkpoint.h5, OUT/train_log.csv, OUT/config.yaml, then OUT/atlas.h5 and what render.* asks\n"
            "for (NIfTI, previews, report.html), OUT/run.json. A baseline render.method has nothing to train\n"
            "and is only rendered.",
    .opts = RUN_OPTS,
};
