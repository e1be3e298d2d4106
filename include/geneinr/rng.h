/* rng.h - counter-based random numbers.
 *
 * Every random draw is a pure function of (seed, stream, counter): there is no
 * generator state to carry, split or checkpoint, so results never depend on the
 * number of ranks or the order in which draws happen. Streams separate uses
 * (initialisation of a layer, batch selection, phantom noise, ...); counters
 * index draws within a stream. The mixer is SplitMix64's finaliser applied
 * twice over a combination of the three words.
 */
#ifndef GENEINR_RNG_H
#define GENEINR_RNG_H

#include <stdint.h>

/* 64 random bits for (seed, stream, counter). */
uint64_t gi_rng_u64(uint64_t seed, uint64_t stream, uint64_t counter);

/* Uniform in [0, 1) with 24 random bits (exactly representable as float). */
double gi_rng_uniform(uint64_t seed, uint64_t stream, uint64_t counter);

/* Standard normal (Box-Muller over counters 2c and 2c+1). */
double gi_rng_normal(uint64_t seed, uint64_t stream, uint64_t counter);

/* Uniform integer in [0, n) (n > 0), negligible bias for n < 2^32. */
uint64_t gi_rng_below(uint64_t seed, uint64_t stream, uint64_t counter, uint64_t n);

/* Stream identifiers used across modules, kept here so no two uses collide. */
enum {
    GI_STREAM_INIT = 1000,      /* model initialisation: + layer index */
    GI_STREAM_FOURIER = 2000,   /* Fourier feature frequencies */
    GI_STREAM_BATCH = 3000,     /* mini-batch selection: counter = step * batch_size + j */
    GI_STREAM_SPLIT = 4000,     /* validation split */
    GI_STREAM_PHANTOM = 5000,   /* phantom generator: + purpose */
    GI_STREAM_SWEEP = 6000,     /* sweep random search: + key position, counter = draw */
    GI_STREAM_CORRELATE = 7000  /* correlate's nulls and resampling: + purpose (nulls.h, correlate.h) */
};

#endif
