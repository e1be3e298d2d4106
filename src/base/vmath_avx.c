/* vmath_avx.c - 8-wide SLEEF sin/cos; compiled with -mavx (Makefile) and
 * called only on CPUs that have it (vmath.c). */
#include "vmath_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <sleef.h>

void gi_vmath_sincos8(const float *x, float *s, float *c, size_t n)
{
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        Sleef___m256_2 r = Sleef_cinz_sincosf8_u10avx(_mm256_loadu_ps(x + k));
        if (s)
            _mm256_storeu_ps(s + k, r.x);
        if (c)
            _mm256_storeu_ps(c + k, r.y);
    }
    if (k < n) {
        /* the tail through the same function, padded */
        float in[8] = {0}, os[8], oc[8];
        for (size_t j = k; j < n; j++)
            in[j - k] = x[j];
        Sleef___m256_2 r = Sleef_cinz_sincosf8_u10avx(_mm256_loadu_ps(in));
        _mm256_storeu_ps(os, r.x);
        _mm256_storeu_ps(oc, r.y);
        for (size_t j = k; j < n; j++) {
            if (s)
                s[j] = os[j - k];
            if (c)
                c[j] = oc[j - k];
        }
    }
}

void gi_vmath_sine8(float *y, float *d, const float *b, float omega, size_t n)
{
    __m256 w = _mm256_set1_ps(omega);
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 z = _mm256_mul_ps(w, _mm256_add_ps(_mm256_loadu_ps(y + k), _mm256_loadu_ps(b + k)));
        Sleef___m256_2 r = Sleef_cinz_sincosf8_u35avx(z);
        _mm256_storeu_ps(y + k, r.x);
        if (d)
            _mm256_storeu_ps(d + k, _mm256_mul_ps(r.y, w));
    }
    if (k < n) {
        /* the tail through the same function, padded */
        float in[8] = {0}, os[8], oc[8];
        for (size_t j = k; j < n; j++)
            in[j - k] = omega * (y[j] + b[j]);
        Sleef___m256_2 r = Sleef_cinz_sincosf8_u35avx(_mm256_loadu_ps(in));
        _mm256_storeu_ps(os, r.x);
        _mm256_storeu_ps(oc, _mm256_mul_ps(r.y, w));
        for (size_t j = k; j < n; j++) {
            y[j] = os[j - k];
            if (d)
                d[j] = oc[j - k];
        }
    }
}

void gi_vmath_exp8(const float *x, float *y, size_t n)
{
    size_t k = 0;
    for (; k + 8 <= n; k += 8)
        _mm256_storeu_ps(y + k, Sleef_cinz_expf8_u10avx(_mm256_loadu_ps(x + k)));
    if (k < n) {
        /* the tail through the same function, padded */
        float in[8] = {0}, out[8];
        for (size_t j = k; j < n; j++)
            in[j - k] = x[j];
        _mm256_storeu_ps(out, Sleef_cinz_expf8_u10avx(_mm256_loadu_ps(in)));
        for (size_t j = k; j < n; j++)
            y[j] = out[j - k];
    }
}
#endif
