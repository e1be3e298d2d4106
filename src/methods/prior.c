/* prior.c - data.prior composed above training (prior.h): the baseline fitted
 * on the dataset, its residual as the network's targets, and the training
 * entry points that compose the two. */
#include "geneinr/prior.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/kriging.h"
#include "geneinr/progress.h"
#include "geneinr/rng.h"

#define STREAM_CROSSFIT (GI_STREAM_SPLIT + 30)

/* The prior (data.prior) fitted on the samples with use[i] set, in
 * standardised units (d->y must still hold the standardised values).
 * hyper_from: reuse that fit's kriging hyperparameters instead of fitting
 * them. */
static gi_method *fit_prior_y(const gi_dataset *d, const float *ys, const gi_config *c, const unsigned char *use,
                              const gi_method *hyper_from, const double *hyper, MPI_Comm comm, gi_progress *progress,
                              gi_err *err)
{
    const gi_samples *s = &d->s;
    size_t n = (size_t)s->n, G = (size_t)s->n_genes;
    int kind = c->data.prior == GI_PRIOR_RK ? GI_METHOD_RK : GI_METHOD_KRIGING;
    float *mni = malloc(sizeof(float) * 3 * n), *y = malloc(sizeof(float) * n * G);
    int *lab = d->label ? malloc(sizeof(int) * n) : NULL, *don = malloc(sizeof(int) * n);
    gi_method *m = NULL;
    if (!mni || !y || (d->label && !lab) || !don) {
        gi_fail(err, "out of memory for data.prior");
        goto done;
    }
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!use[i])
            continue;
        memcpy(mni + 3 * (size_t)k, s->mni + 3 * i, sizeof(float) * 3);
        memcpy(y + (size_t)k * G, ys + i * G, sizeof(float) * G);
        if (lab)
            lab[k] = d->label[i];
        don[k] = s->donor[i];
        k++;
    }
    gi_fit_data fd = {.n = k, .n_genes = (int)G, .mni = mni, .y = y, .donor = don, .label = lab, .n_labels = d->n_labels};
    gi_method_opts o;
    gi_method_opts_from_config(&o, c);
    o.donor_effect = c->data.prior_donor_effect;
    o.label_similarity = c->data.prior_label_similarity;
    o.hyper_from = hyper_from;
    o.hyper = hyper_from ? NULL : hyper;
    o.comm = comm;
    o.progress = progress;
    m = gi_method_fit_impl(kind == GI_METHOD_RK ? &gi_rk_impl : &gi_kriging_impl, kind, &o, &fd, err);
    if (!m)
        gi_fail_prefix(err, "data.prior %s", GI_METHOD_NAMES[kind]);
done:
    free(mni); free(y); free(lab); free(don);
    return m;
}

static gi_method *fit_prior(const gi_dataset *d, const gi_config *c, const unsigned char *use,
                            const gi_method *hyper_from, const double *hyper, MPI_Comm comm, gi_progress *progress,
                            gi_err *err)
{
    return fit_prior_y(d, d->y, c, use, hyper_from, hyper, comm, progress, err);
}

gi_method *gi_prior_fit_training(const gi_dataset *d, const float *y, const gi_config *c, const gi_method *hyper_from,
                                 gi_err *err)
{
    return gi_prior_fit_training_with(d, y, c, hyper_from, NULL, err);
}

gi_method *gi_prior_fit_training_with(const gi_dataset *d, const float *y, const gi_config *c,
                                      const gi_method *hyper_from, const double *hyper, gi_err *err)
{
    unsigned char *use = malloc((size_t)d->s.n);
    if (!use) {
        gi_fail(err, "out of memory");
        return NULL;
    }
    for (int i = 0; i < d->s.n; i++)
        use[i] = !d->is_val[i];
    gi_method *m = fit_prior_y(d, y, c, use, hyper_from, hyper, MPI_COMM_SELF, NULL, err);
    free(use);
    return m;
}

int gi_prior_crossfit_fold(const gi_config *c, int i)
{
    return (int)gi_rng_below(c->train.seed, STREAM_CROSSFIT, (uint64_t)i, (uint64_t)c->data.prior_crossfit);
}

/* data.prior_crossfit = K: the prior at each training sample comes from a
 * fit on the other K-1 folds of the training samples (hyperparameters of the
 * full training fit), so the residual the network learns is the prior's
 * held-out error, not its near-interpolating in-sample error. Folds are a
 * pure function of train.seed and the sample index (any rank, any count). */
static int crossfit_prior(gi_prior_fit *p, const gi_dataset *d, const gi_config *c, gi_err *err)
{
    const gi_samples *s = &d->s;
    size_t n = (size_t)s->n, G = (size_t)s->n_genes;
    int K = c->data.prior_crossfit;
    unsigned char *use = malloc(n);
    int *fold = malloc(sizeof(int) * n), *idx = malloc(sizeof(int) * n);
    float *mni = malloc(sizeof(float) * 3 * n), *pred = malloc(sizeof(float) * n * G);
    int *lab = malloc(sizeof(int) * n);
    int rc = 0;
    if (!use || !fold || !idx || !mni || !pred || !lab) {
        rc = gi_fail(err, "out of memory for data.prior_crossfit");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        fold[i] = d->is_val[i] ? -1 : gi_prior_crossfit_fold(c, (int)i);
    for (int f = 0; f < K && rc == 0; f++) {
        int nf = 0;
        for (size_t i = 0; i < n; i++) {
            use[i] = fold[i] >= 0 && fold[i] != f;
            if (fold[i] == f) {
                idx[nf] = (int)i;
                memcpy(mni + 3 * (size_t)nf, s->mni + 3 * i, sizeof(float) * 3);
                lab[nf] = d->label ? d->label[i] : 0;
                nf++;
            }
        }
        if (nf == 0)
            continue;
        gi_method *m = fit_prior(d, c, use, p->m, NULL, MPI_COMM_SELF, NULL, err);
        rc = m ? gi_method_predict(m, nf, mni, d->label ? lab : NULL, pred, err) : -1;
        gi_method_free(m);
        if (rc != 0)
            rc = gi_fail_prefix(err, "data.prior_crossfit fold %d of %d", f + 1, K);
        for (int k = 0; k < nf && rc == 0; k++)
            memcpy(p->at + (size_t)idx[k] * G, pred + (size_t)k * G, sizeof(float) * G);
    }
done:
    free(use); free(fold); free(idx); free(mni); free(pred); free(lab);
    return rc;
}

/* data.prior: fit the baseline on the training (non-validation) samples and
 * keep the residual as the target. Validation samples get the prior's
 * prediction from the training samples only, as a test point would. For
 * prediction (GI_PRIOR_FOR_PREDICT) with data.prior_refit, the prior is fitted
 * on every sample instead: the network was trained over the training-only
 * fit, the map it adds to is the one that has seen all the data. */
int gi_prior_apply(gi_prior_fit *p, gi_dataset *d, const gi_config *c, int purpose, gi_err *err)
{
    return gi_prior_apply_with(p, d, c, purpose, NULL, MPI_COMM_SELF, err);
}

int gi_prior_apply_with(gi_prior_fit *p, gi_dataset *d, const gi_config *c, int purpose, const double *hyper,
                        MPI_Comm comm, gi_err *err)
{
    memset(p, 0, sizeof *p);
    if (c->data.prior == GI_PRIOR_NONE)
        return 0;
    const gi_samples *s = &d->s;
    size_t n = (size_t)s->n, G = (size_t)s->n_genes;
    int refit = purpose == GI_PRIOR_FOR_PREDICT && c->data.prior_refit;
    unsigned char *use = malloc(n);
    p->at = malloc(sizeof(float) * n * G);
    if (!use || !p->at) {
        free(use);
        gi_prior_free(p);
        return gi_fail(err, "out of memory for data.prior");
    }
    for (size_t i = 0; i < n; i++)
        use[i] = refit || !d->is_val[i];
    /* The ML fit takes ~10-40 s for the atlas config (3,702 samples, 100
     * genes, 2 ranks; issue 31): progress lines (progress.h). With given
     * hyperparameters (a checkpoint's) it is one factorisation, a few s. */
    gi_progress prog;
    gi_progress_begin(&prog, refit ? "prior refit" : "prior fit", hyper ? "factorisations" : "likelihood evaluations",
                      0);
    p->m = fit_prior(d, c, use, NULL, hyper, comm, &prog, err);
    free(use);
    /* Training keeps the fitted hyperparameters (checkpoint.h: prior_hyper). */
    d->has_prior_hyper = p->m && purpose == GI_PRIOR_FOR_TRAIN && gi_kriging_hyper(p->m, d->prior_hyper) == 0;
    int rc = !p->m || gi_method_predict(p->m, (int)n, s->mni, d->label, p->at, err) != 0 ||
             (purpose == GI_PRIOR_FOR_TRAIN && c->data.prior_crossfit > 0 && crossfit_prior(p, d, c, err) != 0);
    gi_progress_end(&prog);
    if (rc) {
        gi_prior_free(p);
        return -1;
    }
    for (size_t q = 0; q < n * G; q++)
        if (!isnan(d->y[q]))
            d->y[q] -= p->at[q];
    return 0;
}

int gi_prior_predict_genes(const gi_prior_fit *p, int n, const float *mni, const int *label, int g0, int ng, float *out,
                           gi_err *err)
{
    if (!p->m) {
        memset(out, 0, sizeof(float) * (size_t)n * ng);
        return 0;
    }
    return gi_method_predict_genes(p->m, n, mni, label, g0, ng, out, err);
}

void gi_prior_free(gi_prior_fit *p)
{
    gi_method_free(p->m);
    free(p->at);
    memset(p, 0, sizeof *p);
}

/* Training needs the residual targets only: the prior is dropped once they
 * are made (prediction rebuilds it from the same config, method_inr.c). */
int gi_prior_targets(gi_dataset *d, const gi_config *c, MPI_Comm comm, gi_err *err)
{
    if (gi_dataset_build(d, c, err) != 0)
        return -1;
    gi_prior_fit p;
    if (gi_prior_apply_with(&p, d, c, GI_PRIOR_FOR_TRAIN, NULL, comm, err) != 0) {
        gi_dataset_free(d);
        return -1;
    }
    gi_prior_free(&p);
    return 0;
}

int gi_train(const gi_config *c, MPI_Comm comm, const char *out_dir, const char *resume, gi_train_result *res,
             gi_err *err)
{
    return gi_train_on(c, gi_prior_targets, comm, out_dir, resume, 0, res, err);
}

int gi_train_ex(const gi_config *c, MPI_Comm comm, const char *out_dir, const char *resume, int force,
                gi_train_result *res, gi_err *err)
{
    return gi_train_on(c, gi_prior_targets, comm, out_dir, resume, force, res, err);
}

int gi_ensemble_train(const gi_config *c, MPI_Comm comm, const char *dir, int from, int resume, int force,
                      gi_train_result *res, gi_err *err)
{
    return gi_ensemble_train_on(c, gi_prior_targets, comm, dir, from, resume, force, res, err);
}
