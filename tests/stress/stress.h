/* SPDX-License-Identifier: MIT */
/* Shared bits of the stress programs (tests/stress/, run by
 * `make stress`): the seed and duration from the environment, a random
 * generator, failure recording and a watchdog that turns a hang into a
 * task dump and a failure. Each program runs for WEFT_STRESS_SECONDS
 * (default 10), prints its seed and takes it back from WEFT_SEED, and
 * exits 1 when an invariant broke. */
#ifndef WEFT_TESTS_STRESS_H
#define WEFT_TESTS_STRESS_H

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

#define STRESS_UNUSED __attribute__((unused))

struct stress {
    const char *name;
    uint64_t seed;
    double seconds;
    unsigned workers;
    int64_t end_ns;          /* when the storm stops (weft_now clock) */
    atomic_int n_failures;
    weft_runtime *rt;        /* dumped by the watchdog */
    pthread_t watchdog;
    atomic_bool done;
};

static struct stress stress_g;

/* splitmix64: one 64-bit state per user, no locks. */
static STRESS_UNUSED uint64_t stress_rand(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static STRESS_UNUSED unsigned stress_below(uint64_t *s, unsigned n)
{
    return n ? (unsigned)(stress_rand(s) % n) : 0;
}

/* A generator state for stream k, derived from the run's seed. */
static STRESS_UNUSED uint64_t stress_stream(uint64_t k)
{
    uint64_t s = stress_g.seed ^ (k * UINT64_C(0xD1B54A32D192ED03));
    stress_rand(&s);
    return s;
}

/* Records a broken invariant (any thread, never exits): the first few are
 * printed with the seed. */
__attribute__((format(printf, 1, 2))) static STRESS_UNUSED void stress_fail(const char *fmt, ...)
{
    int n = atomic_fetch_add(&stress_g.n_failures, 1);
    if (n >= 10)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: FAILED: %s (WEFT_SEED=%" PRIu64 ")\n", stress_g.name, msg,
            stress_g.seed);
}

#define STRESS_CHECK(cond, ...)                                                     \
    do {                                                                            \
        if (!(cond))                                                                \
            stress_fail(__VA_ARGS__);                                               \
    } while (0)

static STRESS_UNUSED bool stress_running(void) { return weft_now() < stress_g.end_ns; }

static void *stress_watchdog(void *arg)
{
    (void)arg;
    /* The storm, then a generous minute for everything to wind down. */
    int64_t limit = stress_g.end_ns + WEFT_SEC(60);
    while (!atomic_load(&stress_g.done)) {
        if (weft_now() > limit) {
            fprintf(stderr, "%s: FAILED: still running %.0f s after the storm ended; "
                            "live tasks (WEFT_SEED=%" PRIu64 "):\n",
                    stress_g.name, 60.0, stress_g.seed);
            if (stress_g.rt)
                weft_runtime_dump(stress_g.rt, stderr);
            abort();
        }
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Reads the environment, prints the parameters, starts the watchdog. */
static STRESS_UNUSED void stress_init(const char *name)
{
    stress_g.name = name;
    const char *s = getenv("WEFT_SEED");
    if (s && *s) {
        stress_g.seed = strtoull(s, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        stress_g.seed = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
                        ((uint64_t)getpid() << 32);
    }
    s = getenv("WEFT_STRESS_SECONDS");
    stress_g.seconds = s && *s ? strtod(s, NULL) : 10.0;
    if (!(stress_g.seconds > 0))
        stress_g.seconds = 10.0;
    s = getenv("STRESS_WORKERS");
    stress_g.workers = s && *s ? (unsigned)strtoul(s, NULL, 10) : 4;
    if (stress_g.workers == 0 || stress_g.workers > WEFT_MAX_WORKERS)
        stress_g.workers = 4;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("%s: seed %" PRIu64 " (WEFT_SEED=%" PRIu64 " repeats it), %.1f s, %u workers\n",
           name, stress_g.seed, stress_g.seed, stress_g.seconds, stress_g.workers);
    stress_g.end_ns = weft_now() + (int64_t)(stress_g.seconds * 1e9);
    pthread_create(&stress_g.watchdog, NULL, stress_watchdog, NULL);
}

/* A runtime of the configured size (exits 1 if it cannot start). */
static STRESS_UNUSED weft_runtime *stress_runtime(void)
{
    weft_options o = {.workers = stress_g.workers};
    weft_runtime *rt = weft_runtime_new(&o);
    if (!rt) {
        fprintf(stderr, "%s: weft_runtime_new: %s\n", stress_g.name, weft_strerror(-errno));
        exit(1);
    }
    stress_g.rt = rt;
    return rt;
}

static STRESS_UNUSED void stress_free_runtime(weft_runtime *rt)
{
    stress_g.rt = NULL;
    weft_runtime_free(rt);
}

/* Stops the watchdog; prints the verdict; returns the exit status. */
static STRESS_UNUSED int stress_finish(void)
{
    atomic_store(&stress_g.done, true);
    pthread_join(stress_g.watchdog, NULL);
    int n = atomic_load(&stress_g.n_failures);
    if (n) {
        printf("%s: FAILED: %d broken invariant%s (WEFT_SEED=%" PRIu64 ")\n", stress_g.name, n,
               n == 1 ? "" : "s", stress_g.seed);
        return 1;
    }
    printf("%s: ok\n", stress_g.name);
    return 0;
}

/* Descriptors open now (for leak checks). */
static STRESS_UNUSED int stress_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

#endif /* WEFT_TESTS_STRESS_H */
