/* SPDX-License-Identifier: MIT */
/* The poller alone (reactor/poller.h): a wake-up ends the owner's next
 * wait that may block, and only such a wait consumes it. A look without
 * waiting (timeout 0: the owner's maintenance, or a peer polling the
 * poller of a busy owner while it steals work) leaves it pending; when a
 * peer's look swallowed it, the owner, on its way to park, slept through
 * the wake-up it had been sent. */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "reactor/poller.h"

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define MS INT64_C(1000000)

/* Milliseconds a wait of up to timeout_ns on p took. */
static int64_t timed_wait_ms(struct poller *p, int64_t timeout_ns)
{
    int64_t t0 = mono_ns();
    ck_assert_int_ge(weft__poller_wait(p, timeout_ns), 0);
    return (mono_ns() - t0) / MS;
}

START_TEST(a_wake_ends_the_next_blocking_wait)
{
    struct poller p;
    ck_assert_int_eq(weft__poller_init(&p), 0);
    weft__poller_wake(&p);
    ck_assert_int_lt(timed_wait_ms(&p, 10000 * MS), 1000);
    /* Consumed: the next wait runs to its timeout. */
    ck_assert_int_ge(timed_wait_ms(&p, 50 * MS), 40);
    /* And a later wake-up writes the eventfd again. */
    weft__poller_wake(&p);
    ck_assert_int_lt(timed_wait_ms(&p, 10000 * MS), 1000);
    weft__poller_destroy(&p);
}
END_TEST

START_TEST(a_look_without_waiting_leaves_the_wake_pending)
{
    struct poller p;
    ck_assert_int_eq(weft__poller_init(&p), 0);
    weft__poller_wake(&p);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weft__poller_wait(&p, 0), 0); /* nothing dispatched */
    ck_assert_int_lt(timed_wait_ms(&p, 10000 * MS), 1000);
    weft__poller_destroy(&p);
}
END_TEST

/* The race the rule closes: a peer thread looks at the owner's poller
 * (work stealing) between the wake-up and the owner's wait. */
struct look {
    struct poller *p;
    atomic_int go, done;
};

static void *peer_looks(void *arg)
{
    struct look *l = arg;
    while (!atomic_load(&l->go))
        sched_yield();
    for (int i = 0; i < 100; i++)
        (void)weft__poller_wait(l->p, 0);
    atomic_store(&l->done, 1);
    return NULL;
}

START_TEST(a_peer_look_does_not_swallow_the_owners_wake)
{
    struct poller p;
    ck_assert_int_eq(weft__poller_init(&p), 0);
    struct look l = {.p = &p};
    atomic_init(&l.go, 0);
    atomic_init(&l.done, 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, peer_looks, &l), 0);
    weft__poller_wake(&p);
    atomic_store(&l.go, 1);
    while (!atomic_load(&l.done))
        sched_yield();
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_lt(timed_wait_ms(&p, 10000 * MS), 1000);
    weft__poller_destroy(&p);
}
END_TEST

static void *wake_later(void *arg)
{
    usleep(50000);
    weft__poller_wake(arg);
    return NULL;
}

START_TEST(a_wake_from_another_thread_ends_a_wait_in_progress)
{
    struct poller p;
    ck_assert_int_eq(weft__poller_init(&p), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, wake_later, &p), 0);
    ck_assert_int_lt(timed_wait_ms(&p, -1), 10000);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    weft__poller_destroy(&p);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("poller");
    TCase *tc = harness_tcase(s, "wake", 30);
    tcase_add_test(tc, a_wake_ends_the_next_blocking_wait);
    tcase_add_test(tc, a_look_without_waiting_leaves_the_wake_pending);
    tcase_add_test(tc, a_peer_look_does_not_swallow_the_owners_wake);
    tcase_add_test(tc, a_wake_from_another_thread_ends_a_wait_in_progress);
    return s;
}
