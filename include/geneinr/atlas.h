/* atlas.h - the HDF5 atlas layout: written collectively by all ranks, read serially.
 *
 * File layout (also used for the phantom's truth.h5):
 *   /expression  float32 [n_genes][nz][ny][nx] = (gene, k, j, i) in the mask's
 *                voxel order (x = i fastest, as in NIfTI); NaN outside the mask.
 *                Chunks (1, 1, ny, nx): one z-slice of one gene, so ranks owning
 *                different z-slabs never touch the same chunk. Optional deflate
 *                (+shuffle). Attributes: units, normalisation.
 *   /mask        uint8 [nz][ny][nx], 1 inside.
 *   /affine      float64 [4][4]: voxel (i, j, k, 1) -> MNI mm (the mask's sform/qform).
 *   /genes       variable-length UTF-8 strings [n_genes]
 *   /donors      variable-length UTF-8 strings [n_donors]
 *   root attributes: geneinr_version, created (UTC ISO 8601), config (YAML of
 *                the run), rendered_for ("average" or donor), kind ("atlas" | "truth"),
 *                layout (a one-line description of the above).
 * The file is written as PATH.tmp and renamed to PATH only when complete, so a
 * file at PATH is always whole.
 */
#ifndef GENEINR_ATLAS_H
#define GENEINR_ATLAS_H

#include <mpi.h>

#include "geneinr/error.h"

typedef struct gi_atlas_info {
    int n_genes;
    const char *const *genes;
    int n_donors;
    const char *const *donors;
    int nx, ny, nz;
    double affine[16];            /* row-major */
    const char *units;            /* e.g. "same units as the sample table" */
    const char *normalisation;    /* how values relate to the input table */
    const char *config_yaml;      /* may be NULL */
    const char *rendered_for;     /* "average" or a donor name; may be NULL */
    const char *kind;             /* "atlas" or "truth" */
    int compress;                 /* deflate level 0-9 */
    int every_slice_written;      /* 1: the caller writes every slice of every gene (a render does),
                                   * so the fill value is never written to disk first (the
                                   * unwritten-slices-read-as-fill promise is then void) */
} gi_atlas_info;

typedef struct gi_atlas_writer gi_atlas_writer;

/* Collective over comm. Creates PATH.tmp with all datasets. NULL on error
 * (on every rank: failures are agreed collectively). */
gi_atlas_writer *gi_atlas_create(MPI_Comm comm, const char *path, const gi_atlas_info *info, gi_err *err);

/* Collective: every rank calls it the same number of times; nzb may be 0.
 * expr: [n_genes][nzb][ny][nx] for slices z0 .. z0+nzb-1; mask: [nzb][ny][nx].
 * Returns -1 on every rank if any rank failed. */
int gi_atlas_write_slices(gi_atlas_writer *w, int z0, int nzb, const float *expr,
                          const unsigned char *mask, gi_err *err);

/* Collective, as gi_atlas_write_slices for genes g0 .. g0+ng-1 only (the same
 * g0, ng on every rank): expr is [ng][nzb][ny][nx]. /mask is written when mask
 * is given (on every rank with slices; NULL on all = genes only). For renders
 * whose buffer holds a slice of a group of genes, not of all genes. */
int gi_atlas_write_genes(gi_atlas_writer *w, int g0, int ng, int z0, int nzb, const float *expr,
                         const unsigned char *mask, gi_err *err);

/* Collective: close, write metadata, rename PATH.tmp -> PATH, free w. */
int gi_atlas_finish(gi_atlas_writer *w, gi_err *err);

/* Collective: close, remove PATH.tmp, free w. */
void gi_atlas_abort(gi_atlas_writer *w);

/* Serial reading. */
typedef struct gi_atlas {
    int n_genes, n_donors;
    char **genes, **donors;
    int nx, ny, nz;
    double affine[16];
    unsigned char *mask;          /* [nz][ny][nx] */
    char *kind, *rendered_for, *config_yaml, *version;
    long long file_id;            /* hid_t of the open file */
} gi_atlas;

int gi_atlas_open(gi_atlas *a, const char *path, gi_err *err);
/* vol: [nz][ny][nx] floats of gene g. */
int gi_atlas_read_gene(const gi_atlas *a, int g, float *vol, gi_err *err);
int gi_atlas_gene_index(const gi_atlas *a, const char *name);
void gi_atlas_close(gi_atlas *a);

/* gi_h5_has_dataset (is this file HDF5 with a dataset of that name?) lives in h5.h. */
#include "geneinr/h5.h"

#endif
