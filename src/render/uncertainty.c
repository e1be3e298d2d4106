/* uncertainty.c - the lattice of the SD's smooth part and the distance to the
 * nearest sample (see uncertainty.h). */
#include "geneinr/uncertainty.h"

#include "geneinr/dist.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/render_plan.h"

/* The mask's bounding box [lo, hi] in voxel indices; 0 when it has no voxel. */
static int bounding_box(const gi_volume *v, int lo[3], int hi[3])
{
    lo[0] = v->nx, lo[1] = v->ny, lo[2] = v->nz;
    hi[0] = hi[1] = hi[2] = -1;
    size_t q = 0;
    for (int z = 0; z < v->nz; z++)
        for (int y = 0; y < v->ny; y++)
            for (int x = 0; x < v->nx; x++, q++) {
                if (!gi_render_in_mask(v->data[q]))
                    continue;
                int p[3] = {x, y, z};
                for (int d = 0; d < 3; d++) {
                    lo[d] = p[d] < lo[d] ? p[d] : lo[d];
                    hi[d] = p[d] > hi[d] ? p[d] : hi[d];
                }
            }
    return hi[0] >= 0;
}

/* The eight corners of every in-mask voxel's cell: a function of the mask
 * alone, so every rank marks the same points. */
static void mark_needed(const gi_volume *mask, const int lo[3], int step, const int n[3], unsigned char *need)
{
    size_t n0 = (size_t)n[0], n1 = (size_t)n[1], q = 0;
    for (int z = 0; z < mask->nz; z++)
        for (int y = 0; y < mask->ny; y++)
            for (int x = 0; x < mask->nx; x++, q++) {
                if (!gi_render_in_mask(mask->data[q]))
                    continue;
                size_t a = (size_t)((x - lo[0]) / step), b = (size_t)((y - lo[1]) / step),
                       c = (size_t)((z - lo[2]) / step);
                for (size_t dc = 0; dc < 2; dc++)
                    for (size_t db = 0; db < 2; db++)
                        for (size_t da = 0; da < 2; da++)
                            need[((c + dc) * n1 + b + db) * n0 + a + da] = 1;
            }
}

/* The cell of voxel vox (its low corner a[], in lattice points) and the
 * trilinear weights of its eight corners, w[(dc * 2 + db) * 2 + da]. */
static void cell_weights(const int o[3], int step, const int *vox, int a[3], double w[8])
{
    double t[3];
    for (int d = 0; d < 3; d++) {
        int r = vox[d] - o[d];
        a[d] = r / step;
        t[d] = (double)(r - a[d] * step) / step;
    }
    for (int dc = 0; dc < 2; dc++)
        for (int db = 0; db < 2; db++)
            for (int da = 0; da < 2; da++)
                w[(dc * 2 + db) * 2 + da] = (dc ? t[2] : 1 - t[2]) * (db ? t[1] : 1 - t[1]) * (da ? t[0] : 1 - t[0]);
}

/* Lattice points along each axis: the box's span in steps, plus the far
 * corner of the last cell. */
static void lattice_dims(const int lo[3], const int hi[3], int step, int n[3])
{
    for (int d = 0; d < 3; d++)
        n[d] = (hi[d] - lo[d]) / step + 2;
}

/* Where a lattice of the mask's grid lies (uncertainty.h): point (0, 0, 0) at
 * voxel o, the low corner of the mask's bounding box, n points per axis, the
 * mask's affine. -1 when the mask has no voxel inside. Both lattices use it. */
static int lattice_frame(const gi_volume *mask, int step, int o[3], int n[3], double affine[16])
{
    int hi[3];
    if (!bounding_box(mask, o, hi))
        return -1;
    lattice_dims(o, hi, step, n);
    memcpy(affine, mask->affine, sizeof(double) * 16);
    return 0;
}

size_t gi_sd_lattice_bytes(const gi_volume *mask, int step, int width)
{
    int lo[3], hi[3], n[3];
    if (step < 2 || !bounding_box(mask, lo, hi))
        return 0;
    lattice_dims(lo, hi, step, n);
    size_t pts = (size_t)n[0] * n[1] * n[2];
    return pts * (sizeof(float) * (size_t)width + 1) + (size_t)n[2] + GI_LATTICE_BATCH * (3 + (size_t)width) * sizeof(float);
}

int gi_sd_lattice_init(gi_sd_lattice *L, const gi_volume *mask, int step, int width, gi_err *err)
{
    memset(L, 0, sizeof *L);
    if (step < 2)
        return gi_fail(err, "render.uncertainty_step %d: a lattice needs a step of 2 or more (1 = exact)", step);
    if (lattice_frame(mask, step, L->o, L->n, L->affine) != 0)
        return gi_fail(err, "render.mask has no voxel inside");
    L->step = step;
    L->width = width;
    size_t pts = (size_t)L->n[0] * L->n[1] * (size_t)L->n[2];
    L->q = malloc(sizeof *L->q * pts * (size_t)width);
    L->need = calloc(pts, 1);
    L->done = calloc((size_t)L->n[2], 1);
    L->pts = malloc(sizeof *L->pts * 3 * GI_LATTICE_BATCH);
    L->qb = malloc(sizeof *L->qb * GI_LATTICE_BATCH * (size_t)width);
    if (!L->q || !L->need || !L->done || !L->pts || !L->qb) {
        gi_sd_lattice_free(L);
        return gi_fail(err, "out of memory for the SD lattice (%zu points)", pts);
    }
    for (size_t i = 0; i < pts * (size_t)width; i++)
        L->q[i] = NAN;
    mark_needed(mask, L->o, step, L->n, L->need);
    return 0;
}

/* Plane c: its needed points in row-major order, GI_LATTICE_BATCH at a time
 * from the plane's first point (uncertainty.h: the result must not depend on
 * who computes it). */
static int compute_plane(gi_sd_lattice *L, const gi_method *m, int c, gi_err *err)
{
    size_t n0 = (size_t)L->n[0], plane = n0 * (size_t)L->n[1], base = (size_t)c * plane;
    size_t idx[GI_LATTICE_BATCH];
    int nb = 0;
    for (size_t p = 0; p <= plane; p++) {
        if (p < plane && L->need[base + p]) {
            double mm[3];
            gi_affine_apply(L->affine, L->o[0] + (double)(p % n0) * L->step, L->o[1] + (double)(p / n0) * L->step,
                            L->o[2] + (double)c * L->step, mm);
            for (int d = 0; d < 3; d++)
                L->pts[3 * nb + d] = (float)mm[d];
            idx[nb++] = base + p;
        }
        if (nb == GI_LATTICE_BATCH || (p == plane && nb > 0)) {
            if (gi_method_sd_smooth(m, nb, L->pts, L->qb, err) != 0)
                return -1;
            for (int i = 0; i < nb; i++)
                memcpy(L->q + idx[i] * (size_t)L->width, L->qb + (size_t)i * L->width, sizeof(float) * (size_t)L->width);
            L->computed += nb;
            nb = 0;
        }
    }
    L->done[c] = 1;
    return 0;
}

int gi_sd_lattice_planes(gi_sd_lattice *L, const gi_method *m, int z0, int nzb, gi_err *err)
{
    if (nzb < 1)
        return 0;
    int k = L->step, lo = z0 - L->o[2], hi = z0 + nzb - 1 - L->o[2];
    if (hi < 0 || lo / k >= L->n[2])
        return 0;   /* the slices lie outside the mask's box: no voxel to interpolate */
    int c0 = lo < 0 ? 0 : lo / k, c1 = hi / k + 1;
    if (c1 > L->n[2] - 1)
        c1 = L->n[2] - 1;
    for (int c = c0; c <= c1; c++)
        if (!L->done[c] && compute_plane(L, m, c, err) != 0)
            return -1;
    return 0;
}

int gi_sd_lattice_share(gi_sd_lattice *L, const gi_method *m, MPI_Comm comm, gi_err *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    size_t plane = (size_t)L->n[0] * L->n[1], nz = (size_t)L->n[2], width = (size_t)L->width;
    long total = 0;
    for (size_t p = 0; p < plane * nz; p++)
        total += L->need[p];
    int *first = malloc(sizeof(int) * ((size_t)size + 1)), *counts = malloc(sizeof(int) * (size_t)size);
    int *displs = malloc(sizeof(int) * (size_t)size);
    int rc = first && counts && displs ? 0 : gi_fail(err, "out of memory for the SD lattice's plane split");
    if (rc == 0 && plane * nz * width > (size_t)INT_MAX)
        rc = gi_fail(err, "render.uncertainty_step %d: the SD lattice (%zu values) is too large to share; use a larger "
                     "step", L->step, plane * nz * width);
    if (rc == 0) {
        /* Rank r takes the planes from first[r] up to first[r+1]: the first plane at which the needed
         * points so far reach r/size of the total. A function of the mask and the rank count only. */
        first[0] = 0;
        long acc = 0;
        int r = 1;
        for (size_t c = 0; c < nz; c++) {
            while (r < size && acc * size >= total * r)
                first[r++] = (int)c;
            for (size_t p = 0; p < plane; p++)
                acc += L->need[c * plane + p];
        }
        while (r <= size)
            first[r++] = (int)nz;
        for (int c = first[rank]; c < first[rank + 1] && rc == 0; c++)
            rc = compute_plane(L, m, c, err);
    }
    /* The planes are computed in their fixed batches (uncertainty.h): the same bits whichever rank does it. */
    if (gi_dist_agree(comm, rc, err) == 0) {
        for (int r = 0; r < size; r++) {
            counts[r] = (int)((size_t)(first[r + 1] - first[r]) * plane * width);
            displs[r] = (int)((size_t)first[r] * plane * width);
        }
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, L->q, counts, displs, MPI_FLOAT, comm);
        memset(L->done, 1, nz);
    } else {
        rc = -1;
    }
    free(first);
    free(counts);
    free(displs);
    return rc;
}

void gi_sd_lattice_at(const gi_sd_lattice *L, int nb, const int *vox, float *q)
{
    size_t n0 = (size_t)L->n[0], n1 = (size_t)L->n[1];
    double k = L->step;
    if (L->width > 1) {   /* several values per point: the general interpolation */
        size_t plane = n0 * n1;
        for (int i = 0; i < nb; i++) {
            int a[3];
            double w[8];
            cell_weights(L->o, L->step, vox + 3 * i, a, w);
            float *o = q + (size_t)i * L->width;
            for (int j = 0; j < L->width; j++) {
                double sum = 0;
                for (int c = 0; c < 8; c++) {
                    if (w[c] == 0)
                        continue;
                    int dc = c >> 2, db = (c >> 1) & 1, da = c & 1;
                    sum += w[c] * L->q[((size_t)(a[2] + dc) * plane + (size_t)(a[1] + db) * n0 + (size_t)(a[0] + da)) *
                                       (size_t)L->width + (size_t)j];
                }
                o[j] = (float)sum;
            }
        }
        return;
    }
    for (int i = 0; i < nb; i++) {
        int a[3];
        double t[3];
        for (int d = 0; d < 3; d++) {
            int r = vox[3 * i + d] - L->o[d];
            a[d] = r / L->step;
            t[d] = (r - a[d] * L->step) / k;
        }
        /* Corners with weight 0 are skipped, so an exact lattice point takes
         * its own value even beside a point never computed. */
        double s = 0;
        for (int dc = 0; dc < 2; dc++) {
            double wc = dc ? t[2] : 1 - t[2];
            if (wc == 0)
                continue;
            for (int db = 0; db < 2; db++) {
                double wb = db ? t[1] : 1 - t[1];
                if (wb == 0)
                    continue;
                for (int da = 0; da < 2; da++) {
                    double wa = da ? t[0] : 1 - t[0];
                    if (wa == 0)
                        continue;
                    s += wc * wb * wa * L->q[((size_t)(a[2] + dc) * n1 + (size_t)(a[1] + db)) * n0 + (size_t)(a[0] + da)];
                }
            }
        }
        q[i] = (float)s;
    }
}

void gi_sd_lattice_free(gi_sd_lattice *L)
{
    free(L->q);
    free(L->need);
    free(L->done);
    free(L->pts);
    free(L->qb);
    memset(L, 0, sizeof *L);
}

/* ------------------------------------------------ the general lattice */

size_t gi_lattice_bytes(const gi_volume *mask, int step, int width, int planes)
{
    int lo[3], hi[3], n[3];
    if (step < 2 || !bounding_box(mask, lo, hi))
        return 0;
    lattice_dims(lo, hi, step, n);
    size_t plane = (size_t)n[0] * n[1];
    return plane * (size_t)n[2] + (size_t)n[2] * sizeof(float *) +
           (size_t)GI_LATTICE_BATCH * (3 + (size_t)width) * sizeof(float) +
           (size_t)planes * plane * (size_t)width * sizeof(float);
}

int gi_lattice_init(gi_lattice *L, const gi_volume *mask, int step, int width, gi_err *err)
{
    memset(L, 0, sizeof *L);
    if (step < 2)
        return gi_fail(err, "a lattice needs a step of 2 or more (1 = exact), not %d", step);
    if (lattice_frame(mask, step, L->o, L->n, L->affine) != 0)
        return gi_fail(err, "render.mask has no voxel inside");
    L->step = step;
    L->width = L->max_width = width;
    size_t pts = (size_t)L->n[0] * L->n[1] * (size_t)L->n[2];
    L->need = calloc(pts, 1);
    L->plane = calloc((size_t)L->n[2], sizeof *L->plane);
    L->pts = malloc(sizeof *L->pts * 3 * GI_LATTICE_BATCH);
    L->vb = malloc(sizeof *L->vb * (size_t)width * GI_LATTICE_BATCH);
    if (!L->need || !L->plane || !L->pts || !L->vb) {
        gi_lattice_free(L);
        return gi_fail(err, "out of memory for a lattice of %zu points", pts);
    }
    mark_needed(mask, L->o, step, L->n, L->need);
    return 0;
}

void gi_lattice_reset(gi_lattice *L, int width)
{
    for (int c = 0; c < L->n[2]; c++) {
        free(L->plane[c]);
        L->plane[c] = NULL;
    }
    L->width = width < L->max_width ? width : L->max_width;
}

/* Plane c: its needed points in row-major order, GI_LATTICE_BATCH at a time
 * from the plane's first point, as the SD lattice's (uncertainty.h). */
static int lattice_plane(gi_lattice *L, int c, gi_lattice_fn fn, void *ctx, gi_err *err)
{
    size_t n0 = (size_t)L->n[0], plane = n0 * (size_t)L->n[1], W = (size_t)L->width;
    size_t base = (size_t)c * plane, idx[GI_LATTICE_BATCH];
    float *v = malloc(sizeof(float) * plane * (W ? W : 1));
    if (!v)
        return gi_fail(err, "out of memory for a lattice plane (%zu points x %zu values)", plane, W);
    for (size_t i = 0; i < plane * W; i++)
        v[i] = NAN;
    int nb = 0;
    for (size_t p = 0; p <= plane; p++) {
        if (p < plane && L->need[base + p]) {
            double mm[3];
            gi_affine_apply(L->affine, L->o[0] + (double)(p % n0) * L->step, L->o[1] + (double)(p / n0) * L->step,
                            L->o[2] + (double)c * L->step, mm);
            for (int d = 0; d < 3; d++)
                L->pts[3 * nb + d] = (float)mm[d];
            idx[nb++] = p;
        }
        if (nb == GI_LATTICE_BATCH || (p == plane && nb > 0)) {
            if (fn(ctx, nb, L->pts, L->vb, err) != 0) {
                free(v);
                return -1;
            }
            for (int i = 0; i < nb; i++)
                memcpy(v + idx[i] * W, L->vb + (size_t)i * W, sizeof(float) * W);
            L->computed += nb;
            nb = 0;
        }
    }
    L->plane[c] = v;
    return 0;
}

int gi_lattice_planes(gi_lattice *L, int z0, int nzb, gi_lattice_fn fn, void *ctx, gi_err *err)
{
    if (nzb < 1)
        return 0;
    int k = L->step, lo = z0 - L->o[2], hi = z0 + nzb - 1 - L->o[2];
    int c0 = lo < 0 ? 0 : lo / k, c1 = hi / k + 1;
    if (c1 > L->n[2] - 1)
        c1 = L->n[2] - 1;
    /* Only this block's planes are held: a rank walks its slabs upwards within a gene group. */
    for (int c = 0; c < L->n[2]; c++)
        if (L->plane[c] && (hi < 0 || c < c0 || c > c1)) {
            free(L->plane[c]);
            L->plane[c] = NULL;
        }
    if (hi < 0 || lo / k >= L->n[2])
        return 0;   /* the slices lie outside the mask's box: no voxel to interpolate */
    for (int c = c0; c <= c1; c++)
        if (!L->plane[c] && lattice_plane(L, c, fn, ctx, err) != 0)
            return -1;
    return 0;
}

void gi_lattice_at(const gi_lattice *L, int nb, const int *vox, float *out)
{
    size_t n0 = (size_t)L->n[0], W = (size_t)L->width;
    double *acc = NULL, stack[64];
    acc = W <= 64 ? stack : malloc(sizeof(double) * W);
    if (!acc) {   /* no memory for the sums: NaN, never a wrong value */
        for (size_t q = 0; q < (size_t)nb * W; q++)
            out[q] = NAN;
        return;
    }
    for (int i = 0; i < nb; i++) {
        int a[3];
        double w[8];
        cell_weights(L->o, L->step, vox + 3 * i, a, w);
        for (size_t j = 0; j < W; j++)
            acc[j] = 0;
        /* Corners with weight 0 are skipped (as the SD lattice's): a voxel
         * on a lattice point takes that point's value alone. */
        for (int dc = 0; dc < 2; dc++)
            for (int db = 0; db < 2; db++)
                for (int da = 0; da < 2; da++) {
                    double wt = w[(dc * 2 + db) * 2 + da];
                    if (wt == 0)
                        continue;
                    const float *v = L->plane[a[2] + dc] + ((size_t)(a[1] + db) * n0 + (size_t)(a[0] + da)) * W;
                    for (size_t j = 0; j < W; j++)
                        acc[j] += wt * v[j];
                }
        for (size_t j = 0; j < W; j++)
            out[(size_t)i * W + j] = (float)acc[j];
    }
    if (acc != stack)
        free(acc);
}

void gi_lattice_free(gi_lattice *L)
{
    if (L->plane)
        for (int c = 0; c < L->n[2]; c++)
            free(L->plane[c]);
    free(L->plane);
    free(L->need);
    free(L->pts);
    free(L->vb);
    memset(L, 0, sizeof *L);
}

void gi_nearest_distance(const gi_knn *t, int nb, const double *mm, float *dist)
{
    for (int i = 0; i < nb; i++) {
        int idx;
        double d;
        dist[i] = gi_knn_query(t, mm + 3 * i, 1, &idx, &d) == 1 ? (float)d : NAN;
    }
}
