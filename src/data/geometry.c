/* geometry.c - samples against the mask and the labels (see geometry.h). */
#include "geneinr/geometry.h"

#include <math.h>
#include <string.h>

#include "geneinr/nifti.h"

/* Is MNI point p on a non-zero voxel of v (nearest voxel centre)? */
static int on_foreground(const gi_volume *v, const double inv[16], const float *p)
{
    double ijk[3];
    gi_affine_apply(inv, p[0], p[1], p[2], ijk);
    double i = floor(ijk[0] + 0.5), j = floor(ijk[1] + 0.5), k = floor(ijk[2] + 0.5);
    if (!(i >= 0 && j >= 0 && k >= 0 && i < v->nx && j < v->ny && k < v->nz))
        return 0;
    float x = v->data[((size_t)k * v->ny + (size_t)j) * v->nx + (size_t)i];
    return x != 0 && !isnan(x);
}

/* Centre (MNI mm) of the non-zero voxels; 0, or -1 when there are none. */
static int foreground_centre(const gi_volume *v, double out[3])
{
    double sum[3] = { 0, 0, 0 };
    size_t n = 0;
    for (int k = 0; k < v->nz; k++)
        for (int j = 0; j < v->ny; j++)
            for (int i = 0; i < v->nx; i++) {
                float x = v->data[((size_t)k * v->ny + j) * v->nx + i];
                if (x == 0 || isnan(x))
                    continue;
                double p[3];
                gi_affine_apply(v->affine, i, j, k, p);
                for (int a = 0; a < 3; a++)
                    sum[a] += p[a];
                n++;
            }
    if (n == 0)
        return -1;
    for (int a = 0; a < 3; a++)
        out[a] = sum[a] / (double)n;
    return 0;
}

/* Append which key named the file to the message in err. */
static int with_key(gi_err *err, const char *what)
{
    char m[sizeof err->msg];
    snprintf(m, sizeof m, "%s", err->msg);
    return gi_fail(err, "%s (%s)", m, what);
}

/* Fraction of the mask's foreground (every step-th in-mask voxel, at most
 * ~20,000 of them) farther than GI_GEOMETRY_FAR_MM from every sample. */
static double far_from_samples(const gi_volume *v, const gi_samples *s)
{
    size_t nvox = (size_t)v->nx * v->ny * v->nz, inside = 0;
    for (size_t q = 0; q < nvox; q++)
        inside += v->data[q] != 0 && !isnan(v->data[q]);
    if (inside == 0 || s->n == 0)
        return 0;
    size_t step = inside / 20000 + 1, seen = 0, tried = 0, far = 0;
    double r2 = GI_GEOMETRY_FAR_MM * GI_GEOMETRY_FAR_MM;
    for (size_t q = 0; q < nvox; q++) {
        if (v->data[q] == 0 || isnan(v->data[q]) || seen++ % step != 0)
            continue;
        double p[3];
        gi_affine_apply(v->affine, (double)(q % v->nx), (double)(q / v->nx % v->ny), (double)(q / v->nx / v->ny), p);
        int near = 0;
        for (int i = 0; i < s->n && !near; i++) {
            double dx = s->mni[3 * i] - p[0], dy = s->mni[3 * i + 1] - p[1], dz = s->mni[3 * i + 2] - p[2];
            near = dx * dx + dy * dy + dz * dz <= r2;
        }
        far += !near;
        tried++;
    }
    return tried ? (double)far / (double)tried : 0;
}

static double pct(int k, int n) { return n > 0 ? 100.0 * k / n : 0; }

int gi_geometry_check(const gi_config *c, const gi_samples *s, const gi_match_summary *match, int mask_needed,
                      gi_geometry *g, gi_err *err)
{
    memset(g, 0, sizeof *g);
    g->mask_far = g->labels_far = -1;
    g->n = s->n;
    g->centre_gap_mm = -1;
    gi_volume mask, labels;
    memset(&mask, 0, sizeof mask);
    memset(&labels, 0, sizeof labels);
    int rc = 0;
    if (c->render.mask[0]) {
        /* Read now, not after training: a bad mask must not cost a training. */
        if (gi_volume_read(&mask, c->render.mask, 1, err) != 0) {
            if (mask_needed)
                return with_key(err, "render.mask: read before training, since the render needs it");
            snprintf(g->mask_unread, sizeof g->mask_unread, "%s", err->msg);
        }
    }
    if (c->render.mask[0] && !g->mask_unread[0]) {
        double inv[16];
        if (gi_affine_invert(mask.affine, inv) != 0) {
            gi_volume_free(&mask);
            return gi_fail(err, "%s (render.mask): the affine is singular", c->render.mask);
        }
        g->mask_checked = 1;
        for (int i = 0; i < s->n; i++)
            g->outside_mask += !on_foreground(&mask, inv, &s->mni[3 * i]);
        /* Many samples outside: a region-of-interest mask (inside the
         * samples' cloud) or a mask in another space (mostly away from it)? */
        g->mask_far = -1;
        if (s->n > 0 && (double)g->outside_mask > c->data.max_outside / 2 * s->n)
            g->mask_far = far_from_samples(&mask, s);
    }
    if (match && match->n > 0) {
        g->anatomy_checked = 1;
        g->unlabelled = match->none;
    }
    int many_unlabelled = g->anatomy_checked && s->n > 0 && (double)g->unlabelled > c->data.max_outside / 2 * s->n;
    if (c->data.anatomy[0] && (g->mask_checked || many_unlabelled)) {
        double cm[3], ca[3];
        if (gi_volume_read(&labels, c->data.anatomy, 1, err) != 0) {
            rc = with_key(err, "data.anatomy");
        } else {
            if (g->mask_checked && foreground_centre(&mask, cm) == 0 && foreground_centre(&labels, ca) == 0)
                g->centre_gap_mm = sqrt((cm[0] - ca[0]) * (cm[0] - ca[0]) + (cm[1] - ca[1]) * (cm[1] - ca[1]) +
                                        (cm[2] - ca[2]) * (cm[2] - ca[2]));
            /* Many samples unlabelled: a parcellation of part of the brain
             * (cortex only) at a strict tolerance, or an image in another space? */
            if (many_unlabelled)
                g->labels_far = far_from_samples(&labels, s);
        }
    }
    gi_volume_free(&mask);
    gi_volume_free(&labels);
    if (rc != 0)
        return -1;
    double limit = c->data.max_outside;
    if (g->mask_checked && g->n > 0 && (double)g->outside_mask > limit * g->n && g->mask_far > GI_GEOMETRY_MAX_FAR)
        return gi_fail(err, "%s (render.mask): %d of %d samples (%.1f%%) lie outside the mask, more than "
                       "data.max_outside (%g) allows, and %.0f%% of the mask lies over %.0f mm from every sample: "
                       "is the mask's affine in MNI mm (`geneinr info` shows it) and are the sample coordinates MNI "
                       "mm? Fix the image, or raise data.max_outside (1 = never refuse)", c->render.mask,
                       g->outside_mask, g->n, pct(g->outside_mask, g->n), limit, 100 * g->mask_far,
                       GI_GEOMETRY_FAR_MM);
    if (g->anatomy_checked && g->n > 0 && (double)g->unlabelled > limit * g->n && g->labels_far > GI_GEOMETRY_MAX_FAR)
        return gi_fail(err, "%s (data.anatomy): %d of %d samples (%.1f%%) get no label (data.anatomy_tolerance %g "
                       "mm), more than data.max_outside (%g) allows, and %.0f%% of its labelled voxels lie over %.0f "
                       "mm from every sample: is the label image's affine in MNI mm (`geneinr info` shows it)? Fix "
                       "the image, or raise data.anatomy_tolerance or data.max_outside (1 = never refuse)",
                       c->data.anatomy, g->unlabelled, g->n, pct(g->unlabelled, g->n),
                       (double)c->data.anatomy_tolerance, limit, 100 * g->labels_far, GI_GEOMETRY_FAR_MM);
    return 0;
}

void gi_geometry_warn(FILE *f, const gi_geometry *g, const gi_config *c, const char *prefix)
{
    if (g->mask_unread[0])
        fprintf(f, "%snote: render.mask not checked: %s\n", prefix, g->mask_unread);
    double half = c->data.max_outside / 2;
    if (g->mask_checked && g->n > 0 && (double)g->outside_mask > half * g->n) {
        if (g->mask_far >= 0 && g->mask_far <= GI_GEOMETRY_MAX_FAR)
            fprintf(f, "%snote: %d of %d samples (%.1f%%) lie outside render.mask %s, which lies among them (a "
                    "region-of-interest mask, or samples outside the brain)\n", prefix, g->outside_mask, g->n,
                    pct(g->outside_mask, g->n), c->render.mask);
        else
            fprintf(f, "%swarning: %d of %d samples (%.1f%%) lie outside render.mask %s: is its affine in MNI mm? "
                    "(refused above data.max_outside = %g)\n", prefix, g->outside_mask, g->n,
                    pct(g->outside_mask, g->n), c->render.mask, c->data.max_outside);
    }
    if (g->anatomy_checked && g->n > 0 && (double)g->unlabelled > half * g->n) {
        if (g->labels_far >= 0 && g->labels_far <= GI_GEOMETRY_MAX_FAR)
            fprintf(f, "%swarning: %d of %d samples (%.1f%%) get no anatomy label at data.anatomy_tolerance %g mm; "
                    "the labels of %s lie among the samples (a parcellation of part of the brain): a larger "
                    "tolerance lets more samples take the label of their tissue\n", prefix, g->unlabelled, g->n,
                    pct(g->unlabelled, g->n), (double)c->data.anatomy_tolerance, c->data.anatomy);
        else
            fprintf(f, "%swarning: %d of %d samples (%.1f%%) get no anatomy label at data.anatomy_tolerance %g mm: "
                    "is the affine of %s in MNI mm, or is the tolerance too small? (refused above "
                    "data.max_outside = %g)\n", prefix, g->unlabelled, g->n, pct(g->unlabelled, g->n),
                    (double)c->data.anatomy_tolerance, c->data.anatomy, c->data.max_outside);
    }
    if (g->centre_gap_mm > GI_GEOMETRY_MAX_GAP_MM)
        fprintf(f, "%swarning: render.mask %s and data.anatomy %s are centred %.0f mm apart: are both in MNI "
                "space (affines)?\n", prefix, c->render.mask, c->data.anatomy, g->centre_gap_mm);
}
