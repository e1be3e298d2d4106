/* uncertainty.h - what a render needs for its uncertainty outputs (issue 28):
 * the lattice of the SD's smooth part, and the distance to the nearest sample.
 *
 * The SD's smooth part q(x) (method.h: gi_method_sd_smooth, for kriging
 * r(x)'A^-1 r(x)) costs O(samples^2) per point: ~2e13 flops for every voxel
 * of a 1 mm brain. It is smooth in space (it varies on the covariance range,
 * centimetres), so the render computes it exactly on a coarse lattice and
 * interpolates it trilinearly to every in-mask voxel; the rest of the SD
 * (labels, sill per gene, ensemble spread, calibration) is cheap and exact
 * per voxel (gi_method_predict_sd with that q).
 *
 * The lattice is aligned to the render grid: its points are the voxel centres
 * (o + a step, o + b step, o + c step) in voxel indices (i, j, k), o the low
 * corner of the mask's bounding box, so a voxel's eight corners are
 * the points around it, and it covers the box plus one lattice cell. Only
 * points that are a corner of a cell holding an in-mask voxel are computed.
 *
 * How close (bench/bench_sd_lattice.c, docs/BENCHMARKS.md "Uncertainty render
 * cost"): q is not smooth everywhere - with the exponential covariance it has
 * a cusp at every sample (a peak of the explained variance), which a lattice
 * cuts, so the SD is overestimated within a few mm of samples (the error is
 * one-sided there: conservative) and close elsewhere. The error depends on
 * the lattice's spacing in mm (step x voxel size), hence the default step 3:
 * 3 mm on a 1 mm grid, 6 mm on the 2 mm phantom.
 *
 * What must stay true: a lattice point's q must not depend on the rank or the
 * block that computes it, so that atlases are byte-identical at any rank count
 * (sd_smooth may round a point by its place in a batch, as GEMM kernels do).
 * q is therefore computed a whole z-plane at a time, its needed points in
 * row-major order, in batches of GI_LATTICE_BATCH points starting at the
 * plane's first point; which points are needed depends on the mask alone. A
 * rank computes each plane its slices need, once; neighbouring ranks compute
 * the plane they share twice, with the same result.
 */
#ifndef GENEINR_UNCERTAINTY_H
#define GENEINR_UNCERTAINTY_H

#include <mpi.h>

#include "geneinr/error.h"
#include "geneinr/knn.h"
#include "geneinr/method.h"
#include "geneinr/nifti.h"

/* Points per sd_smooth call on the lattice: part of the result (above). */
#define GI_LATTICE_BATCH 1024

typedef struct gi_sd_lattice {
    int step;                /* voxels between lattice points (>= 2; 1 = exact, no lattice) */
    int width;               /* values per point (gi_method_sd_width: kriging's q, r'A^-1 1, r'A^-1 s_l) */
    int o[3];                /* voxel (i, j, k) of lattice point (0, 0, 0) */
    int n[3];                /* lattice points along i, j, k */
    double affine[16];       /* the mask's voxel -> MNI mm */
    float *q;                /* [n2][n1][n0][width] the smooth part at the lattice points (needed ones, of computed planes) */
    unsigned char *need;     /* [n2][n1][n0] 1 = a corner of a cell that holds an in-mask voxel */
    unsigned char *done;     /* [n2] 1 = plane computed on this rank */
    float *pts, *qb;         /* scratch: [GI_LATTICE_BATCH][3] MNI mm, [GI_LATTICE_BATCH][width] */
    long computed;           /* lattice points computed on this rank */
} gi_sd_lattice;

/* The lattice of the mask's grid with the given step (>= 2), width values
 * per point (gi_method_sd_width of the method it is for). Local. */
int gi_sd_lattice_init(gi_sd_lattice *L, const gi_volume *mask, int step, int width, gi_err *err);

/* Bytes gi_sd_lattice_init allocates for this mask, step and width (for the render's memory plan). */
size_t gi_sd_lattice_bytes(const gi_volume *mask, int step, int width);

/* Compute (once) every plane that slices [z0, z0 + nzb) interpolate from. Local. */
int gi_sd_lattice_planes(gi_sd_lattice *L, const gi_method *m, int z0, int nzb, gi_err *err);

/* Every plane of the lattice, each computed by one rank (contiguous plane
 * ranges balanced by needed points) and shared with the others: collective
 * over comm. A render's blocks of slices are dealt to the ranks across the
 * whole volume, so alone each rank would compute nearly every plane (at 1 mm,
 * step 4, 29,978 of the ~30,000 points on rank 0 of 2); shared, the lattice
 * costs 1/size of it per rank. Same bits at any rank count (fixed batches). */
int gi_sd_lattice_share(gi_sd_lattice *L, const gi_method *m, MPI_Comm comm, gi_err *err);

/* The smooth part at nb in-mask voxels vox [nb][3] (i, j, k): q [nb][width],
 * trilinear from the lattice (whose planes for them are computed). */
void gi_sd_lattice_at(const gi_sd_lattice *L, int nb, const int *vox, float *q);

void gi_sd_lattice_free(gi_sd_lattice *L);

/* ---- the general lattice: several values per point, planes held per block ----
 *
 * The same lattice (alignment, needed points, a plane's fixed batches,
 * trilinear weights) for a smooth function with `width` values per point,
 * e.g. the prior's Gaussian-process part of a gene group (issue 31,
 * render.prior_step): only the planes of the current block of slices are
 * held (gi_lattice_planes frees the others), since a rank walks its slabs
 * upwards within a gene group; gi_lattice_reset drops them all for the next
 * group. Values of points that are not needed are NaN. */

/* The function on the lattice: out [n][width] at n MNI points mni [n][3]. */
typedef int (*gi_lattice_fn)(void *ctx, int n, const float *mni, float *out, gi_err *err);

typedef struct gi_lattice {
    int step, o[3], n[3];    /* as gi_sd_lattice's */
    double affine[16];
    int width, max_width;    /* values per point now; the most (scratch) */
    float **plane;           /* [n2] plane c's values [n1][n0][width], NULL = not held */
    unsigned char *need;     /* [n2][n1][n0] */
    float *pts, *vb;         /* scratch: [GI_LATTICE_BATCH][3] MNI mm, [GI_LATTICE_BATCH][width] */
    long computed;           /* lattice points computed on this rank (each plane per block that needs it) */
} gi_lattice;

int gi_lattice_init(gi_lattice *L, const gi_volume *mask, int step, int width, gi_err *err);
/* Bytes of the lattice with `planes` planes held. */
size_t gi_lattice_bytes(const gi_volume *mask, int step, int width, int planes);
/* Hold exactly the planes slices [z0, z0 + nzb) interpolate from, computing those not held. Local. */
int gi_lattice_planes(gi_lattice *L, int z0, int nzb, gi_lattice_fn fn, void *ctx, gi_err *err);
/* Drop every plane; the next planes have `width` values per point (<= the init's). */
void gi_lattice_reset(gi_lattice *L, int width);
/* out [nb][width] at nb in-mask voxels vox [nb][3], trilinear from the held planes. */
void gi_lattice_at(const gi_lattice *L, int nb, const int *vox, float *out);
void gi_lattice_free(gi_lattice *L);

/* Distance in mm from each of nb points mm [nb][3] (MNI) to the nearest
 * point of the index (gi_knn over the samples' MNI mm). Ties and rounding do
 * not depend on the batch. */
void gi_nearest_distance(const gi_knn *t, int nb, const double *mm, float *dist);

#endif
