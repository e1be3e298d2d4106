/* vmath.c - vectorised sin/cos through SLEEF (see vmath.h).
 *
 * Each width lives in its own file compiled for its instruction set
 * (vmath_avx512.c, vmath_avx.c) so that nothing else in the program uses
 * those instructions; they are called only after the CPU check below. SSE2 is
 * part of x86-64 and is compiled here. The scalar pure-C SLEEF function is
 * the fallback on other architectures and for the tails.
 */
#include "geneinr/vmath.h"

#include <sleef.h>

#include "vmath_impl.h"

static void sincos1(const float *x, float *s, float *c, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        Sleef_float_2 r = Sleef_cinz_sincosf1_u10purec(x[k]);
        if (s)
            s[k] = r.x;
        if (c)
            c[k] = r.y;
    }
}

#if defined(__x86_64__)
#include <emmintrin.h>

static void sincos4(const float *x, float *s, float *c, size_t n)
{
    size_t k = 0;
    for (; k + 4 <= n; k += 4) {
        Sleef___m128_2 r = Sleef_cinz_sincosf4_u10sse2(_mm_loadu_ps(x + k));
        if (s)
            _mm_storeu_ps(s + k, r.x);
        if (c)
            _mm_storeu_ps(c + k, r.y);
    }
    sincos1(x + k, s ? s + k : NULL, c ? c + k : NULL, n - k);
}
#endif

/* gi_sine_act, one value at a time (the scalar fallback and the tails):
 * the same IEEE single operations as every vector width */
static void sine1(float *y, float *d, const float *b, float omega, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        Sleef_float_2 r = Sleef_cinz_sincosf1_u35purec(omega * (y[k] + b[k]));
        y[k] = r.x;
        if (d)
            d[k] = r.y * omega;
    }
}

#if defined(__x86_64__)
static void sine4(float *y, float *d, const float *b, float omega, size_t n)
{
    __m128 w = _mm_set1_ps(omega);
    size_t k = 0;
    for (; k + 4 <= n; k += 4) {
        __m128 z = _mm_mul_ps(w, _mm_add_ps(_mm_loadu_ps(y + k), _mm_loadu_ps(b + k)));
        Sleef___m128_2 r = Sleef_cinz_sincosf4_u35sse2(z);
        _mm_storeu_ps(y + k, r.x);
        if (d)
            _mm_storeu_ps(d + k, _mm_mul_ps(r.y, w));
    }
    sine1(y + k, d ? d + k : NULL, b + k, omega, n - k);
}
#endif

typedef void (*sine_fn)(float *, float *, const float *, float, size_t);

static sine_fn sine_of(int width)
{
    switch (width) {
#if defined(__x86_64__)
    case 16:
        return gi_vmath_sine16;
    case 8:
        return gi_vmath_sine8;
    case 4:
        return sine4;
#endif
    case 1:
        return sine1;
    default:
        return NULL;
    }
}

typedef void (*sincos_fn)(const float *, float *, float *, size_t);
typedef void (*exp_fn)(const float *, float *, size_t);

static void exp1(const float *x, float *y, size_t n)
{
    for (size_t k = 0; k < n; k++)
        y[k] = Sleef_cinz_expf1_u10purec(x[k]);
}

#if defined(__x86_64__)
static void exp4(const float *x, float *y, size_t n)
{
    size_t k = 0;
    for (; k + 4 <= n; k += 4)
        _mm_storeu_ps(y + k, Sleef_cinz_expf4_u10sse2(_mm_loadu_ps(x + k)));
    exp1(x + k, y + k, n - k);
}
#endif

static exp_fn exp_of(int width)
{
    switch (width) {
#if defined(__x86_64__)
    case 16:
        return gi_vmath_exp16;
    case 8:
        return gi_vmath_exp8;
    case 4:
        return exp4;
#endif
    case 1:
        return exp1;
    default:
        return NULL;
    }
}

static int cpu_width(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return 16;
    if (__builtin_cpu_supports("avx"))
        return 8;
    return 4;
#else
    return 1;
#endif
}

static sincos_fn fn_of(int width)
{
    switch (width) {
#if defined(__x86_64__)
    case 16:
        return gi_vmath_sincos16;
    case 8:
        return gi_vmath_sincos8;
    case 4:
        return sincos4;
#endif
    case 1:
        return sincos1;
    default:
        return NULL;
    }
}

int gi_vmath_width(void)
{
    /* Read-only after the first call, and the same value on every call: the
     * CPU does not change under a process. */
    static int width;
    if (!width)
        width = cpu_width();
    return width;
}

const char *gi_vmath_isa(void)
{
    switch (gi_vmath_width()) {
    case 16:
        return "AVX-512";
    case 8:
        return "AVX";
    case 4:
        return "SSE2";
    default:
        return "scalar";
    }
}

void gi_sincosf(const float *x, float *s, float *c, size_t n)
{
    fn_of(gi_vmath_width())(x, s, c, n);
}

void gi_sinf(const float *x, float *s, size_t n)
{
    fn_of(gi_vmath_width())(x, s, NULL, n);
}

void gi_sine_act(float *y, float *d, const float *b, float omega, size_t n)
{
    sine_of(gi_vmath_width())(y, d, b, omega, n);
}

int gi_sine_act_width(int width, float *y, float *d, const float *b, float omega, size_t n)
{
    sine_fn f = sine_of(width);
    if (!f || width > gi_vmath_width())
        return 0;
    f(y, d, b, omega, n);
    return width;
}

int gi_sincosf_width(int width, const float *x, float *s, float *c, size_t n)
{
    sincos_fn f = fn_of(width);
    if (!f || width > gi_vmath_width())
        return 0;
    f(x, s, c, n);
    return width;
}

void gi_expf(const float *x, float *y, size_t n)
{
    exp_of(gi_vmath_width())(x, y, n);
}

int gi_expf_width(int width, const float *x, float *y, size_t n)
{
    exp_fn f = exp_of(width);
    if (!f || width > gi_vmath_width())
        return 0;
    f(x, y, n);
    return width;
}
