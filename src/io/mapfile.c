/* mapfile.c - a user's brain map (see mapfile.h). */
#include "geneinr/mapfile.h"

#include <math.h>
#include <string.h>

#include <nifti2_io.h>

int gi_map_read(gi_map *m, const char *path, gi_err *err)
{
    memset(m, 0, sizeof *m);
    if (gi_volume_read(&m->vol, path, 1, err) != 0)
        return -1;
    if (gi_affine_invert(m->vol.affine, m->inv) != 0) {
        gi_volume_free(&m->vol);
        return gi_fail(err, "%s: its affine is singular", path);
    }
    const nifti_image *h = m->vol.hdr;
    switch (h ? h->datatype : 0) {
    case NIFTI_TYPE_UINT8: case NIFTI_TYPE_INT8: case NIFTI_TYPE_INT16: case NIFTI_TYPE_UINT16:
    case NIFTI_TYPE_INT32: case NIFTI_TYPE_UINT32: case NIFTI_TYPE_INT64: case NIFTI_TYPE_UINT64:
        /* scaled integers are continuous values stored compactly */
        m->is_integer = h->scl_slope == 0 || (h->scl_slope == 1 && h->scl_inter == 0);
        break;
    default:
        m->is_integer = 0;
    }
    return 0;
}

double gi_map_sample(const gi_map *m, const double p[3])
{
    double v[3];
    gi_affine_apply(m->inv, p[0], p[1], p[2], v);
    const gi_volume *g = &m->vol;
    if (m->is_integer) {
        long i = (long)floor(v[0] + 0.5), j = (long)floor(v[1] + 0.5), k = (long)floor(v[2] + 0.5);
        if (i < 0 || j < 0 || k < 0 || i >= g->nx || j >= g->ny || k >= g->nz)
            return NAN;
        return g->data[(k * g->ny + j) * g->nx + i];
    }
    long i0 = (long)floor(v[0]), j0 = (long)floor(v[1]), k0 = (long)floor(v[2]);
    double fx = v[0] - (double)i0, fy = v[1] - (double)j0, fz = v[2] - (double)k0;
    double num = 0, den = 0;
    for (int c = 0; c < 8; c++) {
        long i = i0 + (c & 1), j = j0 + ((c >> 1) & 1), k = k0 + ((c >> 2) & 1);
        double w = ((c & 1) ? fx : 1 - fx) * (((c >> 1) & 1) ? fy : 1 - fy) * (((c >> 2) & 1) ? fz : 1 - fz);
        if (w <= 0 || i < 0 || j < 0 || k < 0 || i >= g->nx || j >= g->ny || k >= g->nz)
            continue;
        float x = g->data[(k * g->ny + j) * g->nx + i];
        if (!isfinite(x))
            continue;
        num += w * x;
        den += w;
    }
    return den >= 0.5 ? num / den : NAN;
}

void gi_map_free(gi_map *m)
{
    gi_volume_free(&m->vol);
    memset(m, 0, sizeof *m);
}
