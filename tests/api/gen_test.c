/* SPDX-License-Identifier: MIT */
/* The public contract of async generators (include/weft/gen.h): values
 * one at a time with the body parked in between, the end and the body's
 * status, close mid-way running the body's cleanup, close before the
 * first next not running the body, cancellation and deadlines of the
 * consumer reaching the body, and misuse. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#include "harness.h"

/* Loop index -> worker count, 1 / 2 / 4. */
static unsigned workers_of(int i)
{
    static const unsigned w[] = {1, 2, 4};
    return w[i % 3];
}

struct counting {
    int limit;           /* values to yield: 0..limit-1 */
    int end_status;      /* returned after the last value */
    atomic_int resumed;  /* yields that have returned 0 */
    atomic_int yield_rc; /* the first failing yield's status */
    atomic_int started;
    atomic_int cleaned_up;
    int64_t cleanup_sleep_ns;
};

/* Yields 0..limit-1; on a failed yield sleeps a little (suspension points
 * still work in the cleanup of a closed generator) and returns its
 * status. */
static int count_body(weft_gen *g, void *arg)
{
    struct counting *c = arg;
    atomic_store(&c->started, 1);
    for (intptr_t i = 0; i < c->limit; i++) {
        int rc = weft_gen_yield(g, (void *)i);
        if (rc < 0) {
            atomic_store(&c->yield_rc, rc);
            if (c->cleanup_sleep_ns)
                HCHECK_INT_EQ(weft_sleep(c->cleanup_sleep_ns), 0);
            atomic_store(&c->cleaned_up, 1);
            return rc;
        }
        atomic_fetch_add(&c->resumed, 1);
    }
    atomic_store(&c->cleaned_up, 1);
    return c->end_status;
}

static int produce_0_to_4(void *arg)
{
    struct counting *c = arg;
    weft_gen *g = weft_gen_new(count_body, c);
    HREQUIRE(g != NULL, -errno);
    /* Lazy: nothing runs before the first next. */
    HCHECK_INT_EQ(weft_yield(), 0);
    HCHECK_INT_EQ(atomic_load(&c->started), 0);
    void *v;
    for (intptr_t i = 0; i < 5; i++) {
        HCHECK_INT_EQ(weft_gen_next(g, &v), 1);
        HCHECK_PTR_EQ(v, (void *)i);
        /* The body is parked in the yield that gave us i. */
        HCHECK_INT_EQ(weft_sleep(WEFT_USEC(100)), 0);
        HCHECK_INT_EQ(atomic_load(&c->resumed), i);
    }
    HCHECK_INT_EQ(weft_gen_next(g, &v), 0);
    HCHECK_INT_EQ(weft_gen_next(g, &v), 0); /* finished stays finished */
    HCHECK_INT_EQ(atomic_load(&c->cleaned_up), 1);
    HCHECK_INT_EQ(weft_gen_close(g), 0);
    return 0;
}

START_TEST(generator_produces_0_to_4_then_ends)
{
    struct counting c = {.limit = 5};
    ck_assert_int_eq(harness_run(workers_of(_i), produce_0_to_4, &c), 0);
    harness_assert_clean();
    ck_assert_int_eq(atomic_load(&c.resumed), 5);
    ck_assert_int_eq(atomic_load(&c.yield_rc), 0);
}
END_TEST

static int close_midway(void *arg)
{
    struct counting *c = arg;
    weft_gen *g = weft_gen_new(count_body, c);
    HREQUIRE(g != NULL, -errno);
    void *v;
    for (intptr_t i = 0; i < 3; i++) {
        HCHECK_INT_EQ(weft_gen_next(g, &v), 1);
        HCHECK_PTR_EQ(v, (void *)i);
    }
    HCHECK_INT_EQ(atomic_load(&c->cleaned_up), 0);
    /* The pending yield fails with -ECANCELED, the body cleans up (and
     * may suspend while doing so), and close returns after it. A body that
     * answers close with -ECANCELED has exited cleanly. */
    HCHECK_INT_EQ(weft_gen_close(g), 0);
    HCHECK_INT_EQ(atomic_load(&c->cleaned_up), 1);
    HCHECK_INT_EQ(atomic_load(&c->yield_rc), -ECANCELED);
    return 0;
}

START_TEST(closing_midway_runs_the_body_cleanup)
{
    struct counting c = {.limit = 1000, .cleanup_sleep_ns = WEFT_MSEC(2)};
    ck_assert_int_eq(harness_run(workers_of(_i), close_midway, &c), 0);
    harness_assert_clean();
    ck_assert_int_eq(atomic_load(&c.resumed), 2);
}
END_TEST

/* A body that ignores the close and yields again gets -ECANCELED again. */
static int stubborn_body(weft_gen *g, void *arg)
{
    int *n_failed = arg;
    for (int i = 0; i < 5; i++)
        if (weft_gen_yield(g, NULL) == -ECANCELED)
            ++*n_failed;
    return 9;
}

static int close_stubborn(void *arg)
{
    int *n_failed = arg;
    weft_gen *g = weft_gen_new(stubborn_body, n_failed);
    HREQUIRE(g != NULL, -errno);
    void *v;
    HCHECK_INT_EQ(weft_gen_next(g, &v), 1);
    /* Its own status is returned when it is not -ECANCELED. */
    HCHECK_INT_EQ(weft_gen_close(g), 9);
    return 0;
}

START_TEST(yields_after_close_keep_failing)
{
    int n_failed = 0;
    ck_assert_int_eq(harness_run(workers_of(_i), close_stubborn, &n_failed), 0);
    harness_assert_clean();
    ck_assert_int_eq(n_failed, 5);
}
END_TEST

static int close_unstarted(void *arg)
{
    struct counting *c = arg;
    weft_gen *g = weft_gen_new(count_body, c);
    HREQUIRE(g != NULL, -errno);
    HCHECK_INT_EQ(weft_gen_close(g), 0);
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(2)), 0);
    return 0;
}

/* As asyncio's aclose() of a generator never iterated: the body never
 * runs. */
START_TEST(closing_before_the_first_next_never_runs_the_body)
{
    struct counting c = {.limit = 5};
    ck_assert_int_eq(harness_run(workers_of(_i), close_unstarted, &c), 0);
    harness_assert_clean();
    ck_assert_int_eq(atomic_load(&c.started), 0);
}
END_TEST

static int failing_end(void *arg)
{
    struct counting *c = arg;
    weft_gen *g = weft_gen_new(count_body, c);
    HREQUIRE(g != NULL, -errno);
    void *v;
    HCHECK_INT_EQ(weft_gen_next(g, &v), 1);
    HCHECK_INT_EQ(weft_gen_next(g, &v), 1);
    /* The body returned -EIO: next says so instead of 0, every time. */
    HCHECK_INT_EQ(weft_gen_next(g, &v), -EIO);
    HCHECK_INT_EQ(weft_gen_next(g, &v), -EIO);
    HCHECK_INT_EQ(weft_gen_close(g), -EIO);
    return 0;
}

START_TEST(body_failure_is_returned_by_next_and_close)
{
    struct counting c = {.limit = 2, .end_status = -EIO};
    ck_assert_int_eq(harness_run(workers_of(_i), failing_end, &c), 0);
    harness_assert_clean();
}
END_TEST

/* --- interruption of the consumer -------------------------------------- */

struct slow {
    atomic_int started;
    atomic_int sleep_rc;
    atomic_int ended;
};

/* Yields once, then sleeps for a long time before the second value. */
static int slow_body(weft_gen *g, void *arg)
{
    struct slow *s = arg;
    int rc = weft_gen_yield(g, (void *)1);
    if (rc < 0)
        return rc;
    atomic_store(&s->started, 1);
    rc = weft_sleep(WEFT_SEC(30));
    atomic_store(&s->sleep_rc, rc);
    atomic_store(&s->ended, 1);
    return rc;
}

static int next_under_deadline(void *arg)
{
    struct slow *s = arg;
    weft_gen *g = weft_gen_new(slow_body, s);
    HREQUIRE(g != NULL, -errno);
    void *v;
    HCHECK_INT_EQ(weft_gen_next(g, &v), 1);
    weft_deadline d;
    HREQUIRE(weft_deadline_enter(&d, WEFT_MSEC(10)) == 0, -1);
    /* The deadline interrupts the body's await (as in asyncio, where the
     * body runs in the consumer's task), and next returns once the body
     * has ended. */
    HCHECK_INT_EQ(weft_gen_next(g, &v), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    HCHECK_INT_EQ(atomic_load(&s->ended), 1);
    HCHECK_INT_EQ(atomic_load(&s->sleep_rc), -ECANCELED);
    /* Finished: next reports the body's status; close frees it. */
    HCHECK_INT_EQ(weft_gen_next(g, &v), -ECANCELED);
    HCHECK_INT_EQ(weft_gen_close(g), -ECANCELED);
    return 0;
}

START_TEST(next_honours_deadline_scopes)
{
    struct slow s = {0};
    ck_assert_int_eq(harness_run(workers_of(_i), next_under_deadline, &s), 0);
    harness_assert_clean();
}
END_TEST

struct consumer_arg {
    weft_gen *g;
    atomic_int waiting;
};

static int consume_two(void *arg)
{
    struct consumer_arg *ca = arg;
    void *v;
    int rc = weft_gen_next(ca->g, &v);
    HCHECK_INT_EQ(rc, 1);
    atomic_store(&ca->waiting, 1);
    return weft_gen_next(ca->g, &v);
}

static int cancel_consumer(void *arg)
{
    struct slow *s = arg;
    struct consumer_arg ca = {.g = weft_gen_new(slow_body, s)};
    HREQUIRE(ca.g != NULL, -errno);
    weft_task *t = weft_spawn(consume_two, &ca);
    HREQUIRE(t != NULL, -errno);
    HYIELD_UNTIL(atomic_load(&s->started) != 0);
    weft_cancel(t);
    HCHECK_INT_EQ(weft_join(t), -ECANCELED);
    HCHECK_INT_EQ(atomic_load(&s->ended), 1);
    HCHECK_INT_EQ(weft_gen_close(ca.g), -ECANCELED);
    return 0;
}

START_TEST(cancelling_the_consumer_cancels_the_body)
{
    struct slow s = {0};
    ck_assert_int_eq(harness_run(workers_of(_i), cancel_consumer, &s), 0);
    harness_assert_clean();
}
END_TEST

/* The body's own deadline scope and cancellation reach its yield. */
static int yield_under_deadline_body(weft_gen *g, void *arg)
{
    atomic_int *yield_returned = arg;
    weft_deadline d;
    int rc = weft_deadline_enter(&d, WEFT_MSEC(10));
    if (rc < 0)
        return rc;
    rc = weft_gen_yield(g, (void *)1); /* the consumer waits 30 ms */
    atomic_store(yield_returned, 1);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    return rc;
}

static int self_cancelling_body(weft_gen *g, void *arg)
{
    (void)arg;
    weft_cancel(weft_current());
    return weft_gen_yield(g, (void *)1);
}

static int body_interruptions(void *arg)
{
    (void)arg;
    atomic_int yield_returned = 0;
    weft_gen *g = weft_gen_new(yield_under_deadline_body, &yield_returned);
    HREQUIRE(g != NULL, -errno);
    void *v;
    HCHECK_INT_EQ(weft_gen_next(g, &v), 1);
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(30)), 0);
    /* ... and until the body's timer has fired: it may be due on a worker
     * the OS has not run yet, and a next before that would resume the
     * yield with 0 instead. */
    HYIELD_UNTIL(atomic_load(&yield_returned));
    /* The pending yield timed out and the body returned that. */
    HCHECK_INT_EQ(weft_gen_next(g, &v), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_gen_close(g), -ETIMEDOUT);

    g = weft_gen_new(self_cancelling_body, NULL);
    HREQUIRE(g != NULL, -errno);
    HCHECK_INT_EQ(weft_gen_next(g, &v), -ECANCELED);
    HCHECK_INT_EQ(weft_gen_close(g), -ECANCELED);
    return 0;
}

START_TEST(yield_honours_the_body_deadline_and_cancellation)
{
    ck_assert_int_eq(harness_run(workers_of(_i), body_interruptions, NULL), 0);
    harness_assert_clean();
}
END_TEST

/* --- misuse ------------------------------------------------------------ */

static int self_next_body(weft_gen *g, void *arg)
{
    (void)arg;
    void *v;
    HCHECK_INT_EQ(weft_gen_next(g, &v), -EINVAL);
    HCHECK_INT_EQ(weft_gen_close(g), -EINVAL);
    return weft_gen_yield(g, NULL);
}

static int other_body(weft_gen *g, void *arg)
{
    (void)arg;
    return weft_gen_yield(g, NULL);
}

struct busy {
    weft_gen *g;
    atomic_int waiting;
};

static int next_in_background(void *arg)
{
    struct busy *b = arg;
    void *v;
    atomic_store(&b->waiting, 1);
    return weft_gen_next(b->g, &v);
}

/* Its first value waits for the event arg. */
static int gated_first_value(weft_gen *g, void *arg)
{
    int rc = weft_event_wait(arg);
    if (rc < 0)
        return rc;
    return weft_gen_yield(g, NULL);
}

static int misuse_main(void *arg)
{
    (void)arg;
    void *v;
    HCHECK_INT_EQ(weft_gen_next(NULL, &v), -EINVAL);
    HCHECK_INT_EQ(weft_gen_yield(NULL, NULL), -EINVAL);
    HCHECK_INT_EQ(weft_gen_close(NULL), -EINVAL);
    errno = 0;
    HCHECK(weft_gen_new(NULL, NULL) == NULL);
    HCHECK_INT_EQ(errno, EINVAL);

    /* The body calling next or close on itself; a stranger yielding. */
    weft_gen *g = weft_gen_new(self_next_body, NULL);
    HREQUIRE(g != NULL, -errno);
    HCHECK_INT_EQ(weft_gen_next(g, &v), 1);
    HCHECK_INT_EQ(weft_gen_yield(g, NULL), -EINVAL);
    HCHECK_INT_EQ(weft_gen_close(g), 0);

    /* next with a NULL value pointer drops the value. */
    g = weft_gen_new(other_body, NULL);
    HREQUIRE(g != NULL, -errno);
    HCHECK_INT_EQ(weft_gen_next(g, NULL), 1);
    HCHECK_INT_EQ(weft_gen_next(g, NULL), 0);
    HCHECK_INT_EQ(weft_gen_close(g), 0);

    /* Two consumers at once: the second is refused, and so is a close. */
    weft_event *gate = weft_event_new();
    HREQUIRE(gate != NULL, -ENOMEM);
    struct busy b = {.g = weft_gen_new(gated_first_value, gate)};
    HREQUIRE(b.g != NULL, -errno);
    weft_task *t = weft_spawn(next_in_background, &b);
    HREQUIRE(t != NULL, -errno);
    HWAIT_PARKED(NULL, "gen next", 1);
    HCHECK_INT_EQ(weft_gen_next(b.g, &v), -EBUSY);
    HCHECK_INT_EQ(weft_gen_close(b.g), -EBUSY);
    weft_event_set(gate);
    HCHECK_INT_EQ(weft_join(t), 1);
    HCHECK_INT_EQ(weft_gen_close(b.g), 0);
    weft_event_free(gate);
    return 0;
}

START_TEST(misuse_is_rejected)
{
    ck_assert_int_eq(harness_run(workers_of(_i), misuse_main, NULL), 0);
    harness_assert_clean();
}
END_TEST

/* A generator already closed: close and next fail with -EINVAL (they
 * used to read the freed generator: a second close returned -EBUSY by
 * chance). Generators made afterwards, more than are cached, still work. */
static int closed_generator_main(void *arg)
{
    (void)arg;
    struct counting c = {.limit = 3};
    weft_gen *g = weft_gen_new(count_body, &c);
    HREQUIRE(g != NULL, -errno);
    void *v;
    HCHECK_INT_EQ(weft_gen_next(g, &v), 1);
    HCHECK_INT_EQ(weft_gen_close(g), 0);
    HCHECK_INT_EQ(weft_gen_close(g), -EINVAL);
    HCHECK_INT_EQ(weft_gen_next(g, &v), -EINVAL);
    /* Never started, closed twice. */
    struct counting u = {.limit = 3};
    weft_gen *h = weft_gen_new(count_body, &u);
    HREQUIRE(h != NULL, -errno);
    HCHECK_INT_EQ(weft_gen_close(h), 0);
    HCHECK_INT_EQ(weft_gen_close(h), -EINVAL);
    HCHECK_INT_EQ(atomic_load(&u.started), 0);
    enum { N = 3000 };
    for (int i = 0; i < N && !harness_failures(); i++) {
        struct counting k = {.limit = 2};
        weft_gen *x = weft_gen_new(count_body, &k);
        HREQUIRE(x != NULL, -errno);
        HCHECK_INT_EQ(weft_gen_next(x, &v), 1);
        HCHECK_PTR_EQ(v, (void *)0);
        HCHECK_INT_EQ(weft_gen_close(x), 0);
    }
    return 0;
}

START_TEST(closed_generator_calls_fail_with_einval)
{
    ck_assert_int_eq(harness_run(workers_of(_i), closed_generator_main, NULL), 0);
    harness_assert_clean();
}
END_TEST

static int outside_body(weft_gen *g, void *arg)
{
    (void)g;
    (void)arg;
    return 0;
}

START_TEST(generators_are_task_only)
{
    errno = 0;
    ck_assert_ptr_null(weft_gen_new(outside_body, NULL));
    ck_assert_int_eq(errno, EPERM);
    void *v;
    ck_assert_int_eq(weft_gen_next(NULL, &v), -EPERM);
    ck_assert_int_eq(weft_gen_yield(NULL, NULL), -EPERM);
    ck_assert_int_eq(weft_gen_close(NULL), -EPERM);
}
END_TEST

/* Many generators side by side, consumed from tasks on all workers. */
static int sum_body(weft_gen *g, void *arg)
{
    intptr_t n = (intptr_t)arg;
    for (intptr_t i = 1; i <= n; i++) {
        int rc = weft_gen_yield(g, (void *)i);
        if (rc < 0)
            return rc;
        if (i % 16 == 0 && (rc = weft_yield()) < 0)
            return rc;
    }
    return 0;
}

static int consume_sum(void *arg)
{
    intptr_t n = (intptr_t)arg;
    weft_gen *g = weft_gen_new(sum_body, (void *)n);
    HREQUIRE(g != NULL, -errno);
    intptr_t sum = 0;
    void *v;
    int rc;
    while ((rc = weft_gen_next(g, &v)) == 1)
        sum += (intptr_t)v;
    HCHECK_INT_EQ(rc, 0);
    HCHECK_INT_EQ(weft_gen_close(g), 0);
    return sum == n * (n + 1) / 2 ? 0 : -1;
}

static int many_generators(void *arg)
{
    (void)arg;
    weft_task *t[32];
    for (int i = 0; i < 32; i++) {
        t[i] = weft_spawn(consume_sum, (void *)(intptr_t)(200 + i));
        HREQUIRE(t[i] != NULL, -errno);
    }
    for (int i = 0; i < 32; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    return 0;
}

START_TEST(many_generators_on_all_workers)
{
    ck_assert_int_eq(harness_run(workers_of(_i), many_generators, NULL), 0);
    harness_assert_clean();
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("gen");

    TCase *tc = harness_tcase(s, "values", 30);
    tcase_add_loop_test(tc, generator_produces_0_to_4_then_ends, 0, 3);
    tcase_add_loop_test(tc, body_failure_is_returned_by_next_and_close, 0, 3);
    tcase_add_loop_test(tc, many_generators_on_all_workers, 0, 3);

    tc = harness_tcase(s, "close", 30);
    tcase_add_loop_test(tc, closing_midway_runs_the_body_cleanup, 0, 3);
    tcase_add_loop_test(tc, yields_after_close_keep_failing, 0, 3);
    tcase_add_loop_test(tc, closing_before_the_first_next_never_runs_the_body, 0, 3);

    tc = harness_tcase(s, "interrupt", 60);
    tcase_add_loop_test(tc, next_honours_deadline_scopes, 0, 3);
    tcase_add_loop_test(tc, cancelling_the_consumer_cancels_the_body, 0, 3);
    tcase_add_loop_test(tc, yield_honours_the_body_deadline_and_cancellation, 0, 3);

    tc = harness_tcase(s, "misuse", 30);
    tcase_add_loop_test(tc, misuse_is_rejected, 0, 3);
    tcase_add_loop_test(tc, closed_generator_calls_fail_with_einval, 0, 3);
    tcase_add_test(tc, generators_are_task_only);
    return s;
}
