/* csv.h - streaming RFC 4180 CSV reader (plain or gzip, via zlib).
 *
 * Records are read one at a time so memory does not grow with the file.
 * Quoted fields may hold commas, doubled quotes ("") and newlines; CRLF and LF
 * line ends are both accepted; a UTF-8 byte-order mark at the start is skipped.
 * Errors (unterminated quote, stray quote inside an unquoted field, read
 * failure) name path:line.
 */
#ifndef GENEINR_CSV_H
#define GENEINR_CSV_H

#include <stdio.h>

#include "geneinr/error.h"

typedef struct gi_csv gi_csv;

/* Open path (gzip-compressed or not). NULL on error. */
gi_csv *gi_csv_open(const char *path, gi_err *err);

/* Read the next record. On success returns 1 and points *fields at n_fields
 * NUL-terminated strings owned by the reader (valid until the next call);
 * returns 0 at end of file and -1 on error. Blank lines are skipped. */
int gi_csv_next(gi_csv *r, char ***fields, int *n_fields, gi_err *err);

/* 1-based line number where the record last returned starts. */
long gi_csv_line(const gi_csv *r);

const char *gi_csv_path(const gi_csv *r);

void gi_csv_close(gi_csv *r);

/* ---- the one table reader: a CSV with a header row, every row as wide as
 * the header. Every table of the project (sample tables, the AHBA donor
 * files, region lists, ...) is read through it, so the messages are the same
 * everywhere. */
typedef struct gi_table {
    gi_csv *csv;
    const char *path;
    int n_cols;              /* the header's width */
    char **f;                /* the header after gi_table_open, then the current row's fields */
    long line;               /* the line where that record starts */
} gi_table;

/* Opens path and reads its header row into t->f ("PATH: empty file (no header
 * row)" without one). 0 or -1. */
int gi_table_open(gi_table *t, const char *path, gi_err *err);

/* idx[k] = the header column named names[k] (the last of that name), for n
 * names; a missing one is "PATH:LINE: missing column 'NAME'". 0 or -1. Call
 * right after gi_table_open. */
int gi_table_columns(gi_table *t, const char *const *names, int n, int *idx, gi_err *err);

/* The next row into t->f: 1, 0 at the end of the file, -1 on error. A row of
 * another width than the header is an error: "PATH:LINE: row has N fields but
 * the header has M". */
int gi_table_next(gi_table *t, gi_err *err);

void gi_table_close(gi_table *t);

/* ---- writing: one field of a CSV row, quoted (RFC 4180, "" for a quote)
 * when it holds a comma, quote or line end, or starts like a UTF-8
 * byte-order mark (which the reader would skip), so the reader above gives
 * back exactly s. */
void gi_csv_put_field(FILE *f, const char *s);

#endif
