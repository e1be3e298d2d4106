/* select.c - prepare's phase 4: the intensity filter, genes, and one probe
 * per gene (differential stability and the other selections) (prep.h). */
#include "prep.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "geneinr/ahba.h"
#include "geneinr/csv.h"
#include "geneinr/genelist.h"
#include "geneinr/grow.h"
#include "geneinr/rng.h"
#include "geneinr/samples.h"

/* --------------------------------------------- 4. filter and selection */

int prep_intensity_filter(prep *P, gi_err *err)
{
    long n_samples = 0;
    for (int d = 0; d < P->n_donors; d++)
        n_samples += P->dn[d].n;
    P->ibf = malloc((size_t)P->n_valid);
    if (!P->ibf)
        return gi_fail(err, "out of memory");
    P->n_ibf = 0;
    for (int v = 0; v < P->n_valid; v++) {
        double sum = 0;
        for (int d = 0; d < P->n_donors; d++)
            sum += P->dn[d].pa[v];
        P->ibf[v] = sum / (double)n_samples >= P->c->prepare.ibf_threshold;
        P->n_ibf += P->ibf[v];
    }
    if (P->n_ibf == 0)
        return gi_fail(err, "no probe passes the intensity filter (prepare.ibf_threshold %g)",
                       P->c->prepare.ibf_threshold);
    return 0;
}

static const prep *sort_ctx_prep;   /* only during the qsort below (single-threaded) */

static int cmp_valid_by_symbol(const void *a, const void *b)
{
    const prep *P = sort_ctx_prep;
    const probe *x = &P->p[P->valid_probe[*(const int *)a]];
    const probe *y = &P->p[P->valid_probe[*(const int *)b]];
    int c = strcmp(x->symbol, y->symbol);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

int prep_group_genes(prep *P, gi_err *err)
{
    P->order = malloc((size_t)P->n_ibf * sizeof *P->order);
    P->genes = malloc((size_t)P->n_ibf * sizeof *P->genes);
    P->gene_first = malloc((size_t)P->n_ibf * sizeof *P->gene_first);
    P->gene_count = malloc((size_t)P->n_ibf * sizeof *P->gene_count);
    if (!P->order || !P->genes || !P->gene_first || !P->gene_count)
        return gi_fail(err, "out of memory");
    int k = 0;
    for (int v = 0; v < P->n_valid; v++)
        if (P->ibf[v])
            P->order[k++] = v;
    sort_ctx_prep = P;
    qsort(P->order, (size_t)k, sizeof *P->order, cmp_valid_by_symbol);
    P->n_genes = 0;
    for (int i = 0; i < k; i++) {
        const char *sym = P->p[P->valid_probe[P->order[i]]].symbol;
        if (P->n_genes == 0 || strcmp(P->genes[P->n_genes - 1], sym) != 0) {
            P->genes[P->n_genes] = (char *)sym;
            P->gene_first[P->n_genes] = i;
            P->gene_count[P->n_genes] = 0;
            P->n_genes++;
        }
        P->gene_count[P->n_genes - 1]++;
    }
    return 0;
}

/* Average ranks (1-based, ties share their mean rank) of x[idx[0..n)] given
 * the order perm of x over all its entries: entries not in the subset are
 * skipped (insub[j] == 0), so ranking a subset costs O(len) once the full
 * order is known. */
void prep_subset_ranks(const double *x, const uint16_t *perm, int len, const int *pos, double *rank_out)
{
    /* pos[j] = position of entry j in the subset, -1 if absent */
    int r = 0;
    int i = 0;
    while (i < len) {
        int j = perm[i];
        if (pos[j] < 0) {
            i++;
            continue;
        }
        /* a run of equal values among subset members; the run holds entry j
         * itself whatever its value, so a NaN (equal to nothing, not even
         * itself) ranks alone and the loop always advances */
        int start = r, cnt = 1, e = i + 1;
        double val = x[j];
        while (e < len && x[perm[e]] == val) {
            if (pos[perm[e]] >= 0)
                cnt++;
            e++;
        }
        double avg = start + (cnt + 1) / 2.0;
        for (int q = i; q < e; q++)
            if (pos[perm[q]] >= 0)
                rank_out[pos[perm[q]]] = avg;
        r += cnt;
        i = e;
    }
}

static double pearson(const double *a, const double *b, int n)
{
    if (n < 2)
        return NAN;
    double ma = 0, mb = 0;
    for (int i = 0; i < n; i++)
        ma += a[i], mb += b[i];
    ma /= n, mb /= n;
    double sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) {
        double x = a[i] - ma, y = b[i] - mb;
        sab += x * y, saa += x * x, sbb += y * y;
    }
    if (!(saa > 0) || !(sbb > 0))
        return NAN;
    return sab / sqrt(saa * sbb);
}

/* Differential stability, one probe at a time so that nothing of size
 * probes x regions is ever held: per donor the probe's region means and
 * their order (one sort), then per donor pair the ranks over the common
 * regions (a linear pass over that order) and their Pearson correlation. */
typedef struct ds_ctx {
    prep *P;
    int n_pairs;
    int (*pairs)[2];
    int **pos;              /* [pair][R_a + R_b] position in the common list, -1 = not common */
    int *n_common;          /* [pair] */
    int *ibf_of;            /* [n_ibf] valid index */
    int max_regions, sum_regions;
    atomic_int oom;
} ds_ctx;

static _Thread_local const double *tl_vals;   /* qsort has no context argument */

static int cmp_by_val(const void *a, const void *b)
{
    double x = tl_vals[*(const uint16_t *)a], y = tl_vals[*(const uint16_t *)b];
    /* a total order even with NaN (last), which qsort needs to be defined */
    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);
    return (x > y) - (x < y);
}

static void ds_range(void *ctx, int lo, int hi)
{
    ds_ctx *X = ctx;
    prep *P = X->P;
    double *means = malloc((size_t)X->sum_regions * sizeof *means);
    uint16_t *perm = malloc((size_t)X->sum_regions * sizeof *perm);
    double *ra = malloc((size_t)X->max_regions * sizeof *ra);
    double *rb = malloc((size_t)X->max_regions * sizeof *rb);
    int *off = malloc((size_t)P->n_donors * sizeof *off);
    if (!means || !perm || !ra || !rb || !off) {
        atomic_store(&X->oom, 1);
        goto done;
    }
    for (int d = 0, o = 0; d < P->n_donors; o += P->dn[d].n_regions, d++)
        off[d] = o;
    for (int k = lo; k < hi; k++) {
        int v = X->ibf_of[k];
        for (int d = 0; d < P->n_donors; d++) {
            const donor *D = &P->dn[d];
            const float *row = D->expr + (size_t)v * (size_t)D->n;
            double *m = means + off[d];
            uint16_t *pm = perm + off[d];
            for (int r = 0; r < D->n_regions; r++)
                m[r] = 0;
            for (int s = 0; s < D->n; s++)
                m[D->region[s]] += row[s];
            for (int r = 0; r < D->n_regions; r++) {
                m[r] /= D->region_count[r];
                pm[r] = (uint16_t)r;
            }
            tl_vals = m;
            qsort(pm, (size_t)D->n_regions, sizeof *pm, cmp_by_val);
        }
        double sum = 0;
        for (int q = 0; q < X->n_pairs; q++) {
            int a = X->pairs[q][0], b = X->pairs[q][1];
            int Ra = P->dn[a].n_regions, Rb = P->dn[b].n_regions;
            if (X->n_common[q] < 2) {
                sum = NAN;
                break;
            }
            prep_subset_ranks(means + off[a], perm + off[a], Ra, X->pos[q], ra);
            prep_subset_ranks(means + off[b], perm + off[b], Rb, X->pos[q] + Ra, rb);
            sum += pearson(ra, rb, X->n_common[q]);
        }
        P->ds[v] = sum / X->n_pairs;
    }
done:
    free(means);
    free(perm);
    free(ra);
    free(rb);
    free(off);
}

/* Sorted distinct structure ids of a donor's kept samples; each sample's
 * index among them and the count per region. */
static int assign_regions(donor *D, long **ids_out, gi_err *err)
{
    long *ids = malloc((size_t)D->n * sizeof *ids);
    D->region = malloc((size_t)D->n * sizeof *D->region);
    if (!ids || !D->region) {
        free(ids);
        return gi_fail(err, "out of memory");
    }
    for (int s = 0; s < D->n; s++)
        ids[s] = D->s[s].sid;
    qsort(ids, (size_t)D->n, sizeof *ids, prep_cmp_long);
    int R = 0;
    for (int i = 0; i < D->n; i++)
        if (R == 0 || ids[R - 1] != ids[i])
            ids[R++] = ids[i];
    if (R > 65535) {
        free(ids);
        return gi_fail(err, "donor %s: more than 65535 structures", D->d.name);
    }
    D->region_count = calloc((size_t)R, sizeof *D->region_count);
    if (!D->region_count) {
        free(ids);
        return gi_fail(err, "out of memory");
    }
    for (int s = 0; s < D->n; s++) {
        const long *hit = bsearch(&D->s[s].sid, ids, (size_t)R, sizeof *ids, prep_cmp_long);
        D->region[s] = (int)(hit - ids);
        D->region_count[D->region[s]]++;
    }
    D->n_regions = R;
    *ids_out = ids;
    return 0;
}

static int diff_stability(prep *P, gi_err *err)
{
    if (P->n_donors < 2)
        return gi_fail(err, "prepare.probe_selection: diff_stability compares donors and needs "
                       "at least 2 (found %d); use max_intensity, max_variance or mean", P->n_donors);
    ds_ctx X = {.P = P};
    atomic_init(&X.oom, 0);
    int rc = 0;
    long **ids = calloc((size_t)P->n_donors, sizeof *ids);
    X.n_pairs = P->n_donors * (P->n_donors - 1) / 2;
    X.pos = calloc((size_t)X.n_pairs, sizeof *X.pos);
    X.n_common = calloc((size_t)X.n_pairs, sizeof *X.n_common);
    X.pairs = malloc((size_t)X.n_pairs * sizeof *X.pairs);
    X.ibf_of = malloc((size_t)P->n_ibf * sizeof *X.ibf_of);
    P->ds = malloc((size_t)P->n_valid * sizeof *P->ds);
    if (!ids || !X.pos || !X.n_common || !X.pairs || !X.ibf_of || !P->ds) {
        rc = gi_fail(err, "out of memory");
        goto done;
    }
    for (int v = 0; v < P->n_valid; v++)
        P->ds[v] = NAN;
    for (int v = 0, k = 0; v < P->n_valid; v++)
        if (P->ibf[v])
            X.ibf_of[k++] = v;
    for (int d = 0; d < P->n_donors && rc == 0; d++) {
        rc = assign_regions(&P->dn[d], &ids[d], err);
        if (rc == 0) {
            X.sum_regions += P->dn[d].n_regions;
            if (P->dn[d].n_regions > X.max_regions)
                X.max_regions = P->dn[d].n_regions;
        }
    }
    for (int a = 0, q = 0; rc == 0 && a < P->n_donors; a++)
        for (int b = a + 1; b < P->n_donors && rc == 0; b++, q++) {
            X.pairs[q][0] = a, X.pairs[q][1] = b;
            int Ra = P->dn[a].n_regions, Rb = P->dn[b].n_regions;
            if (!(X.pos[q] = malloc((size_t)(Ra + Rb) * sizeof *X.pos[q]))) {
                rc = gi_fail(err, "out of memory");
                break;
            }
            for (int i = 0; i < Ra + Rb; i++)
                X.pos[q][i] = -1;
            int i = 0, j = 0, n = 0;
            while (i < Ra && j < Rb) {
                if (ids[a][i] == ids[b][j])
                    X.pos[q][i] = n, X.pos[q][Ra + j] = n, n++, i++, j++;
                else if (ids[a][i] < ids[b][j])
                    i++;
                else
                    j++;
            }
            X.n_common[q] = n;
        }
    if (rc == 0) {
        prep_parallel_for(P->threads, P->n_ibf, ds_range, &X);
        if (atomic_load(&X.oom))
            rc = gi_fail(err, "out of memory computing differential stability");
    }
done:
    for (int d = 0; ids && d < P->n_donors; d++)
        free(ids[d]);
    for (int q = 0; q < X.n_pairs && X.pos; q++)
        free(X.pos[q]);
    free(ids);
    free(X.pos);
    free(X.n_common);
    free(X.pairs);
    free(X.ibf_of);
    return rc;
}

/* Mean (or sample SD, ddof 1) of a probe over every kept sample of every donor. */
static double probe_stat(const prep *P, int v, int want_sd)
{
    double sum = 0, n = 0;
    for (int d = 0; d < P->n_donors; d++) {
        const donor *D = &P->dn[d];
        const float *row = D->expr + (size_t)v * (size_t)D->n;
        for (int s = 0; s < D->n; s++)
            sum += row[s];
        n += D->n;
    }
    double mean = sum / n;
    if (!want_sd)
        return mean;
    double ss = 0;
    for (int d = 0; d < P->n_donors; d++) {
        const donor *D = &P->dn[d];
        const float *row = D->expr + (size_t)v * (size_t)D->n;
        for (int s = 0; s < D->n; s++)
            ss += (row[s] - mean) * (row[s] - mean);
    }
    return n > 1 ? sqrt(ss / (n - 1)) : NAN;
}

int prep_select_probes(prep *P, gi_err *err)
{
    int method = P->c->prepare.probe_selection;
    P->chosen = malloc((size_t)P->n_genes * sizeof *P->chosen);
    P->gene_kept = malloc((size_t)P->n_genes);
    if (!P->chosen || !P->gene_kept)
        return gi_fail(err, "out of memory");
    if (method == GI_PROBE_DIFF_STABILITY && diff_stability(P, err) != 0)
        return -1;
    P->n_sel = 0;
    for (int g = 0; g < P->n_genes; g++) {
        int best = -1;
        double best_score = NAN;
        if (method == GI_PROBE_MEAN) {
            P->chosen[g] = -1;
            P->gene_kept[g] = 1;
            P->n_sel++;
            continue;
        }
        /* probes of the gene are in ascending probe_id: the first maximum wins */
        for (int i = 0; i < P->gene_count[g]; i++) {
            int v = P->order[P->gene_first[g] + i];
            double score = method == GI_PROBE_DIFF_STABILITY ? P->ds[v]
                         : probe_stat(P, v, method == GI_PROBE_MAX_VARIANCE);
            if (isnan(score))
                continue;
            if (best < 0 || score > best_score)
                best = v, best_score = score;
        }
        P->chosen[g] = best;
        P->gene_kept[g] = best >= 0;
        P->n_sel += best >= 0;
    }
    if (P->n_sel == 0)
        return gi_fail(err, "no gene has a probe with a defined differential stability (too few "
                       "structures in common between donors?)");
    return 0;
}

