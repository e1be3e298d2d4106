/* samples.c - read and write the sample table (see samples.h).
 *
 * Reading is one pass over csv.c records: the header row fixes the column
 * roles (required, annotation, gene), then every row is checked field by field
 * and appended to growable arrays. Invariants that make cleanup simple:
 *   - every array in gi_samples is either NULL or allocated, and every count
 *     (n, n_genes, n_donors, n_annot) covers only slots that are initialised
 *     (string slots NULL or owned), so gi_samples_free is always safe;
 *   - a row's slot is counted in s->n (with its strings NULL) before any of
 *     its strings is copied, so a failure halfway through a row leaks nothing.
 * On failure the table is freed and left zeroed.
 *
 * Numbers are parsed strictly: the whole field must be a decimal number that
 * strtod accepts (no surrounding spaces), finite as a float.
 */
#include "geneinr/files.h"
#include "geneinr/samples.h"
#include "geneinr/csv.h"
#include "geneinr/ahba.h"
#include "geneinr/genelist.h"
#include "geneinr/grow.h"
#include "geneinr/names.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Columns kept as text (samples.h): geneinr's own, abagen's and the Allen
 * Institute's SampleAnnot columns. A closed list, so that a typo in a gene
 * name cannot silently turn a gene into an annotation. */
static const char *const annotation_columns[] = {
    "structure_id", "structure_acronym", "structure_name", "structure", "class",
    "hemisphere", "tissue", "slab_num", "slab_type", "sample_id", "polygon_id",
    "mri_voxel_x", "mri_voxel_y", "mri_voxel_z", "label",
};
#define N_ANNOTATION_COLUMNS ((int)(sizeof annotation_columns / sizeof annotation_columns[0]))

enum { COL_WELL, COL_DONOR, COL_X, COL_Y, COL_Z, N_REQUIRED };
static const char *const required_columns[N_REQUIRED] = {
    "well_id", "donor", "mni_x", "mni_y", "mni_z",
};
/* abagen names its coordinates x, y, z; used when mni_x/y/z are absent. */
static const char *const coord_aliases[3] = { "x", "y", "z" };

static int is_annotation(const char *name)
{
    for (int i = 0; i < N_ANNOTATION_COLUMNS; i++)
        if (strcmp(name, annotation_columns[i]) == 0)
            return 1;
    return 0;
}

static int required_index(const char *name)
{
    for (int i = 0; i < N_REQUIRED; i++)
        if (strcmp(name, required_columns[i]) == 0)
            return i;
    return -1;
}

static int is_missing_token(const char *f)
{
    return f[0] == 0 || strcmp(f, "NaN") == 0 || strcmp(f, "nan") == 0 ||
           strcmp(f, "NA") == 0 || strcmp(f, "N/A") == 0;
}

/* Strict decimal -> float: the whole field must be a number strtod accepts,
 * with no surrounding spaces. Returns 0, or one of the reasons below. */
enum { NUM_OK = 0, NUM_NOT_A_NUMBER = -1, NUM_NOT_FINITE = -2, NUM_BEYOND_FLOAT = -3 };

static int parse_float(const char *f, float *out)
{
    if (f[0] == 0 || isspace((unsigned char)f[0]))
        return NUM_NOT_A_NUMBER;
    char *end;
    double d = strtod(f, &end);
    if (*end != 0)
        return NUM_NOT_A_NUMBER;
    if (!isfinite(d))
        return NUM_NOT_FINITE;
    float x = (float)d;
    if (!isfinite(x))
        return NUM_BEYOND_FLOAT;
    *out = x;
    return NUM_OK;
}

static const char *number_problem(int why)
{
    switch (why) {
    case NUM_NOT_FINITE:   return "is not a finite number";
    case NUM_BEYOND_FLOAT: return "is beyond the range of a float";
    default:               return "is not a number";
    }
}

/* Column roles decided by the header. */
typedef struct column_map {
    int n_cols;
    int req[N_REQUIRED];    /* column of each required field */
    int *gene_col;          /* [n_genes] */
    int *annot_col;         /* [n_annot] */
} column_map;

typedef struct name_ref {
    const char *name;
    int col;
} name_ref;

static int cmp_name_ref(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->col > y->col) - (x->col < y->col);
}

/* Find duplicate column names in O(n log n) (gene lists run to ~20,000). */
static int check_duplicates(char **fields, int n, const char *path, long line, gi_err *err)
{
    name_ref *refs = malloc((size_t)n * sizeof *refs);
    if (!refs)
        return gi_fail(err, "%s:%ld: out of memory", path, line);
    for (int i = 0; i < n; i++)
        refs[i] = (name_ref){fields[i], i};
    qsort(refs, (size_t)n, sizeof *refs, cmp_name_ref);
    for (int i = 1; i < n; i++) {
        if (strcmp(refs[i - 1].name, refs[i].name) == 0) {
            const char *name = refs[i].name;
            int a = refs[i - 1].col + 1, b = refs[i].col + 1;
            int gene = required_index(name) < 0 && !is_annotation(name);
            free(refs);
            return gi_fail(err, "%s:%ld: duplicate %s '%s' (columns %d and %d)", path, line,
                           gene ? "gene" : "column", name, a, b);
        }
    }
    free(refs);
    return 0;
}

/* pandas writes an unnamed index level as an empty header field; a table that
 * was read and saved again by pandas names it "Unnamed: N". */
static int is_index_name(const char *name)
{
    if (name[0] == 0)
        return 1;
    if (strncmp(name, "Unnamed: ", 9) != 0 || !name[9])
        return 0;
    for (const char *p = name + 9; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    return 1;
}

static const char *annotation_list_text(void)
{
    static const char text[] = "structure_id, structure_acronym, structure_name, structure, "
        "class, hemisphere, tissue, slab_num, slab_type, sample_id, polygon_id, mri_voxel_x, "
        "mri_voxel_y, mri_voxel_z, label";
    return text;
}

/* The name rules of names.h, before any work: a bad name would otherwise
 * fail only when its map is written, after training. */
static int check_gene_names(const gi_samples *s, const column_map *m, const char *path, long line, gi_err *err)
{
    char why[160], q[72], where[4200];
    for (int g = 0; g < s->n_genes; g++)
        if (gi_name_check(s->gene_names[g], why, sizeof why) != 0) {
            gi_name_quote(s->gene_names[g], q, sizeof q);
            return gi_fail(err, "%s:%ld: column %d: gene name '%s' %s; gene names must be UTF-8 without control "
                           "characters, at most %d bytes", path, line, m->gene_col[g] + 1, q, why, GI_GENE_NAME_MAX);
        }
    int *cols = malloc(sizeof(int) * (size_t)s->n_genes);
    if (!cols)
        return gi_fail(err, "%s:%ld: out of memory", path, line);
    for (int g = 0; g < s->n_genes; g++)
        cols[g] = m->gene_col[g] + 1;
    snprintf(where, sizeof where, "%s:%ld", path, line);
    int rc = gi_names_check_files((const char *const *)s->gene_names, s->n_genes, where, cols, err);
    free(cols);
    return rc;
}

static int read_header(gi_samples *s, column_map *m, const gi_table *t, const char *path,
                       const gi_genelist *genes, gi_err *err)
{
    char **f = t->f;
    int nf = t->n_cols;
    long line = t->line;
    m->n_cols = nf;
    /* Leading unnamed columns are pandas index levels; any other unnamed
     * column is a mistake. */
    int n_index = 0;
    while (n_index < nf && is_index_name(f[n_index]))
        n_index++;
    for (int i = n_index; i < nf; i++)
        if (f[i][0] == 0)
            return gi_fail(err, "%s:%ld: column %d has an empty name", path, line, i + 1);
    if (check_duplicates(f + n_index, nf - n_index, path, line, err))
        return -1;
    for (int k = 0; k < N_REQUIRED; k++)
        m->req[k] = -1;
    m->gene_col = malloc((size_t)nf * sizeof *m->gene_col);
    m->annot_col = malloc((size_t)nf * sizeof *m->annot_col);
    s->gene_names = calloc((size_t)nf, sizeof *s->gene_names);
    s->annot_names = calloc((size_t)nf, sizeof *s->annot_names);
    if (!m->gene_col || !m->annot_col || !s->gene_names || !s->annot_names)
        return gi_fail(err, "%s:%ld: out of memory", path, line);
    /* Roles by name first: required columns, then abagen's x, y, z for
     * coordinates when mni_x, mni_y, mni_z are absent. */
    for (int i = n_index; i < nf; i++) {
        int k = required_index(f[i]);
        if (k >= 0)
            m->req[k] = i;
    }
    int use_alias = m->req[COL_X] < 0 && m->req[COL_Y] < 0 && m->req[COL_Z] < 0;
    if (use_alias)
        for (int i = n_index; i < nf; i++)
            for (int k = 0; k < 3; k++)
                if (strcmp(f[i], coord_aliases[k]) == 0)
                    m->req[COL_X + k] = i;
    /* Index levels fill what is still missing: with two of them (pandas'
     * concat of a dict of per-donor tables), donor then well_id; with one,
     * well_id. Otherwise they are row numbers and ignored. */
    if (n_index >= 2 && m->req[COL_DONOR] < 0 && m->req[COL_WELL] < 0) {
        m->req[COL_DONOR] = n_index - 2;
        m->req[COL_WELL] = n_index - 1;
    } else if (n_index >= 1 && m->req[COL_WELL] < 0) {
        m->req[COL_WELL] = n_index - 1;
    } else if (n_index >= 1 && m->req[COL_DONOR] < 0) {
        m->req[COL_DONOR] = n_index - 1;
    }
    for (int i = n_index; i < nf; i++) {
        int role = 0;
        for (int k = 0; k < N_REQUIRED; k++)
            role |= m->req[k] == i;
        if (role)
            continue;
        if (!use_alias && (strcmp(f[i], "x") == 0 || strcmp(f[i], "y") == 0 ||
                           strcmp(f[i], "z") == 0))
            continue;   /* abagen's copy of the coordinates beside mni_x, mni_y, mni_z */
        if (is_annotation(f[i])) {
            if (!(s->annot_names[s->n_annot] = strdup(f[i])))
                return gi_fail(err, "%s:%ld: out of memory", path, line);
            m->annot_col[s->n_annot++] = i;
        } else if (!genes) {
            if (!(s->gene_names[s->n_genes] = strdup(f[i])))
                return gi_fail(err, "%s:%ld: out of memory", path, line);
            m->gene_col[s->n_genes++] = i;
        }
    }
    for (int k = 0; k < N_REQUIRED; k++)
        if (m->req[k] < 0)
            return gi_fail(err, "%s:%ld: missing required column '%s' (the header needs "
                           "well_id, donor and the MNI coordinates mni_x, mni_y, mni_z or "
                           "x, y, z)", path, line, required_columns[k]);
    if (genes) {
        /* data.genes: exactly the listed columns are genes, in list order. */
        for (int g = 0; g < genes->n; g++) {
            const char *name = genes->names[g];
            int col = -1;
            for (int i = n_index; i < nf && col < 0; i++)
                if (strcmp(f[i], name) == 0)
                    col = i;
            if (col < 0)
                return gi_fail(err, "%s:%ld: gene '%s' of data.genes (%s:%ld) is not a column "
                               "of the table", path, line, name, genes->path, genes->lines[g]);
            for (int k = 0; k < N_REQUIRED; k++)
                if (m->req[k] == col)
                    return gi_fail(err, "%s:%ld: '%s' of data.genes (%s:%ld) is the %s column, "
                                   "not a gene", path, line, name, genes->path,
                                   genes->lines[g], required_columns[k]);
            if (is_annotation(name))
                return gi_fail(err, "%s:%ld: '%s' of data.genes (%s:%ld) is an annotation "
                               "column name, not a gene", path, line, name, genes->path,
                               genes->lines[g]);
            if (!(s->gene_names[s->n_genes] = strdup(name)))
                return gi_fail(err, "%s:%ld: out of memory", path, line);
            m->gene_col[s->n_genes++] = col;
        }
    }
    if (s->n_genes == 0)
        return gi_fail(err, "%s:%ld: no gene columns (every column is well_id, donor, "
                       "a coordinate or an annotation)", path, line);
    return check_gene_names(s, m, path, line, err);
}

/* Donor index by name, adding it if new. -1 on out of memory. */
static int donor_lookup_add(gi_samples *s, size_t *cap, const char *name)
{
    int d = gi_samples_donor_index(s, name);
    if (d >= 0)
        return d;
    if (GI_GROW(s->donor_names, *cap, (size_t)s->n_donors + 1))
        return -1;
    if (!(s->donor_names[s->n_donors] = strdup(name)))
        return -1;
    return s->n_donors++;
}

static int read_rows(gi_samples *s, const column_map *m, gi_table *t, const char *path,
                     gi_err *err)
{
    size_t cap_donors = 0, cap_well = 0, cap_donor = 0, cap_mni = 0, cap_val = 0, cap_annot = 0;
    const size_t G = (size_t)s->n_genes, A = (size_t)s->n_annot;
    int rc;
    while ((rc = gi_table_next(t, err)) == 1) {
        char **f = t->f;
        long line = t->line;
        if (s->n == INT_MAX)
            return gi_fail(err, "%s:%ld: too many samples", path, line);
        const int i = s->n;
        const size_t rows = (size_t)i + 1;
        /* Grow every per-row array to i + 1 rows; caps are in elements. */
        if (GI_GROW(s->well_ids, cap_well, rows) || GI_GROW(s->donor, cap_donor, rows) ||
            GI_GROW(s->mni, cap_mni, 3 * rows) || GI_GROW(s->values, cap_val, G * rows) ||
            (A > 0 && GI_GROW(s->annot, cap_annot, A * rows)))
            return gi_fail(err, "%s:%ld: out of memory after %d samples", path, line, i);
        /* Claim the slot before copying any string into it (see top). */
        s->well_ids[i] = NULL;
        for (size_t a = 0; a < A; a++)
            s->annot[(size_t)i * A + a] = NULL;
        s->n = i + 1;

        if (!(s->well_ids[i] = strdup(f[m->req[COL_WELL]])))
            return gi_fail(err, "%s:%ld: out of memory", path, line);
        const char *dname = f[m->req[COL_DONOR]];
        if (dname[0] == 0)
            return gi_fail(err, "%s:%ld: column 'donor': empty donor name", path, line);
        char why[160], q[72];
        if (gi_name_check(dname, why, sizeof why) != 0) {   /* names.h: it enters reports and HDF5 */
            gi_name_quote(dname, q, sizeof q);
            return gi_fail(err, "%s:%ld: column 'donor': donor name '%s' %s", path, line, q, why);
        }
        /* "average" is what render.donor names the donor-average map: a donor
         * of that name could never be rendered on its own, so it is refused. */
        if (strcmp(dname, "average") == 0)
            return gi_fail(err, "%s:%ld: column 'donor': the name 'average' is reserved (render.donor: average "
                           "means the donor-average map); rename the donor", path, line);
        /* AHBA donors given by number (abagen's keys) are named as the Allen
         * Institute names them, so 9861 and H0351.2001 are the same donor. */
        const char *canon = gi_ahba_donor_name(dname);
        int d = donor_lookup_add(s, &cap_donors, canon ? canon : dname);
        if (d < 0)
            return gi_fail(err, "%s:%ld: out of memory", path, line);
        s->donor[i] = d;
        for (int k = 0; k < 3; k++) {
            const char *col = required_columns[COL_X + k];
            const char *v = f[m->req[COL_X + k]];
            if (v[0] == 0)
                return gi_fail(err, "%s:%ld: column '%s': empty coordinate (MNI coordinates "
                               "are required)", path, line, col);
            int why = parse_float(v, &s->mni[3 * (size_t)i + k]);
            if (why)
                return gi_fail(err, "%s:%ld: column '%s': '%s' %s", path, line, col, v,
                               number_problem(why));
            /* A brain fits in +-100 mm of MNI space; anything beyond a generous
             * box is a unit or column mistake (micrometres, voxel indices,
             * a swapped column), which would otherwise train silently. */
            if (fabsf(s->mni[3 * (size_t)i + k]) > GI_SAMPLES_MNI_LIMIT)
                return gi_fail(err, "%s:%ld: column '%s': %s mm is outside the MNI box of +-%g mm "
                               "(coordinates must be MNI millimetres)", path, line, col, v,
                               (double)GI_SAMPLES_MNI_LIMIT);
        }
        float *row = s->values + (size_t)i * G;
        for (size_t g = 0; g < G; g++) {
            const char *v = f[m->gene_col[g]];
            if (is_missing_token(v)) {
                row[g] = NAN;
            } else {
                int why = parse_float(v, &row[g]);
                if (why == NUM_NOT_A_NUMBER)
                    return gi_fail(err, "%s:%ld: column '%s': '%s' is not a number, but the "
                                   "column is read as a gene. If '%s' is not a gene, list the "
                                   "gene columns in data.genes (a file, one symbol a line; "
                                   "other columns are then ignored) or rename it to one of "
                                   "the annotation columns (%s)", path, line,
                                   s->gene_names[g], v, s->gene_names[g],
                                   annotation_list_text());
                if (why)
                    return gi_fail(err, "%s:%ld: column '%s': '%s' %s", path, line,
                                   s->gene_names[g], v, number_problem(why));
            }
        }
        for (size_t a = 0; a < A; a++)
            if (!(s->annot[(size_t)i * A + a] = strdup(f[m->annot_col[a]])))
                return gi_fail(err, "%s:%ld: out of memory", path, line);
    }
    if (rc < 0)
        return -1;
    if (s->n == 0)
        return gi_fail(err, "%s: no samples (the file has a header row only)", path);
    return 0;
}

int gi_samples_read_csv(gi_samples *s, const char *path, gi_err *err)
{
    return gi_samples_read_csv_genes(s, path, NULL, err);
}

/* Open the table and read its header (with data.genes' selection when
 * genes_path is set); on success t is open, positioned at the first row. */
static int open_with_header(gi_samples *s, column_map *m, gi_table *t, const char *path, const char *genes_path,
                            gi_err *err)
{
    gi_genelist genes = {0};
    if (genes_path && genes_path[0] && gi_genelist_read(&genes, genes_path, err) != 0)
        return gi_fail_prefix(err, "data.genes: ");
    if (gi_table_open(t, path, err) != 0) {
        gi_genelist_free(&genes);
        return -1;
    }
    int rc = read_header(s, m, t, path, genes.n ? &genes : NULL, err);
    gi_genelist_free(&genes);
    if (rc != 0)
        gi_table_close(t);
    return rc;
}

int gi_samples_read_csv_genes(gi_samples *s, const char *path, const char *genes_path,
                              gi_err *err)
{
    memset(s, 0, sizeof *s);
    column_map m = {0};
    gi_table t;
    int rc = open_with_header(s, &m, &t, path, genes_path, err);
    if (rc == 0) {
        rc = read_rows(s, &m, &t, path, err);
        gi_table_close(&t);
    }
    free(m.gene_col);
    free(m.annot_col);
    if (rc)
        gi_samples_free(s);
    return rc;
}

int gi_samples_read_gene_names(const char *path, const char *genes_path, char ***names, int *n, gi_err *err)
{
    *names = NULL;
    *n = 0;
    gi_samples s;
    memset(&s, 0, sizeof s);
    column_map m = {0};
    gi_table t;
    int rc = open_with_header(&s, &m, &t, path, genes_path, err);
    if (rc == 0)
        gi_table_close(&t);
    free(m.gene_col);
    free(m.annot_col);
    if (rc == 0) {
        *names = s.gene_names;   /* handed over */
        *n = s.n_genes;
        s.gene_names = NULL;
        s.n_genes = 0;
    }
    gi_samples_free(&s);
    return rc;
}

/* ---- writing ---------------------------------------------------------------- */

/* Output through stdio or zlib, assembled one line at a time in buf. The
 * first failure is remembered (as text) and every later call does nothing. */
typedef struct writer {
    FILE *fp;
    gzFile gz;
    char *buf;
    size_t len, cap;
    char why[256];          /* first failure, "" while all is well */
    int decimals;           /* gene values: -1 = %.9g, else fixed decimals */
} writer;

static void w_fail(writer *w, const char *why)
{
    if (!w->why[0])
        snprintf(w->why, sizeof w->why, "%s", why);
}

static void w_raw(writer *w, const char *s, size_t n)
{
    if (w->why[0])
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        char *p = realloc(w->buf, cap);
        if (!p) {
            w_fail(w, "out of memory");
            return;
        }
        w->buf = p;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

/* A text field, quoted (RFC 4180) when it holds a comma, quote or line end, or
 * when it starts like a byte-order mark (which the reader would skip). */
static void w_text(writer *w, const char *s)
{
    if (!strpbrk(s, ",\"\r\n") && strncmp(s, "\xEF\xBB\xBF", 3) != 0) {
        w_raw(w, s, strlen(s));
        return;
    }
    w_raw(w, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            w_raw(w, "\"", 1);
        w_raw(w, p, 1);
    }
    w_raw(w, "\"", 1);
}

static void w_float(writer *w, float x)
{
    if (isnan(x))
        return;   /* not measured: empty field */
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%.9g", (double)x);
    w_raw(w, tmp, (size_t)n);
}

/* A gene value: %.9g (exact for a float), or with w->decimals fixed
 * decimals and trailing zeros dropped, formatted by hand because printf
 * dominates the time of tables with 70 million values. */
static void w_value(writer *w, float x)
{
    if (w->decimals < 0 || isnan(x) || !(fabsf(x) < 1e9f)) {
        w_float(w, x);
        return;
    }
    static const double P10[10] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    char tmp[40], *p = tmp;
    double v = x;
    if (v < 0)
        v = -v;
    uint64_t scaled = (uint64_t)llround(v * P10[w->decimals]);
    uint64_t ip = scaled / (uint64_t)P10[w->decimals], fp = scaled % (uint64_t)P10[w->decimals];
    if (x < 0 && scaled)
        *p++ = '-';
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    while (n)
        *p++ = digits[--n];
    if (fp) {
        int d = w->decimals;
        while (fp % 10 == 0)
            fp /= 10, d--;
        *p++ = '.';
        for (int k = d - 1; k >= 0; k--) {
            p[k] = (char)('0' + fp % 10);
            fp /= 10;
        }
        p += d;
    }
    w_raw(w, tmp, (size_t)(p - tmp));
}

/* Send the assembled line to the file. */
static void w_flush_line(writer *w)
{
    if (w->why[0])
        return;
    if (w->gz) {
        /* gzwrite takes an unsigned length: write in chunks of at most 1 GiB. */
        for (size_t off = 0; off < w->len;) {
            size_t n = w->len - off < (1u << 30) ? w->len - off : (1u << 30);
            if (gzwrite(w->gz, w->buf + off, (unsigned)n) != (int)n) {
                int zerr;
                const char *msg = gzerror(w->gz, &zerr);
                w_fail(w, zerr == Z_ERRNO ? strerror(errno) : msg);
                break;
            }
            off += n;
        }
    } else if (fwrite(w->buf, 1, w->len, w->fp) != w->len) {
        w_fail(w, strerror(errno));
    }
    w->len = 0;
}


/* Refuse tables that would not read back as the same table. */
static int check_writable(const gi_samples *s, const char *path, gi_err *err)
{
    if (s->n <= 0 || s->n_genes <= 0)
        return gi_fail(err, "writing %s: the table has %d samples and %d genes; both must be "
                       "positive", path, s->n, s->n_genes);
    for (int a = 0; a < s->n_annot; a++)
        if (!is_annotation(s->annot_names[a]))
            return gi_fail(err, "writing %s: annotation column '%s' is not a known annotation "
                           "name and would read back as a gene", path, s->annot_names[a]);
    for (int g = 0; g < s->n_genes; g++)
        if (s->gene_names[g][0] == 0 || is_annotation(s->gene_names[g]) ||
            required_index(s->gene_names[g]) >= 0)
            return gi_fail(err, "writing %s: gene name '%s' is empty or reserved for a "
                           "non-gene column", path, s->gene_names[g]);
    for (int i = 0; i < s->n; i++) {
        if (s->donor[i] < 0 || s->donor[i] >= s->n_donors)
            return gi_fail(err, "writing %s: sample %d has donor index %d, outside 0..%d",
                           path, i, s->donor[i], s->n_donors - 1);
        for (int k = 0; k < 3; k++)
            if (!isfinite(s->mni[3 * (size_t)i + k]))
                return gi_fail(err, "writing %s: sample '%s' has a non-finite %s", path,
                               s->well_ids[i], required_columns[COL_X + k]);
        for (int g = 0; g < s->n_genes; g++)
            if (isinf(s->values[(size_t)i * s->n_genes + g]))
                return gi_fail(err, "writing %s: sample '%s' gene '%s' is infinite", path,
                               s->well_ids[i], s->gene_names[g]);
    }
    return 0;
}

int gi_samples_write_csv(const gi_samples *s, const char *path, gi_err *err)
{
    return gi_samples_write_csv_decimals(s, path, -1, err);
}

int gi_samples_write_csv_decimals(const gi_samples *s, const char *path, int decimals, gi_err *err)
{
    if (check_writable(s, path, err))
        return -1;
    writer w = {0};
    w.decimals = decimals > 9 ? 9 : decimals;
    errno = 0;
    if (gi_ends_with(path, ".gz"))
        w.gz = gzopen(path, "wb");
    else
        w.fp = fopen(path, "w");
    if (!w.gz && !w.fp)
        return gi_fail(err, "cannot create %s: %s", path,
                       errno ? strerror(errno) : "out of memory");

    for (int k = 0; k < N_REQUIRED; k++) {
        if (k)
            w_raw(&w, ",", 1);
        w_text(&w, required_columns[k]);
    }
    for (int a = 0; a < s->n_annot; a++) {
        w_raw(&w, ",", 1);
        w_text(&w, s->annot_names[a]);
    }
    for (int g = 0; g < s->n_genes; g++) {
        w_raw(&w, ",", 1);
        w_text(&w, s->gene_names[g]);
    }
    w_raw(&w, "\n", 1);
    w_flush_line(&w);

    for (int i = 0; i < s->n && !w.why[0]; i++) {
        w_text(&w, s->well_ids[i]);
        w_raw(&w, ",", 1);
        w_text(&w, s->donor_names[s->donor[i]]);
        for (int k = 0; k < 3; k++) {
            w_raw(&w, ",", 1);
            w_float(&w, s->mni[3 * (size_t)i + k]);
        }
        for (int a = 0; a < s->n_annot; a++) {
            w_raw(&w, ",", 1);
            w_text(&w, s->annot[(size_t)i * s->n_annot + a]);
        }
        const float *row = s->values + (size_t)i * s->n_genes;
        for (int g = 0; g < s->n_genes; g++) {
            w_raw(&w, ",", 1);
            w_value(&w, row[g]);
        }
        w_raw(&w, "\n", 1);
        w_flush_line(&w);
    }
    /* Closing flushes buffered data, so a full disk may only show up here. */
    errno = 0;
    if (w.gz) {
        int zrc = gzclose(w.gz);
        if (zrc != Z_OK)
            w_fail(&w, zrc == Z_ERRNO && errno ? strerror(errno) : "gzip write error");
    } else if (fclose(w.fp) != 0) {
        w_fail(&w, errno ? strerror(errno) : "write error");
    }
    free(w.buf);
    if (w.why[0]) {
        gi_remove_partial(path);   /* do not leave a truncated table behind */
        return gi_fail(err, "writing %s: %s", path, w.why);
    }
    return 0;
}

/* ---- queries and cleanup ------------------------------------------------------- */

int gi_samples_donor_index(const gi_samples *s, const char *name)
{
    const char *canon = gi_ahba_donor_name(name);
    if (canon)
        name = canon;
    for (int d = 0; d < s->n_donors; d++)
        if (strcmp(s->donor_names[d], name) == 0)
            return d;
    return -1;
}

long gi_samples_n_measured(const gi_samples *s)
{
    long count = 0;
    size_t total = (size_t)s->n * (size_t)s->n_genes;
    for (size_t i = 0; i < total; i++)
        count += !isnan(s->values[i]);
    return count;
}

static void free_strings(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void gi_samples_free(gi_samples *s)
{
    if (!s)
        return;
    free_strings(s->well_ids, s->well_ids ? (size_t)s->n : 0);
    free_strings(s->donor_names, (size_t)s->n_donors);
    free_strings(s->gene_names, (size_t)s->n_genes);
    free_strings(s->annot_names, (size_t)s->n_annot);
    free_strings(s->annot, (size_t)s->n * (size_t)s->n_annot);
    free(s->donor);
    free(s->mni);
    free(s->values);
    memset(s, 0, sizeof *s);
}
