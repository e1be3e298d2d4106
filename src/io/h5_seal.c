/* h5_seal.c - content hashes of HDF5 datasets (the scheme is in h5_seal.h).
 *
 * Datasets are read back in blocks of whole rows of their first dimension
 * (at most ~16 MB at a time), so sealing or verifying a large atlas needs
 * little memory. Callers bracket these functions with gi_h5_quiet/loud.
 */
#include "geneinr/h5_seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "geneinr/h5.h"

#define SEAL_MAGIC "geneinr-seal-1"
#define BLOCK_BYTES ((size_t)16 << 20)

typedef struct { unsigned char b[16]; } digest;

static digest canon(XXH128_hash_t h)
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    digest d;
    memcpy(d.b, c.digest, 16);
    return d;
}

static void to_hex(const digest *d, char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d->b[i]);
}

static int from_hex(const char *s, digest *d)
{
    if (!s || strlen(s) != 32)
        return -1;
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        d->b[i] = (unsigned char)v;
    }
    return 0;
}

/* The stored hash: content_id + d. */
static digest keyed(const digest *id, const digest *d)
{
    unsigned char buf[32];
    memcpy(buf, id->b, 16);
    memcpy(buf + 16, d->b, 16);
    return canon(XXH3_128bits(buf, sizeof buf));
}

/* What a reader's memory type is, in fixed-width fields. */
static void hash_type(XXH3_state_t *s, hid_t mtype)
{
    uint32_t t[4] = { (uint32_t)H5Tget_class(mtype), (uint32_t)H5Tget_size(mtype), 0,
                      (uint32_t)(H5Tis_variable_str(mtype) > 0) };
    if (H5Tget_class(mtype) == H5T_INTEGER)
        t[2] = (uint32_t)H5Tget_sign(mtype);
    XXH3_128bits_update(s, t, sizeof t);
}

static void hash_shape(XXH3_state_t *s, int ndims, const hsize_t *dims)
{
    uint64_t n = (uint64_t)ndims;
    XXH3_128bits_update(s, &n, sizeof n);
    for (int i = 0; i < ndims; i++) {
        uint64_t v = dims[i];
        XXH3_128bits_update(s, &v, sizeof v);
    }
}

static void hash_name(XXH3_state_t *s, const char *name)
{
    XXH3_128bits_update(s, name, strlen(name) + 1);
}

/* The memory type a dataset is hashed in (caller closes): the native
 * equivalent of its file type; strings as they are. */
static hid_t mem_type_of(hid_t ftype)
{
    if (H5Tget_class(ftype) == H5T_STRING)
        return H5Tcopy(ftype);
    return H5Tget_native_type(ftype, H5T_DIR_ASCEND);
}

/* A slice's plain digest: row `row`, slice `slice` (along the row's first
 * dimension) of dataset name, the slice's shape sdims[ndims] and bytes. */
static digest slice_digest(const char *name, uint64_t row, uint64_t slice, hid_t mtype, int ndims,
                           const hsize_t *sdims, const void *buf, size_t nbytes)
{
    XXH3_state_t *s = XXH3_createState();
    digest d = { { 0 } };
    if (!s)
        return d;   /* all zero: matches nothing stored, so a check fails rather than passes */
    XXH3_128bits_reset(s);
    hash_name(s, name);
    XXH3_128bits_update(s, &row, sizeof row);
    XXH3_128bits_update(s, &slice, sizeof slice);
    hash_type(s, mtype);
    hash_shape(s, ndims, sdims);
    XXH3_128bits_update(s, buf, nbytes);
    d = canon(XXH3_128bits_digest(s));
    XXH3_freeState(s);
    return d;
}

void gi_h5_slice_digest(const char *name, long row, long slice, hid_t mtype, int ndims, const hsize_t *sdims,
                        const void *buf, size_t nbytes, uint64_t out[2])
{
    digest d = slice_digest(name, (uint64_t)row, (uint64_t)slice, mtype, ndims, sdims, buf, nbytes);
    memcpy(out, d.b, 16);
}

/* A row's plain digest from its slices' digests (n of them). */
static digest row_digest(const char *name, uint64_t row, hid_t mtype, int ndims, const hsize_t *rdims,
                         const digest *slices, long n)
{
    XXH3_state_t *s = XXH3_createState();
    digest d = { { 0 } };
    if (!s)
        return d;
    XXH3_128bits_reset(s);
    hash_name(s, name);
    XXH3_128bits_update(s, &row, sizeof row);
    hash_type(s, mtype);
    hash_shape(s, ndims, rdims);
    for (long i = 0; i < n; i++)
        XXH3_128bits_update(s, slices[i].b, 16);
    d = canon(XXH3_128bits_digest(s));
    XXH3_freeState(s);
    return d;
}

static int is_zero(const uint64_t *h)
{
    return h[0] == 0 && h[1] == 0;
}

/* d(name) of a dataset hashed by rows ([rows][slices][...], at least 2-D):
 * the hash of its name, type, shape and row digests, each row's from its
 * slices' (h5_seal.h). Slice digests the writer already has (known, may be
 * NULL; all-zero entries unknown) are taken as given; the others are read.
 * rows (may be NULL): [dims[0]] plain row digests out. */
static int digest_by_rows(hid_t d, const char *where, const char *name, const gi_h5_slices *known, digest *out,
                          digest *rows, gi_err *err)
{
    hid_t ftype = H5Dget_type(d), space = H5Dget_space(d), mtype = -1;
    hsize_t dims[H5S_MAX_RANK] = { 0 };
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    int rc = 0;
    char *buf = NULL;
    digest *sl = NULL;
    XXH3_state_t *s = XXH3_createState();
    if (ftype < 0 || space < 0 || nd < 2 || !s || (mtype = mem_type_of(ftype)) < 0) {
        rc = gi_h5_fail(err, "%s: cannot read /%s to check its content hash", where, name);
        goto done;
    }
    H5Sget_simple_extent_dims(space, dims, NULL);
    long n_rows = (long)dims[0], n_sl = (long)dims[1];
    if (known && known->h && (known->n_rows != n_rows || known->n_slices != n_sl)) {
        rc = gi_fail(err, "%s: /%s is %ld x %ld, its slice hashes %ld x %ld", where, name, n_rows, n_sl,
                     known->n_rows, known->n_slices);
        goto done;
    }
    size_t esize = H5Tget_size(mtype), slice_elems = 1;
    for (int i = 2; i < nd; i++)
        slice_elems *= dims[i];
    size_t slice_bytes = slice_elems * esize;
    if (!(sl = malloc(sizeof *sl * (size_t)(n_sl > 0 ? n_sl : 1)))) {
        rc = gi_fail(err, "%s: out of memory to check /%s", where, name);
        goto done;
    }
    XXH3_128bits_reset(s);
    hash_name(s, name);
    hash_type(s, mtype);
    hash_shape(s, nd, dims);
    for (long r = 0; rc == 0 && r < n_rows; r++) {
        for (long z = 0; rc == 0 && z < n_sl; z++) {
            const uint64_t *k = known && known->h ? known->h + 2 * ((size_t)r * (size_t)n_sl + (size_t)z) : NULL;
            if (k && !is_zero(k)) {
                memcpy(sl[z].b, k, 16);
                continue;
            }
            if (!buf && !(buf = malloc(slice_bytes ? slice_bytes : 1))) {
                rc = gi_fail(err, "%s: out of memory to check /%s", where, name);
                break;
            }
            hsize_t start[H5S_MAX_RANK] = { 0 }, count[H5S_MAX_RANK];
            for (int i = 0; i < nd; i++)
                count[i] = dims[i];
            start[0] = (hsize_t)r;
            start[1] = (hsize_t)z;
            count[0] = count[1] = 1;
            hid_t fs = H5Dget_space(d), ms = H5Screate_simple(nd - 2 > 0 ? nd - 2 : 1,
                                                              nd - 2 > 0 ? dims + 2 : count, NULL);
            if (fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
                H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf) < 0)
                rc = gi_h5_fail(err, "%s: cannot read /%s (corrupted file?)", where, name);
            if (fs >= 0)
                H5Sclose(fs);
            if (ms >= 0)
                H5Sclose(ms);
            if (rc == 0)
                sl[z] = slice_digest(name, (uint64_t)r, (uint64_t)z, mtype, nd - 2, dims + 2, buf, slice_bytes);
        }
        if (rc != 0)
            break;
        digest rd = row_digest(name, (uint64_t)r, mtype, nd - 1, dims + 1, sl, n_sl);
        if (rows)
            rows[r] = rd;
        XXH3_128bits_update(s, rd.b, 16);
    }
    if (rc == 0)
        *out = canon(XXH3_128bits_digest(s));
done:
    free(buf);
    free(sl);
    if (s)
        XXH3_freeState(s);
    if (mtype >= 0)
        H5Tclose(mtype);
    if (ftype >= 0)
        H5Tclose(ftype);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

/* d(name) of an open dataset. 0 or -1 (message set). */
static int digest_dataset(hid_t d, const char *where, const char *name, digest *out, gi_err *err)
{
    hid_t ftype = H5Dget_type(d), space = H5Dget_space(d), mtype = -1;
    XXH3_state_t *s = XXH3_createState();
    hsize_t dims[H5S_MAX_RANK] = { 0 };
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    int rc = 0;
    char *buf = NULL;
    if (ftype < 0 || space < 0 || nd < 0 || !s || (mtype = mem_type_of(ftype)) < 0) {
        rc = gi_h5_fail(err, "%s: cannot read /%s to check its content hash", where, name);
        goto done;
    }
    H5Sget_simple_extent_dims(space, dims, NULL);
    XXH3_128bits_reset(s);
    hash_name(s, name);
    hash_type(s, mtype);
    hash_shape(s, nd, dims);
    if (H5Tis_variable_str(mtype) > 0) {
        char **v = NULL;
        int n = 0;
        hid_t fid = H5Iget_file_id(d);
        int got = fid >= 0 ? gi_h5_get_strings(fid, where, name, &v, &n, err) : -1;
        if (fid >= 0)
            H5Fclose(fid);
        if (got != 0) {
            rc = -1;
            goto done;
        }
        for (int i = 0; i < n; i++) {
            uint64_t len = strlen(v[i]);
            XXH3_128bits_update(s, &len, sizeof len);
            XXH3_128bits_update(s, v[i], len);
        }
        gi_h5_free_strings(v, n);
    } else if (H5Sget_simple_extent_npoints(space) > 0) {
        size_t esize = H5Tget_size(mtype);
        hsize_t n_rows_all = nd == 0 ? 1 : dims[0];
        size_t row_elems = 1;
        for (int i = 1; i < nd; i++)
            row_elems *= dims[i];
        size_t row_bytes = row_elems * esize;
        hsize_t per_block = row_bytes >= BLOCK_BYTES ? 1 : BLOCK_BYTES / row_bytes;
        if (per_block > n_rows_all)
            per_block = n_rows_all;
        if (!(buf = malloc(per_block * row_bytes))) {
            rc = gi_fail(err, "%s: out of memory to check /%s", where, name);
            goto done;
        }
        hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
        if (dxpl >= 0)
            H5Pset_edc_check(dxpl, H5Z_ENABLE_EDC);
        for (hsize_t r0 = 0; rc == 0 && r0 < n_rows_all; r0 += per_block) {
            hsize_t nr = n_rows_all - r0 < per_block ? n_rows_all - r0 : per_block;
            hsize_t start[H5S_MAX_RANK] = { 0 }, count[H5S_MAX_RANK];
            for (int i = 0; i < nd; i++)
                count[i] = dims[i];
            if (nd > 0) {
                start[0] = r0;
                count[0] = nr;
            }
            hid_t fs = H5Dget_space(d), ms = nd > 0 ? H5Screate_simple(nd, count, NULL) : H5Screate(H5S_SCALAR);
            if (fs < 0 || ms < 0 || (nd > 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0) ||
                H5Dread(d, mtype, ms, fs, dxpl, buf) < 0)
                rc = gi_h5_fail(err, "%s: cannot read /%s (corrupted file?)", where, name);
            if (fs >= 0)
                H5Sclose(fs);
            if (ms >= 0)
                H5Sclose(ms);
            if (rc != 0)
                break;
            XXH3_128bits_update(s, buf, nr * row_bytes);
        }
        if (dxpl >= 0)
            H5Pclose(dxpl);
    }
    if (rc == 0) {
        *out = canon(XXH3_128bits_digest(s));
    }
done:
    free(buf);
    if (s)
        XXH3_freeState(s);
    if (mtype >= 0)
        H5Tclose(mtype);
    if (ftype >= 0)
        H5Tclose(ftype);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

/* ---- the datasets of the root group, in name order ------------------------ */

typedef struct {
    char **names;
    int n, cap;
} name_list;

static herr_t collect(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    (void)info;
    name_list *l = op;
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET)
        return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->names, sizeof *v * (size_t)cap);
        if (!v)
            return -1;
        l->names = v;
        l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(name)))
        return -1;
    l->n++;
    return 0;
}

static int list_datasets(hid_t file, const char *where, name_list *l, gi_err *err)
{
    memset(l, 0, sizeof *l);
    hsize_t idx = 0;
    if (H5Literate(file, H5_INDEX_NAME, H5_ITER_INC, &idx, collect, l) < 0)
        return gi_h5_fail(err, "%s: cannot list the datasets", where);
    return 0;
}

static void free_list(name_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
}

static int is_rows_table(const char *name)
{
    size_t n = strlen(name), k = strlen(GI_SEAL_ROWS_SUFFIX);
    return n > k && strcmp(name + n - k, GI_SEAL_ROWS_SUFFIX) == 0;
}

/* Digest of a dataset by name. */
static int digest_named(hid_t file, const char *where, const char *name, digest *out, gi_err *err)
{
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0)
        return gi_h5_fail(err, "%s: cannot open /%s", where, name);
    int rc = digest_dataset(d, where, name, out, err);
    H5Dclose(d);
    return rc;
}

static int put_hash_attr(hid_t file, const char *where, const char *name, const digest *h, gi_err *err)
{
    char hex[33];
    to_hex(h, hex);
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0)
        return gi_h5_fail(err, "%s: cannot open /%s", where, name);
    if (H5Aexists(d, GI_SEAL_HASH_ATTR) > 0)
        H5Adelete(d, GI_SEAL_HASH_ATTR);
    int rc = gi_h5_put_attr_fixed_str(d, where, GI_SEAL_HASH_ATTR, hex, err);
    H5Dclose(d);
    return rc;
}

/* ---- sealing ---------------------------------------------------------------- */

/* The row-hash table NAME_xxh3_rows of a dataset sealed by rows: content_id
 * + row(r) for each row, itself sealed. */
static int put_rows_table(hid_t file, const char *where, const char *rows_of, const digest *id, const digest *rows,
                          long n_rows, gi_err *err)
{
    int rc = 0;
    char table[512];
    snprintf(table, sizeof table, "%s%s", rows_of, GI_SEAL_ROWS_SUFFIX);
    uint64_t *flat = malloc(sizeof *flat * 2 * (size_t)(n_rows > 0 ? n_rows : 1));
    if (!flat)
        rc = gi_fail(err, "%s: out of memory", where);
    for (long r = 0; rc == 0 && r < n_rows; r++) {
        digest h = keyed(id, &rows[r]);
        memcpy(&flat[2 * r], h.b, 16);
    }
    if (rc == 0 && H5Lexists(file, table, H5P_DEFAULT) > 0 && H5Ldelete(file, table, H5P_DEFAULT) < 0)
        rc = gi_h5_fail(err, "%s: cannot replace /%s", where, table);
    if (rc == 0)
        rc = gi_h5_put_array(file, where, table, H5T_NATIVE_UINT64, flat, 2 * (hsize_t)n_rows,
                             GI_H5_NO_TIMES | GI_H5_CHECKSUM, err);
    free(flat);
    digest td;
    if (rc == 0)
        rc = digest_named(file, where, table, &td, err);
    if (rc == 0) {
        digest h = keyed(id, &td);
        rc = put_hash_attr(file, where, table, &h, err);
    }
    return rc;
}

int gi_h5_seal(hid_t file, const char *where, const char *rows_of, const gi_h5_slices *known, gi_err *err)
{
    return gi_h5_seal_rows(file, where, rows_of ? 1 : 0, &rows_of, known, err);
}

int gi_h5_seal_rows(hid_t file, const char *where, int n_by_rows, const char *const *rows_of,
                    const gi_h5_slices *known, gi_err *err)
{
    name_list l;
    if (list_datasets(file, where, &l, err) != 0)
        return -1;
    digest *d = calloc((size_t)(l.n > 0 ? l.n : 1), sizeof *d);
    digest **rows = calloc((size_t)(n_by_rows > 0 ? n_by_rows : 1), sizeof *rows);
    long *n_rows = calloc((size_t)(n_by_rows > 0 ? n_by_rows : 1), sizeof *n_rows);
    int rc = d && rows && n_rows ? 0 : gi_fail(err, "%s: out of memory", where);
    XXH3_state_t *s = XXH3_createState();
    if (!s && rc == 0)
        rc = gi_fail(err, "%s: out of memory", where);
    if (rc == 0) {
        XXH3_128bits_reset(s);
        XXH3_128bits_update(s, SEAL_MAGIC, sizeof SEAL_MAGIC);
    }
    for (int i = 0; rc == 0 && i < l.n; i++) {
        if (is_rows_table(l.names[i]))
            continue;
        int want = -1;
        for (int j = 0; j < n_by_rows; j++)
            if (rows_of[j] && strcmp(l.names[i], rows_of[j]) == 0)
                want = j;
        if (want >= 0) {
            hid_t ds = H5Dopen2(file, l.names[i], H5P_DEFAULT);
            hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
            hsize_t dims[H5S_MAX_RANK] = { 0 };
            if (sp >= 0 && H5Sget_simple_extent_ndims(sp) > 0)
                H5Sget_simple_extent_dims(sp, dims, NULL);
            n_rows[want] = (long)dims[0];
            if (ds < 0 || sp < 0)
                rc = gi_h5_fail(err, "%s: cannot open /%s", where, l.names[i]);
            else if (!(rows[want] = calloc((size_t)(n_rows[want] > 0 ? n_rows[want] : 1), sizeof **rows)))
                rc = gi_fail(err, "%s: out of memory", where);
            if (rc == 0)
                rc = digest_by_rows(ds, where, l.names[i], known ? &known[want] : NULL, &d[i], rows[want], err);
            if (sp >= 0)
                H5Sclose(sp);
            if (ds >= 0)
                H5Dclose(ds);
        } else if (rc == 0) {
            rc = digest_named(file, where, l.names[i], &d[i], err);
        }
        if (rc == 0) {
            hash_name(s, l.names[i]);
            XXH3_128bits_update(s, d[i].b, 16);
        }
    }
    digest id = { { 0 } };
    if (rc == 0) {
        char hex[33];
        id = canon(XXH3_128bits_digest(s));
        to_hex(&id, hex);
        if (H5Aexists(file, GI_SEAL_ID_ATTR) > 0)
            H5Adelete(file, GI_SEAL_ID_ATTR);
        rc = gi_h5_put_attr_fixed_str(file, where, GI_SEAL_ID_ATTR, hex, err);
    }
    for (int i = 0; rc == 0 && i < l.n; i++) {
        if (is_rows_table(l.names[i]))
            continue;
        digest h = keyed(&id, &d[i]);
        rc = put_hash_attr(file, where, l.names[i], &h, err);
    }
    for (int j = 0; rc == 0 && j < n_by_rows; j++) {
        if (!rows[j])
            rc = gi_fail(err, "%s: no /%s to hash by rows", where, rows_of[j] ? rows_of[j] : "(null)");
        else
            rc = put_rows_table(file, where, rows_of[j], &id, rows[j], n_rows[j], err);
    }
    if (s)
        XXH3_freeState(s);
    for (int j = 0; rows && j < n_by_rows; j++)
        free(rows[j]);
    free(rows);
    free(n_rows);
    free(d);
    free_list(&l);
    return rc;
}

/* ---- verifying -------------------------------------------------------------- */

static int read_id(hid_t file, const char *where, digest *id, int *sealed, gi_err *err)
{
    *sealed = 0;
    char *hex = NULL;
    if (gi_h5_get_attr_str(file, where, GI_SEAL_ID_ATTR, &hex, err) != 0)
        return -1;
    if (!hex)
        return 0;
    int bad = from_hex(hex, id);
    free(hex);
    if (bad)
        return gi_fail(err, "%s: attribute %s is not 32 hex digits (damaged file?)", where, GI_SEAL_ID_ATTR);
    *sealed = 1;
    return 0;
}

static int mismatch(gi_err *err, const char *where, const char *name)
{
    return gi_fail(err, "%s: /%s does not match its content hash (zeroed, replaced, or copied from another file): "
                   "the file is damaged; use an intact copy (or write it again)", where, name);
}

/* Is dataset name's stored hash content_id + d? */
static int check_one(hid_t file, const char *where, const char *name, const digest *id, gi_err *err)
{
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0)
        return gi_h5_fail(err, "%s: cannot open /%s", where, name);
    char *hex = NULL;
    digest want, got;
    int rc = gi_h5_get_attr_str(d, where, GI_SEAL_HASH_ATTR, &hex, err);
    if (rc == 0 && !hex)
        rc = gi_fail(err, "%s: /%s has no content hash (added after the file was written?): the file is damaged",
                     where, name);
    else if (rc == 0 && from_hex(hex, &want) != 0)
        rc = mismatch(err, where, name);
    char table[512];
    snprintf(table, sizeof table, "%s%s", name, GI_SEAL_ROWS_SUFFIX);
    if (rc == 0)
        rc = H5Lexists(file, table, H5P_DEFAULT) > 0 ? digest_by_rows(d, where, name, NULL, &got, NULL, err)
                                                     : digest_dataset(d, where, name, &got, err);
    if (rc == 0) {
        digest h = keyed(id, &got);
        if (memcmp(h.b, want.b, 16) != 0)
            rc = mismatch(err, where, name);
    }
    free(hex);
    H5Dclose(d);
    return rc;
}

int gi_h5_verify(hid_t file, const char *where, const char *skip, gi_h5_seal_check *out, gi_err *err)
{
    return gi_h5_verify_skip(file, where, skip ? 1 : 0, &skip, out, err);
}

int gi_h5_verify_skip(hid_t file, const char *where, int n_skip, const char *const *skip, gi_h5_seal_check *out,
                      gi_err *err)
{
    gi_h5_seal_check local;
    if (!out)
        out = &local;
    memset(out, 0, sizeof *out);
    digest id;
    if (read_id(file, where, &id, &out->sealed, err) != 0)
        return -1;
    if (!out->sealed)
        return 0;
    to_hex(&id, out->content_id);
    name_list l;
    if (list_datasets(file, where, &l, err) != 0)
        return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < l.n; i++) {
        int skipped = 0;
        for (int j = 0; j < n_skip; j++)
            skipped |= skip[j] && strcmp(l.names[i], skip[j]) == 0;
        if (skipped)
            continue;
        rc = check_one(file, where, l.names[i], &id, err);
        if (rc == 0)
            out->n_checked++;
    }
    free_list(&l);
    return rc;
}

int gi_h5_rows_load(hid_t file, const char *where, const char *name, gi_h5_rows *r, gi_err *err)
{
    memset(r, 0, sizeof *r);
    digest id;
    int sealed;
    if (read_id(file, where, &id, &sealed, err) != 0)
        return -1;
    if (!sealed)
        return 0;
    char table[512];
    snprintf(table, sizeof table, "%s%s", name, GI_SEAL_ROWS_SUFFIX);
    long long n2 = gi_h5_dataset_len(file, table);
    long long rows = gi_h5_dataset_len(file, name) < 0 ? -1 : 0;
    if (rows == 0) {
        hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
        hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
        hsize_t dims[H5S_MAX_RANK] = { 0 };
        if (sp >= 0 && H5Sget_simple_extent_ndims(sp) > 0)
            H5Sget_simple_extent_dims(sp, dims, NULL);
        rows = (long long)dims[0];
        if (sp >= 0)
            H5Sclose(sp);
        if (d >= 0)
            H5Dclose(d);
    }
    if (n2 < 0 || rows < 0 || n2 != 2 * rows)
        return gi_fail(err, "%s: /%s has no table of row hashes (/%s) for its %lld rows: the file is damaged", where,
                       name, table, rows);
    if (check_one(file, where, table, &id, err) != 0)
        return -1;
    if (!(r->h = malloc(sizeof *r->h * (size_t)(n2 > 0 ? n2 : 1))))
        return gi_fail(err, "%s: out of memory", where);
    if (gi_h5_get_array(file, where, table, H5T_NATIVE_UINT64, r->h, (hsize_t)n2, err) != 0) {
        gi_h5_rows_free(r);
        return -1;
    }
    r->n = (long)rows;
    memcpy(r->id, id.b, 16);
    return 0;
}

int gi_h5_rows_check_slices(const gi_h5_rows *r, const char *where, const char *name, long row, hid_t mtype,
                            int ndims, const hsize_t *rdims, const uint64_t *slices, gi_err *err)
{
    if (!r || r->n == 0)
        return 0;
    if (row < 0 || row >= r->n)
        return gi_fail(err, "%s: /%s has no row %ld", where, name, row);
    if (ndims < 1)
        return gi_fail(err, "%s: /%s: a row needs at least one dimension", where, name);
    long n_sl = (long)rdims[0];
    digest *sl = malloc(sizeof *sl * (size_t)(n_sl > 0 ? n_sl : 1));
    if (!sl)
        return gi_fail(err, "%s: out of memory", where);
    for (long z = 0; z < n_sl; z++)
        memcpy(sl[z].b, slices + 2 * z, 16);
    digest plain = row_digest(name, (uint64_t)row, mtype, ndims, rdims, sl, n_sl), id;
    free(sl);
    memcpy(id.b, r->id, 16);
    digest h = keyed(&id, &plain);
    if (memcmp(h.b, &r->h[2 * row], 16) != 0)
        return gi_fail(err, "%s: row %ld of /%s does not match its content hash (zeroed, replaced, or copied from "
                       "another file): the file is damaged; use an intact copy (or write it again)", where, row, name);
    return 0;
}

int gi_h5_rows_check(const gi_h5_rows *r, const char *where, const char *name, long row, hid_t mtype, int ndims,
                     const hsize_t *rdims, const void *buf, size_t nbytes, gi_err *err)
{
    if (!r || r->n == 0)
        return 0;
    if (ndims < 1 || rdims[0] < 1 || nbytes % rdims[0] != 0)
        return gi_fail(err, "%s: /%s: a row of %zu bytes cannot be cut into %llu slices", where, name, nbytes,
                       ndims < 1 ? 0ULL : (unsigned long long)rdims[0]);
    long n_sl = (long)rdims[0];
    size_t slice_bytes = nbytes / (size_t)n_sl;
    uint64_t *sl = malloc(sizeof *sl * 2 * (size_t)n_sl);
    if (!sl)
        return gi_fail(err, "%s: out of memory", where);
    for (long z = 0; z < n_sl; z++)
        gi_h5_slice_digest(name, row, z, mtype, ndims - 1, rdims + 1, (const char *)buf + (size_t)z * slice_bytes,
                           slice_bytes, sl + 2 * z);
    int rc = gi_h5_rows_check_slices(r, where, name, row, mtype, ndims, rdims, sl, err);
    free(sl);
    return rc;
}

void gi_h5_rows_free(gi_h5_rows *r)
{
    if (!r)
        return;
    free(r->h);
    memset(r, 0, sizeof *r);
}
