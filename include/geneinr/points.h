/* points.h - a table of MNI points in, the map's values at them out (`geneinr predict`).
 *
 * In: a CSV (plain or gzip, read by the one table reader, csv.h) with columns
 * x, y, z in MNI millimetres (or mni_x, mni_y, mni_z, as a sample table has
 * them, when x, y, z are absent) and any other columns, which are carried
 * through as text, unchanged, in their order. Every coordinate must be a
 * finite decimal number within GI_SAMPLES_MNI_LIMIT mm of the origin (the
 * sample table's rule: further out they are not MNI millimetres); column
 * names must differ; a table without rows is refused. Errors name PATH:LINE
 * and the column.
 *
 * Out: the table's columns, then the caller's columns (in_mask, one per
 * gene), one row per point in the input's order, written to PATH.tmp and
 * renamed to PATH when complete, so a file at PATH is never half-written.
 * Text fields are quoted as RFC 4180 asks (csv.h); values are written with
 * %.9g, which gives back the same float when read.
 */
#ifndef GENEINR_POINTS_H
#define GENEINR_POINTS_H

#include <stdio.h>

#include "geneinr/error.h"

typedef struct gi_points {
    long n;                  /* rows (points) */
    int n_cols;              /* columns of the table, every one carried through */
    char **cols;             /* [n_cols] the header */
    char **cells;            /* [n][n_cols] the fields as read (text) */
    double *mm;              /* [n][3] x, y, z in MNI mm */
    int xyz[3];              /* the columns of x, y, z */
    const char *path;        /* borrowed, for messages */
} gi_points;

/* Read a point table as above. 0 or -1 (message in err). */
int gi_points_read(gi_points *p, const char *path, gi_err *err);

/* -1 naming PATH:1 and the column when a column of the table has one of the
 * n names the output adds after it (what: whose names, e.g. "a gene of the
 * checkpoint"), since the output's header would then hold it twice. */
int gi_points_check_free(const gi_points *p, const char *const *names, int n, const char *what, gi_err *err);

void gi_points_free(gi_points *p);

/* The output table, written through PATH.tmp. */
typedef struct gi_points_out {
    FILE *f;
    char path[4096], tmp[4112];
} gi_points_out;

/* Opens PATH.tmp and writes the header: the point table's columns, then the
 * n_extra names. 0 or -1. */
int gi_points_out_open(gi_points_out *o, const char *path, const gi_points *p, const char *const *extra, int n_extra,
                       gi_err *err);

/* Row `row` of p: its fields, then in_mask (0 or 1), then n values (%.9g; an
 * empty field for NaN). */
void gi_points_out_row(gi_points_out *o, const gi_points *p, long row, int in_mask, const float *values, int n);

/* Closes PATH.tmp and renames it to PATH. 0 or -1 (PATH.tmp removed). */
int gi_points_out_commit(gi_points_out *o, gi_err *err);

/* Closes and removes PATH.tmp (after a failure); a no-op when not open. */
void gi_points_out_abort(gi_points_out *o);

#endif
