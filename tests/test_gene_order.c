/* test_gene_order.c - the matrix-free spectral gene ordering (gene_order.h)
 * against the dense one (model.h) on tables without missing values, where
 * both compute the same Fiedler vector; rows left out; missing values. */
#include "geneinr/gene_order.h"
#include "geneinr/model.h"
#include "geneinr/rng.h"

#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* n x G table with a smooth 1-D structure over genes (gene g sits at s_g,
 * expression = f(sample factor, s_g)) plus noise, so the ordering is well defined. */
static float *table(int n, int G, uint64_t seed)
{
    float *x = malloc(sizeof(float) * (size_t)n * G);
    for (int i = 0; i < n; i++) {
        double a = gi_rng_normal(seed, 1, (uint64_t)i), b = gi_rng_normal(seed, 2, (uint64_t)i);
        for (int g = 0; g < G; g++) {
            double s = gi_rng_uniform(seed, 3, (uint64_t)g) * 3.0;
            x[(size_t)i * G + g] = (float)(a * cos(s) + b * sin(s) + 0.3 * gi_rng_normal(seed, 4, (uint64_t)i * G + g));
        }
    }
    return x;
}

static double max_diff(const float *a, const float *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

int main(void)
{
    int n = 240, G = 300;
    float *x = table(n, G, 7), *dense = malloc(sizeof(float) * G), *low = malloc(sizeof(float) * G);
    gi_err err = {{0}};
    int rc1 = gi_gene_spectral_positions(x, n, G, dense, &err);
    int rc2 = gi_gene_spectral_positions_lowmem(x, n, G, NULL, low, &err);
    CHECKF(rc1 == 0 && rc2 == 0, "both methods run", "%s", err.msg);
    double d = max_diff(dense, low, G);
    CHECKF(d < 1e-4, "matrix-free positions equal the dense ones (no missing values)", "max |diff| %g", d);
    CHECK(low[0] <= 0.5f, "gene 0 in the lower half");

    /* Rows left out = the dense method on the remaining rows. */
    unsigned char *skip = calloc((size_t)n, 1);
    float *kept = malloc(sizeof(float) * (size_t)n * G);
    int k = 0;
    for (int i = 0; i < n; i++) {
        skip[i] = i % 5 == 0;
        if (!skip[i])
            memcpy(kept + (size_t)k++ * G, x + (size_t)i * G, sizeof(float) * G);
    }
    rc1 = gi_gene_spectral_positions(kept, k, G, dense, &err);
    rc2 = gi_gene_spectral_positions_lowmem(x, n, G, skip, low, &err);
    d = max_diff(dense, low, G);
    CHECKF(rc1 == 0 && rc2 == 0 && d < 1e-4, "skipped rows are left out", "rc %d/%d, max |diff| %g (%s)", rc1, rc2, d,
           err.msg);

    /* Missing values: still a valid ordering close to the complete one. */
    for (size_t q = 0; q < (size_t)n * G; q += 17)
        x[q] = NAN;
    rc2 = gi_gene_spectral_positions_lowmem(x, n, G, NULL, low, &err);
    int in_range = rc2 == 0;
    for (int g = 0; g < G; g++)
        in_range &= low[g] >= 0.0f && low[g] <= 1.0f;
    gi_gene_spectral_positions(x, n, G, dense, &err);
    d = max_diff(dense, low, G);
    CHECKF(in_range && d < 0.05, "with missing values: positions in [0, 1], near the pairwise-complete ones",
           "rc %d, max |diff| %g", rc2, d);
    CHECK(gi_gene_spectral_positions_lowmem(x, 2, G, NULL, low, &err) != 0, "too few samples is an error");
    free(x);
    free(dense);
    free(low);
    free(skip);
    free(kept);
    return check_summary();
}
