/* prep.c - what the phases of prepare share: small helpers, freeing the
 * state, and the parallel-for of the normalisation and selection (prep.h). */
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

/* ------------------------------------------------------------ small helpers */

double prep_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int prep_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int prep_cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Open a CSV table (csv.h) and find the named columns (idx[k] = column of
 * names[k]); a missing one is an error naming the file and the column. */
int prep_open_table(gi_table *t, const char *path, const char *const *names, int n, int *idx, gi_err *err)
{
    if (gi_table_open(t, path, err) != 0)
        return -1;
    if (gi_table_columns(t, names, n, idx, err) != 0) {
        gi_table_close(t);
        return -1;
    }
    return 0;
}

int prep_parse_long_field(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno)
        return -1;
    *out = v;
    return 0;
}

int prep_parse_double_field(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* JSON string body (quotes, backslashes and control bytes escaped). */
void prep_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}


void prep_free(prep *P)
{
    for (int i = 0; i < P->n_probes_file; i++) {
        free(P->p[i].name);
        free(P->p[i].symbol);
    }
    free(P->p);
    free(P->valid_probe);
    for (int d = 0; d < P->n_donors; d++) {
        donor *D = &P->dn[d];
        free(D->d.dir);
        for (int i = 0; i < D->n; i++)
            free(D->s[i].well);
        free(D->s);
        for (int i = 0; i < D->n_ont; i++) {
            free(D->ont[i].acronym);
            free(D->ont[i].name);
        }
        free(D->ont);
        free(D->expr);
        free(D->pa);
        free(D->region);
        free(D->region_count);
    }
    free(P->dn);
    free(P->ibf);
    free(P->genes);
    free(P->gene_first);
    free(P->gene_count);
    free(P->order);
    free(P->chosen);
    free(P->gene_kept);
    free(P->ds);
}

/* ------------------------------------------------------- threads */

typedef struct range_job { range_fn fn; void *ctx; int lo, hi; } range_job;

static void *range_worker(void *arg)
{
    range_job *j = arg;
    j->fn(j->ctx, j->lo, j->hi);
    return NULL;
}

void prep_parallel_for(int threads, int n, range_fn fn, void *ctx)
{
    if (threads > 64)
        threads = 64;
    if (threads > n)
        threads = n;
    if (threads <= 1) {
        fn(ctx, 0, n);
        return;
    }
    pthread_t th[64];
    range_job jobs[64];
    int started[64] = {0};
    for (int t = 0; t < threads; t++) {
        jobs[t] = (range_job){fn, ctx, (int)((long)n * t / threads), (int)((long)n * (t + 1) / threads)};
        if (t > 0)
            started[t] = pthread_create(&th[t], NULL, range_worker, &jobs[t]) == 0;
    }
    fn(ctx, jobs[0].lo, jobs[0].hi);
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            fn(ctx, jobs[t].lo, jobs[t].hi);   /* no thread: do it here */
    }
}
