/* kriging.c - ordinary and regression kriging with ML hyperparameters (see kriging.h). */
#include "geneinr/kriging.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/progress.h"
#include "geneinr/rng.h"
#include "geneinr/vmath.h"

/* LAPACK from OpenBLAS (Fortran interface; no LAPACKE needed). */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda, double *b,
             const int *ldb, int *info);
void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);
void dtrtri_(const char *uplo, const char *diag, const int *n, double *a, const int *lda, int *info);

#define PRED_BLOCK 256
#define GENE_WINDOW 128   /* genes per prediction GEMM (krige_predict) */
#define STREAM_SUBSAMPLE (GI_STREAM_SPLIT + 12)

typedef struct krige_state {
    int n, G, cov, per_gene;
    float *mni;              /* [n][3] */
    float *alpha;            /* [n][G] weights (0 for unmeasured) */
    double *mu;              /* [G] kriging mean */
    double *range, *lambda, *sill;   /* [G] (equal across genes when shared) */
    /* regression kriging */
    int n_labels;            /* 0 = ordinary kriging */
    float *label_mean;       /* [n_labels][G] */
    int *lab;                /* [n] label index of each sample (joint label effect), NULL = none */
    double *eta;             /* [G] label-effect variance / sill */
    float *label_alpha;      /* [n_labels][G] sum of alpha over each label's samples */
    int *don;                /* [n] donor of each sample (donor random effect), NULL = none */
    double *zeta;            /* [G] donor-effect variance / sill */
    double *lsim;            /* [n_labels][n_labels] label profile similarity R (unit diagonal, PSD), NULL = none:
                              * label effects covary as eta ((1 - beta) I + beta R) */
    double *beta;            /* [G] weight of R */
    /* Uncertainty (shared hyperparameters only, see sd_prepare): the
     * Cholesky factor of A over all n samples and the A^-1 pieces that make
     * the kriging variance O(n) per point once q = r'A^-1 r is known. */
    double *fac;             /* [n][n] lower Cholesky factor of A (LAPACK column-major), NULL = no SD */
    double *sd_u;            /* [n] A^-1 1 */
    double sd_uu;            /* 1'A^-1 1 */
    int sd_L;                /* label vectors kept: n_labels (regression kriging), 0 (ordinary) */
    double *sd_w;            /* [sd_L][n] A^-1 s_l, s_l = covariance of label l's effect with each sample / eta */
    double *sd_sw, *sd_su;   /* [sd_L] s_l'A^-1 s_l, 1'A^-1 s_l */
    double *sd_fixvar;       /* [sd_L] estimation variance of the fixed label means / sill (label_shrink > 0), NULL */
    double label_shrink;     /* baseline.label_shrink of the fit (regression kriging) */
} krige_state;

double gi_cov_rho(int covariance, double h, double range)
{
    double t = h / range;
    switch (covariance) {
    case GI_COV_MATERN32: { double a = sqrt(3.0) * t; return (1 + a) * exp(-a); }
    case GI_COV_MATERN52: { double a = sqrt(5.0) * t; return (1 + a + a * a / 3) * exp(-a); }
    default: return exp(-t);
    }
}

/* ------------------------------------------------------------ factor */

/* A = R + eta [same label] + lambda I over points p[0..n) (lower Cholesky
 * in place); with lc.R the label term is eta ((1 - beta) [same label] + beta
 * R[label i][label j]). lab = NULL: no label term. */
typedef struct label_cov {
    const double *R;         /* [L][L] or NULL: labels' effects independent */
    int L;
    double beta;
} label_cov;

static int factor(int cov, const float *p, const int *lab, const int *don, int n, double range, double lambda,
                  double eta, double zeta, label_cov lc, double *A, double *logdet)
{
    for (int i = 0; i < n; i++) {
        A[(size_t)i * n + i] = 1 + lambda + (lab ? eta : 0) + (don ? zeta : 0);
        for (int j = i + 1; j < n; j++) {
            double dx = p[3 * i] - p[3 * j], dy = p[3 * i + 1] - p[3 * j + 1], dz = p[3 * i + 2] - p[3 * j + 2];
            double r = gi_cov_rho(cov, sqrt(dx * dx + dy * dy + dz * dz), range);
            if (lab && lab[i] == lab[j])
                r += eta;
            else if (lab && lc.R)
                r += eta * lc.beta * lc.R[(size_t)lab[i] * lc.L + lab[j]];
            if (don && don[i] == don[j])
                r += zeta;
            A[(size_t)i * n + j] = A[(size_t)j * n + i] = r;
        }
    }
    int info;
    /* Row-major symmetric = column-major symmetric; "U" in Fortran order is
     * the lower triangle in ours, either works for potrs with the same flag. */
    dpotrf_("L", &n, A, &n, &info);
    if (info != 0)
        return -1;
    double ld = 0;
    for (int i = 0; i < n; i++)
        ld += 2 * log(A[(size_t)i * n + i]);
    *logdet = ld;
    return 0;
}

static void solve(const double *L, int n, double *b, int nrhs)
{
    int info;
    dpotrs_("L", &n, &nrhs, L, &n, b, &n, &info);
}

/* Solves restricted to the measured set S of one gene, from the factor of
 * the full A: x = A^-1 (b + E_M c) with c chosen so that x_M = 0, i.e.
 * x_S = (A_SS)^-1 b_S. */
typedef struct restricted {
    int n, m;
    int *miss;               /* [m] */
    double *Z;               /* [m][n]: column j of A^-1 for each missing j (Fortran: n x m) */
    double *Pmm;             /* [m][m] Cholesky of (A^-1)_MM */
    double logdet_extra;     /* log|(A^-1)_MM| */
} restricted;

static void restricted_free(restricted *r)
{
    free(r->miss);
    free(r->Z);
    free(r->Pmm);
    memset(r, 0, sizeof *r);
}

static int restricted_build(restricted *r, const double *L, int n, const float *y, int stride, int *count)
{
    memset(r, 0, sizeof *r);
    r->n = n;
    int m = 0;
    for (int i = 0; i < n; i++)
        m += isnan(y[(size_t)i * stride]);
    *count = n - m;
    r->m = m;
    if (m == 0)
        return 0;
    r->miss = malloc(sizeof(int) * m);
    r->Z = calloc((size_t)n * m, sizeof(double));
    r->Pmm = malloc(sizeof(double) * (size_t)m * m);
    if (!r->miss || !r->Z || !r->Pmm)
        return -1;
    for (int i = 0, k = 0; i < n; i++)
        if (isnan(y[(size_t)i * stride])) {
            r->miss[k] = i;
            r->Z[(size_t)k * n + i] = 1;
            k++;
        }
    solve(L, n, r->Z, m);
    for (int a = 0; a < m; a++)
        for (int b = 0; b < m; b++)
            r->Pmm[(size_t)a * m + b] = r->Z[(size_t)a * n + r->miss[b]];
    int info;
    dpotrf_("L", &m, r->Pmm, &m, &info);
    if (info != 0)
        return -1;
    double ld = 0;
    for (int i = 0; i < m; i++)
        ld += 2 * log(r->Pmm[(size_t)i * m + i]);
    r->logdet_extra = ld;
    return 0;
}

/* b: [n], zero on M on entry; on return x with x_S = A_SS^-1 b_S, x_M = 0. */
static void restricted_solve(const restricted *r, const double *L, double *b, double *work)
{
    int n = r->n, m = r->m;
    solve(L, n, b, 1);
    if (!m)
        return;
    for (int a = 0; a < m; a++)
        work[a] = b[r->miss[a]];
    int one = 1, info;
    dpotrs_("L", &m, &one, r->Pmm, &m, work, &m, &info);
    /* x -= Z Pmm^-1 x_M */
    for (int a = 0; a < m; a++)
        cblas_daxpy(n, -work[a], r->Z + (size_t)a * n, 1, b, 1);
    for (int a = 0; a < m; a++)
        b[r->miss[a]] = 0;
}

/* Profile negative log-likelihood of one gene (mean, sill profiled), and
 * optionally its weights alpha = A_SS^-1 (y - mu) and mu, sill. */
static int gene_nll(const double *L, double logdet, int n, const float *y, int stride, double *nll,
                    double *alpha, double *mu_out, double *sill_out)
{
    restricted r;
    int cnt;
    double *u = malloc(sizeof(double) * n), *v = malloc(sizeof(double) * n);
    double *work = malloc(sizeof(double) * (n + 1));
    int rc = -1;
    if (!u || !v || !work || restricted_build(&r, L, n, y, stride, &cnt) != 0)
        goto done;
    if (cnt < 2) {
        restricted_free(&r);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        float yi = y[(size_t)i * stride];
        u[i] = isnan(yi) ? 0 : 1;
        v[i] = isnan(yi) ? 0 : yi;
    }
    restricted_solve(&r, L, u, work);
    restricted_solve(&r, L, v, work);
    double su = 0, sv = 0, yv = 0;
    for (int i = 0; i < n; i++) {
        float yi = y[(size_t)i * stride];
        if (isnan(yi))
            continue;
        su += u[i];
        sv += v[i];
        yv += yi * v[i];
    }
    double mu = sv / su;
    double q = yv - 2 * mu * sv + mu * mu * su;
    double sill = q / cnt;
    if (!(sill > 0))
        sill = 1e-300;
    *nll = 0.5 * cnt * log(sill) + 0.5 * (logdet + r.logdet_extra);
    if (alpha)
        for (int i = 0; i < n; i++)
            alpha[i] = v[i] - mu * u[i];
    if (mu_out)
        *mu_out = mu;
    if (sill_out)
        *sill_out = sill;
    restricted_free(&r);
    rc = 0;
done:
    free(u);
    free(v);
    free(work);
    return rc;
}

/* ------------------------------------------------ genes in a batch */

/* Every gene of a shared-hyperparameter fit at once, from the factor L of
 * the full A (same mathematics as gene_nll, cheaper order of work):
 *   u = A^-1 1 once; v_g = A^-1 y_g (y_g zero at the gene's unmeasured set M)
 *   for a block of genes in one dpotrs (BLAS 3); and, when some gene has an
 *   unmeasured sample, L^-1 once (dtrtri, n^3/3) so that each gene's (A^-1)_MM
 *   is m^2 dot products of L^-1's columns (A^-1 = L^-T L^-1), not an n x m
 *   solve; for the weights, which need the columns (A^-1)_{:,M}, A^-1 itself
 *   (dpotri, 2/3 n^3), once per fit.
 * Restricting to the measured set S (Woodbury, as restricted_build):
 *   a'A_SS^-1 b = a'A^-1 b - c_a' P^-1 c_b for a, b zero on M, with
 *   P = (A^-1)_MM and c_a = (A^-1 a)_M; c_1 = u_M - P 1, c_y = v_M.
 *   1_S'A^-1 1_S = sum_S u - sum c_1, 1_S'A^-1 y = sum_S v, y'A^-1 y = sum_S y v.
 * The weights: alpha = A_SS^-1 (y - mu 1) on S, 0 on M
 *   = v - mu u - (A^-1)_{:,M} (P^-1 c_y - mu (1 + P^-1 c_1)).
 * Cost per evaluation: n^3/3 (dpotrf) + n^3/3 (dtrtri, only with missing
 * values) + 2 n^2 G (the genes' solves) + n sum_g m_g^2, against n^3/3 +
 * 2 n^2 sum_g m_g one gene at a time (~7 GFLOP at 1,200 samples x 100 genes,
 * 2% missing; now ~1.4). Genes go through the solves in fixed blocks of
 * GENE_BLOCK aligned to gene 0, so a gene's value comes from the same
 * BLAS call whichever genes a rank is given (objective_at). */
typedef struct gene_batch {
    int n, G;
    const float *y;          /* [n][G] (NaN = unmeasured) */
    const double *L;         /* [n][n] Cholesky factor of A (factor()) */
    double logdet;
    double *ainv;            /* [n][n] A^-1 (symmetric, full; weights, or the likelihood of many missing
                              * values), NULL when no gene misses a sample */
    double *linv;            /* [n][n] L^-1 (Fortran's lower triangle; likelihood only), NULL likewise */
    double *u;               /* [n] A^-1 1 */
    double *V;               /* [n][GENE_BLOCK] scratch, gene j of the block at V + j n */
    int *miss;               /* [n] scratch */
    double *P;               /* [mmax][mmax] scratch for one gene's P (m^2 used) */
    double *cw;              /* [4 (mmax + 1)] scratch */
} gene_batch;

#define GENE_BLOCK 16

static void gene_batch_free(gene_batch *b)
{
    free(b->ainv);
    free(b->linv);
    free(b->u);
    free(b->V);
    free(b->miss);
    free(b->P);
    free(b->cw);
    memset(b, 0, sizeof *b);
}

/* The shared pieces for genes g0 .. g1-1 (u, and A^-1 (weights) or L^-1
 * (likelihood only) when one of them misses a sample). -1: out of memory or
 * the inverse failed. */
static int gene_batch_init(gene_batch *b, const double *L, double logdet, int n, const float *y, int G, int g0, int g1,
                           int weights)
{
    memset(b, 0, sizeof *b);
    b->n = n;
    b->G = G;
    b->y = y;
    b->L = L;
    b->logdet = logdet;
    int mmax = 0;
    double mm = 0; /* sum over all genes of m^2 (all, not g0 .. g1: the choice below is the same on every rank) */
    for (int g = 0; g < G; g++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            m += isnan(y[(size_t)i * G + g]);
        if (g >= g0 && g < g1)
            mmax = m > mmax ? m : mmax;
        mm += (double)m * m;
    }
    /* The likelihood's P_g from L^-1 costs n m^2 per gene (dot products)
     * after n^3/3; from A^-1, m^2 lookups after 2/3 n^3: A^-1 once the genes'
     * sum of n m^2 passes n^3/3 (many genes, or many missing values). */
    weights = weights || mm * n > (double)n * n * n / 3;
    b->u = malloc(sizeof(double) * (size_t)n);
    b->V = malloc(sizeof(double) * (size_t)n * GENE_BLOCK);
    b->miss = malloc(sizeof(int) * (size_t)n);
    b->cw = malloc(sizeof(double) * 4 * (size_t)(mmax + 1));
    b->P = malloc(sizeof(double) * (size_t)(mmax ? mmax : 1) * (mmax ? mmax : 1));
    double **inv = weights ? &b->ainv : &b->linv;
    if (mmax)
        *inv = malloc(sizeof(double) * (size_t)n * n);
    if (!b->u || !b->V || !b->miss || !b->cw || !b->P || (mmax && !*inv))
        return -1;
    for (int i = 0; i < n; i++)
        b->u[i] = 1;
    solve(L, n, b->u, 1);
    if (mmax && !weights) {
        int info;
        memcpy(b->linv, L, sizeof(double) * (size_t)n * n);
        dtrtri_("L", "N", &n, b->linv, &n, &info);
        return info != 0 ? -1 : 0;
    }
    if (mmax) {
        int info;
        memcpy(b->ainv, L, sizeof(double) * (size_t)n * n);
        dpotri_("L", &n, b->ainv, &n, &info);
        if (info != 0)
            return -1;
        /* dpotri fills Fortran's lower triangle = row i, columns j >= i here: mirror it. */
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++)
                b->ainv[(size_t)i * n + j] = b->ainv[(size_t)j * n + i];
    }
    return 0;
}

/* Gene g, v = A^-1 y_g (y_g zero on M): its profile NLL and, with alpha,
 * its weights [n] (0 on M), mean and sill. -1: fewer than 2 measured
 * samples, -2: (A^-1)_MM not positive definite. */
static int gene_batch_one(gene_batch *b, int g, const double *v, double *nll, double *alpha, double *mu_out,
                          double *sill_out)
{
    int n = b->n, G = b->G, m = 0;
    const float *y = b->y;
    const double *u = b->u;
    double suS = 0, sv = 0, yv = 0;
    for (int i = 0; i < n; i++) {
        float yi = y[(size_t)i * G + g];
        if (isnan(yi)) {
            b->miss[m++] = i;
            continue;
        }
        suS += u[i];
        sv += v[i];
        yv += yi * v[i];
    }
    int cnt = n - m;
    if (cnt < 2)
        return -1;
    double su = suS, ld_extra = 0;
    double *cu = b->cw, *cv = cu + m, *t = cv + m; /* t: [2][m] P^-1 c_1, P^-1 c_y */
    if (m) {
        double *P = b->P;
        if (b->ainv)
            for (int a = 0; a < m; a++)
                for (int c = 0; c < m; c++)
                    P[(size_t)a * m + c] = b->ainv[(size_t)b->miss[a] * n + b->miss[c]];
        else /* (A^-1)_jk = sum_{i >= max(j, k)} L^-1_ij L^-1_ik: column j of L^-1 is row j here */
            for (int a = 0; a < m; a++)
                for (int c = 0; c <= a; c++) {
                    int j = b->miss[a], k = b->miss[c], lo = j > k ? j : k;
                    P[(size_t)a * m + c] = P[(size_t)c * m + a] =
                        cblas_ddot(n - lo, b->linv + (size_t)j * n + lo, 1, b->linv + (size_t)k * n + lo, 1);
                }
        for (int a = 0; a < m; a++) {
            double rs = 0;
            for (int c = 0; c < m; c++)
                rs += P[(size_t)a * m + c];
            cu[a] = u[b->miss[a]] - rs;
            cv[a] = v[b->miss[a]];
            su -= cu[a];
        }
        int info, two = 2;
        dpotrf_("L", &m, P, &m, &info);
        if (info != 0)
            return -2;
        for (int a = 0; a < m; a++)
            ld_extra += 2 * log(P[(size_t)a * m + a]);
        memcpy(t, cu, sizeof(double) * (size_t)m);
        memcpy(t + m, cv, sizeof(double) * (size_t)m);
        dpotrs_("L", &m, &two, P, &m, t, &m, &info);
        for (int a = 0; a < m; a++) {
            su -= cu[a] * t[a];
            sv -= cu[a] * t[m + a];
            yv -= cv[a] * t[m + a];
        }
    }
    double mu = sv / su;
    double q = yv - 2 * mu * sv + mu * mu * su;
    double sill = q / cnt;
    if (!(sill > 0))
        sill = 1e-300;
    *nll = 0.5 * cnt * log(sill) + 0.5 * (b->logdet + ld_extra);
    if (alpha) { /* weights mode: ainv is there whenever m > 0 */
        for (int i = 0; i < n; i++)
            alpha[i] = v[i] - mu * u[i];
        for (int a = 0; a < m; a++) /* alpha -= (A^-1)_{:,M} (P^-1 c_y - mu (1 + P^-1 c_1)) */
            cblas_daxpy(n, -(t[m + a] - mu * (1 + t[a])), b->ainv + (size_t)b->miss[a] * n, 1, alpha, 1);
        for (int a = 0; a < m; a++)
            alpha[b->miss[a]] = 0;
    }
    if (mu_out)
        *mu_out = mu;
    if (sill_out)
        *sill_out = sill;
    return 0;
}

/* The NLL of every gene g0 .. g1-1 into nll[g - g0] (the caller sums them in
 * gene order); g0 a multiple of GENE_BLOCK, g1 too or G. -1: out of memory,
 * -2: a gene has no likelihood (fewer than 2 measured samples or a singular
 * restriction). */
static int genes_nll(const double *L, double logdet, int n, const float *y, int G, int g0, int g1, double *nll)
{
    gene_batch b;
    int rc = gene_batch_init(&b, L, logdet, n, y, G, g0, g1, 0) != 0 ? -1 : 0;
    for (int k0 = g0; rc == 0 && k0 < g1; k0 += GENE_BLOCK) {
        int k = g1 - k0 < GENE_BLOCK ? g1 - k0 : GENE_BLOCK;
        for (int j = 0; j < k; j++)
            for (int i = 0; i < n; i++) {
                float yi = y[(size_t)i * G + k0 + j];
                b.V[(size_t)j * n + i] = isnan(yi) ? 0 : yi;
            }
        solve(L, n, b.V, k);
        for (int j = 0; j < k && rc == 0; j++)
            if (gene_batch_one(&b, k0 + j, b.V + (size_t)j * n, &nll[k0 + j - g0], NULL, NULL, NULL) != 0)
                rc = -2;
    }
    gene_batch_free(&b);
    return rc;
}

/* ----------------------------------------------------------- ML fit */

typedef struct objective {
    int cov, n, G, gene;     /* gene = -1: sum over all genes */
    const float *p;          /* [n][3] */
    const float *y;          /* [n][G] */
    const int *lab;          /* [n] or NULL */
    const int *don;          /* [n] or NULL */
    double *A;               /* [n][n] scratch */
    int evals;
    const double *R;         /* label similarity or NULL (then no beta parameter) */
    int L;
    gi_progress *progress;   /* counts evaluations (NULL = silent) */
    long *counted;           /* evaluations so far, over every pass */
    double *nll;             /* [G] scratch: each gene's term */
    MPI_Comm comm;           /* ranks that share the genes' terms (every one fits the same), or MPI_COMM_SELF */
    int *cnt, *off;          /* [ranks] genes of each rank and where they start (whole GENE_BLOCKs) */
} objective;

static double objective_at(objective *o, const double *th)
{
    int D = 2 + (o->lab != NULL) + (o->R != NULL);
    double range = exp(th[0]), lambda = exp(th[1]), eta = o->lab ? exp(th[2]) : 0, zeta = o->don ? exp(th[D]) : 0, logdet;
    double beta = o->R ? 1 / (1 + exp(-th[3])) : 0;
    o->evals++;
    if (o->progress)
        gi_progress_step(o->progress, ++*o->counted);
    if (range < 0.1 || range > 1e4 || lambda < 1e-6 || lambda > 1e3 || (o->lab && (eta < 1e-6 || eta > 1e3))
        || (o->don && (zeta < 1e-6 || zeta > 1e3)) || (o->R && (th[3] < -12 || th[3] > 12)))
        return INFINITY;
    label_cov lc = {o->R, o->L, beta};
    if (factor(o->cov, o->p, o->lab, o->don, o->n, range, lambda, eta, zeta, lc, o->A, &logdet) != 0)
        return INFINITY;
    double tot = 0;
    if (o->gene >= 0) { /* one gene (per-gene fit): its own restricted solves */
        double nll;
        if (gene_nll(o->A, logdet, o->n, o->y + o->gene, o->G, &nll, NULL, NULL, NULL) != 0)
            return INFINITY;
        return nll;
    }
    /* Every gene at once (genes_nll): each rank its fixed range of genes, the
     * values gathered and summed in gene order, so the sum has the same bits
     * at any rank count (a gene's value does not depend on the rank that
     * computes it). A rank that fails gives +inf, which every rank then sees. */
    int rank = 0, size = 1;
    MPI_Comm_rank(o->comm, &rank);
    MPI_Comm_size(o->comm, &size);
    int g0 = o->off[rank], g1 = g0 + o->cnt[rank];
    if (g1 > g0 && genes_nll(o->A, logdet, o->n, o->y, o->G, g0, g1, o->nll + g0) != 0)
        for (int g = g0; g < g1; g++)
            o->nll[g] = INFINITY;
    if (size > 1)
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DOUBLE, o->nll, o->cnt, o->off, MPI_DOUBLE, o->comm);
    for (int g = 0; g < o->G; g++)
        tot += o->nll[g];
    return isfinite(tot) ? tot : INFINITY;
}

/* Nelder-Mead over (log range, log lambda[, log eta][, logit beta][, log
 * zeta]): smooth, 2-5-D, a few dozen factorisations. */
static void nelder_mead(objective *o, int D, double *th)
{
    double S[6][5], f[6];
    for (int i = 0; i <= D; i++) {
        for (int a = 0; a < D; a++)
            S[i][a] = th[a] + (i == a + 1 ? (a == 0 ? 0.5 : 1.0) : 0);
        f[i] = objective_at(o, S[i]);
    }
    for (int it = 0; it < 60 * D; it++) {
        for (int a = 0; a <= D; a++) /* sort */
            for (int b = a + 1; b <= D; b++)
                if (f[b] < f[a]) {
                    double t[5], tf = f[a];
                    memcpy(t, S[a], sizeof t); memcpy(S[a], S[b], sizeof t); memcpy(S[b], t, sizeof t);
                    f[a] = f[b]; f[b] = tf;
                }
        double size = 0;
        for (int i = 1; i <= D; i++)
            for (int a = 0; a < D; a++)
                size += fabs(S[i][a] - S[0][a]);
        if (size < 2e-3 || (isfinite(f[D]) && fabs(f[D] - f[0]) < 1e-7 * (1 + fabs(f[0])) && size < 0.05))
            break;
        double c[5] = {0, 0, 0, 0, 0}, xr[5], xe[5], xc[5];
        for (int i = 0; i < D; i++)
            for (int a = 0; a < D; a++)
                c[a] += S[i][a] / D;
        for (int a = 0; a < D; a++)
            xr[a] = 2 * c[a] - S[D][a];
        double fr = objective_at(o, xr);
        if (fr < f[0]) {
            for (int a = 0; a < D; a++)
                xe[a] = 3 * c[a] - 2 * S[D][a];
            double fe = objective_at(o, xe);
            if (fe < fr) { memcpy(S[D], xe, sizeof xe); f[D] = fe; }
            else { memcpy(S[D], xr, sizeof xr); f[D] = fr; }
        } else if (fr < f[D - 1]) {
            memcpy(S[D], xr, sizeof xr);
            f[D] = fr;
        } else {
            for (int a = 0; a < D; a++)
                xc[a] = (c[a] + S[D][a]) / 2;
            double fc = objective_at(o, xc);
            if (fc < f[D]) {
                memcpy(S[D], xc, sizeof xc);
                f[D] = fc;
            } else {
                for (int i = 1; i <= D; i++) {
                    for (int a = 0; a < D; a++)
                        S[i][a] = (S[i][a] + S[0][a]) / 2;
                    f[i] = objective_at(o, S[i]);
                }
            }
        }
    }
    int best = 0;
    for (int i = 1; i <= D; i++)
        if (f[i] < f[best]) best = i;
    memcpy(th, S[best], sizeof(double) * D);
}

/* A seeded random subset of at most k of the n points (all when k <= 0 or k >= n). */
static int subsample(int n, int k, uint64_t seed, int **out)
{
    int *idx = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!idx)
        return -1;
    for (int i = 0; i < n; i++)
        idx[i] = i;
    if (k > 0 && k < n)
        for (int i = 0; i < k; i++) { /* partial Fisher-Yates */
            int j = i + (int)gi_rng_below(seed, STREAM_SUBSAMPLE, (uint64_t)i, (uint64_t)(n - i));
            int t = idx[i]; idx[i] = idx[j]; idx[j] = t;
        }
    *out = idx;
    return k > 0 && k < n ? k : n;
}

static void krige_free(void *p)
{
    krige_state *s = p;
    if (!s)
        return;
    free(s->mni);
    free(s->alpha);
    free(s->mu);
    free(s->range);
    free(s->lambda);
    free(s->sill);
    free(s->label_mean);
    free(s->lab);
    free(s->eta);
    free(s->label_alpha);
    free(s->don);
    free(s->zeta);
    free(s->beta);
    free(s->lsim);
    free(s->fac);
    free(s->sd_u);
    free(s->sd_w);
    free(s->sd_sw);
    free(s->sd_su);
    free(s->sd_fixvar);
    free(s);
}

/* The method's state is opaque outside method.c; it hands it back here. */
const void *gi_method_state(const gi_method *m);

/* The state of hyper_from when it is a kriging fit with the same genes,
 * covariance, per-gene setting and random effects as s; else NULL. */
static const krige_state *hyper_state(const gi_method *from, const krige_state *s)
{
    int kind = gi_method_kind(from);
    if (kind != GI_METHOD_KRIGING && kind != GI_METHOD_RK)
        return NULL;
    const krige_state *h = gi_method_state(from);
    if (h->G != s->G || h->cov != s->cov || h->per_gene != s->per_gene || (h->lab == NULL) != (s->lab == NULL)
        || (h->don == NULL) != (s->don == NULL) || (h->lsim == NULL) != (s->lsim == NULL))
        return NULL;
    return h;
}

/* The weights, mean and sill of every gene measured at all n samples, from
 * the factor L of the shared covariance (A^-1 1 once, A^-1 Y in blocks of
 * genes), marked in done[g]; genes with a missing sample are left to the
 * per-gene path. Same formulas as gene_nll with nothing missing. */
#define WEIGHT_BLOCK 256
static int weights_of_measured(krige_state *s, const double *L, const float *y, unsigned char *done, gi_err *err)
{
    int n = s->n, G = s->G;
    double *u = malloc(sizeof(double) * (size_t)n);
    double *V = malloc(sizeof(double) * (size_t)n * WEIGHT_BLOCK);
    int *genes = malloc(sizeof(int) * WEIGHT_BLOCK);
    if (!u || !V || !genes) {
        free(u); free(V); free(genes);
        return gi_fail(err, "out of memory for the kriging weights");
    }
    for (int i = 0; i < n; i++)
        u[i] = 1;
    solve(L, n, u, 1);
    double su = 0;
    for (int i = 0; i < n; i++)
        su += u[i];
    for (int g0 = 0; g0 < G;) {
        int k = 0;
        for (; g0 < G && k < WEIGHT_BLOCK; g0++) {
            int full = 1;
            for (int i = 0; full && i < n; i++)
                full = !isnan(y[(size_t)i * G + g0]);
            if (!full)
                continue;
            genes[k] = g0;
            for (int i = 0; i < n; i++)
                V[(size_t)k * n + i] = y[(size_t)i * G + g0];
            k++;
        }
        if (!k)
            continue;
        solve(L, n, V, k);
        for (int j = 0; j < k; j++) {
            int g = genes[j];
            const double *v = V + (size_t)j * n;
            done[g] = 1;
            double sv = 0, yv = 0;
            for (int i = 0; i < n; i++) {
                sv += v[i];
                yv += y[(size_t)i * G + g] * v[i];
            }
            double mu = sv / su, q = yv - 2 * mu * sv + mu * mu * su, sill = q / n;
            s->mu[g] = mu;
            s->sill[g] = sill > 0 ? sill : 1e-300;
            for (int i = 0; i < n; i++)
                s->alpha[(size_t)i * G + g] = (float)(v[i] - mu * u[i]);
            if (s->lab) {
                for (int l = 0; l < s->n_labels; l++)
                    s->label_alpha[(size_t)l * G + g] = 0;
                for (int i = 0; i < n; i++)
                    s->label_alpha[(size_t)s->lab[i] * G + g] += (float)(v[i] - mu * u[i]);
            }
        }
    }
    free(u);
    free(V);
    free(genes);
    return 0;
}

/* The weights, mean and sill of the genes weights_of_measured left (some
 * sample unmeasured), all from one A^-1 (gene_batch): done[g] set for each. */
static int weights_of_missing(krige_state *s, const double *L, const float *y, unsigned char *done, gi_err *err)
{
    int n = s->n, G = s->G, first = 0;
    while (first < G && done[first])
        first++;
    if (first == G)
        return 0;
    gene_batch b;
    double *alpha = malloc(sizeof(double) * (size_t)n);
    int *genes = malloc(sizeof(int) * GENE_BLOCK);
    if (!alpha || !genes || gene_batch_init(&b, L, 0, n, y, G, first, G, 1) != 0) {
        free(alpha);
        free(genes);
        gene_batch_free(&b);
        return gi_fail(err, "out of memory for the kriging weights (%d samples)", n);
    }
    int rc = 0;
    for (int g0 = first; rc == 0 && g0 < G;) {
        int k = 0;
        for (; g0 < G && k < GENE_BLOCK; g0++) {
            if (done[g0])
                continue;
            genes[k] = g0;
            for (int i = 0; i < n; i++) {
                float yi = y[(size_t)i * G + g0];
                b.V[(size_t)k * n + i] = isnan(yi) ? 0 : yi;
            }
            k++;
        }
        if (!k)
            continue;
        solve(L, n, b.V, k);
        for (int j = 0; j < k && rc == 0; j++) {
            int g = genes[j];
            double nll;
            if (gene_batch_one(&b, g, b.V + (size_t)j * n, &nll, alpha, &s->mu[g], &s->sill[g]) != 0) {
                rc = gi_fail(err, "kriging: gene %d has fewer than 2 measured training samples", g + 1);
                break;
            }
            done[g] = 1;
            for (int i = 0; i < n; i++)
                s->alpha[(size_t)i * G + g] = (float)alpha[i];
            if (s->lab) {
                for (int l = 0; l < s->n_labels; l++)
                    s->label_alpha[(size_t)l * G + g] = 0;
                for (int i = 0; i < n; i++)
                    s->label_alpha[(size_t)s->lab[i] * G + g] += (float)alpha[i];
            }
        }
    }
    free(alpha);
    free(genes);
    gene_batch_free(&b);
    return rc;
}

/* With label similarity a point of label l gets the label term
 * eta sum_l' S[l][l'] alpha(l') (S = (1 - beta) I + beta R, alpha(l') the
 * weights summed over label l''s samples) instead of eta alpha(l): folded into
 * label_alpha once, so prediction is unchanged. */
static int similar_label_alpha(krige_state *s)
{
    int L = s->n_labels, G = s->G;
    double *acc = malloc(sizeof(double) * (size_t)L);
    if (!acc)
        return -1;
    for (int g = 0; g < G; g++) {
        double b = s->beta[g];
        for (int l = 0; l < L; l++) {
            double v = s->label_alpha[(size_t)l * G + g];
            for (int m = 0; m < L; m++)
                if (m != l)
                    v += b * s->lsim[(size_t)l * L + m] * s->label_alpha[(size_t)m * G + g];
            acc[l] = v;
        }
        for (int l = 0; l < L; l++)
            s->label_alpha[(size_t)l * G + g] = (float)acc[l];
    }
    free(acc);
    return 0;
}

/* s_l: the covariance of label l's effect with sample i, over eta: 1 for
 * the label's own samples, beta R[l][l_i] for the others with label
 * similarity, 0 without. */
static double label_link(const krige_state *s, int l, int i)
{
    if (s->lab[i] == l)
        return 1;
    return s->lsim ? s->beta[0] * s->lsim[(size_t)l * s->n_labels + s->lab[i]] : 0;
}

/* The pieces of the kriging variance that do not depend on the point, from
 * the factor of the shared A (whose ownership the state takes): u = A^-1 1,
 * w_l = A^-1 s_l per label and their products. Memory: the factor, 8 n^2
 * bytes (110 MB at 3,702 samples; the fit allocated it anyway), plus
 * 8 n (labels + 1) bytes. */
static int sd_prepare(krige_state *s, double *fac)
{
    int n = s->n, L = s->lab ? s->n_labels : 0;
    s->fac = fac;
    s->sd_L = L;
    s->sd_u = malloc(sizeof(double) * (size_t)n);
    s->sd_w = L ? malloc(sizeof(double) * (size_t)n * L) : NULL;
    s->sd_sw = L ? calloc((size_t)L, sizeof(double)) : NULL;
    s->sd_su = L ? calloc((size_t)L, sizeof(double)) : NULL;
    s->sd_fixvar = L && s->label_shrink > 0 ? calloc((size_t)L, sizeof(double)) : NULL;
    if (!s->sd_u || (L && (!s->sd_w || !s->sd_sw || !s->sd_su)) || (L && s->label_shrink > 0 && !s->sd_fixvar))
        return -1;
    for (int i = 0; i < n; i++)
        s->sd_u[i] = 1;
    solve(fac, n, s->sd_u, 1);
    s->sd_uu = 0;
    for (int i = 0; i < n; i++)
        s->sd_uu += s->sd_u[i];
    if (!L)
        return 0;
    for (int l = 0; l < L; l++)
        for (int i = 0; i < n; i++)
            s->sd_w[(size_t)l * n + i] = label_link(s, l, i);
    solve(fac, n, s->sd_w, L);
    for (int l = 0; l < L; l++) {
        const double *w = s->sd_w + (size_t)l * n;
        for (int i = 0; i < n; i++) {
            s->sd_sw[l] += label_link(s, l, i) * w[i];
            s->sd_su[l] += w[i];
        }
    }
    if (s->sd_fixvar) {
        /* Fixed label means (n_l mean_l + k mean) / (n_l + k) are taken as
         * known by the residual kriging; their own error adds about the
         * variance of a mean of n_l + k samples of the total variance
         * 1 + eta + lambda + zeta (samples treated as independent: the
         * residual field's label effect absorbs part of the error, the
         * samples' correlation adds some; both are second order). */
        double *cnt = calloc((size_t)L, sizeof(double));
        if (!cnt)
            return -1;
        for (int i = 0; i < n; i++)
            cnt[s->lab[i]] += 1;
        double tot = 1 + s->eta[0] + s->lambda[0] + s->zeta[0];
        for (int l = 0; l < L; l++)
            s->sd_fixvar[l] = tot / (cnt[l] + s->label_shrink);
        free(cnt);
    }
    return 0;
}

/* Hyperparameters by ML on the subsample (or copied from o->hyper_from),
 * then the weights on all n samples. */
static int krige_fit_targets(krige_state *s, const gi_method_opts *o, const float *y, gi_err *err)
{
    int n = s->n, G = s->G;
    /* The genes' likelihood terms are shared by the ranks of o->comm (the
     * training's: they all fit the same prior, objective_at), in whole
     * GENE_BLOCKs; the set-up's success is agreed so that no rank waits. */
    MPI_Comm comm = o->comm != MPI_COMM_NULL && o->comm != (MPI_Comm)0 ? o->comm : MPI_COMM_SELF;
    int ranks = 1;
    MPI_Comm_size(comm, &ranks);
    int *sub = NULL;
    int ns = subsample(n, o->fit_samples, o->seed, &sub);
    size_t na = (size_t)(n > ns ? n : ns);
    float *ps = ns > 0 ? malloc(sizeof(float) * 3 * (size_t)ns) : NULL;
    float *ys = ns > 0 ? malloc(sizeof(float) * (size_t)ns * G) : NULL;
    int *ls = s->lab && ns > 0 ? malloc(sizeof(int) * (size_t)ns) : NULL;
    int *dsub = s->don && ns > 0 ? malloc(sizeof(int) * (size_t)ns) : NULL;
    double *A = malloc(sizeof(double) * na * na);
    double *alpha = malloc(sizeof(double) * (size_t)n);
    unsigned char *measured = NULL;
    double *gnll = malloc(sizeof(double) * (size_t)G);
    int *gcnt = malloc(sizeof(int) * (size_t)ranks), *goff = malloc(sizeof(int) * (size_t)ranks);
    int rc = -1;
    int bad = ns < 1 || !ps || !ys || !A || !alpha || (s->lab && !ls) || (s->don && !dsub) || !gnll || !gcnt || !goff;
    if (ranks > 1)
        MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, comm);
    if (bad) {
        gi_fail(err, "out of memory for kriging %d samples (%.0f MB)", n, 8e-6 * n * (double)n);
        goto done;
    }
    int blocks = (G + GENE_BLOCK - 1) / GENE_BLOCK;
    for (int r = 0; r < ranks; r++) {
        long b0 = (long)blocks * r / ranks, b1 = (long)blocks * (r + 1) / ranks;
        int g0 = (int)(b0 * GENE_BLOCK), g1 = (int)(b1 * GENE_BLOCK < G ? b1 * GENE_BLOCK : G);
        goff[r] = g0 < G ? g0 : G;
        gcnt[r] = g1 > goff[r] ? g1 - goff[r] : 0;
    }
    for (int k = 0; k < ns; k++) {
        memcpy(ps + 3 * (size_t)k, s->mni + 3 * (size_t)sub[k], sizeof(float) * 3);
        memcpy(ys + (size_t)k * G, y + (size_t)sub[k] * G, sizeof(float) * G);
        if (ls)
            ls[k] = s->lab[sub[k]];
        if (dsub)
            dsub[k] = s->don[sub[k]];
    }
    /* Start: range a quarter of the mean inter-point distance scale, lambda 0.3. */
    double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
    for (int k = 0; k < ns; k++)
        for (int a = 0; a < 3; a++) {
            lo[a] = fmin(lo[a], ps[3 * k + a]);
            hi[a] = fmax(hi[a], ps[3 * k + a]);
        }
    double extent = fmax(fmax(hi[0] - lo[0], hi[1] - lo[1]), fmax(hi[2] - lo[2], 1.0));
    long counted = 0;
    objective ob = {s->cov, ns, G, -1, ps, ys, ls, dsub, A, 0, s->lsim, s->n_labels, o->progress, &counted, gnll,
                    comm, gcnt, goff};
    int passes = s->per_gene ? G : 1, D = 2 + (ls != NULL) + (s->lsim != NULL) + (dsub != NULL);
    if (o->hyper_from) {
        /* Hyperparameters taken from another fit of the same model (cross-
         * fitting's fold fits): only the weights below are computed. */
        const krige_state *h = hyper_state(o->hyper_from, s);
        if (!h) {
            gi_fail(err, "kriging: the fit to take hyperparameters from is not the same kind of kriging model");
            goto done;
        }
        memcpy(s->range, h->range, sizeof(double) * G);
        memcpy(s->lambda, h->lambda, sizeof(double) * G);
        memcpy(s->eta, h->eta, sizeof(double) * G);
        memcpy(s->zeta, h->zeta, sizeof(double) * G);
        memcpy(s->beta, h->beta, sizeof(double) * G);
        passes = 0;
    } else if (o->hyper && !s->per_gene) {
        /* Stored hyperparameters (the training prior's, from a checkpoint). */
        for (int g = 0; g < G; g++) {
            s->range[g] = o->hyper[0];
            s->lambda[g] = o->hyper[1];
            s->eta[g] = ls ? o->hyper[2] : 0;
            s->zeta[g] = dsub ? o->hyper[3] : 0;
            s->beta[g] = s->lsim ? o->hyper[4] : 0;
        }
        passes = 0;
    }
    /* Nelder-Mead converges in about 35 evaluations per parameter (measured:
     * 4 parameters, 128-140 on the phantoms): the estimate behind the ETA. */
    if (passes > 0)
        gi_progress_expect(o->progress, (long)passes * 35 * D, 1);
    for (int pass = 0; pass < passes; pass++) {
        ob.gene = s->per_gene ? pass : -1;
        double th[5] = {log(extent / 8), log(0.3), log(0.3), log(0.1), log(0.1)};
        if (s->lsim)
            th[3] = log(0.3 / 0.7); /* beta 0.3 */
        nelder_mead(&ob, D, th);
        for (int g = 0; g < G; g++)
            if (!s->per_gene || g == pass) {
                s->range[g] = exp(th[0]);
                s->lambda[g] = exp(th[1]);
                s->eta[g] = ls ? exp(th[2]) : 0;
                s->beta[g] = s->lsim ? 1 / (1 + exp(-th[3])) : 0;
                s->zeta[g] = dsub ? exp(th[D - 1]) : 0;
            }
    }
    /* Weights on all samples, one factor per distinct hyperparameter set.
     * With shared hyperparameters, the genes measured at every sample (all of
     * them in a table from `geneinr prepare`) share one solve for the mean's
     * weights and go through the factor in blocks of right-hand sides (BLAS 3),
     * not two triangular solves each (15,600 genes: ~14 s instead of ~10 min). */
    if (!s->per_gene) {
        double logdet;
        label_cov lc = {s->lsim, s->n_labels, s->beta[0]};
        if (factor(s->cov, s->mni, s->lab, s->don, n, s->range[0], s->lambda[0], s->eta[0], s->zeta[0], lc, A, &logdet)
            != 0) {
            gi_fail(err, "kriging: the covariance matrix is not positive definite (range %g mm, nugget ratio %g)",
                    s->range[0], s->lambda[0]);
            goto done;
        }
        if (!(measured = calloc((size_t)G, 1)) || weights_of_measured(s, A, y, measured, err) != 0
            || weights_of_missing(s, A, y, measured, err) != 0) {
            if (!measured)
                gi_fail(err, "out of memory");
            goto done;
        }
    }
    for (int g = 0; g < G; g++) {
        double logdet, nll;
        if (measured && measured[g])
            continue; /* done above */
        if (s->per_gene) {
            label_cov lc = {s->lsim, s->n_labels, s->beta[g]};
            if (factor(s->cov, s->mni, s->lab, s->don, n, s->range[g], s->lambda[g], s->eta[g], s->zeta[g], lc, A,
                       &logdet) != 0) {
                gi_fail(err, "kriging: the covariance matrix is not positive definite (range %g mm, nugget ratio %g)",
                        s->range[g], s->lambda[g]);
                goto done;
            }
        }
        if (gene_nll(A, 0, n, y + g, G, &nll, alpha, &s->mu[g], &s->sill[g]) != 0) {
            gi_fail(err, "kriging: gene %d has fewer than 2 measured training samples", g + 1);
            goto done;
        }
        for (int i = 0; i < n; i++)
            s->alpha[(size_t)i * G + g] = (float)alpha[i];
        if (s->lab) {
            for (int l = 0; l < s->n_labels; l++)
                s->label_alpha[(size_t)l * G + g] = 0;
            for (int i = 0; i < n; i++)
                s->label_alpha[(size_t)s->lab[i] * G + g] += (float)alpha[i];
        }
    }
    int given = o->hyper_from || (o->hyper && !s->per_gene);
    if (o->verbose && !given)
        for (int g = 0; g < (s->per_gene ? G : 1); g++)
            printf("%s: %s%s range %.2f mm, nugget/sill %.3f%s%.3g (%d likelihood evaluations on %d samples)\n",
                   s->lab ? "regression kriging" : "kriging", s->per_gene ? "gene " : "shared", s->per_gene ? "" : ":",
                   s->range[g], s->lambda[g], s->lab ? ", label effect/sill " : "", s->lab ? s->eta[g] : 0.0,
                   ob.evals, ns);
    if (o->verbose && !given && s->don)
        printf("  donor effect/sill %.3g (excluded from the donor-average prediction)\n", s->zeta[0]);
    if (o->verbose && !given && s->lsim)
        printf("  label similarity weight %.3g (label effects correlated by gene profile)\n", s->beta[0]);
    if (s->lsim && similar_label_alpha(s) != 0) {
        gi_fail(err, "out of memory");
        goto done;
    }
    if (!s->per_gene) {
        int bad = sd_prepare(s, A);
        A = NULL; /* the state owns the factor now */
        if (bad) {
            gi_fail(err, "out of memory for the kriging variance (%d samples)", n);
            goto done;
        }
    }
    rc = 0;
done:
    free(gnll);
    free(gcnt);
    free(goff);
    free(measured);
    free(sub);
    free(ps);
    free(ys);
    free(ls);
    free(dsub);
    free(A);
    free(alpha);
    return rc;
}

static krige_state *krige_new(const gi_method_opts *o, const gi_fit_data *d, gi_err *err)
{
    if (d->n < 3) {
        gi_fail(err, "kriging needs at least 3 training samples (got %d)", d->n);
        return NULL;
    }
    krige_state *s = calloc(1, sizeof *s);
    if (!s) {
        gi_fail(err, "out of memory");
        return NULL;
    }
    int n = d->n, G = d->n_genes;
    s->n = n;
    s->G = G;
    s->cov = o->covariance;
    s->per_gene = o->per_gene;
    s->mni = malloc(sizeof(float) * 3 * (size_t)n);
    s->alpha = malloc(sizeof(float) * (size_t)n * G);
    s->mu = calloc((size_t)G, sizeof(double));
    s->range = calloc((size_t)G, sizeof(double));
    s->lambda = calloc((size_t)G, sizeof(double));
    s->sill = calloc((size_t)G, sizeof(double));
    s->eta = calloc((size_t)G, sizeof(double));
    s->zeta = calloc((size_t)G, sizeof(double));
    s->beta = calloc((size_t)G, sizeof(double));
    if (o->donor_effect && d->donor) {
        s->don = malloc(sizeof(int) * (size_t)n);
        if (s->don)
            memcpy(s->don, d->donor, sizeof(int) * (size_t)n);
    }
    if (!s->mni || !s->alpha || !s->mu || !s->range || !s->lambda || !s->sill || !s->eta || !s->zeta || !s->beta
        || (o->donor_effect && d->donor && !s->don)) {
        krige_free(s);
        gi_fail(err, "out of memory");
        return NULL;
    }
    memcpy(s->mni, d->mni, sizeof(float) * 3 * (size_t)n);
    return s;
}

static void *krige_fit(const gi_method_opts *o, const gi_fit_data *d, gi_err *err)
{
    krige_state *s = krige_new(o, d, err);
    if (s && krige_fit_targets(s, o, d->y, err) != 0) {
        krige_free(s);
        return NULL;
    }
    return s;
}

/* R[l][m] = w_l w_m cos(p_l, p_m) off the diagonal, 1 on it: p_l the label's
 * mean profile over the genes (centred by the genes' means), w_l =
 * sqrt(n_l / (n_l + LSIM_SHRINK)) so that a label with few samples, whose
 * profile is mostly noise, is trusted less; unsampled labels are similar to
 * none. R = W C W + diag(1 - w^2) with C a Gram matrix of unit vectors, so it
 * is positive semi-definite. sum, cnt: [L][G] sums and counts of the labels'
 * values. */
#define LSIM_SHRINK 20.0
static double *label_similarity(int L, int G, const double *sum, const double *cnt, const double *gmean)
{
    double *R = calloc((size_t)L * L, sizeof(double)), *P = calloc((size_t)L * G, sizeof(double));
    double *w = calloc((size_t)L, sizeof(double));
    if (!R || !P || !w) {
        free(R); free(P); free(w);
        return NULL;
    }
    for (int l = 0; l < L; l++) {
        double nl = 0, norm = 0;
        for (int g = 0; g < G; g++) {
            double c = cnt[(size_t)l * G + g];
            double v = c > 0 ? sum[(size_t)l * G + g] / c - gmean[g] : 0;
            P[(size_t)l * G + g] = v;
            norm += v * v;
            nl = c > nl ? c : nl;
        }
        norm = sqrt(norm);
        for (int g = 0; g < G && norm > 0; g++)
            P[(size_t)l * G + g] /= norm;
        w[l] = norm > 0 ? sqrt(nl / (nl + LSIM_SHRINK)) : 0;
    }
    for (int l = 0; l < L; l++)
        for (int m = 0; m < L; m++) {
            double c = 0;
            for (int g = 0; g < G; g++)
                c += P[(size_t)l * G + g] * P[(size_t)m * G + g];
            R[(size_t)l * L + m] = l == m ? 1 : w[l] * w[m] * c;
        }
    free(P);
    free(w);
    return R;
}

static void *rk_fit(const gi_method_opts *o, const gi_fit_data *d, gi_err *err)
{
    if (!d->label || d->n_labels < 1) {
        gi_fail(err, "regression_kriging needs an anatomy: set data.anatomy to a label image");
        return NULL;
    }
    krige_state *s = krige_new(o, d, err);
    if (!s)
        return NULL;
    int n = d->n, G = d->n_genes, L = d->n_labels;
    s->n_labels = L;
    s->label_shrink = o->label_shrink;
    s->label_mean = malloc(sizeof(float) * (size_t)L * G);
    s->lab = malloc(sizeof(int) * (size_t)n);
    s->label_alpha = calloc((size_t)L * G, sizeof(float));
    if (s->lab)
        for (int i = 0; i < n; i++)
            s->lab[i] = d->label[i] >= 0 && d->label[i] < L ? d->label[i] : 0;
    double *sum = calloc((size_t)L * G, sizeof(double)), *cnt = calloc((size_t)L * G, sizeof(double));
    float *res = malloc(sizeof(float) * (size_t)n * G);
    if (!s->label_mean || !s->lab || !s->label_alpha || !sum || !cnt || !res) {
        free(sum); free(cnt); free(res);
        krige_free(s);
        gi_fail(err, "out of memory");
        return NULL;
    }
    double *gmean = malloc(sizeof(double) * (size_t)G);
    if (!gmean) {
        free(sum); free(cnt); free(res);
        krige_free(s);
        gi_fail(err, "out of memory");
        return NULL;
    }
    for (int g = 0; g < G; g++) {
        double tot = 0, nt = 0;
        for (int i = 0; i < n; i++) {
            float y = d->y[(size_t)i * G + g];
            int l = d->label[i];
            if (isnan(y) || l < 0 || l >= L)
                continue;
            sum[(size_t)l * G + g] += y;
            cnt[(size_t)l * G + g] += 1;
            tot += y;
            nt += 1;
        }
        double mean = nt > 0 ? tot / nt : 0, k = o->label_shrink;
        gmean[g] = mean;
        for (int l = 0; l < L; l++) {
            double c = cnt[(size_t)l * G + g];
            /* label_shrink 0: no fixed label means, the labels act only
             * through the covariance (joint random effect, BLUP shrinkage). */
            s->label_mean[(size_t)l * G + g] = k <= 0 ? 0.0f
                : (float)(c + k > 0 ? (sum[(size_t)l * G + g] + k * mean) / (c + k) : mean);
        }
        for (int i = 0; i < n; i++) {
            float y = d->y[(size_t)i * G + g];
            int l = d->label[i] >= 0 && d->label[i] < L ? d->label[i] : 0;
            res[(size_t)i * G + g] = isnan(y) ? NAN : y - s->label_mean[(size_t)l * G + g];
        }
    }
    if (o->label_similarity && G >= 2 && !(s->lsim = label_similarity(L, G, sum, cnt, gmean))) {
        free(sum); free(cnt); free(res); free(gmean);
        krige_free(s);
        gi_fail(err, "out of memory");
        return NULL;
    }
    free(sum);
    free(cnt);
    free(gmean);
    int rc = krige_fit_targets(s, o, res, err);
    free(res);
    if (rc != 0) {
        krige_free(s);
        return NULL;
    }
    return s;
}

/* row[i] = rho(|q - p_i| / range) for the N samples (coordinates as columns
 * px, py, pz), in float: a render evaluates this at every voxel against every
 * sample, so the distances are vectorised and the exponential goes through
 * gi_expf, which gives the same bits at every vector width (a voxel's value
 * does not depend on the CPU or on the rank that renders it). t: scratch [N]. */
GI_VECTORISED static void cov_row(int cov, const float *q, const float *px, const float *py, const float *pz, int N,
                                  double range, float *row, float *t)
{
    float a = (float)((cov == GI_COV_MATERN32 ? sqrt(3.0) : cov == GI_COV_MATERN52 ? sqrt(5.0) : 1.0) / range);
    float qx = q[0], qy = q[1], qz = q[2];
#pragma omp simd
    for (int i = 0; i < N; i++) {
        float dx = px[i] - qx, dy = py[i] - qy, dz = pz[i] - qz;
        t[i] = a * sqrtf(dx * dx + dy * dy + dz * dz);
        row[i] = -t[i];
    }
    gi_expf(row, row, (size_t)N);
    if (cov == GI_COV_MATERN32) {
#pragma omp simd
        for (int i = 0; i < N; i++)
            row[i] *= 1 + t[i];
    } else if (cov == GI_COV_MATERN52) {
#pragma omp simd
        for (int i = 0; i < N; i++)
            row[i] *= 1 + t[i] + t[i] * t[i] / 3;
    }
}

/* The map is a smooth Gaussian-process part, sum_i rho(|x - x_i|) alpha_gi
 * (the O(samples) covariance row per point), plus the rest: the mean and the
 * label effect, cheap per point (method.h, "the smooth part of the map").
 * krige_parts computes either or both: with both, the bits of the whole
 * prediction as it has always been computed (the GP part, then the rest
 * added); the rest alone is 0 + rest, so rest + smooth added later in the
 * same order gives the same bits when the smooth part is exact. */
enum { PART_SMOOTH = 1, PART_REST = 2, PART_ALL = 3 };

static int krige_parts(const krige_state *s, int n, const float *mni, const int *label, int g0, int ng, int parts,
                       float *out, gi_err *err)
{
    int N = s->n, G = s->G;
    if ((parts & PART_REST) && s->n_labels && !label)
        return gi_fail(err, "regression_kriging: predicting needs the anatomy label of every point");
    if (!(parts & PART_SMOOTH)) {
        memset(out, 0, sizeof(float) * (size_t)n * (size_t)ng);
        for (int k = 0; k < n; k++)
            for (int g = g0; g < g0 + ng; g++) {
                float base = (float)s->mu[g];
                if (s->n_labels) {
                    int l = label[k];
                    l = l >= 0 && l < s->n_labels ? l : 0;
                    base += s->label_mean[(size_t)l * G + g] + (float)s->eta[g] * s->label_alpha[(size_t)l * G + g];
                }
                out[(size_t)k * ng + (g - g0)] += base;
            }
        return 0;
    }
    float *R = malloc(sizeof(float) * (size_t)PRED_BLOCK * N);
    float *tmp = s->per_gene ? malloc(sizeof(float) * PRED_BLOCK) : NULL;
    float *win = s->per_gene ? NULL : malloc(sizeof(float) * PRED_BLOCK * GENE_WINDOW);
    float *col = malloc(sizeof(float) * 4 * (size_t)N); /* px, py, pz, scratch */
    if (!R || (s->per_gene && !tmp) || (!s->per_gene && !win) || !col) {
        free(R);
        free(tmp);
        free(win);
        free(col);
        return gi_fail(err, "out of memory for the kriging prediction block");
    }
    for (int i = 0; i < N; i++)
        for (int a = 0; a < 3; a++)
            col[(size_t)a * N + i] = s->mni[3 * (size_t)i + a];
    for (int q0 = 0; q0 < n; q0 += PRED_BLOCK) {
        int nb = n - q0 < PRED_BLOCK ? n - q0 : PRED_BLOCK;
        for (int g = s->per_gene ? g0 : 0; g < (s->per_gene ? g0 + ng : 1); g++) {
            for (int k = 0; k < nb; k++)
                cov_row(s->cov, mni + 3 * (size_t)(q0 + k), col, col + N, col + 2 * (size_t)N, N, s->range[g],
                        R + (size_t)k * N, col + 3 * (size_t)N);
            if (!s->per_gene) {
                /* out block [nb][ng] = R [nb][N] x alpha [N][g0 .. g0+ng), computed in fixed windows of
                 * GENE_WINDOW genes aligned to 0: a gene's value then comes from the same GEMM call
                 * whichever gene range is asked for (OpenBLAS's kernels round differently for other
                 * widths, e.g. on AVX-512), so a gene group renders the bits of the whole. */
                for (int w0 = g0 / GENE_WINDOW * GENE_WINDOW; w0 < g0 + ng; w0 += GENE_WINDOW) {
                    int wn = G - w0 < GENE_WINDOW ? G - w0 : GENE_WINDOW;
                    int lo = w0 > g0 ? w0 : g0, hi = w0 + wn < g0 + ng ? w0 + wn : g0 + ng;
                    if (lo == w0 && hi == w0 + wn) {   /* the window lies inside the range: write in place */
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, wn, N, 1.0f, R, N, s->alpha + w0,
                                    G, 0.0f, out + (size_t)q0 * ng + (w0 - g0), ng);
                        continue;
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, wn, N, 1.0f, R, N, s->alpha + w0, G,
                                0.0f, win, wn);
                    for (int k = 0; k < nb; k++)
                        memcpy(out + (size_t)(q0 + k) * ng + (lo - g0), win + (size_t)k * wn + (lo - w0),
                               sizeof(float) * (size_t)(hi - lo));
                }
            } else {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, nb, N, 1.0f, R, N, s->alpha + g, G, 0.0f, tmp, 1);
                for (int k = 0; k < nb; k++)
                    out[(size_t)(q0 + k) * ng + (g - g0)] = tmp[k];
            }
        }
        for (int k = 0; k < nb && (parts & PART_REST); k++)
            for (int g = g0; g < g0 + ng; g++) {
                float base = (float)s->mu[g];
                if (s->n_labels) {
                    int l = label[q0 + k];
                    l = l >= 0 && l < s->n_labels ? l : 0;
                    base += s->label_mean[(size_t)l * G + g] + (float)s->eta[g] * s->label_alpha[(size_t)l * G + g];
                }
                out[(size_t)(q0 + k) * ng + (g - g0)] += base;
            }
    }
    free(R);
    free(tmp);
    free(win);
    free(col);
    return 0;
}

static int krige_predict(const void *p, int n, const float *mni, const int *label, int g0, int ng, float *out,
                         gi_err *err)
{
    return krige_parts(p, n, mni, label, g0, ng, PART_ALL, out, err);
}

static int krige_has_smooth(const void *p)
{
    (void)p;
    return 1;
}

static int krige_smooth(const void *p, int n, const float *mni, int g0, int ng, float *out, gi_err *err)
{
    return krige_parts(p, n, mni, NULL, g0, ng, PART_SMOOTH, out, err);
}

static int krige_rest(const void *p, int n, const float *mni, const int *label, int g0, int ng, float *out,
                      gi_err *err)
{
    return krige_parts(p, n, mni, label, g0, ng, PART_REST, out, err);
}

/* ------------------------------------------------------ uncertainty */

/* The kriging variance of the donor-average map f(x) = GP(x) + label
 * effect(l) (+ mean), in units of the sill (kriging.h's model):
 *   v = 1 + eta - c'A^-1 c + (1 - 1'A^-1 c)^2 / (1'A^-1 1)  [+ fixed label mean term]
 * with c = r + eta s_l (r_i = rho(|x - x_i|), s_l as label_link): the donor
 * effect and the nugget are not part of f, so neither enters c nor the 1 + eta.
 * c'A^-1 c = q + 2 eta r'w_l + eta^2 s_l'w_l, q = r'A^-1 r the smooth part.
 * Only with shared hyperparameters (one A for every gene; per gene there would
 * be one factor per gene to keep): per_gene fits have no SD. Genes with
 * unmeasured training samples get the variance of the fully measured design
 * (slightly optimistic for them; `geneinr prepare` tables measure every gene). */
static int krige_has_sd(const void *p)
{
    const krige_state *s = p;
    return s->fac != NULL;
}

/* r in double: at a training sample with no nugget q ~ 1 + eta cancels to ~0,
 * which float correlations would swamp. libm's scalar exp: the same bits for a
 * point whatever else is computed with it. */
static void cov_row_double(const krige_state *s, const float *x, double *r)
{
    for (int i = 0; i < s->n; i++) {
        double dx = (double)s->mni[3 * (size_t)i] - x[0], dy = (double)s->mni[3 * (size_t)i + 1] - x[1];
        double dz = (double)s->mni[3 * (size_t)i + 2] - x[2];
        r[i] = gi_cov_rho(s->cov, sqrt(dx * dx + dy * dy + dz * dz), s->range[0]);
    }
}

/* q = |L^-1 r|^2 for SMOOTH_BLOCK points at once (the factor is read once per
 * block): column-oriented forward substitution on Z [n][SMOOTH_BLOCK], one
 * lane per point. Every lane does the same operations in the same order, with
 * no sum across lanes, so a point's q has the same bits whichever points
 * share its block, and at every vector width (no contraction under -std=c11).
 * Cost: n^2 multiply-adds per point (~3 ms at 3,702 samples). */
#define SMOOTH_BLOCK 16
GI_VECTORISED static void smooth_block(const double *fac, int n, double *Z, double *q)
{
    for (int j = 0; j < n; j++) {
        const double *col = fac + (size_t)j * n;
        double *zj = Z + (size_t)j * SMOOTH_BLOCK;
        double d = col[j];
        for (int p = 0; p < SMOOTH_BLOCK; p++)
            zj[p] /= d;
        for (int i = j + 1; i < n; i++) {
            double l = col[i];
            double *zi = Z + (size_t)i * SMOOTH_BLOCK;
#pragma omp simd
            for (int p = 0; p < SMOOTH_BLOCK; p++)
                zi[p] -= l * zj[p];
        }
    }
    for (int p = 0; p < SMOOTH_BLOCK; p++)
        q[p] = 0;
    for (int j = 0; j < n; j++) {
        const double *zj = Z + (size_t)j * SMOOTH_BLOCK;
#pragma omp simd
        for (int p = 0; p < SMOOTH_BLOCK; p++)
            q[p] += zj[p] * zj[p];
    }
}

/* The exact smooth part at n points, in double: q [n]. */
static int smooth_exact(const krige_state *s, int n, const float *mni, double *q, gi_err *err)
{
    int N = s->n;
    double *Z = malloc(sizeof(double) * (size_t)N * SMOOTH_BLOCK), *r = malloc(sizeof(double) * (size_t)N);
    if (!Z || !r) {
        free(Z);
        free(r);
        return gi_fail(err, "out of memory for the kriging variance (%d samples)", N);
    }
    for (int q0 = 0; q0 < n; q0 += SMOOTH_BLOCK) {
        int nb = n - q0 < SMOOTH_BLOCK ? n - q0 : SMOOTH_BLOCK;
        double qb[SMOOTH_BLOCK];
        for (int p = 0; p < SMOOTH_BLOCK; p++) {
            if (p < nb)
                cov_row_double(s, mni + 3 * (size_t)(q0 + p), r);
            for (int i = 0; i < N; i++)
                Z[(size_t)i * SMOOTH_BLOCK + p] = p < nb ? r[i] : 0;
        }
        smooth_block(s->fac, N, Z, qb);
        memcpy(q + q0, qb, sizeof(double) * (size_t)nb);
    }
    free(Z);
    free(r);
    return 0;
}

/* The smooth part a render interpolates (method.h): per point, q = r'A^-1 r,
 * ru = r'A^-1 1 and rw_l = r'A^-1 s_l for every label l: everything of the
 * variance that needs the covariance row r, so that with them interpolated
 * the SD at a voxel is O(1) (krige_predict_sd). */
static int krige_sd_width(const void *p)
{
    const krige_state *s = p;
    return 2 + s->sd_L;
}

/* Points per BLAS-3 block of krige_sd_smooth: its scratch is n x this doubles. */
#define SD_BLAS_BLOCK 256

/* The lattice's entry point, for blocks of points: Z = L^-1 R by one dtrsm
 * per SD_BLAS_BLOCK points (BLAS-3: the factor is read once per block,
 * ~4x the throughput of smooth_block's column sweep), ru and rw by GEMM on
 * R. A point's bits depend on its place in the block (the kernels), which the
 * lattice fixes (uncertainty.h); the exact path (predict_sd with q NULL)
 * keeps smooth_exact's batch-independent sweep. */
static int krige_sd_smooth(const void *p, int n, const float *mni, float *q, gi_err *err)
{
    const krige_state *s = p;
    int N = s->n, L = s->sd_L, W = 2 + L;
    double *Z = malloc(sizeof(double) * (size_t)N * SD_BLAS_BLOCK);
    double *ru = malloc(sizeof(double) * SD_BLAS_BLOCK);
    double *rw = L ? malloc(sizeof(double) * (size_t)L * SD_BLAS_BLOCK) : NULL;
    if (!Z || !ru || (L && !rw)) {
        free(Z);
        free(ru);
        free(rw);
        return gi_fail(err, "out of memory for the kriging variance (%d samples)", N);
    }
    for (int q0 = 0; q0 < n; q0 += SD_BLAS_BLOCK) {
        int nb = n - q0 < SD_BLAS_BLOCK ? n - q0 : SD_BLAS_BLOCK;
        for (int k = 0; k < nb; k++)
            cov_row_double(s, mni + 3 * (size_t)(q0 + k), Z + (size_t)k * N);
        cblas_dgemv(CblasColMajor, CblasTrans, N, nb, 1.0, Z, N, s->sd_u, 1, 0.0, ru, 1);
        if (L)
            cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, nb, L, N, 1.0, Z, N, s->sd_w, N, 0.0, rw, nb);
        cblas_dtrsm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, N, nb, 1.0, s->fac, N, Z, N);
        for (int k = 0; k < nb; k++) {
            const double *z = Z + (size_t)k * N;
            double qq = 0;
            for (int i = 0; i < N; i++)
                qq += z[i] * z[i];
            float *o = q + (size_t)(q0 + k) * W;
            o[0] = (float)qq;
            o[1] = (float)ru[k];
            for (int l = 0; l < L; l++)
                o[2 + l] = (float)rw[(size_t)l * nb + k];
        }
    }
    free(Z);
    free(ru);
    free(rw);
    return 0;
}

/* v(x) in sill units, given q and r at the point and its label l. r in
 * float (predict's vectorised correlations): the terms it enters are
 * first-order in r, not the near-cancelling q, and products are summed in
 * double in index order. */
static double variance_of(const krige_state *s, double q, double ru, double rw, int l)
{
    double eta = s->lab ? s->eta[0] : 0;
    double cc = q, uc = ru;
    if (s->sd_L) {
        cc += 2 * eta * rw + eta * eta * s->sd_sw[l];
        uc += eta * s->sd_su[l];
    }
    double v = 1 + eta - cc + (1 - uc) * (1 - uc) / s->sd_uu;
    if (s->sd_fixvar)
        v += s->sd_fixvar[l];
    return v > 0 ? v : 0;
}

static double krige_variance(const krige_state *s, double q, const float *r, int l)
{
    int N = s->n;
    double ru = 0, rw = 0;
    for (int i = 0; i < N; i++)
        ru += (double)r[i] * s->sd_u[i];
    if (s->sd_L) {
        const double *w = s->sd_w + (size_t)l * N;
        for (int i = 0; i < N; i++)
            rw += (double)r[i] * w[i];
    }
    return variance_of(s, q, ru, rw, l);
}

static int krige_predict_sd(const void *p, int n, const float *mni, const int *label, const float *q, int g0, int ng,
                            float *sd, gi_err *err)
{
    const krige_state *s = p;
    int N = s->n;
    if (s->n_labels && !label)
        return gi_fail(err, "regression_kriging: its SD needs the anatomy label of every point");
    /* r: [N]; col: the samples' coordinates as columns + scratch (cov_row) */
    float *r = malloc(sizeof(float) * (size_t)N), *col = malloc(sizeof(float) * 4 * (size_t)N);
    double *qd = NULL;
    if (!r || !col || (!q && !(qd = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1))))) {
        free(r);
        free(col);
        return gi_fail(err, "out of memory");
    }
    if (!q && smooth_exact(s, n, mni, qd, err) != 0) {
        free(r);
        free(col);
        free(qd);
        return -1;
    }
    for (int i = 0; i < N; i++)
        for (int a = 0; a < 3; a++)
            col[(size_t)a * N + i] = s->mni[3 * (size_t)i + a];
    int W = 2 + s->sd_L;
    for (int k = 0; k < n; k++) {
        int l = 0;
        if (s->sd_L) {
            l = label[k];
            l = l >= 0 && l < s->n_labels ? l : 0;
        }
        double v;
        if (q) {   /* every term that needs r given (interpolated): O(1) per point */
            const float *qk = q + (size_t)k * W;
            v = variance_of(s, qk[0], qk[1], s->sd_L ? qk[2 + l] : 0, l);
        } else {
            cov_row(s->cov, mni + 3 * (size_t)k, col, col + N, col + 2 * (size_t)N, N, s->range[0], r,
                    col + 3 * (size_t)N);
            v = krige_variance(s, qd[k], r, l);
        }
        for (int g = g0; g < g0 + ng; g++)
            sd[(size_t)k * ng + (g - g0)] = (float)sqrt(s->sill[g] * v);
    }
    free(r);
    free(col);
    free(qd);
    return 0;
}

/* A sample about the donor-average map: its nugget and its donor's effect. */
static int krige_noise_sd(const void *p, float *noise, gi_err *err)
{
    (void)err;
    const krige_state *s = p;
    for (int g = 0; g < s->G; g++)
        noise[g] = (float)sqrt(s->sill[g] * (s->lambda[g] + s->zeta[g]));
    return 0;
}

const gi_method_impl gi_kriging_impl = {.fit = krige_fit, .predict = krige_predict, .free = krige_free,
                                        .predict_bytes = NULL, .has_sd = krige_has_sd, .sd_smooth = krige_sd_smooth,
                                        .predict_sd = krige_predict_sd, .noise_sd = krige_noise_sd,
                                        .sd_width = krige_sd_width, .has_smooth = krige_has_smooth, .smooth = krige_smooth, .rest = krige_rest};
const gi_method_impl gi_rk_impl = {.fit = rk_fit, .predict = krige_predict, .free = krige_free, .predict_bytes = NULL,
                                   .has_sd = krige_has_sd, .sd_smooth = krige_sd_smooth,
                                   .predict_sd = krige_predict_sd, .noise_sd = krige_noise_sd,
                                   .sd_width = krige_sd_width, .has_smooth = krige_has_smooth, .smooth = krige_smooth, .rest = krige_rest};

int gi_kriging_params(const gi_method *m, int gene, double *range, double *sill, double *nugget)
{
    int kind = gi_method_kind(m);
    if (kind != GI_METHOD_KRIGING && kind != GI_METHOD_RK)
        return -1;
    const krige_state *s = gi_method_state(m);
    if (gene < 0 || gene >= s->G)
        return -1;
    *range = s->range[gene];
    *sill = s->sill[gene];
    *nugget = s->lambda[gene] * s->sill[gene];
    return 0;
}

int gi_kriging_hyper(const gi_method *m, double *hyper)
{
    int kind = gi_method_kind(m);
    if (kind != GI_METHOD_KRIGING && kind != GI_METHOD_RK)
        return -1;
    const krige_state *s = gi_method_state(m);
    if (s->per_gene)
        return -1;
    hyper[0] = s->range[0];
    hyper[1] = s->lambda[0];
    hyper[2] = s->lab ? s->eta[0] : 0;
    hyper[3] = s->don ? s->zeta[0] : 0;
    hyper[4] = s->lsim ? s->beta[0] : 0;
    return 0;
}

int gi_kriging_nll(int covariance, int n, const float *mni, const int *lab, const int *don, const double *R, int L,
                   int G, const float *y, const double *hyper, double *nll)
{
    double *A = malloc(sizeof(double) * (size_t)n * n), *g = malloc(sizeof(double) * (size_t)(G ? G : 1)), logdet;
    label_cov lc = {R, L, hyper[4]};
    int rc = -1;
    if (A && g && factor(covariance, mni, lab, don, n, hyper[0], hyper[1], lab ? hyper[2] : 0, don ? hyper[3] : 0, lc,
                         A, &logdet) == 0 && genes_nll(A, logdet, n, y, G, 0, G, g) == 0) {
        *nll = 0;
        for (int k = 0; k < G; k++)
            *nll += g[k];
        rc = 0;
    }
    free(A);
    free(g);
    return rc;
}
