/* render_method.h - render a baseline interpolator into the atlas layout.
 *
 * render.method other than inr: the method (method.h) is fitted on every
 * sample of data.samples (per-gene standardised as the INR trains, no
 * validation split), then predicts the donor average at every in-mask voxel
 * centre of render.mask, de-standardised back to the table's units. The
 * output is the same OUT/atlas.h5 as the model's (atlas.h) - z-slabs
 * balanced by in-mask voxels, one collective write per round of slices
 * bounded by render.buffer_mb - plus OUT/nifti/<gene>.nii.gz with
 * render.nifti, so a baseline opens beside the model in the same tools.
 * Every rank fits the same method (deterministic) and predicts its slab.
 * A model trained over data.prior renders here too (render.method inr with
 * a prior): the network's donor-average output plus the prior, rebuilt from
 * the same table and split.
 */
#ifndef GENEINR_RENDER_METHOD_H
#define GENEINR_RENDER_METHOD_H

#include <mpi.h>

#include "geneinr/config.h"
#include "geneinr/error.h"
#include "geneinr/render.h"

/* render.method = inr is accepted too (the path for models trained over a
 * data.prior, which the model render does not add): checkpoint names it. */
int gi_render_method(const gi_config *c, MPI_Comm comm, const char *out_dir, const char *checkpoint,
                     gi_render_result *res, gi_err *err);

#endif
