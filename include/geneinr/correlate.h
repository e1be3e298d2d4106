/* correlate.h - `geneinr correlate`: which genes of an atlas follow a brain map,
 * with spatial nulls that keep false positives at their nominal rate.
 *
 * Phases (all ranks; errors agreed collectively before every collective):
 *  1. Set-up. The user's map (NIfTI, any affine) is resampled onto the atlas
 *     grid: trilinear through both affines, a corner outside the image or NaN
 *     left out and the rest renormalised (no value when the corners with data
 *     weigh less than half); nearest voxel when the map's datatype is an
 *     integer type (labels, masks). NaN marks "no data"; zeros are values.
 *     The share of the atlas mask with a map value must be >= 50%.
 *  2. Units. The analysis runs over units:
 *     - voxels (default): the atlas grid in blocks of f x f x f voxels,
 *       f = round(resolution / voxel size) per axis (resolution 4 mm: a 1 mm
 *       atlas in 4 mm blocks, 2 mm in 2 mm blocks; resolution 0: the atlas's
 *       own voxels). A block is a unit when at least half of its voxels are in
 *       the mask with a map value; its map and gene values are the means over
 *       those voxels. This is the sampled mode of Burt 2020 made regular: the
 *       observed r and every null r are computed over the same units.
 *     - regions (--parcellation): each atlas voxel in the mask with a map value
 *       takes the label of the nearest parcellation voxel (through the
 *       affines); a unit per non-zero label with voxels, its values the means,
 *       its position the centroid of those voxels (mm).
 *     Gene means are read in parallel (genes dealt to ranks in blocks).
 *  3. Observed r: Pearson over the units where the gene is finite; p_naive
 *     the two-sided t-test with n - 2 degrees of freedom.
 *  4. Nulls (nulls.h): N variogram-matched surrogates of the map (grid mode
 *     over voxel units, points mode over regions) and, for regions, N Moran
 *     spectral randomisations; surrogate k is a pure function of (seed, k).
 *     Nulls are dealt to ranks in contiguous blocks and gathered in order, so
 *     every output is identical at any rank count.
 *     p_spatial = (1 + #{k: |r_null_k| >= |r|}) / (1 + N), two-sided;
 *     q_spatial: Benjamini-Hochberg over the genes.
 *  5. Gene sets: a set's statistic is the mean r of its genes in the atlas;
 *     p_gene_resampling against GI_CORRELATE_RESAMPLES random sets of the same
 *     size from the atlas's genes, p_spatial against the set's mean r over the
 *     N spatial nulls (Fulcher 2021's ensemble null); both two-sided, on |mean r|.
 *  6. Outputs (rank 0, each through .tmp + rename, owned through the folder's
 *     manifest): correlations.csv, nulls.h5, gene_sets.csv, report.html and
 *     figures/.
 */
#ifndef GENEINR_CORRELATE_H
#define GENEINR_CORRELATE_H

#include <stdint.h>

#include <mpi.h>

#include "geneinr/error.h"

#define GI_CORRELATE_RESAMPLES 10000
#define GI_CORRELATE_MIN_SHARE 0.5
#define GI_CORRELATE_MAX_SETS 64

typedef struct gi_correlate_opts {
    const char *atlas, *map, *out;
    const char *parcellation;           /* NULL: voxels */
    const char *gene_sets[GI_CORRELATE_MAX_SETS];
    int n_gene_sets;
    long n_nulls;                       /* >= 1 */
    uint64_t seed;
    double resolution_mm;               /* voxel units' block size; 0 = the atlas's voxels */
    int top_genes;                      /* genes shown in the report */
} gi_correlate_opts;

typedef struct gi_correlate_summary {
    int n_genes, n_units, block[3];
    double share;                       /* of the atlas mask with a map value */
    char top_gene[128];
    double top_r, top_p;
    double seconds_nulls;
    char note[4096];                    /* warnings for the user ("" when none) */
} gi_correlate_summary;

int gi_correlate_run(MPI_Comm comm, const gi_correlate_opts *o, gi_correlate_summary *sum, gi_err *err);

/* Statistics, exposed for the unit tests. */
/* Two-sided p of a Pearson r over n points (t-test, n - 2 degrees of freedom). */
double gi_corr_p_naive(double r, long n);
/* Benjamini-Hochberg q of n p-values (NaN stays NaN and is not counted). */
void gi_corr_bh(const double *p, int n, double *q);

#endif
