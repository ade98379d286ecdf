/* SPDX-License-Identifier: MIT */
/* Switching: a task's registers are saved only here (yield, park, exit),
 * and whatever must
 * wait until they are saved (requeueing a yielding task, committing a
 * park, finishing a task) is done by the context that lands, in
 * post_switch (Go's gopark with an unlock function).
 *
 * errno is saved and restored per task through the address of the
 * worker thread's errno (w->errno_loc, taken once by the thread itself),
 * never through `errno` in code that switches: glibc declares
 * __errno_location() const, so a function that migrates mid-way could keep
 * using the previous thread's address (GCC PR 26461). After a switch the
 * worker is re-read from the task (self->worker), not from a register. */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>

#include "ctx/checker.h"
#include "sched/run.h"
#include "sched/switch.h"
#include "util/clock.h"

#define WEFT__MAINT_INTERVAL 61u /* switches between maintenance passes */

enum { PEND_NONE, PEND_REQUEUE, PEND_PARK, PEND_EXIT };

#ifdef WEFT__QCHECK
void weft__qcheck_fail(struct weft_task *t, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof msg, "run queue check: %s (task %" PRIu64 ")", what, t->id);
    weft__panic(__FILE__, __LINE__, msg);
}
#endif

static inline uint32_t tick_bump(struct worker *w)
{
    uint32_t t = atomic_load_explicit(&w->tick, memory_order_relaxed) + 1;
    atomic_store_explicit(&w->tick, t, memory_order_relaxed);
    return t;
}

static void task_entry(void);

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
        /* Acquire: pairs with weft_runtime_free's seq_cst store of closing. */
        if (atomic_load_explicit(&w->rt->closing, memory_order_acquire)) {
            weft__qcheck_drop(t);
            t->status = -ENOMEM;
            weft__task_finish(w, t);
        } else {
            weft__inject_push(&w->rt->inject, t); /* still runnable */
            w->stack_starved = true;
        }
        return false;
    }
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
    weft__qcheck_run(t);
    atomic_store_explicit(&w->current, t, memory_order_relaxed);
    t->worker = w;
    weft__count(&w->n_run, 1, memory_order_relaxed);
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
        weft__qcheck_enqueue(t);
        weft__push_local(w, t);
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
            weft__qcheck_enqueue(t);
            weft__push_local(w, t);
        }
        break;
    }
    case PEND_EXIT:
        finish_exit(w, t);
        break;
    }
}

/* Out of line, on the task's stack: its frame is where the task's stack
 * pointer is. */
static WEFT__NOINLINE void check_stack(struct weft_task *self)
{
    if (!weft__stack_overflowed(self->stack, __builtin_frame_address(0)))
        return;
    char name[WEFT__TASK_NAME];
    weft__task_copy_name(self, name);
    weft__stack_overflow_abort(self->id, name, self->stack,
                               "found at a switch: its stack has no guard page");
}

/* Switches the running task self away with `action` done after the
 * switch; returns when self is resumed (maybe on another worker). */
static inline __attribute__((always_inline)) void switch_out(struct worker *w,
                                                             struct weft_task *self, int action)
{
    /* On our stack, which the switch keeps. */
    int saved_errno = *w->errno_loc;
    /* A stack without a guard page has a canary instead (ctx/stack.h):
     * an overflow is named here, before another task runs on the memory
     * it may have overwritten. One relaxed load while all are guarded. */
    if (WEFT__UNLIKELY(weft__stack_any_unguarded(&w->rt->stacks)))
        check_stack(self);
    if (WEFT__UNLIKELY(w->slow_on))
        stretch_end(w, self);
    w->pending = action;
    w->pending_task = self;
    struct weft_task *next = NULL;
    if (tick_bump(w) % WEFT__MAINT_INTERVAL != 0) {
        next = weft__pick_local(w);
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

void weft__run_from_loop(struct worker *w, struct weft_task *t)
{
    if (!prepare_run(w, t))
        return;
    tick_bump(w);
    mark_running(w, t);
    weft__checker_start_switch(&w->sched_fake, t->stack->lo, t->stack->size);
    weft__checker_fiber_switch(t->stack->fiber);
    weft__ctx_switch(&w->sched_ctx, &t->ctx);
    weft__checker_finish_switch(w->sched_fake);
    post_switch(w);
}

/* The timer of a park with a deadline: on the parked task's stack, which
 * stays put while it waits (park). */
struct park_timer {
    struct timer tm;
    struct weft_task *task;
};

/* Timer wakes go to the back of the ring, in the order they fired (ticks
 * in order, one tick's timers in arming order), as one batch
 * (weft__wake_batch_flush; what the ring has no room for goes before the
 * inject queue's backlog): sleepers due together run in the order they
 * were due (asyncio's order with one worker), not last-fired-first
 * through the next slot. */
void weft__park_timer_fire(struct timer *tm, void *batch)
{
    weft__wake_batch_add(batch, weft__container_of(tm, struct park_timer, tm)->task);
}

/* Is dl over? w->clock_cache (this pass's clock, never ahead of the
 * clock) answers for deadlines before it or far after it; only one near
 * it costs a clock read. One that is over but not seen so (the cache
 * more than WEFT__DEADLINE_NEAR_NS old) is armed, and fires at the next
 * timer pass (never early, only later than the read would have said). */
#define WEFT__DEADLINE_NEAR_NS (8 * 1000 * 1000)
static inline bool deadline_over(const struct worker *w, int64_t dl)
{
    int64_t now = w->clock_cache;
    if (dl <= now)
        return true;
    return dl - now <= WEFT__DEADLINE_NEAR_NS && dl <= weft__clock_ns();
}

/* weft__interrupted without its deadline half. */
static inline bool cancelled(struct weft_task *self)
{
    /* seq_cst: pairs with weft_cancel's fetch_or (see weft__park_prepare). */
    return !self->shield && !self->cancel_shield &&
           (atomic_load_explicit(&self->flags, memory_order_seq_cst) & TASK_CANCELLED);
}

/* The park; obj is what a dump shows as the object waited on. */
static inline __attribute__((always_inline)) void park(struct weft_task *self,
                                                       void (*commit)(void *), void *arg,
                                                       int64_t deadline, uint64_t why,
                                                       uint64_t obj)
{
    struct worker *w = self->worker;
    int64_t dl = weft__effective_deadline(self, deadline);
    bool armed = false;
    struct park_timer pt;
    if (dl != INT64_MAX) {
        pt.tm.deadline = 0;
        pt.tm.idx = 0;
        pt.tm.arg = self;
        atomic_init(&pt.tm.heap, NULL);
        pt.task = self;
    }
    /* The scope's deadline is in dl: deadline_over asks for it, without
     * the clock read of weft__interrupted (the caller has just asked). */
    if (cancelled(self) ||
        (dl != INT64_MAX && (deadline_over(w, dl) ||
                             !(armed = weft__timer_arm(&w->timers, &pt.tm, dl) == 0)))) {
        /* Not parking. A wake that came meanwhile (NOTIFIED) stays
         * pending for the next park, which then returns at once: clearing
         * it here would lose a wake whose waker's writes this task has
         * not acquired (a plain store does not synchronise with its CAS),
         * e.g. a claim's (sched/wait.h) that the wait is about to miss. */
        if (commit)
            commit(arg);
        return;
    }
    atomic_store_explicit(&self->wait_why, why, memory_order_relaxed);
    /* Relaxed: a dump reads both after its acquire CAS on the park word,
     * which pairs with post_switch's release CAS to PARKED. */
    atomic_store_explicit(&self->wait_obj, obj, memory_order_relaxed);
    atomic_store_explicit(&self->state_since, w->clock_cache, memory_order_relaxed);
    w->commit = commit;
    w->commit_arg = arg;
    switch_out(w, self, PEND_PARK);
    atomic_store_explicit(&self->wait_why, 0, memory_order_relaxed);
    if (armed)
        weft__timer_disarm(&pt.tm); /* before pt goes out of scope */
}

void weft__park_obj(struct weft_task *self, void (*commit)(void *), void *arg, int64_t deadline,
                    uint64_t why, uint64_t obj)
{
    park(self, commit, arg, deadline, why, obj);
}

void weft__yield_self(struct weft_task *self) { switch_out(self->worker, self, PEND_REQUEUE); }

void weft__yield_now(void) { weft__yield_self(weft__task_self()); }
