/* mapfile.h - a user's brain map (NIfTI) and how to sample it.
 *
 * gi_map_read reads a 3-D map with its data and says whether its datatype is
 * an integer type (labels and masks are sampled at the nearest voxel, not
 * interpolated). gi_map_sample takes the map at a world point (mm).
 */
#ifndef GENEINR_MAPFILE_H
#define GENEINR_MAPFILE_H

#include "geneinr/error.h"
#include "geneinr/nifti.h"

typedef struct gi_map {
    gi_volume vol;
    double inv[16];       /* mm -> voxel */
    int is_integer;       /* datatype is an integer type */
} gi_map;

int gi_map_read(gi_map *m, const char *path, gi_err *err);

/* The map at world point p (mm): trilinear over the 8 surrounding voxels,
 * leaving out corners outside the image or not finite and renormalising the
 * rest (NaN when those with data weigh less than one half); nearest voxel for
 * integer maps (NaN outside). */
double gi_map_sample(const gi_map *m, const double p[3]);

void gi_map_free(gi_map *m);

#endif
