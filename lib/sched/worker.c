/* SPDX-License-Identifier: MIT */
/* The worker loop. Each worker is one thread; its run queue, next slot,
 * stack cache, timer heap and poller are its own (peers only steal from
 * its ring; the monitor of sysmon.c serves a worker that stops
 * switching).
 *
 * Loop order: next slot (at most 3 in a row) / local queue (run.h); every
 * 61 switches (or when the queue is empty) the inject queue, due timers
 * and a non-blocking reactor poll (maintenance); then stealing from awake
 * peers (steal.c), a few rounds; then sleeping in epoll_wait until the
 * worker's own next timer, one of its descriptors, or a wake-up (idle.h:
 * who sleeps and who is woken). */
#define _GNU_SOURCE 1
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ctx/checker.h"
#include "ctx/guard.h"
#include "sched/run.h"
#include "sched/switch.h"
#include "sched/sysmon.h"
#include "util/clock.h"
#include "util/spin.h"

#define WEFT__POLL_MIN 16     /* events a maintenance poll may always take */
#define WEFT__POLL_DEFER_MAX 8u /* passes a full queue may defer the poll:
                                 the reactor is never starved */
#define WEFT__SPIN_ROUNDS 8u    /* steal rounds before sleeping */
#define WEFT__SPIN_ROUNDS_IO 3u /* the same for a worker with descriptors */
#define WEFT__STACK_BACKOFF_NS 1000000 /* no memory for a stack: retry in 1 ms */

/* initial-exec: one %fs-relative load, also in the shared library (the
 * default model there calls __tls_get_addr); one pointer of static TLS. */
static __thread struct worker *tls_worker __attribute__((tls_model("initial-exec")));

WEFT__NOINLINE struct worker *weft__worker_self(void)
{
    /* The empty asm with a memory clobber keeps the compiler from treating
     * this as a pure function and reusing its result across a switch. */
    __asm__ volatile("" ::: "memory");
    return tls_worker;
}

WEFT__NOINLINE struct weft_task *weft__task_self(void)
{
    __asm__ volatile("" ::: "memory"); /* as in weft__worker_self */
    struct worker *w = tls_worker;
    return w ? atomic_load_explicit(&w->current, memory_order_relaxed) : NULL;
}

void weft__workers_wake_all(struct weft_runtime *rt)
{
    for (unsigned i = 0; i < rt->n_workers; i++)
        weft__poller_wake(&rt->workers[i].poller);
}

/* Inject queue, timers, reactor: every WEFT__MAINT_INTERVAL switches and
 * whenever the local queue runs dry. */
static void maintenance(struct worker *w)
{
    struct weft_runtime *rt = w->rt;
    /* Relaxed: the monitor only compares it with its last look. */
    atomic_store_explicit(&w->n_maint, atomic_load_explicit(&w->n_maint, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    /* One clock read per pass: precise while timers are armed (they fire
     * against it, in one batch), coarse otherwise; parks in this pass
     * compare their deadlines with it (switch.c). */
    weft__signal_worker_check(w);
    int64_t next = weft__timer_next(&w->timers);
    int64_t now = next != INT64_MAX ? weft__clock_ns() : weft__clock_coarse_ns();
    w->clock_cache = now;
    size_t inj = weft__inject_len(&rt->inject);
    if (inj) {
        size_t share = inj / rt->n_workers + 1;
        weft__move_from_inject(w, share < WEFT__DEQUE_CAP / 2 ? share : WEFT__DEQUE_CAP / 2);
    }
    if (next <= now) {
        struct wake_batch b = {NULL, NULL, 0};
        weft__timer_fire_due(&w->timers, now, false, weft__park_timer_fire, &b);
        weft__wake_batch_flush(w, &b);
    }
    if (atomic_load_explicit(&w->poller.n_sources, memory_order_relaxed)) {
        weft__count(&w->n_polls, 1, memory_order_relaxed);
        /* No more wake-ups than the ring has room for (but some, so the
         * reactor is never starved): with thousands of busy descriptors
         * the rest would overflow into the inject queue, and with one
         * worker every later wake-up with them (the FIFO rule, run.c).
         * What is left stays in the kernel's ready list, in order. */
        size_t room = WEFT__DEQUE_CAP - weft__deque_len(&w->q);
        if (w->is_single) {
            /* One worker: what waits in the inject queue is the back of
             * its one FIFO, so every wake-up goes there while it holds
             * anything, through its lock and a list of cold task structs
             * (with 10,000 busy connections, every request did). The
             * kernel's ready list keeps the rest in order as well: count
             * the inject queue against the room. */
            size_t queued = weft__inject_len(&rt->inject);
            room = room > queued ? room - queued : 0;
        }
        if (room < WEFT__POLL_MIN && ++w->poll_defers < WEFT__POLL_DEFER_MAX)
            return; /* the queue is full: the descriptors can wait a pass */
        w->poll_defers = 0;
        weft__poller_wait_max(&w->poller, 0, room < WEFT__POLL_MIN ? WEFT__POLL_MIN : (int)room);
    }
}

/* Is there work a sleeping worker could take? Only awake workers' rings
 * can hold any (a worker sleeps only with an empty ring). */
static bool work_available(struct weft_runtime *rt)
{
    if (weft__inject_len(&rt->inject))
        return true;
    for (unsigned i = 0; i < rt->n_workers; i++)
        if (!weft__idle_is_sleeping(&rt->idle, i) && weft__deque_len(&rt->workers[i].q))
            return true;
    return false;
}

/* Hands back the pages of idle stacks (ctx/stack.c) in slices, looking
 * for work between them: a sleeping worker, listed as such, so that work
 * pushed meanwhile wakes another (or this one, at its next look). */
static void scavenge_stacks(struct worker *w)
{
    struct weft_runtime *rt = w->rt;
    while (weft__stack_scavenge(&rt->stacks, &w->stacks, WEFT__SCAVENGE_SLICE) &&
           !work_available(rt) && !atomic_load_explicit(&rt->shutdown, memory_order_relaxed))
        ;
}

/* Sleeps until this worker's own next timer, one of its descriptors, or a
 * wake-up (weft__notify_parked, shutdown). A busy peer's timers,
 * descriptors and next slot are the monitor's (sysmon.c), so a sleeping
 * worker never wakes to look at them. */
static void park_worker(struct worker *w)
{
    struct weft_runtime *rt = w->rt;
    weft__idle_sleep_begin(&rt->idle, w->index);
    if (work_available(rt))
        weft__notify_parked(rt);
    int64_t deadline = weft__timer_next(&w->timers);
    int64_t timeout = -1;
    int64_t now = weft__clock_ns();
    if (deadline != INT64_MAX)
        timeout = deadline > now ? deadline - now : 0;
    /* Stacks returned after a burst keep their pages: a worker that then
     * sleeps WEFT__SCAVENGE_NS with nothing to do hands them back. */
    bool scavenge = weft__stack_scavenge_pending(&rt->stacks, &w->stacks);
    if (scavenge && (timeout < 0 || timeout > WEFT__SCAVENGE_NS))
        timeout = WEFT__SCAVENGE_NS;
    /* Acquire: pairs with the stores of shutdown in runtime.c (release
     * on a failed start, seq_cst in weft_runtime_free). */
    if (!atomic_load_explicit(&rt->shutdown, memory_order_acquire)) {
        weft__count(&w->n_parks, 1, memory_order_relaxed);
        weft__count(&w->n_polls, 1, memory_order_relaxed);
        weft__poller_wait(&w->poller, timeout);
    }
    if (scavenge && weft__clock_ns() - now >= WEFT__SCAVENGE_NS)
        scavenge_stacks(w);
    weft__idle_sleep_end(&rt->idle, w->index);
    if (rt->sysmon)
        weft__sysmon_worker_wakes(rt->sysmon);
    w->force_maint = true;
}

/* A task found no memory for a stack (prepare_run): wait a little,
 * serving this worker's reactor meanwhile, before the queues offer it
 * again. */
static void stack_backoff(struct worker *w)
{
    w->stack_starved = false;
    w->force_maint = true;
    weft__poller_wait(&w->poller, WEFT__STACK_BACKOFF_NS);
}

static void stop_searching(struct worker *w)
{
    if (weft__idle_stop_searching(&w->rt->idle, w->index))
        weft__notify_parked(w->rt); /* the last searcher found work: maybe more */
}

int weft__worker_init(struct weft_runtime *rt, struct worker *w, unsigned index)
{
    memset(w, 0, sizeof *w);
    weft__deque_init(&w->q);
    atomic_init(&w->next, NULL);
    atomic_init(&w->tick, 0);
    atomic_init(&w->n_maint, 0);
    w->clock_cache = weft__clock_coarse_ns();
    w->rt = rt;
    w->index = index;
    w->is_single = rt->n_workers == 1;
    w->slow_on = rt->slow_task_ns > 0;
    w->rng = 0x9E3779B97F4A7C15ull * (index + 1);
    int rc = weft__timer_heap_init(&w->timers);
    if (rc < 0)
        return rc;
    rc = weft__poller_init(&w->poller);
    if (rc < 0) {
        weft__timer_heap_destroy(&w->timers);
        return rc;
    }
    return 0;
}

void weft__worker_destroy(struct worker *w)
{
    weft__stack_cache_drain(&w->rt->stacks, &w->stacks);
    weft__poller_destroy(&w->poller);
    weft__timer_heap_destroy(&w->timers);
}

static void thread_stack_bounds(struct worker *w)
{
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstack(&a, &w->sched_stack_lo, &w->sched_stack_size);
        pthread_attr_destroy(&a);
    }
}

/* Looks for work on peers before sleeping (Go's spinning M): waking a
 * sleeping worker costs a system call and several microseconds, and work
 * often arrives again right away. A worker with descriptors in its poller
 * spins only a few rounds: its work mostly comes through that poller,
 * whose wait the kernel ends as soon as an event arrives. In the TCP echo
 * benchmark 99% of the spins that found work found it within three
 * rounds, while half of all spins found nothing and burned ~60 us each of
 * a CPU that the clients on the machine needed. */
static struct weft_task *search(struct worker *w)
{
    if (!weft__idle_start_searching(&w->rt->idle, w->index))
        return NULL;
    unsigned rounds = atomic_load_explicit(&w->poller.n_sources, memory_order_relaxed)
                          ? WEFT__SPIN_ROUNDS_IO
                          : WEFT__SPIN_ROUNDS;
    struct weft_task *t = NULL;
    for (unsigned spin = 0; !t && spin < rounds; spin++) {
        t = weft__steal_work(w);
        if (!t)
            for (int k = 0; k < 32; k++)
                weft__cpu_relax();
    }
    return t;
}

void *weft__worker_main(void *arg)
{
    struct worker *w = arg;
    struct weft_runtime *rt = w->rt;
    tls_worker = w;
    w->errno_loc = &errno;
    void *altstack;
    /* Without an alternate stack an overflow still kills the process,
     * just without the report: not worth failing the worker over. */
    if (weft__guard_thread_init(&altstack) < 0)
        altstack = NULL;
    w->sched_fiber = weft__checker_fiber_current();
    thread_stack_bounds(w);
    weft__signal_worker_init(w);
    for (;;) {
        if (w->force_maint) {
            w->force_maint = false;
            maintenance(w);
            weft__steal_rebalance(w);
        }
        struct weft_task *t = weft__pick_local(w);
        if (!t) {
            maintenance(w);
            t = weft__pick_local(w);
        }
        if (!t)
            t = search(w);
        if (t) {
            stop_searching(w);
            weft__run_from_loop(w, t);
            if (WEFT__UNLIKELY(w->stack_starved))
                stack_backoff(w);
            continue;
        }
        /* Acquire: as in park_worker (pairs with runtime.c's stores). */
        if (atomic_load_explicit(&rt->shutdown, memory_order_acquire))
            break;
        park_worker(w);
    }
    stop_searching(w);
    weft__guard_thread_fini(altstack);
    tls_worker = NULL;
    return NULL;
}
