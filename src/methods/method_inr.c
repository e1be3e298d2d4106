/* method_inr.c - the INR behind the fit/predict interface (method.h).
 *
 * Fit trains the configured model on exactly the given samples: they are
 * written as a sample table into the work folder, the run config is pointed
 * at it, and gi_train runs as usual (collective over o->comm). Early
 * stopping keeps the config's validation but always carves it from these
 * samples (a `donor` validation becomes `fraction`, since the held-out donor
 * of an evaluation may be the config's validation donor), so data the caller
 * holds back never steers training. Predict loads the best-validation
 * weights and evaluates the donor average, de-standardised into the units of
 * the given targets.
 *
 * With train.ensemble = K the fit trains K members, member k with seed
 * train.seed + k (its own validation split, initialisation and batches), the
 * first in the work folder and member k >= 1 in WORK/ensemble/k; predict is the
 * mean of the members' maps (network + its prior). Under data.prior_refit
 * every member's prediction prior is the same fit on all samples, so it is
 * fitted and evaluated once.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/checkpoint.h"
#include "geneinr/dataset.h"
#include "geneinr/dist.h"
#include "geneinr/ensemble.h"
#include "geneinr/method.h"
#include "geneinr/model.h"
#include "geneinr/prior.h"
#include "geneinr/samples.h"
#include "geneinr/train.h"

#define INR_BATCH 1024

/* One trained network and the prior it is added to. */
typedef struct inr_member {
    gi_state st;
    gi_workspace *ws;
    gi_dataset data;         /* with data.prior: the table and split the prior is fitted on ... */
    gi_prior_fit prior;          /* ... the same prior the training subtracted */
    int have_prior;          /* prior built here (0 also when borrowing member 0's refitted prior) */
} inr_member;

typedef struct inr_state {
    int k;                   /* members */
    int shared_prior;        /* data.prior_refit: one prior for all members (member 0's) */
    inr_member **mem;
} inr_state;

static void member_free(inr_member *s)
{
    if (!s)
        return;
    gi_state_free(&s->st);
    gi_workspace_free(s->ws);
    if (s->have_prior) {
        gi_prior_free(&s->prior);
        gi_dataset_free(&s->data);
    }
    free(s);
}

static void inr_free(void *p)
{
    inr_state *s = p;
    if (!s)
        return;
    for (int k = 0; k < s->k && s->mem; k++)
        member_free(s->mem[k]);
    free(s->mem);
    free(s);
}

/* The given samples as a table (borrowed names and annotations; values copied). */
static int write_table(const gi_fit_data *d, const char *path, gi_err *err)
{
    gi_samples s;
    memset(&s, 0, sizeof s);
    s.n = d->n;
    s.n_genes = d->n_genes;
    s.n_donors = d->n_donors;
    s.donor = (int *)d->donor;
    s.donor_names = (char **)d->donor_names;
    s.mni = (float *)d->mni;
    s.gene_names = (char **)d->gene_names;
    s.values = (float *)d->y;
    s.n_annot = d->n_annot;
    s.annot_names = (char **)d->annot_names;
    s.annot = (char **)d->annot;
    s.well_ids = malloc(sizeof(char *) * (size_t)d->n);
    char *ids = malloc(16 * (size_t)d->n);
    if (!s.well_ids || !ids) {
        free(s.well_ids);
        free(ids);
        return gi_fail(err, "out of memory");
    }
    for (int i = 0; i < d->n; i++) {
        s.well_ids[i] = ids + 16 * (size_t)i;
        snprintf(s.well_ids[i], 16, "s%d", i);
    }
    int rc = gi_samples_write_csv(&s, path, err);
    free(s.well_ids);
    free(ids);
    return rc;
}

/* The best-validation weights of a checkpoint, plus the prior its training
 * subtracted (rebuilt from c: the prior is a deterministic function of the
 * table and the split, so the same config reproduces it exactly; the
 * normalisation is compared with the checkpoint's to make sure). With
 * data.prior_refit the prior is instead refitted on every sample of the
 * table (prior.h, GI_PRIOR_FOR_PREDICT). */
static inr_member *member_load(const char *ckpt, const gi_config *c, int build_prior, gi_err *err)
{
    inr_member *s = calloc(1, sizeof *s);
    if (!s || gi_checkpoint_load(&s->st, ckpt, err) != 0) {
        if (!s)
            gi_fail(err, "out of memory");
        free(s);
        return NULL;
    }
    gi_model *m = &s->st.model;
    memcpy(m->params, s->st.best_params, sizeof(float) * m->n_params);
    if (c->data.prior != GI_PRIOR_NONE && build_prior) {
        if (gi_dataset_build(&s->data, c, err) != 0) {
            member_free(s);
            return NULL;
        }
        s->have_prior = 1;
        if (gi_prior_apply(&s->prior, &s->data, c, GI_PRIOR_FOR_PREDICT, err) != 0) {
            member_free(s);
            return NULL;
        }
        int same = s->data.s.n_genes == s->st.n_genes;
        for (int g = 0; same && g < s->st.n_genes; g++)
            same = s->data.gene_mean[g] == s->st.gene_mean[g] && s->data.gene_std[g] == s->st.gene_std[g];
        if (!same) {
            member_free(s);
            gi_fail(err, "%s: data.samples or the validation split differ from the training's, so the data.prior "
                    "it was trained over cannot be rebuilt; use the config it was trained with", ckpt);
            return NULL;
        }
    }
    s->ws = gi_workspace_new_inference(m, INR_BATCH);   /* predict never runs backward */
    if (!s->ws) {
        member_free(s);
        gi_fail(err, "out of memory");
        return NULL;
    }
    return s;
}

/* The ensemble of c (train.ensemble members) whose first member's checkpoint is ckpt. */
static inr_state *inr_load(const char *ckpt, const gi_config *c, gi_err *err)
{
    int K = gi_ensemble_size(c);
    inr_state *s = calloc(1, sizeof *s);
    if (s)
        s->mem = calloc((size_t)K, sizeof *s->mem);
    if (!s || !s->mem) {
        free(s);
        gi_fail(err, "out of memory");
        return NULL;
    }
    s->k = K;
    s->shared_prior = c->data.prior != GI_PRIOR_NONE && c->data.prior_refit;
    char dir[GI_PATH_MAX], kdir[GI_PATH_MAX + 32], kckpt[GI_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s", ckpt);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    for (int k = 0; k < K; k++) {
        gi_config ck;
        gi_ensemble_member(c, dir, k, &ck, kdir, sizeof kdir);
        if (k == 0)
            snprintf(kckpt, sizeof kckpt, "%s", ckpt);
        else
            snprintf(kckpt, sizeof kckpt, "%s/checkpoint.h5", kdir);
        s->mem[k] = member_load(kckpt, &ck, k == 0 || !s->shared_prior, err);
        if (!s->mem[k]) {
            if (k > 0)
                gi_fail_prefix(err, "train.ensemble %d: member %d", K, k + 1);
            inr_free(s);
            return NULL;
        }
        const gi_state *a = &s->mem[0]->st, *b = &s->mem[k]->st;
        int same = a->n_genes == b->n_genes && a->n_labels == b->n_labels &&
                   a->model.n_params == b->model.n_params && b->seed == ck.train.seed;
        for (int g = 0; same && g < a->n_genes; g++)
            same = strcmp(a->genes[g], b->genes[g]) == 0;
        if (!same) {
            gi_fail(err, "%s: ensemble member %d does not belong with %s (other data, shape or seed); "
                    "train the ensemble again", kckpt, k + 1, ckpt);
            inr_free(s);
            return NULL;
        }
    }
    return s;
}

static void *inr_fit(const gi_method_opts *o, const gi_fit_data *d, gi_err *err)
{
    if (!o->config || !o->work_dir) {
        gi_fail(err, "the INR method needs a config and a work folder");
        return NULL;
    }
    int rank;
    MPI_Comm_rank(o->comm, &rank);
    gi_config c = *o->config;
    snprintf(c.data.samples, sizeof c.data.samples, "%s/train_samples.csv", o->work_dir);
    snprintf(c.run.out, sizeof c.run.out, "%s", o->work_dir);
    if (c.train.val_mode == GI_VAL_DONOR)
        c.train.val_mode = GI_VAL_FRACTION;
    int rc = rank == 0 ? write_table(d, c.data.samples, err) : 0;
    if (gi_dist_agree(o->comm, rc, err) != 0)
        return NULL;
    gi_train_result res;
    if (gi_ensemble_train(&c, o->comm, o->work_dir, 0, 0, 0, &res, err) != 0)
        return NULL;
    char ckpt[GI_PATH_MAX + 32];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.h5", o->work_dir);
    return inr_load(ckpt, &c, err);
}

/* Member m's map for one batch in table units, (network + prior) * gene_std +
 * gene_mean with its own standardisation (the mean and SD of its training
 * part, which depend on its validation split), stored into out (first member)
 * or added into acc. With a shared prior, shared[] holds that prior in table
 * units (set by member 0) and member m adds its de-standardised network. */
typedef struct batch_io {
    int nb, g0, ng;
    const float *mni, *xyz;
    const int *label;
    int *donor, *gene;
    float *pr, *o;           /* scratch: prior values [nb][ng], network outputs */
    float *shared;           /* [nb][ng] the shared prior in table units, or NULL */
} batch_io;

static int member_map(const inr_member *m, batch_io *io, float *val, gi_err *err)
{
    const gi_model *md = &m->st.model;
    int G = m->st.n_genes, concat = md->spec.gene_mode == GI_GENE_CONCAT, nb = io->nb, ng = io->ng, g0 = io->g0;
    int borrowed = io->shared && !m->have_prior;
    float *pr = io->pr, *o = io->o;
    if (m->have_prior) {
        if (gi_prior_predict_genes(&m->prior, nb, io->mni, io->label, g0, ng, pr, err) != 0)
            return -1;
    } else if (!borrowed) {
        memset(pr, 0, sizeof(float) * (size_t)nb * ng);   /* no prior: network alone */
    }
    gi_batch b = {nb, io->xyz, md->spec.donor_dim ? io->donor : NULL, m->st.n_labels ? io->label : NULL, NULL};
    /* The workspace is scratch: predict stays logically const. */
    gi_workspace *ws = m->ws;
    if (!concat) {
        /* A group of genes: the trunk, then only its rows of the output layer. */
        if (ng == G)
            gi_model_forward(md, &b, ws, o);
        else
            gi_model_forward_outputs(md, &b, ws, g0, ng, o);
    }
    for (int j = 0; j < ng; j++) {
        int g = g0 + j;
        if (concat) {
            b.gene = io->gene;
            for (int k = 0; k < nb; k++)
                io->gene[k] = g;
            gi_model_forward(md, &b, ws, o);
        }
        float sd = m->st.gene_std[g], mean = m->st.gene_mean[g];
        for (int k = 0; k < nb; k++) {
            size_t q = (size_t)k * ng + j;
            float net = concat ? o[k] : o[q];
            if (borrowed) {
                val[q] = net * sd + io->shared[q];
            } else {
                val[q] = (net + pr[q]) * sd + mean;
                if (io->shared)
                    io->shared[q] = pr[q] * sd + mean;
            }
        }
    }
    return 0;
}

static int inr_predict(const void *p, int n, const float *mni, const int *label, int g0, int ng, float *out,
                       gi_err *err)
{
    const inr_state *s = p;
    const gi_state *st = &s->mem[0]->st;
    int K = s->k;
    if (st->n_labels && !label)
        return gi_fail(err, "the INR was trained with an anatomy: predicting needs a label per point");
    int concat = st->model.spec.gene_mode == GI_GENE_CONCAT, n_out = st->model.n_out;
    size_t cells = (size_t)INR_BATCH * ng;
    batch_io io = {.g0 = g0, .ng = ng};
    float *xyz = malloc(sizeof(float) * 3 * INR_BATCH), *val = K > 1 ? malloc(sizeof(float) * cells) : NULL;
    double *acc = K > 1 ? malloc(sizeof(double) * cells) : NULL;
    io.o = malloc(sizeof(float) * INR_BATCH * (size_t)(concat ? n_out : ng));
    io.pr = malloc(sizeof(float) * cells);
    io.shared = s->shared_prior && K > 1 ? malloc(sizeof(float) * cells) : NULL;
    io.donor = malloc(sizeof(int) * INR_BATCH);
    io.gene = malloc(sizeof(int) * INR_BATCH);
    int rc = !xyz || !io.o || !io.pr || !io.donor || !io.gene || (K > 1 && (!val || !acc)) ||
             (s->shared_prior && K > 1 && !io.shared) ? gi_fail(err, "out of memory") : 0;
    for (int k = 0; rc == 0 && k < INR_BATCH; k++)
        io.donor[k] = -1;
    io.xyz = xyz;
    for (int q0 = 0; rc == 0 && q0 < n; q0 += INR_BATCH) {
        int nb = n - q0 < INR_BATCH ? n - q0 : INR_BATCH;
        io.nb = nb;
        io.mni = mni + 3 * (size_t)q0;
        io.label = label ? label + q0 : NULL;
        for (int k = 0; k < nb; k++)
            gi_mni_normalise(io.mni[3 * k], io.mni[3 * k + 1], io.mni[3 * k + 2], xyz + 3 * k);
        float *dst = out + (size_t)q0 * ng;
        if (K == 1) {
            rc = member_map(s->mem[0], &io, dst, err);
            continue;
        }
        /* Members in a fixed order, summed in double: the same mean for any rank count. */
        for (int k = 0; rc == 0 && k < K; k++) {
            rc = member_map(s->mem[k], &io, val, err);
            for (size_t q = 0; rc == 0 && q < (size_t)nb * ng; q++)
                acc[q] = (k ? acc[q] : 0) + val[q];
        }
        for (size_t q = 0; rc == 0 && q < (size_t)nb * ng; q++)
            dst[q] = (float)(acc[q] / K);
    }
    free(xyz); free(val); free(acc); free(io.o); free(io.pr); free(io.shared); free(io.donor); free(io.gene);
    return rc;
}

static size_t inr_bytes_per_gene(void)
{
    /* output rows, prior values, shared prior, member map and member sums of a batch */
    return (4 * sizeof(float) + sizeof(double)) * INR_BATCH;
}

const gi_method_impl gi_inr_impl = {inr_fit, inr_predict, inr_free, inr_bytes_per_gene};

gi_method *gi_method_inr_load(const char *checkpoint, const gi_config *c, int n_genes, gi_err *err)
{
    return gi_method_of(&gi_inr_impl, GI_METHOD_INR, n_genes, inr_load(checkpoint, c, err), err);
}
