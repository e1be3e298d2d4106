/* label_match.c - sample -> anatomy label assignment (see label_match.h). */
#include "geneinr/label_match.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/csv.h"

/* Distances within this many mm are the same distance (ties). */
#define TIE_MM 1e-6
/* Labels tied at one distance that are kept for the tie-break; more cannot
 * occur around one point on any sane grid, and the lowest values win anyway. */
#define MAX_TIES 64

/* ---------------------------------------------------------------- label table */

static int col_index(char **f, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(f[i], name) == 0)
            return i;
    return -1;
}

void gi_label_table_free(gi_label_table *t)
{
    for (int i = 0; t->structure && i < t->n; i++)
        free(t->structure[i]);
    free(t->structure);
    free(t->id);
    free(t->hemi);
    memset(t, 0, sizeof *t);
}

int gi_label_table_read(gi_label_table *t, const char *path, gi_err *err)
{
    memset(t, 0, sizeof *t);
    gi_csv *r = gi_csv_open(path, err);
    if (!r)
        return gi_fail_prefix(err, "data.anatomy_labels");
    char **f;
    int nf, rc = gi_csv_next(r, &f, &nf, err);
    if (rc <= 0) {
        gi_csv_close(r);
        return rc < 0 ? -1 : gi_fail(err, "%s: empty label table (want columns id,label,hemisphere,structure)", path);
    }
    int ci = col_index(f, nf, "id"), ch = col_index(f, nf, "hemisphere"), cs = col_index(f, nf, "structure");
    if (ci < 0 || ch < 0 || cs < 0) {
        gi_csv_close(r);
        return gi_fail(err, "%s:1: the label table needs columns id, hemisphere and structure (abagen's "
                       "id,label,hemisphere,structure); missing: %s%s%s", path, ci < 0 ? "id " : "",
                       ch < 0 ? "hemisphere " : "", cs < 0 ? "structure" : "");
    }
    int cap = 0;
    rc = 0;
    while (rc == 0) {
        int got = gi_csv_next(r, &f, &nf, err);
        if (got < 0) { rc = -1; break; }
        if (got == 0) break;
        long line = gi_csv_line(r);
        if (nf <= ci || nf <= ch || nf <= cs) {
            rc = gi_fail(err, "%s:%ld: %d fields; the header has more", path, line, nf);
            break;
        }
        char *end;
        errno = 0;
        long id = strtol(f[ci], &end, 10);
        if (!f[ci][0] || *end || errno || id <= 0 || id > 1000000000L) {
            rc = gi_fail(err, "%s:%ld: id '%s' is not a positive integer label value", path, line, f[ci]);
            break;
        }
        const char *h = f[ch];
        if (!((h[0] == 'L' || h[0] == 'R' || h[0] == 'B') && h[1] == 0)) {
            rc = gi_fail(err, "%s:%ld: hemisphere '%s' of id %ld is not L, R or B", path, line, h, id);
            break;
        }
        if (!f[cs][0]) {
            rc = gi_fail(err, "%s:%ld: id %ld has an empty structure", path, line, id);
            break;
        }
        for (int k = 0; k < t->n; k++)
            if (t->id[k] == id) {
                rc = gi_fail(err, "%s:%ld: id %ld appears twice", path, line, id);
                break;
            }
        if (rc)
            break;
        if (t->n == cap) {
            cap = cap ? 2 * cap : 64;
            int *ni = realloc(t->id, sizeof *ni * cap);
            if (ni) t->id = ni;
            char *nh = realloc(t->hemi, (size_t)cap);
            if (nh) t->hemi = nh;
            char **ns = realloc(t->structure, sizeof *ns * cap);
            if (ns) t->structure = ns;
            if (!ni || !nh || !ns) { rc = gi_fail(err, "out of memory"); break; }
        }
        t->structure[t->n] = strdup(f[cs]);
        if (!t->structure[t->n]) { rc = gi_fail(err, "out of memory"); break; }
        t->id[t->n] = (int)id;
        t->hemi[t->n] = h[0];
        t->n++;
    }
    gi_csv_close(r);
    if (rc == 0 && t->n == 0)
        rc = gi_fail(err, "%s: the label table has no rows", path);
    if (rc != 0)
        gi_label_table_free(t);
    return rc;
}

/* ---------------------------------------------------------------- matching */

/* Per label index: its table row's hemisphere and structure (-1 = no table). */
typedef struct label_info {
    char hemi;
    const char *structure;
} label_info;

/* abagen's _check_label: may a sample of class cls, hemisphere hemi take label l? */
static int allowed(const label_info *li, const char *cls, const char *hemi)
{
    if (strcmp(li->structure, cls) != 0)
        return 0;
    return li->hemi == 'B' || (hemi[0] == li->hemi && hemi[1] == 0);
}


/* The label index of every voxel (0 = unlabelled or not in the list). */
static int *index_volume(const gi_anatomy *a)
{
    size_t nv = (size_t)a->vol.nx * a->vol.ny * a->vol.nz;
    int *idx = malloc(sizeof *idx * (nv ? nv : 1));
    if (!idx)
        return NULL;
    int last_val = 0, last_idx = 0;
    for (size_t v = 0; v < nv; v++) {
        float f = a->vol.data[v];
        int lab = isfinite(f) ? (int)lrintf(f) : 0;
        if (lab != last_val) {
            last_val = lab;
            last_idx = lab ? gi_anatomy_index_of_value(a, lab) : 0;
        }
        idx[v] = last_idx;
    }
    return idx;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

typedef struct matcher {
    const gi_anatomy *a;
    const int *idx;          /* [nz][ny][nx] label index */
    const double *centroid;  /* [n_labels][3] mm, NULL when T = 0 */
    double tol;
    int rad[3];              /* voxel half-widths of the search box along i, j, k */
} matcher;

/* Nearest allowed labelled voxel within the tolerance; returns the label
 * index (0 = none) and its distance. ok[l]: label l allowed. */
static int nearest(const matcher *m, const double p[3], const double ijk[3], const unsigned char *ok, double *dist)
{
    const gi_volume *v = &m->a->vol;
    const double *A = v->affine;
    long c[3] = {lround(ijk[0]), lround(ijk[1]), lround(ijk[2])};
    long lo[3], hi[3], dims[3] = {v->nx, v->ny, v->nz};
    for (int d = 0; d < 3; d++) {
        lo[d] = c[d] - m->rad[d] - 1;
        hi[d] = c[d] + m->rad[d] + 1;
        if (lo[d] < 0) lo[d] = 0;
        if (hi[d] > dims[d] - 1) hi[d] = dims[d] - 1;
        if (lo[d] > hi[d])
            return 0;
    }
    double best = (m->tol + TIE_MM) * (m->tol + TIE_MM), best_d = INFINITY;
    int ties[MAX_TIES], nt = 0;
    for (long k = lo[2]; k <= hi[2]; k++)
        for (long j = lo[1]; j <= hi[1]; j++) {
            const int *row = m->idx + ((size_t)k * v->ny + j) * v->nx;
            /* The row's world point at i = 0 and the step per i. */
            double r0[3], st[3] = {A[0], A[4], A[8]};
            for (int d = 0; d < 3; d++)
                r0[d] = A[4 * d + 1] * j + A[4 * d + 2] * k + A[4 * d + 3] - p[d];
            for (long i = lo[0]; i <= hi[0]; i++) {
                int l = row[i];
                if (!l || !ok[l])
                    continue;
                double dx = r0[0] + st[0] * i, dy = r0[1] + st[1] * i, dz = r0[2] + st[2] * i;
                double d2 = dx * dx + dy * dy + dz * dz;
                if (d2 > best)
                    continue;
                double d = sqrt(d2);
                if (d < best_d - TIE_MM) {
                    best_d = d;
                    best = (d + TIE_MM) * (d + TIE_MM);
                    nt = 0;
                    ties[nt++] = l;
                } else if (d <= best_d + TIE_MM) {
                    int seen = 0;
                    for (int t = 0; t < nt && !seen; t++)
                        seen = ties[t] == l;
                    if (!seen && nt < MAX_TIES)
                        ties[nt++] = l;
                }
            }
        }
    if (nt == 0 || best_d > m->tol + TIE_MM)
        return 0;
    /* Ties: the nearest centroid, then the lowest label value (= lowest index). */
    int win = ties[0];
    double wc = INFINITY;
    for (int t = 0; t < nt; t++) {
        int l = ties[t];
        const double *q = m->centroid + 3 * (size_t)l;
        double cd = (q[0] - p[0]) * (q[0] - p[0]) + (q[1] - p[1]) * (q[1] - p[1]) + (q[2] - p[2]) * (q[2] - p[2]);
        if (cd < wc - 1e-12 || (cd <= wc + 1e-12 && l < win)) {
            wc = cd;
            win = l;
        }
    }
    *dist = best_d;
    return win;
}

/* Mean voxel centre (mm) of every label index. */
static double *centroids(const gi_anatomy *a, const int *idx)
{
    int L = a->n_labels;
    double *c = calloc((size_t)L * 4, sizeof *c);
    if (!c)
        return NULL;
    const gi_volume *v = &a->vol;
    for (long k = 0; k < v->nz; k++)
        for (long j = 0; j < v->ny; j++)
            for (long i = 0; i < v->nx; i++) {
                int l = idx[((size_t)k * v->ny + j) * v->nx + i];
                if (!l)
                    continue;
                double w[3];
                gi_affine_apply(v->affine, (double)i, (double)j, (double)k, w);
                for (int d = 0; d < 3; d++)
                    c[4 * (size_t)l + d] += w[d];
                c[4 * (size_t)l + 3] += 1;
            }
    /* Compact to [L][3]. */
    for (int l = 0; l < L; l++) {
        double cnt = c[4 * (size_t)l + 3];
        for (int d = 0; d < 3; d++)
            c[3 * (size_t)l + d] = cnt > 0 ? c[4 * (size_t)l + d] / cnt : INFINITY;
    }
    return c;
}

void gi_label_match_free(gi_label_match *m)
{
    free(m->label);
    free(m->how);
    free(m->dist_mm);
    memset(m, 0, sizeof *m);
}

int gi_label_match_points(gi_label_match *m, const gi_anatomy *a, int n, const float *mni, const char *const *cls,
                          const char *const *hemi, const gi_label_table *table, double tol, gi_err *err)
{
    memset(m, 0, sizeof *m);
    int L = a->n_labels, rc = 0;
    m->n = n;
    m->label = malloc(sizeof *m->label * (size_t)(n ? n : 1));
    m->how = malloc((size_t)(n ? n : 1));
    m->dist_mm = malloc(sizeof *m->dist_mm * (size_t)(n ? n : 1));
    label_info *li = calloc((size_t)L, sizeof *li);
    unsigned char *ok = malloc((size_t)L), *all_ok = malloc((size_t)L);
    int *idx = NULL;
    double *cen = NULL;
    float *dists = NULL;
    if (!m->label || !m->how || !m->dist_mm || !li || !ok || !all_ok) {
        rc = gi_fail(err, "out of memory for label matching");
        goto done;
    }
    memset(all_ok, 1, (size_t)L);
    all_ok[0] = 0;
    if (cls) {
        for (int l = 1; l < L && rc == 0; l++) {
            int row = -1;
            for (int r = 0; r < table->n && row < 0; r++)
                if (table->id[r] == a->values[l])
                    row = r;
            if (row < 0)
                rc = gi_fail(err, "data.anatomy_labels: label %d of the anatomy image is not in the label table",
                             a->values[l]);
            else
                li[l] = (label_info){table->hemi[row], table->structure[row]};
        }
        if (rc)
            goto done;
    }
    matcher mt = {.a = a, .tol = tol};
    if (tol > 0) {
        idx = index_volume(a);
        cen = idx ? centroids(a, idx) : NULL;
        if (!idx || !cen) {
            rc = gi_fail(err, "out of memory for label matching");
            goto done;
        }
        mt.idx = idx;
        mt.centroid = cen;
        /* Voxel index change per mm along each index axis: the rows of the
         * inverse affine's 3x3 part; the box covers the tolerance ball. */
        for (int d = 0; d < 3; d++) {
            double r = sqrt(a->inv[4 * d] * a->inv[4 * d] + a->inv[4 * d + 1] * a->inv[4 * d + 1] +
                            a->inv[4 * d + 2] * a->inv[4 * d + 2]);
            mt.rad[d] = (int)ceil(tol * r);
        }
    }
    gi_match_summary *s = &m->sum;
    s->n = n;
    s->tolerance_mm = tol;
    s->class_rule = cls ? 1 : 0;
    for (int i = 0; i < n; i++) {
        const float *q = mni + 3 * (size_t)i;
        double p[3] = {q[0], q[1], q[2]}, ijk[3];
        const unsigned char *allow = all_ok;
        if (cls && cls[i] && cls[i][0] && hemi && hemi[i] && hemi[i][0]) {
            s->constrained++;
            for (int l = 1; l < L; l++)
                ok[l] = (unsigned char)allowed(&li[l], cls[i], hemi[i]);
            ok[0] = 0;
            allow = ok;
        }
        int own = gi_anatomy_index_at(a, p[0], p[1], p[2]);
        int lab = 0, how = GI_MATCH_NONE;
        double d = NAN;
        if (own && allow[own]) {
            lab = own;
            how = GI_MATCH_VOXEL;
            d = 0;
        } else if (tol > 0) {
            gi_affine_apply(a->inv, p[0], p[1], p[2], ijk);
            lab = nearest(&mt, p, ijk, allow, &d);
            how = lab ? GI_MATCH_DISTANCE : GI_MATCH_NONE;
            if (!lab)
                d = NAN;
        }
        m->label[i] = lab;
        m->how[i] = (unsigned char)how;
        m->dist_mm[i] = (float)d;
        s->by_voxel += how == GI_MATCH_VOXEL;
        s->by_distance += how == GI_MATCH_DISTANCE;
        s->none += how == GI_MATCH_NONE;
    }
    if (s->by_distance > 0) {
        dists = malloc(sizeof *dists * (size_t)s->by_distance);
        if (!dists) {
            rc = gi_fail(err, "out of memory");
            goto done;
        }
        int k = 0;
        for (int i = 0; i < n; i++)
            if (m->how[i] == GI_MATCH_DISTANCE)
                dists[k++] = m->dist_mm[i];
        qsort(dists, (size_t)k, sizeof *dists, cmp_float);
        s->median_mm = k % 2 ? dists[k / 2] : 0.5 * ((double)dists[k / 2 - 1] + dists[k / 2]);
        s->max_mm = dists[k - 1];
    }
    if (cls)
        for (int r = 0; r < table->n; r++)
            s->table_unused += gi_anatomy_index_of_value(a, table->id[r]) == 0;
done:
    free(li); free(ok); free(all_ok); free(idx); free(cen); free(dists);
    if (rc != 0)
        gi_label_match_free(m);
    return rc;
}

int gi_label_table_path(const gi_config *c, char *out, size_t n)
{
    out[0] = 0;
    if (strcmp(c->data.anatomy_labels, "auto") != 0) {
        snprintf(out, n, "%s", c->data.anatomy_labels);
        return out[0] != 0;
    }
    /* abagen ships atlas-desikankilliany.nii.gz beside atlas-desikankilliany.csv, and the phantoms
     * write anatomy.nii.gz beside anatomy.csv: the table is the image's name with .csv. */
    size_t len = strlen(c->data.anatomy);
    const char *ext[] = {".nii.gz", ".nii"};
    for (int k = 0; k < 2; k++) {
        size_t e = strlen(ext[k]);
        if (len > e && strcmp(c->data.anatomy + len - e, ext[k]) == 0) {
            if (len - e + 5 > n)
                return 0;
            snprintf(out, n, "%.*s.csv", (int)(len - e), c->data.anatomy);
            FILE *f = fopen(out, "r");
            if (f) {
                fclose(f);
                return 1;
            }
            break;
        }
    }
    out[0] = 0;
    return 0;
}

int gi_label_match_samples(gi_label_match *m, const gi_anatomy *a, const gi_samples *s, const gi_config *c,
                           gi_err *err)
{
    char table[GI_PATH_MAX];
    int have_table = gi_label_table_path(c, table, sizeof table);
    int ac = -1, ah = -1;
    for (int k = 0; k < s->n_annot; k++) {
        if (strcmp(s->annot_names[k], "class") == 0) ac = k;
        if (strcmp(s->annot_names[k], "hemisphere") == 0) ah = k;
    }
    int use_class = have_table && ac >= 0 && ah >= 0;
    gi_label_table t;
    memset(&t, 0, sizeof t);
    const char **cls = NULL, **hemi = NULL;
    if (use_class) {
        if (gi_label_table_read(&t, table, err) != 0)
            return -1;
        cls = malloc(sizeof *cls * (size_t)(s->n ? s->n : 1));
        hemi = malloc(sizeof *hemi * (size_t)(s->n ? s->n : 1));
        if (!cls || !hemi) {
            free(cls); free(hemi);
            gi_label_table_free(&t);
            return gi_fail(err, "out of memory");
        }
        for (int i = 0; i < s->n; i++) {
            cls[i] = s->annot[(size_t)i * s->n_annot + ac];
            hemi[i] = s->annot[(size_t)i * s->n_annot + ah];
        }
    } else if (have_table) {
        /* Still check the table: a bad file is an error whether or not it is used. */
        if (gi_label_table_read(&t, table, err) != 0)
            return -1;
    }
    int rc = gi_label_match_points(m, a, s->n, s->mni, cls, hemi, use_class ? &t : NULL,
                                   c->data.anatomy_tolerance, err);
    if (rc == 0 && have_table && !use_class)
        m->sum.class_rule = 2;
    free(cls);
    free(hemi);
    gi_label_table_free(&t);
    if (rc != 0)
        return gi_fail_prefix(err, "matching the samples of %s to %s", c->data.samples, c->data.anatomy);
    return 0;
}

void gi_match_summary_print(FILE *f, const gi_match_summary *s, const char *prefix)
{
    fprintf(f, "%s%d samples: %d matched by voxel, %d by distance (median %.1f mm, max %.1f mm), %d not at all "
               "(tolerance %g mm; class/hemisphere: ", prefix, s->n, s->by_voxel, s->by_distance, s->median_mm,
            s->max_mm, s->none, s->tolerance_mm);
    if (s->class_rule == 1)
        fprintf(f, "%d constrained)\n", s->constrained);
    else
        fprintf(f, "not applied)\n");
    if (s->class_rule == 2)
        fprintf(f, "%sdata.anatomy_labels is set but the sample table has no class and hemisphere columns: the "
                   "class/hemisphere rule cannot apply\n", prefix);
    if (s->class_rule == 1 && s->table_unused > 0)
        fprintf(f, "%snote: %d id%s of data.anatomy_labels not in the image (ignored)\n", prefix, s->table_unused,
                s->table_unused > 1 ? "s" : "");
}

void gi_match_summary_json(FILE *f, const gi_match_summary *s)
{
    static const char *const RULE[] = {"none", "applied", "not applicable (no class/hemisphere columns)"};
    fprintf(f, "{\"samples\": %d, \"by_voxel\": %d, \"by_distance\": %d, \"distance_median_mm\": %.4f, "
               "\"distance_max_mm\": %.4f, \"not_matched\": %d, \"tolerance_mm\": %g, \"class_rule\": \"%s\", "
               "\"constrained\": %d}",
            s->n, s->by_voxel, s->by_distance, s->median_mm, s->max_mm, s->none, s->tolerance_mm,
            RULE[s->class_rule], s->constrained);
}

int gi_match_summary_write(const char *path, const gi_match_summary *s, gi_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return gi_fail(err, "cannot create %s: %s", path, strerror(errno));
    gi_match_summary_json(f, s);
    fputc('\n', f);
    if (fclose(f) != 0)
        return gi_fail(err, "writing %s: %s", path, strerror(errno));
    return 0;
}
