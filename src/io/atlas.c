/* atlas.c - the HDF5 atlas: written collectively by all ranks, read serially
 * (layout in atlas.h).
 *
 * Writing has two phases, because of what parallel HDF5 can and cannot do:
 *   1. gi_atlas_create / gi_atlas_write_slices: every rank opens PATH.tmp
 *      through the MPI-IO driver. /expression and /mask are created up front at
 *      their full size with a fill value (NaN / 0), so any chunk nobody writes
 *      reads as "outside the mask". Each rank writes its own z-slab with a
 *      collective transfer: parallel HDF5 (>= 1.10.2) can write deflated
 *      datasets only collectively, so a rank without slices still joins the
 *      call with an empty selection.
 *   2. gi_atlas_finish: the parallel file is closed and rank 0 alone reopens it
 *      with the default (serial) driver to add what MPI-IO cannot write -
 *      variable-length strings (/genes, /donors, string attributes) - and
 *      /affine. Then PATH.tmp is renamed to PATH.
 *
 * What must stay true:
 *   - a collective function succeeds on every rank or fails on every rank with
 *     the same message (gi_dist_agree); no rank enters the next collective
 *     call alone, so a failure on one rank never leaves the others hanging.
 *   - a file at PATH is complete; PATH.tmp is removed on abort or failure.
 *   - HDF5's automatic error printing is off inside these functions (it would
 *     print a stack trace for failures we handle); the innermost HDF5 message
 *     is appended to our own instead.
 */
#include "geneinr/atlas.h"
#include "geneinr/dist.h"
#include "geneinr/enum_names.h"
#include "geneinr/h5.h"
#include "geneinr/h5_seal.h"
#include "geneinr/version.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>

#define ATLAS_LAYOUT                                                                          \
    "/expression[gene][k][j][i] float32, NaN outside mask; /mask[k][j][i] uint8, 1 inside; " \
    "/affine maps (i,j,k,1) to MNI mm; /genes and /donors are UTF-8 names"
/* ... and what an atlas with the issue-28 datasets adds to it. */
/* ... what a uint16 atlas says instead of "float32, NaN outside mask". */
#define ATLAS_LAYOUT_U16                                                                                  \
    "/expression[gene][k][j][i] uint16 codes: value = offset[gene] + scale[gene] * code (attributes scale, " \
    "offset), code 0 = NaN (outside mask); /mask[k][j][i] uint8, 1 inside; /affine maps (i,j,k,1) to MNI mm; " \
    "/genes and /donors are UTF-8 names"
#define ATLAS_ENCODING                                                                                         \
    "uint16 codes, each gene its own scale and offset: value = offset[g] + scale[g] * code for code 1..65535, " \
    "code 0 = NaN (outside the mask); scale = (max - min) / 65534 of the gene's in-mask values (float32, "     \
    "rounded up), offset = min - scale: |value - float32 render| <= scale / 2 + float rounding"
#define ATLAS_LAYOUT_SD                                                                          \
    "; /uncertainty[gene][k][j][i] float32: predictive SD of /expression, same units, NaN outside mask"
#define ATLAS_LAYOUT_SAMPLES                                                                        \
    "; /distance[k][j][i] float32: mm to the nearest sample, NaN outside mask; /sample_mni[n][3] float64 " \
    "MNI mm and /sample_donor[n] UTF-8 donor names of the samples"

struct gi_atlas_writer {
    MPI_Comm comm;                /* our own duplicate of the caller's communicator */
    int rank, size;
    char *path, *tmp_path;
    hid_t file, expr, mask, dxpl; /* -1 when not open */
    hid_t sd, dist;               /* /uncertainty, /distance: -1 when not made */
    /* Copies of gi_atlas_info for the serial metadata phase (the caller's
     * memory may be gone by then). */
    int n_genes, n_donors;
    char **genes, **donors;
    int nx, ny, nz;
    double affine[16];
    char *units, *normalisation, *config_yaml, *rendered_for, *kind;
    int compress;
    int every_slice_written;
    int chunk_genes;              /* genes per chunk of /expression */
    int dtype;                    /* GI_DTYPE_FLOAT32 or GI_DTYPE_UINT16 */
    double *scale, *offset;       /* uint16: [n_genes], set by gi_atlas_set_range */
    unsigned char *range_set;     /* uint16: [n_genes] 1 once set */
    uint16_t *codes;              /* uint16: the codes of the block being written */
    size_t codes_cap;             /* elements of codes */
    int uncertainty, distance;    /* gi_atlas_info's */
    char *uncertainty_what, *sample_source;
    int n_samples;
    double *sample_mni;           /* [n_samples][3] */
    char **sample_donor;          /* [n_samples] */
    /* Content digests of the (gene, z-slice) pieces this rank wrote,
     * [n_genes][nz][2], all-zero where it wrote none; summed over the ranks
     * at the end (each piece has one writer), so the seal needs no read-back. */
    uint64_t *slice_h;
    /* How often this rank wrote each piece, [n_genes][nz]: summed over the
     * ranks, a piece written other than exactly once (twice, or by two
     * ranks) has no trustworthy digest and is read back by the seal. */
    uint32_t *slice_n;
    /* The same for /uncertainty (NULL without it). */
    uint64_t *sd_h;
    uint32_t *sd_n;
};

/* ---- small helpers -------------------------------------------------------- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Copy n (non-NULL) strings; NULL (with *bad set) if memory runs out. */
static char **copy_strings(const char *const *src, int n, int *bad)
{
    char **v = calloc(n > 0 ? (size_t)n : 1, sizeof *v);
    if (!v) {
        *bad = 1;
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (!(v[i] = strdup(src[i]))) {
            gi_h5_free_strings(v, n);
            *bad = 1;
            return NULL;
        }
    }
    return v;
}

/* ---- writer: set-up ----------------------------------------------------- */

static void writer_free(gi_atlas_writer *w)
{
    if (!w)
        return;
    if (w->comm != MPI_COMM_NULL)
        MPI_Comm_free(&w->comm);
    free(w->path);
    free(w->tmp_path);
    gi_h5_free_strings(w->genes, w->n_genes);
    gi_h5_free_strings(w->donors, w->n_donors);
    free(w->units);
    free(w->normalisation);
    free(w->config_yaml);
    free(w->rendered_for);
    free(w->kind);
    free(w->slice_h);
    free(w->slice_n);
    free(w->sd_h);
    free(w->sd_n);
    free(w->scale);
    free(w->offset);
    free(w->range_set);
    free(w->codes);
    free(w->uncertainty_what);
    free(w->sample_source);
    free(w->sample_mni);
    gi_h5_free_strings(w->sample_donor, w->n_samples);
    free(w);
}

/* Local (not collective): check info and copy it into w. */
static int writer_fill(gi_atlas_writer *w, const char *path, const gi_atlas_info *info, gi_err *err)
{
    if (!path || !path[0])
        return gi_fail(err, "atlas: no output path given");
    if (!info)
        return gi_fail(err, "%s: no atlas description given", path);
    if (info->n_genes < 1 || !info->genes)
        return gi_fail(err, "%s: an atlas needs at least one gene (got %d)", path, info->n_genes);
    if (info->n_donors < 0 || (info->n_donors > 0 && !info->donors))
        return gi_fail(err, "%s: bad donor list (%d donors)", path, info->n_donors);
    if (info->nx < 1 || info->ny < 1 || info->nz < 1)
        return gi_fail(err, "%s: bad grid %d x %d x %d", path, info->nx, info->ny, info->nz);
    if (info->chunk_genes < 0)
        return gi_fail(err, "%s: genes per chunk %d is negative (0 = automatic)", path, info->chunk_genes);
    /* One chunk is one z-slice of chunk_genes genes; HDF5 chunks must stay below 4 GiB. */
    uint64_t chunk_bytes = (uint64_t)gi_atlas_chunk_genes(info) * (uint64_t)info->nx * (uint64_t)info->ny * sizeof(float);
    if (chunk_bytes >= UINT64_C(4294967295))
        return gi_fail(err, "%s: a chunk of %d genes x one %d x %d z-slice is too large for HDF5 (4 GiB)", path,
                       gi_atlas_chunk_genes(info), info->nx, info->ny);
    if (!info->kind || !info->kind[0])
        return gi_fail(err, "%s: the atlas kind (\"atlas\" or \"truth\") is not set", path);
    if (info->dtype != GI_DTYPE_FLOAT32 && info->dtype != GI_DTYPE_UINT16)
        return gi_fail(err, "%s: /expression data type %d is neither float32 (%d) nor uint16 (%d)", path, info->dtype,
                       GI_DTYPE_FLOAT32, GI_DTYPE_UINT16);
    if (info->compress < 0 || info->compress > 9)
        return gi_fail(err, "%s: deflate level %d is not in 0-9", path, info->compress);
    if (info->compress > 0 && (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0 || H5Zfilter_avail(H5Z_FILTER_SHUFFLE) <= 0))
        return gi_fail(err, "%s: this HDF5 library has no deflate filter; set compress to 0", path);

    for (int i = 0; i < info->n_genes; i++)
        if (!info->genes[i])
            return gi_fail(err, "%s: gene %d has no name", path, i);
    for (int i = 0; i < info->n_donors; i++)
        if (!info->donors[i])
            return gi_fail(err, "%s: donor %d has no name", path, i);
    if (info->n_samples < 0 || (info->n_samples > 0 && (!info->sample_mni || !info->sample_donor)))
        return gi_fail(err, "%s: bad sample list (%d samples)", path, info->n_samples);
    for (int i = 0; i < info->n_samples; i++)
        if (!info->sample_donor[i])
            return gi_fail(err, "%s: sample %d has no donor name", path, i);

    size_t len = strlen(path);
    int bad = 0;
    w->path = strdup(path);
    w->tmp_path = malloc(len + 5);
    if (w->tmp_path)
        snprintf(w->tmp_path, len + 5, "%s.tmp", path);
    w->n_genes = info->n_genes;
    w->genes = copy_strings(info->genes, info->n_genes, &bad);
    w->n_donors = info->n_donors;
    w->donors = copy_strings(info->donors, info->n_donors, &bad);
    w->nx = info->nx;
    w->ny = info->ny;
    w->nz = info->nz;
    memcpy(w->affine, info->affine, sizeof w->affine);
    w->units = dup_or_null(info->units);
    w->normalisation = dup_or_null(info->normalisation);
    w->config_yaml = dup_or_null(info->config_yaml);
    w->rendered_for = dup_or_null(info->rendered_for);
    w->kind = strdup(info->kind);
    w->compress = info->compress;
    w->every_slice_written = info->every_slice_written;
    w->chunk_genes = gi_atlas_chunk_genes(info);
    w->slice_h = calloc((size_t)info->n_genes * (size_t)info->nz * 2, sizeof *w->slice_h);
    w->slice_n = calloc((size_t)info->n_genes * (size_t)info->nz, sizeof *w->slice_n);
    w->dtype = info->dtype;
    if (w->dtype == GI_DTYPE_UINT16) {
        w->scale = calloc((size_t)info->n_genes, sizeof *w->scale);
        w->offset = calloc((size_t)info->n_genes, sizeof *w->offset);
        w->range_set = calloc((size_t)info->n_genes, 1);
        if (!w->scale || !w->offset || !w->range_set)
            bad = 1;
    }
    w->uncertainty = info->uncertainty != 0;
    w->distance = info->distance != 0;
    if (w->uncertainty) {
        w->sd_h = calloc((size_t)info->n_genes * (size_t)info->nz * 2, sizeof *w->sd_h);
        w->sd_n = calloc((size_t)info->n_genes * (size_t)info->nz, sizeof *w->sd_n);
        if (!w->sd_h || !w->sd_n)
            bad = 1;
    }
    w->uncertainty_what = dup_or_null(info->uncertainty_what);
    w->sample_source = dup_or_null(info->sample_source);
    if ((info->uncertainty_what && !w->uncertainty_what) || (info->sample_source && !w->sample_source))
        bad = 1;
    if (info->n_samples > 0) {
        w->sample_donor = copy_strings(info->sample_donor, info->n_samples, &bad);
        if (w->sample_donor)
            w->n_samples = info->n_samples;
        if ((w->sample_mni = malloc(sizeof(double) * 3 * (size_t)info->n_samples)))
            memcpy(w->sample_mni, info->sample_mni, sizeof(double) * 3 * (size_t)info->n_samples);
        else
            bad = 1;
    }
    if (bad || !w->slice_h || !w->slice_n || !w->path || !w->tmp_path || !w->kind || (info->units && !w->units) ||
        (info->normalisation && !w->normalisation) || (info->config_yaml && !w->config_yaml) ||
        (info->rendered_for && !w->rendered_for))
        return gi_fail(err, "%s: out of memory", path);
    return 0;
}

int gi_atlas_chunk_genes(const gi_atlas_info *info)
{
    if (!info || info->n_genes < 1)
        return 1;
    if (info->chunk_genes > 0)
        return info->chunk_genes < info->n_genes ? info->chunk_genes : info->n_genes;
    /* /uncertainty has /expression's chunks: the bound is on the file's chunks (the 1 mm atlas of 100
     * genes with its SD, 2 x 18,200 chunks of one gene, failed its writes). */
    long long nz = info->nz > 0 ? info->nz : 1, per_group = nz * (info->uncertainty ? 2 : 1);
    long long groups_max = GI_ATLAS_MAX_CHUNKS / per_group;
    if (groups_max < 1) /* more slices than the bound: one chunk of all genes per slice */
        return info->n_genes;
    long long cg = (info->n_genes + groups_max - 1) / groups_max;
    return (int)(cg < 1 ? 1 : cg);
}

/* Collective: a chunked dataset, chunk[] as given, filled with *fill. */
static hid_t create_dataset(gi_atlas_writer *w, const char *name, hid_t file_type, int ndim,
                            const hsize_t *dims, const hsize_t *chunk, hid_t fill_type, const void *fill,
                            gi_err *err)
{
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), space = -1, dset = -1;
    if (dcpl < 0 || H5Pset_chunk(dcpl, ndim, chunk) < 0 ||
        (w->compress > 0 && (H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, (unsigned)w->compress) < 0)) ||
        H5Pset_fill_value(dcpl, fill_type, fill) < 0 ||
        /* Parallel HDF5 allocates every chunk at creation; write the fill
         * value then, so slices no rank writes read as fill, not garbage -
         * unless every slice will be written anyway: then writing the fill
         * first would write the whole dataset twice. */
        H5Pset_fill_time(dcpl, w->every_slice_written ? H5D_FILL_TIME_NEVER : H5D_FILL_TIME_ALLOC) < 0) {
        gi_h5_fail(err, "%s: cannot set up /%s", w->tmp_path, name);
        goto done;
    }
    space = H5Screate_simple(ndim, dims, NULL);
    if (space < 0) {
        gi_h5_fail(err, "%s: cannot describe the shape of /%s", w->tmp_path, name);
        goto done;
    }
    dset = H5Dcreate2(w->file, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dset < 0)
        gi_h5_fail(err, "%s: cannot create /%s", w->tmp_path, name);
done:
    if (space >= 0)
        H5Sclose(space);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    return dset;
}

/* Collective: create PATH.tmp and its two big datasets. */
static int writer_open(gi_atlas_writer *w, gi_err *err)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* The 1.8 format checksums the metadata, the content hashes among it. */
    if (fapl < 0 || H5Pset_fapl_mpio(fapl, w->comm, MPI_INFO_NULL) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0) {
        if (fapl >= 0)
            H5Pclose(fapl);
        return gi_h5_fail(err, "%s: cannot set up parallel HDF5 access", w->tmp_path);
    }
    w->file = H5Fcreate(w->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    int rc = w->file < 0 ? gi_h5_fail(err, "%s: cannot create the atlas file", w->tmp_path) : 0;
    H5Pclose(fapl);
    if (rc != 0)
        return -1;

    const float nan_fill = NAN;
    const unsigned char zero_fill = 0;
    const uint16_t code_fill = 0;   /* uint16: code 0 = NaN */
    hsize_t edims[4] = { (hsize_t)w->n_genes, (hsize_t)w->nz, (hsize_t)w->ny, (hsize_t)w->nx };
    hsize_t mdims[3] = { (hsize_t)w->nz, (hsize_t)w->ny, (hsize_t)w->nx };
    /* One z-slice per chunk (ranks own z-slabs, so no chunk is shared); the
     * expression's of chunk_genes genes (atlas.h). */
    hsize_t echunk[4] = { (hsize_t)w->chunk_genes, 1, (hsize_t)w->ny, (hsize_t)w->nx };
    hsize_t mchunk[3] = { 1, (hsize_t)w->ny, (hsize_t)w->nx };
    w->expr = w->dtype == GI_DTYPE_UINT16
                  ? create_dataset(w, "expression", H5T_STD_U16LE, 4, edims, echunk, H5T_NATIVE_USHORT, &code_fill, err)
                  : create_dataset(w, "expression", H5T_IEEE_F32LE, 4, edims, echunk, H5T_NATIVE_FLOAT, &nan_fill, err);
    if (w->expr < 0)
        return -1;
    w->mask = create_dataset(w, "mask", H5T_STD_U8LE, 3, mdims, mchunk, H5T_NATIVE_UCHAR, &zero_fill, err);
    if (w->mask < 0)
        return -1;
    /* The SD beside the expression, chunked and filtered alike, so a reader
     * of one gene's SD reads the same chunks as of its expression. */
    if (w->uncertainty &&
        (w->sd = create_dataset(w, "uncertainty", H5T_IEEE_F32LE, 4, edims, echunk, H5T_NATIVE_FLOAT, &nan_fill,
                                err)) < 0)
        return -1;
    if (w->distance &&
        (w->dist = create_dataset(w, "distance", H5T_IEEE_F32LE, 3, mdims, mchunk, H5T_NATIVE_FLOAT, &nan_fill,
                                  err)) < 0)
        return -1;
    w->dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (w->dxpl < 0 || H5Pset_dxpl_mpio(w->dxpl, H5FD_MPIO_COLLECTIVE) < 0)
        return gi_h5_fail(err, "%s: cannot set up collective writes", w->tmp_path);
    return 0;
}

/* Collective: close whatever of the parallel file is open. */
static int writer_close_parallel(gi_atlas_writer *w, gi_err *err)
{
    int rc = 0;
    if (w->dxpl >= 0 && H5Pclose(w->dxpl) < 0)
        rc = gi_h5_fail(err, "%s: cannot close the transfer properties", w->tmp_path);
    if (w->mask >= 0 && H5Dclose(w->mask) < 0 && rc == 0)
        rc = gi_h5_fail(err, "%s: cannot close /mask", w->tmp_path);
    if (w->sd >= 0 && H5Dclose(w->sd) < 0 && rc == 0)
        rc = gi_h5_fail(err, "%s: cannot close /uncertainty", w->tmp_path);
    if (w->dist >= 0 && H5Dclose(w->dist) < 0 && rc == 0)
        rc = gi_h5_fail(err, "%s: cannot close /distance", w->tmp_path);
    if (w->expr >= 0 && H5Dclose(w->expr) < 0 && rc == 0)
        rc = gi_h5_fail(err, "%s: cannot close /expression", w->tmp_path);
    if (w->file >= 0 && H5Fclose(w->file) < 0 && rc == 0)
        rc = gi_h5_fail(err, "%s: cannot close the parallel file", w->tmp_path);
    w->dxpl = w->mask = w->expr = w->sd = w->dist = w->file = -1;
    return rc;
}

/* Collective: truncate PATH.tmp to nothing before closing a file that is
 * being discarded. Closing still writes HDF5's metadata; on a full disk that
 * write fails, on some ranks only - and a failed close leaves ranks waiting
 * for each other in MPI_File_set_size, or a half-closed file that HDF5's
 * clean-up in MPI_Finalize then crashes on. With the file's space released,
 * the closing writes succeed everywhere. */
static void writer_release_space(gi_atlas_writer *w)
{
    MPI_Barrier(w->comm);
    if (w->rank == 0)
        (void)!truncate(w->tmp_path, 0); /* if it fails, the close below may too; nothing better to do */
    MPI_Barrier(w->comm);
}

/* Collective: close, remove PATH.tmp (rank 0), free. */
static void writer_discard(gi_atlas_writer *w)
{
    if (w->file >= 0)
        writer_release_space(w);
    writer_close_parallel(w, NULL);
    MPI_Barrier(w->comm); /* everyone has closed before the file goes */
    if (w->rank == 0)
        unlink(w->tmp_path);
    MPI_Barrier(w->comm); /* and it is gone for everyone on return */
    writer_free(w);
}

gi_atlas_writer *gi_atlas_create(MPI_Comm comm, const char *path, const gi_atlas_info *info, gi_err *err)
{
    gi_err local;
    if (!err)
        err = &local;
    gi_h5_printer printer = gi_h5_quiet();
    gi_atlas_writer *w = calloc(1, sizeof *w);
    int rc;
    if (w) {
        w->comm = MPI_COMM_NULL;
        w->file = w->expr = w->mask = w->dxpl = w->sd = w->dist = -1;
        rc = writer_fill(w, path, info, err);
    } else {
        rc = gi_fail(err, "%s: out of memory", path ? path : "atlas");
    }
    if (gi_dist_agree(comm, rc, err) != 0) {
        writer_free(w);
        gi_h5_loud(printer);
        return NULL;
    }
    MPI_Comm_dup(comm, &w->comm);
    MPI_Comm_rank(w->comm, &w->rank);
    MPI_Comm_size(w->comm, &w->size);
    if (gi_dist_agree(w->comm, writer_open(w, err), err) != 0) {
        writer_discard(w);
        gi_h5_loud(printer);
        return NULL;
    }
    gi_h5_loud(printer);
    return w;
}

/* ---- writer: slices ------------------------------------------------------ */

/* Collective: write the block count[] at start[] of dset from buf (laid out
 * in exactly that shape), or, when empty, join with an empty selection.
 * Selections are agreed before the write so that either every rank enters
 * H5Dwrite or none does. */
static int write_block(gi_atlas_writer *w, hid_t dset, const char *name, int ndim, const hsize_t *start,
                       const hsize_t *count, int empty, hid_t mem_type, const void *buf, gi_err *err)
{
    static const unsigned char dummy = 0;
    hsize_t one = 1;
    int rc = 0;
    hid_t fspace = H5Dget_space(dset);
    hid_t mspace = empty ? H5Screate_simple(1, &one, NULL) : H5Screate_simple(ndim, count, NULL);
    if (fspace < 0 || mspace < 0)
        rc = gi_h5_fail(err, "%s: cannot get the dataspace of /%s", w->tmp_path, name);
    else if (empty ? (H5Sselect_none(fspace) < 0 || H5Sselect_none(mspace) < 0)
                   : H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0)
        rc = gi_h5_fail(err, "%s: cannot select slices in /%s", w->tmp_path, name);
    if (gi_dist_agree(w->comm, rc, err) == 0) {
        if (H5Dwrite(dset, mem_type, mspace, fspace, w->dxpl, empty ? (const void *)&dummy : buf) < 0)
            rc = gi_h5_fail(err, "%s: cannot write /%s", w->tmp_path, name);
        rc = gi_dist_agree(w->comm, rc, err);
    } else {
        rc = -1;
    }
    if (mspace >= 0)
        H5Sclose(mspace);
    if (fspace >= 0)
        H5Sclose(fspace);
    return rc;
}

/* The (gene, z-slice) digests of a block this rank wrote into a dataset
 * hashed by rows (h5_seal.h), and how often each piece was written. */
static void digest_written(gi_atlas_writer *w, const char *name, int g0, int ng, int z0, int nzb, hid_t mtype,
                           const void *block, uint64_t *h, uint32_t *n)
{
    size_t slice = (size_t)w->ny * (size_t)w->nx, esize = H5Tget_size(mtype);
    const unsigned char *data = block;
    hsize_t sdims[2] = { (hsize_t)w->ny, (hsize_t)w->nx };
    for (int g = 0; g < ng; g++)
        for (int k = 0; k < nzb; k++) {
            size_t piece = (size_t)(g0 + g) * (size_t)w->nz + (size_t)(z0 + k);
            gi_h5_slice_digest(name, g0 + g, z0 + k, mtype, 2, sdims,
                               data + ((size_t)g * (size_t)nzb + (size_t)k) * slice * esize, slice * esize,
                               h + 2 * piece);
            n[piece]++;
        }
}

/* Local: is this block of genes and slices inside the grid, with data? */
static int check_block(const gi_atlas_writer *w, int g0, int ng, int z0, int nzb, const void *data, gi_err *err)
{
    if (nzb < 0 || z0 < 0 || z0 > w->nz - nzb)
        return gi_fail(err, "%s: slices %d..%d are outside the grid's 0..%d", w->tmp_path, z0, z0 + nzb - 1,
                       w->nz - 1);
    if (ng < 1 || g0 < 0 || g0 > w->n_genes - ng)
        return gi_fail(err, "%s: genes %d..%d are outside 0..%d", w->tmp_path, g0, g0 + ng - 1, w->n_genes - 1);
    if (nzb > 0 && !data)
        return gi_fail(err, "%s: no data given for slices %d..%d", w->tmp_path, z0, z0 + nzb - 1);
    return 0;
}

int gi_atlas_write_sd(gi_atlas_writer *w, int g0, int ng, int z0, int nzb, const float *sd, gi_err *err)
{
    gi_err local;
    if (!err)
        err = &local;
    if (!w)
        return gi_fail(err, "atlas: write without an open writer");
    int rc = w->sd < 0 ? gi_fail(err, "%s: the atlas was created without /uncertainty", w->tmp_path)
                       : check_block(w, g0, ng, z0, nzb, sd, err);
    if (gi_dist_agree(w->comm, rc, err) != 0)
        return -1;
    gi_h5_printer printer = gi_h5_quiet();
    hsize_t start[4] = { (hsize_t)g0, (hsize_t)z0, 0, 0 };
    hsize_t count[4] = { (hsize_t)ng, (hsize_t)nzb, (hsize_t)w->ny, (hsize_t)w->nx };
    rc = write_block(w, w->sd, "uncertainty", 4, start, count, nzb == 0, H5T_NATIVE_FLOAT, sd, err);
    if (rc == 0 && nzb > 0)
        digest_written(w, "uncertainty", g0, ng, z0, nzb, H5T_NATIVE_FLOAT, sd, w->sd_h, w->sd_n);
    gi_h5_loud(printer);
    return rc;
}

int gi_atlas_write_distance(gi_atlas_writer *w, int z0, int nzb, const float *dist, gi_err *err)
{
    gi_err local;
    if (!err)
        err = &local;
    if (!w)
        return gi_fail(err, "atlas: write without an open writer");
    int rc = w->dist < 0 ? gi_fail(err, "%s: the atlas was created without /distance", w->tmp_path)
                         : check_block(w, 0, 1, z0, nzb, dist, err);
    if (gi_dist_agree(w->comm, rc, err) != 0)
        return -1;
    gi_h5_printer printer = gi_h5_quiet();
    hsize_t start[3] = { (hsize_t)z0, 0, 0 };
    hsize_t count[3] = { (hsize_t)nzb, (hsize_t)w->ny, (hsize_t)w->nx };
    rc = write_block(w, w->dist, "distance", 3, start, count, nzb == 0, H5T_NATIVE_FLOAT, dist, err);
    gi_h5_loud(printer);
    return rc;
}

/* ---- writer: uint16 coding ---------------------------------------------- */

int gi_atlas_writer_dtype(const gi_atlas_writer *w)
{
    return w ? w->dtype : GI_DTYPE_FLOAT32;
}

/* 65,535 codes for values, 0 for NaN: the range spans codes 1 .. 65535, 65534 steps. */
#define U16_STEPS 65534.0

void gi_atlas_u16_coding(double lo, double hi, double *scale, double *offset)
{
    if (!isfinite(lo) || !isfinite(hi) || lo > hi) {   /* no value: every code is 0 */
        *scale = 1;
        *offset = 0;
        return;
    }
    double s = (hi - lo) / U16_STEPS;
    /* float32 (the NIfTI header's scl_slope), rounded up so that the 65534
     * steps still span the range; 1 for a constant gene (a NIfTI slope of 0
     * would mean "unscaled"), or one too small to be a normal float. */
    float sf = (float)s;
    if ((double)sf < s)
        sf = nextafterf(sf, INFINITY);
    if (!(sf >= FLT_MIN) || !isfinite(sf))
        sf = 1;
    *scale = sf;
    *offset = (float)(lo - (double)sf);
}

uint16_t gi_atlas_u16_encode(float v, double scale, double offset)
{
    if (!isfinite(v))
        return 0;
    double c = floor(((double)v - offset) / scale + 0.5);
    /* Clamped: float rounding of scale and offset can put the range's ends
     * a hair outside 1 .. 65535. */
    return (uint16_t)(c < 1 ? 1 : c > 65535 ? 65535 : c);
}

float gi_atlas_u16_decode(uint16_t code, double scale, double offset)
{
    return code == 0 ? NAN : (float)(offset + scale * (double)code);
}

void gi_atlas_range_add(int ng, size_t nvox, const float *expr, const unsigned char *mask, float *lo, float *hi)
{
    for (int g = 0; g < ng; g++) {
        const float *e = expr + (size_t)g * nvox;
        float l = lo[g], h = hi[g];
        for (size_t v = 0; v < nvox; v++)
            if (mask[v] && isfinite(e[v])) {
                l = e[v] < l ? e[v] : l;
                h = e[v] > h ? e[v] : h;
            }
        lo[g] = l;
        hi[g] = h;
    }
}

int gi_atlas_set_range(gi_atlas_writer *w, int g0, int ng, const float *lo, const float *hi, gi_err *err)
{
    gi_err local;
    if (!err)
        err = &local;
    if (!w)
        return gi_fail(err, "atlas: set_range without an open writer");
    int rc = ng < 1 || g0 < 0 || g0 > w->n_genes - ng || !lo || !hi
                 ? gi_fail(err, "%s: genes %d..%d are outside 0..%d", w->tmp_path, g0, g0 + ng - 1, w->n_genes - 1)
                 : 0;
    if (gi_dist_agree(w->comm, rc, err) != 0)
        return -1;
    if (w->dtype != GI_DTYPE_UINT16)
        return 0;
    float *r = malloc(sizeof *r * 2 * (size_t)ng);
    if (gi_dist_agree(w->comm, r ? 0 : gi_fail(err, "%s: out of memory", w->tmp_path), err) != 0) {
        free(r);
        return -1;
    }
    /* min as max of the negated, so one reduction does both; exact, so every
     * rank count gives the same range */
    for (int g = 0; g < ng; g++) {
        r[g] = -lo[g];
        r[ng + g] = hi[g];
    }
    MPI_Allreduce(MPI_IN_PLACE, r, 2 * ng, MPI_FLOAT, MPI_MAX, w->comm);
    for (int g = 0; g < ng; g++) {
        gi_atlas_u16_coding(-(double)r[g], (double)r[ng + g], &w->scale[g0 + g], &w->offset[g0 + g]);
        w->range_set[g0 + g] = 1;
    }
    free(r);
    return 0;
}

/* Local: the block's codes into w->codes (the range of its genes set). */
static int encode_block(gi_atlas_writer *w, int g0, int ng, int nzb, const float *expr, gi_err *err)
{
    for (int g = 0; g < ng; g++)
        if (!w->range_set[g0 + g])
            return gi_fail(err, "%s: gene %d is written before its range (gi_atlas_set_range)", w->tmp_path, g0 + g);
    size_t per_gene = (size_t)nzb * (size_t)w->ny * (size_t)w->nx, n = per_gene * (size_t)ng;
    if (n > w->codes_cap) {
        uint16_t *c = realloc(w->codes, (n ? n : 1) * sizeof *c);
        if (!c)
            return gi_fail(err, "%s: out of memory for the uint16 codes of %d genes x %d slices", w->tmp_path, ng, nzb);
        w->codes = c;
        w->codes_cap = n;
    }
    for (int g = 0; g < ng; g++) {
        double sc = w->scale[g0 + g], off = w->offset[g0 + g];
        const float *e = expr + (size_t)g * per_gene;
        uint16_t *c = w->codes + (size_t)g * per_gene;
        for (size_t v = 0; v < per_gene; v++)
            c[v] = gi_atlas_u16_encode(e[v], sc, off);
    }
    return 0;
}

int gi_atlas_write_genes(gi_atlas_writer *w, int g0, int ng, int z0, int nzb, const float *expr,
                         const unsigned char *mask, gi_err *err)
{
    gi_err local;
    if (!err)
        err = &local;
    if (!w)
        return gi_fail(err, "atlas: write without an open writer");
    int rc = check_block(w, g0, ng, z0, nzb, expr, err);
    if (rc == 0 && w->dtype == GI_DTYPE_UINT16)
        rc = encode_block(w, g0, ng, nzb, expr, err);
    /* Whether /mask is written must be the same on every rank (it is a
     * collective call): it is, when mask is given on all or none. */
    int with_mask = mask != NULL || nzb == 0, all_mask;
    MPI_Allreduce(&with_mask, &all_mask, 1, MPI_INT, MPI_MIN, w->comm);
    if (gi_dist_agree(w->comm, rc, err) != 0)
        return -1;

    gi_h5_printer printer = gi_h5_quiet();
    int empty = nzb == 0;
    hsize_t estart[4] = { (hsize_t)g0, (hsize_t)z0, 0, 0 };
    hsize_t ecount[4] = { (hsize_t)ng, (hsize_t)nzb, (hsize_t)w->ny, (hsize_t)w->nx };
    hsize_t mstart[3] = { (hsize_t)z0, 0, 0 };
    hsize_t mcount[3] = { (hsize_t)nzb, (hsize_t)w->ny, (hsize_t)w->nx };
    int u16 = w->dtype == GI_DTYPE_UINT16;
    hid_t mtype = u16 ? H5T_NATIVE_USHORT : H5T_NATIVE_FLOAT;
    const void *data = u16 ? (const void *)w->codes : (const void *)expr;
    rc = write_block(w, w->expr, "expression", 4, estart, ecount, empty, mtype, data, err);
    if (rc == 0 && !empty)
        digest_written(w, "expression", g0, ng, z0, nzb, mtype, data, w->slice_h, w->slice_n);
    if (rc == 0 && all_mask)
        rc = write_block(w, w->mask, "mask", 3, mstart, mcount, empty, H5T_NATIVE_UCHAR, mask, err);
    gi_h5_loud(printer);
    return rc;
}

int gi_atlas_write_slices(gi_atlas_writer *w, int z0, int nzb, const float *expr, const unsigned char *mask,
                          gi_err *err)
{
    gi_err local;
    if (!err)
        err = &local;
    int rc = w ? 0 : gi_fail(err, "atlas: write_slices without an open writer");
    if (rc == 0 && nzb > 0 && !mask)
        rc = gi_fail(err, "%s: no mask given for slices %d..%d", w->tmp_path, z0, z0 + nzb - 1);
    if (!w)
        return -1;
    if (gi_dist_agree(w->comm, rc, err) != 0)
        return -1;
    return gi_atlas_write_genes(w, 0, w->n_genes, z0, nzb, expr, mask, err);
}

/* ---- writer: serial metadata phase (rank 0) ----------------------------- */

/* /name, float64 [rows][cols] (contiguous). */
static int put_matrix(hid_t file, const char *where, const char *name, int rows, int cols, const double *v,
                      gi_err *err)
{
    hsize_t dims[2] = { (hsize_t)rows, (hsize_t)cols };
    hid_t space = H5Screate_simple(2, dims, NULL), dset = -1;
    int rc = 0;
    if (space < 0 ||
        (dset = H5Dcreate2(file, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
        rc = gi_h5_fail(err, "%s: cannot write /%s", where, name);
    if (dset >= 0 && H5Dclose(dset) < 0 && rc == 0)
        rc = gi_h5_fail(err, "%s: cannot write /%s", where, name);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

/* Attributes of dataset name. */
static int put_dataset_attrs(hid_t file, const char *where, const char *name, const char *units, const char *what,
                             gi_err *err)
{
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0)
        return gi_h5_fail(err, "%s: cannot reopen /%s", where, name);
    int rc = (units && gi_h5_put_attr_str(d, where, "units", units, err) != 0) ||
                     (what && gi_h5_put_attr_str(d, where, "what", what, err) != 0)
                 ? -1
                 : 0;
    H5Dclose(d);
    return rc;
}

/* Rank 0 alone: reopen PATH.tmp serially and add names, affine and attributes. */
static int write_metadata(gi_atlas_writer *w, gi_err *err)
{
    const char *where = w->tmp_path;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t file = fapl >= 0 && H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) >= 0
                     ? H5Fopen(where, H5F_ACC_RDWR, fapl)
                     : -1;
    if (fapl >= 0)
        H5Pclose(fapl);
    if (file < 0)
        return gi_h5_fail(err, "%s: cannot reopen to add metadata", where);
    char created[32];
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &utc);

    char layout[sizeof ATLAS_LAYOUT_U16 + sizeof ATLAS_LAYOUT + sizeof ATLAS_LAYOUT_SD + sizeof ATLAS_LAYOUT_SAMPLES];
    snprintf(layout, sizeof layout, "%s%s%s", w->dtype == GI_DTYPE_UINT16 ? ATLAS_LAYOUT_U16 : ATLAS_LAYOUT, w->uncertainty ? ATLAS_LAYOUT_SD : "",
             w->distance || w->n_samples > 0 ? ATLAS_LAYOUT_SAMPLES : "");
    hid_t expr = -1;
    int rc = 0;
    if (put_matrix(file, where, "affine", 4, 4, w->affine, err) != 0 ||
        gi_h5_put_strings(file, where, "genes", w->genes, w->n_genes, 0, err) != 0 ||
        gi_h5_put_strings(file, where, "donors", w->donors, w->n_donors, 0, err) != 0 ||
        gi_h5_put_attr_str(file, where, "geneinr_version", GENEINR_VERSION, err) != 0 ||
        gi_h5_put_attr_str(file, where, "created", created, err) != 0 ||
        (w->config_yaml && gi_h5_put_attr_str(file, where, "config", w->config_yaml, err) != 0) ||
        (w->rendered_for && gi_h5_put_attr_str(file, where, "rendered_for", w->rendered_for, err) != 0) ||
        gi_h5_put_attr_str(file, where, "kind", w->kind, err) != 0 ||
        gi_h5_put_attr_str(file, where, "layout", layout, err) != 0)
        rc = -1;
    else if (w->n_samples > 0 &&
             (put_matrix(file, where, "sample_mni", w->n_samples, 3, w->sample_mni, err) != 0 ||
              gi_h5_put_strings(file, where, "sample_donor", w->sample_donor, w->n_samples, 0, err) != 0 ||
              (w->sample_source && gi_h5_put_attr_str(file, where, "sample_source", w->sample_source, err) != 0)))
        rc = -1;
    else if (w->uncertainty && put_dataset_attrs(file, where, "uncertainty", w->units, w->uncertainty_what, err) != 0)
        rc = -1;
    else if (w->distance &&
             put_dataset_attrs(file, where, "distance", "mm", "distance from the voxel centre (MNI mm) to the nearest "
                               "sample of /sample_mni", err) != 0)
        rc = -1;
    else if ((expr = H5Dopen2(file, "expression", H5P_DEFAULT)) < 0)
        rc = gi_h5_fail(err, "%s: cannot reopen /expression", where);
    else if ((w->units && gi_h5_put_attr_str(expr, where, "units", w->units, err) != 0) ||
             (w->normalisation && gi_h5_put_attr_str(expr, where, "normalisation", w->normalisation, err) != 0))
        rc = -1;
    else if (w->dtype == GI_DTYPE_UINT16 &&
             (gi_h5_put_attr_f64_array(expr, where, "scale", w->scale, (hsize_t)w->n_genes, err) != 0 ||
              gi_h5_put_attr_f64_array(expr, where, "offset", w->offset, (hsize_t)w->n_genes, err) != 0 ||
              gi_h5_put_attr_str(expr, where, "encoding", ATLAS_ENCODING, err) != 0))
        rc = -1;
    if (expr >= 0)
        H5Dclose(expr);
    /* Content hashes of every dataset, /expression gene by gene as well, so
     * that a reader checks each gene it reads (h5_seal.h). */
    if (rc == 0) {
        static const char *const by_rows[] = { "expression", "uncertainty" };
        gi_h5_slices known[2] = { { w->n_genes, w->nz, w->slice_h }, { w->n_genes, w->nz, w->sd_h } };
        rc = gi_h5_seal_rows(file, where, w->uncertainty ? 2 : 1, by_rows, known, err);
    }
    if (rc == 0 && H5Fflush(file, H5F_SCOPE_GLOBAL) < 0)
        rc = gi_h5_fail(err, "%s: cannot write the metadata to disk (disk full?)", where);
    /* A file we give up on: release its space so that closing (which writes
     * again) succeeds and leaves no half-closed file behind (see
     * writer_release_space). */
    if (rc != 0)
        (void)!truncate(where, 0);
    if (H5Fclose(file) < 0 && rc == 0)
        rc = gi_h5_fail(err, "%s: cannot close after adding metadata", where);
    return rc;
}

/* Collective: every piece's digest h to rank 0 (one writer each: the others
 * hold zeros, so the XOR is that writer's digest; pieces written other than
 * once, by the counts n, are read back by the seal instead). */
static void gather_digests(gi_atlas_writer *w, uint64_t *h, uint32_t *cnt)
{
    size_t np = (size_t)w->n_genes * (size_t)w->nz, n = np * 2, step = (size_t)1 << 30;
    for (size_t i = 0; i < n; i += step) {
        int c = (int)(n - i < step ? n - i : step);
        MPI_Reduce(w->rank == 0 ? MPI_IN_PLACE : (void *)(h + i), h + i, c, MPI_UINT64_T, MPI_BXOR, 0, w->comm);
    }
    for (size_t i = 0; i < np; i += step) {
        int c = (int)(np - i < step ? np - i : step);
        MPI_Reduce(w->rank == 0 ? MPI_IN_PLACE : (void *)(cnt + i), cnt + i, c, MPI_UINT32_T, MPI_SUM, 0, w->comm);
    }
    if (w->rank == 0)
        for (size_t i = 0; i < np; i++)
            if (cnt[i] != 1)
                h[2 * i] = h[2 * i + 1] = 0;   /* unknown: the seal reads it */
}

int gi_atlas_finish(gi_atlas_writer *w, gi_err *err)
{
    gi_err local;
    if (!err)
        err = &local;
    if (!w)
        return gi_fail(err, "atlas: finish without an open writer");
    gi_h5_printer printer = gi_h5_quiet();
    /* Flush first, agreed: a failure here (a full disk) leaves the file open
     * on every rank, to be discarded as a whole (writer_discard), instead of
     * a close that fails on some ranks only. */
    int rc = H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0
                 ? gi_h5_fail(err, "%s: cannot write the atlas to disk (disk full?)", w->tmp_path)
                 : 0;
    if (gi_dist_agree(w->comm, rc, err) != 0) {
        writer_discard(w);
        gi_h5_loud(printer);
        return -1;
    }
    rc = gi_dist_agree(w->comm, writer_close_parallel(w, err), err);
    if (rc == 0) {
        gather_digests(w, w->slice_h, w->slice_n);
        if (w->uncertainty)
            gather_digests(w, w->sd_h, w->sd_n);
        int rc0 = 0;
        if (w->rank == 0) {
            rc0 = write_metadata(w, err);
            if (rc0 == 0 && rename(w->tmp_path, w->path) != 0)
                rc0 = gi_fail(err, "%s: cannot rename to %s: %s", w->tmp_path, w->path, strerror(errno));
        }
        rc = gi_dist_agree(w->comm, rc0, err); /* also: PATH exists for everyone on return */
    }
    if (rc != 0 && w->rank == 0)
        unlink(w->tmp_path);
    if (rc != 0)
        MPI_Barrier(w->comm);
    writer_free(w);
    gi_h5_loud(printer);
    return rc;
}

void gi_atlas_abort(gi_atlas_writer *w)
{
    if (!w)
        return;
    gi_h5_printer printer = gi_h5_quiet();
    writer_discard(w);
    gi_h5_loud(printer);
}

/* ---- serial reading ------------------------------------------------------ */

static int read_name_list(hid_t file, const char *path, const char *name, char ***out, int *n, gi_err *err)
{
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return gi_fail(err, "%s: not a geneinr atlas (no /%s dataset)", path, name);
    return gi_h5_get_strings(file, path, name, out, n, err);
}

/* Read a whole dataset of exactly the given shape into buf as mem_type. */
static int read_exact(hid_t file, const char *path, const char *name, int ndim, const hsize_t *want,
                      hid_t mem_type, void *buf, gi_err *err)
{
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0)
        return gi_fail(err, "%s: not a geneinr atlas (no /%s dataset)", path, name);
    hid_t space = H5Dget_space(d);
    hsize_t dims[8];
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    int rc = nd == ndim ? 0 : -1;
    if (rc == 0) {
        H5Sget_simple_extent_dims(space, dims, NULL);
        for (int i = 0; i < ndim; i++)
            if (dims[i] != want[i])
                rc = -1;
    }
    if (space >= 0)
        H5Sclose(space);
    if (rc != 0) {
        H5Dclose(d);
        return gi_fail(err, "%s: /%s does not have the expected shape", path, name);
    }
    if (H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        rc = gi_h5_fail(err, "%s: cannot read /%s", path, name);
    H5Dclose(d);
    return rc;
}

/* A uint16 atlas's per-gene scale and offset (attributes of /expression). */
static int read_coding(hid_t file, const char *path, gi_atlas *a, gi_err *err)
{
    size_t n = (size_t)(a->n_genes > 0 ? a->n_genes : 1);
    if (!(a->scale = malloc(sizeof *a->scale * n)) || !(a->offset = malloc(sizeof *a->offset * n)))
        return gi_fail(err, "%s: out of memory", path);
    hid_t d = H5Dopen2(file, "expression", H5P_DEFAULT);
    if (d < 0)
        return gi_h5_fail(err, "%s: cannot open /expression", path);
    char where[1100];
    snprintf(where, sizeof where, "%s: /expression (uint16)", path);
    int rc = gi_h5_get_attr_f64_array(d, where, "scale", a->scale, (hsize_t)a->n_genes, err) != 0 ||
                     gi_h5_get_attr_f64_array(d, where, "offset", a->offset, (hsize_t)a->n_genes, err) != 0
                 ? -1
                 : 0;
    H5Dclose(d);
    for (int g = 0; rc == 0 && g < a->n_genes; g++)
        if (!(a->scale[g] > 0) || !isfinite(a->scale[g]) || !isfinite(a->offset[g]))
            rc = gi_fail(err, "%s: gene %d (%s) has scale %g, offset %g (a scale must be finite and > 0)", where, g,
                         a->genes[g], a->scale[g], a->offset[g]);
    return rc;
}

static int atlas_load(gi_atlas *a, const char *path, gi_err *err)
{
    if (access(path, R_OK) != 0)
        return gi_fail(err, "%s: cannot read: %s", path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0)
        return gi_fail(err, "%s: not an HDF5 file", path);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        return gi_h5_fail(err, "%s: cannot open", path);
    a->file_id = (long long)file;
    if (H5Lexists(file, "expression", H5P_DEFAULT) <= 0)
        return gi_fail(err, "%s: not a geneinr atlas (no /expression dataset)", path);

    /* Shape from /expression: [gene][nz][ny][nx] floats. */
    hid_t d = H5Dopen2(file, "expression", H5P_DEFAULT);
    if (d < 0)
        return gi_h5_fail(err, "%s: cannot open /expression", path);
    hid_t space = H5Dget_space(d), type = H5Dget_type(d);
    hsize_t dims[4] = { 0, 0, 0, 0 };
    int is_u16 = type >= 0 && H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == 2 &&
                 H5Tget_sign(type) == H5T_SGN_NONE;
    int ok = space >= 0 && type >= 0 && (H5Tget_class(type) == H5T_FLOAT || is_u16) &&
             H5Sget_simple_extent_ndims(space) == 4 && H5Sget_simple_extent_dims(space, dims, NULL) == 4;
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    H5Dclose(d);
    if (!ok)
        return gi_fail(err, "%s: /expression is not a 4-D floating-point or uint16 dataset", path);
    for (int i = 0; i < 4; i++)
        if (dims[i] > INT32_MAX)
            return gi_fail(err, "%s: /expression is too large", path);
    int n_genes = (int)dims[0];
    a->nz = (int)dims[1];
    a->ny = (int)dims[2];
    a->nx = (int)dims[3];

    if (read_name_list(file, path, "genes", &a->genes, &a->n_genes, err) != 0)
        return -1;
    if (a->n_genes != n_genes)
        return gi_fail(err, "%s: /genes has %d names but /expression has %d genes", path, a->n_genes, n_genes);
    a->dtype = is_u16 ? GI_DTYPE_UINT16 : GI_DTYPE_FLOAT32;
    if (is_u16 && read_coding(file, path, a, err) != 0)
        return -1;
    if (H5Lexists(file, "donors", H5P_DEFAULT) > 0) {
        if (read_name_list(file, path, "donors", &a->donors, &a->n_donors, err) != 0)
            return -1;
    } else if (!(a->donors = calloc(1, sizeof *a->donors))) {
        return gi_fail(err, "%s: out of memory", path);
    }

    hsize_t adims[2] = { 4, 4 };
    if (read_exact(file, path, "affine", 2, adims, H5T_NATIVE_DOUBLE, a->affine, err) != 0)
        return -1;
    size_t nvox = (size_t)a->nx * (size_t)a->ny * (size_t)a->nz;
    if (!(a->mask = malloc(nvox)))
        return gi_fail(err, "%s: out of memory for the mask", path);
    if (read_exact(file, path, "mask", 3, dims + 1, H5T_NATIVE_UCHAR, a->mask, err) != 0)
        return -1;

    if (gi_h5_get_attr_str(file, path, "geneinr_version", &a->version, err) != 0 ||
        gi_h5_get_attr_str(file, path, "kind", &a->kind, err) != 0 ||
        gi_h5_get_attr_str(file, path, "rendered_for", &a->rendered_for, err) != 0 ||
        gi_h5_get_attr_str(file, path, "config", &a->config_yaml, err) != 0)
        return -1;
    /* Content hashes: everything but /expression now, each gene of it when
     * it is read (gi_atlas_read_gene). Atlases written before them: sealed 0. */
    a->has_uncertainty = H5Lexists(file, "uncertainty", H5P_DEFAULT) > 0;
    a->has_distance = H5Lexists(file, "distance", H5P_DEFAULT) > 0;
    if (a->has_uncertainty) {
        hid_t u = H5Dopen2(file, "uncertainty", H5P_DEFAULT);
        hid_t us = u >= 0 ? H5Dget_space(u) : -1;
        hsize_t udims[4] = { 0, 0, 0, 0 };
        int uok = us >= 0 && H5Sget_simple_extent_ndims(us) == 4 && H5Sget_simple_extent_dims(us, udims, NULL) == 4 &&
                  memcmp(udims, dims, sizeof dims) == 0;
        if (us >= 0)
            H5Sclose(us);
        if (u >= 0)
            H5Dclose(u);
        if (!uok)
            return gi_fail(err, "%s: /uncertainty does not have the shape of /expression", path);
    }
    if (H5Lexists(file, "sample_mni", H5P_DEFAULT) > 0) {
        long long n = gi_h5_dataset_len(file, "sample_mni");
        if (n < 0 || n % 3 != 0 || n / 3 > INT32_MAX)
            return gi_fail(err, "%s: /sample_mni is not [n][3]", path);
        a->n_samples = (int)(n / 3);
    }
    /* The two per-gene datasets are checked a gene at a time as they are read
     * (or all by gi_atlas_verify): reading them whole here would read the atlas. */
    static const char *const by_rows[] = { "expression", "uncertainty" };
    gi_h5_seal_check chk;
    if (gi_h5_verify_skip(file, path, 2, by_rows, &chk, err) != 0 ||
        gi_h5_rows_load(file, path, "expression", &a->rows, err) != 0 ||
        (a->has_uncertainty && gi_h5_rows_load(file, path, "uncertainty", &a->sd_rows, err) != 0))
        return -1;
    a->sealed = chk.sealed;
    return 0;
}

int gi_atlas_open(gi_atlas *a, const char *path, gi_err *err)
{
    gi_err local;
    if (!err)
        err = &local;
    if (!a)
        return gi_fail(err, "atlas: nowhere to open %s into", path ? path : "(null)");
    memset(a, 0, sizeof *a);
    if (!path || !path[0])
        return gi_fail(err, "atlas: no file name given");
    gi_h5_printer printer = gi_h5_quiet();
    int rc = atlas_load(a, path, err);
    if (rc != 0)
        gi_atlas_close(a);
    gi_h5_loud(printer);
    return rc;
}

static int gene_damaged(gi_err *err, const char *path, const gi_atlas *a, const char *name, int g)
{
    return gi_fail(err, "%s: gene %s (/%s[%d]) does not match its content hash (zeroed, replaced, or copied "
                   "from another file): the atlas is damaged; use an intact copy or render it again", path,
                   a->genes[g], name, g);
}

/* Gene g of a per-gene dataset (/expression or /uncertainty), checked against
 * its row hash, as stored: mtype H5T_NATIVE_FLOAT into a float buffer, or
 * H5T_NATIVE_USHORT (uint16 /expression) into a uint16_t one. */
static int read_row(const gi_atlas *a, const char *name, const gi_h5_rows *rows, int g, hid_t mtype, void *vol,
                    gi_err *err)
{
    gi_err local;
    if (!err)
        err = &local;
    if (!a || a->file_id <= 0)
        return gi_fail(err, "atlas: reading a gene from an atlas that is not open");
    gi_h5_printer printer = gi_h5_quiet();
    char path[1024] = "atlas";
    hid_t file = (hid_t)a->file_id;
    H5Fget_name(file, path, sizeof path);
    if (g < 0 || g >= a->n_genes || !vol) {
        gi_h5_loud(printer);
        if (!vol)
            return gi_fail(err, "%s: no buffer for gene %d", path, g);
        return gi_fail(err, "%s: gene index %d is not in 0..%d", path, g, a->n_genes - 1);
    }
    hsize_t start[4] = { (hsize_t)g, 0, 0, 0 };
    hsize_t count[4] = { 1, (hsize_t)a->nz, (hsize_t)a->ny, (hsize_t)a->nx };
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    hid_t fspace = d >= 0 ? H5Dget_space(d) : -1;
    hid_t mspace = H5Screate_simple(3, count + 1, NULL);
    int rc = 0;
    if (d < 0 || fspace < 0 || mspace < 0 ||
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dread(d, mtype, mspace, fspace, H5P_DEFAULT, vol) < 0)
        rc = gi_h5_fail(err, "%s: cannot read gene %d (%s) from /%s", path, g, a->genes[g], name);
    if (rc == 0 && gi_h5_rows_check(rows, path, name, g, mtype, 3, count + 1, vol,
                                    H5Tget_size(mtype) * (size_t)a->nz * (size_t)a->ny * (size_t)a->nx, err) != 0)
        rc = gene_damaged(err, path, a, name, g);
    if (mspace >= 0)
        H5Sclose(mspace);
    if (fspace >= 0)
        H5Sclose(fspace);
    if (d >= 0)
        H5Dclose(d);
    gi_h5_loud(printer);
    return rc;
}

int gi_atlas_read_gene(const gi_atlas *a, int g, float *vol, gi_err *err)
{
    if (!a || a->dtype != GI_DTYPE_UINT16)
        return read_row(a, "expression", a ? &a->rows : NULL, g, H5T_NATIVE_FLOAT, vol, err);
    /* uint16: the codes (hash-checked as stored), decoded into vol */
    gi_err local;
    if (!err)
        err = &local;
    size_t n = (size_t)a->nz * (size_t)a->ny * (size_t)a->nx;
    uint16_t *codes = malloc(sizeof *codes * (n ? n : 1));
    double sc, off;
    if (!codes)
        return gi_fail(err, "atlas: out of memory to read gene %d", g);
    int rc = gi_atlas_read_codes(a, g, codes, &sc, &off, err);
    if (rc == 0 && vol)
        for (size_t v = 0; v < n; v++)
            vol[v] = gi_atlas_u16_decode(codes[v], sc, off);
    free(codes);
    return rc;
}

int gi_atlas_read_codes(const gi_atlas *a, int g, uint16_t *codes, double *scale, double *offset, gi_err *err)
{
    gi_err local;
    if (!err)
        err = &local;
    if (a && a->file_id > 0 && a->dtype != GI_DTYPE_UINT16) {
        char path[1024] = "atlas";
        H5Fget_name((hid_t)a->file_id, path, sizeof path);
        return gi_fail(err, "%s: /expression is float32, not uint16 codes", path);
    }
    int rc = read_row(a, "expression", a ? &a->rows : NULL, g, H5T_NATIVE_USHORT, codes, err);
    if (rc == 0) {
        *scale = a->scale[g];
        *offset = a->offset[g];
    }
    return rc;
}

int gi_atlas_read_sd(const gi_atlas *a, int g, float *vol, gi_err *err)
{
    gi_err local;
    if (!err)
        err = &local;
    if (a && a->file_id > 0 && !a->has_uncertainty) {
        char path[1024] = "atlas";
        H5Fget_name((hid_t)a->file_id, path, sizeof path);
        return gi_fail(err, "%s: the atlas has no /uncertainty (rendered without render.uncertainty)", path);
    }
    return read_row(a, "uncertainty", a ? &a->sd_rows : NULL, g, H5T_NATIVE_FLOAT, vol, err);
}

int gi_atlas_read_distance(const gi_atlas *a, float *vol, gi_err *err)
{
    gi_err local;
    if (!err)
        err = &local;
    if (!a || a->file_id <= 0 || !vol)
        return gi_fail(err, "atlas: reading /distance from an atlas that is not open (or into no buffer)");
    gi_h5_printer printer = gi_h5_quiet();
    char path[1024] = "atlas";
    H5Fget_name((hid_t)a->file_id, path, sizeof path);
    int rc;
    if (!a->has_distance) {
        rc = gi_fail(err, "%s: the atlas has no /distance (rendered without render.uncertainty)", path);
    } else {
        hsize_t dims[3] = { (hsize_t)a->nz, (hsize_t)a->ny, (hsize_t)a->nx };
        rc = read_exact((hid_t)a->file_id, path, "distance", 3, dims, H5T_NATIVE_FLOAT, vol, err);
    }
    gi_h5_loud(printer);
    return rc;
}

int gi_atlas_read_samples(const gi_atlas *a, int *n, double **mni, char ***donor, gi_err *err)
{
    gi_err local;
    if (!err)
        err = &local;
    *n = 0;
    *mni = NULL;
    *donor = NULL;
    if (!a || a->file_id <= 0)
        return gi_fail(err, "atlas: reading the samples of an atlas that is not open");
    if (a->n_samples == 0)
        return 0;
    gi_h5_printer printer = gi_h5_quiet();
    char path[1024] = "atlas";
    hid_t file = (hid_t)a->file_id;
    H5Fget_name(file, path, sizeof path);
    hsize_t dims[2] = { (hsize_t)a->n_samples, 3 };
    double *m = malloc(sizeof *m * 3 * (size_t)a->n_samples);
    char **d = NULL;
    int nd = 0;
    int rc = m ? read_exact(file, path, "sample_mni", 2, dims, H5T_NATIVE_DOUBLE, m, err)
               : gi_fail(err, "%s: out of memory for %d samples", path, a->n_samples);
    if (rc == 0)
        rc = read_name_list(file, path, "sample_donor", &d, &nd, err);
    if (rc == 0 && nd != a->n_samples)
        rc = gi_fail(err, "%s: /sample_donor has %d names for %d samples in /sample_mni", path, nd, a->n_samples);
    gi_h5_loud(printer);
    if (rc != 0) {
        free(m);
        gi_h5_free_strings(d, nd);
        return -1;
    }
    *n = a->n_samples;
    *mni = m;
    *donor = d;
    return 0;
}

/* Every gene of a per-gene dataset, read a block of whole chunks at a time
 * (the genes of one chunk x as many z-slices as fit in ~64 MB), so each chunk
 * is decompressed once even when a chunk holds several genes (reading gene
 * by gene would decompress each chunk once per gene in it). */
static int verify_rows(const gi_atlas *a, const char *name, const gi_h5_rows *rows, hid_t mtype, int *n_checked,
                       gi_err *err)
{
    size_t esize = H5Tget_size(mtype);
    gi_h5_printer printer = gi_h5_quiet();
    char path[1024] = "atlas";
    hid_t file = (hid_t)a->file_id;
    H5Fget_name(file, path, sizeof path);
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    hid_t dcpl = d >= 0 ? H5Dget_create_plist(d) : -1;
    hsize_t chunk[4] = { 1, 1, 1, 1 };
    if (dcpl >= 0 && H5D_CHUNKED == H5Pget_layout(dcpl))
        H5Pget_chunk(dcpl, 4, chunk);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    int cg = chunk[0] >= 1 && chunk[0] <= (hsize_t)a->n_genes ? (int)chunk[0] : 1;
    size_t slice = (size_t)a->ny * (size_t)a->nx;
    size_t zb = ((size_t)64 << 20) / (esize * slice * (size_t)cg);
    if (zb < 1)
        zb = 1;
    if (zb > (size_t)a->nz)
        zb = (size_t)a->nz;
    unsigned char *buf = malloc(esize * (size_t)cg * zb * slice);
    uint64_t *sl = malloc(sizeof *sl * 2 * (size_t)cg * (size_t)a->nz);
    int rc = d < 0 ? gi_h5_fail(err, "%s: cannot open /%s", path, name)
                   : !buf || !sl ? gi_fail(err, "%s: out of memory to verify", path) : 0;
    hsize_t sdims[2] = { (hsize_t)a->ny, (hsize_t)a->nx };
    hsize_t rdims[3] = { (hsize_t)a->nz, (hsize_t)a->ny, (hsize_t)a->nx };
    for (int g0 = 0; rc == 0 && g0 < a->n_genes; g0 += cg) {
        int ng = a->n_genes - g0 < cg ? a->n_genes - g0 : cg;
        for (int z0 = 0; rc == 0 && z0 < a->nz; z0 += (int)zb) {
            int nzb = a->nz - z0 < (int)zb ? a->nz - z0 : (int)zb;
            hsize_t start[4] = { (hsize_t)g0, (hsize_t)z0, 0, 0 };
            hsize_t count[4] = { (hsize_t)ng, (hsize_t)nzb, (hsize_t)a->ny, (hsize_t)a->nx };
            hid_t fs = H5Dget_space(d), ms = H5Screate_simple(4, count, NULL);
            if (fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
                H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf) < 0)
                rc = gi_h5_fail(err, "%s: cannot read genes %d..%d of /%s", path, g0, g0 + ng - 1, name);
            if (fs >= 0)
                H5Sclose(fs);
            if (ms >= 0)
                H5Sclose(ms);
            for (int g = 0; rc == 0 && g < ng; g++)
                for (int k = 0; k < nzb; k++)
                    gi_h5_slice_digest(name, g0 + g, z0 + k, mtype, 2, sdims,
                                       buf + ((size_t)g * (size_t)nzb + (size_t)k) * slice * esize, slice * esize,
                                       sl + 2 * ((size_t)g * (size_t)a->nz + (size_t)(z0 + k)));
        }
        for (int g = 0; rc == 0 && g < ng; g++) {
            if (gi_h5_rows_check_slices(rows, path, name, g0 + g, mtype, 3, rdims,
                                        sl + 2 * (size_t)g * (size_t)a->nz, err) != 0)
                rc = gene_damaged(err, path, a, name, g0 + g);
            else
                (*n_checked)++;
        }
    }
    free(buf);
    free(sl);
    if (d >= 0)
        H5Dclose(d);
    gi_h5_loud(printer);
    return rc;
}

int gi_atlas_verify(const gi_atlas *a, int *n_checked, gi_err *err)
{
    gi_err local;
    if (!err)
        err = &local;
    *n_checked = 0;
    if (!a || a->file_id <= 0)
        return gi_fail(err, "atlas: verifying an atlas that is not open");
    if (!a->sealed)
        return 0;
    /* /expression, then /uncertainty: *n_checked counts the genes of both */
    if (verify_rows(a, "expression", &a->rows, a->dtype == GI_DTYPE_UINT16 ? H5T_NATIVE_USHORT : H5T_NATIVE_FLOAT,
                    n_checked, err) != 0)
        return -1;
    return a->has_uncertainty ? verify_rows(a, "uncertainty", &a->sd_rows, H5T_NATIVE_FLOAT, n_checked, err) : 0;
}

int gi_atlas_gene_index(const gi_atlas *a, const char *name)
{
    if (!a || !a->genes || !name)
        return -1;
    for (int g = 0; g < a->n_genes; g++)
        if (strcmp(a->genes[g], name) == 0)
            return g;
    return -1;
}

void gi_atlas_close(gi_atlas *a)
{
    if (!a)
        return;
    if (a->file_id > 0) {
        gi_h5_printer printer = gi_h5_quiet();
        H5Fclose((hid_t)a->file_id);
        gi_h5_loud(printer);
    }
    gi_h5_free_strings(a->genes, a->n_genes);
    gi_h5_free_strings(a->donors, a->n_donors);
    free(a->mask);
    free(a->kind);
    free(a->rendered_for);
    free(a->config_yaml);
    free(a->version);
    gi_h5_rows_free(&a->rows);
    gi_h5_rows_free(&a->sd_rows);
    free(a->scale);
    free(a->offset);
    memset(a, 0, sizeof *a);
}
