/* SPDX-License-Identifier: MIT */
/* Stealing: an idle worker takes half of a peer's ring. Only peers that
 * are awake are looked at (a sleeping worker's ring and next slot are
 * empty: only its owner fills them, and it sleeps only once both are),
 * found through the idle bitmap without touching their lines. A thief
 * fires no peer's timers and polls no peer's reactor: a worker that stops
 * switching is served by the monitor (sysmon.c), so the only thing a
 * steal moves into the thief's ring is the stolen half itself, which
 * weft__deque_steal caps by the ring's free room. */
#include "internal.h"

#include "sched/run.h"
#include "util/rand.h"

struct weft_task *weft__steal_work(struct worker *w)
{
    struct weft_runtime *rt = w->rt;
    unsigned n = rt->n_workers;
    if (n > 1) {
        unsigned start = (unsigned)(weft__xorshift(&w->rng) % n);
        for (unsigned k = 0; k < n; k++) {
            unsigned i = start + k < n ? start + k : start + k - n;
            if (i == w->index || weft__idle_is_sleeping(&rt->idle, i))
                continue;
            struct worker *v = &rt->workers[i];
            unsigned got = weft__deque_steal(&v->q, &w->q);
            if (got) {
                weft__count(&w->n_steals, got, memory_order_relaxed);
                /* Run what we took before looking further. */
                return weft__pick_local(w);
            }
        }
    }
    struct weft_task *t = weft__pick_local(w);
    if (t)
        return t;
    weft__move_from_inject(w, WEFT__DEQUE_CAP / 2);
    return weft__pick_local(w);
}

/* A busy worker that holds no other task than the one it runs (its ring
 * has at most the task just requeued, its next slot is empty) takes half
 * of one random awake peer's ring if that peer has at least two tasks
 * waiting. Idle workers steal (above), but a worker never goes idle while
 * its lone task yields or wakes again at once, so without this a spawn
 * burst that one thief split 3:1 stays split 3:1 for the whole run. One
 * probe, on the maintenance pass (every WEFT__MAINT_INTERVAL switches):
 * no scan of the peers. */
void weft__steal_rebalance(struct worker *w)
{
    struct weft_runtime *rt = w->rt;
    unsigned n = rt->n_workers;
    if (n < 2 || weft__deque_len(&w->q) > 1 || atomic_load_explicit(&w->next, memory_order_relaxed))
        return;
    unsigned i = (unsigned)(weft__xorshift(&w->rng) % (n - 1));
    if (i >= w->index)
        i++; /* any peer but w */
    if (weft__idle_is_sleeping(&rt->idle, i))
        return;
    struct worker *v = &rt->workers[i];
    if (weft__deque_len(&v->q) < 2)
        return;
    unsigned got = weft__deque_steal(&v->q, &w->q);
    if (got)
        weft__count(&w->n_steals, got, memory_order_relaxed);
}
