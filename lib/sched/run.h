/* SPDX-License-Identifier: MIT */
/* Who runs next on a worker: its next slot (the last woken task), its
 * local ring, and the shared inject queue (run.c). The fast paths are
 * inline: they run on every switch (switch.c) and loop pass (worker.c). */
#ifndef WEFT_SCHED_RUN_H
#define WEFT_SCHED_RUN_H

#include "sched/sched.h"

#define WEFT__NEXT_CAP 3u       /* next-slot runs before queue order wins */
#define WEFT__INJECT_BATCH 32u  /* overflow batch size in the inject queue */

/* Appends t at the back of w's queue, overflowing into the inject queue
 * (run.c); push_local below is the fast path. */
void weft__push_local_slow(struct worker *w, struct weft_task *t);

static inline void weft__push_local(struct worker *w, struct weft_task *t)
{
    if (WEFT__UNLIKELY(w->is_single && weft__inject_len(&w->rt->inject)) ||
        WEFT__UNLIKELY(!weft__deque_push_owner(&w->q, t)))
        weft__push_local_slow(w, t);
}

/* Moves up to max tasks (fewer when w's ring has less room) from the
 * inject queue to w's ring. */
void weft__move_from_inject(struct worker *w, size_t max);

/* Next task from the next slot or the local queue; NULL if both empty. */
static inline __attribute__((always_inline)) struct weft_task *weft__pick_local(struct worker *w)
{
    /* Only the owner fills the slot, so an empty one stays empty: the
     * exchange (the monitor may race for a full one) only when it is
     * full. */
    struct weft_task *t = NULL;
    if (atomic_load_explicit(&w->next, memory_order_relaxed))
        /* Acquire: pairs with the release store that filled the slot
         * (weft__schedule_on). */
        t = atomic_exchange_explicit(&w->next, NULL, memory_order_acquire);
    if (t) {
        /* A task that has not started yet was spawned into the slot: a
         * spawn-then-join tree goes depth first without the cap (as Go's
         * runnext inherits the time slice); only wake-ups count, so that
         * two tasks passing messages cannot starve the queue. */
        if (!(atomic_load_explicit(&t->flags, memory_order_relaxed) & TASK_STARTED))
            return t;
        if (++w->next_uses <= WEFT__NEXT_CAP)
            return t;
        weft__push_local(w, t); /* capped: let queue order win once */
    }
    w->next_uses = 0;
    t = weft__deque_pop_owner(&w->q);
    /* Front-pushed tasks are at the front: count the ones run in a row
     * (approximately: thieves may have taken some, which only ends the
     * streak sooner). */
    if (WEFT__UNLIKELY(w->n_front | w->front_streak)) {
        if (!w->n_front) {
            w->front_streak = 0;
        } else if (t) {
            w->n_front--;
            w->front_streak++;
        } else {
            w->n_front = 0;
        }
    }
    return t;
}

/* ---- steal.c ---- */

/* Looks for work beyond w's own queues: steals half of an awake peer's
 * ring (never more than w's ring has room for), then the inject queue.
 * Returns a task to run, or NULL. */
struct weft_task *weft__steal_work(struct worker *w);

/* On a busy worker with no other task queued: takes half of one random
 * awake peer's ring when that holds two or more (steal.c). */
void weft__steal_rebalance(struct worker *w);

/* ---- idle workers (worker.c glue over idle.h) ---- */

/* Wakes one sleeping worker if nobody is searching; called after work was
 * made available. */
void weft__notify_parked(struct weft_runtime *rt);

#endif /* WEFT_SCHED_RUN_H */
