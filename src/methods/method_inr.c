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
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/checkpoint.h"
#include "geneinr/dataset.h"
#include "geneinr/dist.h"
#include "geneinr/method.h"
#include "geneinr/model.h"
#include "geneinr/samples.h"
#include "geneinr/train.h"

#define INR_BATCH 1024

typedef struct inr_state {
    gi_state st;
    gi_workspace *ws;
    gi_dataset prior;        /* with data.prior: the same prior the training subtracted */
    int have_prior;
} inr_state;

static void inr_free(void *p)
{
    inr_state *s = p;
    if (!s)
        return;
    gi_state_free(&s->st);
    gi_workspace_free(s->ws);
    if (s->have_prior)
        gi_dataset_free(&s->prior);
    free(s);
}

/* The given samples as a table (borrowed names; values copied). */
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
 * table (dataset.h, GI_DATASET_PREDICT). */
static inr_state *inr_load(const char *ckpt, const gi_config *c, gi_err *err)
{
    inr_state *s = calloc(1, sizeof *s);
    if (!s || gi_checkpoint_load(&s->st, ckpt, err) != 0) {
        if (!s)
            gi_fail(err, "out of memory");
        free(s);
        return NULL;
    }
    gi_model *m = &s->st.model;
    memcpy(m->params, s->st.best_params, sizeof(float) * m->n_params);
    if (c->data.prior != GI_PRIOR_NONE) {
        if (gi_dataset_build_for(&s->prior, c, GI_DATASET_PREDICT, err) != 0) {
            inr_free(s);
            return NULL;
        }
        s->have_prior = 1;
        int same = s->prior.s.n_genes == s->st.n_genes;
        for (int g = 0; same && g < s->st.n_genes; g++)
            same = s->prior.gene_mean[g] == s->st.gene_mean[g] && s->prior.gene_std[g] == s->st.gene_std[g];
        if (!same) {
            inr_free(s);
            gi_fail(err, "%s: data.samples or the validation split differ from the training's, so the data.prior "
                    "it was trained over cannot be rebuilt; use the config it was trained with", ckpt);
            return NULL;
        }
    }
    s->ws = gi_workspace_new_inference(m, INR_BATCH);   /* predict never runs backward */
    if (!s->ws) {
        inr_free(s);
        gi_fail(err, "out of memory");
        return NULL;
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
    if (gi_train(&c, o->comm, o->work_dir, NULL, &res, err) != 0)
        return NULL;
    char ckpt[GI_PATH_MAX + 32];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.h5", o->work_dir);
    return inr_load(ckpt, &c, err);
}

static int inr_predict(const void *p, int n, const float *mni, const int *label, int g0, int ng, float *out,
                       gi_err *err)
{
    const inr_state *s = p;
    const gi_model *m = &s->st.model;
    int G = s->st.n_genes, n_out = m->n_out, concat = m->spec.gene_mode == GI_GENE_CONCAT;
    if (s->st.n_labels && !label)
        return gi_fail(err, "the INR was trained with an anatomy: predicting needs a label per point");
    float *xyz = malloc(sizeof(float) * 3 * INR_BATCH), *o = malloc(sizeof(float) * INR_BATCH * (size_t)(concat ? n_out : ng));
    float *pr = malloc(sizeof(float) * INR_BATCH * (size_t)ng);
    int *donor = malloc(sizeof(int) * INR_BATCH), *gene = malloc(sizeof(int) * INR_BATCH);
    if (!xyz || !o || !donor || !gene || !pr) {
        free(xyz); free(o); free(donor); free(gene); free(pr);
        return gi_fail(err, "out of memory");
    }
    for (int k = 0; k < INR_BATCH; k++)
        donor[k] = -1;
    for (int q0 = 0; q0 < n; q0 += INR_BATCH) {
        int nb = n - q0 < INR_BATCH ? n - q0 : INR_BATCH;
        for (int k = 0; k < nb; k++) {
            const float *q = mni + 3 * (size_t)(q0 + k);
            gi_mni_normalise(q[0], q[1], q[2], xyz + 3 * k);
        }
        gi_batch b = {nb, xyz, m->spec.donor_dim ? donor : NULL, s->st.n_labels ? label + q0 : NULL, NULL};
        if (s->have_prior
            ? gi_dataset_prior_predict_genes(&s->prior, nb, mni + 3 * (size_t)q0, label ? label + q0 : NULL, g0, ng,
                                             pr, err) != 0
            : (memset(pr, 0, sizeof(float) * (size_t)nb * ng), 0)) {
            free(xyz); free(o); free(donor); free(gene); free(pr);
            return -1;
        }
        /* The workspace is scratch: predict stays logically const. */
        gi_workspace *ws = s->ws;
        if (!concat) {
            /* A group of genes: the trunk, then only its rows of the output layer. */
            if (ng == G)
                gi_model_forward(m, &b, ws, o);
            else
                gi_model_forward_outputs(m, &b, ws, g0, ng, o);
            for (int k = 0; k < nb; k++)
                for (int j = 0; j < ng; j++) {
                    int g = g0 + j;
                    out[(size_t)(q0 + k) * ng + j] =
                        (o[(size_t)k * ng + j] + pr[(size_t)k * ng + j]) * s->st.gene_std[g] + s->st.gene_mean[g];
                }
        } else {
            b.gene = gene;
            for (int j = 0; j < ng; j++) {
                int g = g0 + j;
                for (int k = 0; k < nb; k++)
                    gene[k] = g;
                gi_model_forward(m, &b, ws, o);
                for (int k = 0; k < nb; k++)
                    out[(size_t)(q0 + k) * ng + j] = (o[k] + pr[(size_t)k * ng + j]) * s->st.gene_std[g] + s->st.gene_mean[g];
            }
        }
    }
    free(xyz); free(o); free(donor); free(gene); free(pr);
    return 0;
}

const gi_method_impl gi_inr_impl = {inr_fit, inr_predict, inr_free};

size_t gi_inr_predict_bytes_per_gene(void)
{
    return 2 * sizeof(float) * INR_BATCH; /* output rows + prior values of a batch */
}

void *gi_inr_load_state(const char *checkpoint, const gi_config *c, gi_err *err)
{
    return inr_load(checkpoint, c, err);
}
