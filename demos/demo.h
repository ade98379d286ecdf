/* SPDX-License-Identifier: MIT */
/* What every demo shares: the WEFT_DEMO_SCALE time scale, sleeping in
 * tutorial seconds, and turning a status into an exit code. Header-only
 * (static inline functions) so that each demo stays a single program. */
#ifndef WEFT_DEMO_H
#define WEFT_DEMO_H

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft.h>

/* Multiplies every sleep; 1.0 reproduces the tutorials' timing, the smoke
 * test uses 0.05. Written once by demo_init() before any runtime starts,
 * so the worker threads created afterwards see it without a lock. */
static double demo_scale_factor = 1.0;

/* Reads WEFT_DEMO_SCALE (a float >= 0, default 1.0). Returns 0, or -EINVAL
 * after telling the user on stderr. Call first thing in main(). */
static inline int demo_init(void)
{
    const char *env = getenv("WEFT_DEMO_SCALE");
    if (!env || !*env)
        return 0;
    char *end;
    errno = 0;
    double scale = strtod(env, &end);
    if (errno != 0 || *end != '\0' || !isfinite(scale) || scale < 0.0) {
        fprintf(stderr, "WEFT_DEMO_SCALE=%s: want a number >= 0\n", env);
        return -EINVAL;
    }
    demo_scale_factor = scale;
    return 0;
}

/* Tutorial seconds (>= 0) as a weft duration, scaled by WEFT_DEMO_SCALE. */
static inline int64_t demo_ns(double seconds)
{
    double ns = seconds * demo_scale_factor * 1e9 + 0.5;
    return ns < 9e18 ? (int64_t)ns : WEFT_FOREVER;
}

/* asyncio.sleep(seconds), scaled by WEFT_DEMO_SCALE. Returns weft_sleep's
 * status: 0, -ECANCELED or -ETIMEDOUT. Task only. */
static inline int demo_sleep(double seconds)
{
    return weft_sleep(demo_ns(seconds));
}

/* Seconds of real (unscaled) time since the weft_now() instant start. */
static inline double demo_elapsed(int64_t start)
{
    return (double)(weft_now() - start) / 1e9;
}

/* The process exit code for a demo whose main coroutine returned status:
 * flushes stdout (a pipe in the smoke test) and reports failures on
 * stderr. */
static inline int demo_exit(const char *prog, int status)
{
    if (fflush(stdout) != 0) {
        perror(prog);
        return EXIT_FAILURE;
    }
    if (status < 0) {
        fprintf(stderr, "%s: %s\n", prog, weft_strerror(status));
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

#endif /* WEFT_DEMO_H */
