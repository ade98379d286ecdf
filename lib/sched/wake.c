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

/* How far CLOCK_MONOTONIC_COARSE may lag the clock: a few of its ticks
 * (clock_getres; 4 ms at HZ=250), at least 1 ms. 0 until first asked. */
static _Atomic int64_t coarse_margin_ns;

static int64_t coarse_margin(void)
{
    /* Relaxed: every thread computes the same value. */
    int64_t m = atomic_load_explicit(&coarse_margin_ns, memory_order_relaxed);
    if (WEFT__UNLIKELY(m == 0)) {
        struct timespec res;
        m = 3 * INT64_C(4000000);
        if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0)
            m = 3 * ((int64_t)res.tv_sec * 1000000000 + res.tv_nsec);
        if (m < 1000000)
            m = 1000000;
        atomic_store_explicit(&coarse_margin_ns, m, memory_order_relaxed);
    }
    return m;
}

/* Asked at every suspension point inside a scope. The coarse clock (no
 * counter read: a quarter of the precise one's cost here) never runs
 * ahead of the clock, so it answers at once for a deadline it has passed
 * and for one more than its lag away; only a deadline near it takes the
 * precise read. */
int weft__deadline_passed(const struct weft_task *self)
{
    int64_t dl = self->deadline;
    int64_t coarse = weft__clock_coarse_ns();
    if (coarse >= dl)
        return 1;
    if (dl - coarse > coarse_margin())
        return 0;
    return weft__clock_ns() >= dl;
}

/* The waker's half of a wake: true if t was parked and is now ours to
 * schedule (PARKED -> RUNNING); false if the wake was recorded otherwise
 * (t running or held: it sees the wake itself). */
static inline __attribute__((always_inline)) bool wake_claim(struct weft_task *t)
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
                return false;
        } else if (s == PARK_PARKED) {
            /* acq_rel: acquires the parked context (post_switch's release). */
            if (atomic_compare_exchange_weak_explicit(&t->park, &s, PARK_RUNNING,
                                                      memory_order_acq_rel,
                                                      memory_order_acquire))
                return true;
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
                return false;
        } else {
            /* Notified already, so ours is not needed; but a plain load
             * may return a value since overwritten (the worker that
             * consumed it stores RUNNING): confirm with a strong CAS,
             * which fails only against the latest value. */
            if (atomic_compare_exchange_strong_explicit(&t->park, &s, PARK_NOTIFIED,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire))
                return false;
        }
    }
}

/* Wakes t; a parked t goes to the next slot (front) or the back of the
 * queue. */
void weft__wake_to(struct weft_task *t, bool front)
{
    if (wake_claim(t))
        weft__schedule_on(weft__worker_self(), t, front);
}

/* The fire callback of a park's timer; see sched.h. t->qnext is free: a
 * claimed task is in no queue. */
void weft__wake_batch_add(struct wake_batch *b, struct weft_task *t)
{
    if (!wake_claim(t))
        return;
    t->qnext = NULL;
    if (b->tail)
        b->tail->qnext = t;
    else
        b->head = t;
    b->tail = t;
    b->n++;
}

/* Puts the chain t.. (its tasks marked queued but the first when
 * `first_marked`) before everything in the inject queue, in order, in
 * batches of WEFT__INJECT_BATCH. */
static void inject_front_chain(struct weft_runtime *rt, struct weft_task *t, bool first_marked)
{
    struct weft_task *heads[64];
    unsigned n_heads = 0;
    size_t left = 0;
    for (struct weft_task *q = t; q; q = q->qnext) {
        if (q != t || !first_marked)
            weft__qcheck_enqueue(q);
        if (left % WEFT__INJECT_BATCH == 0 && n_heads < 64)
            heads[n_heads++] = q;
        left++;
    }
    /* The last batch first. Past 64 batches (2048 tasks) the tail of the
     * chain joins the last one (a refill may then take a batch larger
     * than its room, which only sends some back). */
    for (unsigned i = n_heads; i-- > 0;) {
        struct weft_task *last = heads[i];
        size_t k = 1;
        while (last->qnext && (i + 1 == n_heads || last->qnext != heads[i + 1])) {
            last = last->qnext;
            k++;
        }
        weft__inject_push_front_batch(&rt->inject, heads[i], last, k);
    }
}

void weft__wake_batch_flush(struct worker *w, struct wake_batch *b)
{
    if (!b->n)
        return;
    struct weft_task *t = b->head;
    struct weft_runtime *rt = t->rt;
    if (w && w->rt == rt && w->is_single) {
        /* One worker: the back of its one FIFO (ring, then inject). */
        while (t) {
            struct weft_task *nx = t->qnext; /* before a push that may
                                                link it elsewhere */
            weft__qcheck_enqueue(t);
            weft__push_local(w, t);
            t = nx;
        }
    } else {
        /* In firing order to the back of this worker's ring, as far as it
         * has room; the rest (and all, from the monitor) before everything
         * in the inject queue, not behind it: behind, they would wait for
         * whatever waits there (a spawn storm's unstarted tasks: 100,000
         * sleepers woke up to 0.4 s late, holding their stacks meanwhile,
         * while new tasks carved fresh ones). A sleeper woken runs, ends
         * and hands its stack to the next new task. Timer wakes are
         * bounded by the tasks parked: they cannot keep the inject
         * queue's back waiting for ever. */
        bool marked = false;
        if (w && w->rt == rt) {
            while (t) {
                struct weft_task *nx = t->qnext; /* before a thief runs t */
                weft__qcheck_enqueue(t);
                if (!weft__deque_push_owner(&w->q, t)) {
                    marked = true; /* t goes below, marked already */
                    break;
                }
                t = nx;
            }
        }
        if (t)
            inject_front_chain(rt, t, marked);
    }
    /* One wake-up for the whole batch, and none if a worker is awake and
     * searching already (weft__idle_notify). */
    weft__notify_parked(rt);
    b->head = b->tail = NULL;
    b->n = 0;
}

void weft__wake(struct weft_task *t) { weft__wake_to(t, true); }
