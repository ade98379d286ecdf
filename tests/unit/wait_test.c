/* SPDX-License-Identifier: MIT */
/* The wait module alone (sched/wait.c), with plain-thread waiters (the
 * futex path) and with task waiters in a runtime: FIFO
 * order of wake_one, the results handed over, wake_all, and a waiter
 * that leaves on its own (timeout, cancellation) racing a waker: a
 * hand-off is either delivered (the wait returns 0 with the waker's
 * result) or never made (wake_one finds nobody), never both nor lost.
 * Then the claim of a wait with several clauses: many threads racing to
 * claim, and the waiter closing its claim against them: exactly one
 * winner, and a waker that won is always waited for. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "harness.h"
#include "internal.h"
#include "sched/sched.h"
#include "sched/wait.h"
#include "util/clock.h"

#define N_WAITERS 8

/* One queue and its mutex, with the order in which waiters queued
 * (recorded under the mutex, just before the wait queues them). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct list q;
static unsigned queued[64], n_queued;
static unsigned woken_order[64], n_woken;

struct wait_arg {
    unsigned id;
    int64_t deadline;
    int64_t delay; /* > 0: the deadline is this long after queueing */
    int rc;
    int result;
    bool woken;
    struct weft__wait rec;
    struct weft__clause w;
};

static void reset(void)
{
    list_init(&q);
    n_queued = n_woken = 0;
}

static unsigned queue_len(void)
{
    unsigned n = 0;
    for (struct list *l = q.next; l != &q; l = l->next)
        n++;
    return n;
}

/* Waits on q (plain thread or task alike). */
static void mu_lock(void *m) { pthread_mutex_lock(m); }
static void mu_unlock(void *m) { pthread_mutex_unlock(m); }

static int do_wait(struct wait_arg *a)
{
    pthread_mutex_lock(&mu);
    queued[n_queued++] = a->id;
    weft__wait_init(&a->rec, weft_current());
    weft__clause_init(&a->w, &a->rec, 0, a, true);
    weft__wait_enqueue(&q, &a->w);
    if (a->delay > 0)
        a->deadline = weft__clock_ns() + a->delay;
    a->rc = weft__wait_one(&a->rec, &a->w, mu_lock, mu_unlock, NULL, &mu, a->deadline,
                           weft__why(WEFT__WK_OTHER), 0);
    pthread_mutex_lock(&mu);
    a->result = a->w.result;
    a->woken = atomic_load(&a->rec.done) != 0;
    if (a->rc == 0)
        woken_order[n_woken++] = a->id;
    pthread_mutex_unlock(&mu);
    return 0;
}

static bool wake_one(struct list *wq, int result) { return weft__wait_wake_one(wq, result); }

static void wake_all(int result)
{
    struct list wakes = {&wakes, &wakes};
    weft__wait_hand_all(&q, result, &wakes);
    weft__wait_flush(&wakes);
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
        struct weft__clause *w = weft__wait_first(&q);
        ck_assert_ptr_nonnull(w);
        ck_assert_uint_eq(((struct wait_arg *)w->data)->id, queued[k]);
        ck_assert_ptr_null(w->wait->task);
        ck_assert(wake_one(&q, 100 + (int)k));
        ck_assert_uint_eq(queue_len(), N_WAITERS - 1 - k);
    }
    ck_assert(list_empty(&q));
    ck_assert_ptr_null(weft__wait_first(&q));
    ck_assert(!wake_one(&q, 1));
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
    wake_all(-EPIPE);
    ck_assert(list_empty(&q));
    ck_assert(!wake_one(&q, 1));
    wake_all(5); /* nobody: a no-op */
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
    ck_assert_ptr_eq(weft__wait_first(&q), &a[0].w);
    ck_assert(wake_one(&q, 3));
    ck_assert(!wake_one(&q, 4));
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
        bool handed = wake_one(&q, 42);
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
        ck_assert(list_empty(&q));
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
        struct weft__clause *w = weft__wait_first(&q);
        HREQUIRE(w, -1);
        HCHECK_INT_EQ(((struct wait_arg *)w->data)->id, queued[k]);
        HCHECK(w->wait->task != NULL);
        HCHECK(wake_one(&q, 100 + (int)k));
    }
    HCHECK_INT_EQ(queue_len(), N_WAITERS - N_WAITERS / 2);
    wake_all(7);
    HCHECK(list_empty(&q));
    HCHECK(!wake_one(&q, 1));
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
    HCHECK_PTR_EQ(weft__wait_first(&q), &c->a[1].w);
    HCHECK(wake_one(&q, 11));
    HCHECK(!wake_one(&q, 12));
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
        bool handed = wake_one(&q, 42);
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
        HCHECK(list_empty(&q));
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

/* --- claims of a wait with several clauses --------------------------------- */

#define N_CLAIMERS 8

/* One object per claimer: a queue under its own lock, holding one clause
 * of the shared wait. */
static struct claim_obj {
    pthread_mutex_t mu;
    struct list q;
} objs[N_CLAIMERS];
static struct weft__wait claim_rec;
static struct weft__clause claim_cl[N_CLAIMERS];
static pthread_barrier_t claim_start, claim_end;
static _Atomic unsigned claim_iters;
static int claim_won[N_CLAIMERS]; /* per thread: iterations it won */

static void claim_setup(void)
{
    weft__wait_init(&claim_rec, NULL);
    for (unsigned i = 0; i < N_CLAIMERS; i++) {
        list_init(&objs[i].q);
        weft__clause_init(&claim_cl[i], &claim_rec, (int)i, NULL, false);
        weft__wait_enqueue(&objs[i].q, &claim_cl[i]);
    }
}

/* Each round: take the clause of its own object, and if it won the claim,
 * hand it 1000 + its index and wake the (plain-thread) waiter. */
static void *claimer(void *p)
{
    unsigned me = (unsigned)(uintptr_t)p;
    for (unsigned it = 0; it < atomic_load(&claim_iters); it++) {
        pthread_barrier_wait(&claim_start);
        pthread_mutex_lock(&objs[me].mu);
        struct weft__clause *cl = weft__wait_take(&objs[me].q);
        if (cl) {
            weft__wait_hand(cl, 1000 + (int)me);
            claim_won[me]++;
        }
        pthread_mutex_unlock(&objs[me].mu);
        if (cl)
            weft__wait_wake(cl);
        /* A loser dropped its clause: the queue is empty either way. */
        pthread_mutex_lock(&objs[me].mu);
        bool empty = list_empty(&objs[me].q);
        pthread_mutex_unlock(&objs[me].mu);
        if (!empty)
            abort();
        pthread_barrier_wait(&claim_end);
    }
    return NULL;
}

/* N_CLAIMERS threads race to claim one wait, many times: exactly one
 * wins each round, the waiter blocks until that one is done and reads its
 * result, and closing afterwards reports the same winner. */
START_TEST(claim_races_many_threads)
{
    const unsigned iters = 2000;
    atomic_store(&claim_iters, iters);
    for (unsigned i = 0; i < N_CLAIMERS; i++) {
        pthread_mutex_init(&objs[i].mu, NULL);
        claim_won[i] = 0;
    }
    pthread_barrier_init(&claim_start, NULL, N_CLAIMERS + 1);
    pthread_barrier_init(&claim_end, NULL, N_CLAIMERS + 1);
    pthread_t t[N_CLAIMERS];
    for (unsigned i = 0; i < N_CLAIMERS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, claimer, (void *)(uintptr_t)i), 0);
    for (unsigned it = 0; it < iters; it++) {
        claim_setup();
        pthread_barrier_wait(&claim_start);
        ck_assert_int_eq(weft__wait_block(&claim_rec, NULL, NULL, INT64_MAX, 0, 0), 1);
        int won = weft__wait_close(&claim_rec);
        ck_assert_int_ge(won, 0);
        ck_assert_int_lt(won, N_CLAIMERS);
        ck_assert_int_eq(claim_cl[won].result, 1000 + won);
        ck_assert_uint_eq(atomic_load(&claim_rec.done), 1);
        pthread_barrier_wait(&claim_end);
        for (unsigned i = 0; i < N_CLAIMERS; i++)
            ck_assert(!claim_cl[i].queued);
    }
    unsigned total = 0;
    for (unsigned i = 0; i < N_CLAIMERS; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        total += (unsigned)claim_won[i];
    }
    ck_assert_uint_eq(total, iters);
    pthread_barrier_destroy(&claim_start);
    pthread_barrier_destroy(&claim_end);
}
END_TEST

static _Atomic int closer_spin;

static void *one_claimer(void *p)
{
    (void)p;
    for (int i = atomic_load(&closer_spin); i > 0; i--)
        __asm__ volatile("" ::: "memory");
    pthread_mutex_lock(&objs[0].mu);
    struct weft__clause *cl = weft__wait_take(&objs[0].q);
    if (cl)
        weft__wait_hand(cl, 77);
    pthread_mutex_unlock(&objs[0].mu);
    if (cl)
        weft__wait_wake(cl);
    return (void *)(uintptr_t)(cl != NULL);
}

/* The waiter withdrawing (closing its claim, then unlinking its clauses
 * under their locks) against a waker: the waker's hand-off is delivered
 * exactly when it won, and the waiter that saw a winner settles before it
 * reads the result. */
START_TEST(withdraw_races_wake)
{
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    unsigned won_n = 0, closed_n = 0;
    pthread_mutex_init(&objs[0].mu, NULL);
    pthread_mutex_init(&objs[1].mu, NULL);
    for (unsigned it = 0; it < 3000; it++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        weft__wait_init(&claim_rec, NULL);
        for (unsigned i = 0; i < 2; i++) {
            list_init(&objs[i].q);
            weft__clause_init(&claim_cl[i], &claim_rec, (int)i, NULL, false);
            weft__wait_enqueue(&objs[i].q, &claim_cl[i]);
        }
        atomic_store(&closer_spin, (int)(rng % 4000));
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, one_claimer, NULL), 0);
        for (int i = (int)((rng >> 16) % 4000); i > 0; i--)
            __asm__ volatile("" ::: "memory");
        int won = weft__wait_close(&claim_rec);
        for (unsigned i = 0; i < 2; i++) {
            pthread_mutex_lock(&objs[i].mu);
            weft__wait_unlink(&claim_cl[i]);
            pthread_mutex_unlock(&objs[i].mu);
        }
        if (won >= 0) {
            weft__wait_settle(&claim_rec);
            ck_assert_int_eq(won, 0);
            ck_assert_int_eq(claim_cl[0].result, 77);
        }
        void *ret;
        ck_assert_int_eq(pthread_join(t, &ret), 0);
        ck_assert_int_eq((int)(uintptr_t)ret, won == 0);
        ck_assert(list_empty(&objs[0].q));
        ck_assert(list_empty(&objs[1].q));
        if (won >= 0)
            won_n++;
        else
            closed_n++;
    }
    ck_assert_uint_eq(won_n + closed_n, 3000);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("wait");
    TCase *tc = harness_tcase(s, "plain", 30);
    tcase_add_test(tc, plain_wake_one_fifo_with_results);
    tcase_add_test(tc, plain_wake_all);
    tcase_add_test(tc, plain_timeout_leaves_queue);
    tcase_add_test(tc, plain_timeout_races_wake);
    tc = harness_tcase(s, "claims", 60);
    tcase_add_test(tc, claim_races_many_threads);
    tcase_add_test(tc, withdraw_races_wake);
    tc = harness_tcase(s, "tasks", 60);
    tcase_add_loop_test(tc, task_wake_one_fifo_then_wake_all, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, task_cancel_and_timeout_leave_queue, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, task_leave_races_wake, 0, HARNESS_N_WORKER_VARIANTS);
    return s;
}
