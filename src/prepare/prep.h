/* prep.h - the state that the phases of `geneinr prepare` share (src/prepare/).
 *
 * prepare.c runs the phases in order over one plain `prep` struct; each phase
 * is a file of its own: probes.c (Probes.csv + reannotation), donor_samples.c
 * (SampleAnnot, Ontology, coordinates, mirroring, mismatch drop), matrices.c
 * (the two matrices of every donor, read in parallel), select.c (intensity
 * filter, probe selection), normalise.c (scaled robust sigmoid), and prep.c
 * the helpers and threads they share. Private to src/prepare/: the public
 * interface is geneinr/prepare.h.
 */
#ifndef GENEINR_PREP_H
#define GENEINR_PREP_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "geneinr/ahba.h"
#include "geneinr/config.h"
#include "geneinr/csv.h"
#include "geneinr/error.h"

/* ------------------------------------------------------------------ state */

typedef struct probe {
    long id;
    char *name;
    char *symbol;           /* after reannotation; NULL = dropped (no Entrez id) */
    int valid;              /* index among probes with a symbol, or -1 */
} probe;

typedef struct ont_row {
    long id;
    char *acronym, *name;
    char hemi;              /* 'L', 'R' or 'B' (empty in the file) */
    const char *cls;        /* abagen's structure class, "" if none */
} ont_row;

typedef struct sample {
    int col;                /* column in the donor's matrices (row of SampleAnnot) */
    char *well;
    long sid;               /* structure_id (mirrored copies: the other side's) */
    const ont_row *ont;
    double xyz[3];
} sample;

typedef struct donor {
    gi_ahba_donor d;
    int n_file;             /* rows of SampleAnnot.csv */
    int n;                  /* kept samples */
    sample *s;              /* [n] */
    int n_mismatch, n_mirrored, n_mirror_unmatched;
    ont_row *ont;           /* [n_ont] sorted by id */
    int n_ont;
    float *expr;            /* [n_valid][n] */
    double *pa;             /* [n_valid] present calls summed over kept samples */
    long rows_expr, rows_pa;
    double mb_expr, mb_pa, s_expr, s_pa;
    int n_regions;          /* distinct structure ids among kept samples */
    int *region;            /* [n] region index of each sample */
    int *region_count;      /* [n_regions] samples per region */
} donor;

typedef struct prep {
    const gi_config *c;
    FILE *log;
    int threads;
    int n_probes_file;
    probe *p;               /* [n_probes_file] sorted by id */
    int n_valid;            /* probes with a symbol and an Entrez id */
    int *valid_probe;       /* [n_valid] index into p */
    donor *dn;
    int n_donors;
    /* after the intensity filter */
    int n_ibf;
    unsigned char *ibf;     /* [n_valid] */
    /* genes */
    int n_genes;
    char **genes;           /* [n_genes] byte order (point into probe symbols) */
    int *gene_first, *gene_count;  /* [n_genes] run of ibf probes (valid indices) in order */
    int *order;             /* [n_ibf] valid indices sorted by (symbol, id) */
    int *chosen;            /* [n_genes] valid index of the chosen probe, -1 = mean / dropped */
    unsigned char *gene_kept;
    double *ds;             /* [n_valid] differential stability (diff_stability) */
    int n_sel;              /* genes with a chosen probe */
} prep;

/* Corrected coordinates: well_id text -> xyz, sorted by well_id. */
typedef struct coord { char *well; double xyz[3]; } coord;
typedef struct coords { coord *v; int n; } coords;

typedef struct norm_ctx {
    const prep *P;
    const donor *D;
    double *X;              /* [n][G] */
    int G;
    const unsigned char *fit; /* [n] or NULL */
    atomic_int oom;
} norm_ctx;

/* Generic parallel-for over [0, n) in contiguous chunks: fn(ctx, lo, hi). */
typedef void (*range_fn)(void *ctx, int lo, int hi);

/* small helpers, the state and the threads (prep.c) */
double prep_now_s(void);
int prep_cmp_str(const void *a, const void *b);
int prep_cmp_long(const void *a, const void *b);
int prep_open_table(gi_table *t, const char *path, const char *const *names, int n, int *idx, gi_err *err);
int prep_parse_long_field(const char *s, long *out);
int prep_parse_double_field(const char *s, double *out);
void prep_json_str(FILE *f, const char *s);
void prep_free(prep *P);
void prep_parallel_for(int threads, int n, range_fn fn, void *ctx);

/* 1. probes (probes.c) */
int prep_find_probe(const prep *P, long id);
int prep_read_probes(prep *P, gi_err *err);
int prep_reannotate(prep *P, const char *path, gi_err *err);
int prep_index_valid_probes(prep *P, gi_err *err);

/* 2. samples per donor (donor_samples.c) */
void prep_coords_free(coords *C);
int prep_read_coords(coords *C, const char *path, gi_err *err);
int prep_read_samples(prep *P, donor *D, const coords *C, gi_err *err);

/* 3. the matrices (matrices.c) */
int prep_read_matrices(prep *P, gi_err *err);

/* 4. filter and selection (select.c) */
int prep_intensity_filter(prep *P, gi_err *err);
int prep_group_genes(prep *P, gi_err *err);
int prep_select_probes(prep *P, gi_err *err);
/* Average ranks of the subset members (pos[j] >= 0) of x, given perm, the
 * order of x over all len entries; terminates for any x, NaN included (a NaN
 * ranks alone). Exposed for tests/test_prepare.c. */
void prep_subset_ranks(const double *x, const uint16_t *perm, int len, const int *pos, double *rank_out);

/* 5. normalisation (normalise.c) */
void prep_srs_samples_range(void *ctx, int lo, int hi);
void prep_srs_genes_range(void *ctx, int lo, int hi);
void prep_transpose(const double *src, double *dst, int rows, int cols);

#endif
