/* samples.h - the sample table: tissue samples x genes, in MNI space.
 *
 * CSV layout (what abagen users export and `geneinr prepare` writes):
 *   well_id,donor,mni_x,mni_y,mni_z[,annotation columns...],GENE1,GENE2,...
 * The five leading columns are required, by name, in any order. Columns named
 * in GI_ANNOTATION_COLUMNS (structure_id, structure_acronym, structure_name,
 * class, hemisphere, tissue, slab_num, sample_id) are kept as text; every other
 * column is a gene. Gene values are decimal numbers; an empty field, "NaN",
 * "nan", "NA" or "N/A" means not measured. Coordinates are MNI millimetres and
 * must be finite. Donors are numbered in order of first appearance.
 */
#ifndef GENEINR_SAMPLES_H
#define GENEINR_SAMPLES_H

#include "geneinr/error.h"

typedef struct gi_samples {
    int n;                  /* samples (rows) */
    int n_genes;
    int n_donors;
    int n_annot;
    char **well_ids;        /* [n] */
    int *donor;             /* [n] index into donor_names */
    char **donor_names;     /* [n_donors] */
    float *mni;             /* [n][3] MNI mm (x, y, z) */
    char **gene_names;      /* [n_genes] */
    float *values;          /* [n][n_genes] row-major; NaN = not measured */
    char **annot_names;     /* [n_annot] */
    char **annot;           /* [n][n_annot] row-major, text as read */
} gi_samples;

/* Read a sample table (plain or .gz). Errors name path:line and column. */
int gi_samples_read_csv(gi_samples *s, const char *path, gi_err *err);

/* Write a sample table in the layout above (NaN written as empty field;
 * fields quoted when they contain commas, quotes or newlines; floats with %.9g). */
int gi_samples_write_csv(const gi_samples *s, const char *path, gi_err *err);

/* Index of a donor by name, or -1. */
int gi_samples_donor_index(const gi_samples *s, const char *name);

/* Number of measured (non-NaN) values. */
long gi_samples_n_measured(const gi_samples *s);

void gi_samples_free(gi_samples *s);

#endif
