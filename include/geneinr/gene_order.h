/* gene_order.h - the spectral gene ordering (the paper's gene code), dense
 * and without O(genes^2) memory.
 *
 * gi_gene_spectral_positions builds the dense gene-gene correlation
 * matrix: exact, fine for hundreds of genes, 9.7 GB at 15,600. This computes
 * the same positions matrix-free (Lanczos on the normalised affinity; see
 * gene_order.c), in O(n G + k G) memory. Equal to the dense result when no
 * value is missing; with missing values r is the mean-imputed correlation.
 * Training uses it above GI_GENE_ORDER_DENSE_MAX genes, on rank 0 only.
 */
#ifndef GENEINR_GENE_ORDER_H
#define GENEINR_GENE_ORDER_H

#include "geneinr/error.h"

/* 1-D spectral ordering of genes (the paper's gene code): positions in [0, 1]
 * from the Fiedler vector of the normalised Laplacian of the gene affinity
 * (1 + r) / 2, r = Pearson correlation over samples where both genes are
 * measured. values: [n][n_genes], NaN = missing. Deterministic sign: gene 0
 * gets t <= 0.5. With one gene t = 0. */
int gi_gene_spectral_positions(const float *values, int n, int n_genes, float *t, gi_err *err);

/* The dense method up to this many genes (5 G x G doubles = 160 MB at 2,000). */
#define GI_GENE_ORDER_DENSE_MAX 2000

/* values: [n][n_genes] row-major, NaN = missing; rows with skip[i] != 0 are
 * left out (skip may be NULL). t: [n_genes] positions in [0, 1], gene 0 in the
 * lower half. */
int gi_gene_spectral_positions_lowmem(const float *values, int n, int n_genes, const unsigned char *skip, float *t,
                                      gi_err *err);

#endif
