/* eval.c - cross-validated comparison of the interpolation methods (see eval.h). */
#include "geneinr/eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "geneinr/anatomy.h"
#include "geneinr/extend.h"
#include "geneinr/geometry.h"
#include "geneinr/progress.h"
#include "geneinr/label_match.h"
#include "geneinr/dist.h"
#include "geneinr/method.h"
#include "geneinr/rng.h"
#include "geneinr/samples.h"
#include "geneinr/stop.h"

#define STREAM_FOLDS (GI_STREAM_SPLIT + 20)
#define STREAM_NEW_GENES (GI_STREAM_SPLIT + 21)

/* The slot of inr_extended among the methods (eval.new_genes): not a method
 * kind of the table, it is the INR trained on fewer genes and extended. */
#define KIND_EXTENDED (-1)

typedef struct block_key {
    long key;
    uint64_t order;
} block_key;

static int cmp_block(const void *a, const void *b)
{
    const block_key *x = a, *y = b;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return (x->key > y->key) - (x->key < y->key);
}

static int cmp_u64_idx(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

int gi_eval_partition(const gi_samples *s, const gi_config *c, int *fold, int *n_folds, gi_err *err)
{
    int n = s->n, F = c->eval.folds;
    if (c->eval.split == GI_SPLIT_DONOR) {
        if (s->n_donors < 2)
            return gi_fail(err, "eval.split: donor needs at least 2 donors; %s has %d", c->data.samples, s->n_donors);
        for (int i = 0; i < n; i++)
            fold[i] = s->donor[i];
        *n_folds = s->n_donors;
        return 0;
    }
    if (F > n)
        return gi_fail(err, "eval.folds: %d folds for %d samples", F, n);
    if (c->eval.split == GI_SPLIT_KFOLD) {
        /* Balanced: sort by a random key, deal round-robin. */
        uint64_t *k = malloc(sizeof(uint64_t) * 2 * (size_t)n);
        if (!k)
            return gi_fail(err, "out of memory");
        for (int i = 0; i < n; i++) {
            k[2 * i] = gi_rng_u64(c->eval.seed, STREAM_FOLDS, (uint64_t)i);
            k[2 * i + 1] = (uint64_t)i;
        }
        qsort(k, (size_t)n, 2 * sizeof(uint64_t), cmp_u64_idx);
        for (int p = 0; p < n; p++)
            fold[k[2 * p + 1]] = p % F;
        free(k);
        *n_folds = F;
        return 0;
    }
    /* block: cubes of block_mm on a grid anchored at the MNI origin. */
    double b = c->eval.block_mm;
    long *key = malloc(sizeof(long) * (size_t)n);
    block_key *bk = malloc(sizeof(block_key) * (size_t)n);
    if (!key || !bk) {
        free(key);
        free(bk);
        return gi_fail(err, "out of memory");
    }
    int nb = 0;
    for (int i = 0; i < n; i++) {
        long ix = (long)floor(s->mni[3 * i] / b) + 512, iy = (long)floor(s->mni[3 * i + 1] / b) + 512,
             iz = (long)floor(s->mni[3 * i + 2] / b) + 512;
        key[i] = (iz * 1024 + iy) * 1024 + ix;
        int found = 0;
        for (int j = 0; j < nb && !found; j++)
            found = bk[j].key == key[i];
        if (!found) {
            bk[nb].key = key[i];
            bk[nb].order = gi_rng_u64(c->eval.seed, STREAM_FOLDS + 1, (uint64_t)key[i]);
            nb++;
        }
    }
    if (nb < F) {
        free(key);
        free(bk);
        return gi_fail(err, "eval.block_mm: %g mm blocks give only %d occupied blocks for %d folds; use smaller blocks "
                       "or fewer folds", b, nb, F);
    }
    qsort(bk, (size_t)nb, sizeof *bk, cmp_block);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < nb; j++)
            if (bk[j].key == key[i]) {
                fold[i] = j % F;
                break;
            }
    free(key);
    free(bk);
    *n_folds = F;
    return 0;
}

int gi_eval_methods(const gi_config *c, int *kinds, int max, gi_err *err)
{
    int n = 0;
    if (!c->eval.methods[0]) {
        for (int k = 0; k < GI_METHOD_COUNT && n < max; k++)
            if (!gi_method_needs_anatomy(k) || c->data.anatomy[0])
                kinds[n++] = k;
        return n;
    }
    for (const char *p = c->eval.methods; *p && n < max;) {
        size_t len = strcspn(p, ",");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), p);
        char *b = name, *e = name + strlen(name);
        while (*b == ' ') b++;
        while (e > b && e[-1] == ' ') *--e = 0;
        int k = gi_method_parse(b);
        if (k < 0)
            return gi_fail(err, "eval.methods: '%s' is not a method", b);
        if (gi_method_needs_anatomy(k) && !c->data.anatomy[0])
            return gi_fail(err, "eval.methods: %s needs data.anatomy (a label image)", b);
        int dup = 0;
        for (int j = 0; j < n; j++)
            dup |= kinds[j] == k;
        if (!dup)
            kinds[n++] = k;
        p += len;
        if (*p == ',') p++;
    }
    if (n == 0)
        return gi_fail(err, "eval.methods: no method named");
    return n;
}

/* Pearson r and MSE over the pairs where both are finite. */
static void score(const double *pred, const double *truth, long n, long stride, double *r, double *mse, long *cnt)
{
    double sp = 0, st = 0, spp = 0, stt = 0, spt = 0, se = 0;
    long m = 0;
    for (long i = 0; i < n; i++) {
        double p = pred[i * stride], t = truth[i * stride];
        if (isnan(p) || isnan(t))
            continue;
        sp += p; st += t; spp += p * p; stt += t * t; spt += p * t;
        se += (p - t) * (p - t);
        m++;
    }
    *cnt = m;
    *mse = m ? se / m : NAN;
    double cov = spt - sp * st / m, vp = spp - sp * sp / m, vt = stt - st * st / m;
    *r = m > 2 && vp > 0 && vt > 0 ? cov / sqrt(vp * vt) : NAN;
}

/* Central-interval coverage over the triples where all are finite: the share
 * of truths within pred +- z tsd at the 50% and 90% levels. cnt 0: the method
 * has no SD (empty cells). */
#define Z50 0.6745
#define Z90 1.6449
typedef struct cover {
    long in50, in90, cnt;
} cover;

static void coverage(const double *pred, const double *truth, const double *tsd, long n, long stride, cover *c)
{
    for (long i = 0; i < n; i++) {
        double p = pred[i * stride], t = truth[i * stride], s = tsd[i * stride];
        if (isnan(p) || isnan(t) || isnan(s))
            continue;
        double e = fabs(t - p);
        c->in50 += e <= Z50 * s;
        c->in90 += e <= Z90 * s;
        c->cnt++;
    }
}

/* ",c50,c90" or ",," into buf. */
static const char *cover_cells(const cover *c, char *buf, size_t size)
{
    if (c->cnt)
        snprintf(buf, size, ",%.6f,%.6f", (double)c->in50 / c->cnt, (double)c->in90 / c->cnt);
    else
        snprintf(buf, size, ",,");
    return buf;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct evaluation {
    const gi_config *c;
    gi_samples s;
    int *label;              /* [n] or NULL: the matched label of each sample (label_match.h) */
    int n_labels;
    gi_match_summary match;  /* how they were matched (with data.anatomy) */
    int *fold;
    int F;
    int kinds[GI_METHOD_COUNT + 1], M;   /* + inr_extended (KIND_EXTENDED) with eval.new_genes */
    int K;                   /* eval.new_genes: genes held out of the extended INR's trunk */
    unsigned char *held;     /* [G] 1 = held out (K > 0), else NULL */
    double *truth;           /* [n][G] standardised in the sample's fold units */
    double *pred;            /* [M][n][G] */
    double *tsd;             /* [M][n][G] predictive SD of a held-out sample, sqrt(sd^2 + noise^2) (method.h),
                              * standardised units; NaN for a method without an SD */
    double *seconds;         /* [M][F] */
    uint64_t key;            /* what the results depend on (fold_key): a fold result of another key is not reused */
} evaluation;

static const char *slot_name(const evaluation *e, int mi)
{
    return e->kinds[mi] == KIND_EXTENDED ? "inr_extended" : GI_METHOD_NAMES[e->kinds[mi]];
}

static void evaluation_free(evaluation *e)
{
    free(e->held);
    gi_samples_free(&e->s);
    free(e->label);
    free(e->fold);
    free(e->truth);
    free(e->pred);
    free(e->tsd);
    free(e->seconds);
}

/* The fold's training data in standardised units; mean/sd for the test truth. */
static int fold_data(evaluation *e, int f, gi_fit_data *d, float **mni, float **y, int **donor, int **label,
                     char ***annot, double *mean, double *sd, gi_err *err)
{
    const gi_samples *s = &e->s;
    int G = s->n_genes, ntr = 0, A = s->n_annot;
    for (int i = 0; i < s->n; i++)
        ntr += e->fold[i] != f;
    *mni = malloc(sizeof(float) * 3 * (size_t)ntr);
    *y = malloc(sizeof(float) * (size_t)ntr * G);
    *donor = malloc(sizeof(int) * (size_t)ntr);
    *label = e->label ? malloc(sizeof(int) * (size_t)ntr) : NULL;
    *annot = A ? malloc(sizeof(char *) * (size_t)ntr * A) : NULL;
    if (!*mni || !*y || !*donor || (e->label && !*label) || (A && !*annot))
        return gi_fail(err, "out of memory");
    for (int g = 0; g < G; g++) {
        double sum = 0, sum2 = 0;
        long cnt = 0;
        for (int i = 0; i < s->n; i++) {
            float v = s->values[(size_t)i * G + g];
            if (e->fold[i] != f && !isnan(v)) {
                sum += v;
                cnt++;
            }
        }
        if (cnt < 2)
            return gi_fail(err, "fold %d: gene '%s' has fewer than 2 measured training samples", f + 1, s->gene_names[g]);
        mean[g] = sum / cnt;
        for (int i = 0; i < s->n; i++) {
            float v = s->values[(size_t)i * G + g];
            if (e->fold[i] != f && !isnan(v))
                sum2 += (v - mean[g]) * (v - mean[g]);
        }
        sd[g] = sqrt(sum2 / (cnt - 1));
        if (!(sd[g] > 1e-12))
            sd[g] = 1;
    }
    int k = 0;
    for (int i = 0; i < s->n; i++) {
        if (e->fold[i] == f)
            continue;
        memcpy(*mni + 3 * (size_t)k, s->mni + 3 * (size_t)i, sizeof(float) * 3);
        for (int g = 0; g < G; g++) {
            float v = s->values[(size_t)i * G + g];
            (*y)[(size_t)k * G + g] = isnan(v) ? NAN : (float)((v - mean[g]) / sd[g]);
        }
        (*donor)[k] = s->donor[i];
        if (e->label)
            (*label)[k] = e->label[i];
        for (int a = 0; a < A; a++)
            (*annot)[(size_t)k * A + a] = s->annot[(size_t)i * A + a];
        k++;
    }
    memset(d, 0, sizeof *d);
    d->n = ntr;
    d->n_genes = G;
    d->mni = *mni;
    d->y = *y;
    d->donor = *donor;
    d->n_donors = s->n_donors;
    d->donor_names = s->donor_names;
    d->gene_names = s->gene_names;
    d->label = *label;
    d->n_labels = e->n_labels;
    d->n_annot = A;
    d->annot_names = s->annot_names;
    d->annot = *annot;
    return 0;
}

static int make_dir(const char *p, gi_err *err)
{
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        return gi_fail(err, "cannot create %s: %s", p, strerror(errno));
    return 0;
}

/* ---- fold results: kept so that a stopped eval resumes (stop.h) ----
 *
 * OUT/folds/F/result.bin holds one finished fold: a header (magic, the
 * evaluation's key, fold, sizes), the fold's test-sample indices, its truth
 * [nt][G], every method's predictions [M][nt][G] and predictive SDs
 * [M][nt][G] (NaN without one) as doubles, and the methods' seconds. Written to .tmp, fsync'd and renamed, so it is whole or
 * absent; reused only when its key (config, sample table, partition, methods)
 * and sizes match, so a rerun with the same config gives the same summary.csv
 * as an uninterrupted run. */
#define FOLD_MAGIC "GIEVALF2" /* F2: with the predictive SDs (issue 28) */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

/* What every fold's results depend on: the effective config (where it
 * runs and is written excluded), the samples' coordinates, values and names,
 * the partition and the methods. */
static uint64_t fold_key(const evaluation *e)
{
    gi_config c = *e->c;
    memset(c.run.out, 0, sizeof c.run.out);
    memset(c.source, 0, sizeof c.source);
    char *y = gi_config_to_yaml(&c);
    uint64_t h = fnv(1469598103934665603ULL, y ? y : "", y ? strlen(y) : 0);
    free(y);
    const gi_samples *s = &e->s;
    h = fnv(h, &s->n, sizeof s->n);
    h = fnv(h, &s->n_genes, sizeof s->n_genes);
    h = fnv(h, s->mni, sizeof(float) * 3 * (size_t)s->n);
    h = fnv(h, s->values, sizeof(float) * (size_t)s->n * s->n_genes);
    for (int g = 0; g < s->n_genes; g++)
        h = fnv(h, s->gene_names[g], strlen(s->gene_names[g]) + 1);
    h = fnv(h, e->fold, sizeof(int) * (size_t)s->n);
    if (e->label)
        h = fnv(h, e->label, sizeof(int) * (size_t)s->n);
    h = fnv(h, e->kinds, sizeof(int) * (size_t)e->M);
    return h;
}

typedef struct fold_head {
    char magic[8];
    uint64_t key;
    int32_t fold, nt, G, M;
} fold_head;

/* Group rank 0 gathers the fold's predictions and seconds (each method was
 * computed on one rank of the group) and writes the result file. */
static int save_fold(evaluation *e, int f, MPI_Comm group, int nt, const int *tidx, const char *dir, gi_err *err)
{
    int grank, G = e->s.n_genes, n = e->s.n, M = e->M;
    MPI_Comm_rank(group, &grank);
    size_t per = (size_t)nt * G;
    double *buf = calloc(2 * (size_t)M * per + M, sizeof(double));
    int rc = buf ? 0 : gi_fail(err, "out of memory");
    if (gi_dist_agree(group, rc, err) != 0) {
        free(buf);
        return -1;
    }
    for (int mi = 0; mi < M; mi++) {
        const double *P = e->pred + (size_t)mi * n * G, *T = e->tsd + (size_t)mi * n * G;
        for (int k = 0; k < nt; k++)
            for (int g = 0; g < G; g++) {
                buf[(size_t)mi * per + (size_t)k * G + g] = P[(size_t)tidx[k] * G + g];
                buf[(size_t)(M + mi) * per + (size_t)k * G + g] = T[(size_t)tidx[k] * G + g];
            }
        buf[2 * (size_t)M * per + mi] = e->seconds[(size_t)mi * e->F + f];
    }
    /* Zeros on the ranks that did not compute a method: a sum gathers them. */
    MPI_Reduce(grank == 0 ? MPI_IN_PLACE : buf, buf, (int)(2 * (size_t)M * per + M), MPI_DOUBLE, MPI_SUM, 0, group);
    if (grank == 0) {
        char path[GI_PATH_MAX + 96], tmp[GI_PATH_MAX + 112];
        snprintf(path, sizeof path, "%s/result.bin", dir);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        fold_head h;
        memset(&h, 0, sizeof h);
        memcpy(h.magic, FOLD_MAGIC, 8);
        h.key = e->key;
        h.fold = f;
        h.nt = nt;
        h.G = G;
        h.M = M;
        double *truth = malloc(sizeof(double) * (per ? per : 1));
        FILE *fp = truth ? fopen(tmp, "wb") : NULL;
        int bad = !fp;
        if (fp) {
            for (int k = 0; k < nt; k++)
                for (int g = 0; g < G; g++)
                    truth[(size_t)k * G + g] = e->truth[(size_t)tidx[k] * G + g];
            bad |= fwrite(&h, sizeof h, 1, fp) != 1;
            bad |= fwrite(tidx, sizeof(int), (size_t)nt, fp) != (size_t)nt;
            bad |= fwrite(truth, sizeof(double), per, fp) != per;
            bad |= fwrite(buf, sizeof(double), 2 * (size_t)M * per + M, fp) != 2 * (size_t)M * per + M;
            bad |= fflush(fp) != 0 || fsync(fileno(fp)) != 0;
            bad |= fclose(fp) != 0;
        }
        if (bad || rename(tmp, path) != 0) {
            rc = gi_fail(err, "cannot write %s: %s", path, strerror(errno));
            remove(tmp);
        }
        free(truth);
    }
    free(buf);
    return gi_dist_agree(group, rc, err);
}

/* Group rank 0: fold f's result file, if it belongs to this evaluation, into
 * pred, truth and seconds (as run_fold would have left them). 1 = loaded. */
static int load_fold(evaluation *e, int f, const char *out_dir)
{
    int G = e->s.n_genes, n = e->s.n, M = e->M, nt = 0;
    for (int i = 0; i < n; i++)
        nt += e->fold[i] == f;
    char path[GI_PATH_MAX + 96];
    snprintf(path, sizeof path, "%s/folds/%d/result.bin", out_dir, f + 1);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return 0;
    size_t per = (size_t)nt * G, nb = 2 * (size_t)M * per + M;
    fold_head h;
    int *tidx = malloc(sizeof(int) * (size_t)(nt ? nt : 1));
    double *truth = malloc(sizeof(double) * (per ? per : 1)), *buf = malloc(sizeof(double) * nb);
    int ok = tidx && truth && buf && fread(&h, sizeof h, 1, fp) == 1 && !memcmp(h.magic, FOLD_MAGIC, 8) &&
             h.key == e->key && h.fold == f && h.nt == nt && h.G == G && h.M == M &&
             fread(tidx, sizeof(int), (size_t)nt, fp) == (size_t)nt && fread(truth, sizeof(double), per, fp) == per &&
             fread(buf, sizeof(double), nb, fp) == nb && fgetc(fp) == EOF;
    fclose(fp);
    for (int k = 0; ok && k < nt; k++)
        ok = tidx[k] >= 0 && tidx[k] < n && e->fold[tidx[k]] == f;
    if (ok) {
        for (int k = 0; k < nt; k++)
            for (int g = 0; g < G; g++) {
                e->truth[(size_t)tidx[k] * G + g] = truth[(size_t)k * G + g];
                for (int mi = 0; mi < M; mi++) {
                    e->pred[(size_t)mi * n * G + (size_t)tidx[k] * G + g] = buf[(size_t)mi * per + (size_t)k * G + g];
                    e->tsd[(size_t)mi * n * G + (size_t)tidx[k] * G + g] =
                        buf[(size_t)(M + mi) * per + (size_t)k * G + g];
                }
            }
        for (int mi = 0; mi < M; mi++)
            e->seconds[(size_t)mi * e->F + f] = buf[2 * (size_t)M * per + mi];
    }
    free(tidx);
    free(truth);
    free(buf);
    return ok;
}

/* ---- eval.new_genes: inr_extended ---- */

/* K genes drawn with eval.seed (the first K in the order of a random key per
 * gene), the same for every fold, and the inr_extended slot after the methods. */
static int choose_new_genes(evaluation *e, const gi_config *c, gi_err *err)
{
    int G = e->s.n_genes, K = c->eval.new_genes, have_inr = 0;
    for (int mi = 0; mi < e->M; mi++)
        have_inr |= e->kinds[mi] == GI_METHOD_INR;
    if (!have_inr)
        return gi_fail(err, "eval.new_genes: inr_extended is compared with the INR trained on every gene; add inr to "
                       "eval.methods");
    if (c->model.gene_mode != GI_GENE_FACTORIZED)
        return gi_fail(err, "eval.new_genes: extension needs model.gene_mode: factorized (one readout row per gene)");
    if (c->train.ensemble > 1)
        return gi_fail(err, "eval.new_genes: extension grows one network; set train.ensemble: 1");
    if (K >= G)
        return gi_fail(err, "eval.new_genes: %d of the %d genes held out leaves none to train the trunk on", K, G);
    uint64_t *k = malloc(sizeof(uint64_t) * 2 * (size_t)G);
    e->held = calloc((size_t)G, 1);
    if (!k || !e->held) {
        free(k);
        return gi_fail(err, "out of memory");
    }
    for (int g = 0; g < G; g++) {
        k[2 * g] = gi_rng_u64(c->eval.seed, STREAM_NEW_GENES, (uint64_t)g);
        k[2 * g + 1] = (uint64_t)g;
    }
    qsort(k, (size_t)G, 2 * sizeof(uint64_t), cmp_u64_idx);
    for (int q = 0; q < K; q++)
        e->held[k[2 * q + 1]] = 1;
    free(k);
    e->K = K;
    e->kinds[e->M++] = KIND_EXTENDED;
    return 0;
}

/* Position of original gene g in the extended model: the kept genes in
 * order, then the held-out ones in order (extend appends the new genes). */
static void extended_positions(const evaluation *e, int *pos)
{
    int G = e->s.n_genes, p = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int g = 0; g < G; g++)
            if (e->held[g] == pass)
                pos[g] = p++;
}

/* inr_extended for one fold: the INR trained on the fold's training samples
 * without the held-out genes (folds/F/inr_trunk), then extended with them from
 * the same samples (folds/F/inr_extended: geneinr extend's engine, on the
 * config the trunk's fit ran with), loaded as any INR. Collective over
 * o->comm. Predicts every gene in the extended order (extended_order). */
static gi_method *fit_extended(const evaluation *e, const gi_method_opts *o, const gi_fit_data *d, const char *dir,
                               gi_err *err)
{
    int rank, G = d->n_genes, K = e->K, GK = G - K, n = d->n;
    MPI_Comm_rank(o->comm, &rank);
    char trunk[GI_PATH_MAX + 128], ext[GI_PATH_MAX + 128], ckpt[GI_PATH_MAX + 160];
    snprintf(trunk, sizeof trunk, "%s/inr_trunk", dir);
    snprintf(ext, sizeof ext, "%s/inr_extended", dir);
    int *pos = malloc(sizeof(int) * (size_t)G);
    float *yk = malloc(sizeof(float) * (size_t)(n ? n : 1) * GK), *ye = malloc(sizeof(float) * (size_t)(n ? n : 1) * G);
    char **names = malloc(sizeof(char *) * (size_t)G);
    gi_config *ct = malloc(sizeof *ct), *ce = malloc(sizeof *ce);
    gi_method *m = NULL;
    int rc = pos && yk && ye && names && ct && ce ? 0 : gi_fail(err, "out of memory");
    if (rc == 0) {
        extended_positions(e, pos);
        for (int g = 0; g < G; g++) {
            names[pos[g]] = d->gene_names[g];
            for (int i = 0; i < n; i++) {
                float v = d->y[(size_t)i * G + g];
                ye[(size_t)i * G + pos[g]] = v;
                if (pos[g] < GK)
                    yk[(size_t)i * GK + pos[g]] = v;
            }
        }
        if (rank == 0)
            rc = make_dir(trunk, err) != 0 || make_dir(ext, err) != 0 ? -1 : 0;
    }
    if (gi_dist_agree(o->comm, rc, err) != 0)
        goto done;
    /* The trunk: the INR's own fit on the kept genes. */
    *ct = *o->config;
    ct->data.genes[0] = '\0';
    gi_method_opts ot = *o;
    ot.config = ct;
    ot.work_dir = trunk;
    gi_fit_data dk = *d;
    dk.n_genes = GK;
    dk.y = yk;
    dk.gene_names = names;
    gi_method *mt = gi_method_fit(GI_METHOD_INR, &ot, &dk, err);
    if (!mt)
        goto done;
    gi_method_free(mt);
    /* Extended with every gene of the same samples, on the config that fit
     * trained with (method_inr.c: its own table, validation carved by fraction,
     * the mask checked once by eval). */
    *ce = *ct;
    if (snprintf(ce->data.samples, sizeof ce->data.samples, "%s/train_samples.csv", ext) >= (int)sizeof ce->data.samples
        || snprintf(ce->run.out, sizeof ce->run.out, "%s", ext) >= (int)sizeof ce->run.out) {
        gi_fail(err, "eval folder path too long");
        goto done;
    }
    if (ce->train.val_mode == GI_VAL_DONOR)
        ce->train.val_mode = GI_VAL_FRACTION;
    ce->render.mask[0] = '\0';
    ce->data.max_outside = 1;
    gi_fit_data de = *d;
    de.y = ye;
    de.gene_names = names;
    rc = rank == 0 ? gi_fit_data_write_csv(&de, ce->data.samples, err) : 0;
    if (gi_dist_agree(o->comm, rc, err) != 0)
        goto done;
    gi_extend_result res;
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.h5", trunk);
    if (gi_extend(ce, ckpt, ext, o->comm, &res, err) != 0)
        goto done;
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.h5", ext);
    m = gi_method_inr_load(ckpt, ce, NULL, 0, err);
done:
    free(pos); free(yk); free(ye); free(names); free(ct); free(ce);
    return m;
}

/* inr_extended's predictions [nt][G] (and SDs, noise [G]) from the extended
 * order into the table's, NaN for the genes it was trained on (scored for
 * the held-out genes only). */
static int extended_order(const evaluation *e, int nt, float *pred, float *sd, float *noise, gi_err *err)
{
    int G = e->s.n_genes;
    int *pos = malloc(sizeof(int) * (size_t)G);
    float *row = malloc(sizeof(float) * (size_t)G);
    if (!pos || !row) {
        free(pos);
        free(row);
        return gi_fail(err, "out of memory");
    }
    extended_positions(e, pos);
    float *arrs[2] = {pred, sd};
    for (int a = 0; a < 2; a++)
        for (int k = 0; arrs[a] && k < nt; k++) {
            float *r = arrs[a] + (size_t)k * G;
            memcpy(row, r, sizeof(float) * (size_t)G);
            for (int g = 0; g < G; g++)
                r[g] = e->held[g] ? row[pos[g]] : NAN;
        }
    if (noise) {
        memcpy(row, noise, sizeof(float) * (size_t)G);
        for (int g = 0; g < G; g++)
            noise[g] = e->held[g] ? row[pos[g]] : NAN;
    }
    free(pos);
    free(row);
    return 0;
}

/* One fold, all methods, on one rank group: 0 done (and kept in
 * folds/F/result.bin), 2 stopped by a signal, -1 failed; agreed in the group. */
static int run_fold(evaluation *e, int f, MPI_Comm group, const char *out_dir, gi_err *err)
{
    int grank, gsize;
    MPI_Comm_rank(group, &grank);
    MPI_Comm_size(group, &gsize);
    const gi_samples *s = &e->s;
    int G = s->n_genes, n = s->n;
    gi_fit_data d;
    float *mni = NULL, *y = NULL, *tmni = NULL, *tpred = NULL, *tsd = NULL, *noise = NULL;
    int *donor = NULL, *label = NULL, *tlabel = NULL, *tidx = NULL;
    char **annot = NULL;
    double *mean = malloc(sizeof(double) * G), *sd = malloc(sizeof(double) * G);
    int rc = !mean || !sd ? gi_fail(err, "out of memory")
                          : fold_data(e, f, &d, &mni, &y, &donor, &label, &annot, mean, sd, err);
    int nt = 0;
    for (int i = 0; i < n; i++)
        nt += e->fold[i] == f;
    if (rc == 0) {
        tmni = malloc(sizeof(float) * 3 * (size_t)(nt ? nt : 1));
        tlabel = malloc(sizeof(int) * (size_t)(nt ? nt : 1));
        tidx = malloc(sizeof(int) * (size_t)(nt ? nt : 1));
        tpred = malloc(sizeof(float) * (size_t)(nt ? nt : 1) * G);
        tsd = malloc(sizeof(float) * (size_t)(nt ? nt : 1) * G);
        noise = malloc(sizeof(float) * (size_t)G);
        if (!tmni || !tlabel || !tidx || !tpred || !tsd || !noise)
            rc = gi_fail(err, "out of memory");
    }
    if (rc == 0) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (e->fold[i] == f) {
                memcpy(tmni + 3 * (size_t)k, s->mni + 3 * (size_t)i, sizeof(float) * 3);
                tlabel[k] = e->label ? e->label[i] : 0;
                tidx[k] = i;
                for (int g = 0; g < G; g++) {
                    float v = s->values[(size_t)i * G + g];
                    if (grank == 0)
                        e->truth[(size_t)i * G + g] = isnan(v) ? NAN : (v - mean[g]) / sd[g];
                }
                k++;
            }
    }
    char dir[GI_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/folds/%d", out_dir, f + 1);
    if (rc == 0 && grank == 0)
        rc = make_dir(dir, err);
    if (gi_dist_agree(group, rc, err) != 0)
        goto done;
    int slot = 0, stopped = 0; /* baselines dealt to the group's ranks */
    for (int mi = 0; mi <= e->M; mi++) {
        /* A failed baseline or a stop signal (stop.h), agreed in the group
         * at every method's boundary and after the last, so no rank meets the
         * INR's collectives alone; a fold with a stopped (or possibly stopped)
         * INR is not complete, so it is not kept. */
        int want[2] = {gi_stop_pending(), rc != 0}, any[2];
        MPI_Allreduce(want, any, 2, MPI_INT, MPI_MAX, group);
        if (any[0] || any[1]) {
            stopped = any[0] && !any[1];
            break;
        }
        if (mi == e->M)
            break;
        int kind = e->kinds[mi];
        int inr = kind == GI_METHOD_INR || kind == KIND_EXTENDED;
        int mine = inr || slot++ % gsize == grank;
        if (!mine)
            continue;
        gi_method_opts o;
        gi_method_opts_from_config(&o, e->c);
        char wd[GI_PATH_MAX + 96];
        snprintf(wd, sizeof wd, "%s/inr", dir);
        o.comm = inr ? group : MPI_COMM_SELF;
        o.verbose = 1;
        o.work_dir = wd;
        double t0 = MPI_Wtime();
        rc = 0;
        if (inr && grank == 0)
            rc = make_dir(wd, err);
        if (inr && gi_dist_agree(group, rc, err) != 0)
            goto done;
        if (!inr || grank == 0) {
            printf("eval: fold %d/%d (%d test samples): %s\n", f + 1, e->F, nt, slot_name(e, mi));
            fflush(stdout);
        }
        /* A kriging fit takes tens of seconds: progress lines (progress.h). */
        char what[96];
        snprintf(what, sizeof what, "eval: fold %d/%d %s", f + 1, e->F, slot_name(e, mi));
        gi_progress prog;
        gi_progress_begin_here(&prog, inr ? NULL : what, "likelihood evaluations", 0);
        o.progress = &prog;
        gi_method *m = kind == KIND_EXTENDED ? fit_extended(e, &o, &d, dir, err) : gi_method_fit(kind, &o, &d, err);
        rc = m ? gi_method_predict(m, nt, tmni, e->label ? tlabel : NULL, tpred, err) : -1;
        /* The held-out samples' predictive SD: the map's SD and the noise
         * about it, from the method's own fit (never this fold's samples). */
        int has_sd = rc == 0 && gi_method_has_sd(m);
        if (has_sd)
            rc = gi_method_predict_sd(m, nt, tmni, e->label ? tlabel : NULL, NULL, 0, G, tsd, err) != 0
                 || gi_method_noise_sd(m, noise, err) != 0 ? -1 : 0;
        double cs, craw, c50, c90;
        int cn;
        if (rc == 0 && inr && grank == 0 && gi_method_inr_calibration(m, &cs, &craw, &cn, &c50, &c90) == 0) {
            printf("eval: fold %d/%d inr: uncertainty scale %.4f (validation asked %.4f; %d values, coverage there "
                   "50%% %.3f, 90%% %.3f)\n", f + 1, e->F, cs, craw, cn, c50, c90);
            fflush(stdout);
        }
        gi_progress_end(&prog);
        gi_method_free(m);
        if (rc == 0 && kind == KIND_EXTENDED)
            rc = extended_order(e, nt, tpred, has_sd ? tsd : NULL, has_sd ? noise : NULL, err);
        if (inr && gi_dist_agree(group, rc, err) != 0)
            goto done;
        if (rc != 0) {
            gi_fail_prefix(err, "fold %d, %s", f + 1, slot_name(e, mi));
            continue; /* the next boundary agrees it */
        }
        if (!inr || grank == 0) {
            e->seconds[(size_t)mi * e->F + f] = MPI_Wtime() - t0;
            double *P = e->pred + (size_t)mi * n * G, *T = e->tsd + (size_t)mi * n * G;
            for (int k = 0; k < nt; k++)
                for (int g = 0; g < G; g++) {
                    size_t c = (size_t)k * G + g;
                    P[(size_t)tidx[k] * G + g] = tpred[c];
                    T[(size_t)tidx[k] * G + g] =
                        has_sd ? sqrt((double)tsd[c] * tsd[c] + (double)noise[g] * noise[g]) : NAN;
                }
        }
    }
    rc = gi_dist_agree(group, rc, err);
    if (rc == 0 && stopped)
        rc = 2;
    if (rc == 0)
        rc = save_fold(e, f, group, nt, tidx, dir, err);
done:
    free(mni); free(y); free(donor); free(label); free(annot);
    free(tmni); free(tlabel); free(tidx); free(tpred); free(tsd); free(noise);
    free(mean); free(sd);
    return rc;
}

static int write_outputs(const evaluation *e, const char *out_dir, gi_err *err)
{
    const gi_samples *s = &e->s;
    int n = s->n, G = s->n_genes, M = e->M, F = e->F;
    const char *split = GI_SPLIT_NAMES[e->c->eval.split];
    char p1[GI_PATH_MAX + 32], p2[GI_PATH_MAX + 32], t1[GI_PATH_MAX + 40], t2[GI_PATH_MAX + 40];
    snprintf(p1, sizeof p1, "%s/eval.csv", out_dir);
    snprintf(p2, sizeof p2, "%s/summary.csv", out_dir);
    /* Written to .tmp and renamed: never half a table at the final name. */
    snprintf(t1, sizeof t1, "%s.tmp", p1);
    snprintf(t2, sizeof t2, "%s.tmp", p2);
    FILE *fe = fopen(t1, "w"), *fs = fopen(t2, "w");
    double *pt = malloc(sizeof(double) * n), *tt = malloc(sizeof(double) * n), *rs = malloc(sizeof(double) * G);
    double *med = malloc(sizeof(double) * M), *mm = malloc(sizeof(double) * M), *st = malloc(sizeof(double) * n);
    cover *cov = calloc((size_t)M, sizeof(cover));
    if (!fe || !fs || !pt || !tt || !rs || !med || !mm || !st || !cov) {
        if (fe) fclose(fe);
        if (fs) fclose(fs);
        remove(t1);
        remove(t2);
        free(pt); free(tt); free(rs); free(med); free(mm); free(st); free(cov);
        return gi_fail(err, "cannot write %s or %s: %s", p1, p2, strerror(errno));
    }
    fprintf(fe, "method,split,fold,gene,n_test,r,mse,coverage_50,coverage_90\n");
    fprintf(fs, "method,split,folds,genes,median_r,mean_mse,coverage_50,coverage_90\n");
    char cells[64];
    for (int mi = 0; mi < M; mi++) {
        const char *name = slot_name(e, mi);
        const double *P = e->pred + (size_t)mi * n * G, *T = e->tsd + (size_t)mi * n * G;
        double msum = 0;
        int nr = 0, nm = 0;
        for (int g = 0; g < G; g++) {
            /* eval.new_genes: every method is scored on the held-out genes,
             * the only ones inr_extended maps (eval.csv keeps the others'
             * rows of the other methods). */
            int scored = !e->held || e->held[g];
            if (!scored && e->kinds[mi] == KIND_EXTENDED)
                continue;
            for (int f = 0; f < F; f++) {
                long m = 0;
                for (int i = 0; i < n; i++)
                    if (e->fold[i] == f) {
                        pt[m] = P[(size_t)i * G + g];
                        tt[m] = e->truth[(size_t)i * G + g];
                        st[m] = T[(size_t)i * G + g];
                        m++;
                    }
                double r, mse;
                long cnt;
                score(pt, tt, m, 1, &r, &mse, &cnt);
                cover c = {0, 0, 0};
                coverage(pt, tt, st, m, 1, &c);
                fprintf(fe, "%s,%s,%d,%s,%ld,%.6f,%.6f%s\n", name, split, f + 1, s->gene_names[g], cnt, r, mse,
                        cover_cells(&c, cells, sizeof cells));
            }
            double r, mse;
            long cnt;
            score(P + g, e->truth + g, n, G, &r, &mse, &cnt);
            cover c = {0, 0, 0};
            coverage(P + g, e->truth + g, T + g, n, G, &c);
            fprintf(fe, "%s,%s,all,%s,%ld,%.6f,%.6f%s\n", name, split, s->gene_names[g], cnt, r, mse,
                    cover_cells(&c, cells, sizeof cells));
            if (!scored)
                continue;
            cov[mi].in50 += c.in50;
            cov[mi].in90 += c.in90;
            cov[mi].cnt += c.cnt;
            if (!isnan(r))
                rs[nr++] = r;
            if (!isnan(mse)) {
                msum += mse;
                nm++;
            }
        }
        qsort(rs, (size_t)nr, sizeof(double), cmp_double);
        med[mi] = nr ? (nr % 2 ? rs[nr / 2] : 0.5 * (rs[nr / 2 - 1] + rs[nr / 2])) : NAN;
        mm[mi] = nm ? msum / nm : NAN;
        fprintf(fs, "%s,%s,%d,%d,%.6f,%.6f%s\n", name, split, F, e->held ? e->K : G, med[mi], mm[mi],
                cover_cells(&cov[mi], cells, sizeof cells));
    }
    int bad = ferror(fe) || ferror(fs);
    bad |= fclose(fe) != 0;
    bad |= fclose(fs) != 0;
    bad = bad || rename(t1, p1) != 0 || rename(t2, p2) != 0;
    if (bad) {
        remove(t1);
        remove(t2);
    }
    /* The table. */
    printf("\neval: %s split, %d folds, %d samples, %d genes (held-out Pearson r pooled over folds; MSE in "
           "standardised units)\n", split, F, n, G);
    if (e->held)
        printf("eval: new-gene mode: every method scored on the %d genes held out of inr_extended's trunk (trained "
               "on the other %d, then extended)\n", e->K, G - e->K);
    printf("  %-20s %9s %10s %10s %7s %7s\n", "method", "median r", "mean MSE", "seconds", "cov50", "cov90");
    int best = 0;
    for (int mi = 0; mi < M; mi++)
        if (med[mi] > med[best])
            best = mi;
    for (int mi = 0; mi < M; mi++) {
        double sec = 0;
        for (int f = 0; f < F; f++)
            sec += e->seconds[(size_t)mi * F + f];
        char c50[16] = "-", c90[16] = "-";
        if (cov[mi].cnt) {
            snprintf(c50, sizeof c50, "%.3f", (double)cov[mi].in50 / cov[mi].cnt);
            snprintf(c90, sizeof c90, "%.3f", (double)cov[mi].in90 / cov[mi].cnt);
        }
        printf("  %-20s %9.4f %10.4f %10.1f %7s %7s%s\n", slot_name(e, mi), med[mi], mm[mi], sec, c50, c90,
               mi == best ? "   <- best median r" : "");
    }
    printf("eval: wrote %s and %s\n", p1, p2);
    free(pt); free(tt); free(rs); free(med); free(mm); free(st); free(cov);
    return bad ? gi_fail(err, "error writing %s or %s", p1, p2) : 0;
}

static int setup(evaluation *e, const gi_config *c, gi_err *err)
{
    memset(e, 0, sizeof *e);
    e->c = c;
    if (!c->data.samples[0])
        return gi_fail(err, "%s: data.samples is not set (the sample table to evaluate on)",
                       c->source[0] ? c->source : "config");
    if (gi_samples_read_csv(&e->s, c->data.samples, err) != 0)
        return -1;
    int n = e->s.n, G = e->s.n_genes;
    int M = gi_eval_methods(c, e->kinds, GI_METHOD_COUNT, err);
    if (M < 0)
        return -1;
    e->M = M;
    if (c->eval.new_genes > 0 && choose_new_genes(e, c, err) != 0)
        return -1;
    M = e->M;
    if (c->data.anatomy[0]) {
        /* Training and test samples alike: a sample's label is a property of
         * the sample (its point, class and hemisphere; never its values), the
         * same that training (dataset.c) gives it. A held-out sample is tissue
         * of its structure whose coordinate missed it, so the map is read for it
         * in that structure. Reading it at the voxel its coordinate lands in
         * instead (tried, docs/ACCURACY.md) scores a sample outside the brain
         * against the map's "outside" label where the map holds no value at all,
         * and ranked the rules against the phantom's truth. */
        gi_anatomy a;
        if (gi_anatomy_load(&a, c->data.anatomy, NULL, 0, err) != 0)
            return -1;
        gi_label_match m;
        if (gi_label_match_samples(&m, &a, &e->s, c, err) != 0) {
            gi_anatomy_free(&a);
            return -1;
        }
        e->label = m.label;
        m.label = NULL;
        e->match = m.sum;
        gi_label_match_free(&m);
        e->n_labels = a.n_labels;
        gi_anatomy_free(&a);
    }
    e->fold = malloc(sizeof(int) * (size_t)n);
    if (!e->fold || gi_eval_partition(&e->s, c, e->fold, &e->F, err) != 0)
        return e->fold ? -1 : gi_fail(err, "out of memory");
    e->truth = calloc((size_t)n * G, sizeof(double));
    e->pred = calloc((size_t)M * n * G, sizeof(double));
    e->tsd = calloc((size_t)M * n * G, sizeof(double));
    e->seconds = calloc((size_t)M * e->F, sizeof(double));
    if (!e->truth || !e->pred || !e->tsd || !e->seconds)
        return gi_fail(err, "out of memory for %d methods x %d samples x %d genes", M, n, G);
    for (int f = 0; f < e->F; f++) {
        int cnt = 0;
        for (int i = 0; i < n; i++)
            cnt += e->fold[i] == f;
        if (cnt == 0)
            return gi_fail(err, "fold %d of the %s split is empty", f + 1, GI_SPLIT_NAMES[c->eval.split]);
    }
    return 0;
}

int gi_eval_run(const gi_config *c, MPI_Comm comm, const char *out_dir, gi_err *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    evaluation e;
    int rc = setup(&e, c, err);
    gi_geometry geo;  /* samples against the mask and labels, before any fold (geometry.h) */
    memset(&geo, 0, sizeof geo);
    if (rc == 0 && rank == 0)
        rc = gi_geometry_check(c, &e.s, e.label ? &e.match : NULL, 0, &geo, err);
    char folds[GI_PATH_MAX + 16];
    snprintf(folds, sizeof folds, "%s/folds", out_dir);
    if (rc == 0 && rank == 0)
        rc = make_dir(folds, err);
    if (gi_dist_agree(comm, rc, err) != 0) {
        evaluation_free(&e);
        return -1;
    }
    int ng = c->eval.groups > 0 ? c->eval.groups : e.F;
    if (ng > size) ng = size;
    if (ng > e.F) ng = e.F;
    int color = (int)((long)rank * ng / size);
    MPI_Comm group;
    MPI_Comm_split(comm, color, rank, &group);
    if (rank == 0) {
        printf("eval: %s split into %d folds; %d methods; %d rank group%s of %d-%d ranks\n",
               GI_SPLIT_NAMES[c->eval.split], e.F, e.M, ng, ng > 1 ? "s" : "", size / ng, (size + ng - 1) / ng);
        if (e.label)
            gi_match_summary_print(stdout, &e.match, "eval: anatomy: ");
        gi_geometry_warn(stdout, &geo, c, "eval: ");
        fflush(stdout);
    }
    double t0 = MPI_Wtime();
    e.key = fold_key(&e);
    int grank, stopped = 0, finished = 0; /* folds this group's rank 0 holds results of */
    MPI_Comm_rank(group, &grank);
    /* Rounds of folds, one per group each: between rounds every rank agrees
     * whether to go on (a failed fold, or a stop signal on any rank). */
    for (int round = 0; round < (e.F + ng - 1) / ng; round++) {
        int mine[2] = {stopped || gi_stop_pending(), rc != 0}, all[2];
        MPI_Allreduce(mine, all, 2, MPI_INT, MPI_MAX, comm);
        if (all[0] || all[1]) {
            stopped = all[0];
            break;
        }
        int f = color + round * ng;
        if (f >= e.F)
            continue;
        int have = grank == 0 ? load_fold(&e, f, out_dir) : 0;
        MPI_Bcast(&have, 1, MPI_INT, 0, group);
        if (have) {
            finished += grank == 0;
            if (grank == 0) {
                printf("eval: fold %d/%d: results of an earlier run of this config reused (%s/folds/%d/result.bin)\n",
                       f + 1, e.F, out_dir, f + 1);
                fflush(stdout);
            }
            continue;
        }
        int r = run_fold(&e, f, group, out_dir, err);
        if (r == 2)
            stopped = 1;
        else
            rc = r;
        finished += grank == 0 && r == 0;
    }
    MPI_Comm_free(&group);
    if (gi_dist_agree(comm, rc, err) != 0) {
        evaluation_free(&e);
        return -1;
    }
    int mine[3] = {stopped, gi_stop_signal(), finished}, all[3];
    MPI_Allreduce(mine, all, 2, MPI_INT, MPI_MAX, comm);
    MPI_Allreduce(mine + 2, all + 2, 1, MPI_INT, MPI_SUM, comm);
    int any_stop = all[0], any_sig = all[1], kept = all[2];
    if (any_stop) {
        if (rank == 0) {
            printf("eval: stopped by %s; %d of %d folds are complete and kept in %s/folds (a rerun of the same "
                   "command skips them)\n", any_sig ? gi_stop_name_of(any_sig) : "a stop signal",
                   kept, e.F, out_dir);
            fflush(stdout);
        }
        evaluation_free(&e);
        return GI_EVAL_STOPPED;
    }
    /* Each (fold, method) was filled by exactly one rank, zeros elsewhere. */
    size_t np = (size_t)e.M * e.s.n * e.s.n_genes, nt = (size_t)e.s.n * e.s.n_genes;
    MPI_Allreduce(MPI_IN_PLACE, e.pred, (int)np, MPI_DOUBLE, MPI_SUM, comm);
    MPI_Allreduce(MPI_IN_PLACE, e.tsd, (int)np, MPI_DOUBLE, MPI_SUM, comm);
    MPI_Allreduce(MPI_IN_PLACE, e.truth, (int)nt, MPI_DOUBLE, MPI_SUM, comm);
    MPI_Allreduce(MPI_IN_PLACE, e.seconds, e.M * e.F, MPI_DOUBLE, MPI_SUM, comm);
    rc = 0;
    if (rank == 0) {
        rc = write_outputs(&e, out_dir, err);
        if (rc == 0 && e.label) {
            /* How the samples met the anatomy, beside summary.csv. */
            char p[GI_PATH_MAX + 32];
            snprintf(p, sizeof p, "%s/anatomy_match.json", out_dir);
            rc = gi_match_summary_write(p, &e.match, err);
        }
        printf("eval: %.1f s wall\n", MPI_Wtime() - t0);
    }
    evaluation_free(&e);
    return gi_dist_agree(comm, rc, err);
}
