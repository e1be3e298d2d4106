/* test_phantom.c - the phantom (2 mm grid, 4 genes) read back through every
 * reader, its determinism, and the scores of known maps against its truth. */
#include "check.h"

#include "geneinr/atlas.h"
#include "geneinr/nifti.h"
#include "geneinr/phantom.h"
#include "geneinr/rng.h"
#include "geneinr/samples.h"
#include "geneinr/score.h"

#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *const DONORS[6] = {"H0351.2001", "H0351.2002", "H0351.1009",
                                      "H0351.1012", "H0351.1015", "H0351.1016"};
static const int COUNTS[6] = {946, 893, 363, 529, 470, 501};

static char base[512];

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void path_in(char *out, size_t n, const char *dir, const char *name)
{
    if (snprintf(out, n, "%s/%s", dir, name) >= (int)n)
        out[0] = '\0';         /* too long: fails loudly at the next open */
}

static char *slurp(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

static double pearson(const float *a, const float *b, const unsigned char *mask, size_t n)
{
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    long m = 0;
    for (size_t v = 0; v < n; v++) {
        if (!mask[v])
            continue;
        sa += a[v];
        sb += b[v];
        saa += (double)a[v] * a[v];
        sbb += (double)b[v] * b[v];
        sab += (double)a[v] * b[v];
        m++;
    }
    double ca = saa - sa * sa / m, cb = sbb - sb * sb / m, cab = sab - sa * sb / m;
    return cab / sqrt(ca * cb);
}

/* Write an atlas file: truth expression transformed by f (kind "atlas"). */
static int write_atlas_like(const char *path, const gi_atlas *t, int nx, int ny, int nz,
                            const char *const *genes, int degrade, gi_err *err)
{
    gi_atlas_info info = {.n_genes = t->n_genes, .genes = genes, .n_donors = t->n_donors,
                          .donors = (const char *const *)t->donors, .nx = nx, .ny = ny, .nz = nz,
                          .units = "test", .normalisation = "test", .rendered_for = "average",
                          .kind = "atlas", .compress = 0};
    memcpy(info.affine, t->affine, sizeof info.affine);
    gi_atlas_writer *w = gi_atlas_create(MPI_COMM_SELF, path, &info, err);
    if (!w)
        return -1;
    size_t plane = (size_t)nx * ny, full = (size_t)t->nx * t->ny * t->nz;
    float *vol = malloc((size_t)t->n_genes * full * sizeof *vol);
    float *expr = malloc((size_t)t->n_genes * plane * sizeof *expr);
    unsigned char *mask = malloc(plane);
    int rc = 0;
    for (int g = 0; g < t->n_genes && rc == 0; g++)
        rc = gi_atlas_read_gene(t, g, vol + (size_t)g * full, err);
    for (int k = 0; k < nz && rc == 0; k++) {
        for (int g = 0; g < t->n_genes; g++)
            for (int j = 0; j < ny; j++)
                for (int i = 0; i < nx; i++) {
                    size_t src = ((size_t)k * t->ny + j) * t->nx + i, dst = (size_t)j * nx + i;
                    float v = vol[(size_t)g * full + src];
                    if (degrade && isfinite(v))     /* shrink + heavy noise */
                        v = 0.5f * v + (float)(0.15 * gi_rng_normal(7, 99, (uint64_t)g * full + src));
                    expr[(size_t)g * plane + dst] = v;
                    mask[dst] = t->mask[src];
                }
        rc = gi_atlas_write_slices(w, k, 1, expr, mask, err);
    }
    free(vol);
    free(expr);
    free(mask);
    if (rc < 0) {
        gi_atlas_abort(w);
        return -1;
    }
    return gi_atlas_finish(w, err);
}

static void test_samples(const char *dir, gi_samples *s, const gi_volume *mask)
{
    char p[600];
    gi_err err = {{0}};
    path_in(p, sizeof p, dir, "samples.csv");
    int rc = gi_samples_read_csv(s, p, &err);
    CHECKF(rc == 0, "samples.csv reads back", "%s", err.msg);
    if (rc || !mask->data)
        return;
    CHECKF(s->n == 3702 && s->n_genes == 4 && s->n_donors == 6, "samples.csv has 3702 samples, 4 genes, 6 donors",
           "n %d genes %d donors %d", s->n, s->n_genes, s->n_donors);
    CHECK(!strcmp(s->gene_names[0], "G01") && !strcmp(s->gene_names[3], "G04"), "genes named G01..G04");
    int counts_ok = 1, left_ok = 1, annot_ok = s->n_annot == 2;
    for (int d = 0; d < 6; d++) {
        int di = gi_samples_donor_index(s, DONORS[d]), c = 0;
        for (int i = 0; i < s->n; i++)
            c += s->donor[i] == di;
        counts_ok &= di >= 0 && c == COUNTS[d];
    }
    CHECK(counts_ok, "sample counts per donor are the AHBA counts");
    long n_nan = 0, n_cortex = 0, n_inside = 0;
    double inv[16];
    gi_affine_invert(mask->affine, inv);
    for (int i = 0; i < s->n; i++) {
        const float *x = s->mni + (size_t)i * 3;
        if (s->donor[i] >= 2 && !(x[0] < 0.0f))
            left_ok = 0;
        for (int g = 0; g < s->n_genes; g++)
            n_nan += !isfinite(s->values[(size_t)i * s->n_genes + g]);
        if (annot_ok) {
            int sid = atoi(s->annot[(size_t)i * 2]);
            const char *hemi = s->annot[(size_t)i * 2 + 1];
            n_cortex += sid == 1 || sid == 2;
            if (sid < 1 || sid > 13 || strcmp(hemi, x[0] < 0 ? "L" : "R"))
                annot_ok = 0;
        }
        double v[3];
        gi_affine_apply(inv, x[0], x[1], x[2], v);
        long ii = lround(v[0]), jj = lround(v[1]), kk = lround(v[2]);
        if (ii >= 0 && ii < mask->nx && jj >= 0 && jj < mask->ny && kk >= 0 && kk < mask->nz &&
            mask->data[((size_t)kk * mask->ny + jj) * mask->nx + ii] == 1.0f)
            n_inside++;
    }
    CHECK(left_ok, "donors 3-6 sample the left hemisphere only (x < 0)");
    CHECK(annot_ok && !strcmp(s->annot_names[0], "structure_id") && !strcmp(s->annot_names[1], "hemisphere"),
          "structure_id in 1..13 and hemisphere matches the sign of x");
    double frac = (double)n_nan / ((double)s->n * s->n_genes);
    CHECKF(frac > 0.01 && frac < 0.03, "about 2% of values are missing, the rest finite", "fraction %.4f", frac);
    double fc = (double)n_cortex / s->n;
    CHECKF(fc > 0.6 && fc < 0.7, "60-70% of samples are in the cortex", "fraction %.3f", fc);
    CHECKF(n_inside == s->n, "every sample is inside the mask", "%ld of %d", n_inside, s->n);
}

static void test_volumes(const char *dir, gi_volume *mask)
{
    char p[600];
    gi_err err = {{0}};
    const double A[16] = {-2, 0, 0, 90, 0, 2, 0, -126, 0, 0, 2, -72, 0, 0, 0, 1};
    path_in(p, sizeof p, dir, "mask.nii.gz");
    int rc = gi_volume_read(mask, p, 1, &err);
    CHECKF(rc == 0, "mask.nii.gz reads back", "%s", err.msg);
    if (rc)
        return;
    CHECK(mask->nx == 91 && mask->ny == 109 && mask->nz == 91, "mask is 91 x 109 x 91");
    int aff_ok = 1;
    for (int e = 0; e < 16; e++)
        aff_ok &= fabs(mask->affine[e] - A[e]) < 1e-6;
    CHECK(aff_ok, "mask affine is the 2 mm MNI152 affine");
    size_t n = (size_t)mask->nx * mask->ny * mask->nz;
    long inside = 0;
    int binary = 1;
    for (size_t v = 0; v < n; v++) {
        inside += mask->data[v] == 1.0f;
        binary &= mask->data[v] == 0.0f || mask->data[v] == 1.0f;
    }
    CHECKF(binary && inside * 8 > 1400000 && inside * 8 < 1900000, "mask is binary, brain-sized",
           "%ld voxels of 8 mm^3", inside);

    gi_volume anat = {0};
    path_in(p, sizeof p, dir, "anatomy.nii.gz");
    rc = gi_volume_read(&anat, p, 1, &err);
    CHECKF(rc == 0, "anatomy.nii.gz reads back", "%s", err.msg);
    if (rc)
        return;
    int same = anat.nx == mask->nx && anat.ny == mask->ny && anat.nz == mask->nz;
    for (int e = 0; e < 16 && same; e++)
        same &= anat.affine[e] == mask->affine[e];
    CHECK(same, "anatomy is on the mask's grid");
    int seen[256] = {0}, agree = same;
    for (size_t v = 0; v < n && agree; v++) {
        float l = anat.data[v];
        agree &= l >= 0 && l <= 255 && l == floorf(l) && (l > 0) == (mask->data[v] > 0);
        if (agree)
            seen[(int)l] = 1;
    }
    int n_labels = 0;
    for (int l = 1; l < 256; l++)
        n_labels += seen[l];
    CHECKF(agree && n_labels >= 10 && n_labels <= 14, "anatomy: 10-14 integer labels, 0 exactly outside the mask",
           "%d labels", n_labels);
    gi_volume_free(&anat);
}

static void test_truth(const char *dir, const gi_samples *s, const gi_volume *mask)
{
    char p[600];
    gi_err err = {{0}};
    gi_atlas t;
    path_in(p, sizeof p, dir, "truth.h5");
    int rc = gi_atlas_open(&t, p, &err);
    CHECKF(rc == 0, "truth.h5 opens", "%s", err.msg);
    if (rc)
        return;
    CHECK(t.n_genes == 4 && t.nx == 91 && t.ny == 109 && t.nz == 91 && t.n_donors == 6, "truth: 4 genes, 2 mm grid, 6 donors");
    CHECK(t.kind && !strcmp(t.kind, "truth"), "truth kind is \"truth\"");
    int names = t.n_genes == 4 && s->n_genes == 4;
    for (int g = 0; g < 4 && names; g++)
        names &= !strcmp(t.genes[g], s->gene_names[g]);
    CHECK(names, "truth genes are the sample table's genes");
    size_t n = (size_t)t.nx * t.ny * t.nz;
    int mask_same = mask->data != NULL && t.nx == mask->nx && t.ny == mask->ny && t.nz == mask->nz;
    for (size_t v = 0; v < n && mask_same; v++)
        mask_same &= (t.mask[v] != 0) == (mask->data[v] != 0.0f);
    CHECK(mask_same, "truth mask equals mask.nii.gz");
    float *vol[4];
    int nan_ok = 1, scale_ok = 1;
    for (int g = 0; g < 4; g++) {
        vol[g] = malloc(n * sizeof(float));
        if (gi_atlas_read_gene(&t, g, vol[g], &err) < 0) {
            CHECKF(0, "truth genes read", "%s", err.msg);
            nan_ok = 0;
            continue;
        }
        double sum = 0, sum2 = 0;
        long m = 0;
        for (size_t v = 0; v < n; v++) {
            if (t.mask[v]) {
                nan_ok &= isfinite(vol[g][v]);
                sum += vol[g][v];
                sum2 += (double)vol[g][v] * vol[g][v];
                m++;
            } else {
                nan_ok &= isnan(vol[g][v]);
            }
        }
        double mean = sum / m, sd = sqrt(sum2 / m - mean * mean);
        scale_ok &= fabs(mean - 0.5) < 0.03 && sd > 0.08 && sd < 0.12;
        if (fabs(mean - 0.5) >= 0.03 || sd <= 0.08 || sd >= 0.12)
            printf("# gene %d mean %.4f sd %.4f\n", g, mean, sd);
    }
    CHECK(nan_ok, "truth is NaN outside the mask and finite inside");
    CHECK(scale_ok, "truth genes have mean ~0.5 and spatial std ~0.1");
    double rmax = 0;
    for (int a = 0; a < 4 && nan_ok; a++)
        for (int b = a + 1; b < 4; b++) {
            double r = fabs(pearson(vol[a], vol[b], t.mask, n));
            if (r > rmax)
                rmax = r;
        }
    CHECKF(rmax > 0.3, "genes are correlated (some |r| > 0.3)", "max |r| %.3f", rmax);

    /* The samples measure the truth: r(sample value, truth at its voxel). */
    double inv[16];
    gi_affine_invert(t.affine, inv);
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    long m = 0;
    for (int i = 0; i < s->n && nan_ok; i++) {
        const float *x = s->mni + (size_t)i * 3;
        double v[3];
        gi_affine_apply(inv, x[0], x[1], x[2], v);
        size_t idx = ((size_t)lround(v[2]) * t.ny + (size_t)lround(v[1])) * t.nx + (size_t)lround(v[0]);
        float a = s->values[(size_t)i * s->n_genes], b = vol[0][idx];
        if (!isfinite(a) || !isfinite(b))
            continue;
        sa += a; sb += b; saa += (double)a * a; sbb += (double)b * b; sab += (double)a * b;
        m++;
    }
    double r = (sab - sa * sb / m) / sqrt((saa - sa * sa / m) * (sbb - sb * sb / m));
    CHECKF(r > 0.6 && r < 0.99, "sample values follow the truth with noise", "r %.3f", r);
    for (int g = 0; g < 4; g++)
        free(vol[g]);
    gi_atlas_close(&t);
}

static int files_equal(const char *a, const char *b)
{
    long na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int eq = x && y && na == nb && memcmp(x, y, (size_t)na) == 0;
    free(x);
    free(y);
    return eq;
}

static void test_determinism(const char *dir1, const gi_phantom_spec *spec)
{
    char d2[600], d3[600], a[700], b[700];
    gi_err err = {{0}};
    path_in(d2, sizeof d2, base, "again/nested");
    path_in(d3, sizeof d3, base, "seed2");
    int rc = gi_phantom_write(d2, spec, &err);
    CHECKF(rc == 0, "phantom writes into a new nested folder (mkdir -p)", "%s", err.msg);
    gi_phantom_spec s3 = *spec;
    s3.seed = 2;
    int rc3 = gi_phantom_write(d3, &s3, &err);
    CHECKF(rc3 == 0, "phantom with another seed", "%s", err.msg);
    path_in(a, sizeof a, dir1, "samples.csv");
    path_in(b, sizeof b, d2, "samples.csv");
    CHECK(rc == 0 && files_equal(a, b), "same seed gives identical samples.csv bytes");
    path_in(a, sizeof a, dir1, "README.txt");
    path_in(b, sizeof b, d2, "README.txt");
    CHECK(rc == 0 && files_equal(a, b), "same seed gives identical README.txt");
    path_in(a, sizeof a, dir1, "samples.csv");
    path_in(b, sizeof b, d3, "samples.csv");
    CHECK(rc3 == 0 && !files_equal(a, b), "another seed gives different samples");
}

static void test_score(const char *dir)
{
    char truth[600], csv[600], deg[600], small[600], other[600], json[600];
    gi_err err = {{0}};
    path_in(truth, sizeof truth, dir, "truth.h5");
    path_in(csv, sizeof csv, dir, "samples.csv");
    path_in(deg, sizeof deg, base, "degraded.h5");
    path_in(small, sizeof small, base, "small.h5");
    path_in(other, sizeof other, base, "othergenes.h5");
    path_in(json, sizeof json, base, "score.json");

    gi_score self;
    double t0 = now();
    int rc = gi_score_atlas(truth, truth, csv, 1, &self, &err);
    double dt = now() - t0;
    CHECKF(rc == 0, "score: truth against itself", "%s", err.msg);
    if (rc)
        return;
    printf("# score of 4 genes, 2 mm grid, stride 1: %.3f s\n", dt);
    int ones = self.n == 4;
    for (int g = 0; g < self.n; g++)
        ones &= self.genes[g].r_model > 1 - 1e-9 && self.genes[g].rmse_model < 1e-6 && self.genes[g].n_voxels > 150000;
    CHECK(ones, "score: truth against itself has r = 1, rmse = 0 on every in-mask voxel");
    CHECKF(self.mean_r_nearest > 0.3 && self.mean_r_nearest < 1.0, "score: nearest-sample r is in (0.3, 1)",
           "mean r_nearest %.4f", self.mean_r_nearest);

    char *txt = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&txt, &len);
    gi_score_print(mf, &self);
    fclose(mf);
    CHECK(txt && strstr(txt, "G01") && strstr(txt, "G04") && strstr(txt, "mean"), "score table names the genes and the mean");
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n"))
        printf("# %s\n", line);
    free(txt);

    rc = gi_score_write_json(json, &self, &err);
    CHECKF(rc == 0, "score JSON written", "%s", err.msg);
    if (system("python3 -c 'import json' >/dev/null 2>&1") == 0) {
        char cmd[900];
        snprintf(cmd, sizeof cmd,
                 "python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); "
                 "assert len(s[\"genes\"])==4 and s[\"genes\"][0][\"gene\"]==\"G01\" and s[\"mean_r_model\"]>0.999' '%s'",
                 json);
        CHECK(system(cmd) == 0, "score JSON parses with python's json and holds the scores");
    } else {
        SKIP("score JSON parses with python's json", "python3 not found");
    }

    /* Stride 2 agrees closely with stride 1. */
    gi_score s2;
    rc = gi_score_atlas(truth, truth, csv, 2, &s2, &err);
    CHECKF(rc == 0 && s2.genes[0].n_voxels * 6 < self.genes[0].n_voxels &&
           fabs(s2.mean_r_nearest - self.mean_r_nearest) < 0.05,
           "score stride 2: 1/8 of the voxels, similar nearest r", "%s", rc ? err.msg : "values");
    if (rc == 0)
        gi_score_free(&s2);

    gi_atlas t;
    if (gi_atlas_open(&t, truth, &err) < 0) {
        CHECKF(0, "truth opens for degrading", "%s", err.msg);
        gi_score_free(&self);
        return;
    }
    rc = write_atlas_like(deg, &t, t.nx, t.ny, t.nz, (const char *const *)t.genes, 1, &err);
    CHECKF(rc == 0, "degraded atlas written", "%s", err.msg);
    gi_score d;
    rc = rc ? rc : gi_score_atlas(deg, truth, csv, 2, &d, &err);
    CHECKF(rc == 0, "score: degraded atlas", "%s", err.msg);
    if (rc == 0) {
        CHECKF(d.mean_r_model < 0.9 && d.mean_r_model > 0.2 && d.genes[0].rmse_model > 0.01,
               "score: a degraded map scores lower", "r %.4f", d.mean_r_model);
        gi_score_free(&d);
    }

    /* Failures. */
    gi_score bad;
    err.msg[0] = '\0';
    rc = gi_score_atlas(deg, "/nonexistent/truth.h5", csv, 2, &bad, &err);
    CHECKF(rc < 0 && strstr(err.msg, "/nonexistent/truth.h5"), "score: a missing truth file fails, naming it", "%s", err.msg);
    err.msg[0] = '\0';
    rc = gi_score_atlas(truth, truth, "/nonexistent/s.csv", 2, &bad, &err);
    CHECKF(rc < 0 && strstr(err.msg, "/nonexistent/s.csv"), "score: a missing sample table fails, naming it", "%s", err.msg);
    err.msg[0] = '\0';
    rc = gi_score_atlas(truth, truth, csv, 0, &bad, &err);
    CHECKF(rc < 0 && strstr(err.msg, "stride"), "score: stride 0 is refused", "%s", err.msg);
    rc = write_atlas_like(small, &t, t.nx, t.ny, 10, (const char *const *)t.genes, 0, &err);
    err.msg[0] = '\0';
    rc = rc ? rc : gi_score_atlas(small, truth, csv, 2, &bad, &err);
    CHECKF(rc < 0 && strstr(err.msg, "grid"), "score: atlas and truth on different grids fail", "%s", err.msg);
    const char *const others[4] = {"X1", "X2", "X3", "X4"};
    rc = write_atlas_like(other, &t, t.nx, t.ny, t.nz, others, 0, &err);
    err.msg[0] = '\0';
    rc = rc ? rc : gi_score_atlas(other, truth, csv, 2, &bad, &err);
    CHECKF(rc < 0 && strstr(err.msg, "no gene"), "score: no gene in common fails", "%s", err.msg);
    err.msg[0] = '\0';
    rc = gi_score_write_json("/nonexistent/dir/score.json", &self, &err);
    CHECKF(rc < 0 && strstr(err.msg, "/nonexistent/dir/score.json"), "score: unwritable JSON path fails", "%s", err.msg);
    gi_atlas_close(&t);
    gi_score_free(&self);
}

static void test_failures(void)
{
    gi_phantom_spec s;
    gi_phantom_defaults(&s);
    CHECK(s.seed == 1 && s.n_genes == 12 && s.noise == 0.3 && s.missing == 0.02 && s.grid_step == 1 &&
          s.sample_truth == GI_PHANTOM_TRUTH_TISSUE, "phantom defaults (realistic samples)");
    char file[600], sub[700];
    gi_err err = {{0}};
    path_in(file, sizeof file, base, "a_file");
    FILE *f = fopen(file, "w");
    if (f)
        fclose(f);
    snprintf(sub, sizeof sub, "%s/sub", file);
    s.grid_step = 2;
    s.n_genes = 2;
    int rc = gi_phantom_write(sub, &s, &err);
    CHECKF(rc < 0 && strstr(err.msg, "a_file"), "phantom: an unusable folder fails with a message", "%s", err.msg);
    s.n_genes = 0;
    err.msg[0] = '\0';
    rc = gi_phantom_write(base, &s, &err);
    CHECKF(rc < 0 && strstr(err.msg, "n_genes"), "phantom: 0 genes is refused", "%s", err.msg);
    s.n_genes = 2;
    s.missing = 1.5;
    err.msg[0] = '\0';
    rc = gi_phantom_write(base, &s, &err);
    CHECKF(rc < 0 && strstr(err.msg, "missing"), "phantom: missing > 1 is refused", "%s", err.msg);
    s.missing = 0.02;
    s.sample_truth = 7;
    err.msg[0] = '\0';
    rc = gi_phantom_write(base, &s, &err);
    CHECKF(rc < 0 && strstr(err.msg, "sample_truth"), "phantom: an unknown sample_truth is refused", "%s", err.msg);
}

static void test_nibabel(const char *dir)
{
    if (system("/usr/bin/python3 -c 'import nibabel' >/dev/null 2>&1") != 0) {
        SKIP("nibabel reads the MNI affine of mask.nii.gz", "python3 with nibabel not available");
        return;
    }
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import sys, numpy as np, nibabel as nib; im = nib.load(sys.argv[1]); "
             "A = np.array([[-2,0,0,90],[0,2,0,-126],[0,0,2,-72],[0,0,0,1]], float); "
             "assert im.shape == (91, 109, 91); assert np.allclose(im.affine, A); "
             "assert int(im.header[\"sform_code\"]) == 4' '%s/mask.nii.gz'", dir);
    CHECK(system(cmd) == 0, "nibabel reads the MNI affine of mask.nii.gz");
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    const char *tmp = getenv("TESTTMP");
    snprintf(base, sizeof base, "%s/phantom-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(base)) {
        CHECK(0, "temporary folder");
        MPI_Finalize();
        return check_summary();
    }
    char dir[600];
    path_in(dir, sizeof dir, base, "p1");

    gi_phantom_spec spec;
    gi_phantom_defaults(&spec);
    spec.grid_step = 2;
    spec.n_genes = 4;
    /* The old sample model (coordinates inside their own label, structure_id
     * column): these checks are about it; the realistic default is checked
     * by tests/it_phantom_tissue.sh. */
    spec.sample_truth = GI_PHANTOM_TRUTH_VOXEL;
    gi_err err = {{0}};
    double t0 = now();
    int rc = gi_phantom_write(dir, &spec, &err);
    printf("# phantom, 2 mm grid, 4 genes: %.3f s\n", now() - t0);
    CHECKF(rc == 0, "phantom writes (2 mm grid, 4 genes)", "%s", err.msg);
    if (rc == 0) {
        const char *files[] = {"samples.csv", "mask.nii.gz", "anatomy.nii.gz", "truth.h5", "README.txt"};
        int all = 1;
        for (int i = 0; i < 5; i++) {
            char p[700];
            struct stat st;
            path_in(p, sizeof p, dir, files[i]);
            all &= stat(p, &st) == 0 && st.st_size > 0;
        }
        CHECK(all, "phantom folder holds samples.csv, mask, anatomy, truth.h5, README.txt");
        gi_volume mask = {0};
        gi_samples s = {0};
        test_volumes(dir, &mask);
        test_samples(dir, &s, &mask);
        test_truth(dir, &s, &mask);
        test_determinism(dir, &spec);
        test_score(dir);
        test_nibabel(dir);
        gi_samples_free(&s);
        gi_volume_free(&mask);
    }
    test_failures();

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", base);
    MPI_Finalize();
    return check_summary();
}
