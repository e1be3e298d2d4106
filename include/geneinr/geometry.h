/* geometry.h - do the samples, the mask and the anatomy lie in one space?
 *
 * A mask or label image on the wrong affine (identity instead of MNI, another
 * template) trains and renders without an error: the samples simply miss it
 * (94% outside for an identity affine on the phantom). Before any training,
 * the samples' MNI coordinates are looked up in render.mask (nearest voxel)
 * and their anatomy labels are counted after label matching (label_match.h,
 * so data.anatomy_tolerance counts): above data.max_outside of the samples
 * outside either, the command refuses when that image also lies away from the
 * samples (GI_GEOMETRY_MAX_FAR); above half of it, it warns. The mask's
 * and the label image's foregrounds are also compared (their centres in MNI
 * mm): far apart, the two images are not in one space.
 *
 * Reference figures: the phantoms leave ~18% of samples outside the labels at
 * tolerance 0; the real AHBA coordinates on the Desikan-Killiany image 42% at
 * tolerance 0 and 9% (326 of 3,702) at 5 mm, so the default 0.5 refuses none
 * of them and warns for the real data at tolerance 0.
 */
#ifndef GENEINR_GEOMETRY_H
#define GENEINR_GEOMETRY_H

#include <stdio.h>

#include "geneinr/config.h"
#include "geneinr/error.h"
#include "geneinr/label_match.h"
#include "geneinr/samples.h"

typedef struct gi_geometry {
    int n;                   /* samples */
    int mask_checked;        /* render.mask was set and read */
    int outside_mask;        /* samples off the mask's non-zero voxels */
    double mask_far;         /* fraction of the mask over GI_GEOMETRY_FAR_MM from every sample
                              * (-1: not measured: few samples outside) */
    int anatomy_checked;     /* a match summary was given */
    int unlabelled;          /* samples without a label after matching */
    double labels_far;       /* fraction of the labelled voxels over GI_GEOMETRY_FAR_MM from every
                              * sample (-1: not measured: few samples unlabelled) */
    double centre_gap_mm;    /* distance between the mask's and the labels' centres (-1: not compared) */
    char mask_unread[2048];   /* why render.mask could not be read when it was not needed ("" = read) */
} gi_geometry;

/* A mask (label image) with many samples outside it (unlabelled) is refused
 * only when it also lies away from the samples: more than GI_GEOMETRY_MAX_FAR
 * of its non-zero voxels over GI_GEOMETRY_FAR_MM from every sample. A
 * region-of-interest mask (a slab, a structure) or a parcellation of part of
 * the brain (cortex only, at a strict tolerance) lies among the samples and
 * is let through with a note or a warning. Measured
 * on the 2 mm phantom (3,702 samples): the MNI brain mask 4% far (18% of
 * samples outside), a 12-slice slab of it 5% (81% outside), the mask shifted
 * 20 mm 5% (46% outside), the mask on an identity affine 45% (98.5% outside). */
#define GI_GEOMETRY_FAR_MM 15.0
#define GI_GEOMETRY_MAX_FAR 0.25

/* Above this distance (mm) between the centres of the mask's and the label
 * image's foregrounds they are taken to be in different spaces (a warning):
 * a whole-brain mask and a cortical parcellation of one template lie within a
 * few mm; an identity affine moves an MNI image by ~100 mm. */
#define GI_GEOMETRY_MAX_GAP_MM 30.0

/* Count and judge. match: the samples' label matching (NULL without
 * data.anatomy). Reads render.mask (when set; mask_needed 0: a mask that
 * cannot be read is only noted, for eval, which renders nothing) and
 * data.anatomy (for the centres). -1 with a message when an image cannot be read or more than
 * data.max_outside of the samples are outside. */
int gi_geometry_check(const gi_config *c, const gi_samples *s, const gi_match_summary *match, int mask_needed,
                      gi_geometry *g, gi_err *err);

/* The warnings (none when all is well), each line starting with prefix. */
void gi_geometry_warn(FILE *f, const gi_geometry *g, const gi_config *c, const char *prefix);

#endif
