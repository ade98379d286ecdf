/* SPDX-License-Identifier: MIT */
/* The worker loop and the switch machinery: which task runs next, parking
 * and waking tasks, and parking and waking idle workers. Each worker is one
 * thread; its run queue, next slot, stack cache, timer heap and poller are
 * its own, but peers steal from the queue, fire due timers and poll the
 * poller of a worker that is busy.
 *
 * Loop order: next slot (at most 3 in a row) / local queue; every 61
 * switches (or when the queue is empty) the inject queue, due timers and a
 * non-blocking reactor poll; then stealing from a random victim; then
 * parking in epoll_wait until the next timer or a wake-up.
 *
 * Idle workers (Tokio's idle protocol): at most half the workers search at
 * once; whoever makes work available fences and wakes one sleeper only when
 * nobody searches; the last searcher that finds work wakes one more. */
#define _GNU_SOURCE 1
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ctx/checker.h"
#include "ctx/guard.h"
#include "sched/sched.h"
#include "util/clock.h"

#define WEFT__MAINT_INTERVAL 61u /* switches between maintenance passes */
#define WEFT__NEXT_CAP 3u        /* next-slot runs before queue order wins */
#define WEFT__FRONT_CAP 1024u    /* front-pushed runs before the back's turn */
#define WEFT__MONITOR_NS 2000000 /* sleep cap while a peer is busy: 2 ms */

#define WEFT__INJECT_BATCH 32u  /* overflow batch size in the inject queue */
#define WEFT__SPIN_ROUNDS 32u   /* steal attempts before parking (~50 us) */
#define WEFT__SPIN_ROUNDS_IO 3u /* the same for a worker with descriptors */
#define WEFT__STACK_BACKOFF_NS 1000000 /* no memory for a stack: retry in 1 ms */

static inline void cpu_relax(void)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

enum { PEND_NONE, PEND_REQUEUE, PEND_PARK, PEND_EXIT };

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

static inline uint32_t tick_bump(struct worker *w)
{
    uint32_t t = atomic_load_explicit(&w->tick, memory_order_relaxed) + 1;
    atomic_store_explicit(&w->tick, t, memory_order_relaxed);
    return t;
}

static inline void count(_Atomic uint64_t *c, uint64_t n) { weft__count(c, n, memory_order_relaxed); }

/* ------------------------------------------------------------ idle workers */

/* Wakes one sleeping worker if nobody is searching. Called after work was
 * made available. */
static void notify_parked(struct weft_runtime *rt)
{
    /* Full fence: orders our push before reading the counters; pairs with
     * the fence in park_worker between listing itself as a sleeper and
     * re-checking the queues (Go's "delicate dance"). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&rt->n_searching, memory_order_relaxed) != 0)
        return;
    if (atomic_load_explicit(&rt->n_unparked, memory_order_relaxed) >= rt->n_workers)
        return;
    pthread_mutex_lock(&rt->idle_lock);
    if (atomic_load_explicit(&rt->n_searching, memory_order_relaxed) != 0 ||
        rt->n_sleepers == 0) {
        pthread_mutex_unlock(&rt->idle_lock);
        return;
    }
    struct worker *w = &rt->workers[rt->sleepers[--rt->n_sleepers]];
    w->sleeping = false;
    w->searching = true; /* the woken worker starts out searching */
    atomic_fetch_add_explicit(&rt->n_searching, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rt->n_unparked, 1, memory_order_relaxed);
    pthread_mutex_unlock(&rt->idle_lock);
    weft__poller_wake(&w->poller);
}

static bool start_searching(struct worker *w)
{
    if (w->searching)
        return true;
    struct weft_runtime *rt = w->rt;
    uint32_t s = atomic_load_explicit(&rt->n_searching, memory_order_relaxed);
    if (2 * s >= rt->n_workers && rt->n_workers > 1)
        return false;
    atomic_fetch_add_explicit(&rt->n_searching, 1, memory_order_seq_cst);
    w->searching = true;
    return true;
}

static void stop_searching(struct worker *w)
{
    if (!w->searching)
        return;
    w->searching = false;
    /* The last searcher to find work wakes another, in case there is more. */
    if (atomic_fetch_sub_explicit(&w->rt->n_searching, 1, memory_order_seq_cst) == 1)
        notify_parked(w->rt);
}

void weft__workers_wake_all(struct weft_runtime *rt)
{
    for (unsigned i = 0; i < rt->n_workers; i++)
        weft__poller_wake(&rt->workers[i].poller);
}

/* ------------------------------------------------------------ run queues */

/* Appends t at the back of w's queue. With one worker the ring is the
 * front of a single FIFO and the inject queue its back (so tasks start in
 * spawn order, as in asyncio); with several, a full ring sends its front
 * half to the inject queue in one lock (Go, Tokio). push_local below is
 * the fast path. */
static WEFT__NOINLINE void push_local_slow(struct worker *w, struct weft_task *t)
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

static inline void push_local(struct worker *w, struct weft_task *t)
{
    if (WEFT__UNLIKELY(w->is_single && weft__inject_len(&w->rt->inject)) ||
        WEFT__UNLIKELY(!weft__deque_push_owner(&w->q, t)))
        push_local_slow(w, t);
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
    push_local(w, t);
}

void weft__schedule(struct weft_task *t, bool front)
{
    weft__schedule_on(weft__worker_self(), t, front);
}

void weft__schedule_on(struct worker *w, struct weft_task *t, bool front)
{
    struct weft_runtime *rt = t->rt;
    if (!w || w->rt != rt) {
        weft__inject_push(&rt->inject, t);
        notify_parked(rt);
        return;
    }
    if (front) {
        /* The next slot: no wake-up for the task that now sits there (the
         * running task usually parks soon: message passing stays on this
         * core). Relaxed flags: t is ours, and TASK_STARTED is only set by
         * the worker that runs it. */
        bool spawned = !w->is_single &&
                       !(atomic_load_explicit(&t->flags, memory_order_relaxed) & TASK_STARTED);
        /* Only this thread puts tasks in the slot (thieves only take), so
         * an empty slot needs no exchange. Release: publishes t to the
         * acquire exchange that takes it (pick_local, steal_work). */
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
            notify_parked(rt);
            return;
        }
        bool displaced_woken = w->next_woken;
        w->next_woken = !spawned;
        t = atomic_exchange_explicit(&w->next, t, memory_order_acq_rel);
        if (!t)
            return; /* a thief took the old one */
        if (!displaced_woken && !w->is_single) {
            push_spawned(w, t); /* a spawned task that has not started */
            notify_parked(rt);
            return;
        }
    }
    push_local(w, t);
    notify_parked(rt);
}

/* Next task from the next slot or the local queue; NULL if both empty. */
static inline __attribute__((always_inline)) struct weft_task *pick_local(struct worker *w)
{
    /* Only the owner fills the slot, so an empty one stays empty: the
     * exchange (thieves may race for a full one) only when it is full. */
    struct weft_task *t = NULL;
    if (atomic_load_explicit(&w->next, memory_order_relaxed))
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
        push_local(w, t); /* capped: let queue order win once */
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

static void move_from_inject(struct worker *w, size_t max)
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
            push_local(w, t); /* cannot happen: room was checked */
        t = nx;
    }
}

/* Timer wakes go to the back of the queue, in deadline order: sleepers
 * due together run in the order they were due (asyncio's order with one
 * worker), not last-fired-first through the next slot. Defined below. */
static void wake_to(struct weft_task *t, bool front);

/* The timer of a park with a deadline: on the parked task's stack, which
 * stays put while it waits (weft__park_self). */
struct park_timer {
    struct timer tm;
    struct weft_task *task;
};

static void fire_timer(struct timer *tm)
{
    wake_to(weft__container_of(tm, struct park_timer, tm)->task, false);
}

/* Inject queue, timers, reactor: every WEFT__MAINT_INTERVAL switches and
 * whenever the local queue runs dry. */
static void maintenance(struct worker *w)
{
    struct weft_runtime *rt = w->rt;
    size_t inj = weft__inject_len(&rt->inject);
    if (inj) {
        size_t share = inj / rt->n_workers + 1;
        move_from_inject(w, share < WEFT__DEQUE_CAP / 2 ? share : WEFT__DEQUE_CAP / 2);
    }
    if (weft__timer_next(&w->timers) != INT64_MAX)
        weft__timer_fire_due(&w->timers, weft__clock_ns(), false, fire_timer);
    if (atomic_load_explicit(&w->poller.n_sources, memory_order_relaxed)) {
        count(&w->n_polls, 1);
        weft__poller_wait(&w->poller, 0);
    }
}

/* Steals from peers: their queues, their due timers, the reactors of busy
 * ones, and (when a peer has not switched since our last look) the task
 * stranded in its next slot. */
static struct weft_task *steal_work(struct worker *w)
{
    struct weft_runtime *rt = w->rt;
    unsigned n = rt->n_workers;
    if (n > 1) {
        w->rng ^= w->rng << 13;
        w->rng ^= w->rng >> 7;
        w->rng ^= w->rng << 17;
        unsigned start = (unsigned)(w->rng % n);
        int64_t now = 0;
        for (unsigned i = 0; i < n; i++) {
            struct worker *v = &rt->workers[(start + i) % n];
            if (v == w)
                continue;
            unsigned got = weft__deque_steal(&v->q, &w->q);
            if (got) {
                count(&w->n_steals, got);
                return weft__deque_pop_owner(&w->q);
            }
            if (weft__timer_next(&v->timers) != INT64_MAX) {
                if (!now)
                    now = weft__clock_ns();
                weft__timer_fire_due(&v->timers, now, true, fire_timer);
            }
            bool busy = !atomic_load_explicit(&v->parked, memory_order_relaxed);
            if (busy && atomic_load_explicit(&v->poller.n_sources, memory_order_relaxed)) {
                count(&w->n_polls, 1);
                weft__poller_wait(&v->poller, 0);
            }
            uint32_t vt = atomic_load_explicit(&v->tick, memory_order_relaxed);
            if (busy && atomic_load_explicit(&v->next, memory_order_relaxed) &&
                vt == w->seen_tick[v->index]) {
                struct weft_task *t =
                    atomic_exchange_explicit(&v->next, NULL, memory_order_acquire);
                if (t) {
                    count(&w->n_steals, 1);
                    return t;
                }
            }
            w->seen_tick[v->index] = vt;
        }
    }
    struct weft_task *t = pick_local(w);
    if (t)
        return t;
    move_from_inject(w, WEFT__DEQUE_CAP / 2);
    return pick_local(w);
}

/* Is there work anywhere a sleeping worker could take? */
static bool work_available(struct weft_runtime *rt)
{
    if (weft__inject_len(&rt->inject))
        return true;
    for (unsigned i = 0; i < rt->n_workers; i++)
        if (weft__deque_len(&rt->workers[i].q))
            return true;
    return false;
}

static void park_worker(struct worker *w)
{
    struct weft_runtime *rt = w->rt;
    pthread_mutex_lock(&rt->idle_lock);
    bool was_searching = w->searching;
    bool last = false;
    if (was_searching) {
        w->searching = false;
        last = atomic_fetch_sub_explicit(&rt->n_searching, 1, memory_order_relaxed) == 1;
    }
    atomic_fetch_sub_explicit(&rt->n_unparked, 1, memory_order_relaxed);
    w->sleeping = true;
    rt->sleepers[rt->n_sleepers++] = w->index;
    pthread_mutex_unlock(&rt->idle_lock);
    (void)last;

    /* Pairs with the fence in notify_parked: either the pusher sees us
     * asleep and wakes someone, or we see its work here. */
    atomic_thread_fence(memory_order_seq_cst);
    if (work_available(rt))
        notify_parked(rt);

    int64_t deadline = weft__timer_next(&w->timers);
    bool peer_busy = false;
    for (unsigned i = 0; i < rt->n_workers; i++) {
        struct worker *v = &rt->workers[i];
        if (v == w || atomic_load_explicit(&v->parked, memory_order_relaxed))
            continue;
        peer_busy = true;
        int64_t d = weft__timer_next(&v->timers);
        if (d < deadline)
            deadline = d;
    }
    int64_t timeout = -1;
    int64_t now = weft__clock_ns();
    if (deadline != INT64_MAX)
        timeout = deadline > now ? deadline - now : 0;
    /* A busy peer may strand a task in its next slot or a ready descriptor
     * in its reactor: look again soon (Go's sysmon does the same). */
    if (peer_busy && (timeout < 0 || timeout > WEFT__MONITOR_NS))
        timeout = WEFT__MONITOR_NS;

    atomic_store_explicit(&w->parked, true, memory_order_relaxed);
    if (!atomic_load_explicit(&rt->shutdown, memory_order_acquire)) {
        count(&w->n_parks, 1);
        count(&w->n_polls, 1);
        weft__poller_wait(&w->poller, timeout);
    }
    atomic_store_explicit(&w->parked, false, memory_order_relaxed);

    pthread_mutex_lock(&rt->idle_lock);
    if (w->sleeping) {
        /* Woken by a timer, a descriptor or the monitor timeout, not by
         * notify_parked: take ourselves off the list. */
        for (unsigned i = 0; i < rt->n_sleepers; i++) {
            if (rt->sleepers[i] == w->index) {
                rt->sleepers[i] = rt->sleepers[--rt->n_sleepers];
                break;
            }
        }
        w->sleeping = false;
        atomic_fetch_add_explicit(&rt->n_unparked, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&rt->idle_lock);
    w->force_maint = true;
}

/* ------------------------------------------------------------ switching */

static void task_entry(void);

/* errno is saved and restored per task through the address of the
 * worker thread's errno (w->errno_loc, taken once by the thread itself),
 * never through `errno` in code that switches: glibc declares
 * __errno_location() const, so a function that migrates mid-way could keep
 * using the previous thread's address (GCC PR 26461). After a switch the
 * worker is re-read from the task (self->worker), not from a register. */

/* Gives t a stack and a first frame if it has none. False when no stack
 * could be had. The body must still start (task.h: whatever arg hands
 * over is never lost, and generators, groups and joiners wait for what
 * the body does), so t then waits for memory at the back of the inject
 * queue, and this worker backs off (stack_starved) rather than spin on
 * mmap. Only a closing runtime, which waits for every task, ends t
 * unstarted with -ENOMEM, so that shutdown never hangs on memory that
 * does not come back. */
static WEFT__NOINLINE bool prepare_first_run(struct worker *w, struct weft_task *t)
{
    struct stack *s = weft__stack_get(&w->rt->stacks, &w->stacks);
    if (!s) {
        if (atomic_load_explicit(&w->rt->closing, memory_order_acquire)) {
            t->status = -ENOMEM;
            weft__task_finish(w, t);
        } else {
            weft__inject_push(&w->rt->inject, t);
            w->stack_starved = true;
        }
        return false;
    }
    if (!s->fiber)
        s->fiber = weft__checker_fiber_new();
    weft__checker_stack_reuse(s->lo, s->size);
    t->stack = s;
    weft__ctx_make(&t->ctx, s->lo, s->size, task_entry);
    return true;
}

static inline bool prepare_run(struct worker *w, struct weft_task *t)
{
    return WEFT__LIKELY(t->stack != NULL) || prepare_first_run(w, t);
}

/* Slow-task warning (only while rt->slow_task_ns > 0): each run stretch
 * of a task is published through the worker's stretch seqlock, which the
 * monitor thread of diag.c reads while the task runs. */
static WEFT__NOINLINE void stretch_begin(struct worker *w, struct weft_task *t)
{
    uint64_t seq = atomic_load_explicit(&w->stretch_seq, memory_order_relaxed);
    /* Release fence: orders the previous stretch_end (even sequence)
     * before the field writes, for a reader that sees the new fields
     * (seqlock writer side; pairs with check_worker's acquire fence). */
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&w->stretch_start, weft__clock_ns(), memory_order_relaxed);
    atomic_store_explicit(&w->stretch_task, t, memory_order_relaxed);
    /* Release: publishes the fields to check_worker's acquire load. */
    atomic_store_explicit(&w->stretch_seq, seq | 1, memory_order_release);
}

/* Ends the stretch of t, the running task, before it switches away; warns
 * if it was slow and the monitor has not warned yet. */
static WEFT__NOINLINE void stretch_end(struct worker *w, struct weft_task *t)
{
    uint64_t seq = atomic_load_explicit(&w->stretch_seq, memory_order_relaxed);
    int64_t ran = weft__clock_ns() - atomic_load_explicit(&w->stretch_start, memory_order_relaxed);
    /* The monitor knows the struct it took a reference on is still this
     * stretch's task while this sequence has not moved (check_worker). */
    atomic_store_explicit(&w->stretch_seq, seq + 1, memory_order_relaxed);
    if (ran < w->rt->slow_task_ns || !(seq & 1) ||
        atomic_exchange_explicit(&w->slow_warned, seq, memory_order_relaxed) == seq)
        return;
    char name[WEFT__TASK_NAME];
    weft__task_copy_name(t, name);
    weft__slow_report(w->rt, w->index, t->id, name, ran, false);
}

static inline void mark_running(struct worker *w, struct weft_task *t)
{
    atomic_store_explicit(&w->current, t, memory_order_relaxed);
    t->worker = w;
    count(&w->n_run, 1);
    if (WEFT__UNLIKELY(w->slow_on))
        stretch_begin(w, t);
}

static void finish_exit(struct worker *w, struct weft_task *t)
{
    weft__stack_put(&w->rt->stacks, &w->stacks, t->stack);
    t->stack = NULL;
    weft__task_finish(w, t);
}

/* Completes the action of the context that just switched away on this
 * worker. Runs on whatever context landed. */
static inline __attribute__((always_inline)) void post_switch(struct worker *w)
{
    int p = w->pending;
    struct weft_task *t = w->pending_task;
    w->pending = PEND_NONE;
    switch (p) {
    case PEND_NONE:
        break;
    case PEND_REQUEUE:
        push_local(w, t);
        break;
    case PEND_PARK: {
        if (w->commit)
            weft__checker_commit_as(t->stack->fiber, w->commit, w->commit_arg);
        uint32_t s = PARK_RUNNING;
        /* acq_rel: publishes the saved context to a waker's CAS on
         * PARKED -> RUNNING; on failure (a wake came first: NOTIFIED)
         * acquires the waker's writes before we requeue the task
         * ourselves. */
        if (!atomic_compare_exchange_strong_explicit(&t->park, &s, PARK_PARKED,
                                                     memory_order_acq_rel,
                                                     memory_order_acquire)) {
            atomic_store_explicit(&t->park, PARK_RUNNING, memory_order_relaxed);
            push_local(w, t);
        }
        break;
    }
    case PEND_EXIT:
        finish_exit(w, t);
        break;
    }
}

/* Switches the running task self away with `action` done after the
 * switch; returns when self is resumed (maybe on another worker). */
static inline __attribute__((always_inline)) void switch_out(struct worker *w,
                                                             struct weft_task *self, int action)
{
    /* On our stack, which the switch keeps. */
    int saved_errno = *w->errno_loc;
    if (WEFT__UNLIKELY(w->slow_on))
        stretch_end(w, self);
    w->pending = action;
    w->pending_task = self;
    struct weft_task *next = NULL;
    if (tick_bump(w) % WEFT__MAINT_INTERVAL != 0) {
        next = pick_local(w);
        if (next && !prepare_run(w, next))
            next = NULL;
    } else {
        w->force_maint = true;
    }
    void **fake = action == PEND_EXIT ? NULL : weft__task_fake_slot(self);
    if (next) {
        mark_running(w, next);
        weft__checker_start_switch(fake, next->stack->lo, next->stack->size);
        weft__checker_fiber_switch(next->stack->fiber);
        weft__ctx_switch(&self->ctx, &next->ctx);
    } else {
        atomic_store_explicit(&w->current, NULL, memory_order_relaxed);
        weft__checker_start_switch(fake, w->sched_stack_lo, w->sched_stack_size);
        weft__checker_fiber_switch(w->sched_fiber);
        weft__ctx_switch(&self->ctx, &w->sched_ctx);
    }
    void **slot = weft__task_fake_slot(self);
    weft__checker_finish_switch(slot ? *slot : NULL);
    /* Whoever resumed self set self->worker (mark_running): the worker we
     * now run on, maybe not w. */
    w = self->worker;
    post_switch(w);
    *w->errno_loc = saved_errno;
}

static void task_entry(void)
{
    weft__checker_finish_switch(NULL);
    struct worker *w = weft__worker_self();
    post_switch(w);
    struct weft_task *t = atomic_load_explicit(&w->current, memory_order_relaxed);
    *w->errno_loc = 0;
    weft__task_run_body(t);
    switch_out(t->worker, t, PEND_EXIT); /* t->worker: see switch_out */
    weft__panic(__FILE__, __LINE__, "a finished task was resumed");
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

/* Runs t from the worker loop until it switches back to the loop. */
static void run_from_loop(struct worker *w, struct weft_task *t)
{
    if (!prepare_run(w, t))
        return;
    mark_running(w, t);
    weft__checker_start_switch(&w->sched_fake, t->stack->lo, t->stack->size);
    weft__checker_fiber_switch(t->stack->fiber);
    weft__ctx_switch(&w->sched_ctx, &t->ctx);
    weft__checker_finish_switch(w->sched_fake);
    post_switch(w);
}

/* ------------------------------------------------------------ park / wake */

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
    switch_out(w, self, PEND_PARK);
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

void weft__yield_self(struct weft_task *self) { switch_out(self->worker, self, PEND_REQUEUE); }

void weft__yield_now(void) { weft__yield_self(weft__task_self()); }

/* ------------------------------------------------------------ task memory */

/* Task structs come from chunks, kept for the life of the runtime: malloc
 * and free of small objects cost more than the rest of a spawn. Each
 * worker keeps two lists of its own (no lock): `free` (allocations pop
 * from it, releases push onto it) and `spare`, one full batch of
 * WEFT__TASK_BATCH. When `free` fills up it becomes the spare, and an
 * older spare goes to the runtime's list in one lock; when it runs dry the
 * spare (or a batch from the runtime, or WEFT__TASK_CHUNK structs carved
 * from the newest chunk) replaces it. So a worker takes the lock once per
 * batch, not once per task, however its spawns and ends balance. The
 * runtime's list is a chain of batches whose first task carries the
 * batch's last task and length (qlast, qlen, as in the inject queue), so a
 * batch moves in O(1). Plain threads take and give single tasks there.
 *
 * The memory is type-stable, as Go's allgs: a struct, once carved, is a
 * task struct until weft__task_memory_release, and chunks start zeroed,
 * so a free struct has refs 0. That is the task registry: dumps and
 * runtime_free walk the chunks and take a reference on each struct whose
 * count is not 0 (weft__task_tryref), and a spawn publishes a task by
 * its refs store alone, with no shared list or lock on the spawn and end
 * paths (a registry spinlock was 18 % of spawn_join's time, the spawning
 * and the ending worker taking turns at it). The price: a dump reads every
 * struct ever carved. Under ASan a free struct is poisoned but for the
 * words the free lists and walkers read (task_poison), so that a use of
 * a freed task is still reported. */
#define WEFT__TASK_CHUNK 64
#define WEFT__TASK_BATCH 1024
/* The first WEFT__TASK_SMALL_CHUNKS chunks hold WEFT__TASK_CHUNK structs
 * each (aligned to cache lines, zeroed); after that, mappings of 2 MiB,
 * each prefaulted in one madvise(MADV_POPULATE_WRITE) call (Linux 5.14+;
 * ignored elsewhere) rather than by 512 page faults as the structs are first written:
 * spawn_join's spawning worker spent about a third of its time in page
 * faults, and the one call halves that system time (transparent huge
 * pages were tried too: fewer faults, but compaction made the system
 * time worse). A small program keeps small chunks. */
#define WEFT__TASK_SMALL_CHUNKS 16
#define WEFT__TASK_BIG_CHUNK ((size_t)2 << 20)

struct task_chunk {
    struct task_chunk *next; /* older chunk */
    size_t n;                /* structs it holds */
    bool mapped;             /* mmap'd (WEFT__TASK_BIG_CHUNK bytes) */
    struct weft_task tasks[];
};

#ifdef WEFT__ASAN
/* The 8-byte granules a free struct keeps readable: qlast, refs (with
 * qlen), qnext. */
_Static_assert(offsetof(struct weft_task, qlast) % 8 == 0 &&
                   offsetof(struct weft_task, qlast) + 8 <= offsetof(struct weft_task, refs) &&
                   offsetof(struct weft_task, refs) + 8 <= offsetof(struct weft_task, qnext) &&
                   offsetof(struct weft_task, refs) % 8 == 0 &&
                   offsetof(struct weft_task, qlen) == offsetof(struct weft_task, refs) + 4 &&
                   offsetof(struct weft_task, qnext) % 8 == 0,
               "free-list words of struct weft_task not granule-aligned");

/* Poisons the gaps between the kept granules only: a walker may read
 * refs at any moment, so its granule must never be poisoned, even
 * briefly. */
static void task_poison(struct weft_task *t)
{
    static const size_t keep[] = {offsetof(struct weft_task, qlast),
                                  offsetof(struct weft_task, refs),
                                  offsetof(struct weft_task, qnext)};
    size_t from = 0;
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        if (keep[i] > from)
            ASAN_POISON_MEMORY_REGION((char *)t + from, keep[i] - from);
        from = keep[i] + 8;
    }
    ASAN_POISON_MEMORY_REGION((char *)t + from, sizeof *t - from);
}

static void task_unpoison(struct weft_task *t) { ASAN_UNPOISON_MEMORY_REGION(t, sizeof *t); }
#else
static inline void task_poison(struct weft_task *t) { (void)t; }
static inline void task_unpoison(struct weft_task *t) { (void)t; }
#endif

/* A new chunk, zeroed, for the runtime's carving; task_lock held. False
 * when out of memory. A mapped chunk is also returned in *big, for the
 * caller to prefault unlocked. */
static bool chunk_new_locked(struct weft_runtime *rt, struct task_chunk **big)
{
    size_t size = sizeof(struct task_chunk) + WEFT__TASK_CHUNK * sizeof(struct weft_task);
    struct task_chunk *c = NULL;
    bool mapped = false;
    if (rt->n_task_chunks >= WEFT__TASK_SMALL_CHUNKS) {
        void *p = mmap(NULL, WEFT__TASK_BIG_CHUNK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            c = p;
            size = WEFT__TASK_BIG_CHUNK;
            mapped = true;
            *big = c;
        }
    }
    if (!c) {
        /* Whole cache lines: tasks running on different workers never
         * share one. */
        size = (size + WEFT__CACHELINE - 1) & ~(size_t)(WEFT__CACHELINE - 1);
        if (!(c = aligned_alloc(WEFT__CACHELINE, size)))
            return false;
        memset(c, 0, size);
    }
    c->next = rt->task_chunks;
    c->n = (size - sizeof *c) / sizeof(struct weft_task);
    c->mapped = mapped;
    rt->task_chunks = c;
    rt->n_task_chunks++;
    rt->task_bump = c->tasks;
    rt->task_bump_end = c->tasks + c->n;
    return true;
}

/* Carves up to max structs (at least one) off the newest chunk, or a new
 * one; task_lock held. Returns the first (the rest follow it in memory)
 * and their number in *n, or NULL when out of memory. */
static struct weft_task *carve_locked(struct weft_runtime *rt, unsigned max, unsigned *n,
                                      struct task_chunk **big)
{
    if (rt->task_bump == rt->task_bump_end && !chunk_new_locked(rt, big))
        return NULL;
    struct weft_task *first = rt->task_bump;
    size_t left = (size_t)(rt->task_bump_end - first);
    *n = left < max ? (unsigned)left : max;
    rt->task_bump = first + *n;
    return first;
}

/* Appends the list first..last (n tasks) to the runtime's chain as one
 * batch; task_lock held. */
static void batch_push_locked(struct weft_runtime *rt, struct weft_task *first,
                              struct weft_task *last, unsigned n)
{
    first->qlast = last;
    first->qlen = n;
    last->qnext = rt->free_tasks;
    rt->free_tasks = first;
    rt->n_free_tasks += n;
}

/* Gives w a new `free` list: its spare, a batch of the runtime's, or
 * freshly carved structs. False when out of memory. */
static WEFT__NOINLINE bool refill_tasks(struct weft_runtime *rt, struct worker *w)
{
    if (w->spare_tasks) {
        w->free_tasks = w->spare_tasks;
        w->free_tail = w->spare_tail;
        w->n_free_tasks = WEFT__TASK_BATCH;
        w->spare_tasks = NULL;
        return true;
    }
    struct weft_task *first = NULL, *last = NULL;
    unsigned n = 0;
    pthread_mutex_lock(&rt->task_lock);
    if (rt->free_tasks) {
        first = rt->free_tasks;
        last = first->qlast;
        n = first->qlen;
        rt->free_tasks = last->qnext;
        rt->n_free_tasks -= n;
        pthread_mutex_unlock(&rt->task_lock);
        last->qnext = NULL;
    } else {
        struct task_chunk *big = NULL;
        first = carve_locked(rt, WEFT__TASK_CHUNK, &n, &big);
        pthread_mutex_unlock(&rt->task_lock);
        if (!first)
            return false;
#ifdef MADV_POPULATE_WRITE
        /* Others may carve from it meanwhile: prefaulting is harmless to
         * their writes. A failure only leaves the faults to come. */
        if (big)
            (void)madvise(big, WEFT__TASK_BIG_CHUNK, MADV_POPULATE_WRITE);
#endif
        /* Carved structs are ours (and, refs 0, skipped by walkers): link
         * them outside the lock. */
        for (unsigned i = 0; i < n; i++)
            first[i].qnext = i + 1 < n ? &first[i + 1] : NULL;
        last = &first[n - 1];
    }
    w->free_tasks = first;
    w->free_tail = last;
    w->n_free_tasks = n;
    return true;
}

struct weft_task *weft__task_alloc_on(struct worker *w, struct weft_runtime *rt)
{
    struct weft_task *t;
    if (w && w->rt == rt) {
        if (WEFT__UNLIKELY(!w->free_tasks) && !refill_tasks(rt, w))
            return NULL;
        t = w->free_tasks;
        w->free_tasks = t->qnext;
        w->n_free_tasks--;
        task_unpoison(t);
        return t;
    }
    pthread_mutex_lock(&rt->task_lock);
    t = rt->free_tasks;
    if (t) {
        /* The rest of t's batch becomes a batch of its own. */
        struct weft_task *nx = t->qnext;
        if (t->qlen > 1) {
            nx->qlast = t->qlast;
            nx->qlen = t->qlen - 1;
        }
        rt->free_tasks = nx;
        rt->n_free_tasks--;
    } else {
        struct task_chunk *big = NULL; /* left to fault in, from a thread */
        unsigned n;
        t = carve_locked(rt, 1, &n, &big);
    }
    pthread_mutex_unlock(&rt->task_lock);
    if (t)
        task_unpoison(t);
    return t;
}

struct weft_task *weft__task_alloc(struct weft_runtime *rt)
{
    return weft__task_alloc_on(weft__worker_self(), rt);
}

void weft__task_release(struct weft_task *t)
{
    struct weft_runtime *rt = t->rt;
    free(t->name);
    t->name = NULL;
    struct worker *w = weft__worker_self();
    if (w && w->rt == rt) {
        if (!w->free_tasks)
            w->free_tail = t;
        t->qnext = w->free_tasks;
        w->free_tasks = t;
        task_poison(t);
        if (WEFT__LIKELY(++w->n_free_tasks < WEFT__TASK_BATCH))
            return;
        /* Full: it becomes the spare; an older spare goes to the runtime. */
        struct weft_task *old = w->spare_tasks, *old_tail = w->spare_tail;
        w->spare_tasks = w->free_tasks;
        w->spare_tail = w->free_tail;
        w->free_tasks = NULL;
        w->n_free_tasks = 0;
        if (old) {
            pthread_mutex_lock(&rt->task_lock);
            batch_push_locked(rt, old, old_tail, WEFT__TASK_BATCH);
            pthread_mutex_unlock(&rt->task_lock);
        }
        return;
    }
    task_poison(t);
    pthread_mutex_lock(&rt->task_lock);
    batch_push_locked(rt, t, t, 1);
    pthread_mutex_unlock(&rt->task_lock);
}

void weft__task_for_each(struct weft_runtime *rt, void (*fn)(struct weft_task *t, void *arg),
                         void *arg)
{
    /* Chunks are only ever prepended, and carving only moves task_bump
     * up within the newest: from this snapshot on, the walk needs no
     * lock. Structs carved later are tasks spawned after it began. */
    pthread_mutex_lock(&rt->task_lock);
    struct task_chunk *head = rt->task_chunks;
    struct weft_task *bump = rt->task_bump;
    pthread_mutex_unlock(&rt->task_lock);
    for (struct task_chunk *c = head; c; c = c->next) {
        struct weft_task *end = c == head ? bump : c->tasks + c->n;
        for (struct weft_task *t = c->tasks; t < end; t++) {
            if (!weft__task_tryref(t))
                continue;
            fn(t, arg);
            weft__task_unref(t);
        }
    }
}

/* Frees every task struct of rt; every task has ended and the workers
 * are stopped. */
void weft__task_memory_release(struct weft_runtime *rt)
{
    struct task_chunk *head = rt->task_chunks;
    while (rt->task_chunks) {
        struct task_chunk *c = rt->task_chunks;
        rt->task_chunks = c->next;
        /* A struct whose handle was never dropped still holds its name;
         * the others' are NULL. Only the newest chunk is partly carved. */
        struct weft_task *end = c == head ? rt->task_bump : c->tasks + c->n;
        /* Free structs are poisoned (ASan), and a mapping must not keep
         * its poison for whatever is mapped there next. */
#ifdef WEFT__ASAN
        ASAN_UNPOISON_MEMORY_REGION(c->tasks, c->n * sizeof *c->tasks);
#endif
        for (struct weft_task *t = c->tasks; t < end; t++)
            free(t->name);
        if (c->mapped)
            munmap(c, WEFT__TASK_BIG_CHUNK);
        else
            free(c);
    }
    rt->free_tasks = NULL;
    rt->task_bump = rt->task_bump_end = NULL;
    for (unsigned i = 0; i < rt->n_workers; i++) {
        struct worker *w = &rt->workers[i];
        w->free_tasks = w->spare_tasks = NULL;
        w->n_free_tasks = 0;
    }
}

/* ------------------------------------------------------------ the loop */

int weft__worker_init(struct weft_runtime *rt, struct worker *w, unsigned index)
{
    memset(w, 0, sizeof *w);
    weft__deque_init(&w->q);
    atomic_init(&w->next, NULL);
    atomic_init(&w->tick, 0);
    atomic_init(&w->parked, false);
    w->rt = rt;
    w->index = index;
    w->is_single = rt->n_workers == 1;
    w->slow_on = rt->slow_task_ns > 0;
    w->rng = 0x9E3779B97F4A7C15ull * (index + 1);
    w->seen_tick = calloc(rt->n_workers, sizeof *w->seen_tick);
    if (!w->seen_tick)
        return -ENOMEM;
    int rc = weft__timer_heap_init(&w->timers);
    if (rc < 0)
        goto fail_free_seen;
    rc = weft__poller_init(&w->poller);
    if (rc < 0)
        goto fail_timers;
    return 0;
fail_timers:
    weft__timer_heap_destroy(&w->timers);
fail_free_seen:
    free(w->seen_tick);
    return rc;
}

void weft__worker_destroy(struct worker *w)
{
    weft__stack_cache_drain(&w->rt->stacks, &w->stacks);
    weft__poller_destroy(&w->poller);
    weft__timer_heap_destroy(&w->timers);
    free(w->seen_tick);
}

static void thread_stack_bounds(struct worker *w)
{
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstack(&a, &w->sched_stack_lo, &w->sched_stack_size);
        pthread_attr_destroy(&a);
    }
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
    for (;;) {
        struct weft_task *t = NULL;
        if (w->force_maint) {
            w->force_maint = false;
            maintenance(w);
        }
        t = pick_local(w);
        if (!t) {
            maintenance(w);
            t = pick_local(w);
        }
        if (!t && start_searching(w)) {
            /* Spin a little before parking (Go's spinning M): waking a
             * parked worker costs a system call and several microseconds,
             * and work often arrives again right away. A worker with
             * descriptors in its poller spins only a few rounds: its work
             * mostly comes through that poller, whose wait the kernel ends
             * as soon as an event arrives. In the TCP echo benchmark 99%
             * of the spins that found work found it within three rounds,
             * while half of all spins found nothing and burned ~60 us
             * each of a CPU that the clients on the machine needed. */
            unsigned rounds =
                atomic_load_explicit(&w->poller.n_sources, memory_order_relaxed)
                    ? WEFT__SPIN_ROUNDS_IO
                    : WEFT__SPIN_ROUNDS;
            for (unsigned spin = 0; !t && spin < rounds; spin++) {
                t = steal_work(w);
                if (!t && atomic_load_explicit(&w->next, memory_order_relaxed) == NULL)
                    for (int k = 0; k < 32; k++)
                        cpu_relax();
            }
        }
        if (t) {
            stop_searching(w);
            tick_bump(w);
            run_from_loop(w, t);
            if (WEFT__UNLIKELY(w->stack_starved))
                stack_backoff(w);
            continue;
        }
        if (atomic_load_explicit(&rt->shutdown, memory_order_acquire))
            break;
        park_worker(w);
    }
    stop_searching(w);
    weft__guard_thread_fini(altstack);
    tls_worker = NULL;
    return NULL;
}
