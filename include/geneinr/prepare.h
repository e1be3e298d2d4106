/* prepare.h - `geneinr prepare`: the AHBA donor folders -> the sample table,
 * as abagen's default sample-level pipeline computes it.
 *
 * Steps (docs: ../shared/docs/AHBA-PIPELINE.md, README "Preparing AHBA"):
 *  1. probes: reannotate (prepare.reannotation) or Probes.csv's own symbols;
 *     drop probes without an Entrez id;
 *  2. samples: corrected MNI coordinates (prepare.coordinates), structure
 *     class and hemisphere from the ontology, optional left/right mirroring,
 *     hemisphere-mismatch drop;
 *  3. intensity-based filter over the kept samples of all donors;
 *  4. one probe per gene (prepare.probe_selection);
 *  5. scaled robust sigmoid across genes within each sample, then within
 *     each donor for each gene (optionally fitted on training samples only);
 *  6. OUT/samples.csv (samples.h layout) and OUT/report.json.
 * The two large files of each donor are streamed (ahba.h) by a pool of
 * prepare.threads threads; only the kept samples of the probes with an
 * Entrez id are held, as floats (~680 MB for the whole release).
 */
#ifndef GENEINR_PREPARE_H
#define GENEINR_PREPARE_H

#include <mpi.h>
#include <stdio.h>

#include "geneinr/config.h"
#include "geneinr/error.h"

/* Run the pipeline with c->prepare.* (and train.* for norm_train_only),
 * writing out_dir/samples.csv and out_dir/report.json (out_dir must exist).
 * Progress and the summary go to log (may be NULL). */
int gi_prepare_run(const gi_config *c, const char *out_dir, FILE *log, gi_err *err);

/* Scaled robust sigmoid of v[0..n) in place (abagen's srs): median, quartiles
 * by linear interpolation, s = IQR / 1.3489795003921634, logistic, then
 * min-max to [0, 1]. When fit is not NULL, the median, quartiles, min and max
 * come from the entries with fit[i] != 0 only. tmp holds n doubles. */
void gi_srs(double *v, int n, const unsigned char *fit, double *tmp);

#endif
