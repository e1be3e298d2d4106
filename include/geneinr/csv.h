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

#endif
