/* SPDX-License-Identifier: MIT */
/* The timer service: one 4-ary min-heap per worker, each under its own
 * lock, so that arming and cancelling never contend on one runtime-wide
 * lock (Tokio's single wheel lock was a known hot spot; Go keeps a heap per
 * P). A task arms its timer on the heap of the worker it runs on; any idle
 * worker may fire the due timers of any heap. Arm and cancel are
 * O(log n); a million armed timers cost memory (one slot each), not CPU. */
#ifndef WEFT_SCHED_TIMER_H
#define WEFT_SCHED_TIMER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"

struct timer_heap;

/* A timer embedded in a task: it wakes that task when it fires. */
struct timer {
    int64_t deadline;                  /* instant, ns */
    uint32_t idx;                      /* position in heap->slots */
    _Atomic(struct timer_heap *) heap; /* heap it is armed in or being
                                          fired from, or NULL */
};

/* A heap slot carries its timer's deadline, so that sifting compares
 * within the array (a node's four children share one cache line) instead
 * of chasing each timer into the task that embeds it. */
struct timer_slot {
    int64_t deadline;
    struct timer *t;
};

struct timer_heap {
    pthread_mutex_t lock;
    struct timer_slot *slots; /* 4-ary heap ordered by deadline */
    uint32_t len, cap;
    _Atomic int64_t next; /* earliest deadline or INT64_MAX; read unlocked */
};

WEFT__MUST_CHECK int weft__timer_heap_init(struct timer_heap *h);
void weft__timer_heap_destroy(struct timer_heap *h);
/* Arms t (not armed) at deadline in h. Returns 0 or -ENOMEM. */
WEFT__MUST_CHECK int weft__timer_arm(struct timer_heap *h, struct timer *t, int64_t deadline);
/* Disarms t if it is armed; once this returns, t's fire callback is not
 * running and will not run. */
void weft__timer_disarm(struct timer *t);
/* Fires every timer of h due at now: removes it and calls fire(t) with the
 * heap locked (a concurrent weft__timer_disarm(t) waits for fire(t)). Returns how many fired. Does nothing if another thread holds
 * the lock and `try` is set. */
unsigned weft__timer_fire_due(struct timer_heap *h, int64_t now, bool try,
                              void (*fire)(struct timer *t));
/* Armed timers in h (approximate). */
uint32_t weft__timer_count(struct timer_heap *h);

static inline int64_t weft__timer_next(struct timer_heap *h)
{
    return atomic_load_explicit(&h->next, memory_order_relaxed);
}

#endif /* WEFT_SCHED_TIMER_H */
