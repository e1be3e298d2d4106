/* test_optim.c - Adam / AdamW against hand computations, schedules, clipping.
 *
 * The expected numbers are worked out in the comments (PyTorch formulas:
 * m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
 * p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "geneinr/optim.h"

static int close_to(double a, double b, double rel)
{
    return fabs(a - b) <= rel * fmax(fabs(a), fabs(b)) + 1e-9;
}

/* the 3-element vectors of these tests */
static int all_close(const float *a, const double *b, double rel)
{
    int ok = 1;
    for (int i = 0; i < 3; i++)
        ok &= close_to(a[i], b[i], rel);
    return ok;
}

static gi_optim_spec base_spec(int optimizer)
{
    gi_optim_spec o;
    memset(&o, 0, sizeof o);
    o.optimizer = optimizer;
    o.lr = 0.01;
    o.beta1 = 0.9;
    o.beta2 = 0.999;
    o.eps = 1e-8;
    o.schedule = GI_SCHED_CONSTANT;
    return o;
}

static void test_adam_one_step(void)
{
    /* p = [1, -2, 0.5], g = [0.1, -0.2, 0.3], lr 0.01, wd 0.1, eps 0.1 (large,
     * so its placement matters). Adam: g' = g + wd p = [0.2, -0.4, 0.35].
     * t = 1: m = 0.1 g' = [0.02, -0.04, 0.035], v = 0.001 g'^2 =
     * [4e-5, 1.6e-4, 1.225e-4]; m_hat = g', sqrt(v_hat) = |g'|, so
     * p -= 0.01 g' / (|g'| + 0.1) = 0.01 [0.2/0.3, -0.4/0.5, 0.35/0.45]
     * = [0.00666667, -0.008, 0.00777778] -> [0.99333333, -1.992, 0.49222222]. */
    gi_optim_spec o = base_spec(GI_OPT_ADAM);
    o.weight_decay = 0.1;
    o.eps = 0.1;
    gi_adam a;
    gi_err err;
    float p[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.1f, -0.2f, 0.3f};
    CHECK(gi_adam_init(&a, 3, &err) == 0 && a.t == 0 && a.m[0] == 0.0f && a.v[2] == 0.0f,
          "adam init: zero moments, t = 0");
    gi_adam_step(&a, &o, p, g, o.lr);
    double ep[3] = {0.99333333333, -1.992, 0.49222222222};
    double em[3] = {0.02, -0.04, 0.035}, ev[3] = {4e-5, 1.6e-4, 1.225e-4};
    CHECKF(all_close(p, ep, 1e-6), "adam (L2) one step: parameters", "p = %.8f %.8f %.8f", p[0], p[1], p[2]);
    CHECKF(all_close(a.m, em, 1e-6) && all_close(a.v, ev, 1e-6) && a.t == 1, "adam (L2) one step: moments",
           "m = %g %g %g v = %g %g %g", a.m[0], a.m[1], a.m[2], a.v[0], a.v[1], a.v[2]);
    gi_adam_free(&a);

    /* AdamW, same numbers: p *= 1 - lr wd = 0.999 -> [0.999, -1.998, 0.4995];
     * the gradient is not changed: g / (|g| + 0.1) = [0.5, -2/3, 0.75], times
     * lr 0.01 -> [0.994, -1.99133333, 0.492]; m = 0.1 g, v = 0.001 g^2. */
    o.optimizer = GI_OPT_ADAMW;
    gi_adam_init(&a, 3, &err);
    float q[3] = {1.0f, -2.0f, 0.5f};
    gi_adam_step(&a, &o, q, g, o.lr);
    double eq[3] = {0.994, -1.99133333333, 0.492};
    double emw[3] = {0.01, -0.02, 0.03}, evw[3] = {1e-5, 4e-5, 9e-5};
    CHECKF(all_close(q, eq, 1e-6), "adamw (decoupled) one step: parameters", "p = %.8f %.8f %.8f", q[0], q[1],
           q[2]);
    CHECKF(all_close(a.m, emw, 1e-6) && all_close(a.v, evw, 1e-6), "adamw one step: moments from the raw gradient",
           "m = %g %g %g v = %g %g %g", a.m[0], a.m[1], a.m[2], a.v[0], a.v[1], a.v[2]);
    gi_adam_free(&a);

    /* Without weight decay the two agree exactly. */
    o.weight_decay = 0.0;
    float r1[3] = {1.0f, -2.0f, 0.5f}, r2[3] = {1.0f, -2.0f, 0.5f};
    gi_adam_init(&a, 3, &err);
    o.optimizer = GI_OPT_ADAM;
    gi_adam_step(&a, &o, r1, g, o.lr);
    gi_adam_free(&a);
    gi_adam_init(&a, 3, &err);
    o.optimizer = GI_OPT_ADAMW;
    gi_adam_step(&a, &o, r2, g, o.lr);
    gi_adam_free(&a);
    CHECK(memcmp(r1, r2, sizeof r1) == 0, "adam and adamw coincide without weight decay");
}

static void test_adam_bias_correction(void)
{
    /* Two steps, lr 0.1, eps 1e-8, no decay; g1 = [0.1, -0.2, 0.3],
     * g2 = [0.3, 0.2, -0.1], p0 = [1, -2, 0.5].
     * Step 1: m_hat = g1, v_hat = g1^2 -> p -= 0.1 sign(g1) (|g|/(|g|+1e-8))
     *   p1 = [0.90000001, -1.90000000, 0.40000000].
     * Step 2: m = 0.09 g1 + 0.1 g2 = [0.039, 0.002, 0.017];
     *   v = 0.000999 g1^2 + 0.001 g2^2 = [9.999e-5, 7.996e-5, 9.991e-5];
     *   1 - b1^2 = 0.19, 1 - b2^2 = 0.001999;
     *   m_hat = [0.20526316, 0.01052632, 0.08947368];
     *   v_hat = [0.05002001, 0.04, 0.04997999], sqrt = [0.22365154, 0.2, 0.22356205];
     *   update = 0.1 m_hat / (sqrt + 1e-8) = [0.09177811, 0.00526316, 0.04002186];
     *   p2 = [0.80822190, -1.90526316, 0.35997815]. */
    gi_optim_spec o = base_spec(GI_OPT_ADAM);
    o.lr = 0.1;
    gi_adam a;
    gi_err err;
    gi_adam_init(&a, 3, &err);
    float p[3] = {1.0f, -2.0f, 0.5f};
    float g1[3] = {0.1f, -0.2f, 0.3f}, g2[3] = {0.3f, 0.2f, -0.1f};
    gi_adam_step(&a, &o, p, g1, o.lr);
    double e1[3] = {0.90000001, -1.90000000, 0.40000000};
    CHECKF(all_close(p, e1, 1e-6), "adam step 1: bias-corrected first step moves lr per coordinate",
           "p = %.8f %.8f %.8f", p[0], p[1], p[2]);
    gi_adam_step(&a, &o, p, g2, o.lr);
    double e2[3] = {0.80822190, -1.90526316, 0.35997815};
    double em[3] = {0.039, 0.002, 0.017}, ev[3] = {9.999e-5, 7.996e-5, 9.991e-5};
    CHECKF(all_close(p, e2, 1e-6), "adam step 2: bias correction (0.19, 0.001999)", "p = %.8f %.8f %.8f", p[0],
           p[1], p[2]);
    CHECKF(all_close(a.m, em, 1e-5) && all_close(a.v, ev, 1e-5) && a.t == 2, "adam step 2: moments",
           "m = %g %g %g v = %g %g %g", a.m[0], a.m[1], a.m[2], a.v[0], a.v[1], a.v[2]);
    gi_adam_free(&a);

    /* Reproducible: the same sequence again gives identical bits. */
    float p2[3] = {1.0f, -2.0f, 0.5f};
    gi_adam_init(&a, 3, &err);
    gi_adam_step(&a, &o, p2, g1, o.lr);
    gi_adam_step(&a, &o, p2, g2, o.lr);
    CHECK(memcmp(p, p2, sizeof p) == 0, "adam steps are bit-reproducible");
    gi_adam_free(&a);
    gi_adam_free(&a); /* freeing twice is harmless */
    CHECK(gi_adam_init(&a, 0, &err) == 0 && a.m && a.v, "adam init with n = 0");
    gi_adam_step(&a, &o, NULL, NULL, 0.1);
    CHECK(a.t == 1, "adam step with n = 0 only counts the step");
    gi_adam_free(&a);
}

static void test_schedules(void)
{
    gi_optim_spec o = base_spec(GI_OPT_ADAM);
    o.lr = 1.0;
    o.warmup_steps = 4;
    /* warm-up: lr (step + 1) / 4 for steps 0..3, then constant */
    CHECK(close_to(gi_lr_at(&o, 0), 0.25, 1e-12) && close_to(gi_lr_at(&o, 1), 0.5, 1e-12) &&
              close_to(gi_lr_at(&o, 3), 1.0, 1e-12) && close_to(gi_lr_at(&o, 4), 1.0, 1e-12) &&
              close_to(gi_lr_at(&o, 1000), 1.0, 1e-12),
          "warm-up ramps lr (step+1)/warmup, then constant");

    o.schedule = GI_SCHED_COSINE;
    o.min_lr = 0.1;
    o.warmup_steps = 0;
    o.total_steps = 100;
    /* min + (lr - min)(1 + cos(pi p))/2: p = 0 -> 1, p = 0.5 -> 0.55, p = 1 -> 0.1 */
    CHECK(close_to(gi_lr_at(&o, 0), 1.0, 1e-12) && close_to(gi_lr_at(&o, 50), 0.55, 1e-12) &&
              close_to(gi_lr_at(&o, 100), 0.1, 1e-12) && close_to(gi_lr_at(&o, 500), 0.1, 1e-12),
          "cosine: lr at start, midpoint (lr+min)/2, min_lr at total_steps and after");
    CHECK(close_to(gi_lr_at(&o, 25), 0.1 + 0.9 * 0.5 * (1 + cos(M_PI / 4)), 1e-12), "cosine: quarter point");
    o.warmup_steps = 10;
    o.total_steps = 110;
    CHECK(close_to(gi_lr_at(&o, 4), 0.5, 1e-12) && close_to(gi_lr_at(&o, 9), 1.0, 1e-12) &&
              close_to(gi_lr_at(&o, 10), 1.0, 1e-12) && close_to(gi_lr_at(&o, 60), 0.55, 1e-12) &&
              close_to(gi_lr_at(&o, 110), 0.1, 1e-12),
          "cosine after warm-up spans [warmup, total)");
    double prev = gi_lr_at(&o, 10);
    int mono = 1;
    for (long s = 11; s <= 110; s++) {
        double v = gi_lr_at(&o, s);
        mono &= v <= prev;
        prev = v;
    }
    CHECK(mono, "cosine decays monotonically");

    o.schedule = GI_SCHED_STEP;
    o.warmup_steps = 5;
    o.step_every = 10;
    o.step_gamma = 0.5;
    /* lr 0.5^floor((step - 5) / 10) */
    CHECK(close_to(gi_lr_at(&o, 0), 0.2, 1e-12) && close_to(gi_lr_at(&o, 5), 1.0, 1e-12) &&
              close_to(gi_lr_at(&o, 14), 1.0, 1e-12) && close_to(gi_lr_at(&o, 15), 0.5, 1e-12) &&
              close_to(gi_lr_at(&o, 24), 0.5, 1e-12) && close_to(gi_lr_at(&o, 25), 0.25, 1e-12) &&
              close_to(gi_lr_at(&o, 45), 0.0625, 1e-12),
          "step decay: gamma^floor((step - warmup) / step_every)");
}

static void test_clipping(void)
{
    float g[3] = {3.0f, 4.0f, 0.0f};
    double n = gi_grad_clip(g, 3, 1.0);
    double after = sqrt((double)g[0] * g[0] + (double)g[1] * g[1] + (double)g[2] * g[2]);
    CHECKF(n == 5.0 && close_to(after, 1.0, 1e-7) && close_to(g[0], 0.6, 1e-7) && close_to(g[1], 0.8, 1e-7),
           "clip: returns the norm before clipping, clipped norm = max_norm", "norm %g after %g", n, after);
    float h[3] = {3.0f, 4.0f, 0.0f};
    CHECK(gi_grad_clip(h, 3, 10.0) == 5.0 && h[0] == 3.0f && h[1] == 4.0f, "clip: below max_norm is untouched");
    CHECK(gi_grad_clip(h, 3, 0.0) == 5.0 && h[0] == 3.0f, "clip: max_norm 0 only measures");
    float big[1000];
    for (int i = 0; i < 1000; i++)
        big[i] = (float)(i % 7) - 3.0f;
    double nb = gi_grad_clip(big, 1000, 0.5), sq = 0;
    for (int i = 0; i < 1000; i++)
        sq += (double)big[i] * big[i];
    CHECKF(nb > 0.5 && close_to(sqrt(sq), 0.5, 1e-6), "clip: long vector clipped to max_norm", "after %g",
           sqrt(sq));
    CHECK(gi_grad_clip(NULL, 0, 1.0) == 0.0, "clip: empty vector has norm 0");
}

/* The documented order of gi_sum_squares (optim.h): lane j adds the squares
 * of elements j, j + 16, j + 32, ... in index order; then lanes j and j + w
 * are added for w = 8, 4, 2, 1. Written out independently of optim.c. */
static double sum_squares_reference(const float *g, size_t n)
{
    double lane[16] = {0};
    for (size_t i = 0; i < n; i++)
        lane[i % 16] += (double)g[i] * (double)g[i];
    for (int w = 8; w > 0; w /= 2)
        for (int j = 0; j < w; j++)
            lane[j] += lane[j + w];
    return lane[0];
}

static void test_sum_order(void)
{
    /* magnitudes spread over 2^-30 .. 2^30 so that every regrouping of the
     * sum changes its rounding */
    enum { N = 1003 };
    static float buf[N + 1];
    unsigned x = 12345;
    for (int i = 0; i <= N; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = ldexpf((float)((x >> 8) & 0xffff) / 65536.0f + 0.5f, (int)((x >> 4) % 61) - 30);
    }
    int exact = 1;
    for (size_t n = 0; n <= N; n += n < 40 ? 1 : 97)
        exact &= gi_sum_squares(buf, n) == sum_squares_reference(buf, n);
    CHECK(exact, "sum of squares: 16 interleaved lanes then a pairwise tree, bit for bit, for lengths 0..40 and longer");
    /* the order depends on the index, not on the address (vector loops that
     * peel for alignment must not regroup) */
    static float moved[N];
    memcpy(moved, buf + 1, sizeof moved);
    CHECK(gi_sum_squares(buf + 1, N) == gi_sum_squares(moved, N) &&
              gi_sum_squares(moved, N) == sum_squares_reference(moved, N),
          "sum of squares: same bits at another alignment");
    double seq = 0;
    for (int i = 0; i < N; i++)
        seq += (double)buf[i] * (double)buf[i];
    CHECKF(seq != gi_sum_squares(buf, N) && close_to(seq, gi_sum_squares(buf, N), 1e-12),
           "sum of squares: these values tell the orders apart (so the checks above can fail)", "seq %.17g lanes %.17g",
           seq, gi_sum_squares(buf, N));
}

static void test_from_config(void)
{
    gi_config c;
    memset(&c, 0, sizeof c);
    c.train.optimizer = GI_OPT_ADAMW;
    c.train.lr = 0.5f;
    c.train.beta1 = 0.8f;
    c.train.beta2 = 0.99f;
    c.train.eps = 1e-6f;
    c.train.weight_decay = 0.25f;
    c.train.schedule = GI_SCHED_COSINE;
    c.train.warmup_steps = 7;
    c.train.steps = 1234;
    c.train.min_lr = 0.125f;
    c.train.step_every = 9;
    c.train.step_gamma = 0.75f;
    c.train.clip_norm = 2.0f;
    gi_optim_spec o;
    gi_optim_spec_from_config(&o, &c);
    CHECK(o.optimizer == GI_OPT_ADAMW && o.lr == 0.5 && o.beta1 == (double)0.8f && o.beta2 == (double)0.99f &&
              o.eps == (double)1e-6f && o.weight_decay == 0.25 && o.schedule == GI_SCHED_COSINE &&
              o.warmup_steps == 7 && o.total_steps == 1234 && o.min_lr == 0.125 && o.step_every == 9 &&
              o.step_gamma == 0.75 && o.clip_norm == 2.0,
          "optim spec copied from the train.* config keys");
}

int main(void)
{
    test_adam_one_step();
    test_adam_bias_correction();
    test_schedules();
    test_clipping();
    test_sum_order();
    test_from_config();
    return check_summary();
}
