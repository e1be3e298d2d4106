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
