/* SPDX-License-Identifier: MIT */
/* Wait queues alone (sched/waitq.c), with plain-thread waiters (the
 * condition-variable path) and with task waiters in a runtime: FIFO
 * order of wake_one, the results handed over, wake_all, and a waiter
 * that leaves on its own (timeout, cancellation) racing a waker: a
 * hand-off is either delivered (the wait returns 0 with the waker's
 * result) or never made (wake_one finds nobody), never both nor lost. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "harness.h"
#include "internal.h"
#include "sched/waitq.h"
#include "util/clock.h"

#define N_WAITERS 8

/* One queue and its mutex, with the order in which waiters queued
 * (recorded under the mutex, just before the wait queues them). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct waitq q;
static unsigned queued[64], n_queued;
static unsigned woken_order[64], n_woken;

struct wait_arg {
    unsigned id;
    int64_t deadline;
    int64_t delay; /* > 0: the deadline is this long after queueing */
    int rc;
    int result;
    bool woken;
    struct waiter w;
};

static void reset(void)
{
    weft__waitq_init(&q);
    n_queued = n_woken = 0;
}

static unsigned queue_len(void)
{
    unsigned n = 0;
    for (struct list *l = q.waiters.next; l != &q.waiters; l = l->next)
        n++;
    return n;
}

/* Waits on q (plain thread or task alike). */
static int do_wait(struct wait_arg *a)
{
    pthread_mutex_lock(&mu);
    queued[n_queued++] = a->id;
    a->w.data = a;
    if (a->delay > 0)
        a->deadline = weft__clock_ns() + a->delay;
    a->rc = weft__waitq_wait(&q, &a->w, &mu, a->deadline, "waitq_test");
    a->result = a->w.result;
    a->woken = a->w.woken;
    if (a->rc == 0)
        woken_order[n_woken++] = a->id;
    pthread_mutex_unlock(&mu);
    return 0;
}

static void *wait_thread(void *p)
{
    do_wait(p);
    return NULL;
}

static bool n_queued_is(void *p)
{
    pthread_mutex_lock(&mu);
    bool ok = queue_len() == (unsigned)(uintptr_t)p;
    pthread_mutex_unlock(&mu);
    return ok;
}

/* A waiter has queued (it may have left since). */
static bool has_queued(void *p)
{
    (void)p;
    pthread_mutex_lock(&mu);
    bool ok = n_queued > 0;
    pthread_mutex_unlock(&mu);
    return ok;
}

/* --- plain threads ------------------------------------------------------ */

START_TEST(plain_wake_one_fifo_with_results)
{
    reset();
    static struct wait_arg a[N_WAITERS];
    pthread_t t[N_WAITERS];
    for (unsigned i = 0; i < N_WAITERS; i++) {
        a[i] = (struct wait_arg){.id = i, .deadline = INT64_MAX, .rc = 99};
        ck_assert_int_eq(pthread_create(&t[i], NULL, wait_thread, &a[i]), 0);
    }
    ck_assert(harness_spin_until(n_queued_is, (void *)(uintptr_t)N_WAITERS));
    pthread_mutex_lock(&mu);
    ck_assert_uint_eq(n_queued, N_WAITERS);
    for (unsigned k = 0; k < N_WAITERS; k++) {
        /* The first is the one that queued first, and wake_one takes it. */
        struct waiter *w = weft__waitq_first(&q);
        ck_assert_ptr_nonnull(w);
        ck_assert_uint_eq(((struct wait_arg *)w->data)->id, queued[k]);
        ck_assert_ptr_null(w->task);
        ck_assert(weft__waitq_wake_one(&q, 100 + (int)k));
        ck_assert(w->woken);
        ck_assert_uint_eq(queue_len(), N_WAITERS - 1 - k);
    }
    ck_assert(weft__waitq_empty(&q));
    ck_assert_ptr_null(weft__waitq_first(&q));
    ck_assert(!weft__waitq_wake_one(&q, 1));
    pthread_mutex_unlock(&mu);
    for (unsigned i = 0; i < N_WAITERS; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    ck_assert_uint_eq(n_woken, N_WAITERS);
    for (unsigned k = 0; k < N_WAITERS; k++) {
        struct wait_arg *w = &a[queued[k]];
        ck_assert_int_eq(w->rc, 0);
        ck_assert(w->woken);
        ck_assert_int_eq(w->result, 100 + (int)k);
    }
}
END_TEST

START_TEST(plain_wake_all)
{
    reset();
    static struct wait_arg a[N_WAITERS];
    pthread_t t[N_WAITERS];
    for (unsigned i = 0; i < N_WAITERS; i++) {
        a[i] = (struct wait_arg){.id = i, .deadline = INT64_MAX, .rc = 99};
        ck_assert_int_eq(pthread_create(&t[i], NULL, wait_thread, &a[i]), 0);
    }
    ck_assert(harness_spin_until(n_queued_is, (void *)(uintptr_t)N_WAITERS));
    pthread_mutex_lock(&mu);
    weft__waitq_wake_all(&q, -EPIPE);
    ck_assert(weft__waitq_empty(&q));
    ck_assert(!weft__waitq_wake_one(&q, 1));
    weft__waitq_wake_all(&q, 5); /* nobody: a no-op */
    pthread_mutex_unlock(&mu);
    for (unsigned i = 0; i < N_WAITERS; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert_int_eq(a[i].rc, 0);
        ck_assert(a[i].woken);
        ck_assert_int_eq(a[i].result, -EPIPE);
    }
    ck_assert_uint_eq(n_woken, N_WAITERS);
}
END_TEST

/* A plain waiter whose deadline passes (or has passed) leaves the queue:
 * the next wake_one finds the waiter behind it, or nobody. */
START_TEST(plain_timeout_leaves_queue)
{
    reset();
    static struct wait_arg a[3];
    pthread_t t[3];
    a[0] = (struct wait_arg){.id = 0, .deadline = INT64_MAX, .rc = 99};
    a[1] = (struct wait_arg){.id = 1, .deadline = weft__clock_ns() + 20000000, .rc = 99};
    a[2] = (struct wait_arg){.id = 2, .deadline = weft__clock_ns() - 1000, .rc = 99};
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_int_eq(pthread_create(&t[i], NULL, wait_thread, &a[i]), 0);
        if (i == 0)
            ck_assert(harness_spin_until(n_queued_is, (void *)(uintptr_t)1));
    }
    ck_assert_int_eq(pthread_join(t[1], NULL), 0);
    ck_assert_int_eq(pthread_join(t[2], NULL), 0);
    for (unsigned i = 1; i < 3; i++) {
        ck_assert_int_eq(a[i].rc, -ETIMEDOUT);
        ck_assert(!a[i].woken);
    }
    pthread_mutex_lock(&mu);
    ck_assert_uint_eq(queue_len(), 1);
    ck_assert_ptr_eq(weft__waitq_first(&q), &a[0].w);
    ck_assert(weft__waitq_wake_one(&q, 3));
    ck_assert(!weft__waitq_wake_one(&q, 4));
    pthread_mutex_unlock(&mu);
    ck_assert_int_eq(pthread_join(t[0], NULL), 0);
    ck_assert_int_eq(a[0].rc, 0);
    ck_assert_int_eq(a[0].result, 3);
}
END_TEST

/* A timeout racing a wake_one, many times: the waker's hand-off is
 * delivered exactly when wake_one says it was made. */
START_TEST(plain_timeout_races_wake)
{
    uint64_t rng = 88172645463325252ull;
    unsigned delivered = 0, timed_out = 0;
    for (unsigned it = 0; it < 1000; it++) {
        reset();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        static struct wait_arg a;
        a = (struct wait_arg){.id = 0, .rc = 99, .delay = 20000};
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, wait_thread, &a), 0);
        /* Once it has queued, wake it around its deadline: 0 to 100 us. */
        ck_assert(harness_spin_until(has_queued, NULL));
        for (int64_t until = weft__clock_ns() + (int64_t)(rng % 100000);
             weft__clock_ns() < until;)
            ;
        pthread_mutex_lock(&mu);
        bool handed = weft__waitq_wake_one(&q, 42);
        pthread_mutex_unlock(&mu);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        if (handed) {
            ck_assert_msg(a.rc == 0, "iteration %u: handed over, but the wait returned %d", it,
                          a.rc);
            ck_assert(a.woken);
            ck_assert_int_eq(a.result, 42);
            delivered++;
        } else {
            ck_assert_msg(a.rc == -ETIMEDOUT, "iteration %u: nothing handed, wait returned %d",
                          it, a.rc);
            ck_assert(!a.woken);
            timed_out++;
        }
        ck_assert(weft__waitq_empty(&q));
    }
    ck_assert_uint_eq(delivered + timed_out, 1000);
}
END_TEST

/* --- tasks ---------------------------------------------------------------- */

static int wait_task(void *p)
{
    return do_wait(p);
}

struct task_case {
    struct wait_arg a[N_WAITERS];
    weft_task *t[N_WAITERS];
};

static int task_fifo_main(void *p)
{
    struct task_case *c = p;
    reset();
    for (unsigned i = 0; i < N_WAITERS; i++) {
        c->a[i] = (struct wait_arg){.id = i, .deadline = INT64_MAX, .rc = 99};
        c->t[i] = weft_spawn(wait_task, &c->a[i]);
        HREQUIRE(c->t[i], -1);
    }
    HYIELD_UNTIL(n_queued_is((void *)(uintptr_t)N_WAITERS));
    pthread_mutex_lock(&mu);
    HCHECK_INT_EQ(n_queued, N_WAITERS);
    for (unsigned k = 0; k < N_WAITERS / 2; k++) {
        struct waiter *w = weft__waitq_first(&q);
        HREQUIRE(w, -1);
        HCHECK_INT_EQ(((struct wait_arg *)w->data)->id, queued[k]);
        HCHECK(w->task != NULL);
        HCHECK(weft__waitq_wake_one(&q, 100 + (int)k));
    }
    HCHECK_INT_EQ(queue_len(), N_WAITERS - N_WAITERS / 2);
    weft__waitq_wake_all(&q, 7);
    HCHECK(weft__waitq_empty(&q));
    HCHECK(!weft__waitq_wake_one(&q, 1));
    pthread_mutex_unlock(&mu);
    for (unsigned i = 0; i < N_WAITERS; i++)
        HCHECK_INT_EQ(weft_join(c->t[i]), 0);
    HCHECK_INT_EQ(n_woken, N_WAITERS);
    for (unsigned k = 0; k < N_WAITERS; k++) {
        struct wait_arg *a = &c->a[queued[k]];
        HCHECK_INT_EQ(a->rc, 0);
        HCHECK(a->woken);
        HCHECK_INT_EQ(a->result, k < N_WAITERS / 2 ? 100 + (int)k : 7);
    }
    return 0;
}

START_TEST(task_wake_one_fifo_then_wake_all)
{
    static struct task_case c;
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), task_fifo_main, &c), 0);
}
END_TEST

/* Cancellation and a deadline each take a task waiter out of the queue:
 * the waker then hands to the next one, or finds nobody. */
static int task_leave_main(void *p)
{
    struct task_case *c = p;
    reset();
    c->a[0] = (struct wait_arg){.id = 0, .deadline = INT64_MAX, .rc = 99};
    c->a[1] = (struct wait_arg){.id = 1, .deadline = INT64_MAX, .rc = 99};
    c->a[2] = (struct wait_arg){.id = 2, .deadline = weft__clock_ns() + 20000000, .rc = 99};
    for (unsigned i = 0; i < 3; i++) {
        c->t[i] = weft_spawn(wait_task, &c->a[i]);
        HREQUIRE(c->t[i], -1);
        HYIELD_UNTIL(n_queued_is((void *)(uintptr_t)(i + 1)));
    }
    weft_cancel(c->t[0]);
    HCHECK_INT_EQ(weft_join(c->t[0]), 0);
    HCHECK_INT_EQ(c->a[0].rc, -ECANCELED);
    HCHECK(!c->a[0].woken);
    HCHECK_INT_EQ(weft_join(c->t[2]), 0);
    HCHECK_INT_EQ(c->a[2].rc, -ETIMEDOUT);
    HCHECK(!c->a[2].woken);
    pthread_mutex_lock(&mu);
    HCHECK_INT_EQ(queue_len(), 1);
    HCHECK_PTR_EQ(weft__waitq_first(&q), &c->a[1].w);
    HCHECK(weft__waitq_wake_one(&q, 11));
    HCHECK(!weft__waitq_wake_one(&q, 12));
    pthread_mutex_unlock(&mu);
    HCHECK_INT_EQ(weft_join(c->t[1]), 0);
    HCHECK_INT_EQ(c->a[1].rc, 0);
    HCHECK_INT_EQ(c->a[1].result, 11);
    return 0;
}

START_TEST(task_cancel_and_timeout_leave_queue)
{
    static struct task_case c;
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), task_leave_main, &c), 0);
}
END_TEST

/* A cancellation or a deadline racing a wake_one, many times, with the
 * waker on another task (and, with several workers, another thread). */
static int task_race_main(void *p)
{
    struct task_case *c = p;
    uint64_t rng = 0x2545F4914F6CDD1Dull;
    unsigned delivered = 0;
    for (unsigned it = 0; it < 2000; it++) {
        reset();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        bool by_cancel = rng & 1;
        c->a[0] = (struct wait_arg){
            .id = 0, .rc = 99,
            .deadline = by_cancel ? INT64_MAX : weft__clock_ns() + (int64_t)(rng % 50000)};
        weft_task *t = weft_spawn(wait_task, &c->a[0]);
        HREQUIRE(t, -1);
        for (unsigned k = (unsigned)(rng >> 8) % 4; k; k--)
            weft_yield();
        if (by_cancel && (rng & 2))
            weft_cancel(t);
        pthread_mutex_lock(&mu);
        bool handed = weft__waitq_wake_one(&q, 42);
        pthread_mutex_unlock(&mu);
        if (by_cancel && !(rng & 2))
            weft_cancel(t);
        HCHECK_INT_EQ(weft_join(t), 0);
        if (handed) {
            HCHECK_MSG(c->a[0].rc == 0, "iteration %u: handed over, but the wait returned %d",
                       it, c->a[0].rc);
            HCHECK(c->a[0].woken);
            HCHECK_INT_EQ(c->a[0].result, 42);
            delivered++;
        } else {
            HCHECK_MSG(c->a[0].rc == (by_cancel ? -ECANCELED : -ETIMEDOUT),
                       "iteration %u: nothing handed, wait returned %d", it, c->a[0].rc);
            HCHECK(!c->a[0].woken);
        }
        HCHECK(weft__waitq_empty(&q));
        if (harness_failures())
            break;
    }
    (void)delivered;
    return 0;
}

START_TEST(task_leave_races_wake)
{
    static struct task_case c;
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), task_race_main, &c), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("waitq");
    TCase *tc = harness_tcase(s, "plain", 30);
    tcase_add_test(tc, plain_wake_one_fifo_with_results);
    tcase_add_test(tc, plain_wake_all);
    tcase_add_test(tc, plain_timeout_leaves_queue);
    tcase_add_test(tc, plain_timeout_races_wake);
    tc = harness_tcase(s, "tasks", 60);
    tcase_add_loop_test(tc, task_wake_one_fifo_then_wake_all, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, task_cancel_and_timeout_leave_queue, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, task_leave_races_wake, 0, HARNESS_N_WORKER_VARIANTS);
    return s;
}
