/* donor_samples.c - prepare's phase 2: the samples of each donor (SampleAnnot,
 * Ontology, corrected coordinates, mirroring, the hemisphere mismatch drop)
 * (prep.h). */
#include "prep.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "geneinr/ahba.h"
#include "geneinr/csv.h"
#include "geneinr/genelist.h"
#include "geneinr/grow.h"
#include "geneinr/rng.h"
#include "geneinr/samples.h"

/* ----------------------------------------------------------- 2. samples */

/* abagen's structure classes, by ontology id on structure_id_path. */
static const struct { long id; const char *cls; } CLASSES[] = {
    {4008, "cortex"}, {4249, "subcortex/brainstem"}, {4275, "subcortex/brainstem"},
    {4391, "subcortex/brainstem"}, {4696, "cerebellum"}, {9001, "subcortex/brainstem"},
    {9131, "subcortex/brainstem"}, {9218, "white matter"}, {9352, "other"},
    {9512, "subcortex/brainstem"},
};

/* The deepest class id on the path "/4005/4006/.../id/". */
static const char *class_of_path(const char *path)
{
    const char *cls = "";
    const char *s = path;
    while (*s) {
        while (*s == '/')
            s++;
        if (!*s)
            break;
        char *end;
        long id = strtol(s, &end, 10);
        if (end == s) {
            while (*s && *s != '/')
                s++;
            continue;
        }
        for (size_t k = 0; k < sizeof CLASSES / sizeof CLASSES[0]; k++)
            if (CLASSES[k].id == id && (*end == '/' || !*end))
                cls = CLASSES[k].cls;
        s = end;
    }
    return cls;
}

static int cmp_ont_id(const void *a, const void *b)
{
    const ont_row *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static const ont_row *find_ont(const donor *D, long id)
{
    ont_row key = {.id = id};
    return bsearch(&key, D->ont, (size_t)D->n_ont, sizeof *D->ont, cmp_ont_id);
}

static int read_ontology(donor *D, gi_err *err)
{
    char path[GI_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/Ontology.csv", D->d.dir);
    static const char *const cols[] = {"id", "acronym", "name", "hemisphere", "structure_id_path"};
    int idx[5], rc;
    size_t cap = 0;
    gi_table t;
    if (prep_open_table(&t, path, cols, 5, idx, err) != 0)
        return -1;
    while ((rc = gi_table_next(&t, err)) == 1) {
        char **f = t.f;
        long line = t.line;
        if (GI_GROW(D->ont, cap, (size_t)D->n_ont + 1)) {
            rc = gi_fail(err, "out of memory");
            break;
        }
        ont_row *o = &D->ont[D->n_ont];
        memset(o, 0, sizeof *o);
        if (prep_parse_long_field(f[idx[0]], &o->id) != 0) {
            rc = gi_fail(err, "%s:%ld: id '%s' is not an integer", path, line, f[idx[0]]);
            break;
        }
        const char *h = f[idx[3]];
        if (strcmp(h, "L") && strcmp(h, "R") && strcmp(h, "B") && h[0]) {
            rc = gi_fail(err, "%s:%ld: hemisphere '%s' is not L, R, B or empty", path, line, h);
            break;
        }
        o->hemi = h[0] ? h[0] : 'B';   /* empty = both (abagen's NaN -> "B") */
        o->cls = class_of_path(f[idx[4]]);
        o->acronym = strdup(f[idx[1]]);
        o->name = strdup(f[idx[2]]);
        D->n_ont++;
        if (!o->acronym || !o->name) {
            rc = gi_fail(err, "out of memory");
            break;
        }
    }
    gi_table_close(&t);
    if (rc < 0)
        return -1;
    /* (found by the ahba fuzz target: a header alone reached qsort with NULL) */
    if (D->n_ont == 0)
        return gi_fail(err, "%s: no structures (a header row, then one row per structure)", path);
    qsort(D->ont, (size_t)D->n_ont, sizeof *D->ont, cmp_ont_id);
    return 0;
}

static int cmp_coord(const void *a, const void *b)
{
    return strcmp(((const coord *)a)->well, ((const coord *)b)->well);
}

void prep_coords_free(coords *C)
{
    for (int i = 0; i < C->n; i++)
        free(C->v[i].well);
    free(C->v);
    memset(C, 0, sizeof *C);
}

int prep_read_coords(coords *C, const char *path, gi_err *err)
{
    static const char *const cols[] = {"well_id", "corrected_mni_x", "corrected_mni_y", "corrected_mni_z"};
    int idx[4], rc;
    size_t cap = 0;
    memset(C, 0, sizeof *C);
    gi_table t;
    if (prep_open_table(&t, path, cols, 4, idx, err) != 0)
        return gi_fail_prefix(err, "prepare.coordinates: ");
    while ((rc = gi_table_next(&t, err)) == 1) {
        char **f = t.f;
        long line = t.line;
        if (GI_GROW(C->v, cap, (size_t)C->n + 1)) {
            rc = gi_fail(err, "out of memory");
            break;
        }
        coord *q = &C->v[C->n];
        for (int k = 0; k < 3; k++)
            if (prep_parse_double_field(f[idx[1 + k]], &q->xyz[k]) != 0) {
                rc = gi_fail(err, "%s:%ld: %s '%s' is not a finite number", path, line,
                             cols[1 + k], f[idx[1 + k]]);
                break;
            }
        if (rc < 0)
            break;
        if (!(q->well = strdup(f[idx[0]]))) {
            rc = gi_fail(err, "out of memory");
            break;
        }
        C->n++;
    }
    gi_table_close(&t);
    if (rc == 0 && C->n == 0)   /* not ignored: SampleAnnot's coordinates would be used without a word */
        rc = gi_fail(err, "prepare.coordinates: %s: no rows", path);
    if (rc < 0) {
        prep_coords_free(C);
        return -1;
    }
    qsort(C->v, (size_t)C->n, sizeof *C->v, cmp_coord);
    return 0;
}

static const coord *find_coord(const coords *C, const char *well)
{
    coord key = {.well = (char *)well};
    return bsearch(&key, C->v, (size_t)C->n, sizeof *C->v, cmp_coord);
}

static int push_sample(donor *D, size_t *cap, const sample *s, gi_err *err)
{
    if (GI_GROW(D->s, *cap, (size_t)D->n + 1))
        return gi_fail(err, "out of memory");
    D->s[D->n] = *s;
    if (!(D->s[D->n].well = strdup(s->well)))
        return gi_fail(err, "out of memory");
    D->n++;
    return 0;
}

/* The structure of the same acronym on the other side (abagen's
 * _mirror_ontology); NULL when the ontology has none. */
static const ont_row *mirror_structure(const donor *D, const ont_row *o)
{
    char want = o->hemi == 'L' ? 'R' : o->hemi == 'R' ? 'L' : 'B';
    for (int i = 0; i < D->n_ont; i++)
        if (D->ont[i].hemi == want && strcmp(D->ont[i].acronym, o->acronym) == 0)
            return &D->ont[i];
    return NULL;
}

static int keeps(const ont_row *o, double x)
{
    return (o->hemi == 'L' && x < 0) || (o->hemi == 'R' && x > 0) || (o->hemi == 'B' && x == 0);
}

int prep_read_samples(prep *P, donor *D, const coords *C, gi_err *err)
{
    if (read_ontology(D, err) != 0)
        return -1;
    char path[GI_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/SampleAnnot.csv", D->d.dir);
    static const char *const cols[] = {"structure_id", "well_id", "mni_x", "mni_y", "mni_z"};
    int idx[5], rc;
    gi_table t;
    if (prep_open_table(&t, path, cols, 5, idx, err) != 0)
        return -1;
    /* All samples of the file first (in file order), then the selection. */
    sample *all = NULL;
    int n_all = 0;
    size_t cap_all = 0;
    while ((rc = gi_table_next(&t, err)) == 1) {
        char **f = t.f;
        long line = t.line;
        if (GI_GROW(all, cap_all, (size_t)n_all + 1)) {
            rc = gi_fail(err, "out of memory");
            break;
        }
        sample *s = &all[n_all];
        memset(s, 0, sizeof *s);
        s->col = n_all;
        if (prep_parse_long_field(f[idx[0]], &s->sid) != 0) {
            rc = gi_fail(err, "%s:%ld: structure_id '%s' is not an integer", path, line, f[idx[0]]);
            break;
        }
        if (!(s->ont = find_ont(D, s->sid))) {
            rc = gi_fail(err, "%s:%ld: structure_id %ld is not in %s/Ontology.csv", path, line,
                         s->sid, D->d.dir);
            break;
        }
        if (!(s->well = strdup(f[idx[1]]))) {
            rc = gi_fail(err, "out of memory");
            break;
        }
        n_all++;
        if (C->n) {
            const coord *q = find_coord(C, s->well);
            if (!q) {
                rc = gi_fail(err, "%s:%ld: well_id %s of donor %s is not in prepare.coordinates "
                             "(%s)", path, line, s->well, D->d.name, P->c->prepare.coordinates);
                break;
            }
            memcpy(s->xyz, q->xyz, sizeof s->xyz);
        } else {
            for (int k = 0; k < 3; k++)
                if (prep_parse_double_field(f[idx[2 + k]], &s->xyz[k]) != 0) {
                    rc = gi_fail(err, "%s:%ld: %s '%s' is not a finite number", path, line,
                                 cols[2 + k], f[idx[2 + k]]);
                    break;
                }
            if (rc < 0)
                break;
        }
    }
    gi_table_close(&t);
    D->n_file = n_all;
    size_t cap = 0;
    if (rc >= 0 && n_all == 0)
        rc = gi_fail(err, "%s: no samples", path);
    /* Originals, then mirror copies (x -> -x, the other side's structure),
     * each kept only if its hemisphere agrees with its x. */
    int mirror = P->c->prepare.lr_mirror;
    for (int pass = 0; pass < 3 && rc >= 0; pass++) {
        if ((pass == 1 && mirror != GI_MIRROR_LEFTRIGHT && mirror != GI_MIRROR_BIDIRECTIONAL) ||
            (pass == 2 && mirror != GI_MIRROR_RIGHTLEFT && mirror != GI_MIRROR_BIDIRECTIONAL))
            continue;
        for (int i = 0; i < n_all && rc >= 0; i++) {
            sample s = all[i];
            if (pass > 0) {
                if ((pass == 1 && !(s.xyz[0] < 0)) || (pass == 2 && !(s.xyz[0] > 0)))
                    continue;
                const ont_row *m = mirror_structure(D, s.ont);
                if (!m) {
                    D->n_mirror_unmatched++;
                    continue;
                }
                s.ont = m;
                s.sid = m->id;
                s.xyz[0] = -s.xyz[0];
                D->n_mirrored++;
            }
            if (!keeps(s.ont, s.xyz[0])) {
                D->n_mismatch++;
                continue;
            }
            rc = push_sample(D, &cap, &s, err);
        }
    }
    for (int i = 0; i < n_all; i++)
        free(all[i].well);
    free(all);
    if (rc < 0)
        return -1;
    if (D->n == 0)
        return gi_fail(err, "donor %s: none of its %d samples has a hemisphere that agrees with "
                       "its x coordinate", D->d.name, D->n_file);
    return 0;
}

