/* SPDX-License-Identifier: MIT */
/* The runtime's shared inject queue: FIFO of tasks spawned or woken from
 * outside a worker, and of the overflow of full local rings. One spinlock;
 * an atomic length lets workers skip it when empty. */
#ifndef WEFT_SCHED_INJECT_H
#define WEFT_SCHED_INJECT_H

#include <stdatomic.h>
#include <stddef.h>

#include "compiler.h"
#include "util/spin.h"

struct weft_task;

struct inject {
    struct spin lock;
    struct weft_task *head, *tail; /* linked through task->qnext */
    _Atomic size_t len;            /* written under lock, read unlocked */
};

WEFT__MUST_CHECK int weft__inject_init(struct inject *q);
void weft__inject_destroy(struct inject *q);
/* Appends the n tasks first..last (already linked through qnext). */
void weft__inject_push_batch(struct inject *q, struct weft_task *first,
                             struct weft_task *last, size_t n);
void weft__inject_push(struct inject *q, struct weft_task *t);
/* Puts the n tasks first..last (linked through qnext) before every task
 * queued: one batch, so n should be at most WEFT__INJECT_BATCH. */
void weft__inject_push_front_batch(struct inject *q, struct weft_task *first,
                                   struct weft_task *last, size_t n);
/* Takes whole batches, as many as fit in max (but at least one batch, which
 * may be larger than max), linked through qnext; returns the first (NULL
 * if empty) and the count in *n. */
struct weft_task *weft__inject_pop_batch(struct inject *q, size_t max, size_t *n);

static inline size_t weft__inject_len(struct inject *q)
{
    return atomic_load_explicit(&q->len, memory_order_relaxed);
}

#endif /* WEFT_SCHED_INJECT_H */
