/* anatomy.h - the anatomical input: a label NIfTI looked up at MNI points.
 *
 * Labels (integer voxel values of a tissue or parcellation image) are mapped
 * to compact indices for the model's label embedding: index 0 is "outside the
 * image or label 0", indices 1.. are the image's non-zero label values in
 * ascending order. The value list is stored in the checkpoint so that a
 * rendered grid maps labels exactly as training did; values unknown to the
 * list map to 0.
 */
#ifndef GENEINR_ANATOMY_H
#define GENEINR_ANATOMY_H

#include "geneinr/error.h"
#include "geneinr/nifti.h"

typedef struct gi_anatomy {
    gi_volume vol;
    double inv[16];         /* MNI mm -> voxel */
    int n_labels;           /* including index 0 */
    int *values;            /* [n_labels] label value of each index; values[0] = 0 */
} gi_anatomy;

/* Read the label image. values == NULL: derive the list from the image;
 * otherwise use the given list (n values, values[0] = 0, ascending). */
int gi_anatomy_load(gi_anatomy *a, const char *path, const int *values, int n, gi_err *err);

/* Index of a label value (0 for 0 and for values not in the list). */
int gi_anatomy_index_of_value(const gi_anatomy *a, int value);

/* Label index at MNI millimetres (nearest voxel). */
int gi_anatomy_index_at(const gi_anatomy *a, double x, double y, double z);

void gi_anatomy_free(gi_anatomy *a);

#endif
