/* bench_sgemm.c - the sgemm peak of this machine (one thread) and the rate of
 * the GEMM shapes geneinr's layers use, as a fraction of that peak.
 *
 * usage: bench_sgemm [width] [chunk]   (defaults 128, 256: demo model, training chunk)
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "geneinr/blas.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* GFLOP/s of C[m][n] = A[m][k] * B^T (tb) or B (!tb), repeated for ~0.5 s. */
static double rate(int m, int n, int k, int ta, int tb)
{
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n),
          *c = calloc((size_t)m * n, sizeof(float));
    for (size_t i = 0; i < (size_t)m * k; i++)
        a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)k * n; i++)
        b[i] = (float)(i % 5) * 0.1f;
    int lda = ta ? m : k, ldb = tb ? k : n;
    long reps = 0;
    double t0 = now(), el;
    do {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f,
                    a, lda, b, ldb, 1.0f, c, n);
        reps++;
    } while ((el = now() - t0) < 0.5);
    free(a);
    free(b);
    free(c);
    return 2.0 * m * n * k * reps / el / 1e9;
}

int main(int argc, char **argv)
{
    int width = argc > 1 ? atoi(argv[1]) : 128, chunk = argc > 2 ? atoi(argv[2]) : 256;
    gi_blas_use_best_core(argv); /* the kernels geneinr itself runs (blas.h) */
    openblas_set_num_threads(1);
    printf("OpenBLAS kernels: %s\n", gi_blas_core());
    double peak = rate(2048, 2048, 2048, 0, 0);
    printf("sgemm peak (1 thread, 2048^3): %.1f GFLOP/s\n", peak);
    struct { const char *what; int m, n, k, ta, tb; } shapes[] = {
        {"train forward  z = x W^T   (chunk x width x width)", chunk, width, width, 0, 1},
        {"train backward dW = dz^T x (width x width, K = chunk)", width, width, chunk, 1, 0},
        {"train backward dx = dz W   (chunk x width x width)", chunk, width, width, 0, 0},
        {"render forward z = x W^T   (16384 x width x width)", 16384, width, width, 0, 1},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        double r = rate(shapes[i].m, shapes[i].n, shapes[i].k, shapes[i].ta, shapes[i].tb);
        printf("%-56s %7.1f GFLOP/s  %5.1f%% of peak\n", shapes[i].what, r, 100 * r / peak);
    }
    return 0;
}
