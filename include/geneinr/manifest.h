/* manifest.h - which files of a folder geneinr wrote: it removes or replaces
 * only those, never a user's file.
 *
 * DIR/.geneinr-manifest lists the outputs geneinr wrote into DIR, one line
 * each: "SIZE MTIME_NS FINGERPRINT NAME", NAME relative to DIR (e.g.
 * nifti/APOE.nii.gz). FINGERPRINT is a 64-bit FNV-1a hash of the file's size
 * and its first and last 4 KiB (for gzip and PNG files the tail holds the
 * CRC of the whole content). A pending entry ("- - - NAME") is claimed just
 * before its file is written and filled in after, so a job killed in between
 * still owns what it was writing. The file is replaced atomically (.tmp +
 * rename) and only rank 0 of a job holding the folder's lock writes it.
 *
 * A file at a listed name is geneinr's ("ours") when the entry is pending or
 * its size and mtime match, or (after a copy, cp -r or rsync without -t,
 * changes mtime) its size and fingerprint match. Every other file is the
 * user's: a file at an output name that is not listed, listed but changed
 * since geneinr wrote it, or not a regular file (a symlink, a folder).
 * geneinr removes only files that are ours, and refuses, before any work,
 * to write an output over a file that is not.
 *
 * A folder without a manifest (made before geneinr kept one, or by hand)
 * owns nothing: output-named files in it are refused with how to proceed
 * (move them away, or use another --out), because nothing shows whether
 * geneinr or the user made them, and guessing wrong loses a user's data.
 */
#ifndef GENEINR_MANIFEST_H
#define GENEINR_MANIFEST_H

#include <stddef.h>

#include "geneinr/error.h"

#define GI_MANIFEST_NAME ".geneinr-manifest"

typedef struct gi_manifest_entry {
    char *name;                 /* relative to the folder */
    long long size, mtime_ns;   /* -1 while pending */
    unsigned long long fp;      /* fingerprint (see above) */
    int pending;
} gi_manifest_entry;

typedef struct gi_manifest {
    char dir[4096];
    int n, cap;
    gi_manifest_entry *e;       /* sorted by name */
    int found;                  /* DIR/.geneinr-manifest existed when loaded */
} gi_manifest;

/* What a name holds. */
enum gi_manifest_owner {
    GI_OWN_ABSENT,              /* no file there */
    GI_OWN_OURS,                /* a file geneinr wrote, unchanged (or being written) */
    GI_OWN_CHANGED,             /* listed, but changed since geneinr wrote it: the user's now */
    GI_OWN_FOREIGN,             /* not listed, or not a regular file: the user's */
};

/* Read DIR/.geneinr-manifest (missing: empty, found = 0). */
int gi_manifest_load(gi_manifest *m, const char *dir, gi_err *err);
void gi_manifest_free(gi_manifest *m);

/* Write it atomically (an empty one too, so a folder geneinr used is marked). */
int gi_manifest_save(const gi_manifest *m, gi_err *err);

/* Who owns DIR/name now (enum gi_manifest_owner). */
int gi_manifest_owner(const gi_manifest *m, const char *name);

/* Every name absent or ours; else -1 naming the first file that is not,
 * how many are not, and how to proceed. what: the command ("render"). */
int gi_manifest_check_free(const gi_manifest *m, const char *const *names, int n, const char *what, gi_err *err);

/* check_free, then mark the names pending and save. */
int gi_manifest_claim(gi_manifest *m, const char *const *names, int n, const char *what, gi_err *err);

/* After writing: record each name's identity (names with no file are
 * dropped) and save. */
int gi_manifest_commit(gi_manifest *m, const char *const *names, int n, gi_err *err);

/* Remove the files of listed entries for which select(name, ctx) is true and
 * that are ours; entries of removed or vanished files are dropped, changed
 * ones are left alone and dropped from the list (the user's now). Saves when the list changed.
 * Returns the count removed (-1 with err when one could not be removed);
 * *kept (may be NULL) counts files left alone, kept_example (may be NULL)
 * names the first. */
int gi_manifest_remove(gi_manifest *m, int (*select)(const char *name, void *ctx), void *ctx, int *kept,
                       char *kept_example, size_t example_size, gi_err *err);

/* The same, each as one load / operation / save of dir's manifest (rank 0). */
int gi_manifest_claim_in(const char *dir, const char *const *names, int n, const char *what, gi_err *err);
int gi_manifest_commit_in(const char *dir, const char *const *names, int n, gi_err *err);
int gi_manifest_check_free_in(const char *dir, const char *const *names, int n, const char *what, gi_err *err);
/* Remove the listed files whose names start with prefix and end with suffix
 * (NULL: any) that are ours; returns the count removed or -1. */
int gi_manifest_remove_in(const char *dir, const char *prefix, const char *suffix, int *kept, gi_err *err);

/* Fingerprint of a file (see above); 0 when it cannot be read. */
unsigned long long gi_manifest_fingerprint(const char *path, long long size);

#endif
