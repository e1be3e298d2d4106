/* phantom.h - the embedded default dataset: synthetic AHBA-like data with known truth.
 *
 * Deterministic from a seed, no external files. Writes into a folder:
 *   samples.csv     the sample table (samples.h layout), ~3,700 samples in 6
 *                   donors (donors 1-2 both hemispheres, 3-6 left only, as in
 *                   AHBA), per-donor offsets and scales, measurement noise, a
 *                   few unmeasured values.
 *   mask.nii.gz     brain-shaped uint8 mask on the MNI152 1 mm grid
 *                   (182 x 218 x 182, the usual MNI152 affine, sform/qform code 4).
 *   anatomy.nii.gz  uint8 labels on the same grid (0 outside; regions inside),
 *                   usable as data.anatomy.
 *   truth.h5        the true maps in the atlas layout (atlas.h, kind "truth"):
 *                   donor-average expression without noise.
 *   README.txt      what each file holds and how the truth was made.
 * True maps mix smooth gradients, regional (piecewise-by-label) structure and
 * fine detail, correlated across genes.
 */
#ifndef GENEINR_PHANTOM_H
#define GENEINR_PHANTOM_H

#include <stdint.h>

#include "geneinr/error.h"

typedef struct gi_phantom_spec {
    uint64_t seed;          /* default 1 */
    int n_genes;            /* default 12 */
    double noise;           /* measurement-noise std relative to each gene's spatial std, default 0.3 */
    double missing;         /* fraction of values left unmeasured, default 0.02 */
    int grid_step;          /* 1 = MNI152 1 mm grid (default); 2 = 2 mm grid (91 x 109 x 91), for fast tests */
} gi_phantom_spec;

void gi_phantom_defaults(gi_phantom_spec *s);

/* Create dir if needed and write the files above. Single process. */
int gi_phantom_write(const char *dir, const gi_phantom_spec *s, gi_err *err);

#endif
