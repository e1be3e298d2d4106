/* extend.c - new genes for a trained factorized model (see extend.h).
 *
 * Phases of gi_extend: set-up (checkpoint, config checks, the dataset of
 * the config's table, which genes are new), targets (standardised, minus the
 * training-time prior), features (the frozen trunk at every sample), ridge
 * (one row per new gene), write (the grown state, its report and gene list).
 */
#include "geneinr/extend.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/dataset.h"
#include "geneinr/dist.h"
#include "geneinr/ensemble.h"
#include "geneinr/method.h"
#include "geneinr/prior.h"
#include "geneinr/readout.h"

/* LAPACK from OpenBLAS (Fortran interface, as kriging.c and nulls.c call it). */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
            const int *lwork, int *info);

/* Strongest first: ties keep the stronger penalty. */
const double GI_EXTEND_ALPHAS[GI_EXTEND_N_ALPHAS] = {10, 3, 1, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4,
                                                     3e-5, 1e-5, 3e-6, 1e-6};

/* Doubles per gene in the gathered results beyond the row: the bias, then the six figures of gi_extend_gene. */
#define REC_EXTRA 7

/* Sample patterns whose factorisations are kept at once (each n x W + nv x W
 * doubles: 8 MB at 3,700 samples and width 256). */
#define PATTERN_CACHE 8

/* ---------------------------------------------------------------- ridge */

/* The factorisation of one training pattern (the samples a gene is measured
 * at): mean features, eigenpairs of the centred Gram matrix, and the
 * validation features centred and rotated into the eigenbasis. */
typedef struct pattern {
    int W, n, nv;
    unsigned char *mask;     /* [ntr] 1 = in the pattern */
    double *mu;              /* [W] */
    double *Q;               /* [W][W] column j (Q[i * W + j]) = eigenvector j */
    double *e;               /* [W] eigenvalues (>= 0) */
    double *hc;              /* [n][W] centred training features of the pattern */
    double *pv;              /* [nv][W] (h_v - mu) Q */
    double scale;            /* mean eigenvalue (trace / W), the grid's unit */
} pattern;

static void pattern_free(pattern *p)
{
    free(p->mask); free(p->mu); free(p->Q); free(p->e); free(p->hc); free(p->pv);
    memset(p, 0, sizeof *p);
}

static int pattern_build(pattern *p, const float *h, int W, int ntr, const int *ftr, int nv, const int *fv,
                         const unsigned char *mask, gi_err *err)
{
    pattern_free(p);
    p->W = W;
    p->nv = nv;
    int n = 0;
    for (int i = 0; i < ntr; i++)
        n += mask[i];
    p->n = n;
    p->mask = malloc((size_t)ntr ? (size_t)ntr : 1);
    p->mu = calloc((size_t)W, sizeof(double));
    p->Q = malloc(sizeof(double) * (size_t)W * W);
    p->e = malloc(sizeof(double) * (size_t)W);
    p->hc = malloc(sizeof(double) * (size_t)(n ? n : 1) * W);
    p->pv = malloc(sizeof(double) * (size_t)(nv ? nv : 1) * W);
    double *hv = malloc(sizeof(double) * (size_t)(nv ? nv : 1) * W);
    if (!p->mask || !p->mu || !p->Q || !p->e || !p->hc || !p->pv || !hv) {
        free(hv);
        return gi_fail(err, "out of memory for the ridge of %d samples x %d features", n, W);
    }
    memcpy(p->mask, mask, (size_t)ntr);
    for (int i = 0, r = 0; i < ntr; i++)
        if (mask[i]) {
            const float *src = h + (size_t)ftr[i] * W;
            for (int j = 0; j < W; j++) {
                p->hc[(size_t)r * W + j] = src[j];
                p->mu[j] += src[j];
            }
            r++;
        }
    for (int j = 0; j < W; j++)
        p->mu[j] /= n;
    for (int r = 0; r < n; r++)
        for (int j = 0; j < W; j++)
            p->hc[(size_t)r * W + j] -= p->mu[j];
    /* Gram = hc' hc (symmetric; row- and column-major alike). */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, W, W, n, 1.0, p->hc, W, p->hc, W, 0.0, p->Q, W);
    double tr = 0;
    for (int j = 0; j < W; j++)
        tr += p->Q[(size_t)j * W + j];
    p->scale = tr / W > 0 ? tr / W : 1;
    int lwork = -1, info = 0;
    double q;
    dsyev_("V", "U", &W, p->Q, &W, p->e, &q, &lwork, &info);
    lwork = info == 0 ? (int)q : 3 * W;
    double *wk = malloc(sizeof(double) * (size_t)lwork);
    if (!wk) {
        free(hv);
        return gi_fail(err, "out of memory for the eigensolver");
    }
    /* dsyev works column-major: column j of its output (Q[j * W + i] in
     * memory) is eigenvector j; transposed below into Q[i * W + j]. */
    dsyev_("V", "U", &W, p->Q, &W, p->e, wk, &lwork, &info);
    free(wk);
    if (info != 0) {
        free(hv);
        return gi_fail(err, "the ridge's eigensolver (LAPACK dsyev) failed (info %d)", info);
    }
    for (int i = 0; i < W; i++)
        for (int j = i + 1; j < W; j++) {
            double a = p->Q[(size_t)i * W + j];
            p->Q[(size_t)i * W + j] = p->Q[(size_t)j * W + i];
            p->Q[(size_t)j * W + i] = a;
        }
    for (int j = 0; j < W; j++)
        if (!(p->e[j] > 0))
            p->e[j] = 0; /* rounding below zero */
    for (int v = 0; v < nv; v++) {
        const float *src = h + (size_t)fv[v] * W;
        for (int j = 0; j < W; j++)
            hv[(size_t)v * W + j] = src[j] - p->mu[j];
    }
    if (nv > 0)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nv, W, W, 1.0, hv, W, p->Q, W, 0.0, p->pv, W);
    free(hv);
    return 0;
}

/* One gene on its pattern: rec = [w (W), b, n_train, n_val, alpha, lambda,
 * val_mse, val_mse_zero]. t: the gene's column (stride k). */
static int ridge_gene(const pattern *p, int ntr, const int *ftr, int nv, const int *fv, const float *t, int k,
                      double *rec)
{
    int W = p->W;
    double mt = 0;
    for (int i = 0; i < ntr; i++)
        if (p->mask[i])
            mt += t[(size_t)ftr[i] * k];
    mt /= p->n;
    double *r = calloc((size_t)W, sizeof(double)), *z = malloc(sizeof(double) * (size_t)W);
    double *c = malloc(sizeof(double) * (size_t)W);
    if (!r || !z || !c) {
        free(r); free(z); free(c);
        return -1;
    }
    for (int i = 0, row = 0; i < ntr; i++)
        if (p->mask[i]) {
            double d = t[(size_t)ftr[i] * k] - mt;
            const double *x = p->hc + (size_t)row++ * W;
            for (int j = 0; j < W; j++)
                r[j] += x[j] * d;
        }
    for (int j = 0; j < W; j++) {
        double s = 0;
        for (int i = 0; i < W; i++)
            s += p->Q[(size_t)i * W + j] * r[i];
        z[j] = s;
    }
    int mv = 0;
    double zero = 0;
    for (int v = 0; v < nv; v++) {
        double y = t[(size_t)fv[v] * k];
        if (!isnan(y)) {
            mv++;
            zero += y * y;
        }
    }
    int best = 0;
    double best_score = INFINITY, best_mse = NAN;
    for (int a = 0; a < GI_EXTEND_N_ALPHAS; a++) {
        double lam = GI_EXTEND_ALPHAS[a] * p->scale, score;
        for (int j = 0; j < W; j++)
            c[j] = z[j] / (p->e[j] + lam);
        if (mv > 0) {
            double se = 0;
            for (int v = 0; v < nv; v++) {
                double y = t[(size_t)fv[v] * k];
                if (isnan(y))
                    continue;
                const double *x = p->pv + (size_t)v * W;
                double pred = mt;
                for (int j = 0; j < W; j++)
                    pred += x[j] * c[j];
                se += (pred - y) * (pred - y);
            }
            score = se / mv;
        } else {
            /* Generalised cross-validation: n RSS / (n - df)^2, with
             * RSS = |t_c|^2 - sum_j z_j^2 (2 / (e_j + l) - e_j / (e_j + l)^2). */
            double tt = 0, red = 0, df = 1;
            for (int i = 0; i < ntr; i++)
                if (p->mask[i]) {
                    double d = t[(size_t)ftr[i] * k] - mt;
                    tt += d * d;
                }
            for (int j = 0; j < W; j++) {
                double s = p->e[j] + lam;
                red += z[j] * z[j] * (2 / s - p->e[j] / (s * s));
                df += p->e[j] / s;
            }
            double rss = tt - red, dn = p->n - df;
            score = dn > 0 ? p->n * (rss > 0 ? rss : 0) / (dn * dn) : INFINITY;
        }
        if (score < best_score) {
            best_score = score;
            best = a;
            best_mse = mv > 0 ? score : NAN;
        }
    }
    double lam = GI_EXTEND_ALPHAS[best] * p->scale;
    for (int j = 0; j < W; j++)
        c[j] = z[j] / (p->e[j] + lam);
    double b = mt;
    for (int i = 0; i < W; i++) {
        double s = 0;
        for (int j = 0; j < W; j++)
            s += p->Q[(size_t)i * W + j] * c[j];
        rec[i] = (float)s; /* the row as stored */
        b -= p->mu[i] * rec[i];
    }
    rec[W] = (float)b;
    rec[W + 1] = p->n;
    rec[W + 2] = mv;
    rec[W + 3] = GI_EXTEND_ALPHAS[best];
    rec[W + 4] = lam;
    rec[W + 5] = best_mse;
    rec[W + 6] = mv > 0 ? zero / mv : NAN;
    free(r); free(z); free(c);
    return 0;
}

typedef struct pattern_key {
    uint64_t hash;           /* FNV-1a of the gene's measured-at-training-sample flags */
    long g;
} pattern_key;

static int by_pattern(const void *a, const void *b)
{
    const pattern_key *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return (x->g > y->g) - (x->g < y->g);
}

int gi_extend_ridge(const gi_model *m, const float *h, int ntr, const int *ftr, int nv, const int *fv,
                    const float *t, int k, float *w, float *b, gi_extend_gene *info, MPI_Comm comm, gi_err *err)
{
    int rank, size, W = m->spec.width, R = W + REC_EXTRA;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    long lo, hi;
    gi_share(k, rank, size, &lo, &hi);
    double *rec = malloc(sizeof(double) * (size_t)(k ? k : 1) * R);
    unsigned char *mask = malloc((size_t)(ntr ? ntr : 1));
    int *counts = malloc(sizeof(int) * (size_t)size), *displs = malloc(sizeof(int) * (size_t)size);
    pattern cache[PATTERN_CACHE];
    memset(cache, 0, sizeof cache);
    int next = 0;
    int rc = rec && mask && counts && displs ? 0 : gi_fail(err, "out of memory for %d readout rows", k);
    /* This rank's genes taken grouped by their sample pattern (a hash of it, then the gene): a
     * whole-transcriptome table whose genes cycle through more patterns than the cache holds would
     * otherwise factorise once per gene. A row depends on its own pattern only, so the order
     * changes no bits. */
    long nmine = hi > lo ? hi - lo : 0;
    pattern_key *order = malloc(sizeof *order * (size_t)(nmine ? nmine : 1));
    if (rc == 0 && !order)
        rc = gi_fail(err, "out of memory for %d readout rows", k);
    for (long q = 0; rc == 0 && q < nmine; q++) {
        uint64_t hsh = 1469598103934665603ULL;
        for (int i = 0; i < ntr; i++)
            hsh = (hsh ^ (uint64_t)!isnan(t[(size_t)ftr[i] * k + lo + q])) * 1099511628211ULL;
        order[q] = (pattern_key){hsh, lo + q};
    }
    if (rc == 0)
        qsort(order, (size_t)nmine, sizeof *order, by_pattern);
    for (long q = 0; rc == 0 && q < nmine; q++) {
        long g = order[q].g;
        const float *tg = t + g;
        int n = 0;
        for (int i = 0; i < ntr; i++) {
            mask[i] = !isnan(tg[(size_t)ftr[i] * k]);
            n += mask[i];
        }
        if (n < 2) {
            rc = gi_fail(err, "gene %ld has %d measured training sample%s; at least 2 are needed", g + 1, n,
                         n == 1 ? "" : "s");
            break;
        }
        /* Genes measured at the same samples share the factorisation (a
         * few kept, replaced in turn): a gene's row depends only on its own
         * pattern, never on which genes came before it. */
        pattern *p = NULL;
        for (int q = 0; q < PATTERN_CACHE && !p; q++)
            if (cache[q].mask && memcmp(cache[q].mask, mask, (size_t)ntr) == 0)
                p = &cache[q];
        if (!p) {
            p = &cache[next];
            next = (next + 1) % PATTERN_CACHE;
            rc = pattern_build(p, h, W, ntr, ftr, nv, fv, mask, err);
        }
        if (rc == 0 && ridge_gene(p, ntr, ftr, nv, fv, tg, k, rec + (size_t)g * R) != 0)
            rc = gi_fail(err, "out of memory for the ridge");
    }
    for (int q = 0; q < PATTERN_CACHE; q++)
        pattern_free(&cache[q]);
    free(order);
    free(mask);
    if (gi_dist_agree(comm, rc, err) != 0) {
        free(rec); free(counts); free(displs);
        return -1;
    }
    for (int q = 0; q < size; q++) {
        long a, z;
        gi_share(k, q, size, &a, &z);
        counts[q] = (int)((z - a) * R);
        displs[q] = (int)(a * R);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, rec, counts, displs, MPI_DOUBLE, comm);
    for (int g = 0; g < k; g++) {
        const double *x = rec + (size_t)g * R;
        for (int j = 0; j < W; j++)
            w[(size_t)g * W + j] = (float)x[j];
        b[g] = (float)x[W];
        gi_extend_gene *in = &info[g];
        in->n_train = (int)x[W + 1];
        in->n_val = (int)x[W + 2];
        in->alpha = x[W + 3];
        in->lambda = x[W + 4];
        in->val_mse = x[W + 5];
        in->val_mse_zero = x[W + 6];
    }
    free(rec); free(counts); free(displs);
    return 0;
}

/* ------------------------------------------------------------- features */

/* Trunk features of n points, computed in blocks dealt to the ranks and
 * gathered whole: h [n][W] on every rank. */
static int features(const gi_model *m, int n, const float *xyz, const int *donor, const int *label, float *h,
                    MPI_Comm comm, gi_err *err)
{
    int rank, size, W = m->spec.width, B = GI_READOUT_BLOCK;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    long nblocks = (n + B - 1) / B, lo, hi;
    gi_share(nblocks, rank, size, &lo, &hi);
    long p0 = lo * B, p1 = hi * B < n ? hi * B : n;
    int rc = 0;
    if (p1 > p0)
        rc = gi_readout_features(m, (int)(p1 - p0), xyz + 3 * p0, donor ? donor + p0 : NULL,
                                 label ? label + p0 : NULL, h + p0 * W, err);
    if (gi_dist_agree(comm, rc, err) != 0)
        return -1;
    int *counts = malloc(sizeof(int) * (size_t)size), *displs = malloc(sizeof(int) * (size_t)size);
    if (!counts || !displs) {
        free(counts); free(displs);
        return gi_dist_agree(comm, gi_fail(err, "out of memory"), err);
    }
    for (int q = 0; q < size; q++) {
        long a, z;
        gi_share(nblocks, q, size, &a, &z);
        long q0 = a * B, q1 = z * B < n ? z * B : n;
        counts[q] = (int)((q1 > q0 ? q1 - q0 : 0) * W);
        displs[q] = (int)(q0 * W);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, h, counts, displs, MPI_FLOAT, comm);
    free(counts); free(displs);
    return 0;
}

/* ---------------------------------------------------------- consistency */

/* c against the config the checkpoint was trained with: what extend relies
 * on (the model, the split, the anatomy matching, the prior). */
static int check_config(const gi_config *c, const gi_state *st, const char *ckpt, gi_err *err)
{
    const gi_model_spec *s = &st->model.spec;
    if (s->gene_mode != GI_GENE_FACTORIZED)
        return gi_fail(err, "%s: model.gene_mode is %s: a new gene there is a new gene code, which geneinr does not "
                       "fit (extend needs the factorized model's readout rows; train with the new genes instead)",
                       ckpt, GI_GENE_MODE_NAMES[s->gene_mode]);
    if (gi_ensemble_size(c) > 1)
        return gi_fail(err, "train.ensemble is %d: extend grows one network; extend each member's checkpoint, or use "
                       "train.ensemble: 1", c->train.ensemble);
    gi_model_spec cs;
    gi_model_spec_from_config(&cs, c, s->n_genes, s->n_donors, s->n_labels);
    char what[512];
    int nd = gi_model_spec_diff(s, &cs, what, sizeof what);
    if (nd > 0)
        return gi_fail(err, "%s: %s differ%s from the checkpoint; extend with the config it was trained with", ckpt,
                       what, nd > 1 ? "" : "s");
    if (c->train.seed != st->seed)
        return gi_fail(err, "%s: trained with train.seed %llu, the config says %llu (the seed draws the validation "
                       "split the new genes are fitted on)", ckpt, (unsigned long long)st->seed,
                       (unsigned long long)c->train.seed);
    if (c->data.prior_label_similarity)
        return gi_fail(err, "data.prior_label_similarity: a gene's prior there depends on every other gene, so new "
                       "genes would change the trained genes' prior; extend is not available with it");
    gi_config t;
    gi_err why;
    if (!st->config_yaml || gi_config_load_text(&t, st->config_yaml, ckpt, &why) != 0)
        return gi_fail(err, "%s: its training config cannot be read, so the split and prior cannot be checked", ckpt);
    const char *key = NULL;
    if (t.train.val_mode != c->train.val_mode)
        key = "train.validation";
    else if (t.train.val_mode == GI_VAL_FRACTION && t.train.val_fraction != c->train.val_fraction)
        key = "train.val_fraction";
    else if (t.train.val_mode == GI_VAL_DONOR && strcmp(t.train.val_donor, c->train.val_donor) != 0)
        key = "train.val_donor";
    else if (t.train.val_average != c->train.val_average)
        key = "train.val_average";
    else if (strcmp(t.data.anatomy, c->data.anatomy) != 0 && (!t.data.anatomy[0] || !c->data.anatomy[0]))
        key = "data.anatomy";
    else if (t.data.anatomy_tolerance != c->data.anatomy_tolerance)
        key = "data.anatomy_tolerance";
    else if (t.data.prior != c->data.prior)
        key = "data.prior";
    else if (t.data.prior != GI_PRIOR_NONE &&
             (t.data.prior_donor_effect != c->data.prior_donor_effect || t.data.prior_crossfit != c->data.prior_crossfit))
        key = t.data.prior_donor_effect != c->data.prior_donor_effect ? "data.prior_donor_effect"
                                                                     : "data.prior_crossfit";
    else if (t.data.prior != GI_PRIOR_NONE &&
             (t.baseline.covariance != c->baseline.covariance || t.baseline.per_gene != c->baseline.per_gene ||
              t.baseline.fit_samples != c->baseline.fit_samples || t.baseline.label_shrink != c->baseline.label_shrink))
        key = "baseline.* (the prior's settings)";
    if (key)
        return gi_fail(err, "%s: %s differs from the checkpoint's training config: new genes are fitted on the "
                       "trunk's own split and prior; extend with the config it was trained with (its OUT/config.yaml, "
                       "with data.samples set to the new table)", ckpt, key);
    return 0;
}

/* ---------------------------------------------------------------- prior */

/* The training prior's hyperparameters for the new genes' prior: the
 * checkpoint's (shared by all genes, issue 31), so a new gene's prior is the
 * training's own model and one factorisation; NULL for checkpoints written
 * before they were kept: then fitted by maximum likelihood on the new genes
 * (and the render's refit over every gene moves the old genes' maps slightly).
 * gi_state_add_genes leaves the field as it is. */
static const double *prior_hyperparameters(const gi_state *st)
{
    return st->n_prior_hyper == GI_PRIOR_HYPER_N ? st->prior_hyper : NULL;
}

/* The new genes' targets minus the training-time prior (prior.h's
 * GI_PRIOR_FOR_TRAIN): fitted on the training samples; with
 * data.prior_crossfit each training sample's value from the fit without its
 * fold (the full fit's hyperparameters). view: the dataset with the new
 * genes' columns; y [n][k] standardised, turned into residuals in place. */
static int subtract_prior(const gi_dataset *view, float *y, const gi_config *c, const gi_state *st, gi_err *err)
{
    size_t n = (size_t)view->s.n, k = (size_t)view->s.n_genes;
    float *at = malloc(sizeof(float) * n * k);
    unsigned char *held = malloc(n);
    float *mni = malloc(sizeof(float) * 3 * n), *pred = malloc(sizeof(float) * n * k);
    int *lab = malloc(sizeof(int) * n), *idx = malloc(sizeof(int) * n);
    gi_method *fit = NULL;
    int rc = at && held && mni && pred && lab && idx ? 0 : gi_fail(err, "out of memory for data.prior");
    if (rc == 0 && !(fit = gi_prior_fit_training_with(view, y, c, NULL, prior_hyperparameters(st), err)))
        rc = -1;
    if (rc == 0)
        rc = gi_method_predict(fit, (int)n, view->s.mni, view->label, at, err);
    for (int f = 0; rc == 0 && f < c->data.prior_crossfit; f++) {
        /* The fit without fold f: its samples are marked held out in a copy of the split. */
        gi_dataset fold = *view;
        int nf = 0;
        for (size_t i = 0; i < n; i++) {
            int in = !view->is_val[i] && gi_prior_crossfit_fold(c, (int)i) == f;
            held[i] = view->is_val[i] || in;
            if (in) {
                idx[nf] = (int)i;
                memcpy(mni + 3 * (size_t)nf, view->s.mni + 3 * i, sizeof(float) * 3);
                lab[nf] = view->label ? view->label[i] : 0;
                nf++;
            }
        }
        if (nf == 0)
            continue;
        fold.is_val = held;
        gi_method *mf = gi_prior_fit_training(&fold, y, c, fit, err);
        rc = mf ? gi_method_predict(mf, nf, mni, view->label ? lab : NULL, pred, err) : -1;
        gi_method_free(mf);
        if (rc != 0)
            rc = gi_fail_prefix(err, "data.prior_crossfit fold %d of %d", f + 1, c->data.prior_crossfit);
        for (int q = 0; q < nf && rc == 0; q++)
            memcpy(at + (size_t)idx[q] * k, pred + (size_t)q * k, sizeof(float) * k);
    }
    for (size_t q = 0; rc == 0 && q < n * k; q++)
        if (!isnan(y[q]))
            y[q] -= at[q];
    gi_method_free(fit);
    free(at); free(held); free(mni); free(pred); free(lab); free(idx);
    return rc;
}

/* ------------------------------------------------------------- gene map */

typedef struct name_idx {
    const char *name;
    int idx;
} name_idx;

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const name_idx *)a)->name, ((const name_idx *)b)->name);
}

/* old[g] = the checkpoint's index of table gene g, or -1 (new). */
static int map_genes(const gi_state *st, const gi_samples *s, int *old, gi_err *err)
{
    name_idx *ix = malloc(sizeof *ix * (size_t)(st->n_genes ? st->n_genes : 1));
    if (!ix)
        return gi_fail(err, "out of memory");
    for (int g = 0; g < st->n_genes; g++)
        ix[g] = (name_idx){st->genes[g], g};
    qsort(ix, (size_t)st->n_genes, sizeof *ix, cmp_name);
    for (int g = 0; g < s->n_genes; g++) {
        name_idx key = {s->gene_names[g], 0};
        name_idx *hit = bsearch(&key, ix, (size_t)st->n_genes, sizeof *ix, cmp_name);
        old[g] = hit ? hit->idx : -1;
    }
    free(ix);
    return 0;
}

/* ---------------------------------------------------------------- write */

static int write_report(const char *out_dir, const gi_state *st, int n_old, const gi_extend_gene *info, gi_err *err)
{
    char path[GI_PATH_MAX + 32], tmp[GI_PATH_MAX + 40];
    snprintf(path, sizeof path, "%s/extend.csv", out_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return gi_fail(err, "cannot write %s", tmp);
    fprintf(f, "gene,n_train,n_val,alpha,lambda,val_mse,val_mse_zero_row\n");
    for (int g = n_old; g < st->n_genes; g++) {
        const gi_extend_gene *in = &info[g - n_old];
        fprintf(f, "%s,%d,%d,%.3g,%.9g,%.9g,%.9g\n", st->genes[g], in->n_train, in->n_val, in->alpha, in->lambda,
                in->val_mse, in->val_mse_zero);
    }
    int bad = ferror(f) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return gi_fail(err, "cannot write %s", path);
    }
    snprintf(path, sizeof path, "%s/genes.txt", out_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "w")))
        return gi_fail(err, "cannot write %s", tmp);
    for (int g = 0; g < st->n_genes; g++)
        fprintf(f, "%s\n", st->genes[g]);
    bad = ferror(f) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return gi_fail(err, "cannot write %s", path);
    }
    return 0;
}

/* ----------------------------------------------------------------- main */

typedef struct extend_job {
    gi_state st;
    gi_dataset d;
    int *old, *dmap, *pdonor, *plabel, *pt, *pv;
    float *pxyz, *h, *y, *w, *b;
    char **names;
    float *mean, *std;
    gi_extend_gene *info;
} extend_job;

static void job_free(extend_job *j)
{
    gi_state_free(&j->st);
    gi_dataset_free(&j->d);
    free(j->old); free(j->dmap); free(j->pdonor); free(j->plabel); free(j->pt); free(j->pv);
    free(j->pxyz); free(j->h); free(j->y); free(j->w); free(j->b);
    free(j->names); free(j->mean); free(j->std); free(j->info);
}

int gi_extend(const gi_config *c, const char *ckpt, const char *out_dir, MPI_Comm comm, gi_extend_result *res,
              gi_err *err)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    memset(res, 0, sizeof *res);
    double t0 = MPI_Wtime();
    extend_job j;
    memset(&j, 0, sizeof j);
    /* Set-up: every rank reads the same checkpoint and table. */
    int rc = gi_checkpoint_load(&j.st, ckpt, err);
    if (rc == 0)
        rc = check_config(c, &j.st, ckpt, err);
    if (rc == 0)
        rc = gi_dataset_build(&j.d, c, err);
    if (gi_dist_agree(comm, rc, err) != 0) {
        job_free(&j);
        return -1;
    }
    gi_state *st = &j.st;
    const gi_samples *s = &j.d.s;
    int G = s->n_genes, n = s->n, W = st->model.spec.width, k = 0;
    j.old = malloc(sizeof(int) * (size_t)G);
    j.dmap = malloc(sizeof(int) * (size_t)(s->n_donors ? s->n_donors : 1));
    rc = j.old && j.dmap ? map_genes(st, s, j.old, err) : gi_fail(err, "out of memory");
    for (int dn = 0; rc == 0 && dn < s->n_donors; dn++) {
        j.dmap[dn] = -1;
        for (int q = 0; q < st->n_donors; q++)
            if (strcmp(st->donors[q], s->donor_names[dn]) == 0)
                j.dmap[dn] = q;
        if (j.dmap[dn] < 0)
            rc = gi_fail(err, "%s: donor '%s' is not a donor of %s: the model has no embedding for it (extend takes "
                         "tables of the donors it was trained on)", c->data.samples, s->donor_names[dn], ckpt);
    }
    if (rc == 0 && st->n_labels &&
        (j.d.n_labels != st->n_labels || memcmp(j.d.label_values, st->label_values, sizeof(int) * st->n_labels)))
        rc = gi_fail(err, "data.anatomy %s is not the image %s was trained with (other labels)", c->data.anatomy, ckpt);
    int shared = 0;
    for (int g = 0; rc == 0 && g < G; g++) {
        if (j.old[g] < 0) {
            k++;
            continue;
        }
        shared++;
        /* With a prior the render rebuilds it from this table's standardised
         * values: a kept gene must have the training's normalisation here. */
        if (c->data.prior != GI_PRIOR_NONE && (j.d.gene_mean[g] != st->gene_mean[j.old[g]] ||
                                               j.d.gene_std[g] != st->gene_std[j.old[g]]))
            rc = gi_fail(err, "%s: gene '%s' has another mean or SD over the training samples than in %s (another "
                         "table or split); with data.prior the table must hold the trained genes' own values",
                         c->data.samples, s->gene_names[g], ckpt);
    }
    if (rc == 0 && k == 0)
        rc = gi_fail(err, "%s: every gene of the table is already in %s: nothing to extend", c->data.samples, ckpt);
    if (rc == 0 && c->data.prior != GI_PRIOR_NONE && shared < st->n_genes)
        rc = gi_fail(err, "%s holds %d of the %d genes of %s: with data.prior the render rebuilds the prior of every "
                     "gene from data.samples, so the table must hold the trained genes too (give the whole table, or "
                     "extend a model trained without data.prior)", c->data.samples, shared, st->n_genes, ckpt);
    res->n_old = st->n_genes;
    res->n_new = k;
    res->n_shared = shared;
    res->all_in_table = shared == st->n_genes;
    if (gi_dist_agree(comm, rc, err) != 0) {
        job_free(&j);
        return -1;
    }
    if (rank == 0) {
        printf("extend: %d new gene%s for %s (%d genes; %d of the table's %d genes are in it and kept)\n", k,
               k == 1 ? "" : "s", ckpt, st->n_genes, shared, G);
        fflush(stdout);
    }
    /* Targets: the new columns, standardised by the dataset. */
    j.y = malloc(sizeof(float) * (size_t)n * k);
    j.names = malloc(sizeof(char *) * (size_t)k);
    j.mean = malloc(sizeof(float) * (size_t)k);
    j.std = malloc(sizeof(float) * (size_t)k);
    j.info = calloc((size_t)k, sizeof *j.info);
    rc = j.y && j.names && j.mean && j.std && j.info ? 0 : gi_fail(err, "out of memory for %d new genes", k);
    for (int g = 0, q = 0; rc == 0 && g < G; g++)
        if (j.old[g] < 0) {
            j.names[q] = s->gene_names[g];
            j.mean[q] = j.d.gene_mean[g];
            j.std[q] = j.d.gene_std[g];
            for (int i = 0; i < n; i++)
                j.y[(size_t)i * k + q] = j.d.y[(size_t)i * G + g];
            q++;
        }
    double t1 = MPI_Wtime();
    if (rc == 0 && c->data.prior != GI_PRIOR_NONE) {
        gi_dataset view = j.d;
        view.s.n_genes = k;
        view.s.gene_names = j.names;
        view.y = j.y;
        if (rank == 0) {
            printf("extend: data.prior %s of the new genes (training samples%s)\n", GI_PRIOR_NAMES[c->data.prior],
                   c->data.prior_crossfit ? ", cross-fitted" : "");
            fflush(stdout);
        }
        rc = subtract_prior(&view, j.y, c, st, err);
    }
    res->seconds_prior = MPI_Wtime() - t1;
    if (gi_dist_agree(comm, rc, err) != 0) {
        job_free(&j);
        return -1;
    }
    /* Features: training samples at their own donor, then validation samples
     * as training scores them. */
    t1 = MPI_Wtime();
    int ntr = j.d.n_train, nv = n - ntr, avg = j.d.val_donor >= 0 || c->train.val_average;
    j.pxyz = malloc(sizeof(float) * 3 * (size_t)n);
    j.pdonor = malloc(sizeof(int) * (size_t)n);
    j.plabel = j.d.label ? malloc(sizeof(int) * (size_t)n) : NULL;
    j.pt = malloc(sizeof(int) * (size_t)(ntr ? ntr : 1));
    j.pv = malloc(sizeof(int) * (size_t)(nv ? nv : 1));
    j.h = malloc(sizeof(float) * (size_t)n * W);
    rc = j.pxyz && j.pdonor && (j.plabel || !j.d.label) && j.pt && j.pv && j.h ? 0 : gi_fail(err, "out of memory");
    /* Model copy with the best-validation weights: the trunk the render uses. */
    gi_model best;
    memset(&best, 0, sizeof best);
    if (rc == 0)
        rc = gi_model_alloc(&best, &st->model.spec, err);
    if (rc == 0) {
        memcpy(best.params, st->best_params, sizeof(float) * best.n_params);
        memcpy(best.fixed, st->model.fixed, sizeof(float) * best.n_fixed);
        memcpy(best.donor_in_average, st->model.donor_in_average, (size_t)(st->n_donors ? st->n_donors : 1));
        int p = 0;
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < n; i++) {
                int val = j.d.is_val[i] != 0;
                if (val != pass)
                    continue;
                memcpy(j.pxyz + 3 * (size_t)p, j.d.xyz + 3 * (size_t)i, sizeof(float) * 3);
                j.pdonor[p] = val && avg ? -1 : j.dmap[s->donor[i]];
                if (j.plabel)
                    j.plabel[p] = j.d.label[i];
                p++;
            }
        rc = features(&best, n, j.pxyz, j.pdonor, j.plabel, j.h, comm, err);
    }
    if (rc == 0) {
        /* Targets in point order: y rows permuted so that point p is row p. */
        float *yp = malloc(sizeof(float) * (size_t)n * k);
        if (!yp) {
            rc = gi_fail(err, "out of memory");
        } else {
            int p = 0;
            for (int pass = 0; pass < 2; pass++)
                for (int i = 0; i < n; i++)
                    if ((j.d.is_val[i] != 0) == pass)
                        memcpy(yp + (size_t)p++ * k, j.y + (size_t)i * k, sizeof(float) * k);
            free(j.y);
            j.y = yp;
            for (int i = 0; i < ntr; i++)
                j.pt[i] = i;
            for (int i = 0; i < nv; i++)
                j.pv[i] = ntr + i;
        }
    }
    res->seconds_features = MPI_Wtime() - t1;
    if (gi_dist_agree(comm, rc, err) != 0) {
        gi_model_free(&best);
        job_free(&j);
        return -1;
    }
    t1 = MPI_Wtime();
    j.w = malloc(sizeof(float) * (size_t)k * W);
    j.b = malloc(sizeof(float) * (size_t)k);
    rc = j.w && j.b ? 0 : gi_fail(err, "out of memory");
    if (gi_dist_agree(comm, rc, err) != 0 ||
        gi_extend_ridge(&best, j.h, ntr, j.pt, nv, j.pv, j.y, k, j.w, j.b, j.info, comm, err) != 0) {
        gi_model_free(&best);
        job_free(&j);
        return -1;
    }
    gi_model_free(&best);
    res->seconds_ridge = MPI_Wtime() - t1;
    /* The grown state: the validation record of the old genes no longer
     * speaks for the model (a resumed training's validation spans every
     * gene), so it starts again; the step and the moments stay. */
    char note[256];
    snprintf(note, sizeof note, "extend: %d gene%s added after gene %d (%s%s)", k, k == 1 ? "" : "s", st->n_genes,
             j.names[0], k > 1 ? ", ..." : "");
    rc = gi_state_add_genes(st, k, j.names, j.mean, j.std, j.w, j.b, err);
    if (rc == 0)
        rc = gi_state_add_history(st, st->step, note, err);
    if (rc == 0) {
        st->best_val = INFINITY;
        st->bad_evals = 0;
    }
    char path[GI_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/checkpoint.h5", out_dir);
    if (rc == 0 && rank == 0) {
        rc = gi_checkpoint_save(st, path, err);
        if (rc == 0)
            rc = write_report(out_dir, st, res->n_old, j.info, err);
    }
    res->seconds = MPI_Wtime() - t0;
    if (rank == 0 && rc == 0) {
        double sv = 0, s0 = 0;
        int nvg = 0;
        for (int g = 0; g < k; g++)
            if (!isnan(j.info[g].val_mse)) {
                sv += j.info[g].val_mse;
                s0 += j.info[g].val_mse_zero;
                nvg++;
            }
        if (nvg)
            printf("extend: validation MSE of the new genes %.4f (mean over %d genes; %.4f with %s)\n", sv / nvg, nvg,
                   s0 / nvg, c->data.prior != GI_PRIOR_NONE ? "the prior alone" : "the training mean alone");
        printf("extend: %d genes in %s (prior %.1f s, features %.1f s, ridge %.1f s; %.1f s in all)\n",
               st->n_genes, path, res->seconds_prior, res->seconds_features, res->seconds_ridge, res->seconds);
        fflush(stdout);
    }
    job_free(&j);
    return gi_dist_agree(comm, rc, err);
}
