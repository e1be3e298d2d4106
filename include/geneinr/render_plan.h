/* render_plan.h - how a render splits the grid and the genes: which z-slab a
 * rank renders, how many slices and genes go into one collective write so
 * that the output buffers stay within render.buffer_mb, and how many writes
 * every rank makes. Shared by the INR render (render.c) and the render of any
 * fit/predict method (render_method.c), so both keep the same memory bound
 * whatever the gene count.
 */
#ifndef GENEINR_RENDER_PLAN_H
#define GENEINR_RENDER_PLAN_H

#include <stddef.h>

#include <mpi.h>

#include "geneinr/config.h"
#include "geneinr/error.h"
#include "geneinr/nifti.h"

typedef struct gi_render_plan {
    long total;              /* in-mask voxels of the whole grid */
    int z_lo, z_hi;          /* this rank's slab */
    int k;                   /* slices per write */
    int ng;                  /* genes per write (a group); n_genes when a slice of all fits */
    int groups;              /* gene groups = ceil(n_genes / ng) */
    int rounds;              /* collective writes per gene group (the same on every rank) */
    int chunk_genes;         /* genes per chunk of the atlas (gi_atlas_chunk_genes) */
    size_t buffer_bytes;     /* the output buffers and scratch this plan allows per rank */
} gi_render_plan;

/* A voxel of the mask is rendered when its value is non-zero and not NaN. */
int gi_render_in_mask(float v);

/* The plan for n_genes genes on the mask's grid. The bound counts the slab
 * buffer ([ng][k][ny][nx] floats), its mask ([k][ny][nx] bytes) and the
 * caller's scratch: scratch_per_gene bytes for each gene of a group (a
 * batch's predictions) plus scratch_fixed. As many slices of all genes as
 * fit; when not even one slice of all genes fits, one slice of as many genes
 * as fit, cut on the atlas's chunk boundaries (gene groups, each a pass over
 * the slab). Only one slice of one gene that alone exceeds the bound goes past
 * it, with a note. Depends only on the grid, the genes and the config, so
 * every rank makes the same plan. Collective over comm; prints the note on
 * rank 0. */
int gi_render_plan_make(const gi_volume *mask, MPI_Comm comm, int n_genes, const gi_config *c,
                        size_t scratch_per_gene, size_t scratch_fixed, gi_render_plan *p, gi_err *err);

#endif
