/* cmd_eval.c - `geneinr eval CONFIG`: held-out accuracy of the INR and the baselines (the engine: eval.h).
 *
 * Set-up (config, output folder), compute (gi_eval_run), report (the table
 * it prints, eval.csv, summary.csv). The default output folder is
 * runs/<config name>/eval-<split>, so the three splits of one config sit side
 * by side.
 */
#include "geneinr/files.h"
#include "geneinr/cmd.h"
#include "geneinr/error.h"

#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "geneinr/dist.h"
#include "geneinr/eval.h"
#include "geneinr/report.h"
#include "geneinr/runlock.h"
#include "geneinr/stop.h"

static int eval_run(const gi_cmd_ctx *x, const char *config, const char *out, const char *const *sets, int n_sets,
                    gi_err *err)
{
    MPI_Comm comm = x->comm;
    int rank = x->rank;
    gi_config c;
    int rc = gi_config_load(&c, config, sets, n_sets, err);
    if (gi_dist_agree(comm, rc, err) != 0)
        return -1;
    char dir[GI_PATH_MAX];
    if (out) {
        snprintf(dir, sizeof dir, "%s", out);
    } else {
        const char *base = strrchr(config, '/');
        base = base ? base + 1 : config;
        int len = (int)strcspn(base, ".");
        snprintf(dir, sizeof dir, "runs/%.*s/eval-%s", len, base, GI_SPLIT_NAMES[c.eval.split]);
    }
    /* Fixed OpenBLAS threads, as for train: results must not depend on them. */
    openblas_set_num_threads(c.run.threads > 0 ? c.run.threads : 1);
    rc = rank == 0 ? gi_make_dirs(dir, err) : 0;
    if (rc == 0 && rank == 0 && c.render.report)   /* refused now, not after the folds */
        rc = gi_report_check_after_eval(dir, err);
    if (gi_dist_agree(comm, rc, err) != 0)
        return -1;
    /* One job per folder (runlock.h): two evals into one folder would
     * write the same fold folders and tables. */
    gi_rundir_lock lock;
    if (gi_cmd_lock(x, dir, &lock, err) != 0)
        return -1;
    rc = gi_eval_run(&c, comm, dir, err);
    if (rc == 0 && c.render.report)   /* the accuracy table of the run's report.html */
        rc = gi_dist_agree(comm, rank == 0 ? gi_report_after_eval(dir, err) : 0, err);
    gi_rundir_lock_release(&lock);
    return rc;
}

static int run_eval(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    gi_err err = {{0}};
    /* SIGTERM/SIGINT/SIGUSR1 stop it at a method or fold boundary (eval.h). */
    gi_stop_install();
    int rc = eval_run(x, a->operand, a->out, a->sets, a->n_sets, &err);
    gi_stop_uninstall();
    if (rc == GI_EVAL_STOPPED)
        return gi_cmd_stopped(x, "eval", "rerun the same command to resume: finished folds are kept");
    return gi_cmd_status(x, rc, &err);
}

static const gi_cmd_opt OPTS[] = {
    GI_OPT_S("--out", out, "DIR", "output folder (default: runs/<config name>/eval-<eval.split>)"),
    GI_OPT_SETS,
    GI_OPT_END,
};

const gi_cmd gi_cmd_eval = {
    .name = "eval",
    .run = run_eval,
    .operand = "CONFIG",
    .synopsis = "held-out accuracy of the INR and the baselines on the same folds: `OUT/eval.csv`, "
                "`OUT/summary.csv` (see How accurate is it?)",
    .help = "Cross-validates the INR of CONFIG and the baselines of eval.methods (nearest, idw, kriging,\n"
            "regression_kriging) on the same folds (eval.split kfold|donor|block): every method is fitted on\n"
            "the training samples of a fold and scored on its held-out samples. Writes OUT/eval.csv (per fold,\n"
            "method and gene) and OUT/summary.csv, and prints the table.",
    .opts = OPTS,
};
