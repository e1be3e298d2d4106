/* method.c - a fitted method behind the fit/predict interface (see method.h):
 * it calls its implementation's entry points and knows no implementation by
 * name (the table of kinds is method_table.c), so every method, and the prior
 * composed over them, can stand on it. */
#include "geneinr/method.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/samples.h"

struct gi_method {
    int kind;
    int n_genes;
    const gi_method_impl *impl;
    void *state;
};

void gi_method_opts_from_config(gi_method_opts *o, const gi_config *c)
{
    memset(o, 0, sizeof *o);
    o->idw_k = c->baseline.idw_k;
    o->covariance = c->baseline.covariance;
    o->per_gene = c->baseline.per_gene;
    o->fit_samples = c->baseline.fit_samples;
    o->label_shrink = c->baseline.label_shrink;
    o->seed = c->train.seed;
    o->config = c;
    o->comm = MPI_COMM_SELF;
}

gi_method *gi_method_of(const gi_method_impl *impl, int kind, int n_genes, void *state, gi_err *err)
{
    if (!state)
        return NULL;
    gi_method *m = calloc(1, sizeof *m);
    if (!m) {
        impl->free(state);
        gi_fail(err, "out of memory");
        return NULL;
    }
    m->kind = kind;
    m->n_genes = n_genes;
    m->impl = impl;
    m->state = state;
    return m;
}

gi_method *gi_method_fit_impl(const gi_method_impl *impl, int kind, const gi_method_opts *o, const gi_fit_data *d,
                              gi_err *err)
{
    return gi_method_of(impl, kind, d->n_genes, impl->fit(o, d, err), err);
}

int gi_method_predict(const gi_method *m, int n, const float *mni, const int *label, float *out, gi_err *err)
{
    return m->impl->predict(m->state, n, mni, label, 0, m->n_genes, out, err);
}

void gi_method_predict_bytes(const gi_method *m, size_t *per_gene, size_t *fixed)
{
    *per_gene = *fixed = 0;
    if (m->impl->predict_bytes)
        m->impl->predict_bytes(m->state, per_gene, fixed);
}

int gi_method_predict_genes(const gi_method *m, int n, const float *mni, const int *label, int g0, int ng,
                            float *out, gi_err *err)
{
    if (g0 < 0 || ng < 1 || g0 + ng > m->n_genes)
        return gi_fail(err, "genes %d..%d requested of a method fitted on %d", g0, g0 + ng - 1, m->n_genes);
    return m->impl->predict(m->state, n, mni, label, g0, ng, out, err);
}

int gi_method_has_sd(const gi_method *m)
{
    return m->impl->has_sd && m->impl->has_sd(m->state);
}

int gi_method_sd_width(const gi_method *m)
{
    return gi_method_has_sd(m) && m->impl->sd_smooth && m->impl->sd_width ? m->impl->sd_width(m->state) : 1;
}

int gi_method_sd_smooth(const gi_method *m, int n, const float *mni, float *q, gi_err *err)
{
    if (!gi_method_has_sd(m) || !m->impl->sd_smooth) {
        memset(q, 0, sizeof(float) * (size_t)n * (size_t)gi_method_sd_width(m));
        return 0;
    }
    return m->impl->sd_smooth(m->state, n, mni, q, err);
}

int gi_method_predict_sd(const gi_method *m, int n, const float *mni, const int *label, const float *q, int g0,
                         int ng, float *sd, gi_err *err)
{
    if (!gi_method_has_sd(m))
        return gi_fail(err, "%s gives no uncertainty (an SD needs kriging, regression kriging, or an INR with "
                       "data.prior or train.ensemble > 1)", GI_METHOD_NAMES[m->kind]);
    if (g0 < 0 || ng < 1 || g0 + ng > m->n_genes)
        return gi_fail(err, "genes %d..%d requested of a method fitted on %d", g0, g0 + ng - 1, m->n_genes);
    return m->impl->predict_sd(m->state, n, mni, label, q, g0, ng, sd, err);
}

int gi_method_noise_sd(const gi_method *m, float *noise, gi_err *err)
{
    if (!gi_method_has_sd(m))
        return gi_fail(err, "%s gives no uncertainty", GI_METHOD_NAMES[m->kind]);
    return m->impl->noise_sd(m->state, noise, err);
}

int gi_method_has_smooth(const gi_method *m)
{
    return m->impl->has_smooth && m->impl->has_smooth(m->state);
}

int gi_method_predict_smooth(const gi_method *m, int n, const float *mni, int g0, int ng, float *out, gi_err *err)
{
    if (!gi_method_has_smooth(m))
        return gi_fail(err, "%s has no smooth part to compute apart", GI_METHOD_NAMES[m->kind]);
    if (g0 < 0 || ng < 1 || g0 + ng > m->n_genes)
        return gi_fail(err, "genes %d..%d requested of a method fitted on %d", g0, g0 + ng - 1, m->n_genes);
    return m->impl->smooth(m->state, n, mni, g0, ng, out, err);
}

int gi_method_predict_rest(const gi_method *m, int n, const float *mni, const int *label, int g0, int ng, float *out,
                           gi_err *err)
{
    if (!gi_method_has_smooth(m))
        return gi_fail(err, "%s has no smooth part to leave out", GI_METHOD_NAMES[m->kind]);
    if (g0 < 0 || ng < 1 || g0 + ng > m->n_genes)
        return gi_fail(err, "genes %d..%d requested of a method fitted on %d", g0, g0 + ng - 1, m->n_genes);
    return m->impl->rest(m->state, n, mni, label, g0, ng, out, err);
}

int gi_method_predict_with_smooth(const gi_method *m, int n, const float *mni, const int *label, const float *smooth,
                                  int g0, int ng, float *out, gi_err *err)
{
    if (!smooth || !gi_method_has_smooth(m))
        return gi_method_predict_genes(m, n, mni, label, g0, ng, out, err);
    if (g0 < 0 || ng < 1 || g0 + ng > m->n_genes)
        return gi_fail(err, "genes %d..%d requested of a method fitted on %d", g0, g0 + ng - 1, m->n_genes);
    if (gi_method_predict_rest(m, n, mni, label, g0, ng, out, err) != 0)
        return -1;
    for (size_t q = 0; q < (size_t)n * (size_t)ng; q++)
        out[q] += smooth[q];
    return 0;
}

int gi_method_n_genes(const gi_method *m) { return m->n_genes; }
int gi_method_kind(const gi_method *m) { return m->kind; }
const void *gi_method_state(const gi_method *m) { return m->state; }

void gi_method_free(gi_method *m)
{
    if (!m)
        return;
    m->impl->free(m->state);
    free(m);
}

int gi_fit_data_write_csv(const gi_fit_data *d, const char *path, gi_err *err)
{
    gi_samples s;   /* borrows d's arrays and names */
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
    s.well_ids = malloc(sizeof(char *) * (size_t)(d->n ? d->n : 1));
    char *ids = malloc(16 * (size_t)(d->n ? d->n : 1));
    int rc = s.well_ids && ids ? 0 : gi_fail(err, "out of memory");
    for (int i = 0; rc == 0 && i < d->n; i++) {
        s.well_ids[i] = ids + 16 * (size_t)i;
        snprintf(s.well_ids[i], 16, "s%d", i);
    }
    if (rc == 0)
        rc = gi_samples_write_csv(&s, path, err);
    free(s.well_ids);
    free(ids);
    return rc;
}
