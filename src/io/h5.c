/* h5.c - HDF5 helpers shared by atlas.c and checkpoint.c (see h5.h).
 *
 * Every helper reports a failing HDF5 call through gi_h5_fail at once, before
 * its clean-up calls clear HDF5's error stack. None of them touches HDF5's
 * error printing: the public functions of atlas.c and checkpoint.c bracket
 * their work with gi_h5_quiet / gi_h5_loud.
 */
#include "geneinr/h5.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------- */

gi_h5_printer gi_h5_quiet(void)
{
    gi_h5_printer p = { NULL, NULL };
    H5Eget_auto2(H5E_DEFAULT, &p.fn, &p.data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return p;
}

void gi_h5_loud(gi_h5_printer p) { H5Eset_auto2(H5E_DEFAULT, p.fn, p.data); }

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *out)
{
    if (n == 0 && e->desc && e->desc[0])
        snprintf(out, 512, "%s", e->desc);
    return 0;
}

int gi_h5_fail(gi_err *err, const char *fmt, ...)
{
    char what[1400], detail[512] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, detail);
    if (detail[0])
        return gi_fail(err, "%s (HDF5: %s)", what, detail);
    return gi_fail(err, "%s", what);
}

hid_t gi_h5_vlen_utf8(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return -1;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

void gi_h5_free_strings(char **v, int n)
{
    if (!v)
        return;
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- attributes ----------------------------------------------------------- */

/* An attribute of the given dataspace (closed here), stored as file_type from
 * value in mem_type. */
static int put_attr_in(hid_t obj, const char *where, const char *name, hid_t file_type, hid_t mem_type, hid_t space,
                       const void *value, gi_err *err)
{
    hid_t attr = -1;
    int rc = 0;
    if (space < 0 || (attr = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(attr, mem_type, value) < 0)
        rc = gi_h5_fail(err, "%s: cannot write attribute %s", where, name);
    if (attr >= 0 && H5Aclose(attr) < 0 && rc == 0)
        rc = gi_h5_fail(err, "%s: cannot write attribute %s", where, name);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

static int put_attr(hid_t obj, const char *where, const char *name, hid_t type, const void *value, gi_err *err)
{
    return put_attr_in(obj, where, name, type, type, H5Screate(H5S_SCALAR), value, err);
}

int gi_h5_put_attr_str(hid_t obj, const char *where, const char *name, const char *value, gi_err *err)
{
    hid_t type = gi_h5_vlen_utf8();
    if (type < 0)
        return gi_h5_fail(err, "%s: cannot write attribute %s", where, name);
    const char *v = value ? value : "";
    int rc = put_attr(obj, where, name, type, &v, err);
    H5Tclose(type);
    return rc;
}

/* A fixed-length, NUL-terminated string type of size bytes (caller closes). */
static hid_t fixed_utf8(size_t size)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return -1;
    if (H5Tset_size(t, size ? size : 1) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0 ||
        H5Tset_strpad(t, H5T_STR_NULLTERM) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

int gi_h5_put_attr_fixed_str(hid_t obj, const char *where, const char *name, const char *value, gi_err *err)
{
    const char *v = value ? value : "";
    hid_t type = fixed_utf8(strlen(v) + 1);
    if (type < 0)
        return gi_h5_fail(err, "%s: cannot write attribute %s", where, name);
    int rc = put_attr(obj, where, name, type, v, err);
    H5Tclose(type);
    return rc;
}

int gi_h5_put_attr_i64(hid_t obj, const char *where, const char *name, long long v, gi_err *err)
{
    return put_attr(obj, where, name, H5T_NATIVE_LLONG, &v, err);
}

int gi_h5_put_attr_u64(hid_t obj, const char *where, const char *name, uint64_t v, gi_err *err)
{
    return put_attr(obj, where, name, H5T_NATIVE_UINT64, &v, err);
}

int gi_h5_put_attr_f64(hid_t obj, const char *where, const char *name, double v, gi_err *err)
{
    return put_attr(obj, where, name, H5T_NATIVE_DOUBLE, &v, err);
}

int gi_h5_put_attr_f64_array(hid_t obj, const char *where, const char *name, const double *v, hsize_t n,
                             gi_err *err)
{
    return put_attr_in(obj, where, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, H5Screate_simple(1, &n, NULL), v, err);
}

int gi_h5_get_attr_f64_array(hid_t obj, const char *where, const char *name, double *v, hsize_t n, gi_err *err)
{
    if (H5Aexists(obj, name) <= 0)
        return gi_fail(err, "%s: has no attribute %s", where, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t space = a >= 0 ? H5Aget_space(a) : -1;
    hid_t ftype = a >= 0 ? H5Aget_type(a) : -1;
    int rc = 0;
    if (a < 0 || space < 0 || ftype < 0)
        rc = gi_h5_fail(err, "%s: cannot open attribute %s", where, name);
    else if (H5Sget_simple_extent_npoints(space) != (hssize_t)n || H5Tget_class(ftype) != H5T_FLOAT)
        rc = gi_fail(err, "%s: attribute %s is not %llu floating-point numbers", where, name, (unsigned long long)n);
    else if (H5Aread(a, H5T_NATIVE_DOUBLE, v) < 0)
        rc = gi_h5_fail(err, "%s: cannot read attribute %s", where, name);
    if (ftype >= 0)
        H5Tclose(ftype);
    if (space >= 0)
        H5Sclose(space);
    if (a >= 0)
        H5Aclose(a);
    return rc;
}

/* A scalar numeric attribute read as type (HDF5 converts between sizes). */
static int get_attr_num(hid_t obj, const char *where, const char *name, hid_t type, void *v, gi_err *err)
{
    if (H5Aexists(obj, name) <= 0)
        return gi_fail(err, "%s: has no attribute %s (written by another version?)", where, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t space = a >= 0 ? H5Aget_space(a) : -1;
    hid_t ftype = a >= 0 ? H5Aget_type(a) : -1;
    int rc = 0;
    if (a < 0 || space < 0 || ftype < 0)
        rc = gi_h5_fail(err, "%s: cannot open attribute %s", where, name);
    else if (H5Sget_simple_extent_npoints(space) != 1 ||
             (H5Tget_class(ftype) != H5T_INTEGER && H5Tget_class(ftype) != H5T_FLOAT))
        rc = gi_fail(err, "%s: attribute %s is not a single number", where, name);
    else if (H5Aread(a, type, v) < 0)
        rc = gi_h5_fail(err, "%s: cannot read attribute %s", where, name);
    if (ftype >= 0)
        H5Tclose(ftype);
    if (space >= 0)
        H5Sclose(space);
    if (a >= 0)
        H5Aclose(a);
    return rc;
}

int gi_h5_get_attr_i64(hid_t obj, const char *where, const char *name, long long *v, gi_err *err)
{
    return get_attr_num(obj, where, name, H5T_NATIVE_LLONG, v, err);
}

int gi_h5_get_attr_u64(hid_t obj, const char *where, const char *name, uint64_t *v, gi_err *err)
{
    return get_attr_num(obj, where, name, H5T_NATIVE_UINT64, v, err);
}

int gi_h5_get_attr_f64(hid_t obj, const char *where, const char *name, double *v, gi_err *err)
{
    return get_attr_num(obj, where, name, H5T_NATIVE_DOUBLE, v, err);
}

/* ---- strings -------------------------------------------------------------- */

/* All strings of a dataset or attribute (variable- or fixed-length). */
static int read_strings(hid_t obj, int is_attr, char ***out, int *n_out)
{
    hid_t ftype = is_attr ? H5Aget_type(obj) : H5Dget_type(obj);
    hid_t space = is_attr ? H5Aget_space(obj) : H5Dget_space(obj);
    hid_t mtype = -1;
    char **v = NULL;
    int rc = -1, n = 0;
    hssize_t np;
    if (ftype < 0 || space < 0 || H5Tget_class(ftype) != H5T_STRING)
        goto done;
    np = H5Sget_simple_extent_npoints(space);
    if (np < 0 || np > INT32_MAX)
        goto done;
    n = (int)np;
    if (!(v = calloc(n > 0 ? (size_t)n : 1, sizeof *v)) || (mtype = H5Tcopy(ftype)) < 0)
        goto done;
    if (H5Tis_variable_str(ftype) > 0) {
        char **raw = calloc(n > 0 ? (size_t)n : 1, sizeof *raw);
        herr_t r = !raw ? -1
                   : n == 0 ? 0
                   : is_attr ? H5Aread(obj, mtype, raw)
                             : H5Dread(obj, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw);
        if (r >= 0) {
            rc = 0;
            for (int i = 0; i < n; i++)
                if (!(v[i] = strdup(raw[i] ? raw[i] : "")))
                    rc = -1;
            if (n > 0)
                H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, raw);
        }
        free(raw);
    } else {
        size_t size = H5Tget_size(ftype);
        char *raw = size ? malloc((size_t)(n > 0 ? n : 1) * size) : NULL;
        herr_t r = !raw ? -1
                   : n == 0 ? 0
                   : is_attr ? H5Aread(obj, mtype, raw)
                             : H5Dread(obj, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw);
        if (r >= 0) {
            rc = 0;
            for (int i = 0; i < n; i++)
                if (!(v[i] = strndup(raw + (size_t)i * size, size)))
                    rc = -1;
        }
        free(raw);
    }
done:
    if (mtype >= 0)
        H5Tclose(mtype);
    if (space >= 0)
        H5Sclose(space);
    if (ftype >= 0)
        H5Tclose(ftype);
    if (rc != 0) {
        gi_h5_free_strings(v, n);
        return -1;
    }
    *out = v;
    *n_out = n;
    return 0;
}

int gi_h5_get_attr_str(hid_t obj, const char *where, const char *name, char **out, gi_err *err)
{
    *out = NULL;
    if (H5Aexists(obj, name) <= 0)
        return 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    char **v = NULL;
    int n = 0, rc = a >= 0 ? read_strings(a, 1, &v, &n) : -1;
    if (a >= 0)
        H5Aclose(a);
    if (rc != 0 || n != 1) {
        gi_h5_free_strings(v, n);
        return gi_fail(err, "%s: attribute %s is not a single string", where, name);
    }
    *out = v[0];
    free(v);
    return 0;
}

int gi_h5_get_strings(hid_t file, const char *where, const char *name, char ***out, int *n, gi_err *err)
{
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return gi_fail(err, "%s: has no /%s dataset", where, name);
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0)
        return gi_h5_fail(err, "%s: cannot open /%s", where, name);
    int rc = read_strings(d, 0, out, n);
    H5Dclose(d);
    if (rc != 0)
        return gi_h5_fail(err, "%s: cannot read /%s as a list of strings", where, name);
    return 0;
}

/* ---- 1-D datasets --------------------------------------------------------- */

/* Creation properties for a 1-D dataset of n elements. fletcher32 needs a
 * chunked layout; chunks stay well below HDF5's 4 GiB limit. */
static hid_t dcpl_for(hsize_t n, unsigned flags)
{
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0)
        return -1;
    if ((flags & GI_H5_NO_TIMES) && H5Pset_obj_track_times(dcpl, 0) < 0)
        goto fail;
    if ((flags & GI_H5_CHECKSUM) && n > 0) {
        hsize_t chunk = n < ((hsize_t)1 << 24) ? n : ((hsize_t)1 << 24);
        if (H5Pset_chunk(dcpl, 1, &chunk) < 0 || H5Pset_fletcher32(dcpl) < 0)
            goto fail;
    }
    return dcpl;
fail:
    H5Pclose(dcpl);
    return -1;
}

int gi_h5_put_array(hid_t file, const char *where, const char *name, hid_t type, const void *data, hsize_t n,
                    unsigned flags, gi_err *err)
{
    hid_t space = H5Screate_simple(1, &n, NULL), dcpl = dcpl_for(n, flags), d = -1;
    int rc = 0;
    if (space < 0 || dcpl < 0 || (d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0 ||
        (n > 0 && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
        rc = gi_h5_fail(err, "%s: cannot write /%s", where, name);
    if (d >= 0 && H5Dclose(d) < 0 && rc == 0)
        rc = gi_h5_fail(err, "%s: cannot write /%s", where, name);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

long long gi_h5_dataset_len(hid_t file, const char *name)
{
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return -1;
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0)
        return -1;
    hid_t space = H5Dget_space(d);
    long long n = space >= 0 ? (long long)H5Sget_simple_extent_npoints(space) : -1;
    if (space >= 0)
        H5Sclose(space);
    H5Dclose(d);
    return n;
}

int gi_h5_get_array(hid_t file, const char *where, const char *name, hid_t type, void *buf, hsize_t n,
                    gi_err *err)
{
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return gi_fail(err, "%s: has no /%s dataset", where, name);
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0)
        return gi_h5_fail(err, "%s: cannot open /%s", where, name);
    hid_t space = H5Dget_space(d);
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    hssize_t got = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    int rc = 0;
    if (nd != 1 || got != (hssize_t)n) {
        rc = gi_fail(err, "%s: /%s has %lld elements, expected %llu", where, name, (long long)got,
                     (unsigned long long)n);
    } else if (n > 0) {
        /* Checksums are verified by default; say so explicitly, since a
         * corrupted checkpoint must fail here rather than load. */
        hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
        if (dxpl < 0 || H5Pset_edc_check(dxpl, H5Z_ENABLE_EDC) < 0 ||
            H5Dread(d, type, H5S_ALL, H5S_ALL, dxpl, buf) < 0)
            rc = gi_h5_fail(err, "%s: cannot read /%s (corrupted file?)", where, name);
        if (dxpl >= 0)
            H5Pclose(dxpl);
    }
    if (space >= 0)
        H5Sclose(space);
    H5Dclose(d);
    return rc;
}

int gi_h5_put_strings(hid_t file, const char *where, const char *name, char *const *v, int n, unsigned flags,
                      gi_err *err)
{
    if (flags & GI_H5_FIXED) {
        size_t width = 1;
        for (int i = 0; i < n; i++)
            if (strlen(v[i]) + 1 > width)
                width = strlen(v[i]) + 1;
        char *packed = calloc((size_t)(n > 0 ? n : 1), width);
        hid_t type = packed ? fixed_utf8(width) : -1;
        int rc = type < 0 ? gi_h5_fail(err, "%s: cannot write /%s", where, name) : 0;
        for (int i = 0; rc == 0 && i < n; i++)
            memcpy(packed + (size_t)i * width, v[i], strlen(v[i]));
        if (rc == 0)
            rc = gi_h5_put_array(file, where, name, type, packed, (hsize_t)(n > 0 ? n : 0), flags & ~GI_H5_FIXED, err);
        if (type >= 0)
            H5Tclose(type);
        free(packed);
        return rc;
    }
    hid_t type = gi_h5_vlen_utf8();
    if (type < 0)
        return gi_h5_fail(err, "%s: cannot write /%s", where, name);
    /* A checksum would cover only the heap references of variable-length
     * strings, not the text: strings are stored without one. */
    int rc = gi_h5_put_array(file, where, name, type, v, (hsize_t)(n > 0 ? n : 0), flags & ~GI_H5_CHECKSUM, err);
    H5Tclose(type);
    return rc;
}

/* ---- probing --------------------------------------------------------------- */

int gi_h5_has_dataset(const char *path, const char *name)
{
    if (!path || !name)
        return 0;
    gi_h5_printer printer = gi_h5_quiet();
    int found = 0;
    if (H5Fis_hdf5(path) > 0) {
        hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (file >= 0) {
            /* H5Lexists fails (rather than says no) when a parent group is missing. */
            if (H5Lexists(file, name, H5P_DEFAULT) > 0) {
                hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
                if (d >= 0) {
                    found = 1;
                    H5Dclose(d);
                }
            }
            H5Fclose(file);
        }
    }
    gi_h5_loud(printer);
    return found;
}
