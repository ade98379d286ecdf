/* SPDX-License-Identifier: MIT */
/* CLOCK_MONOTONIC (and its coarse variant) in nanoseconds. */
#ifndef WEFT_UTIL_CLOCK_H
#define WEFT_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t weft__clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CLOCK_MONOTONIC_COARSE (the last tick, a few ms old; no clock read):
 * for the dump's time in state, stamped on every spawn and park. */
static inline int64_t weft__clock_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif /* WEFT_UTIL_CLOCK_H */
