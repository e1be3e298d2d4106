/* train.c - data-parallel training loop (design in train.h). */
#include "geneinr/train.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "geneinr/checkpoint.h"
#include "geneinr/geometry.h"
#include "geneinr/progress.h"
#include "geneinr/dataset.h"
#include "geneinr/dist.h"
#include "geneinr/gene_order.h"
#include "geneinr/model.h"
#include "geneinr/optim.h"
#include "geneinr/rng.h"
#include "geneinr/rundir.h"
#include "geneinr/stop.h"
#include "geneinr/vmath.h"

/* Units per forward/backward call (gi_train_chunk). Chunks are cut at fixed
 * positions of the global unit list and dealt to ranks whole; each chunk's
 * gradient is added into a double accumulator and the accumulators are summed
 * across ranks in double. Every chunk's float arithmetic is thus the same for
 * any rank count, and only double-precision regrouping differs, which almost
 * never changes a float: 1 and N ranks follow the same trajectory, not just a
 * nearby one. The chunk size depends on the model's shape only, never on the
 * rank count; CHUNK_MAX bounds it. */
#define CHUNK_MAX 1024

int gi_train_chunk(const gi_model_spec *s)
{
    /* Rows per GEMM: 256 keeps a 256-wide layer's activations (256 KB) in
     * L2 with sgemm at full rate; a 512-wide layer needs more rows for the
     * same rate, and the per-chunk cost that does not shrink with the rows
     * (the double accumulation of every gradient, ~ width^2) asks for the
     * work per chunk to grow with the layer (measured: docs/BENCHMARKS.md). */
    return s->width > 256 ? 1024 : 256;
}

/* The units of one split: sample index, and gene index in concat mode. */
typedef struct units {
    long n;
    int *sample;
    int *gene;               /* NULL in factorized mode */
    long measured;           /* measured values covered by all units */
} units;

typedef struct trainer {
    const gi_config *c;
    gi_targets_fn targets;    /* builds data: the dataset or, composed above, its residual over a prior */
    MPI_Comm comm;
    int rank, size;
    gi_dataset data;
    gi_state st;
    gi_workspace *ws;
    int chunk;                /* units per forward/backward call (gi_train_chunk) */
    gi_optim_spec opt;
    units train, val;
    int *measured_per_sample; /* [n] measured genes per sample (factorized batch counts) */
    float *coords;            /* [n samples][coord width]: first-layer coordinate columns of every
                               * sample (Fourier features), computed once: the points never move */
    /* chunk buffers */
    float *xyz, *out, *dout;
    int *donor, *label, *gene, *row;
    double *acc;              /* [n_params + 1]: gradient and loss sums, one allreduce */
    long *batch;              /* [batch_size] global unit positions of a mini-batch */
    FILE *log;                /* rank 0: train_log.csv */
} trainer;

static int units_build(trainer *t, int want_val, units *u)
{
    const gi_samples *s = &t->data.s;
    int G = s->n_genes, concat = t->c->model.gene_mode == GI_GENE_CONCAT;
    long n = 0, measured = 0;
    for (int pass = 0; pass < 2; pass++) {
        n = 0;
        measured = 0;
        for (int i = 0; i < s->n; i++) {
            if (t->data.is_val[i] != want_val)
                continue;
            int cnt = 0;
            for (int g = 0; g < G; g++) {
                if (isnan(t->data.y[(size_t)i * G + g]))
                    continue;
                cnt++;
                if (concat) {
                    if (pass) {
                        u->sample[n] = i;
                        u->gene[n] = g;
                    }
                    n++;
                }
            }
            if (!concat && cnt > 0) {
                if (pass)
                    u->sample[n] = i;
                n++;
            }
            measured += cnt;
        }
        if (!pass) {
            u->sample = malloc(sizeof(int) * (size_t)(n ? n : 1));
            u->gene = concat ? malloc(sizeof(int) * (size_t)(n ? n : 1)) : NULL;
            if (!u->sample || (concat && !u->gene))
                return -1;
        }
    }
    u->n = n;
    u->measured = measured;
    return 0;
}

/* Forward (and optionally backward) over a list of unit positions; returns the
 * sum of squared errors. Backward uses dLoss/dpred = 2 (pred - y) / norm and
 * sets m->grads to the gradient of these units (whatever it held before). */
static double run_units(trainer *t, const units *u, const long *pos, long npos,
                        int donor_average, int backward, double norm)
{
    const gi_dataset *d = &t->data;
    gi_model *m = &t->st.model;
    int G = d->s.n_genes, n_out = m->n_out, concat = u->gene != NULL;
    double sse = 0;
    long C = t->chunk;
    for (long c0 = 0; c0 < npos; c0 += C) {
        int nb = (int)(npos - c0 < C ? npos - c0 : C);
        for (int k = 0; k < nb; k++) {
            long ui = pos ? pos[c0 + k] : c0 + k;
            int i = u->sample[ui];
            memcpy(t->xyz + 3 * k, d->xyz + 3 * (size_t)i, 3 * sizeof(float));
            t->row[k] = i;
            t->donor[k] = donor_average ? -1 : d->s.donor[i];
            if (d->label)
                t->label[k] = d->label[i];
            if (concat)
                t->gene[k] = u->gene[ui];
        }
        gi_batch b = {nb, t->xyz, m->spec.donor_dim ? t->donor : NULL, d->label ? t->label : NULL,
                      concat ? t->gene : NULL};
        gi_model_forward_coords(m, &b, t->coords, t->row, t->ws, t->out);
        for (int k = 0; k < nb; k++) {
            long ui = pos ? pos[c0 + k] : c0 + k;
            int i = u->sample[ui];
            for (int o = 0; o < n_out; o++) {
                int g = concat ? u->gene[ui] : o;
                float y = d->y[(size_t)i * G + g];
                float r = isnan(y) ? 0.0f : t->out[(size_t)k * n_out + o] - y;
                sse += (double)r * r;
                t->dout[(size_t)k * n_out + o] = (float)(2.0 * r / norm);
            }
        }
        if (backward && c0 == 0)
            gi_model_backward_set(m, &b, t->ws, t->dout);
        else if (backward)
            gi_model_backward(m, &b, t->ws, t->dout);
    }
    return sse;
}

/* Validation MSE over all ranks (standardised units). */
static double validate(trainer *t)
{
    long C = t->chunk, npos = t->val.n, nchunks = (npos + C - 1) / C, c_lo, c_hi;
    gi_share(nchunks, t->rank, t->size, &c_lo, &c_hi);
    long pos[CHUNK_MAX];
    double sse = 0, tot;
    for (long ch = c_lo; ch < c_hi; ch++) {
        long p0 = ch * C, n = npos - p0 < C ? npos - p0 : C;
        for (long k = 0; k < n; k++)
            pos[k] = p0 + k;
        /* A held-out donor has no trained embedding: it is predicted as the
         * donor average; train.val_average scores every validation sample
         * that way, i.e. the map that render and eval use. */
        sse += run_units(t, &t->val, pos, n, t->data.val_donor >= 0 || t->c->train.val_average, 0, 1.0);
    }
    MPI_Allreduce(&sse, &tot, 1, MPI_DOUBLE, MPI_SUM, t->comm);
    return t->val.measured ? tot / (double)t->val.measured : NAN;
}

/* acc[q] (=, or += when add) grads[q]: the per-chunk double accumulation */
GI_VECTORISED static void add_chunk(double *acc, const float *grads, size_t np, int add)
{
    if (add) {
#pragma omp simd
        for (size_t q = 0; q < np; q++)
            acc[q] += grads[q];
    } else {
#pragma omp simd
        for (size_t q = 0; q < np; q++)
            acc[q] = grads[q];
    }
}

/* grads[q] = (float)acc[q]: the summed gradient back to the model */
GI_VECTORISED static void acc_to_float(float *grads, const double *acc, size_t np)
{
#pragma omp simd
    for (size_t q = 0; q < np; q++)
        grads[q] = (float)acc[q];
}

/* Gradient (and loss) of the global positions pos[0 .. npos) (NULL = identity)
 * summed across ranks into t->acc, chunk by chunk as described at CHUNK_MAX. */
static void accumulate(trainer *t, const units *u, const long *pos, long npos, double norm)
{
    gi_model *m = &t->st.model;
    size_t np = m->n_params;
    long C = t->chunk, nchunks = (npos + C - 1) / C, c_lo, c_hi;
    gi_share(nchunks, t->rank, t->size, &c_lo, &c_hi);
    long ident[CHUNK_MAX];
    double *acc = t->acc;
    /* The first chunk stores its gradient (add_chunk below), so only a rank
     * without chunks needs zeros to contribute. */
    if (c_lo == c_hi)
        memset(acc, 0, sizeof(double) * np);
    acc[np] = 0;
    for (long ch = c_lo; ch < c_hi; ch++) {
        long p0 = ch * C, n = npos - p0 < C ? npos - p0 : C;
        const long *cp = pos ? pos + p0 : ident;
        if (!pos)
            for (long k = 0; k < n; k++)
                ident[k] = p0 + k;
        acc[np] += run_units(t, u, cp, n, 0, 1, norm);
        /* 0 + g is exactly g: the first chunk is stored, not added */
        add_chunk(acc, m->grads, np, ch > c_lo);
    }
    MPI_Allreduce(MPI_IN_PLACE, t->acc, (int)(np + 1), MPI_DOUBLE, MPI_SUM, t->comm);
    acc_to_float(m->grads, t->acc, np);
}

/* One optimizer step; returns the global training MSE of the batch. */
static double train_step(trainer *t, long step, long *batch, double *grad_norm)
{
    gi_model *m = &t->st.model;
    long B = t->c->train.batch_size;
    double norm;
    if (B <= 0 || B >= t->train.n) {
        norm = (double)t->train.measured;
        accumulate(t, &t->train, NULL, t->train.n, norm);
    } else {
        /* The global batch is a function of (seed, step) alone, the same for
         * any rank count and after a resume. */
        long measured = 0;
        for (long j = 0; j < B; j++) {
            long u = (long)gi_rng_below(t->c->train.seed, GI_STREAM_BATCH, (uint64_t)(step * B + j),
                                        (uint64_t)t->train.n);
            measured += t->train.gene ? 1 : t->measured_per_sample[t->train.sample[u]];
            batch[j] = u;
        }
        norm = (double)(measured ? measured : 1);
        accumulate(t, &t->train, batch, B, norm);
    }
    *grad_norm = gi_grad_clip(m->grads, m->n_params, t->opt.clip_norm);
    gi_adam_step(&t->st.adam, &t->opt, m->params, m->grads, gi_lr_at(&t->opt, step));
    return t->acc[m->n_params] / norm;
}

static void spec_from(gi_model_spec *s, const gi_config *c, const gi_dataset *d)
{
    gi_model_spec_from_config(s, c, d->s.n_genes, d->s.n_donors, d->n_labels);
}

/* The config as stored in the checkpoint: without run.out, which says where
 * the file is rather than what it holds, and without train.resume, which says
 * how the job was started, so the same training gives the same bytes wherever
 * and however it runs. */
static char *checkpoint_yaml(const gi_config *c)
{
    gi_config copy = *c;
    memset(copy.run.out, 0, sizeof copy.run.out);
    copy.train.resume = GI_RESUME_OFF;
    return gi_config_to_yaml(&copy);
}

static char **copy_names(char *const *src, int n)
{
    char **r = calloc((size_t)n + 1, sizeof *r);
    for (int i = 0; r && i < n; i++)
        if (!(r[i] = strdup(src[i]))) {
            while (i--)
                free(r[i]);
            free(r);
            return NULL;
        }
    return r;
}

/* The prior's shared hyperparameters, as the targets function found them
 * (prior.c): kept in the checkpoint so that prediction refits the prior with
 * one factorisation instead of a maximum-likelihood fit. */
static void keep_prior_hyper(gi_state *st, const gi_dataset *d)
{
    st->n_prior_hyper = d->has_prior_hyper ? GI_PRIOR_HYPER_N : 0;
    if (d->has_prior_hyper)
        memcpy(st->prior_hyper, d->prior_hyper, sizeof st->prior_hyper);
}

/* A fresh state: initialised model, zero moments, names and normalisation. */
static int state_new(trainer *t, gi_err *err)
{
    const gi_config *c = t->c;
    gi_dataset *d = &t->data;
    gi_state *st = &t->st;
    gi_model_spec spec;
    spec_from(&spec, c, d);
    memset(st, 0, sizeof *st);
    if (gi_model_init(&st->model, &spec, c->train.seed, err) != 0)
        return -1;
    if (c->data.prior != GI_PRIOR_NONE) {
        /* Over a prior the network starts as exactly zero (output layer
         * zeroed; its gradients still flow), so training begins at the
         * prior's own fit and validation stopping keeps the prior unless the
         * network improves on it. */
        const gi_layer *out = &st->model.layers[st->model.n_layers - 1];
        memset(st->model.params + out->w_off, 0, sizeof(float) * (size_t)out->in * out->out);
        memset(st->model.params + out->b_off, 0, sizeof(float) * (size_t)out->out);
    }
    int G = d->s.n_genes;
    st->n_genes = G;
    st->n_donors = d->s.n_donors;
    st->n_labels = d->n_labels;
    st->seed = c->train.seed;
    st->best_val = INFINITY;
    st->genes = copy_names(d->s.gene_names, G);
    st->donors = copy_names(d->s.donor_names, d->s.n_donors);
    st->gene_mean = malloc(sizeof(float) * G);
    st->gene_std = malloc(sizeof(float) * G);
    st->gene_position = calloc((size_t)G, sizeof(float));
    st->label_values = malloc(sizeof(int) * (d->n_labels ? d->n_labels : 1));
    st->best_params = malloc(sizeof(float) * (st->model.n_params ? st->model.n_params : 1));
    st->config_yaml = checkpoint_yaml(c);
    if (!st->config_yaml || !st->genes || !st->donors || !st->gene_mean || !st->gene_std || !st->gene_position
        || !st->label_values || !st->best_params
        || gi_adam_init(&st->adam, st->model.n_params, err) != 0)
        return gi_fail(err, "out of memory for the model state");
    memcpy(st->gene_mean, d->gene_mean, sizeof(float) * G);
    memcpy(st->gene_std, d->gene_std, sizeof(float) * G);
    if (d->n_labels)
        memcpy(st->label_values, d->label_values, sizeof(int) * d->n_labels);
    memcpy(st->best_params, st->model.params, sizeof(float) * st->model.n_params);
    keep_prior_hyper(st, d);
    /* A donor without training samples (held out) keeps its random embedding
     * row: it must not enter the donor average. */
    for (int dn = 0; dn < d->s.n_donors; dn++)
        st->model.donor_in_average[dn] = 0;
    for (int i = 0; i < d->s.n; i++)
        if (!d->is_val[i])
            st->model.donor_in_average[d->s.donor[i]] = 1;
    return 0;
}

/* Training settings that may change on resume without changing what is
 * computed: how often to checkpoint or log, whether to resume by itself, the
 * step budget when the learning-rate schedule does not depend on it (cosine
 * does), data.prior_refit (which prior predictions use; training never sees
 * it), baseline.idw_k (no prior uses it) and train.ensemble (how many other
 * members are trained beside this one). */
static int neutral_on_resume(const char *key, const gi_config *old, const gi_config *now)
{
    if (!strcmp(key, "train.checkpoint_every") || !strcmp(key, "train.log_every") || !strcmp(key, "train.resume") ||
        !strcmp(key, "data.prior_refit") || !strcmp(key, "baseline.idw_k") || !strcmp(key, "train.ensemble"))
        return 1;
    if (!strcmp(key, "train.steps"))
        return old->train.schedule != GI_SCHED_COSINE && now->train.schedule != GI_SCHED_COSINE;
    return 0;
}

typedef struct resume_changes {
    const gi_config *old, *now;
    int rank, n_break;
    char breaking[1024];     /* "train.lr (0.001 -> 0.0005), ..." */
    char *lines[64];         /* "train.lr: 0.001 -> 0.0005" of the breaking ones, for the history */
} resume_changes;

static void on_change(const char *key, const char *was, const char *is, void *ctx)
{
    resume_changes *rc = ctx;
    int neutral = neutral_on_resume(key, rc->old, rc->now);
    if (rc->rank == 0)
        printf("train: resume: %s changed from %s to %s%s\n", key, was, is,
               neutral ? "" : " (the continuation differs from a run that had it from the start)");
    if (neutral)
        return;
    size_t used = strlen(rc->breaking);
    snprintf(rc->breaking + used, sizeof rc->breaking - used, "%s%s (%s -> %s)", rc->n_break ? ", " : "", key,
             was, is);
    if (rc->n_break < 64 && asprintf(&rc->lines[rc->n_break], "%s: %s -> %s", key, was, is) < 0)
        rc->lines[rc->n_break] = NULL;
    rc->n_break++;
}

/* The settings that define a continuation, old against now, into ch (rank 0
 * reports each change; rank -1: none does). */
static void diff_settings(const gi_config *old, const gi_config *now, int rank, resume_changes *ch)
{
    memset(ch, 0, sizeof *ch);
    ch->old = old;
    ch->now = now;
    ch->rank = rank;
    gi_config_diff(old, now, "train.", on_change, ch);
    /* The prior defines the targets the network learns (their residuals). */
    gi_config_diff(old, now, "data.prior", on_change, ch);
    /* So does which label each sample was matched to (label_match.h). */
    gi_config_diff(old, now, "data.anatomy_", on_change, ch);
    if (old->data.prior != GI_PRIOR_NONE)
        gi_config_diff(old, now, "baseline.", on_change, ch);
}

static int refuse_changes(const resume_changes *ch, const char *path, gi_err *err)
{
    return gi_fail(err, "%s: cannot resume bit-identically: %s changed since the checkpoint was written; resume "
                   "with the checkpoint's settings, or pass --force to continue with the new ones (the change "
                   "is recorded in the checkpoint's settings history)", path, ch->breaking);
}

/* Compare the training settings (train.*, data.prior*, data.anatomy_*) of the checkpoint with the config: report
 * every change; refuse those that break bit-identical continuation unless
 * force, and then record them in the checkpoint's settings history. */
static int check_settings(trainer *t, const char *path, int force, gi_err *err)
{
    gi_state *st = &t->st;
    gi_config old;
    gi_err why;
    if (gi_config_load_text(&old, st->config_yaml, path, &why) != 0) {
        if (t->rank == 0)
            printf("train: resume: note: cannot compare the training settings with the checkpoint's (%s)\n",
                   why.msg);
        return 0;
    }
    resume_changes ch;
    diff_settings(&old, t->c, t->rank, &ch);
    if (t->rank == 0)
        fflush(stdout);
    int rc = ch.n_break > 0 && !force ? refuse_changes(&ch, path, err) : 0;
    for (int i = 0; i < ch.n_break && i < 64; i++) {
        if (rc == 0 && gi_state_add_history(st, st->step, ch.lines[i] ? ch.lines[i] : "?", err) != 0)
            rc = -1;
        free(ch.lines[i]);
    }
    return rc;
}

/* The spectral gene ordering of a fresh run (concat + spectral), from the
 * training samples only: computed once, on rank 0, and broadcast, so no rank
 * but one pays its time or memory (matrix-free beyond
 * GI_GENE_ORDER_DENSE_MAX genes: no G x G matrix anywhere). Collective. */
static int gene_order(trainer *t, gi_err *err)
{
    const gi_dataset *d = &t->data;
    gi_state *st = &t->st;
    int G = d->s.n_genes, rc = 0;
    double t0 = MPI_Wtime();
    if (t->rank == 0 && G > GI_GENE_ORDER_DENSE_MAX) {
        rc = gi_gene_spectral_positions_lowmem(d->y, d->s.n, G, d->is_val, st->gene_position, err);
    } else if (t->rank == 0) {
        float *ytrain = malloc(sizeof(float) * (size_t)d->n_train * G);
        if (!ytrain) {
            rc = gi_fail(err, "out of memory");
        } else {
            int k = 0;
            for (int i = 0; i < d->s.n; i++)
                if (!d->is_val[i])
                    memcpy(ytrain + (size_t)k++ * G, d->y + (size_t)i * G, sizeof(float) * G);
            rc = gi_gene_spectral_positions(ytrain, d->n_train, G, st->gene_position, err);
            free(ytrain);
        }
    }
    if (gi_dist_agree(t->comm, rc, err) != 0)
        return -1;
    MPI_Bcast(st->gene_position, G, MPI_FLOAT, 0, t->comm);
    gi_model_set_gene_positions(&st->model, st->gene_position);
    if (t->rank == 0 && G > GI_GENE_ORDER_DENSE_MAX) {
        printf("train: spectral gene ordering of %d genes in %.1f s (matrix-free, rank 0)\n", G, MPI_Wtime() - t0);
        fflush(stdout);
    }
    return 0;
}

/* Resuming: the checkpoint must describe the same model on the same data. */
static int state_resume(trainer *t, const char *path, int force, gi_err *err)
{
    gi_model_spec spec;
    spec_from(&spec, t->c, &t->data);
    if (gi_checkpoint_load(&t->st, path, err) != 0)
        return -1;
    const gi_state *st = &t->st;
    const gi_model_spec *s = &st->model.spec;
    char what[512];
    int n_diff = gi_model_spec_diff(s, &spec, what, sizeof what);
    if (n_diff > 0)
        return gi_fail(err, "%s: cannot resume: %s differ%s from the checkpoint; resume with the config and "
                       "data it was trained with", path, what, n_diff > 1 ? "" : "s");
    if (st->seed != t->c->train.seed)
        return gi_fail(err, "%s: trained with train.seed %llu, the config says %llu", path,
                       (unsigned long long)st->seed, (unsigned long long)t->c->train.seed);
    if (check_settings(t, path, force, err) != 0)
        return -1;
    for (int g = 0; g < st->n_genes; g++)
        if (strcmp(st->genes[g], t->data.s.gene_names[g]) != 0)
            return gi_fail(err, "%s: gene %d is '%s' in the checkpoint but '%s' in %s", path, g + 1,
                           st->genes[g], t->data.s.gene_names[g], t->c->data.samples);
    for (int dn = 0; dn < st->n_donors; dn++)
        if (strcmp(st->donors[dn], t->data.s.donor_names[dn]) != 0)
            return gi_fail(err, "%s: donor %d is '%s' in the checkpoint but '%s' in %s (rows in another order?)",
                           path, dn + 1, st->donors[dn], t->data.s.donor_names[dn], t->c->data.samples);
    if (st->n_labels && memcmp(st->label_values, t->data.label_values, sizeof(int) * st->n_labels) != 0)
        return gi_fail(err, "%s: the anatomy labels differ from those of %s", path, t->c->data.anatomy);
    /* The checkpoint's normalisation stays authoritative: it is what the
     * weights were trained against. */
    for (int g = 0; g < st->n_genes; g++)
        if (st->gene_mean[g] != t->data.gene_mean[g] || st->gene_std[g] != t->data.gene_std[g])
            return gi_fail(err, "%s: the sample table or validation split differs from the one it was trained on", path);
    /* A checkpoint from before the prior's hyperparameters were kept gets
     * them now (the prior was fitted again, deterministically, for the targets). */
    if (!t->st.n_prior_hyper)
        keep_prior_hyper(&t->st, &t->data);
    free(t->st.config_yaml);
    t->st.config_yaml = checkpoint_yaml(t->c);
    return t->st.config_yaml ? 0 : gi_fail(err, "out of memory");
}

static int save(trainer *t, const char *path, gi_err *err)
{
    /* The log rows up to this step reach the disk before the checkpoint does,
     * so that after a kill the log holds at least every row the checkpoint
     * covers (a resume drops the rest). */
    if (t->rank == 0 && t->log && (fflush(t->log) != 0 || fsync(fileno(t->log)) != 0))
        return gi_dist_agree(t->comm, gi_fail(err, "cannot write train_log.csv: %s", strerror(errno)), err);
    int rc = t->rank == 0 ? gi_checkpoint_save(&t->st, path, err) : 0;
    return gi_dist_agree(t->comm, rc, err);
}

static void trainer_free(trainer *t)
{
    gi_dataset_free(&t->data);
    gi_state_free(&t->st);
    gi_workspace_free(t->ws);
    free(t->train.sample);
    free(t->train.gene);
    free(t->val.sample);
    free(t->val.gene);
    free(t->measured_per_sample);
    free(t->xyz);
    free(t->out);
    free(t->dout);
    free(t->donor);
    free(t->label);
    free(t->gene);
    free(t->row);
    free(t->coords);
    free(t->acc);
    free(t->batch);
}

/* Before the targets are built (a prior's fit takes seconds to minutes):
 * refuse a resume whose settings break bit-identical continuation, reading
 * only the checkpoint, so the refusal costs no fit. Quiet: the full check
 * after loading reports every change. Collective in effect: every rank reads
 * the same file and comes to the same answer; agreed by the caller. */
static int precheck_resume(trainer *t, const char *path, int force, gi_err *err)
{
    if (force)
        return 0;
    char *yaml = NULL;
    gi_config old;
    gi_err why;
    int rc = 0;
    if (gi_checkpoint_read_config(path, &yaml, &why) == 0 && gi_config_load_text(&old, yaml, path, &why) == 0) {
        resume_changes ch;
        diff_settings(&old, t->c, -1, &ch);
        if (ch.n_break > 0)
            rc = refuse_changes(&ch, path, err);
        for (int i = 0; i < ch.n_break && i < 64; i++)
            free(ch.lines[i]);
    }
    free(yaml);   /* unreadable: the full load reports it */
    return rc;
}

static int setup(trainer *t, const char *resume, int force, gi_err *err)
{
    if (resume && t->targets && precheck_resume(t, resume, force, err) != 0)
        return -1;
    if ((t->targets ? t->targets(&t->data, t->c, t->comm, err) : gi_dataset_build(&t->data, t->c, err)) != 0)
        return -1;
    if ((resume ? state_resume(t, resume, force, err) : state_new(t, err)) != 0)
        return -1;
    gi_model *m = &t->st.model;
    const gi_samples *s = &t->data.s;
    if (units_build(t, 0, &t->train) != 0 || units_build(t, 1, &t->val) != 0)
        return gi_fail(err, "out of memory");
    if (t->train.n == 0)
        return gi_fail(err, "%s: no measured values among the training samples", t->c->data.samples);
    if (t->c->train.val_mode != GI_VAL_NONE && t->val.measured == 0)
        return gi_fail(err, "%s: the validation samples have no measured values; choose another split or set "
                       "train.validation: none", t->c->data.samples);
    long B = t->c->train.batch_size;
    t->batch = malloc(sizeof(long) * (size_t)(B > 0 && B < t->train.n ? B : 1));
    t->measured_per_sample = calloc((size_t)s->n, sizeof(int));
    t->chunk = gi_train_chunk(&m->spec);
    if (t->chunk > CHUNK_MAX)
        t->chunk = CHUNK_MAX;
    t->ws = gi_workspace_new(m, t->chunk);
    t->xyz = malloc(sizeof(float) * 3 * t->chunk);
    t->out = malloc(sizeof(float) * (size_t)t->chunk * m->n_out);
    t->dout = malloc(sizeof(float) * (size_t)t->chunk * m->n_out);
    t->donor = malloc(sizeof(int) * t->chunk);
    t->label = malloc(sizeof(int) * t->chunk);
    t->gene = malloc(sizeof(int) * t->chunk);
    t->row = malloc(sizeof(int) * t->chunk);
    t->coords = malloc(sizeof(float) * (size_t)(s->n ? s->n : 1) * (size_t)gi_model_coord_width(m));
    t->acc = malloc(sizeof(double) * (m->n_params + 1));
    if (!t->batch || !t->measured_per_sample || !t->ws || !t->xyz || !t->out || !t->dout || !t->donor
        || !t->label || !t->gene || !t->row || !t->coords || !t->acc)
        return gi_fail(err, "out of memory");
    gi_model_coord_features(m, t->data.xyz, s->n, t->coords);
    for (int i = 0; i < s->n; i++)
        for (int g = 0; g < s->n_genes; g++)
            t->measured_per_sample[i] += !isnan(t->data.y[(size_t)i * s->n_genes + g]);
    gi_optim_spec_from_config(&t->opt, t->c);
    return 0;
}

/* Rank 0: open the loss log. A fresh run starts it; a resumed run keeps the
 * rows up to the checkpoint's step (a later, abandoned continuation would
 * otherwise leave duplicate steps) and appends. */
static int open_log(trainer *t, const char *path, int resumed, gi_err *err)
{
    static const char *HEADER = "step,loss,val_loss,lr,grad_norm,seconds\n";
    if (!resumed) {
        /* Fresh: the header goes out with the first rows (callers watch the
         * file's size to know that training has started). */
        t->log = fopen(path, "w");
        if (!t->log)
            return gi_fail(err, "cannot write %s: %s", path, strerror(errno));
        fputs(HEADER, t->log);
        return 0;
    }
    char tmp[GI_PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* Rebuilt in PATH.tmp and renamed, so a kill during the rebuild leaves
     * the old log, never a truncated one. */
    FILE *out = fopen(tmp, "w");
    if (!out)
        return gi_fail(err, "cannot write %s: %s", tmp, strerror(errno));
    fputs(HEADER, out);
    FILE *old = resumed ? fopen(path, "r") : NULL;
    long kept = 0, dropped = 0, last = 0;
    int torn = 0;
    char line[1024];
    while (old && fgets(line, sizeof line, old)) {
        size_t n = strlen(line);
        if (n == 0 || line[n - 1] != '\n') {
            torn = 1; /* the last line of a run killed while writing it */
            break;
        }
        if (!isdigit((unsigned char)line[0]))
            continue; /* the header */
        int commas = 0;
        for (const char *p = line; *p; p++)
            commas += *p == ',';
        char *end;
        long step = strtol(line, &end, 10);
        /* Only whole rows, in order, up to the checkpoint's step: later rows
         * belong to a continuation the checkpoint does not have. */
        if (commas != 5 || *end != ',' || step <= last || step > t->st.step) {
            dropped++;
            continue;
        }
        fputs(line, out);
        last = step;
        kept++;
    }
    if (old)
        fclose(old);
    int bad = ferror(out);
    if (fclose(out) != 0 || bad || rename(tmp, path) != 0) {
        remove(tmp);
        return gi_fail(err, "cannot write %s: %s", path, strerror(errno));
    }
    if (resumed && (dropped || torn)) {
        printf("train: %s: kept %ld rows up to step %ld (the checkpoint's); dropped %ld%s\n", path, kept, last,
               dropped, torn ? " and a torn last line" : "");
        fflush(stdout);
    }
    t->log = fopen(path, "a");
    if (!t->log)
        return gi_fail(err, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

/* Score validation every val_every steps and at the end; keep the best
 * weights; decide early stopping. The decision is taken on rank 0's number
 * and broadcast, so ranks cannot disagree about stopping even if an MPI
 * reduction were not bitwise identical everywhere. */
static double validation_step(trainer *t, int last)
{
    gi_state *st = &t->st;
    const gi_config *c = t->c;
    if (c->train.val_mode == GI_VAL_NONE || !(st->step % c->train.val_every == 0 || last))
        return NAN;
    double val = validate(t);
    MPI_Bcast(&val, 1, MPI_DOUBLE, 0, t->comm);
    if (val < st->best_val) {
        st->best_val = val;
        st->best_step = st->step;
        st->bad_evals = 0;
        memcpy(st->best_params, st->model.params, sizeof(float) * st->model.n_params);
    } else if (++st->bad_evals >= c->train.patience && c->train.patience > 0) {
        st->stopped = 1;
    }
    return val;
}

/* Rank 0: one log row per step, a progress line every log_every steps. */
static void progress(trainer *t, long step, double loss, double val, double gnorm, double elapsed,
                     long start_step, int last)
{
    const gi_state *st = &t->st;
    long steps = t->c->train.steps;
    char vbuf[32] = "", vshow[32] = "   -   ";
    if (!isnan(val)) {
        snprintf(vbuf, sizeof vbuf, "%.9g", val);
        snprintf(vshow, sizeof vshow, "%.5f", val);
    }
    fprintf(t->log, "%ld,%.9g,%s,%.9g,%.9g,%.3f\n", st->step, loss, vbuf, gi_lr_at(&t->opt, step), gnorm, elapsed);
    if (st->step % t->c->train.log_every == 0 || last || st->stopped || st->step == start_step + 1) {
        double per = elapsed / (double)(st->step - start_step);
        long B = t->c->train.batch_size, units = B > 0 && B < t->train.n ? B : t->train.n;
        char eta[32];
        gi_fmt_duration(per * (double)(steps - st->step), eta, sizeof eta);
        printf("step %6ld/%ld  loss %.5f  val %s  %.0f pts/s  ETA %s\n", st->step, steps, loss, vshow,
               (double)units / per, eta);
        fflush(stdout);
    }
}

int gi_train_on(const gi_config *c, gi_targets_fn targets, MPI_Comm comm, const char *out_dir, const char *resume,
                int force, gi_train_result *res, gi_err *err)
{
    trainer t;
    memset(&t, 0, sizeof t);
    t.c = c;
    t.targets = targets;
    t.comm = comm;
    MPI_Comm_rank(comm, &t.rank);
    MPI_Comm_size(comm, &t.size);
    memset(res, 0, sizeof *res);
    char ckpt[GI_PATH_MAX + 32], logpath[GI_PATH_MAX + 32], atlas[GI_PATH_MAX + 32];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.h5", out_dir);
    snprintf(logpath, sizeof logpath, "%s/train_log.csv", out_dir);
    snprintf(atlas, sizeof atlas, "%s/atlas.h5", out_dir);

    /* Set-up: data, model (new or resumed), buffers, log. */
    int rc = setup(&t, resume, force, err);
    /* Samples against the mask and the labels, before any training (geometry.h). */
    gi_geometry geo;
    memset(&geo, 0, sizeof geo);
    if (rc == 0 && t.rank == 0)
        rc = gi_geometry_check(c, &t.data.s, t.data.label ? &t.data.match : NULL, 1, &geo, err);
    if (rc == 0 && t.rank == 0)
        rc = open_log(&t, logpath, resume != NULL, err);
    /* Maps rendered from earlier weights would sit next to the new checkpoint
     * looking current (rundir.h). */
    int removed = 0;
    if (rc == 0 && t.rank == 0 && (removed = gi_rundir_remove_renders(out_dir, 0, err)) < 0)
        rc = -1;
    if (gi_dist_agree(comm, rc, err) != 0 ||
        (!resume && c->model.gene_mode == GI_GENE_CONCAT && c->model.gene_code == GI_CODE_SPECTRAL &&
         gene_order(&t, err) != 0)) {
        if (t.log)
            fclose(t.log);
        trainer_free(&t);
        return -1;
    }
    gi_state *st = &t.st;
    if (t.rank == 0) {
        /* An atlas from earlier weights would sit next to the new checkpoint
         * looking current. */
        if (removed > 0)
            printf("train: removed %d rendered file%s of earlier weights (atlas.h5, nifti/, previews)\n", removed,
                   removed > 1 ? "s" : "");
        printf("train: %d samples (%d train, %d validation), %d genes, %d donors, %ld measured values; "
               "%zu parameters; %d rank%s\n",
               t.data.s.n, t.data.n_train, t.data.n_val, t.data.s.n_genes, t.data.s.n_donors,
               t.train.measured + t.val.measured, st->model.n_params, t.size, t.size > 1 ? "s" : "");
        if (t.data.label)
            gi_match_summary_print(stdout, &t.data.match, "anatomy: ");
        gi_geometry_warn(stdout, &geo, c, "train: ");
        if (resume)
            printf("train: resuming %s at step %ld%s\n", resume, st->step,
                   st->sealed ? "" : " (note: written before content hashes: loaded without checking them)");
        fflush(stdout);
    }
    if (t.rank == 0 && t.data.label) {
        /* The matching is part of what the model learns from: kept beside
         * the checkpoint for the report (report.h). */
        char mp[GI_PATH_MAX + 32];
        snprintf(mp, sizeof mp, "%s/anatomy_match.json", out_dir);
        rc = gi_match_summary_write(mp, &t.data.match, err);
    }
    if (gi_dist_agree(comm, rc, err) != 0) {
        trainer_free(&t);
        return -1;
    }

    /* Over a prior, the untrained (zero) network - the prior alone - is the
     * first candidate of validation stopping. */
    if (rc == 0 && st->step == 0 && c->data.prior != GI_PRIOR_NONE && c->train.val_mode != GI_VAL_NONE) {
        double v0 = validate(&t);
        MPI_Bcast(&v0, 1, MPI_DOUBLE, 0, comm);
        st->best_val = v0;
        st->best_step = 0;
        if (t.rank == 0)
            printf("train: validation MSE of the prior alone %.5f\n", v0);
    }

    /* Compute. */
    long steps = c->train.steps, start_step = st->step;
    double t0 = MPI_Wtime(), loss = NAN;
    int stop_any = 0;
    while (rc == 0 && st->step < steps && !st->stopped) {
        long step = st->step;
        double gnorm;
        /* Has any rank been asked to stop? Agreed during the step, decided at its end. */
        int stop_mine = gi_stop_pending();
        MPI_Request stop_req;
        MPI_Iallreduce(&stop_mine, &stop_any, 1, MPI_INT, MPI_MAX, comm, &stop_req);
        loss = train_step(&t, step, t.batch, &gnorm);
        MPI_Wait(&stop_req, MPI_STATUS_IGNORE);
        if (!isfinite(loss)) {
            /* The loss is the allreduced sum: every rank sees the same value. */
            rc = gi_fail(err, "training diverged at step %ld (loss %g); lower train.lr or set train.clip_norm",
                         step + 1, loss);
            break;
        }
        st->step = step + 1;
        int last = st->step == steps;
        double val = validation_step(&t, last);
        if (t.rank == 0)
            progress(&t, step, loss, val, gnorm, MPI_Wtime() - t0, start_step, last);
        if (c->train.checkpoint_every > 0 && st->step % c->train.checkpoint_every == 0 && !last) {
            if (c->train.val_mode == GI_VAL_NONE)
                memcpy(st->best_params, st->model.params, sizeof(float) * st->model.n_params);
            rc = save(&t, ckpt, err);
        }
        if (rc == 0 && stop_any && st->step < steps && !st->stopped) {
            res->interrupted = 1;
            break;
        }
    }
    if (t.log && fclose(t.log) != 0 && rc == 0)
        rc = gi_fail(err, "cannot write %s: %s", logpath, strerror(errno));
    t.log = NULL;
    rc = gi_dist_agree(comm, rc, err);

    /* Final checkpoint and report. Without validation the last weights are the best. */
    if (rc == 0) {
        if (c->train.val_mode == GI_VAL_NONE)
            memcpy(st->best_params, st->model.params, sizeof(float) * st->model.n_params);
        rc = save(&t, ckpt, err);
    }
    if (rc == 0 && t.rank == 0 && res->interrupted) {
        printf("train: stopped by a signal (SIGTERM/SIGUSR1) at step %ld/%ld; checkpoint %s (continue with "
               "--resume or train.resume: auto)\n", st->step, steps, ckpt);
    } else if (rc == 0 && t.rank == 0) {
        if (st->stopped)
            printf("train: stopped early at step %ld: no validation improvement in %d checks; "
                   "best validation MSE %.5f at step %ld\n", st->step, c->train.patience, st->best_val,
                   st->best_step);
        else if (c->train.val_mode != GI_VAL_NONE)
            printf("train: best validation MSE %.5f at step %ld\n", st->best_val, st->best_step);
        printf("train: checkpoint %s\n", ckpt);
    }
    res->steps = st->step;
    res->loss = loss;
    res->best_val = c->train.val_mode != GI_VAL_NONE ? st->best_val : NAN;
    res->best_step = st->best_step;
    res->stopped_early = st->stopped;
    res->seconds = MPI_Wtime() - t0;
    trainer_free(&t);
    return rc;
}
