/* label_match.h - which anatomy label each tissue sample belongs to.
 *
 * One job: give every sample of a table a label index of the anatomy image
 * (anatomy.h: 0 = none, 1.. = the image's labels in ascending order), and say
 * how it got it. Render voxels never come here: a voxel is its own label.
 *
 * The rule (data.anatomy_tolerance T mm, data.anatomy_labels table):
 *  1. The sample's own voxel: the voxel whose centre is nearest its MNI point
 *     (continuous voxel index through the inverse affine, rounded; the rule
 *     geneinr always used). A labelled voxel whose label is allowed (below)
 *     is a match "by voxel".
 *  2. Otherwise (own voxel unlabelled, outside the image, or its label not
 *     allowed) and T > 0: the nearest allowed labelled voxel whose centre lies
 *     within T mm of the sample, distance = Euclidean mm between the sample's
 *     point and the voxel centre through the image affine (any orientation and
 *     voxel size). A match "by distance".
 *     Ties (several labels at the same distance within 1e-6 mm): the label
 *     whose centroid (mean voxel centre, mm) is nearest the sample, then the
 *     lowest label value.
 *  3. Otherwise index 0 ("not at all"), as for a sample outside the image.
 * T = 0 is exactly the voxel rule (plus the class constraint when a label
 * table is given).
 *
 * Class and hemisphere (abagen's _check_label): with a label table (abagen's
 * id,label,hemisphere,structure CSV) and a sample table carrying the
 * `class` and `hemisphere` annotation columns (`geneinr prepare` writes them),
 * a sample may take only labels of its own structure class; a label of
 * hemisphere L or R must also be on the sample's hemisphere, a label of
 * hemisphere B is compared on structure only. A sample with an empty class or
 * hemisphere is unconstrained.
 *
 * Difference from abagen (matching.py, _match_volume / _assign_sample): abagen
 * grows the search radius 1 mm at a time up to its tolerance and takes the
 * most frequent label among the voxels of the first radius that finds any; we
 * take the label of the single nearest voxel centre (ties as above). Both
 * agree whenever one label is nearest; ours is a pure function of geometry,
 * independent of how the rings are cut.
 *
 * Search: brute force over the box of voxels that can lie within T mm
 * (T <= 50 mm), through a precomputed index volume. Deterministic; every rank
 * matches all samples the same way, so no communication is needed.
 */
#ifndef GENEINR_LABEL_MATCH_H
#define GENEINR_LABEL_MATCH_H

#include <stdio.h>

#include "geneinr/anatomy.h"
#include "geneinr/config.h"
#include "geneinr/error.h"
#include "geneinr/samples.h"

enum { GI_MATCH_NONE = 0, GI_MATCH_VOXEL = 1, GI_MATCH_DISTANCE = 2 };

/* abagen's label table: what each label value of the image is. */
typedef struct gi_label_table {
    int n;
    int *id;                 /* [n] label value */
    char *hemi;              /* [n] 'L', 'R' or 'B' */
    char **structure;        /* [n] cortex, subcortex/brainstem, cerebellum, white matter, other */
} gi_label_table;

/* Read and check an abagen label table (columns id, hemisphere, structure by
 * name; others ignored). Errors name path:line. */
int gi_label_table_read(gi_label_table *t, const char *path, gi_err *err);
void gi_label_table_free(gi_label_table *t);

/* What matching did, for the log, report and eval outputs. */
typedef struct gi_match_summary {
    int n;                   /* samples */
    int by_voxel, by_distance, none;
    double median_mm, max_mm; /* of the by-distance matches (0 when none) */
    double tolerance_mm;
    int class_rule;          /* 0 = no label table, 1 = applied, 2 = table given but the sample table
                              * has no class/hemisphere columns (not applied) */
    int constrained;         /* samples with a class and hemisphere (class_rule 1) */
    int table_unused;        /* ids of the label table not in the image (ignored) */
} gi_match_summary;

typedef struct gi_label_match {
    int n;
    int *label;              /* [n] label index (anatomy.h), 0 = not matched */
    unsigned char *how;      /* [n] GI_MATCH_* */
    float *dist_mm;          /* [n] 0 by voxel, the distance by distance, NAN not matched */
    gi_match_summary sum;
} gi_label_match;

/* Match n points. cls / hemi: per-sample text (NULL = no constraint for any
 * sample; an empty string = that sample unconstrained). table: required when
 * cls is given; every label value of the image must be in it. */
int gi_label_match_points(gi_label_match *m, const gi_anatomy *a, int n, const float *mni, const char *const *cls,
                          const char *const *hemi, const gi_label_table *table, double tolerance_mm, gi_err *err);

/* The label table data.anatomy_labels names: the path itself, or with "auto" the CSV beside
 * data.anatomy (its name with .nii.gz / .nii replaced by .csv) when that file exists. Writes the
 * path into out (n bytes) and returns 1, or returns 0 with out = "" when there is none. */
int gi_label_table_path(const gi_config *c, char *out, size_t n);

/* Match the samples of a table by the config's data.anatomy_tolerance and
 * data.anatomy_labels (read here), against the loaded anatomy image. */
int gi_label_match_samples(gi_label_match *m, const gi_anatomy *a, const gi_samples *s, const gi_config *c,
                           gi_err *err);

/* The one-line summary (plus one line when the class rule cannot apply),
 * each line starting with prefix ("anatomy: "). */
void gi_match_summary_print(FILE *f, const gi_match_summary *s, const char *prefix);

/* The summary as a JSON object (no trailing newline). */
void gi_match_summary_json(FILE *f, const gi_match_summary *s);

/* Write the summary as a JSON file (path). */
int gi_match_summary_write(const char *path, const gi_match_summary *s, gi_err *err);

void gi_label_match_free(gi_label_match *m);

#endif
