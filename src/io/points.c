/* points.c - the point table of `geneinr predict` and the value table it
 * writes (see points.h).
 *
 * The whole table is kept in memory as text (one block per row), because
 * every field is written back unchanged beside the values; a table of
 * points (electrodes, ROI centroids, sample sites) is small next to a map.
 */
#include "geneinr/points.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/csv.h"
#include "geneinr/files.h"
#include "geneinr/samples.h" /* GI_SAMPLES_MNI_LIMIT: the one MNI box */

static const char *const XYZ[3] = {"x", "y", "z"};
static const char *const MNI_XYZ[3] = {"mni_x", "mni_y", "mni_z"};

static int find_col(const gi_points *p, const char *name)
{
    for (int i = 0; i < p->n_cols; i++)
        if (strcmp(p->cols[i], name) == 0)
            return i;
    return -1;
}

/* The header: its names kept, no name twice (the output would hold it twice
 * and a reader could not tell the columns apart), x, y, z found. */
static int read_header(gi_points *p, const gi_table *t, gi_err *err)
{
    p->n_cols = t->n_cols;
    p->cols = calloc((size_t)t->n_cols, sizeof *p->cols);
    if (!p->cols)
        return gi_fail(err, "out of memory");
    for (int i = 0; i < t->n_cols; i++) {
        if (!(p->cols[i] = strdup(t->f[i])))
            return gi_fail(err, "out of memory");
        for (int j = 0; j < i; j++)
            if (strcmp(p->cols[j], p->cols[i]) == 0)
                return gi_fail(err, "%s:%ld: column '%s' appears twice (columns %d and %d); every column is "
                               "written back beside the values, so names must differ", p->path, t->line, p->cols[i],
                               j + 1, i + 1);
    }
    int have_xyz = 1, have_mni = 1;
    for (int k = 0; k < 3; k++) {
        have_xyz &= find_col(p, XYZ[k]) >= 0;
        have_mni &= find_col(p, MNI_XYZ[k]) >= 0;
    }
    if (!have_xyz && !have_mni) {
        for (int k = 0; k < 3; k++)
            if (find_col(p, XYZ[k]) < 0)
                return gi_fail(err, "%s:%ld: missing column '%s' (the points need columns x, y, z in MNI "
                               "millimetres)", p->path, t->line, XYZ[k]);
    }
    for (int k = 0; k < 3; k++)
        p->xyz[k] = find_col(p, have_xyz ? XYZ[k] : MNI_XYZ[k]);
    return 0;
}

/* Strict decimal: the whole field a number strtod reads, no spaces around. */
static int parse_mm(const char *f, double *out)
{
    if (f[0] == 0 || isspace((unsigned char)f[0]))
        return -1;
    char *end;
    *out = strtod(f, &end);
    return *end == 0 ? 0 : -1;
}

/* Row i: its coordinates checked, then its fields kept (one block per row,
 * its first cell pointing at the block). */
static int read_row(gi_points *p, const gi_table *t, long i, gi_err *err)
{
    for (int k = 0; k < 3; k++) {
        const char *v = t->f[p->xyz[k]], *col = p->cols[p->xyz[k]];
        double *d = &p->mm[3 * (size_t)i + k];
        if (v[0] == 0)
            return gi_fail(err, "%s:%ld: column '%s': empty coordinate (every point needs x, y, z)", p->path, t->line,
                           col);
        if (parse_mm(v, d) != 0)
            return gi_fail(err, "%s:%ld: column '%s': '%s' is not a number", p->path, t->line, col, v);
        if (!isfinite(*d))
            return gi_fail(err, "%s:%ld: column '%s': '%s' is not a finite number", p->path, t->line, col, v);
        /* The sample table's box: beyond it a coordinate is a unit or column
         * mistake (voxel indices, micrometres), not a point of the brain. */
        if (fabs(*d) > GI_SAMPLES_MNI_LIMIT)
            return gi_fail(err, "%s:%ld: column '%s': %s mm is outside the MNI box of +-%g mm (coordinates must be "
                           "MNI millimetres)", p->path, t->line, col, v, (double)GI_SAMPLES_MNI_LIMIT);
    }
    size_t len = 0;
    for (int c = 0; c < t->n_cols; c++)
        len += strlen(t->f[c]) + 1;
    char *block = malloc(len);
    if (!block)
        return gi_fail(err, "%s:%ld: out of memory", p->path, t->line);
    char **cells = p->cells + (size_t)i * p->n_cols;
    size_t at = 0;
    for (int c = 0; c < t->n_cols; c++) {
        size_t n = strlen(t->f[c]) + 1;
        memcpy(block + at, t->f[c], n);
        cells[c] = block + at;
        at += n;
    }
    return 0;
}

/* Room for at least n + 1 rows. */
static int grow(gi_points *p, long *cap, gi_err *err)
{
    if (p->n < *cap)
        return 0;
    long c = *cap ? 2 * *cap : 1024;
    char **cells = realloc(p->cells, sizeof(char *) * (size_t)c * (size_t)p->n_cols);
    if (cells)
        p->cells = cells;
    double *mm = realloc(p->mm, sizeof(double) * 3 * (size_t)c);
    if (mm)
        p->mm = mm;
    if (!cells || !mm)
        return gi_fail(err, "%s: out of memory at %ld points", p->path, p->n);
    *cap = c;
    return 0;
}

int gi_points_read(gi_points *p, const char *path, gi_err *err)
{
    memset(p, 0, sizeof *p);
    p->path = path;
    gi_table t;
    if (gi_table_open(&t, path, err) != 0)
        return -1;
    int rc = read_header(p, &t, err);
    long cap = 0, header_line = t.line;
    while (rc == 0) {
        int r = gi_table_next(&t, err);
        if (r <= 0) {
            rc = r;
            break;
        }
        /* Rows are counted in a long, and sent to the ranks in int counts of 3 doubles. */
        if (p->n >= 100000000L) {
            rc = gi_fail(err, "%s:%ld: more than 100,000,000 points; split the table", path, t.line);
            break;
        }
        rc = grow(p, &cap, err);
        if (rc == 0)
            rc = read_row(p, &t, p->n, err);
        if (rc == 0)
            p->n++;
    }
    gi_table_close(&t);
    if (rc == 0 && p->n == 0)
        rc = gi_fail(err, "%s:%ld: the table has a header but no points", path, header_line);
    if (rc != 0)
        gi_points_free(p);
    return rc;
}

int gi_points_check_free(const gi_points *p, const char *const *names, int n, const char *what, gi_err *err)
{
    for (int i = 0; i < p->n_cols; i++)
        for (int k = 0; k < n; k++)
            if (strcmp(p->cols[i], names[k]) == 0)
                return gi_fail(err, "%s:1: column '%s' (column %d) has the name of %s, which the output adds as a "
                               "column of its own; rename the column", p->path, p->cols[i], i + 1, what);
    return 0;
}

void gi_points_free(gi_points *p)
{
    for (long i = 0; p->cells && i < p->n; i++)
        free(p->cells[(size_t)i * p->n_cols]);   /* each row's block starts at its first cell */
    free(p->cells);
    for (int i = 0; p->cols && i < p->n_cols; i++)
        free(p->cols[i]);
    free(p->cols);
    free(p->mm);
    memset(p, 0, sizeof *p);
}

/* ---------------------------------------------------------------- output */

int gi_points_out_open(gi_points_out *o, const char *path, const gi_points *p, const char *const *extra, int n_extra,
                       gi_err *err)
{
    memset(o, 0, sizeof *o);
    if (snprintf(o->path, sizeof o->path, "%s", path) >= (int)sizeof o->path)
        return gi_fail(err, "--out path too long: %s", path);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp", path);
    if (!(o->f = fopen(o->tmp, "w")))
        return gi_fail(err, "cannot create %s: %s", o->tmp, strerror(errno));
    for (int i = 0; i < p->n_cols; i++) {
        if (i)
            fputc(',', o->f);
        gi_csv_put_field(o->f, p->cols[i]);
    }
    for (int k = 0; k < n_extra; k++) {
        if (p->n_cols || k)
            fputc(',', o->f);
        gi_csv_put_field(o->f, extra[k]);
    }
    fputc('\n', o->f);
    return 0;
}

void gi_points_out_row(gi_points_out *o, const gi_points *p, long row, int in_mask, const float *values, int n)
{
    char *const *cells = p->cells + (size_t)row * p->n_cols;
    for (int i = 0; i < p->n_cols; i++) {
        gi_csv_put_field(o->f, cells[i]);
        fputc(',', o->f);
    }
    fputc(in_mask ? '1' : '0', o->f);
    for (int g = 0; g < n; g++) {
        if (isnan(values[g]))
            fputc(',', o->f);
        else
            fprintf(o->f, ",%.9g", (double)values[g]);
    }
    fputc('\n', o->f);
}

int gi_points_out_commit(gi_points_out *o, gi_err *err)
{
    int bad = ferror(o->f);
    bad |= fclose(o->f) != 0;
    o->f = NULL;
    if (bad) {
        gi_remove_partial(o->tmp);
        return gi_fail(err, "cannot write %s (disk full?)", o->tmp);
    }
    if (rename(o->tmp, o->path) != 0) {
        int e = errno;
        gi_remove_partial(o->tmp);
        return gi_fail(err, "cannot rename %s to %s: %s", o->tmp, o->path, strerror(e));
    }
    return 0;
}

void gi_points_out_abort(gi_points_out *o)
{
    if (!o->f)
        return;
    fclose(o->f);
    o->f = NULL;
    gi_remove_partial(o->tmp);
}
