/* nifti.h - NIfTI-1/NIfTI-2 volumes through niftilib (libnifti2).
 *
 * A gi_volume is a 3-D grid of floats in NIfTI storage order: voxel (i, j, k)
 * is data[(k * ny + j) * nx + i], i.e. a C array [k][j][i] - the same memory
 * layout as an HDF5 dataset of shape (z, y, x) = (nk, nj, ni).
 * affine maps voxel (i, j, k, 1) to world millimetres (MNI for our inputs):
 * the sform when sform_code > 0, else the qform when qform_code > 0, else a
 * diagonal of pixdim (NIfTI "method 1"). Any on-disk datatype is read and
 * scaled by scl_slope/scl_inter when slope is non-zero and not 1/0.
 */
#ifndef GENEINR_NIFTI_H
#define GENEINR_NIFTI_H

#include <stddef.h>

#include <stdint.h>

#include "geneinr/error.h"

typedef struct gi_volume {
    int nx, ny, nz;         /* voxel counts along i, j, k */
    double affine[16];      /* row-major 4x4: voxel (i,j,k,1) -> mm */
    float *data;            /* [nz][ny][nx]; NULL if read with header only */
    void *hdr;              /* niftilib nifti_image header (no data): the geometry to copy when writing */
} gi_volume;

/* Read a 3-D volume (4-D accepted only when it has a single volume).
 * read_data = 0 reads the header only. */
int gi_volume_read(gi_volume *v, const char *path, int read_data, gi_err *err);

/* A label image: the geometry into v (no float data) and its voxels as
 * exact integers into *labels ([nz][ny][nx], malloc'd). Any integer
 * datatype (int64 and uint64 too, without rounding through float) and float
 * images holding whole numbers are accepted; NaN is 0 (background). */
int gi_volume_read_labels(gi_volume *v, const char *path, int64_t **labels, gi_err *err);

/* Write data ([nz][ny][nx] floats) as a float32 NIfTI file (.nii or .nii.gz)
 * with the geometry of geom: same dims, pixdim, sform/qform codes and matrices,
 * xyzt units; NIfTI-1 when geom was NIfTI-1, NIfTI-2 when it was NIfTI-2.
 * description goes to the header's descrip field (truncated to fit). */
int gi_volume_write_like(const gi_volume *geom, const float *data, const char *path,
                         const char *description, gi_err *err);

/* The same with uint16 codes ([nz][ny][nx]) and value = slope * code + inter
 * (scl_slope, scl_inter: float32 in the header, so both must be float32
 * values, slope > 0): render.dtype uint16's per-gene maps (atlas.h). */
int gi_volume_write_like_u16(const gi_volume *geom, const uint16_t *codes, double slope, double inter,
                             const char *path, const char *description, gi_err *err);

/* Write a new volume on a given affine (sform and qform both set from it, codes
 * = code, e.g. 4 = MNI152), datatype float32 (is_label = 0) or uint8/int16
 * labels (is_label = 1: values must be integers; uint8 if all in 0..255, else int16). */
int gi_volume_write_new(int nx, int ny, int nz, const double affine[16], int code,
                        const float *data, int is_label, const char *path, gi_err *err);

/* The first bytes of a 4-D float32 NIfTI file on geom's geometry with nt
 * volumes along the 4th axis (pixdim[4] = 1, no time units: the axis is an
 * index, e.g. genes): header + extender, *len <= GI_NIFTI_HEADER_MAX bytes
 * into buf. The nt volumes ([nz][ny][nx] floats each, native byte order)
 * follow directly, so a writer can compress volumes independently (export.c
 * writes one gzip member per volume, in parallel). path only names the file
 * in niftilib's header and in messages. */
#define GI_NIFTI_HEADER_MAX 1024
int gi_volume_4d_header(const gi_volume *geom, int nt, const char *path, const char *description,
                        unsigned char *buf, size_t *len, gi_err *err);

void gi_volume_free(gi_volume *v);

/* out = A * (i, j, k, 1), first three components. */
void gi_affine_apply(const double A[16], double i, double j, double k, double out[3]);

/* inv = A^-1 for a 4x4 affine; -1 if singular. */
int gi_affine_invert(const double A[16], double inv[16]);

#endif
