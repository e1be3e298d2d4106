/* atlas.h - the HDF5 atlas layout: written collectively by all ranks, read serially.
 *
 * File layout (also used for the phantom's truth.h5):
 *   /expression  float32 [n_genes][nz][ny][nx] = (gene, k, j, i) in the mask's
 *                voxel order (x = i fastest, as in NIfTI); NaN outside the mask.
 *                Chunks (cg, 1, ny, nx): one z-slice of cg genes, so ranks owning
 *                different z-slabs never touch the same chunk. cg is 1 (a chunk
 *                per gene and slice: reading one gene reads nothing else) until
 *                the chunk count n_genes x nz would pass GI_ATLAS_MAX_CHUNKS;
 *                then the fewest genes per chunk that keep it below (parallel
 *                HDF5 allocates and fills every chunk when the dataset is
 *                created, and fails past ~26,500 chunks). gi_atlas_chunk_genes
 *                gives cg, so writers can cut gene groups on chunk boundaries.
 *                Optional deflate (+shuffle). Attributes: units, normalisation.
 *   /mask        uint8 [nz][ny][nx], 1 inside.
 *   /affine      float64 [4][4]: voxel (i, j, k, 1) -> MNI mm (the mask's sform/qform).
 *   /genes       variable-length UTF-8 strings [n_genes]
 *   /donors      variable-length UTF-8 strings [n_donors]
 *   /expression_xxh3_rows  uint64 [2 n_genes]: a content hash per gene, and on
 *                every dataset an xxh3_128 attribute, root attribute content_id
 *                (h5_seal.h): verified by the readers. HDF5 1.8 file format.
 * With render.dtype uint16 (issue 29) /expression is uint16 instead, each gene
 *                with its own scale and offset: value = offset[g] + scale[g] * code
 *                for code 1..65535; code 0 = NaN (outside the mask, or a value
 *                that was not finite). The gene's in-mask range [lo, hi] maps to
 *                codes 1..65535: scale = (hi - lo) / 65534 rounded up to a float32,
 *                offset = lo - scale rounded to a float32 (float32 values, so the
 *                NIfTI maps' scl_slope/scl_inter hold them exactly); a constant
 *                gene gets scale 1. Attributes of /expression: scale, offset
 *                (float64 [n_genes]), encoding (a one-line description). Every
 *                decoded value is within scale / 2 of the float32 render, plus
 *                float rounding (2^-22 x max(|lo|, |hi|)). The fill value and the
 *                content hashes are of the codes (uint16).
 * With render.uncertainty (issue 28) also:
 *   /uncertainty float32 [n_genes][nz][ny][nx]: the predictive SD of the map in
 *                /expression (its units, the same genes in the same order), NaN
 *                outside the mask. Same shape, chunks, deflate and content hashes
 *                (/uncertainty_xxh3_rows, one per gene) as /expression. Attributes:
 *                units, what (how the SD was made: method, lattice step).
 *   /distance    float32 [nz][ny][nx]: millimetres from each voxel centre (MNI)
 *                to the nearest sample of /sample_mni; NaN outside the mask.
 *                Chunks (1, ny, nx), the same deflate.
 *   /sample_mni  float64 [n_samples][3]: MNI mm (x, y, z) of every sample of the
 *                rendered method's data.samples table, in table order: the
 *                samples /distance measures to.
 *   /sample_donor  variable-length UTF-8 strings [n_samples]: each sample's donor
 *                (the table's donor column), to count samples and donors per region.
 *   root attribute sample_source: the table these came from (data.samples path).
 * Readers treat every one of these as optional (older atlases lack them):
 * gi_atlas.has_uncertainty, has_distance, n_samples say what is there.
 *   root attributes: geneinr_version, created (UTC ISO 8601), config (YAML of
 *                the run), rendered_for ("average" or donor), kind ("atlas" | "truth"),
 *                layout (a one-line description of the above).
 * The file is written as PATH.tmp and renamed to PATH only when complete, so a
 * file at PATH is always whole.
 */
#ifndef GENEINR_ATLAS_H
#define GENEINR_ATLAS_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#include "geneinr/error.h"
#include "geneinr/h5_seal.h"

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
    int chunk_genes;              /* genes per chunk of /expression; 0 = gi_atlas_chunk_genes */
    int dtype;                    /* GI_DTYPE_FLOAT32 (0) or GI_DTYPE_UINT16 (enum_names.h): /expression's
                                   * storage; uint16 needs gi_atlas_set_range before each gene's writes */
    /* Issue 28 (all optional, 0/NULL = not written): */
    int uncertainty;              /* 1: create /uncertainty (written by gi_atlas_write_sd) */
    const char *uncertainty_what; /* its "what" attribute; may be NULL */
    int distance;                 /* 1: create /distance (written by gi_atlas_write_distance) */
    int n_samples;                /* > 0: /sample_mni and /sample_donor are written */
    const double *sample_mni;     /* [n_samples][3] MNI mm */
    const char *const *sample_donor;  /* [n_samples] donor names */
    const char *sample_source;    /* data.samples path; may be NULL */
} gi_atlas_info;

/* At most this many chunks in /expression when genes per chunk are chosen
 * automatically. Parallel HDF5 1.10.8 (Debian 12) with Open MPI's OMPIO fails
 * its collective writes of a deflated dataset from ~26,500 chunks on, whatever
 * their size ("mca_fbtl_posix_pwritev: error in writev: Bad address"; ROMIO
 * segfaults): measured with bench/bench_atlas, docs/BENCHMARKS.md "Atlas
 * chunk layout". 20,000 keeps a 25% margin and still gives the 1 mm atlas of
 * 100 genes (18,200 chunks) one gene per chunk. */
#define GI_ATLAS_MAX_CHUNKS 20000

/* Genes per chunk of /expression (and /uncertainty, chunked alike): info->chunk_genes
 * when set (clamped to n_genes), else 1 while the file's chunks, n_genes x nz (x 2
 * with info->uncertainty), stay <= GI_ATLAS_MAX_CHUNKS, else the fewest that keep
 * ceil(n_genes / cg) x nz (x 2) within it. Writes whose gene range starts
 * and ends on multiples of it (or at n_genes) replace whole chunks; others
 * are correct but read, decompress and rewrite the chunks they share. */
int gi_atlas_chunk_genes(const gi_atlas_info *info);

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

/* The writer's /expression storage: GI_DTYPE_FLOAT32 or GI_DTYPE_UINT16. */
int gi_atlas_writer_dtype(const gi_atlas_writer *w);

/* uint16 coding (layout above). The scale and offset for in-mask values in
 * [lo, hi] (lo > hi, or either not finite: no values; scale 1, offset 0). */
void gi_atlas_u16_coding(double lo, double hi, double *scale, double *offset);
/* A value's code (0 for NaN and +-inf) and a code's value (NaN for 0). */
uint16_t gi_atlas_u16_encode(float v, double scale, double offset);
float gi_atlas_u16_decode(uint16_t code, double scale, double offset);

/* Local: widen lo[ng] / hi[ng] by the finite values of the in-mask voxels
 * (mask[v] != 0) of expr [ng][nvox] (one block's genes; mask [nvox]). Start
 * from lo = +inf, hi = -inf. Min and max are exact, so the reduced range is
 * the same whatever the ranks and blocks. */
void gi_atlas_range_add(int ng, size_t nvox, const float *expr, const unsigned char *mask, float *lo, float *hi);

/* Collective (same g0, ng on every rank): lo/hi [ng] this rank's range of
 * genes g0 .. g0+ng-1 (gi_atlas_range_add), reduced over the ranks, fixes
 * their scale and offset. A uint16 atlas needs it before any write of these
 * genes, since a collective write of slabs cannot wait for the last slab to
 * know the range; a float32 atlas ignores it. */
int gi_atlas_set_range(gi_atlas_writer *w, int g0, int ng, const float *lo, const float *hi, gi_err *err);

/* Collective, as gi_atlas_write_genes (same g0, ng, z0, nzb rules) into
 * /uncertainty: sd is [ng][nzb][ny][nx]. The writer must have been created
 * with info->uncertainty. */
int gi_atlas_write_sd(gi_atlas_writer *w, int g0, int ng, int z0, int nzb, const float *sd, gi_err *err);

/* Collective: slices z0 .. z0+nzb-1 of /distance from dist [nzb][ny][nx]
 * (nzb may be 0). The writer must have been created with info->distance. */
int gi_atlas_write_distance(gi_atlas_writer *w, int z0, int nzb, const float *dist, gi_err *err);

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
    int sealed;                   /* 1: content hashes checked (the rest at open, each gene
                                   * of /expression as it is read); 0: written before them */
    gi_h5_rows rows;              /* the per-gene hashes of /expression */
    int has_uncertainty;          /* 1: /uncertainty is there (gi_atlas_read_sd) */
    int has_distance;             /* 1: /distance is there (gi_atlas_read_distance) */
    int n_samples;                /* rows of /sample_mni (0: none; gi_atlas_read_samples) */
    gi_h5_rows sd_rows;           /* the per-gene hashes of /uncertainty */
    int dtype;                    /* /expression: GI_DTYPE_FLOAT32 or GI_DTYPE_UINT16 */
    double *scale, *offset;       /* uint16: [n_genes] (layout above); NULL for float32 */
} gi_atlas;

int gi_atlas_open(gi_atlas *a, const char *path, gi_err *err);
/* vol: [nz][ny][nx] floats of gene g, checked against its content hash
 * (uint16 atlases: decoded, NaN for code 0). */
int gi_atlas_read_gene(const gi_atlas *a, int g, float *vol, gi_err *err);
/* A uint16 atlas's codes of gene g ([nz][ny][nx]), checked against its
 * content hash, and its *scale, *offset; an error for a float32 atlas. */
int gi_atlas_read_codes(const gi_atlas *a, int g, uint16_t *codes, double *scale, double *offset, gi_err *err);
/* Read and check every gene (`geneinr info`); *n_checked genes matched. A
 * file without content hashes is no error (a->sealed 0, nothing checked). */
int gi_atlas_verify(const gi_atlas *a, int *n_checked, gi_err *err);
/* vol: [nz][ny][nx] floats, the SD of gene g (/uncertainty), checked
 * against its content hash; an error naming the file when it has none. */
int gi_atlas_read_sd(const gi_atlas *a, int g, float *vol, gi_err *err);
/* vol: [nz][ny][nx] floats, /distance (checked at open); an error when absent. */
int gi_atlas_read_distance(const gi_atlas *a, float *vol, gi_err *err);
/* The samples: *mni [n][3] MNI mm and *donor [n] names (malloc'd: free mni,
 * gi_h5_free_strings(donor, n)); *n = 0 and NULLs for an atlas without them. */
int gi_atlas_read_samples(const gi_atlas *a, int *n, double **mni, char ***donor, gi_err *err);
int gi_atlas_gene_index(const gi_atlas *a, const char *name);
void gi_atlas_close(gi_atlas *a);

/* gi_h5_has_dataset (is this file HDF5 with a dataset of that name?) lives in h5.h. */
#include "geneinr/h5.h"

#endif
