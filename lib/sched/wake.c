/* SPDX-License-Identifier: MIT */
/* Waking tasks: the waker's half of the park protocol (sched.h), and the
 * deadline helpers every park asks. The parking half, which must switch
 * away, is park in switch.c, where the switch inlines. */
#include "internal.h"

#include "sched/run.h"
#include "util/clock.h"

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

/* Wakes t; a parked t goes to the next slot (front) or the back of the
 * queue. */
void weft__wake_to(struct weft_task *t, bool front)
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
                weft__schedule_on(weft__worker_self(), t, front);
                return;
            }
        } else if (s >= PARK_HELD) {
            /* Held by a dump, which resumes the task when done, after
             * every write made before this wake (diag/dump.c): one wake
             * recorded is enough, as with NOTIFIED. Strong: a HELD_WOKEN
             * read may be stale, the CAS fails only against the latest
             * value. acq_rel: publishes our writes to the dump's exchange
             * (acquire) that ends the hold. */
            if (atomic_compare_exchange_strong_explicit(&t->park, &s, PARK_HELD_WOKEN,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire))
                return;
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

void weft__wake(struct weft_task *t) { weft__wake_to(t, true); }
