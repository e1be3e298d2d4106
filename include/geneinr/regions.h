/* regions.h - region tables (abagen's main output) from a continuous atlas.
 *
 * For any parcellation on any grid: every labelled parcellation voxel (i, j,
 * k) is taken to MNI mm through the parcellation's affine and then to the
 * nearest atlas voxel through the inverse of the atlas affine (rounding each
 * index, exact halves upward: floor(v + 0.5 + 1e-6)); it counts for its label when that atlas voxel is in the atlas mask
 * and holds a finite value. Per (label, gene): the voxel count, the mean and
 * the standard deviation (population, ddof 0) of those atlas values, summed in
 * double. Every non-zero label of the parcellation gets a row per gene, and
 * so does every id of the labels CSV; a label without voxels in the mask has
 * n_voxels 0 and empty mean and sd.
 *
 * Output CSV (long format, one row per region and gene, labels ascending,
 * genes in atlas order): id,label,gene,n_voxels,mean,sd
 * where label is the name from the labels CSV (columns id and label, as in
 * abagen's atlas tables; empty without one).
 */
#ifndef GENEINR_REGIONS_H
#define GENEINR_REGIONS_H

#include "geneinr/error.h"

/* Refused before any work: --out naming an input (by device and inode); a
 * labels CSV listing an id twice (both lines named); a parcellation without
 * labelled voxels or with none inside the atlas mask. The parcellation may
 * be of any integer datatype (int64 too, exactly) or whole-numbered floats.
 * warning (may be NULL) receives a line when more than half of the
 * labelled voxels fall outside the atlas mask ("" otherwise). */
#include <stddef.h>

int gi_regions_table(const char *atlas_path, const char *parcellation_path, const char *labels_csv,
                     const char *out_csv, long *n_regions, char *warning, size_t warning_size, gi_err *err);

#endif
