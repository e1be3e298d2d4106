/* map_source.h - the map a config renders, evaluated at any MNI points
 * (`geneinr predict`).
 *
 * The same method the render makes from the same config: render.c takes its
 * method from gi_map_source_method, so the two cannot drift. The rules:
 *  - render.method inr: the checkpoint's network with gi_method_inr_load
 *    (best-validation weights; with data.prior the prior rebuilt from the
 *    config; with train.ensemble the mean of the members beside it), for
 *    render.donor (a single network: "average" or one donor; over a prior
 *    or as an ensemble: the average only). A checkpoint trained with an
 *    anatomy needs data.anatomy, and that image must hold the label set the
 *    checkpoint was trained with.
 *  - a baseline (nearest, idw, kriging, regression_kriging): fitted on every
 *    sample of data.samples, per-gene standardised, no validation split, no
 *    prior, predicting the donor average (render.donor other than average is
 *    refused, since a baseline has no donor term).
 * Values come back in the sample table's units.
 *
 * The anatomy label of a point is gi_anatomy_index_at at its MNI mm: the
 * label of the voxel of data.anatomy nearest the point, which is what the
 * render takes for a voxel at that voxel's centre (render_plan.c). The
 * sample-matching tolerance (data.anatomy_tolerance, label_match.h) is for
 * tissue samples and is not applied, as the render does not apply it.
 * "In the mask" is likewise the nearest voxel of render.mask: non-zero and
 * not NaN (gi_render_in_mask); a point whose nearest voxel is off the grid is
 * outside.
 *
 * Local to each rank (no communication); the fitted method is immutable.
 */
#ifndef GENEINR_MAP_SOURCE_H
#define GENEINR_MAP_SOURCE_H

#include <stddef.h>

#include "geneinr/anatomy.h"
#include "geneinr/config.h"
#include "geneinr/dataset.h"
#include "geneinr/error.h"
#include "geneinr/method.h"
#include "geneinr/nifti.h"

typedef struct gi_map_source {
    gi_method *m;
    int kind;                /* render.method */
    gi_volume mask;          /* render.mask (its geometry and values) */
    double mask_inv[16];     /* MNI mm -> mask voxel */
    gi_anatomy anat;         /* data.anatomy, when have_anat */
    int have_anat;
    gi_dataset d;            /* baselines: the samples they are fitted on */
    int have_d;
    int batch;               /* points per predict call in the render of this method */
    int n_genes;
    char *const *genes;      /* [n_genes] in the atlas's order (the checkpoint's, genes.tsv) */
    int n_donors;            /* the checkpoint's or the samples' donors */
    char *const *donors;
    const float *mean, *std; /* baselines predict standardised values: de-standardised with these; NULL = not */
    const char *donor;       /* whose map: render.donor ("average" for the baselines) */
} gi_map_source;

/* The method of config c (render.method; checkpoint: the trained INR's file,
 * unused by a baseline), render.mask and data.anatomy. 0 or -1; on failure s
 * holds nothing (no free needed). */
int gi_map_source_open(gi_map_source *s, const gi_config *c, const char *checkpoint, gi_err *err);

/* The method alone (render.method with its anatomy and, for a baseline, its
 * samples; not render.mask): the one set-up the render (render.c) and
 * predict share, so that they cannot drift. for_render: the render's wording
 * of the refusals, and a baseline with another render.donor renders the
 * donor average (the atlas says rendered_for "average") where predict
 * refuses it. s is zeroed first; on failure gi_map_source_free(s). */
int gi_map_source_method(gi_map_source *s, const gi_config *c, const char *checkpoint, int for_render, gi_err *err);

/* Is the mask voxel nearest mm (MNI) inside the mask? 0 off the grid. */
int gi_map_source_in_mask(const gi_map_source *s, const double mm[3]);

/* The maps of genes g0 .. g0+ng-1 at n points mm [n][3] (MNI, double as
 * parsed; the method gets them as floats, as the render does): out [n][ng],
 * in the sample table's units. Predicts in calls of at most s->batch points
 * from the first, so a point's value depends only on its place in those
 * calls. Scratch bounded by n. */
int gi_map_source_predict(const gi_map_source *s, int n, const double *mm, int g0, int ng, float *out, gi_err *err);

/* What one predict call takes beyond out, per gene and fixed (method.h). */
void gi_map_source_predict_bytes(const gi_map_source *s, size_t *per_gene, size_t *fixed);

void gi_map_source_free(gi_map_source *s);

#endif
