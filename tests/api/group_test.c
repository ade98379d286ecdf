/* SPDX-License-Identifier: MIT */
/* The public contract of composing tasks (include/weft/group.h): gather
 * (argument order, first failure in argument order, cancellation reaching
 * every child), wait_any (lowest finished index, joins nothing, timeout,
 * cancel) and task groups (wait for all, first failure cancels the rest,
 * cancelling the waiter cancels all, no spawn after failure), on one
 * worker and on several, plus misuse. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#include "harness.h"

static const unsigned race_workers[] = {1, 2, 4};
#define N_RACE_WORKERS ((int)(sizeof race_workers / sizeof race_workers[0]))

static int return_int(void *arg)
{
    return (int)(intptr_t)arg;
}

/* A child: sleeps, then returns `result`; on cancellation runs a shielded
 * cleanup and returns the sleep's error. */
struct kid {
    int64_t sleep_ns;
    int64_t cleanup_ns;
    int result;
    atomic_int started;
    atomic_int sleep_rc;
    atomic_int completed;
    atomic_int ended;
    _Atomic int64_t ended_at;
};

static int shielded_sleep(void *arg)
{
    return weft_sleep(*(int64_t *)arg);
}

static int kid_main(void *arg)
{
    struct kid *k = arg;
    atomic_store(&k->started, 1);
    int rc = weft_sleep(k->sleep_ns);
    atomic_store(&k->sleep_rc, rc);
    int status = rc;
    if (rc == 0) {
        atomic_store(&k->completed, 1);
        status = k->result;
    } else if (k->cleanup_ns) {
        HCHECK_INT_EQ(weft_shield(shielded_sleep, &k->cleanup_ns), 0);
    }
    atomic_store(&k->ended_at, weft_now());
    atomic_store(&k->ended, 1);
    return status;
}

static weft_task *spawn_kid(struct kid *k)
{
    weft_task *t = weft_spawn(kid_main, k);
    HCHECK(t != NULL);
    return t;
}

/* ------------------------------------------------------------ gather */

static int gather_in_order(void *arg)
{
    (void)arg;
    enum { N = 5 };
    struct kid k[N];
    weft_task *t[N];
    /* They finish in reverse order; statuses come back in argument order. */
    for (int i = 0; i < N; i++) {
        k[i] = (struct kid){.sleep_ns = WEFT_MSEC(5) * (N - i), .result = 100 + i};
        t[i] = spawn_kid(&k[i]);
        HREQUIRE(t[i] != NULL, -1);
    }
    int st[N];
    memset(st, 0xff, sizeof st);
    HCHECK_INT_EQ(weft_gather(t, N, st), 0);
    for (int i = 0; i < N; i++) {
        HCHECK_INT_EQ(st[i], 100 + i);
        HCHECK_INT_EQ(atomic_load(&k[i].ended), 1);
    }
    /* statuses may be NULL. */
    for (int i = 0; i < N; i++) {
        t[i] = weft_spawn(return_int, (void *)(intptr_t)i);
        HREQUIRE(t[i] != NULL, -1);
    }
    HCHECK_INT_EQ(weft_gather(t, N, NULL), 0);
    /* n == 0 is an empty, successful gather. */
    HCHECK_INT_EQ(weft_gather(t, 0, NULL), 0);
    HCHECK_INT_EQ(weft_gather(NULL, 0, NULL), 0);
    return 0;
}

START_TEST(gather_returns_statuses_in_argument_order)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), gather_in_order, NULL), 0);
}
END_TEST

static int gather_first_failure(void *arg)
{
    (void)arg;
    enum { N = 4 };
    /* Child 3 fails first in time, child 1 later: gather reports child
     * 1's failure (argument order), and the failures do not cancel the
     * others (child 0 and 2 complete). */
    struct kid k[N] = {
        {.sleep_ns = WEFT_MSEC(40), .result = 10},
        {.sleep_ns = WEFT_MSEC(20), .result = -EIO},
        {.sleep_ns = WEFT_MSEC(40), .result = 12},
        {.sleep_ns = WEFT_MSEC(1), .result = -ENOENT},
    };
    weft_task *t[N];
    for (int i = 0; i < N; i++) {
        t[i] = spawn_kid(&k[i]);
        HREQUIRE(t[i] != NULL, -1);
    }
    int st[N];
    HCHECK_INT_EQ(weft_gather(t, N, st), -EIO);
    HCHECK_INT_EQ(st[0], 10);
    HCHECK_INT_EQ(st[1], -EIO);
    HCHECK_INT_EQ(st[2], 12);
    HCHECK_INT_EQ(st[3], -ENOENT);
    HCHECK_INT_EQ(atomic_load(&k[0].completed), 1);
    HCHECK_INT_EQ(atomic_load(&k[2].completed), 1);
    return 0;
}

START_TEST(gather_returns_the_first_failure_in_argument_order)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), gather_first_failure, NULL), 0);
}
END_TEST

struct gather_cancel {
    struct kid k[6];
    atomic_int gathering;
    atomic_int rc;
    int st[6];
    atomic_int all_ended_at_return;
};

static int gatherer(void *arg)
{
    struct gather_cancel *g = arg;
    weft_task *t[6];
    for (int i = 0; i < 6; i++) {
        t[i] = spawn_kid(&g->k[i]);
        HREQUIRE(t[i] != NULL, -1);
    }
    atomic_store(&g->gathering, 1);
    int rc = weft_gather(t, 6, g->st);
    int all = 1;
    for (int i = 0; i < 6; i++)
        all &= atomic_load(&g->k[i].ended);
    atomic_store(&g->all_ended_at_return, all);
    atomic_store(&g->rc, rc);
    return rc;
}

static int cancel_the_gatherer(void *arg)
{
    struct gather_cancel *g = arg;
    weft_task *t = weft_spawn(gatherer, g);
    HREQUIRE(t != NULL, -1);
    HYIELD_UNTIL(atomic_load(&g->gathering));
    /* Child 0 finishes before the cancel; the rest are still sleeping. */
    HYIELD_UNTIL(atomic_load(&g->k[0].ended));
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(10)), 0);
    weft_cancel(t);
    HCHECK_INT_EQ(weft_join(t), -ECANCELED);
    return 0;
}

/* Cancelling the task in gather cancels every child still running, waits
 * for all of them (slow cleanups included) and returns -ECANCELED. */
START_TEST(gather_cancelled_cancels_every_child_and_waits)
{
    struct gather_cancel g = {0};
    g.k[0] = (struct kid){.sleep_ns = WEFT_MSEC(1), .result = 1};
    for (int i = 1; i < 6; i++)
        g.k[i] = (struct kid){.sleep_ns = WEFT_SEC(30), .cleanup_ns = WEFT_MSEC(5 * i)};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), cancel_the_gatherer, &g), 0);
    ck_assert_int_eq(atomic_load(&g.rc), -ECANCELED);
    ck_assert_int_eq(atomic_load(&g.all_ended_at_return), 1);
    ck_assert_int_eq(g.st[0], 1);
    for (int i = 1; i < 6; i++) {
        ck_assert_int_eq(atomic_load(&g.k[i].sleep_rc), -ECANCELED);
        ck_assert_int_eq(g.st[i], -ECANCELED);
    }
}
END_TEST

static int gather_pending_cancel(void *arg)
{
    (void)arg;
    struct kid k[3] = {{.sleep_ns = WEFT_SEC(30)}, {.sleep_ns = WEFT_SEC(30)},
                       {.sleep_ns = WEFT_SEC(30)}};
    weft_task *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = spawn_kid(&k[i]);
        HREQUIRE(t[i] != NULL, -1);
    }
    weft_cancel(weft_current());
    HCHECK_INT_EQ(weft_gather(t, 3, NULL), -ECANCELED);
    for (int i = 0; i < 3; i++)
        HCHECK_INT_EQ(atomic_load(&k[i].ended), 1);
    return 0;
}

START_TEST(gather_with_a_pending_cancel_cancels_and_reaps)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), gather_pending_cancel, NULL), 0);
}
END_TEST

static int gather_misuse(void *arg)
{
    (void)arg;
    weft_task *t[2] = {weft_spawn(return_int, (void *)(intptr_t)1), NULL};
    HREQUIRE(t[0] != NULL, -1);
    HCHECK_INT_EQ(weft_gather(NULL, 2, NULL), -EINVAL);
    HCHECK_INT_EQ(weft_gather(t, 2, NULL), -EINVAL);
    weft_task *self[1] = {weft_current()};
    HCHECK_INT_EQ(weft_gather(self, 1, NULL), -EINVAL);
    /* A task listed twice would be joined (and freed) twice. */
    weft_task *twice[3] = {t[0], weft_spawn(return_int, (void *)(intptr_t)2), t[0]};
    HREQUIRE(twice[1] != NULL, -1);
    HCHECK_INT_EQ(weft_gather(twice, 3, NULL), -EINVAL);
    /* The same in an array long enough to be sorted rather than scanned. */
    enum { N_LONG = 100 };
    weft_task *many[N_LONG];
    for (int i = 0; i < N_LONG - 1; i++)
        HREQUIRE((many[i] = weft_spawn(return_int, (void *)(intptr_t)3)) != NULL, -1);
    many[N_LONG - 1] = many[37];
    HCHECK_INT_EQ(weft_gather(many, N_LONG, NULL), -EINVAL);
    /* Nothing was joined: the handles are still ours. */
    HCHECK_INT_EQ(weft_join(t[0]), 1);
    HCHECK_INT_EQ(weft_join(twice[1]), 2);
    HCHECK_INT_EQ(weft_gather(many, N_LONG - 1, NULL), 0);
    return 0;
}

START_TEST(gather_misuse_fails_with_einval_and_joins_nothing)
{
    ck_assert_int_eq(harness_run(1, gather_misuse, NULL), 0);
}
END_TEST

/* ------------------------------------------------------------ wait_any */

static atomic_int gate_one;

/* Ends with status 1 once gate_one is set. */
static int gated_one(void *arg)
{
    (void)arg;
    while (!atomic_load(&gate_one)) {
        int rc = weft_sleep(WEFT_MSEC(1));
        if (rc)
            return rc;
    }
    return 1;
}

static int wait_any_lowest(void *arg)
{
    (void)arg;
    struct kid k[4] = {
        {.sleep_ns = WEFT_SEC(30), .result = 0},
        {0},
        {.sleep_ns = WEFT_MSEC(5), .result = 2},
        {.sleep_ns = WEFT_SEC(30), .result = 3},
    };
    atomic_store(&gate_one, 0);
    weft_task *t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = i == 1 ? weft_spawn(gated_one, NULL) : spawn_kid(&k[i]);
        HREQUIRE(t[i] != NULL, -1);
    }
    /* The first to finish. */
    HCHECK_INT_EQ(weft_wait_any(t, 4, -1), 2);
    HCHECK(weft_task_done(t[2]));
    HCHECK(!weft_task_done(t[1]));
    /* Still finished: wait_any joined nothing. */
    HCHECK_INT_EQ(weft_wait_any(t, 4, 0), 2);
    HCHECK_INT_EQ(weft_wait_any(t, 4, WEFT_SEC(1)), 2);
    /* Without index 2, the next one to end. */
    atomic_store(&gate_one, 1);
    weft_task *rest[3] = {t[0], t[1], t[3]};
    HCHECK_INT_EQ(weft_wait_any(rest, 3, WEFT_SEC(10)), 1);
    /* Both 1 and 2 have ended: the lowest index wins. */
    HCHECK_INT_EQ(weft_wait_any(t, 4, -1), 1);
    weft_task *rev[4] = {t[3], t[2], t[1], t[0]};
    HCHECK_INT_EQ(weft_wait_any(rev, 4, -1), 1);
    /* The handles are still ours: join them all (cancel the long ones). */
    HCHECK_INT_EQ(weft_join(t[2]), 2);
    HCHECK_INT_EQ(weft_join(t[1]), 1);
    weft_task *longs[2] = {t[0], t[3]};
    weft_cancel(t[3]);
    HCHECK_INT_EQ(weft_wait_any(longs, 2, -1), 1);
    weft_cancel(t[0]);
    HCHECK_INT_EQ(weft_join(t[0]), -ECANCELED);
    HCHECK_INT_EQ(weft_join(t[3]), -ECANCELED);
    return 0;
}

START_TEST(wait_any_returns_the_lowest_finished_index_and_joins_nothing)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), wait_any_lowest, NULL), 0);
}
END_TEST

static int wait_any_timeout(void *arg)
{
    (void)arg;
    struct kid k[2] = {{.sleep_ns = WEFT_SEC(30)}, {.sleep_ns = WEFT_SEC(30)}};
    weft_task *t[2] = {spawn_kid(&k[0]), spawn_kid(&k[1])};
    HREQUIRE(t[0] && t[1], -1);
    int64_t start = weft_now();
    HCHECK_INT_EQ(weft_wait_any(t, 2, WEFT_MSEC(20)), -ETIMEDOUT);
    int64_t took = weft_now() - start;
    HCHECK_MSG(took >= WEFT_MSEC(20) && took < WEFT_SEC(5), "took %lld ns", (long long)took);
    HCHECK_INT_EQ(weft_wait_any(t, 2, 0), -ETIMEDOUT);
    /* Timing out cancels nothing. */
    HCHECK(!weft_task_done(t[0]) && !weft_task_done(t[1]));
    HCHECK_INT_EQ(atomic_load(&k[0].sleep_rc), 0);
    HCHECK_INT_EQ(weft_yield(), 0);
    weft_cancel(t[0]);
    weft_cancel(t[1]);
    HCHECK_INT_EQ(weft_join(t[0]), -ECANCELED);
    HCHECK_INT_EQ(weft_join(t[1]), -ECANCELED);
    return 0;
}

START_TEST(wait_any_times_out_and_cancels_nothing)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), wait_any_timeout, NULL), 0);
}
END_TEST

struct any_cancel {
    weft_task *t[3];
    atomic_int waiting;
    atomic_int rc;
    atomic_int release; /* the watched tasks end once it is set */
};

/* Ends with 7 + i once the waiter's cancellation has been handled: a
 * timed end could come first on a loaded machine, and wait_any would then
 * return its index instead of -ECANCELED. */
struct any_watched {
    struct any_cancel *a;
    int i;
};

static int watched_until_released(void *arg)
{
    struct any_watched *w = arg;
    while (!atomic_load(&w->a->release)) {
        int rc = weft_sleep(WEFT_MSEC(1));
        if (rc)
            return rc;
    }
    return 7 + w->i;
}

static int any_waiter(void *arg)
{
    struct any_cancel *a = arg;
    atomic_store(&a->waiting, 1);
    int rc = weft_wait_any(a->t, 3, -1);
    atomic_store(&a->rc, rc);
    return rc;
}

static int cancel_any_waiter(void *arg)
{
    struct any_cancel *a = arg;
    struct any_watched w3[3];
    for (int i = 0; i < 3; i++) {
        w3[i] = (struct any_watched){a, i};
        a->t[i] = weft_spawn(watched_until_released, &w3[i]);
        HREQUIRE(a->t[i] != NULL, -1);
    }
    weft_task *w = weft_spawn(any_waiter, a);
    HREQUIRE(w != NULL, -1);
    HYIELD_UNTIL(atomic_load(&a->waiting));
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(10)), 0);
    weft_cancel(w);
    HCHECK_INT_EQ(weft_join(w), -ECANCELED);
    /* The waiter's cancellation does not reach the tasks it watched: they
     * complete, and their handles are still ours. */
    for (int i = 0; i < 3; i++)
        HCHECK(!weft_task_done(a->t[i]));
    atomic_store(&a->release, 1);
    for (int i = 0; i < 3; i++)
        HCHECK_INT_EQ(weft_join(a->t[i]), 7 + i);
    return 0;
}

START_TEST(wait_any_cancelled_returns_ecanceled_and_leaves_the_tasks)
{
    struct any_cancel a;
    memset(&a, 0, sizeof a);
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), cancel_any_waiter, &a), 0);
    ck_assert_int_eq(atomic_load(&a.rc), -ECANCELED);
}
END_TEST

static int wait_any_rounds(void *arg)
{
    (void)arg;
    /* Two tasks finish at about the same time, often on two workers, while
     * the waiter registers and withdraws: every round ends with a valid
     * index whose task has ended. */
    for (int round = 0; round < 500 && !harness_failures(); round++) {
        struct kid k[3] = {{.sleep_ns = WEFT_USEC(300), .result = 0},
                           {.sleep_ns = WEFT_USEC(300), .result = 1},
                           {.sleep_ns = WEFT_SEC(30), .result = 2}};
        weft_task *t[3];
        for (int i = 0; i < 3; i++) {
            t[i] = spawn_kid(&k[i]);
            HREQUIRE(t[i] != NULL, -1);
        }
        int idx = weft_wait_any(t, 3, round % 2 ? WEFT_USEC(300) : -1);
        if (idx == -ETIMEDOUT) {
            idx = weft_wait_any(t, 3, -1);
        }
        HCHECK_MSG(idx == 0 || idx == 1, "round %d: %d", round, idx);
        if (idx >= 0)
            HCHECK(weft_task_done(t[idx]));
        weft_cancel(t[2]);
        HCHECK_INT_EQ(weft_join(t[0]), 0);
        HCHECK_INT_EQ(weft_join(t[1]), 1);
        HCHECK_INT_EQ(weft_join(t[2]), -ECANCELED);
    }
    return 0;
}

START_TEST(wait_any_races_with_tasks_ending)
{
    ck_assert_int_eq(harness_run(race_workers[_i], wait_any_rounds, NULL), 0);
}
END_TEST

/* Several wait_any on the same task at once (the owner joins it only
 * after they have returned here). Each sees the end (at once: they wait
 * through end waiters, not the task's one joiner slot). */
struct any_shared {
    weft_task *t[1];
    atomic_int rc[3];
    _Atomic int64_t returned_at[3];
};

struct any_shared_who {
    struct any_shared *s;
    int i;
};

static int any_shared_watcher(void *arg)
{
    struct any_shared_who *w = arg;
    int rc = weft_wait_any(w->s->t, 1, WEFT_SEC(20));
    atomic_store(&w->s->returned_at[w->i], weft_now());
    atomic_store(&w->s->rc[w->i], rc);
    return 0;
}

static int wait_any_shared(void *arg)
{
    (void)arg;
    struct any_shared s = {.t = {NULL}};
    struct kid k = {.sleep_ns = WEFT_MSEC(20), .result = 5};
    HREQUIRE((s.t[0] = spawn_kid(&k)) != NULL, -1);
    struct any_shared_who who[3] = {{&s, 0}, {&s, 1}, {&s, 2}};
    weft_task *w[3];
    for (int i = 0; i < 3; i++) {
        atomic_store(&s.rc[i], 99);
        HREQUIRE((w[i] = weft_spawn(any_shared_watcher, &who[i])) != NULL, -1);
    }
    HCHECK_INT_EQ(weft_gather(w, 3, NULL), 0);
    int64_t ended = atomic_load(&k.ended_at);
    for (int i = 0; i < 3; i++) {
        HCHECK_INT_EQ(atomic_load(&s.rc[i]), 0);
        int64_t late = atomic_load(&s.returned_at[i]) - ended;
        HCHECK_MSG(late < WEFT_SEC(5), "waiter %d saw the end %.3f s late", i,
                   (double)late / 1e9);
    }
    HCHECK_INT_EQ(weft_join(s.t[0]), 5);
    return 0;
}

START_TEST(wait_any_shared_with_other_waiters_sees_the_end)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), wait_any_shared, NULL), 0);
    harness_assert_clean();
}
END_TEST

/* 1,000 tasks in wait_any on the same task while the owner joins it:
 * the join is not refused, and every watcher returns promptly after the
 * end. No polling: before end waiters, all but one looked again every 1
 * to 16 ms, each with a timer armed. So while all of them wait, no timer
 * may be armed (the structural check), and the last returns within a
 * few milliseconds of the end (the sanity bound, widened by the
 * oversubscription: 64 workers on 2 cores are time-sliced by the
 * kernel, 1 ms per switch on a loaded machine). */
enum { N_MANY_WATCHERS = 1000 };

struct many_any {
    weft_task *t[1];
    weft_event *go;
    atomic_int bad_rc;
    _Atomic int64_t ended_at;
    _Atomic int64_t latest;
};

static int many_any_owner(void *arg)
{
    struct many_any *m = arg;
    int rc = weft_event_wait(m->go);
    atomic_store(&m->ended_at, weft_now());
    return rc == 0 ? 6 : rc;
}

static int many_any_watcher(void *arg)
{
    struct many_any *m = arg;
    int rc = weft_wait_any(m->t, 1, -1);
    int64_t now = weft_now();
    if (rc != 0)
        atomic_store(&m->bad_rc, rc == 0 ? 99 : rc);
    int64_t l = atomic_load(&m->latest);
    while (now > l && !atomic_compare_exchange_weak(&m->latest, &l, now))
        ;
    return 0;
}

static int wait_any_many(void *arg)
{
    (void)arg;
    struct many_any m = {.t = {NULL}};
    HREQUIRE((m.go = weft_event_new()) != NULL, -1);
    HREQUIRE((m.t[0] = weft_spawn(many_any_owner, &m)) != NULL, -1);
    static weft_task *w[N_MANY_WATCHERS];
    for (int i = 0; i < N_MANY_WATCHERS; i++)
        HREQUIRE((w[i] = weft_spawn(many_any_watcher, &m)) != NULL, -1);
    HWAIT_PARKED(NULL, "wait_any", N_MANY_WATCHERS);
    weft_stats st = {0};
    HCHECK_INT_EQ(weft_runtime_stats(weft_runtime_current(), &st), 0);
    HCHECK_MSG(st.timers_armed == 0, "%llu timers armed while %d tasks wait on a task's end",
               (unsigned long long)st.timers_armed, N_MANY_WATCHERS);
    weft_event_set(m.go);
    HCHECK_INT_EQ(weft_join(m.t[0]), 6); /* beside the watchers */
    HCHECK_INT_EQ(weft_gather(w, N_MANY_WATCHERS, NULL), 0);
    HCHECK_INT_EQ(atomic_load(&m.bad_rc), 0);
    int64_t late = atomic_load(&m.latest) - atomic_load(&m.ended_at);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned over = st.n_workers > (unsigned)(cpus > 0 ? cpus : 1)
                        ? st.n_workers / (unsigned)(cpus > 0 ? cpus : 1) : 1;
    HCHECK_MSG(late < harness_scale_ns(WEFT_MSEC(10) * over),
               "the last of %d watchers saw the end %.3f ms late (%u workers)",
               N_MANY_WATCHERS, (double)late / 1e6, st.n_workers);
    weft_event_free(m.go);
    return 0;
}

START_TEST(wait_any_by_many_tasks_beside_a_join_sees_the_end_at_once)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), wait_any_many, NULL), 0);
    harness_assert_clean();
}
END_TEST

static int wait_any_misuse(void *arg)
{
    (void)arg;
    weft_task *t[2] = {weft_spawn(return_int, (void *)(intptr_t)4), NULL};
    HREQUIRE(t[0] != NULL, -1);
    HCHECK_INT_EQ(weft_wait_any(NULL, 1, -1), -EINVAL);
    HCHECK_INT_EQ(weft_wait_any(t, 0, -1), -EINVAL);
    HCHECK_INT_EQ(weft_wait_any(t, 2, -1), -EINVAL);
    weft_task *self[1] = {weft_current()};
    HCHECK_INT_EQ(weft_wait_any(self, 1, -1), -EINVAL);
    HCHECK_INT_EQ(weft_join(t[0]), 4);
    return 0;
}

START_TEST(wait_any_misuse_fails_with_einval)
{
    ck_assert_int_eq(harness_run(1, wait_any_misuse, NULL), 0);
}
END_TEST

/* ------------------------------------------------------------ groups */

static int group_waits_for_all(void *arg)
{
    (void)arg;
    enum { N = 8 };
    struct kid k[N];
    weft_group *g = weft_group_new();
    HREQUIRE(g != NULL, -1);
    for (int i = 0; i < N; i++) {
        k[i] = (struct kid){.sleep_ns = WEFT_MSEC(2 * (i + 1)), .result = i};
        HCHECK_INT_EQ(weft_group_spawn(g, kid_main, &k[i]), 0);
    }
    HCHECK_INT_EQ(weft_group_wait(g), 0);
    for (int i = 0; i < N; i++)
        HCHECK_INT_EQ(atomic_load(&k[i].completed), 1);
    /* An empty group. */
    g = weft_group_new();
    HREQUIRE(g != NULL, -1);
    HCHECK_INT_EQ(weft_group_wait(g), 0);
    return 0;
}

START_TEST(group_waits_for_all_its_tasks)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), group_waits_for_all, NULL), 0);
}
END_TEST

struct spawner {
    weft_group *g;
    struct kid *kids;
    int n;
};

static int spawn_more(void *arg)
{
    struct spawner *s = arg;
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(5)), 0);
    for (int i = 0; i < s->n; i++)
        HCHECK_INT_EQ(weft_group_spawn(s->g, kid_main, &s->kids[i]), 0);
    return 0;
}

static int group_grows_while_waiting(void *arg)
{
    (void)arg;
    struct kid k[20];
    for (int i = 0; i < 20; i++)
        k[i] = (struct kid){.sleep_ns = WEFT_MSEC(1 + i % 5), .result = i};
    weft_group *g = weft_group_new();
    HREQUIRE(g != NULL, -1);
    struct spawner s = {g, k, 20};
    HCHECK_INT_EQ(weft_group_spawn(g, spawn_more, &s), 0);
    HCHECK_INT_EQ(weft_group_wait(g), 0);
    for (int i = 0; i < 20; i++)
        HCHECK_INT_EQ(atomic_load(&k[i].ended), 1);
    return 0;
}

/* Children may spawn into their group while the owner waits: those are
 * waited for too (asyncio.TaskGroup.create_task from a child). */
START_TEST(group_waits_for_tasks_spawned_by_its_children)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), group_grows_while_waiting, NULL), 0);
}
END_TEST

static int group_first_failure(void *arg)
{
    (void)arg;
    enum { N = 6 };
    struct kid k[N];
    weft_group *g = weft_group_new();
    HREQUIRE(g != NULL, -1);
    for (int i = 0; i < N; i++) {
        k[i] = (struct kid){.sleep_ns = WEFT_SEC(30), .cleanup_ns = WEFT_MSEC(5)};
        if (i == 3)
            k[i] = (struct kid){.sleep_ns = WEFT_MSEC(10), .result = -EPROTO};
        HCHECK_INT_EQ(weft_group_spawn(g, kid_main, &k[i]), 0);
    }
    int64_t start = weft_now();
    HCHECK_INT_EQ(weft_group_wait(g), -EPROTO);
    HCHECK(weft_now() - start < WEFT_SEC(10));
    for (int i = 0; i < N; i++) {
        HCHECK_INT_EQ(atomic_load(&k[i].ended), 1);
        if (i != 3)
            HCHECK_INT_EQ(atomic_load(&k[i].sleep_rc), -ECANCELED);
    }
    /* The waiter itself is not cancelled. */
    HCHECK_INT_EQ(weft_yield(), 0);
    return 0;
}

/* The first failure cancels the rest, is waited out, and is what
 * group_wait returns (not the -ECANCELED of the others). */
START_TEST(group_first_failure_cancels_the_rest_and_is_returned)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), group_first_failure, NULL), 0);
}
END_TEST

struct failer {
    weft_group *g;
    atomic_int failed;
};

static int fail_now(void *arg)
{
    struct failer *f = arg;
    atomic_store(&f->failed, 1);
    return -EBADMSG;
}

static atomic_int never_ran;

static int must_not_run(void *arg)
{
    (void)arg;
    atomic_store(&never_ran, 1);
    return 0;
}

static int group_spawn_after_failure(void *arg)
{
    (void)arg;
    struct failer f = {0};
    struct kid k = {.sleep_ns = WEFT_SEC(30)};
    weft_group *g = weft_group_new();
    HREQUIRE(g != NULL, -1);
    HCHECK_INT_EQ(weft_group_spawn(g, kid_main, &k), 0);
    HCHECK_INT_EQ(weft_group_spawn(g, fail_now, &f), 0);
    HYIELD_UNTIL(atomic_load(&k.ended));
    HCHECK_INT_EQ(weft_group_spawn(g, must_not_run, NULL), -ECANCELED);
    HCHECK_INT_EQ(weft_group_wait(g), -EBADMSG);
    HCHECK_INT_EQ(atomic_load(&never_ran), 0);
    return 0;
}

START_TEST(group_spawn_after_a_failure_fails_with_ecanceled)
{
    atomic_store(&never_ran, 0);
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), group_spawn_after_failure, NULL), 0);
    ck_assert_int_eq(atomic_load(&never_ran), 0);
}
END_TEST

struct group_cancel {
    struct kid k[5];
    atomic_int waiting;
    atomic_int rc;
    atomic_int all_ended;
};

static int group_owner(void *arg)
{
    struct group_cancel *c = arg;
    weft_group *g = weft_group_new();
    HREQUIRE(g != NULL, -1);
    for (int i = 0; i < 5; i++)
        HCHECK_INT_EQ(weft_group_spawn(g, kid_main, &c->k[i]), 0);
    atomic_store(&c->waiting, 1);
    int rc = weft_group_wait(g);
    int all = 1;
    for (int i = 0; i < 5; i++)
        all &= atomic_load(&c->k[i].ended);
    atomic_store(&c->all_ended, all);
    atomic_store(&c->rc, rc);
    return rc;
}

static int cancel_group_owner(void *arg)
{
    struct group_cancel *c = arg;
    weft_task *t = weft_spawn(group_owner, c);
    HREQUIRE(t != NULL, -1);
    HYIELD_UNTIL(atomic_load(&c->waiting));
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(10)), 0);
    weft_cancel(t);
    HCHECK_INT_EQ(weft_join(t), -ECANCELED);
    return 0;
}

/* Cancelling the task in group_wait cancels every child, waits for all of
 * them and returns -ECANCELED. */
START_TEST(group_waiter_cancelled_cancels_all_children)
{
    struct group_cancel c;
    memset(&c, 0, sizeof c);
    for (int i = 0; i < 5; i++)
        c.k[i] = (struct kid){.sleep_ns = WEFT_SEC(30), .cleanup_ns = WEFT_MSEC(3 * i)};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), cancel_group_owner, &c), 0);
    ck_assert_int_eq(atomic_load(&c.rc), -ECANCELED);
    ck_assert_int_eq(atomic_load(&c.all_ended), 1);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(atomic_load(&c.k[i].sleep_rc), -ECANCELED);
}
END_TEST

static int group_failure_race_rounds(void *arg)
{
    (void)arg;
    /* Several children fail at about the same instant: one failure is
     * returned, every child ends. */
    for (int round = 0; round < 200 && !harness_failures(); round++) {
        struct kid k[6];
        bool spawned[6] = {false};
        weft_group *g = weft_group_new();
        HREQUIRE(g != NULL, -1);
        for (int i = 0; i < 6; i++) {
            k[i] = (struct kid){.sleep_ns = WEFT_USEC(300), .result = i % 2 ? -(100 + i) : i};
            /* A failure may already have closed the group. */
            int rc = weft_group_spawn(g, kid_main, &k[i]);
            HCHECK_MSG(rc == 0 || (rc == -ECANCELED && i > 1), "round %d: spawn %d: %d", round,
                       i, rc);
            spawned[i] = rc == 0;
        }
        int rc = weft_group_wait(g);
        HCHECK_MSG((rc == -101 && spawned[1]) || (rc == -103 && spawned[3]) ||
                       (rc == -105 && spawned[5]),
                   "round %d: %d", round, rc);
        for (int i = 0; i < 6; i++)
            HCHECK(!spawned[i] || atomic_load(&k[i].ended));
    }
    return 0;
}

START_TEST(group_simultaneous_failures_return_one_of_them)
{
    ck_assert_int_eq(harness_run(race_workers[_i], group_failure_race_rounds, NULL), 0);
}
END_TEST

static int make_group(void *arg)
{
    weft_group **g = arg;
    *g = weft_group_new();
    return *g ? 0 : -errno;
}

static int wait_group(void *arg)
{
    return weft_group_wait(arg);
}

/* A group already waited for: a second wait and a spawn fail with
 * -EINVAL (a second wait used to crash on the freed group), and so does a
 * wait while another task is waiting for the group. */
struct waited_group {
    weft_group *g;
    atomic_int waiting;
};

static int wait_for_group(void *arg)
{
    struct waited_group *w = arg;
    atomic_store(&w->waiting, 1);
    return weft_group_wait(w->g);
}

static int waited_group_main(void *arg)
{
    (void)arg;
    weft_group *g = weft_group_new();
    HREQUIRE(g != NULL, -1);
    HCHECK_INT_EQ(weft_group_spawn(g, return_int, (void *)(intptr_t)1), 0);
    HCHECK_INT_EQ(weft_group_wait(g), 0);
    HCHECK_INT_EQ(weft_group_wait(g), -EINVAL);
    HCHECK_INT_EQ(weft_group_spawn(g, return_int, (void *)(intptr_t)1), -EINVAL);
    /* Two waiters at once: the second is refused, the first unharmed. */
    struct kid k = {.sleep_ns = WEFT_MSEC(50), .result = 3};
    struct waited_group w = {.g = weft_group_new()};
    HREQUIRE(w.g != NULL, -1);
    HCHECK_INT_EQ(weft_group_spawn(w.g, kid_main, &k), 0);
    weft_task *t = weft_spawn(wait_for_group, &w);
    HREQUIRE(t != NULL, -1);
    HYIELD_UNTIL(atomic_load(&w.waiting));
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(2)), 0);
    HCHECK_INT_EQ(weft_group_wait(w.g), -EINVAL);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(atomic_load(&k.completed), 1);
    /* Groups made afterwards, more than are cached, still work. */
    for (int i = 0; i < 3000 && !harness_failures(); i++) {
        weft_group *x = weft_group_new();
        HREQUIRE(x != NULL, -1);
        HCHECK_INT_EQ(weft_group_spawn(x, return_int, (void *)(intptr_t)-5), 0);
        HCHECK_INT_EQ(weft_group_wait(x), -5);
    }
    return 0;
}

START_TEST(waited_group_calls_fail_with_einval)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), waited_group_main, NULL), 0);
    harness_assert_clean();
}
END_TEST

static int group_misuse(void *arg)
{
    (void)arg;
    HCHECK_INT_EQ(weft_group_spawn(NULL, return_int, NULL), -EINVAL);
    HCHECK_INT_EQ(weft_group_wait(NULL), -EINVAL);
    weft_group *g = weft_group_new();
    HREQUIRE(g != NULL, -1);
    HCHECK_INT_EQ(weft_group_spawn(g, NULL, NULL), -EINVAL);
    HCHECK_INT_EQ(weft_group_wait(g), 0);
    return 0;
}

START_TEST(group_misuse_fails_cleanly)
{
    errno = 0;
    ck_assert_ptr_null(weft_group_new());
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(weft_group_wait(NULL), -EPERM);
    ck_assert_int_eq(harness_run(1, group_misuse, NULL), 0);

    /* group_wait from a plain thread leaves the group alone: it can still
     * be waited for from a task. */
    weft_runtime *rt = weft_runtime_new(NULL);
    ck_assert_ptr_nonnull(rt);
    weft_group *g = NULL;
    ck_assert_int_eq(weft_runtime_block_on(rt, make_group, &g), 0);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(weft_group_wait(g), -EPERM);
    ck_assert_int_eq(weft_runtime_block_on(rt, wait_group, g), 0);
    weft_runtime_free(rt);
}
END_TEST

START_TEST(compose_calls_outside_a_task_fail_with_eperm)
{
    weft_task *t[1] = {NULL};
    ck_assert_int_eq(weft_gather(t, 1, NULL), -EPERM);
    ck_assert_int_eq(weft_gather(NULL, 0, NULL), -EPERM);
    ck_assert_int_eq(weft_wait_any(t, 1, -1), -EPERM);
    ck_assert_int_eq(weft_wait_any(NULL, 0, 0), -EPERM);
}
END_TEST

/* A large fan-out through all three, on several workers. */
static int fanout(void *arg)
{
    (void)arg;
    enum { N = 2000 };
    static weft_task *t[N];
    static int st[N];
    for (int i = 0; i < N; i++) {
        t[i] = weft_spawn(return_int, (void *)(intptr_t)i);
        HREQUIRE(t[i] != NULL, -1);
    }
    HCHECK_INT_EQ(weft_gather(t, N, st), 0);
    for (int i = 0; i < N; i++)
        if (st[i] != i)
            HCHECK_INT_EQ(st[i], i);
    weft_group *g = weft_group_new();
    HREQUIRE(g != NULL, -1);
    for (int i = 0; i < N; i++)
        HCHECK_INT_EQ(weft_group_spawn(g, return_int, (void *)(intptr_t)i), 0);
    HCHECK_INT_EQ(weft_group_wait(g), 0);
    return 0;
}

START_TEST(large_fanouts_complete)
{
    ck_assert_int_eq(harness_run(race_workers[_i], fanout, NULL), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("group");

    TCase *tc = harness_tcase(s, "gather", 30);
    tcase_add_loop_test(tc, gather_returns_statuses_in_argument_order, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, gather_returns_the_first_failure_in_argument_order, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, gather_cancelled_cancels_every_child_and_waits, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, gather_with_a_pending_cancel_cancels_and_reaps, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, gather_misuse_fails_with_einval_and_joins_nothing);

    tc = harness_tcase(s, "wait_any", 60);
    tcase_add_loop_test(tc, wait_any_returns_the_lowest_finished_index_and_joins_nothing, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, wait_any_times_out_and_cancels_nothing, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, wait_any_cancelled_returns_ecanceled_and_leaves_the_tasks, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, wait_any_races_with_tasks_ending, 0, N_RACE_WORKERS);
    tcase_add_loop_test(tc, wait_any_shared_with_other_waiters_sees_the_end, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, wait_any_misuse_fails_with_einval);

    tc = harness_tcase(s, "wait_any_many", 60);
    tcase_set_tags(tc, "timing");
    tcase_add_loop_test(tc, wait_any_by_many_tasks_beside_a_join_sees_the_end_at_once, 0,
                        HARNESS_N_WORKER_VARIANTS);

    tc = harness_tcase(s, "group", 60);
    tcase_add_loop_test(tc, group_waits_for_all_its_tasks, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, group_waits_for_tasks_spawned_by_its_children, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, group_first_failure_cancels_the_rest_and_is_returned, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, group_spawn_after_a_failure_fails_with_ecanceled, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, group_waiter_cancelled_cancels_all_children, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, group_simultaneous_failures_return_one_of_them, 0, N_RACE_WORKERS);
    tcase_add_test(tc, group_misuse_fails_cleanly);
    tcase_add_loop_test(tc, waited_group_calls_fail_with_einval, 0,
                        HARNESS_N_WORKER_VARIANTS);

    tc = harness_tcase(s, "misc", 60);
    tcase_add_test(tc, compose_calls_outside_a_task_fail_with_eperm);
    tcase_add_loop_test(tc, large_fanouts_complete, 0, N_RACE_WORKERS);

    return s;
}
