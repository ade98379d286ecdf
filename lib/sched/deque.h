/* SPDX-License-Identifier: MIT */
/* A worker's run queue: a bounded ring of WEFT__DEQUE_CAP task pointers,
 * FIFO for the owner and for thieves (so that with one worker tasks start
 * in spawn order). The owner pushes at the tail; the owner and thieves take
 * from the head with a CAS; a thief takes half in one CAS. When the ring is
 * full the owner moves half of it to the inject queue (see worker.c). The
 * indices are 32-bit and only their difference matters, so wrap-around is
 * harmless; a thief's copy is validated by the CAS on head. */
#ifndef WEFT_SCHED_DEQUE_H
#define WEFT_SCHED_DEQUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"

#define WEFT__DEQUE_CAP 256u

struct deque {
    _Atomic uint32_t head WEFT__ALIGNED_CL; /* next to take; CAS by all */
    _Atomic uint32_t tail WEFT__ALIGNED_CL; /* next free slot; owner writes */
    _Atomic(void *) buf[WEFT__DEQUE_CAP];
};

void weft__deque_init(struct deque *q);
/* Owner: appends item; false when the ring is full. Inline, as is
 * pop_owner: they are on every switch. Memory orders: see deque.c. */
static inline bool weft__deque_push_owner(struct deque *q, void *item)
{
    uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (WEFT__UNLIKELY(t - h >= WEFT__DEQUE_CAP))
        return false;
    atomic_store_explicit(&q->buf[t & (WEFT__DEQUE_CAP - 1)], item, memory_order_relaxed);
    /* Release: publishes the slot to thieves (acquire load of tail). */
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return true;
}

/* Owner: takes the oldest item, or NULL. */
static inline void *weft__deque_pop_owner(struct deque *q)
{
    uint32_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (t == h)
            return NULL;
        void *item = atomic_load_explicit(&q->buf[h & (WEFT__DEQUE_CAP - 1)],
                                          memory_order_relaxed);
        /* Release pairs with thieves' acquire of head (see deque.c); on
         * failure h is the new head (acquire, as the load above). */
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + 1, memory_order_release,
                                                  memory_order_acquire))
            return item;
    }
}
/* Owner, ring full: removes the older half into out[] (WEFT__DEQUE_CAP / 2
 * slots) and returns how many, or 0 if thieves made room meanwhile. */
unsigned weft__deque_take_half_owner(struct deque *q, void **out);
/* Thief (dst's owner): moves half of victim (rounded up) to dst, which must
 * be empty. Returns the number moved. */
unsigned weft__deque_steal(struct deque *victim, struct deque *dst);
/* Items queued now (approximate when read by another thread). */
uint32_t weft__deque_len(struct deque *q);

#endif /* WEFT_SCHED_DEQUE_H */
