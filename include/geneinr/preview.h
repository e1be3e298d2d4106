/* preview.h - PNG previews of atlas genes: three orthogonal slices and a colour bar.
 *
 * One PNG per gene, DIR/<gene>.png: axial, coronal and sagittal slices through
 * one MNI point (default: the centroid of the mask, with x the centroid of its
 * left hemisphere - the midline shows little tissue), sampled on a world-space
 * pixel grid (about 2 pixels per mm, nearest voxel through the inverse of the
 * atlas affine, so LAS, RAS and oblique grids all come out the same way up);
 * values through viridis over the 1st..99th percentile of the gene's in-mask
 * values (beyond that clipped), the mask outline in black, the samples that
 * measured the gene within 2 mm of a slice as red dots, direction letters
 * (L/R, A/P, S/I) on every panel and the convention in the title
 * (neurological: the subject's left on the image left; radiological: mirrored).
 *
 * Every PNG carries a tEXt chunk "geneinr:preview" with JSON describing its
 * geometry, so that a program can map any pixel back to MNI mm and the colour
 * bar back to values: {"gene", "lo", "hi", "at_mm", "orientation",
 * "colorbar": {"x", "y", "w", "h"} (top row = hi, bottom row = lo),
 * "panels": [{"view", "x", "y", "w", "h", "u_axis", "v_axis", "w_axis",
 * "plane_mm", "u0", "du", "v0", "dv"}]}: pixel (x + p, y + q) of a panel shows
 * the world point with coordinate u_axis = u0 + p * du, v_axis = v0 + q * dv,
 * w_axis = plane_mm (axes 0, 1, 2 = MNI x, y, z). "map" says what the
 * picture shows: "expression", "sd" or "distance".
 *
 * Uncertainty (issue 28): when the atlas has /uncertainty, each gene also
 * gets DIR/sd/<gene>.png, the map's predictive SD (expression units) in the
 * same layout with its own colour bar (magma, so it does not read as
 * expression, from 0 to the 99th percentile of the gene's in-mask SD), and
 * DIR/coverage/distance.png (from /distance) shows the millimetres from each
 * voxel to the nearest sample (magma, 0 to the 99th percentile), with every
 * sample of the table as a dot. Subfolders, so no gene's file name can meet
 * them (sd/ holds gene names only; coverage/ one fixed name).
 */
#ifndef GENEINR_PREVIEW_H
#define GENEINR_PREVIEW_H

#include "geneinr/error.h"

typedef struct gi_preview_opts {
    const char *const *genes;   /* genes to draw, by name; NULL = the first max_genes of the atlas */
    int n_genes;
    int max_genes;
    const double *at;           /* MNI mm where the slices cross; NULL = centroid of the mask */
    const char *samples;        /* sample table whose positions are marked; NULL or "" = none */
    int radiological;           /* 0 = neurological */
    const char *units;          /* colour-bar caption; NULL = "expression" */
} gi_preview_opts;

/* Write dir/<gene>.png for this rank's share of the chosen genes (every
 * size-th, starting at rank). Serial: reads the atlas with the serial HDF5
 * reader. *n_written (may be NULL) counts this rank's files. Unknown gene
 * names and a point outside the grid are errors. */
int gi_preview_atlas(const char *atlas_path, const char *dir, const gi_preview_opts *o, int rank, int size,
                     int *n_written, gi_err *err);

/* The SD maps' folder and the distance map's file, relative to DIR. */
#define GI_PREVIEW_SD_DIR "sd"
#define GI_PREVIEW_DISTANCE "coverage/distance.png"

/* Append to (*names)[*n] (malloc'd; realloc'd here, *n grown) the files,
 * prefix + name relative to DIR, that gi_preview_atlas writes besides
 * <gene>.png for these genes (NULL: the first max of the atlas): sd/<gene>.png
 * and coverage/distance.png, when the atlas holds /uncertainty (and
 * /distance). For the folder's manifest (manifest.h). */
int gi_preview_add_names(const char *atlas_path, const char *prefix, const char *const *genes, int n_genes, int max,
                         char ***names, int *n, gi_err *err);

/* viridis at t in [0, 1] (clamped). */
void gi_viridis(double t, unsigned char rgb[3]);
/* magma at t in [0, 1] (clamped): the SD and distance maps. */
void gi_magma(double t, unsigned char rgb[3]);

#endif
