/*
 * rng.h - the engine's one random generator (xoshiro256**, seeded through
 * splitmix64): initialisers, dropout masks and shuffling all draw from
 * generators made here, so a seed reproduces a run exactly.
 */
#ifndef CNN_RNG_H
#define CNN_RNG_H

#include <stdint.h>

typedef struct cnn_rng {
  uint64_t s[4];
} cnn_rng;

void cnn_rng_seed(cnn_rng *r, uint64_t seed);
uint64_t cnn_rng_next(cnn_rng *r);
/* Uniform in [0, 1) with 24 random bits (exact in float). */
float cnn_rng_float(cnn_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t cnn_rng_below(cnn_rng *r, uint64_t n);
/* Standard normal (Box-Muller in double). */
double cnn_rng_normal(cnn_rng *r);

#endif
