/* test_regions.c - samples and donors per region (regions.h) against a brute-force count.
 *
 * A small label phantom (blocks of labels with unlabelled gaps, on a 2 mm grid
 * with a flipped x axis and an offset, label values beyond 32 bits) and
 * samples at known random positions from a few donors. The brute force here
 * is written from the rule's text (label_match.h), not from its code: the
 * sample's own voxel (nearest centre), else the nearest labelled voxel centre
 * within the tolerance over every voxel of the image (no search box), ties by
 * label centroid then lowest value; donors counted with a table of flags.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "geneinr/regions.h"

#define NX 18
#define NY 14
#define NZ 12
#define NL 5
#define NS 600
#define ND 4

static const long VALUES[NL] = {3, 17, 40, 5000000000L, 5000000001L};

/* Voxel (i, j, k) -> mm: x flipped (LAS-like), 2 mm voxels, an offset. */
static void make_grid(gi_volume *p, int64_t *lab)
{
    memset(p, 0, sizeof *p);
    p->nx = NX, p->ny = NY, p->nz = NZ;
    double A[16] = {-2, 0, 0, 17, 0, 2, 0, -13.5, 0, 0, 2, -9, 0, 0, 0, 1};
    memcpy(p->affine, A, sizeof A);
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++) {
                long v = 0;
                /* five slabs along i with one-voxel gaps, and a hole in z */
                if (i % 4 != 3 && k != 5 && j > 1)
                    v = VALUES[(i / 4) % NL];
                if (i >= 16)
                    v = (j < 7) ? VALUES[4] : 0;
                lab[((size_t)k * NY + j) * NX + i] = v;
            }
}

static long find(long v)
{
    for (int l = 0; l < NL; l++)
        if (VALUES[l] == v)
            return l;
    return -1;
}

/* The rule, by brute force: the label index (0..NL-1) or -1. */
static int brute_label(const gi_volume *p, const int64_t *lab, const double x[3], double tol, const double cen[NL][3])
{
    double inv[16];
    gi_affine_invert(p->affine, inv);
    double ijk[3];
    gi_affine_apply(inv, x[0], x[1], x[2], ijk);
    long i = lround(ijk[0]), j = lround(ijk[1]), k = lround(ijk[2]);
    if (i >= 0 && j >= 0 && k >= 0 && i < NX && j < NY && k < NZ) {
        long v = (long)lab[((size_t)k * NY + j) * NX + i];
        if (v)
            return (int)find(v);
    }
    if (tol <= 0)
        return -1;
    double best = INFINITY;
    int win = -1;
    for (int kk = 0; kk < NZ; kk++)
        for (int jj = 0; jj < NY; jj++)
            for (int ii = 0; ii < NX; ii++) {
                long v = (long)lab[((size_t)kk * NY + jj) * NX + ii];
                if (!v)
                    continue;
                double w[3];
                gi_affine_apply(p->affine, ii, jj, kk, w);
                double d = sqrt((w[0] - x[0]) * (w[0] - x[0]) + (w[1] - x[1]) * (w[1] - x[1]) +
                                (w[2] - x[2]) * (w[2] - x[2]));
                if (d > tol + 1e-6)
                    continue;
                int l = (int)find(v);
                if (d < best - 1e-6) {
                    best = d;
                    win = l;
                } else if (d <= best + 1e-6 && l != win) {
                    /* a tie: the label whose centroid is nearer, then the lower value */
                    double a = 0, b = 0;
                    for (int q = 0; q < 3; q++) {
                        a += (cen[l][q] - x[q]) * (cen[l][q] - x[q]);
                        b += (cen[win][q] - x[q]) * (cen[win][q] - x[q]);
                    }
                    if (a < b - 1e-12 || (a <= b + 1e-12 && VALUES[l] < VALUES[win]))
                        win = l;
                }
            }
    return win;
}

static void test_counts(double tol, const char *name)
{
    gi_volume p;
    int64_t *lab = malloc(sizeof(int64_t) * NX * NY * NZ);
    make_grid(&p, lab);
    double cen[NL][3] = {{0}};
    long nvox[NL] = {0};
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++) {
                long v = (long)lab[((size_t)k * NY + j) * NX + i];
                if (!v)
                    continue;
                double w[3];
                gi_affine_apply(p.affine, i, j, k, w);
                int l = (int)find(v);
                for (int q = 0; q < 3; q++)
                    cen[l][q] += w[q];
                nvox[l]++;
            }
    for (int l = 0; l < NL; l++)
        for (int q = 0; q < 3; q++)
            cen[l][q] /= nvox[l];
    /* Samples over the grid's box and a little beyond, from ND donors. */
    double *mni = malloc(sizeof(double) * 3 * NS);
    const char *donor[NS];
    static const char *const DONORS[ND] = {"H0351.2001", "H0351.2002", "H0351.1009", "H0351.1012"};
    unsigned s = 12345;
    for (int n = 0; n < NS; n++) {
        for (int q = 0; q < 3; q++) {
            s = s * 1103515245u + 12345u;
            double u = (s >> 8) / 16777216.0;
            double lo = q == 0 ? 17 - 2 * NX : q == 1 ? -13.5 : -9, ext = 2.0 * (q == 0 ? NX : q == 1 ? NY : NZ);
            mni[3 * n + q] = lo - 4 + u * (ext + 8);
        }
        /* donors unevenly: donor 3 only in the x > 0 half */
        donor[n] = mni[3 * n] > 0 && n % 3 == 0 ? DONORS[3] : DONORS[n % 3];
    }
    long ids[NL];
    memcpy(ids, VALUES, sizeof ids);
    long got_n[NL];
    int got_d[NL];
    gi_match_summary sum;
    gi_err err;
    int rc = gi_regions_count_samples(&p, lab, ids, NL, NS, mni, donor, tol, got_n, got_d, &sum, &err);
    CHECKF(rc == 0, "gi_regions_count_samples runs", "%s", err.msg);
    long want_n[NL] = {0};
    int want_d[NL] = {0}, seen[NL][ND] = {{0}}, none = 0;
    for (int n = 0; n < NS; n++) {
        int l = brute_label(&p, lab, mni + 3 * n, tol, cen);
        if (l < 0) {
            none++;
            continue;
        }
        want_n[l]++;
        int d = 0;
        while (strcmp(DONORS[d], donor[n]) != 0)
            d++;
        if (!seen[l][d]++)
            want_d[l]++;
    }
    int same = rc == 0, some_unmatched = none > 0, spread = 1;
    char why[512] = "";
    size_t u = 0;
    for (int l = 0; l < NL; l++) {
        same &= got_n[l] == want_n[l] && got_d[l] == want_d[l];
        spread &= want_n[l] > 0;
        u += (size_t)snprintf(why + u, u < sizeof why ? sizeof why - u : 0, " [%ld: %ld/%d vs %ld/%d]", VALUES[l],
                              got_n[l], got_d[l], want_n[l], want_d[l]);
    }
    CHECKF(same && sum.none == none && sum.n == NS, name, "counts (got/donors vs brute force):%s; none %d vs %d", why,
           sum.none, none);
    CHECKF(some_unmatched && spread, "the phantom exercises every label and unmatched samples", "none %d", none);
    if (tol > 0)
        CHECKF(sum.by_distance > 0, "some samples matched by distance", "by_distance %d", sum.by_distance);
    free(mni);
    free(lab);
}

/* A region of the label list without voxels (a labels CSV id the image lacks) counts 0. */
static void test_absent_label(void)
{
    gi_volume p;
    int64_t *lab = malloc(sizeof(int64_t) * NX * NY * NZ);
    make_grid(&p, lab);
    long ids[NL + 1] = {3, 17, 40, 41, 5000000000L, 5000000001L};
    double mni[3] = {17 - 2 * 1, -13.5 + 2 * 5, -9 + 2 * 2}; /* voxel (1, 5, 2): label 3 */
    const char *donor[1] = {"d"};
    long n[NL + 1];
    int d[NL + 1];
    gi_err err;
    int rc = gi_regions_count_samples(&p, lab, ids, NL + 1, 1, mni, donor, 0, n, d, NULL, &err);
    CHECKF(rc == 0 && n[0] == 1 && d[0] == 1 && n[3] == 0 && d[3] == 0 && n[1] + n[2] + n[4] + n[5] == 0,
           "one sample in its voxel's label; a label without voxels counts 0", "rc %d n %ld %ld %ld", rc, n[0], n[3],
           n[1]);
    free(lab);
}

int main(void)
{
    test_counts(0, "samples and donors per region = brute force, tolerance 0 (own voxel)");
    test_counts(3, "samples and donors per region = brute force, tolerance 3 mm");
    test_counts(7.5, "samples and donors per region = brute force, tolerance 7.5 mm");
    test_absent_label();
    return check_summary();
}
