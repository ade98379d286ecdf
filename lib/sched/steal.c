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
