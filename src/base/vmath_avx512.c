/* vmath_avx512.c - 16-wide SLEEF sin/cos; compiled with -mavx512f (Makefile)
 * and called only on CPUs that have it (vmath.c). */
#include "vmath_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <sleef.h>

void gi_vmath_sincos16(const float *x, float *s, float *c, size_t n)
{
    size_t k = 0;
    for (; k < n; k += 16) {
        /* The tail goes through the same 16-wide function with a masked
         * load/store, so every element takes the same code path. */
        __mmask16 m = n - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - k)) - 1);
        Sleef___m512_2 r = Sleef_cinz_sincosf16_u10avx512fnofma(_mm512_maskz_loadu_ps(m, x + k));
        if (s)
            _mm512_mask_storeu_ps(s + k, m, r.x);
        if (c)
            _mm512_mask_storeu_ps(c + k, m, r.y);
    }
}

void gi_vmath_sine16(float *y, float *d, const float *b, float omega, size_t n)
{
    __m512 w = _mm512_set1_ps(omega);
    for (size_t k = 0; k < n; k += 16) {
        __mmask16 m = n - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - k)) - 1);
        __m512 z = _mm512_mul_ps(w, _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + k), _mm512_maskz_loadu_ps(m, b + k)));
        Sleef___m512_2 r = Sleef_cinz_sincosf16_u35avx512fnofma(z);
        _mm512_mask_storeu_ps(y + k, m, r.x);
        if (d)
            _mm512_mask_storeu_ps(d + k, m, _mm512_mul_ps(r.y, w));
    }
}

void gi_vmath_exp16(const float *x, float *y, size_t n)
{
    for (size_t k = 0; k < n; k += 16) {
        __mmask16 m = n - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - k)) - 1);
        _mm512_mask_storeu_ps(y + k, m, Sleef_cinz_expf16_u10avx512fnofma(_mm512_maskz_loadu_ps(m, x + k)));
    }
}
#endif
