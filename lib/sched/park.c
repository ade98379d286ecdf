/* SPDX-License-Identifier: MIT */
/* Parking and waking tasks: the protocol every waiting primitive builds
 * on (see sched.h), and the timer of a park with a deadline. */
#include "internal.h"

#include "sched/run.h"
#include "sched/switch.h"
#include "util/clock.h"

void weft__commit_unlock(void *mutex) { pthread_mutex_unlock(mutex); }

int64_t weft__effective_deadline(struct weft_task *self, int64_t deadline)
{
    if (self->shield == 0 && self->deadline < deadline)
        return self->deadline;
    return deadline;
}

int weft__deadline_passed(const struct weft_task *self)
{
    return weft__clock_ns() >= self->deadline;
}

/* The timer of a park with a deadline: on the parked task's stack, which
 * stays put while it waits (weft__park_self). */
struct park_timer {
    struct timer tm;
    struct weft_task *task;
};

static void wake_to(struct weft_task *t, bool front);

/* Timer wakes go to the back of the queue, in deadline order: sleepers
 * due together run in the order they were due (asyncio's order with one
 * worker), not last-fired-first through the next slot. */
void weft__park_timer_fire(struct timer *tm)
{
    wake_to(weft__container_of(tm, struct park_timer, tm)->task, false);
}

void weft__park_self(struct weft_task *self, void (*commit)(void *), void *arg, int64_t deadline,
                     const char *what)
{
    struct worker *w = self->worker;
    int64_t dl = weft__effective_deadline(self, deadline);
    bool armed = false;
    struct park_timer pt;
    if (dl != INT64_MAX) {
        pt.tm.deadline = 0;
        pt.tm.idx = 0;
        atomic_init(&pt.tm.heap, NULL);
        pt.task = self;
    }
    if (weft__interrupted(self) ||
        (dl != INT64_MAX && (dl <= weft__clock_ns() ||
                             !(armed = weft__timer_arm(&w->timers, &pt.tm, dl) == 0)))) {
        atomic_store_explicit(&self->park, PARK_RUNNING, memory_order_relaxed);
        if (commit)
            commit(arg);
        return;
    }
    atomic_store_explicit(&self->wait_what, what, memory_order_relaxed);
    w->commit = commit;
    w->commit_arg = arg;
    weft__switch_park(w, self);
    atomic_store_explicit(&self->wait_what, NULL, memory_order_relaxed);
    if (armed)
        weft__timer_disarm(&pt.tm); /* before pt goes out of scope */
}

void weft__park(void (*commit)(void *), void *arg, int64_t deadline, const char *what)
{
    weft__park_self(weft__task_self(), commit, arg, deadline, what);
}

/* Wakes t; a parked t goes to the next slot (front) or the back of the
 * queue. */
static void wake_to(struct weft_task *t, bool front)
{
    uint32_t s = atomic_load_explicit(&t->park, memory_order_acquire);
    for (;;) {
        if (s == PARK_RUNNING) {
            /* Running, maybe on its way to park: the wake is remembered,
             * and the worker that parks it sees NOTIFIED after the switch
             * and requeues it itself (post_switch); otherwise its next
             * park returns at once (a spurious wake). acq_rel: publishes
             * our writes to that worker's failed CAS (acquire). */
            if (atomic_compare_exchange_weak_explicit(&t->park, &s, PARK_NOTIFIED,
                                                      memory_order_acq_rel,
                                                      memory_order_acquire))
                return;
        } else if (s == PARK_PARKED) {
            /* acq_rel: acquires the parked context (post_switch's release). */
            if (atomic_compare_exchange_weak_explicit(&t->park, &s, PARK_RUNNING,
                                                      memory_order_acq_rel,
                                                      memory_order_acquire)) {
                weft__schedule(t, front);
                return;
            }
        } else {
            /* Notified already, so ours is not needed; but a plain load
             * may return a value since overwritten (the worker that
             * consumed it stores RUNNING): confirm with a strong CAS,
             * which fails only against the latest value. */
            if (atomic_compare_exchange_strong_explicit(&t->park, &s, PARK_NOTIFIED,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire))
                return;
        }
    }
}

void weft__wake(struct weft_task *t) { wake_to(t, true); }
