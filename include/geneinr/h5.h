/* h5.h - the HDF5 helpers shared by the atlas and the checkpoint.
 *
 * One error convention for every HDF5 file geneinr writes or reads: each
 * helper returns 0 or -1 with a gi_err naming the file (`where`), the object
 * and, when HDF5 failed, HDF5's innermost message ("... (HDF5: ...)").
 *
 * HDF5 prints its error stack to stderr by default. We handle every failure
 * ourselves, so a public function of atlas.c or checkpoint.c switches the
 * printing off on entry (gi_h5_quiet) and puts back whatever was set before on
 * return (gi_h5_loud), instead of turning it off for the whole process: a
 * caller (a test, a tool, h5py in the same process) keeps its own setting.
 *
 * Deflated datasets are compressed by libdeflate in every geneinr process
 * (h5_deflate.c: HDF5's standard deflate filter, plain zlib streams).
 *
 * Strings are variable-length UTF-8 (one type, gi_h5_vlen_utf8); readers also
 * accept fixed-length strings, as h5py and other writers may produce them.
 */
#ifndef GENEINR_H5_H
#define GENEINR_H5_H

#include <stdint.h>

#include <hdf5.h>

#include "geneinr/error.h"

typedef struct gi_h5_printer {
    H5E_auto2_t fn;
    void *data;
} gi_h5_printer;

/* Switch HDF5's automatic error printing off; returns what was set. */
gi_h5_printer gi_h5_quiet(void);
/* Put back what gi_h5_quiet returned. */
void gi_h5_loud(gi_h5_printer p);

/* gi_fail with the innermost message of HDF5's current error stack appended.
 * Call it right after the failing HDF5 call (the next call clears the stack). */
int gi_h5_fail(gi_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The variable-length UTF-8 string type (caller closes), or -1. */
hid_t gi_h5_vlen_utf8(void);

/* Flags of gi_h5_put_array / gi_h5_put_strings. */
enum {
    GI_H5_NO_TIMES = 1,      /* no object timestamps: equal content gives equal bytes */
    GI_H5_CHECKSUM = 2,      /* fletcher32 checksum, verified by every read (chunked) */
    GI_H5_FIXED = 4,         /* strings: fixed length (the longest + 1), stored in the
                              * dataset itself instead of HDF5's global heap, which
                              * has no checksum (and which HDF5 1.10 can loop on
                              * forever when it is damaged) */
};

/* Scalar attributes on obj (a file or a dataset). */
int gi_h5_put_attr_str(hid_t obj, const char *where, const char *name, const char *value, gi_err *err);
/* The same as a fixed-length string (in the checksummed object header, not
 * the global heap); read back by gi_h5_get_attr_str like any string. */
int gi_h5_put_attr_fixed_str(hid_t obj, const char *where, const char *name, const char *value, gi_err *err);
int gi_h5_put_attr_i64(hid_t obj, const char *where, const char *name, long long v, gi_err *err);
int gi_h5_put_attr_u64(hid_t obj, const char *where, const char *name, uint64_t v, gi_err *err);
int gi_h5_put_attr_f64(hid_t obj, const char *where, const char *name, double v, gi_err *err);

/* A 1-D float64 attribute of n values (the atlas's per-gene scale and
 * offset); reading checks the count. */
int gi_h5_put_attr_f64_array(hid_t obj, const char *where, const char *name, const double *v, hsize_t n,
                             gi_err *err);
int gi_h5_get_attr_f64_array(hid_t obj, const char *where, const char *name, double *v, hsize_t n, gi_err *err);

/* Read a scalar attribute. A missing attribute is an error for the numeric
 * readers ("... has no attribute NAME"); gi_h5_get_attr_str leaves *out NULL
 * and returns 0 when it is absent (caller frees *out). */
int gi_h5_get_attr_str(hid_t obj, const char *where, const char *name, char **out, gi_err *err);
int gi_h5_get_attr_i64(hid_t obj, const char *where, const char *name, long long *v, gi_err *err);
int gi_h5_get_attr_u64(hid_t obj, const char *where, const char *name, uint64_t *v, gi_err *err);
int gi_h5_get_attr_f64(hid_t obj, const char *where, const char *name, double *v, gi_err *err);

/* 1-D dataset /name of n elements of type (stored and in memory). */
int gi_h5_put_array(hid_t file, const char *where, const char *name, hid_t type, const void *data, hsize_t n,
                    unsigned flags, gi_err *err);
/* Read 1-D dataset /name, which must hold exactly n elements, as type. */
int gi_h5_get_array(hid_t file, const char *where, const char *name, hid_t type, void *buf, hsize_t n,
                    gi_err *err);
/* Elements of dataset /name, or -1 if there is none. */
long long gi_h5_dataset_len(hid_t file, const char *name);

/* /name as n UTF-8 strings. */
int gi_h5_put_strings(hid_t file, const char *where, const char *name, char *const *v, int n, unsigned flags,
                      gi_err *err);
/* All strings of dataset /name (malloc'd, free with gi_h5_free_strings). */
int gi_h5_get_strings(hid_t file, const char *where, const char *name, char ***out, int *n, gi_err *err);
void gi_h5_free_strings(char **v, int n);

/* Is this file HDF5 with a dataset of that name? 1 yes, 0 no (no error). */
int gi_h5_has_dataset(const char *path, const char *name);

#endif
