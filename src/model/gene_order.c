/* gene_order.c - the spectral gene ordering for many genes, without a G x G matrix.
 *
 * The same quantity as gi_gene_spectral_positions (below): the Fiedler vector
 * of the normalised Laplacian I - D^-1/2 A D^-1/2 of the gene affinity
 * A = (1 + R) / 2, R = gene-gene Pearson correlation, A_ii = 1. The dense
 * version builds R (five G x G double matrices: 9.7 GB at 15,600 genes); this
 * one never forms it. With z the per-gene standardised columns of the table
 * (missing values count as the gene's mean, z = 0), R = Z^T Z / (n - 1), which
 * is the pairwise Pearson r exactly when nothing is missing (abagen's output
 * has no gaps) and its mean-imputed form otherwise. A product
 *   A v = (sum(v) 1 + Z^T (Z v) / (n - 1) + (1 - diag R) .* v) / 2
 * costs two passes over the table (O(n G)), and the eigenvector of
 * M = D^-1/2 A D^-1/2 with the second-largest eigenvalue is found by Lanczos
 * with full reorthogonalisation, after projecting out the known top one
 * (D^1/2 1, eigenvalue 1). Memory: the table (the caller's, read in place;
 * rows can be skipped) plus k+2 vectors of G doubles for the Krylov basis.
 * The start vector is a fixed function of the gene index, so the result is
 * deterministic; train.c computes it once on rank 0 and broadcasts it.
 */
#include "geneinr/gene_order.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/rng.h"

/* LAPACK (in OpenBLAS): eigenpairs of a symmetric tridiagonal matrix. */
void dstev_(char *jobz, int *n, double *d, double *e, double *z, int *ldz, double *work, int *info);

#define MAX_KRYLOV 400
#define TOL 1e-9

typedef struct op {
    const float *x;             /* [n][G] */
    int n, G;
    const unsigned char *skip;  /* [n] 1 = leave the row out, or NULL */
    double *mu, *isd;           /* [G] mean and 1/std over the rows used (isd 0: no variance) */
    double *diag;               /* [G] diag of Z^T Z / (m - 1) */
    double *dm12;               /* [G] D^-1/2 */
    double *u;                  /* [n] Z v */
    double *tmp;                /* [G] */
    double denom;               /* m - 1 */
} op;

static double zval(const op *o, size_t i, int g)
{
    float v = o->x[i * o->G + g];
    return isnan(v) ? 0.0 : ((double)v - o->mu[g]) * o->isd[g];
}

/* out = A v. */
static void apply_affinity(op *o, const double *v, double *out)
{
    int G = o->G;
    double sum = 0;
    for (int g = 0; g < G; g++)
        sum += v[g];
    memset(out, 0, sizeof(double) * (size_t)G);
    for (int i = 0; i < o->n; i++) {
        if (o->skip && o->skip[i])
            continue;
        double s = 0;
        for (int g = 0; g < G; g++)
            s += zval(o, (size_t)i, g) * v[g];
        for (int g = 0; g < G; g++)
            out[g] += zval(o, (size_t)i, g) * s;
    }
    for (int g = 0; g < G; g++)
        out[g] = 0.5 * (sum + out[g] / o->denom + (1.0 - o->diag[g]) * v[g]);
}

/* out = M v = D^-1/2 A D^-1/2 v. */
static void apply_m(op *o, const double *v, double *out)
{
    for (int g = 0; g < o->G; g++)
        o->tmp[g] = o->dm12[g] * v[g];
    apply_affinity(o, o->tmp, out);
    for (int g = 0; g < o->G; g++)
        out[g] *= o->dm12[g];
}

static double dot(const double *a, const double *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void axpy(double a, const double *x, double *y, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* Largest Ritz pair of the k x k tridiagonal (alpha, beta): theta and y. */
static int ritz(const double *alpha, const double *beta, int k, double *theta, double *y, gi_err *err)
{
    double *d = malloc(sizeof(double) * (size_t)k), *e = malloc(sizeof(double) * (size_t)(k > 1 ? k : 2));
    double *z = malloc(sizeof(double) * (size_t)k * k), *work = malloc(sizeof(double) * (size_t)(2 * k + 2));
    int rc = 0, info = 0, n = k, ldz = k;
    char jobz = 'V';
    if (!d || !e || !z || !work) {
        rc = gi_fail(err, "out of memory in the gene ordering eigensolver");
    } else {
        memcpy(d, alpha, sizeof(double) * (size_t)k);
        for (int i = 0; i + 1 < k; i++)
            e[i] = beta[i];
        dstev_(&jobz, &n, d, e, z, &ldz, work, &info);
        if (info != 0) {
            rc = gi_fail(err, "the tridiagonal eigensolver (LAPACK dstev) failed (info %d)", info);
        } else {
            /* Eigenvalues ascend: the last is the largest; column k-1 of z. */
            *theta = d[k - 1];
            memcpy(y, z + (size_t)(k - 1) * k, sizeof(double) * (size_t)k);
        }
    }
    free(d);
    free(e);
    free(z);
    free(work);
    return rc;
}

/* Per-gene mean (o->mu) and 1/std (o->isd) over the rows used (cnt[g]: the
 * gene's measured values), and the diagonal of Z^T Z (o->diag). Returns the
 * rows used; fewer than 3 leave the rest undone. */
static long moments(op *o, double *cnt)
{
    const int n = o->n, G = o->G;
    long m = 0;
    for (int i = 0; i < n; i++) {
        if (o->skip && o->skip[i])
            continue;
        m++;
        const float *row = o->x + (size_t)i * G;
        for (int g = 0; g < G; g++)
            if (!isnan(row[g])) {
                o->mu[g] += row[g];
                cnt[g] += 1;
            }
    }
    if (m < 3)
        return m;
    for (int g = 0; g < G; g++)
        o->mu[g] = cnt[g] > 0 ? o->mu[g] / cnt[g] : 0.0;
    for (int i = 0; i < n; i++) {
        if (o->skip && o->skip[i])
            continue;
        const float *row = o->x + (size_t)i * G;
        for (int g = 0; g < G; g++)
            if (!isnan(row[g]))
                o->isd[g] += ((double)row[g] - o->mu[g]) * ((double)row[g] - o->mu[g]);
    }
    o->denom = (double)(m - 1);
    for (int g = 0; g < G; g++) {
        double ss = o->isd[g];
        o->isd[g] = cnt[g] >= 2 && ss > 0 ? 1.0 / sqrt(ss / (cnt[g] - 1)) : 0.0;
        o->diag[g] = ss * o->isd[g] * o->isd[g] / o->denom;
    }
    return m;
}

int gi_gene_spectral_positions_lowmem(const float *values, int n, int n_genes, const unsigned char *skip, float *t,
                                      gi_err *err)
{
    int G = n_genes;
    if (G < 1)
        return gi_fail(err, "spectral gene positions need at least one gene, got %d", G);
    if (G <= 2) {
        t[0] = 0.0f;
        if (G == 2)
            t[1] = 1.0f;
        return 0;
    }
    op o = {.x = values, .n = n, .G = G, .skip = skip};
    int kmax = G - 1 < MAX_KRYLOV ? G - 1 : MAX_KRYLOV;
    o.mu = calloc((size_t)G, sizeof(double));
    o.isd = calloc((size_t)G, sizeof(double));
    o.diag = calloc((size_t)G, sizeof(double));
    o.dm12 = calloc((size_t)G, sizeof(double));
    o.tmp = calloc((size_t)G, sizeof(double));
    o.u = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    double *V = malloc(sizeof(double) * (size_t)G * (size_t)(kmax + 1));
    double *q0 = malloc(sizeof(double) * (size_t)G), *w = malloc(sizeof(double) * (size_t)G);
    double *alpha = malloc(sizeof(double) * (size_t)(kmax + 1)), *beta = malloc(sizeof(double) * (size_t)(kmax + 1));
    double *y = malloc(sizeof(double) * (size_t)(kmax + 1)), *cnt = calloc((size_t)G, sizeof(double));
    int rc = 0;
    if (!o.mu || !o.isd || !o.diag || !o.dm12 || !o.tmp || !o.u || !V || !q0 || !w || !alpha || !beta || !y || !cnt) {
        rc = gi_fail(err, "out of memory for the gene ordering (%d genes)", G);
        goto done;
    }

    /* Per-gene mean and 1/std over the rows used; the diagonal of Z^T Z. */
    long m = moments(&o, cnt);
    if (m < 3) {
        rc = gi_fail(err, "spectral gene positions need at least 3 samples, got %ld", m);
        goto done;
    }

    /* Degrees D = A 1 (>= 1/2 when |r| <= 1; kept positive regardless). */
    for (int g = 0; g < G; g++)
        q0[g] = 1.0;
    apply_affinity(&o, q0, w);
    for (int g = 0; g < G; g++)
        o.dm12[g] = 1.0 / sqrt(w[g] > 1e-9 ? w[g] : 1e-9);
    /* The top eigenvector of M: D^1/2 1, normalised. */
    for (int g = 0; g < G; g++)
        q0[g] = 1.0 / o.dm12[g];
    double nq = sqrt(dot(q0, q0, G));
    for (int g = 0; g < G; g++)
        q0[g] /= nq;

    /* Lanczos from a fixed start vector orthogonal to q0. */
    double *v0 = V;
    for (int g = 0; g < G; g++)
        v0[g] = gi_rng_uniform(20240611, GI_STREAM_SWEEP + 999, (uint64_t)g) - 0.5;
    axpy(-dot(q0, v0, G), q0, v0, G);
    double nv = sqrt(dot(v0, v0, G));
    for (int g = 0; g < G; g++)
        v0[g] /= nv;
    int k = 0, converged = 0;
    double theta = 0;
    for (int j = 0; j < kmax; j++) {
        double *vj = V + (size_t)j * G;
        apply_m(&o, vj, w);
        alpha[j] = dot(vj, w, G);
        /* Full reorthogonalisation, twice, against q0 and every basis vector. */
        for (int pass = 0; pass < 2; pass++) {
            axpy(-dot(q0, w, G), q0, w, G);
            for (int i = 0; i <= j; i++)
                axpy(-dot(V + (size_t)i * G, w, G), V + (size_t)i * G, w, G);
        }
        beta[j] = sqrt(dot(w, w, G));
        k = j + 1;
        int last = k == kmax || beta[j] < 1e-12;
        if (last || k % 10 == 0) {
            if ((rc = ritz(alpha, beta, k, &theta, y, err)) != 0)
                goto done;
            /* Residual of the Ritz pair: beta_k |y_k|. */
            if (fabs(beta[j] * y[k - 1]) < TOL || beta[j] < 1e-12) {
                converged = 1;
                break;
            }
        }
        if (last)
            break;
        double *vn = V + (size_t)(j + 1) * G;
        for (int g = 0; g < G; g++)
            vn[g] = w[g] / beta[j];
    }
    if (!converged && fabs(beta[k - 1] * y[k - 1]) > 1e-5) {
        rc = gi_fail(err, "the gene ordering did not converge in %d Lanczos steps (residual %.2g)", k,
                     fabs(beta[k - 1] * y[k - 1]));
        goto done;
    }

    /* Fiedler vector D^-1/2 (V y), scaled to [0, 1], gene 0 in the lower half. */
    memset(w, 0, sizeof(double) * (size_t)G);
    for (int i = 0; i < k; i++)
        axpy(y[i], V + (size_t)i * G, w, G);
    double lo = INFINITY, hi = -INFINITY;
    for (int g = 0; g < G; g++) {
        w[g] *= o.dm12[g];
        lo = w[g] < lo ? w[g] : lo;
        hi = w[g] > hi ? w[g] : hi;
    }
    double span = hi - lo;
    for (int g = 0; g < G; g++)
        w[g] = span > 0.0 ? (w[g] - lo) / span : 0.0;
    int flip = 0;
    for (int g = 0; g < G; g++)
        if (w[g] != 0.5) {
            flip = w[g] > 0.5;
            break;
        }
    for (int g = 0; g < G; g++)
        t[g] = (float)(flip ? 1.0 - w[g] : w[g]);
done:
    free(o.mu);
    free(o.isd);
    free(o.diag);
    free(o.dm12);
    free(o.tmp);
    free(o.u);
    free(V);
    free(q0);
    free(w);
    free(alpha);
    free(beta);
    free(y);
    free(cnt);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Spectral gene positions, dense (moved from model.c: the gene order is not the network) */

/* LAPACK (Fortran, in libopenblas): eigenpairs of a symmetric matrix with
 * indices il..iu of the ascending spectrum (MRRR). Used instead of dsyev
 * because only one eigenvector is needed. */
void dsyevr_(char *jobz, char *range, char *uplo, int *n, double *a, int *lda, double *vl, double *vu, int *il,
             int *iu, double *abstol, int *m, double *w, double *z, int *ldz, int *isuppz, double *work,
             int *lwork, int *iwork, int *liwork, int *info);

/* Pairwise-complete Pearson correlations r[G][G] of the columns of
 * values[n][G] (NaN = missing), as four BLAS products over the centred data
 * X (0 where missing) and the mask M:
 *   N = M^T M, Sx = X^T M, Sxx = (X*X)^T M, Sxy = X^T X
 * then r_ij = (Sxy - Sx_ij Sx_ji / N) / sqrt((Sxx_ij - Sx_ij^2/N)(Sxx_ji - Sx_ji^2/N)).
 * Centring each gene by its overall mean first keeps this one-pass formula
 * well conditioned in double. Pairs with < 3 common samples or no variance
 * get r = 0. */
static int pairwise_pearson(const float *values, int n, int G, double *r, gi_err *err)
{
    size_t nG = (size_t)n * (size_t)G, GG = (size_t)G * (size_t)G;
    double *X = malloc(nG * sizeof *X), *Q = malloc(nG * sizeof *Q), *M = malloc(nG * sizeof *M);
    double *N = malloc(GG * sizeof *N), *Sx = malloc(GG * sizeof *Sx), *Sxx = malloc(GG * sizeof *Sxx);
    int rc = 0;
    if (!X || !Q || !M || !N || !Sx || !Sxx) {
        rc = gi_fail(err, "out of memory computing gene correlations (%d genes, %d samples)", G, n);
        goto done;
    }
    for (int g = 0; g < G; g++) {
        double sum = 0.0;
        long cnt = 0;
        for (int k = 0; k < n; k++) {
            float v = values[(size_t)k * G + g];
            if (!isnan(v)) {
                sum += v;
                cnt++;
            }
        }
        double mean = cnt ? sum / (double)cnt : 0.0;
        for (int k = 0; k < n; k++) {
            float v = values[(size_t)k * G + g];
            size_t i = (size_t)k * G + g;
            int ok = !isnan(v);
            X[i] = ok ? (double)v - mean : 0.0;
            Q[i] = X[i] * X[i];
            M[i] = ok ? 1.0 : 0.0;
        }
    }
    if (n > 0) {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, G, n, 1.0, M, G, M, G, 0.0, N, G);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, G, n, 1.0, X, G, M, G, 0.0, Sx, G);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, G, n, 1.0, Q, G, M, G, 0.0, Sxx, G);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, G, n, 1.0, X, G, X, G, 0.0, r, G);
    } else {
        memset(N, 0, GG * sizeof *N);
        memset(r, 0, GG * sizeof *r);
    }
    for (int i = 0; i < G; i++) {
        for (int j = i; j < G; j++) {
            size_t ij = (size_t)i * G + j, ji = (size_t)j * G + i;
            double cnt = N[ij], v = 0.0;
            if (cnt >= 3.0) {
                double sx = Sx[ij], sy = Sx[ji];
                double vx = Sxx[ij] - sx * sx / cnt, vy = Sxx[ji] - sy * sy / cnt;
                double cov = r[ij] - sx * sy / cnt;
                /* no variance (relative to the sum of squares): undefined r */
                if (vx > 1e-12 * Sxx[ij] && vy > 1e-12 * Sxx[ji] && vx > 0.0 && vy > 0.0) {
                    v = cov / sqrt(vx * vy);
                    v = v > 1.0 ? 1.0 : v < -1.0 ? -1.0 : v;
                }
            }
            r[ij] = v;
            r[ji] = v;
        }
    }
done:
    free(X);
    free(Q);
    free(M);
    free(N);
    free(Sx);
    free(Sxx);
    return rc;
}

int gi_gene_spectral_positions(const float *values, int n, int n_genes, float *t, gi_err *err)
{
    if (n_genes < 1)
        return gi_fail(err, "spectral gene positions need at least one gene, got %d", n_genes);
    if (n < 0)
        return gi_fail(err, "spectral gene positions: negative sample count %d", n);
    if (!t || (n > 0 && !values))
        return gi_fail(err, "spectral gene positions: NULL argument");
    if (n_genes == 1) {
        t[0] = 0.0f;
        return 0;
    }
    if (n_genes == 2) {
        t[0] = 0.0f;
        t[1] = 1.0f;
        return 0;
    }
    if (n_genes > 46340) /* G*G must fit the int LAPACK takes */
        return gi_fail(err, "spectral gene positions support at most 46340 genes, got %d", n_genes);

    int G = n_genes, rc = 0;
    size_t GG = (size_t)G * (size_t)G;
    double *A = malloc(GG * sizeof *A), *dinv = malloc((size_t)G * sizeof *dinv);
    double *vec = malloc((size_t)G * sizeof *vec);
    double *work = NULL;
    int *iwork = NULL;
    if (!A || !dinv || !vec) {
        rc = gi_fail(err, "out of memory for the gene affinity matrix (%d genes)", G);
        goto done;
    }
    if ((rc = pairwise_pearson(values, n, G, A, err)) != 0)
        goto done;

    /* Affinity (1 + r) / 2 with self-affinity 1 (r_ii = 1), so every degree
     * is >= 1; then L = I - D^-1/2 A D^-1/2 in place. */
    for (int i = 0; i < G; i++)
        A[(size_t)i * G + i] = 1.0;
    for (size_t k = 0; k < GG; k++)
        A[k] = 0.5 * (1.0 + A[k]);
    for (int i = 0; i < G; i++) {
        double d = 0.0;
        for (int j = 0; j < G; j++)
            d += A[(size_t)i * G + j];
        dinv[i] = 1.0 / sqrt(d);
    }
    for (int i = 0; i < G; i++)
        for (int j = 0; j < G; j++) {
            size_t ij = (size_t)i * G + j;
            A[ij] = (i == j ? 1.0 : 0.0) - dinv[i] * A[ij] * dinv[j];
        }

    /* Second-smallest eigenpair of the (symmetric) L. */
    char jobz = 'V', range = 'I', uplo = 'U';
    int nn = G, lda = G, il = 2, iu = 2, found = 0, ldz = G, isuppz[2], info = 0;
    int lwork = -1, liwork = -1, iwq = 0;
    double vl = 0.0, vu = 0.0, abstol = 0.0, wq = 0.0;
    /* the eigenvalue array must hold n entries even though one is found */
    double *wall = malloc((size_t)G * sizeof *wall);
    if (!wall) {
        rc = gi_fail(err, "out of memory for the gene Laplacian eigenvalues");
        goto done;
    }
    dsyevr_(&jobz, &range, &uplo, &nn, A, &lda, &vl, &vu, &il, &iu, &abstol, &found, wall, vec, &ldz, isuppz,
            &wq, &lwork, &iwq, &liwork, &info);
    if (info == 0) {
        lwork = (int)wq + 1;
        liwork = iwq + 1;
        work = malloc((size_t)lwork * sizeof *work);
        iwork = malloc((size_t)liwork * sizeof *iwork);
        if (!work || !iwork) {
            free(wall);
            rc = gi_fail(err, "out of memory for the LAPACK eigensolver workspace");
            goto done;
        }
        dsyevr_(&jobz, &range, &uplo, &nn, A, &lda, &vl, &vu, &il, &iu, &abstol, &found, wall, vec, &ldz,
                isuppz, work, &lwork, iwork, &liwork, &info);
    }
    free(wall);
    if (info != 0 || found != 1) {
        rc = gi_fail(err, "the eigensolver (LAPACK dsyevr) failed on the %d-gene Laplacian (info %d)", G, info);
        goto done;
    }

    /* Fiedler vector of the random-walk Laplacian: D^-1/2 v; scale to [0, 1]. */
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < G; i++) {
        vec[i] *= dinv[i];
        lo = vec[i] < lo ? vec[i] : lo;
        hi = vec[i] > hi ? vec[i] : hi;
    }
    double span = hi - lo;
    for (int i = 0; i < G; i++)
        vec[i] = span > 0.0 ? (vec[i] - lo) / span : 0.0;
    /* Deterministic orientation: gene 0 in the lower half (ties broken by the
     * first gene off the midpoint). */
    int flip = 0;
    for (int i = 0; i < G; i++) {
        if (vec[i] != 0.5) {
            flip = vec[i] > 0.5;
            break;
        }
    }
    for (int i = 0; i < G; i++)
        t[i] = (float)(flip ? 1.0 - vec[i] : vec[i]);
done:
    free(A);
    free(dinv);
    free(vec);
    free(work);
    free(iwork);
    return rc;
}
