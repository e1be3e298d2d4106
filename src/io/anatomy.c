/* anatomy.c - label image lookup for the anatomical input (see anatomy.h). */
#include "geneinr/anatomy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Distinct non-zero integer values of the image, ascending, with 0 first. */
static int distinct_labels(const gi_volume *v, const char *path, int **out, int *n_out, gi_err *err)
{
    size_t nvox = (size_t)v->nx * v->ny * v->nz;
    int cap = 64, n = 1;
    int *vals = malloc(sizeof *vals * cap);
    if (!vals)
        return gi_fail(err, "%s: out of memory", path);
    vals[0] = 0;
    int last = 0; /* labels repeat in runs: skip the search for the common case */
    for (size_t i = 0; i < nvox; i++) {
        float f = v->data[i];
        if (!isfinite(f) || f != floorf(f) || fabsf(f) > 1e9f) {
            free(vals);
            return gi_fail(err, "%s: voxel %zu holds %g; an anatomy image must hold integer labels", path, i, f);
        }
        int lab = (int)f;
        if (lab == 0 || lab == last)
            continue;
        last = lab;
        int found = 0;
        for (int k = 1; k < n; k++)
            if (vals[k] == lab) { found = 1; break; }
        if (found)
            continue;
        if (n == 4096) {
            free(vals);
            return gi_fail(err, "%s: more than 4095 distinct labels; is this a label image?", path);
        }
        if (n == cap) {
            cap *= 2;
            int *nv = realloc(vals, sizeof *vals * cap);
            if (!nv) { free(vals); return gi_fail(err, "%s: out of memory", path); }
            vals = nv;
        }
        vals[n++] = lab;
    }
    qsort(vals + 1, (size_t)n - 1, sizeof *vals, cmp_int);
    *out = vals;
    *n_out = n;
    return 0;
}

int gi_anatomy_load(gi_anatomy *a, const char *path, const int *values, int n, gi_err *err)
{
    memset(a, 0, sizeof *a);
    if (gi_volume_read(&a->vol, path, 1, err) != 0)
        return gi_fail_prefix(err, "anatomy image");
    if (gi_affine_invert(a->vol.affine, a->inv) != 0) {
        gi_anatomy_free(a);
        return gi_fail(err, "%s: the voxel-to-world affine is singular", path);
    }
    if (values) {
        if (n < 1 || values[0] != 0) {
            gi_anatomy_free(a);
            return gi_fail(err, "%s: label list must start with 0", path);
        }
        a->values = malloc(sizeof *a->values * n);
        if (!a->values) { gi_anatomy_free(a); return gi_fail(err, "out of memory"); }
        memcpy(a->values, values, sizeof *values * n);
        a->n_labels = n;
    } else if (distinct_labels(&a->vol, path, &a->values, &a->n_labels, err) != 0) {
        gi_anatomy_free(a);
        return -1;
    }
    return 0;
}

int gi_anatomy_index_at(const gi_anatomy *a, double x, double y, double z)
{
    double ijk[3];
    gi_affine_apply(a->inv, x, y, z, ijk);
    long i = lround(ijk[0]), j = lround(ijk[1]), k = lround(ijk[2]);
    if (i < 0 || j < 0 || k < 0 || i >= a->vol.nx || j >= a->vol.ny || k >= a->vol.nz)
        return 0;
    float f = a->vol.data[((size_t)k * a->vol.ny + j) * a->vol.nx + i];
    if (!isfinite(f))
        return 0;
    return gi_anatomy_index_of_value(a, (int)lrintf(f));
}

int gi_anatomy_index_of_value(const gi_anatomy *a, int value)
{
    if (value == 0)
        return 0;
    int lo = 1, hi = a->n_labels - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (a->values[mid] == value)
            return mid;
        if (a->values[mid] < value)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

void gi_anatomy_free(gi_anatomy *a)
{
    gi_volume_free(&a->vol);
    free(a->values);
    memset(a, 0, sizeof *a);
}
