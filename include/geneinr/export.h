/* export.h - what a finished atlas becomes for other tools: the 4-D NIfTI with
 * genes.tsv, the BIDS-style dataset_description.json, and the PNG previews.
 *
 * The run folder is a BIDS-style derivative dataset: dataset_description.json
 * (Name, BIDSVersion, DatasetType "derivative", GeneratedBy with geneinr's
 * version and the run's config) says what it is to BIDS-aware tools, and
 * README.md how nilearn, FSLeyes and h5py open its files. With
 * render.nifti 4d or both, OUT/expression.nii.gz holds one volume per gene
 * along the 4th axis in atlas order, and OUT/genes.tsv ("index<TAB>gene",
 * 0-based, as nilearn's index_img counts) names them. Outside the mask the
 * NIfTI files hold NaN or 0 (render.background); the atlas always keeps NaN
 * (a uint16 atlas: code 0). With render.dtype uint16 the per-gene maps are
 * uint16 too, the atlas's codes with its scale and offset as scl_slope and
 * scl_inter; outside the mask they hold code 0, read as scl_inter (an integer
 * image has no NaN), and the 4-D file is refused by the config (one slope
 * cannot serve every gene).
 * Outputs of an earlier render that this one does not make (a 4-D file, old
 * previews) are removed, so a folder never mixes weights. Every file written
 * here is claimed in and recorded by OUT/.geneinr-manifest (manifest.h), and
 * only files it lists are removed or replaced: never a user's file.
 */
#ifndef GENEINR_EXPORT_H
#define GENEINR_EXPORT_H

#include <stddef.h>

#include <mpi.h>

#include "geneinr/config.h"
#include "geneinr/error.h"
#include "geneinr/nifti.h"

/* render.background applied to a map about to be written as NIfTI. */
void gi_export_background(const gi_config *c, float *vol, size_t n);

/* After OUT/atlas.h5 is complete: OUT/nifti/<gene>.nii.gz for every gene, on
 * the mask's geometry, described as "geneinr GENE (what)" (the donor or the
 * method). Rank 0 first removes maps of an earlier render that the manifest
 * lists (they would sit among the new ones looking current) and refuses genes
 * whose file names collide (names.h); genes are dealt round-robin to ranks.
 * Collective. */
int gi_export_gene_maps(const gi_config *c, MPI_Comm comm, const char *out_dir, const char *atlas_path,
                        const gi_volume *mask, const char *what, gi_err *err);

/* The check gi_export_gene_maps makes, for a render to make before it renders
 * anything: -1 when a gene name breaks the rules of names.h, or with both
 * names when two genes' file names would be the same ignoring case. Local
 * (every rank gets the same answer). */
int gi_export_check_gene_names(const char *const *genes, int n_genes, const char *out_dir, gi_err *err);

/* Before a render (or the training before one) does any work: the gene
 * names follow names.h, no file at one of out_dir's output names for c is a
 * user's (manifest.h), and no input (data.samples, data.anatomy,
 * data.anatomy_labels, data.genes, render.mask, checkpoint, the config) is
 * one of those outputs. all_previews: check every gene's preview name (the
 * checkpoint's gene order is not known before training). Local, rank 0. */
int gi_export_check_outputs(const gi_config *c, const char *out_dir, const char *const *genes, int n_genes,
                            int all_previews, const char *checkpoint, gi_err *err);

/* After OUT/atlas.h5 is complete: the 4-D NIfTI + genes.tsv (render.nifti),
 * dataset_description.json, README.md, and OUT/preview/<gene>.png for the first
 * render.preview_genes genes (shared among ranks). mask: the grid's NIfTI
 * (its header is the 4-D file's geometry). Collective; prints what it wrote. */
int gi_export_after_render(const gi_config *c, MPI_Comm comm, const char *out_dir, const char *atlas_path,
                           const gi_volume *mask, gi_err *err);

/* Before training new weights into out_dir: remove what this module derived
 * from the old atlas (4-D NIfTI, genes.tsv, previews, dataset_description.json,
 * README.md), which would otherwise sit beside the new checkpoint looking
 * current. Rank 0 only; missing files are fine. */
void gi_export_remove_derived(const char *out_dir);

/* `geneinr preview ATLAS`: previews of any atlas into out_dir (NULL:
 * <atlas folder>/preview), with the render.preview_* settings recorded in the
 * atlas; genes_csv ("a,b,c") and at_text ("x,y,z" MNI mm) override them when
 * not NULL. Collective (genes shared among ranks). */
int gi_export_preview_command(MPI_Comm comm, const char *atlas_path, const char *genes_csv, const char *at_text,
                              const char *out_dir, gi_err *err);

#endif
