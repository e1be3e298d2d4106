/* score.c - accuracy of a rendered atlas against a known truth (see score.h).
 *
 * Phases of gi_score_atlas:
 *   1. open the atlas and the truth (atlas.h) and check they share the grid
 *      (dims and affine); read the sample table;
 *   2. list the scored voxels: inside the truth's mask, every stride-th voxel
 *      along i, j and k, with their centres in MNI mm (the truth's affine);
 *   3. nearest sample of every listed voxel among all samples (bucket grid);
 *   4. per gene present in all three: the nearest *measured* sample is the
 *      overall nearest when that one measured the gene (ties are broken by
 *      the lower sample index, so the two searches agree), otherwise a search
 *      in a grid of the gene's measured samples; then Pearson r and the RMSE
 *      of the least-squares fit a*map + b to the truth, for atlas and
 *      nearest-sample maps, over voxels where the atlas value is finite.
 *
 * Why a hand-written bucket grid: 250k voxels x 3,700 samples by brute force
 * is ~10^9 distances per gene; a uniform grid of 10 mm cells searched in
 * growing shells makes it ~10^2 per voxel, and no library we link offers it.
 */
#include "geneinr/score.h"

#include "geneinr/atlas.h"
#include "geneinr/nifti.h"
#include "geneinr/samples.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CELL_MM 10.0

/* ---- nearest-neighbour search on a uniform grid -------------------------- */

typedef struct nn_grid {
    double lo[3];
    int n[3];
    int *start;             /* [ncell + 1]: items of cell c are items[start[c] .. start[c+1]) */
    int *items;             /* sample indices, by cell, ascending within a cell */
    const float *mni;       /* [n_samples][3] */
} nn_grid;

static void nn_free(nn_grid *g)
{
    free(g->start);
    free(g->items);
    g->start = g->items = NULL;
}

static int nn_cell_axis(const nn_grid *g, int a, double p)
{
    int c = (int)floor((p - g->lo[a]) / CELL_MM);
    return c < 0 ? 0 : c >= g->n[a] ? g->n[a] - 1 : c;
}

/* Grid over the union of the bounding boxes of the listed samples and of
 * box_lo..box_hi (all query points), so every query lies inside it. */
static int nn_build(nn_grid *g, const float *mni, const int *list, int n_list,
                    const double box_lo[3], const double box_hi[3])
{
    double lo[3], hi[3];
    for (int a = 0; a < 3; a++) {
        lo[a] = box_lo[a];
        hi[a] = box_hi[a];
    }
    for (int s = 0; s < n_list; s++)
        for (int a = 0; a < 3; a++) {
            double v = mni[(size_t)list[s] * 3 + a];
            if (v < lo[a]) lo[a] = v;
            if (v > hi[a]) hi[a] = v;
        }
    size_t ncell = 1;
    for (int a = 0; a < 3; a++) {
        g->lo[a] = lo[a];
        g->n[a] = (int)floor((hi[a] - lo[a]) / CELL_MM) + 1;
        ncell *= (size_t)g->n[a];
    }
    g->mni = mni;
    g->start = calloc(ncell + 1, sizeof *g->start);
    g->items = malloc((size_t)(n_list > 0 ? n_list : 1) * sizeof *g->items);
    int *cell = malloc((size_t)(n_list > 0 ? n_list : 1) * sizeof *cell);
    if (!g->start || !g->items || !cell) {
        free(cell);
        nn_free(g);
        return -1;
    }
    for (int s = 0; s < n_list; s++) {
        const float *p = mni + (size_t)list[s] * 3;
        int c = (nn_cell_axis(g, 2, p[2]) * g->n[1] + nn_cell_axis(g, 1, p[1])) * g->n[0] +
                nn_cell_axis(g, 0, p[0]);
        cell[s] = c;
        g->start[c + 1]++;
    }
    for (size_t c = 0; c < ncell; c++)
        g->start[c + 1] += g->start[c];
    int *fill = malloc((ncell > 0 ? ncell : 1) * sizeof *fill);
    if (!fill) {
        free(cell);
        nn_free(g);
        return -1;
    }
    memcpy(fill, g->start, ncell * sizeof *fill);
    for (int s = 0; s < n_list; s++)      /* list is ascending, so cells stay sorted */
        g->items[fill[cell[s]]++] = list[s];
    free(fill);
    free(cell);
    return 0;
}

/* Index of the sample nearest to p (ties: lowest index), or -1 if none. */
static int nn_query(const nn_grid *g, const double p[3])
{
    int c[3];
    for (int a = 0; a < 3; a++)
        c[a] = nn_cell_axis(g, a, p[a]);
    int rmax = g->n[0] > g->n[1] ? g->n[0] : g->n[1];
    if (g->n[2] > rmax)
        rmax = g->n[2];
    double best = DBL_MAX;
    int bi = -1;
    for (int r = 0; r <= rmax; r++) {
        for (int dz = -r; dz <= r; dz++) {
            int cz = c[2] + dz;
            if (cz < 0 || cz >= g->n[2])
                continue;
            for (int dy = -r; dy <= r; dy++) {
                int cy = c[1] + dy;
                if (cy < 0 || cy >= g->n[1])
                    continue;
                int shell = (dz == -r || dz == r || dy == -r || dy == r);
                int step = shell || r == 0 ? 1 : 2 * r;      /* inner rows: only dx = +-r */
                for (int dx = -r; dx <= r; dx += step) {
                    int cx = c[0] + dx;
                    if (cx < 0 || cx >= g->n[0])
                        continue;
                    int cell = (cz * g->n[1] + cy) * g->n[0] + cx;
                    for (int t = g->start[cell]; t < g->start[cell + 1]; t++) {
                        int s = g->items[t];
                        const float *q = g->mni + (size_t)s * 3;
                        double d0 = q[0] - p[0], d1 = q[1] - p[1], d2 = q[2] - p[2];
                        double d = d0 * d0 + d1 * d1 + d2 * d2;
                        if (d < best || (d == best && s < bi)) {
                            best = d;
                            bi = s;
                        }
                    }
                }
            }
        }
        /* Cells of ring r+1 and beyond are at least r cells away from p. */
        double reach = r * CELL_MM;
        if (bi >= 0 && best <= reach * reach)
            break;
    }
    return bi;
}

/* ---- statistics ---------------------------------------------------------- */

/* Pearson r of m against t and the RMSE of the least-squares fit a*m + b to t.
 * A constant map (or truth) has r = 0 and the RMSE of the best constant. */
static void fit_stats(const double *m, const double *t, long n, double *r, double *rmse)
{
    double sm = 0.0, st = 0.0;
    for (long v = 0; v < n; v++) {
        sm += m[v];
        st += t[v];
    }
    double mm = sm / n, mt = st / n, vm = 0.0, vt = 0.0, cv = 0.0;
    for (long v = 0; v < n; v++) {
        double a = m[v] - mm, b = t[v] - mt;
        vm += a * a;
        vt += b * b;
        cv += a * b;
    }
    if (vm <= 0.0 || vt <= 0.0) {
        *r = 0.0;
        *rmse = sqrt(vt / n);
        return;
    }
    double rr = cv / sqrt(vm * vt);
    *r = rr > 1.0 ? 1.0 : rr < -1.0 ? -1.0 : rr;
    *rmse = sqrt(fmax(vt - cv * cv / vm, 0.0) / n);
}

/* ---- scoring ------------------------------------------------------------- */

static int same_grid(const gi_atlas *a, const gi_atlas *b)
{
    if (a->nx != b->nx || a->ny != b->ny || a->nz != b->nz)
        return 0;
    for (int e = 0; e < 16; e++)
        if (fabs(a->affine[e] - b->affine[e]) > 1e-4 * (1.0 + fabs(b->affine[e])))
            return 0;
    return 1;
}

/* Prefix err with "score: <role> <path>", leaving out the path when the
 * message already names it. */
static int fail_context(gi_err *err, const char *role, const char *path)
{
    if (err && strstr(err->msg, path))
        return gi_fail_prefix(err, "score: %s", role);
    return gi_fail_prefix(err, "score: %s %s", role, path);
}

static int sample_gene_index(const gi_samples *s, const char *name)
{
    for (int g = 0; g < s->n_genes; g++)
        if (strcmp(s->gene_names[g], name) == 0)
            return g;
    return -1;
}

void gi_score_free(gi_score *s)
{
    if (!s)
        return;
    free(s->genes);
    memset(s, 0, sizeof *s);
}

/* The scored voxels of truth: in its mask, on the stride lattice. Returns
 * how many; with vox non-NULL also their offsets (vox), centres in mm (ctr,
 * [n][3]) and the box around the centres (lo, hi). */
static long lattice(const gi_atlas *truth, int stride, long *vox, double *ctr, double lo[3], double hi[3])
{
    int nx = truth->nx, ny = truth->ny, nz = truth->nz;
    long v = 0;
    for (int k = 0; k < nz; k += stride)
        for (int j = 0; j < ny; j += stride)
            for (int i = 0; i < nx; i += stride) {
                size_t idx = ((size_t)k * ny + j) * nx + i;
                if (!truth->mask[idx])
                    continue;
                if (vox) {
                    vox[v] = (long)idx;
                    double *c = ctr + (size_t)v * 3;
                    gi_affine_apply(truth->affine, i, j, k, c);
                    for (int a = 0; a < 3; a++) {
                        if (c[a] < lo[a]) lo[a] = c[a];
                        if (c[a] > hi[a]) hi[a] = c[a];
                    }
                }
                v++;
            }
    return v;
}

/* One gene's values at the scored voxels: the samples, the voxels and their
 * nearest sample overall (near_all), and the samples that measure the gene
 * (list [n_meas], sample column sg). */
typedef struct pairing {
    const gi_samples *smp;
    const long *vox;
    const double *ctr;
    const int *near_all;
    long nv;
    const double *lo, *hi;
    const int *list;
    int n_meas, sg;
} pairing;

/* The voxels where both atlas and truth are finite: model (am), truth (tm) and
 * nearest measured sample (nm) values. A voxel whose nearest sample did not
 * measure the gene takes the nearest one that did (gene_grid, built on first
 * need). Returns the count, or -1 out of memory. */
static long pair_values(const pairing *p, const float *avol, const float *tvol, nn_grid *gene_grid, double *am,
                        double *tm, double *nm)
{
    const gi_samples *smp = p->smp;
    int grid_built = 0;
    long n = 0;
    for (long v = 0; v < p->nv; v++) {
        float a = avol[p->vox[v]], t = tvol[p->vox[v]];
        if (!isfinite(a) || !isfinite(t))
            continue;
        int s = p->near_all[v];
        if (!isfinite(smp->values[(size_t)s * smp->n_genes + p->sg])) {
            if (!grid_built) {
                if (nn_build(gene_grid, smp->mni, p->list, p->n_meas, p->lo, p->hi) < 0)
                    return -1;
                grid_built = 1;
            }
            s = nn_query(gene_grid, p->ctr + (size_t)v * 3);
        }
        am[n] = a;
        tm[n] = t;
        nm[n] = smp->values[(size_t)s * smp->n_genes + p->sg];
        n++;
    }
    return n;
}

/* Genes of the atlas that truth and the samples also hold. */
static int common_genes(const gi_atlas *atlas, const gi_atlas *truth, const gi_samples *smp)
{
    int n = 0;
    for (int g = 0; g < atlas->n_genes; g++)
        n += gi_atlas_gene_index(truth, atlas->genes[g]) >= 0 && sample_gene_index(smp, atlas->genes[g]) >= 0;
    return n;
}

/* The samples that measure gene column sg, into list; returns how many. */
static int measured(const gi_samples *smp, int sg, int *list)
{
    int n = 0;
    for (int s = 0; s < smp->n; s++)
        if (isfinite(smp->values[(size_t)s * smp->n_genes + sg]))
            list[n++] = s;
    return n;
}

/* The next gene score of out: r and RMSE of the model and of the nearest
 * sample against the truth at n voxels. */
static const gi_gene_score *record(gi_score *out, const char *name, long n, const double *am, const double *tm,
                                   const double *nm)
{
    gi_gene_score *gs = &out->genes[out->n++];
    snprintf(gs->gene, sizeof gs->gene, "%s", name);
    gs->n_voxels = n;
    fit_stats(am, tm, n, &gs->r_model, &gs->rmse_model);
    fit_stats(nm, tm, n, &gs->r_nearest, &gs->rmse_nearest);
    return gs;
}

int gi_score_atlas(const char *atlas_path, const char *truth_path, const char *samples_path,
                   int stride, gi_score *out, gi_err *err)
{
    memset(out, 0, sizeof *out);
    if (stride < 1)
        return gi_fail(err, "score: stride must be at least 1 (got %d)", stride);

    gi_atlas atlas, truth;
    gi_samples smp;
    memset(&atlas, 0, sizeof atlas);
    memset(&truth, 0, sizeof truth);
    memset(&smp, 0, sizeof smp);
    int have_atlas = 0, have_truth = 0, have_smp = 0, rc = -1;
    long *vox = NULL;
    double *ctr = NULL, *am = NULL, *tm = NULL, *nm = NULL;
    float *avol = NULL, *tvol = NULL;
    int *near_all = NULL, *list = NULL;
    nn_grid all_grid = {0}, gene_grid = {0};

    if (gi_atlas_open(&atlas, atlas_path, err) < 0) {
        fail_context(err, "atlas", atlas_path);
        goto done;
    }
    have_atlas = 1;
    if (gi_atlas_open(&truth, truth_path, err) < 0) {
        fail_context(err, "truth", truth_path);
        goto done;
    }
    have_truth = 1;
    if (!same_grid(&atlas, &truth)) {
        gi_fail(err, "score: atlas %s (%d x %d x %d) and truth %s (%d x %d x %d) are not on the same "
                "grid (dimensions and affine must match)", atlas_path, atlas.nx, atlas.ny, atlas.nz,
                truth_path, truth.nx, truth.ny, truth.nz);
        goto done;
    }
    if (gi_samples_read_csv(&smp, samples_path, err) < 0) {
        fail_context(err, "samples", samples_path);
        goto done;
    }
    have_smp = 1;

    /* Genes in all three, in atlas order. */
    out->genes = calloc((size_t)(atlas.n_genes > 0 ? atlas.n_genes : 1), sizeof *out->genes);
    if (!out->genes) {
        gi_fail(err, "score: out of memory");
        goto done;
    }
    if (common_genes(&atlas, &truth, &smp) == 0) {
        gi_fail(err, "score: no gene of atlas %s is in both truth %s and samples %s", atlas_path,
                truth_path, samples_path);
        goto done;
    }

    /* Scored voxels: in the truth's mask, on the stride lattice. */
    int nx = truth.nx, ny = truth.ny, nz = truth.nz;
    size_t nvox = (size_t)nx * ny * nz;
    long nv = lattice(&truth, stride, NULL, NULL, NULL, NULL);
    if (nv == 0) {
        gi_fail(err, "score: the mask of truth %s is empty", truth_path);
        goto done;
    }
    vox = malloc((size_t)nv * sizeof *vox);
    ctr = malloc((size_t)nv * 3 * sizeof *ctr);
    am = malloc((size_t)nv * sizeof *am);
    tm = malloc((size_t)nv * sizeof *tm);
    nm = malloc((size_t)nv * sizeof *nm);
    near_all = malloc((size_t)nv * sizeof *near_all);
    list = malloc((size_t)(smp.n > 0 ? smp.n : 1) * sizeof *list);
    avol = malloc(nvox * sizeof *avol);
    tvol = malloc(nvox * sizeof *tvol);
    if (!vox || !ctr || !am || !tm || !nm || !near_all || !list || !avol || !tvol) {
        gi_fail(err, "score: out of memory for %ld voxels", nv);
        goto done;
    }
    double lo[3] = {DBL_MAX, DBL_MAX, DBL_MAX}, hi[3] = {-DBL_MAX, -DBL_MAX, -DBL_MAX};
    lattice(&truth, stride, vox, ctr, lo, hi);
    long v;

    /* Nearest sample overall. */
    for (int s = 0; s < smp.n; s++)
        list[s] = s;
    if (nn_build(&all_grid, smp.mni, list, smp.n, lo, hi) < 0) {
        gi_fail(err, "score: out of memory for the sample search grid");
        goto done;
    }
    for (v = 0; v < nv; v++)
        near_all[v] = nn_query(&all_grid, ctr + (size_t)v * 3);

    double sum_model = 0.0, sum_near = 0.0;
    for (int g = 0; g < atlas.n_genes; g++) {
        const char *name = atlas.genes[g];
        int tg = gi_atlas_gene_index(&truth, name), sg = sample_gene_index(&smp, name);
        if (tg < 0 || sg < 0)
            continue;
        int n_meas = measured(&smp, sg, list);
        if (n_meas == 0) {
            gi_fail(err, "score: gene %s has no measured value in samples %s", name, samples_path);
            goto done;
        }
        if (gi_atlas_read_gene(&atlas, g, avol, err) < 0) {
            gi_fail_prefix(err, "score: atlas %s, gene %s", atlas_path, name);
            goto done;
        }
        if (gi_atlas_read_gene(&truth, tg, tvol, err) < 0) {
            gi_fail_prefix(err, "score: truth %s, gene %s", truth_path, name);
            goto done;
        }
        pairing pr = {&smp, vox, ctr, near_all, nv, lo, hi, list, n_meas, sg};
        long n = pair_values(&pr, avol, tvol, &gene_grid, am, tm, nm);
        nn_free(&gene_grid);
        if (n < 0) {
            gi_fail(err, "score: out of memory for the sample search grid");
            goto done;
        }
        if (n < 2) {
            gi_fail(err, "score: gene %s: fewer than 2 voxels with finite values in both atlas %s and "
                    "truth %s", name, atlas_path, truth_path);
            goto done;
        }
        const gi_gene_score *gs = record(out, name, n, am, tm, nm);
        sum_model += gs->r_model;
        sum_near += gs->r_nearest;
    }
    out->mean_r_model = sum_model / out->n;
    out->mean_r_nearest = sum_near / out->n;
    rc = 0;
done:
    nn_free(&all_grid);
    nn_free(&gene_grid);
    free(vox);
    free(ctr);
    free(am);
    free(tm);
    free(nm);
    free(near_all);
    free(list);
    free(avol);
    free(tvol);
    if (have_smp)
        gi_samples_free(&smp);
    if (have_truth)
        gi_atlas_close(&truth);
    if (have_atlas)
        gi_atlas_close(&atlas);
    if (rc < 0)
        gi_score_free(out);
    return rc;
}

/* ---- reporting ----------------------------------------------------------- */

void gi_score_print(FILE *f, const gi_score *s)
{
    fprintf(f, "%-20s %10s %9s %9s %11s %12s\n", "gene", "voxels", "r_model", "r_nearest",
            "rmse_model", "rmse_nearest");
    for (int g = 0; g < s->n; g++) {
        const gi_gene_score *e = &s->genes[g];
        fprintf(f, "%-20s %10ld %9.4f %9.4f %11.5f %12.5f\n", e->gene, e->n_voxels, e->r_model,
                e->r_nearest, e->rmse_model, e->rmse_nearest);
    }
    char label[32];
    snprintf(label, sizeof label, "mean (%d gene%s)", s->n, s->n == 1 ? "" : "s");
    fprintf(f, "%-20s %10s %9.4f %9.4f\n", label, "", s->mean_r_model, s->mean_r_nearest);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, double x)
{
    if (isfinite(x))
        fprintf(f, "%.9g", x);
    else
        fputs("null", f);
}

int gi_score_write_json(const char *path, const gi_score *s, gi_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return gi_fail(err, "score: cannot write '%s': %s", path, strerror(errno));
    fputs("{\"genes\":[", f);
    for (int g = 0; g < s->n; g++) {
        const gi_gene_score *e = &s->genes[g];
        fputs(g ? ",\n  {\"gene\":" : "\n  {\"gene\":", f);
        json_string(f, e->gene);
        fprintf(f, ",\"n_voxels\":%ld,\"r_model\":", e->n_voxels);
        json_number(f, e->r_model);
        fputs(",\"r_nearest\":", f);
        json_number(f, e->r_nearest);
        fputs(",\"rmse_model\":", f);
        json_number(f, e->rmse_model);
        fputs(",\"rmse_nearest\":", f);
        json_number(f, e->rmse_nearest);
        fputc('}', f);
    }
    fputs("\n],\n\"mean_r_model\":", f);
    json_number(f, s->mean_r_model);
    fputs(",\n\"mean_r_nearest\":", f);
    json_number(f, s->mean_r_nearest);
    fputs("}\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return gi_fail(err, "score: error writing '%s'", path);
    return 0;
}
