/* error.h - how library code reports failure.
 *
 * Library functions never print or exit: they return -1 (or NULL) and fill a
 * gi_err with one complete, human-readable sentence that names the file, key
 * or line at fault. The command layer (cli.c) decides what to do with it.
 */
#ifndef GENEINR_ERROR_H
#define GENEINR_ERROR_H

#include <stdarg.h>

typedef struct gi_err {
    char msg[2048];
} gi_err;

/* Format a message into err (if err is not NULL) and return -1, so that
 * `return gi_fail(err, "...")` reads naturally. */
int gi_fail(gi_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix an existing message with more context ("reading X: <old msg>"). */
int gi_fail_prefix(gi_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
