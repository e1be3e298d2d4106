/* ahba.h - the Allen Human Brain Atlas as the Allen Institute publishes it.
 *
 * A data folder holds one normalized_microarray_donor<ID>/ folder per donor,
 * each with five comma-separated files (strings double-quoted, RFC 4180):
 *   MicroarrayExpression.csv  no header; probe_id, then one log2 value per
 *                             sample (column j+1 = row j of SampleAnnot)
 *   PACall.csv                no header; same layout, 0/1 present calls
 *   Probes.csv                probe_id,probe_name,gene_id,gene_symbol,gene_name,
 *                             entrez_id,chromosome (the same for every donor)
 *   SampleAnnot.csv           structure_id,slab_num,well_id,slab_type,
 *                             structure_acronym,structure_name,polygon_id,
 *                             mri_voxel_x/y/z,mni_x/y/z
 *   Ontology.csv              id,acronym,name,parent_structure_id,hemisphere,
 *                             graph_order,structure_id_path,color_hex_triplet
 * The two matrices are ~450 MB of text per donor: they are read by
 * gi_ahba_read_matrix, which streams the file and keeps only chosen rows and
 * columns, never the text.
 */
#ifndef GENEINR_AHBA_H
#define GENEINR_AHBA_H

#include <stdint.h>

#include "geneinr/error.h"

/* The Allen Institute's name (H0351.2001 ...) of an AHBA donor given by its
 * numeric id (9861 ...) or by that name; NULL for any other text. */
const char *gi_ahba_donor_name(const char *id_or_name);

/* The numeric id (9861 ...) of an AHBA donor given by id or name; -1 if unknown. */
long gi_ahba_donor_id(const char *id_or_name);

/* One donor folder of a data folder. */
typedef struct gi_ahba_donor {
    long id;                 /* 9861 ... */
    char name[32];           /* H0351.2001 ..., or the id as text for other donors */
    char *dir;               /* data_dir/normalized_microarray_donor<id> */
} gi_ahba_donor;

/* The donor folders of data_dir, in numeric order of their ids (abagen's
 * order). Errors: data_dir unreadable, no donor folders. */
int gi_ahba_find_donors(const char *data_dir, gi_ahba_donor **donors, int *n, gi_err *err);
void gi_ahba_free_donors(gi_ahba_donor *donors, int n);

/* Called for each row of a matrix file: probe is the row's probe_id (its
 * text), v[0..n_cols) the row's values. Return 0 to go on, -1 to stop with
 * err filled. */
typedef int (*gi_ahba_row_fn)(void *ctx, long line, const char *probe, const double *v,
                              int n_cols, gi_err *err);

/* Stream MicroarrayExpression.csv or PACall.csv (plain or .gz): every row
 * must hold a probe id and exactly n_cols numbers (n_cols = the rows of the
 * donor's SampleAnnot.csv); an error names path:line. *bytes gets the size
 * of the text read, *rows the rows (both may be NULL). Numbers are parsed
 * exactly (correctly rounded, as strtod) by a fast path for up to 19
 * significant digits and strtod otherwise. */
int gi_ahba_read_matrix(const char *path, int n_cols, gi_ahba_row_fn fn, void *ctx,
                        long *rows, double *bytes, gi_err *err);

#endif
