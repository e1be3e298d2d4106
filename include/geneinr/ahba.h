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

#endif
