/* prepare.c - the AHBA donor folders -> the sample table (see prepare.h).
 *
 * Phases, in the order of gi_prepare_run: probes (Probes.csv + reannotation),
 * samples per donor (SampleAnnot, Ontology, coordinates, mirroring, mismatch
 * drop), the two matrices of every donor read in parallel, intensity filter,
 * probe selection, normalisation, output. Each phase is a function over the
 * plain `prep` struct; memory for the big arrays is owned by prep and freed
 * by prep_free on every path.
 *
 * What must stay true (abagen's results depend on it):
 *  - donors in numeric order; samples of a donor in SampleAnnot order, then
 *    the left->right mirror copies, then the right->left ones; output rows
 *    in that order (train's validation split is a function of the row index,
 *    which norm_train_only reproduces);
 *  - probes in ascending probe_id; genes in byte order of their symbols; ties
 *    in probe selection go to the lowest probe_id;
 *  - the across-gene normalisation of a sample runs over every gene that
 *    survives selection, whatever prepare.genes lists.
 * Expression is held as float (the text has at most ~7 significant digits
 * in the Allen release); every statistic is computed in double.
 */
#include "geneinr/prepare.h"

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
#include "geneinr/label_match.h"
#include "geneinr/rng.h"
#include "geneinr/samples.h"

/* ------------------------------------------------------------ small helpers */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Open a CSV with a header and find the named columns (idx[k] = column of
 * names[k]); a missing one is an error naming the file and the column. */
static gi_csv *open_table(const char *path, const char *const *names, int n, int *idx,
                          int *n_cols, gi_err *err)
{
    gi_csv *r = gi_csv_open(path, err);
    if (!r)
        return NULL;
    char **f;
    int nf;
    int rc = gi_csv_next(r, &f, &nf, err);
    if (rc <= 0) {
        if (rc == 0)
            gi_fail(err, "%s: empty file (no header row)", path);
        gi_csv_close(r);
        return NULL;
    }
    for (int k = 0; k < n; k++) {
        idx[k] = -1;
        for (int i = 0; i < nf; i++)
            if (strcmp(f[i], names[k]) == 0)
                idx[k] = i;
        if (idx[k] < 0) {
            gi_fail(err, "%s:%ld: missing column '%s'", path, gi_csv_line(r), names[k]);
            gi_csv_close(r);
            return NULL;
        }
    }
    *n_cols = nf;
    return r;
}

static int parse_long_field(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno)
        return -1;
    *out = v;
    return 0;
}

static int parse_double_field(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* JSON string body (quotes, backslashes and control bytes escaped). */
static void json_str(FILE *f, const char *s)
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

/* ------------------------------------------------------------------ state */

typedef struct probe {
    long id;
    char *name;
    char *symbol;           /* after reannotation; NULL = dropped (no Entrez id) */
    int valid;              /* index among probes with a symbol, or -1 */
} probe;

typedef struct ont_row {
    long id;
    char *acronym, *name;
    char hemi;              /* 'L', 'R' or 'B' (empty in the file) */
    const char *cls;        /* abagen's structure class, "" if none */
} ont_row;

typedef struct sample {
    int col;                /* column in the donor's matrices (row of SampleAnnot) */
    char *well;
    long sid;               /* structure_id (mirrored copies: the other side's) */
    const ont_row *ont;
    double xyz[3];
} sample;

typedef struct donor {
    gi_ahba_donor d;
    int n_file;             /* rows of SampleAnnot.csv */
    int n;                  /* kept samples */
    sample *s;              /* [n] */
    int n_mismatch, n_mirrored, n_mirror_unmatched;
    ont_row *ont;           /* [n_ont] sorted by id */
    int n_ont;
    float *expr;            /* [n_valid][n] */
    double *pa;             /* [n_valid] present calls summed over kept samples */
    long rows_expr, rows_pa;
    double mb_expr, mb_pa, s_expr, s_pa;
    int n_regions;          /* distinct structure ids among kept samples */
    int *region;            /* [n] region index of each sample */
    int *region_count;      /* [n_regions] samples per region */
} donor;

typedef struct prep {
    const gi_config *c;
    FILE *log;
    int threads;
    int n_probes_file;
    probe *p;               /* [n_probes_file] sorted by id */
    int n_valid;            /* probes with a symbol and an Entrez id */
    int *valid_probe;       /* [n_valid] index into p */
    donor *dn;
    int n_donors;
    /* after the intensity filter */
    int n_ibf;
    unsigned char *ibf;     /* [n_valid] */
    /* genes */
    int n_genes;
    char **genes;           /* [n_genes] byte order (point into probe symbols) */
    int *gene_first, *gene_count;  /* [n_genes] run of ibf probes (valid indices) in order */
    int *order;             /* [n_ibf] valid indices sorted by (symbol, id) */
    int *chosen;            /* [n_genes] valid index of the chosen probe, -1 = mean / dropped */
    unsigned char *gene_kept;
    double *ds;             /* [n_valid] differential stability (diff_stability) */
    int n_sel;              /* genes with a chosen probe */
} prep;

static void prep_free(prep *P)
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

/* ----------------------------------------------------------- 1. probes */

static int cmp_probe_id(const void *a, const void *b)
{
    const probe *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static int find_probe(const prep *P, long id)
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

static int read_probes(prep *P, gi_err *err)
{
    char path[GI_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/Probes.csv", P->dn[0].d.dir);
    static const char *const cols[] = {"probe_id", "probe_name", "gene_symbol", "entrez_id"};
    int idx[4], nc, cap = 0, rc;
    gi_csv *r = open_table(path, cols, 4, idx, &nc, err);
    if (!r)
        return -1;
    char **f;
    int nf;
    while ((rc = gi_csv_next(r, &f, &nf, err)) == 1) {
        long line = gi_csv_line(r);
        if (nf != nc) {
            rc = gi_fail(err, "%s:%ld: row has %d fields but the header has %d", path, line, nf, nc);
            break;
        }
        if (P->n_probes_file == cap) {
            cap = cap ? 2 * cap : 65536;
            probe *np = realloc(P->p, (size_t)cap * sizeof *np);
            if (!np) {
                rc = gi_fail(err, "%s: out of memory", path);
                break;
            }
            P->p = np;
        }
        probe *q = &P->p[P->n_probes_file];
        memset(q, 0, sizeof *q);
        if (parse_long_field(f[idx[0]], &q->id) != 0) {
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
    gi_csv_close(r);
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
static int reannotate(prep *P, const char *path, gi_err *err)
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
    int idx[3], nc, rc;
    gi_csv *r = open_table(path, cols, 3, idx, &nc, err);
    if (!r) {
        free(by_name);
        free(sym);
        return gi_fail_prefix(err, "prepare.reannotation: ");
    }
    char **f;
    int nf;
    while ((rc = gi_csv_next(r, &f, &nf, err)) == 1) {
        if (nf != nc) {
            rc = gi_fail(err, "%s:%ld: row has %d fields but the header has %d", path,
                         gi_csv_line(r), nf, nc);
            break;
        }
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
    gi_csv_close(r);
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

static int index_valid_probes(prep *P, gi_err *err)
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

/* ----------------------------------------------------------- 2. samples */

/* abagen's structure classes, by ontology id on structure_id_path. */
static const struct { long id; const char *cls; } CLASSES[] = {
    {4008, "cortex"}, {4249, "subcortex/brainstem"}, {4275, "subcortex/brainstem"},
    {4391, "subcortex/brainstem"}, {4696, "cerebellum"}, {9001, "subcortex/brainstem"},
    {9131, "subcortex/brainstem"}, {9218, "white matter"}, {9352, "other"},
    {9512, "subcortex/brainstem"},
};

/* The deepest class id on the path "/4005/4006/.../id/". */
static const char *class_of_path(const char *path)
{
    const char *cls = "";
    const char *s = path;
    while (*s) {
        while (*s == '/')
            s++;
        if (!*s)
            break;
        char *end;
        long id = strtol(s, &end, 10);
        if (end == s) {
            while (*s && *s != '/')
                s++;
            continue;
        }
        for (size_t k = 0; k < sizeof CLASSES / sizeof CLASSES[0]; k++)
            if (CLASSES[k].id == id && (*end == '/' || !*end))
                cls = CLASSES[k].cls;
        s = end;
    }
    return cls;
}

static int cmp_ont_id(const void *a, const void *b)
{
    const ont_row *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static const ont_row *find_ont(const donor *D, long id)
{
    ont_row key = {.id = id};
    return bsearch(&key, D->ont, (size_t)D->n_ont, sizeof *D->ont, cmp_ont_id);
}

static int read_ontology(donor *D, gi_err *err)
{
    char path[GI_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/Ontology.csv", D->d.dir);
    static const char *const cols[] = {"id", "acronym", "name", "hemisphere", "structure_id_path"};
    int idx[5], nc, cap = 0, rc;
    gi_csv *r = open_table(path, cols, 5, idx, &nc, err);
    if (!r)
        return -1;
    char **f;
    int nf;
    while ((rc = gi_csv_next(r, &f, &nf, err)) == 1) {
        long line = gi_csv_line(r);
        if (nf != nc) {
            rc = gi_fail(err, "%s:%ld: row has %d fields but the header has %d", path, line, nf, nc);
            break;
        }
        if (D->n_ont == cap) {
            cap = cap ? 2 * cap : 2048;
            ont_row *no = realloc(D->ont, (size_t)cap * sizeof *no);
            if (!no) {
                rc = gi_fail(err, "out of memory");
                break;
            }
            D->ont = no;
        }
        ont_row *o = &D->ont[D->n_ont];
        memset(o, 0, sizeof *o);
        if (parse_long_field(f[idx[0]], &o->id) != 0) {
            rc = gi_fail(err, "%s:%ld: id '%s' is not an integer", path, line, f[idx[0]]);
            break;
        }
        const char *h = f[idx[3]];
        if (strcmp(h, "L") && strcmp(h, "R") && strcmp(h, "B") && h[0]) {
            rc = gi_fail(err, "%s:%ld: hemisphere '%s' is not L, R, B or empty", path, line, h);
            break;
        }
        o->hemi = h[0] ? h[0] : 'B';   /* empty = both (abagen's NaN -> "B") */
        o->cls = class_of_path(f[idx[4]]);
        o->acronym = strdup(f[idx[1]]);
        o->name = strdup(f[idx[2]]);
        D->n_ont++;
        if (!o->acronym || !o->name) {
            rc = gi_fail(err, "out of memory");
            break;
        }
    }
    gi_csv_close(r);
    if (rc < 0)
        return -1;
    qsort(D->ont, (size_t)D->n_ont, sizeof *D->ont, cmp_ont_id);
    return 0;
}

/* Corrected coordinates: well_id text -> xyz, sorted by well_id. */
typedef struct coord { char *well; double xyz[3]; } coord;
typedef struct coords { coord *v; int n; } coords;

static int cmp_coord(const void *a, const void *b)
{
    return strcmp(((const coord *)a)->well, ((const coord *)b)->well);
}

static void coords_free(coords *C)
{
    for (int i = 0; i < C->n; i++)
        free(C->v[i].well);
    free(C->v);
    memset(C, 0, sizeof *C);
}

static int read_coords(coords *C, const char *path, gi_err *err)
{
    static const char *const cols[] = {"well_id", "corrected_mni_x", "corrected_mni_y", "corrected_mni_z"};
    int idx[4], nc, cap = 0, rc;
    memset(C, 0, sizeof *C);
    gi_csv *r = open_table(path, cols, 4, idx, &nc, err);
    if (!r)
        return gi_fail_prefix(err, "prepare.coordinates: ");
    char **f;
    int nf;
    while ((rc = gi_csv_next(r, &f, &nf, err)) == 1) {
        long line = gi_csv_line(r);
        if (nf != nc) {
            rc = gi_fail(err, "%s:%ld: row has %d fields but the header has %d", path, line, nf, nc);
            break;
        }
        if (C->n == cap) {
            cap = cap ? 2 * cap : 4096;
            coord *nv = realloc(C->v, (size_t)cap * sizeof *nv);
            if (!nv) {
                rc = gi_fail(err, "out of memory");
                break;
            }
            C->v = nv;
        }
        coord *q = &C->v[C->n];
        for (int k = 0; k < 3; k++)
            if (parse_double_field(f[idx[1 + k]], &q->xyz[k]) != 0) {
                rc = gi_fail(err, "%s:%ld: %s '%s' is not a finite number", path, line,
                             cols[1 + k], f[idx[1 + k]]);
                break;
            }
        if (rc < 0)
            break;
        if (!(q->well = strdup(f[idx[0]]))) {
            rc = gi_fail(err, "out of memory");
            break;
        }
        C->n++;
    }
    gi_csv_close(r);
    if (rc < 0) {
        coords_free(C);
        return -1;
    }
    qsort(C->v, (size_t)C->n, sizeof *C->v, cmp_coord);
    return 0;
}

static const coord *find_coord(const coords *C, const char *well)
{
    coord key = {.well = (char *)well};
    return bsearch(&key, C->v, (size_t)C->n, sizeof *C->v, cmp_coord);
}

static int push_sample(donor *D, int *cap, const sample *s, gi_err *err)
{
    if (D->n == *cap) {
        *cap = *cap ? 2 * *cap : 1024;
        sample *ns = realloc(D->s, (size_t)*cap * sizeof *ns);
        if (!ns)
            return gi_fail(err, "out of memory");
        D->s = ns;
    }
    D->s[D->n] = *s;
    if (!(D->s[D->n].well = strdup(s->well)))
        return gi_fail(err, "out of memory");
    D->n++;
    return 0;
}

/* The structure of the same acronym on the other side (abagen's
 * _mirror_ontology); NULL when the ontology has none. */
static const ont_row *mirror_structure(const donor *D, const ont_row *o)
{
    char want = o->hemi == 'L' ? 'R' : o->hemi == 'R' ? 'L' : 'B';
    for (int i = 0; i < D->n_ont; i++)
        if (D->ont[i].hemi == want && strcmp(D->ont[i].acronym, o->acronym) == 0)
            return &D->ont[i];
    return NULL;
}

static int keeps(const ont_row *o, double x)
{
    return (o->hemi == 'L' && x < 0) || (o->hemi == 'R' && x > 0) || (o->hemi == 'B' && x == 0);
}

static int read_samples(prep *P, donor *D, const coords *C, gi_err *err)
{
    if (read_ontology(D, err) != 0)
        return -1;
    char path[GI_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/SampleAnnot.csv", D->d.dir);
    static const char *const cols[] = {"structure_id", "well_id", "mni_x", "mni_y", "mni_z"};
    int idx[5], nc, rc;
    gi_csv *r = open_table(path, cols, 5, idx, &nc, err);
    if (!r)
        return -1;
    /* All samples of the file first (in file order), then the selection. */
    sample *all = NULL;
    int n_all = 0, cap_all = 0;
    char **f;
    int nf;
    while ((rc = gi_csv_next(r, &f, &nf, err)) == 1) {
        long line = gi_csv_line(r);
        if (nf != nc) {
            rc = gi_fail(err, "%s:%ld: row has %d fields but the header has %d", path, line, nf, nc);
            break;
        }
        if (n_all == cap_all) {
            cap_all = cap_all ? 2 * cap_all : 1024;
            sample *na = realloc(all, (size_t)cap_all * sizeof *na);
            if (!na) {
                rc = gi_fail(err, "out of memory");
                break;
            }
            all = na;
        }
        sample *s = &all[n_all];
        memset(s, 0, sizeof *s);
        s->col = n_all;
        if (parse_long_field(f[idx[0]], &s->sid) != 0) {
            rc = gi_fail(err, "%s:%ld: structure_id '%s' is not an integer", path, line, f[idx[0]]);
            break;
        }
        if (!(s->ont = find_ont(D, s->sid))) {
            rc = gi_fail(err, "%s:%ld: structure_id %ld is not in %s/Ontology.csv", path, line,
                         s->sid, D->d.dir);
            break;
        }
        if (!(s->well = strdup(f[idx[1]]))) {
            rc = gi_fail(err, "out of memory");
            break;
        }
        n_all++;
        if (C->n) {
            const coord *q = find_coord(C, s->well);
            if (!q) {
                rc = gi_fail(err, "%s:%ld: well_id %s of donor %s is not in prepare.coordinates "
                             "(%s)", path, line, s->well, D->d.name, P->c->prepare.coordinates);
                break;
            }
            memcpy(s->xyz, q->xyz, sizeof s->xyz);
        } else {
            for (int k = 0; k < 3; k++)
                if (parse_double_field(f[idx[2 + k]], &s->xyz[k]) != 0) {
                    rc = gi_fail(err, "%s:%ld: %s '%s' is not a finite number", path, line,
                                 cols[2 + k], f[idx[2 + k]]);
                    break;
                }
            if (rc < 0)
                break;
        }
    }
    gi_csv_close(r);
    D->n_file = n_all;
    int cap = 0;
    if (rc >= 0 && n_all == 0)
        rc = gi_fail(err, "%s: no samples", path);
    /* Originals, then mirror copies (x -> -x, the other side's structure),
     * each kept only if its hemisphere agrees with its x. */
    int mirror = P->c->prepare.lr_mirror;
    for (int pass = 0; pass < 3 && rc >= 0; pass++) {
        if ((pass == 1 && mirror != GI_MIRROR_LEFTRIGHT && mirror != GI_MIRROR_BIDIRECTIONAL) ||
            (pass == 2 && mirror != GI_MIRROR_RIGHTLEFT && mirror != GI_MIRROR_BIDIRECTIONAL))
            continue;
        for (int i = 0; i < n_all && rc >= 0; i++) {
            sample s = all[i];
            if (pass > 0) {
                if ((pass == 1 && !(s.xyz[0] < 0)) || (pass == 2 && !(s.xyz[0] > 0)))
                    continue;
                const ont_row *m = mirror_structure(D, s.ont);
                if (!m) {
                    D->n_mirror_unmatched++;
                    continue;
                }
                s.ont = m;
                s.sid = m->id;
                s.xyz[0] = -s.xyz[0];
                D->n_mirrored++;
            }
            if (!keeps(s.ont, s.xyz[0])) {
                D->n_mismatch++;
                continue;
            }
            rc = push_sample(D, &cap, &s, err);
        }
    }
    for (int i = 0; i < n_all; i++)
        free(all[i].well);
    free(all);
    if (rc < 0)
        return -1;
    if (D->n == 0)
        return gi_fail(err, "donor %s: none of its %d samples has a hemisphere that agrees with "
                       "its x coordinate", D->d.name, D->n_file);
    return 0;
}

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
    if (parse_long_field(probe_txt, &id) != 0)
        return gi_fail(err, "%s:%ld: probe id '%s' is not an integer", path, line, probe_txt) - 1;
    int pi = t->cursor < P->n_probes_file && P->p[t->cursor].id == id ? t->cursor : find_probe(P, id);
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
    double t0 = now_s(), bytes = 0;
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
    double dt = now_s() - t0;
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

/* Generic parallel-for over [0, n) in contiguous chunks: fn(ctx, lo, hi). */
typedef void (*range_fn)(void *ctx, int lo, int hi);
typedef struct range_job { range_fn fn; void *ctx; int lo, hi; } range_job;

static void *range_worker(void *arg)
{
    range_job *j = arg;
    j->fn(j->ctx, j->lo, j->hi);
    return NULL;
}

static void parallel_for(int threads, int n, range_fn fn, void *ctx)
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

static int read_matrices(prep *P, gi_err *err)
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

/* --------------------------------------------- 4. filter and selection */

static int intensity_filter(prep *P, gi_err *err)
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

static int cmp_valid_by_symbol(const void *a, const void *b)
{
    const prep *P = sort_ctx_prep;
    const probe *x = &P->p[P->valid_probe[*(const int *)a]];
    const probe *y = &P->p[P->valid_probe[*(const int *)b]];
    int c = strcmp(x->symbol, y->symbol);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

static int group_genes(prep *P, gi_err *err)
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
static void subset_ranks(const double *x, const uint16_t *perm, int len, const int *pos,
                         double *rank_out)
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
        /* a run of equal values among subset members */
        int start = r, cnt = 0, e = i;
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
            subset_ranks(means + off[a], perm + off[a], Ra, X->pos[q], ra);
            subset_ranks(means + off[b], perm + off[b], Rb, X->pos[q] + Ra, rb);
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
    qsort(ids, (size_t)D->n, sizeof *ids, cmp_long);
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
        const long *hit = bsearch(&D->s[s].sid, ids, (size_t)R, sizeof *ids, cmp_long);
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
        parallel_for(P->threads, P->n_ibf, ds_range, &X);
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

static int select_probes(prep *P, gi_err *err)
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

/* ------------------------------------------------------ 5. normalisation */

/* The k-th smallest of a[lo..hi] (inclusive; lo <= k <= hi), a reordered so
 * that a[lo..k) <= a[k] <= a(k..hi]. */
static double select_kth(double *a, int lo, int hi, int k)
{
    while (hi > lo) {
        int mid = lo + (hi - lo) / 2;
        double x = a[lo], y = a[mid], z = a[hi];
        double pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                double t = a[i];
                a[i] = a[j], a[j] = t;
                i++, j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

static double min_of(const double *a, int lo, int hi)   /* a[lo..hi), lo < hi */
{
    double m = a[lo];
    for (int i = lo + 1; i < hi; i++)
        if (a[i] < m)
            m = a[i];
    return m;
}

/* numpy's linear-interpolation 25th, 50th and 75th percentiles of a[0..n)
 * (NaN-free; a is reordered). The median is selected first; the quartiles
 * then only search their half, and the upper neighbour of each order
 * statistic is the minimum of the part between it and the next one. */
static void quartiles(double *a, int n, double *q1, double *med, double *q3)
{
    double h[3] = {(n - 1) * 0.25, (n - 1) * 0.5, (n - 1) * 0.75};
    int k[3] = {(int)floor(h[0]), (int)floor(h[1]), (int)floor(h[2])};
    double lo_v[3], hi_v[3];
    lo_v[1] = select_kth(a, 0, n - 1, k[1]);
    if (k[0] < k[1])
        lo_v[0] = select_kth(a, 0, k[1] - 1, k[0]);
    else
        lo_v[0] = lo_v[1];
    if (k[2] > k[1])
        lo_v[2] = select_kth(a, k[1] + 1, n - 1, k[2]);
    else
        lo_v[2] = lo_v[1];
    /* Upper neighbours (sorted position k + 1). The selected positions split
     * a into parts ordered by value, so the neighbour of k is the next selected
     * position p when p = k + 1, else the minimum of a(k..p). */
    int sel[3] = {k[0], k[1], k[2]};   /* ascending */
    for (int i = 0; i < 3; i++) {
        int p = n;
        for (int j = 0; j < 3; j++)
            if (sel[j] > k[i] && sel[j] < p)
                p = sel[j];
        if (k[i] + 1 >= n)
            hi_v[i] = lo_v[i];
        else if (k[i] + 1 == p)
            hi_v[i] = a[p];
        else
            hi_v[i] = min_of(a, k[i] + 1, p);
    }
    double out[3];
    for (int i = 0; i < 3; i++) {
        double frac = h[i] - k[i];
        out[i] = frac == 0 || k[i] + 1 >= n ? lo_v[i] : lo_v[i] + (hi_v[i] - lo_v[i]) * frac;
    }
    *q1 = out[0], *med = out[1], *q3 = out[2];
}

void gi_srs(double *v, int n, const unsigned char *fit, double *tmp)
{
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!fit || fit[i])
            tmp[m++] = v[i];
    if (m == 0) {
        for (int i = 0; i < n; i++)
            v[i] = NAN;
        return;
    }
    for (int i = 0; i < m; i++)
        if (isnan(tmp[i])) {
            for (int j = 0; j < n; j++)
                v[j] = NAN;
            return;
        }
    double q1, med, q3;
    quartiles(tmp, m, &q1, &med, &q3);
    double s = (q3 - q1) / 1.3489795003921634;
    /* numpy's min and max propagate NaN (an IQR of 0 gives 0/0 at the median) */
    double lo = INFINITY, hi = -INFINITY;
    int any_nan = 0;
    for (int i = 0; i < n; i++) {
        double y = 1.0 / (1.0 + exp(-(v[i] - med) / s));
        v[i] = y;
        if (fit && !fit[i])
            continue;
        if (isnan(y))
            any_nan = 1;
        else if (y < lo)
            lo = y;
        if (y > hi)
            hi = y;
    }
    if (any_nan)
        lo = hi = NAN;
    for (int i = 0; i < n; i++)
        v[i] = (v[i] - lo) / (hi - lo);
}

typedef struct norm_ctx {
    const prep *P;
    const donor *D;
    double *X;              /* [n][G] */
    int G;
    const unsigned char *fit; /* [n] or NULL */
    atomic_int oom;
} norm_ctx;

static void srs_samples_range(void *ctx, int lo, int hi)
{
    norm_ctx *c = ctx;
    double *tmp = malloc((size_t)c->G * sizeof *tmp);
    if (!tmp) {
        atomic_store(&c->oom, 1);
        return;
    }
    for (int s = lo; s < hi; s++)
        gi_srs(c->X + (size_t)s * c->G, c->G, NULL, tmp);
    free(tmp);
}

/* Within-donor SRS of genes [lo, hi): c->X is gene-major here, [G][n]. */
static void srs_genes_range(void *ctx, int lo, int hi)
{
    norm_ctx *c = ctx;
    int n = c->D->n;
    double *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp) {
        atomic_store(&c->oom, 1);
        return;
    }
    for (int g = lo; g < hi; g++)
        gi_srs(c->X + (size_t)g * n, n, c->fit, tmp);
    free(tmp);
}

/* dst[c][r] = src[r][c] for a rows x cols matrix, in cache-sized blocks. */
static void transpose(const double *src, double *dst, int rows, int cols)
{
    enum { B = 32 };
    for (int r0 = 0; r0 < rows; r0 += B)
        for (int c0 = 0; c0 < cols; c0 += B) {
            int r1 = r0 + B < rows ? r0 + B : rows, c1 = c0 + B < cols ? c0 + B : cols;
            for (int r = r0; r < r1; r++)
                for (int c = c0; c < c1; c++)
                    dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
        }
}

/* ---------------------------------------------------------------- run */

static int write_report(const prep *P, const char *path, const gi_genelist *list,
                        const unsigned char *listed_found, int n_out, int n_rows, const gi_match_summary *match,
                        double secs, gi_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return gi_fail(err, "cannot create %s: %s", path, strerror(errno));
    static const char *const SEL[] = {"diff_stability", "max_intensity", "max_variance", "mean"};
    static const char *const MIR[] = {"none", "leftright", "rightleft", "bidirectional"};
    const gi_config *c = P->c;
    fprintf(f, "{\n  \"data_dir\": ");
    json_str(f, c->prepare.data_dir);
    fprintf(f, ",\n  \"coordinates\": ");
    json_str(f, c->prepare.coordinates);
    fprintf(f, ",\n  \"reannotation\": ");
    json_str(f, c->prepare.reannotation);
    fprintf(f, ",\n  \"probe_selection\": \"%s\",\n  \"ibf_threshold\": %g,\n  \"lr_mirror\": \"%s\",\n"
               "  \"norm_train_only\": %s,\n",
            SEL[c->prepare.probe_selection], c->prepare.ibf_threshold, MIR[c->prepare.lr_mirror],
            c->prepare.norm_train_only ? "true" : "false");
    fprintf(f, "  \"donors\": [\n");
    for (int d = 0; d < P->n_donors; d++) {
        const donor *D = &P->dn[d];
        fprintf(f, "    {\"id\": %ld, \"name\": ", D->d.id);
        json_str(f, D->d.name);
        fprintf(f, ", \"samples_in_file\": %d, \"mirror_copies\": %d, "
                   "\"mirror_copies_without_structure\": %d, \"dropped_hemisphere_mismatch\": %d, "
                   "\"kept\": %d}%s\n",
                D->n_file, D->n_mirrored, D->n_mirror_unmatched, D->n_mismatch, D->n,
                d + 1 < P->n_donors ? "," : "");
    }
    fprintf(f, "  ],\n  \"samples\": %d,\n", n_rows);
    fprintf(f, "  \"probes\": {\"in_file\": %d, \"with_entrez_id\": %d, \"passed_intensity_filter\": %d},\n",
            P->n_probes_file, P->n_valid, P->n_ibf);
    fprintf(f, "  \"genes\": {\"after_filter\": %d, \"selected\": %d, \"written\": %d", P->n_genes,
            P->n_sel, n_out);
    if (list) {
        fprintf(f, ", \"list\": ");
        json_str(f, list->path);
        fprintf(f, ", \"listed\": %d, \"missing\": [", list->n);
        for (int i = 0, first = 1; i < list->n; i++)
            if (!listed_found[i]) {
                fprintf(f, "%s", first ? "" : ", ");
                json_str(f, list->names[i]);
                first = 0;
            }
        fprintf(f, "]");
    }
    fprintf(f, "}");
    if (match) {   /* with data.anatomy: how these samples meet its labels (label_match.h) */
        fprintf(f, ",\n  \"anatomy_match\": ");
        gi_match_summary_json(f, match);
    }
    fprintf(f, ",\n  \"seconds\": %.2f\n}\n", secs);
    if (fclose(f) != 0)
        return gi_fail(err, "writing %s: %s", path, strerror(errno));
    return 0;
}

static int gene_in_list(char *const *sorted, int n, const char *name)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(sorted[mid], name);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

int gi_prepare_run(const gi_config *c, const char *out_dir, FILE *log, gi_err *err)
{
    double t0 = now_s();
    prep P = {.c = c, .log = log};
    gi_samples out = {0};
    gi_genelist list = {0};
    coords C = {0};
    unsigned char *listed_found = NULL, *fit = NULL;
    char **sorted_list = NULL;
    int *out_gene = NULL;
    double *X = NULL;
    int rc = 0;
    P.threads = c->prepare.threads;
    if (P.threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        P.threads = n > 0 ? (int)n : 1;
    }
    if (!c->prepare.data_dir[0])
        return gi_fail(err, "%s: prepare.data_dir is not set (the folder holding the AHBA "
                       "normalized_microarray_donor<ID>/ folders)", c->source[0] ? c->source : "config");
    if (c->prepare.genes[0] && gi_genelist_read(&list, c->prepare.genes, err) != 0)
        return gi_fail_prefix(err, "prepare.genes: ");

    gi_ahba_donor *found = NULL;
    int n_found = 0;
    if (gi_ahba_find_donors(c->prepare.data_dir, &found, &n_found, err) != 0) {
        gi_genelist_free(&list);
        return -1;
    }
    P.dn = calloc((size_t)n_found, sizeof *P.dn);
    if (!P.dn) {
        gi_ahba_free_donors(found, n_found);
        gi_genelist_free(&list);
        return gi_fail(err, "out of memory");
    }
    for (int d = 0; d < n_found; d++)
        P.dn[d].d = found[d];   /* takes the dir strings */
    P.n_donors = n_found;
    free(found);
    if (log) {
        fprintf(log, "prepare: %d donor%s in %s:", P.n_donors, P.n_donors == 1 ? "" : "s",
                c->prepare.data_dir);
        for (int d = 0; d < P.n_donors; d++)
            fprintf(log, " %ld", P.dn[d].d.id);
        fprintf(log, "\n");
    }

    /* 1. probes */
    rc = read_probes(&P, err);
    if (rc == 0 && c->prepare.reannotation[0])
        rc = reannotate(&P, c->prepare.reannotation, err);
    if (rc == 0)
        rc = index_valid_probes(&P, err);
    if (rc == 0 && log)
        fprintf(log, "probes: %d in Probes.csv, %d with a gene symbol and an Entrez id (%s)\n",
                P.n_probes_file, P.n_valid, c->prepare.reannotation[0] ? "reannotated" : "Probes.csv's own");

    /* 2. samples */
    if (rc == 0 && c->prepare.coordinates[0])
        rc = read_coords(&C, c->prepare.coordinates, err);
    for (int d = 0; rc == 0 && d < P.n_donors; d++)
        rc = read_samples(&P, &P.dn[d], &C, err);
    coords_free(&C);
    if (rc == 0 && log)
        for (int d = 0; d < P.n_donors; d++) {
            const donor *D = &P.dn[d];
            fprintf(log, "donor %ld (%s): %d samples in SampleAnnot.csv, %d mirror copies, %d dropped "
                         "(hemisphere contradicts x), %d kept\n",
                    D->d.id, D->d.name, D->n_file, D->n_mirrored, D->n_mismatch, D->n);
        }

    /* 3. the matrices, then the intensity filter */
    if (rc == 0) {
        double t1 = now_s();
        rc = read_matrices(&P, err);
        if (rc == 0 && log)
            fprintf(log, "read the matrices of %d donors in %.1f s (%d threads)\n", P.n_donors,
                    now_s() - t1, P.threads);
    }
    if (rc == 0)
        rc = intensity_filter(&P, err);
    if (rc == 0)
        rc = group_genes(&P, err);
    if (rc == 0 && log)
        fprintf(log, "intensity filter (>= %g): %d of %d probes kept, %d genes\n",
                c->prepare.ibf_threshold, P.n_ibf, P.n_valid, P.n_genes);

    /* 4. one probe per gene */
    if (rc == 0) {
        double t1 = now_s();
        rc = select_probes(&P, err);
        if (rc == 0 && log)
            fprintf(log, "probe selection: %d genes (%.1f s)\n", P.n_sel, now_s() - t1);
    }

    /* Output genes: every selected gene, or those of prepare.genes. */
    int G = P.n_sel, n_out = 0, n_rows = 0;
    if (rc == 0) {
        out_gene = malloc((size_t)G * sizeof *out_gene);
        if (list.n) {
            listed_found = calloc((size_t)list.n, 1);
            sorted_list = malloc((size_t)list.n * sizeof *sorted_list);
        }
        if (!out_gene || (list.n && (!listed_found || !sorted_list)))
            rc = gi_fail(err, "out of memory");
    }
    int *sel_gene = NULL;   /* [G] gene index of each selected column */
    if (rc == 0 && !(sel_gene = malloc((size_t)G * sizeof *sel_gene)))
        rc = gi_fail(err, "out of memory");
    if (rc == 0) {
        for (int g = 0, k = 0; g < P.n_genes; g++)
            if (P.gene_kept[g])
                sel_gene[k++] = g;
        if (list.n) {
            memcpy(sorted_list, list.names, (size_t)list.n * sizeof *sorted_list);
            qsort(sorted_list, (size_t)list.n, sizeof *sorted_list, cmp_str);
        }
        for (int k = 0; k < G; k++)
            if (!list.n || gene_in_list(sorted_list, list.n, P.genes[sel_gene[k]]))
                out_gene[n_out++] = k;
        for (int i = 0; i < list.n; i++)
            for (int k = 0; k < n_out && !listed_found[i]; k++)
                listed_found[i] = strcmp(list.names[i], P.genes[sel_gene[out_gene[k]]]) == 0;
        if (n_out == 0)
            rc = gi_fail(err, "prepare.genes: none of the %d genes of %s is among the %d genes "
                         "of the data", list.n, list.path, G);
        for (int d = 0; d < P.n_donors; d++)
            n_rows += P.dn[d].n;
    }
    /* The output table. */
    if (rc == 0) {
        out.n = n_rows;
        out.n_genes = n_out;
        out.n_donors = P.n_donors;
        out.n_annot = 4;
        out.well_ids = calloc((size_t)n_rows, sizeof *out.well_ids);
        out.donor = malloc((size_t)n_rows * sizeof *out.donor);
        out.donor_names = calloc((size_t)P.n_donors, sizeof *out.donor_names);
        out.mni = malloc((size_t)n_rows * 3 * sizeof *out.mni);
        out.gene_names = calloc((size_t)n_out, sizeof *out.gene_names);
        out.values = malloc((size_t)n_rows * (size_t)n_out * sizeof *out.values);
        out.annot_names = calloc(4, sizeof *out.annot_names);
        out.annot = calloc((size_t)n_rows * 4, sizeof *out.annot);
        if (!out.well_ids || !out.donor || !out.donor_names || !out.mni || !out.gene_names ||
            !out.values || !out.annot_names || !out.annot)
            rc = gi_fail(err, "out of memory for the output table");
    }
    if (rc == 0) {
        static const char *const AN[4] = {"structure_id", "structure_acronym", "class", "hemisphere"};
        for (int a = 0; a < 4 && rc == 0; a++)
            if (!(out.annot_names[a] = strdup(AN[a])))
                rc = gi_fail(err, "out of memory");
        for (int k = 0; k < n_out && rc == 0; k++)
            if (!(out.gene_names[k] = strdup(P.genes[sel_gene[out_gene[k]]])))
                rc = gi_fail(err, "out of memory");
        for (int d = 0; d < P.n_donors && rc == 0; d++)
            if (!(out.donor_names[d] = strdup(P.dn[d].d.name)))
                rc = gi_fail(err, "out of memory");
    }

    /* 5. normalisation, one donor at a time */
    double t_norm = now_s();
    for (int d = 0, row0 = 0; rc == 0 && d < P.n_donors; row0 += P.dn[d].n, d++) {
        donor *D = &P.dn[d];
        /* gene-major first ([G][n], contiguous copies of the probe rows),
         * then sample-major for the across-gene step */
        double *XT = malloc((size_t)D->n * (size_t)G * sizeof *XT);
        X = malloc((size_t)D->n * (size_t)G * sizeof *X);
        fit = malloc((size_t)D->n);
        if (!XT || !X || !fit) {
            free(XT);
            rc = gi_fail(err, "out of memory for donor %s: %d samples x %d genes", D->d.name, D->n, G);
            break;
        }
        for (int k = 0; k < G; k++) {
            int g = sel_gene[k];
            double *dst = XT + (size_t)k * D->n;
            if (P.chosen[g] >= 0) {
                const float *row = D->expr + (size_t)P.chosen[g] * (size_t)D->n;
                for (int s = 0; s < D->n; s++)
                    dst[s] = row[s];
            } else {   /* mean of the gene's probes */
                for (int s = 0; s < D->n; s++)
                    dst[s] = 0;
                for (int i = 0; i < P.gene_count[g]; i++) {
                    const float *row = D->expr + (size_t)P.order[P.gene_first[g] + i] * (size_t)D->n;
                    for (int s = 0; s < D->n; s++)
                        dst[s] += row[s];
                }
                for (int s = 0; s < D->n; s++)
                    dst[s] /= P.gene_count[g];
            }
        }
        transpose(XT, X, G, D->n);
        free(D->expr);   /* the donor's probes are no longer needed */
        D->expr = NULL;
        int n_fit = 0;
        for (int s = 0; s < D->n; s++) {
            int r = row0 + s, v = 0;
            if (c->prepare.norm_train_only) {
                if (c->train.val_mode == GI_VAL_FRACTION)
                    v = gi_rng_uniform(c->train.seed, GI_STREAM_SPLIT, (uint64_t)r) < c->train.val_fraction;
                else if (c->train.val_mode == GI_VAL_DONOR)
                    v = gi_ahba_donor_name(c->train.val_donor)
                            ? strcmp(gi_ahba_donor_name(c->train.val_donor), D->d.name) == 0
                            : strcmp(c->train.val_donor, D->d.name) == 0;
            }
            fit[s] = (unsigned char)!v;
            n_fit += !v;
        }
        /* A donor with no training sample (the held-out donor of train.validation:
         * donor) is fitted on all of its own samples: the within-donor
         * normalisation never mixes donors, so nothing of it reaches training. */
        norm_ctx nc = {&P, D, X, G, c->prepare.norm_train_only && n_fit > 0 ? fit : NULL, 0};
        atomic_init(&nc.oom, 0);
        parallel_for(P.threads, D->n, srs_samples_range, &nc);
        /* Genes are columns of X: make them rows again for the within-donor step. */
        transpose(X, XT, D->n, G);
        free(X);
        X = XT;
        nc.X = X;
        parallel_for(P.threads, G, srs_genes_range, &nc);
        if (atomic_load(&nc.oom))
            rc = gi_fail(err, "out of memory while normalising donor %s", D->d.name);
        for (int s = 0; s < D->n && rc == 0; s++) {
            const sample *S = &D->s[s];
            int r = row0 + s;
            char sid[32];
            snprintf(sid, sizeof sid, "%ld", S->sid);
            out.donor[r] = d;
            for (int k = 0; k < 3; k++)
                out.mni[3 * (size_t)r + k] = (float)S->xyz[k];
            char hemi[2] = {S->ont->hemi, 0};
            char **an = out.annot + (size_t)r * 4;
            if (!(out.well_ids[r] = strdup(S->well)) || !(an[0] = strdup(sid)) ||
                !(an[1] = strdup(S->ont->acronym)) || !(an[2] = strdup(S->ont->cls)) ||
                !(an[3] = strdup(hemi)))
                rc = gi_fail(err, "out of memory");
        }
        /* A gene with any NaN in this donor is dropped for the donor (abagen's
         * dropna); output columns in blocks of 16 so each row is written a
         * cache line at a time. */
        const int n = D->n;
        for (int j0 = 0; j0 < n_out && rc == 0; j0 += 16) {
            int j1 = j0 + 16 < n_out ? j0 + 16 : n_out;
            unsigned char bad[16] = {0};
            for (int j = j0; j < j1; j++) {
                const double *col = X + (size_t)out_gene[j] * n;
                for (int s = 0; s < n && !bad[j - j0]; s++)
                    bad[j - j0] = isnan(col[s]);
            }
            for (int s = 0; s < n; s++) {
                float *dst = out.values + (size_t)(row0 + s) * n_out;
                for (int j = j0; j < j1; j++)
                    dst[j] = bad[j - j0] ? NAN : (float)X[(size_t)out_gene[j] * n + s];
            }
        }
        free(X);
        X = NULL;
        free(fit);
        fit = NULL;
    }
    if (rc == 0 && log)
        fprintf(log, "normalised (scaled robust sigmoid across genes, then within donors%s) in %.1f s\n",
                c->prepare.norm_train_only ? ", fitted on training samples" : "", now_s() - t_norm);

    /* 6. output */
    char path[GI_PATH_MAX + 32];
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/samples.csv", out_dir);
        /* abagen's values lie in [0, 1]: 7 decimals are 1e-7, far inside its 1e-4 */
        rc = gi_samples_write_csv_decimals(&out, path, 7, err);
    }
    /* With data.anatomy in the config: match the prepared samples to its
     * labels as training will (data.anatomy_tolerance, data.anatomy_labels). */
    gi_match_summary match;
    int have_match = 0;
    if (rc == 0 && c->data.anatomy[0]) {
        gi_anatomy a;
        gi_label_match lm;
        rc = gi_anatomy_load(&a, c->data.anatomy, NULL, 0, err);
        if (rc == 0) {
            rc = gi_label_match_samples(&lm, &a, &out, c, err);
            gi_anatomy_free(&a);
        }
        if (rc == 0) {
            match = lm.sum;
            have_match = 1;
            gi_label_match_free(&lm);
            if (log)
                gi_match_summary_print(log, &match, "anatomy: ");
        }
    }
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/report.json", out_dir);
        rc = write_report(&P, path, list.n ? &list : NULL, listed_found, n_out, n_rows, have_match ? &match : NULL,
                          now_s() - t0, err);
    }
    if (rc == 0 && log) {
        fprintf(log, "wrote %s/samples.csv: %d samples x %d genes", out_dir, n_rows, n_out);
        if (list.n) {
            int missing = 0;
            for (int i = 0; i < list.n; i++)
                missing += !listed_found[i];
            fprintf(log, " (%d of the %d listed in %s", list.n - missing, list.n, list.path);
            if (missing) {
                fprintf(log, "; missing:");
                for (int i = 0, shown = 0; i < list.n; i++)
                    if (!listed_found[i] && shown++ < 20)
                        fprintf(log, " %s", list.names[i]);
                if (missing > 20)
                    fprintf(log, " ...");
            }
            fprintf(log, ")");
        }
        fprintf(log, "; report.json; %.1f s in all\n", now_s() - t0);
    }
    free(X);
    free(fit);
    free(sel_gene);
    free(out_gene);
    free(listed_found);
    free(sorted_list);
    gi_samples_free(&out);
    gi_genelist_free(&list);
    prep_free(&P);
    return rc;
}
