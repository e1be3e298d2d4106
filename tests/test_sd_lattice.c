/* test_sd_lattice.c - the render's lattice of the SD's smooth part and its
 * nearest-sample distance (uncertainty.h), with a stand-in method whose
 * smooth part is a known function of the point:
 *   - only the corners of cells that hold in-mask voxels are computed, each
 *     once, and only the planes a block of slices needs;
 *   - trilinear interpolation reproduces a function linear in x, y, z (the
 *     MNI point) exactly, and a lattice point's own value at a lattice voxel;
 *   - the values do not depend on which blocks of slices ask for the planes
 *     (as at 1 and 2 ranks);
 *   - gi_nearest_distance equals a brute-force nearest-sample distance.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "geneinr/knn.h"
#include "geneinr/method.h"
#include "geneinr/nifti.h"
#include "geneinr/uncertainty.h"

/* The stand-in: q = 1 + 0.01 x - 0.02 y + 0.03 z (MNI mm), counting its points. */
typedef struct fake {
    long calls, points;
} fake;

static int fake_has_sd(const void *p)
{
    (void)p;
    return 1;
}

static double linear(double x, double y, double z)
{
    return 1 + 0.01 * x - 0.02 * y + 0.03 * z;
}

static int fake_smooth(const void *p, int n, const float *mni, float *q, gi_err *err)
{
    (void)err;
    fake *f = (fake *)p;
    f->calls++;
    f->points += n;
    for (int i = 0; i < n; i++)
        q[i] = (float)linear(mni[3 * i], mni[3 * i + 1], mni[3 * i + 2]);
    return 0;
}

static void fake_free(void *p)
{
    (void)p;
}

static const gi_method_impl fake_impl = {.free = fake_free, .has_sd = fake_has_sd, .sd_smooth = fake_smooth};

/* A 17 x 13 x 11 grid of 2 mm voxels, origin (-16, -12, -10), with an
 * ellipsoid of voxels inside and one stray voxel. */
static void make_mask(gi_volume *v)
{
    memset(v, 0, sizeof *v);
    v->nx = 17, v->ny = 13, v->nz = 11;
    double A[16] = {2, 0, 0, -16, 0, 2, 0, -12, 0, 0, 2, -10, 0, 0, 0, 1};
    memcpy(v->affine, A, sizeof A);
    v->data = calloc((size_t)v->nx * v->ny * v->nz, sizeof(float));
    for (int z = 0; z < v->nz; z++)
        for (int y = 0; y < v->ny; y++)
            for (int x = 0; x < v->nx; x++) {
                double u = (x - 8.0) / 6, w = (y - 6.0) / 5, t = (z - 5.0) / 4;
                v->data[((size_t)z * v->ny + y) * v->nx + x] = u * u + w * w + t * t <= 1 ? 1.0f : 0.0f;
            }
    v->data[((size_t)9 * v->ny + 1) * v->nx + 15] = 1;   /* stray voxel near a corner of the box */
}

static int inside(const gi_volume *v, int x, int y, int z)
{
    return v->data[((size_t)z * v->ny + y) * v->nx + x] != 0;
}

static void test_lattice(int step)
{
    char name[160];
    gi_volume v;
    make_mask(&v);
    fake f = {0, 0};
    gi_err err;
    gi_method *m = gi_method_of(&fake_impl, 0, 1, &f, &err);
    gi_sd_lattice L;
    int rc = gi_sd_lattice_init(&L, &v, step, 1, &err);
    snprintf(name, sizeof name, "step %d: lattice made", step);
    CHECKF(rc == 0, name, "%s", err.msg);
    if (rc != 0)
        return;
    long need = 0, n = (long)L.n[0] * L.n[1] * L.n[2];
    for (long p = 0; p < n; p++)
        need += L.need[p];
    /* A block of the top slices first: only its planes. */
    rc = gi_sd_lattice_planes(&L, m, 8, 3, &err);
    long top = f.points;
    rc |= gi_sd_lattice_planes(&L, m, 0, v.nz, &err);
    rc |= gi_sd_lattice_planes(&L, m, 2, 5, &err);   /* again: nothing new */
    snprintf(name, sizeof name, "step %d: every needed point computed once, the top block's planes first", step);
    CHECKF(rc == 0 && f.points == need && L.computed == need && top > 0 && top < need, name,
           "rc %d, %ld points for %ld needed (%ld for the top block)", rc, f.points, need, top);
    snprintf(name, sizeof name, "step %d: batches of at most GI_LATTICE_BATCH, one plane each", step);
    CHECK(f.calls >= L.n[2] - 1 && f.points <= f.calls * (long)GI_LATTICE_BATCH, name);

    /* Every in-mask voxel: the linear function, exactly up to float rounding. */
    double worst = 0;
    int own = 1;
    for (int z = 0; z < v.nz; z++)
        for (int y = 0; y < v.ny; y++)
            for (int x = 0; x < v.nx; x++) {
                if (!inside(&v, x, y, z))
                    continue;
                int vox[3] = {x, y, z};
                float q;
                gi_sd_lattice_at(&L, 1, vox, &q);
                double mm[3];
                gi_affine_apply(v.affine, x, y, z, mm);
                double e = fabs(q - linear(mm[0], mm[1], mm[2]));
                worst = e > worst ? e : worst;
                if ((x - L.o[0]) % step == 0 && (y - L.o[1]) % step == 0 && (z - L.o[2]) % step == 0) {
                    size_t p = ((size_t)((z - L.o[2]) / step) * L.n[1] + (y - L.o[1]) / step) * L.n[0] +
                               (x - L.o[0]) / step;
                    own &= q == L.q[p];
                }
            }
    snprintf(name, sizeof name, "step %d: trilinear interpolation reproduces a linear q", step);
    CHECKF(worst < 2e-6, name, "max error %g", worst);
    snprintf(name, sizeof name, "step %d: a voxel on a lattice point takes that point's value", step);
    CHECK(own, name);

    /* Planes asked for in other blocks (another rank count): the same bits. */
    gi_sd_lattice L2;
    gi_sd_lattice_init(&L2, &v, step, 1, &err);
    for (int z0 = v.nz - 1; z0 >= 0; z0 -= 2)
        gi_sd_lattice_planes(&L2, m, z0, 1, &err);
    snprintf(name, sizeof name, "step %d: the same lattice whichever blocks ask for its planes", step);
    int same = 1;
    for (long p = 0; p < n; p++)
        same &= !L.need[p] || memcmp(&L.q[p], &L2.q[p], sizeof(float)) == 0;
    CHECK(same && L2.computed == need, name);
    gi_sd_lattice_free(&L2);
    gi_sd_lattice_free(&L);
    gi_method_free(m);
    free(v.data);
}

/* The general lattice (issue 31: the prior's smooth part of a gene group):
 * W values per point, linear functions reproduced; only the current block's
 * planes held; the same values whichever blocks ask (1 vs 2 ranks); a reset
 * for another group's width. */
enum { GW = 3 };
static int gen_fn(void *ctx, int n, const float *mni, float *out, gi_err *err)
{
    (void)err;
    long *points = ctx;
    *points += n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < GW; j++)
            out[i * GW + j] = (float)((j + 1) * linear(mni[3 * i], mni[3 * i + 1], mni[3 * i + 2]) - j);
    return 0;
}

static void test_general(int step)
{
    char name[160];
    gi_volume v;
    make_mask(&v);
    gi_err err;
    gi_lattice L, L2;
    long pts = 0, pts2 = 0;
    int rc = gi_lattice_init(&L, &v, step, GW, &err) | gi_lattice_init(&L2, &v, step, GW, &err);
    snprintf(name, sizeof name, "general lattice, step %d: made", step);
    CHECKF(rc == 0, name, "%s", err.msg);
    if (rc != 0)
        return;
    /* blocks of 4 slices upwards (one rank) and of 2 (another split); at each block only its planes are held */
    double worst = 0;
    int same = 1, held_ok = 1;
    for (int z0 = 0; z0 < v.nz; z0 += 4) {
        int nzb = v.nz - z0 < 4 ? v.nz - z0 : 4;
        rc |= gi_lattice_planes(&L, z0, nzb, gen_fn, &pts, &err);
        int held = 0;
        for (int c = 0; c < L.n[2]; c++)
            held += L.plane[c] != NULL;
        held_ok &= held <= nzb / step + 2;
        for (int z = z0; z < z0 + nzb; z++) {
            int z1 = z - z % 2;
            rc |= gi_lattice_planes(&L2, z1, v.nz - z1 < 2 ? 1 : 2, gen_fn, &pts2, &err);
            for (int y = 0; y < v.ny; y++)
                for (int x = 0; x < v.nx; x++) {
                    if (!inside(&v, x, y, z))
                        continue;
                    int vox[3] = {x, y, z};
                    float a[GW], b[GW];
                    gi_lattice_at(&L, 1, vox, a);
                    gi_lattice_at(&L2, 1, vox, b);
                    same &= memcmp(a, b, sizeof a) == 0;
                    double mm[3];
                    gi_affine_apply(v.affine, x, y, z, mm);
                    for (int j = 0; j < GW; j++)
                        worst = fmax(worst, fabs(a[j] - ((j + 1) * linear(mm[0], mm[1], mm[2]) - j)));
                }
        }
    }
    snprintf(name, sizeof name, "general lattice, step %d: %d values per point reproduce linear functions", step, GW);
    CHECKF(rc == 0 && worst < 4e-6, name, "rc %d, max error %g", rc, worst);
    snprintf(name, sizeof name, "general lattice, step %d: the same bits from blocks of 4 and of 2 slices", step);
    CHECK(same, name);
    snprintf(name, sizeof name, "general lattice, step %d: only the current block's planes are held", step);
    CHECK(held_ok, name);
    gi_lattice_reset(&L, 2);
    int none = 1;
    for (int c = 0; c < L.n[2]; c++)
        none &= L.plane[c] == NULL;
    snprintf(name, sizeof name, "general lattice, step %d: reset drops every plane, the next width is 2", step);
    CHECK(none && L.width == 2, name);
    gi_lattice_free(&L);
    gi_lattice_free(&L2);
    free(v.data);
}

static void test_refusals(void)
{
    gi_volume v;
    make_mask(&v);
    gi_sd_lattice L;
    gi_err err;
    CHECK(gi_sd_lattice_init(&L, &v, 1, 1, &err) == -1 && strstr(err.msg, "render.uncertainty_step"),
          "step 1 is no lattice (the render computes the exact SD instead)");
    memset(v.data, 0, sizeof(float) * (size_t)v.nx * v.ny * v.nz);
    CHECK(gi_sd_lattice_init(&L, &v, 3, 1, &err) == -1, "an empty mask has no lattice");
    CHECK(gi_sd_lattice_bytes(&v, 3, 1) == 0, "an empty mask needs no lattice memory");
    free(v.data);
}

static void test_distance(void)
{
    enum { NS = 257, NQ = 2000 };
    float *pts = malloc(sizeof(float) * 3 * NS);
    double *q = malloc(sizeof(double) * 3 * NQ);
    float *d = malloc(sizeof(float) * NQ);
    unsigned s = 12345;
    for (int i = 0; i < 3 * NS; i++) {
        s = s * 1103515245u + 12345u;
        pts[i] = (float)((s >> 8) % 100000) / 1000.0f - 50;   /* [-50, 50) mm */
    }
    for (int i = 0; i < 3 * NQ; i++) {
        s = s * 1103515245u + 12345u;
        q[i] = (double)((s >> 8) % 140000) / 1000.0 - 70;     /* also outside the points' box */
    }
    gi_knn t;
    int rc = gi_knn_build(&t, pts, NS);
    gi_nearest_distance(&t, NQ, q, d);
    double worst = 0;
    for (int i = 0; i < NQ; i++) {
        double best = INFINITY;
        for (int j = 0; j < NS; j++) {
            double dx = pts[3 * j] - q[3 * i], dy = pts[3 * j + 1] - q[3 * i + 1], dz = pts[3 * j + 2] - q[3 * i + 2];
            double e = sqrt(dx * dx + dy * dy + dz * dz);
            best = e < best ? e : best;
        }
        double e = fabs(d[i] - best);
        worst = e > worst ? e : worst;
    }
    CHECKF(rc == 0 && worst < 1e-4, "nearest-sample distance = brute force (2,000 points, 257 samples)",
           "max difference %g mm", worst);
    if (rc == 0)
        gi_knn_free(&t);
    free(pts);
    free(q);
    free(d);
}

int main(void)
{
    for (int step = 2; step <= 4; step++)
        test_lattice(step);
    for (int step = 2; step <= 3; step++)
        test_general(step);
    test_refusals();
    test_distance();
    return check_summary();
}
