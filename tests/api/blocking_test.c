/* SPDX-License-Identifier: MIT */
/* The public contract of weft_run_blocking (include/weft/blocking.h) and of
 * runtime_free's handling of blocking jobs (include/weft/runtime.h): calls
 * overlap while the workers keep running tasks, the pool ceiling holds,
 * cancellation waits for a running fn and drops a queued one, shutdown
 * drops what has not started and is bounded for what runs, misuse. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>

#include "harness.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static bool atomic_flag_set(void *flag)
{
    return atomic_load((atomic_bool *)flag);
}

/* --- results and arguments --------------------------------------------- */

static int return_arg_status(void *arg)
{
    return *(int *)arg;
}

static int write_through_arg(void *arg)
{
    int *p = arg;
    *p = *p * 2 + 1;
    return 0;
}

static int returns_fn_status_and_writes(void *arg)
{
    (void)arg;
    int v = 42;
    HCHECK_INT_EQ(weft_run_blocking(return_arg_status, &v), 42);
    v = -EIO;
    HCHECK_INT_EQ(weft_run_blocking(return_arg_status, &v), -EIO);
    v = 20;
    HCHECK_INT_EQ(weft_run_blocking(write_through_arg, &v), 0);
    HCHECK_INT_EQ(v, 41);
    return 0;
}

START_TEST(run_blocking_returns_fn_status_and_its_writes)
{
    unsigned workers = harness_workers_variant(_i);
    ck_assert_int_eq(harness_run(workers, returns_fn_status_and_writes, NULL), 0);
}
END_TEST

/* --- overlap with a single busy worker ---------------------------------- */

#define N_OVERLAP 8

struct overlap {
    atomic_bool stop;
    atomic_long yields;
    atomic_int running, max_running;
};

static int sleep_200ms_counting(void *arg)
{
    struct overlap *o = arg;
    int now = atomic_fetch_add(&o->running, 1) + 1;
    int m = atomic_load(&o->max_running);
    while (now > m && !atomic_compare_exchange_weak(&o->max_running, &m, now))
        ;
    sleep_ms(200);
    atomic_fetch_sub(&o->running, 1);
    return 7;
}

static int call_blocking_200ms(void *arg)
{
    return weft_run_blocking(sleep_200ms_counting, arg);
}

static int count_yields(void *arg)
{
    struct overlap *o = arg;
    while (!atomic_load(&o->stop)) {
        if (weft_yield() != 0)
            return -1;
        atomic_fetch_add(&o->yields, 1);
    }
    return 0;
}

struct overlap_result {
    struct overlap o;
    int64_t elapsed_ns;
    long yields_during;
};

static int overlap_main(void *arg)
{
    struct overlap_result *r = arg;
    weft_task *counter = weft_spawn(count_yields, &r->o);
    HREQUIRE(counter != NULL, -1);
    /* Let the counter run first, so that it is busy all along. */
    HYIELD_UNTIL(atomic_load(&r->o.yields) > 0);
    long before = atomic_load(&r->o.yields);
    int64_t start = harness_now_ns();
    weft_task *t[N_OVERLAP];
    for (int i = 0; i < N_OVERLAP; i++) {
        t[i] = weft_spawn(call_blocking_200ms, &r->o);
        HREQUIRE(t[i] != NULL, -1);
    }
    for (int i = 0; i < N_OVERLAP; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 7);
    r->elapsed_ns = harness_now_ns() - start;
    r->yields_during = atomic_load(&r->o.yields) - before;
    atomic_store(&r->o.stop, true);
    HCHECK_INT_EQ(weft_join(counter), 0);
    return 0;
}

/* Eight 200 ms calls from tasks of a single worker overlap on the pool
 * (1.6 s if run one after another; the bound leaves room for a loaded
 * machine), and that worker keeps running another task meanwhile. */
START_TEST(blocking_calls_overlap_while_worker_runs_tasks)
{
    struct overlap_result r = {.elapsed_ns = 0};
    ck_assert_int_eq(harness_run(1, overlap_main, &r), 0);
    harness_assert_clean();
    ck_assert_msg(r.elapsed_ns < INT64_C(1500000000), "8 x 200 ms took %.3f s",
                  (double)r.elapsed_ns / 1e9);
    ck_assert_int_ge(r.elapsed_ns, INT64_C(200000000));
    ck_assert_int_ge(atomic_load(&r.o.max_running), 2);
    ck_assert_msg(r.yields_during > 100, "the other task yielded only %ld times",
                  r.yields_during);
}
END_TEST

/* --- the ceiling --------------------------------------------------------- */

#define N_CEILING_TASKS 10
#define CEILING 3

static int sleep_50ms_counting(void *arg)
{
    struct overlap *o = arg;
    int now = atomic_fetch_add(&o->running, 1) + 1;
    int m = atomic_load(&o->max_running);
    while (now > m && !atomic_compare_exchange_weak(&o->max_running, &m, now))
        ;
    /* The first fns hold their threads until the ceiling has been reached
     * once (a loaded machine may be slow to start the third thread), so
     * that a fourth would have every chance to run beside them. */
    int64_t give_up = harness_now_ns() + harness_wait_ns();
    while (atomic_load(&o->max_running) < CEILING && harness_now_ns() < give_up)
        sleep_ms(1);
    sleep_ms(50);
    atomic_fetch_sub(&o->running, 1);
    return 0;
}

static int call_blocking_50ms(void *arg)
{
    return weft_run_blocking(sleep_50ms_counting, arg);
}

static int ceiling_main(void *arg)
{
    weft_task *t[N_CEILING_TASKS];
    for (int i = 0; i < N_CEILING_TASKS; i++) {
        t[i] = weft_spawn(call_blocking_50ms, arg);
        HREQUIRE(t[i] != NULL, -1);
    }
    weft_stats st;
    HCHECK_INT_EQ(weft_runtime_stats(weft_runtime_current(), &st), 0);
    HCHECK(st.blocking_threads <= CEILING);
    for (int i = 0; i < N_CEILING_TASKS; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    HCHECK_INT_EQ(weft_runtime_stats(weft_runtime_current(), &st), 0);
    HCHECK(st.blocking_threads <= CEILING);
    HCHECK_INT_EQ(st.blocking_busy, 0);
    HCHECK_INT_EQ(st.blocking_queued, 0);
    return 0;
}

/* blocking_threads = 3: ten concurrent calls never run more than three fns
 * at once, and do reach three. */
START_TEST(pool_ceiling_is_respected)
{
    struct overlap o = {.stop = false};
    weft_options opt = {.workers = harness_workers_variant(_i), .blocking_threads = CEILING};
    ck_assert_int_eq(harness_run_opts(&opt, ceiling_main, &o), 0);
    harness_assert_clean();
    ck_assert_int_eq(atomic_load(&o.max_running), CEILING);
}
END_TEST

/* --- cancellation -------------------------------------------------------- */

struct slow_fn {
    atomic_bool started, finished, release, ran;
    int sleep_ms;
};

/* Runs until released (or sleep_ms, if set), then records its end. */
static int slow_fn_body(void *arg)
{
    struct slow_fn *f = arg;
    atomic_store(&f->started, true);
    atomic_store(&f->ran, true);
    if (f->sleep_ms) {
        sleep_ms(f->sleep_ms);
    } else {
        while (!atomic_load(&f->release))
            sleep_ms(1);
    }
    atomic_store(&f->finished, true);
    return 5;
}

struct blocking_caller {
    struct slow_fn *fn;
    atomic_bool calling;
    atomic_int rc;
    atomic_bool finished_at_return;
    atomic_bool returned;
};

static int call_slow_fn(void *arg)
{
    struct blocking_caller *c = arg;
    atomic_store(&c->calling, true);
    int rc = weft_run_blocking(slow_fn_body, c->fn);
    atomic_store(&c->finished_at_return, atomic_load(&c->fn->finished));
    atomic_store(&c->rc, rc);
    atomic_store(&c->returned, true);
    return rc;
}

static int cancel_running_main(void *arg)
{
    (void)arg;
    /* fn runs until released (a timed fn could end before the cancel on a
     * loaded machine, and the call would then return its status). */
    struct slow_fn f = {.sleep_ms = 0};
    struct blocking_caller c = {.fn = &f};
    weft_task *t = weft_spawn(call_slow_fn, &c);
    HREQUIRE(t != NULL, -1);
    while (!atomic_load(&f.started))
        HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), 0);
    weft_cancel(t);
    /* The cancelled call keeps waiting while fn runs. */
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(20)), 0);
    HCHECK(!atomic_load(&c.returned));
    atomic_store(&f.release, true);
    HCHECK_INT_EQ(weft_join(t), -ECANCELED);
    HCHECK_INT_EQ(atomic_load(&c.rc), -ECANCELED);
    /* The call returned only after fn had returned (arg stayed valid). */
    HCHECK(atomic_load(&c.finished_at_return));
    return 0;
}

START_TEST(cancel_during_blocking_call_returns_after_fn)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), cancel_running_main, NULL), 0);
}
END_TEST

static int cancel_queued_main(void *arg)
{
    (void)arg;
    /* The only pool thread is busy with a until it is released. */
    struct slow_fn fa = {.sleep_ms = 0}, fb = {.sleep_ms = 0};
    struct blocking_caller a = {.fn = &fa}, b = {.fn = &fb};
    weft_task *ta = weft_spawn(call_slow_fn, &a);
    HREQUIRE(ta != NULL, -1);
    while (!atomic_load(&fa.started))
        HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), 0);
    weft_task *tb = weft_spawn(call_slow_fn, &b);
    HREQUIRE(tb != NULL, -1);
    weft_stats st;
    for (int i = 0; i < 5000; i++) {
        HCHECK_INT_EQ(weft_runtime_stats(weft_runtime_current(), &st), 0);
        if (st.blocking_queued == 1)
            break;
        HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), 0);
    }
    HCHECK_INT_EQ(st.blocking_queued, 1);
    weft_cancel(tb);
    /* b's job is dropped from the queue: it returns although the only
     * thread is still busy with a's. */
    HCHECK_INT_EQ(weft_join(tb), -ECANCELED);
    HCHECK(!atomic_load(&fa.finished));
    HCHECK_INT_EQ(weft_runtime_stats(weft_runtime_current(), &st), 0);
    HCHECK_INT_EQ(st.blocking_queued, 0);
    atomic_store(&fa.release, true);
    HCHECK_INT_EQ(weft_join(ta), 5);
    /* Give a stray start of b's fn every chance to show. */
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(20)), 0);
    HCHECK(!atomic_load(&fb.ran));
    return 0;
}

/* A cancelled call whose job is still queued (ceiling reached) returns
 * -ECANCELED at once, and its fn never runs. */
START_TEST(cancel_of_queued_job_drops_it)
{
    weft_options opt = {.workers = harness_workers_variant(_i), .blocking_threads = 1};
    ck_assert_int_eq(harness_run_opts(&opt, cancel_queued_main, NULL), 0);
}
END_TEST

static int deadline_main(void *arg)
{
    (void)arg;
    struct slow_fn f = {.sleep_ms = 100};
    weft_deadline d;
    HCHECK_INT_EQ(weft_deadline_enter(&d, WEFT_MSEC(20)), 0);
    int rc = weft_run_blocking(slow_fn_body, &f);
    HCHECK_INT_EQ(rc, -ETIMEDOUT);
    /* Either fn ran and had finished before the call returned, or (a slow
     * machine, e.g. under TSan, had not started a pool thread within the
     * 20 ms) the job was dropped unstarted and fn never runs. */
    bool started = atomic_load(&f.started);
    HCHECK(!started || atomic_load(&f.finished));
    if (!started) {
        HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(150)), -ETIMEDOUT); /* scope still expired */
        HCHECK(!atomic_load(&f.ran));
    }
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    if (!started) {
        HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(150)), 0);
        HCHECK(!atomic_load(&f.ran));
    }
    return 0;
}

/* A deadline scope that passes during the call: -ETIMEDOUT, also only
 * after fn has returned. */
START_TEST(deadline_during_blocking_call_returns_after_fn)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), deadline_main, NULL), 0);
}
END_TEST

/* --- a blocked fn does not hold up other calls ------------------------------ */

static int noop(void *arg)
{
    (void)arg;
    return 0;
}

static int noop_then_block(void *arg)
{
    struct slow_fn *f = arg;
    if (weft_run_blocking(noop, NULL) != 0)
        return -1;
    return weft_run_blocking(slow_fn_body, f);
}

static int call_add_flag(void *arg)
{
    struct slow_fn *f = arg;
    return weft_run_blocking(slow_fn_body, f);
}

static int not_held_up_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 20; round++) {
        /* a's thread has just finished a job when it takes the blocking
         * one, so b's call may first be queued for it: it must still get
         * a thread of its own while a's fn blocks. */
        struct slow_fn fa = {.sleep_ms = 0}, fb = {.sleep_ms = 0};
        atomic_store(&fb.release, true);
        weft_task *a = weft_spawn(noop_then_block, &fa);
        weft_task *b = weft_spawn(call_add_flag, &fb);
        HREQUIRE(a != NULL && b != NULL, -1);
        HCHECK_INT_EQ(weft_join(b), 5); /* hangs if b waited for a's fn */
        HCHECK(!atomic_load(&fa.finished));
        atomic_store(&fa.release, true);
        HCHECK_INT_EQ(weft_join(a), 5);
    }
    return 0;
}

/* A call never waits for an unrelated fn that blocks, even when it was
 * queued for that fn's thread while the thread looked about to be free. */
START_TEST(blocked_fn_does_not_hold_up_other_calls)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), not_held_up_main, NULL), 0);
}
END_TEST

/* --- many calls ---------------------------------------------------------- */

#define N_MANY_TASKS 200
#define N_MANY_CALLS 50

static int add_one(void *arg)
{
    atomic_fetch_add((atomic_long *)arg, 1);
    return 0;
}

static int many_calls(void *arg)
{
    for (int i = 0; i < N_MANY_CALLS; i++)
        if (weft_run_blocking(add_one, arg) != 0)
            return -1;
    return 0;
}

static int many_main(void *arg)
{
    weft_task *t[N_MANY_TASKS];
    for (int i = 0; i < N_MANY_TASKS; i++) {
        t[i] = weft_spawn(many_calls, arg);
        HREQUIRE(t[i] != NULL, -1);
    }
    for (int i = 0; i < N_MANY_TASKS; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    return 0;
}

/* Ten thousand short calls from 200 tasks: none lost, none run twice. */
START_TEST(many_short_calls_all_complete)
{
    atomic_long n = 0;
    weft_options opt = {.workers = harness_workers_variant(_i), .blocking_threads = 4};
    ck_assert_int_eq(harness_run_opts(&opt, many_main, &n), 0);
    ck_assert_int_eq(atomic_load(&n), (long)N_MANY_TASKS * N_MANY_CALLS);
}
END_TEST

/* --- shutdown ------------------------------------------------------------ */

#define N_SHUT_RUNNING 2
#define N_SHUT_QUEUED 3

struct stats_arg {
    weft_runtime *rt;
    unsigned long queued;
};

static bool queued_reaches(void *arg)
{
    struct stats_arg *s = arg;
    weft_stats st;
    return weft_runtime_stats(s->rt, &st) == 0 && st.blocking_queued >= s->queued;
}

static bool all_started(void *arg)
{
    struct slow_fn *f = arg;
    for (int i = 0; i < N_SHUT_RUNNING; i++)
        if (!atomic_load(&f[i].started))
            return false;
    return true;
}

struct shut_release {
    struct slow_fn *f;
    struct blocking_caller *c;
    atomic_bool freeing;
};

static bool queued_calls_returned(void *arg)
{
    struct shut_release *r = arg;
    for (int i = N_SHUT_RUNNING; i < N_SHUT_RUNNING + N_SHUT_QUEUED; i++)
        if (!atomic_load(&r->c[i].returned))
            return false;
    return true;
}

/* Once runtime_free has begun and dropped the queued calls, lets the
 * running fns end (after 100 ms more, so that free really waits for them).
 * A timed fn could end before free on a loaded machine, and its thread
 * would then take a queued job. */
static void *release_running_fns(void *arg)
{
    struct shut_release *r = arg;
    harness_spin_until(atomic_flag_set, &r->freeing);
    harness_spin_until(queued_calls_returned, r);
    sleep_ms(100);
    for (int i = 0; i < N_SHUT_RUNNING; i++)
        atomic_store(&r->f[i].release, true);
    return NULL;
}

/* runtime_free with two calls running and three queued: the queued ones
 * are dropped (fn never runs, -ECANCELED), the running ones waited for
 * (-ECANCELED too, after fn), and it returns soon after those fns (which
 * run until a helper thread sees the queued calls dropped). */
START_TEST(shutdown_drops_queued_and_waits_for_running)
{
    /* No bound on the wait for running fns: the helper releases them. */
    weft_options opt = {.workers = 2, .blocking_threads = N_SHUT_RUNNING,
                        .blocking_shutdown_ns = -1};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    struct slow_fn f[N_SHUT_RUNNING + N_SHUT_QUEUED];
    struct blocking_caller c[N_SHUT_RUNNING + N_SHUT_QUEUED];
    memset(f, 0, sizeof f);
    memset(c, 0, sizeof c);
    for (int i = 0; i < N_SHUT_RUNNING + N_SHUT_QUEUED; i++) {
        c[i].fn = &f[i];
        atomic_store(&c[i].rc, 1);
    }
    struct shut_release rel = {.f = f, .c = c};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, release_running_fns, &rel), 0);
    for (int i = 0; i < N_SHUT_RUNNING; i++) {
        weft_task *t = weft_spawn_on(rt, call_slow_fn, &c[i]);
        ck_assert_ptr_nonnull(t);
        weft_detach(t);
    }
    ck_assert(harness_spin_until(all_started, f));
    for (int i = N_SHUT_RUNNING; i < N_SHUT_RUNNING + N_SHUT_QUEUED; i++) {
        weft_task *t = weft_spawn_on(rt, call_slow_fn, &c[i]);
        ck_assert_ptr_nonnull(t);
        weft_detach(t);
    }
    struct stats_arg sa = {.rt = rt, .queued = N_SHUT_QUEUED};
    ck_assert(harness_spin_until(queued_reaches, &sa));

    int64_t start = harness_now_ns();
    atomic_store(&rel.freeing, true);
    weft_runtime_free(rt);
    int64_t took = harness_now_ns() - start;
    pthread_join(th, NULL);
    for (int i = 0; i < N_SHUT_RUNNING; i++) {
        ck_assert(atomic_load(&c[i].returned));
        ck_assert_int_eq(atomic_load(&c[i].rc), -ECANCELED);
        ck_assert(atomic_load(&c[i].finished_at_return));
    }
    for (int i = N_SHUT_RUNNING; i < N_SHUT_RUNNING + N_SHUT_QUEUED; i++) {
        ck_assert(atomic_load(&c[i].returned));
        ck_assert_int_eq(atomic_load(&c[i].rc), -ECANCELED);
        ck_assert(!atomic_load(&f[i].ran));
    }
    /* Generous: the running fns were released 100 ms after the queued
     * calls had returned. */
    ck_assert_int_ge(took, INT64_C(100000000));
    ck_assert_msg(took < harness_scale_ns(INT64_C(3000000000)), "runtime_free took %.3f s",
                  (double)took / 1e9);
}
END_TEST


/* A fn that outlives the bound (blocking_shutdown_ns): runtime_free
 * returns while it still runs; the fn may keep using arg; once it returns,
 * the last pool thread releases the runtime and exits (LeakSanitizer and
 * valgrind check that nothing is left behind). */
START_TEST(shutdown_bound_abandons_a_stuck_fn)
{
    int n_before = harness_pool_threads();
    if (n_before < 0)
        return; /* no /proc: nothing to watch the pool thread with */
    ck_assert_int_eq(n_before, 0);
    weft_options opt = {.workers = 2, .blocking_shutdown_ns = WEFT_MSEC(100)};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    struct slow_fn *f = calloc(1, sizeof *f); /* outlives the runtime */
    struct blocking_caller *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(c);
    c->fn = f;
    weft_task *t = weft_spawn_on(rt, call_slow_fn, c);
    ck_assert_ptr_nonnull(t);
    weft_detach(t);
    ck_assert(harness_spin_until(atomic_flag_set, &f->started));

    int64_t start = harness_now_ns();
    weft_runtime_free(rt);
    int64_t took = harness_now_ns() - start;
    /* fn still runs (it waits for us), so the caller never returned. */
    ck_assert(!atomic_load(&f->finished));
    ck_assert(!atomic_load(&c->returned));
    ck_assert_int_ge(took, INT64_C(100000000));
    ck_assert_msg(took < INT64_C(5000000000), "runtime_free took %.3f s", (double)took / 1e9);

    atomic_store(&f->release, true);
    ck_assert(harness_spin_until(atomic_flag_set, &f->finished));
    /* The pool thread releases the runtime, then exits. */
    ck_assert(harness_spin_until(harness_no_pool_threads, NULL));
    ck_assert(!atomic_load(&c->returned));
    free(c);
    free(f);
}
END_TEST

/* --- the pool grows by what is needed ------------------------------------ */

#define N_GROW_CALLS 8

struct grow {
    atomic_int running;
    unsigned threads_after_one; /* blocking_threads after a single call */
    unsigned threads_after_all; /* after N_GROW_CALLS overlapping calls */
};

/* Holds its pool thread until every call of the round runs (so that they
 * all overlap and each needs a thread of its own), or the wait bound. */
static int hold_until_all_run(void *arg)
{
    struct grow *g = arg;
    atomic_fetch_add(&g->running, 1);
    int64_t give_up = harness_now_ns() + harness_wait_ns();
    while (atomic_load(&g->running) < N_GROW_CALLS && harness_now_ns() < give_up)
        sleep_ms(1);
    sleep_ms(5);
    return 0;
}

static int call_hold_until_all_run(void *arg)
{
    return weft_run_blocking(hold_until_all_run, arg);
}

static int single_call_fn(void *arg)
{
    (void)arg;
    sleep_ms(20);
    return 0;
}

static int grow_main(void *arg)
{
    struct grow *g = arg;
    weft_stats st;
    HCHECK_INT_EQ(weft_run_blocking(single_call_fn, NULL), 0);
    HCHECK_INT_EQ(weft_runtime_stats(weft_runtime_current(), &st), 0);
    g->threads_after_one = st.blocking_threads;
    weft_task *t[N_GROW_CALLS];
    for (int i = 0; i < N_GROW_CALLS; i++)
        HREQUIRE((t[i] = weft_spawn(call_hold_until_all_run, g)) != NULL, -1);
    for (int i = 0; i < N_GROW_CALLS; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    HCHECK_INT_EQ(weft_runtime_stats(weft_runtime_current(), &st), 0);
    g->threads_after_all = st.blocking_threads;
    return 0;
}

/* A call that finds no idle thread starts one; a call still queued while
 * that thread is starting (thread creation can take longer than the
 * pool's 100 us look-again delay, on a loaded machine or under valgrind)
 * must not start yet another at every look: one call needs one thread,
 * N_GROW_CALLS overlapping calls at most N_GROW_CALLS (it was up to 45). */
START_TEST(pool_starts_no_more_threads_than_calls)
{
    struct grow g = {.running = 0};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), grow_main, &g), 0);
    harness_assert_clean();
    ck_assert_int_eq(atomic_load(&g.running), N_GROW_CALLS);
    ck_assert_uint_eq(g.threads_after_one, 1);
    ck_assert_uint_le(g.threads_after_all, N_GROW_CALLS);
    ck_assert_uint_ge(g.threads_after_all, N_GROW_CALLS);
}
END_TEST

/* --- misuse -------------------------------------------------------------- */

static int null_fn_main(void *arg)
{
    (void)arg;
    HCHECK_INT_EQ(weft_run_blocking(NULL, NULL), -EINVAL);
    return 0;
}

START_TEST(run_blocking_misuse)
{
    int v = 1;
    ck_assert_int_eq(weft_run_blocking(return_arg_status, &v), -EPERM);
    ck_assert_int_eq(harness_run(1, null_fn_main, NULL), 0);
}
END_TEST

static int already_cancelled_main(void *arg)
{
    (void)arg;
    weft_cancel(weft_current());
    HCHECK_INT_EQ(weft_run_blocking(slow_fn_body, NULL), -ECANCELED);
    return 0;
}

/* A task already cancelled gets -ECANCELED and fn does not run (here fn
 * would crash on its NULL arg). */
START_TEST(run_blocking_when_already_cancelled)
{
    ck_assert_int_eq(harness_run(1, already_cancelled_main, NULL), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("blocking");
    TCase *tc = harness_tcase(s, "calls", 30);
    tcase_add_loop_test(tc, run_blocking_returns_fn_status_and_its_writes, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, pool_ceiling_is_respected, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, many_short_calls_all_complete, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, blocked_fn_does_not_hold_up_other_calls, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, pool_starts_no_more_threads_than_calls, 0,
                        HARNESS_N_WORKER_VARIANTS);

    /* Wall-clock bounds that valgrind (one thread at a time) and TSan
     * cannot meet: CK_EXCLUDE_TAGS=timing leaves them out there. */
    tc = harness_tcase(s, "timing", 30);
    tcase_set_tags(tc, "timing");
    tcase_add_test(tc, blocking_calls_overlap_while_worker_runs_tasks);

    tc = harness_tcase(s, "cancel", 30);
    tcase_add_loop_test(tc, cancel_during_blocking_call_returns_after_fn, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, cancel_of_queued_job_drops_it, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, deadline_during_blocking_call_returns_after_fn, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, run_blocking_when_already_cancelled);

    tc = harness_tcase(s, "shutdown", 30);
    tcase_add_test(tc, shutdown_drops_queued_and_waits_for_running);
    tcase_add_test(tc, shutdown_bound_abandons_a_stuck_fn);

    tc = harness_tcase(s, "misuse", 30);
    tcase_add_test(tc, run_blocking_misuse);
    return s;
}
