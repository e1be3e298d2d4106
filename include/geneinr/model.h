/* model.h - the conditional implicit neural representation.
 *
 * One network maps a point (normalised MNI coordinates, donor, anatomical
 * label, and in concat mode a gene) to expression. Layout, llm.c style: all
 * trainable parameters live in one contiguous buffer `params` and their
 * gradients in `grads` (same layout), so zeroing, checkpointing and the MPI
 * allreduce are one call each. Non-trained constants (Fourier frequencies,
 * spectral gene codes) live in `fixed` and are checkpointed too.
 *
 * Input vector of the first layer, per point, in this order:
 *   coords   siren: xyz (3)            fourier: [sin(2 pi B xyz), cos(2 pi B xyz)] (2F)
 *   donor    donor_dim values: the donor's embedding row, or the mean of the
 *            rows marked in donor_in_average when the donor index is -1
 *            ("donor average"); absent if donor_dim = 0
 *   anatomy  anatomy_dim values: the label's embedding row; absent if n_labels = 0
 *   gene     concat mode only: learned embedding row (gene_dim) or the spectral
 *            code [sin(2^f pi t_g), cos(2^f pi t_g)], f = 0..F-1 (2F values)
 * Then hidden_layers layers of `width` units: siren: a = sin(omega * (x W^T + b))
 * with omega0 on the first layer and omega_hidden after; fourier: ReLU.
 * Output layer (linear): concat mode -> 1 output (the gene asked for);
 * factorized mode -> n_genes outputs: row g of the output weight matrix is
 * gene g's readout embedding, so one trunk pass yields every gene.
 *
 * Shapes: activations are row-major (batch, features); weights are
 * (out, in) row-major; y = x W^T + b computed with cblas_sgemm.
 *
 * Parameter buffer order: for each layer l (hidden..., output): W_l, b_l; then
 * donor embedding [n_donors][donor_dim], anatomy embedding
 * [n_labels][anatomy_dim], gene embedding [n_genes][gene_dim] (concat+embedding).
 */
#ifndef GENEINR_MODEL_H
#define GENEINR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "geneinr/error.h"
#include "geneinr/mni.h" /* the model takes normalised MNI coordinates */
#include "geneinr/model_settings.h"

typedef struct gi_model_spec {
    /* The settings (arch: GI_ARCH_*, gene_mode: GI_GENE_*, gene_code: GI_CODE_*
     * of config.h, hidden_layers, width, omega0, ...): one field per row of
     * GI_MODEL_SETTINGS, the same names and types as gi_config.model. */
    GI_MODEL_SETTINGS(GI_SETTING_MEMBER)
    /* Sizes from the data. */
    int n_genes;
    int n_donors;
    int n_labels;            /* 0: no anatomical input */
} gi_model_spec;

typedef struct gi_layer {
    int in, out;
    size_t w_off, b_off;     /* offsets into params / grads */
    float omega;             /* siren sine frequency; 0 = ReLU (fourier hidden); output layer: 0 and linear */
} gi_layer;

typedef struct gi_model {
    gi_model_spec spec;
    int n_layers;            /* hidden_layers + 1 */
    gi_layer *layers;
    int in_dim;              /* first-layer input width */
    int n_out;               /* 1 (concat) or n_genes (factorized) */
    size_t donor_off, anat_off, gene_off;   /* embedding offsets into params */
    size_t n_params;
    float *params;
    float *grads;
    size_t n_fixed;
    float *fixed;            /* [F][3] Fourier B, then [n_genes][2*gene_frequencies] spectral codes */
    size_t fourier_off, code_off;           /* offsets into fixed */
    unsigned char *donor_in_average;        /* [n_donors] rows averaged for donor -1; all 1 after
                                             * alloc; 0 for donors without training samples (a
                                             * held-out donor's row is never trained) */
} gi_model;

/* One batch of points. */
typedef struct gi_batch {
    int n;
    const float *xyz;        /* [n][3] normalised coordinates */
    const int *donor;        /* [n] donor index, -1 = donor average; NULL if donor_dim = 0 */
    const int *label;        /* [n] label index in [0, n_labels); NULL if n_labels = 0 */
    const int *gene;         /* [n] gene index (concat mode only), else NULL */
} gi_batch;

/* Activations kept for the backward pass, sized for up to max_batch points. */
typedef struct gi_workspace gi_workspace;

struct gi_config;

/* The spec of a config's model section (every GI_MODEL_SETTINGS row) with the
 * data's sizes. Zeroes *s first, so two specs compare equal with memcmp. */
void gi_model_spec_from_config(gi_model_spec *s, const struct gi_config *c, int n_genes, int n_donors,
                               int n_labels);

/* Names what differs between two specs, as config keys ("model.width") or
 * data sizes ("number of genes"), comma-separated into buf. Returns the
 * number of differences (0 = equal). */
int gi_model_spec_diff(const gi_model_spec *a, const gi_model_spec *b, char *buf, size_t size);

/* Build the layout and initialise parameters deterministically from seed
 * (SIREN init for siren; He-uniform for fourier; embeddings N(0, 0.1^2);
 * Fourier B from seed). Spectral codes start at t_g = g / max(1, n_genes-1)
 * until gi_model_set_gene_positions is called. */
int gi_model_init(gi_model *m, const gi_model_spec *spec, uint64_t seed, gi_err *err);

/* Allocate the layout only (params zeroed): for loading a checkpoint. */
int gi_model_alloc(gi_model *m, const gi_model_spec *spec, gi_err *err);

void gi_model_free(gi_model *m);

/* Set the spectral 1-D gene positions t_g in [0, 1] and recompute the codes. */
void gi_model_set_gene_positions(gi_model *m, const float *t);

gi_workspace *gi_workspace_new(const gi_model *m, int max_batch);

/* A forward-only workspace for rendering: keeps no activations for backward
 * (two hidden buffers used in turn), so it takes max_batch * (in + 2 width)
 * floats instead of all layers' inputs and pre-activations plus backward
 * scratch. gi_model_forward gives bit-identical outputs with either kind;
 * gi_model_backward must not be called with it. gi_workspace_layer_input
 * remains valid for the last layer (the trunk features). */
gi_workspace *gi_workspace_new_inference(const gi_model *m, int max_batch);

/* Bytes a workspace of either kind takes (for memory plans and reports). */
size_t gi_workspace_bytes(const gi_model *m, int max_batch, int inference);
void gi_workspace_free(gi_workspace *ws);

/* out: [n][n_out]. Keeps what backward needs in ws. */
void gi_model_forward(const gi_model *m, const gi_batch *b, gi_workspace *ws, float *out);

/* Forward computing only outputs o0 .. o0+no-1 (factorized mode: a range of
 * genes), out: [n][no]. For rendering gene groups: the output layer's sgemm
 * runs on that block of rows only. Not for backward. */
void gi_model_forward_outputs(const gi_model *m, const gi_batch *b, gi_workspace *ws, int o0, int no, float *out);

/* The coordinate columns of the first layer's input (3 for siren, 2F Fourier
 * features for fourier): their width, and feat[n][width] for points xyz[n][3]
 * - exactly what gi_model_forward computes from the coordinates. Points that
 * are evaluated again and again (the training samples) can be computed once
 * and passed to gi_model_forward_coords. */
int gi_model_coord_width(const gi_model *m);
void gi_model_coord_features(const gi_model *m, const float *xyz, int n, float *feat);

/* gi_model_forward with the coordinate columns of point i taken from row
 * coord_row[i] of coord_table [rows][gi_model_coord_width] (b->xyz is then
 * not read); coord_table = NULL computes them from b->xyz. */
void gi_model_forward_coords(const gi_model *m, const gi_batch *b, const float *coord_table,
                             const int *coord_row, gi_workspace *ws, float *out);

/* dout: [n][n_out] = dLoss/dout. Accumulates (+=) into m->grads; call right
 * after gi_model_forward on the same batch and workspace. Points with donor
 * -1 contribute no donor-embedding gradient. */
void gi_model_backward(gi_model *m, const gi_batch *b, gi_workspace *ws, const float *dout);

/* The same, but m->grads is set to this batch's gradient (what it held is
 * overwritten): what gi_model_backward gives after zeroing m->grads, without
 * the pass that zeroes them. */
void gi_model_backward_set(gi_model *m, const gi_batch *b, gi_workspace *ws, const float *dout);

/* Named parameter blocks, in buffer order (for debugging, checkpoints and
 * tests): "layer<l>.W" [out][in], "layer<l>.b" [1][out] for the hidden layers,
 * "output.W", "output.b", then "donor", "anatomy", "gene" embeddings where
 * present (blocks of size 0 are not listed). Fills up to max entries of out
 * (out may be NULL when max = 0) and returns the total number of blocks. */
typedef struct gi_param_block {
    char name[24];
    size_t off;              /* offset into params / grads */
    int rows, cols;          /* row-major; size = rows * cols */
} gi_param_block;

int gi_model_param_blocks(const gi_model *m, gi_param_block *out, int max);

/* Input of layer `layer` as kept by the last gi_model_forward on ws:
 * [n][layers[layer].in], row-major. layer = n_layers - 1 gives the trunk
 * features that the output layer reads (one row per point). */
const float *gi_workspace_layer_input(const gi_workspace *ws, int layer);

#endif
