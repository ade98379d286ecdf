/* SPDX-License-Identifier: MIT */
/* The scheduler's shared structures (task, worker, runtime) and the
 * internal contract every waiting primitive builds on: park and wake.
 *
 * Parking protocol (Go's gopark with an unlock function): a task publishes
 * itself where a waker can find it, then calls weft__park(commit, arg, ...).
 * commit(arg) runs on the worker only after the task's registers are saved,
 * so a waker that needs the lock commit releases can never resume a task
 * that is still running. A task's park word moves
 *   RUNNING -> PARKED (a CAS by the worker, after the switch)
 * and weft__wake() moves PARKED -> RUNNING (the waker schedules it) or
 * RUNNING -> NOTIFIED: a wake is never dropped, so a task that is on its
 * way to park needs no fence against its wakers (the two RMWs on the park
 * word order them). The worker whose CAS finds NOTIFIED reschedules the
 * task right after the switch; a task that was not parking takes the
 * notification at its next park, which returns at once. Wakes may thus be
 * spurious (and cancellation and timers wake too): every wait re-checks its
 * condition after weft__park returns. */
#ifndef WEFT_SCHED_SCHED_H
#define WEFT_SCHED_SCHED_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "ctx/checker.h"
#include "ctx/context.h"
#include "ctx/stack.h"
#include "reactor/poller.h"
#include "sched/deque.h"
#include "sched/idle.h"
#include "sched/inject.h"
#include "sched/timer.h"
#include "sched/wait.h"
#include "util/list.h"
#include "util/spin.h"

/* Run-queue invariants checked at run time (sanitizer builds, or
 * -DWEFT_QUEUE_CHECKS): no task made runnable twice, none run that was not
 * runnable, no finished task queued, no push or steal past a ring's
 * capacity. A failure panics with the task's id. */
#if defined(WEFT__ASAN) || defined(WEFT__TSAN) || defined(WEFT_QUEUE_CHECKS)
#define WEFT__QCHECK 1
#endif

/* PARK_HELD: parked, and a dump reads its stack and wait (diag/dump.c):
 * a wake that finds it moves it to PARK_HELD_WOKEN and returns, and the
 * dump, when done, either puts PARKED back or (woken meanwhile) resumes
 * the task itself, exactly as that wake would have. */
enum park_state {
    PARK_RUNNING,
    PARK_PARKED,
    PARK_NOTIFIED,
    PARK_HELD,
    PARK_HELD_WOKEN
};

enum task_flags {
    TASK_CANCELLED = 1u << 0, /* cancellation requested (sticky) */
    TASK_DONE = 1u << 1,      /* body returned, status final */
    TASK_DETACHED = 1u << 2,  /* no handle: free when done */
    TASK_STARTED = 1u << 3,   /* body has started */
    TASK_END_WAITERS = 1u << 4, /* end waiters (struct end_waiter) may be
                                   queued for it; sticky until respawn */
};

/* weft_task.joiner: NULL, the clause (sched/wait.h) of the one task or
 * plain thread that joins it, or WEFT__JOIN_DONE. A task that ends
 * exchanges it for DONE and, when it found a clause, claims and wakes it
 * (weft__wait_wake): the slot is that clause's queue and the exchange its
 * lock, so a joiner that gives up withdraws with a CAS (clause -> NULL)
 * and, failing it, waits for the end to be done with it
 * (weft__wait_settle). */
#define WEFT__JOIN_DONE ((void *)1)   /* task has ended */

struct worker;

/* 128 bytes, two cache lines, aligned to them (static assertion in
 * task.c). Tasks that run on different workers must not share a line: at
 * 112 bytes, unaligned, the false sharing tripled the cost of a yield.
 * Every spawn writes a fresh struct, and with a million live tasks the
 * page clearing of their memory was most of spawn_join's time (about
 * 0.46 ns per byte of struct per task, measured by padding it). So fields
 * that are dead in some phase of a task's life share space with fields of
 * another phase, and what only a running task needs lives on its stack
 * (errno, across a switch, in switch_out; the park timer, in
 * weft__park_self). No bytes are free: the last 16 went to the dump's
 * spawner and state_since. */
struct weft_task {
    struct ctx ctx;             /* saved registers while not running */
    struct stack *stack;        /* NULL until it first runs */
    struct weft_runtime *rt;
    union {
        /* Running: the worker running it (set by whoever resumes it). */
        struct worker *worker;
        /* Queued in the inject queue, or free in a batch of task structs
         * (taskmem.c): on a batch's first task, the batch's last, so that
         * a pop takes whole batches without walking the list. */
        struct weft_task *qlast;
    };
    union {
        /* Spawned, not started: the body. Read once at its first run,
         * before TASK_STARTED is set. */
        struct {
            weft_fn fn;
            void *arg;
        };
        /* Started. */
        struct {
            /* Why it parks (a reason word, sched/wait.h: kind, and a
             * descriptor wait's call, direction and descriptor), for
             * dumps, which read it only after seeing TASK_STARTED; the
             * owner writes. */
            _Atomic uint64_t wait_why;
            int64_t deadline;   /* innermost scope deadline; owner only */
        };
    };
    _Atomic uint32_t park;      /* enum park_state */
    _Atomic uint32_t flags;     /* enum task_flags */
    /* Handle + life: freed at 0. Task memory is type-stable (taskmem.c):
     * a struct stays a task struct until the runtime is freed, so a
     * walker may take a reference on any struct whose count is not 0
     * (weft__task_tryref) and find a live task. */
    _Atomic uint32_t refs;
    union {
        int status;             /* body's return value, once TASK_DONE */
        uint32_t qlen;          /* queued or free: a batch's length, on
                                   its first task (see qlast) */
    };
    _Atomic(void *) joiner;     /* who waits for the end (see above) */
    union {
        /* Queued in the inject queue, or free: the link. */
        struct weft_task *qnext;
        /* Parked (a dead phase of qnext: a parked task is in no queue):
         * the object its wait is on, for dumps (diag/dump.c), which read
         * it only while holding the task parked (PARK_HELD). Written by
         * the task before it parks; its meaning depends on wait_why. */
        _Atomic uint64_t wait_obj;
    };
    uint64_t id;
    uint64_t spawner;           /* id of the task that spawned it, 0 from
                                   a plain thread; set once at spawn */
    /* When it was spawned or last parked, for the dump's time in state:
     * the worker's clock_cache (a coarse clock read at each maintenance
     * pass, so at most 61 switches old: reading a clock on every park
     * costs spawn_join 10 %). Owner writes, dumps read. */
    _Atomic int64_t state_since;
    char *name;                 /* NULL, or WEFT__TASK_NAME bytes from the
                                   first weft_task_set_name, written under
                                   rt->name_lock, freed with the struct */
    unsigned deadline_depth;    /* deadline scopes entered; owner only */
    unsigned deadline_floor;    /* scopes at or below this depth were
                                   entered outside the innermost
                                   weft_shield; owner only */
    uint16_t shield;            /* internal holds: cancellation and
                                   deadlines ignored; owner only */
    uint16_t cancel_shield;     /* weft_shield depth: cancellation held
                                   back; owner only */
#ifdef WEFT__QCHECK
    _Atomic uint32_t queued;    /* 1 from being made runnable until it
                                   runs (weft__qcheck_*) */
#endif
} WEFT__ALIGNED_CL;

/* Bytes of a task name, with its NUL (longer names are cut). */
#define WEFT__TASK_NAME 32

/* ASan's fake-stack save slot of the running task t: its stack's (an
 * ASan build, or a plain one in a program built with ASan: checker.h). */
static inline void **weft__task_fake_slot(struct weft_task *t) { return &t->stack->asan_fake; }

#ifdef WEFT__QCHECK
WEFT__NOINLINE void weft__qcheck_fail(struct weft_task *t, const char *what);
/* t is made runnable (pushed to a run queue, the inject queue or a next
 * slot). Relaxed: t's owner-to-be reads it after the queue's own
 * synchronisation. */
static inline void weft__qcheck_enqueue(struct weft_task *t)
{
    if (atomic_load_explicit(&t->flags, memory_order_relaxed) & TASK_DONE)
        weft__qcheck_fail(t, "a finished task was queued");
    if (atomic_exchange_explicit(&t->queued, 1, memory_order_relaxed))
        weft__qcheck_fail(t, "a task was made runnable twice (in two queues)");
}
/* t is about to run, taken from wherever it was queued. */
static inline void weft__qcheck_run(struct weft_task *t)
{
    if (!atomic_exchange_explicit(&t->queued, 0, memory_order_relaxed))
        weft__qcheck_fail(t, "a task ran that was not runnable (taken twice)");
}
/* t leaves the run set without running (ended unstarted). */
static inline void weft__qcheck_drop(struct weft_task *t)
{
    atomic_store_explicit(&t->queued, 0, memory_order_relaxed);
}
#else
static inline void weft__qcheck_enqueue(struct weft_task *t) { (void)t; }
static inline void weft__qcheck_run(struct weft_task *t) { (void)t; }
static inline void weft__qcheck_drop(struct weft_task *t) { (void)t; }
#endif

/* Adds n to a counter that only the calling thread writes (no RMW). */
static inline void weft__count(_Atomic uint64_t *c, uint64_t n, memory_order order)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, order);
}

/* Fields are grouped by who touches them: the run queue's ends (own
 * lines, in struct deque); what peers read (thieves, the monitor) on a
 * line of its own; then what only the owner touches on every switch. */
struct worker {
    struct deque q;                        /* local run queue */
    /* Read by peers and the monitor (sysmon.c). */
    _Atomic(struct weft_task *) next WEFT__ALIGNED_CL; /* next slot: last
                                              woken task */
    _Atomic uint32_t tick;                 /* switches; owner writes, read
                                              by the monitor to spot a
                                              stuck worker */
    _Atomic uint32_t n_maint;              /* maintenance passes (inject,
                                              timers, reactor); likewise */
    struct weft_runtime *rt;
    unsigned index;
    /* The owner's, written on every switch. */
    int *errno_loc WEFT__ALIGNED_CL;       /* this thread's errno */
    bool next_woken;                       /* what the owner last put in
                                              next had started (a wake-up,
                                              not a spawn); owner only */
    bool is_single;                        /* rt->n_workers == 1 */
    bool slow_on;                          /* rt->slow_task_ns > 0 */
    bool force_maint;                      /* next loop pass: inject,
                                              timers, reactor first */
    bool stack_starved;                    /* a task found no memory for
                                              a stack: back off (worker.c) */
    unsigned next_uses;                    /* next-slot runs in a row */
    unsigned poll_defers;                  /* maintenance polls deferred
                                              in a row (worker.c) */
    unsigned n_front;                      /* front-pushed tasks in q
                                              (approximate, run.c) */
    unsigned front_streak;                 /* of them, run in a row */
    uint64_t rng;                          /* victim choice */
    int64_t clock_cache;                   /* weft__clock_coarse_ns() at
                                              the last maintenance pass:
                                              the time a task parking or
                                              spawned here is stamped with
                                              (state_since); owner only */
    uint64_t id_next, id_end;              /* task ids left in this
                                              worker's block (task.c) */
    _Atomic(struct weft_task *) current;   /* running task or NULL; owner
                                              writes (relaxed), dumps read */
    /* Post-switch action, set by the context that switches away and run
     * by the one that lands (switch.c). */
    int pending;
    struct weft_task *pending_task;
    void (*commit)(void *);
    void *commit_arg;
    struct ctx sched_ctx;                  /* the worker loop's context */
    void *sched_fiber;                     /* TSan fiber of the loop */
    void *sched_fake;                      /* ASan fake-stack save */
    void *sched_stack_lo;                  /* thread stack, for ASan */
    size_t sched_stack_size;
    pthread_t thread;
    struct stack_cache stacks;
    struct weft_task *free_tasks;          /* cache of task structs: */
    struct weft_task *free_tail;           /* its last (when non-empty), */
    unsigned n_free_tasks;                 /* its length; */
    struct weft_task *spare_tasks;         /* a full batch, or NULL, */
    struct weft_task *spare_tail;          /* and its last (taskmem.c) */
    struct timer_heap timers;
    struct poller poller;
    /* Counters, written by the owner only (relaxed), read by stats. */
    _Atomic uint64_t n_run, n_steals, n_parks, n_polls;
    /* Tasks spawned from this worker and tasks ended on it, written by
     * the owner only; n_finished with release (weft__task_live_count). */
    _Atomic uint64_t n_spawned, n_finished;
    /* Slow-task warning (diag.c), written by the owner only while
     * rt->slow_task_ns > 0: a seqlock over the current run stretch.
     * stretch_seq is odd while stretch_task runs (since stretch_start),
     * even between tasks. */
    _Atomic uint64_t stretch_seq;
    _Atomic int64_t stretch_start;
    _Atomic(struct weft_task *) stretch_task;
    _Atomic uint64_t slow_warned;          /* stretch_seq warned about */
    /* Signals (signal.c): the mask the thread started with, and the
     * generation of weft's caught set its mask follows; owner only. */
    sigset_t sig_orig;
    unsigned sig_gen;
} WEFT__ALIGNED_CL;

struct exec_pool;
struct slow_monitor;

struct sysmon;

struct weft_runtime {
    /* Read-mostly, by every worker. */
    unsigned n_workers;
    struct worker *workers;
    struct stack_pool stacks;
    _Atomic bool shutdown;
    /* The shared FIFO; its own lines (its lock and length are written by
     * every push and pop). */
    struct inject inject WEFT__ALIGNED_CL;
    /* Who searches, who sleeps (idle.h); its own lines. */
    struct idle idle;
    struct sysmon *sysmon;      /* sysmon.c; NULL with one worker */
    /* Tasks are found through their memory (weft__task_for_each) and
     * counted per worker (n_spawned, n_finished); these are the tasks
     * spawned from plain threads. */
    _Atomic uint64_t n_spawned_ext WEFT__ALIGNED_CL;
    struct spin name_lock;      /* task names: set_name, dumps, warnings */
    _Atomic uint64_t next_id;
    pthread_mutex_t close_lock; /* with close_cond: runtime_free waits */
    pthread_cond_t close_cond;
    /* Threads outside rt's workers that may still touch one of rt's task
     * structs after it ended (weft__runtime_hold), and whether
     * runtime_free has stopped waiting for them; under close_lock. */
    unsigned n_holds;
    bool sealed;
    _Atomic bool closing;       /* runtime_free started */
    int64_t slow_task_ns;       /* 0 = off */
    struct slow_monitor *monitor; /* diag.c; NULL when off */
    int64_t blocking_shutdown_ns; /* runtime_free's bound on running
                                     blocking jobs; INT64_MAX = none */
    /* Task memory (taskmem.c): chunks, and the shared free list. */
    pthread_mutex_t task_lock;
    struct task_chunk *task_chunks;
    unsigned n_task_chunks;
    struct weft_task *task_bump;     /* uncarved structs of the newest */
    struct weft_task *task_bump_end; /* chunk (taskmem.c) */
    struct weft_task *free_tasks;
    unsigned long n_free_tasks;
    struct task_quarantine *quarantine; /* sanitizer builds (taskmem.c) */
    unsigned blocking_max;
    struct exec_pool *pool;     /* blocking pool (exec/pool.c) */
    struct sigrt *signals;      /* signal.c: made by the first
                                   weft_signal_wait; its lock */
};

/* ---- worker.c, run.c, switch.c, wake.c: who runs next, park and wake ---- */

/* The worker of the calling thread, or NULL. Never inlined, so that a task
 * that migrates between threads re-reads it after every switch (a cached
 * TLS address would point at the old thread's). */
struct worker *weft__worker_self(void);
/* The running task, or NULL on a plain thread. */
struct weft_task *weft__task_self(void);

/* Makes t runnable. From a worker of t's runtime it goes to that worker's
 * next slot (front = true, message-passing locality) or the back of its
 * queue; from anywhere else to the inject queue. Wakes an idle worker when
 * nobody is searching. */
void weft__schedule(struct weft_task *t, bool front);
/* The same, w being the calling thread's worker (or NULL). */
void weft__schedule_on(struct worker *w, struct weft_task *t, bool front);

/* Parks the calling task self until woken, or until `deadline` (instant;
 * or the task's deadline scope, whichever is earlier) passes, or it is
 * cancelled. commit(arg) (may be NULL) runs once the switch away has
 * completed. If the task is already cancelled or past a deadline, commit
 * runs and it returns at once. why is the reason word (sched/wait.h) and
 * obj what a dump shows as the object waited on (a primitive, the task
 * joined, a sleep's end instant, a blocking job). Callers re-check their
 * condition and weft__interrupted() afterwards; waits are built on
 * sched/wait.h (weft__wait_block), which parks through here, and only a
 * sleep parks directly. */
void weft__park_obj(struct weft_task *self, void (*commit)(void *), void *arg, int64_t deadline,
                    uint64_t why, uint64_t obj);
/* Wakes t if it is parking or parked; otherwise does nothing. Any thread. */
void weft__wake(struct weft_task *t);
/* The same; a parked t goes to the calling worker's next slot (front) or
 * the back of its queue (wake.c). */
void weft__wake_to(struct weft_task *t, bool front);
/* -ECANCELED if the calling task is cancelled (not inside weft_shield),
 * -ETIMEDOUT if its deadline scope has passed (inside weft_shield only the
 * scopes entered there count), else 0; always 0 under an internal hold
 * (self->shield). Inline: every suspension point asks. */
int weft__deadline_passed(const struct weft_task *self);
static inline int weft__interrupted(struct weft_task *self)
{
    if (self->shield)
        return 0;
    /* seq_cst: pairs with weft_cancel's seq_cst fetch_or of TASK_CANCELLED
     * (a waiter that misses the flag here is woken by its weft__wake). */
    if (!self->cancel_shield &&
        (atomic_load_explicit(&self->flags, memory_order_seq_cst) & TASK_CANCELLED))
        return -ECANCELED;
    if (WEFT__UNLIKELY(self->deadline != INT64_MAX) && weft__deadline_passed(self))
        return -ETIMEDOUT;
    return 0;
}
/* The deadline weft__park will honour for self: min(scope, deadline). */
int64_t weft__effective_deadline(struct weft_task *self, int64_t deadline);
/* Puts the running task at the back of its worker's queue and runs others. */
void weft__yield_now(void);
/* The same for self, the calling task (saves the thread-local look-up). */
void weft__yield_self(struct weft_task *self);

/* Tasks one timer pass woke, to be pushed together: chained through
 * qnext in the order they fired. */
struct wake_batch {
    struct weft_task *head, *tail;
    size_t n;
};
/* The fire callback of a park's timer (weft__timer_fire_due, ctx a
 * struct wake_batch): claims the parked task for the batch. */
void weft__park_timer_fire(struct timer *tm, void *batch);
/* Adds t to b if this wake is the one that makes it runnable (as
 * weft__wake_to would schedule it). */
void weft__wake_batch_add(struct wake_batch *b, struct weft_task *t);
/* Pushes b's tasks, in order, to the back of w's ring (w the calling
 * worker) as far as it has room, the rest (all of them when w is NULL or
 * of another runtime) before everything in the inject queue; with one
 * worker, to the back of its one FIFO. Then wakes at most one sleeping
 * worker for them all; empties b. */
void weft__wake_batch_flush(struct worker *w, struct wake_batch *b);

/* Worker threads (started/stopped by runtime.c). */
WEFT__MUST_CHECK int weft__worker_init(struct weft_runtime *rt, struct worker *w, unsigned index);
void weft__worker_destroy(struct worker *w);
void *weft__worker_main(void *w);
/* Wakes every worker (shutdown). */
void weft__workers_wake_all(struct weft_runtime *rt);

/* ---- taskmem.c ---- */

/* Task memory: from the calling worker's cache when it belongs to rt,
 * else from the runtime's list or chunks; released into the cache of the
 * worker that drops the last reference (bounded), else the runtime's
 * list. A struct's memory stays a task struct, with refs 0 while free,
 * until weft__task_memory_release. */
struct weft_task *weft__task_alloc(struct weft_runtime *rt);
/* The same, w being the calling thread's worker (or NULL). */
struct weft_task *weft__task_alloc_on(struct worker *w, struct weft_runtime *rt);
void weft__task_release(struct weft_task *t);
/* Takes a reference on t unless its count is 0 (t free). Acquire: a
 * success sees the fields its spawn initialised before publishing it. */
static inline bool weft__task_tryref(struct weft_task *t)
{
    uint32_t r = atomic_load_explicit(&t->refs, memory_order_relaxed);
    while (r != 0)
        /* Acquire: pairs with the spawn's release store of refs (task.c). */
        if (atomic_compare_exchange_weak_explicit(&t->refs, &r, r + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}
/* Calls fn(t, arg) for every task struct of rt allocated when the walk
 * began and not free when it got there (running, parked, queued, or
 * ended with its handle still held), holding a reference across the
 * call. Any thread; it never stops the workers. */
void weft__task_for_each(struct weft_runtime *rt, void (*fn)(struct weft_task *t, void *arg),
                         void *arg);
/* Frees all task memory of rt; called once every task has ended and the
 * workers are stopped. */
void weft__task_memory_release(struct weft_runtime *rt);

/* ---- runtime.c ---- */

/* Takes a hold on rt: weft_runtime_free waits, after the last task has
 * ended, until every hold is dropped before it releases task memory. For
 * code that is not one of rt's tasks and may still read or release a task
 * struct of rt after that task ended (a plain thread in block_on, a task
 * of another runtime joining one of rt's). With `live` set, refused when
 * rt is closing (no new work); always refused once runtime_free stopped
 * waiting. Returns whether the hold was taken. Any thread. */
bool weft__runtime_hold(struct weft_runtime *rt, bool live);
void weft__runtime_unhold(struct weft_runtime *rt);

/* ---- diag.c ---- */

/* Starts the slow-task monitor thread if rt->slow_task_ns > 0. Returns 0
 * or -errno. */
int weft__monitor_start(struct weft_runtime *rt);
/* Stops and joins it (no-op when off). */
void weft__monitor_stop(struct weft_runtime *rt);
/* ---- diag/dump.c ---- */

/* With WEFT_DUMP_SIGNAL set, registers rt for dumps on that signal
 * (starting the dump thread and the handler with the first runtime).
 * Returns 0 or -errno. */
int weft__dump_signal_start(struct weft_runtime *rt);
/* Unregisters rt (waits for a dump of it in progress); no-op when it was
 * not registered. */
void weft__dump_signal_stop(struct weft_runtime *rt);
/* The signal WEFT_DUMP_SIGNAL names, or 0 (unset or invalid). */
int weft__dump_signal_number(void);

/* ---- signal.c ---- */

/* Called by weft_runtime_free once rt's tasks and workers have ended:
 * forgets rt's signal waits and restores the dispositions no other
 * runtime needs. */
void weft__signal_runtime_stop(struct weft_runtime *rt);

/* Bumped whenever the set of signals weft catches changes: a worker
 * whose sig_gen differs brings its mask up to date. */
extern _Atomic unsigned weft__signal_gen;

/* Called by a worker thread once at start: records its mask. */
void weft__signal_worker_init(struct worker *w);
/* Unblocks on w's thread the signals w's runtime waited on, so that a
 * signal aimed at this thread (raise, pthread_kill) is caught too. */
void weft__signal_worker_sync(struct worker *w);

static inline void weft__signal_worker_check(struct worker *w)
{
    /* Relaxed: a stale look only delays the sync to the next pass; the
     * sync itself reads the set under signal.c's lock. */
    if (WEFT__UNLIKELY(atomic_load_explicit(&weft__signal_gen, memory_order_relaxed) != w->sig_gen))
        weft__signal_worker_sync(w);
}

/* Prints the one slow-task line to stderr. */
void weft__slow_report(struct weft_runtime *rt, unsigned worker, uint64_t id, const char *name,
                       int64_t ran_ns, bool still_running);

/* ---- task.c ---- */

/* Creates and schedules a task on rt. NULL + errno on failure. */
struct weft_task *weft__task_spawn(struct weft_runtime *rt, weft_fn fn, void *arg);
/* Called on the worker after the task's final switch away: publishes the
 * end, wakes the joiner, drops the life reference. */
void weft__task_finish(struct worker *w, struct weft_task *t);
/* The body trampoline's user part: runs fn and records status. */
void weft__task_run_body(struct weft_task *t);
/* Drops one reference; frees at zero. */
void weft__task_unref(struct weft_task *t);
/* Cancels every live task of rt (shutdown). */
void weft__task_cancel_all(struct weft_runtime *rt);
/* Live tasks of rt now. */
uint64_t weft__task_live_count(struct weft_runtime *rt);
/* Tasks spawned so far (stats). */
uint64_t weft__task_spawned_count(struct weft_runtime *rt);
/* Copies t's name (or "") into buf, NUL-ended, under rt->name_lock; the
 * caller holds a reference to t. */
void weft__task_copy_name(struct weft_task *t, char buf[WEFT__TASK_NAME]);
/* Waits until t has ended or something interrupts the caller. Returns 0
 * (t ended), 1 (deadline passed), -ECANCELED or -ETIMEDOUT (the caller's
 * cancellation or deadline scope). With `hold` set, only t's end counts
 * (cancellation held back). Task only; the caller keeps its reference. */
int weft__task_wait(struct weft_task *self, struct weft_task *t, int64_t deadline, bool hold);
/* Joins t after the caller was interrupted: cancels t, waits for its end
 * (uninterruptibly) and drops the handle. */
void weft__task_cancel_and_reap(struct weft_task *self, struct weft_task *t);
/* True once t has ended (joiner DONE). Acquire: pairs with the acq_rel
 * exchange in weft__task_finish; t's status is visible after it returns
 * true. */
static inline bool weft__task_ended(struct weft_task *t)
{
    return atomic_load_explicit(&t->joiner, memory_order_acquire) == WEFT__JOIN_DONE;
}
/* A wait for t's end besides (or instead of) its joiner: any number of
 * them, kept outside the task struct in a table of lists hashed by t's
 * address (task.c), so that the struct keeps its size. A clause of the
 * waiter's wait (first: a select's case storage reads its result at the
 * same offset as its other clauses'), on the waiter's stack. */
struct end_waiter {
    struct weft__clause cl;  /* in its bucket, under the bucket's lock;
                                handed t's status (t may be joined and
                                freed soon after) */
    struct weft_task *t;     /* the task waited for */
};
/* Queues w (its clause initialised) for t's end; false, queueing nothing,
 * when t has already ended (w->cl.result is then t's status). */
bool weft__task_end_enqueue(struct weft_task *t, struct end_waiter *w);
/* Takes w off its queue if t's end has not (the wait's claim says
 * whether t's end won it). */
void weft__task_end_withdraw(struct end_waiter *w);
/* Registers the clause cl (sole, of a task's or a plain thread's wait) as
 * t's joiner: 1 when done, 0 when t has ended already, -EINVAL when
 * another waiter is t's joiner. */
int weft__task_join_enqueue(struct weft_task *t, struct weft__clause *cl);

/* The second part of sched/wait.h (its waiting loop), which needs the
 * declarations above. */
#define WEFT_SCHED_SCHED_H_DONE
#include "sched/wait.h"

#endif /* WEFT_SCHED_SCHED_H */
