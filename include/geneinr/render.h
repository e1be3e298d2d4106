/* render.h - every interpolation method on every in-mask voxel of a grid.
 *
 * render.method inr renders a trained checkpoint (its network; with
 * data.prior, network + prior rebuilt from the config; with train.ensemble,
 * the mean of its members); a baseline (nearest, idw, kriging,
 * regression_kriging) is fitted on every sample of data.samples (per-gene
 * standardised, no validation split) and predicts the donor average. All go
 * through the same loop and make the same OUT/atlas.h5 (atlas.h), so a
 * baseline opens beside the model in the same tools.
 *
 * The mask's grid is split into z-slabs with about equal numbers of in-mask
 * voxels (render_plan.h), one per rank. A rank walks its slab in rounds of
 * whole z-slices - as many as fit in render.buffer_mb for all genes (or one
 * slice of a group of genes) - predicting in-mask voxels in batches, and all
 * ranks write each round collectively into one parallel-HDF5 atlas. Memory
 * per rank is therefore bounded by the config, not by the volume. Values are
 * in the sample table's units (value = output * gene_std + gene_mean). With
 * render.nifti, each gene is also written as OUT/nifti/<gene>.nii.gz on the
 * mask's geometry (genes dealt round-robin to ranks).
 */
#ifndef GENEINR_RENDER_H
#define GENEINR_RENDER_H

#include <mpi.h>

#include "geneinr/config.h"
#include "geneinr/error.h"

typedef struct gi_render_result {
    long voxels;             /* in-mask voxels rendered (all ranks) */
    int genes;
    double seconds;
    double voxels_per_second;
} gi_render_result;

/* checkpoint: path of the trained checkpoint (render.method inr; unused by a
 * baseline); writes OUT/atlas.h5. Collective. */
int gi_render(const gi_config *c, MPI_Comm comm, const char *out_dir, const char *checkpoint,
              gi_render_result *res, gi_err *err);

#endif
