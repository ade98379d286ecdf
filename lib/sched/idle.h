/* SPDX-License-Identifier: MIT */
/* The idle protocol: which workers search for work, which sleep, and who
 * wakes whom (the shape of Tokio's idle.rs and Go's wakep/spinning Ms).
 *
 * - At most half the workers search at once (weft__idle_start_searching).
 * - Whoever makes work available calls weft__idle_notify after a full
 *   fence: it picks one sleeper to wake, but only when nobody searches
 *   (a searcher will find the work) and someone sleeps.
 * - The last searcher that finds work asks for one more (stop_searching
 *   returns true), in case there is more work than it took.
 * - A worker going to sleep lists itself (sleep_begin), fences, and then
 *   re-checks for work: either the pusher's fence saw it listed and woke
 *   someone, or its own re-check sees the work (Go's "delicate dance").
 * - Sleeping workers are also marked in a bitmap (Go's idlepMask) that
 *   thieves and the monitor read to skip them without touching their
 *   lines: a sleeping worker has nothing to steal.
 *
 * The module knows nothing of workers, queues or pollers: it hands back
 * the index of the worker to wake and the caller wakes it, so that it can
 * be unit-tested with plain threads (tests/unit/idle_test.c). */
#ifndef WEFT_SCHED_IDLE_H
#define WEFT_SCHED_IDLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"

#define WEFT__IDLE_MASK_WORDS 4 /* 256 workers (WEFT_MAX_WORKERS) */

/* Per-worker state, written under lock (searching also by its owner
 * alone while it is not listed as a sleeper). */
struct idle_slot {
    bool searching; /* counted in n_searching */
    bool sleeping;  /* listed in sleepers */
    unsigned pos;   /* its index in sleepers while listed */
};

struct idle {
    /* Read unlocked after a seq_cst fence by whoever pushes work; changed
     * under lock. Their own line: every worker's loop touches them. */
    _Atomic uint32_t n_searching WEFT__ALIGNED_CL;
    _Atomic uint32_t n_unparked;
    pthread_mutex_t lock;
    unsigned n_workers;
    unsigned n_sleepers;
    unsigned *sleepers;     /* stack of sleeping worker indices */
    struct idle_slot *slot; /* one per worker */
    /* Bit i set while worker i sleeps (set before its re-check, cleared
     * when it wakes); read relaxed, a hint for skipping. */
    _Atomic uint64_t sleeping_mask[WEFT__IDLE_MASK_WORDS] WEFT__ALIGNED_CL;
};

WEFT__MUST_CHECK int weft__idle_init(struct idle *d, unsigned n_workers);
void weft__idle_destroy(struct idle *d);

/* After making work available (the caller's fence included): the index of
 * a sleeping worker that the caller must wake (its state already moved to
 * searching and unparked), or -1 when nobody needs waking. */
int weft__idle_notify_slow(struct idle *d);

static inline int weft__idle_notify(struct idle *d)
{
    /* Full fence: orders the caller's push before our reads of the
     * counters; pairs with the fence in weft__idle_sleep_begin, between a
     * sleeper listing itself and re-checking for work. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&d->n_searching, memory_order_relaxed) != 0 ||
        atomic_load_explicit(&d->n_unparked, memory_order_relaxed) >= d->n_workers)
        return -1; /* a searcher will find the work, or nobody sleeps */
    return weft__idle_notify_slow(d); /* under the lock: pick a sleeper */
}

/* Worker i wants to search: true if it may (it is then counted). */
bool weft__idle_start_searching(struct idle *d, unsigned i);
/* Worker i found work or gives up searching: true when it was the last
 * searcher, and the caller should call weft__idle_notify (more work may be
 * waiting). */
bool weft__idle_stop_searching(struct idle *d, unsigned i);
/* Is worker i counted as searching? Its owner only. */
static inline bool weft__idle_searching(const struct idle *d, unsigned i)
{
    return d->slot[i].searching;
}

/* Worker i is about to sleep: stops its search, lists it as a sleeper and
 * marks it in the mask, then issues the full fence after which the caller
 * must re-check for work (and notify if it finds some). */
void weft__idle_sleep_begin(struct idle *d, unsigned i);
/* Worker i woke: takes it off the list if a timer, descriptor or timeout
 * woke it rather than weft__idle_notify, and clears its mask bit. Returns
 * true when weft__idle_notify woke it (it is then searching). */
bool weft__idle_sleep_end(struct idle *d, unsigned i);

/* Is worker i asleep (relaxed hint)? */
static inline bool weft__idle_is_sleeping(struct idle *d, unsigned i)
{
    return (atomic_load_explicit(&d->sleeping_mask[i / 64], memory_order_relaxed) >> (i % 64)) &
           1;
}
/* Workers not asleep now (relaxed hint). */
static inline uint32_t weft__idle_awake(struct idle *d)
{
    return atomic_load_explicit(&d->n_unparked, memory_order_relaxed);
}

#endif /* WEFT_SCHED_IDLE_H */
