/* method.c - the fit/predict interface's dispatch table (see method.h). */
#include "geneinr/method.h"

#include "geneinr/checkpoint.h"

#include <stdlib.h>
#include <string.h>

static const gi_method_impl *const IMPLS[GI_METHOD_COUNT] = {
#define GI_METHOD_IMPL(id, name, anat, impl) [GI_METHOD_##id] = &impl,
    GI_METHOD_LIST(GI_METHOD_IMPL)
#undef GI_METHOD_IMPL
};

struct gi_method {
    int kind;
    int n_genes;
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

/* method_inr.c */
void gi_inr_predict_bytes(const void *state, size_t *per_gene, size_t *fixed);
void *gi_inr_load_state(const char *checkpoint, const gi_config *c, const char *donor, int batch, gi_err *err);
const gi_state *gi_inr_checkpoint(const void *state);

gi_method *gi_method_fit(int kind, const gi_method_opts *o, const gi_fit_data *d, gi_err *err)
{
    if (kind < 0 || kind >= GI_METHOD_COUNT) {
        gi_fail(err, "unknown interpolation method %d", kind);
        return NULL;
    }
    gi_method *m = calloc(1, sizeof *m);
    if (!m) {
        gi_fail(err, "out of memory");
        return NULL;
    }
    m->kind = kind;
    m->n_genes = d->n_genes;
    m->state = IMPLS[kind]->fit(o, d, err);
    if (!m->state) {
        free(m);
        return NULL;
    }
    return m;
}

int gi_method_predict(const gi_method *m, int n, const float *mni, const int *label, float *out, gi_err *err)
{
    return IMPLS[m->kind]->predict(m->state, n, mni, label, 0, m->n_genes, out, err);
}

void gi_method_predict_bytes(const gi_method *m, size_t *per_gene, size_t *fixed)
{
    *per_gene = *fixed = 0;
    if (m->kind == GI_METHOD_INR)
        gi_inr_predict_bytes(m->state, per_gene, fixed);
}

int gi_method_predict_genes(const gi_method *m, int n, const float *mni, const int *label, int g0, int ng,
                            float *out, gi_err *err)
{
    if (g0 < 0 || ng < 1 || g0 + ng > m->n_genes)
        return gi_fail(err, "genes %d..%d requested of a method fitted on %d", g0, g0 + ng - 1, m->n_genes);
    return IMPLS[m->kind]->predict(m->state, n, mni, label, g0, ng, out, err);
}

gi_method *gi_method_inr_load(const char *checkpoint, const gi_config *c, const char *donor, int batch, gi_err *err)
{
    gi_method *m = calloc(1, sizeof *m);
    if (!m) {
        gi_fail(err, "out of memory");
        return NULL;
    }
    m->kind = GI_METHOD_INR;
    m->state = gi_inr_load_state(checkpoint, c, donor, batch, err);
    if (!m->state) {
        free(m);
        return NULL;
    }
    m->n_genes = gi_inr_checkpoint(m->state)->n_genes;
    return m;
}

int gi_method_n_genes(const gi_method *m) { return m->n_genes; }
int gi_method_kind(const gi_method *m) { return m->kind; }
const gi_state *gi_method_inr_checkpoint(const gi_method *m)
{
    return m->kind == GI_METHOD_INR ? gi_inr_checkpoint(m->state) : NULL;
}
const void *gi_method_state(const gi_method *m) { return m->state; }

void gi_method_free(gi_method *m)
{
    if (!m)
        return;
    IMPLS[m->kind]->free(m->state);
    free(m);
}
