/* SPDX-License-Identifier: MIT */
/* Run-queue ring; see deque.h. Memory-order map:
 * - tail is stored with release by the owner after writing the slot; thieves
 *   load it with acquire, so the slots they copy are the ones published.
 * - head is changed with a release CAS (owner pop and front push,
 *   take_half, steal); loads of head are acquire, so the owner never reuses
 *   a slot before the thief that consumed it has finished copying it (the
 *   copy precedes the CAS), and whoever sees a front push's head sees its
 *   slot.
 * - Slots are relaxed atomics: a thief may read a slot the owner is
 *   rewriting after another thief consumed it, or through a head that a
 *   front push has since moved, but its CAS then fails (head's version
 *   moved) and the value is discarded. */
#include "internal.h"

#include "sched/deque.h"

#define MASK (WEFT__DEQUE_CAP - 1)

void weft__deque_init(struct deque *q)
{
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    for (unsigned i = 0; i < WEFT__DEQUE_CAP; i++)
        atomic_init(&q->buf[i], NULL);
}

unsigned weft__deque_take_half_owner(struct deque *q, void **out)
{
    /* Acquire: pairs with thieves' release CAS of head; their reads of
     * the slots they took happen before we reuse those slots. */
    uint64_t hv = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t h = weft__deque_idx(hv);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint32_t n = (t - h) / 2;
    if (n != WEFT__DEQUE_CAP / 2)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        out[i] = atomic_load_explicit(&q->buf[(h + i) & MASK], memory_order_relaxed);
    /* Release: our slot reads happen before the head move that frees
     * them; pairs with the acquire loads of head (thieves, push). */
    if (!atomic_compare_exchange_strong_explicit(&q->head, &hv, weft__deque_move(hv, (int32_t)n),
                                                 memory_order_release, memory_order_relaxed))
        return 0;
    return n;
}

unsigned weft__deque_steal(struct deque *victim, struct deque *dst)
{
    /* dst is ours: its tail is ours to write, and its head only moves
     * forward (others' steals), so its room only grows while we copy. */
    uint32_t dt = atomic_load_explicit(&dst->tail, memory_order_relaxed);
    uint32_t dh = weft__deque_idx(atomic_load_explicit(&dst->head, memory_order_acquire));
    uint32_t room = WEFT__DEQUE_CAP - (dt - dh);
    if (room > WEFT__DEQUE_CAP)
        weft__panic(__FILE__, __LINE__, "run queue: ring holds more than its capacity");
    uint32_t n;
    for (;;) {
        /* Acquire: pairs with the release CAS of head by the owner
         * (take_half) or by other thieves. */
        uint64_t hv = atomic_load_explicit(&victim->head, memory_order_acquire);
        uint32_t h = weft__deque_idx(hv);
        /* Acquire pairs with the owner's release store of tail. */
        uint32_t t = atomic_load_explicit(&victim->tail, memory_order_acquire);
        n = t - h;
        n -= n / 2;
        if (n > WEFT__DEQUE_CAP / 2)
            continue; /* head and tail read at different times; retry */
        if (n > room)
            n = room; /* never past our capacity: the slots hold live tasks */
        if (n == 0)
            return 0;
        for (uint32_t i = 0; i < n; i++) {
            void *item = atomic_load_explicit(&victim->buf[(h + i) & MASK], memory_order_relaxed);
            atomic_store_explicit(&dst->buf[(dt + i) & MASK], item, memory_order_relaxed);
        }
        /* Release: our copy happens before the victim may reuse the slots. */
        uint64_t moved = weft__deque_move(hv, (int32_t)n);
        if (atomic_compare_exchange_weak_explicit(&victim->head, &hv, moved, memory_order_release,
                                                  memory_order_relaxed))
            break;
    }
    /* Release: publishes the copied slots to thieves of dst. */
    atomic_store_explicit(&dst->tail, dt + n, memory_order_release);
    return n;
}

uint32_t weft__deque_len(struct deque *q)
{
    /* Acquire: head pairs with the release CASes of head (thieves,
     * take_half), tail with the owner's release stores of tail. */
    uint32_t h = weft__deque_idx(atomic_load_explicit(&q->head, memory_order_acquire));
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
    uint32_t n = t - h;
    return n > WEFT__DEQUE_CAP ? 0 : n;
}
