/* score.h - accuracy of a rendered atlas against a known truth (the phantom).
 *
 * For each gene present in both files (matched by name): voxel-wise Pearson r
 * over in-mask voxels (every stride-th voxel along each axis) between the
 * atlas and the truth, and the same for the nearest-sample map (each voxel
 * takes the value of the nearest sample, in MNI mm, that measured the gene) -
 * the baseline any interpolator must beat. Also RMSE after a least-squares
 * affine fit (scale + offset) of each map to the truth.
 */
#ifndef GENEINR_SCORE_H
#define GENEINR_SCORE_H

#include <stdio.h>

#include "geneinr/error.h"

typedef struct gi_gene_score {
    char gene[64];
    double r_model, r_nearest;
    double rmse_model, rmse_nearest;
    long n_voxels;
} gi_gene_score;

typedef struct gi_score {
    int n;
    gi_gene_score *genes;
    double mean_r_model, mean_r_nearest;
} gi_score;

int gi_score_atlas(const char *atlas_path, const char *truth_path, const char *samples_path,
                   int stride, gi_score *out, gi_err *err);

/* Table per gene and the means, human-readable. */
void gi_score_print(FILE *f, const gi_score *s);

/* The same as JSON: {"genes":[{...}], "mean_r_model":..., "mean_r_nearest":...}. */
int gi_score_write_json(const char *path, const gi_score *s, gi_err *err);

void gi_score_free(gi_score *s);

#endif
