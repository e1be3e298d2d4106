/* idw.c - the nearest-sample map and abagen's inverse-distance weighting.
 *
 * idw follows abagen's get_interpolated_map (docs: AHBA-PIPELINE.md section
 * 3): each point takes the k nearest samples (Euclidean, MNI mm) that
 * measured the gene, weights w = 1/d, value = sum w y / sum w; when any of
 * them is at distance 0, only the zero-distance samples count, equally.
 * nearest is the same with k = 1. Samples that did not measure a gene are
 * skipped for that gene, so each gene uses its own k nearest measurements.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/knn.h"
#include "geneinr/method.h"

typedef struct idw_state {
    int n, G, k;
    float *mni;              /* [n][3] */
    float *y;                /* [n][G] */
    gi_knn tree;
} idw_state;

static void idw_free(void *p)
{
    idw_state *s = p;
    if (!s)
        return;
    gi_knn_free(&s->tree);
    free(s->mni);
    free(s->y);
    free(s);
}

static void *idw_fit_k(const gi_fit_data *d, int k, gi_err *err)
{
    if (d->n < 1) {
        gi_fail(err, "no training samples to interpolate");
        return NULL;
    }
    idw_state *s = calloc(1, sizeof *s);
    if (!s) {
        gi_fail(err, "out of memory");
        return NULL;
    }
    s->n = d->n;
    s->G = d->n_genes;
    s->k = k;
    s->mni = malloc(sizeof(float) * 3 * (size_t)d->n);
    s->y = malloc(sizeof(float) * (size_t)d->n * d->n_genes);
    if (!s->mni || !s->y || (memcpy(s->mni, d->mni, sizeof(float) * 3 * (size_t)d->n),
                             gi_knn_build(&s->tree, s->mni, d->n)) != 0) {
        idw_free(s);
        gi_fail(err, "out of memory for %d samples", d->n);
        return NULL;
    }
    memcpy(s->y, d->y, sizeof(float) * (size_t)d->n * d->n_genes);
    for (int g = 0; g < s->G; g++) {
        int any = 0;
        for (int i = 0; i < s->n && !any; i++)
            any = !isnan(s->y[(size_t)i * s->G + g]);
        if (!any) {
            idw_free(s);
            gi_fail(err, "gene %d has no measured training sample", g + 1);
            return NULL;
        }
    }
    return s;
}

static void *idw_fit(const gi_method_opts *o, const gi_fit_data *d, gi_err *err)
{
    return idw_fit_k(d, o->idw_k, err);
}

static void *nearest_fit(const gi_method_opts *o, const gi_fit_data *d, gi_err *err)
{
    (void)o;
    return idw_fit_k(d, 1, err);
}

static int idw_predict(const void *p, int n, const float *mni, const int *label, int g0, int ng, float *out,
                       gi_err *err)
{
    (void)label;
    const idw_state *s = p;
    int G = s->G, k = s->k, cap = k + 16 < s->n ? k + 16 : s->n;
    int *idx = malloc(sizeof(int) * (size_t)s->n);
    double *dist = malloc(sizeof(double) * (size_t)s->n);
    if (!idx || !dist) {
        free(idx);
        free(dist);
        return gi_fail(err, "out of memory");
    }
    for (int q = 0; q < n; q++) {
        double pt[3] = {mni[3 * q], mni[3 * q + 1], mni[3 * q + 2]};
        int want = cap, m = gi_knn_query(&s->tree, pt, want, idx, dist);
        for (int g = g0; g < g0 + ng; g++) {
            /* The first k measured samples in distance order; widen the
             * search when too many of the nearest did not measure g. */
            int used = 0, j = 0;
            double sw = 0, swy = 0, sz = 0;
            int nz = 0;
            for (;;) {
                for (; j < m && used < k; j++) {
                    float y = s->y[(size_t)idx[j] * G + g];
                    if (isnan(y))
                        continue;
                    used++;
                    if (dist[j] == 0) {
                        nz++;
                        sz += y;
                    } else {
                        sw += 1.0 / dist[j];
                        swy += y / dist[j];
                    }
                }
                if (used == k || m == s->n)
                    break;
                want = want * 2 < s->n ? want * 2 : s->n;
                m = gi_knn_query(&s->tree, pt, want, idx, dist);
                used = 0, j = 0, sw = swy = sz = 0, nz = 0;
            }
            out[(size_t)q * ng + (g - g0)] = (float)(nz ? sz / nz : swy / sw);
        }
    }
    free(idx);
    free(dist);
    return 0;
}

const gi_method_impl gi_nearest_impl = {.fit = nearest_fit, .predict = idw_predict, .free = idw_free, .predict_bytes = NULL};
const gi_method_impl gi_idw_impl = {.fit = idw_fit, .predict = idw_predict, .free = idw_free, .predict_bytes = NULL};
