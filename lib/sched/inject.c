/* SPDX-License-Identifier: MIT */
/* Inject queue; see inject.h. The spinlock orders pushes and pops (it carries
 * the happens-before from the pusher to the worker that runs the task);
 * len is a relaxed hint read outside the lock. */
#include "internal.h"

#include "sched/inject.h"
#include "sched/sched.h"

int weft__inject_init(struct inject *q)
{
    q->head = q->tail = NULL;
    atomic_init(&q->len, 0);
    spin_init(&q->lock);
    return 0;
}

void weft__inject_destroy(struct inject *q) { (void)q; }

void weft__inject_push_batch(struct inject *q, struct weft_task *first,
                             struct weft_task *last, size_t n)
{
    last->qnext = NULL;
    first->qlast = last;
    first->qlen = (uint32_t)n;
    spin_lock(&q->lock);
    if (q->tail)
        q->tail->qnext = first;
    else
        q->head = first;
    q->tail = last;
    atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) + n,
                          memory_order_relaxed);
    spin_unlock(&q->lock);
}

void weft__inject_push_front_batch(struct inject *q, struct weft_task *first,
                                   struct weft_task *last, size_t n)
{
    first->qlast = last;
    first->qlen = (uint32_t)n;
    spin_lock(&q->lock);
    last->qnext = q->head;
    q->head = first;
    if (!q->tail)
        q->tail = last;
    atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) + n,
                          memory_order_relaxed);
    spin_unlock(&q->lock);
}

void weft__inject_push(struct inject *q, struct weft_task *t)
{
    weft__inject_push_batch(q, t, t, 1);
}

struct weft_task *weft__inject_pop_batch(struct inject *q, size_t max, size_t *n)
{
    *n = 0;
    if (weft__inject_len(q) == 0)
        return NULL;
    spin_lock(&q->lock);
    /* Whole batches only (at least one): O(batches), no task is touched
     * but the batch heads. */
    struct weft_task *first = q->head, *last = NULL;
    size_t k = 0;
    for (struct weft_task *b = first; b && (k == 0 || k + b->qlen <= max); b = last->qnext) {
        last = b->qlast;
        k += b->qlen;
    }
    if (k) {
        q->head = last->qnext;
        if (!q->head)
            q->tail = NULL;
        last->qnext = NULL;
        atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) - k,
                              memory_order_relaxed);
    }
    spin_unlock(&q->lock);
    *n = k;
    return k ? first : NULL;
}
