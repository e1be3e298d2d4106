/* phantom.c - the embedded default dataset: synthetic AHBA-like data with known truth.
 *
 * Everything is defined analytically in MNI millimetres and drawn from the
 * counter-based generator (rng.h), so the phantom is a pure function of the
 * spec: the same seed gives the same bytes, and the 1 mm and 2 mm grids sample
 * the same continuous brain, labels and expression fields.
 *
 * Phases (gi_phantom_write):
 *   1. model   - draw the latent fields and gene weights from the seed and
 *                standardise them on 20,000 fixed random in-brain points;
 *   2. samples - 3,702 locations in 6 donors (65% cortex, then deep nuclei,
 *                cerebellum, brainstem, white matter: GROUPS), values with donor
 *                effects, registration jitter, noise and missing values
 *                -> samples.csv. With spec->sample_truth tissue (default) the
 *                location is the sample's tissue (white matter cut to 1%,
 *                GROUP_P_TISSUE: AHBA dissected grey matter), the written
 *                coordinate is tissue + registration error (donor shift +
 *                heavy-tailed per-sample error, REG_*), so ~40% land off their
 *                label and ~20% outside the brain, as real coordinates do;
 *                the value is the truth at the tissue; columns class and
 *                hemisphere as prepare writes them; anatomy.csv (label table)
 *                and sample_tissue.csv (the hidden tissue) besides. Left out:
 *                real structure proportions and sampling sites, white matter
 *                beyond 1%, any anisotropy of registration error. With voxel
 *                (the phantom before issue 25, byte for byte) the coordinate
 *                is the location and the value comes from location + a small
 *                error;
 *   3. volumes - labels on the grid -> mask.nii.gz, anatomy.nii.gz;
 *   4. truth   - the noise-free donor-average maps, 8 z-slices at a time
 *                (bounded memory) -> truth.h5 (atlas.h layout, kind "truth");
 *   5. README.txt.
 *
 * Geometry (MNI mm). The brain is a union of three solids described by
 * approximate signed distances (negative inside; first-order distance of a
 * quadric, exact on the surface and good within a few mm of it, which is where
 * the cortex shell needs it):
 *   cerebrum   ellipsoid centre (0, -18, 18), radii (68, 86, 62), cut flat at
 *              z = -28, minus a 2 mm midline fissure everywhere outside a
 *              central core (an elliptic cylinder along x through
 *              (y, z) = (-3, 0), radii (37, 30): corpus callosum + diencephalon);
 *   brainstem  vertical cylinder of radius 12 around (x, y) = (0, -28), z -64..-10;
 *   cerebellum ellipsoid centre (0, -62, -36), radii (48, 28, 20).
 * Labels (uint8): see LABEL_NAMES; hemisphere L is MNI x < 0. Inside the
 * cerebrum deep nuclei win, then the cortex shell (within CORTEX_MM of the
 * cerebral surface, including the fissure walls), then white matter.
 *
 * Expression. Six latent fields F_k(x) (each standardised to mean 0, std 1
 * over the brain): an anterior-posterior polynomial, a dorsal-ventral
 * low-frequency sinusoid (+ medial-lateral term), a regional field
 * (piecewise constant over the labels, left/right of a structure similar), two
 * random Fourier sums with wavelengths 20-40 mm and one with 8-12 mm (fine
 * detail). Gene g mixes the five coarse fields with weights
 * w_gk = amp_k (0.8 s_g P[g mod 3]_k + 0.6 e_gk): genes of one module share a
 * prototype P, so genes are correlated (positively or negatively); the fine
 * field then gets 3-10% of the gene's variance. The raw mix
 * is scaled to f_g = 0.5 + 0.1 z, z standardised over the brain: mean 0.5,
 * spatial std 0.1, like abagen's scaled robust-sigmoid values.
 *
 * Random streams (GI_STREAM_PHANTOM + n); within a stream only uniforms or
 * only normals are drawn, since gi_rng_normal(c) consumes uniforms 2c, 2c+1.
 * Gene-indexed counters never use n_genes, so the first genes of a 12-gene
 * phantom equal a 4-gene phantom with the same seed.
 */
#include "geneinr/phantom.h"

#include "geneinr/atlas.h"
#include "geneinr/nifti.h"
#include "geneinr/rng.h"
#include "geneinr/samples.h"

#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

/* ---- grid ---------------------------------------------------------------- */

/* MNI152 1 mm (LAS): voxel (i, j, k) at step s is at
 * x = 90 - s i, y = -126 + s j, z = -72 + s k (mm). */
#define MNI_NX 182
#define MNI_NY 218
#define MNI_NZ 182
#define MNI_X0 90.0
#define MNI_Y0 (-126.0)
#define MNI_Z0 (-72.0)
#define MNI_CODE 4      /* NIFTI_XFORM_MNI_152 */
#define SLAB 8          /* z-slices of truth computed and written per call */

typedef struct grid {
    int step, nx, ny, nz;
    double affine[16];
} grid;

static void grid_init(grid *g, int step)
{
    g->step = step;
    g->nx = (MNI_NX + step - 1) / step;
    g->ny = (MNI_NY + step - 1) / step;
    g->nz = (MNI_NZ + step - 1) / step;
    double s = step;
    double A[16] = {-s, 0, 0, MNI_X0, 0, s, 0, MNI_Y0, 0, 0, s, MNI_Z0, 0, 0, 0, 1};
    memcpy(g->affine, A, sizeof A);
}

static double centre_x(int step, long i) { return MNI_X0 - (double)step * (double)i; }
static double centre_y(int step, long j) { return MNI_Y0 + (double)step * (double)j; }
static double centre_z(int step, long k) { return MNI_Z0 + (double)step * (double)k; }

/* ---- anatomy ------------------------------------------------------------- */

enum {
    LAB_OUT = 0,
    LAB_CTX_L, LAB_CTX_R, LAB_WM_L, LAB_WM_R,
    LAB_THAL_L, LAB_THAL_R, LAB_CAUD_L, LAB_CAUD_R, LAB_PUT_L, LAB_PUT_R,
    LAB_CBL_L, LAB_CBL_R, LAB_STEM,
    N_LABELS
};

static const char *const LABEL_NAMES[N_LABELS] = {
    "outside", "left cortex", "right cortex", "left white matter", "right white matter",
    "left thalamus", "right thalamus", "left caudate", "right caudate",
    "left putamen", "right putamen", "left cerebellum", "right cerebellum", "brainstem",
};

/* abagen's class and hemisphere of each label (anatomy.csv, the class and
 * hemisphere columns of realistic samples). */
static const char *const LABEL_CLASS[N_LABELS] = {
    "", "cortex", "cortex", "white matter", "white matter",
    "subcortex/brainstem", "subcortex/brainstem", "subcortex/brainstem", "subcortex/brainstem",
    "subcortex/brainstem", "subcortex/brainstem", "cerebellum", "cerebellum", "subcortex/brainstem",
};
static const char *const LABEL_HEMI[N_LABELS] = {"", "L", "R", "L", "R", "L", "R", "L", "R", "L", "R", "L", "R", "B"};

/* Left/right pairs share a structure (index into the regional base levels). */
static const int LABEL_STRUCTURE[N_LABELS] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7};
#define N_STRUCTURES 8

static const double CEREBRUM_C[3] = {0.0, -18.0, 18.0};
static const double CEREBRUM_R[3] = {68.0, 86.0, 62.0};
#define CEREBRUM_FLOOR_Z (-28.0)
static const double CORE_C[2] = {-3.0, 0.0};    /* (y, z) */
static const double CORE_R[2] = {37.0, 30.0};
#define FISSURE_HALF_MM 1.0
static const double CEREBELLUM_C[3] = {0.0, -62.0, -36.0};
static const double CEREBELLUM_R[3] = {48.0, 28.0, 20.0};
#define STEM_X 0.0
#define STEM_Y (-28.0)
#define STEM_RADIUS 12.0
#define STEM_Z_LO (-64.0)
#define STEM_Z_HI (-10.0)
#define CORTEX_MM 4.0

/* Deep nuclei, right-hemisphere centres (mirrored for the left). */
static const struct nucleus {
    int label_left;
    double c[3], r[3];
} NUCLEI[] = {
    {LAB_THAL_L, {11.0, -18.0, 7.0}, {9.0, 16.0, 10.0}},
    {LAB_CAUD_L, {14.0, 12.0, 10.0}, {6.0, 16.0, 10.0}},
    {LAB_PUT_L, {25.0, 3.0, 0.0}, {7.0, 17.0, 10.0}},
};
#define N_NUCLEI ((int)(sizeof NUCLEI / sizeof NUCLEI[0]))

/* Bounding box of the brain (with margin), for rejection sampling. */
static const double BRAIN_LO[3] = {-70.0, -106.0, -66.0};
static const double BRAIN_HI[3] = {70.0, 70.0, 82.0};

static double max2(double a, double b) { return a > b ? a : b; }

/* First-order signed distance to the quadric sum (d_a / r_a)^2 = 1 (n = 2 or 3):
 * (q - 1) / |grad q| with q = sqrt(sum u_a^2), u_a = d_a / r_a. */
static double quadric_sd(const double *d, const double *r, int n)
{
    double q2 = 0.0, g2 = 0.0, rmin = r[0];
    for (int a = 0; a < n; a++) {
        double u = d[a] / r[a];
        q2 += u * u;
        g2 += (u / r[a]) * (u / r[a]);
        if (r[a] < rmin)
            rmin = r[a];
    }
    if (g2 < 1e-24)
        return -rmin;
    double q = sqrt(q2);
    return (q - 1.0) * q / sqrt(g2);
}

static double cerebrum_sd(double x, double y, double z)
{
    double d3[3] = {x - CEREBRUM_C[0], y - CEREBRUM_C[1], z - CEREBRUM_C[2]};
    double sd = max2(quadric_sd(d3, CEREBRUM_R, 3), CEREBRUM_FLOOR_Z - z);
    double d2[2] = {y - CORE_C[0], z - CORE_C[1]};
    double fissure = max2(fabs(x) - FISSURE_HALF_MM, -quadric_sd(d2, CORE_R, 2));
    return max2(sd, -fissure);      /* cerebrum minus fissure */
}

static double stem_sd(double x, double y, double z)
{
    double rho = sqrt((x - STEM_X) * (x - STEM_X) + (y - STEM_Y) * (y - STEM_Y));
    return max2(rho - STEM_RADIUS, max2(STEM_Z_LO - z, z - STEM_Z_HI));
}

static double cerebellum_sd(double x, double y, double z)
{
    double d3[3] = {x - CEREBELLUM_C[0], y - CEREBELLUM_C[1], z - CEREBELLUM_C[2]};
    return quadric_sd(d3, CEREBELLUM_R, 3);
}

/* Anatomy label at a point in MNI mm (0 outside the brain). */
static int label_at(double x, double y, double z)
{
    if (x < BRAIN_LO[0] || x > BRAIN_HI[0] || y < BRAIN_LO[1] || y > BRAIN_HI[1] ||
        z < BRAIN_LO[2] || z > BRAIN_HI[2])
        return LAB_OUT;
    int left = x < 0.0;
    double sd = cerebrum_sd(x, y, z);
    if (sd < 0.0) {
        for (int n = 0; n < N_NUCLEI; n++) {
            const struct nucleus *nu = &NUCLEI[n];
            double cx = left ? -nu->c[0] : nu->c[0];
            double ux = (x - cx) / nu->r[0], uy = (y - nu->c[1]) / nu->r[1],
                   uz = (z - nu->c[2]) / nu->r[2];
            if (ux * ux + uy * uy + uz * uz < 1.0)
                return left ? nu->label_left : nu->label_left + 1;
        }
        if (sd > -CORTEX_MM)
            return left ? LAB_CTX_L : LAB_CTX_R;
        return left ? LAB_WM_L : LAB_WM_R;
    }
    if (stem_sd(x, y, z) < 0.0)
        return LAB_STEM;
    if (cerebellum_sd(x, y, z) < 0.0)
        return left ? LAB_CBL_L : LAB_CBL_R;
    return LAB_OUT;
}

/* Sampling groups: AHBA samples mostly cortex, then deep grey matter,
 * cerebellum and brainstem, and little white matter. Each group has a box
 * (MNI mm) holding all of its voxels, to draw from. */
enum { GRP_CORTEX, GRP_NUCLEI, GRP_CEREBELLUM, GRP_STEM, GRP_WHITE, N_GROUPS };
static const struct group {
    const char *name;
    double p;                   /* probability of a sample */
    double lo[3], hi[3];
} GROUPS[N_GROUPS] = {
    {"cortex", 0.65, {-70.0, -106.0, -66.0}, {70.0, 70.0, 82.0}},
    {"thalamus, caudate, putamen", 0.14, {-33.0, -35.0, -11.0}, {33.0, 29.0, 21.0}},
    {"cerebellum", 0.09, {-49.0, -91.0, -57.0}, {49.0, -33.0, -15.0}},
    {"brainstem", 0.05, {-13.0, -41.0, -65.0}, {13.0, -15.0, -9.0}},
    {"white matter", 0.07, {-70.0, -106.0, -66.0}, {70.0, 70.0, 82.0}},
};

/* Realistic samples (GI_PHANTOM_TRUTH_TISSUE): AHBA dissected grey matter
 * almost only, so white matter keeps 1% of the samples and cortex takes the
 * other 6%. */
static const double GROUP_P_TISSUE[N_GROUPS] = {0.71, 0.14, 0.09, 0.05, 0.01};

static double group_p(int grp, int tissue) { return tissue ? GROUP_P_TISSUE[grp] : GROUPS[grp].p; }

static int label_group(int label)
{
    switch (label) {
    case LAB_CTX_L: case LAB_CTX_R: return GRP_CORTEX;
    case LAB_WM_L: case LAB_WM_R: return GRP_WHITE;
    case LAB_CBL_L: case LAB_CBL_R: return GRP_CEREBELLUM;
    case LAB_STEM: return GRP_STEM;
    default: return GRP_NUCLEI;
    }
}

/* ---- expression model ---------------------------------------------------- */

enum { F_AP, F_DV, F_REGION, F_MED1, F_MED2, F_FINE, N_FIELDS };
#define N_WAVES_MED 12
#define N_WAVES_FINE 16
#define N_MODULES 3
#define N_NORM_POINTS 20000
#define GENE_MEAN 0.5
#define GENE_STD 0.1

/* Relative weight of each field in a gene (fine detail smaller). */
static const double FIELD_AMP[N_FIELDS] = {1.0, 1.0, 1.2, 0.8, 0.8, 0.0};
/* Share of a gene's spatial variance in the fine field (8-12 mm wavelengths:
 * finer than the ~7 mm mean sample spacing can resolve), uniform in: */
#define FINE_SHARE_LO 0.03
#define FINE_SHARE_HI 0.10

enum {
    ST_SHAPE_U = GI_STREAM_PHANTOM + 0,   /* uniforms: frequencies, phases, directions */
    ST_SHAPE_N = GI_STREAM_PHANTOM + 1,   /* normals: polynomial coefficients, regional levels */
    ST_GENE_N = GI_STREAM_PHANTOM + 2,    /* normals: module prototypes, gene weights */
    ST_NORM_U = GI_STREAM_PHANTOM + 3,    /* uniforms: normalisation points */
    ST_LOC_U = GI_STREAM_PHANTOM + 4,     /* uniforms: sample locations */
    ST_DONOR_N = GI_STREAM_PHANTOM + 5,   /* normals: donor offsets, scales, shifts */
    ST_JITTER_N = GI_STREAM_PHANTOM + 6,  /* normals: per-sample registration jitter */
    ST_NOISE_N = GI_STREAM_PHANTOM + 7,   /* normals: measurement noise */
    ST_MISS_U = GI_STREAM_PHANTOM + 8,    /* uniforms: missing values */
    ST_REG_N = GI_STREAM_PHANTOM + 9,     /* normals: registration error of realistic samples */
    ST_REG_TAIL_U = GI_STREAM_PHANTOM + 10 /* uniforms: which realistic samples have a large error */
};

typedef struct wave {
    double k[3], phase;     /* k in rad/mm */
} wave;

typedef struct model {
    double ap[2];                   /* F_AP = yy + ap0 yy^2 + ap1 yy zz */
    double dv_w[2], dv_phase[2], dv_lat;  /* F_DV = sin(w0 zz + p0) + 0.5 sin(w1 yy + p1) + lat xx^2 */
    double level[N_LABELS];         /* F_REGION */
    wave med1[N_WAVES_MED], med2[N_WAVES_MED], fine[N_WAVES_FINE];
    int n_genes;
    double *beta;                   /* [n_genes][N_FIELDS]: f_g = alpha_g + sum_k beta_gk F_k (raw fields) */
    double *alpha;                  /* [n_genes] */
} model;

static double urand(uint64_t seed, uint64_t stream, uint64_t c) { return gi_rng_uniform(seed, stream, c); }
static double nrand(uint64_t seed, uint64_t stream, uint64_t c) { return gi_rng_normal(seed, stream, c); }

static void draw_waves(uint64_t seed, int field, wave *w, int n, double lambda_lo, double lambda_hi)
{
    for (int m = 0; m < n; m++) {
        uint64_t c = 1000 + ((uint64_t)field * 64 + (uint64_t)m) * 4;
        double lambda = lambda_lo + (lambda_hi - lambda_lo) * urand(seed, ST_SHAPE_U, c);
        double cz = 2.0 * urand(seed, ST_SHAPE_U, c + 1) - 1.0;
        double phi = 2.0 * M_PI * urand(seed, ST_SHAPE_U, c + 2);
        double sz = sqrt(1.0 - cz * cz), kk = 2.0 * M_PI / lambda;
        w[m].k[0] = kk * sz * cos(phi);
        w[m].k[1] = kk * sz * sin(phi);
        w[m].k[2] = kk * cz;
        w[m].phase = 2.0 * M_PI * urand(seed, ST_SHAPE_U, c + 3);
    }
}

static double wave_sum(const wave *w, int n, double x, double y, double z)
{
    double s = 0.0;
    for (int m = 0; m < n; m++)
        s += cos(w[m].k[0] * x + w[m].k[1] * y + w[m].k[2] * z + w[m].phase);
    return s * sqrt(2.0 / n);       /* unit variance over many wavelengths */
}

/* The raw (unstandardised) latent fields at a point with a given label. */
static void fields_at(const model *m, double x, double y, double z, int label, double F[N_FIELDS])
{
    double xx = x / CEREBRUM_R[0];
    double yy = (y - CEREBRUM_C[1]) / CEREBRUM_R[1];
    double zz = (z - CEREBRUM_C[2]) / CEREBRUM_R[2];
    F[F_AP] = yy + m->ap[0] * yy * yy + m->ap[1] * yy * zz;
    F[F_DV] = sin(m->dv_w[0] * zz + m->dv_phase[0]) + 0.5 * sin(m->dv_w[1] * yy + m->dv_phase[1]) +
              m->dv_lat * xx * xx;
    F[F_REGION] = m->level[label];
    F[F_MED1] = wave_sum(m->med1, N_WAVES_MED, x, y, z);
    F[F_MED2] = wave_sum(m->med2, N_WAVES_MED, x, y, z);
    F[F_FINE] = wave_sum(m->fine, N_WAVES_FINE, x, y, z);
}

/* f[g] = truth of every gene at a point (label = label_at(x, y, z) != 0). */
static void genes_at(const model *m, double x, double y, double z, int label, double *f)
{
    double F[N_FIELDS];
    fields_at(m, x, y, z, label, F);
    for (int g = 0; g < m->n_genes; g++) {
        const double *b = m->beta + (size_t)g * N_FIELDS;
        double v = m->alpha[g];
        for (int k = 0; k < N_FIELDS; k++)
            v += b[k] * F[k];
        f[g] = v;
    }
}

/* Mean and std over the normalisation points of sum_k w_k (F_k - mu_k). */
static void mix_stats(const double *pts, const double *mu, const double *w, double *mean, double *sd)
{
    double s = 0.0, s2 = 0.0;
    for (int p = 0; p < N_NORM_POINTS; p++) {
        double v = 0.0;
        for (int k = 0; k < N_FIELDS; k++)
            v += w[k] * (pts[(size_t)p * N_FIELDS + k] - mu[k]);
        s += v;
        s2 += v * v;
    }
    *mean = s / N_NORM_POINTS;
    *sd = sqrt(fmax(s2 / N_NORM_POINTS - *mean * *mean, 0.0));
}

static void model_free(model *m)
{
    free(m->beta);
    free(m->alpha);
    m->beta = m->alpha = NULL;
}

static int model_init(model *m, uint64_t seed, int n_genes, gi_err *err)
{
    memset(m, 0, sizeof *m);
    m->n_genes = n_genes;
    m->ap[0] = 0.5 * nrand(seed, ST_SHAPE_N, 0);
    m->ap[1] = 0.5 * nrand(seed, ST_SHAPE_N, 1);
    m->dv_lat = 0.7 * nrand(seed, ST_SHAPE_N, 2);
    for (int a = 0; a < 2; a++) {
        m->dv_w[a] = 1.0 + urand(seed, ST_SHAPE_U, (uint64_t)a * 2);          /* 1-2 rad per radius */
        m->dv_phase[a] = 2.0 * M_PI * urand(seed, ST_SHAPE_U, (uint64_t)a * 2 + 1);
    }
    double base[N_STRUCTURES];
    for (int s = 0; s < N_STRUCTURES; s++)
        base[s] = nrand(seed, ST_SHAPE_N, 100 + (uint64_t)s);
    m->level[LAB_OUT] = 0.0;
    for (int l = 1; l < N_LABELS; l++)
        m->level[l] = base[LABEL_STRUCTURE[l]] + 0.25 * nrand(seed, ST_SHAPE_N, 200 + (uint64_t)l);
    draw_waves(seed, F_MED1, m->med1, N_WAVES_MED, 20.0, 40.0);
    draw_waves(seed, F_MED2, m->med2, N_WAVES_MED, 20.0, 40.0);
    draw_waves(seed, F_FINE, m->fine, N_WAVES_FINE, 8.0, 12.0);

    m->beta = malloc((size_t)n_genes * N_FIELDS * sizeof *m->beta);
    m->alpha = malloc((size_t)n_genes * sizeof *m->alpha);
    double *pts = malloc((size_t)N_NORM_POINTS * N_FIELDS * sizeof *pts);
    if (!m->beta || !m->alpha || !pts) {
        free(pts);
        model_free(m);
        return gi_fail(err, "phantom: out of memory for the expression model (%d genes)", n_genes);
    }

    /* Fixed random in-brain points (grid-independent) to standardise on. */
    uint64_t t = 0;
    for (int p = 0; p < N_NORM_POINTS; t++) {
        double q[3];
        for (int a = 0; a < 3; a++)
            q[a] = BRAIN_LO[a] + (BRAIN_HI[a] - BRAIN_LO[a]) * urand(seed, ST_NORM_U, 3 * t + (uint64_t)a);
        int lab = label_at(q[0], q[1], q[2]);
        if (lab == LAB_OUT)
            continue;
        fields_at(m, q[0], q[1], q[2], lab, pts + (size_t)p * N_FIELDS);
        p++;
    }
    double mu[N_FIELDS], sd[N_FIELDS];
    for (int k = 0; k < N_FIELDS; k++) {
        double s = 0.0, s2 = 0.0;
        for (int p = 0; p < N_NORM_POINTS; p++)
            s += pts[(size_t)p * N_FIELDS + k];
        mu[k] = s / N_NORM_POINTS;
        for (int p = 0; p < N_NORM_POINTS; p++) {
            double d = pts[(size_t)p * N_FIELDS + k] - mu[k];
            s2 += d * d;
        }
        sd[k] = sqrt(s2 / N_NORM_POINTS);
        if (sd[k] < 1e-12)
            sd[k] = 1.0;
    }

    /* Gene weights on standardised fields: the coarse fields from the gene's
     * module, then the fine field sized to a share of the variance; then the
     * gene's own scale. */
    for (int g = 0; g < n_genes; g++) {
        double w[N_FIELDS];
        double sign = nrand(seed, ST_GENE_N, 1000 + (uint64_t)g) < 0.0 ? -1.0 : 1.0;
        int mod = g % N_MODULES;
        for (int k = 0; k < F_FINE; k++) {
            double proto = nrand(seed, ST_GENE_N, (uint64_t)mod * N_FIELDS + (uint64_t)k);
            double own = nrand(seed, ST_GENE_N, 100000 + (uint64_t)g * N_FIELDS + (uint64_t)k);
            w[k] = FIELD_AMP[k] * (0.8 * sign * proto + 0.6 * own) / sd[k];
        }
        w[F_FINE] = 0.0;
        double mean, sdg;
        mix_stats(pts, mu, w, &mean, &sdg);
        double share = FINE_SHARE_LO + (FINE_SHARE_HI - FINE_SHARE_LO) * urand(seed, ST_SHAPE_U, 500000 + (uint64_t)g);
        double fine_sign = nrand(seed, ST_GENE_N, 100000 + (uint64_t)g * N_FIELDS + F_FINE) < 0.0 ? -1.0 : 1.0;
        w[F_FINE] = fine_sign * sdg * sqrt(share / (1.0 - share)) / sd[F_FINE];
        mix_stats(pts, mu, w, &mean, &sdg);
        if (sdg < 1e-12)
            sdg = 1.0;
        double *b = m->beta + (size_t)g * N_FIELDS;
        double alpha = GENE_MEAN - GENE_STD * mean / sdg;
        for (int k = 0; k < N_FIELDS; k++) {
            b[k] = GENE_STD * w[k] / sdg;
            alpha -= b[k] * mu[k];
        }
        m->alpha[g] = alpha;
    }
    free(pts);
    return 0;
}

/* ---- samples ------------------------------------------------------------- */

#define N_DONORS 6
static const char *const DONOR_NAMES[N_DONORS] = {
    "H0351.2001", "H0351.2002", "H0351.1009", "H0351.1012", "H0351.1015", "H0351.1016",
};
static const int DONOR_COUNTS[N_DONORS] = {946, 893, 363, 529, 470, 501};
#define N_BOTH_HEMI_DONORS 2    /* donors 0-1 sample both hemispheres, the rest x < 0 only */
#define DONOR_OFFSET_SD 0.3     /* x gene spatial std */
#define DONOR_SCALE_SD 0.1
#define DONOR_SHIFT_MM 1.5      /* registration error shared by a donor's samples, per axis */
#define SAMPLE_JITTER_MM 1.0    /* registration error per sample, per axis */
/* Registration error of realistic samples (GI_PHANTOM_TRUTH_TISSUE): the
 * donor shift above plus, per sample and axis, N(0, REG_SAMPLE_MM^2), or
 * N(0, REG_TAIL_MM^2) for a REG_TAIL_P share of the samples (a heavy tail:
 * real AHBA coordinates reach 10 mm and more past their structure). Chosen
 * so that about the real fractions miss their structure (~40%) and the
 * brain (~20%); the figures of a phantom are in its README.txt. */
#define REG_SAMPLE_MM 1.5
#define REG_TAIL_P 0.15
#define REG_TAIL_MM 8.0
#define MAX_ATTEMPTS 200000
#define WELL_ID_BASE 10001

/* Is v within 0.001 voxel of a voxel boundary of the grid with centres at
 * origin + n * step (where rounding to the nearest voxel could go either way)? */
static int near_boundary(double v, double origin, double step)
{
    double t = (v - origin) / step;
    double frac = t - floor(t);
    return fabs(frac - 0.5) < 1e-3;
}

/* Is the point inside the mask of the grid of this step, at its nearest voxel
 * centre, and safely away from rounding ties? */
static int inside_on_grid(double x, double y, double z, int step)
{
    if (near_boundary(x, MNI_X0, step) || near_boundary(y, MNI_Y0, step) || near_boundary(z, MNI_Z0, step))
        return 0;
    long i = lround((MNI_X0 - x) / step), j = lround((y - MNI_Y0) / step), k = lround((z - MNI_Z0) / step);
    return label_at(centre_x(step, i), centre_y(step, j), centre_z(step, k)) != LAB_OUT;
}

/* Draw the reported location of sample i (global index) of donor d. The point
 * is inside the brain and in the mask at its nearest voxel of the 1 mm, the
 * 2 mm and the requested grid, so samples agree between the 1 and 2 mm phantoms. */
static int draw_location(uint64_t seed, long i, int d, int step, int tissue, float out[3], int *label, gi_err *err)
{
    uint64_t base = (uint64_t)i << 24;
    double u = urand(seed, ST_LOC_U, base), acc = 0.0;
    int grp = 0;
    for (; grp < N_GROUPS - 1; grp++) {
        acc += group_p(grp, tissue);
        if (u < acc)
            break;
    }
    const struct group *G = &GROUPS[grp];
    for (uint64_t t = 0; t < MAX_ATTEMPTS; t++) {
        float p[3];
        for (int a = 0; a < 3; a++)
            p[a] = (float)(G->lo[a] + (G->hi[a] - G->lo[a]) * urand(seed, ST_LOC_U, base + 1 + 3 * t + (uint64_t)a));
        double x = p[0], y = p[1], z = p[2];
        if (d >= N_BOTH_HEMI_DONORS && !(x < 0.0))
            continue;
        int lab = label_at(x, y, z);
        if (lab == LAB_OUT || label_group(lab) != grp)
            continue;
        if (!inside_on_grid(x, y, z, 1) || !inside_on_grid(x, y, z, 2) || !inside_on_grid(x, y, z, step))
            continue;
        memcpy(out, p, sizeof p);
        *label = lab;
        return 0;
    }
    return gi_fail(err, "phantom: no location found for sample %ld after %d attempts", i, MAX_ATTEMPTS);
}

/* The sample table; strings point into bufs (freed by table_free). */
typedef struct table {
    gi_samples s;
    char *well_buf, *annot_buf, *gene_buf;
    double *tissue;         /* [n][3] where each sample's tissue was (MNI mm) */
    int *tlab;              /* [n] its label */
} table;

static void table_free(table *t)
{
    free(t->s.well_ids);
    free(t->s.donor);
    free(t->s.donor_names);
    free(t->s.mni);
    free(t->s.gene_names);
    free(t->s.values);
    free(t->s.annot_names);
    free(t->s.annot);
    free(t->well_buf);
    free(t->annot_buf);
    free(t->gene_buf);
    free(t->tissue);
    free(t->tlab);
    memset(t, 0, sizeof *t);
}

#define GENE_NAME_LEN 16
#define WELL_LEN 24
#define ANNOT_LEN 8

static int gene_name_width(int n_genes)
{
    int w = 1;
    for (int n = n_genes; n >= 10; n /= 10)
        w++;
    return w < 2 ? 2 : w;
}

static int make_gene_names(table *t, int n_genes, gi_err *err)
{
    t->s.gene_names = malloc((size_t)n_genes * sizeof *t->s.gene_names);
    t->gene_buf = malloc((size_t)n_genes * GENE_NAME_LEN);
    if (!t->s.gene_names || !t->gene_buf)
        return gi_fail(err, "phantom: out of memory for gene names");
    int width = gene_name_width(n_genes);
    for (int g = 0; g < n_genes; g++) {
        /* "G" + g+1 zero-padded to width digits (width <= 4 < GENE_NAME_LEN - 1) */
        char *name = t->gene_buf + (size_t)g * GENE_NAME_LEN;
        name[0] = 'G';
        for (int c = width, v = g + 1; c >= 1; c--, v /= 10)
            name[c] = (char)('0' + v % 10);
        name[width + 1] = '\0';
        t->s.gene_names[g] = name;
    }
    return 0;
}

static int make_samples(table *t, const model *m, const gi_phantom_spec *spec, gi_err *err)
{
    int tissue = spec->sample_truth == GI_PHANTOM_TRUTH_TISSUE;
    uint64_t seed = spec->seed;
    int ng = spec->n_genes;
    long n = 0;
    for (int d = 0; d < N_DONORS; d++)
        n += DONOR_COUNTS[d];
    gi_samples *s = &t->s;
    s->n = (int)n;
    s->n_genes = ng;
    s->n_donors = N_DONORS;
    s->n_annot = 2;
    s->well_ids = malloc((size_t)n * sizeof *s->well_ids);
    s->donor = malloc((size_t)n * sizeof *s->donor);
    s->donor_names = malloc(N_DONORS * sizeof *s->donor_names);
    s->mni = malloc((size_t)n * 3 * sizeof *s->mni);
    s->values = malloc((size_t)n * ng * sizeof *s->values);
    s->annot_names = malloc(2 * sizeof *s->annot_names);
    s->annot = malloc((size_t)n * 2 * sizeof *s->annot);
    t->well_buf = malloc((size_t)n * WELL_LEN);
    t->annot_buf = malloc((size_t)n * 2 * ANNOT_LEN);
    t->tissue = malloc((size_t)n * 3 * sizeof *t->tissue);
    t->tlab = malloc((size_t)n * sizeof *t->tlab);
    double *f = malloc((size_t)ng * sizeof *f);
    if (!s->well_ids || !s->donor || !s->donor_names || !s->mni || !s->values || !s->annot_names ||
        !s->annot || !t->well_buf || !t->annot_buf || !f || !t->tissue || !t->tlab) {
        free(f);
        return gi_fail(err, "phantom: out of memory for %ld samples x %d genes", n, ng);
    }
    for (int d = 0; d < N_DONORS; d++)
        s->donor_names[d] = (char *)DONOR_NAMES[d];     /* never written through */
    s->annot_names[0] = tissue ? "class" : "structure_id";
    s->annot_names[1] = "hemisphere";

    long i = 0;
    for (int d = 0; d < N_DONORS; d++) {
        double shift[3];
        for (int a = 0; a < 3; a++)
            shift[a] = DONOR_SHIFT_MM * nrand(seed, ST_DONOR_N, (uint64_t)d * 4 + (uint64_t)a);
        for (int c = 0; c < DONOR_COUNTS[d]; c++, i++) {
            float *p = s->mni + (size_t)i * 3;
            int lab = LAB_OUT;
            if (draw_location(seed, i, d, spec->grid_step, tissue, p, &lab, err) < 0) {
                free(f);
                return -1;
            }
            double q[3];
            int qlab;
            if (tissue) {
                /* p is the tissue; the table gets p + registration error
                 * (donor shift + a heavy-tailed per-sample error), which may
                 * land in another label or outside the brain. */
                double sd = urand(seed, ST_REG_TAIL_U, (uint64_t)i) < REG_TAIL_P ? REG_TAIL_MM : REG_SAMPLE_MM;
                for (int a = 0; a < 3; a++) {
                    q[a] = p[a];
                    p[a] = (float)(q[a] + shift[a] + sd * nrand(seed, ST_REG_N, (uint64_t)i * 4 + (uint64_t)a));
                }
                qlab = lab;
            } else {
                /* Where the tissue really was: reported position + registration error. */
                for (int a = 0; a < 3; a++)
                    q[a] = p[a] + shift[a] + SAMPLE_JITTER_MM * nrand(seed, ST_JITTER_N, (uint64_t)i * 4 + (uint64_t)a);
                qlab = label_at(q[0], q[1], q[2]);
                if (qlab == LAB_OUT) {
                    for (int a = 0; a < 3; a++)
                        q[a] = p[a];
                    qlab = lab;
                }
            }
            memcpy(t->tissue + 3 * (size_t)i, q, sizeof q);
            t->tlab[i] = tissue ? lab : qlab;
            genes_at(m, q[0], q[1], q[2], qlab, f);
            for (int g = 0; g < ng; g++) {
                uint64_t cg = ((uint64_t)i << 16) | (uint64_t)g;
                float *v = s->values + (size_t)i * ng + g;
                if (urand(seed, ST_MISS_U, cg) < spec->missing) {
                    *v = NAN;
                    continue;
                }
                double off = DONOR_OFFSET_SD * GENE_STD * nrand(seed, ST_DONOR_N, 1000 + ((uint64_t)d << 16) + (uint64_t)g);
                double scale = 1.0 + DONOR_SCALE_SD * nrand(seed, ST_DONOR_N, 2000000 + ((uint64_t)d << 16) + (uint64_t)g);
                double noise = spec->noise * GENE_STD * nrand(seed, ST_NOISE_N, cg);
                *v = (float)(off + scale * f[g] + noise);
            }
            char *well = t->well_buf + (size_t)i * WELL_LEN;
            snprintf(well, WELL_LEN, "%ld", WELL_ID_BASE + i);
            s->well_ids[i] = well;
            s->donor[i] = d;
            char *sid = t->annot_buf + (size_t)i * 2 * ANNOT_LEN, *hemi = sid + ANNOT_LEN;
            snprintf(sid, ANNOT_LEN, "%d", lab);
            snprintf(hemi, ANNOT_LEN, "%s", p[0] < 0.0f ? "L" : "R");
            if (tissue)
                snprintf(hemi, ANNOT_LEN, "%s", LABEL_HEMI[lab]);
            s->annot[(size_t)i * 2] = tissue ? (char *)LABEL_CLASS[lab] : sid;
            s->annot[(size_t)i * 2 + 1] = hemi;
        }
    }
    free(f);
    return 0;
}

/* ---- files --------------------------------------------------------------- */

/* mkdir -p. */
static int make_dirs(const char *dir, gi_err *err)
{
    size_t len = strlen(dir);
    if (len == 0)
        return gi_fail(err, "phantom: empty output folder name");
    char *p = malloc(len + 1);
    if (!p)
        return gi_fail(err, "phantom: out of memory");
    memcpy(p, dir, len + 1);
    for (size_t k = 1; k <= len; k++) {
        if (p[k] != '/' && p[k] != '\0')
            continue;
        char saved = p[k];
        p[k] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            gi_fail(err, "phantom: cannot create folder '%s': %s", p, strerror(e));
            free(p);
            return -1;
        }
        p[k] = saved;
    }
    free(p);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return gi_fail(err, "phantom: '%s' is not a folder", dir);
    return 0;
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Labels of every voxel of the grid, [nz][ny][nx]. */
static unsigned char *make_labels(const grid *gr, long *n_inside)
{
    size_t nvox = (size_t)gr->nx * gr->ny * gr->nz;
    unsigned char *lab = malloc(nvox);
    if (!lab)
        return NULL;
    long count = 0;
    for (int k = 0; k < gr->nz; k++) {
        double z = centre_z(gr->step, k);
        for (int j = 0; j < gr->ny; j++) {
            double y = centre_y(gr->step, j);
            unsigned char *row = lab + ((size_t)k * gr->ny + j) * gr->nx;
            for (int i = 0; i < gr->nx; i++) {
                row[i] = (unsigned char)label_at(centre_x(gr->step, i), y, z);
                count += row[i] != 0;
            }
        }
    }
    *n_inside = count;
    return lab;
}

static int write_label_volumes(const char *dir, const grid *gr, const unsigned char *lab, gi_err *err)
{
    size_t nvox = (size_t)gr->nx * gr->ny * gr->nz;
    float *vol = malloc(nvox * sizeof *vol);
    char *mask_path = join_path(dir, "mask.nii.gz"), *anat_path = join_path(dir, "anatomy.nii.gz");
    int rc = -1;
    if (!vol || !mask_path || !anat_path) {
        gi_fail(err, "phantom: out of memory for a %d x %d x %d volume", gr->nx, gr->ny, gr->nz);
        goto done;
    }
    for (size_t v = 0; v < nvox; v++)
        vol[v] = lab[v] ? 1.0f : 0.0f;
    if (gi_volume_write_new(gr->nx, gr->ny, gr->nz, gr->affine, MNI_CODE, vol, 1, mask_path, err) < 0)
        goto done;
    for (size_t v = 0; v < nvox; v++)
        vol[v] = (float)lab[v];
    if (gi_volume_write_new(gr->nx, gr->ny, gr->nz, gr->affine, MNI_CODE, vol, 1, anat_path, err) < 0)
        goto done;
    rc = 0;
done:
    free(vol);
    free(mask_path);
    free(anat_path);
    return rc;
}

/* Shortest %g form that reads back as the same double. */
static void fmt_double(char *buf, size_t n, double v)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void spec_yaml(const gi_phantom_spec *s, char *buf, size_t n)
{
    char noise[32], missing[32];
    fmt_double(noise, sizeof noise, s->noise);
    fmt_double(missing, sizeof missing, s->missing);
    snprintf(buf, n, "phantom:\n  seed: %llu\n  n_genes: %d\n  noise: %s\n  missing: %s\n  grid_step: %d\n",
             (unsigned long long)s->seed, s->n_genes, noise, missing, s->grid_step);
}

static int write_truth(const char *dir, const grid *gr, const unsigned char *lab, const model *m,
                       char **gene_names, const gi_phantom_spec *spec, gi_err *err)
{
    int ng = m->n_genes;
    size_t plane = (size_t)gr->nx * gr->ny;
    char yaml[512];
    spec_yaml(spec, yaml, sizeof yaml);
    char *path = join_path(dir, "truth.h5");
    float *expr = malloc((size_t)ng * SLAB * plane * sizeof *expr);
    unsigned char *mask = malloc(SLAB * plane);
    double *f = malloc((size_t)ng * sizeof *f);
    int rc = -1;
    if (!path || !expr || !mask || !f) {
        gi_fail(err, "phantom: out of memory for a truth slab (%d genes x %d slices)", ng, SLAB);
        goto done;
    }
    gi_atlas_info info = {
        .n_genes = ng,
        .genes = (const char *const *)gene_names,
        .n_donors = N_DONORS,
        .donors = DONOR_NAMES,
        .nx = gr->nx, .ny = gr->ny, .nz = gr->nz,
        .units = "arbitrary expression units (phantom)",
        .normalisation = "noise-free donor-average truth",
        .config_yaml = yaml,
        .rendered_for = "average",
        .kind = "truth",
        .compress = 1,
    };
    memcpy(info.affine, gr->affine, sizeof info.affine);
    gi_atlas_writer *w = gi_atlas_create(MPI_COMM_SELF, path, &info, err);
    if (!w)
        goto done;
    for (int z0 = 0; z0 < gr->nz; z0 += SLAB) {
        int nzb = gr->nz - z0 < SLAB ? gr->nz - z0 : SLAB;
        size_t slab = (size_t)nzb * plane;
        for (int kk = 0; kk < nzb; kk++) {
            int k = z0 + kk;
            double z = centre_z(gr->step, k);
            for (int j = 0; j < gr->ny; j++) {
                double y = centre_y(gr->step, j);
                size_t row = ((size_t)kk * gr->ny + j) * gr->nx;
                const unsigned char *lrow = lab + ((size_t)k * gr->ny + j) * gr->nx;
                for (int i = 0; i < gr->nx; i++) {
                    size_t v = row + (size_t)i;
                    mask[v] = lrow[i] != 0;
                    if (!lrow[i]) {
                        for (int g = 0; g < ng; g++)
                            expr[(size_t)g * slab + v] = NAN;
                        continue;
                    }
                    genes_at(m, centre_x(gr->step, i), y, z, lrow[i], f);
                    for (int g = 0; g < ng; g++)
                        expr[(size_t)g * slab + v] = (float)f[g];
                }
            }
        }
        if (gi_atlas_write_slices(w, z0, nzb, expr, mask, err) < 0) {
            gi_atlas_abort(w);
            goto done;
        }
    }
    if (gi_atlas_finish(w, err) < 0)
        goto done;
    rc = 0;
done:
    if (rc < 0 && path && err && !strstr(err->msg, path))
        gi_fail_prefix(err, "phantom: writing %s", path);
    free(path);
    free(expr);
    free(mask);
    free(f);
    return rc;
}

/* How realistic samples' written coordinates meet the grid's labels. */
typedef struct offsets {
    long own, other, outside;
    double d_median, d_p90;
} offsets;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Realistic samples only: the label table (anatomy.csv, abagen's
 * id,label,hemisphere,structure), each sample's hidden tissue
 * (sample_tissue.csv) and where the coordinates land (for README.txt). */
static int write_sample_extras(const char *dir, const grid *gr, const unsigned char *lab, const table *t,
                               offsets *o, gi_err *err)
{
    const gi_samples *s = &t->s;
    memset(o, 0, sizeof *o);
    char *p_anat = join_path(dir, "anatomy.csv"), *p_tis = join_path(dir, "sample_tissue.csv");
    double *d = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *d);
    FILE *fa = NULL, *ft = NULL;
    int rc = -1;
    if (!p_anat || !p_tis || !d) {
        gi_fail(err, "phantom: out of memory");
        goto done;
    }
    if (!(fa = fopen(p_anat, "w")) || !(ft = fopen(p_tis, "w"))) {
        gi_fail(err, "phantom: cannot write '%s': %s", fa ? p_tis : p_anat, strerror(errno));
        goto done;
    }
    fprintf(fa, "id,label,hemisphere,structure\n");
    for (int l = 1; l < N_LABELS; l++)
        fprintf(fa, "%d,%s,%s,%s\n", l, LABEL_NAMES[l], LABEL_HEMI[l], LABEL_CLASS[l]);
    fprintf(ft, "well_id,tissue_x,tissue_y,tissue_z,tissue_label,tissue_name,class,hemisphere,distance_mm\n");
    for (int i = 0; i < s->n; i++) {
        const double *q = t->tissue + 3 * (size_t)i;
        const float *c = s->mni + 3 * (size_t)i;
        int tl = t->tlab[i];
        d[i] = sqrt((q[0] - c[0]) * (q[0] - c[0]) + (q[1] - c[1]) * (q[1] - c[1]) + (q[2] - c[2]) * (q[2] - c[2]));
        fprintf(ft, "%s,%.4f,%.4f,%.4f,%d,%s,%s,%s,%.4f\n", s->well_ids[i], q[0], q[1], q[2], tl, LABEL_NAMES[tl],
                LABEL_CLASS[tl], LABEL_HEMI[tl], d[i]);
        long ii = lround((MNI_X0 - c[0]) / gr->step), jj = lround((c[1] - MNI_Y0) / gr->step),
             kk = lround((c[2] - MNI_Z0) / gr->step);
        int l = ii >= 0 && jj >= 0 && kk >= 0 && ii < gr->nx && jj < gr->ny && kk < gr->nz
                    ? lab[((size_t)kk * gr->ny + (size_t)jj) * gr->nx + (size_t)ii] : LAB_OUT;
        if (l == LAB_OUT)
            o->outside++;
        else if (l == tl)
            o->own++;
        else
            o->other++;
    }
    qsort(d, (size_t)s->n, sizeof *d, cmp_double);
    o->d_median = s->n ? d[(s->n - 1) / 2] : 0;
    o->d_p90 = s->n ? d[(long)(0.9 * (s->n - 1))] : 0;
    if (ferror(fa) || ferror(ft)) {
        gi_fail(err, "phantom: error writing '%s' or '%s'", p_anat, p_tis);
        goto done;
    }
    rc = 0;
done:
    if (fa && fclose(fa) != 0 && rc == 0)
        rc = gi_fail(err, "phantom: error writing '%s'", p_anat);
    if (ft && fclose(ft) != 0 && rc == 0)
        rc = gi_fail(err, "phantom: error writing '%s'", p_tis);
    free(p_anat);
    free(p_tis);
    free(d);
    return rc;
}

static int write_readme(const char *dir, const grid *gr, long n_inside, const gi_phantom_spec *spec,
                        const table *t, const offsets *o, gi_err *err)
{
    int tissue = spec->sample_truth == GI_PHANTOM_TRUTH_TISSUE;
    char *path = join_path(dir, "README.txt");
    if (!path)
        return gi_fail(err, "phantom: out of memory");
    FILE *f = fopen(path, "w");
    if (!f) {
        int e = errno;
        gi_fail(err, "phantom: cannot write '%s': %s", path, strerror(e));
        free(path);
        return -1;
    }
    long counts[N_LABELS] = {0};
    long n_missing = 0;
    for (int i = 0; i < t->s.n; i++) {
        counts[tissue ? t->tlab[i] : atoi(t->s.annot[(size_t)i * 2])]++;
        for (int g = 0; g < t->s.n_genes; g++)
            n_missing += isnan(t->s.values[(size_t)i * t->s.n_genes + g]);
    }
    fprintf(f,
            "geneinr phantom - synthetic AHBA-like data with a known truth\n"
            "==============================================================\n\n"
            "Made by `geneinr` from a seed alone (no external data): the same settings always give\n"
            "the same files. It exists so every part of the pipeline can be run and its accuracy\n"
            "measured against the truth (`geneinr score`).\n\n"
            "Settings: seed %llu, %d genes, noise %g, missing %g, grid step %d mm.\n\n",
            (unsigned long long)spec->seed, spec->n_genes, spec->noise, spec->missing, spec->grid_step);
    fprintf(f,
            "Files\n-----\n"
            "samples.csv     %d samples x %d genes (G%0*d..): columns well_id, donor, mni_x, mni_y,\n"
            "%s"
            "                Empty field = not measured (%ld of %ld values).\n"
            "mask.nii.gz     uint8 brain mask, %d x %d x %d voxels of %d mm, %ld inside.\n"
            "anatomy.nii.gz  uint8 labels on the same grid (table below).\n"
            "truth.h5        the true maps f_g in the atlas layout (kind \"truth\"): float32\n"
            "                /expression [gene][z][y][x], NaN outside the mask, plus /mask, /affine,\n"
            "                /genes, /donors. It is the noise-free donor average (offset 0, scale 1).\n%s\n",
            t->s.n, t->s.n_genes, gene_name_width(spec->n_genes), 1,
            tissue ? "                mni_z (MNI mm, where registration put the sample), class (cortex,\n"
                     "                subcortex/brainstem, cerebellum, white matter: the tissue's, as\n"
                     "                `geneinr prepare` writes it), hemisphere (the tissue's: L, R or B),\n"
                     "                then one column per gene.\n"
                   : "                mni_z (MNI mm), structure_id (anatomy label at the reported position),\n"
                     "                hemisphere (L = MNI x < 0, R otherwise), then one column per gene.\n",
            n_missing,
            (long)t->s.n * t->s.n_genes, gr->nx, gr->ny, gr->nz, gr->step, n_inside,
            tissue ? "anatomy.csv     the label table (abagen's id,label,hemisphere,structure).\n"
                     "sample_tissue.csv  each sample's hidden tissue: location, label, class, hemisphere,\n"
                     "                distance to its coordinate (no command reads it; for analysis).\n" : "");
    fprintf(f,
            "Grid\n----\n"
            "MNI152 (LAS), sform = qform code 4: voxel (i, j, k) is at\n"
            "x = 90 - %d i, y = -126 + %d j, z = -72 + %d k mm (the usual 182 x 218 x 182 1 mm grid\n"
            "at step 1). Voxel (i, j, k) is stored at [k][j][i] (x fastest).\n\n",
            gr->step, gr->step, gr->step);
    fprintf(f,
            "Brain shape (MNI mm, the same continuous shape on every grid)\n"
            "-------------------------------------------------------------\n"
            "cerebrum    ellipsoid centre (0, -18, 18), radii (68, 86, 62), flat below z = -28, minus a\n"
            "            2 mm midline fissure outside a central core (elliptic cylinder along x through\n"
            "            (y, z) = (-3, 0), radii (37, 30));\n"
            "brainstem   cylinder of radius 12 mm around (x, y) = (0, -28), z from -64 to -10;\n"
            "cerebellum  ellipsoid centre (0, -62, -36), radii (48, 28, 20).\n"
            "Inside the cerebrum: deep nuclei (ellipsoids, right-hemisphere centres given, mirrored\n"
            "for the left): thalamus (11, -18, 7) radii (9, 16, 10); caudate (14, 12, 10) radii\n"
            "(6, 16, 10); putamen (25, 3, 0) radii (7, 17, 10). Then cortex = within %g mm of the\n"
            "cerebral surface (including the fissure walls), the rest white matter.\n\n"
            "label  name                 samples\n",
            CORTEX_MM);
    for (int l = 0; l < N_LABELS; l++)
        fprintf(f, "%5d  %-20s %7ld\n", l, LABEL_NAMES[l], counts[l]);
    fprintf(f,
            "\nTrue maps\n---------\n"
            "Each gene is f_g(x) = 0.5 + 0.1 z_g(x), where z_g is a weighted sum of six latent fields,\n"
            "standardised (mean 0, std 1) over the brain on 20,000 fixed random in-brain points:\n"
            "  1. anterior-posterior gradient: a quadratic polynomial in y (and y z);\n"
            "  2. dorsal-ventral gradient: low-frequency sinusoids in z and y, plus a medial-lateral x^2 term;\n"
            "  3. regional: one level per anatomy label (left and right of a structure similar);\n"
            "  4-5. medium-scale detail: sums of 12 random plane waves, wavelengths 20-40 mm;\n"
            "  6. fine detail: 16 random plane waves, wavelengths 8-12 mm (finer than the samples\n"
            "     resolve), given %.0f-%.0f%% of each gene's variance.\n"
            "Weights of fields 1-5 come in %d modules (gene g follows module g mod %d, with a random\n"
            "sign and its own perturbation), so genes are correlated, positively or negatively.\n"
            "Every gene has mean 0.5 and spatial std 0.1 over the brain, like abagen's scaled robust-sigmoid\n"
            "values (it is not clipped to [0, 1]).\n\n",
            100.0 * FINE_SHARE_LO, 100.0 * FINE_SHARE_HI, N_MODULES, N_MODULES);
    fprintf(f, "Samples\n-------\ndonor        samples  hemispheres\n");
    for (int d = 0; d < N_DONORS; d++)
        fprintf(f, "%-12s %7d  %s\n", DONOR_NAMES[d], DONOR_COUNTS[d],
                d < N_BOTH_HEMI_DONORS ? "both" : "left only (x < 0)");
    fprintf(f,
            "Each sample first picks a group of labels, then a uniform location inside it:\n");
    for (int g = 0; g < N_GROUPS; g++)
        fprintf(f, "  %-28s %3.0f%%\n", GROUPS[g].name, 100.0 * group_p(g, tissue));
    if (tissue) {
        double n = t->s.n > 0 ? t->s.n : 1;
        fprintf(f,
                "That location is the sample's tissue (grey matter but for 1%% white matter, as AHBA\n"
                "dissected grey matter almost only; in the mask at its nearest voxel of the 1 mm and 2 mm\n"
                "grids). Its written coordinate is where registration to the template put it: the tissue\n"
                "plus a registration error, a per-donor shift N(0, %.1f^2) mm per axis plus, per sample,\n"
                "N(0, %.1f^2) mm per axis (N(0, %.1f^2) for %.0f%% of the samples: a heavy tail). So, as with\n"
                "real AHBA coordinates, a sample may land in another label or outside the brain:\n"
                "  in their own tissue's label   %5ld (%.1f%%)\n"
                "  in another label              %5ld (%.1f%%)\n"
                "  outside the mask              %5ld (%.1f%%)\n"
                "  distance coordinate -> tissue: median %.2f mm, 90th percentile %.2f mm\n"
                "(on this grid). The value is the truth at the tissue, with its label:\n"
                "  value = a_dg + b_dg f_g(x_tissue) + e,\n"
                "  a_dg ~ N(0, (%.1f * 0.1)^2) donor offset, b_dg ~ 1 + N(0, %.1f^2) donor scale,\n"
                "  e ~ N(0, (noise * 0.1)^2) measurement noise (noise = %g),\n"
                "and each value is left unmeasured with probability %g.\n"
                "Left out: the real donors' sample locations and proportions of structures (the groups\n"
                "above are rough), white-matter samples beyond 1%%, structures other than these labels,\n"
                "and any link between registration error and anatomy (the error is isotropic).\n"
                "`geneinr phantom --sample-truth voxel` writes the phantom before issue 25 (coordinates\n"
                "inside their own label, values from a nearby displaced point).\n",
                DONOR_SHIFT_MM, REG_SAMPLE_MM, REG_TAIL_MM, 100.0 * REG_TAIL_P, o->own, 100 * o->own / n, o->other,
                100 * o->other / n, o->outside, 100 * o->outside / n, o->d_median, o->d_p90, DONOR_OFFSET_SD,
                DONOR_SCALE_SD, spec->noise, spec->missing);
    } else
    fprintf(f,
            "Every location is in the mask at its nearest voxel of the 1 mm and 2 mm grids (so both\n"
            "phantoms share their samples).\n"
            "A value is measured where the tissue really was: the reported position plus a\n"
            "registration error (a per-donor shift, N(0, %.1f^2) mm per axis, plus N(0, %.1f^2) mm per\n"
            "sample; the reported position is used if that falls outside the brain). Then\n"
            "  value = a_dg + b_dg f_g(x_true) + e,\n"
            "  a_dg ~ N(0, (%.1f * 0.1)^2) donor offset, b_dg ~ 1 + N(0, %.1f^2) donor scale,\n"
            "  e ~ N(0, (noise * 0.1)^2) measurement noise (noise = %g),\n"
            "and each value is left unmeasured with probability %g.\n",
            DONOR_SHIFT_MM, SAMPLE_JITTER_MM, DONOR_OFFSET_SD, DONOR_SCALE_SD,
            spec->noise, spec->missing);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        gi_fail(err, "phantom: error writing '%s'", path);
        free(path);
        return -1;
    }
    free(path);
    return 0;
}

/* ---- entry points -------------------------------------------------------- */

void gi_phantom_defaults(gi_phantom_spec *s)
{
    s->seed = 1;
    s->n_genes = 12;
    s->noise = 0.3;
    s->missing = 0.02;
    s->grid_step = 1;
    s->sample_truth = GI_PHANTOM_TRUTH_TISSUE;
}

static int check_spec(const gi_phantom_spec *s, gi_err *err)
{
    if (s->n_genes < 1 || s->n_genes > 9999)
        return gi_fail(err, "phantom: n_genes must be between 1 and 9999 (got %d)", s->n_genes);
    if (!isfinite(s->noise) || s->noise < 0.0)
        return gi_fail(err, "phantom: noise must be a finite number >= 0 (got %g)", s->noise);
    if (!isfinite(s->missing) || s->missing < 0.0 || s->missing >= 1.0)
        return gi_fail(err, "phantom: missing must be in [0, 1) (got %g)", s->missing);
    if (s->grid_step < 1 || s->grid_step > 8)
        return gi_fail(err, "phantom: grid_step must be between 1 and 8 mm (got %d)", s->grid_step);
    if (s->sample_truth != GI_PHANTOM_TRUTH_TISSUE && s->sample_truth != GI_PHANTOM_TRUTH_VOXEL)
        return gi_fail(err, "phantom: sample_truth must be tissue or voxel (got %d)", s->sample_truth);
    return 0;
}

int gi_phantom_write(const char *dir, const gi_phantom_spec *spec, gi_err *err)
{
    if (check_spec(spec, err) < 0)
        return -1;
    int mpi_ok = 0;
    MPI_Initialized(&mpi_ok);
    if (!mpi_ok)
        return gi_fail(err, "phantom: MPI must be initialised before writing truth.h5");
    if (make_dirs(dir, err) < 0)
        return -1;

    grid gr;
    grid_init(&gr, spec->grid_step);
    model m;
    table t;
    memset(&t, 0, sizeof t);
    unsigned char *lab = NULL;
    char *csv_path = NULL;
    int rc = -1;
    if (model_init(&m, spec->seed, spec->n_genes, err) < 0)
        return -1;

    if (make_gene_names(&t, spec->n_genes, err) < 0 || make_samples(&t, &m, spec, err) < 0)
        goto done;
    csv_path = join_path(dir, "samples.csv");
    if (!csv_path) {
        gi_fail(err, "phantom: out of memory");
        goto done;
    }
    if (gi_samples_write_csv(&t.s, csv_path, err) < 0)
        goto done;

    long n_inside = 0;
    lab = make_labels(&gr, &n_inside);
    if (!lab) {
        gi_fail(err, "phantom: out of memory for a %d x %d x %d label volume", gr.nx, gr.ny, gr.nz);
        goto done;
    }
    if (write_label_volumes(dir, &gr, lab, err) < 0)
        goto done;
    if (write_truth(dir, &gr, lab, &m, t.s.gene_names, spec, err) < 0)
        goto done;
    offsets off;
    memset(&off, 0, sizeof off);
    if (spec->sample_truth == GI_PHANTOM_TRUTH_TISSUE && write_sample_extras(dir, &gr, lab, &t, &off, err) < 0)
        goto done;
    if (write_readme(dir, &gr, n_inside, spec, &t, &off, err) < 0)
        goto done;
    rc = 0;
done:
    free(lab);
    free(csv_path);
    table_free(&t);
    model_free(&m);
    return rc;
}

/* ---- truth at given points (for the AHBA-format writer) -------------------- */

int gi_phantom_truth_at(const gi_phantom_spec *spec, long n, const double *xyz, double *values,
                        int *labels, gi_err *err)
{
    if (check_spec(spec, err) < 0)
        return -1;
    model m;
    if (model_init(&m, spec->seed, spec->n_genes, err) < 0)
        return -1;
    for (long i = 0; i < n; i++) {
        const double *p = xyz + 3 * i;
        int lab = label_at(p[0], p[1], p[2]);
        if (lab == LAB_OUT)   /* real coordinates outside the phantom's brain: nearest cortex side */
            lab = p[0] < 0 ? LAB_CTX_L : LAB_CTX_R;
        genes_at(&m, p[0], p[1], p[2], lab, values + (size_t)i * spec->n_genes);
        if (labels)
            labels[i] = lab;
    }
    model_free(&m);
    return 0;
}

const char *gi_phantom_label_name(int label)
{
    return label >= 0 && label < N_LABELS ? LABEL_NAMES[label] : "";
}
