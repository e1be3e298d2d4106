/* nulls.h - spatial null maps of one brain map: variogram-matched surrogates
 * (Burt et al. 2020, the method of BrainSMASH) and Moran spectral
 * randomisation (Wagner & Dadi 2018, the "singleton" procedure).
 *
 * A map is n values at n units: voxels of a regular grid (gi_smash_init_grid)
 * or points such as region centroids (gi_smash_init_points). A surrogate is a
 * map whose variogram (half the mean squared difference of values a distance
 * h apart) matches the map's, made as Burt 2020 does:
 *   1. permute the map's values at random;
 *   2. smooth the permuted map with a distance kernel over the k nearest
 *      neighbours of each unit, for each k of a fixed set;
 *   3. regress the map's smoothed variogram onto each smoothed map's
 *      (target = a + b * smoothed, least squares with a, b >= 0) and keep the k
 *      with the least squared error;
 *   4. surrogate = sqrt(b) * smoothed + sqrt(a) * N(0, 1) noise, demeaned.
 * (BrainSMASH fits a and b freely and uses |a| and |b|: a negative intercept
 * then becomes added noise, surrogates rougher than the map, and too many
 * false positives; the bounds avoid it.)
 *
 * Variograms (step 3) follow BrainSMASH: pairs of units at most dmax apart
 * (the 25th percentile of all pairwise distances), their 0.5 (x_i - x_j)^2
 * smoothed over distance with a Gaussian kernel, exp(-(2.68 |d - h| / bw)^2 / 2),
 * at nh = 25 distances h from the smallest pair distance to dmax, bw = 3 (h1 - h0).
 *  - points: every pair within dmax; kernel exp(-d / d_k) over the k nearest
 *    (the unit itself included) for k = 0.1 n, 0.2 n, ..., 0.9 n (BrainSMASH's
 *    dense defaults) and k = 1 (the permuted map itself: a map rougher than the
 *    smallest kernel otherwise gets a poor fit).
 *  - grid (for the tens of thousands of voxels of a brain): a fixed sample of
 *    pairs, GI_NULLS_PAIRS in all, the same number in each distance bin; the
 *    neighbourhood of a voxel is the cube of (2r + 1)^3 grid voxels around it
 *    (k = (2r + 1)^3 - 1 neighbours; the ball of Euclidean nearest neighbours
 *    on a grid, squared off) with BrainSMASH's Gaussian kernel
 *    exp(-1.25 (d / r)^2), d in grid steps. That kernel is separable, so one
 *    smoothing costs 3 (2r + 1) operations per voxel instead of k, which is
 *    what makes 1,000 surrogates of a brain take seconds. Voxels outside the
 *    map (not units) have no weight: the smoothing is normalised by the
 *    kernel's sum over the units it covers. r runs over up to 8 values from 1
 *    to the radius of 40 mm, and r = 0 (the permuted map itself).
 *
 * Every random draw is gi_rng_*(seed, stream, counter) with the counter keyed
 * on the surrogate's index k, so surrogate k is the same whatever computes it,
 * in whatever order, on whichever rank. Every sum runs in a fixed order.
 */
#ifndef GENEINR_NULLS_H
#define GENEINR_NULLS_H

#include <stdint.h>

#include "geneinr/error.h"

#define GI_NULLS_NH 25          /* variogram distances */
#define GI_NULLS_PAIRS 60000    /* grid mode: sampled pairs */
#define GI_NULLS_MAX_SCALES 12

/* Stream offsets of the nulls, added to GI_STREAM_CORRELATE (rng.h). */
enum { GI_NULLS_STREAM_PERM = 0, GI_NULLS_STREAM_NOISE = 1, GI_NULLS_STREAM_PAIRS = 2, GI_NULLS_STREAM_MORAN = 3 };

typedef struct gi_smash {
    int n;                      /* units */
    int grid;                   /* 1 grid mode, 0 points */
    uint64_t seed;
    double *x;                  /* [n] the map */
    /* variogram */
    double h[GI_NULLS_NH], bw, dmax;
    long n_pairs;
    int *pi, *pj, *pc;          /* [n_pairs] units and distance class */
    int n_class;
    double *wcls;               /* [GI_NULLS_NH][n_class] kernel weights */
    double den[GI_NULLS_NH];    /* sum over pairs of the weights */
    double target[GI_NULLS_NH]; /* the map's smoothed variogram */
    /* smoothing scales: grid radius r or points' k */
    int n_scales;
    int scale[GI_NULLS_MAX_SCALES];
    /* grid mode: the cropped box, unit -> cell, cell -> unit, normalisers */
    int bx, by, bz;
    long *cell;                 /* [n] */
    double *norm;               /* [n_scales][n] sum of kernel weights over units */
    /* points mode: neighbours sorted by distance */
    int *nn;                    /* [n][n] */
    double *nd;                 /* [n][n] */
} gi_smash;

/* Grid mode: units at integer grid positions ijk [n][3] (i fastest in the
 * grid; any origin), lin the row-major 3x3 step -> mm matrix. x: the map (finite). */
int gi_smash_init_grid(gi_smash *s, int n, const int *ijk, const double lin[9], const double *x, uint64_t seed,
                       gi_err *err);
/* Points mode: coordinates xyz [n][3] in mm. */
int gi_smash_init_points(gi_smash *s, int n, const double *xyz, const double *x, uint64_t seed, gi_err *err);
void gi_smash_free(gi_smash *s);

/* Scratch doubles a surrogate needs (pass a buffer of this many). */
long gi_smash_work_size(const gi_smash *s);

/* Surrogate k into out [n]; *scale (may be NULL) gets the chosen scale (r or
 * k); vgm (may be NULL) gets the surrogate's smoothed variogram [GI_NULLS_NH]. */
void gi_smash_surrogate(const gi_smash *s, long k, double *out, double *work, int *scale, double *vgm);

/* The smoothed variogram of any map y [n] over the same pairs. */
void gi_smash_variogram(const gi_smash *s, const double *y, double *vgm);

/* Moran spectral randomisation over points: the eigenvectors of the doubly
 * centred inverse-distance weights W_ij = 1 / d_ij (Moran eigenvector maps,
 * LAPACK dsyev); a surrogate flips the sign of each of the map's coefficients
 * on them at random, so it keeps the map's Moran spectrum and norm. */
typedef struct gi_moran {
    int n;
    uint64_t seed;
    double *v;                  /* [n][n] column-major eigenvectors */
    double *c;                  /* [n] coefficients of the demeaned map */
} gi_moran;

int gi_moran_init(gi_moran *m, int n, const double *xyz, const double *x, uint64_t seed, gi_err *err);
void gi_moran_surrogate(const gi_moran *m, long k, double *out);
void gi_moran_free(gi_moran *m);

#endif
