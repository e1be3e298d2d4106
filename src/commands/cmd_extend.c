/* cmd_extend.c - `geneinr extend CONFIG --checkpoint FILE`: genes the model
 * was not trained on, as new readout rows of its frozen trunk (the engine:
 * extend.h).
 *
 * Set-up (config, run folder and its lock, the output checked free), compute
 * (gi_extend), report (OUT/checkpoint.h5, extend.csv, genes.txt and
 * OUT/config.yaml, the config that renders, predicts and resumes the grown
 * checkpoint: data.genes = OUT/genes.txt when the table holds every gene, so
 * it reads the table in the checkpoint's order).
 */
#include "geneinr/cmd.h"
#include "geneinr/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "geneinr/config.h"
#include "geneinr/dist.h"
#include "geneinr/extend.h"
#include "geneinr/files.h"
#include "geneinr/runlock.h"

/* Rank 0, before any work: the checkpoint is readable, is not the file that
 * will be written, and OUT/checkpoint.h5 is replaced only with --force. */
static int check_paths(const gi_cmd_args *a, const char *out, gi_err *err)
{
    char path[GI_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/checkpoint.h5", out);
    if (access(a->checkpoint, R_OK) != 0)
        return gi_fail(err, "--checkpoint %s: %s", a->checkpoint, strerror(errno));
    struct stat si, so;
    if (stat(path, &so) == 0) {
        if (stat(a->checkpoint, &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
            return gi_fail(err, "--out %s holds the checkpoint being extended (%s): the extended one would replace it; "
                           "name another --out", out, a->checkpoint);
        if (!a->force)
            return gi_fail(err, "%s exists; add --force to replace it, or name another --out", path);
    }
    return 0;
}

/* Rank 0: OUT/config.yaml, the config of the grown checkpoint. */
static int write_config(const gi_config *c, const char *out, int all_in_table, gi_err *err)
{
    gi_config w = *c;
    snprintf(w.run.out, sizeof w.run.out, "%s", out);
    if (all_in_table && snprintf(w.data.genes, sizeof w.data.genes, "%s/genes.txt", out) >= (int)sizeof w.data.genes)
        return gi_fail(err, "run folder path too long");
    char path[GI_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/config.yaml", out);
    char *yaml = gi_config_to_yaml(&w);
    FILE *f = yaml ? fopen(path, "w") : NULL;
    int rc = !f || fputs(yaml, f) < 0 ? gi_fail(err, "cannot write %s", path) : 0;
    if (f && fclose(f) != 0)
        rc = gi_fail(err, "cannot write %s", path);
    free(yaml);
    return rc;
}

static int extend_locked(const gi_cmd_ctx *x, const gi_cmd_args *a, const gi_config *c, const char *out, gi_err *err)
{
    int rc = x->rank == 0 ? check_paths(a, out, err) : 0;
    if (gi_dist_agree(x->comm, rc, err) != 0)
        return -1;
    gi_extend_result res;
    if (gi_extend(c, a->checkpoint, out, x->comm, &res, err) != 0)
        return -1;
    rc = x->rank == 0 ? write_config(c, out, res.all_in_table, err) : 0;
    if (rc == 0 && x->rank == 0) {
        printf("extend: wrote %s/checkpoint.h5, extend.csv, genes.txt, config.yaml\n", out);
        if (res.all_in_table)
            printf("extend: render them all with: geneinr render %s/config.yaml\n", out);
        else
            printf("extend: render them all with: geneinr render %s --checkpoint %s/checkpoint.h5 --out DIR (the "
                   "table lacks %d trained genes, so training cannot resume on it)\n", a->operand, out,
                   res.n_old - res.n_shared);
        fflush(stdout);
    }
    return gi_dist_agree(x->comm, rc, err);
}

static int run_extend(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    gi_config c;
    gi_err err = {{0}};
    int rc = gi_config_load(&c, a->operand, a->sets, a->n_sets, &err);
    if (gi_dist_agree(x->comm, rc, &err) != 0)
        return gi_cmd_status(x, -1, &err);
    char out[GI_PATH_MAX];
    /* Not run.out: a training's OUT/config.yaml names its own folder there,
     * whose checkpoint is the one being extended. */
    if (a->out) {
        if (snprintf(out, sizeof out, "%s", a->out) >= (int)sizeof out)
            rc = gi_fail(&err, "run folder path too long");
    } else {
        const char *base = strrchr(a->operand, '/');
        base = base ? base + 1 : a->operand;
        snprintf(out, sizeof out, "runs/%.*s-extended", (int)strcspn(base, "."), base);
    }
    if (rc == 0 && x->rank == 0)
        rc = gi_make_dirs(out, &err);
    if (gi_dist_agree(x->comm, rc, &err) != 0)
        return gi_cmd_status(x, -1, &err);
    gi_cmd_set_threads(x, &c);
    gi_rundir_lock lock;
    if (gi_cmd_lock(x, out, &lock, &err) != 0)
        return gi_cmd_status(x, -1, &err);
    rc = extend_locked(x, a, &c, out, &err);
    gi_rundir_lock_release(&lock);
    return gi_cmd_status(x, rc, &err);
}

static const gi_cmd_opt EXTEND_OPTS[] = {
    GI_OPT_S_REQ("--checkpoint", checkpoint, "FILE", "the trained checkpoint to extend (factorized model)"),
    GI_OPT_S("--out", out, "DIR", "folder of the extended checkpoint (default: runs/<config name>-extended)"),
    GI_OPT_SETS,
    GI_OPT_F("--force", force, "replace an existing OUT/checkpoint.h5"),
    GI_OPT_END,
};

const gi_cmd gi_cmd_extend = {
    .name = "extend",
    .run = run_extend,
    .operand = "CONFIG",
    .synopsis = "adds the genes of `data.samples` that a trained model lacks (ridge readout rows on its frozen trunk): "
                "`OUT/checkpoint.h5` with every gene",
    .help = "CONFIG is the config the checkpoint was trained with; its data.samples may be another table of the same\n"
            "samples holding new genes (and any of the trained ones, which are kept bit for bit). Each new gene's\n"
            "readout row is a ridge regression on the trunk's last hidden layer at its measured training samples\n"
            "(the training's split; its standardised values minus the training prior with data.prior), the ridge\n"
            "strength chosen on the validation samples as training scores them. Writes OUT/checkpoint.h5 (the old\n"
            "genes, then the new ones), OUT/extend.csv (per new gene: samples, ridge strength, validation MSE),\n"
            "OUT/genes.txt and OUT/config.yaml (render, predict or resume with it). With data.prior the table must\n"
            "hold every trained gene. concat models and train.ensemble > 1 are refused.",
    .opts = EXTEND_OPTS,
};
