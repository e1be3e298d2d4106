/* probes.c - prepare's phase 1: Probes.csv, the reannotation table, and the
 * probes with a gene symbol and an Entrez id (prep.h). */
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

/* ----------------------------------------------------------- 1. probes */

static int cmp_probe_id(const void *a, const void *b)
{
    const probe *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

int prep_find_probe(const prep *P, long id)
{
    int lo = 0, hi = P->n_probes_file - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (P->p[mid].id == id)
            return mid;
        if (P->p[mid].id < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static int is_nan_text(const char *s)
{
    return !*s || !strcmp(s, "NaN") || !strcmp(s, "nan") || !strcmp(s, "NA");
}

int prep_read_probes(prep *P, gi_err *err)
{
    char path[GI_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/Probes.csv", P->dn[0].d.dir);
    static const char *const cols[] = {"probe_id", "probe_name", "gene_symbol", "entrez_id"};
    int idx[4], rc;
    size_t cap = 0;
    gi_table t;
    if (prep_open_table(&t, path, cols, 4, idx, err) != 0)
        return -1;
    while ((rc = gi_table_next(&t, err)) == 1) {
        char **f = t.f;
        long line = t.line;
        if (GI_GROW(P->p, cap, (size_t)P->n_probes_file + 1)) {
            rc = gi_fail(err, "%s: out of memory", path);
            break;
        }
        probe *q = &P->p[P->n_probes_file];
        memset(q, 0, sizeof *q);
        if (prep_parse_long_field(f[idx[0]], &q->id) != 0) {
            rc = gi_fail(err, "%s:%ld: probe_id '%s' is not an integer", path, line, f[idx[0]]);
            break;
        }
        P->n_probes_file++;
        q->name = strdup(f[idx[1]]);
        /* Without a reannotation table: Probes.csv's symbol, if it has an Entrez id. */
        q->symbol = is_nan_text(f[idx[3]]) || !f[idx[2]][0] ? NULL : strdup(f[idx[2]]);
        if (!q->name || (!q->symbol && !is_nan_text(f[idx[3]]) && f[idx[2]][0])) {
            rc = gi_fail(err, "%s: out of memory", path);
            break;
        }
    }
    gi_table_close(&t);
    if (rc < 0)
        return -1;
    if (P->n_probes_file == 0)
        return gi_fail(err, "%s: no probes", path);
    qsort(P->p, (size_t)P->n_probes_file, sizeof *P->p, cmp_probe_id);
    for (int i = 1; i < P->n_probes_file; i++)
        if (P->p[i].id == P->p[i - 1].id)
            return gi_fail(err, "%s: probe_id %ld appears twice", path, P->p[i].id);
    return 0;
}

static const prep *sort_ctx_prep;   /* only during the qsort below (single-threaded) */

static int cmp_probe_name_idx(const void *a, const void *b)
{
    const prep *P = sort_ctx_prep;
    return strcmp(P->p[*(const int *)a].name, P->p[*(const int *)b].name);
}

/* Replace the symbols by the reannotation table's: abagen keeps exactly the
 * probes whose probe_name the table lists with a non-NaN entrez_id. */
int prep_reannotate(prep *P, const char *path, gi_err *err)
{
    int n = P->n_probes_file;
    int *by_name = malloc((size_t)n * sizeof *by_name);
    char **sym = calloc((size_t)n, sizeof *sym);
    if (!by_name || !sym) {
        free(by_name);
        free(sym);
        return gi_fail(err, "out of memory");
    }
    for (int i = 0; i < n; i++)
        by_name[i] = i;
    sort_ctx_prep = P;
    qsort(by_name, (size_t)n, sizeof *by_name, cmp_probe_name_idx);
    static const char *const cols[] = {"probe_name", "gene_symbol", "entrez_id"};
    int idx[3], rc;
    gi_table t;
    if (prep_open_table(&t, path, cols, 3, idx, err) != 0) {
        free(by_name);
        free(sym);
        return gi_fail_prefix(err, "prepare.reannotation: ");
    }
    while ((rc = gi_table_next(&t, err)) == 1) {
        char **f = t.f;
        if (is_nan_text(f[idx[2]]) || !f[idx[1]][0])
            continue;
        int lo = 0, hi = n - 1, hit = -1;
        while (lo <= hi) {
            int mid = lo + (hi - lo) / 2;
            int c = strcmp(P->p[by_name[mid]].name, f[idx[0]]);
            if (c == 0) {
                hit = mid;
                break;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid - 1;
        }
        if (hit < 0)
            continue;   /* a probe this release does not have */
        /* Every probe of that name (names are unique in the Allen release). */
        while (hit > 0 && strcmp(P->p[by_name[hit - 1]].name, f[idx[0]]) == 0)
            hit--;
        for (; hit < n && strcmp(P->p[by_name[hit]].name, f[idx[0]]) == 0; hit++) {
            int pi = by_name[hit];
            if (sym[pi])
                continue;   /* listed twice: the first row wins */
            if (!(sym[pi] = strdup(f[idx[1]]))) {
                rc = gi_fail(err, "out of memory");
                break;
            }
        }
        if (rc < 0)
            break;
    }
    gi_table_close(&t);
    free(by_name);
    for (int i = 0; i < n; i++) {
        if (rc >= 0) {
            free(P->p[i].symbol);
            P->p[i].symbol = sym[i];
        } else {
            free(sym[i]);
        }
    }
    free(sym);
    return rc < 0 ? -1 : 0;
}

int prep_index_valid_probes(prep *P, gi_err *err)
{
    P->valid_probe = malloc((size_t)P->n_probes_file * sizeof *P->valid_probe);
    if (!P->valid_probe)
        return gi_fail(err, "out of memory");
    P->n_valid = 0;
    for (int i = 0; i < P->n_probes_file; i++) {
        P->p[i].valid = P->p[i].symbol ? P->n_valid : -1;
        if (P->p[i].symbol)
            P->valid_probe[P->n_valid++] = i;
    }
    if (P->n_valid == 0)
        return gi_fail(err, "no probe has a gene symbol with an Entrez id%s",
                       P->c->prepare.reannotation[0] ? " in prepare.reannotation" : "");
    return 0;
}

