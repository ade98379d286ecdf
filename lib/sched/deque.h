/* SPDX-License-Identifier: MIT */
/* A worker's run queue: a bounded ring of WEFT__DEQUE_CAP task pointers.
 * The owner pushes at the back (tail) and, for spawned tasks that should
 * run depth first, at the front; the owner and thieves take from the front
 * (head) with a CAS; a thief takes half in one CAS. So the owner's order is
 * FIFO for what it pushes at the back (with one worker, spawn order) and
 * LIFO for what it pushes at the front. When the ring is full the owner
 * moves half of it to the inject queue (see worker.c).
 *
 * head packs the front index (low 32 bits) with a version (high 32 bits)
 * that every change of head bumps: a front push moves the index back, so
 * without the version a thief's CAS could succeed against an index that
 * went away and came back (ABA) after it copied stale slots. Indices are
 * 32-bit and only their differences matter, so wrap-around is harmless; a
 * thief's copy is validated by its CAS on head. */
#ifndef WEFT_SCHED_DEQUE_H
#define WEFT_SCHED_DEQUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"

#define WEFT__DEQUE_CAP 256u

struct deque {
    _Atomic uint64_t head WEFT__ALIGNED_CL; /* version << 32 | front index;
                                               CAS by all */
    _Atomic uint32_t tail WEFT__ALIGNED_CL; /* next free slot; owner writes */
    _Atomic(void *) buf[WEFT__DEQUE_CAP];
};

static inline uint32_t weft__deque_idx(uint64_t head) { return (uint32_t)head; }

/* head after moving its index by `by` slots, with the version bumped. One
 * addition: a carry or borrow out of the index only moves the version
 * further, and every change still adds about 2^32, so a value recurs only
 * after about 2^32 changes. */
static inline uint64_t weft__deque_move(uint64_t head, int32_t by)
{
    return head + ((uint64_t)1 << 32) + (uint64_t)(int64_t)by;
}

void weft__deque_init(struct deque *q);

/* Owner: appends item at the back; false when the ring is full. Inline, as
 * are push_front_owner and pop_owner: they are on every switch. Memory
 * orders: see deque.c. */
static inline bool weft__deque_push_owner(struct deque *q, void *item)
{
    uint32_t h = weft__deque_idx(atomic_load_explicit(&q->head, memory_order_acquire));
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (WEFT__UNLIKELY(t - h >= WEFT__DEQUE_CAP))
        return false;
    atomic_store_explicit(&q->buf[t & (WEFT__DEQUE_CAP - 1)], item, memory_order_relaxed);
    /* Release: publishes the slot to thieves (acquire load of tail). */
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return true;
}

/* Owner: puts item at the front, where the next pop (or a thief) takes it
 * first; false when the ring is full. */
static inline bool weft__deque_push_front_owner(struct deque *q, void *item)
{
    uint64_t hv = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        uint32_t h = weft__deque_idx(hv);
        uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (WEFT__UNLIKELY(t - h >= WEFT__DEQUE_CAP))
            return false;
        /* The slot before the front is free (the ring is not full); a
         * thief may read it only through a stale head, and its CAS then
         * fails. */
        atomic_store_explicit(&q->buf[(h - 1) & (WEFT__DEQUE_CAP - 1)], item,
                              memory_order_relaxed);
        /* Release: publishes the slot to whoever loads this head
         * (acquire: pop_owner, steal). */
        if (atomic_compare_exchange_weak_explicit(&q->head, &hv, weft__deque_move(hv, -1),
                                                  memory_order_release, memory_order_acquire))
            return true;
    }
}

/* Owner: takes the item at the front, or NULL. */
static inline void *weft__deque_pop_owner(struct deque *q)
{
    uint64_t hv = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        uint32_t h = weft__deque_idx(hv);
        uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (t == h)
            return NULL;
        void *item = atomic_load_explicit(&q->buf[h & (WEFT__DEQUE_CAP - 1)],
                                          memory_order_relaxed);
        /* Release pairs with thieves' acquire of head (see deque.c); on
         * failure hv is the new head (acquire, as the load above). */
        if (atomic_compare_exchange_weak_explicit(&q->head, &hv, weft__deque_move(hv, 1),
                                                  memory_order_release, memory_order_acquire))
            return item;
    }
}

/* Owner, ring full: removes the front half into out[] (WEFT__DEQUE_CAP / 2
 * slots) and returns how many, or 0 if thieves made room meanwhile. */
unsigned weft__deque_take_half_owner(struct deque *q, void **out);
/* Thief (dst's owner): moves the front half of victim (rounded up), but
 * never more than dst has free room for, to the back of dst. Returns the
 * number moved (0 when victim is empty or dst is full). */
unsigned weft__deque_steal(struct deque *victim, struct deque *dst);
/* Items queued now (approximate when read by another thread). */
uint32_t weft__deque_len(struct deque *q);

#endif /* WEFT_SCHED_DEQUE_H */
