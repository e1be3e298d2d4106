/* test_model.c - the network: gradients, reference forward, init, layout,
 * determinism, spectral gene positions, spec validation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "geneinr/config.h"
#include "geneinr/gene_order.h"
#include "geneinr/model.h"
#include "geneinr/rng.h"

#define BATCH 5
#define MAX_BATCH 16

/* Small sizes so float central differences are meaningful. */
static gi_model_spec small_spec(int arch, int gene_mode, int gene_code)
{
    gi_model_spec s;
    memset(&s, 0, sizeof s);
    s.arch = arch;
    s.gene_mode = gene_mode;
    s.gene_code = gene_code;
    s.hidden_layers = 2;
    s.width = 8;
    s.omega0 = 3.0f;
    s.omega_hidden = 3.0f;
    s.fourier_features = 4;
    s.fourier_scale = 0.5f;
    s.n_genes = 3;
    s.gene_dim = 4;
    s.gene_frequencies = 3;
    s.n_donors = 3;
    s.donor_dim = 2;
    s.n_labels = 4;
    s.anatomy_dim = 3;
    return s;
}

typedef struct test_batch {
    float xyz[MAX_BATCH * 3];
    int donor[MAX_BATCH], label[MAX_BATCH], gene[MAX_BATCH];
    gi_batch b;
} test_batch;

static void make_batch(test_batch *tb, const gi_model *m, int n, uint64_t seed)
{
    for (int i = 0; i < n * 3; i++)
        tb->xyz[i] = (float)(2.0 * gi_rng_uniform(seed, 1, (uint64_t)i) - 1.0);
    for (int i = 0; i < n; i++) {
        tb->donor[i] = m->spec.n_donors > 0 ? (int)gi_rng_below(seed, 2, (uint64_t)i, (uint64_t)m->spec.n_donors) : 0;
        tb->label[i] = m->spec.n_labels > 0 ? (int)gi_rng_below(seed, 3, (uint64_t)i, (uint64_t)m->spec.n_labels) : 0;
        tb->gene[i] = (int)gi_rng_below(seed, 4, (uint64_t)i, (uint64_t)m->spec.n_genes);
    }
    tb->b.n = n;
    tb->b.xyz = tb->xyz;
    tb->b.donor = m->spec.donor_dim > 0 ? tb->donor : NULL;
    tb->b.label = m->spec.n_labels > 0 ? tb->label : NULL;
    tb->b.gene = m->spec.gene_mode == GI_GENE_CONCAT ? tb->gene : NULL;
}

/* loss = sum out * wts, accumulated in double */
static double weighted_loss(const gi_model *m, const gi_batch *b, gi_workspace *ws, const float *wts, float *out)
{
    gi_model_forward(m, b, ws, out);
    double L = 0.0;
    for (int k = 0; k < b->n * m->n_out; k++)
        L += (double)out[k] * wts[k];
    return L;
}

/* ------------------------------------------------------------------------ */
/* Reference forward: naive double loops written from model.h alone. */

static void reference_forward(const gi_model *m, const gi_batch *b, double *out)
{
    const gi_model_spec *s = &m->spec;
    int maxw = m->in_dim > s->width ? m->in_dim : s->width;
    double *x = calloc((size_t)maxw, sizeof *x), *y = calloc((size_t)(maxw > m->n_out ? maxw : m->n_out), sizeof *y);
    for (int i = 0; i < b->n; i++) {
        int c = 0;
        const float *p = b->xyz + 3 * i;
        if (s->arch == GI_ARCH_SIREN) {
            for (int k = 0; k < 3; k++)
                x[c++] = p[k];
        } else {
            int F = s->fourier_features;
            const float *B = m->fixed + m->fourier_off;
            for (int j = 0; j < F; j++) {
                double a = 2 * M_PI * (B[3 * j] * (double)p[0] + B[3 * j + 1] * (double)p[1] + B[3 * j + 2] * (double)p[2]);
                x[c + j] = sin(a);
                x[c + F + j] = cos(a);
            }
            c += 2 * F;
        }
        for (int k = 0; k < s->donor_dim; k++) {
            double v = 0;
            if (b->donor[i] < 0) {
                for (int d = 0; d < s->n_donors; d++)
                    v += m->params[m->donor_off + (size_t)d * s->donor_dim + k];
                v /= s->n_donors;
            } else {
                v = m->params[m->donor_off + (size_t)b->donor[i] * s->donor_dim + k];
            }
            x[c++] = v;
        }
        if (s->n_labels > 0)
            for (int k = 0; k < s->anatomy_dim; k++)
                x[c++] = m->params[m->anat_off + (size_t)b->label[i] * s->anatomy_dim + k];
        if (s->gene_mode == GI_GENE_CONCAT) {
            int g = b->gene[i];
            if (s->gene_code == GI_CODE_EMBEDDING) {
                for (int k = 0; k < s->gene_dim; k++)
                    x[c++] = m->params[m->gene_off + (size_t)g * s->gene_dim + k];
            } else {
                int F = s->gene_frequencies;
                /* the code values themselves are checked in test_layout */
                for (int k = 0; k < 2 * F; k++)
                    x[c++] = m->fixed[m->code_off + (size_t)g * 2 * F + k];
            }
        }
        for (int l = 0; l < m->n_layers; l++) {
            const gi_layer *ly = &m->layers[l];
            int last = l == m->n_layers - 1;
            for (int o = 0; o < ly->out; o++) {
                double z = m->params[ly->b_off + o];
                for (int k = 0; k < ly->in; k++)
                    z += m->params[ly->w_off + (size_t)o * ly->in + k] * x[k];
                if (last)
                    y[o] = z;
                else if (s->arch == GI_ARCH_SIREN)
                    y[o] = sin(ly->omega * z);
                else
                    y[o] = z > 0 ? z : 0;
            }
            memcpy(x, y, (size_t)ly->out * sizeof *x);
        }
        for (int o = 0; o < m->n_out; o++)
            out[(size_t)i * m->n_out + o] = x[o];
    }
    free(x);
    free(y);
}

/* ------------------------------------------------------------------------ */

static const char *config_name(const gi_model_spec *s)
{
    if (s->arch == GI_ARCH_SIREN) {
        if (s->gene_mode == GI_GENE_FACTORIZED)
            return "siren+factorized";
        return s->gene_code == GI_CODE_EMBEDDING ? "siren+concat+embedding" : "siren+concat+spectral";
    }
    if (s->gene_mode == GI_GENE_FACTORIZED)
        return "fourier+factorized";
    return s->gene_code == GI_CODE_EMBEDDING ? "fourier+concat+embedding" : "fourier+concat+spectral";
}

/* Finite-difference check of a sample of every parameter block. */
static void test_gradients(gi_model_spec spec)
{
    char name[160];
    const char *cfg = config_name(&spec);
    gi_model m;
    gi_err err;
    if (gi_model_init(&m, &spec, 42, &err) != 0) {
        snprintf(name, sizeof name, "%s: init", cfg);
        CHECKF(0, name, "%s", err.msg);
        return;
    }
    if (spec.gene_mode == GI_GENE_CONCAT && spec.gene_code == GI_CODE_SPECTRAL) {
        float t[3] = {0.1f, 0.8f, 0.45f};
        gi_model_set_gene_positions(&m, t);
    }
    gi_workspace *ws = gi_workspace_new(&m, MAX_BATCH);
    test_batch tb;
    make_batch(&tb, &m, BATCH, 7);
    float *out = calloc((size_t)MAX_BATCH * m.n_out, sizeof *out);
    float *wts = calloc((size_t)MAX_BATCH * m.n_out, sizeof *wts);
    for (int k = 0; k < BATCH * m.n_out; k++)
        wts[k] = (float)(2.0 * gi_rng_uniform(99, 0, (uint64_t)k) - 1.0);

    /* reference forward */
    double *ref = calloc((size_t)BATCH * m.n_out, sizeof *ref);
    reference_forward(&m, &tb.b, ref);
    gi_model_forward(&m, &tb.b, ws, out);
    double worst = 0;
    for (int k = 0; k < BATCH * m.n_out; k++) {
        double e = fabs(out[k] - ref[k]) / (1.0 + fabs(ref[k]));
        worst = e > worst ? e : worst;
    }
    snprintf(name, sizeof name, "%s: forward matches the naive double reference", cfg);
    CHECKF(worst < 1e-5, name, "worst relative error %g", worst);

    memset(m.grads, 0, m.n_params * sizeof(float));
    gi_model_forward(&m, &tb.b, ws, out);
    gi_model_backward(&m, &tb.b, ws, wts);

    gi_param_block blocks[32];
    int nb = gi_model_param_blocks(&m, blocks, 32);
    int expect_blocks = 2 * m.n_layers + 1 + 1 + (spec.gene_mode == GI_GENE_CONCAT && spec.gene_code == GI_CODE_EMBEDDING);
    snprintf(name, sizeof name, "%s: %d parameter blocks listed", cfg, expect_blocks);
    CHECKF(nb == expect_blocks, name, "got %d", nb);

    const double h = 2e-3;
    for (int bi = 0; bi < nb && bi < 32; bi++) {
        size_t size = (size_t)blocks[bi].rows * blocks[bi].cols;
        int samples = size < 30 ? (int)size : 30;
        int bad = 0, nonzero = 0;
        double worst_a = 0, worst_n = 0;
        for (int k = 0; k < samples; k++) {
            size_t idx = blocks[bi].off + (samples == (int)size ? (size_t)k : gi_rng_below(5, (uint64_t)bi, (uint64_t)k, size));
            float saved = m.params[idx];
            m.params[idx] = saved + (float)h;
            double lp = weighted_loss(&m, &tb.b, ws, wts, out);
            m.params[idx] = saved - (float)h;
            double lm = weighted_loss(&m, &tb.b, ws, wts, out);
            m.params[idx] = saved;
            double num = (lp - lm) / (((double)(saved + (float)h)) - (double)(saved - (float)h));
            double ana = m.grads[idx];
            if (fabs(ana) > 1e-6)
                nonzero++;
            if (fabs(ana - num) > 2e-2 * fmax(fabs(ana), fabs(num)) + 1e-3) {
                if (!bad) {
                    worst_a = ana;
                    worst_n = num;
                }
                bad++;
            }
        }
        snprintf(name, sizeof name, "%s: gradient of %.23s (%d entries)", cfg, blocks[bi].name, samples);
        CHECKF(bad == 0, name, "%d mismatches, e.g. analytic %g vs numeric %g", bad, worst_a, worst_n);
        snprintf(name, sizeof name, "%s: gradient of %.23s is not all zero", cfg, blocks[bi].name);
        CHECKF(nonzero > 0, name, "all %d sampled entries are zero", samples);
    }
    free(ref);
    free(out);
    free(wts);
    gi_workspace_free(ws);
    gi_model_free(&m);
}

/* Donor -1 = the mean donor row, as a constant: no donor gradient. */
static void test_donor_average(void)
{
    gi_model_spec spec = small_spec(GI_ARCH_SIREN, GI_GENE_FACTORIZED, GI_CODE_EMBEDDING);
    gi_model m, m2;
    gi_err err;
    gi_model_init(&m, &spec, 3, &err);
    gi_model_alloc(&m2, &spec, &err);
    memcpy(m2.params, m.params, m.n_params * sizeof(float));
    memcpy(m2.fixed, m.fixed, m.n_fixed * sizeof(float));
    for (int k = 0; k < spec.donor_dim; k++) {
        double s = 0;
        for (int d = 0; d < spec.n_donors; d++)
            s += m.params[m.donor_off + (size_t)d * spec.donor_dim + k];
        m2.params[m2.donor_off + k] = (float)(s / spec.n_donors);
    }
    gi_workspace *ws = gi_workspace_new(&m, MAX_BATCH);
    test_batch tb, tb2;
    make_batch(&tb, &m, BATCH, 11);
    make_batch(&tb2, &m2, BATCH, 11);
    for (int i = 0; i < BATCH; i++) {
        tb.donor[i] = -1;
        tb2.donor[i] = 0;
    }
    float out[BATCH * 3], out2[BATCH * 3], dout[BATCH * 3];
    gi_model_forward(&m, &tb.b, ws, out);
    gi_model_forward(&m2, &tb2.b, ws, out2);
    double e = 0;
    for (int k = 0; k < BATCH * 3; k++)
        e = fmax(e, fabs(out[k] - out2[k]));
    CHECKF(e < 1e-6, "donor -1 evaluates the mean donor embedding", "max difference %g", e);

    for (int k = 0; k < BATCH * 3; k++)
        dout[k] = 1.0f;
    gi_model_forward(&m, &tb.b, ws, out);
    gi_model_backward(&m, &tb.b, ws, dout);
    int donor_zero = 1, anat_nonzero = 0;
    for (size_t k = 0; k < (size_t)spec.n_donors * spec.donor_dim; k++)
        donor_zero &= m.grads[m.donor_off + k] == 0.0f;
    for (size_t k = 0; k < (size_t)spec.n_labels * spec.anatomy_dim; k++)
        anat_nonzero |= m.grads[m.anat_off + k] != 0.0f;
    CHECK(donor_zero, "donor -1 gives no donor-embedding gradient");
    CHECK(anat_nonzero, "donor -1 batch still back-propagates to the anatomy embedding");

    /* Mixed batch: only the rows actually used receive gradient, and the
     * gradients of used rows are those of the same points with -1 removed. */
    memset(m.grads, 0, m.n_params * sizeof(float));
    int mixed[BATCH] = {-1, 1, -1, 1, -1};
    memcpy(tb.donor, mixed, sizeof mixed);
    gi_model_forward(&m, &tb.b, ws, out);
    gi_model_backward(&m, &tb.b, ws, dout);
    int row0_zero = 1, row2_zero = 1, row1_nonzero = 0;
    for (int k = 0; k < spec.donor_dim; k++) {
        row0_zero &= m.grads[m.donor_off + k] == 0.0f;
        row1_nonzero |= m.grads[m.donor_off + spec.donor_dim + k] != 0.0f;
        row2_zero &= m.grads[m.donor_off + 2 * spec.donor_dim + k] == 0.0f;
    }
    CHECK(row0_zero && row2_zero && row1_nonzero, "mixed batch: gradient only for donor rows used explicitly");

    gi_workspace_free(ws);
    gi_model_free(&m);
    gi_model_free(&m2);
}

/* Factorized: output g = trunk features . output row g + bias g. */
static void test_factorized_readout(void)
{
    gi_model_spec spec = small_spec(GI_ARCH_SIREN, GI_GENE_FACTORIZED, GI_CODE_EMBEDDING);
    spec.n_genes = 7;
    gi_model m;
    gi_err err;
    gi_model_init(&m, &spec, 5, &err);
    gi_workspace *ws = gi_workspace_new(&m, MAX_BATCH);
    test_batch tb;
    make_batch(&tb, &m, BATCH, 13);
    float out[BATCH * 7];
    gi_model_forward(&m, &tb.b, ws, out);
    const gi_layer *lo = &m.layers[m.n_layers - 1];
    const float *trunk = gi_workspace_layer_input(ws, m.n_layers - 1);
    double e = 0;
    for (int i = 0; i < BATCH; i++)
        for (int g = 0; g < spec.n_genes; g++) {
            double v = m.params[lo->b_off + g];
            for (int k = 0; k < spec.width; k++)
                v += (double)trunk[i * spec.width + k] * m.params[lo->w_off + (size_t)g * spec.width + k];
            e = fmax(e, fabs(v - out[i * spec.n_genes + g]));
        }
    CHECK(m.n_out == 7 && lo->out == 7 && lo->in == spec.width, "factorized: output layer is [n_genes][width]");
    CHECKF(e < 1e-5, "factorized: column g = trunk . output row g + bias g", "max difference %g", e);
    CHECK(gi_workspace_layer_input(ws, m.n_layers) == NULL && gi_workspace_layer_input(ws, -1) == NULL,
          "layer input accessor rejects bad layer indices");
    gi_workspace_free(ws);
    gi_model_free(&m);
}

/* The forward-only workspace gives the training workspace's outputs bit for
 * bit, in less memory; a range of outputs equals those columns. */
static void test_inference_workspace(void)
{
    int configs[4][3] = {
        {GI_ARCH_SIREN, GI_GENE_FACTORIZED, GI_CODE_EMBEDDING},
        {GI_ARCH_SIREN, GI_GENE_CONCAT, GI_CODE_SPECTRAL},
        {GI_ARCH_FOURIER, GI_GENE_FACTORIZED, GI_CODE_EMBEDDING},
        {GI_ARCH_FOURIER, GI_GENE_CONCAT, GI_CODE_EMBEDDING},
    };
    int same = 1, smaller = 1, ranges = 1;
    for (int c = 0; c < 4; c++) {
        gi_model_spec spec = small_spec(configs[c][0], configs[c][1], configs[c][2]);
        spec.hidden_layers = 4;
        spec.n_genes = 6;
        gi_model m;
        gi_err err;
        gi_model_init(&m, &spec, 21, &err);
        gi_workspace *tw = gi_workspace_new(&m, MAX_BATCH), *iw = gi_workspace_new_inference(&m, MAX_BATCH);
        test_batch tb;
        make_batch(&tb, &m, MAX_BATCH, 17);
        float a[MAX_BATCH * 6], b[MAX_BATCH * 6], r[MAX_BATCH * 6];
        gi_model_forward(&m, &tb.b, tw, a);
        gi_model_forward(&m, &tb.b, iw, b);
        same &= memcmp(a, b, sizeof(float) * MAX_BATCH * m.n_out) == 0;
        same &= memcmp(gi_workspace_layer_input(tw, m.n_layers - 1), gi_workspace_layer_input(iw, m.n_layers - 1),
                       sizeof(float) * MAX_BATCH * spec.width) == 0;
        smaller &= gi_workspace_bytes(&m, 1024, 1) * 2 < gi_workspace_bytes(&m, 1024, 0);
        if (m.n_out > 1) {
            gi_model_forward_outputs(&m, &tb.b, iw, 2, 3, r);
            for (int k = 0; k < MAX_BATCH; k++)
                for (int j = 0; j < 3; j++)
                    ranges &= fabsf(r[k * 3 + j] - a[k * m.n_out + 2 + j]) <= 1e-6f * (1 + fabsf(a[k * m.n_out + 2 + j]));
        }
        gi_workspace_free(tw);
        gi_workspace_free(iw);
        gi_model_free(&m);
    }
    CHECK(same, "inference workspace: bit-identical outputs and trunk features to the training workspace");
    CHECK(smaller, "inference workspace: less than half the memory of the training workspace (4 hidden layers)");
    CHECK(ranges, "forward of an output range equals those output columns");
}

static void test_determinism(void)
{
    gi_model_spec spec = small_spec(GI_ARCH_FOURIER, GI_GENE_CONCAT, GI_CODE_EMBEDDING);
    gi_model a, b, c;
    gi_err err;
    gi_model_init(&a, &spec, 1234, &err);
    gi_model_init(&b, &spec, 1234, &err);
    gi_model_init(&c, &spec, 1235, &err);
    CHECK(memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0 &&
              memcmp(a.fixed, b.fixed, a.n_fixed * sizeof(float)) == 0,
          "same seed: bit-identical parameters and Fourier frequencies");
    CHECK(memcmp(a.params, c.params, a.n_params * sizeof(float)) != 0 &&
              memcmp(a.fixed, c.fixed, a.n_fixed * sizeof(float)) != 0,
          "different seed: different parameters");

    gi_workspace *ws = gi_workspace_new(&a, MAX_BATCH);
    test_batch tb;
    make_batch(&tb, &a, MAX_BATCH, 17);
    float o1[MAX_BATCH], o2[MAX_BATCH], dout[MAX_BATCH];
    for (int i = 0; i < MAX_BATCH; i++)
        dout[i] = (float)i - 7.5f;
    gi_model_forward(&a, &tb.b, ws, o1);
    gi_model_backward(&a, &tb.b, ws, dout);
    gi_model_forward(&b, &tb.b, ws, o2);
    gi_model_backward(&b, &tb.b, ws, dout);
    CHECK(memcmp(o1, o2, sizeof o1) == 0, "forward is bit-reproducible");
    CHECK(memcmp(a.grads, b.grads, a.n_params * sizeof(float)) == 0, "backward is bit-reproducible");

    /* Accumulation: a second backward on the same batch doubles the grads. */
    gi_model_forward(&a, &tb.b, ws, o1);
    gi_model_backward(&a, &tb.b, ws, dout);
    /* (not bit-exact: the bias sums add rows one at a time onto the old value) */
    double worst_acc = 0;
    for (size_t k = 0; k < a.n_params; k++)
        worst_acc = fmax(worst_acc, fabs(a.grads[k] - 2.0 * b.grads[k]) / (1e-6 + fabs(b.grads[k])));
    CHECKF(worst_acc < 1e-5, "backward accumulates (+=) into grads", "worst relative error %g", worst_acc);

    /* n = 0 is harmless, and a partial batch equals the prefix of a full one. */
    float *before = malloc(a.n_params * sizeof(float));
    memcpy(before, a.grads, a.n_params * sizeof(float));
    gi_batch empty = {0, NULL, NULL, NULL, NULL};
    gi_model_forward(&a, &empty, ws, NULL);
    gi_model_backward(&a, &empty, ws, NULL);
    CHECK(memcmp(before, a.grads, a.n_params * sizeof(float)) == 0, "forward/backward with n = 0 change nothing");
    free(before);
    tb.b.n = 3;
    gi_model_forward(&b, &tb.b, ws, o2);
    double e = 0;
    for (int i = 0; i < 3; i++)
        e = fmax(e, fabs(o1[i] - o2[i]));
    CHECKF(e < 1e-6, "partial batch (n < max_batch) matches the full batch's rows", "max difference %g", e);

    gi_workspace_free(ws);
    gi_model_free(&a);
    gi_model_free(&b);
    gi_model_free(&c);
}

static void test_init_bounds(void)
{
    gi_model_spec spec = small_spec(GI_ARCH_SIREN, GI_GENE_CONCAT, GI_CODE_EMBEDDING);
    spec.width = 64;
    spec.hidden_layers = 3;
    spec.omega0 = 30.0f;
    spec.omega_hidden = 30.0f;
    spec.n_donors = 50;
    spec.donor_dim = 8;
    spec.n_labels = 40;
    spec.anatomy_dim = 8;
    gi_model m;
    gi_err err;
    gi_model_init(&m, &spec, 77, &err);
    int ok = 1, spread = 1;
    for (int l = 0; l < m.n_layers; l++) {
        const gi_layer *ly = &m.layers[l];
        int last = l == m.n_layers - 1;
        double in = ly->in;
        double wb = l == 0 ? 1.0 / in : sqrt(6.0 / in) / spec.omega_hidden;
        double bb = l == 0 ? 1.0 / in : last ? 0.0 : 1.0 / sqrt(in);
        double wmax = 0, bmax = 0;
        for (int k = 0; k < ly->in * ly->out; k++)
            wmax = fmax(wmax, fabs(m.params[ly->w_off + k]));
        for (int k = 0; k < ly->out; k++)
            bmax = fmax(bmax, fabs(m.params[ly->b_off + k]));
        ok &= wmax <= wb * (1 + 1e-6) && bmax <= bb * (1 + 1e-6);
        if (ly->in * ly->out >= 64)
            spread &= wmax > 0.8 * wb;
        if (last)
            ok &= bmax == 0.0;
        ok &= ly->omega == (last ? 0.0f : l == 0 ? spec.omega0 : spec.omega_hidden);
    }
    CHECK(ok, "siren init: |W|, |b| within the SIREN bounds, output bias 0, omegas set");
    CHECK(spread, "siren init: weights fill their range");

    double s2 = 0;
    size_t ne = (size_t)spec.n_donors * spec.donor_dim;
    for (size_t k = 0; k < ne; k++)
        s2 += (double)m.params[m.donor_off + k] * m.params[m.donor_off + k];
    double sd = sqrt(s2 / ne);
    CHECKF(sd > 0.09 && sd < 0.11, "embeddings ~ N(0, 0.1^2)", "donor embedding sd %g", sd);
    gi_model_free(&m);

    spec.arch = GI_ARCH_FOURIER;
    spec.fourier_features = 256;
    spec.fourier_scale = 10.0f;
    gi_model_init(&m, &spec, 77, &err);
    ok = 1;
    for (int l = 0; l < m.n_layers; l++) {
        const gi_layer *ly = &m.layers[l];
        int last = l == m.n_layers - 1;
        double wb = last ? sqrt(1.0 / ly->in) : sqrt(6.0 / ly->in);
        for (int k = 0; k < ly->in * ly->out; k++)
            ok &= fabs(m.params[ly->w_off + k]) <= wb * (1 + 1e-6);
        for (int k = 0; k < ly->out; k++)
            ok &= m.params[ly->b_off + k] == 0.0f;
        ok &= ly->omega == 0.0f;
    }
    CHECK(ok, "fourier init: He-uniform hidden, uniform(1/in) output, zero biases");
    s2 = 0;
    for (size_t k = 0; k < m.n_fixed; k++)
        s2 += (double)m.fixed[k] * m.fixed[k];
    sd = sqrt(s2 / m.n_fixed);
    CHECKF(m.n_fixed == 256 * 3 && m.in_dim == 512 + 8 + 8 + 4 && sd > 9.0 && sd < 11.0,
           "fourier: B [F][3] ~ N(0, scale^2) in fixed, input 2F + embeddings", "n_fixed %zu in_dim %d sd %g",
           m.n_fixed, m.in_dim, sd);
    gi_model_free(&m);
}

static void test_layout(void)
{
    gi_model_spec spec = small_spec(GI_ARCH_SIREN, GI_GENE_CONCAT, GI_CODE_EMBEDDING);
    gi_model m;
    gi_err err;
    CHECK(gi_model_alloc(&m, &spec, &err) == 0, "alloc succeeds");
    int in0 = 3 + 2 + 3 + 4;
    size_t expect = (size_t)(in0 * 8 + 8) + (8 * 8 + 8) + (8 * 1 + 1) + 3 * 2 + 4 * 3 + 3 * 4;
    CHECKF(m.in_dim == in0 && m.n_params == expect && m.n_out == 1 && m.n_layers == 3, "concat layout sizes",
           "in_dim %d n_params %zu (expected %zu)", m.in_dim, m.n_params, expect);
    int zero = 1;
    for (size_t k = 0; k < m.n_params; k++)
        zero &= m.params[k] == 0.0f && m.grads[k] == 0.0f;
    CHECK(zero, "alloc: params and grads zeroed");
    gi_param_block bl[16];
    int nb = gi_model_param_blocks(&m, bl, 16);
    size_t off = 0;
    int contiguous = 1;
    for (int i = 0; i < nb; i++) {
        contiguous &= bl[i].off == off;
        off += (size_t)bl[i].rows * bl[i].cols;
    }
    CHECK(contiguous && off == m.n_params && strcmp(bl[0].name, "layer0.W") == 0 &&
              strcmp(bl[nb - 1].name, "gene") == 0 && gi_model_param_blocks(&m, NULL, 0) == nb,
          "parameter blocks tile the buffer in the documented order");
    gi_model_free(&m);
    gi_model_free(&m); /* freeing twice is harmless */

    /* spectral codes */
    spec.gene_code = GI_CODE_SPECTRAL;
    spec.n_genes = 5;
    gi_model_init(&m, &spec, 1, &err);
    int F = spec.gene_frequencies;
    CHECK(m.in_dim == 3 + 2 + 3 + 2 * F && m.n_fixed == (size_t)5 * 2 * F && m.code_off == 0,
          "spectral layout: 2F code columns in fixed");
    double e = 0;
    for (int g = 0; g < 5; g++)
        for (int f = 0; f < F; f++) {
            double t = g / 4.0, a = ldexp(1.0, f) * M_PI * t;
            e = fmax(e, fabs(m.fixed[m.code_off + (size_t)g * 2 * F + f] - sin(a)));
            e = fmax(e, fabs(m.fixed[m.code_off + (size_t)g * 2 * F + F + f] - cos(a)));
        }
    CHECKF(e < 1e-6, "spectral codes start at t_g = g / (n_genes - 1)", "max error %g", e);
    float t[5] = {0.3f, 0.0f, 1.0f, 0.5f, 0.25f};
    gi_model_set_gene_positions(&m, t);
    e = fabs(m.fixed[m.code_off + 2 * F * 0 + 0] - sin(M_PI * 0.3f)) + fabs(m.fixed[m.code_off + 2 * F * 3 + F + 1] - cos(2 * M_PI * 0.5));
    CHECKF(e < 1e-6, "set_gene_positions recomputes the codes", "error %g", e);
    gi_model_free(&m);

    /* no donor / no anatomy input */
    spec = small_spec(GI_ARCH_SIREN, GI_GENE_FACTORIZED, GI_CODE_EMBEDDING);
    spec.donor_dim = 0;
    spec.n_labels = 0;
    gi_model_init(&m, &spec, 1, &err);
    gi_workspace *ws = gi_workspace_new(&m, 4);
    test_batch tb;
    make_batch(&tb, &m, 4, 3);
    float out[12], dout[12];
    for (int i = 0; i < 12; i++)
        dout[i] = 1.0f;
    gi_model_forward(&m, &tb.b, ws, out);
    gi_model_backward(&m, &tb.b, ws, dout);
    CHECK(m.in_dim == 3 && m.n_params == (size_t)(3 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3) && tb.b.donor == NULL,
          "coordinates-only model: no embedding inputs, runs with NULL donor/label");
    gi_workspace_free(ws);
    gi_model_free(&m);
}

static void test_validation(void)
{
    gi_err err;
    gi_model m;
    const char *names[] = {"width 0", "hidden_layers 0", "n_genes 0", "donor_dim without donors",
                           "labels without anatomy_dim", "gene_dim 0 for embedding", "omega0 0", "fourier_features 0",
                           "arch out of range", "negative donor_dim"};
    for (int c = 0; c < 10; c++) {
        gi_model_spec s = small_spec(c == 7 ? GI_ARCH_FOURIER : GI_ARCH_SIREN, GI_GENE_CONCAT, GI_CODE_EMBEDDING);
        switch (c) {
        case 0: s.width = 0; break;
        case 1: s.hidden_layers = 0; break;
        case 2: s.n_genes = 0; break;
        case 3: s.n_donors = 0; break;
        case 4: s.anatomy_dim = 0; break;
        case 5: s.gene_dim = 0; break;
        case 6: s.omega0 = 0; break;
        case 7: s.fourier_features = 0; break;
        case 8: s.arch = 7; break;
        case 9: s.donor_dim = -1; break;
        }
        err.msg[0] = 0;
        int rc1 = gi_model_init(&m, &s, 1, &err);
        int clean = m.params == NULL && m.layers == NULL;
        int rc2 = gi_model_alloc(&m, &s, &err);
        char name[96];
        snprintf(name, sizeof name, "invalid spec rejected with a message: %s", names[c]);
        CHECKF(rc1 == -1 && rc2 == -1 && clean && err.msg[0] != 0, name, "rc %d/%d msg '%s'", rc1, rc2, err.msg);
    }
    CHECK(gi_model_init(&m, NULL, 1, &err) == -1, "NULL spec rejected");
    gi_model_spec s = small_spec(GI_ARCH_SIREN, GI_GENE_FACTORIZED, GI_CODE_EMBEDDING);
    s.gene_dim = 0; /* unused in factorized mode */
    s.fourier_features = 0; /* unused for siren */
    CHECK(gi_model_init(&m, &s, 1, &err) == 0, "unused fields are not validated");
    CHECK(gi_workspace_new(&m, 0) == NULL, "workspace needs max_batch >= 1");
    gi_model_free(&m);
}

static void test_mni(void)
{
    float a[3], b[3], c[3];
    gi_mni_normalise(GI_MNI_XMIN, GI_MNI_YMIN, GI_MNI_ZMIN, a);
    gi_mni_normalise(GI_MNI_XMAX, GI_MNI_YMAX, GI_MNI_ZMAX, b);
    gi_mni_normalise(0.0, -18.0, 18.0, c);
    CHECK(a[0] == -1.0f && a[1] == -1.0f && a[2] == -1.0f && b[0] == 1.0f && b[1] == 1.0f && b[2] == 1.0f,
          "MNI box corners map to -1 and 1");
    CHECK(fabsf(c[0]) < 1e-7f && fabsf(c[1]) < 1e-7f && fabsf(c[2]) < 1e-7f, "MNI box centre maps to 0");
}

static void test_spectral_positions(void)
{
    enum { N = 60, G = 8 };
    float v[N * G];
    /* Two blocks of genes, interleaved in index order: genes in block A track
     * signal s, block B tracks -s; noise and missing values on top. */
    int block[G] = {0, 1, 1, 0, 0, 1, 0, 1};
    for (int k = 0; k < N; k++) {
        double s = sin(0.37 * k) + 0.5 * cos(1.3 * k);
        for (int g = 0; g < G; g++) {
            double noise = 0.2 * gi_rng_normal(8, (uint64_t)g, (uint64_t)k);
            v[k * G + g] = (float)((block[g] ? -s : s) + noise + g);
            if (gi_rng_uniform(9, (uint64_t)g, (uint64_t)k) < 0.15)
                v[k * G + g] = NAN;
        }
    }
    float t[G];
    gi_err err;
    int rc = gi_gene_spectral_positions(v, N, G, t, &err);
    int ok = rc == 0, has0 = 0, has1 = 0;
    for (int g = 0; g < G; g++) {
        ok &= block[g] ? t[g] > 0.9f : t[g] < 0.1f;
        has0 |= t[g] == 0.0f;
        has1 |= t[g] == 1.0f;
    }
    CHECKF(ok && has0 && has1, "spectral positions: two anti-correlated blocks at opposite ends",
           "rc %d t = %.3f %.3f %.3f %.3f %.3f %.3f %.3f %.3f", rc, t[0], t[1], t[2], t[3], t[4], t[5], t[6],
           t[7]);

    /* A chain: gene j ~ sin(w_k + phase_j), phases spread over half a turn in
     * a shuffled order; the ordering must follow the phase. */
    int perm[G] = {3, 6, 0, 5, 1, 7, 2, 4};
    float w[N * G];
    for (int k = 0; k < N; k++)
        for (int g = 0; g < G; g++)
            w[k * G + g] = (float)sin(2 * M_PI * k / N + M_PI * perm[g] / G);
    rc = gi_gene_spectral_positions(w, N, G, t, &err);
    float by_phase[G];
    for (int g = 0; g < G; g++)
        by_phase[perm[g]] = t[g];
    int inc = 1, dec = 1;
    for (int j = 1; j < G; j++) {
        inc &= by_phase[j] > by_phase[j - 1];
        dec &= by_phase[j] < by_phase[j - 1];
    }
    CHECKF(rc == 0 && (inc || dec) && t[0] <= 0.5f, "spectral positions: recover a phase ordering, gene 0 <= 0.5",
           "by phase %.3f %.3f %.3f %.3f %.3f %.3f %.3f %.3f", by_phase[0], by_phase[1], by_phase[2], by_phase[3],
           by_phase[4], by_phase[5], by_phase[6], by_phase[7]);

    /* Degenerate inputs: a gene never measured, a constant gene, too few samples. */
    for (int k = 0; k < N; k++) {
        w[k * G + 1] = NAN;
        w[k * G + 2] = 4.0f;
    }
    rc = gi_gene_spectral_positions(w, N, G, t, &err);
    int finite = rc == 0;
    for (int g = 0; g < G; g++)
        finite &= isfinite(t[g]) && t[g] >= 0.0f && t[g] <= 1.0f;
    CHECK(finite, "spectral positions: missing and constant genes give finite t in [0, 1]");
    rc = gi_gene_spectral_positions(w, 2, G, t, &err);
    finite = rc == 0;
    for (int g = 0; g < G; g++)
        finite &= isfinite(t[g]);
    CHECK(finite, "spectral positions: fewer than 3 samples (r = 0 everywhere) is handled");

    float one[1] = {1.0f}, t1[1] = {9}, t2[2] = {9, 9};
    CHECK(gi_gene_spectral_positions(one, 1, 1, t1, &err) == 0 && t1[0] == 0.0f, "one gene: t = 0");
    CHECK(gi_gene_spectral_positions(v, N / 2, 2, t2, &err) == 0 && t2[0] == 0.0f && t2[1] == 1.0f,
          "two genes: t = 0, 1");
    CHECK(gi_gene_spectral_positions(v, N, 0, t, &err) == -1 && err.msg[0], "zero genes rejected");

    float t3[G];
    gi_gene_spectral_positions(v, N, G, t, &err);
    gi_gene_spectral_positions(v, N, G, t3, &err);
    CHECK(memcmp(t, t3, sizeof t) == 0, "spectral positions are deterministic");
}

/* The training fast paths give the same bits as the plain calls: coordinate
 * columns from a precomputed table (gi_model_forward_coords) and a backward
 * that overwrites the gradient (gi_model_backward_set) instead of zeroing and
 * accumulating. */
static void test_fast_paths(gi_model_spec spec, const char *what)
{
    gi_model m;
    gi_err err;
    if (gi_model_init(&m, &spec, 99, &err) != 0) {
        CHECKF(0, "fast paths: model", "%s", err.msg);
        return;
    }
    gi_workspace *ws = gi_workspace_new(&m, MAX_BATCH);
    test_batch tb;
    make_batch(&tb, &m, MAX_BATCH, 23);
    int cw = gi_model_coord_width(&m), rows[MAX_BATCH];
    float table[(MAX_BATCH + 3) * 64];
    /* the table holds the points in reverse order, after 3 unrelated rows */
    float rev[MAX_BATCH * 3];
    for (int i = 0; i < MAX_BATCH; i++) {
        memcpy(rev + 3 * i, tb.xyz + 3 * (MAX_BATCH - 1 - i), 3 * sizeof(float));
        rows[i] = 3 + MAX_BATCH - 1 - i;
    }
    for (int k = 0; k < 3 * cw; k++)
        table[k] = 1e30f;
    gi_model_coord_features(&m, rev, MAX_BATCH, table + 3 * cw);
    size_t no = (size_t)MAX_BATCH * m.n_out;
    float *o1 = malloc(no * sizeof(float)), *o2 = malloc(no * sizeof(float)), *dout = malloc(no * sizeof(float));
    float *g1 = malloc(m.n_params * sizeof(float));
    for (size_t k = 0; k < no; k++)
        dout[k] = (float)(gi_rng_uniform(4, 4, k) - 0.5);
    gi_model_forward(&m, &tb.b, ws, o1);
    memset(m.grads, 0, m.n_params * sizeof(float));
    gi_model_backward(&m, &tb.b, ws, dout);
    memcpy(g1, m.grads, m.n_params * sizeof(float));
    gi_model_forward_coords(&m, &tb.b, table, rows, ws, o2);
    for (size_t k = 0; k < m.n_params; k++)
        m.grads[k] = (float)k; /* stale contents must not leak in */
    gi_model_backward_set(&m, &tb.b, ws, dout);
    char name[128];
    snprintf(name, sizeof name, "%s: forward from precomputed coordinate columns is bit-identical", what);
    CHECK(memcmp(o1, o2, no * sizeof(float)) == 0, name);
    snprintf(name, sizeof name, "%s: backward_set equals zeroing + backward, bit for bit", what);
    CHECK(memcmp(g1, m.grads, m.n_params * sizeof(float)) == 0, name);
    gi_batch empty = {0, NULL, NULL, NULL, NULL};
    gi_model_backward_set(&m, &empty, ws, NULL);
    int zero = 1;
    for (size_t k = 0; k < m.n_params; k++)
        zero &= m.grads[k] == 0.0f;
    snprintf(name, sizeof name, "%s: backward_set of an empty batch gives a zero gradient", what);
    CHECK(zero, name);
    free(o1);
    free(o2);
    free(dout);
    free(g1);
    gi_workspace_free(ws);
    gi_model_free(&m);
}

int main(void)
{
    int configs[6][3] = {
        {GI_ARCH_SIREN, GI_GENE_FACTORIZED, GI_CODE_EMBEDDING},
        {GI_ARCH_SIREN, GI_GENE_CONCAT, GI_CODE_EMBEDDING},
        {GI_ARCH_SIREN, GI_GENE_CONCAT, GI_CODE_SPECTRAL},
        {GI_ARCH_FOURIER, GI_GENE_FACTORIZED, GI_CODE_EMBEDDING},
        {GI_ARCH_FOURIER, GI_GENE_CONCAT, GI_CODE_EMBEDDING},
        {GI_ARCH_FOURIER, GI_GENE_CONCAT, GI_CODE_SPECTRAL},
    };
    for (int c = 0; c < 6; c++)
        test_gradients(small_spec(configs[c][0], configs[c][1], configs[c][2]));
    const char *names[6] = {"siren factorized", "siren concat embedding", "siren concat spectral",
                            "fourier factorized", "fourier concat embedding", "fourier concat spectral"};
    for (int c = 0; c < 6; c++)
        test_fast_paths(small_spec(configs[c][0], configs[c][1], configs[c][2]), names[c]);
    test_donor_average();
    test_factorized_readout();
    test_determinism();
    test_inference_workspace();
    test_init_bounds();
    test_layout();
    test_validation();
    test_mni();
    test_spectral_positions();
    return check_summary();
}
