/* SPDX-License-Identifier: MIT */
/* Run queues and the next slot: where a task that becomes runnable goes,
 * and how a worker's ring overflows into the shared inject queue. See
 * run.h for the fast paths. */
#include "internal.h"

#include "sched/run.h"

#define WEFT__FRONT_CAP 1024u /* front-pushed runs before the back's turn */

void weft__notify_parked(struct weft_runtime *rt)
{
    int i = weft__idle_notify(&rt->idle);
    if (i >= 0)
        weft__poller_wake(&rt->workers[i].poller);
}

/* With one worker the ring is the front of a single FIFO and the inject
 * queue its back (so tasks start in spawn order, as in asyncio); with
 * several, a full ring sends its front half to the inject queue in one
 * lock (Go, Tokio). */
WEFT__NOINLINE void weft__push_local_slow(struct worker *w, struct weft_task *t)
{
    bool single = w->is_single;
    if (single && weft__inject_len(&w->rt->inject)) {
        weft__inject_push(&w->rt->inject, t);
        return;
    }
    while (!weft__deque_push_owner(&w->q, t)) {
        if (single) {
            weft__inject_push(&w->rt->inject, t);
            return;
        }
        void *batch[WEFT__DEQUE_CAP / 2];
        unsigned n = weft__deque_take_half_owner(&w->q, batch);
        if (n == 0)
            continue; /* thieves made room */
        w->n_front = w->n_front > n ? w->n_front - n : 0;
        /* Batches of at most WEFT__INJECT_BATCH, so that a refill (half
         * the free room of a ring) always takes at least one whole. */
        for (unsigned i = 0; i < n; i += WEFT__INJECT_BATCH) {
            unsigned end = i + WEFT__INJECT_BATCH < n ? i + WEFT__INJECT_BATCH : n;
            for (unsigned k = i; k + 1 < end; k++)
                ((struct weft_task *)batch[k])->qnext = batch[k + 1];
            weft__inject_push_batch(&w->rt->inject, batch[i], batch[end - 1], end - i);
        }
        weft__inject_push(&w->rt->inject, t);
        return;
    }
}

/* A spawned task displaced from the next slot before it started (several
 * workers only): to the front of the queue, so that a spawn-then-join tree
 * runs depth first, as a call tree would. Its subtree stays small and hot
 * in the caches; FIFO order would expand the tree breadth first, holding
 * a whole level of it (tasks and stacks) at once and overflowing the ring
 * into the inject queue. Thieves still take from the front, in halves.
 * After WEFT__FRONT_CAP pops in a row of front-pushed tasks, spawns go to
 * the back until the front has drained, so that tasks pushed at the back
 * (yields, wake-ups) cannot starve behind an endless stream of spawns. */
static inline void push_spawned(struct worker *w, struct weft_task *t)
{
    if (w->front_streak < WEFT__FRONT_CAP && weft__deque_push_front_owner(&w->q, t)) {
        w->n_front++;
        return;
    }
    weft__push_local(w, t);
}

void weft__schedule(struct weft_task *t, bool front)
{
    weft__schedule_on(weft__worker_self(), t, front);
}

void weft__schedule_on(struct worker *w, struct weft_task *t, bool front)
{
    struct weft_runtime *rt = t->rt;
    weft__qcheck_enqueue(t);
    if (!w || w->rt != rt) {
        weft__inject_push(&rt->inject, t);
        weft__notify_parked(rt);
        return;
    }
    if (front) {
        /* The next slot: no wake-up for the task that now sits there (the
         * running task usually parks soon: message passing stays on this
         * core; the monitor rescues a task stranded there by a worker that
         * stops switching). Relaxed flags: t is ours, and TASK_STARTED is
         * only set by the worker that runs it. */
        bool spawned = !w->is_single &&
                       !(atomic_load_explicit(&t->flags, memory_order_relaxed) & TASK_STARTED);
        /* Only this thread puts tasks in the slot (others only take), so
         * an empty slot needs no exchange. Release: publishes t to the
         * acquire exchange that takes it (weft__pick_local, sysmon.c). */
        if (!atomic_load_explicit(&w->next, memory_order_relaxed)) {
            atomic_store_explicit(&w->next, t, memory_order_release);
            w->next_woken = !spawned;
            return;
        }
        if (spawned && w->next_woken) {
            /* A woken task waits there (typically a joiner whose child has
             * just ended, and that will end in turn): it keeps the slot,
             * and the new task goes to the front of the queue. Displaced
             * to the back instead, joiners would pile up behind the
             * depth-first front. */
            push_spawned(w, t);
            weft__notify_parked(rt);
            return;
        }
        bool displaced_woken = w->next_woken;
        w->next_woken = !spawned;
        /* acq_rel: publishes t (as the store above) and acquires the
         * displaced task's publication. */
        t = atomic_exchange_explicit(&w->next, t, memory_order_acq_rel);
        if (!t)
            return; /* the monitor took the old one */
        if (!displaced_woken && !w->is_single) {
            push_spawned(w, t); /* a spawned task that has not started */
            weft__notify_parked(rt);
            return;
        }
    }
    weft__push_local(w, t);
    weft__notify_parked(rt);
}

void weft__move_from_inject(struct worker *w, size_t max)
{
    /* Never more than the ring has room for: an overflow would only send
     * them back. */
    size_t room = WEFT__DEQUE_CAP - weft__deque_len(&w->q);
    if (room < WEFT__INJECT_BATCH)
        return; /* a whole batch might not fit */
    if (max > room / 2)
        max = room / 2;
    size_t n;
    struct weft_task *t = weft__inject_pop_batch(&w->rt->inject, max, &n);
    while (t) {
        struct weft_task *nx = t->qnext;
        if (!weft__deque_push_owner(&w->q, t))
            weft__push_local(w, t); /* cannot happen: room was checked */
        t = nx;
    }
}
