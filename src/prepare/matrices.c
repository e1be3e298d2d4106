/* matrices.c - prepare's phase 3: the expression and present-call matrices
 * of every donor, read in parallel threads (prep.h). */
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

/* ------------------------------------------------------ 3. the matrices */

typedef struct task {
    prep *P;
    donor *D;
    int is_pa;
    int cursor;             /* probe index expected next (files follow Probes.csv order) */
    int *colmult;           /* PACall: [n_file] multiplicity of each column among kept samples */
} task;

static int row_probe(task *t, long line, const char *probe_txt, const char *path, gi_err *err)
{
    prep *P = t->P;
    long id;
    if (prep_parse_long_field(probe_txt, &id) != 0)
        return gi_fail(err, "%s:%ld: probe id '%s' is not an integer", path, line, probe_txt) - 1;
    int pi = t->cursor < P->n_probes_file && P->p[t->cursor].id == id ? t->cursor : prep_find_probe(P, id);
    if (pi < 0)
        return gi_fail(err, "%s:%ld: probe id %ld is not in Probes.csv", path, line, id) - 1;
    t->cursor = pi + 1;
    return pi;
}

static int on_expr_row(void *ctx, long line, const char *probe_txt, const double *v, int n_cols,
                       gi_err *err)
{
    (void)n_cols;
    task *t = ctx;
    int pi = row_probe(t, line, probe_txt, "MicroarrayExpression.csv", err);
    if (pi < -1)
        return -1;
    int vi = t->P->p[pi].valid;
    if (vi < 0)
        return 0;
    const donor *D = t->D;
    float *out = D->expr + (size_t)vi * (size_t)D->n;
    for (int s = 0; s < D->n; s++)
        out[s] = (float)v[D->s[s].col];
    return 0;
}

static int on_pa_row(void *ctx, long line, const char *probe_txt, const double *v, int n_cols,
                     gi_err *err)
{
    task *t = ctx;
    int pi = row_probe(t, line, probe_txt, "PACall.csv", err);
    if (pi < -1)
        return -1;
    int vi = t->P->p[pi].valid;
    if (vi < 0)
        return 0;
    double sum = 0;
    for (int j = 0; j < n_cols; j++)
        if (t->colmult[j])
            sum += t->colmult[j] * v[j];
    t->D->pa[vi] = sum;
    return 0;
}

typedef struct pool {
    prep *P;
    atomic_int next;
    atomic_int failed;
    pthread_mutex_t lock;
    gi_err err;             /* the first failure */
} pool;

static void run_task(pool *pl, int k)
{
    prep *P = pl->P;
    donor *D = &P->dn[k / 2];
    task t = {.P = P, .D = D, .is_pa = k % 2};
    char path[GI_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", D->d.dir, t.is_pa ? "PACall.csv" : "MicroarrayExpression.csv");
    gi_err err = {{0}};
    double t0 = prep_now_s(), bytes = 0;
    long rows = 0;
    int rc = 0;
    if (t.is_pa) {
        t.colmult = calloc((size_t)D->n_file, sizeof *t.colmult);
        if (!t.colmult)
            rc = gi_fail(&err, "out of memory");
        for (int s = 0; rc == 0 && s < D->n; s++)
            t.colmult[D->s[s].col]++;
    }
    if (rc == 0)
        rc = gi_ahba_read_matrix(path, D->n_file, t.is_pa ? on_pa_row : on_expr_row, &t, &rows,
                                 &bytes, &err);
    if (rc == 0 && rows != P->n_probes_file)
        rc = gi_fail(&err, "%s: %ld rows, but Probes.csv lists %d probes", path, rows, P->n_probes_file);
    free(t.colmult);
    double dt = prep_now_s() - t0;
    if (t.is_pa)
        D->rows_pa = rows, D->mb_pa = bytes / 1048576.0, D->s_pa = dt;
    else
        D->rows_expr = rows, D->mb_expr = bytes / 1048576.0, D->s_expr = dt;
    pthread_mutex_lock(&pl->lock);
    if (rc != 0 && !atomic_load(&pl->failed)) {
        pl->err = err;
        atomic_store(&pl->failed, 1);
    }
    if (rc == 0 && P->log) {
        fprintf(P->log, "  donor %-6ld %-26s %6ld rows %8.1f MB %6.2f s\n", D->d.id,
                t.is_pa ? "PACall.csv" : "MicroarrayExpression.csv", rows, bytes / 1048576.0, dt);
        fflush(P->log);
    }
    pthread_mutex_unlock(&pl->lock);
}

static void *pool_worker(void *arg)
{
    pool *pl = arg;
    for (;;) {
        int k = atomic_fetch_add(&pl->next, 1);
        if (k >= 2 * pl->P->n_donors || atomic_load(&pl->failed))
            break;
        run_task(pl, k);
    }
    return NULL;
}

int prep_read_matrices(prep *P, gi_err *err)
{
    for (int d = 0; d < P->n_donors; d++) {
        donor *D = &P->dn[d];
        D->expr = malloc((size_t)P->n_valid * (size_t)D->n * sizeof *D->expr);
        D->pa = calloc((size_t)P->n_valid, sizeof *D->pa);
        if (!D->expr || !D->pa)
            return gi_fail(err, "out of memory for donor %s: %d probes x %d samples", D->d.name,
                           P->n_valid, D->n);
    }
    pool pl = {.P = P};
    atomic_init(&pl.next, 0);
    atomic_init(&pl.failed, 0);
    pthread_mutex_init(&pl.lock, NULL);
    int nt = P->threads < 2 * P->n_donors ? P->threads : 2 * P->n_donors;
    if (nt > 64)
        nt = 64;
    pthread_t th[64];
    int started = 0;
    for (int t = 1; t < nt; t++) {
        if (pthread_create(&th[started], NULL, pool_worker, &pl) != 0)
            break;
        started++;
    }
    pool_worker(&pl);
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    pthread_mutex_destroy(&pl.lock);
    if (atomic_load(&pl.failed)) {
        *err = pl.err;
        return -1;
    }
    return 0;
}

