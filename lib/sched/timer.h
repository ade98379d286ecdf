/* SPDX-License-Identifier: MIT */
/* The timer service: one hierarchical timing wheel per worker, each under
 * its own lock, so that arming and cancelling never contend on one
 * runtime-wide lock (Tokio's single wheel lock was a known hot spot; Go
 * keeps a heap per P). A task arms its timer on the wheel of the worker it
 * runs on; any idle worker, or the monitor, may fire the due timers of any
 * wheel.
 *
 * Its lock is a spinlock (util/spin.h): an arm or a cancel holds it for a
 * few dozen instructions, where a pthread mutex cost as much again
 * (timers_churn); a fire pass holds it while it claims its tasks, never
 * across a system call.
 *
 * The wheel counts ticks of 2^20 ns (1.05 ms): WEFT__TIMER_LEVELS levels
 * of 64 slots, level L's slots 64^L ticks wide, so six levels reach 2^36
 * ticks (2.3 years); farther deadlines wait in one overflow list that is
 * sorted out once per 2^36 ticks. Each slot is an array (a timer knows its
 * index: cancelling moves the last one into its place) and each level has
 * a 64-bit occupancy map, so arm and cancel are O(1) (amortized) and
 * finding the next expiry is one bit scan per level. A timer fires at the
 * first tick boundary at or after its deadline: never early, at most one
 * tick late (plus the wake-up). Measured against the 4-ary heaps this
 * replaces (bench/weft-bench timers, timers_churn; see docs/design.md):
 * the heap's removal was the largest user-space cost of 100,000 sleepers.
 *
 * The names (timer_heap, weft__timer_*) are those of the heap it replaced:
 * callers did not change. */
#ifndef WEFT_SCHED_TIMER_H
#define WEFT_SCHED_TIMER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "util/spin.h"

#define WEFT__TIMER_TICK_SHIFT 20 /* one tick: 2^20 ns */
#define WEFT__TIMER_LEVELS 6
#define WEFT__TIMER_SLOTS 64

struct timer_heap;

/* A timer embedded in a task: it wakes that task when it fires. */
struct timer {
    int64_t deadline;                  /* instant, ns */
    uint32_t idx;                      /* where it is armed: level * 64 +
                                          slot, or one of the lists of
                                          timer.c */
    uint32_t pos;                      /* index in its slot's array */
    _Atomic(struct timer_heap *) heap; /* wheel it is armed in or being
                                          fired from, or NULL */
    void *arg;                         /* what the fire callback wakes:
                                          prefetched before it runs */
    struct timer *next, *prev;         /* in the far and spill lists */
};

/* A slot: an array of timers, not a list, so that firing a slot of
 * thousands reads their (cold) memory in parallel, prefetched, rather
 * than one miss after another down a chain. */
struct timer_slot {
    struct timer **v;
    uint32_t len, cap;
};

/* A worker's wheel (the name is the heap's it replaced). */
struct timer_heap {
    struct spin lock;        /* a few dozen instructions per arm or
                                cancel; a fire pass holds it longer */
    _Atomic int64_t next;    /* earliest expiry, ns (a tick boundary, at or
                                before the earliest deadline), or INT64_MAX;
                                read unlocked */
    uint64_t elapsed;        /* every tick before this one has fired */
    uint32_t len;            /* armed timers */
    uint64_t occupied[WEFT__TIMER_LEVELS];
    struct timer *far;       /* deadlines 2^36 ticks or more away */
    struct timer *spill;     /* timers a slot had no memory for (timer.c) */
    /* [WEFT__TIMER_LEVELS][WEFT__TIMER_SLOTS], 6 KiB: allocated apart,
     * so that the worker that embeds the wheel keeps its hot fields
     * close together. */
    struct timer_slot (*slots)[WEFT__TIMER_SLOTS];
};

WEFT__MUST_CHECK int weft__timer_heap_init(struct timer_heap *h);
void weft__timer_heap_destroy(struct timer_heap *h);
/* Arms t (not armed) at deadline in h; t->arg must be set. Returns 0 or
 * -ENOMEM. A deadline already past fires at the next
 * weft__timer_fire_due. */
WEFT__MUST_CHECK int weft__timer_arm(struct timer_heap *h, struct timer *t, int64_t deadline);
/* Disarms t if it is armed; once this returns, t's fire callback is not
 * running and will not run. */
void weft__timer_disarm(struct timer *t);
/* Fires every timer of h due at now, in one pass under h's lock: removes
 * each and calls fire(t, ctx) with the lock held (a concurrent
 * weft__timer_disarm(t) waits for it). Returns how many fired. Does
 * nothing if another thread holds the lock and `try` is set. */
unsigned weft__timer_fire_due(struct timer_heap *h, int64_t now, bool try,
                              void (*fire)(struct timer *t, void *ctx), void *ctx);
/* Armed timers in h (approximate). */
uint32_t weft__timer_count(struct timer_heap *h);

static inline int64_t weft__timer_next(struct timer_heap *h)
{
    return atomic_load_explicit(&h->next, memory_order_relaxed);
}

#endif /* WEFT_SCHED_TIMER_H */
