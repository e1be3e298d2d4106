/* model.c - the conditional implicit neural representation (see model.h).
 *
 * Design, llm.c style: each layer kind is a *_forward / *_backward pair of
 * plain functions over float pointers with the shapes in a comment; the
 * network is a loop over layers. All trainable parameters are one buffer
 * (m->params), gradients the same layout (m->grads); constants that are not
 * trained (Fourier frequencies B, spectral gene codes) are m->fixed.
 *
 * Invariants that other modules rely on:
 * - The layout (offsets, n_params, n_fixed) is a pure function of the spec,
 *   so a checkpoint written by one build is read by the same layout.
 * - Initialisation is a pure function of (spec, seed): every draw is
 *   gi_rng_*(seed, stream, counter) with the counter the element's index in
 *   its block, so nothing depends on call order, ranks or threads.
 * - Forward/backward are deterministic: the only parallelism is inside
 *   OpenBLAS sgemm, whose per-element reduction order does not depend on
 *   timing; every hand-written reduction runs in a fixed sequential order.
 * - Backward accumulates (+=) into m->grads, so several batches (or an
 *   allreduce afterwards) compose.
 *
 * Layer activations (workspace): x[l] is the input of layer l; the sgemm of
 * hidden layer l writes x[l + 1] and one fused pass adds the bias and applies
 * the activation in place. For SIREN that pass also keeps the activation's
 * derivative d[l] = omega cos(omega z) (sine and cosine come from one
 * vectorised sincos in the same sweep, gi_sine_act in vmath.h), so backward
 * needs no second transcendental; ReLU needs no saved state (z > 0 exactly
 * where the output is > 0). The output layer writes straight into the
 * caller's `out`. Backward through an activation also takes the column sums
 * of the dz it writes (the next layer's bias gradient), one sweep for both.
 */
#include "geneinr/model.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/config.h"
#include "geneinr/rng.h"
#include "geneinr/vmath.h"

#define GI_PI 3.14159265358979323846

/* Limits that keep every size product inside size_t and every dimension
 * inside the int that BLAS takes. */
#define MAX_DIM (1 << 24)
#define MAX_HIDDEN_LAYERS 256

/* Init streams of the embeddings: GI_STREAM_INIT + layer index covers the
 * layers (at most MAX_HIDDEN_LAYERS + 1), these sit above them and below
 * GI_STREAM_FOURIER, and do not move when the depth changes. */
#define STREAM_DONOR (GI_STREAM_INIT + 900)
#define STREAM_ANATOMY (GI_STREAM_INIT + 901)
#define STREAM_GENE (GI_STREAM_INIT + 902)

/* Column layout of the first layer's input (see model.h). */
typedef struct input_layout {
    int coords;              /* 3 (siren) or 2F (fourier), starting at column 0 */
    int donor_col, donor_w;  /* donor embedding columns */
    int anat_col, anat_w;    /* anatomy embedding columns */
    int gene_col, gene_w;    /* gene embedding or spectral code columns */
    int gene_trained;        /* gene columns come from a trained embedding */
    int total;
} input_layout;

static input_layout layout_of(const gi_model_spec *s)
{
    input_layout L;
    L.coords = s->arch == GI_ARCH_FOURIER ? 2 * s->fourier_features : 3;
    L.donor_col = L.coords;
    L.donor_w = s->donor_dim;
    L.anat_col = L.donor_col + L.donor_w;
    L.anat_w = s->n_labels > 0 ? s->anatomy_dim : 0;
    L.gene_col = L.anat_col + L.anat_w;
    L.gene_w = 0;
    L.gene_trained = 0;
    if (s->gene_mode == GI_GENE_CONCAT) {
        L.gene_trained = s->gene_code == GI_CODE_EMBEDDING;
        L.gene_w = L.gene_trained ? s->gene_dim : 2 * s->gene_frequencies;
    }
    L.total = L.gene_col + L.gene_w;
    return L;
}

static int dim_ok(int v, int lo)
{
    return v >= lo && v <= MAX_DIM;
}

static int validate_spec(const gi_model_spec *s, gi_err *err)
{
    if (!s)
        return gi_fail(err, "model spec is NULL");
    if (s->arch != GI_ARCH_SIREN && s->arch != GI_ARCH_FOURIER)
        return gi_fail(err, "model.arch must be %s (%d) or %s (%d), got %d", GI_ARCH_NAMES[GI_ARCH_SIREN],
                       GI_ARCH_SIREN, GI_ARCH_NAMES[GI_ARCH_FOURIER], GI_ARCH_FOURIER, s->arch);
    if (s->gene_mode != GI_GENE_CONCAT && s->gene_mode != GI_GENE_FACTORIZED)
        return gi_fail(err, "model.gene_mode must be %s (%d) or %s (%d), got %d", GI_GENE_MODE_NAMES[GI_GENE_CONCAT],
                       GI_GENE_CONCAT, GI_GENE_MODE_NAMES[GI_GENE_FACTORIZED], GI_GENE_FACTORIZED, s->gene_mode);
    if (s->hidden_layers < 1 || s->hidden_layers > MAX_HIDDEN_LAYERS)
        return gi_fail(err, "model.hidden_layers must be in [1, %d], got %d",
                       MAX_HIDDEN_LAYERS, s->hidden_layers);
    if (!dim_ok(s->width, 1))
        return gi_fail(err, "model.width must be in [1, %d], got %d", MAX_DIM, s->width);
    if (s->arch == GI_ARCH_SIREN) {
        if (!(s->omega0 > 0.0f) || !isfinite(s->omega0))
            return gi_fail(err, "model.omega0 must be a positive finite number, got %g",
                           (double)s->omega0);
        if (!(s->omega_hidden > 0.0f) || !isfinite(s->omega_hidden))
            return gi_fail(err, "model.omega_hidden must be a positive finite number, got %g",
                           (double)s->omega_hidden);
    } else {
        if (!dim_ok(s->fourier_features, 1) || s->fourier_features > MAX_DIM / 2)
            return gi_fail(err, "model.fourier_features must be in [1, %d], got %d",
                           MAX_DIM / 2, s->fourier_features);
        if (!(s->fourier_scale > 0.0f) || !isfinite(s->fourier_scale))
            return gi_fail(err, "model.fourier_scale must be a positive finite number, got %g",
                           (double)s->fourier_scale);
    }
    if (!dim_ok(s->n_genes, 1))
        return gi_fail(err, "the model needs between 1 and %d genes, got %d", MAX_DIM, s->n_genes);
    if (s->gene_mode == GI_GENE_CONCAT) {
        if (s->gene_code != GI_CODE_EMBEDDING && s->gene_code != GI_CODE_SPECTRAL)
            return gi_fail(err, "model.gene_code must be %s (%d) or %s (%d), got %d",
                           GI_GENE_CODE_NAMES[GI_CODE_EMBEDDING], GI_CODE_EMBEDDING,
                           GI_GENE_CODE_NAMES[GI_CODE_SPECTRAL], GI_CODE_SPECTRAL, s->gene_code);
        if (s->gene_code == GI_CODE_EMBEDDING && !dim_ok(s->gene_dim, 1))
            return gi_fail(err, "model.gene_dim must be in [1, %d] for gene_code embedding, got %d",
                           MAX_DIM, s->gene_dim);
        if (s->gene_code == GI_CODE_SPECTRAL &&
            (!dim_ok(s->gene_frequencies, 1) || s->gene_frequencies > 60))
            return gi_fail(err, "model.gene_frequencies must be in [1, 60] for gene_code spectral, got %d",
                           s->gene_frequencies);
    }
    if (!dim_ok(s->donor_dim, 0))
        return gi_fail(err, "model.donor_dim must be in [0, %d], got %d", MAX_DIM, s->donor_dim);
    if (!dim_ok(s->n_donors, 0))
        return gi_fail(err, "the number of donors must be in [0, %d], got %d", MAX_DIM, s->n_donors);
    if (s->donor_dim > 0 && s->n_donors < 1)
        return gi_fail(err, "model.donor_dim is %d but there are no donors (set donor_dim to 0)",
                       s->donor_dim);
    if (!dim_ok(s->n_labels, 0))
        return gi_fail(err, "the number of anatomical labels must be in [0, %d], got %d",
                       MAX_DIM, s->n_labels);
    if (s->n_labels > 0 && !dim_ok(s->anatomy_dim, 1))
        return gi_fail(err, "model.anatomy_dim must be in [1, %d] when anatomical labels are used, got %d",
                       MAX_DIM, s->anatomy_dim);
    /* Each term is <= MAX_DIM, so the sum fits an int. */
    if (layout_of(s).total > MAX_DIM)
        return gi_fail(err, "the first-layer input width %d exceeds %d", layout_of(s).total, MAX_DIM);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Layout */

int gi_model_alloc(gi_model *m, const gi_model_spec *spec, gi_err *err)
{
    if (!m)
        return gi_fail(err, "gi_model_alloc: model is NULL");
    memset(m, 0, sizeof *m);
    if (validate_spec(spec, err) != 0)
        return -1;
    m->spec = *spec;
    input_layout L = layout_of(spec);
    m->in_dim = L.total;
    m->n_out = spec->gene_mode == GI_GENE_FACTORIZED ? spec->n_genes : 1;
    m->n_layers = spec->hidden_layers + 1;
    m->layers = calloc((size_t)m->n_layers, sizeof *m->layers);
    if (!m->layers)
        goto oom;

    size_t off = 0;
    for (int l = 0; l < m->n_layers; l++) {
        gi_layer *ly = &m->layers[l];
        int last = l == m->n_layers - 1;
        ly->in = l == 0 ? m->in_dim : spec->width;
        ly->out = last ? m->n_out : spec->width;
        ly->w_off = off;
        off += (size_t)ly->in * (size_t)ly->out;
        ly->b_off = off;
        off += (size_t)ly->out;
        if (last || spec->arch == GI_ARCH_FOURIER)
            ly->omega = 0.0f;
        else
            ly->omega = l == 0 ? spec->omega0 : spec->omega_hidden;
    }
    m->donor_off = off;
    off += (size_t)spec->n_donors * (size_t)L.donor_w;
    m->anat_off = off;
    off += (size_t)spec->n_labels * (size_t)L.anat_w;
    m->gene_off = off;
    if (L.gene_trained)
        off += (size_t)spec->n_genes * (size_t)L.gene_w;
    m->n_params = off;

    m->fourier_off = 0;
    m->n_fixed = spec->arch == GI_ARCH_FOURIER ? (size_t)spec->fourier_features * 3 : 0;
    m->code_off = m->n_fixed;
    if (spec->gene_mode == GI_GENE_CONCAT && spec->gene_code == GI_CODE_SPECTRAL)
        m->n_fixed += (size_t)spec->n_genes * (size_t)L.gene_w;

    /* Never NULL, even when a buffer is empty, so callers need no special case. */
    m->params = calloc(m->n_params ? m->n_params : 1, sizeof(float));
    m->grads = calloc(m->n_params ? m->n_params : 1, sizeof(float));
    m->fixed = calloc(m->n_fixed ? m->n_fixed : 1, sizeof(float));
    m->donor_in_average = malloc(spec->n_donors > 0 ? (size_t)spec->n_donors : 1);
    if (!m->params || !m->grads || !m->fixed || !m->donor_in_average)
        goto oom;
    memset(m->donor_in_average, 1, spec->n_donors > 0 ? (size_t)spec->n_donors : 1);
    return 0;
oom:
    gi_model_free(m);
    return gi_fail(err, "out of memory allocating the model (%d hidden layers of width %d, %d genes)",
                   spec->hidden_layers, spec->width, spec->n_genes);
}

void gi_model_free(gi_model *m)
{
    if (!m)
        return;
    free(m->layers);
    free(m->params);
    free(m->grads);
    free(m->fixed);
    free(m->donor_in_average);
    memset(m, 0, sizeof *m);
}

/* Append one block (if non-empty) to out[0..max) and count it. */
static void add_block(gi_param_block *out, int max, int *n, const char *name, size_t off, int rows, int cols)
{
    if ((size_t)rows * (size_t)cols == 0)
        return;
    if (*n < max) {
        snprintf(out[*n].name, sizeof out[*n].name, "%s", name);
        out[*n].off = off;
        out[*n].rows = rows;
        out[*n].cols = cols;
    }
    (*n)++;
}

int gi_model_param_blocks(const gi_model *m, gi_param_block *out, int max)
{
    int n = 0;
    char name[24];
    for (int l = 0; l < m->n_layers; l++) {
        const gi_layer *ly = &m->layers[l];
        int last = l == m->n_layers - 1;
        if (last)
            snprintf(name, sizeof name, "output.W");
        else
            snprintf(name, sizeof name, "layer%d.W", l);
        add_block(out, max, &n, name, ly->w_off, ly->out, ly->in);
        if (last)
            snprintf(name, sizeof name, "output.b");
        else
            snprintf(name, sizeof name, "layer%d.b", l);
        add_block(out, max, &n, name, ly->b_off, 1, ly->out);
    }
    input_layout L = layout_of(&m->spec);
    add_block(out, max, &n, "donor", m->donor_off, m->spec.n_donors, L.donor_w);
    add_block(out, max, &n, "anatomy", m->anat_off, m->spec.n_labels, L.anat_w);
    if (L.gene_trained)
        add_block(out, max, &n, "gene", m->gene_off, m->spec.n_genes, L.gene_w);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Initialisation */

/* Fill n floats with U(-bound, bound) from (seed, stream), counters from c0. */
static void fill_uniform(float *p, size_t n, double bound, uint64_t seed, uint64_t stream, uint64_t c0)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((2.0 * gi_rng_uniform(seed, stream, c0 + i) - 1.0) * bound);
}

static void fill_normal(float *p, size_t n, double std, uint64_t seed, uint64_t stream)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(std * gi_rng_normal(seed, stream, i));
}

void gi_model_set_gene_positions(gi_model *m, const float *t)
{
    const gi_model_spec *s = &m->spec;
    if (s->gene_mode != GI_GENE_CONCAT || s->gene_code != GI_CODE_SPECTRAL)
        return;
    int F = s->gene_frequencies;
    /* code_g = [sin(2^f pi t_g) for f < F, cos(2^f pi t_g) for f < F] */
    for (int g = 0; g < s->n_genes; g++) {
        float *code = m->fixed + m->code_off + (size_t)g * 2 * (size_t)F;
        for (int f = 0; f < F; f++) {
            double a = ldexp(1.0, f) * GI_PI * (double)t[g];
            code[f] = (float)sin(a);
            code[F + f] = (float)cos(a);
        }
    }
}

int gi_model_init(gi_model *m, const gi_model_spec *spec, uint64_t seed, gi_err *err)
{
    if (gi_model_alloc(m, spec, err) != 0)
        return -1;
    const gi_model_spec *s = &m->spec;
    for (int l = 0; l < m->n_layers; l++) {
        gi_layer *ly = &m->layers[l];
        float *W = m->params + ly->w_off, *b = m->params + ly->b_off;
        size_t nw = (size_t)ly->in * (size_t)ly->out;
        uint64_t stream = GI_STREAM_INIT + (uint64_t)l;
        int last = l == m->n_layers - 1;
        double in = (double)ly->in;
        double wb, bb; /* bounds of W and b; bb = 0 means a zero bias */
        if (s->arch == GI_ARCH_SIREN) {
            if (l == 0) {
                wb = 1.0 / in;
                bb = 1.0 / in;
            } else {
                wb = sqrt(6.0 / in) / (double)s->omega_hidden;
                bb = last ? 0.0 : 1.0 / sqrt(in);
            }
        } else {
            wb = last ? sqrt(1.0 / in) : sqrt(6.0 / in);
            bb = 0.0;
        }
        fill_uniform(W, nw, wb, seed, stream, 0);
        if (bb > 0.0)
            fill_uniform(b, (size_t)ly->out, bb, seed, stream, nw);
    }
    input_layout L = layout_of(s);
    fill_normal(m->params + m->donor_off, (size_t)s->n_donors * (size_t)L.donor_w, 0.1, seed, STREAM_DONOR);
    fill_normal(m->params + m->anat_off, (size_t)s->n_labels * (size_t)L.anat_w, 0.1, seed, STREAM_ANATOMY);
    if (L.gene_trained)
        fill_normal(m->params + m->gene_off, (size_t)s->n_genes * (size_t)L.gene_w, 0.1, seed, STREAM_GENE);

    if (s->arch == GI_ARCH_FOURIER)
        fill_normal(m->fixed + m->fourier_off, (size_t)s->fourier_features * 3,
                    (double)s->fourier_scale, seed, GI_STREAM_FOURIER);
    if (s->gene_mode == GI_GENE_CONCAT && s->gene_code == GI_CODE_SPECTRAL) {
        float *t = malloc((size_t)s->n_genes * sizeof *t);
        if (!t) {
            gi_model_free(m);
            return gi_fail(err, "out of memory initialising %d gene codes", s->n_genes);
        }
        for (int g = 0; g < s->n_genes; g++)
            t[g] = (float)((double)g / (double)(s->n_genes > 1 ? s->n_genes - 1 : 1));
        gi_model_set_gene_positions(m, t);
        free(t);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Workspace */

struct gi_workspace {
    int max_batch, n_layers;
    int n;                   /* points in the last forward */
    float **x;               /* x[l]: input of layer l, [max_batch][layers[l].in] */
    float **d;               /* siren: d[l] = omega cos(omega z) of hidden layer l, [max_batch][width];
                              * NULL entries for ReLU */
    float *dz, *dx;          /* backward scratch, [max_batch][max layer width] */
    double *colsum;          /* bias-gradient sums, [max layer width] */
    float *donor_mean;       /* [donor_dim] */
    float *pool;             /* inference only: the one buffer x[] points into */
};

void gi_workspace_free(gi_workspace *ws)
{
    if (!ws)
        return;
    for (int l = 0; l < ws->n_layers && !ws->pool; l++) {
        if (ws->x)
            free(ws->x[l]);
        if (ws->d)
            free(ws->d[l]);
    }
    free(ws->x);
    free(ws->d);
    free(ws->dz);
    free(ws->dx);
    free(ws->colsum);
    free(ws->donor_mean);
    free(ws->pool);
    free(ws);
}

gi_workspace *gi_workspace_new(const gi_model *m, int max_batch)
{
    if (!m || !m->layers || max_batch < 1)
        return NULL;
    gi_workspace *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->max_batch = max_batch;
    ws->n_layers = m->n_layers;
    ws->x = calloc((size_t)m->n_layers, sizeof *ws->x);
    ws->d = calloc((size_t)m->n_layers, sizeof *ws->d);
    if (!ws->x || !ws->d)
        goto fail;
    size_t nb = (size_t)max_batch;
    int widest = 1;
    for (int l = 0; l < m->n_layers; l++) {
        const gi_layer *ly = &m->layers[l];
        ws->x[l] = malloc(nb * (size_t)ly->in * sizeof(float));
        if (!ws->x[l])
            goto fail;
        if (l < m->n_layers - 1 && m->spec.arch == GI_ARCH_SIREN) {
            ws->d[l] = malloc(nb * (size_t)ly->out * sizeof(float));
            if (!ws->d[l])
                goto fail;
        }
        if (ly->in > widest)
            widest = ly->in;
        if (ly->out > widest)
            widest = ly->out;
    }
    ws->dz = malloc(nb * (size_t)widest * sizeof(float));
    ws->dx = malloc(nb * (size_t)widest * sizeof(float));
    ws->colsum = malloc((size_t)widest * sizeof(double));
    ws->donor_mean = calloc(m->spec.donor_dim > 0 ? (size_t)m->spec.donor_dim : 1, sizeof(float));
    if (!ws->dz || !ws->dx || !ws->colsum || !ws->donor_mean)
        goto fail;
    return ws;
fail:
    gi_workspace_free(ws);
    return NULL;
}

/* Inference: gi_model_forward needs x[l] (the input of layer l) only until
 * layer l has read it, and no derivatives, so two hidden buffers used in turn
 * suffice: x[l + 1] = h[l % 2]. The arithmetic is exactly that of the
 * training workspace - the same sgemm calls and activation code on the same
 * values - so outputs do not depend on which workspace computed them. */
gi_workspace *gi_workspace_new_inference(const gi_model *m, int max_batch)
{
    if (!m || !m->layers || max_batch < 1)
        return NULL;
    gi_workspace *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->max_batch = max_batch;
    ws->n_layers = m->n_layers;
    size_t nb = (size_t)max_batch, hidden = 1, in0 = (size_t)m->layers[0].in;
    for (int l = 0; l < m->n_layers - 1; l++)
        if ((size_t)m->layers[l].out > hidden)
            hidden = (size_t)m->layers[l].out;
    ws->x = calloc((size_t)m->n_layers, sizeof *ws->x);
    ws->d = calloc((size_t)m->n_layers, sizeof *ws->d);
    ws->pool = malloc(nb * (in0 + 2 * hidden) * sizeof(float));
    ws->donor_mean = calloc(m->spec.donor_dim > 0 ? (size_t)m->spec.donor_dim : 1, sizeof(float));
    if (!ws->x || !ws->d || !ws->pool || !ws->donor_mean) {
        free(ws->pool); /* x[] holds no buffers of its own yet */
        ws->pool = NULL;
        if (ws->x)
            memset(ws->x, 0, (size_t)m->n_layers * sizeof *ws->x);
        gi_workspace_free(ws);
        return NULL;
    }
    float *h[2] = { ws->pool + nb * in0, ws->pool + nb * (in0 + hidden) };
    ws->x[0] = ws->pool;
    for (int l = 0; l < m->n_layers - 1; l++)
        ws->x[l + 1] = h[l % 2];
    return ws;
}

size_t gi_workspace_bytes(const gi_model *m, int max_batch, int inference)
{
    size_t nb = (size_t)max_batch, floats = 0, hidden = 1, widest = 1;
    for (int l = 0; l < m->n_layers; l++) {
        const gi_layer *ly = &m->layers[l];
        int is_hidden = l < m->n_layers - 1;
        if (is_hidden && (size_t)ly->out > hidden)
            hidden = (size_t)ly->out;
        if ((size_t)ly->in > widest)
            widest = (size_t)ly->in;
        if ((size_t)ly->out > widest)
            widest = (size_t)ly->out;
        floats += nb * (size_t)ly->in + (is_hidden && m->spec.arch == GI_ARCH_SIREN ? nb * (size_t)ly->out : 0);
    }
    if (inference)
        return nb * ((size_t)m->layers[0].in + 2 * hidden) * sizeof(float);
    return (floats + 2 * nb * widest) * sizeof(float) + widest * sizeof(double);
}

const float *gi_workspace_layer_input(const gi_workspace *ws, int layer)
{
    if (!ws || layer < 0 || layer >= ws->n_layers)
        return NULL;
    return ws->x[layer];
}

/* ------------------------------------------------------------------------ */
/* Layers */

/* y[n][out] = x[n][in] W[out][in]^T, without the bias (added by the
 * activation pass that follows, in the same sweep over y). */
static void linear_forward(float *y, const float *x, const float *W, int n, int in, int out)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, W, in, 0.0f, y, out);
}

/* y[i][j] += b[j]: the output layer's bias */
GI_VECTORISED static void bias_forward(float *y, const float *b, int n, int out)
{
    for (int i = 0; i < n; i++) {
        float *row = y + (size_t)i * out;
#pragma omp simd
        for (int j = 0; j < out; j++)
            row[j] += b[j];
    }
}

/* Column sums of dz[n][out] into colsum[out], in double, each column's sum
 * running over the rows in order. */
GI_VECTORISED static void column_sums(double *colsum, const float *dz, int n, int out)
{
    for (int j = 0; j < out; j++)
        colsum[j] = 0.0;
    for (int i = 0; i < n; i++) {
        const float *row = dz + (size_t)i * out;
        /* across columns: each column's sum still runs over the rows in order */
#pragma omp simd
        for (int j = 0; j < out; j++)
            colsum[j] += row[j];
    }
}

/* From dz[n][out]: dW[out][in] += dz^T x, db[out] += column sums of dz (with
 * set: dW = dz^T x and db = the column sums, whatever they held), and,
 * if dx is not NULL, dx[n][dx_cols] = dz W[:, dx_col0 : dx_col0 + dx_cols]
 * (only the input columns someone needs a gradient for). The column sums are
 * taken in double (colsum[out]) and added once, so a bias gradient does not
 * depend on what was already accumulated in db; summed = 1 says colsum
 * already holds them (the activation's backward pass computed them while it
 * wrote dz: one sweep over dz fewer, the same sums). */
static void linear_backward(float *dx, int dx_col0, int dx_cols, float *dW, float *db, double *colsum, int summed,
                            const float *dz, const float *x, const float *W, int n, int in, int out, int set)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dz, out, x, in, set ? 0.0f : 1.0f, dW,
                in);
    if (!summed)
        column_sums(colsum, dz, n, out);
    for (int j = 0; j < out; j++)
        db[j] = set ? (float)colsum[j] : db[j] + (float)colsum[j];
    if (dx && dx_cols > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dx_cols, out, 1.0f, dz, out, W + dx_col0, in,
                    0.0f, dx, dx_cols);
}

/* In place on y[n][out] = x W^T: a = sin(omega (y + b)), and (d not NULL)
 * the derivative d = omega cos(omega (y + b)) for the backward pass: one
 * fused pass per row (gi_sine_act). */
static void sine_forward(float *y, float *d, const float *b, float omega, int n, int out)
{
    for (int i = 0; i < n; i++)
        gi_sine_act(y + (size_t)i * out, d ? d + (size_t)i * out : NULL, b, omega, (size_t)out);
}

/* dz[n][out] = da d (element-wise), and colsum[out] = the column sums of dz
 * exactly as column_sums gives them (the next linear_backward's bias
 * gradient), in the same sweep. */
GI_VECTORISED static void sine_backward(float *dz, double *colsum, const float *da, const float *d, int n, int out)
{
    for (int j = 0; j < out; j++)
        colsum[j] = 0.0;
    for (int i = 0; i < n; i++) {
        size_t r = (size_t)i * out;
#pragma omp simd
        for (int j = 0; j < out; j++) {
            float v = da[r + j] * d[r + j];
            dz[r + j] = v;
            colsum[j] += v;
        }
    }
}

/* In place on y[n][out] = x W^T: a = max(y + b, 0) */
GI_VECTORISED static void relu_forward(float *y, const float *b, int n, int out)
{
    for (int i = 0; i < n; i++) {
        float *row = y + (size_t)i * out;
#pragma omp simd
        for (int j = 0; j < out; j++) {
            float z = row[j] + b[j];
            row[j] = z > 0.0f ? z : 0.0f;
        }
    }
}

/* dz[n][out] = da where the ReLU passed its input (a > 0, i.e. z > 0), else
 * 0; colsum as in sine_backward. */
GI_VECTORISED static void relu_backward(float *dz, double *colsum, const float *da, const float *a, int n, int out)
{
    for (int j = 0; j < out; j++)
        colsum[j] = 0.0;
    for (int i = 0; i < n; i++) {
        size_t r = (size_t)i * out;
        /* two loops over the row (still in L1): GCC does not vectorise the
         * select and the double sums in one */
#pragma omp simd
        for (int j = 0; j < out; j++)
            dz[r + j] = a[r + j] > 0.0f ? da[r + j] : 0.0f;
#pragma omp simd
        for (int j = 0; j < out; j++)
            colsum[j] += dz[r + j];
    }
}

/* feat[n][2F] = [sin(2 pi B xyz), cos(2 pi B xyz)], B[F][3], row stride ld.
 * The angle is formed in double and rounded once; sin and cos then come from
 * the vectorised float sincos (the angles are staged in the cosine half).
 * No backward: neither B nor the coordinates are trained. */
static void fourier_forward(float *feat, int ld, const float *xyz, const float *B, int n, int F)
{
    for (int i = 0; i < n; i++) {
        const float *p = xyz + (size_t)i * 3;
        float *row = feat + (size_t)i * ld;
        for (int j = 0; j < F; j++) {
            const float *bj = B + (size_t)j * 3;
            row[F + j] = (float)(2.0 * GI_PI * ((double)bj[0] * p[0] + (double)bj[1] * p[1] + (double)bj[2] * p[2]));
        }
        gi_sincosf(row + F, row, row + F, (size_t)F);
    }
}

int gi_model_coord_width(const gi_model *m)
{
    return layout_of(&m->spec).coords;
}

void gi_model_coord_features(const gi_model *m, const float *xyz, int n, float *feat)
{
    if (m->spec.arch == GI_ARCH_FOURIER)
        fourier_forward(feat, 2 * m->spec.fourier_features, xyz, m->fixed + m->fourier_off, n,
                        m->spec.fourier_features);
    else
        memcpy(feat, xyz, (size_t)n * 3 * sizeof(float));
}

/* mean[dim] = mean over the rows r of E[rows][dim] with use[r] != 0, in a
 * fixed sequential order (zero if no row is used). */
static void embedding_mean(float *mean, const float *E, const unsigned char *use, int rows, int dim)
{
    int used = 0;
    for (int r = 0; r < rows; r++)
        used += use[r] != 0;
    for (int k = 0; k < dim; k++) {
        double s = 0.0;
        for (int r = 0; r < rows; r++)
            if (use[r])
                s += E[(size_t)r * dim + k];
        mean[k] = used ? (float)(s / used) : 0.0f;
    }
}

/* Copy row idx[i] of E[rows][dim] (or `fallback` when idx[i] < 0) into
 * column block [col, col + dim) of x[n][ld]. */
static void embedding_forward(float *x, int ld, int col, const float *E, const float *fallback,
                              const int *idx, int n, int rows, int dim)
{
    for (int i = 0; i < n; i++) {
        const float *src;
        if (idx[i] < 0) {
            assert(fallback && idx[i] == -1);
            src = fallback;
        } else {
            assert(idx[i] < rows);
            src = E + (size_t)idx[i] * dim;
        }
        memcpy(x + (size_t)i * ld + col, src, (size_t)dim * sizeof(float));
    }
    (void)rows;
}

/* dE[idx[i]] += dx[i][col : col + dim] for idx[i] >= 0 (the mean row of
 * idx = -1 is treated as a constant: it gets no gradient). */
static void embedding_backward(float *dE, const float *dx, int ld, int col, const int *idx, int n, int dim)
{
    for (int i = 0; i < n; i++) {
        if (idx[i] < 0)
            continue;
        float *dst = dE + (size_t)idx[i] * dim;
        const float *src = dx + (size_t)i * ld + col;
        for (int k = 0; k < dim; k++)
            dst[k] += src[k];
    }
}

/* ------------------------------------------------------------------------ */
/* Network */

/* The forward pass; writes outputs [o0, o0 + no) of the output layer only. */
static void forward(const gi_model *m, const gi_batch *b, const float *coord_table, const int *coord_row,
                    gi_workspace *ws, int o0, int no, float *out)
{
    int n = b->n;
    ws->n = n > 0 ? n : 0;
    if (n <= 0)
        return;
    assert(n <= ws->max_batch && ws->n_layers == m->n_layers);
    const gi_model_spec *s = &m->spec;
    input_layout L = layout_of(s);
    float *x0 = ws->x[0];
    int ld = m->in_dim;

    /* First-layer input: coordinates (or their Fourier features), then the
     * conditioning embeddings. */
    if (coord_table) {
        size_t cw = (size_t)L.coords;
        for (int i = 0; i < n; i++)
            memcpy(x0 + (size_t)i * ld, coord_table + (size_t)coord_row[i] * cw, cw * sizeof(float));
    } else if (s->arch == GI_ARCH_FOURIER) {
        fourier_forward(x0, ld, b->xyz, m->fixed + m->fourier_off, n, s->fourier_features);
    } else {
        for (int i = 0; i < n; i++)
            memcpy(x0 + (size_t)i * ld, b->xyz + (size_t)i * 3, 3 * sizeof(float));
    }
    if (L.donor_w > 0) {
        assert(b->donor);
        const float *E = m->params + m->donor_off;
        embedding_mean(ws->donor_mean, E, m->donor_in_average, s->n_donors, L.donor_w);
        embedding_forward(x0, ld, L.donor_col, E, ws->donor_mean, b->donor, n, s->n_donors, L.donor_w);
    }
    if (L.anat_w > 0) {
        assert(b->label);
        embedding_forward(x0, ld, L.anat_col, m->params + m->anat_off, NULL, b->label, n, s->n_labels, L.anat_w);
    }
    if (L.gene_w > 0) {
        assert(b->gene);
        const float *E = L.gene_trained ? m->params + m->gene_off : m->fixed + m->code_off;
        embedding_forward(x0, ld, L.gene_col, E, NULL, b->gene, n, s->n_genes, L.gene_w);
    }

    for (int l = 0; l < m->n_layers; l++) {
        const gi_layer *ly = &m->layers[l];
        const float *W = m->params + ly->w_off, *bias = m->params + ly->b_off;
        if (l == m->n_layers - 1) {
            linear_forward(out, ws->x[l], W + (size_t)o0 * ly->in, n, ly->in, no);
            bias_forward(out, bias + o0, n, no);
            break;
        }
        linear_forward(ws->x[l + 1], ws->x[l], W, n, ly->in, ly->out);
        if (s->arch == GI_ARCH_SIREN) {
            /* inference keeps no derivative (d[l] is NULL) */
            sine_forward(ws->x[l + 1], ws->d[l], bias, ly->omega, n, ly->out);
        } else {
            relu_forward(ws->x[l + 1], bias, n, ly->out);
        }
    }
}

void gi_model_forward(const gi_model *m, const gi_batch *b, gi_workspace *ws, float *out)
{
    forward(m, b, NULL, NULL, ws, 0, m->n_out, out);
}

void gi_model_forward_coords(const gi_model *m, const gi_batch *b, const float *coord_table,
                             const int *coord_row, gi_workspace *ws, float *out)
{
    forward(m, b, coord_table, coord_row, ws, 0, m->n_out, out);
}

void gi_model_forward_outputs(const gi_model *m, const gi_batch *b, gi_workspace *ws, int o0, int no, float *out)
{
    assert(o0 >= 0 && no >= 1 && o0 + no <= m->n_out);
    forward(m, b, NULL, NULL, ws, o0, no, out);
}

static void backward(gi_model *m, const gi_batch *b, gi_workspace *ws, const float *dout, int set)
{
    assert(!ws->pool && "backward needs a training workspace (gi_workspace_new)");
    int n = b->n;
    if (set)
        /* the embedding gradients are scattered (+=) row by row; the layers'
         * dW and db are written whole below */
        memset(m->grads + m->donor_off, 0, (m->n_params - m->donor_off) * sizeof(float));
    if (n <= 0) {
        if (set)
            memset(m->grads, 0, m->n_params * sizeof(float));
        return;
    }
    assert(n == ws->n);
    const gi_model_spec *s = &m->spec;
    input_layout L = layout_of(s);

    /* Input columns of layer 0 that need a gradient: donor, anatomy and a
     * trained gene embedding are contiguous from donor_col. */
    int train_end = L.gene_trained ? L.gene_col + L.gene_w : L.gene_col;
    int dx0_cols = train_end - L.donor_col;

    const float *dz = dout;
    int summed = 0; /* ws->colsum holds dz's column sums */
    for (int l = m->n_layers - 1; l >= 0; l--) {
        const gi_layer *ly = &m->layers[l];
        const float *W = m->params + ly->w_off;
        float *dW = m->grads + ly->w_off, *db = m->grads + ly->b_off;
        if (l > 0) {
            linear_backward(ws->dx, 0, ly->in, dW, db, ws->colsum, summed, dz, ws->x[l], W, n, ly->in, ly->out,
                            set);
            /* through the activation of layer l - 1 */
            const gi_layer *prev = &m->layers[l - 1];
            if (s->arch == GI_ARCH_SIREN)
                sine_backward(ws->dz, ws->colsum, ws->dx, ws->d[l - 1], n, prev->out);
            else
                relu_backward(ws->dz, ws->colsum, ws->dx, ws->x[l], n, prev->out);
            dz = ws->dz;
            summed = 1;
        } else {
            linear_backward(dx0_cols > 0 ? ws->dx : NULL, L.donor_col, dx0_cols, dW, db, ws->colsum, summed, dz,
                            ws->x[0], W, n, ly->in, ly->out, set);
        }
    }
    if (dx0_cols <= 0)
        return;
    /* ws->dx is [n][dx0_cols], column 0 = input column donor_col. */
    if (L.donor_w > 0)
        embedding_backward(m->grads + m->donor_off, ws->dx, dx0_cols, 0, b->donor, n, L.donor_w);
    if (L.anat_w > 0)
        embedding_backward(m->grads + m->anat_off, ws->dx, dx0_cols, L.anat_col - L.donor_col, b->label, n,
                           L.anat_w);
    if (L.gene_trained)
        embedding_backward(m->grads + m->gene_off, ws->dx, dx0_cols, L.gene_col - L.donor_col, b->gene, n,
                           L.gene_w);
}

void gi_model_backward(gi_model *m, const gi_batch *b, gi_workspace *ws, const float *dout)
{
    backward(m, b, ws, dout, 0);
}

void gi_model_backward_set(gi_model *m, const gi_batch *b, gi_workspace *ws, const float *dout)
{
    backward(m, b, ws, dout, 1);
}
