/* files.h - small file-name and file-system helpers shared by the writers. */
#ifndef GENEINR_FILES_H
#define GENEINR_FILES_H

/* Does s end with suffix? */
int gi_ends_with(const char *s, const char *suffix);

/* Remove a half-written output, but only a regular file (never, say, /dev/full). */
void gi_remove_partial(const char *path);

#include <stddef.h>

#include "geneinr/error.h"

/* The whole file at path, NUL-terminated (malloc'd; its length in *len when
 * len is not NULL), or NULL with err set: "PATH: cannot open: WHY", "PATH:
 * cannot read", "PATH: larger than MAX bytes" (max 0: no limit). The one
 * whole-file reader (reports, sweep files and trial stamps). */
char *gi_read_file(const char *path, size_t max, size_t *len, gi_err *err);

/* mkdir -p: create path and its missing parents; fails if path exists and is
 * not a folder. */
int gi_make_dirs(const char *path, gi_err *err);

/* The file name of a gene's outputs (<name>.nii.gz, <name>.png): symbols are
 * file-name safe in practice; '/', '\\', ' ', ':' and a leading '.' become '_'
 * (the same rule as render's OUT/nifti/ names). */
void gi_gene_file_name(const char *gene, char *out, size_t n);

#endif
