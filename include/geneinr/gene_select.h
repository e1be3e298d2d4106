/* gene_select.h - the genes a whole-transcriptome run trains its trunk on
 * (data.trunk_genes; `geneinr run` then extends the model to every gene).
 *
 * The rule: the n genes of the table with the largest variance across its
 * measured samples (table units), ties to the earlier column; written in the
 * table's column order as a data.genes list. Why variance: a gene that barely
 * varies has little spatial pattern for the shared trunk to learn, and its
 * noise dominates it; the rest are extended onto the trunk from the patterns
 * the varied ones taught it (docs/ACCURACY.md "New genes (extend)": with 50
 * or more of 100 genes in the trunk extension matches joint training).
 */
#ifndef GENEINR_GENE_SELECT_H
#define GENEINR_GENE_SELECT_H

#include "geneinr/error.h"

/* Reads the sample table `samples` (its genes as data.genes `genes_path`
 * selects, "" = all), picks n of them by the rule above and writes their
 * names to out_path, one a line. *n_total: the table's genes. n >= the table's
 * genes is refused (nothing would be extended: set data.trunk_genes 0). */
int gi_select_trunk_genes(const char *samples, const char *genes_path, int n, const char *out_path, int *n_total,
                          gi_err *err);

#endif
