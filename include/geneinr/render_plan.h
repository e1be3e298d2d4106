/* render_plan.h - how a render splits the grid and the genes: how many slices
 * and genes go into one collective write so that the output buffers stay
 * within render.buffer_mb, which block of slices a rank renders in each
 * write, and how many writes every rank makes (render.c), so every method
 * keeps the same memory bound whatever the gene count.
 *
 * The slices are cut into `rounds` even runs, one per collective write, and
 * each run into one block per rank (P ranks, rounds = ceil(nz / (P k)), so
 * no block exceeds k slices): one write's blocks lie side by side. Every write is a synchronisation point (it is collective and
 * compresses inside), so what counts is the balance of each write, not of a
 * rank's whole share: with one contiguous slab per rank (balanced by in-mask
 * voxels in total) a write paired the bottom of one slab (few brain voxels,
 * cheap) with the middle of the brain on the other rank, and the fast rank
 * waited at every write. Neighbouring blocks cost about the same to render
 * and to compress. (Slices dealt one by one balance better still, but the
 * strided selection made HDF5 1.10's filtered collective write twice as
 * slow: docs/BENCHMARKS.md.) A chunk is one slice, so no chunk is shared by
 * two ranks either way, and a voxel's value depends on its slice alone (the
 * renderers cut batches at slices), so the atlas is the same at any rank
 * count.
 */
#ifndef GENEINR_RENDER_PLAN_H
#define GENEINR_RENDER_PLAN_H

#include <stddef.h>

#include <mpi.h>

#include "geneinr/anatomy.h"
#include "geneinr/config.h"
#include "geneinr/error.h"
#include "geneinr/nifti.h"

typedef struct gi_render_plan {
    long total;              /* in-mask voxels of the whole grid */
    int rank, size, nz;      /* this rank of size; slices of the grid */
    long plane;              /* voxels of a slice (nx ny) */
    int k;                   /* slices per write (a block) */
    int ng;                  /* genes per write (a group); n_genes when a slice of all fits */
    int groups;              /* gene groups = ceil(n_genes / ng) */
    int rounds;              /* collective writes per gene group (the same on every rank) */
    int chunk_genes;         /* genes per chunk of the atlas (gi_atlas_chunk_genes) */
    size_t buffer_bytes;     /* the output buffers and scratch this plan allows per rank */
} gi_render_plan;

/* A voxel of the mask is rendered when its value is non-zero and not NaN. */
int gi_render_in_mask(float v);

/* The plan for n_genes genes on the mask's grid. The bound counts the slab
 * buffer ([ng][k][ny][nx] floats; twice that with render.uncertainty, for the
 * SD, plus [k][ny][nx] floats of /distance), its mask ([k][ny][nx] bytes) and the
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

/* What a renderer does with one batch of in-mask voxels: mm [nb][3] their
 * MNI millimetres, label [nb] their anatomy label index (NULL without an
 * anatomy), where [nb] their offsets in the block's buffer ([slices][ny][nx]). */
typedef int (*gi_render_batch_fn)(void *ctx, int nb, const double *mm, const int *label, const long *where,
                                  gi_err *err);

/* Slices [z0, z0 + nzb) of the mask: mbuf [nzb][ny][nx] gets 1 inside, and
 * the in-mask voxels of each slice go to fn in batches of at most nb_max,
 * cut at every slice. A voxel's batch (its rows and their order) then
 * depends on its slice alone, not on which rank renders it or where its
 * block starts, so values are bit-identical at any rank count whatever GEMM
 * kernels OpenBLAS runs (some, e.g. the Haswell ones, round a row
 * differently by its place in the batch). mm [nb_max][3], label [nb_max]
 * (with anat) and where [nb_max] are the caller's scratch. Stops at fn's
 * first error. */
int gi_render_walk_slices(const gi_volume *mask, const gi_anatomy *anat, int z0, int nzb, int nb_max, double *mm,
                          int *label, long *where, unsigned char *mbuf, gi_render_batch_fn fn, void *ctx,
                          gi_err *err);

/* What one block is rendered into: the expression ([ng][nzb][ny][nx]), the
 * mask ([nzb][ny][nx]), and when not NULL the SD (as the expression) and the
 * distance ([nzb][ny][nx], with the first gene group only). */
typedef struct gi_render_bufs {
    float *expr;
    unsigned char *mask;
    float *sd;
    float *dist;
} gi_render_bufs;

/* Renders this rank's block (slices [z0, z0 + nzb) of genes [g0, g0 + ng))
 * into b (b->dist NULL after the first gene group). */
typedef int (*gi_render_block_fn)(void *ctx, int z0, int nzb, int g0, int ng, const gi_render_bufs *b, gi_err *err);

struct gi_atlas_writer;

/* Every write of the plan into w: for each gene group and round, fn renders
 * this rank's block (not called when the rank has none), its errors are
 * agreed, then one collective write (the mask with the first group only),
 * and of /uncertainty when b->sd is set and /distance (first group) when
 * b->dist is.
 * With a uint16 atlas (render.dtype) each group's range is reduced and set
 * (gi_atlas_set_range) before its first write: after its one round when the
 * slabs fit one write, else from a first pass over its rounds that renders
 * the values only (no SD, no distance), so such a render predicts twice.
 * Prints the rounds on rank 0 when there is more than one; *t_write gets
 * this rank's time inside the writes. Collective; -1 on every rank on error. */
int gi_render_plan_write(const gi_render_plan *p, int n_genes, struct gi_atlas_writer *w, MPI_Comm comm,
                         const gi_render_bufs *b, gi_render_block_fn fn, void *ctx, double *t_write, gi_err *err);

/* This rank's block of write `round` (0 .. rounds-1): its first slice in
 * *z0 and its number of slices as the result (0, with *z0 = 0, when the
 * grid ends before it: the rank still takes part in the write). */
int gi_render_plan_block(const gi_render_plan *p, int round, int *z0);

#endif
