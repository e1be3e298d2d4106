/* cmd_predict.c - `geneinr predict CONFIG --points P.csv --out V.csv`: the
 * map's value of every gene at any MNI points (electrodes, ROI centroids,
 * sample sites), without rendering a grid.
 *
 * Phases: set-up (config, checkpoint, the output checked free, the point
 * table read on rank 0 and its coordinates sent to every rank, the method
 * as the render makes it: map_source.h), compute (rounds of points), report
 * (one line). The table is written by rank 0 to V.csv.tmp and renamed.
 *
 * The same bits at any rank count. The points are cut into chunks of a fixed
 * size that depends only on the config and the genes (never on the ranks),
 * a chunk is one predict call, and a point's value depends only on its place
 * in its chunk (GEMM kernels may round a row by its place in the batch,
 * render_plan.h). Each round's chunks are dealt to the ranks in contiguous
 * blocks and gathered in order to rank 0, which writes the round's rows.
 * Memory per rank is bounded by render.buffer_mb: a round holds at most
 * that many bytes of values, and a chunk's genes are predicted in groups
 * when the method's scratch for all of them would not fit (values are
 * bit-identical by gene group, method.h).
 */
#include "geneinr/cmd.h"
#include "geneinr/error.h"

#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "geneinr/config.h"
#include "geneinr/dist.h"
#include "geneinr/files.h"
#include "geneinr/map_source.h"
#include "geneinr/method_kind.h"
#include "geneinr/points.h"
#include "geneinr/stop.h"

#define IN_MASK "in_mask"

/* Chunks per round, at least, when the values of a round are what bounds it:
 * enough to keep several ranks busy on a round, whatever their number. */
#define MIN_CHUNKS_PER_ROUND 16

/* --checkpoint, or the run folder's: run.out, else runs/<config name> (as render). */
static int checkpoint_path(const gi_cmd_args *a, const gi_config *c, char *out, size_t size, gi_err *err)
{
    if (c->render.method != GI_METHOD_INR) {
        if (a->checkpoint)
            return gi_fail(err, "render.method %s is fitted on data.samples, not read from a checkpoint; leave out "
                           "--checkpoint (or --set render.method=inr)", GI_METHOD_NAMES[c->render.method]);
        out[0] = '\0';
        return 0;
    }
    int n;
    if (a->checkpoint) {
        n = snprintf(out, size, "%s", a->checkpoint);
    } else if (c->run.out[0]) {
        n = snprintf(out, size, "%s/checkpoint.h5", c->run.out);
    } else {
        const char *base = strrchr(a->operand, '/');
        base = base ? base + 1 : a->operand;
        n = snprintf(out, size, "runs/%.*s/checkpoint.h5", (int)strcspn(base, "."), base);
    }
    if (n < 0 || (size_t)n >= size)
        return gi_fail(err, "checkpoint path too long");
    if (access(out, R_OK) != 0)
        return gi_fail(err, "no checkpoint at %s: %s; train first (geneinr train CONFIG), or name one with "
                       "--checkpoint FILE", out, strerror(errno));
    return 0;
}

/* Is path (when it exists) the same file as one of the inputs? */
static const char *same_as_input(const char *path, const char *const *inputs, const char *const *what, int n)
{
    struct stat so, si;
    if (stat(path, &so) != 0)
        return NULL;
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i][0] && stat(inputs[i], &si) == 0 && si.st_dev == so.st_dev &&
            si.st_ino == so.st_ino)
            return what[i];
    return NULL;
}

/* Rank 0, before any work: --out (and its .tmp) is none of the inputs, even
 * with --force; an existing --out is replaced only with --force and only when
 * it is a regular file (a rename over /dev/null or a folder would replace
 * that); the folder it goes in exists. */
static int check_out(const gi_cmd_args *a, const gi_config *c, const char *ckpt, gi_err *err)
{
    const char *out = a->out;
    char tmp[4200];
    if (!out[0])
        return gi_fail(err, "--out is empty");
    /* The table is plain text: a .gz name would hold no gzip. */
    if (gi_ends_with(out, ".gz"))
        return gi_fail(err, "--out %s: predict writes a plain CSV; name it without .gz (and compress it after)", out);
    if (snprintf(tmp, sizeof tmp, "%s.tmp", out) >= (int)sizeof tmp)
        return gi_fail(err, "--out path too long");
    const char *inputs[] = {a->points, a->operand, ckpt, c->data.samples, c->render.mask, c->data.anatomy,
                            c->data.genes, c->data.anatomy_labels};
    const char *what[] = {"--points", "the config", "the checkpoint", "data.samples", "render.mask", "data.anatomy",
                          "data.genes", "data.anatomy_labels"};
    const char *const outs[] = {out, tmp};
    for (int o = 0; o < 2; o++) {
        const char *w = same_as_input(outs[o], inputs, what, (int)(sizeof inputs / sizeof inputs[0]));
        if (w)
            return gi_fail(err, "--out %s is %s%s: the table would overwrite its own input; name another file", out,
                           o ? "where the table is written first, " : "", w);
    }
    struct stat st;
    if (lstat(out, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            return gi_fail(err, "--out %s exists and is not a regular file (a folder, link or device); name a file",
                           out);
        if (!a->force)
            return gi_fail(err, "--out %s exists; add --force to replace it", out);
    }
    if (lstat(tmp, &st) == 0) {
        if (!a->force || !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
            return gi_fail(err, "%s exists (left by an interrupted predict?); remove it, or add --force", tmp);
        if (unlink(tmp) != 0)
            return gi_fail(err, "cannot remove %s: %s", tmp, strerror(errno));
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[slash == dir ? 1 : 0] = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    if (access(dir, W_OK) != 0)
        return gi_fail(err, "--out %s: cannot write in folder %s: %s", out, dir, strerror(errno));
    return 0;
}

/* The point table's names must differ from the columns predict adds. */
static int check_names(const gi_points *p, const gi_map_source *s, const char *ckpt, gi_err *err)
{
    static const char *const ADDED[] = {IN_MASK};
    char whose[GI_PATH_MAX + 64];
    if (s->kind == GI_METHOD_INR)
        snprintf(whose, sizeof whose, "a gene of %s", ckpt);
    else
        snprintf(whose, sizeof whose, "a gene of data.samples");
    for (int g = 0; g < s->n_genes; g++)
        if (strcmp(s->genes[g], IN_MASK) == 0)
            return gi_fail(err, "gene '%s' (%s) has the name of the in_mask column predict adds; rename the gene",
                           IN_MASK, whose);
    if (gi_points_check_free(p, ADDED, 1, "the in_mask column", err) != 0)
        return -1;
    return gi_points_check_free(p, (const char *const *)s->genes, s->n_genes, whose, err);
}

/* How the points and genes are cut (depends on the config and the genes only). */
typedef struct cuts {
    long round;              /* points per round (a multiple of chunk) */
    int chunk;               /* points per predict call */
    int ng;                  /* genes per predict call */
} cuts;

static cuts make_cuts(const gi_map_source *s, const gi_config *c)
{
    size_t budget = (size_t)c->render.buffer_mb * 1048576, row = sizeof(float) * (size_t)s->n_genes;
    long per_round = (long)(budget / row);
    if (per_round > INT_MAX / s->n_genes)   /* MPI counts of one round's values are ints */
        per_round = INT_MAX / s->n_genes;
    if (per_round < 1)
        per_round = 1;
    cuts k;
    long chunk = per_round / MIN_CHUNKS_PER_ROUND;
    k.chunk = (int)(chunk < 1 ? 1 : chunk > s->batch ? s->batch : chunk);
    k.round = per_round < k.chunk ? k.chunk : per_round - per_round % k.chunk;
    size_t per_gene, fixed;
    gi_map_source_predict_bytes(s, &per_gene, &fixed);
    /* The method's scratch for a call of all genes (it allocates for its own
     * batch, whatever the call's size), else groups of genes, each with its
     * copy buffer. */
    per_gene += sizeof(float) * (size_t)k.chunk;
    k.ng = s->n_genes;
    if (per_gene * (size_t)k.ng + fixed > budget) {
        size_t ng = budget > fixed ? (budget - fixed) / per_gene : 1;
        k.ng = ng < 1 ? 1 : (int)ng;
    }
    return k;
}

/* This rank's points of the round [r0, r1): chunks dealt in contiguous blocks. */
static void my_share(const cuts *k, long r0, long r1, int rank, int size, long *lo, long *hi)
{
    long nch = (r1 - r0 + k->chunk - 1) / k->chunk, c0, c1;
    gi_share(nch, rank, size, &c0, &c1);
    *lo = r0 + c0 * k->chunk;
    *hi = r0 + c1 * k->chunk < r1 ? r0 + c1 * k->chunk : r1;
    if (*lo > r1)
        *lo = r1;
}

/* Points [lo, hi) into vals [hi - lo][G]: chunk by chunk, genes in groups. */
static int predict_share(const gi_map_source *s, const cuts *k, const double *mm, long lo, long hi, float *vals,
                         float *group, gi_err *err)
{
    int G = s->n_genes;
    for (long q = lo; q < hi; q += k->chunk) {
        int nb = (int)(hi - q < k->chunk ? hi - q : k->chunk);
        float *dst = vals + (size_t)(q - lo) * G;
        if (gi_stop_pending())
            return gi_fail(err, "predict stopped by a signal");
        if (k->ng == G) {
            if (gi_map_source_predict(s, nb, mm + 3 * (size_t)q, 0, G, dst, err) != 0)
                return -1;
            continue;
        }
        for (int g0 = 0; g0 < G; g0 += k->ng) {
            int ng = G - g0 < k->ng ? G - g0 : k->ng;
            if (gi_map_source_predict(s, nb, mm + 3 * (size_t)q, g0, ng, group, err) != 0)
                return -1;
            for (int p = 0; p < nb; p++)
                memcpy(dst + (size_t)p * G + g0, group + (size_t)p * ng, sizeof(float) * (size_t)ng);
        }
    }
    return 0;
}

/* Every round: this rank's share predicted, errors and stop signals agreed,
 * the round gathered in order into rank 0's buffer and written as rows.
 * On rank 0, *inside counts the points in the mask. */
static int predict_rounds(const gi_cmd_ctx *x, const gi_map_source *s, const cuts *k, long n, const double *mm,
                          const gi_points *p, gi_points_out *o, long *inside, int *stopped, gi_err *err)
{
    int G = s->n_genes;
    long most = k->round < n ? k->round : n;
    /* Rank 0 gathers a round; the others hold their share of one. */
    float *vals = malloc(sizeof(float) * (size_t)most * (size_t)G);
    float *group = k->ng < G ? malloc(sizeof(float) * (size_t)k->chunk * (size_t)k->ng) : NULL;
    int *counts = malloc(sizeof(int) * (size_t)x->size), *displs = malloc(sizeof(int) * (size_t)x->size);
    int rc = vals && (group || k->ng == G) && counts && displs ? 0 : gi_fail(err, "out of memory for %ld points x %d "
                                                                               "genes (render.buffer_mb)", most, G);
    *inside = 0;
    *stopped = 0;
    for (long r0 = 0; r0 < n; r0 += k->round) {
        long r1 = r0 + k->round < n ? r0 + k->round : n, lo, hi;
        my_share(k, r0, r1, x->rank, x->size, &lo, &hi);
        if (rc == 0)
            rc = predict_share(s, k, mm, lo, hi, vals, group, err);
        /* A stop fails the rank that saw it; every rank then stops here. */
        if (gi_dist_agree(x->comm, rc, err) != 0) {
            *stopped = gi_cmd_stop_agreed(x);
            rc = -1;
            break;
        }
        for (int r = 0; r < x->size; r++) {
            long l, h;
            my_share(k, r0, r1, r, x->size, &l, &h);
            counts[r] = (int)((h - l) * G);
            displs[r] = (int)((l - r0) * G);
        }
        if (x->rank == 0)
            MPI_Gatherv(MPI_IN_PLACE, counts[0], MPI_FLOAT, vals, counts, displs, MPI_FLOAT, 0, x->comm);
        else
            MPI_Gatherv(vals, counts[x->rank], MPI_FLOAT, NULL, NULL, NULL, MPI_FLOAT, 0, x->comm);
        if (x->rank == 0)
            for (long i = r0; i < r1; i++) {
                int in = gi_map_source_in_mask(s, mm + 3 * (size_t)i);
                *inside += in;
                gi_points_out_row(o, p, i, in, vals + (size_t)(i - r0) * G, G);
            }
    }
    free(vals);
    free(group);
    free(counts);
    free(displs);
    return rc;
}

/* Set-up agreed step by step, then the rounds, then the table renamed into place. */
static int predict(const gi_cmd_ctx *x, const gi_cmd_args *a, double t0, gi_err *err)
{
    gi_config c;
    int rc = gi_config_load(&c, a->operand, a->sets, a->n_sets, err);
    if (gi_dist_agree(x->comm, rc, err) != 0)
        return gi_cmd_status(x, -1, err);
    char ckpt[GI_PATH_MAX + 32];
    rc = checkpoint_path(a, &c, ckpt, sizeof ckpt, err);
    if (rc == 0 && x->rank == 0)
        rc = check_out(a, &c, ckpt, err);
    if (gi_dist_agree(x->comm, rc, err) != 0)
        return gi_cmd_status(x, -1, err);
    gi_cmd_set_threads(x, &c);

    /* The points: read and checked on rank 0 (before a baseline's fit), sent to all. */
    gi_points p;
    memset(&p, 0, sizeof p);
    rc = x->rank == 0 ? gi_points_read(&p, a->points, err) : 0;
    if (gi_dist_agree(x->comm, rc, err) != 0)
        return gi_cmd_status(x, -1, err);
    long n = p.n;
    MPI_Bcast(&n, 1, MPI_LONG, 0, x->comm);
    double *mm = x->rank == 0 ? p.mm : malloc(sizeof(double) * 3 * (size_t)n);
    rc = mm ? 0 : gi_fail(err, "out of memory for %ld points", n);
    if (gi_dist_agree(x->comm, rc, err) != 0) {
        gi_points_free(&p);
        return gi_cmd_status(x, -1, err);
    }
    MPI_Bcast(mm, (int)(3 * n), MPI_DOUBLE, 0, x->comm);

    /* The method, as the render makes it from this config. */
    gi_map_source s;
    memset(&s, 0, sizeof s);
    rc = c.render.method == GI_METHOD_INR ? gi_cmd_check_prior_matches(x, &c, ckpt, err) : 0;
    if (rc == 0)
        rc = gi_dist_agree(x->comm, gi_map_source_open(&s, &c, ckpt, err), err);
    gi_points_out o;
    memset(&o, 0, sizeof o);
    if (rc == 0 && x->rank == 0) {
        const char **names = malloc(sizeof(char *) * (size_t)(s.n_genes + 1));
        rc = names ? check_names(&p, &s, ckpt, err) : gi_fail(err, "out of memory");
        if (rc == 0) {
            names[0] = IN_MASK;
            for (int g = 0; g < s.n_genes; g++)
                names[g + 1] = s.genes[g];
            rc = gi_points_out_open(&o, a->out, &p, names, s.n_genes + 1, err);
        }
        free(names);
    }
    cuts k = {0};
    if (rc == 0)
        k = make_cuts(&s, &c);
    if (rc == 0 && x->rank == 0) {
        long rounds = (n + k.round - 1) / k.round;
        printf("predict: %ld points x %d genes, %s for %s, %d rank%s, %ld round%s of %ld points, %d points per "
               "call%s\n", n, s.n_genes, GI_METHOD_NAMES[c.render.method], s.donor, x->size, x->size > 1 ? "s" : "",
               rounds, rounds > 1 ? "s" : "", k.round < n ? k.round : n, k.chunk,
               k.ng < s.n_genes ? ", genes in groups (render.buffer_mb)" : "");
        fflush(stdout);
    }
    long inside = 0;
    int stopped = 0;
    rc = gi_dist_agree(x->comm, rc, err);
    if (rc == 0)
        rc = predict_rounds(x, &s, &k, n, mm, &p, &o, &inside, &stopped, err);
    /* A signal while rank 0 wrote the last rows: no table either (agreed, so collective). */
    if (rc == 0 && gi_cmd_stop_agreed(x)) {
        stopped = 1;
        rc = -1;
    }
    if (rc == 0 && x->rank == 0)
        rc = gi_points_out_commit(&o, err);
    if (rc != 0)
        gi_points_out_abort(&o);
    rc = stopped ? -1 : gi_dist_agree(x->comm, rc, err);
    if (rc == 0 && x->rank == 0)
        printf("predict: %ld points (%ld in the mask, %ld outside) x %d genes in %.1f s; %s\n", n, inside,
               n - inside, s.n_genes, MPI_Wtime() - t0, a->out);
    gi_map_source_free(&s);
    if (x->rank != 0)
        free(mm);
    gi_points_free(&p);
    if (stopped)
        return gi_cmd_stopped(x, "predict", "no table was written; run the same command again");
    return gi_cmd_status(x, rc, err);
}

static int run_predict(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    double t0 = MPI_Wtime();
    gi_err err = {{0}};
    /* SIGTERM/SIGINT/SIGUSR1 stop between chunks; V.csv.tmp is removed. */
    gi_stop_install();
    int rc = predict(x, a, t0, &err);
    gi_stop_uninstall();
    return rc;
}

static const gi_cmd_opt OPTS[] = {
    GI_OPT_S_REQ("--points", points, "P.csv", "the points: columns x,y,z in MNI mm; other columns are carried through"),
    GI_OPT_S_REQ("--out", out, "V.csv", "the table to write (the points' columns, in_mask, one column per gene)"),
    GI_OPT_S("--checkpoint", checkpoint, "FILE", "the trained model (default: the run folder's checkpoint.h5)"),
    GI_OPT_F("--force", force, "replace an existing --out file"),
    GI_OPT_SETS, GI_OPT_END,
};

const gi_cmd gi_cmd_predict = {
    .name = "predict",
    .run = run_predict,
    .operand = "CONFIG",
    .synopsis = "the map's value of every gene at any MNI points: `V.csv` = the points' columns, `in_mask`, one column "
                "per gene",
    .help = "Evaluates the map that `geneinr render CONFIG` would write at the points of P.csv (columns x,y,z in\n"
            "MNI millimetres, or mni_x,mni_y,mni_z; every other column is carried through unchanged, in order),\n"
            "with the same method: the checkpoint's INR (with its data.prior and train.ensemble members) for\n"
            "render.donor, or a baseline render.method fitted on data.samples. V.csv has the points' columns,\n"
            "then in_mask (1 when the point's nearest voxel of render.mask is inside it; 0 outside it or off\n"
            "the grid), then one column per gene in the checkpoint's order, in the sample table's units (%.9g).\n"
            "A point's anatomy label (data.anatomy) is that of its nearest voxel, as the render takes it at\n"
            "a voxel centre; at voxel centres the values equal the atlas's up to float rounding. Points are\n"
            "dealt to the ranks in fixed chunks, so any rank count writes the same file. V.csv is written as\n"
            "V.csv.tmp and renamed; an existing V.csv is replaced only with --force, and never an input.",
    .opts = OPTS,
};
