/* rng.c - counter-based random numbers (see rng.h). */
#include "geneinr/rng.h"

#include <math.h>

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t gi_rng_u64(uint64_t seed, uint64_t stream, uint64_t counter)
{
    uint64_t h = mix64(seed ^ 0x243f6a8885a308d3ULL);
    h = mix64(h ^ stream);
    return mix64(h ^ counter);
}

double gi_rng_uniform(uint64_t seed, uint64_t stream, uint64_t counter)
{
    return (double)(gi_rng_u64(seed, stream, counter) >> 40) * (1.0 / 16777216.0);
}

double gi_rng_normal(uint64_t seed, uint64_t stream, uint64_t counter)
{
    double u1 = gi_rng_uniform(seed, stream, 2 * counter);
    double u2 = gi_rng_uniform(seed, stream, 2 * counter + 1);
    if (u1 < 1e-12)
        u1 = 1e-12;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t gi_rng_below(uint64_t seed, uint64_t stream, uint64_t counter, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)gi_rng_u64(seed, stream, counter) * n) >> 64);
}
