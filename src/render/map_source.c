/* map_source.c - the rendered map at any MNI points (see map_source.h).
 *
 * The method's set-up (open_inr, open_baseline) is the render's own: render.c
 * takes its method from gi_map_source_method, so that a value at a voxel
 * centre is the atlas's value there up to the rounding of the batch the
 * point shares.
 */
#include "geneinr/map_source.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/checkpoint.h"
#include "geneinr/ensemble.h"
#include "geneinr/render_plan.h" /* gi_render_in_mask */

/* Points per predict call of a baseline, and of a model with a prior or an
 * ensemble (which predicts in passes of 1024 inside); a single network takes
 * render.batch_voxels at a time. These are the sizes each kind has always
 * rendered with: a GEMM kernel may round a row differently by its place in
 * the batch, so they are kept for atlases that stay byte-identical. */
#define MAP_METHOD_BATCH 4096

/* The anatomy image must hold the label set the checkpoint was trained with,
 * as on resume: with another image, unknown labels would silently become 0
 * and the maps would differ without a word. */
static int check_labels(const gi_map_source *s, const gi_config *c, const gi_state *st, const char *checkpoint,
                        int for_render, gi_err *err)
{
    const gi_anatomy *a = &s->anat;
    if (a->n_labels == st->n_labels && memcmp(a->values, st->label_values, sizeof(int) * (size_t)st->n_labels) == 0)
        return 0;
    int extra = 0, missing = 0, first_extra = 0, first_missing = 0;
    for (int i = 1; i < a->n_labels; i++) {
        int found = 0;
        for (int j = 1; j < st->n_labels && !found; j++)
            found = st->label_values[j] == a->values[i];
        if (!found && !extra++)
            first_extra = a->values[i];
    }
    for (int j = 1; j < st->n_labels; j++) {
        int found = 0;
        for (int i = 1; i < a->n_labels && !found; i++)
            found = st->label_values[j] == a->values[i];
        if (!found && !missing++)
            first_missing = st->label_values[j];
    }
    return gi_fail(err, "data.anatomy %s is not the image %s was trained with: it has %d labels, the checkpoint %d (%d "
                   "not in the checkpoint, e.g. %d; %d missing, e.g. %d); %s the training's anatomy image",
                   c->data.anatomy, checkpoint, a->n_labels - 1, st->n_labels - 1, extra, first_extra, missing,
                   first_missing, for_render ? "render with" : "use");
}

/* The INR of a checkpoint: a single network for any donor, in batches of
 * render.batch_voxels; a model over data.prior or an ensemble for the donor
 * average. */
static int open_inr(gi_map_source *s, const gi_config *c, const char *checkpoint, int for_render, gi_err *err)
{
    int K = gi_ensemble_size(c), single = c->data.prior == GI_PRIOR_NONE && K == 1;
    if (!single && strcmp(c->render.donor, "average") != 0)
        return gi_fail(err, "render.donor: a model trained over data.prior or as a train.ensemble %s the donor "
                       "average only", for_render ? "renders" : "has");
    s->batch = single ? c->render.batch_voxels : MAP_METHOD_BATCH;
    s->m = gi_method_inr_load(checkpoint, c, c->render.donor, single ? s->batch : 0, err);
    if (!s->m)
        return -1;
    const gi_state *st = gi_method_inr_checkpoint(s->m);
    if (st->n_labels > 0 && !c->data.anatomy[0])
        return gi_fail(err, "%s was trained with an anatomical input; set data.anatomy to the label image", checkpoint);
    if (c->data.anatomy[0]) {
        /* Without a list the labels are derived from the image (non-integer labels are refused). */
        if (gi_anatomy_load(&s->anat, c->data.anatomy, NULL, 0, err) != 0)
            return -1;
        s->have_anat = 1;
        if (st->n_labels > 0 && check_labels(s, c, st, checkpoint, for_render, err) != 0)
            return -1;
    }
    s->n_genes = st->n_genes;
    s->genes = st->genes;
    s->n_donors = st->n_donors;
    s->donors = st->donors;
    s->donor = c->render.donor;
    return 0;
}

/* A baseline fitted on every sample of data.samples (per-gene standardised,
 * no validation split, no prior). */
static int open_baseline(gi_map_source *s, const gi_config *c, int for_render, gi_err *err)
{
    int kind = c->render.method;
    if (!for_render && strcmp(c->render.donor, "average") != 0)
        return gi_fail(err, "render.donor: render.method %s has no donor term (it pools every donor's samples), so "
                       "it gives the donor average only; set render.donor to average", GI_METHOD_NAMES[kind]);
    if (gi_method_needs_anatomy(kind) && !c->data.anatomy[0])
        return gi_fail(err, "render.method: %s needs data.anatomy (a label image)", GI_METHOD_NAMES[kind]);
    gi_config all = *c;
    all.train.val_mode = GI_VAL_NONE; /* a baseline map uses every sample */
    all.data.prior = GI_PRIOR_NONE;   /* ... and the plain standardised values, not a model's residuals */
    if (gi_dataset_build(&s->d, &all, err) != 0)
        return -1;
    s->have_d = 1;
    if (c->data.anatomy[0]) {
        /* Same label list as the dataset's (both derived from the image). */
        if (gi_anatomy_load(&s->anat, c->data.anatomy, s->d.label_values, s->d.n_labels, err) != 0)
            return -1;
        s->have_anat = 1;
    }
    const gi_samples *sm = &s->d.s;
    gi_fit_data fd = {.n = sm->n, .n_genes = sm->n_genes, .mni = sm->mni, .y = s->d.y, .donor = sm->donor,
                      .n_donors = sm->n_donors, .donor_names = sm->donor_names, .gene_names = sm->gene_names,
                      .label = s->d.label, .n_labels = s->d.n_labels};
    gi_method_opts o;
    gi_method_opts_from_config(&o, c);
    s->m = gi_method_fit(kind, &o, &fd, err);
    if (!s->m)
        return gi_fail_prefix(err, "render.method %s", GI_METHOD_NAMES[kind]);
    s->batch = MAP_METHOD_BATCH;
    s->n_genes = sm->n_genes;
    s->genes = sm->gene_names;
    s->n_donors = sm->n_donors;
    s->donors = sm->donor_names;
    s->mean = s->d.gene_mean;
    s->std = s->d.gene_std;
    s->donor = "average";
    return 0;
}

static int open_method(gi_map_source *s, const gi_config *c, const char *checkpoint, int for_render, gi_err *err)
{
    s->kind = c->render.method;
    return c->render.method == GI_METHOD_INR ? open_inr(s, c, checkpoint, for_render, err)
                                             : open_baseline(s, c, for_render, err);
}

int gi_map_source_method(gi_map_source *s, const gi_config *c, const char *checkpoint, int for_render, gi_err *err)
{
    memset(s, 0, sizeof *s);
    return open_method(s, c, checkpoint, for_render, err);
}

int gi_map_source_open(gi_map_source *s, const gi_config *c, const char *checkpoint, gi_err *err)
{
    memset(s, 0, sizeof *s);
    s->kind = c->render.method;
    int rc = 0;
    if (!c->render.mask[0])
        rc = gi_fail(err, "%s: render.mask is not set (the NIfTI mask whose voxels the in_mask column names)",
                     c->source[0] ? c->source : "config");
    else if (gi_volume_read(&s->mask, c->render.mask, 1, err) != 0)
        rc = gi_fail_prefix(err, "render.mask");
    else if (gi_affine_invert(s->mask.affine, s->mask_inv) != 0)
        rc = gi_fail(err, "render.mask %s: its affine is singular", c->render.mask);
    else
        rc = open_method(s, c, checkpoint, 0, err);
    if (rc != 0)
        gi_map_source_free(s);
    return rc;
}

int gi_map_source_in_mask(const gi_map_source *s, const double mm[3])
{
    const gi_volume *v = &s->mask;
    double ijk[3];
    gi_affine_apply(s->mask_inv, mm[0], mm[1], mm[2], ijk);
    long i = lround(ijk[0]), j = lround(ijk[1]), k = lround(ijk[2]);   /* as gi_anatomy_index_at */
    if (i < 0 || j < 0 || k < 0 || i >= v->nx || j >= v->ny || k >= v->nz)
        return 0;
    return gi_render_in_mask(v->data[((size_t)k * v->ny + (size_t)j) * v->nx + (size_t)i]);
}

int gi_map_source_predict(const gi_map_source *s, int n, const double *mm, int g0, int ng, float *out, gi_err *err)
{
    int B = n < s->batch ? n : s->batch;
    float *pts = malloc(sizeof(float) * 3 * (size_t)(B > 0 ? B : 1));
    int *label = s->have_anat ? malloc(sizeof(int) * (size_t)(B > 0 ? B : 1)) : NULL;
    int rc = pts && (label || !s->have_anat) ? 0 : gi_fail(err, "out of memory for %d points", B);
    for (int q0 = 0; rc == 0 && q0 < n; q0 += B) {
        int nb = n - q0 < B ? n - q0 : B;
        const double *p = mm + 3 * (size_t)q0;
        for (int k = 0; k < nb; k++) {
            /* The label from the millimetres as given, the network from their
             * floats: render_plan.c's order (label from the double centre). */
            for (int a = 0; a < 3; a++)
                pts[3 * k + a] = (float)p[3 * k + a];
            if (label)
                label[k] = gi_anatomy_index_at(&s->anat, p[3 * k], p[3 * k + 1], p[3 * k + 2]);
        }
        float *o = out + (size_t)q0 * ng;
        rc = gi_method_predict_genes(s->m, nb, pts, label, g0, ng, o, err);
        if (rc == 0 && s->mean)
            for (int k = 0; k < nb; k++)
                for (int j = 0; j < ng; j++)
                    o[(size_t)k * ng + j] = o[(size_t)k * ng + j] * s->std[g0 + j] + s->mean[g0 + j];
    }
    free(pts);
    free(label);
    return rc;
}

void gi_map_source_predict_bytes(const gi_map_source *s, size_t *per_gene, size_t *fixed)
{
    gi_method_predict_bytes(s->m, per_gene, fixed);
}

void gi_map_source_free(gi_map_source *s)
{
    gi_method_free(s->m);
    gi_volume_free(&s->mask);
    if (s->have_anat)
        gi_anatomy_free(&s->anat);
    if (s->have_d)
        gi_dataset_free(&s->d);
    memset(s, 0, sizeof *s);
}
