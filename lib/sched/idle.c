/* SPDX-License-Identifier: MIT */
/* The idle protocol; see idle.h. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

#include "sched/idle.h"

int weft__idle_init(struct idle *d, unsigned n_workers)
{
    atomic_init(&d->n_searching, 0);
    atomic_init(&d->n_unparked, n_workers);
    for (unsigned i = 0; i < WEFT__IDLE_MASK_WORDS; i++)
        atomic_init(&d->sleeping_mask[i], 0);
    d->n_workers = n_workers;
    d->n_sleepers = 0;
    d->sleepers = calloc(n_workers, sizeof *d->sleepers);
    d->slot = calloc(n_workers, sizeof *d->slot);
    if (!d->sleepers || !d->slot) {
        free(d->sleepers);
        free(d->slot);
        d->sleepers = NULL;
        d->slot = NULL;
        return -ENOMEM;
    }
    pthread_mutex_init(&d->lock, NULL);
    return 0;
}

void weft__idle_destroy(struct idle *d)
{
    if (!d->slot)
        return;
    pthread_mutex_destroy(&d->lock);
    free(d->sleepers);
    free(d->slot);
    d->sleepers = NULL;
    d->slot = NULL;
}

static inline void mask_set(struct idle *d, unsigned i)
{
    atomic_fetch_or_explicit(&d->sleeping_mask[i / 64], UINT64_C(1) << (i % 64),
                             memory_order_relaxed);
}

static inline void mask_clear(struct idle *d, unsigned i)
{
    atomic_fetch_and_explicit(&d->sleeping_mask[i / 64], ~(UINT64_C(1) << (i % 64)),
                              memory_order_relaxed);
}

int weft__idle_notify_slow(struct idle *d)
{
    pthread_mutex_lock(&d->lock);
    if (atomic_load_explicit(&d->n_searching, memory_order_relaxed) != 0 || d->n_sleepers == 0) {
        pthread_mutex_unlock(&d->lock);
        return -1;
    }
    unsigned i = d->sleepers[--d->n_sleepers];
    d->slot[i].sleeping = false;
    d->slot[i].searching = true; /* the woken worker starts out searching */
    atomic_fetch_add_explicit(&d->n_searching, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->n_unparked, 1, memory_order_relaxed);
    pthread_mutex_unlock(&d->lock);
    return (int)i;
}

bool weft__idle_start_searching(struct idle *d, unsigned i)
{
    if (d->slot[i].searching)
        return true;
    uint32_t s = atomic_load_explicit(&d->n_searching, memory_order_relaxed);
    if (2 * s >= d->n_workers && d->n_workers > 1)
        return false;
    /* seq_cst: a pusher that reads n_searching after its fence and sees
     * us counted leaves the wake-up to us; our searching loop then sees
     * its work (we read the queues after this RMW). */
    atomic_fetch_add_explicit(&d->n_searching, 1, memory_order_seq_cst);
    d->slot[i].searching = true;
    return true;
}

bool weft__idle_stop_searching(struct idle *d, unsigned i)
{
    if (!d->slot[i].searching)
        return false;
    d->slot[i].searching = false;
    /* seq_cst: orders what we took before the count drops, against a
     * pusher's fence and read of n_searching (weft__idle_notify). */
    return atomic_fetch_sub_explicit(&d->n_searching, 1, memory_order_seq_cst) == 1;
}

void weft__idle_sleep_begin(struct idle *d, unsigned i)
{
    pthread_mutex_lock(&d->lock);
    if (d->slot[i].searching) {
        d->slot[i].searching = false;
        atomic_fetch_sub_explicit(&d->n_searching, 1, memory_order_relaxed);
    }
    atomic_fetch_sub_explicit(&d->n_unparked, 1, memory_order_relaxed);
    d->slot[i].sleeping = true;
    d->slot[i].pos = d->n_sleepers;
    d->sleepers[d->n_sleepers++] = i;
    mask_set(d, i);
    pthread_mutex_unlock(&d->lock);
    /* Pairs with the fence in weft__idle_notify: either the pusher sees
     * us listed and wakes someone, or the caller's re-check sees its
     * work. */
    atomic_thread_fence(memory_order_seq_cst);
}

bool weft__idle_sleep_end(struct idle *d, unsigned i)
{
    bool notified = true;
    pthread_mutex_lock(&d->lock);
    if (d->slot[i].sleeping) {
        /* Woken by a timer, a descriptor or a timeout, not by notify:
         * take ourselves off the list (the last sleeper takes our place). */
        unsigned k = d->slot[i].pos, last = d->sleepers[--d->n_sleepers];
        d->sleepers[k] = last;
        d->slot[last].pos = k;
        d->slot[i].sleeping = false;
        atomic_fetch_add_explicit(&d->n_unparked, 1, memory_order_relaxed);
        notified = false;
    }
    mask_clear(d, i);
    pthread_mutex_unlock(&d->lock);
    return notified;
}
