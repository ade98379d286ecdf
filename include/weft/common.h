/* SPDX-License-Identifier: MIT */
/* Shared definitions of the weft API: export macro, task function type,
 * duration helpers, opaque object types and weft_strerror(). */
#ifndef WEFT_COMMON_H
#define WEFT_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

/* Durations and instants are int64_t nanoseconds on CLOCK_MONOTONIC. */
#define WEFT_USEC(n) ((int64_t)(n) * INT64_C(1000))
#define WEFT_MSEC(n) ((int64_t)(n) * INT64_C(1000000))
#define WEFT_SEC(n) ((int64_t)(n) * INT64_C(1000000000))
/* A deadline that never passes. */
#define WEFT_FOREVER INT64_MAX

/* The body of a task. Its return value is its status: >= 0 success,
 * < 0 failure (a negative errno by convention). */
typedef int (*weft_fn)(void *arg);

typedef struct weft_runtime weft_runtime;
typedef struct weft_task weft_task;
typedef struct weft_group weft_group;
typedef struct weft_sem weft_sem;
typedef struct weft_mutex weft_mutex;
typedef struct weft_event weft_event;
typedef struct weft_chan weft_chan;
typedef struct weft_gen weft_gen;

/* Names an error code (negative or positive errno, or 0). Never returns
 * NULL; unknown codes get "unknown error". Any thread. */
WEFT_API const char *weft_strerror(int err);

/* errno of the calling thread, read afresh. Constructors that fail return
 * NULL and set errno; in a task read it with this. A task may move to
 * another worker thread at any suspension point, and because the C library
 * declares errno's address function const, a compiler may keep the
 * address it got before a suspension in the same function and then read
 * the old thread's errno. Any thread. */
WEFT_API int weft_errno(void);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_COMMON_H */
