/* SPDX-License-Identifier: MIT */
/* The public contract of time (include/weft/deadline.h): weft_now, sleep,
 * wait_for, shield and deadline scopes, on one worker and on several:
 * cancellation reaching a sleeping task at once, the races of CPython's
 * history (bpo-32751: wait_for waits for the cancelled child; gh-86296: a
 * child finishing at the timeout or at the caller's cancellation loses
 * neither its result nor the cancellation), nested scopes, 100,000
 * sleepers, timers armed from plain threads and other workers, and the
 * timer latency on an idle machine. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>

#include "harness.h"

/* Worker counts for the races: one, the machine's two, and oversubscribed. */
static const unsigned race_workers[] = {1, 2, 4};
#define N_RACE_WORKERS ((int)(sizeof race_workers / sizeof race_workers[0]))

static uint64_t rng_next(uint64_t *s)
{
    *s += UINT64_C(0x9E3779B97F4A7C15);
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int return_int(void *arg)
{
    return (int)(intptr_t)arg;
}

/* Yields until *flag is set; run it in weft_shield so that a pending
 * cancellation does not cut the wait short. */
static int yield_until_flag(void *flag)
{
    while (!atomic_load((atomic_int *)flag)) {
        int rc = weft_yield();
        if (rc)
            return rc;
    }
    return 0;
}

/* Timers armed in the calling task's runtime now (weft_runtime_stats). */
static long timers_armed(void)
{
    weft_stats *st = calloc(1, sizeof *st);
    if (!st || weft_runtime_stats(weft_runtime_current(), st) != 0) {
        free(st);
        return -1;
    }
    long n = (long)st->timers_armed;
    free(st);
    return n;
}

/* ------------------------------------------------------------ now */

START_TEST(now_is_monotonic_and_on_clock_monotonic)
{
    int64_t a = harness_now_ns();
    int64_t b = weft_now();
    int64_t c = harness_now_ns();
    ck_assert_int_le(a, b);
    ck_assert_int_le(b, c);
    int64_t prev = weft_now();
    for (int i = 0; i < 10000; i++) {
        int64_t n = weft_now();
        ck_assert_int_ge(n, prev);
        prev = n;
    }
}
END_TEST

static int now_in_a_task(void *arg)
{
    (void)arg;
    int64_t a = harness_now_ns();
    int64_t b = weft_now();
    HCHECK(a <= b && b <= harness_now_ns());
    return 0;
}

START_TEST(now_works_inside_a_task)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), now_in_a_task, NULL), 0);
}
END_TEST

/* ------------------------------------------------------------ sleep */

static int sleep_several_durations(void *arg)
{
    (void)arg;
    static const int64_t durs[] = {WEFT_USEC(1), WEFT_USEC(100), WEFT_MSEC(1), WEFT_MSEC(5),
                                   WEFT_MSEC(20)};
    for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++) {
        int64_t start = weft_now();
        HCHECK_INT_EQ(weft_sleep(durs[i]), 0);
        int64_t slept = weft_now() - start;
        HCHECK_MSG(slept >= durs[i], "slept %lld ns of %lld", (long long)slept,
                   (long long)durs[i]);
        HCHECK_MSG(slept < durs[i] + WEFT_SEC(2), "slept %lld ns of %lld", (long long)slept,
                   (long long)durs[i]);
    }
    return 0;
}

START_TEST(sleep_waits_at_least_its_duration)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), sleep_several_durations, NULL), 0);
}
END_TEST

struct flag_arg {
    atomic_int ran;
};

static int set_ran(void *arg)
{
    atomic_store(&((struct flag_arg *)arg)->ran, 1);
    return 0;
}

static int sleep_zero_lets_others_run(void *arg)
{
    (void)arg;
    static const int64_t durs[] = {0, -1, INT64_MIN};
    for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++) {
        struct flag_arg f = {0};
        weft_task *t = weft_spawn(set_ran, &f);
        HREQUIRE(t != NULL, -1);
        HCHECK_INT_EQ(weft_sleep(durs[i]), 0);
        /* One worker, FIFO: the child ran during the sleep, as during a
         * yield (asyncio.sleep(0)). */
        HCHECK_MSG(atomic_load(&f.ran) == 1, "sleep(%lld) did not yield",
                   (long long)durs[i]);
        HCHECK_INT_EQ(weft_join(t), 0);
    }
    return 0;
}

START_TEST(sleep_of_zero_or_less_acts_like_a_yield)
{
    ck_assert_int_eq(harness_run(1, sleep_zero_lets_others_run, NULL), 0);
}
END_TEST

static int sleep_huge(void *arg)
{
    (void)arg;
    /* A duration that overflows now + ns must not wrap into the past.
     * start is read before the scope is entered: the scope's instant is
     * then at least start + 20 ms, however late this task runs. */
    weft_deadline d;
    int64_t start = weft_now();
    HCHECK_INT_EQ(weft_deadline_enter(&d, WEFT_MSEC(20)), 0);
    HCHECK_INT_EQ(weft_sleep(INT64_MAX), -ETIMEDOUT);
    HCHECK(weft_now() - start >= WEFT_MSEC(20));
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    return 0;
}

START_TEST(sleep_of_int64_max_does_not_overflow)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), sleep_huge, NULL), 0);
}
END_TEST

struct sleeper {
    int64_t dur;
    atomic_int started;
    atomic_int rc;
    _Atomic int64_t woke_at;
};

static int sleeper_main(void *arg)
{
    struct sleeper *s = arg;
    atomic_store(&s->started, 1);
    int rc = weft_sleep(s->dur);
    atomic_store(&s->woke_at, weft_now());
    atomic_store(&s->rc, rc);
    /* Sticky: every later suspension point is cancelled too. */
    if (rc == -ECANCELED) {
        HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), -ECANCELED);
        HCHECK_INT_EQ(weft_yield(), -ECANCELED);
    }
    return rc;
}

struct cancel_sleeper_arg {
    struct sleeper s;
    int64_t cancelled_at;
    int64_t stay_alive_until;
};

static int cancel_a_sleeper(void *arg)
{
    struct cancel_sleeper_arg *a = arg;
    weft_task *t = weft_spawn(sleeper_main, &a->s);
    HREQUIRE(t != NULL, -1);
    HYIELD_UNTIL(atomic_load(&a->s.started));
    /* Until it has parked for real: its timer is the only one armed (the
     * flag is set before the sleep, and on another worker the sleeper may
     * be preempted between the two). */
    HYIELD_UNTIL(timers_armed() == 1);
    a->cancelled_at = weft_now();
    weft_cancel(t);
    HCHECK_INT_EQ(weft_join(t), -ECANCELED);
    /* The cancelled sleep's timer is gone from the heap, not left to fire. */
    HCHECK_INT_EQ(timers_armed(), 0);
    /* Outlive the cancelled sleep's deadline: a timer left armed would now
     * fire on a freed task (ASan reports it; without ASan it may crash). */
    HCHECK_INT_EQ(weft_sleep(a->stay_alive_until - weft_now()), 0);
    return 0;
}

/* A sleeping task that is cancelled wakes at once, long before its sleep
 * would have ended, and its timer is removed rather than left to fire.
 * (A 1 s sleep, so that "at once" can have a bound of half of it that a
 * loaded machine or a sanitizer never reaches.) */
START_TEST(cancelled_sleeper_wakes_at_once)
{
    struct cancel_sleeper_arg a = {.s = {.dur = WEFT_SEC(1)}};
    a.stay_alive_until = weft_now() + WEFT_MSEC(1200);
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), cancel_a_sleeper, &a), 0);
    ck_assert_int_eq(atomic_load(&a.s.rc), -ECANCELED);
    int64_t late = atomic_load(&a.s.woke_at) - a.cancelled_at;
    ck_assert_msg(late >= 0 && late < WEFT_MSEC(500), "woke %lld ns after the cancel",
                  (long long)late);
}
END_TEST

START_TEST(sleeper_cancelled_from_a_plain_thread_wakes_at_once)
{
    weft_options opt = {.workers = harness_workers_variant(_i)};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    struct sleeper s = {.dur = WEFT_SEC(30)};
    weft_task *t = weft_spawn_on(rt, sleeper_main, &s);
    ck_assert_ptr_nonnull(t);
    while (!atomic_load(&s.started))
        sched_yield();
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    int64_t at = weft_now();
    weft_cancel(t);
    while (!weft_task_done(t))
        sched_yield();
    int64_t late = weft_now() - at;
    ck_assert_int_eq(atomic_load(&s.rc), -ECANCELED);
    /* Generous, and scaled for sanitizers: the sleep itself is 30 s. */
    ck_assert_msg(late < harness_scale_ns(WEFT_MSEC(500)), "ended %lld ns after the cancel",
                  (long long)late);
    weft_detach(t);
    weft_runtime_free(rt);
}
END_TEST

/* --- the cancel arrives while the timer fires ------------------------- */

struct fire_race {
    int64_t dur;
    weft_task *victim;
    atomic_int cancel_sent;
    atomic_int sleep_rc;
    atomic_int after_rc;
    _Atomic int64_t slept;
};

static int race_victim(void *arg)
{
    struct fire_race *r = arg;
    int64_t start = weft_now();
    int rc = weft_sleep(r->dur);
    atomic_store(&r->slept, weft_now() - start);
    atomic_store(&r->sleep_rc, rc);
    /* Wait (cancellation held back) until the cancel has been sent, then
     * the next suspension point must report it, whichever way the race
     * went. */
    HCHECK_INT_EQ(weft_shield(yield_until_flag, &r->cancel_sent), 0);
    atomic_store(&r->after_rc, weft_yield());
    return rc;
}

static int race_canceller(void *arg)
{
    struct fire_race *r = arg;
    HCHECK_INT_EQ(weft_sleep(r->dur), 0);
    weft_cancel(r->victim);
    atomic_store(&r->cancel_sent, 1);
    return 0;
}

static int cancel_vs_fire_rounds(void *arg)
{
    (void)arg;
    uint64_t seed = 7;
    int n_cancelled = 0, n_slept = 0;
    for (int round = 0; round < 300; round++) {
        struct fire_race r = {.dur = WEFT_USEC(200 + rng_next(&seed) % 800)};
        r.victim = weft_spawn(race_victim, &r);
        HREQUIRE(r.victim != NULL, -1);
        weft_task *c = weft_spawn(race_canceller, &r);
        HREQUIRE(c != NULL, -1);
        int rc = weft_join(r.victim);
        HCHECK_INT_EQ(weft_join(c), 0);
        HCHECK_MSG(rc == 0 || rc == -ECANCELED, "round %d: sleep returned %d", round, rc);
        if (rc == 0) {
            n_slept++;
            HCHECK_MSG(atomic_load(&r.slept) >= r.dur, "round %d: woke early", round);
        } else {
            n_cancelled++;
        }
        HCHECK_INT_EQ(atomic_load(&r.after_rc), -ECANCELED);
        if (harness_failures())
            break;
    }
    return n_cancelled + n_slept == 300 ? 0 : -1;
}

/* A cancel that lands while the sleep's timer fires (both at the same
 * instant, often on two workers) gives either a completed sleep or
 * -ECANCELED, never both lost: the next suspension point still reports
 * the cancellation. */
START_TEST(cancel_arriving_while_the_timer_fires)
{
    ck_assert_int_eq(harness_run(race_workers[_i], cancel_vs_fire_rounds, NULL), 0);
}
END_TEST

struct thread_race {
    weft_runtime *rt;
    _Atomic(weft_task *) victim;
    _Atomic int64_t fire_at;
    atomic_int stop;
    atomic_int cancel_sent;
};

static void *thread_canceller(void *arg)
{
    struct thread_race *r = arg;
    while (!atomic_load(&r->stop)) {
        weft_task *v = atomic_load(&r->victim);
        if (!v) {
            sched_yield();
            continue;
        }
        while (weft_now() < atomic_load(&r->fire_at) && !atomic_load(&r->stop))
            ;
        weft_cancel(v);
        atomic_store(&r->victim, NULL);
        atomic_store(&r->cancel_sent, 1);
    }
    return NULL;
}

static int thread_race_victim(void *arg)
{
    struct thread_race *r = arg;
    int64_t dur = WEFT_USEC(500);
    int64_t start = weft_now();
    atomic_store(&r->fire_at, start + dur);
    int rc = weft_sleep(dur);
    if (rc == 0)
        HCHECK(weft_now() - start >= dur);
    HCHECK_INT_EQ(weft_shield(yield_until_flag, &r->cancel_sent), 0);
    HCHECK_INT_EQ(weft_yield(), -ECANCELED);
    return rc;
}

static int thread_race_rounds(void *arg)
{
    struct thread_race *r = arg;
    for (int round = 0; round < 300 && !harness_failures(); round++) {
        atomic_store(&r->cancel_sent, 0);
        atomic_store(&r->fire_at, INT64_MAX);
        weft_task *t = weft_spawn(thread_race_victim, r);
        HREQUIRE(t != NULL, -1);
        atomic_store(&r->victim, t);
        int rc = weft_join(t);
        HCHECK_MSG(rc == 0 || rc == -ECANCELED, "round %d: %d", round, rc);
    }
    return 0;
}

/* The same race with the cancel coming from a plain thread spinning until
 * the timer's instant. */
START_TEST(cancel_from_a_plain_thread_at_the_timer_instant)
{
    struct thread_race r = {0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, thread_canceller, &r), 0);
    int rc = harness_run(race_workers[_i], thread_race_rounds, &r);
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    ck_assert_int_eq(rc, 0);
}
END_TEST

/* --- many sleepers ---------------------------------------------------- */

/* 100,000 sleepers; TSan gives every task a fiber with its own shadow
 * stack and trace (mmaps that run out long before 100,000), so under TSan
 * the many-sleeper tests use 5,000. */
#if defined(__SANITIZE_THREAD__)
#define MANY 5000
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MANY 5000
#endif
#endif
#ifndef MANY
#define MANY 100000
#endif

struct many {
    int64_t max_ns;
    atomic_long started;
    atomic_long woke;
    atomic_long early;
    atomic_long cancelled;
    atomic_long other;
};

struct many_one {
    struct many *m;
    int64_t dur;
};

static int many_sleeper(void *arg)
{
    struct many_one *o = arg;
    struct many *m = o->m;
    int64_t deadline = weft_now() + o->dur;
    atomic_fetch_add_explicit(&m->started, 1, memory_order_relaxed);
    int rc = weft_sleep(o->dur);
    int64_t now = weft_now();
    if (rc == 0) {
        atomic_fetch_add_explicit(&m->woke, 1, memory_order_relaxed);
        if (now < deadline)
            atomic_fetch_add_explicit(&m->early, 1, memory_order_relaxed);
    } else if (rc == -ECANCELED) {
        atomic_fetch_add_explicit(&m->cancelled, 1, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&m->other, 1, memory_order_relaxed);
    }
    return rc;
}

static int run_many_sleepers(void *arg)
{
    struct many *m = arg;
    struct many_one *ones = malloc(MANY * sizeof *ones);
    weft_task **t = malloc(MANY * sizeof *t);
    HREQUIRE(ones && t, -1);
    uint64_t seed = 12345;
    for (int i = 0; i < MANY; i++)
        ones[i] = (struct many_one){m, (int64_t)(rng_next(&seed) % (uint64_t)(m->max_ns + 1))};
    int n = 0;
    for (; n < MANY; n++) {
        t[n] = weft_spawn(many_sleeper, &ones[n]);
        if (!t[n])
            break;
    }
    HCHECK_INT_EQ(n, MANY);
    for (int i = 0; i < n; i++) {
        int rc = weft_join(t[i]);
        if (rc != 0)
            HCHECK_INT_EQ(rc, 0);
    }
    HCHECK_INT_EQ(timers_armed(), 0);
    free(t);
    free(ones);
    return 0;
}

/* 100,000 sleepers of random 0..100 ms all wake, none before its own
 * deadline. */
START_TEST(many_sleepers_with_random_delays_all_wake_none_early)
{
    struct many m = {.max_ns = WEFT_MSEC(100)};
    int64_t start = weft_now();
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), run_many_sleepers, &m), 0);
    int64_t took = weft_now() - start;
    ck_assert_int_eq(atomic_load(&m.woke), MANY);
    ck_assert_int_eq(atomic_load(&m.early), 0);
    ck_assert_int_eq(atomic_load(&m.other), 0);
    ck_assert_int_ge(took, WEFT_MSEC(90));
}
END_TEST

static int cancel_many_sleepers(void *arg)
{
    struct many *m = arg;
    struct many_one *ones = malloc(MANY * sizeof *ones);
    weft_task **t = malloc(MANY * sizeof *t);
    HREQUIRE(ones && t, -1);
    int n = 0;
    for (; n < MANY; n++) {
        ones[n] = (struct many_one){m, WEFT_SEC(3600)};
        t[n] = weft_spawn(many_sleeper, &ones[n]);
        if (!t[n])
            break;
    }
    HCHECK_INT_EQ(n, MANY);
    int64_t end = weft_now() + harness_wait_ns();
    while (atomic_load(&m->started) < n && weft_now() < end)
        HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), 0);
    if (atomic_load(&m->started) != n) {
        int n_done = 0, n_enomem = 0;
        for (int i = 0; i < n; i++)
            n_done += weft_task_done(t[i]);
        for (int i = 0; i < n; i++) {
            if (weft_task_done(t[i])) {
                n_enomem += weft_join(t[i]) == -ENOMEM;
                t[i] = NULL;
            }
        }
        harness_fail(__FILE__, __LINE__, "all sleepers started",
                     "%ld of %d started; %d ended unstarted, %d of them with -ENOMEM",
                     (long)atomic_load(&m->started), n, n_done, n_enomem);
    }
    /* Let the last ones park. */
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(20)), 0);
    int64_t at = weft_now();
    for (int i = 0; i < n; i++)
        weft_cancel(t[i]);
    for (int i = 0; i < n; i++) {
        if (!t[i])
            continue;
        int rc = weft_join(t[i]);
        if (rc != -ECANCELED)
            HCHECK_INT_EQ(rc, -ECANCELED);
    }
    int64_t took = weft_now() - at;
    /* Scaled: under valgrind waking 100,000 tasks one thread at a time
     * takes a minute or more. */
    HCHECK_MSG(took < harness_scale_ns(WEFT_SEC(20)), "cancelling took %lld ms",
               (long long)(took / 1000000));
    HCHECK_INT_EQ(timers_armed(), 0);
    free(t);
    free(ones);
    return 0;
}

/* Cancelling 100,000 sleepers wakes every one of them at once with
 * -ECANCELED (their hour-long timers are removed). */
START_TEST(cancelling_many_sleepers_wakes_them_all)
{
    struct many m = {0};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), cancel_many_sleepers, &m), 0);
    ck_assert_int_eq(atomic_load(&m.cancelled), MANY);
    ck_assert_int_eq(atomic_load(&m.woke), 0);
}
END_TEST

/* A sleeper's wake-up is not queued behind a spawn storm: with several
 * workers, a timer that fires while thousands of spawned tasks wait to
 * start (in the rings and the inject queue) wakes its task ahead of them
 * (timer wakes that do not fit in the waking worker's ring, and those the
 * monitor fires, go before the inject queue's backlog). Behind it, the
 * sleeper would run only after most of the backlog. */
#define STORM 40000
struct storm {
    atomic_long started;   /* backlog tasks that have begun */
    atomic_long at_wake;   /* of them, when the sleeper woke */
};

static int storm_task(void *arg)
{
    struct storm *st = arg;
    atomic_fetch_add_explicit(&st->started, 1, memory_order_relaxed);
    int64_t until = harness_now_ns() + 2000; /* 2 us of work */
    while (harness_now_ns() < until)
        ;
    return 0;
}

static int storm_sleeper(void *arg)
{
    struct storm *st = arg;
    int rc = weft_sleep(WEFT_MSEC(5));
    atomic_store(&st->at_wake, atomic_load_explicit(&st->started, memory_order_relaxed));
    return rc;
}

static int run_storm(void *arg)
{
    struct storm *st = arg;
    weft_task **t = malloc(STORM * sizeof *t);
    HREQUIRE(t, -1);
    weft_task *sl = weft_spawn(storm_sleeper, st);
    HREQUIRE(sl, -1);
    /* Let it park with its timer armed. */
    HWAIT_PARKED(NULL, "sleep", 1);
    int n = 0;
    for (; n < STORM; n++) {
        t[n] = weft_spawn(storm_task, st);
        if (!t[n])
            break;
    }
    HCHECK_INT_EQ(n, STORM);
    HCHECK_INT_EQ(weft_join(sl), 0);
    for (int i = 0; i < n; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    free(t);
    return 0;
}

START_TEST(timer_wake_is_not_queued_behind_a_spawn_storm)
{
    /* Exact counts, not WEFT_TEST_WORKERS': with many more workers than
     * CPUs, the OS decides when the worker whose ring holds the sleeper
     * runs again (tens of ms at 16 on 2 CPUs). */
    static const unsigned workers[] = {2, 4};
    weft_options opt = {.workers = workers[_i]};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    struct storm st = {0};
    ck_assert_int_eq(weft_runtime_block_on(rt, run_storm, &st), 0);
    weft_runtime_free(rt);
    long at = atomic_load(&st.at_wake);
    /* The backlog takes >= 80 ms of CPU; the timer is due after 5 ms. */
    ck_assert_msg(at < STORM * 3 / 4, "the sleeper woke after %ld of %d backlog tasks had started",
                  at, STORM);
}
END_TEST

/* --- timers armed from plain threads and other workers ---------------- */

struct plain_sleep {
    weft_runtime *rt;
    atomic_int bad;
};

static int sleep_20ms_checked(void *arg)
{
    (void)arg;
    int64_t start = weft_now();
    int rc = weft_sleep(WEFT_MSEC(20));
    HCHECK(weft_now() - start >= WEFT_MSEC(20));
    return rc;
}

static void *block_on_sleepers(void *arg)
{
    struct plain_sleep *p = arg;
    for (int i = 0; i < 5; i++)
        if (weft_runtime_block_on(p->rt, sleep_20ms_checked, NULL) != 0)
            atomic_fetch_add(&p->bad, 1);
    return NULL;
}

/* The public API arms timers only from tasks; a task a plain thread runs
 * with block_on (several threads at once) sleeps like any other. */
START_TEST(tasks_of_plain_threads_sleep)
{
    weft_options opt = {.workers = harness_workers_variant(_i)};
    struct plain_sleep p = {.rt = weft_runtime_new(&opt)};
    ck_assert_ptr_nonnull(p.rt);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, block_on_sleepers, &p), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(atomic_load(&p.bad), 0);
    weft_runtime_free(p.rt);
}
END_TEST

struct spawn_on_sleep {
    weft_task *t[200];
    struct sleeper s[200];
};

static int join_spawned_on(void *arg)
{
    struct spawn_on_sleep *a = arg;
    for (int i = 0; i < 200; i++) {
        HCHECK_INT_EQ(weft_join(a->t[i]), 0);
        HCHECK(atomic_load(&a->s[i].rc) == 0);
    }
    return 0;
}

/* Tasks spawned from a plain thread (weft_spawn_on) sleep and wake. */
START_TEST(tasks_spawned_on_from_a_plain_thread_sleep)
{
    weft_options opt = {.workers = harness_workers_variant(_i)};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    static struct spawn_on_sleep a;
    memset(&a, 0, sizeof a);
    int64_t start = weft_now();
    for (int i = 0; i < 200; i++) {
        a.s[i].dur = WEFT_MSEC(1 + i % 20);
        a.t[i] = weft_spawn_on(rt, sleeper_main, &a.s[i]);
        ck_assert_ptr_nonnull(a.t[i]);
    }
    ck_assert_int_eq(weft_runtime_block_on(rt, join_spawned_on, &a), 0);
    for (int i = 0; i < 200; i++)
        ck_assert_int_ge(atomic_load(&a.s[i].woke_at) - start, a.s[i].dur);
    weft_runtime_free(rt);
}
END_TEST

struct cross {
    _Atomic(pthread_t) sleeper_thread;
    atomic_int armed;
    _Atomic int64_t lateness;
    atomic_int woke;
};

static int cross_sleeper(void *arg)
{
    struct cross *c = arg;
    atomic_store(&c->sleeper_thread, pthread_self());
    int64_t deadline = weft_now() + WEFT_MSEC(20);
    atomic_store(&c->armed, 1);
    int rc = weft_sleep(WEFT_MSEC(20));
    atomic_store(&c->lateness, weft_now() - deadline);
    atomic_store(&c->woke, 1);
    return rc;
}

struct cross_result {
    bool until_woken; /* loop until the sleeper wakes, not for 600 ms */
    int same_thread_rounds;
    int64_t worst_same_thread;
    int64_t worst;
};

static int cpu_loop_against_a_timer(void *arg)
{
    struct cross_result *res = arg;
    for (int round = 0; round < 6; round++) {
        struct cross c = {0};
        weft_task *t = weft_spawn(cross_sleeper, &c);
        HREQUIRE(t != NULL, -1);
        /* Let the sleeper run (usually on this worker) and park. */
        HYIELD_UNTIL(atomic_load(&c.armed));
        HCHECK_INT_EQ(weft_yield(), 0);
        bool same = pthread_equal(atomic_load(&c.sleeper_thread), pthread_self());
        /* Hold this worker without a suspension point: for 600 ms, or
         * until the sleeper has woken (which only the other worker can
         * make happen, if the sleeper's timer is this worker's). */
        int64_t end = weft_now() + (res->until_woken ? harness_wait_ns() : WEFT_MSEC(600));
        while (weft_now() < end && !(res->until_woken && atomic_load(&c.woke)))
            ;
        if (res->until_woken)
            HCHECK_MSG(atomic_load(&c.woke), "round %d: the sleeper%s did not wake while "
                       "its worker was busy", round, same ? " (armed on the busy worker)" : "");
        HCHECK_INT_EQ(weft_join(t), 0);
        int64_t late = atomic_load(&c.lateness);
        if (late > res->worst)
            res->worst = late;
        if (same) {
            res->same_thread_rounds++;
            if (late > res->worst_same_thread)
                res->worst_same_thread = late;
        }
    }
    return 0;
}

/* With two workers, a timer armed on a worker that then runs a CPU loop
 * is fired by the other one while the loop runs (the loop goes on until
 * the sleeper wakes; how soon is busy_worker_does_not_delay_its_timers). */
START_TEST(busy_workers_timer_is_fired_by_the_other_worker)
{
    struct cross_result res = {.until_woken = true};
    ck_assert_int_eq(harness_run(2, cpu_loop_against_a_timer, &res), 0);
}
END_TEST

/* The same with a 600 ms loop: the timer fires within a generous 300 ms,
 * not when the loop ends (on an idle machine it is about a millisecond).
 * A wall-clock bound: tagged "timing". */
START_TEST(busy_worker_does_not_delay_its_timers)
{
    struct cross_result res = {0};
    ck_assert_int_eq(harness_run(2, cpu_loop_against_a_timer, &res), 0);
    fprintf(stderr, "busy_worker_does_not_delay_its_timers: %d/6 rounds on the busy worker, "
                    "worst lateness %.3f ms (same worker %.3f ms)\n",
            res.same_thread_rounds, res.worst / 1e6, res.worst_same_thread / 1e6);
    ck_assert_msg(res.worst < WEFT_MSEC(300), "a timer fired %.3f ms late", res.worst / 1e6);
}
END_TEST

static int cancel_across_workers(void *arg)
{
    (void)arg;
    /* Sleepers spread over the workers; a sibling task (wherever it runs)
     * cancels half of them, the rest wake by their timers. */
    enum { N = 64 };
    struct sleeper s[N];
    weft_task *t[N];
    for (int i = 0; i < N; i++) {
        s[i] = (struct sleeper){.dur = (i % 2) ? WEFT_MSEC(30) : WEFT_SEC(30)};
        t[i] = weft_spawn(sleeper_main, &s[i]);
        HREQUIRE(t[i] != NULL, -1);
    }
    for (int i = 0; i < N; i++)
        HYIELD_UNTIL(atomic_load(&s[i].started));
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(5)), 0);
    for (int i = 0; i < N; i += 2)
        weft_cancel(t[i]);
    for (int i = 0; i < N; i++)
        HCHECK_INT_EQ(weft_join(t[i]), (i % 2) ? 0 : -ECANCELED);
    return 0;
}

START_TEST(sleepers_on_other_workers_are_cancelled_or_woken)
{
    ck_assert_int_eq(harness_run(race_workers[_i], cancel_across_workers, NULL), 0);
}
END_TEST

/* --- latency ---------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

#define N_LATE 200

static int64_t late_dur(uint64_t *seed)
{
    return WEFT_MSEC(1) + (int64_t)(rng_next(seed) % (uint64_t)WEFT_MSEC(4));
}

static int measure_lateness(void *arg)
{
    int64_t *late = arg;
    uint64_t seed = 99;
    for (int i = 0; i < N_LATE; i++) {
        int64_t dur = late_dur(&seed);
        int64_t deadline = weft_now() + dur;
        HCHECK_INT_EQ(weft_sleep(dur), 0);
        late[i] = weft_now() - deadline;
        HCHECK(late[i] >= 0);
    }
    return 0;
}

/* The same sleeps with clock_nanosleep on this thread: what the machine
 * gives right now (a loaded machine, as under make -j check, is late). */
static int64_t os_median_lateness(void)
{
    int64_t late[N_LATE];
    uint64_t seed = 99;
    for (int i = 0; i < N_LATE; i++) {
        int64_t deadline = harness_now_ns() + late_dur(&seed);
        struct timespec ts = {deadline / 1000000000, deadline % 1000000000};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        late[i] = harness_now_ns() - deadline;
    }
    qsort(late, N_LATE, sizeof late[0], cmp_i64);
    return late[N_LATE / 2];
}

/* A timer fires within about a millisecond of its deadline on an idle
 * machine: median lateness of 200 sleeps of 1..5 ms under 5 ms, or (on a
 * loaded machine) under 5 ms more than the OS's own sleeps are late. */
START_TEST(timer_fires_close_to_its_deadline)
{
    int64_t late[N_LATE];
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), measure_lateness, late), 0);
    qsort(late, N_LATE, sizeof late[0], cmp_i64);
    int64_t os = os_median_lateness();
    fprintf(stderr,
            "timer lateness on %u worker(s): median %.1f us, p90 %.1f us, max %.1f us "
            "(clock_nanosleep median %.1f us)\n",
            harness_workers_variant(_i), late[N_LATE / 2] / 1e3, late[N_LATE * 9 / 10] / 1e3,
            late[N_LATE - 1] / 1e3, os / 1e3);
    ck_assert_msg(late[N_LATE / 2] < WEFT_MSEC(5) + os, "median lateness %.3f ms",
                  late[N_LATE / 2] / 1e6);
}
END_TEST

/* ------------------------------------------------------------ wait_for */

struct child {
    int64_t sleep_ns;      /* how long the body sleeps */
    int64_t cleanup_ns;    /* shielded cleanup after a cancelled sleep */
    int result;            /* returned when the sleep completes */
    int on_cancel;         /* returned when the sleep is cancelled */
    atomic_int started;
    atomic_int sleep_rc;
    atomic_int completed;  /* the sleep ran to its end */
    atomic_int ended;      /* set just before the body returns */
};

static int shielded_sleep(void *arg)
{
    return weft_sleep(*(int64_t *)arg);
}

static int child_main(void *arg)
{
    struct child *c = arg;
    atomic_store(&c->started, 1);
    int rc = weft_sleep(c->sleep_ns);
    atomic_store(&c->sleep_rc, rc);
    int status;
    if (rc == 0) {
        atomic_store(&c->completed, 1);
        status = c->result;
    } else {
        /* Slow cleanup that cancellation cannot cut short. */
        if (c->cleanup_ns)
            HCHECK_INT_EQ(weft_shield(shielded_sleep, &c->cleanup_ns), 0);
        status = c->on_cancel ? c->on_cancel : rc;
    }
    atomic_store(&c->ended, 1);
    return status;
}

static int wait_for_in_time(void *arg)
{
    (void)arg;
    struct child c = {.sleep_ns = WEFT_MSEC(5), .result = 42};
    HCHECK_INT_EQ(weft_wait_for(child_main, &c, WEFT_SEC(10)), 42);
    HCHECK_INT_EQ(atomic_load(&c.ended), 1);
    HCHECK_INT_EQ(weft_wait_for(return_int, (void *)(intptr_t)-77, WEFT_SEC(10)), -77);
    HCHECK_INT_EQ(weft_wait_for(return_int, (void *)(intptr_t)3, WEFT_SEC(10)), 3);
    /* Negative timeout: no timeout at all. */
    struct child d = {.sleep_ns = WEFT_MSEC(30), .result = 8};
    HCHECK_INT_EQ(weft_wait_for(child_main, &d, -1), 8);
    return 0;
}

START_TEST(wait_for_returns_the_child_status_in_time)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), wait_for_in_time, NULL), 0);
}
END_TEST

static int wait_for_times_out(void *arg)
{
    (void)arg;
    struct child c = {.sleep_ns = WEFT_SEC(10), .cleanup_ns = WEFT_MSEC(50), .result = 1};
    int64_t start = weft_now();
    HCHECK_INT_EQ(weft_wait_for(child_main, &c, WEFT_MSEC(20)), -ETIMEDOUT);
    int64_t took = weft_now() - start;
    /* bpo-32751: the child has really ended (its slow cleanup included)
     * when wait_for returns. */
    HCHECK_INT_EQ(atomic_load(&c.ended), 1);
    HCHECK_INT_EQ(atomic_load(&c.sleep_rc), -ECANCELED);
    HCHECK_MSG(took >= WEFT_MSEC(70), "returned after %lld ns", (long long)took);
    HCHECK_MSG(took < WEFT_SEC(5), "returned after %lld ns", (long long)took);
    /* The caller itself is not cancelled by the timeout. */
    HCHECK_INT_EQ(weft_yield(), 0);
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), 0);
    return 0;
}

START_TEST(wait_for_timeout_cancels_the_child_and_waits_for_its_end)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), wait_for_times_out, NULL), 0);
}
END_TEST

static int wait_for_child_handles_cancel(void *arg)
{
    (void)arg;
    /* CPython's return_42: the child turns the cancellation into a
     * result; wait_for returns it rather than dropping it. */
    struct child c = {.sleep_ns = WEFT_SEC(10), .on_cancel = 42};
    HCHECK_INT_EQ(weft_wait_for(child_main, &c, WEFT_MSEC(10)), 42);
    HCHECK_INT_EQ(atomic_load(&c.sleep_rc), -ECANCELED);
    /* A child that fails another way after the cancel: its failure. */
    struct child d = {.sleep_ns = WEFT_SEC(10), .on_cancel = -EIO};
    HCHECK_INT_EQ(weft_wait_for(child_main, &d, WEFT_MSEC(10)), -EIO);
    return 0;
}

START_TEST(wait_for_returns_what_a_cancelled_child_returns_instead)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), wait_for_child_handles_cancel, NULL),
                     0);
}
END_TEST

static int wait_for_zero_timeout(void *arg)
{
    (void)arg;
    /* Already timed out when it starts: the child's body still starts
     * (cancelled), so a child that never suspends still reports... */
    HCHECK_INT_EQ(weft_wait_for(return_int, (void *)(intptr_t)5, 0), 5);
    /* ...and one that suspends is cut short. */
    struct child c = {.sleep_ns = WEFT_SEC(10), .result = 1};
    HCHECK_INT_EQ(weft_wait_for(child_main, &c, 0), -ETIMEDOUT);
    HCHECK_INT_EQ(atomic_load(&c.started), 1);
    HCHECK_INT_EQ(atomic_load(&c.ended), 1);
    return 0;
}

START_TEST(wait_for_with_zero_timeout)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), wait_for_zero_timeout, NULL), 0);
}
END_TEST

struct outer_cancel {
    struct child c;
    atomic_int waiting;
    atomic_int rc;
    atomic_int ended_at_return;
};

static int wait_for_long(void *arg)
{
    struct outer_cancel *o = arg;
    atomic_store(&o->waiting, 1);
    int rc = weft_wait_for(child_main, &o->c, WEFT_SEC(30));
    atomic_store(&o->ended_at_return, atomic_load(&o->c.ended));
    atomic_store(&o->rc, rc);
    HCHECK_INT_EQ(weft_yield(), -ECANCELED);
    return rc;
}

static int cancel_the_waiter(void *arg)
{
    struct outer_cancel *o = arg;
    weft_task *t = weft_spawn(wait_for_long, o);
    HREQUIRE(t != NULL, -1);
    HYIELD_UNTIL(atomic_load(&o->c.started));
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(10)), 0);
    weft_cancel(t);
    HCHECK_INT_EQ(weft_join(t), -ECANCELED);
    return 0;
}

/* Cancelling the task in wait_for cancels the child, waits for its end
 * and returns -ECANCELED. */
START_TEST(wait_for_cancelled_caller_cancels_and_waits_for_the_child)
{
    struct outer_cancel o = {.c = {.sleep_ns = WEFT_SEC(30), .cleanup_ns = WEFT_MSEC(30)}};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), cancel_the_waiter, &o), 0);
    ck_assert_int_eq(atomic_load(&o.rc), -ECANCELED);
    ck_assert_int_eq(atomic_load(&o.ended_at_return), 1);
    ck_assert_int_eq(atomic_load(&o.c.sleep_rc), -ECANCELED);
}
END_TEST

static int wait_for_in_a_scope(void *arg)
{
    (void)arg;
    weft_deadline d;
    HCHECK_INT_EQ(weft_deadline_enter(&d, WEFT_MSEC(20)), 0);
    struct child c = {.sleep_ns = WEFT_SEC(30), .cleanup_ns = WEFT_MSEC(10)};
    int64_t start = weft_now();
    HCHECK_INT_EQ(weft_wait_for(child_main, &c, WEFT_SEC(30)), -ETIMEDOUT);
    HCHECK(weft_now() - start < WEFT_SEC(5));
    HCHECK_INT_EQ(atomic_load(&c.ended), 1);
    HCHECK_INT_EQ(atomic_load(&c.sleep_rc), -ECANCELED);
    HCHECK(weft_deadline_expired(&d));
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    return 0;
}

/* The caller's own deadline scope bounds wait_for like its timeout. */
START_TEST(wait_for_honours_the_callers_deadline_scope)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), wait_for_in_a_scope, NULL), 0);
}
END_TEST

static int wait_for_at_the_timeout_rounds(void *arg)
{
    int *counts = arg;
    uint64_t seed = 3;
    for (int round = 0; round < 400 && !harness_failures(); round++) {
        int64_t d = WEFT_USEC(100 + rng_next(&seed) % 900);
        struct child c = {.sleep_ns = d, .result = 5};
        int rc = weft_wait_for(child_main, &c, d);
        HCHECK_MSG(atomic_load(&c.ended) == 1, "round %d: child still running", round);
        if (rc == 5) {
            HCHECK_MSG(atomic_load(&c.completed) == 1, "round %d", round);
            counts[0]++;
        } else {
            HCHECK_MSG(rc == -ETIMEDOUT, "round %d: rc %d", round, rc);
            /* The result is never dropped: a child that completed its
             * work is reported as such. */
            HCHECK_MSG(atomic_load(&c.completed) == 0, "round %d: result lost", round);
            counts[1]++;
        }
    }
    return 0;
}

/* A child that finishes right at the timeout: either its result or
 * -ETIMEDOUT with the child cancelled, and always ended; a completed
 * child's result is never lost. */
START_TEST(wait_for_child_finishing_at_the_timeout_loses_nothing)
{
    int counts[2] = {0, 0};
    ck_assert_int_eq(harness_run(race_workers[_i], wait_for_at_the_timeout_rounds, counts), 0);
    ck_assert_int_eq(counts[0] + counts[1], 400);
}
END_TEST

struct simul {
    struct child c;
    _Atomic(weft_task *) waiter;
    atomic_int cancel_sent;
    atomic_int rc;
    atomic_int rc_after;
};

static int simul_waiter(void *arg)
{
    struct simul *s = arg;
    int rc = weft_wait_for(child_main, &s->c, WEFT_SEC(30));
    HCHECK_MSG(atomic_load(&s->c.ended) == 1, "child still running");
    atomic_store(&s->rc, rc);
    HCHECK_INT_EQ(weft_shield(yield_until_flag, &s->cancel_sent), 0);
    /* gh-86296: the cancellation is never swallowed. */
    atomic_store(&s->rc_after, weft_yield());
    return 0;
}

static int simul_canceller(void *arg)
{
    struct simul *s = arg;
    HCHECK_INT_EQ(weft_sleep(s->c.sleep_ns), 0);
    weft_cancel(atomic_load(&s->waiter));
    atomic_store(&s->cancel_sent, 1);
    return 0;
}

static int simultaneous_cancel_rounds(void *arg)
{
    int *counts = arg;
    uint64_t seed = 5;
    for (int round = 0; round < 400 && !harness_failures(); round++) {
        struct simul s = {.c = {.sleep_ns = WEFT_USEC(100 + rng_next(&seed) % 900), .result = 5}};
        weft_task *w = weft_spawn(simul_waiter, &s);
        HREQUIRE(w != NULL, -1);
        atomic_store(&s.waiter, w);
        weft_task *c = weft_spawn(simul_canceller, &s);
        HREQUIRE(c != NULL, -1);
        HCHECK_INT_EQ(weft_join(c), 0);
        HCHECK_INT_EQ(weft_join(w), 0);
        int rc = atomic_load(&s.rc);
        HCHECK_MSG(rc == 5 || rc == -ECANCELED, "round %d: rc %d", round, rc);
        if (rc == 5) {
            HCHECK(atomic_load(&s.c.completed) == 1);
            counts[0]++;
        } else {
            counts[1]++;
        }
        HCHECK_MSG(atomic_load(&s.rc_after) == -ECANCELED, "round %d: cancellation lost (%d)",
                   round, atomic_load(&s.rc_after));
    }
    return 0;
}

/* The caller is cancelled just as the child finishes: it gets the result
 * or -ECANCELED, and in both cases the cancellation stays pending. */
START_TEST(wait_for_cancelled_as_the_child_finishes_keeps_the_cancellation)
{
    int counts[2] = {0, 0};
    ck_assert_int_eq(harness_run(race_workers[_i], simultaneous_cancel_rounds, counts), 0);
    ck_assert_int_eq(counts[0] + counts[1], 400);
}
END_TEST

/* ------------------------------------------------------------ shield */

struct shield_probe {
    atomic_int in_shield;
    atomic_int cancel_sent;
    int sleep_rc, yield_rc, cancelled_inside;
    int64_t slept;
};

static int shielded_body(void *arg)
{
    struct shield_probe *p = arg;
    atomic_store(&p->in_shield, 1);
    HCHECK_INT_EQ(yield_until_flag(&p->cancel_sent), 0);
    int64_t start = weft_now();
    p->sleep_rc = weft_sleep(WEFT_MSEC(30));
    p->slept = weft_now() - start;
    p->yield_rc = weft_yield();
    p->cancelled_inside = weft_cancelled();
    return 9;
}

static int shield_then_check(void *arg)
{
    struct shield_probe *p = arg;
    HCHECK_INT_EQ(weft_shield(shielded_body, p), 9);
    HCHECK(weft_cancelled());
    HCHECK_INT_EQ(weft_yield(), -ECANCELED);
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), -ECANCELED);
    return 0;
}

static int cancel_a_shielded_task(void *arg)
{
    struct shield_probe *p = arg;
    weft_task *t = weft_spawn(shield_then_check, p);
    HREQUIRE(t != NULL, -1);
    HYIELD_UNTIL(atomic_load(&p->in_shield));
    weft_cancel(t);
    atomic_store(&p->cancel_sent, 1);
    HCHECK_INT_EQ(weft_join(t), 0);
    return 0;
}

/* A cancellation arriving inside weft_shield is held back until fn
 * returns and delivered at the next suspension point after it. */
START_TEST(shield_holds_back_cancellation_until_it_returns)
{
    struct shield_probe p = {0};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), cancel_a_shielded_task, &p), 0);
    ck_assert_int_eq(p.sleep_rc, 0);
    ck_assert_int_ge(p.slept, WEFT_MSEC(30));
    ck_assert_int_eq(p.yield_rc, 0);
    ck_assert_int_eq(p.cancelled_inside, 0);
}
END_TEST

static int shield_nested_body(void *arg)
{
    int *depth = arg;
    HCHECK_INT_EQ(weft_yield(), 0);
    HCHECK(!weft_cancelled());
    if (++*depth < 3)
        return weft_shield(shield_nested_body, depth);
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(2)), 0);
    return 11;
}

static int join_inside_shield(void *arg)
{
    struct child *c = arg;
    weft_task *t = weft_spawn(child_main, c);
    HREQUIRE(t != NULL, -1);
    /* A held-back cancellation does not cancel the joined child. */
    return weft_join(t);
}

static int shield_pending_cancel(void *arg)
{
    (void)arg;
    weft_cancel(weft_current());
    HCHECK_INT_EQ(weft_yield(), -ECANCELED);
    int depth = 0;
    HCHECK_INT_EQ(weft_shield(shield_nested_body, &depth), 11);
    HCHECK_INT_EQ(depth, 3);
    struct child c = {.sleep_ns = WEFT_MSEC(10), .result = 4};
    HCHECK_INT_EQ(weft_shield(join_inside_shield, &c), 4);
    HCHECK_INT_EQ(atomic_load(&c.completed), 1);
    HCHECK_INT_EQ(weft_shield(return_int, (void *)(intptr_t)-5), -5);
    HCHECK_INT_EQ(weft_yield(), -ECANCELED);
    return 0;
}

/* An already pending cancellation is held back too, in nested shields,
 * and comes back after the outermost one. */
START_TEST(shield_holds_back_a_pending_cancellation_and_nests)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), shield_pending_cancel, NULL), 0);
}
END_TEST

static int sleep_40ms_shielded(void *arg)
{
    (void)arg;
    int64_t start = weft_now();
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(40)), 0);
    HCHECK(weft_now() - start >= WEFT_MSEC(40));
    HCHECK_INT_EQ(weft_yield(), 0);
    return 0;
}

static int scope_inside_shield(void *arg)
{
    (void)arg;
    /* A scope fn opens itself still applies. */
    weft_deadline d;
    HCHECK_INT_EQ(weft_deadline_enter(&d, WEFT_MSEC(10)), 0);
    int64_t start = weft_now();
    HCHECK_INT_EQ(weft_sleep(WEFT_SEC(5)), -ETIMEDOUT);
    HCHECK(weft_now() - start < WEFT_SEC(2));
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    HCHECK_INT_EQ(weft_yield(), 0);
    return 0;
}

static int shield_and_deadlines(void *arg)
{
    (void)arg;
    weft_deadline d;
    HCHECK_INT_EQ(weft_deadline_enter(&d, WEFT_MSEC(10)), 0);
    HCHECK_INT_EQ(weft_shield(sleep_40ms_shielded, NULL), 0);
    HCHECK(weft_deadline_expired(&d));
    HCHECK_INT_EQ(weft_yield(), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_shield(scope_inside_shield, NULL), 0);
    HCHECK_INT_EQ(weft_yield(), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    HCHECK_INT_EQ(weft_yield(), 0);
    return 0;
}

/* Enclosing deadlines are held back inside weft_shield; a scope opened
 * inside still works; the outer deadline applies again after. */
START_TEST(shield_holds_back_enclosing_deadlines)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), shield_and_deadlines, NULL), 0);
}
END_TEST

static int leave_outer_inside(void *arg)
{
    weft_deadline *outer = arg;
    HCHECK_INT_EQ(weft_deadline_leave(outer), -EINVAL);
    return 0;
}

static int shield_misuse(void *arg)
{
    (void)arg;
    HCHECK_INT_EQ(weft_shield(NULL, NULL), -EINVAL);
    weft_deadline d;
    HCHECK_INT_EQ(weft_deadline_enter(&d, WEFT_SEC(10)), 0);
    /* A scope entered outside cannot be left from inside the shield. */
    HCHECK_INT_EQ(weft_shield(leave_outer_inside, &d), 0);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    return 0;
}

START_TEST(shield_misuse_fails_cleanly)
{
    ck_assert_int_eq(weft_shield(return_int, NULL), -EPERM);
    ck_assert_int_eq(weft_shield(NULL, NULL), -EPERM);
    ck_assert_int_eq(harness_run(1, shield_misuse, NULL), 0);
}
END_TEST

/* ------------------------------------------------------------ scopes */

static int group_sleeper(void *arg)
{
    (void)arg;
    return weft_sleep(WEFT_SEC(30));
}

static int every_suspension_point_times_out(void *arg)
{
    (void)arg;
    weft_deadline d;
    int64_t start = weft_now();
    HCHECK_INT_EQ(weft_deadline_enter(&d, WEFT_MSEC(100)), 0);
    /* Not expired yet, unless this task was held up for the whole 100 ms
     * (a loaded machine): judged by the time read after each call. */
    bool expired = weft_deadline_expired(&d);
    HCHECK(!expired || weft_now() - start >= WEFT_MSEC(100));
    int rc = weft_yield();
    if (weft_now() - start < WEFT_MSEC(100))
        HCHECK_INT_EQ(rc, 0);
    else
        HCHECK_MSG(rc == 0 || rc == -ETIMEDOUT, "yield: %d", rc);
    HCHECK_INT_EQ(weft_sleep(WEFT_SEC(10)), -ETIMEDOUT);
    int64_t took = weft_now() - start;
    HCHECK_MSG(took >= WEFT_MSEC(100) && took < WEFT_SEC(5), "sleep cut after %lld ns",
               (long long)took);
    HCHECK(weft_deadline_expired(&d));
    /* Every later suspension point inside the scope. */
    HCHECK_INT_EQ(weft_yield(), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_sleep(1), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_sleep(0), -ETIMEDOUT);
    HCHECK(!weft_cancelled());

    struct child c = {.sleep_ns = WEFT_SEC(30), .cleanup_ns = WEFT_MSEC(5)};
    weft_task *t = weft_spawn(child_main, &c);
    HREQUIRE(t != NULL, -1);
    HCHECK_INT_EQ(weft_join(t), -ETIMEDOUT);
    HCHECK_INT_EQ(atomic_load(&c.ended), 1);

    struct child c2 = {.sleep_ns = WEFT_SEC(30)};
    HCHECK_INT_EQ(weft_wait_for(child_main, &c2, WEFT_SEC(30)), -ETIMEDOUT);
    HCHECK_INT_EQ(atomic_load(&c2.ended), 1);

    weft_task *g[2] = {weft_spawn(group_sleeper, NULL), weft_spawn(group_sleeper, NULL)};
    HREQUIRE(g[0] && g[1], -1);
    HCHECK_INT_EQ(weft_wait_any(g, 2, -1), -ETIMEDOUT);
    int st[2] = {1, 1};
    HCHECK_INT_EQ(weft_gather(g, 2, st), -ETIMEDOUT);
    HCHECK_INT_EQ(st[0], -ECANCELED);
    HCHECK_INT_EQ(st[1], -ECANCELED);

    weft_group *gr = weft_group_new();
    HREQUIRE(gr != NULL, -1);
    HCHECK_INT_EQ(weft_group_spawn(gr, group_sleeper, NULL), 0);
    HCHECK_INT_EQ(weft_group_wait(gr), -ETIMEDOUT);

    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    HCHECK_INT_EQ(weft_yield(), 0);
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), 0);
    return 0;
}

START_TEST(every_suspension_point_in_an_expired_scope_times_out)
{
    ck_assert_int_eq(
        harness_run(harness_workers_variant(_i), every_suspension_point_times_out, NULL), 0);
}
END_TEST

static int inner_does_not_extend(void *arg)
{
    (void)arg;
    weft_deadline outer, inner;
    HCHECK_INT_EQ(weft_deadline_enter(&outer, WEFT_MSEC(20)), 0);
    HCHECK_INT_EQ(weft_deadline_enter(&inner, WEFT_SEC(10)), 0);
    int64_t start = weft_now();
    HCHECK_INT_EQ(weft_sleep(WEFT_SEC(5)), -ETIMEDOUT);
    HCHECK(weft_now() - start < WEFT_SEC(2));
    HCHECK(weft_deadline_expired(&outer));
    HCHECK(!weft_deadline_expired(&inner));
    HCHECK_INT_EQ(weft_deadline_leave(&inner), 0);
    HCHECK_INT_EQ(weft_yield(), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&outer), 0);
    HCHECK_INT_EQ(weft_yield(), 0);
    return 0;
}

START_TEST(inner_scope_never_extends_an_outer_one)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), inner_does_not_extend, NULL), 0);
}
END_TEST

static int inner_expires_first(void *arg)
{
    (void)arg;
    weft_deadline outer, inner;
    HCHECK_INT_EQ(weft_deadline_enter(&outer, WEFT_SEC(10)), 0);
    /* start before the scope: its instant is at least start + 20 ms. */
    int64_t start = weft_now();
    HCHECK_INT_EQ(weft_deadline_enter(&inner, WEFT_MSEC(20)), 0);
    HCHECK_INT_EQ(weft_sleep(WEFT_SEC(5)), -ETIMEDOUT);
    int64_t took = weft_now() - start;
    HCHECK_MSG(took >= WEFT_MSEC(20) && took < WEFT_SEC(2), "took %lld ns", (long long)took);
    HCHECK(weft_deadline_expired(&inner));
    HCHECK(!weft_deadline_expired(&outer));
    /* Leaving restores the outer scope, which has not expired. */
    HCHECK_INT_EQ(weft_deadline_leave(&inner), 0);
    HCHECK_INT_EQ(weft_yield(), 0);
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(2)), 0);
    /* A third level, entered with an absolute instant. */
    weft_deadline third;
    HCHECK_INT_EQ(weft_deadline_enter_at(&third, weft_now() + WEFT_MSEC(10)), 0);
    start = weft_now();
    HCHECK_INT_EQ(weft_sleep(WEFT_SEC(5)), -ETIMEDOUT);
    HCHECK(weft_now() - start < WEFT_SEC(2));
    HCHECK_INT_EQ(weft_deadline_leave(&third), 0);
    HCHECK_INT_EQ(weft_deadline_leave(&outer), 0);
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), 0);
    return 0;
}

START_TEST(inner_scope_expires_first_and_leaving_restores_the_outer)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), inner_expires_first, NULL), 0);
}
END_TEST

static int zero_scope(void *arg)
{
    (void)arg;
    weft_deadline d;
    HCHECK_INT_EQ(weft_deadline_enter(&d, 0), 0);
    HCHECK(weft_deadline_expired(&d));
    HCHECK_INT_EQ(weft_yield(), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    HCHECK_INT_EQ(weft_deadline_enter(&d, -5), 0);
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    HCHECK_INT_EQ(weft_deadline_enter_at(&d, weft_now() - WEFT_SEC(1)), 0);
    HCHECK_INT_EQ(weft_yield(), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    /* WEFT_FOREVER never passes; a huge timeout does not wrap. */
    HCHECK_INT_EQ(weft_deadline_enter_at(&d, WEFT_FOREVER), 0);
    weft_deadline e;
    HCHECK_INT_EQ(weft_deadline_enter(&e, INT64_MAX), 0);
    HCHECK(!weft_deadline_expired(&d));
    HCHECK(!weft_deadline_expired(&e));
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), 0);
    HCHECK_INT_EQ(weft_deadline_leave(&e), 0);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    HCHECK_INT_EQ(weft_deadline_leave(&d), -EINVAL); /* already left */
    return 0;
}

START_TEST(scope_of_zero_or_past_instant_is_expired_at_once)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), zero_scope, NULL), 0);
}
END_TEST

static int cancel_beats_timeout(void *arg)
{
    (void)arg;
    weft_deadline d;
    HCHECK_INT_EQ(weft_deadline_enter(&d, 0), 0);
    weft_cancel(weft_current());
    HCHECK_INT_EQ(weft_yield(), -ECANCELED);
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), -ECANCELED);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    return 0;
}

/* Cancellation wins over an expired deadline. */
START_TEST(cancellation_wins_over_an_expired_scope)
{
    ck_assert_int_eq(harness_run(1, cancel_beats_timeout, NULL), 0);
}
END_TEST

static int leave_other(void *arg)
{
    return weft_deadline_leave(arg);
}

static int scope_misuse(void *arg)
{
    (void)arg;
    weft_deadline a, b;
    HCHECK_INT_EQ(weft_deadline_enter(NULL, WEFT_SEC(1)), -EINVAL);
    HCHECK_INT_EQ(weft_deadline_enter_at(NULL, WEFT_SEC(1)), -EINVAL);
    HCHECK_INT_EQ(weft_deadline_leave(NULL), -EINVAL);
    /* Another task cannot leave our scope. (Checked under a long scope of
     * its own: the join is a suspension point, and under a's 500 ms a
     * loaded machine could make it time out instead.) */
    HCHECK_INT_EQ(weft_deadline_enter(&b, WEFT_SEC(30)), 0);
    weft_task *t = weft_spawn(leave_other, &b);
    HREQUIRE(t != NULL, -1);
    HCHECK_INT_EQ(weft_join(t), -EINVAL);
    HCHECK_INT_EQ(weft_deadline_leave(&b), 0);
    HCHECK_INT_EQ(weft_deadline_enter(&a, WEFT_MSEC(500)), 0);
    HCHECK_INT_EQ(weft_deadline_enter(&b, WEFT_SEC(10)), 0);
    /* Out of order: refused, nothing changes (b stays innermost, a's
     * deadline still applies). */
    HCHECK_INT_EQ(weft_deadline_leave(&a), -EINVAL);
    int64_t start = weft_now();
    HCHECK_INT_EQ(weft_sleep(WEFT_SEC(5)), -ETIMEDOUT);
    HCHECK(weft_now() - start < WEFT_SEC(2));
    HCHECK_INT_EQ(weft_deadline_leave(&b), 0);
    HCHECK_INT_EQ(weft_deadline_leave(&b), -EINVAL);
    HCHECK_INT_EQ(weft_yield(), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&a), 0);
    HCHECK_INT_EQ(weft_deadline_leave(&a), -EINVAL);
    HCHECK_INT_EQ(weft_yield(), 0);
    /* A zeroed scope that was never entered. */
    weft_deadline z;
    memset(&z, 0, sizeof z);
    HCHECK_INT_EQ(weft_deadline_leave(&z), -EINVAL);
    return 0;
}

START_TEST(out_of_order_or_foreign_leave_fails_with_einval)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), scope_misuse, NULL), 0);
}
END_TEST

static int child_sleeps_1ms(void *arg)
{
    (void)arg;
    return weft_sleep(WEFT_MSEC(1));
}

static int scope_not_inherited(void *arg)
{
    (void)arg;
    weft_deadline d;
    HCHECK_INT_EQ(weft_deadline_enter(&d, 0), 0);
    weft_task *t = weft_spawn(child_sleeps_1ms, NULL);
    HREQUIRE(t != NULL, -1);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    HCHECK_INT_EQ(weft_join(t), 0);
    return 0;
}

/* A scope bounds the task that entered it, not the tasks it spawns. */
START_TEST(scope_does_not_reach_spawned_tasks)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), scope_not_inherited, NULL), 0);
}
END_TEST

static int scope_across_migrations(void *arg)
{
    (void)arg;
    weft_deadline d;
    int64_t start = weft_now();
    HCHECK_INT_EQ(weft_deadline_enter(&d, WEFT_MSEC(30)), 0);
    int n = 0;
    int rc;
    while ((rc = weft_yield()) == 0 && weft_now() - start < WEFT_SEC(5))
        n++;
    HCHECK_INT_EQ(rc, -ETIMEDOUT);
    HCHECK(weft_now() - start >= WEFT_MSEC(30));
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    return 0;
}

static int yielders(void *arg)
{
    (void)arg;
    weft_task *t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = weft_spawn(scope_across_migrations, NULL);
        HREQUIRE(t[i] != NULL, -1);
    }
    for (int i = 0; i < 4; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    return 0;
}

/* Busy tasks that yield (and move between workers) time out at their
 * scope's deadline. */
START_TEST(scope_applies_to_a_task_that_only_yields)
{
    ck_assert_int_eq(harness_run(race_workers[_i], yielders, NULL), 0);
}
END_TEST

START_TEST(time_calls_outside_a_task)
{
    weft_deadline d;
    memset(&d, 0, sizeof d);
    ck_assert_int_eq(weft_sleep(WEFT_MSEC(1)), -EPERM);
    ck_assert_int_eq(weft_sleep(0), -EPERM);
    ck_assert_int_eq(weft_wait_for(return_int, NULL, WEFT_SEC(1)), -EPERM);
    ck_assert_int_eq(weft_wait_for(NULL, NULL, WEFT_SEC(1)), -EPERM);
    ck_assert_int_eq(weft_deadline_enter(&d, WEFT_SEC(1)), -EPERM);
    ck_assert_int_eq(weft_deadline_enter_at(&d, WEFT_SEC(1)), -EPERM);
    ck_assert_int_eq(weft_deadline_enter(NULL, WEFT_SEC(1)), -EPERM);
    ck_assert_int_eq(weft_deadline_leave(&d), -EPERM);
    ck_assert_int_eq(weft_deadline_leave(NULL), -EPERM);
    ck_assert(!weft_deadline_expired(NULL));
}
END_TEST

static int wait_for_misuse(void *arg)
{
    (void)arg;
    HCHECK_INT_EQ(weft_wait_for(NULL, NULL, WEFT_SEC(1)), -EINVAL);
    HCHECK_INT_EQ(weft_wait_for(NULL, NULL, -1), -EINVAL);
    return 0;
}

START_TEST(wait_for_with_null_fn_fails_with_einval)
{
    ck_assert_int_eq(harness_run(1, wait_for_misuse, NULL), 0);
}
END_TEST

static int expired_from_plain(void *arg)
{
    weft_deadline *d = arg;
    return weft_deadline_enter(d, WEFT_MSEC(5));
}

START_TEST(deadline_expired_can_be_read_from_any_thread)
{
    weft_deadline d;
    ck_assert_int_eq(harness_run(1, expired_from_plain, &d), 0);
    /* The scope's owner has ended; its instant can still be read. */
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
    ck_assert(weft_deadline_expired(&d));
}
END_TEST

/* Nests weft_shield until it refuses; *depth counts the levels entered. */
static int shield_deeper(void *arg)
{
    unsigned *depth = arg;
    ++*depth;
    return weft_shield(shield_deeper, arg);
}

static int deep_shield_main(void *arg)
{
    unsigned *depth = arg;
    *depth = 0;
    int rc = weft_shield(shield_deeper, depth);
    /* Every level returns the refusal; cancellation works again after. */
    HCHECK_INT_EQ(rc, -EOVERFLOW);
    weft_cancel(weft_current());
    HCHECK_INT_EQ(weft_yield(), -ECANCELED);
    return 0;
}

/* Shields nest 65535 deep, then refuse with -EOVERFLOW instead of
 * wrapping the depth around (which would leave cancellation held). */
START_TEST(shield_refuses_beyond_65535_deep)
{
    weft_options opt = {.workers = 1, .stack_size = 64u << 20};
    unsigned depth = 0;
    ck_assert_int_eq(harness_run_opts(&opt, deep_shield_main, &depth), 0);
    harness_assert_clean();
    ck_assert_uint_eq(depth, 65535);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("deadline");

    TCase *tc = harness_tcase(s, "now", 10);
    tcase_add_test(tc, now_is_monotonic_and_on_clock_monotonic);
    tcase_add_loop_test(tc, now_works_inside_a_task, 0, HARNESS_N_WORKER_VARIANTS);

    tc = harness_tcase(s, "sleep", 30);
    tcase_add_loop_test(tc, sleep_waits_at_least_its_duration, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, sleep_of_zero_or_less_acts_like_a_yield);
    tcase_add_loop_test(tc, sleep_of_int64_max_does_not_overflow, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, cancelled_sleeper_wakes_at_once, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, sleeper_cancelled_from_a_plain_thread_wakes_at_once, 0,
                        HARNESS_N_WORKER_VARIANTS);

    tc = harness_tcase(s, "races", 60);
    tcase_add_loop_test(tc, cancel_arriving_while_the_timer_fires, 0, N_RACE_WORKERS);
    tcase_add_loop_test(tc, cancel_from_a_plain_thread_at_the_timer_instant, 0, N_RACE_WORKERS);
    tcase_add_loop_test(tc, sleepers_on_other_workers_are_cancelled_or_woken, 0, N_RACE_WORKERS);
    tcase_add_loop_test(tc, tasks_of_plain_threads_sleep, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, tasks_spawned_on_from_a_plain_thread_sleep, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, busy_workers_timer_is_fired_by_the_other_worker);

    /* Wall-clock bounds that valgrind (one thread at a time) and TSan
     * cannot meet: CK_EXCLUDE_TAGS=timing leaves them out there. */
    tc = harness_tcase(s, "timing", 30);
    tcase_set_tags(tc, "timing");
    tcase_add_loop_test(tc, timer_fires_close_to_its_deadline, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, busy_worker_does_not_delay_its_timers);

    tc = harness_tcase(s, "many", 120);
    tcase_add_loop_test(tc, many_sleepers_with_random_delays_all_wake_none_early, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, timer_wake_is_not_queued_behind_a_spawn_storm, 0, 2);
    tcase_add_loop_test(tc, cancelling_many_sleepers_wakes_them_all, 0,
                        HARNESS_N_WORKER_VARIANTS);

    tc = harness_tcase(s, "wait_for", 60);
    tcase_add_loop_test(tc, wait_for_returns_the_child_status_in_time, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, wait_for_timeout_cancels_the_child_and_waits_for_its_end, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, wait_for_returns_what_a_cancelled_child_returns_instead, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, wait_for_with_zero_timeout, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, wait_for_cancelled_caller_cancels_and_waits_for_the_child, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, wait_for_honours_the_callers_deadline_scope, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, wait_for_child_finishing_at_the_timeout_loses_nothing, 0,
                        N_RACE_WORKERS);
    tcase_add_loop_test(tc, wait_for_cancelled_as_the_child_finishes_keeps_the_cancellation, 0,
                        N_RACE_WORKERS);
    tcase_add_test(tc, wait_for_with_null_fn_fails_with_einval);

    /* 131,070 nested frames: more than ThreadSanitizer's fixed shadow
     * stack of 65,536 entries per thread or fiber, which it overruns
     * without a check (a crash inside TSan, seen once in the CI's TSan run
     * under load): tagged "deep", which the TSan run excludes. */
    tc = harness_tcase(s, "shield_deep", 30);
    tcase_set_tags(tc, "deep");
    tcase_add_test(tc, shield_refuses_beyond_65535_deep);
    tc = harness_tcase(s, "shield", 30);
    tcase_add_loop_test(tc, shield_holds_back_cancellation_until_it_returns, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, shield_holds_back_a_pending_cancellation_and_nests, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, shield_holds_back_enclosing_deadlines, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, shield_misuse_fails_cleanly);

    tc = harness_tcase(s, "scope", 30);
    tcase_add_loop_test(tc, every_suspension_point_in_an_expired_scope_times_out, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, inner_scope_never_extends_an_outer_one, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, inner_scope_expires_first_and_leaving_restores_the_outer, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, scope_of_zero_or_past_instant_is_expired_at_once, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, cancellation_wins_over_an_expired_scope);
    tcase_add_loop_test(tc, out_of_order_or_foreign_leave_fails_with_einval, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, scope_does_not_reach_spawned_tasks, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, scope_applies_to_a_task_that_only_yields, 0, N_RACE_WORKERS);

    tc = harness_tcase(s, "misuse", 10);
    tcase_add_test(tc, time_calls_outside_a_task);
    tcase_add_test(tc, deadline_expired_can_be_read_from_any_thread);

    return s;
}
