/* regions.h - region tables (abagen's main output) from a continuous atlas.
 *
 * For any parcellation on any grid: every labelled parcellation voxel (i, j,
 * k) is taken to MNI mm through the parcellation's affine and then to the
 * nearest atlas voxel through the inverse of the atlas affine (rounding each
 * index, exact halves upward: floor(v + 0.5 + 1e-6)); it counts for its label when that atlas voxel is in the atlas mask
 * and holds a finite value. Per (label, gene): the voxel count, the mean and
 * the standard deviation (population, ddof 0) of those atlas values, summed in
 * double, and the mean of the atlas's /uncertainty (the map's predictive SD,
 * in expression units) over the same voxels. Every non-zero label of the
 * parcellation gets a row per gene, and so does every id of the labels CSV; a
 * label without voxels in the mask has n_voxels 0 and empty mean and sd.
 *
 * Samples per region (issue 28): the atlas's samples (/sample_mni,
 * /sample_donor: every sample of the table the map was fitted on) are matched
 * to the parcellation's labels by the rule of label_match.h, on the
 * parcellation's own grid and affine: the sample's own voxel (nearest voxel
 * centre), else the nearest labelled voxel centre within tolerance_mm
 * (Euclidean mm; ties: nearest label centroid, then the lowest label), else
 * none. The tolerance defaults to the data.anatomy_tolerance the atlas was
 * trained with (its recorded config; 0 without one), so a region's samples
 * are those training would give that label; the class/hemisphere rule is not
 * applied (the atlas keeps no sample annotations). n_samples counts the
 * samples matched to the region (whatever genes they measured: the same in
 * every gene's row), n_donors the distinct donors among them.
 *
 * Output CSV (long format, one row per region and gene, labels ascending,
 * genes in atlas order):
 *   id,label,gene,n_voxels,mean,sd,mean_uncertainty,n_samples,n_donors
 * where label is the name from the labels CSV (columns id and label, as in
 * abagen's atlas tables; empty without one). mean_uncertainty is empty when
 * the atlas has no /uncertainty (rendered without render.uncertainty) or the
 * region no voxel; n_samples and n_donors are empty when the atlas holds no
 * sample positions (written before issue 28; a truth file): the table says
 * so in a note, and never fails for it.
 */
#ifndef GENEINR_REGIONS_H
#define GENEINR_REGIONS_H

#include <stddef.h>
#include <stdint.h>

#include "geneinr/error.h"
#include "geneinr/label_match.h"
#include "geneinr/nifti.h"

/* What gi_regions_table was asked. */
typedef struct gi_regions_args {
    const char *atlas, *parcellation;
    const char *labels_csv;      /* may be NULL */
    const char *out_csv;
    double tolerance_mm;         /* sample matching; < 0 = the atlas's data.anatomy_tolerance */
} gi_regions_args;

/* Where the tolerance came from: --tolerance, the atlas's recorded
 * data.anatomy_tolerance, or 0 for want of a config this geneinr reads. */
enum { GI_TOLERANCE_GIVEN, GI_TOLERANCE_ATLAS, GI_TOLERANCE_NONE };

/* What it did, for the command's summary. */
typedef struct gi_regions_result {
    long n_regions;
    int have_sd;                 /* mean_uncertainty filled */
    int n_samples;               /* samples of the atlas (0: counts empty) */
    double tolerance_mm;         /* the tolerance used */
    int tolerance_from;          /* GI_TOLERANCE_*: whose it is */
    gi_match_summary match;      /* how the samples met the labels (when n_samples > 0) */
    char warning[2400];          /* more than half of the labelled voxels outside the mask ("" otherwise) */
    char note[600];              /* why a column is empty ("" when all are filled) */
} gi_regions_result;

/* Refused before any work: --out naming an input (by device and inode); a
 * labels CSV listing an id twice (both lines named); a parcellation without
 * labelled voxels or with none inside the atlas mask. The parcellation may
 * be of any integer datatype (int64 too, exactly) or whole-numbered floats. */
int gi_regions_table(const gi_regions_args *in, gi_regions_result *out, gi_err *err);

/* The sample counts alone: the n samples (mni [n][3] MNI mm, donor [n]
 * names) matched to the labels of the label image lab (geometry p) at
 * tolerance_mm by label_match.h's rule. ids [nl]: the label values, ascending
 * (every non-zero value of lab among them). n_samples [nl] and n_donors [nl]
 * receive each label's counts; sum (may be NULL) how the matching went. */
int gi_regions_count_samples(const gi_volume *p, const int64_t *lab, const long *ids, int nl, int n,
                             const double *mni, const char *const *donor, double tolerance_mm, long *n_samples,
                             int *n_donors, gi_match_summary *sum, gi_err *err);

#endif
