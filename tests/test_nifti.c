/* test_nifti.c - nifti.c against nibabel, the reference NIfTI reader.
 *
 * Inputs: nibabel's own test images (python3-nibabel ships them), small
 * images that nibabel writes for us here (every datatype, scaling, NaN,
 * NIfTI-2, qform-only, no transform, complex, RGB, 5-D), and our own output,
 * which nibabel reads back. The reference numbers come from /usr/bin/python3
 * run through popen; without nibabel those checks print SKIP.
 *
 * Index convention checked throughout: nibabel's get_fdata()[i, j, k] is our
 * data[(k * ny + j) * nx + i].
 */
#include "check.h"
#include "geneinr/nifti.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define NIBABEL_DATA "/usr/lib/python3/dist-packages/nibabel/tests/data"
#define SHARED_DATA "/work/shared/data"

static char tmpdir[1024];
static char script[1200];
static int have_nibabel;

/* The reference side. Commands:
 *   info PATH [i,j,k ...]  class, shape, affine (nibabel's img.affine), codes,
 *                          dtype, descrip; for single-volume images also the
 *                          NaN-ignoring sum, the NaN count and the listed voxels
 *   dump PATH              every voxel in NIfTI order (i fastest)
 *   formula PATH           compare with i + 100 j + 10000 k + 0.5, NaN at (1,2,3)
 *   make DIR               write the small test images */
static const char *PY =
    "import sys, struct\n"
    "import numpy as np, nibabel as nib\n"
    "def info(path, idx):\n"
    "    img = nib.load(path); h = img.header\n"
    "    print('class', type(img).__name__)\n"
    "    print('shape', ' '.join(str(s) for s in img.shape))\n"
    "    print('affine', ' '.join(repr(float(x)) for x in img.affine.ravel()))\n"
    "    print('codes', int(h['sform_code']), int(h['qform_code']))\n"
    "    print('dtype', h.get_data_dtype().name)\n"
    "    print('descrip', h['descrip'].item().split(b'\\0')[0].decode() or '-')\n"
    "    if len(img.shape) >= 3 and all(s == 1 for s in img.shape[3:]):\n"
    "        d = img.get_fdata().reshape(img.shape[:3])\n"
    "        print('sum', repr(float(np.nansum(d))))\n"
    "        print('nan', int(np.isnan(d).sum()))\n"
    "        v = [d[tuple(int(x) for x in t.split(','))] for t in idx]\n"
    "        print('vox', ' '.join(repr(float(x)) for x in v))\n"
    "def dump(path):\n"
    "    d = nib.load(path).get_fdata()\n"
    "    print('vals', ' '.join(repr(float(x)) for x in d.ravel(order='F')))\n"
    "def formula(path):\n"
    "    d = nib.load(path).get_fdata()\n"
    "    i, j, k = np.indices(d.shape)\n"
    "    e = (i + 100 * j + 10000 * k + 0.5).astype(np.float32).astype(np.float64)\n"
    "    e[1, 2, 3] = np.nan\n"
    "    same = (d == e) | (np.isnan(d) & np.isnan(e))\n"
    "    print('formula', int(same.sum()), d.size)\n"
    "def patch_scaling(path, slope, inter):\n"
    "    b = bytearray(open(path, 'rb').read())\n"
    "    struct.pack_into('<ff', b, 112, slope, inter)\n"
    "    open(path, 'wb').write(bytes(b))\n"
    "def make(out):\n"
    "    rng = np.random.default_rng(7)\n"
    "    aff = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])\n"
    "    for name in ['uint8', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'int64',\n"
    "                 'uint64', 'float32', 'float64']:\n"
    "        dt = np.dtype(name)\n"
    "        if dt.kind == 'f':\n"
    "            d = rng.standard_normal((5, 4, 3)) * 1000\n"
    "        else:\n"
    "            info_ = np.iinfo(dt)\n"
    "            d = rng.integers(max(info_.min, -30000), min(info_.max, 60000), (5, 4, 3))\n"
    "        img = nib.Nifti1Image(d.astype(dt), aff, dtype=dt)\n"
    "        img.header.set_sform(aff, 4); img.header.set_qform(aff, 4)\n"
    "        nib.save(img, '%s/dt_%s.nii' % (out, name))\n"
    "    d = rng.integers(-100, 100, (5, 4, 3)).astype(np.int16)\n"
    "    nib.save(nib.Nifti1Image(d, aff, dtype=np.int16), out + '/scaled.nii')\n"
    "    patch_scaling(out + '/scaled.nii', 0.5, -3.0)\n"
    "    d = rng.standard_normal((5, 4, 3)).astype(np.float32); d[1, 2, 0] = np.nan\n"
    "    nib.save(nib.Nifti1Image(d, aff, dtype=np.float32), out + '/nan.nii.gz')\n"
    "    src = nib.load('" NIBABEL_DATA "/example_nifti2.nii.gz')\n"
    "    d = np.asanyarray(src.dataobj)[..., 0]\n"
    "    nib.save(nib.Nifti2Image(d, src.affine, src.header), out + '/nifti2_3d.nii.gz')\n"
    "    rot = np.array([[0.0, -3, 0, 10], [2, 0, 0, -20], [0, 0, 4, 30], [0, 0, 0, 1]])\n"
    "    img = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), None)\n"
    "    img.header.set_qform(rot, 1); img.header.set_sform(None, 0)\n"
    "    nib.save(img, out + '/qform_only.nii')\n"
    "    img = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), None)\n"
    "    img.header.set_qform(None, 0); img.header.set_sform(None, 0)\n"
    "    img.header.set_zooms((2.0, 3.0, 4.0))\n"
    "    nib.save(img, out + '/no_xform.nii')\n"
    "    nib.save(nib.Nifti1Image(np.ones((2, 2, 2), np.complex64), aff), out + '/complex.nii')\n"
    "    rgb = np.zeros((2, 2, 2), dtype=[('R', 'u1'), ('G', 'u1'), ('B', 'u1')])\n"
    "    nib.save(nib.Nifti1Image(rgb, aff), out + '/rgb.nii')\n"
    "    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 1, 3), np.float32), aff), out + '/five_d.nii')\n"
    "    nib.save(nib.Nifti1Image(np.arange(60, dtype=np.float32).reshape(3, 4, 5, 1), aff),\n"
    "             out + '/four_d_one.nii')\n"
    "    print('made')\n"
    "cmd = sys.argv[1]\n"
    "if cmd == 'info': info(sys.argv[2], sys.argv[3:])\n"
    "elif cmd == 'dump': dump(sys.argv[2])\n"
    "elif cmd == 'formula': formula(sys.argv[2])\n"
    "elif cmd == 'make': make(sys.argv[2])\n";

static const char *tmp_path(const char *name)
{
    static char buf[8][1200];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Run the reference script with the given arguments; its stdout (and stderr)
 * goes to a malloc'd string. NULL if python could not be run. */
static char *py(const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' %s 2>&1", script, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    size_t got;
    while ((got = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 1024)
            out = realloc(out, cap *= 2);
    }
    out[len] = 0;
    pclose(p);
    return out;
}

/* Parse the numbers on the output line that starts with key; returns how many. */
static int py_numbers(const char *out, const char *key, double *v, int max)
{
    size_t kl = strlen(key);
    for (const char *line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
            const char *s = line + kl;
            int n = 0;
            while (n < max) {
                char *end;
                double x = strtod(s, &end);
                if (end == s)
                    break;
                v[n++] = x;
                s = end;
            }
            return n;
        }
    }
    return 0;
}

/* The word after key on its output line (class, dtype, descrip). */
static const char *py_word(const char *out, const char *key)
{
    static char word[256];
    size_t kl = strlen(key);
    word[0] = 0;
    for (const char *line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
            const char *s = line + kl + 1;
            size_t n = strcspn(s, "\n");
            if (n >= sizeof word)
                n = sizeof word - 1;
            memcpy(word, s, n);
            word[n] = 0;
            break;
        }
    }
    return word;
}

static int near(double a, double b, double tol)
{
    return fabs(a - b) <= tol * (1 + fabs(b));
}

static int same_value(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

static float voxel(const gi_volume *v, int i, int j, int k)
{
    return v->data[((size_t)k * v->ny + j) * v->nx + i];
}

/* Compare dims, affine, sum and a few voxels of path with nibabel. */
static void compare_with_nibabel(const char *label, const char *path)
{
    char name[256];
    gi_volume v;
    gi_err err = {{0}};
    int rc = gi_volume_read(&v, path, 1, &err);
    snprintf(name, sizeof name, "%s: read", label);
    CHECKF(rc == 0, name, "%s", err.msg);
    if (rc)
        return;
    if (!have_nibabel) {
        snprintf(name, sizeof name, "%s: matches nibabel", label);
        SKIP(name, "/usr/bin/python3 cannot import nibabel");
        gi_volume_free(&v);
        return;
    }
    int pts[5][3] = {{0, 0, 0}, {v.nx - 1, v.ny - 1, v.nz - 1}, {v.nx / 2, v.ny / 2, v.nz / 2},
                     {v.nx - 1, 0, v.nz / 3}, {v.nx / 3, v.ny - 1, 0}};
    char *out = py("info '%s' %d,%d,%d %d,%d,%d %d,%d,%d %d,%d,%d %d,%d,%d", path,
                   pts[0][0], pts[0][1], pts[0][2], pts[1][0], pts[1][1], pts[1][2],
                   pts[2][0], pts[2][1], pts[2][2], pts[3][0], pts[3][1], pts[3][2],
                   pts[4][0], pts[4][1], pts[4][2]);
    double shape[8], A[16], sum, nnan, vox[5];
    int ns = py_numbers(out, "shape", shape, 8);
    int extra_ones = 1;   /* trailing dimensions of length 1 (a 4-D file with one volume) */
    for (int d = 3; d < ns; d++)
        extra_ones = extra_ones && shape[d] == 1;
    snprintf(name, sizeof name, "%s: dims match nibabel", label);
    CHECKF(ns >= 3 && extra_ones && shape[0] == v.nx && shape[1] == v.ny && shape[2] == v.nz, name,
           "ours %d x %d x %d; nibabel says: %s", v.nx, v.ny, v.nz, out);
    int na = py_numbers(out, "affine", A, 16);
    int ok = na == 16;
    for (int q = 0; ok && q < 16; q++)
        ok = fabs(A[q] - v.affine[q]) <= 1e-5 * (1 + fabs(A[q]));
    snprintf(name, sizeof name, "%s: affine matches nibabel", label);
    CHECKF(ok, name, "ours [%g %g %g %g; %g %g %g %g; %g %g %g %g]; nibabel: %s",
           v.affine[0], v.affine[1], v.affine[2], v.affine[3], v.affine[4], v.affine[5],
           v.affine[6], v.affine[7], v.affine[8], v.affine[9], v.affine[10], v.affine[11], out);
    double our_sum = 0;
    long our_nan = 0;
    size_t nvox = (size_t)v.nx * v.ny * v.nz;
    for (size_t q = 0; q < nvox; q++) {
        if (isnan(v.data[q]))
            our_nan++;
        else
            our_sum += v.data[q];
    }
    snprintf(name, sizeof name, "%s: data sum and NaN count match nibabel", label);
    CHECKF(py_numbers(out, "sum", &sum, 1) == 1 && py_numbers(out, "nan", &nnan, 1) == 1 &&
           near(our_sum, sum, 1e-6) && our_nan == (long)nnan, name,
           "ours sum %.10g nan %ld; nibabel: %s", our_sum, our_nan, out);
    ok = py_numbers(out, "vox", vox, 5) == 5;
    for (int p = 0; ok && p < 5; p++)
        ok = same_value(voxel(&v, pts[p][0], pts[p][1], pts[p][2]), (float)vox[p]);
    snprintf(name, sizeof name, "%s: voxels [i,j,k] match nibabel", label);
    CHECKF(ok, name, "ours %g %g %g %g %g; nibabel: %s", voxel(&v, 0, 0, 0),
           voxel(&v, pts[1][0], pts[1][1], pts[1][2]), voxel(&v, pts[2][0], pts[2][1], pts[2][2]),
           voxel(&v, pts[3][0], pts[3][1], pts[3][2]), voxel(&v, pts[4][0], pts[4][1], pts[4][2]),
           out);
    free(out);
    gi_volume_free(&v);
}

static void expect_read_error(const char *name, const char *path, const char *fragment)
{
    gi_volume v;
    gi_err err = {{0}};
    int rc = gi_volume_read(&v, path, 1, &err);
    CHECKF(rc == -1 && strstr(err.msg, fragment) && v.data == NULL && v.hdr == NULL, name,
           "rc=%d, message \"%s\", want \"%s\"", rc, err.msg, fragment);
    gi_volume_free(&v);
}

static void test_nibabel_images(void)
{
    if (!file_exists(NIBABEL_DATA "/anatomical.nii")) {
        SKIP("nifti: nibabel test images", NIBABEL_DATA " is missing");
        return;
    }
    /* anatomical.nii: NIfTI-1, big-endian int16, sform = qform code 2. */
    compare_with_nibabel("anatomical.nii", NIBABEL_DATA "/anatomical.nii");
    /* standard.nii.gz: uint8, sform code 2, qform code 0. */
    compare_with_nibabel("standard.nii.gz", NIBABEL_DATA "/standard.nii.gz");
    /* example4d.nii.gz is 128 x 96 x 24 x 2 and example_nifti2.nii.gz is
     * 32 x 20 x 12 x 2: both are multi-volume and must be refused. */
    expect_read_error("example4d.nii.gz refused as multi-volume",
                      NIBABEL_DATA "/example4d.nii.gz", "4-D image with 2 volumes");
    expect_read_error("example_nifti2.nii.gz refused as multi-volume",
                      NIBABEL_DATA "/example_nifti2.nii.gz", "4-D image with 2 volumes");
    {
        /* The header alone of a refused file is refused too. */
        gi_volume v;
        gi_err err = {{0}};
        int rc = gi_volume_read(&v, NIBABEL_DATA "/example4d.nii.gz", 0, &err);
        CHECKF(rc == -1 && strstr(err.msg, "example4d.nii.gz"),
               "example4d.nii.gz header-only read refused too", "%s", err.msg);
    }
    {
        gi_volume v;
        gi_err err = {{0}};
        int rc = gi_volume_read(&v, NIBABEL_DATA "/anatomical.nii", 0, &err);
        CHECKF(rc == 0 && v.data == NULL && v.hdr != NULL && v.nx == 33 && v.ny == 41 &&
               v.nz == 25 && v.affine[0] == -2 && v.affine[3] == 32,
               "anatomical.nii header-only read", "%s", err.msg);
        gi_volume_free(&v);
    }
}

static void test_generated_images(void)
{
    if (!have_nibabel) {
        SKIP("nifti: datatypes, scaling, NIfTI-2, transforms", "no nibabel to make the inputs");
        return;
    }
    char *out = py("make '%s'", tmpdir);
    int made = strstr(out, "made") != NULL;
    CHECKF(made, "nibabel wrote the test images", "%s", out);
    free(out);
    if (!made)
        return;

    /* Every scalar datatype: all 60 voxels equal nibabel's get_fdata(). */
    const char *types[] = {"uint8", "int8", "int16", "uint16", "int32", "uint32",
                           "int64", "uint64", "float32", "float64"};
    for (int t = 0; t < 10; t++) {
        char file[64], name[128];
        snprintf(file, sizeof file, "dt_%s.nii", types[t]);
        const char *path = tmp_path(file);
        gi_volume v;
        gi_err err = {{0}};
        int rc = gi_volume_read(&v, path, 1, &err);
        double ref[60];
        out = py("dump '%s'", path);
        int n = py_numbers(out, "vals", ref, 60);
        int ok = rc == 0 && n == 60 && v.nx == 5 && v.ny == 4 && v.nz == 3;
        for (int q = 0; ok && q < 60; q++)
            ok = v.data[q] == (float)ref[q];
        snprintf(name, sizeof name, "datatype %s: all voxels match nibabel", types[t]);
        CHECKF(ok, name, "rc=%d %s; n=%d; %s", rc, err.msg, n, out);
        free(out);
        gi_volume_free(&v);
    }
    compare_with_nibabel("scl_slope 0.5, scl_inter -3", tmp_path("scaled.nii"));
    compare_with_nibabel("float32 with NaN (kept, not zeroed)", tmp_path("nan.nii.gz"));
    compare_with_nibabel("NIfTI-2 3-D (from example_nifti2)", tmp_path("nifti2_3d.nii.gz"));
    compare_with_nibabel("qform only", tmp_path("qform_only.nii"));
    compare_with_nibabel("4-D with one volume", tmp_path("four_d_one.nii"));
    {
        gi_volume v;
        gi_err err = {{0}};
        int rc = gi_volume_read(&v, tmp_path("no_xform.nii"), 0, &err);
        const double want[16] = {2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 4, 0, 0, 0, 0, 1};
        CHECKF(rc == 0 && memcmp(v.affine, want, sizeof want) == 0,
               "no sform/qform: affine is the pixdim diagonal", "%s; got %g %g %g", err.msg,
               v.affine[0], v.affine[5], v.affine[10]);
        gi_volume_free(&v);
    }
    expect_read_error("complex64 refused", tmp_path("complex.nii"), "complex");
    expect_read_error("RGB24 refused", tmp_path("rgb.nii"), "colour");
    expect_read_error("5-D refused", tmp_path("five_d.nii"), "only 3-D volumes");
}

/* Copy the first n bytes of a file (decompressed if gz) to out (compressed if gz_out). */
static void truncated_copy(const char *src, const char *dst, long n, int gz_out)
{
    gzFile in = gzopen(src, "rb");
    char *buf = malloc((size_t)n);
    int got = gzread(in, buf, (unsigned)n);
    gzclose(in);
    if (gz_out) {
        gzFile o = gzopen(dst, "wb");
        gzwrite(o, buf, (unsigned)got);
        gzclose(o);
    } else {
        FILE *o = fopen(dst, "wb");
        fwrite(buf, 1, (size_t)got, o);
        fclose(o);
    }
    free(buf);
}

static void test_read_errors(void)
{
    expect_read_error("missing file", tmp_path("no-such-file.nii"), "no-such-file.nii");
    {
        FILE *f = fopen(tmp_path("text.nii"), "w");
        fputs("this is not a NIfTI file, just some words that go on for a while..........\n", f);
        fclose(f);
        expect_read_error("not a NIfTI file", tmp_path("text.nii"), "text.nii is not a NIfTI file");
        f = fopen(tmp_path("empty.nii"), "w");
        fclose(f);
        expect_read_error("empty file", tmp_path("empty.nii"), "empty.nii is not a NIfTI file");
    }
    if (file_exists(NIBABEL_DATA "/anatomical.nii")) {
        truncated_copy(NIBABEL_DATA "/anatomical.nii", tmp_path("cut.nii"), 5000, 0);
        expect_read_error("truncated .nii", tmp_path("cut.nii"), "cut.nii: file is truncated");
        truncated_copy(NIBABEL_DATA "/anatomical.nii", tmp_path("cut.nii.gz"), 360, 1);
        expect_read_error("truncated .nii.gz (8 data bytes)", tmp_path("cut.nii.gz"),
                          "cut.nii.gz: file is truncated");
        truncated_copy(NIBABEL_DATA "/anatomical.nii", tmp_path("cuthdr.nii"), 200, 0);
        expect_read_error("truncated header", tmp_path("cuthdr.nii"), "cuthdr.nii");
    }
}

/* i + 100 j + 10000 k + 0.5 (exact in float for these sizes), NaN at (1,2,3). */
static float *formula_volume(int nx, int ny, int nz)
{
    float *d = malloc((size_t)nx * ny * nz * sizeof *d);
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++)
            for (int i = 0; i < nx; i++)
                d[((size_t)k * ny + j) * nx + i] = (float)(i + 100 * j + 10000 * k) + 0.5f;
    d[((size_t)3 * ny + 2) * nx + 1] = NAN;
    return d;
}

/* Our own reader gives back exactly what was written. */
static void check_read_back(const char *label, const char *path, const float *data, int nx,
                            int ny, int nz, const double *affine)
{
    char name[256];
    gi_volume v;
    gi_err err = {{0}};
    int rc = gi_volume_read(&v, path, 1, &err);
    int ok = rc == 0 && v.nx == nx && v.ny == ny && v.nz == nz;
    for (size_t q = 0; ok && q < (size_t)nx * ny * nz; q++)
        ok = same_value(v.data[q], data[q]);
    for (int q = 0; ok && affine && q < 16; q++)
        ok = near(v.affine[q], affine[q], 1e-6);
    snprintf(name, sizeof name, "%s: read back by gi_volume_read exactly", label);
    CHECKF(ok, name, "rc=%d %s", rc, err.msg);
    gi_volume_free(&v);
}

static void check_written(const char *label, const char *path, const double *affine,
                          const char *klass, const char *dtype, int sform_code, int qform_code,
                          const char *descrip)
{
    char name[256];
    if (!have_nibabel) {
        snprintf(name, sizeof name, "%s: nibabel reads it", label);
        SKIP(name, "no nibabel");
        return;
    }
    char *out = py("info '%s'", path);
    double A[16], codes[2];
    int ok = py_numbers(out, "affine", A, 16) == 16;
    for (int q = 0; ok && q < 16; q++)
        ok = fabs(A[q] - affine[q]) <= 1e-5 * (1 + fabs(affine[q]));
    snprintf(name, sizeof name, "%s: nibabel sees the same affine", label);
    CHECKF(ok, name, "%s", out);
    snprintf(name, sizeof name, "%s: %s, %s, codes %d/%d", label, klass, dtype, sform_code,
             qform_code);
    CHECKF(strcmp(py_word(out, "class"), klass) == 0 && strcmp(py_word(out, "dtype"), dtype) == 0 &&
           py_numbers(out, "codes", codes, 2) == 2 && codes[0] == sform_code &&
           codes[1] == qform_code, name, "%s", out);
    if (descrip) {
        snprintf(name, sizeof name, "%s: description stored", label);
        CHECKF(strcmp(py_word(out, "descrip"), descrip) == 0, name, "%s", out);
    }
    free(out);
}

static void check_formula(const char *label, const char *path, int nvox)
{
    char name[256];
    if (!have_nibabel)
        return;
    char *out = py("formula '%s'", path);
    double r[2];
    snprintf(name, sizeof name, "%s: nibabel get_fdata()[i,j,k] == data[(k*ny+j)*nx+i]", label);
    CHECKF(py_numbers(out, "formula", r, 2) == 2 && r[0] == nvox && r[1] == nvox, name, "%s", out);
    free(out);
}

static void test_write_new(void)
{
    const int nx = 7, ny = 6, nz = 5;
    const double las[16] = {-2, 0, 0, 90, 0, 2, 0, -126, 0, 0, 2, -72, 0, 0, 0, 1};
    float *d = formula_volume(nx, ny, nz);
    const char *paths[2] = {tmp_path("new.nii"), tmp_path("new.nii.gz")};
    for (int t = 0; t < 2; t++) {
        gi_err err = {{0}};
        char label[64];
        snprintf(label, sizeof label, "write_new %s", t ? ".nii.gz" : ".nii");
        int rc = gi_volume_write_new(nx, ny, nz, las, 4, d, 0, paths[t], &err);
        CHECKF(rc == 0, label, "%s", err.msg);
        check_written(label, paths[t], las, "Nifti1Image", "float32", 4, 4, NULL);
        check_formula(label, paths[t], nx * ny * nz);
        check_read_back(label, paths[t], d, nx, ny, nz, las);
    }
    {
        /* gzip output really is gzip. */
        FILE *f = fopen(paths[1], "rb");
        int b0 = fgetc(f), b1 = fgetc(f);
        fclose(f);
        CHECK(b0 == 0x1f && b1 == 0x8b, "write_new .nii.gz is gzip-compressed");
    }
    /* A rotated, anisotropic affine: the sform keeps it exactly and the qform
     * (quaternion) reproduces it too, since it has no shear. */
    {
        const double rot[16] = {0, -3, 0, 10, 2, 0, 0, -20, 0, 0, 4, 30, 0, 0, 0, 1};
        gi_err err = {{0}};
        int rc = gi_volume_write_new(nx, ny, nz, rot, 2, d, 0, tmp_path("rot.nii"), &err);
        CHECKF(rc == 0, "write_new rotated affine", "%s", err.msg);
        check_written("write_new rotated affine", tmp_path("rot.nii"), rot, "Nifti1Image",
                      "float32", 2, 2, NULL);
        if (have_nibabel) {
            /* The qform nibabel decodes from the quaternion fields. */
            char cmd[2048];
            snprintf(cmd, sizeof cmd,
                     "/usr/bin/python3 -c \"import nibabel as nib, numpy as np; "
                     "h = nib.load('%s').header; "
                     "print('qerr', float(abs(h.get_qform() - h.get_sform()).max()))\"",
                     tmp_path("rot.nii"));
            FILE *p = popen(cmd, "r");
            char line[256] = {0};
            if (p) {
                if (!fgets(line, sizeof line, p))
                    line[0] = 0;
                pclose(p);
            }
            double qerr = 1;
            CHECKF(sscanf(line, "qerr %lf", &qerr) == 1 && qerr < 1e-5,
                   "write_new rotated affine: qform equals sform", "%s", line);
        }
    }
    /* Labels: uint8 when all in 0..255, int16 otherwise, errors beyond. */
    {
        size_t n = (size_t)nx * ny * nz;
        float *lab = malloc(n * sizeof *lab);
        for (size_t q = 0; q < n; q++)
            lab[q] = (float)(q % 83);
        gi_err err = {{0}};
        int rc = gi_volume_write_new(nx, ny, nz, las, 4, lab, 1, tmp_path("lab8.nii.gz"), &err);
        CHECKF(rc == 0, "write_new labels 0..82", "%s", err.msg);
        check_written("labels 0..82", tmp_path("lab8.nii.gz"), las, "Nifti1Image", "uint8", 4, 4,
                      NULL);
        check_read_back("labels 0..82", tmp_path("lab8.nii.gz"), lab, nx, ny, nz, las);
        lab[5] = -7;
        lab[6] = 2000;
        rc = gi_volume_write_new(nx, ny, nz, las, 4, lab, 1, tmp_path("lab16.nii"), &err);
        CHECKF(rc == 0, "write_new labels -7..2000", "%s", err.msg);
        check_written("labels -7..2000", tmp_path("lab16.nii"), las, "Nifti1Image", "int16", 4, 4,
                      NULL);
        check_read_back("labels -7..2000", tmp_path("lab16.nii"), lab, nx, ny, nz, las);
        lab[7] = 1.5f;
        rc = gi_volume_write_new(nx, ny, nz, las, 4, lab, 1, tmp_path("labx.nii"), &err);
        CHECKF(rc == -1 && strstr(err.msg, "non-integer") && !file_exists(tmp_path("labx.nii")),
               "write_new labels: 1.5 refused", "%s", err.msg);
        lab[7] = 40000;
        rc = gi_volume_write_new(nx, ny, nz, las, 4, lab, 1, tmp_path("labx.nii"), &err);
        CHECKF(rc == -1 && strstr(err.msg, "int16"), "write_new labels: 40000 refused", "%s",
               err.msg);
        free(lab);
    }
    /* Errors. */
    {
        gi_err err = {{0}};
        int rc = gi_volume_write_new(nx, ny, nz, las, 4, d, 0, "/nonexistent-dir/x.nii", &err);
        CHECKF(rc == -1 && strstr(err.msg, "/nonexistent-dir/x.nii"),
               "write_new into a missing folder fails", "%s", err.msg);
        rc = gi_volume_write_new(nx, ny, nz, las, 4, d, 0, tmp_path("x.img"), &err);
        CHECKF(rc == -1 && strstr(err.msg, ".nii"), "write_new with a bad file name fails", "%s",
               err.msg);
        const double flat[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        rc = gi_volume_write_new(nx, ny, nz, flat, 4, d, 0, tmp_path("flat.nii"), &err);
        CHECKF(rc == -1 && strstr(err.msg, "invertible"), "write_new with a singular affine fails",
               "%s", err.msg);
    }
    free(d);
}

static void test_write_like(void)
{
    struct {
        const char *label, *src, *klass;
    } cases[] = {
        {"write_like anatomical.nii (NIfTI-1)", NIBABEL_DATA "/anatomical.nii", "Nifti1Image"},
        {"write_like NIfTI-2 geometry", NULL, "Nifti2Image"},
    };
    for (int c = 0; c < 2; c++) {
        const char *src = cases[c].src ? cases[c].src : tmp_path("nifti2_3d.nii.gz");
        if (!file_exists(src)) {
            SKIP(cases[c].label, "source image missing");
            continue;
        }
        gi_volume g;
        gi_err err = {{0}};
        if (gi_volume_read(&g, src, 0, &err)) {
            CHECKF(0, cases[c].label, "%s", err.msg);
            continue;
        }
        float *d = formula_volume(g.nx, g.ny, g.nz);
        const char *path = tmp_path(c ? "like2.nii.gz" : "like1.nii");
        int rc = gi_volume_write_like(&g, d, path, "geneinr test map", &err);
        CHECKF(rc == 0, cases[c].label, "%s", err.msg);
        if (have_nibabel) {
            /* Same affine and codes as the source, as nibabel sees them. */
            char *out = py("info '%s'", src);
            double codes[2] = {0, 0}, A[16];
            py_numbers(out, "codes", codes, 2);
            py_numbers(out, "affine", A, 16);
            free(out);
            check_written(cases[c].label, path, A, cases[c].klass, "float32", (int)codes[0],
                          (int)codes[1], "geneinr test map");
            check_formula(cases[c].label, path, g.nx * g.ny * g.nz);
        }
        check_read_back(cases[c].label, path, d, g.nx, g.ny, g.nz, g.affine);
        free(d);
        gi_volume_free(&g);
    }
    {
        gi_volume none = {0};
        gi_err err = {{0}};
        float x = 0;
        none.nx = none.ny = none.nz = 1;
        int rc = gi_volume_write_like(&none, &x, tmp_path("none.nii"), NULL, &err);
        CHECKF(rc == -1 && strstr(err.msg, "no NIfTI header"), "write_like without a header fails",
               "%s", err.msg);
    }
}

static void test_atlas(void)
{
    const char *path = SHARED_DATA "/atlas-desikankilliany.nii.gz";
    if (!file_exists(path)) {
        SKIP("atlas-desikankilliany.nii.gz", SHARED_DATA " is absent");
        return;
    }
    gi_volume v;
    gi_err err = {{0}};
    int rc = gi_volume_read(&v, path, 1, &err);
    CHECKF(rc == 0 && v.nx == 146 && v.ny == 182 && v.nz == 155,
           "atlas-desikankilliany: 146 x 182 x 155", "rc=%d %s; %d x %d x %d", rc, err.msg, v.nx,
           v.ny, v.nz);
    gi_volume_free(&v);
    compare_with_nibabel("atlas-desikankilliany", path);
}

static void test_affine(void)
{
    const double las[16] = {-2, 0, 0, 90, 0, 2, 0, -126, 0, 0, 2, -72, 0, 0, 0, 1};
    double out[3], inv[16];
    gi_affine_apply(las, 45, 63, 36, out);
    CHECK(out[0] == 0 && out[1] == 0 && out[2] == 0, "affine_apply: LAS voxel (45,63,36) is the origin");
    CHECK(gi_affine_invert(las, inv) == 0, "affine_invert: LAS");
    gi_affine_apply(inv, 0, 0, 0, out);
    CHECK(out[0] == 45 && out[1] == 63 && out[2] == 36, "affine_invert: origin maps back to (45,63,36)");
    /* A general (sheared, rotated) affine: A * A^-1 = I. */
    const double g[16] = {0.3, -1.2, 0.5, 4, 2.1, 0.1, -0.7, -3, 0.2, 0.9, 1.7, 8, 0, 0, 0, 1};
    int ok = gi_affine_invert(g, inv) == 0;
    for (int r = 0; ok && r < 4; r++)
        for (int c = 0; ok && c < 4; c++) {
            double s = 0;
            for (int q = 0; q < 4; q++)
                s += g[4 * r + q] * inv[4 * q + c];
            ok = fabs(s - (r == c)) < 1e-12;
        }
    CHECK(ok, "affine_invert: general 4x4, A * inv = I");
    const double sing[16] = {1, 2, 3, 0, 2, 4, 6, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    CHECK(gi_affine_invert(sing, inv) == -1, "affine_invert: singular returns -1");
}

/* A header that claims more voxels than the file holds is refused before
 * anything is allocated (found by the fuzzer as an out-of-memory). */
static void test_huge_header(void)
{
    const char *path = "tests/fuzz/corpus/nifti/regression-huge-dims.nii";
    if (access(path, R_OK) != 0) {
        SKIP("a header claiming 5e9 voxels in a 397-byte file is refused", "run from the repository root");
        return;
    }
    gi_volume v;
    gi_err err;
    CHECKF(gi_volume_read(&v, path, 1, &err) == -1 && strstr(err.msg, "more than the file holds"),
           "a header claiming 5e9 voxels in a 397-byte file is refused", "%s", err.msg);
}

int main(void)
{
    const char *base = getenv("TESTTMP");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_nifti.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror(tmpdir);
        return 2;
    }
    snprintf(script, sizeof script, "%s/ref.py", tmpdir);
    FILE *f = fopen(script, "w");
    fputs(PY, f);
    fclose(f);
    have_nibabel = system("/usr/bin/python3 -c 'import nibabel, numpy' >/dev/null 2>&1") == 0;
    if (!have_nibabel)
        SKIP("nibabel comparisons", "/usr/bin/python3 cannot import nibabel and numpy");

    test_affine();
    test_nibabel_images();
    test_generated_images();
    test_read_errors();
    test_write_new();
    test_write_like();
    test_atlas();
    test_huge_header();

    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_summary();
}
