/* h5_seal.h - content hashes of every dataset of a geneinr HDF5 file.
 *
 * fletcher32 (the checkpoint's chunk filter) is blind to a chunk zeroed in
 * full (its checksum is 0 too) and to a dataset replaced by another with a
 * valid checksum (h5py writes one). A seal records, at write time, a hash of
 * each dataset's content, which the readers verify:
 *
 *   d(X)       = XXH3-128 of X's name, type (class, size, sign, fixed/variable
 *                string), shape and bytes (strings: each one's length + text),
 *                in the native byte order of the reader (little-endian here)
 *   content_id = XXH3-128 of "geneinr-seal-1", then every dataset's name and
 *                d(X) in name order: the file's identity (root attribute,
 *                32 hex digits). It is derived from the content instead of
 *                drawn at random, so equal states still give byte-identical
 *                files, yet no two different files share it
 *   X.xxh3_128 = XXH3-128 of content_id + d(X) (an attribute of X, hex)
 *
 * so a zeroed, replaced or rewritten dataset, and one copied from another
 * file (with its attribute: h5py copies attributes), no longer match. The
 * hashes live in attributes, which the HDF5 1.8 format's metadata checksums
 * cover. This is integrity, not authenticity: whoever rewrites the hashes
 * with this algorithm can forge a file (no key is involved).
 *
 * A large dataset read piece by piece (the atlas's /expression, one gene at a
 * time) is hashed by rows of its first dimension, and each row by slices of
 * its second (the atlas: one z-slice of one gene), so that the ranks that
 * write the slices hash them as they write and the seal never reads the
 * dataset back:
 *   slice(r, z) = XXH3-128(name, r, z, type, slice shape, bytes)
 *   row(r)      = XXH3-128(name, r, type, row shape, slice(r, 0..) in order)
 *   d(X)        = XXH3-128(name, type, shape, row(0..) in order)
 * The stored hash of row r, content_id + row(r), is kept in the dataset
 * NAME_xxh3_rows (uint64 [rows][2], itself sealed), so a reader verifies
 * exactly the rows it reads.
 *
 * XXH3-128 (libxxhash, Debian's libxxhash-dev): fast (GB/s, so a seal costs a
 * fraction of the write) and with 128 bits no accidental collision; zlib's
 * crc32 has 32 bits and is linear (a crafted change keeps it).
 */
#ifndef GENEINR_H5_SEAL_H
#define GENEINR_H5_SEAL_H

#include <stdint.h>

#include <hdf5.h>

#include "geneinr/error.h"

#define GI_SEAL_ID_ATTR "content_id"
#define GI_SEAL_HASH_ATTR "xxh3_128"
#define GI_SEAL_ROWS_SUFFIX "_xxh3_rows"

/* Slice digests that the writers of a dataset hashed by rows already have:
 * [n_rows][n_slices][2] (gi_h5_slice_digest); an all-zero entry is not known
 * (a slice nobody wrote, holding the fill value) and is read from the file. */
typedef struct gi_h5_slices {
    long n_rows, n_slices;
    const uint64_t *h;
} gi_h5_slices;

/* slice(row, slice) of dataset name (above): its memory type, shape sdims[ndims]
 * and bytes. */
void gi_h5_slice_digest(const char *name, long row, long slice, hid_t mtype, int ndims, const hsize_t *sdims,
                        const void *buf, size_t nbytes, uint64_t out[2]);

/* Seal every dataset in the root group of file (open read-write; the 1.8
 * format or later). rows_of: a dataset (at least 2-D) hashed by rows and
 * slices, or NULL; known: its slices' digests where the caller has them (may
 * be NULL: every slice is read). */
int gi_h5_seal(hid_t file, const char *where, const char *rows_of, const gi_h5_slices *known, gi_err *err);
/* The same with n_by_rows datasets hashed by rows (the atlas's /expression
 * and /uncertainty), each with its own table; known [n_by_rows] or NULL. */
int gi_h5_seal_rows(hid_t file, const char *where, int n_by_rows, const char *const *rows_of,
                    const gi_h5_slices *known, gi_err *err);

/* The outcome of a verification. */
typedef struct gi_h5_seal_check {
    int sealed;             /* 0: the file has no content_id (written before seals) */
    int n_checked;          /* datasets whose hash was recomputed and matched */
    char content_id[33];    /* hex, "" when not sealed */
} gi_h5_seal_check;

/* Verify the datasets of a sealed file: all of them, except that skip (may be
 * NULL) is left to row checks. An unsealed file is no error (out->sealed 0);
 * a sealed file with a dataset whose hash is missing or differs is:
 * "WHERE: /NAME does not match its content hash ...". */
int gi_h5_verify(hid_t file, const char *where, const char *skip, gi_h5_seal_check *out, gi_err *err);
/* The same, leaving n_skip datasets (skip[], entries may be NULL) to row checks. */
int gi_h5_verify_skip(hid_t file, const char *where, int n_skip, const char *const *skip, gi_h5_seal_check *out,
                      gi_err *err);

/* Row hashes of a sealed dataset, for gi_h5_rows_check. */
typedef struct gi_h5_rows {
    long n;                 /* rows (0: the file is not sealed: nothing to check) */
    uint64_t *h;            /* [n][2] stored hashes */
    unsigned char id[16];   /* content_id */
} gi_h5_rows;

/* Load the row hashes of dataset name (verifying the table's own hash);
 * r->n = 0 when the file is not sealed. */
int gi_h5_rows_load(hid_t file, const char *where, const char *name, gi_h5_rows *r, gi_err *err);
/* Does row `row` of dataset name, read as mtype into buf (nbytes, the row's
 * dims rdims[ndims]), match its hash? 0, or -1 with a message. */
int gi_h5_rows_check(const gi_h5_rows *r, const char *where, const char *name, long row, hid_t mtype,
                     int ndims, const hsize_t *rdims, const void *buf, size_t nbytes, gi_err *err);
/* The same for a row whose slices' digests (gi_h5_slice_digest, [rdims[0]][2])
 * the caller has computed, e.g. reading many rows a slab at a time. */
int gi_h5_rows_check_slices(const gi_h5_rows *r, const char *where, const char *name, long row, hid_t mtype,
                            int ndims, const hsize_t *rdims, const uint64_t *slices, gi_err *err);
void gi_h5_rows_free(gi_h5_rows *r);

#endif
