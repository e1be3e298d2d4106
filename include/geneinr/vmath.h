/* vmath.h - vectorised sine, cosine and exponential with reproducible results.
 *
 * The sine layers of SIREN and the Fourier features evaluate sin/cos on every
 * activation; scalar libm calls were a third of a SIREN training step. These
 * use SLEEF's "cinz" functions (consistent, no FMA; 1.0-ulp accuracy), which
 * return bit-identical results in every vector width: the widest one this
 * CPU runs (AVX-512, AVX or SSE2) is chosen at run time, the scalar pure-C
 * variant handles the tail, and a value never depends on the CPU, on its
 * position in an array or on the array's length. So training stays
 * bit-reproducible and rank-count independent, and a model renders the same
 * on any x86-64 node. (test_vmath checks the widths against each other.)
 */
#ifndef GENEINR_VMATH_H
#define GENEINR_VMATH_H

#include <stddef.h>

/* For the element-wise loops of the hot paths (bias + activation, their
 * derivatives, gradient sums, the optimizer): one copy of the function per
 * vector width, chosen at load time for this CPU (GCC function multi-
 * versioning), with the loops marked `#pragma omp simd` (-fopenmp-simd, no
 * OpenMP run time). Element-wise IEEE arithmetic rounds the same in every
 * width and -std=c11 forbids FMA contraction, so every copy gives the same
 * bits; reductions stay sequential (never marked). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define GI_VECTORISED __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GI_VECTORISED
#endif

/* s[k] = sin(x[k]), c[k] = cos(x[k]) for k < n. s or c may alias x. */
void gi_sincosf(const float *x, float *s, float *c, size_t n);

/* s[k] = sin(x[k]) for k < n. s may alias x. */
void gi_sinf(const float *x, float *s, size_t n);

/* y[k] = exp(x[k]) for k < n (the kriging covariances of a render); y may
 * alias x. The same consistency: bit-identical in every width. */
void gi_expf(const float *x, float *y, size_t n);

/* The SIREN activation, in place on n values: z = omega (y[k] + b[k]), then
 * y[k] = sin z and, unless d is NULL, d[k] = omega cos z (the derivative
 * that backward needs). One pass per vector - pre-activation, both
 * transcendentals and the derivative - instead of three over the row.
 * SLEEF's consistent 3.5-ulp sincos (the 1-ulp one costs 1.7x as much and
 * the network does not need its last ulps): bit-identical in every width,
 * and sin z does not depend on whether d is kept (training and render agree). */
void gi_sine_act(float *y, float *d, const float *b, float omega, size_t n);

/* Vector width in floats used by this process (16, 8, 4 or 1), and a name. */
int gi_vmath_width(void);
const char *gi_vmath_isa(void);

/* The same functions at a given width (16, 8, 4 or 1; 0 if this CPU cannot
 * run it): for tests that check the widths agree bit for bit. */
int gi_sincosf_width(int width, const float *x, float *s, float *c, size_t n);
int gi_expf_width(int width, const float *x, float *y, size_t n);
int gi_sine_act_width(int width, float *y, float *d, const float *b, float omega, size_t n);

#endif
