/* knn.h - k nearest points in 3-D through a uniform grid of buckets.
 *
 * The baselines ask for the nearest training samples of every voxel of a
 * brain (1.5 M queries against ~3,700 points): a brute-force scan per query
 * would cost 5e9 distance evaluations per gene pass. A uniform grid of
 * buckets over the points' bounding box, searched in growing shells of cells,
 * answers a query in a few dozen distance evaluations. Distances are
 * Euclidean, in the points' units (MNI mm). Ties are broken by the lower
 * point index, so results never depend on bucket order.
 */
#ifndef GENEINR_KNN_H
#define GENEINR_KNN_H

typedef struct gi_knn {
    int n;
    const float *pts;        /* [n][3], borrowed */
    double lo[3], cell;      /* grid origin and cell edge */
    int dim[3];
    int *start;              /* [cells + 1] bucket offsets into idx */
    int *idx;                /* [n] point indices sorted by bucket */
} gi_knn;

/* pts stays borrowed for the index's lifetime. */
int gi_knn_build(gi_knn *t, const float *pts, int n);
void gi_knn_free(gi_knn *t);

/* The k nearest points of q (k <= n), nearest first: indices and distances.
 * Returns the number found (min(k, n)). */
int gi_knn_query(const gi_knn *t, const double q[3], int k, int *idx, double *dist);

#endif
