/* SPDX-License-Identifier: MIT */
/* The scheduler at several worker counts (2, 16 and 64, oversubscribed on
 * a small machine on purpose): sleeping workers stay asleep while a task
 * runs without suspending, and while every task sleeps; what a worker
 * stuck in one task strands (the task in its next slot, its due timers)
 * is served by another; many short sleepers across many workers all run
 * once. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

static const unsigned worker_counts[] = {2, 16, 64};
#define N_COUNTS ((int)(sizeof worker_counts / sizeof worker_counts[0]))

static uint64_t total_parks(const weft_stats *st)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < st->n_workers; i++)
        n += st->worker[i].parks;
    return n;
}

/* --- idle workers stay asleep ------------------------------------------ */

#define SPIN_NS WEFT_MSEC(300)

static int spin_without_suspending(void *arg)
{
    (void)arg;
    int64_t end = harness_now_ns() + SPIN_NS;
    while (harness_now_ns() < end)
        ;
    return 0;
}

struct idle_result {
    uint64_t parks_spinning, parks_asleep;
    unsigned workers;
};

static int measure_idle(void *arg)
{
    struct idle_result *r = arg;
    weft_runtime *rt = weft_runtime_current();
    r->workers = weft_runtime_workers(rt);
    static weft_stats a, b, c;
    /* Let every worker reach its first sleep. */
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(50)), 0);
    weft_runtime_stats(rt, &a);
    weft_task *t = weft_spawn(spin_without_suspending, NULL);
    HREQUIRE(t != NULL, -1);
    HCHECK_INT_EQ(weft_join(t), 0);
    weft_runtime_stats(rt, &b);
    HCHECK_INT_EQ(weft_sleep(SPIN_NS), 0);
    weft_runtime_stats(rt, &c);
    r->parks_spinning = total_parks(&b) - total_parks(&a);
    r->parks_asleep = total_parks(&c) - total_parks(&b);
    return 0;
}

/* While one task runs 300 ms without a suspension point, the other
 * workers do not wake (before the monitor each idle worker woke every
 * 2 ms: 40 to 50 wake-ups in all were measured here at 2, 16 and 64
 * workers, as many as 2 cores could run); while every task sleeps, only
 * the sleeper's timer wakes a worker. The bound allows a few wake-ups for
 * the spawn (a searcher that finds nothing) and the join, whatever the
 * worker count. A count, not a time: it holds on a loaded machine too. */
#define IDLE_WAKEUPS_MAX 16
START_TEST(idle_workers_do_not_wake)
{
    struct idle_result r = {0};
    weft_options opt = {.workers = worker_counts[_i]};
    ck_assert_int_eq(harness_run_opts(&opt, measure_idle, &r), 0);
    harness_assert_clean();
    fprintf(stderr, "idle_workers_do_not_wake: %u workers: %llu parks while one spun, "
                    "%llu while all slept\n",
            r.workers, (unsigned long long)r.parks_spinning, (unsigned long long)r.parks_asleep);
    ck_assert_msg(r.parks_spinning <= IDLE_WAKEUPS_MAX,
                  "%llu wake-ups of %u idle workers during a 300 ms spin",
                  (unsigned long long)r.parks_spinning, r.workers - 1);
    ck_assert_msg(r.parks_asleep <= IDLE_WAKEUPS_MAX,
                  "%llu wake-ups of %u sleeping workers during a 300 ms sleep",
                  (unsigned long long)r.parks_asleep, r.workers);
}
END_TEST

/* --- what a stuck worker strands --------------------------------------- */

struct stranded {
    weft_event *go;
    _Atomic(pthread_t) waker_thread, woken_thread;
    atomic_int woken;
};

static int woken_task(void *arg)
{
    struct stranded *s = arg;
    HCHECK_INT_EQ(weft_event_wait(s->go), 0);
    atomic_store(&s->woken_thread, pthread_self());
    atomic_store(&s->woken, 1);
    return 0;
}

/* Wakes the parked task (it goes to this worker's next slot), then holds
 * the worker without a suspension point until the woken task has run
 * elsewhere (or harness_wait_ns passes). */
static int waker_task(void *arg)
{
    struct stranded *s = arg;
    atomic_store(&s->waker_thread, pthread_self());
    weft_event_set(s->go);
    int64_t end = harness_now_ns() + harness_wait_ns();
    while (!atomic_load(&s->woken) && harness_now_ns() < end)
        ;
    return 0;
}

static int strand_a_task(void *arg)
{
    (void)arg;
    static struct stranded s;
    for (int round = 0; round < 5; round++) {
        s.go = weft_event_new();
        HREQUIRE(s.go != NULL, -1);
        atomic_store(&s.woken, 0);
        weft_task *w = weft_spawn(woken_task, &s);
        HREQUIRE(w != NULL, -1);
        /* Let it park on the event. */
        for (int i = 0; i < 100; i++)
            HCHECK_INT_EQ(weft_yield(), 0);
        weft_task *k = weft_spawn(waker_task, &s);
        HREQUIRE(k != NULL, -1);
        HCHECK_INT_EQ(weft_join(k), 0);
        HCHECK_INT_EQ(weft_join(w), 0);
        HCHECK_MSG(atomic_load(&s.woken), "round %d: the woken task did not run while its "
                   "waker held the worker", round);
        weft_event_free(s.go);
    }
    return 0;
}

/* A task woken into the next slot of a worker that then runs without
 * switching is run by another worker (the monitor moves it). */
START_TEST(task_stranded_in_next_slot_runs_elsewhere)
{
    weft_options opt = {.workers = worker_counts[_i]};
    ck_assert_int_eq(harness_run_opts(&opt, strand_a_task, NULL), 0);
}
END_TEST

/* --- many sleepers on many workers ------------------------------------- */

#define N_SLEEPERS 20000

static atomic_int sleepers_done;

static int short_sleeper(void *arg)
{
    int i = (int)(intptr_t)arg;
    HCHECK_INT_EQ(weft_sleep(WEFT_USEC(i % 2000)), 0);
    atomic_fetch_add(&sleepers_done, 1);
    return i;
}

static int spawn_sleepers(void *arg)
{
    (void)arg;
    static weft_task *t[N_SLEEPERS];
    for (int i = 0; i < N_SLEEPERS; i++) {
        t[i] = weft_spawn(short_sleeper, (void *)(intptr_t)i);
        HREQUIRE(t[i] != NULL, -1);
    }
    for (int i = 0; i < N_SLEEPERS; i++)
        HCHECK_INT_EQ(weft_join(t[i]), i);
    return 0;
}

/* The crash of the many-workers issue: 20,000 short sleeps on 8 or 16
 * workers ran a finished task again (a steal wrote over live slots). */
START_TEST(many_short_sleepers_each_run_once)
{
    atomic_store(&sleepers_done, 0);
    weft_options opt = {.workers = worker_counts[_i]};
    ck_assert_int_eq(harness_run_opts(&opt, spawn_sleepers, NULL), 0);
    ck_assert_int_eq(atomic_load(&sleepers_done), N_SLEEPERS);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = harness_tcase(s, "idle", 60);
    tcase_add_loop_test(tc, idle_workers_do_not_wake, 0, N_COUNTS);
    tc = harness_tcase(s, "stranded", 60);
    tcase_add_loop_test(tc, task_stranded_in_next_slot_runs_elsewhere, 0, N_COUNTS);
    tc = harness_tcase(s, "sleepers", 120);
    tcase_add_loop_test(tc, many_short_sleepers_each_run_once, 0, N_COUNTS);
    return s;
}
