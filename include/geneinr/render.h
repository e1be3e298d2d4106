/* render.h - evaluate a trained model on every in-mask voxel of a grid.
 *
 * The mask's grid is split into z-slabs with about equal numbers of in-mask
 * voxels (dist.h), one per rank. A rank walks its slab in rounds of whole
 * z-slices - as many as fit in render.buffer_mb for all genes - evaluating
 * in-mask voxels in batches of render.batch_voxels (sgemm per layer), and all
 * ranks write each round collectively into one parallel-HDF5 atlas (atlas.h).
 * Memory per rank is therefore bounded by the config, not by the volume.
 * Values are de-standardised back to the sample table's units:
 * value = output * gene_std + gene_mean.
 * With render.nifti, each gene is also written as OUT/nifti/<gene>.nii.gz on
 * the mask's geometry (genes dealt round-robin to ranks).
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

/* checkpoint: path of the trained checkpoint; writes OUT/atlas.h5. Collective. */
int gi_render(const gi_config *c, MPI_Comm comm, const char *out_dir, const char *checkpoint,
              gi_render_result *res, gi_err *err);

#endif
