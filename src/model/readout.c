/* readout.c - trunk features and new readout rows (see readout.h). */
#include "geneinr/readout.h"

#include <stdlib.h>
#include <string.h>

#include "geneinr/config.h"

int gi_readout_features(const gi_model *m, int n, const float *xyz, const int *donor, const int *label, float *h,
                        gi_err *err)
{
    if (m->spec.gene_mode != GI_GENE_FACTORIZED)
        return gi_fail(err, "trunk features exist in factorized models only (model.gene_mode: factorized)");
    int B = n < GI_READOUT_BLOCK ? n : GI_READOUT_BLOCK, W = m->spec.width;
    if (n <= 0)
        return 0;
    gi_workspace *ws = gi_workspace_new_inference(m, B);
    float *one = malloc(sizeof(float) * (size_t)B);
    if (!ws || !one) {
        gi_workspace_free(ws);
        free(one);
        return gi_fail(err, "out of memory for the trunk features of %d points", B);
    }
    for (int q0 = 0; q0 < n; q0 += B) {
        int nb = n - q0 < B ? n - q0 : B;
        gi_batch b = {nb, xyz + 3 * (size_t)q0, donor && m->spec.donor_dim ? donor + q0 : NULL,
                      label && m->spec.n_labels ? label + q0 : NULL, NULL};
        /* One output row only: the trunk is what is wanted. */
        gi_model_forward_outputs(m, &b, ws, 0, 1, one);
        memcpy(h + (size_t)q0 * W, gi_workspace_layer_input(ws, m->n_layers - 1), sizeof(float) * (size_t)nb * W);
    }
    gi_workspace_free(ws);
    free(one);
    return 0;
}

/* dst (layout of nm) from src (layout of om), the k new rows from w and b
 * (NULL = zeros): the hidden layers are a common prefix, the output layer's
 * rows and biases gain k entries, the embeddings after them move up. */
static void grow_buffer(const gi_model *om, const gi_model *nm, const float *src, float *dst, const float *w,
                        const float *b, int k)
{
    const gi_layer *lo = &om->layers[om->n_layers - 1], *ln = &nm->layers[nm->n_layers - 1];
    size_t W = (size_t)lo->in, G = (size_t)lo->out;
    memcpy(dst, src, sizeof(float) * lo->w_off);
    memcpy(dst + ln->w_off, src + lo->w_off, sizeof(float) * G * W);
    if (w)
        memcpy(dst + ln->w_off + G * W, w, sizeof(float) * (size_t)k * W);
    else
        memset(dst + ln->w_off + G * W, 0, sizeof(float) * (size_t)k * W);
    memcpy(dst + ln->b_off, src + lo->b_off, sizeof(float) * G);
    if (b)
        memcpy(dst + ln->b_off + G, b, sizeof(float) * (size_t)k);
    else
        memset(dst + ln->b_off + G, 0, sizeof(float) * (size_t)k);
    size_t tail = om->n_params - (lo->b_off + G);
    memcpy(dst + ln->b_off + G + k, src + lo->b_off + G, sizeof(float) * tail);
}

int gi_state_add_genes(gi_state *st, int k, char *const *names, const float *mean, const float *std, const float *w,
                       const float *b, gi_err *err)
{
    const gi_model *om = &st->model;
    if (om->spec.gene_mode != GI_GENE_FACTORIZED)
        return gi_fail(err, "new readout rows need a factorized model (model.gene_mode: factorized)");
    if (k < 1)
        return gi_fail(err, "no genes to add");
    int G = st->n_genes, NG = G + k;
    gi_model_spec spec = om->spec;
    spec.n_genes = NG;
    gi_model nm;
    if (gi_model_alloc(&nm, &spec, err) != 0)
        return -1;
    float *best = malloc(sizeof(float) * nm.n_params), *am = calloc(nm.n_params, sizeof(float)),
          *av = calloc(nm.n_params, sizeof(float));
    float *mu = malloc(sizeof(float) * (size_t)NG), *sd = malloc(sizeof(float) * (size_t)NG),
          *pos = calloc((size_t)NG, sizeof(float));
    char **gn = calloc((size_t)NG + 1, sizeof(char *));
    int ok = best && am && av && mu && sd && pos && gn;
    for (int g = 0; ok && g < NG; g++)
        ok = (gn[g] = strdup(g < G ? st->genes[g] : names[g - G])) != NULL;
    if (!ok) {
        gi_model_free(&nm);
        free(best); free(am); free(av); free(mu); free(sd); free(pos);
        for (int g = 0; gn && g < NG; g++)
            free(gn[g]);
        free(gn);
        return gi_fail(err, "out of memory growing the model to %d genes", NG);
    }
    grow_buffer(om, &nm, om->params, nm.params, w, b, k);
    grow_buffer(om, &nm, st->best_params, best, w, b, k);
    if (st->adam.m && st->adam.v) {
        grow_buffer(om, &nm, st->adam.m, am, NULL, NULL, k);
        grow_buffer(om, &nm, st->adam.v, av, NULL, NULL, k);
    }
    memcpy(nm.fixed, om->fixed, sizeof(float) * om->n_fixed);   /* Fourier B: no gene part in factorized mode */
    memcpy(nm.donor_in_average, om->donor_in_average, om->spec.n_donors > 0 ? (size_t)om->spec.n_donors : 1);
    memcpy(mu, st->gene_mean, sizeof(float) * (size_t)G);
    memcpy(sd, st->gene_std, sizeof(float) * (size_t)G);
    memcpy(pos, st->gene_position, sizeof(float) * (size_t)G);
    memcpy(mu + G, mean, sizeof(float) * (size_t)k);
    memcpy(sd + G, std, sizeof(float) * (size_t)k);
    /* Swap in: nothing can fail from here. */
    gi_model_free(&st->model);
    st->model = nm;
    free(st->best_params);
    st->best_params = best;
    free(st->adam.m);
    free(st->adam.v);
    st->adam.m = am;
    st->adam.v = av;
    st->adam.n = nm.n_params;
    for (int g = 0; g < G; g++)
        free(st->genes[g]);
    free(st->genes);
    st->genes = gn;
    free(st->gene_mean);
    free(st->gene_std);
    free(st->gene_position);
    st->gene_mean = mu;
    st->gene_std = sd;
    st->gene_position = pos;
    st->n_genes = NG;
    return 0;
}
