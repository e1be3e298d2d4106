/* test_vmath.c - vectorised sin/cos: every vector width gives bit-identical
 * results (what keeps training reproducible on any x86-64 node), values do
 * not depend on array length or position, aliasing works, and the accuracy
 * is within SLEEF's 1-ulp bound of the double-precision libm result. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "geneinr/rng.h"
#include "geneinr/vmath.h"

#define N 100003 /* odd: every width has a tail */

static void fill(float *x)
{
    for (int i = 0; i < N; i++) {
        double u = gi_rng_uniform(5, 1, (uint64_t)i);
        /* pre-activations of sine layers (omega * z, |.| up to ~100), Fourier
         * angles, tiny values, and a few large arguments */
        double span = i % 97 == 0 ? 1e5 : i % 13 == 0 ? 1e-3 : 120.0;
        x[i] = (float)((2 * u - 1) * span);
    }
    x[0] = 0.0f;
    x[1] = -0.0f;
    x[2] = (float)M_PI;
}

static void test_widths_agree(void)
{
    float *x = malloc(sizeof(float) * N), *s1 = malloc(sizeof(float) * N), *c1 = malloc(sizeof(float) * N);
    float *s = malloc(sizeof(float) * N), *c = malloc(sizeof(float) * N);
    fill(x);
    gi_sincosf_width(1, x, s1, c1, N);
    int widths[] = {4, 8, 16};
    for (int w = 0; w < 3; w++) {
        char name[96];
        snprintf(name, sizeof name, "sincos width %d is bit-identical to the scalar SLEEF function", widths[w]);
        if (!gi_sincosf_width(widths[w], x, s, c, N)) {
            SKIP(name, "this CPU lacks the instruction set");
            continue;
        }
        CHECK(memcmp(s, s1, sizeof(float) * N) == 0 && memcmp(c, c1, sizeof(float) * N) == 0, name);
    }
    /* the dispatched entry points, on odd lengths and offsets */
    int same = 1;
    for (size_t n = 1; n < 40; n++) {
        gi_sincosf(x + n, s, c, n);
        for (size_t k = 0; k < n; k++)
            same &= s[k] == s1[n + k] && c[k] == c1[n + k];
    }
    CHECKF(same, "a value does not depend on the array length or its position", "width %d", gi_vmath_width());
    memcpy(s, x, sizeof(float) * N);
    gi_sincosf(s, s, c, N); /* sin in place */
    int alias = memcmp(s, s1, sizeof(float) * N) == 0 && memcmp(c, c1, sizeof(float) * N) == 0;
    memcpy(s, x, sizeof(float) * N);
    gi_sinf(s, s, N);
    alias &= memcmp(s, s1, sizeof(float) * N) == 0;
    CHECK(alias, "sin and cos may be written over their input");
    double worst = 0;
    for (int i = 0; i < N; i++) {
        if (fabs(x[i]) > 1e4)
            continue;
        double es = fabs(s1[i] - sin((double)x[i])), ec = fabs(c1[i] - cos((double)x[i]));
        /* 1 ulp of a value <= 1 in magnitude is at most 2^-24 */
        double e = (es > ec ? es : ec) / 0x1p-24;
        worst = e > worst ? e : worst;
    }
    CHECKF(worst <= 1.0, "sin/cos within 1 ulp of double libm (|x| <= 1e4)", "worst %.2f ulp", worst);
    printf("# vector width %d (%s), worst error %.2f ulp\n", gi_vmath_width(), gi_vmath_isa(), worst);
    free(x);
    free(s1);
    free(c1);
    free(s);
    free(c);
}

/* The SIREN activation: every width bit-identical to the scalar function
 * (values, derivatives, and sin without the derivative), independent of
 * length and position, and within SLEEF's 3.5-ulp bound of double libm. */
static void test_sine_act(void)
{
    enum { M = 5003 }; /* odd: every width has a tail */
    float *y0 = malloc(sizeof(float) * M), *b = malloc(sizeof(float) * M), *y1 = malloc(sizeof(float) * M);
    float *d1 = malloc(sizeof(float) * M), *y = malloc(sizeof(float) * M), *d = malloc(sizeof(float) * M);
    const float omega = 30.0f;
    for (int i = 0; i < M; i++) {
        /* pre-activations of a sine layer before omega: |.| up to ~4 */
        y0[i] = (float)(8 * gi_rng_uniform(5, 3, (uint64_t)i) - 4);
        b[i] = (float)(0.1 * gi_rng_uniform(5, 4, (uint64_t)i) - 0.05);
    }
    memcpy(y1, y0, sizeof(float) * M);
    gi_sine_act_width(1, y1, d1, b, omega, M);
    int widths[] = {4, 8, 16};
    for (int w = 0; w < 3; w++) {
        char name[96];
        snprintf(name, sizeof name, "sine activation width %d is bit-identical to the scalar function", widths[w]);
        memcpy(y, y0, sizeof(float) * M);
        if (!gi_sine_act_width(widths[w], y, d, b, omega, M)) {
            SKIP(name, "this CPU lacks the instruction set");
            continue;
        }
        int same = memcmp(y, y1, sizeof(float) * M) == 0 && memcmp(d, d1, sizeof(float) * M) == 0;
        memcpy(y, y0, sizeof(float) * M);
        gi_sine_act_width(widths[w], y, NULL, b, omega, M);
        same &= memcmp(y, y1, sizeof(float) * M) == 0;
        CHECK(same, name);
    }
    int same = 1;
    for (size_t n = 1; n < 40; n++) {
        memcpy(y, y0 + n, sizeof(float) * n);
        gi_sine_act(y, d, b + n, omega, n);
        for (size_t k = 0; k < n; k++)
            same &= y[k] == y1[n + k] && d[k] == d1[n + k];
    }
    CHECK(same, "sine activation: a value does not depend on the array length or its position");
    double worst = 0, worst_d = 0;
    for (int i = 0; i < M; i++) {
        float z = omega * (y0[i] + b[i]); /* the float pre-activation the function forms */
        worst = fmax(worst, fabs(y1[i] - sin((double)z)) / 0x1p-24);
        /* d = omega cos z: 3.5 ulp of cos, then one rounding of the product */
        worst_d = fmax(worst_d, fabs(d1[i] / omega - cos((double)z)) / 0x1p-24);
    }
    printf("# sine activation: worst %.2f ulp (sin), %.2f (derivative)\n", worst, worst_d);
    CHECKF(worst <= 3.5 && worst_d <= 4.5, "sine activation within SLEEF's 3.5-ulp bound of double libm",
           "worst %.2f ulp (sin), %.2f (derivative)", worst, worst_d);
    free(y0);
    free(b);
    free(y1);
    free(d1);
    free(y);
    free(d);
}

/* exp (kriging covariances, arguments -(distance / range) scaled, <= 0):
 * every width bit-identical to the scalar function, independent of length
 * and position, in place, and within 1 ulp of double libm. */
static void test_exp(void)
{
    float *x = malloc(sizeof(float) * N), *y1 = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++)
        x[i] = (float)(-40 * gi_rng_uniform(5, 2, (uint64_t)i) + (i % 11 == 0 ? 3 : 0));
    x[0] = 0.0f;
    x[1] = -104.0f; /* underflows to a subnormal or 0 */
    gi_expf_width(1, x, y1, N);
    int widths[] = {4, 8, 16};
    for (int w = 0; w < 3; w++) {
        char name[96];
        snprintf(name, sizeof name, "exp width %d is bit-identical to the scalar SLEEF function", widths[w]);
        if (!gi_expf_width(widths[w], x, y, N)) {
            SKIP(name, "this CPU lacks the instruction set");
            continue;
        }
        CHECK(memcmp(y, y1, sizeof(float) * N) == 0, name);
    }
    int same = 1;
    for (size_t n = 1; n < 40; n++) {
        gi_expf(x + n, y, n);
        for (size_t k = 0; k < n; k++)
            same &= y[k] == y1[n + k];
    }
    memcpy(y, x, sizeof(float) * N);
    gi_expf(y, y, N);
    same &= memcmp(y, y1, sizeof(float) * N) == 0;
    CHECK(same, "exp: a value does not depend on length or position, and may be written over its input");
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double e = exp((double)x[i]);
        if (e < 0x1p-126)
            continue;
        int ex;
        frexp(e, &ex);
        double ulp = ldexp(1.0, ex - 24);
        worst = fabs(y1[i] - e) / ulp > worst ? fabs(y1[i] - e) / ulp : worst;
    }
    CHECKF(worst <= 1.0, "exp within 1 ulp of double libm", "worst %.2f ulp", worst);
    free(x);
    free(y1);
    free(y);
}

int main(void)
{
    test_widths_agree();
    test_sine_act();
    test_exp();
    return check_summary();
}
