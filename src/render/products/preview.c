/* preview.c - orthogonal-slice PNG previews of atlas genes (see preview.h).
 *
 * Design. Each panel is a regular pixel grid in MNI millimetres, not in voxel
 * indices: pixel (p, q) of a panel is one world point, looked up in the
 * volume through the inverse affine (nearest voxel). The picture therefore
 * does not depend on the grid's axis order or handedness, and the geometry
 * recorded in the PNG's "geneinr:preview" chunk is all a reader needs to
 * map pixels back to MNI mm. Pixels are at PX_PER_MM; one mm = 2 pixels keeps
 * a 1 mm MNI brain about 440 pixels tall.
 *
 * Colours: viridis (perceptually uniform, readable in grey and by the
 * colour-blind) over the 1st..99th percentile of the gene's in-mask values,
 * so that a few extreme voxels do not wash out the map; the bar says so.
 * Outside the mask is light grey, the mask outline black (drawn on outside
 * pixels only, so no map pixel is covered); sample dots are red, which
 * viridis never produces.
 */
#include "geneinr/preview.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/atlas.h"
#include "geneinr/enum_names.h"
#include "geneinr/files.h"
#include "geneinr/nifti.h"
#include "geneinr/raster.h"
#include "geneinr/samples.h"
#include "geneinr/version.h"

#define PX_PER_MM 2.0
#define MARGIN 16
#define STRIP 18             /* around each panel, for the direction letters */
#define GAP 10               /* between panels */
#define TITLE_H 54
#define CAPTION_H 24
#define BAR_W 18
#define BAR_GAP 26
#define LABELS_W 84
#define SAMPLE_MM 2.0        /* samples within this distance of a slice are drawn */
#define DISTANCE_UNITS "mm to the nearest sample"

static const gi_rgb WHITE = {255, 255, 255}, BLACK = {0, 0, 0}, OUTSIDE = {232, 232, 232},
                    INK = {30, 30, 30}, DOT = {230, 20, 20}, DOT_RIM = {255, 255, 255};

/* viridis as a degree-6 polynomial fit per channel of matplotlib's table:
 * within 4/255 of it (checked at t = 0, .25, .5, .75, 1), and monotonic in
 * lightness like the original, which is what the map's reading relies on. */
void gi_viridis(double t, unsigned char rgb[3])
{
    static const double C[7][3] = {
        {0.2777273272234177, 0.005407344544966578, 0.3340998053353061},
        {0.1050930431085774, 1.404613529898575, 1.384590162594685},
        {-0.3308618287255563, 0.214847559468213, 0.09509516302823659},
        {-4.634230498983486, -5.799100973351585, -19.33244095627987},
        {6.228269936347081, 14.17993336680509, 56.69055260068105},
        {4.776384997670288, -13.74514537774601, -65.35303263337234},
        {-5.435455855934631, 4.645852612178535, 26.3124352495832},
    };
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    for (int ch = 0; ch < 3; ch++) {
        double v = C[6][ch];
        for (int k = 5; k >= 0; k--)
            v = v * t + C[k][ch];
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        rgb[ch] = (unsigned char)lrint(v * 255);
    }
}

/* magma (the same kind of fit, to matplotlib's magma; lightness monotonic,
 * checked at 256 levels): the uncertainty and distance maps, so that they do
 * not read as expression beside it. */
void gi_magma(double t, unsigned char rgb[3])
{
    static const double C[7][3] = {
        {-0.002136485053939582, -0.000749655052795221, -0.005386127855323933},
        {0.2516605407371642, 0.6775232436837668, 2.494026599312351},
        {8.353717279216625, -3.577719514958484, 0.3144679030132573},
        {-27.66873308576866, 14.26473078096533, -13.64921318813922},
        {52.17613981234068, -27.94360607168351, 12.94416944238394},
        {-50.76852536473588, 29.04658282127291, 4.23415299384598},
        {18.65570506591883, -11.48977351997711, -5.601961508734096},
    };
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    for (int ch = 0; ch < 3; ch++) {
        double v = C[6][ch];
        for (int k = 5; k >= 0; k--)
            v = v * t + C[k][ch];
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        rgb[ch] = (unsigned char)lrint(v * 255);
    }
}

/* How one picture shows its values: the ramp, its range and the bar's captions. */
typedef struct style {
    void (*ramp)(double t, unsigned char rgb[3]);
    double lo, hi;
    const char *units;       /* first caption line under the bar */
    const char *range;       /* second: how lo and hi were chosen */
    const char *map;         /* "expression", "sd" or "distance" (the PNG's JSON) */
} style;

/* One view: which MNI axes run along the panel and which is the plane normal. */
typedef struct view {
    const char *name;
    int u, v, w;             /* MNI axes (0 x, 1 y, 2 z): right, up, normal */
    const char *lo_u, *hi_u; /* letters at the low and high u ends */
    const char *lo_v, *hi_v;
} view;

static const view VIEWS[3] = {
    {"axial", 0, 1, 2, "L", "R", "P", "A"},
    {"coronal", 0, 2, 1, "L", "R", "I", "S"},
    {"sagittal", 1, 2, 0, "P", "A", "I", "S"},
};

typedef struct panel {
    int x, y, w, h;          /* on the canvas */
    double plane;            /* mm along the view's w axis */
    double u0, du, v0, dv;   /* pixel (p, q) -> u = u0 + p du, v = v0 + q dv */
} panel;

/* Everything shared by the genes of one call. */
typedef struct scene {
    const gi_atlas *a;
    double inv[16];
    double lo[3], hi[3];     /* world bounding box of the grid, mm */
    double at[3];
    int radiological;
    panel pan[3];
    int bar_x, bar_y, bar_h;
    int W, H;
    gi_samples s;
    int have_samples;
    const char *units;
} scene;

/* Is there a distance map to draw? With the SD only: every atlas of this
 * geneinr has /distance, but an atlas rendered without render.uncertainty
 * keeps the previews it always had (preview.h). */
static int distance_map(const gi_atlas *a)
{
    return a->has_uncertainty && a->has_distance;
}

/* Nearest voxel of a world point, or -1 outside the grid. */
static long voxel_at(const scene *sc, const double mm[3])
{
    double ijk[3];
    gi_affine_apply(sc->inv, mm[0], mm[1], mm[2], ijk);
    long i = lrint(ijk[0]), j = lrint(ijk[1]), k = lrint(ijk[2]);
    const gi_atlas *a = sc->a;
    if (i < 0 || j < 0 || k < 0 || i >= a->nx || j >= a->ny || k >= a->nz)
        return -1;
    return (k * a->ny + j) * a->nx + i;
}

static void grid_box(const gi_atlas *a, double lo[3], double hi[3])
{
    for (int d = 0; d < 3; d++)
        lo[d] = INFINITY, hi[d] = -INFINITY;
    for (int c = 0; c < 8; c++) {
        double mm[3];
        gi_affine_apply(a->affine, (c & 1) ? a->nx - 0.5 : -0.5, (c & 2) ? a->ny - 0.5 : -0.5,
                        (c & 4) ? a->nz - 0.5 : -0.5, mm);
        for (int d = 0; d < 3; d++) {
            lo[d] = fmin(lo[d], mm[d]);
            hi[d] = fmax(hi[d], mm[d]);
        }
    }
}

/* The default crossing point: the centroid of the in-mask voxels, except that
 * x is the centroid of the left hemisphere (x < 0 mm) when the mask has one.
 * The midline plane itself shows little tissue in a mask with a fissure, and
 * the left hemisphere is the one all six AHBA donors were sampled in. */
static int mask_centre(const gi_atlas *a, double at[3])
{
    double sum[3] = {0, 0, 0}, left_x = 0;
    long n = 0, n_left = 0;
    for (int k = 0; k < a->nz; k++)
        for (int j = 0; j < a->ny; j++)
            for (int i = 0; i < a->nx; i++)
                if (a->mask[((size_t)k * a->ny + j) * a->nx + i]) {
                    double mm[3];
                    gi_affine_apply(a->affine, i, j, k, mm);
                    for (int d = 0; d < 3; d++)
                        sum[d] += mm[d];
                    n++;
                    if (mm[0] < 0) {
                        left_x += mm[0];
                        n_left++;
                    }
                }
    if (n == 0)
        return -1;
    for (int d = 0; d < 3; d++)
        at[d] = sum[d] / n;
    if (n_left > n / 10 && n_left < n)
        at[0] = left_x / n_left;
    return 0;
}

static void layout(scene *sc)
{
    int x = MARGIN, y = MARGIN + TITLE_H + STRIP, tallest = 0;
    for (int p = 0; p < 3; p++) {
        const view *vw = &VIEWS[p];
        panel *pn = &sc->pan[p];
        double eu = sc->hi[vw->u] - sc->lo[vw->u], ev = sc->hi[vw->v] - sc->lo[vw->v];
        pn->w = (int)ceil(eu * PX_PER_MM);
        pn->h = (int)ceil(ev * PX_PER_MM);
        pn->x = x + STRIP;
        pn->y = y;
        pn->plane = sc->at[vw->w];
        /* Left-right mirrored in radiological convention (views that show x). */
        int mirror = sc->radiological && vw->u == 0;
        pn->du = (mirror ? -1 : 1) / PX_PER_MM;
        pn->u0 = (mirror ? sc->hi[vw->u] : sc->lo[vw->u]) + 0.5 * pn->du;
        pn->dv = -1 / PX_PER_MM; /* up = increasing coordinate */
        pn->v0 = sc->hi[vw->v] + 0.5 * pn->dv;
        x = pn->x + pn->w + STRIP + GAP;
        if (pn->h > tallest)
            tallest = pn->h;
    }
    sc->bar_x = x - GAP + BAR_GAP;
    sc->bar_y = y;
    sc->bar_h = tallest;
    sc->W = sc->bar_x + BAR_W + 8 + LABELS_W + MARGIN;
    /* The captions under the bar start at bar_x - 8: wide enough for the
     * longest one this scene draws (the SD map's adds "SD, "), 8 pixels to
     * spare; the expression's alone fit as before. */
    int caption = (int)strlen(sc->units) + (sc->a->has_uncertainty ? 4 : 0);
    if (distance_map(sc->a) && caption < (int)strlen(DISTANCE_UNITS))
        caption = (int)strlen(DISTANCE_UNITS);
    int need = sc->bar_x - 8 + (6 * caption - 1) + 8;
    if (sc->W < need)
        sc->W = need;
    int labels_bottom = y + tallest + 40;  /* two caption lines under the bar */
    int panels_bottom = y + tallest + STRIP + CAPTION_H;
    sc->H = (labels_bottom > panels_bottom ? labels_bottom : panels_bottom) + MARGIN;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* 1st and 99th percentile of the in-mask values (from at most ~250k of them);
 * from_zero: lo = 0 instead (an SD or a distance is read as a magnitude). */
static int value_range(const gi_atlas *a, const float *vol, int from_zero, double *lo, double *hi)
{
    size_t n = (size_t)a->nx * a->ny * a->nz, inside = 0;
    for (size_t q = 0; q < n; q++)
        inside += a->mask[q] && isfinite(vol[q]);
    if (inside == 0)
        return -1;
    size_t stride = inside / 250000 + 1, m = 0;
    float *v = malloc(sizeof(float) * (inside / stride + 1));
    if (!v)
        return -2;
    size_t seen = 0;
    for (size_t q = 0; q < n; q++)
        if (a->mask[q] && isfinite(vol[q]) && seen++ % stride == 0)
            v[m++] = vol[q];
    qsort(v, m, sizeof(float), cmp_float);
    *lo = v[(size_t)(0.01 * (m - 1))];
    *hi = v[(size_t)ceil(0.99 * (m - 1))];
    if (from_zero)
        *lo = 0;
    free(v);
    if (!(*hi > *lo)) {
        /* A constant map: centre it in a range that shows it mid-bar. */
        double c = *lo, h = fabs(c) > 0 ? fabs(c) * 1e-3 : 1e-3;
        *lo = c - h;
        *hi = c + h;
    }
    return 0;
}

static gi_rgb colour_of(const style *st, double value)
{
    unsigned char c[3];
    /* Quantised to 256 levels, exactly as the bar's rows. */
    double t = (value - st->lo) / (st->hi - st->lo);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    st->ramp(floor(t * 255 + 0.5) / 255, c);
    return (gi_rgb){c[0], c[1], c[2]};
}

static void text_centred(gi_image *im, int cx, int y, int scale, gi_rgb c, const char *t)
{
    gi_image_text(im, cx - gi_text_width(scale, t) / 2, y, scale, c, t);
}

/* gene_col: the sample table's column of the gene (its samples are drawn),
 * -1 every sample. */
static int draw_panel(const scene *sc, gi_image *im, int p, const float *vol, const style *st, int gene_col)
{
    const view *vw = &VIEWS[p];
    const panel *pn = &sc->pan[p];
    const gi_atlas *a = sc->a;
    unsigned char *in = calloc((size_t)pn->w * pn->h, 1);
    if (!in)
        return -1;
    for (int q = 0; q < pn->h; q++)
        for (int pp = 0; pp < pn->w; pp++) {
            double mm[3];
            mm[vw->u] = pn->u0 + pp * pn->du;
            mm[vw->v] = pn->v0 + q * pn->dv;
            mm[vw->w] = pn->plane;
            long vox = voxel_at(sc, mm);
            gi_rgb c = OUTSIDE;
            if (vox >= 0 && a->mask[vox] && isfinite(vol[vox])) {
                c = colour_of(st, vol[vox]);
                in[(size_t)q * pn->w + pp] = 1;
            }
            gi_image_set(im, pn->x + pp, pn->y + q, c);
        }
    /* Outline on the outside pixels next to the mask. */
    for (int q = 0; q < pn->h; q++)
        for (int pp = 0; pp < pn->w; pp++) {
            if (in[(size_t)q * pn->w + pp])
                continue;
            int edge = (pp > 0 && in[(size_t)q * pn->w + pp - 1]) || (pp + 1 < pn->w && in[(size_t)q * pn->w + pp + 1]) ||
                       (q > 0 && in[(size_t)(q - 1) * pn->w + pp]) || (q + 1 < pn->h && in[(size_t)(q + 1) * pn->w + pp]);
            if (edge)
                gi_image_set(im, pn->x + pp, pn->y + q, BLACK);
        }
    free(in);
    /* Samples that measured this gene near the plane. */
    if (sc->have_samples)
        for (int i = 0; i < sc->s.n; i++) {
            const float *mm = sc->s.mni + 3 * i;
            if (fabs(mm[vw->w] - pn->plane) > SAMPLE_MM)
                continue;
            if (gene_col >= 0 && isnan(sc->s.values[(size_t)i * sc->s.n_genes + gene_col]))
                continue;
            double pp = (mm[vw->u] - pn->u0) / pn->du, q = (mm[vw->v] - pn->v0) / pn->dv;
            if (pp < 0 || q < 0 || pp > pn->w - 1 || q > pn->h - 1)
                continue;
            gi_image_disc(im, pn->x + (int)lrint(pp), pn->y + (int)lrint(q), 2, DOT_RIM);
            gi_image_disc(im, pn->x + (int)lrint(pp), pn->y + (int)lrint(q), 1, DOT);
        }
    /* Direction letters: the u ends depend on the mirror, the v ends do not. */
    int mirror = pn->du < 0;
    const char *left = mirror ? vw->hi_u : vw->lo_u, *right = mirror ? vw->lo_u : vw->hi_u;
    int mid_y = pn->y + pn->h / 2 - 7;
    text_centred(im, pn->x - STRIP / 2, mid_y, 2, INK, left);
    text_centred(im, pn->x + pn->w + STRIP / 2, mid_y, 2, INK, right);
    text_centred(im, pn->x + pn->w / 2, pn->y - STRIP + 2, 2, INK, vw->hi_v);
    text_centred(im, pn->x + pn->w / 2, pn->y + pn->h + 3, 2, INK, vw->lo_v);
    char cap[64];
    snprintf(cap, sizeof cap, "%s  %c = %.1f mm", vw->name, "xyz"[vw->w], pn->plane);
    text_centred(im, pn->x + pn->w / 2, pn->y + pn->h + STRIP + 4, 2, INK, cap);
    return 0;
}

static void draw_bar(const scene *sc, gi_image *im, const style *st)
{
    double lo = st->lo, hi = st->hi;
    for (int r = 0; r < sc->bar_h; r++) {
        /* Row r shows level round(255 * (1 - r / (h - 1))): top = hi, bottom = lo. */
        double t = sc->bar_h > 1 ? 1.0 - (double)r / (sc->bar_h - 1) : 1;
        unsigned char c[3];
        st->ramp(floor(t * 255 + 0.5) / 255, c);
        gi_image_fill(im, sc->bar_x, sc->bar_y + r, BAR_W, 1, (gi_rgb){c[0], c[1], c[2]});
    }
    gi_image_fill(im, sc->bar_x - 1, sc->bar_y - 1, BAR_W + 2, 1, BLACK);
    gi_image_fill(im, sc->bar_x - 1, sc->bar_y + sc->bar_h, BAR_W + 2, 1, BLACK);
    gi_image_fill(im, sc->bar_x - 1, sc->bar_y - 1, 1, sc->bar_h + 2, BLACK);
    gi_image_fill(im, sc->bar_x + BAR_W, sc->bar_y - 1, 1, sc->bar_h + 2, BLACK);
    for (int k = 0; k <= 4; k++) {
        double t = k / 4.0;
        int y = sc->bar_y + (int)lrint((1 - t) * (sc->bar_h - 1));
        gi_image_fill(im, sc->bar_x + BAR_W, y, 5, 1, BLACK);
        char lab[32];
        snprintf(lab, sizeof lab, "%.3g", lo + t * (hi - lo));
        gi_image_text(im, sc->bar_x + BAR_W + 8, y - 7, 2, INK, lab);
    }
    gi_image_text(im, sc->bar_x - 8, sc->bar_y + sc->bar_h + 8, 1, INK, st->units);
    gi_image_text(im, sc->bar_x - 8, sc->bar_y + sc->bar_h + 20, 1, INK, st->range);
}

/* The geometry chunk (see preview.h). */
static void geometry_json(const scene *sc, const char *gene, const style *st, char *buf, size_t n)
{
    size_t used = 0;
#define PUT(...) used += (size_t)snprintf(buf + used, used < n ? n - used : 0, __VA_ARGS__)
    PUT("{\"gene\": \"");
    for (const char *p = gene; *p; p++)
        if (*p == '"' || *p == '\\')
            PUT("\\%c", *p);
        else if ((unsigned char)*p >= 32)
            PUT("%c", *p);
    PUT("\", \"map\": \"%s\", \"lo\": %.9g, \"hi\": %.9g, \"at_mm\": [%.6g, %.6g, %.6g], \"orientation\": \"%s\", ",
        st->map, st->lo, st->hi, sc->at[0],
        sc->at[1], sc->at[2], GI_ORIENTATION_NAMES[sc->radiological ? GI_RADIOLOGICAL : GI_NEUROLOGICAL]);
    PUT("\"colorbar\": {\"x\": %d, \"y\": %d, \"w\": %d, \"h\": %d}, \"panels\": [", sc->bar_x, sc->bar_y, BAR_W,
        sc->bar_h);
    for (int p = 0; p < 3; p++) {
        const panel *pn = &sc->pan[p];
        const view *vw = &VIEWS[p];
        PUT("%s{\"view\": \"%s\", \"x\": %d, \"y\": %d, \"w\": %d, \"h\": %d, \"u_axis\": %d, \"v_axis\": %d, "
            "\"w_axis\": %d, \"plane_mm\": %.9g, \"u0\": %.9g, \"du\": %.9g, \"v0\": %.9g, \"dv\": %.9g}",
            p ? ", " : "", vw->name, pn->x, pn->y, pn->w, pn->h, vw->u, vw->v, vw->w, pn->plane, pn->u0, pn->du,
            pn->v0, pn->dv);
    }
    PUT("]}");
#undef PUT
}

/* One picture of vol: three panels, the bar, the title; written to path. */
static int write_map(scene *sc, const float *vol, const style *st, const char *title_text, const char *subtitle,
                     const char *gene, int gene_col, const char *path, gi_err *err)
{
    gi_image im;
    if (gi_image_new(&im, sc->W, sc->H, WHITE, err) != 0)
        return -1;
    for (int p = 0; p < 3; p++)
        if (draw_panel(sc, &im, p, vol, st, gene_col) != 0) {
            gi_image_free(&im);
            return gi_fail(err, "out of memory drawing %s", path);
        }
    draw_bar(sc, &im, st);
    char title[400];
    gi_image_text(&im, MARGIN, MARGIN, 3, INK, title_text);
    int tx = MARGIN + gi_text_width(3, title_text) + 24;
    snprintf(title, sizeof title, "%sslices through MNI (%.1f, %.1f, %.1f) mm", subtitle, sc->at[0], sc->at[1],
             sc->at[2]);
    gi_image_text(&im, tx, MARGIN + 7, 2, INK, title);
    snprintf(title, sizeof title, "%s: subject's left on the image %s.%s",
             GI_ORIENTATION_NAMES[sc->radiological ? GI_RADIOLOGICAL : GI_NEUROLOGICAL],
             sc->radiological ? "right" : "left",
             !sc->have_samples ? "" : gene_col >= 0 ? "  Red dots: samples within 2 mm of the slice."
                                                    : "  Red dots: all samples within 2 mm of the slice.");
    gi_image_text(&im, MARGIN, MARGIN + 32, 2, INK, title);
    char json[4096], soft[64];
    geometry_json(sc, gene, st, json, sizeof json);
    snprintf(soft, sizeof soft, "geneinr %s", GENEINR_VERSION);
    const char *keys[] = {"Title", "Software", "geneinr:preview"};
    const char *vals[] = {title_text, soft, json};
    int rc = gi_image_write_png(&im, path, keys, vals, 3, err);
    gi_image_free(&im);
    return rc;
}

static int gene_column(const scene *sc, const char *gene)
{
    if (sc->have_samples)
        for (int k = 0; k < sc->s.n_genes; k++)
            if (strcmp(sc->s.gene_names[k], gene) == 0)
                return k;
    return -1;
}

/* DIR/<gene>.png, and DIR/sd/<gene>.png when the atlas has /uncertainty. */
static int write_gene(scene *sc, int g, const char *dir, float *vol, gi_err *err)
{
    const gi_atlas *a = sc->a;
    if (gi_atlas_read_gene(a, g, vol, err) != 0)
        return -1;
    style st = {.ramp = gi_viridis, .units = sc->units, .range = "1st-99th percentile", .map = "expression"};
    int r = value_range(a, vol, 0, &st.lo, &st.hi);
    if (r == -2)
        return gi_fail(err, "out of memory for the value range of gene %s", a->genes[g]);
    if (r == -1)
        st.lo = 0, st.hi = 1; /* nothing inside: an all-grey preview still says so */
    char name[256], path[4200];
    gi_gene_file_name(a->genes[g], name, sizeof name);
    snprintf(path, sizeof path, "%s/%s.png", dir, name);
    int gene_col = gene_column(sc, a->genes[g]);
    if (write_map(sc, vol, &st, a->genes[g], "", a->genes[g], gene_col, path, err) != 0)
        return -1;
    if (!a->has_uncertainty)
        return 0;
    /* The map's predictive SD: its own ramp and range, from 0 (a magnitude). */
    if (gi_atlas_read_sd(a, g, vol, err) != 0)
        return -1;
    char units[300], title[300];
    snprintf(units, sizeof units, "SD, %s", sc->units);
    style sd = {.ramp = gi_magma, .units = units, .range = "0 to 99th percentile", .map = "sd"};
    r = value_range(a, vol, 1, &sd.lo, &sd.hi);
    if (r == -2)
        return gi_fail(err, "out of memory for the value range of the SD of gene %s", a->genes[g]);
    if (r == -1)
        sd.lo = 0, sd.hi = 1;
    snprintf(title, sizeof title, "%s SD", a->genes[g]);
    snprintf(path, sizeof path, "%s/" GI_PREVIEW_SD_DIR "/%s.png", dir, name);
    return write_map(sc, vol, &sd, title, "predictive SD of the map, ", a->genes[g], gene_col, path, err);
}

/* DIR/coverage/distance.png: mm from each voxel to the nearest sample. */
static int write_distance(scene *sc, const char *dir, float *vol, gi_err *err)
{
    if (gi_atlas_read_distance(sc->a, vol, err) != 0)
        return -1;
    style st = {.ramp = gi_magma, .units = DISTANCE_UNITS, .range = "0 to 99th percentile",
                .map = "distance"};
    int r = value_range(sc->a, vol, 1, &st.lo, &st.hi);
    if (r == -2)
        return gi_fail(err, "out of memory for the range of the distance map");
    if (r == -1)
        st.lo = 0, st.hi = 1;
    char path[4200];
    snprintf(path, sizeof path, "%s/" GI_PREVIEW_DISTANCE, dir);
    return write_map(sc, vol, &st, "distance to the nearest sample", "", "", -1, path, err);
}

int gi_preview_add_names(const char *atlas_path, const char *prefix, const char *const *genes, int n_genes, int max,
                         char ***names, int *n, gi_err *err)
{
    gi_atlas a;
    if (gi_atlas_open(&a, atlas_path, err) != 0)
        return -1;
    int count = genes ? n_genes : (a.n_genes < max ? a.n_genes : max);
    int extra = (a.has_uncertainty ? count : 0) + (distance_map(&a) ? 1 : 0), rc = 0;
    if (extra > 0) {
        char **v = realloc(*names, sizeof(char *) * ((size_t)*n + extra + 1));
        if (!v)
            rc = gi_fail(err, "out of memory");
        else
            *names = v;
    }
    char file[256], name[700];
    for (int i = 0; rc == 0 && a.has_uncertainty && i < count; i++) {
        gi_gene_file_name(genes ? genes[i] : a.genes[i], file, sizeof file);
        snprintf(name, sizeof name, "%s" GI_PREVIEW_SD_DIR "/%s.png", prefix, file);
        if (!((*names)[(*n)++] = strdup(name)))
            rc = gi_fail(err, "out of memory");
    }
    if (rc == 0 && distance_map(&a)) {
        snprintf(name, sizeof name, "%s" GI_PREVIEW_DISTANCE, prefix);
        if (!((*names)[(*n)++] = strdup(name)))
            rc = gi_fail(err, "out of memory");
    }
    gi_atlas_close(&a);
    return rc;
}

int gi_preview_atlas(const char *atlas_path, const char *dir, const gi_preview_opts *o, int rank, int size,
                     int *n_written, gi_err *err)
{
    if (n_written)
        *n_written = 0;
    scene sc;
    memset(&sc, 0, sizeof sc);
    gi_atlas a;
    if (gi_atlas_open(&a, atlas_path, err) != 0)
        return -1;
    sc.a = &a;
    sc.radiological = o->radiological;
    sc.units = o->units ? o->units : "expression";
    int rc = 0;
    int *chosen = malloc(sizeof(int) * (size_t)(a.n_genes + (o->genes ? o->n_genes : 0) + 1));
    int n_chosen = 0;
    float *vol = malloc(sizeof(float) * (size_t)a.nx * a.ny * a.nz);
    if (!chosen || !vol)
        rc = gi_fail(err, "out of memory for a %d x %d x %d preview", a.nx, a.ny, a.nz);
    if (rc == 0 && gi_affine_invert(a.affine, sc.inv) != 0)
        rc = gi_fail(err, "%s: the affine is singular", atlas_path);
    if (rc == 0 && o->genes) {
        for (int k = 0; rc == 0 && k < o->n_genes; k++) {
            int g = gi_atlas_gene_index(&a, o->genes[k]);
            if (g < 0)
                rc = gi_fail(err, "gene '%s' is not in %s (it has %d genes, e.g. '%s')", o->genes[k], atlas_path,
                             a.n_genes, a.genes[0]);
            chosen[n_chosen++] = g;
        }
    } else if (rc == 0) {
        for (int g = 0; g < a.n_genes && g < o->max_genes; g++)
            chosen[n_chosen++] = g;
    }
    if (rc == 0) {
        grid_box(&a, sc.lo, sc.hi);
        if (o->at)
            memcpy(sc.at, o->at, sizeof sc.at);
        else if (mask_centre(&a, sc.at) != 0)
            rc = gi_fail(err, "%s: the mask is empty; nothing to preview", atlas_path);
        for (int d = 0; rc == 0 && d < 3; d++)
            if (sc.at[d] < sc.lo[d] || sc.at[d] > sc.hi[d])
                rc = gi_fail(err, "preview point %c = %.1f mm is outside the grid of %s (%.1f .. %.1f mm)", "xyz"[d],
                             sc.at[d], atlas_path, sc.lo[d], sc.hi[d]);
    }
    if (rc == 0 && o->samples && o->samples[0] && (n_chosen > rank || distance_map(&a))) {
        if (gi_samples_read_csv(&sc.s, o->samples, err) != 0)
            rc = gi_fail_prefix(err, "preview sample positions");
        else
            sc.have_samples = 1;
    }
    if (rc == 0) {
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/" GI_PREVIEW_SD_DIR, dir);
        if (a.has_uncertainty && n_chosen > rank)
            rc = gi_make_dirs(sub, err);
        snprintf(sub, sizeof sub, "%s/" GI_PREVIEW_DISTANCE, dir);
        *strrchr(sub, '/') = '\0';
        if (rc == 0 && distance_map(&a) && rank == n_chosen % size)  /* the rank that draws it (below) */
            rc = gi_make_dirs(sub, err);
    }
    if (rc == 0) {
        layout(&sc);
        for (int k = rank; rc == 0 && k < n_chosen; k += size) {
            rc = write_gene(&sc, chosen[k], dir, vol, err);
            if (rc == 0 && n_written)
                (*n_written)++;
        }
        /* The one distance map: by a rank that drew the fewest genes (ranks below
         * n_chosen % size drew one more). */
        if (rc == 0 && distance_map(&a) && rank == n_chosen % size)
            rc = write_distance(&sc, dir, vol, err);
    }
    if (sc.have_samples)
        gi_samples_free(&sc.s);
    free(chosen);
    free(vol);
    gi_atlas_close(&a);
    return rc;
}
