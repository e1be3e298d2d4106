/* samples.h - the sample table: tissue samples x genes, in MNI space.
 *
 * CSV layout (what `geneinr prepare` writes):
 *   well_id,donor,mni_x,mni_y,mni_z[,annotation columns...],GENE1,GENE2,...
 * The five leading columns are required, by name, in any order. Also read as
 * they come from abagen and pandas:
 *   - coordinates named x, y, z (used when mni_x, mni_y, mni_z are absent;
 *     beside them, x, y, z are ignored);
 *   - leading unnamed columns (empty header or "Unnamed: N") are pandas index
 *     levels: two of them, when neither donor nor well_id is named, are donor
 *     then well_id (pd.concat of abagen's per-donor dict); one is well_id when
 *     that is missing, else donor when that is missing, else ignored;
 *   - donors by AHBA number (9861) or name (H0351.2001): numbers become names.
 * Annotation columns, kept as text, are a closed list: structure_id,
 * structure_acronym, structure_name, structure, class, hemisphere, tissue,
 * slab_num, slab_type, sample_id, polygon_id, mri_voxel_x/y/z, label.
 * Without a gene list every other column is a gene; with one (data.genes)
 * exactly the listed columns are genes, in list order, and others are
 * ignored. Gene values are decimal numbers; an empty field, "NaN", "nan",
 * "NA" or "N/A" means not measured; text in a gene column is an error that
 * names the column and says how to mark it. Coordinates are MNI millimetres
 * and must be finite. Donors are numbered in order of first appearance.
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
/* Sample coordinates beyond this many millimetres from the MNI origin (on any
 * axis) are refused as not MNI millimetres. */
#define GI_SAMPLES_MNI_LIMIT 200.0f

int gi_samples_read_csv(gi_samples *s, const char *path, gi_err *err);

/* The same with a gene list file (genelist.h) selecting the gene columns;
 * genes_path NULL or "" = every non-annotation column is a gene. */
int gi_samples_read_csv_genes(gi_samples *s, const char *path, const char *genes_path,
                              gi_err *err);

/* The gene names of a table (its header only, with the checks of the names
 * rules, names.h) into *names[*n] (malloc'd strings), without reading rows. */
int gi_samples_read_gene_names(const char *path, const char *genes_path, char ***names, int *n, gi_err *err);

/* Write a sample table in the layout above (NaN written as empty field;
 * fields quoted when they contain commas, quotes or newlines; floats with %.9g). */
int gi_samples_write_csv(const gi_samples *s, const char *path, gi_err *err);

/* The same with gene values written with `decimals` fixed decimals (0..9,
 * trailing zeros dropped; -1 = %.9g), for large tables of values in a known
 * range (prepare's, in [0, 1], with 7 decimals). */
int gi_samples_write_csv_decimals(const gi_samples *s, const char *path, int decimals, gi_err *err);

/* Index of a donor by name (or AHBA number), or -1. */
int gi_samples_donor_index(const gi_samples *s, const char *name);

/* Number of measured (non-NaN) values. */
long gi_samples_n_measured(const gi_samples *s);

void gi_samples_free(gi_samples *s);

#endif
