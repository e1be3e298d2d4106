/* correlate_report.c - report.html of `geneinr correlate` and its figures (see correlate_report.h). */
#include "geneinr/correlate_report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "geneinr/atlas.h"
#include "geneinr/files.h"
#include "geneinr/manifest.h"
#include "geneinr/preview.h"
#include "geneinr/raster.h"
#include "geneinr/strbuf.h"

static const gi_rgb WHITE = {255, 255, 255}, BLACK = {0, 0, 0}, GREY = {150, 150, 150}, RED = {210, 30, 30},
                    BLUE = {40, 90, 200}, LIGHT = {190, 210, 240};

static void line(gi_image *im, int x0, int y0, int x1, int y1, gi_rgb c, int thick)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
    for (;;) {
        gi_image_fill(im, x0 - thick / 2, y0 - thick / 2, thick, thick, c);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * e;
        if (e2 >= dy) {
            e += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            e += dx;
            y0 += sy;
        }
    }
}

/* Histogram of the null r with the observed r as a red line. */
static int draw_null_hist(const char *path, const char *gene, const double *rn, long N, double r, gi_err *err)
{
    enum { W = 360, H = 200, L = 40, R = 12, T = 24, B = 34, NB = 40 };
    double lo = r, hi = r;
    for (long k = 0; k < N; k++) {
        if (rn[k] < lo)
            lo = rn[k];
        if (rn[k] > hi)
            hi = rn[k];
    }
    double pad = 0.05 * (hi - lo) + 1e-9;
    lo -= pad;
    hi += pad;
    long cnt[NB] = {0}, top = 1;
    for (long k = 0; k < N; k++) {
        int b = (int)((rn[k] - lo) / (hi - lo) * NB);
        b = b < 0 ? 0 : b >= NB ? NB - 1 : b;
        if (++cnt[b] > top)
            top = cnt[b];
    }
    gi_image im;
    if (gi_image_new(&im, W, H, WHITE, err) != 0)
        return -1;
    int pw = W - L - R, ph = H - T - B;
    for (int b = 0; b < NB; b++) {
        int x0 = L + b * pw / NB, x1 = L + (b + 1) * pw / NB, h = (int)((double)cnt[b] / top * ph);
        gi_image_fill(&im, x0, T + ph - h, x1 - x0 - 1, h, GREY);
    }
    gi_image_fill(&im, L, T + ph, pw, 1, BLACK);
    int xr = L + (int)((r - lo) / (hi - lo) * pw);
    gi_image_fill(&im, xr - 1, T, 3, ph, RED);
    char t[160];
    snprintf(t, sizeof t, "%.40s: r = %.3f vs %ld nulls", gene, r, N);
    gi_image_text(&im, 4, 6, 1, BLACK, t);
    for (int i = 0; i <= 4; i++) {
        double v = lo + (hi - lo) * i / 4;
        snprintf(t, sizeof t, "%.2f", v);
        int x = L + pw * i / 4;
        gi_image_fill(&im, x, T + ph, 1, 4, BLACK);
        gi_image_text(&im, x - gi_text_width(1, t) / 2, T + ph + 8, 1, BLACK, t);
    }
    gi_image_text(&im, L + pw / 2 - 30, H - 12, 1, BLACK, "null r (grey)");
    int rc = gi_image_write_png(&im, path, NULL, NULL, 0, err);
    gi_image_free(&im);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The map's smoothed variogram (black), the surrogates' median (blue) and 5th-95th percentiles (band). */
static int draw_variogram(const char *path, const gi_corr_report *r, gi_err *err)
{
    enum { W = 460, H = 280, L = 56, R = 14, T = 26, B = 40 };
    int nh = r->nh;
    long N = r->n_nulls;
    double *med = malloc(sizeof(double) * (size_t)nh * 3), *col = malloc(sizeof(double) * (size_t)(N > 0 ? N : 1));
    if (!med || !col) {
        free(med);
        free(col);
        return gi_fail(err, "out of memory");
    }
    double *p5 = med + nh, *p95 = med + 2 * nh, ymax = 0;
    for (int h = 0; h < nh; h++) {
        for (long k = 0; k < N; k++)
            col[k] = r->vnull[k * nh + h];
        qsort(col, (size_t)N, sizeof(double), cmp_double);
        med[h] = col[N / 2];
        p5[h] = col[(long)(0.05 * (N - 1))];
        p95[h] = col[(long)(0.95 * (N - 1))];
        ymax = fmax(ymax, fmax(p95[h], r->vmap[h]));
    }
    free(col);
    ymax *= 1.08;
    if (!(ymax > 0))
        ymax = 1;
    gi_image im;
    if (gi_image_new(&im, W, H, WHITE, err) != 0) {
        free(med);
        return -1;
    }
    int pw = W - L - R, ph = H - T - B;
    double x0 = r->vh[0], x1 = r->vh[nh - 1];
#define PX(x) (L + (int)(((x) - x0) / (x1 - x0) * pw))
#define PY(y) (T + ph - (int)((y) / ymax * ph))
    for (int px = 0; px <= pw; px++) {   /* the band, column by column */
        double x = x0 + (x1 - x0) * px / pw;
        int h = 0;
        while (h + 2 < nh && r->vh[h + 1] < x)
            h++;
        double f = (x - r->vh[h]) / (r->vh[h + 1] - r->vh[h]);
        double a = p5[h] + f * (p5[h + 1] - p5[h]), b = p95[h] + f * (p95[h + 1] - p95[h]);
        gi_image_fill(&im, L + px, PY(b), 1, PY(a) - PY(b) + 1, LIGHT);
    }
    for (int h = 0; h + 1 < nh; h++) {
        line(&im, PX(r->vh[h]), PY(med[h]), PX(r->vh[h + 1]), PY(med[h + 1]), BLUE, 2);
        line(&im, PX(r->vh[h]), PY(r->vmap[h]), PX(r->vh[h + 1]), PY(r->vmap[h + 1]), BLACK, 2);
    }
    for (int h = 0; h < nh; h++)
        gi_image_disc(&im, PX(r->vh[h]), PY(r->vmap[h]), 2, BLACK);
    gi_image_fill(&im, L, T + ph, pw, 1, BLACK);
    gi_image_fill(&im, L, T, 1, ph, BLACK);
    char t[128];
    for (int i = 0; i <= 4; i++) {
        double v = x0 + (x1 - x0) * i / 4;
        snprintf(t, sizeof t, "%.0f", v);
        gi_image_text(&im, PX(v) - gi_text_width(1, t) / 2, T + ph + 6, 1, BLACK, t);
        double y = ymax * i / 4;
        snprintf(t, sizeof t, "%.3g", y);
        gi_image_text(&im, L - 4 - gi_text_width(1, t), PY(y) - 3, 1, BLACK, t);
    }
    gi_image_text(&im, L + pw / 2 - 40, H - 14, 1, BLACK, "distance (mm)");
    gi_image_text(&im, 4, 6, 1, BLACK, "variogram: map (black), surrogates median (blue), 5-95% (band)");
#undef PX
#undef PY
    int rc = gi_image_write_png(&im, path, NULL, NULL, 0, err);
    gi_image_free(&im);
    free(med);
    return rc;
}

/* figures/map.png through the preview code: the map as a one-gene atlas in a temporary file. */
static int draw_map(const gi_corr_report *r, const char *fig_dir, gi_err *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/.correlate-map.h5", r->dir);
    const char *genes[] = {"map"};
    gi_atlas_info info = {
        .n_genes = 1, .genes = genes, .n_donors = 0, .donors = NULL, .nx = r->nx, .ny = r->ny, .nz = r->nz,
        .units = "the map's units", .normalisation = "none", .rendered_for = "average", .kind = "atlas",
    };
    memcpy(info.affine, r->affine, sizeof info.affine);
    gi_atlas_writer *w = gi_atlas_create(MPI_COMM_SELF, tmp, &info, err);
    if (!w)
        return -1;
    if (gi_atlas_write_slices(w, 0, r->nz, r->map_vol, r->mask, err) != 0) {
        gi_atlas_abort(w);
        return -1;
    }
    if (gi_atlas_finish(w, err) != 0)
        return -1;
    gi_preview_opts po = {.genes = genes, .n_genes = 1, .max_genes = 1, .units = "map value"};
    int rc = gi_preview_atlas(tmp, fig_dir, &po, 0, 1, NULL, err);
    unlink(tmp);
    return rc;
}

static int select_figures(const char *name, void *ctx)
{
    (void)ctx;
    return !strncmp(name, "figures/", 8);
}

int gi_corr_report_write(const gi_corr_report *r, gi_err *err)
{
    /* names: report.html, figures/map.png, figures/variogram.png, then per top gene null_ and genes/ */
    int nn = 3 + 2 * r->n_top;
    char **names = calloc((size_t)nn, sizeof(char *));
    char (*file)[256] = calloc((size_t)(r->n_top > 0 ? r->n_top : 1), 256);
    if (!names || !file) {
        free(names);
        free(file);
        return gi_fail(err, "out of memory");
    }
    names[0] = strdup("report.html");
    names[1] = strdup("figures/map.png");
    names[2] = strdup("figures/variogram.png");
    for (int t = 0; t < r->n_top; t++) {
        gi_gene_file_name(r->genes[t], file[t], sizeof file[t]);
        char b[400];
        snprintf(b, sizeof b, "figures/null_%s.png", file[t]);
        names[3 + 2 * t] = strdup(b);
        snprintf(b, sizeof b, "figures/genes/%s.png", file[t]);
        names[4 + 2 * t] = strdup(b);
    }
    int rc = 0;
    for (int i = 0; i < nn; i++)
        if (!names[i])
            rc = gi_fail(err, "out of memory");
    /* the figures of an earlier run that are ours go first (other top genes) */
    gi_manifest m;
    if (rc == 0 && gi_manifest_load(&m, r->dir, err) == 0) {
        int kept = 0;
        rc = gi_manifest_remove(&m, select_figures, NULL, &kept, NULL, 0, err) < 0 ? -1 : 0;
        gi_manifest_free(&m);
    } else {
        rc = -1;
    }
    if (rc == 0)
        rc = gi_manifest_claim_in(r->dir, (const char *const *)names, nn, "correlate", err);
    char fig[4200], gdir[4300], path[4600];
    snprintf(fig, sizeof fig, "%s/figures", r->dir);
    snprintf(gdir, sizeof gdir, "%s/genes", fig);
    if (rc == 0)
        rc = gi_make_dirs(gdir, err);
    if (rc == 0)
        rc = draw_map(r, fig, err);
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/variogram.png", fig);
        rc = draw_variogram(path, r, err);
    }
    for (int t = 0; rc == 0 && t < r->n_top; t++) {
        snprintf(path, sizeof path, "%s/null_%s.png", fig, file[t]);
        rc = draw_null_hist(path, r->genes[t], r->r_null_top + (long)t * r->n_nulls, r->n_nulls, r->r[t], err);
    }
    if (rc == 0 && r->n_top > 0) {
        gi_preview_opts po = {.genes = r->genes, .n_genes = r->n_top, .max_genes = r->n_top};
        rc = gi_preview_atlas(r->atlas_path, gdir, &po, 0, 1, NULL, err);
    }
    gi_strbuf b = {0};
    if (rc == 0) {
        gi_strbuf_add(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>geneinr correlate</title>\n<style>"
               "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
               "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
               "td:first-child{text-align:left}img{max-width:100%%}.gene{margin:1.5em 0}</style></head><body>\n"
               "<h1>Which genes follow the map</h1>\n%s\n", r->settings_html);
        gi_strbuf_add(&b, "<h2>The map</h2>\n<p>On the atlas grid (three slices; no value = grey).</p>"
               "<img src=\"figures/map.png\" alt=\"the map\">\n");
        gi_strbuf_add(&b, "<h2>Top genes</h2>\n<p>Sorted by p_spatial (two-sided, against the spatial nulls); q_spatial is "
               "Benjamini-Hochberg over all %d genes. p_naive ignores spatial autocorrelation and is shown to be "
               "distrusted. The whole table: <code>correlations.csv</code>.</p>\n<table><tr><th>gene</th><th>r</th>"
               "<th>p_naive</th><th>p_spatial</th><th>q_spatial</th></tr>\n", r->n_genes);
        int rows = r->n_genes < 25 ? r->n_genes : 25;
        for (int i = 0; i < rows; i++) {
            gi_strbuf_add(&b, "<tr><td>");
            gi_strbuf_html(&b, r->genes[i]);
            gi_strbuf_add(&b, "</td><td>%.3f</td><td>%.3g</td><td>%.3g</td><td>%.3g</td></tr>\n", r->r[i], r->p_naive[i],
               r->p_spatial[i], r->q[i]);
        }
        gi_strbuf_add(&b, "</table>\n");
        for (int t = 0; t < r->n_top; t++) {
            gi_strbuf_add(&b, "<div class=\"gene\"><h3>");
            gi_strbuf_html(&b, r->genes[t]);
            gi_strbuf_add(&b, " (r = %.3f, p_spatial = %.3g)</h3>\n<img src=\"figures/genes/", r->r[t], r->p_spatial[t]);
            gi_strbuf_html(&b, file[t]);
            gi_strbuf_add(&b, ".png\" alt=\"map\"><br><img src=\"figures/null_");
            gi_strbuf_html(&b, file[t]);
            gi_strbuf_add(&b, ".png\" alt=\"null distribution\"></div>\n");
        }
        gi_strbuf_add(&b, "<h2>Do the surrogates keep the map's spatial autocorrelation?</h2>\n<p>The map's smoothed "
               "variogram against the %ld surrogates' (Burt et al. 2020): the black curve should run inside the "
               "band.</p><img src=\"figures/variogram.png\" alt=\"variogram fit\">\n", r->n_nulls);
        if (r->sets_html)
            gi_strbuf_add(&b, "<h2>Gene sets</h2>\n<p>Mean r of each set against random sets of the same size (gene "
                   "resampling) and against the spatial nulls (the ensemble null of Fulcher et al. 2021).</p>\n%s",
               r->sets_html);
        gi_strbuf_add(&b, "<p>Files: <code>correlations.csv</code>, <code>nulls.h5</code> (the null r of every gene, the "
               "variograms, the seed and settings)%s.</p>\n</body></html>\n",
           r->sets_html ? ", <code>gene_sets.csv</code>" : "");
        if (b.oom)
            rc = gi_fail(err, "out of memory");
    }
    if (rc == 0) {
        char tmp[4700];
        snprintf(path, sizeof path, "%s/report.html", r->dir);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *f = fopen(tmp, "w");
        if (!f) {
            rc = gi_fail(err, "%s: cannot create", tmp);
        } else {
            int bad = fwrite(b.s, 1, b.n, f) != b.n;
            if (fclose(f) != 0 || bad)
                rc = gi_fail(err, "%s: cannot write (disk full?)", tmp);
            else if (rename(tmp, path) != 0)
                rc = gi_fail(err, "%s: cannot rename to %s", tmp, path);
            if (rc != 0)
                gi_remove_partial(tmp);
        }
    }
    if (rc == 0)
        rc = gi_manifest_commit_in(r->dir, (const char *const *)names, nn, err);
    free(b.s);
    for (int i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    free(file);
    return rc;
}
