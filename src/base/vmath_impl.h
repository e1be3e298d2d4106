/* vmath_impl.h - the per-instruction-set kernels of vmath.c (private). */
#ifndef GENEINR_VMATH_IMPL_H
#define GENEINR_VMATH_IMPL_H

#include <stddef.h>

/* s[k] = sin(x[k]), c[k] = cos(x[k]); s or c may be NULL or alias x. Only
 * call after checking the CPU supports the instruction set. */
void gi_vmath_sincos16(const float *x, float *s, float *c, size_t n); /* AVX-512F */
void gi_vmath_sincos8(const float *x, float *s, float *c, size_t n);  /* AVX */
/* y[k] = exp(x[k]); y may alias x. */
void gi_vmath_exp16(const float *x, float *y, size_t n); /* AVX-512F */
void gi_vmath_exp8(const float *x, float *y, size_t n);  /* AVX */

/* gi_sine_act (vmath.h) */
void gi_vmath_sine16(float *y, float *d, const float *b, float omega, size_t n); /* AVX-512F */
void gi_vmath_sine8(float *y, float *d, const float *b, float omega, size_t n);  /* AVX */

#endif
