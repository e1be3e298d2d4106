/* nifti.c - NIfTI-1/NIfTI-2 volumes through niftilib (see nifti.h).
 *
 * What niftilib does here: every header is parsed by nifti_image_read (NIfTI-1,
 * NIfTI-2, ANALYZE 7.5, .nii/.nii.gz/.hdr+.img) and every header we write is
 * built by nifti_convert_nim2n1hdr / nifti_convert_nim2n2hdr from a nifti_image,
 * so field layout, qform quaternions and byte order stay niftilib's business.
 *
 * What we do by hand, and why:
 *   - Voxel bytes are read with zlib, not nifti_image_load: niftilib silently
 *     replaces NaN/Inf in float images with 0 (so a NaN "outside" mask would
 *     come back as 0), reports a short read only on stderr and zero-fills, and
 *     reads a whole 4-D file before we could reject it. We read exactly
 *     nx*ny*nz values after the header's vox_offset, in chunks, byte-swap with
 *     nifti_swap_Nbytes, scale, and fail on a short read.
 *   - Files are written with zlib/stdio, not nifti_image_write: that returns
 *     void (errors go to stderr only) and always writes NIfTI-1 when the header
 *     fits, while gi_volume_write_like must keep a NIfTI-2 geometry NIfTI-2.
 *
 * Conventions: data[(k * ny + j) * nx + i] is voxel (i, j, k) - NIfTI's own
 * storage order, so no reordering happens anywhere. affine is row-major and
 * maps (i, j, k, 1) to millimetres.
 *
 * v->hdr is the niftilib nifti_image of the file read, without data and
 * without extensions. Its nifti_type records the on-disk version as
 * nifti2_io.h documents it (NIFTI_FTYPE_NIFTI1_1 or NIFTI_FTYPE_NIFTI2_1;
 * this niftilib sets 1 for both on read), which gi_volume_write_like uses.
 */
#include "geneinr/files.h"
#include "geneinr/nifti.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include <nifti2_io.h>

#define CHUNK_VOXELS ((size_t)1 << 20)   /* voxels converted per read/write step */

/* niftilib prints its own diagnostics to stderr; ours go into gi_err. */
static void quiet_niftilib(void)
{
    nifti_set_debug_level(0);
}


/* ---- reading -------------------------------------------------------------------- */

/* Which NIfTI version the file claims: its first 4 bytes (sizeof_hdr) are 348
 * for NIfTI-1 / ANALYZE and 540 for NIfTI-2, in either byte order. Also turns
 * "no such file" and "empty file" into clear messages before niftilib's
 * file-name guessing gets involved. */
static int probe_version(const char *path, int *nver, gi_err *err)
{
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return gi_fail(err, "cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
    unsigned char b[4];
    int got = gzread(gz, b, 4);
    int zerr = Z_OK;
    const char *zmsg = got < 0 ? gzerror(gz, &zerr) : "";
    int saved_errno = errno;
    gzclose(gz);
    if (got < 0)
        return gi_fail(err, "cannot read %s: %s", path,
                       zerr == Z_ERRNO ? strerror(saved_errno) : zmsg);
    if (got < 4)
        return gi_fail(err, "%s is not a NIfTI file: only %d bytes long", path, got);
    uint32_t le = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    uint32_t be = (uint32_t)b[3] | (uint32_t)b[2] << 8 | (uint32_t)b[1] << 16 | (uint32_t)b[0] << 24;
    if (le == 348 || be == 348)
        *nver = 1;
    else if (le == 540 || be == 540)
        *nver = 2;
    else
        return gi_fail(err, "%s is not a NIfTI file: header size field is %u, not 348 "
                       "(NIfTI-1) or 540 (NIfTI-2)", path, (unsigned)le);
    return 0;
}

/* Reject what a gi_volume cannot hold, before any voxel is read. */
static int check_layout(const nifti_image *nim, const char *path, gi_err *err)
{
    switch (nim->datatype) {
    case DT_UINT8: case DT_INT8: case DT_INT16: case DT_UINT16: case DT_INT32:
    case DT_UINT32: case DT_INT64: case DT_UINT64: case DT_FLOAT32: case DT_FLOAT64:
        break;
    case DT_RGB24: case DT_RGBA32:
        return gi_fail(err, "%s: datatype %s is a colour image; only scalar voxel types "
                       "(integers, float32, float64) can be read", path,
                       nifti_datatype_string(nim->datatype));
    case DT_COMPLEX64: case DT_COMPLEX128: case DT_COMPLEX256:
        return gi_fail(err, "%s: datatype %s is complex; only real scalar voxel types "
                       "(integers, float32, float64) can be read", path,
                       nifti_datatype_string(nim->datatype));
    default:
        return gi_fail(err, "%s: datatype %s (code %d) is not supported; use integers, "
                       "float32 or float64", path, nifti_datatype_string(nim->datatype),
                       nim->datatype);
    }
    if (nim->nu > 1 || nim->nv > 1 || nim->nw > 1)
        return gi_fail(err, "%s: image has %lld dimensions (%lld x %lld x %lld x %lld x %lld "
                       "x %lld x %lld); only 3-D volumes are supported", path,
                       (long long)nim->ndim, (long long)nim->nx, (long long)nim->ny,
                       (long long)nim->nz, (long long)nim->nt, (long long)nim->nu,
                       (long long)nim->nv, (long long)nim->nw);
    if (nim->nt > 1)
        return gi_fail(err, "%s: 4-D image with %lld volumes (%lld x %lld x %lld x %lld); "
                       "only a single 3-D volume is supported", path, (long long)nim->nt,
                       (long long)nim->nx, (long long)nim->ny, (long long)nim->nz,
                       (long long)nim->nt);
    if (nim->nx < 1 || nim->ny < 1 || nim->nz < 1 || nim->nx > INT_MAX || nim->ny > INT_MAX ||
        nim->nz > INT_MAX)
        return gi_fail(err, "%s: bad dimensions %lld x %lld x %lld", path, (long long)nim->nx,
                       (long long)nim->ny, (long long)nim->nz);
    if ((uint64_t)nim->nx * (uint64_t)nim->ny > SIZE_MAX / sizeof(float) / (uint64_t)nim->nz)
        return gi_fail(err, "%s: %lld x %lld x %lld voxels do not fit in memory", path,
                       (long long)nim->nx, (long long)nim->ny, (long long)nim->nz);
    if (nim->iname_offset < 0)
        return gi_fail(err, "%s: ASCII NIfTI is not supported", path);
    /* The voxels must be in the file before we allocate room for them: a
     * damaged header could otherwise ask for gigabytes. Uncompressed: they
     * follow vox_offset. Gzip: deflate expands at most 1032:1. */
    struct stat sb;
    const char *data_file = nim->iname ? nim->iname : path;
    double need = (double)nim->nx * (double)nim->ny * (double)nim->nz * (double)nim->nbyper;
    if (stat(data_file, &sb) == 0) {
        size_t n = strlen(data_file);
        int gz = n > 3 && strcmp(data_file + n - 3, ".gz") == 0;
        double have = (double)sb.st_size;
        if (gz ? need > 1032.0 * have + 65536 : (double)nim->iname_offset + need > have)
            return gi_fail(err, "%s: file is truncated or damaged: the header describes %lld x %lld x %lld "
                           "voxels of %d bytes, more than the file holds", path, (long long)nim->nx, (long long)nim->ny,
                           (long long)nim->nz, nim->nbyper);
    }
    return 0;
}

/* sform if its code is set, else qform if its code is set, else pixdim
 * scaling (NIfTI "method 1", as nifti.h documents). */
static void pick_affine(const nifti_image *nim, double A[16])
{
    const nifti_dmat44 *m = NULL;
    if (nim->sform_code > 0)
        m = &nim->sto_xyz;
    else if (nim->qform_code > 0)
        m = &nim->qto_xyz;
    if (m) {
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                A[4 * r + c] = m->m[r][c];
        return;
    }
    const double d[3] = {nim->dx, nim->dy, nim->dz};
    memset(A, 0, 16 * sizeof *A);
    for (int r = 0; r < 3; r++)
        A[5 * r] = (isfinite(d[r]) && d[r] > 0) ? d[r] : 1.0;
    A[15] = 1;
}

/* The voxel -> mm affine must be finite and invertible: a singular one maps
 * the whole grid onto a plane (every slice rendered at one z) and cannot be
 * inverted to look labels up. The test is scale-free: the determinant against
 * the product of the column lengths (1 for orthogonal axes, 0 when singular). */
static int check_affine(const double A[16], const nifti_image *nim, const char *path, gi_err *err)
{
    const char *which = nim->sform_code > 0 ? "sform" : nim->qform_code > 0 ? "qform" : "pixdim scaling";
    for (int q = 0; q < 12; q++)
        if (!isfinite(A[q]))
            return gi_fail(err, "%s: the voxel-to-mm affine (%s) has a non-finite entry; fix the header "
                           "(e.g. with fslorient or nibabel)", path, which);
    double det = A[0] * (A[5] * A[10] - A[6] * A[9]) - A[1] * (A[4] * A[10] - A[6] * A[8]) +
                 A[2] * (A[4] * A[9] - A[5] * A[8]);
    double len = 1;
    for (int c = 0; c < 3; c++)
        len *= sqrt(A[c] * A[c] + A[4 + c] * A[4 + c] + A[8 + c] * A[8 + c]);
    if (!(len > 0) || !(fabs(det) > 1e-6 * len))
        return gi_fail(err, "%s: the voxel-to-mm affine (%s) is singular (determinant %g): the voxels "
                       "have no valid position in space; fix the header (e.g. with fslorient or nibabel)",
                       path, which, det);
    return 0;
}

/* Convert n raw voxels of the given datatype to float, with out = slope * x + inter. */
static void convert_voxels(int datatype, const void *raw, size_t n, int scale, double slope,
                           double inter, float *out)
{
#define CONVERT(T)                                                              \
    do {                                                                        \
        const T *in = raw;                                                      \
        if (scale)                                                              \
            for (size_t q = 0; q < n; q++)                                      \
                out[q] = (float)(slope * (double)in[q] + inter);                \
        else                                                                    \
            for (size_t q = 0; q < n; q++)                                      \
                out[q] = (float)in[q];                                          \
    } while (0)
    switch (datatype) {
    case DT_UINT8:   CONVERT(uint8_t);  break;
    case DT_INT8:    CONVERT(int8_t);   break;
    case DT_INT16:   CONVERT(int16_t);  break;
    case DT_UINT16:  CONVERT(uint16_t); break;
    case DT_INT32:   CONVERT(int32_t);  break;
    case DT_UINT32:  CONVERT(uint32_t); break;
    case DT_INT64:   CONVERT(int64_t);  break;
    case DT_UINT64:  CONVERT(uint64_t); break;
    case DT_FLOAT32: CONVERT(float);    break;
    case DT_FLOAT64: CONVERT(double);   break;
    default: break;   /* excluded by check_layout */
    }
#undef CONVERT
}

/* Convert n raw voxels to exact integer labels; -1 with the voxel's index in
 * *bad_at and its value in *bad_value when one is not an integer (NaN counts
 * as 0, background). Integer datatypes without scaling convert exactly, any
 * width; floats and scaled values must be whole numbers within +-2^53. */
static int convert_labels(int datatype, const void *raw, size_t n, int scale, double slope, double inter,
                          int64_t *out, size_t *bad_at, double *bad_value)
{
#define WHOLE(T)                                                                \
    do {                                                                        \
        const T *in = raw;                                                      \
        for (size_t q = 0; q < n; q++) {                                        \
            double x = scale ? slope * (double)in[q] + inter : (double)in[q];   \
            if (isnan(x))                                                       \
                x = 0;                                                          \
            if (x != floor(x) || fabs(x) > 9007199254740992.0) {                \
                *bad_at = q, *bad_value = x;                                    \
                return -1;                                                      \
            }                                                                   \
            out[q] = (int64_t)x;                                                \
        }                                                                       \
    } while (0)
#define EXACT(T)                                                                \
    do {                                                                        \
        if (scale) {                                                            \
            WHOLE(T);                                                           \
            break;                                                              \
        }                                                                       \
        const T *in = raw;                                                      \
        for (size_t q = 0; q < n; q++)                                          \
            out[q] = (int64_t)in[q];                                            \
    } while (0)
    switch (datatype) {
    case DT_UINT8:   EXACT(uint8_t);  break;
    case DT_INT8:    EXACT(int8_t);   break;
    case DT_INT16:   EXACT(int16_t);  break;
    case DT_UINT16:  EXACT(uint16_t); break;
    case DT_INT32:   EXACT(int32_t);  break;
    case DT_UINT32:  EXACT(uint32_t); break;
    case DT_INT64:   EXACT(int64_t);  break;
    case DT_UINT64:
        if (!scale) {
            const uint64_t *in = raw;
            for (size_t q = 0; q < n; q++) {
                if (in[q] > (uint64_t)INT64_MAX) {
                    *bad_at = q, *bad_value = (double)in[q];
                    return -1;
                }
                out[q] = (int64_t)in[q];
            }
            break;
        }
        WHOLE(uint64_t);
        break;
    case DT_FLOAT32: WHOLE(float);    break;
    case DT_FLOAT64: WHOLE(double);   break;
    default: break;   /* excluded by check_layout */
    }
#undef WHOLE
#undef EXACT
    return 0;
}

/* Read the first nx*ny*nz voxels after vox_offset into out, as floats (or,
 * when lout is not NULL, as exact integer labels into lout). */
static int read_voxels(const nifti_image *nim, const char *path, float *out, int64_t *lout, gi_err *err)
{
    const size_t nvox = (size_t)nim->nx * (size_t)nim->ny * (size_t)nim->nz;
    const size_t nb = (size_t)nim->nbyper;
    const int swap = nim->swapsize > 1 && nim->byteorder != nifti_short_order();
    /* Scaling as nibabel and the NIfTI standard do it: ignored when the
     * slope is 0 (niftilib has already turned a NaN slope into 0). */
    const int scale = nim->scl_slope != 0 && !(nim->scl_slope == 1 && nim->scl_inter == 0);

    errno = 0;
    gzFile gz = gzopen(nim->iname, "rb");   /* plain files are read transparently */
    if (!gz)
        return gi_fail(err, "%s: cannot open image data %s: %s", path, nim->iname,
                       errno ? strerror(errno) : "out of memory");
    gzbuffer(gz, 1 << 17);
    unsigned char *buf = malloc(CHUNK_VOXELS * nb);
    if (!buf) {
        gzclose(gz);
        return gi_fail(err, "%s: out of memory", path);
    }
    int rc = 0;
    if (gzseek(gz, (z_off_t)nim->iname_offset, SEEK_SET) != (z_off_t)nim->iname_offset) {
        rc = gi_fail(err, "%s: file is truncated: no voxel data at offset %lld", path,
                     (long long)nim->iname_offset);
    }
    for (size_t done = 0; rc == 0 && done < nvox;) {
        size_t n = nvox - done < CHUNK_VOXELS ? nvox - done : CHUNK_VOXELS;
        int got = gzread(gz, buf, (unsigned)(n * nb));
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(gz, &zerr);
            rc = gi_fail(err, "%s: read error: %s", path, zerr == Z_ERRNO ? strerror(errno) : msg);
        } else if ((size_t)got != n * nb) {
            rc = gi_fail(err, "%s: file is truncated: %zu voxels expected, data ends after %zu",
                         path, nvox, done + (size_t)got / nb);
        } else {
            if (swap)
                nifti_swap_Nbytes((int64_t)(n * nb / (size_t)nim->swapsize), nim->swapsize, buf);
            size_t bad_at = 0;
            double bad_value = 0;
            if (!lout)
                convert_voxels(nim->datatype, buf, n, scale, nim->scl_slope, nim->scl_inter, out + done);
            else if (convert_labels(nim->datatype, buf, n, scale, nim->scl_slope, nim->scl_inter, lout + done,
                                    &bad_at, &bad_value) != 0)
                rc = gi_fail(err, "%s: voxel %zu holds %.17g (%s); a label image must hold whole numbers (of any "
                             "integer datatype, or whole floats within +-2^53)", path, done + bad_at, bad_value,
                             nifti_datatype_string(nim->datatype));
            done += n;
        }
    }
    free(buf);
    gzclose(gz);
    return rc;
}

int gi_volume_read(gi_volume *v, const char *path, int read_data, gi_err *err)
{
    memset(v, 0, sizeof *v);
    quiet_niftilib();
    int nver = 0;
    if (probe_version(path, &nver, err))
        return -1;
    nifti_image *nim = nifti_image_read(path, 0);
    if (!nim)
        return gi_fail(err, "%s: niftilib cannot read the header (corrupt, truncated or "
                       "not NIfTI)", path);
    if (check_layout(nim, path, err)) {
        nifti_image_free(nim);
        return -1;
    }
    v->nx = (int)nim->nx;
    v->ny = (int)nim->ny;
    v->nz = (int)nim->nz;
    pick_affine(nim, v->affine);
    if (check_affine(v->affine, nim, path, err)) {
        nifti_image_free(nim);
        memset(v, 0, sizeof *v);
        return -1;
    }
    if (read_data) {
        size_t nvox = (size_t)v->nx * (size_t)v->ny * (size_t)v->nz;
        v->data = malloc(nvox * sizeof *v->data);
        if (!v->data) {
            nifti_image_free(nim);
            memset(v, 0, sizeof *v);
            return gi_fail(err, "%s: out of memory for %zu voxels", path, nvox);
        }
        if (read_voxels(nim, path, v->data, NULL, err)) {
            nifti_image_free(nim);
            free(v->data);
            memset(v, 0, sizeof *v);
            return -1;
        }
    }
    /* Keep the geometry only: no data, no extensions; remember the version. */
    nifti_free_extensions(nim);
    nim->nifti_type = nver == 2 ? NIFTI_FTYPE_NIFTI2_1 : NIFTI_FTYPE_NIFTI1_1;
    v->hdr = nim;
    return 0;
}

int gi_volume_read_labels(gi_volume *v, const char *path, int64_t **labels, gi_err *err)
{
    *labels = NULL;
    if (gi_volume_read(v, path, 0, err) != 0)
        return -1;
    nifti_image *nim = nifti_image_read(path, 0);
    if (!nim) {
        gi_volume_free(v);
        return gi_fail(err, "%s: niftilib cannot read the header", path);
    }
    size_t nvox = (size_t)v->nx * (size_t)v->ny * (size_t)v->nz;
    int64_t *l = malloc(nvox * sizeof *l);
    int rc = l ? read_voxels(nim, path, NULL, l, err) : gi_fail(err, "%s: out of memory for %zu voxels", path, nvox);
    nifti_image_free(nim);
    if (rc != 0) {
        free(l);
        gi_volume_free(v);
        return -1;
    }
    *labels = l;
    return 0;
}

void gi_volume_free(gi_volume *v)
{
    if (!v)
        return;
    free(v->data);
    if (v->hdr)
        nifti_image_free(v->hdr);
    memset(v, 0, sizeof *v);
}

/* ---- writing -------------------------------------------------------------------- */

/* One output file, gzip-compressed when its name ends in .gz. */
typedef struct out_file {
    FILE *fp;
    gzFile gz;
    char why[256];          /* first failure */
} out_file;

static void out_write(out_file *o, const void *p, size_t n)
{
    if (o->why[0])
        return;
    const unsigned char *b = p;
    while (n > 0) {
        size_t step = n < ((size_t)1 << 30) ? n : ((size_t)1 << 30);
        int ok;
        if (o->gz)
            ok = gzwrite(o->gz, b, (unsigned)step) == (int)step;
        else
            ok = fwrite(b, 1, step, o->fp) == step;
        if (!ok) {
            int zerr = Z_ERRNO;
            const char *msg = o->gz ? gzerror(o->gz, &zerr) : "";
            snprintf(o->why, sizeof o->why, "%s",
                     zerr == Z_ERRNO ? (errno ? strerror(errno) : "write error") : msg);
            return;
        }
        b += step;
        n -= step;
    }
}

/* nim's header (NIfTI-1 if nver == 1 and it fits, else NIfTI-2) followed by
 * the 4-byte extender, as the bytes at the start of the file: *len of them in
 * buf (at least 544 bytes). nim is updated (file names, type, offset) and its
 * extensions are dropped. */
static int build_header(nifti_image *nim, int nver, const char *path, unsigned char *buf, size_t *len, gi_err *err)
{
    if (!gi_ends_with(path, ".nii") && !gi_ends_with(path, ".nii.gz"))
        return gi_fail(err, "%s: a NIfTI output name must end in .nii or .nii.gz", path);
    if (nifti_set_filenames(nim, path, 0, 1))
        return gi_fail(err, "%s: niftilib rejected the file name", path);
    nifti_free_extensions(nim);

    union {
        nifti_1_header n1;
        nifti_2_header n2;
    } h;
    size_t hsize = 0;
    if (nver == 1) {
        nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
        nim->iname_offset = 352;   /* 348-byte header + 4-byte extender */
        if (nifti_convert_nim2n1hdr(nim, &h.n1) == 0)
            hsize = sizeof h.n1;
        else
            nver = 2;              /* a dimension beyond 32767: NIfTI-1 cannot hold it */
    }
    if (nver == 2) {
        nim->nifti_type = NIFTI_FTYPE_NIFTI2_1;
        nim->iname_offset = 544;   /* 540-byte header + 4-byte extender */
        if (nifti_convert_nim2n2hdr(nim, &h.n2))
            return gi_fail(err, "%s: niftilib could not build a NIfTI-2 header", path);
        memcpy(h.n2.magic, "n+2\0\r\n\032\n", 8);
        hsize = sizeof h.n2;
    }
    memcpy(buf, &h, hsize);
    memset(buf + hsize, 0, 4);     /* extender: no extensions */
    *len = hsize + 4;
    return 0;
}

/* Open path and write nim's header and extender; the voxels follow with out_write. */
static int open_image(nifti_image *nim, int nver, const char *path, out_file *o, gi_err *err)
{
    memset(o, 0, sizeof *o);
    unsigned char head[GI_NIFTI_HEADER_MAX];
    size_t hlen;
    if (build_header(nim, nver, path, head, &hlen, err) != 0)
        return -1;
    errno = 0;
    if (gi_ends_with(path, ".gz"))
        o->gz = gzopen(path, "wb");
    else
        o->fp = fopen(path, "wb");
    if (!o->fp && !o->gz)
        return gi_fail(err, "cannot create %s: %s", path,
                       errno ? strerror(errno) : "out of memory");
    out_write(o, head, hlen);
    return 0;
}

/* Close an image opened with open_image; on any failure remove it. */
static int close_image(out_file *o, const char *path, gi_err *err)
{
    errno = 0;
    if (o->gz) {
        int zrc = gzclose(o->gz);
        if (zrc != Z_OK && !o->why[0])
            snprintf(o->why, sizeof o->why, "%s",
                     zrc == Z_ERRNO && errno ? strerror(errno) : "gzip write error");
    } else if (o->fp && fclose(o->fp) != 0 && !o->why[0]) {
        snprintf(o->why, sizeof o->why, "%s", errno ? strerror(errno) : "write error");
    }
    o->gz = NULL;
    o->fp = NULL;
    if (o->why[0]) {
        gi_remove_partial(path);   /* no half-written image left behind */
        return gi_fail(err, "writing %s: %s", path, o->why);
    }
    return 0;
}

/* Write nim's header and nim->nvox voxels of nim->datatype from data. */
static int write_image(nifti_image *nim, int nver, const void *data, const char *path,
                       gi_err *err)
{
    out_file o;
    if (open_image(nim, nver, path, &o, err) != 0)
        return -1;
    out_write(&o, data, (size_t)nim->nvox * (size_t)nim->nbyper);
    return close_image(&o, path, err);
}

/* Make nim a single 3-D volume of nx*ny*nz voxels. */
static void set_3d(nifti_image *nim, int64_t nx, int64_t ny, int64_t nz)
{
    nim->ndim = nim->dim[0] = 3;
    nim->nx = nim->dim[1] = nx;
    nim->ny = nim->dim[2] = ny;
    nim->nz = nim->dim[3] = nz;
    nim->nt = nim->nu = nim->nv = nim->nw = 1;
    for (int d = 4; d < 8; d++)
        nim->dim[d] = 1;
    nim->nvox = nx * ny * nz;
}

static void set_datatype(nifti_image *nim, int datatype)
{
    nim->datatype = datatype;
    nifti_datatype_sizes(datatype, &nim->nbyper, &nim->swapsize);
}

/* geom's geometry, data of the given datatype, value = slope * stored + inter. */
static int write_like(const gi_volume *geom, int datatype, const void *data, double slope, double inter,
                      const char *path, const char *description, gi_err *err)
{
    quiet_niftilib();
    const nifti_image *src = geom->hdr;
    if (!src)
        return gi_fail(err, "writing %s: the geometry has no NIfTI header (it was not read "
                       "with gi_volume_read)", path);
    if (src->nx != geom->nx || src->ny != geom->ny || src->nz != geom->nz)
        return gi_fail(err, "writing %s: geometry is %d x %d x %d but its header says "
                       "%lld x %lld x %lld", path, geom->nx, geom->ny, geom->nz,
                       (long long)src->nx, (long long)src->ny, (long long)src->nz);
    nifti_image *nim = nifti_copy_nim_info(src);
    if (!nim)
        return gi_fail(err, "writing %s: out of memory", path);
    set_3d(nim, src->nx, src->ny, src->nz);
    set_datatype(nim, datatype);
    /* Values are written as they are (float32: slope 1, inter 0) or with the
     * caller's scaling (uint16): no display range, no statistical or label
     * intent inherited from the source. */
    nim->scl_slope = (float)slope;
    nim->scl_inter = (float)inter;
    nim->cal_min = nim->cal_max = 0;
    nim->intent_code = NIFTI_INTENT_NONE;
    nim->intent_p1 = nim->intent_p2 = nim->intent_p3 = 0;
    memset(nim->intent_name, 0, sizeof nim->intent_name);
    memset(nim->descrip, 0, sizeof nim->descrip);
    memset(nim->aux_file, 0, sizeof nim->aux_file);
    if (description)
        snprintf(nim->descrip, sizeof nim->descrip, "%s", description);
    int nver = src->nifti_type == NIFTI_FTYPE_NIFTI2_1 ? 2 : 1;
    int rc = write_image(nim, nver, data, path, err);
    nifti_image_free(nim);
    return rc;
}

int gi_volume_write_like(const gi_volume *geom, const float *data, const char *path,
                         const char *description, gi_err *err)
{
    return write_like(geom, DT_FLOAT32, data, 1, 0, path, description, err);
}

int gi_volume_write_like_u16(const gi_volume *geom, const uint16_t *codes, double slope, double inter,
                             const char *path, const char *description, gi_err *err)
{
    /* slope 0 means "no scaling" to NIfTI readers: the codes would read as values */
    if (!(slope > 0) || !isfinite(slope) || !isfinite(inter) || (double)(float)slope != slope ||
        (double)(float)inter != inter)
        return gi_fail(err, "writing %s: scl_slope %g / scl_inter %g must be finite float32 values, slope > 0",
                       path, slope, inter);
    return write_like(geom, DT_UINT16, codes, slope, inter, path, description, err);
}

int gi_volume_4d_header(const gi_volume *geom, int nt, const char *path, const char *description,
                        unsigned char *buf, size_t *len, gi_err *err)
{
    quiet_niftilib();
    const nifti_image *src = geom->hdr;
    if (!src)
        return gi_fail(err, "writing %s: the geometry has no NIfTI header", path);
    if (nt < 1)
        return gi_fail(err, "writing %s: a 4-D file needs at least one volume", path);
    nifti_image *nim = nifti_copy_nim_info(src);
    if (!nim)
        return gi_fail(err, "writing %s: out of memory", path);
    set_3d(nim, src->nx, src->ny, src->nz);
    nim->ndim = nim->dim[0] = 4;
    nim->nt = nim->dim[4] = nt;
    nim->dt = nim->pixdim[4] = 1;
    nim->nvox = (int64_t)src->nx * src->ny * src->nz * nt;
    set_datatype(nim, DT_FLOAT32);
    nim->scl_slope = 1;
    nim->scl_inter = 0;
    nim->cal_min = nim->cal_max = 0;
    nim->toffset = 0;
    nim->time_units = NIFTI_UNITS_UNKNOWN;   /* the 4th axis is an index (genes), not time */
    nim->intent_code = NIFTI_INTENT_NONE;
    nim->intent_p1 = nim->intent_p2 = nim->intent_p3 = 0;
    memset(nim->intent_name, 0, sizeof nim->intent_name);
    memset(nim->descrip, 0, sizeof nim->descrip);
    memset(nim->aux_file, 0, sizeof nim->aux_file);
    if (description)
        snprintf(nim->descrip, sizeof nim->descrip, "%s", description);
    int nver = src->nifti_type == NIFTI_FTYPE_NIFTI2_1 ? 2 : 1;
    int rc = build_header(nim, nver, path, buf, len, err);
    nifti_image_free(nim);
    return rc;
}

int gi_volume_write_new(int nx, int ny, int nz, const double affine[16], int code,
                        const float *data, int is_label, const char *path, gi_err *err)
{
    quiet_niftilib();
    if (nx < 1 || ny < 1 || nz < 1)
        return gi_fail(err, "writing %s: bad dimensions %d x %d x %d", path, nx, ny, nz);
    if (code < 1 || code > 5)
        return gi_fail(err, "writing %s: sform/qform code %d is not a NIfTI space code "
                       "(1 scanner, 2 aligned, 3 Talairach, 4 MNI152, 5 template)", path, code);
    double inv[16];
    for (int q = 0; q < 16; q++)
        if (!isfinite(affine[q]))
            return gi_fail(err, "writing %s: the affine has a non-finite entry", path);
    if (affine[12] != 0 || affine[13] != 0 || affine[14] != 0 || affine[15] != 1 ||
        gi_affine_invert(affine, inv))
        return gi_fail(err, "writing %s: the affine must be invertible with last row "
                       "0 0 0 1", path);

    const size_t nvox = (size_t)nx * (size_t)ny * (size_t)nz;
    int datatype = DT_FLOAT32;
    void *labels = NULL;
    float lo = 0, hi = 0;
    if (is_label) {
        for (size_t q = 0; q < nvox; q++) {
            float x = data[q];
            if (!isfinite(x) || x != nearbyintf(x))
                return gi_fail(err, "writing %s: label volume has a non-integer value %g at "
                               "voxel %zu", path, (double)x, q);
            if (q == 0 || x < lo)
                lo = x;
            if (q == 0 || x > hi)
                hi = x;
        }
        if (lo >= 0 && hi <= 255)
            datatype = DT_UINT8;
        else if (lo >= -32768 && hi <= 32767)
            datatype = DT_INT16;
        else
            return gi_fail(err, "writing %s: label values %g..%g do not fit in int16", path,
                           (double)lo, (double)hi);
        labels = malloc(nvox * (datatype == DT_UINT8 ? 1 : 2));
        if (!labels)
            return gi_fail(err, "writing %s: out of memory", path);
        for (size_t q = 0; q < nvox; q++) {
            if (datatype == DT_UINT8)
                ((uint8_t *)labels)[q] = (uint8_t)data[q];
            else
                ((int16_t *)labels)[q] = (int16_t)data[q];
        }
    }

    const int64_t dims[8] = {3, nx, ny, nz, 1, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(dims, datatype, 0);
    if (!nim) {
        free(labels);
        return gi_fail(err, "writing %s: niftilib could not create the image", path);
    }
    set_3d(nim, nx, ny, nz);
    set_datatype(nim, datatype);

    nifti_dmat44 A;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            A.m[r][c] = affine[4 * r + c];
    /* sform = the affine exactly; qform = its rigid part + voxel sizes (the
     * closest a quaternion can come; identical for any rotation-and-scaling
     * affine such as MNI152 grids). pixdim = column lengths. */
    nim->sform_code = code;
    nim->sto_xyz = A;
    nim->sto_ijk = nifti_dmat44_inverse(A);
    double dx, dy, dz, qfac;
    nifti_dmat44_to_quatern(A, &nim->quatern_b, &nim->quatern_c, &nim->quatern_d,
                            &nim->qoffset_x, &nim->qoffset_y, &nim->qoffset_z, &dx, &dy, &dz,
                            &qfac);
    nim->qfac = qfac;
    nim->qform_code = code;
    nim->qto_xyz = nifti_quatern_to_dmat44(nim->quatern_b, nim->quatern_c, nim->quatern_d,
                                           nim->qoffset_x, nim->qoffset_y, nim->qoffset_z,
                                           dx, dy, dz, qfac);
    nim->qto_ijk = nifti_dmat44_inverse(nim->qto_xyz);
    nim->dx = nim->pixdim[1] = dx;
    nim->dy = nim->pixdim[2] = dy;
    nim->dz = nim->pixdim[3] = dz;
    nim->pixdim[0] = qfac;
    nim->xyz_units = NIFTI_UNITS_MM;
    nim->time_units = NIFTI_UNITS_UNKNOWN;
    nim->scl_slope = 1;
    nim->scl_inter = 0;
    if (is_label) {
        nim->intent_code = NIFTI_INTENT_LABEL;
        nim->cal_min = lo;
        nim->cal_max = hi;
    }
    snprintf(nim->descrip, sizeof nim->descrip, "geneinr");

    int rc = write_image(nim, 1, is_label ? labels : (const void *)data, path, err);
    nifti_image_free(nim);
    free(labels);
    return rc;
}

/* ---- affines ---------------------------------------------------------------------- */

void gi_affine_apply(const double A[16], double i, double j, double k, double out[3])
{
    for (int r = 0; r < 3; r++)
        out[r] = A[4 * r] * i + A[4 * r + 1] * j + A[4 * r + 2] * k + A[4 * r + 3];
}

/* Gauss-Jordan elimination with partial pivoting on [A | I]. A pivot below
 * 1e-12 times the largest entry of A counts as zero (singular). */
int gi_affine_invert(const double A[16], double inv[16])
{
    double m[4][8];
    double scale = 0;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            m[r][c] = A[4 * r + c];
            m[r][c + 4] = r == c;
            if (!isfinite(m[r][c]))
                return -1;
            if (fabs(m[r][c]) > scale)
                scale = fabs(m[r][c]);
        }
    if (scale == 0)
        return -1;
    for (int c = 0; c < 4; c++) {
        int p = c;
        for (int r = c + 1; r < 4; r++)
            if (fabs(m[r][c]) > fabs(m[p][c]))
                p = r;
        if (fabs(m[p][c]) <= 1e-12 * scale)
            return -1;
        if (p != c)
            for (int q = 0; q < 8; q++) {
                double t = m[c][q];
                m[c][q] = m[p][q];
                m[p][q] = t;
            }
        double d = m[c][c];
        for (int q = 0; q < 8; q++)
            m[c][q] /= d;
        for (int r = 0; r < 4; r++) {
            if (r == c || m[r][c] == 0)
                continue;
            double f = m[r][c];
            for (int q = 0; q < 8; q++)
                m[r][q] -= f * m[c][q];
        }
    }
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            inv[4 * r + c] = m[r][c + 4];
    return 0;
}
