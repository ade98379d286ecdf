/* SPDX-License-Identifier: MIT */
/* A per-worker pseudo-random sequence (xorshift64, Marsaglia 2003): cheap,
 * never zero from a non-zero seed, and good enough to pick steal victims
 * and select cases evenly. Not for anything that must be unpredictable. */
#ifndef WEFT_UTIL_RAND_H
#define WEFT_UTIL_RAND_H

#include <stdint.h>

static inline uint64_t weft__xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

#endif /* WEFT_UTIL_RAND_H */
