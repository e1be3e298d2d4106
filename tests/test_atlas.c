/* test_atlas.c - the HDF5 atlas: collective writing, serial reading (an MPI program).
 *
 * Runs under any rank count, including as a singleton (tests/run.sh starts it
 * without mpirun; tests/it_atlas.sh with 1 and 3 ranks). Every rank writes an
 * uneven share of the z-slices (with 3 or more ranks, rank 1 writes none) in
 * two calls each, with a known pattern inside a spherical mask:
 *     value(g, z, y, x) = g*1000 + z*100 + y + x/1000, NaN outside the mask.
 * Rank 0 then reads the file back with gi_atlas_open and, when /usr/bin/python3
 * has h5py and numpy, with h5py. Checks are made collectively (a check passes
 * only if it holds on every rank) and printed by rank 0 alone, prefixed with
 * the rank count ("np3 ...") so the 1- and 3-rank runs have distinct names.
 */
#include "geneinr/atlas.h"
#include "geneinr/enum_names.h"
#include "geneinr/version.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dlfcn.h>
#include <hdf5.h>
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <zlib.h>

#include "check.h"

enum { NX = 7, NY = 6, NZ = 9, NG = 3, ND = 2 };
static const char *const GENES[NG] = { "PVALB", "SST", "GAD1" };
static const char *const DONORS[ND] = { "H0351.2001", "H0351.1009" };
static const double AFFINE[16] = { -2, 0, 0, 90, 0, 2, 0, -126, 0, 0, 2, -72, 0, 0, 0, 1 };
static const char *const CONFIG = "data:\n  samples: samples.csv\nrender:\n  compress: 1\n";

static int rank_, size_;
static char dir_[512];

/* ---- collective checks --------------------------------------------------- */

/* Passes only if ok on every rank; rank 0 prints it. */
static int check_all(int ok, const char *name, const char *why)
{
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    if (rank_ == 0) {
        char full[256];
        snprintf(full, sizeof full, "np%d %s", size_, name);
        CHECKF(all, full, "%s", why && why[0] ? why : "false on some rank");
    }
    return all;
}

/* A check made by rank 0 alone (call it only on rank 0). */
static int check0(int ok, const char *name, const char *why)
{
    char full[256];
    snprintf(full, sizeof full, "np%d %s", size_, name);
    CHECKF(ok, full, "%s", why && why[0] ? why : "false");
    return ok;
}

/* Same message text on every rank? (error agreement) */
static int same_on_all_ranks(const char *msg)
{
    unsigned long h = 5381, lo, hi;
    for (const char *p = msg; *p; p++)
        h = h * 33 + (unsigned char)*p;
    MPI_Allreduce(&h, &lo, 1, MPI_UNSIGNED_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&h, &hi, 1, MPI_UNSIGNED_LONG, MPI_MAX, MPI_COMM_WORLD);
    return lo == hi;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* ---- the pattern ----------------------------------------------------------- */

static int inside(int z, int y, int x)
{
    double dx = x - 3.0, dy = y - 2.5, dz = z - 4.0;
    return dx * dx + dy * dy + dz * dz <= 3.6 * 3.6;
}

static float value(int g, int z, int y, int x) { return (float)(g * 1000.0 + z * 100.0 + y + x / 1000.0); }

/* Slices [z0, z0 + n) as write_slices wants them: expr [NG][n][NY][NX], mask [n][NY][NX]. */
static void fill_block(int z0, int n, float *expr, unsigned char *mask)
{
    for (int g = 0; g < NG; g++)
        for (int k = 0; k < n; k++)
            for (int y = 0; y < NY; y++)
                for (int x = 0; x < NX; x++) {
                    int z = z0 + k, in = inside(z, y, x);
                    expr[(((size_t)g * n + k) * NY + y) * NX + x] = in ? value(g, z, y, x) : NAN;
                    if (g == 0)
                        mask[((size_t)k * NY + y) * NX + x] = (unsigned char)in;
                }
}

/* An uneven share of the slices: rank 0 one slice, rank 1 none when there
 * are 3+ ranks, others 1-3 slices, the last rank the rest. */
static void my_slab(int nz, int *z0, int *n)
{
    int z = 0;
    for (int r = 0; r < size_; r++) {
        int c = r == size_ - 1 ? nz - z : (size_ >= 3 && r == 1) ? 0 : 1 + r % 3;
        if (c > nz - z)
            c = nz - z;
        if (r == rank_) {
            *z0 = z;
            *n = c;
        }
        z += c;
    }
}

static gi_atlas_info make_info(int compress, int chunk_genes)
{
    gi_atlas_info info;
    memset(&info, 0, sizeof info);
    info.n_genes = NG;
    info.genes = GENES;
    info.n_donors = ND;
    info.donors = DONORS;
    info.nx = NX;
    info.ny = NY;
    info.nz = NZ;
    memcpy(info.affine, AFFINE, sizeof AFFINE);
    info.units = "log2 expression";
    info.normalisation = "scaled robust sigmoid per donor";
    info.config_yaml = CONFIG;
    info.rendered_for = "average";
    info.kind = "atlas";
    info.compress = compress;
    info.chunk_genes = chunk_genes;
    return info;
}

/* Write a whole atlas collectively; skip_last leaves the last slice unwritten
 * (it must then read as fill: NaN and mask 0); per_gene writes each gene on
 * its own (gi_atlas_write_genes), so with chunks of several genes every write
 * covers part of a chunk. Returns finish's result. */
static int write_atlas(const char *path, int compress, int skip_last, int chunk_genes, int per_gene, const char *tag)
{
    char name[160];
    gi_err err = { "" };
    gi_atlas_info info = make_info(compress, chunk_genes);
    gi_atlas_writer *w = gi_atlas_create(MPI_COMM_WORLD, path, &info, &err);
    snprintf(name, sizeof name, "%s: create", tag);
    if (!check_all(w != NULL, name, err.msg))
        return -1;
    /* The caller's strings may go away after create: scribble over our copy. */
    memset(&info, 0, sizeof info);

    int z0 = 0, n = 0;
    my_slab(NZ, &z0, &n);
    if (skip_last && z0 + n == NZ && n > 0)
        n--;
    float *expr = malloc(sizeof(float) * NG * (n > 0 ? n : 1) * NY * NX);
    unsigned char *mask = malloc((size_t)(n > 0 ? n : 1) * NY * NX);
    int half = n / 2, rc1 = 0, rc2 = 0;
    /* Two calls per rank, so some ranks pass nzb = 0 while others write. */
    fill_block(z0, half, expr, mask);
    if (per_gene) /* genes in reverse: each write lands in a chunk another gene's write already filled */
        for (int g = NG - 1; rc1 == 0 && g >= 0; g--)
            rc1 = gi_atlas_write_genes(w, g, 1, z0, half, half ? expr + (size_t)g * half * NY * NX : NULL,
                                       g == 0 && half ? mask : NULL, &err);
    else
        rc1 = gi_atlas_write_slices(w, z0, half, half ? expr : NULL, half ? mask : NULL, &err);
    fill_block(z0 + half, n - half, expr, mask);
    if (per_gene)
        for (int g = 0; rc1 == 0 && rc2 == 0 && g < NG; g++)
            rc2 = gi_atlas_write_genes(w, g, 1, z0 + half, n - half, expr + (size_t)g * (n - half) * NY * NX,
                                       g == 0 ? mask : NULL, &err);
    else
        rc2 = rc1 == 0 ? gi_atlas_write_slices(w, z0 + half, n - half, expr, mask, &err) : -1;
    free(expr);
    free(mask);
    snprintf(name, sizeof name, "%s: write_slices", tag);
    if (!check_all(rc1 == 0 && rc2 == 0, name, err.msg)) {
        gi_atlas_abort(w);
        return -1;
    }
    int rc = gi_atlas_finish(w, &err);
    snprintf(name, sizeof name, "%s: finish", tag);
    check_all(rc == 0, name, err.msg);
    return rc;
}

/* ---- reading back ---------------------------------------------------------- */

static int str_attr_exists(hid_t loc, const char *obj, const char *name)
{
    return H5Aexists_by_name(loc, obj, name, H5P_DEFAULT) > 0;
}

/* Rank 0: check everything with gi_atlas_open / gi_atlas_read_gene. */
static void verify_c(const char *path, int skip_last, const char *tag)
{
    char name[160], why[512];
    gi_err err = { "" };
    gi_atlas a;
    int rc = gi_atlas_open(&a, path, &err);
    snprintf(name, sizeof name, "%s: open", tag);
    if (!check0(rc == 0, name, err.msg))
        return;

    snprintf(name, sizeof name, "%s: dims and names", tag);
    int ok = a.nx == NX && a.ny == NY && a.nz == NZ && a.n_genes == NG && a.n_donors == ND;
    for (int g = 0; ok && g < NG; g++)
        ok = strcmp(a.genes[g], GENES[g]) == 0;
    for (int d = 0; ok && d < ND; d++)
        ok = strcmp(a.donors[d], DONORS[d]) == 0;
    snprintf(why, sizeof why, "got %d x %d x %d, %d genes, %d donors", a.nx, a.ny, a.nz, a.n_genes, a.n_donors);
    check0(ok, name, why);

    snprintf(name, sizeof name, "%s: affine", tag);
    check0(memcmp(a.affine, AFFINE, sizeof AFFINE) == 0, name, "affine differs");

    snprintf(name, sizeof name, "%s: root attributes", tag);
    ok = a.version && strcmp(a.version, GENEINR_VERSION) == 0 && a.kind && strcmp(a.kind, "atlas") == 0 &&
         a.rendered_for && strcmp(a.rendered_for, "average") == 0 && a.config_yaml &&
         strcmp(a.config_yaml, CONFIG) == 0;
    hid_t f = (hid_t)a.file_id;
    ok = ok && str_attr_exists(f, ".", "created") && str_attr_exists(f, ".", "layout") &&
         str_attr_exists(f, "expression", "units") && str_attr_exists(f, "expression", "normalisation");
    check0(ok, name, "version, kind, rendered_for, config, created, layout, units or normalisation wrong");

    snprintf(name, sizeof name, "%s: gene_index", tag);
    check0(gi_atlas_gene_index(&a, "SST") == 1 && gi_atlas_gene_index(&a, "GAD1") == 2 &&
               gi_atlas_gene_index(&a, "NOPE") == -1,
           name, "wrong index");

    /* Every voxel of every gene, and the mask. */
    float *vol = malloc(sizeof(float) * NZ * NY * NX);
    long bad = 0, bad_mask = 0;
    char first[256] = "";
    for (int g = 0; g < NG; g++) {
        if (gi_atlas_read_gene(&a, g, vol, &err) != 0) {
            snprintf(first, sizeof first, "%.200s", err.msg);
            bad++;
            continue;
        }
        for (int z = 0; z < NZ; z++)
            for (int y = 0; y < NY; y++)
                for (int x = 0; x < NX; x++) {
                    int in = inside(z, y, x) && !(skip_last && z == NZ - 1);
                    float v = vol[((size_t)z * NY + y) * NX + x];
                    if (in ? v != value(g, z, y, x) : !isnan(v)) {
                        if (!bad)
                            snprintf(first, sizeof first, "gene %d voxel (z %d, y %d, x %d) = %g", g, z, y, x, v);
                        bad++;
                    }
                    if (g == 0 && a.mask[((size_t)z * NY + y) * NX + x] != in)
                        bad_mask++;
                }
    }
    snprintf(name, sizeof name, "%s: every voxel (NaN outside the mask)", tag);
    snprintf(why, sizeof why, "%ld wrong, first: %s", bad, first);
    check0(bad == 0, name, why);
    snprintf(name, sizeof name, "%s: mask", tag);
    snprintf(why, sizeof why, "%ld voxels wrong", bad_mask);
    check0(bad_mask == 0, name, why);

    snprintf(name, sizeof name, "%s: read_gene out of range fails", tag);
    err.msg[0] = '\0';
    check0(gi_atlas_read_gene(&a, NG, vol, &err) == -1 && strstr(err.msg, "gene index 3"), name, err.msg);
    free(vol);
    gi_atlas_close(&a);
    gi_atlas_close(&a); /* closing twice is harmless */
}

static const char *PY_CHECK =
    "import sys, re\n"
    "import h5py, numpy as np\n"
    "path, compress, skip_last, chunk_genes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[7])\n"
    "genes, donors = sys.argv[4].split(','), sys.argv[5].split(',')\n"
    "affine = np.array([float(v) for v in sys.argv[6].split(',')]).reshape(4, 4)\n"
    "with h5py.File(path, 'r') as f:\n"
    "    e = f['expression']\n"
    "    assert e.shape == (len(genes), 9, 6, 7), e.shape\n"
    "    assert e.dtype == np.float32, e.dtype\n"
    "    assert list(f['genes'].asstr()[:]) == genes, f['genes'][:]\n"
    "    assert list(f['donors'].asstr()[:]) == donors, f['donors'][:]\n"
    "    assert f['affine'].dtype == np.float64 and np.array_equal(f['affine'][:], affine)\n"
    "    m = f['mask'][:]\n"
    "    assert m.dtype == np.uint8 and m.shape == (9, 6, 7)\n"
    "    g, z, y, x = 2, 4, 3, 3\n"
    "    assert m[z, y, x] == 1\n"
    "    assert e[g, z, y, x] == np.float32(g * 1000 + z * 100 + y + x / 1000), e[g, z, y, x]\n"
    "    v = e[:]\n"
    "    assert np.all(np.isnan(v[:, m == 0])) and not np.any(np.isnan(v[:, m == 1]))\n"
    "    assert m.sum() > 0 and (m == 0).sum() > 0\n"
    "    if skip_last: assert m[8].sum() == 0\n"
    "    for k in ('geneinr_version', 'created', 'config', 'rendered_for', 'kind', 'layout'):\n"
    "        assert isinstance(f.attrs[k], str), (k, f.attrs[k])\n"
    "    assert f.attrs['geneinr_version'] == '" GENEINR_VERSION "'\n"
    "    assert f.attrs['kind'] == 'atlas'\n"
    "    assert re.fullmatch(r'\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ', f.attrs['created']), f.attrs['created']\n"
    "    assert isinstance(e.attrs['units'], str) and isinstance(e.attrs['normalisation'], str)\n"
    "    assert e.chunks == (chunk_genes, 1, 6, 7), e.chunks\n"
    "    if compress: assert e.compression == 'gzip' and e.shuffle, (e.compression, e.shuffle)\n"
    "print('OK')\n";

static int have_h5py(void)
{
    return access("/usr/bin/python3", X_OK) == 0 &&
           system("/usr/bin/python3 -c 'import h5py, numpy' >/dev/null 2>&1") == 0;
}

/* Rank 0: read the file with h5py. */
static void verify_python(const char *path, int compress, int skip_last, int chunk_genes, const char *tag)
{
    char name[160], script[600], cmd[2048], out[2048] = "", aff[400] = "";
    snprintf(name, sizeof name, "%s: h5py reads it", tag);
    char full[200];
    snprintf(full, sizeof full, "np%d %s", size_, name);
    if (!have_h5py()) {
        SKIP(full, "/usr/bin/python3 has no h5py or numpy");
        return;
    }
    snprintf(script, sizeof script, "%s/check_atlas.py", dir_);
    FILE *fp = fopen(script, "w");
    if (!fp) {
        check0(0, name, "cannot write the python script");
        return;
    }
    fputs(PY_CHECK, fp);
    fclose(fp);
    for (int i = 0; i < 16; i++)
        snprintf(aff + strlen(aff), sizeof aff - strlen(aff), "%s%.17g", i ? "," : "", AFFINE[i]);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' %d %d '%s,%s,%s' '%s,%s' '%s' %d 2>&1", script, path,
             compress, skip_last, GENES[0], GENES[1], GENES[2], DONORS[0], DONORS[1], aff, chunk_genes);
    FILE *p = popen(cmd, "r");
    size_t len = 0;
    if (p) {
        size_t got;
        while (len < sizeof out - 1 && (got = fread(out + len, 1, sizeof out - 1 - len, p)) > 0)
            len += got;
        out[len] = '\0';
        pclose(p);
    }
    check0(strcmp(out, "OK\n") == 0, name, out);
    unlink(script);
}

/* ---- the cases ------------------------------------------------------------- */

/* chunk_genes 0: the automatic layout (1 gene per chunk at this size). */
static void test_roundtrip(int compress, int skip_last, int chunk_genes, int per_gene)
{
    char path[700], tmp[720], tag[80];
    snprintf(tag, sizeof tag, "atlas compress %d%s%s", compress, skip_last ? " unwritten slice" : "",
             chunk_genes > 1 ? (per_gene ? ", 2-gene chunks, one gene per write" : ", 2-gene chunks") : "");
    snprintf(path, sizeof path, "%s/atlas_c%d_s%d_g%d_p%d.h5", dir_, compress, skip_last, chunk_genes, per_gene);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (write_atlas(path, compress, skip_last, chunk_genes, per_gene, tag) != 0)
        return;
    char name[160];
    snprintf(name, sizeof name, "%s: PATH exists and PATH.tmp is gone", tag);
    check_all(exists(path) && !exists(tmp), name, NULL);
    snprintf(name, sizeof name, "%s: has_dataset", tag);
    check_all(gi_h5_has_dataset(path, "expression") == 1 && gi_h5_has_dataset(path, "genes") == 1 &&
                  gi_h5_has_dataset(path, "nope") == 0 && gi_h5_has_dataset(path, "no/such/thing") == 0,
              name, NULL);
    if (rank_ == 0) {
        verify_c(path, skip_last, tag);
        verify_python(path, compress, skip_last, chunk_genes > 0 ? chunk_genes : 1, tag);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank_ == 0)
        unlink(path);
}

static void test_abort(void)
{
    char path[700], tmp[720];
    gi_err err = { "" };
    snprintf(path, sizeof path, "%s/aborted.h5", dir_);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    gi_atlas_info info = make_info(1, 0);
    gi_atlas_writer *w = gi_atlas_create(MPI_COMM_WORLD, path, &info, &err);
    if (!check_all(w != NULL, "abort: create", err.msg))
        return;
    check_all(exists(tmp) && !exists(path), "abort: only PATH.tmp exists while writing", NULL);
    gi_atlas_abort(w);
    check_all(!exists(tmp) && !exists(path), "abort: leaves neither PATH nor PATH.tmp", NULL);
}

/* One rank passes slices outside the grid: every rank must fail, with the
 * same message, and nobody may hang. */
static void test_bad_slices(void)
{
    char path[700], tmp[720];
    gi_err err = { "" };
    snprintf(path, sizeof path, "%s/bad_slices.h5", dir_);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    gi_atlas_info info = make_info(0, 0);
    gi_atlas_writer *w = gi_atlas_create(MPI_COMM_WORLD, path, &info, &err);
    if (!check_all(w != NULL, "bad slices: create", err.msg))
        return;
    float expr[NG * NY * NX];
    unsigned char mask[NY * NX];
    fill_block(0, 1, expr, mask);
    int culprit = size_ - 1;
    int rc = gi_atlas_write_slices(w, rank_ == culprit ? NZ : 0, rank_ == culprit ? 1 : 0, expr, mask, &err);
    check_all(rc == -1, "bad slices: one rank's bad z-range fails write_slices on every rank", NULL);
    check_all(same_on_all_ranks(err.msg) && strstr(err.msg, "outside") != NULL,
              "bad slices: every rank gets the culprit's message", err.msg);
    gi_atlas_abort(w);
    check_all(!exists(tmp) && !exists(path), "bad slices: abort removes PATH.tmp", NULL);
}

static void test_create_errors(void)
{
    char path[700];
    gi_err err = { "" };
    gi_atlas_info info = make_info(1, 0);
    snprintf(path, sizeof path, "%s/no/such/dir/atlas.h5", dir_);
    gi_atlas_writer *w = gi_atlas_create(MPI_COMM_WORLD, path, &info, &err);
    check_all(w == NULL, "create in a missing directory fails on every rank", NULL);
    check_all(strstr(err.msg, "no/such/dir/atlas.h5.tmp") != NULL && same_on_all_ranks(err.msg),
              "create in a missing directory: same message naming the file on every rank", err.msg);
    if (w)
        gi_atlas_abort(w);

    err.msg[0] = '\0';
    info.n_genes = 0;
    snprintf(path, sizeof path, "%s/empty.h5", dir_);
    w = gi_atlas_create(MPI_COMM_WORLD, path, &info, &err);
    check_all(w == NULL && strstr(err.msg, "at least one gene") != NULL, "create without genes fails", err.msg);
    if (w)
        gi_atlas_abort(w);

    /* A mistake on one rank only still fails everywhere (no rank goes on alone). */
    err.msg[0] = '\0';
    info = make_info(0, 0);
    if (rank_ == size_ - 1)
        info.kind = NULL;
    w = gi_atlas_create(MPI_COMM_WORLD, path, &info, &err);
    check_all(w == NULL && strstr(err.msg, "kind") != NULL && same_on_all_ranks(err.msg),
              "create with a bad description on one rank fails on every rank", err.msg);
    if (w)
        gi_atlas_abort(w);
    char tmp[720];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    check_all(!exists(path) && !exists(tmp), "failed creates leave no file", NULL);
}

/* Rank 0: reading things that are not atlases. */
static void test_open_errors(void)
{
    char path[700], name[160];
    gi_err err = { "" };
    gi_atlas a;

    snprintf(path, sizeof path, "%s/not_hdf5.h5", dir_);
    FILE *fp = fopen(path, "w");
    if (fp) {
        fputs("gene,value\nSST,1\n", fp);
        fclose(fp);
    }
    int rc = gi_atlas_open(&a, path, &err);
    check0(rc == -1 && strstr(err.msg, "not_hdf5.h5: not an HDF5 file") != NULL, "open a non-HDF5 file fails clearly",
           err.msg);
    gi_atlas_close(&a); /* safe after a failed open */
    check0(gi_h5_has_dataset(path, "expression") == 0, "has_dataset on a non-HDF5 file is 0", NULL);
    unlink(path);

    snprintf(path, sizeof path, "%s/missing.h5", dir_);
    err.msg[0] = '\0';
    rc = gi_atlas_open(&a, path, &err);
    check0(rc == -1 && strstr(err.msg, "missing.h5: cannot read") != NULL, "open a missing file fails clearly",
           err.msg);
    check0(gi_h5_has_dataset(path, "expression") == 0, "has_dataset on a missing file is 0", NULL);

    snprintf(path, sizeof path, "%s/other.h5", dir_);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    err.msg[0] = '\0';
    rc = gi_atlas_open(&a, path, &err);
    snprintf(name, sizeof name, "open an HDF5 file without /expression fails clearly");
    check0(rc == -1 && strstr(err.msg, "other.h5: not a geneinr atlas (no /expression dataset)") != NULL, name,
           err.msg);
    unlink(path);

    gi_atlas zeroed;
    memset(&zeroed, 0, sizeof zeroed);
    gi_atlas_close(&zeroed);
    check0(gi_atlas_read_gene(&zeroed, 0, NULL, &err) == -1, "close and read_gene are safe on a zeroed atlas",
           NULL);
}

/* ISA-L level 1, the stream h5_deflate.c makes for deflate level 1, written
 * here from ISA-L's documentation. */
static size_t isal_zlib_level1(const void *in, size_t n, unsigned char *out, size_t room)
{
    static struct isal_zstream s;
    static unsigned char level_buf[ISAL_DEF_LVL1_DEFAULT];
    isal_deflate_stateless_init(&s);
    s.level = 1;
    s.level_buf = level_buf;
    s.level_buf_size = sizeof level_buf;
    s.gzip_flag = IGZIP_ZLIB;
    s.next_in = (uint8_t *)in;
    s.avail_in = (uint32_t)n;
    s.next_out = out;
    s.avail_out = (uint32_t)room;
    s.end_of_stream = 1;
    s.flush = NO_FLUSH;
    return isal_deflate_stateless(&s) == COMP_OK ? s.total_out : 0;
}

/* Rank 0: HDF5's deflate filter compresses through ISA-L at level 1 and
 * libdeflate at the other levels in this process (h5_deflate.c): a chunk's
 * stored bytes are exactly that library's zlib stream of the data - not
 * zlib's, which differs - and read back as the values. */
static void test_fast_deflate(int level)
{
    enum { N = 8192 };
    static float data[N], back[N];
    static unsigned char want[N * 4], zl[N * 4 + 64], got[N * 4 + 64];
    for (int i = 0; i < N; i++)
        data[i] = i % 700 < 300 ? NAN : (float)(5.0 + sin(0.01 * i) + 1e-3 * (i * 7919 % 101));
    char path[700];
    snprintf(path, sizeof path, "%s/deflate.h5", dir_);
    hsize_t dims = N, chunk = N, off = 0;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Screate_simple(1, &dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_deflate(dcpl, (unsigned)level);
    hid_t d = H5Dcreate2(f, "x", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Fclose(f);
    hsize_t stored = 0;
    uint32_t filters = 0;
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    d = H5Dopen2(f, "x", H5P_DEFAULT);
    ok = ok && H5Dget_chunk_storage_size(d, &off, &stored) >= 0 && stored > 0 && stored <= sizeof got &&
         H5Dread_chunk(d, H5P_DEFAULT, &off, &filters, got) >= 0 &&
         H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0;
    H5Dclose(d);
    H5Fclose(f);
    unlink(path);
    size_t n;
    const char *lib = level == 1 ? "ISA-L" : "libdeflate";
    if (level == 1) {
        n = isal_zlib_level1(data, sizeof data, want, sizeof want);
    } else {
        struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
        n = libdeflate_zlib_compress(c, data, sizeof data, want, sizeof want);
        libdeflate_free_compressor(c);
    }
    typedef int (*compress2_fn)(Bytef *, uLongf *, const Bytef *, uLong, int);
    compress2_fn zlib = (compress2_fn)dlsym(RTLD_NEXT, "compress2");
    uLongf zn = sizeof zl;
    int zrc = zlib ? zlib(zl, &zn, (const Bytef *)data, sizeof data, level) : -1;
    int same_values = 1;
    for (int i = 0; i < N; i++)
        same_values &= isnan(data[i]) ? isnan(back[i]) : back[i] == data[i];
    char why[200], name[120];
    snprintf(why, sizeof why, "stored %llu bytes (filter mask %u), %s %zu, zlib %lu (rc %d)",
             (unsigned long long)stored, filters, lib, n, (unsigned long)zn, zrc);
    snprintf(name, sizeof name, "HDF5 deflates level %d through %s", level, lib);
    check0(ok && filters == 0 && n > 0 && stored == n && memcmp(got, want, n) == 0, name, why);
    snprintf(name, sizeof name, "level %d: %s's stream is not zlib's (the check above can fail)", level, lib);
    check0(zrc == Z_OK && (zn != n || memcmp(zl, want, n) != 0), name, why);
    snprintf(name, sizeof name, "a level %d chunk reads back as the values", level);
    check0(ok && same_values, name, why);
}

/* The automatic layout: one gene per chunk while the chunk count allows,
 * then the fewest genes per chunk that keep it within GI_ATLAS_MAX_CHUNKS;
 * a set chunk_genes is kept (clamped to the gene count). */
static void test_chunk_rule(void)
{
    gi_atlas_info i = make_info(1, 0);
    i.nx = 91, i.ny = 109, i.nz = 91;
    i.n_genes = 100; /* 9,100 chunks */
    int a = gi_atlas_chunk_genes(&i);
    i.n_genes = GI_ATLAS_MAX_CHUNKS / 91; /* 219 genes: 19,929 chunks */
    int b = gi_atlas_chunk_genes(&i);
    i.n_genes = 15600; /* the whole transcriptome on the 2 mm grid */
    int c = gi_atlas_chunk_genes(&i);
    long long chunks_c = (long long)((15600 + c - 1) / c) * 91, chunks_fewer = (long long)((15600 + c - 2) / (c - 1)) * 91;
    i.nx = 182, i.ny = 218, i.nz = 182; /* 1 mm */
    int d = gi_atlas_chunk_genes(&i);
    long long chunks_d = (long long)((15600 + d - 1) / d) * 182;
    i.n_genes = 100;
    int e = gi_atlas_chunk_genes(&i); /* 18,200 chunks: still one gene each */
    i.chunk_genes = 7;
    int f = gi_atlas_chunk_genes(&i);
    i.chunk_genes = 500;
    int g = gi_atlas_chunk_genes(&i);
    char why[300];
    snprintf(why, sizeof why, "got %d %d %d (%lld chunks, %lld with one gene fewer) %d (%lld chunks) %d %d %d", a, b, c,
             chunks_c, chunks_fewer, d, chunks_d, e, f, g);
    check_all(a == 1 && b == 1 && c > 1 && chunks_c <= GI_ATLAS_MAX_CHUNKS && chunks_fewer > GI_ATLAS_MAX_CHUNKS &&
                  d > c && chunks_d <= GI_ATLAS_MAX_CHUNKS && e == 1 && f == 7 && g == 100,
              "chunk layout: genes per chunk as designed (1, then the fewest within the chunk bound)", why);
    /* With /uncertainty the file holds two datasets of those chunks: the 1 mm atlas of 100 genes with its
     * SD (2 x 18,200 chunks of one gene) failed its collective writes. */
    i.chunk_genes = 0;
    i.uncertainty = 1;
    int h = gi_atlas_chunk_genes(&i);
    long long chunks_h = 2LL * ((100 + h - 1) / h) * 182;
    snprintf(why, sizeof why, "got %d genes per chunk, %lld chunks in the file", h, chunks_h);
    check_all(h == 2 && chunks_h <= GI_ATLAS_MAX_CHUNKS, "chunk layout: /uncertainty's chunks count against the bound",
              why);
}

/* A piece written more than once (here: slice 0 by every rank, then again
 * by rank 0 alone) has no single writer's digest: the seal reads it back, so
 * the atlas still verifies (issue 27 review: a XOR of two writers' digests
 * matched neither write). */
static void test_rewritten_piece(void)
{
    char path[700];
    gi_err err = { "" };
    snprintf(path, sizeof path, "%s/rewritten.h5", dir_);
    gi_atlas_info info = make_info(1, 0);
    gi_atlas_writer *w = gi_atlas_create(MPI_COMM_WORLD, path, &info, &err);
    if (!check_all(w != NULL, "rewritten piece: create", err.msg))
        return;
    size_t slice = (size_t)NX * NY;
    float *expr = malloc(sizeof *expr * NG * slice * NZ);
    unsigned char *mask = malloc(slice * NZ);
    for (size_t i = 0; i < NG * slice * NZ; i++)
        expr[i] = (float)(i % 97) + 0.25f * (float)rank_;
    memset(mask, 1, slice * NZ);
    int rc = gi_atlas_write_slices(w, 0, 1, expr, mask, &err);            /* every rank: slice 0 */
    if (rc == 0)
        rc = gi_atlas_write_slices(w, 0, rank_ == 0 ? 1 : 0, expr, mask, &err);   /* rank 0 again */
    if (rc == 0)
        rc = gi_atlas_write_slices(w, 1, rank_ == 0 ? NZ - 1 : 0, expr, mask, &err);
    if (rc == 0)
        rc = gi_atlas_finish(w, &err);
    else
        gi_atlas_abort(w);
    check_all(rc == 0, "rewritten piece: write and finish", err.msg);
    if (rank_ == 0 && rc == 0) {
        gi_atlas a;
        int n = 0;
        rc = gi_atlas_open(&a, path, &err);
        if (rc == 0) {
            rc = gi_atlas_verify(&a, &n, &err);
            gi_atlas_close(&a);
        }
        CHECKF(rc == 0 && n == NG, "a piece written twice (or by two ranks) still verifies: the seal reads it back",
               "rc %d, %d genes: %s", rc, n, err.msg);
    }
    free(expr);
    free(mask);
}

/* render.dtype uint16 (issue 29): the coding's bound on its own, then an
 * atlas written as uint16 by every rank and read back decoded. */
static void test_u16_coding(void)
{
    /* ranges: ordinary, far from 0 (the offset's rounding matters), negative,
     * tiny, constant */
    static const double R[][2] = { { -1.5, 3.25 }, { 1000.0, 1001.0 }, { -7e5, -6.9e5 }, { 0.1, 0.1 + 1e-6 },
                                   { 2.5, 2.5 } };
    int ok = 1, exact = 1;
    double worst = 0;
    uint64_t st = 12345;
    for (size_t r = 0; r < sizeof R / sizeof R[0]; r++) {
        double lo = (float)R[r][0], hi = (float)R[r][1], sc, off;
        gi_atlas_u16_coding(lo, hi, &sc, &off);
        exact &= (double)(float)sc == sc && (double)(float)off == off && sc > 0 &&
                 (hi > lo ? sc * 65534 >= hi - lo : sc == 1);
        double tol_abs = ldexp(fmax(fabs(lo), fabs(hi)), -22);
        for (int i = 0; i <= 20000; i++) {
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            double u = i == 0 ? 0 : i == 1 ? 1 : (double)(st >> 11) / 9007199254740992.0;
            float v = (float)(lo + u * (hi - lo));
            if (v < lo || v > hi)
                continue;
            uint16_t c = gi_atlas_u16_encode(v, sc, off);
            float d = gi_atlas_u16_decode(c, sc, off);
            double e = fabs((double)d - v);
            if (c == 0 || e > sc / 2 + tol_abs)
                ok = 0;
            if (hi > lo && e / sc > worst)
                worst = e / sc;
        }
    }
    if (rank_ != 0)
        return;
    char why[64];
    snprintf(why, sizeof why, "worst error %.4f x scale", worst);
    check0(exact, "uint16 coding: scale and offset are float32 values, 65534 steps of scale span the range, a "
           "constant gene gets scale 1", NULL);
    check0(ok, "uint16 coding: every value within scale/2 (+ 2^-22 max|v|) of its decoded code, codes 1..65535", why);
    double sc, off;
    gi_atlas_u16_coding(0, 1, &sc, &off);
    check0(gi_atlas_u16_encode(NAN, sc, off) == 0 && gi_atlas_u16_encode(INFINITY, sc, off) == 0 &&
               isnan(gi_atlas_u16_decode(0, sc, off)) && gi_atlas_u16_encode(0, sc, off) == 1 &&
               gi_atlas_u16_encode(1, sc, off) == 65535,
           "uint16 coding: NaN and inf are code 0 (decoded NaN); the range's ends are codes 1 and 65535", NULL);
    float lo[2] = { INFINITY, INFINITY }, hi[2] = { -INFINITY, -INFINITY };
    const float ex[6] = { 5, NAN, -2, 7, 100, 1 };
    const unsigned char m[3] = { 1, 1, 0 };
    gi_atlas_range_add(2, 3, ex, m, lo, hi);
    check0(lo[0] == 5 && hi[0] == 5 && lo[1] == 7 && hi[1] == 100,
           "uint16 range: min and max of the finite in-mask values only", NULL);
}

static void test_u16_atlas(void)
{
    char path[600], name[160];
    snprintf(path, sizeof path, "%s/u16.h5", dir_);
    gi_err err = { "" };
    gi_atlas_info info = make_info(1, 0);
    info.dtype = GI_DTYPE_UINT16;
    gi_atlas_writer *w = gi_atlas_create(MPI_COMM_WORLD, path, &info, &err);
    if (!check_all(w != NULL, "uint16 atlas: create", err.msg))
        return;
    int z0 = 0, n = 0;
    my_slab(NZ, &z0, &n);
    float *expr = malloc(sizeof(float) * NG * (n > 0 ? n : 1) * NY * NX);
    unsigned char *mask = malloc((size_t)(n > 0 ? n : 1) * NY * NX);
    fill_block(z0, n, expr, mask);
    /* a write before the range is refused on every rank */
    int rc = gi_atlas_write_slices(w, z0, n, n ? expr : NULL, n ? mask : NULL, &err);
    check_all(rc == -1 && strstr(err.msg, "before its range") != NULL && same_on_all_ranks(err.msg),
              "uint16 atlas: a write before gi_atlas_set_range fails on every rank", err.msg);
    float lo[NG], hi[NG];
    for (int g = 0; g < NG; g++) {
        lo[g] = INFINITY;
        hi[g] = -INFINITY;
    }
    gi_atlas_range_add(NG, (size_t)n * NY * NX, expr, mask, lo, hi);
    rc = gi_atlas_set_range(w, 0, NG, lo, hi, &err);
    if (rc == 0)
        rc = gi_atlas_write_slices(w, z0, n, n ? expr : NULL, n ? mask : NULL, &err);
    rc = rc == 0 ? gi_atlas_finish(w, &err) : (gi_atlas_abort(w), -1);
    free(expr);
    free(mask);
    if (!check_all(rc == 0, "uint16 atlas: range, write and finish", err.msg) || rank_ != 0)
        return;
    gi_atlas a;
    if (!check0(gi_atlas_open(&a, path, &err) == 0, "uint16 atlas: open", err.msg))
        return;
    float *vol = malloc(sizeof(float) * NZ * NY * NX);
    uint16_t *codes = malloc(sizeof(uint16_t) * NZ * NY * NX);
    int ok = a.dtype == GI_DTYPE_UINT16 && a.scale && a.offset, n_checked = 0;
    double worst = 0;
    for (int g = 0; ok && g < NG; g++) {
        double sc, off;
        ok = gi_atlas_read_gene(&a, g, vol, &err) == 0 && gi_atlas_read_codes(&a, g, codes, &sc, &off, &err) == 0 &&
             sc == a.scale[g] && off == a.offset[g];
        /* the range of gene g: value() over the mask's voxels */
        double glo = INFINITY, ghi = -INFINITY;
        for (int z = 0; z < NZ; z++)
            for (int y = 0; y < NY; y++)
                for (int x = 0; x < NX; x++)
                    if (inside(z, y, x)) {
                        glo = fmin(glo, value(g, z, y, x));
                        ghi = fmax(ghi, value(g, z, y, x));
                    }
        ok = ok && fabs(sc - (ghi - glo) / 65534) <= 1e-6 * sc;
        for (int z = 0; ok && z < NZ; z++)
            for (int y = 0; y < NY; y++)
                for (int x = 0; x < NX; x++) {
                    size_t q = ((size_t)z * NY + y) * NX + x;
                    if (!inside(z, y, x)) {
                        ok &= isnan(vol[q]) && codes[q] == 0;
                        continue;
                    }
                    double e = fabs((double)vol[q] - value(g, z, y, x));
                    ok &= codes[q] >= 1 && e <= sc / 2 + ldexp(ghi, -22);
                    worst = fmax(worst, e / sc);
                }
    }
    snprintf(name, sizeof name, "uint16 atlas: every rank's slab decoded within scale/2 of its value, NaN and code 0 "
             "outside the mask");
    check0(ok, name, err.msg[0] ? err.msg : "a value off");
    check0(gi_atlas_verify(&a, &n_checked, &err) == 0 && n_checked == NG,
           "uint16 atlas: every gene's codes verify against their content hash", err.msg);
    free(vol);
    free(codes);
    gi_atlas_close(&a);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "expression", H5P_DEFAULT), t = H5Dget_type(d);
    check0(H5Tequal(t, H5T_STD_U16LE) > 0 && H5Aexists(d, "scale") > 0 && H5Aexists(d, "offset") > 0 &&
               H5Aexists(d, "encoding") > 0,
           "uint16 atlas: /expression is uint16 LE with attributes scale, offset, encoding", NULL);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
    unlink(path);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);

    /* Rank 0 makes a private directory and tells the others. */
    if (rank_ == 0) {
        const char *base = getenv("TESTTMP");
        snprintf(dir_, sizeof dir_, "%s/atlas.XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(dir_))
            dir_[0] = '\0';
    }
    MPI_Bcast(dir_, sizeof dir_, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (!check_all(dir_[0] != '\0', "make a scratch directory", NULL)) {
        MPI_Finalize();
        return 1;
    }

    test_roundtrip(0, 0, 0, 0);
    test_roundtrip(1, 0, 0, 0);
    test_roundtrip(1, 1, 0, 0);
    /* Chunks of 2 genes over 3 (the last chunk half past the edge), written
     * whole-slice and one gene at a time (every write a part of a chunk). */
    test_roundtrip(1, 0, 2, 0);
    test_roundtrip(1, 0, 2, 1);
    test_roundtrip(0, 1, 2, 1);
    test_chunk_rule();
    test_abort();
    test_rewritten_piece();
    test_bad_slices();
    test_create_errors();
    test_u16_coding();
    test_u16_atlas();
    if (rank_ == 0) {
        test_open_errors();
        test_fast_deflate(1);
        test_fast_deflate(6);
    }

    MPI_Barrier(MPI_COMM_WORLD);
    if (rank_ == 0)
        rmdir(dir_);
    int rc = rank_ == 0 ? check_summary() : 0;
    MPI_Finalize();
    return rc;
}
