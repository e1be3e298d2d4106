/* knn.c - uniform-grid k-nearest-neighbour search (see knn.h). */
#include "geneinr/knn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int gi_knn_build(gi_knn *t, const float *pts, int n)
{
    memset(t, 0, sizeof *t);
    t->n = n;
    t->pts = pts;
    double hi[3];
    for (int a = 0; a < 3; a++) {
        t->lo[a] = INFINITY;
        hi[a] = -INFINITY;
    }
    for (int i = 0; i < n; i++)
        for (int a = 0; a < 3; a++) {
            if (pts[3 * i + a] < t->lo[a]) t->lo[a] = pts[3 * i + a];
            if (pts[3 * i + a] > hi[a]) hi[a] = pts[3 * i + a];
        }
    if (n == 0)
        for (int a = 0; a < 3; a++)
            t->lo[a] = hi[a] = 0;
    /* About two points per cell. */
    double vol = 1;
    for (int a = 0; a < 3; a++)
        vol *= fmax(hi[a] - t->lo[a], 1e-3);
    t->cell = cbrt(vol / fmax(n / 2.0, 1.0));
    if (!(t->cell > 1e-6))
        t->cell = 1;
    long cells = 1;
    for (int a = 0; a < 3; a++) {
        t->dim[a] = (int)floor((hi[a] - t->lo[a]) / t->cell) + 1;
        if (t->dim[a] > 512) t->dim[a] = 512;
        cells *= t->dim[a];
    }
    t->start = calloc((size_t)cells + 1, sizeof *t->start);
    t->idx = malloc(sizeof *t->idx * (size_t)(n ? n : 1));
    int *cell_of = malloc(sizeof *cell_of * (size_t)(n ? n : 1));
    if (!t->start || !t->idx || !cell_of) {
        free(cell_of);
        gi_knn_free(t);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int c[3];
        for (int a = 0; a < 3; a++) {
            c[a] = (int)floor((pts[3 * i + a] - t->lo[a]) / t->cell);
            if (c[a] < 0) c[a] = 0;
            if (c[a] >= t->dim[a]) c[a] = t->dim[a] - 1;
        }
        cell_of[i] = (c[2] * t->dim[1] + c[1]) * t->dim[0] + c[0];
        t->start[cell_of[i] + 1]++;
    }
    for (long c = 0; c < cells; c++)
        t->start[c + 1] += t->start[c];
    int *fill = malloc(sizeof *fill * (size_t)cells);
    if (!fill) {
        free(cell_of);
        gi_knn_free(t);
        return -1;
    }
    memcpy(fill, t->start, sizeof *fill * (size_t)cells);
    for (int i = 0; i < n; i++) /* ascending i within a bucket */
        t->idx[fill[cell_of[i]]++] = i;
    free(fill);
    free(cell_of);
    return 0;
}

void gi_knn_free(gi_knn *t)
{
    free(t->start);
    free(t->idx);
    memset(t, 0, sizeof *t);
}

/* Insert (d, i) into the sorted best-k list of length *m. */
static void insert(int k, int *m, int *idx, double *dist, double d, int i)
{
    int p = *m < k ? *m : k - 1;
    if (*m == k && (d > dist[k - 1] || (d == dist[k - 1] && i > idx[k - 1])))
        return;
    while (p > 0 && (dist[p - 1] > d || (dist[p - 1] == d && idx[p - 1] > i))) {
        dist[p] = dist[p - 1];
        idx[p] = idx[p - 1];
        p--;
    }
    dist[p] = d;
    idx[p] = i;
    if (*m < k)
        (*m)++;
}

int gi_knn_query(const gi_knn *t, const double q[3], int k, int *idx, double *dist)
{
    if (k > t->n)
        k = t->n;
    if (k <= 0)
        return 0;
    int c[3];
    for (int a = 0; a < 3; a++) {
        double f = floor((q[a] - t->lo[a]) / t->cell);
        c[a] = f < 0 ? 0 : f >= t->dim[a] ? t->dim[a] - 1 : (int)f;
    }
    int m = 0, maxr = t->dim[0] + t->dim[1] + t->dim[2];
    for (int r = 0; r <= maxr; r++) {
        /* Shell r: cells at Chebyshev distance r from c. Any point in it is at
         * least (r - 1) * cell away along some axis (q may sit anywhere in its
         * own cell, or outside the grid, where the clamped cell is nearer). */
        for (int z = c[2] - r; z <= c[2] + r; z++) {
            if (z < 0 || z >= t->dim[2]) continue;
            for (int y = c[1] - r; y <= c[1] + r; y++) {
                if (y < 0 || y >= t->dim[1]) continue;
                int edge_zy = abs(z - c[2]) == r || abs(y - c[1]) == r;
                for (int x = c[0] - r; x <= c[0] + r; x += (edge_zy ? 1 : 2 * r > 0 ? 2 * r : 1)) {
                    if (x < 0 || x >= t->dim[0]) continue;
                    long cell = ((long)z * t->dim[1] + y) * t->dim[0] + x;
                    for (int p = t->start[cell]; p < t->start[cell + 1]; p++) {
                        int i = t->idx[p];
                        const float *pt = t->pts + 3 * (size_t)i;
                        double dx = pt[0] - q[0], dy = pt[1] - q[1], dz = pt[2] - q[2];
                        insert(k, &m, idx, dist, sqrt(dx * dx + dy * dy + dz * dz), i);
                    }
                    if (r == 0) break;
                }
            }
        }
        /* Distance from q to the nearest cell not yet searched. */
        double bound = INFINITY;
        for (int a = 0; a < 3; a++) {
            double lo_face = t->lo[a] + (c[a] - r) * t->cell;
            double hi_face = t->lo[a] + (c[a] + r + 1) * t->cell;
            if (c[a] - r > 0) bound = fmin(bound, q[a] - lo_face);
            if (c[a] + r + 1 < t->dim[a]) bound = fmin(bound, hi_face - q[a]);
        }
        if (bound == INFINITY || (m == k && bound >= dist[k - 1]))
            break;
    }
    return m;
}
