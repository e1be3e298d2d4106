/* optim.h - Adam / AdamW, learning-rate schedules, gradient clipping.
 *
 * Adam matches torch.optim.Adam (L2 weight decay added to the gradient);
 * AdamW matches torch.optim.AdamW (decoupled: p -= lr * wd * p before the
 * Adam update). Bias-corrected moments; eps added to sqrt(v_hat).
 */
#ifndef GENEINR_OPTIM_H
#define GENEINR_OPTIM_H

#include <stddef.h>

#include "geneinr/config.h"
#include "geneinr/error.h"

typedef struct gi_optim_spec {
    int optimizer;           /* GI_OPT_ADAM | GI_OPT_ADAMW */
    double lr, beta1, beta2, eps, weight_decay;
    int schedule;            /* GI_SCHED_CONSTANT | GI_SCHED_STEP | GI_SCHED_COSINE */
    int warmup_steps;        /* lr ramps linearly: lr * (step + 1) / warmup for step < warmup */
    long total_steps;        /* cosine: decays from lr to min_lr over [warmup, total) */
    double min_lr;
    int step_every;          /* step: lr * gamma^floor((step - warmup) / step_every) */
    double step_gamma;
    double clip_norm;        /* 0 = no clipping */
} gi_optim_spec;

void gi_optim_spec_from_config(gi_optim_spec *o, const gi_config *c);

typedef struct gi_adam {
    size_t n;
    float *m, *v;
    long t;                  /* steps taken so far */
} gi_adam;

int gi_adam_init(gi_adam *a, size_t n, gi_err *err);
void gi_adam_free(gi_adam *a);

/* Learning rate for 0-based step index `step`. */
double gi_lr_at(const gi_optim_spec *o, long step);

/* Sum of g[i]^2 in double, in a fixed order that depends on n alone (16
 * interleaved lanes, then a pairwise tree: optim.c): reproducible on any CPU
 * and vectorised. */
double gi_sum_squares(const float *g, size_t n);

/* Global L2 norm of g (gi_sum_squares); if max_norm > 0 and the norm exceeds it, scale g to
 * max_norm. Returns the norm before clipping. */
double gi_grad_clip(float *g, size_t n, double max_norm);

/* One update with learning rate lr (a->t is incremented first). */
void gi_adam_step(gi_adam *a, const gi_optim_spec *o, float *params, const float *grads, double lr);

#endif
