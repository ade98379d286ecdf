/* SPDX-License-Identifier: MIT */
/* The public contract of tasks (include/weft/task.h): FIFO order on one
 * worker, join statuses, current/done/detach, cancellation, names, scale
 * (a million tasks), misuse, and the per-task CPU state a task may rely on
 * (errno, floating-point environment, stack alignment). */
#include <errno.h>
#include <fenv.h>
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#include "harness.h"

#if defined(__SANITIZE_ADDRESS__)
#define TASK_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TASK_TEST_ASAN 1
#endif
#endif
#ifdef TASK_TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

static int return_int(void *arg)
{
    return (int)(intptr_t)arg;
}

static int join_arg(void *arg)
{
    return weft_join(arg);
}

/* --- ready-queue order with one worker -------------------------------- */

struct trace {
    atomic_int n;
    int ids[256];
};

static void trace_add(struct trace *t, int id)
{
    int i = atomic_fetch_add(&t->n, 1);
    if (i < (int)(sizeof t->ids / sizeof t->ids[0]))
        t->ids[i] = id;
}

/* Checks the trace against want[0..n) and records one readable failure. */
static void trace_expect(const char *file, int line, struct trace *t, const int *want, int n)
{
    int got_n = atomic_load(&t->n);
    bool same = got_n == n;
    for (int i = 0; same && i < n; i++)
        same = t->ids[i] == want[i];
    if (same)
        return;
    char got[512] = "", exp[512] = "";
    size_t g = 0, e = 0;
    for (int i = 0; i < got_n && i < 256 && g < sizeof got - 8; i++)
        g += (size_t)snprintf(got + g, sizeof got - g, "%d,", t->ids[i]);
    for (int i = 0; i < n && e < sizeof exp - 8; i++)
        e += (size_t)snprintf(exp + e, sizeof exp - e, "%d,", want[i]);
    harness_fail(file, line, "trace", "got [%s] want [%s]", got, exp);
}
#define TRACE_EXPECT(t, ...)                                               \
    do {                                                                   \
        const int te_want_[] = {__VA_ARGS__};                              \
        trace_expect(__FILE__, __LINE__, (t), te_want_,                    \
                     (int)(sizeof te_want_ / sizeof te_want_[0]));         \
    } while (0)

struct traced {
    struct trace *trace;
    int id;
};

static int append_and_yield_3_times(void *arg)
{
    struct traced *a = arg;
    for (int i = 0; i < 3; i++) {
        trace_add(a->trace, a->id);
        HCHECK_INT_EQ(weft_yield(), 0);
    }
    return 0;
}

static int interleave_three(void *arg)
{
    struct trace *tr = arg;
    struct traced a[3] = {{tr, 1}, {tr, 2}, {tr, 3}};
    weft_task *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = weft_spawn(append_and_yield_3_times, &a[i]);
        HREQUIRE(t[i] != NULL, -1);
    }
    for (int i = 0; i < 3; i++) {
        trace_add(tr, 0);
        HCHECK_INT_EQ(weft_yield(), 0);
    }
    for (int i = 0; i < 3; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    TRACE_EXPECT(tr, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
    return 0;
}

/* With one worker a yield goes behind every task already ready, so the
 * spawner (0) and its three children interleave round-robin. */
START_TEST(yield_goes_to_the_back_of_the_ready_queue)
{
    static struct trace tr;
    memset(&tr, 0, sizeof tr);
    ck_assert_int_eq(harness_run(1, interleave_three, &tr), 0);
    harness_assert_clean();
}
END_TEST

static int append_id(void *arg)
{
    struct traced *a = arg;
    trace_add(a->trace, a->id);
    return a->id;
}

static int spawn_100_in_order(void *arg)
{
    struct trace *tr = arg;
    static struct traced a[100];
    weft_task *t[100];
    for (int i = 0; i < 100; i++) {
        a[i] = (struct traced){tr, i};
        t[i] = weft_spawn(append_id, &a[i]);
        HREQUIRE(t[i] != NULL, -1);
    }
    /* asyncio.create_task: nothing has run while the spawner has not
     * suspended. */
    HCHECK_INT_EQ(atomic_load(&tr->n), 0);
    for (int i = 99; i >= 0; i--)
        HCHECK_INT_EQ(weft_join(t[i]), i);
    HCHECK_INT_EQ(atomic_load(&tr->n), 100);
    for (int i = 0; i < 100; i++)
        HCHECK_INT_EQ(tr->ids[i], i);
    return 0;
}

START_TEST(tasks_start_in_spawn_order_after_the_spawner_suspends)
{
    static struct trace tr;
    memset(&tr, 0, sizeof tr);
    ck_assert_int_eq(harness_run(1, spawn_100_in_order, &tr), 0);
    harness_assert_clean();
}
END_TEST

static int append_100(void *arg)
{
    struct trace *tr = arg;
    trace_add(tr, 100);
    return 0;
}

/* spawn_on from a plain thread queues in the same FIFO: the block_on task,
 * spawned last, starts last. */
START_TEST(spawn_on_from_plain_thread_keeps_fifo_order)
{
    static struct trace tr;
    static struct traced a[10];
    memset(&tr, 0, sizeof tr);
    weft_options opt = {.workers = 1};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    weft_task *t[10];
    for (int i = 0; i < 10; i++) {
        a[i] = (struct traced){&tr, i};
        t[i] = weft_spawn_on(rt, append_id, &a[i]);
        ck_assert_ptr_nonnull(t[i]);
    }
    ck_assert_int_eq(weft_runtime_block_on(rt, append_100, &tr), 0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(weft_runtime_block_on(rt, join_arg, t[i]), i);
    weft_runtime_free(rt);
    ck_assert_int_eq(atomic_load(&tr.n), 11);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(tr.ids[i], i);
    ck_assert_int_eq(tr.ids[10], 100);
    harness_assert_clean();
}
END_TEST

/* --- join -------------------------------------------------------------- */

static const int join_statuses[] = {0, 1, 42, INT_MAX, -1, -EINVAL, INT_MIN};
#define N_JOIN_STATUSES (int)(sizeof join_statuses / sizeof join_statuses[0])

static int yield_twice_then_return(void *arg)
{
    HCHECK_INT_EQ(weft_yield(), 0);
    HCHECK_INT_EQ(weft_yield(), 0);
    return (int)(intptr_t)arg;
}

static int join_two_ways(void *arg)
{
    int want = (int)(intptr_t)arg;
    weft_task *quick = weft_spawn(return_int, arg);
    weft_task *slow = weft_spawn(yield_twice_then_return, arg);
    HREQUIRE(quick != NULL && slow != NULL, -1);
    /* quick has ended before its join, slow ends while it is joined. */
    HYIELD_UNTIL(weft_task_done(quick));
    HCHECK_INT_EQ(weft_join(quick), want);
    HCHECK_INT_EQ(weft_join(slow), want);
    return 0;
}

START_TEST(join_returns_child_status)
{
    int want = join_statuses[_i % N_JOIN_STATUSES];
    unsigned workers = harness_workers_variant(_i / N_JOIN_STATUSES);
    ck_assert_int_eq(harness_run(workers, join_two_ways, (void *)(intptr_t)want), 0);
    harness_assert_clean();
}
END_TEST

static int spawn_tree(void *arg)
{
    intptr_t depth = (intptr_t)arg;
    if (depth == 0)
        return 1;
    weft_task *l = weft_spawn(spawn_tree, (void *)(depth - 1));
    weft_task *r = weft_spawn(spawn_tree, (void *)(depth - 1));
    HREQUIRE(l != NULL && r != NULL, -1);
    int a = weft_join(l);
    int b = weft_join(r);
    return a + b + 1;
}

START_TEST(nested_spawns_form_a_tree_of_joins)
{
    /* 2^13 - 1 tasks, each counting itself. */
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), spawn_tree, (void *)(intptr_t)12),
                     (1 << 13) - 1);
    harness_assert_clean();
}
END_TEST

/* --- current, done, ids ------------------------------------------------ */

START_TEST(current_is_null_outside_tasks)
{
    ck_assert_ptr_null(weft_current());
    ck_assert(!weft_cancelled());
}
END_TEST

struct handle_share {
    _Atomic(weft_task *) handle;
    atomic_int checked;
};

static int check_current_against_share(void *arg)
{
    struct handle_share *s = arg;
    HYIELD_UNTIL(atomic_load(&s->handle) != NULL);
    weft_task *self = weft_current();
    HCHECK(self != NULL);
    HCHECK_PTR_EQ(self, atomic_load(&s->handle));
    HCHECK_INT_EQ(weft_yield(), 0);
    HCHECK_PTR_EQ(weft_current(), self);
    HCHECK(weft_task_id(self) != 0);
    HCHECK(!weft_task_done(self));
    atomic_store(&s->checked, 1);
    return 0;
}

static int spawn_and_share_handle(void *arg)
{
    struct handle_share *s = arg;
    weft_task *me = weft_current();
    HCHECK(me != NULL);
    weft_task *t = weft_spawn(check_current_against_share, s);
    HREQUIRE(t != NULL, -1);
    HCHECK(t != me);
    atomic_store(&s->handle, t);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_PTR_EQ(weft_current(), me);
    return 0;
}

START_TEST(current_is_the_handle_spawn_returned)
{
    struct handle_share s = {.handle = NULL};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), spawn_and_share_handle, &s), 0);
    ck_assert_int_eq(atomic_load(&s.checked), 1);
    harness_assert_clean();
}
END_TEST

struct gate {
    atomic_int started;
    atomic_int open;
    atomic_int finished;
};

static int wait_at_gate(void *arg)
{
    struct gate *g = arg;
    atomic_store(&g->started, 1);
    HYIELD_UNTIL(atomic_load(&g->open));
    atomic_store(&g->finished, 1);
    return 5;
}

static int watch_done(void *arg)
{
    struct gate *g = arg;
    weft_task *t = weft_spawn(wait_at_gate, g);
    HREQUIRE(t != NULL, -1);
    HCHECK(!weft_task_done(t));
    HYIELD_UNTIL(atomic_load(&g->started));
    for (int i = 0; i < 3; i++) {
        HCHECK(!weft_task_done(t));
        HCHECK_INT_EQ(weft_yield(), 0);
    }
    HCHECK(!weft_task_done(t));
    atomic_store(&g->open, 1);
    HYIELD_UNTIL(weft_task_done(t));
    HCHECK_INT_EQ(atomic_load(&g->finished), 1);
    HCHECK_INT_EQ(weft_join(t), 5);
    return 0;
}

START_TEST(task_done_turns_true_when_the_body_returns)
{
    struct gate g = {0};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), watch_done, &g), 0);
    ck_assert(!weft_task_done(NULL));
    harness_assert_clean();
}
END_TEST

static int collect_ids(void *arg)
{
    enum { N = 200 };
    weft_task *t[N];
    uint64_t ids[N + 1];
    for (int i = 0; i < N; i++) {
        t[i] = weft_spawn(return_int, NULL);
        HREQUIRE(t[i] != NULL, -1);
        ids[i] = weft_task_id(t[i]);
    }
    ids[N] = weft_task_id(weft_current());
    for (int i = 0; i <= N; i++) {
        HCHECK(ids[i] != 0);
        for (int j = 0; j < i; j++)
            HCHECK_MSG(ids[i] != ids[j], "tasks %d and %d share id %llu", i, j,
                       (unsigned long long)ids[i]);
    }
    for (int i = 0; i < N; i++)
        weft_join(t[i]);
    return 0;
}

START_TEST(task_ids_are_unique_and_non_zero)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), collect_ids, NULL), 0);
    ck_assert_uint_eq(weft_task_id(NULL), 0);
    harness_assert_clean();
}
END_TEST

/* --- detach ------------------------------------------------------------ */

static int detach_running(void *arg)
{
    struct gate *g = arg;
    weft_task *t = weft_spawn(wait_at_gate, g);
    HREQUIRE(t != NULL, -1);
    HYIELD_UNTIL(atomic_load(&g->started));
    weft_detach(t);
    atomic_store(&g->open, 1);
    HYIELD_UNTIL(atomic_load(&g->finished));
    return 0;
}

START_TEST(detached_running_task_runs_to_its_end)
{
    struct gate g = {0};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), detach_running, &g), 0);
    ck_assert_int_eq(atomic_load(&g.finished), 1);
    harness_assert_clean();
}
END_TEST

static atomic_int n_detached_ended;

static int count_end(void *arg)
{
    atomic_fetch_add(&n_detached_ended, 1);
    return 0;
}

static int detach_finished_and_unstarted(void *arg)
{
    weft_task *t = weft_spawn(count_end, NULL);
    HREQUIRE(t != NULL, -1);
    HYIELD_UNTIL(weft_task_done(t));
    weft_detach(t); /* already finished: freed now */

    enum { N = 10000 };
    for (int i = 0; i < N; i++) {
        weft_task *u = weft_spawn(count_end, NULL);
        HREQUIRE(u != NULL, -1);
        weft_detach(u); /* not started yet (one worker): its body still runs */
    }
    HYIELD_UNTIL(atomic_load(&n_detached_ended) == N + 1);
    return 0;
}

START_TEST(detached_finished_and_unstarted_tasks_are_freed)
{
    atomic_store(&n_detached_ended, 0);
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), detach_finished_and_unstarted, NULL),
                     0);
    ck_assert_int_eq(atomic_load(&n_detached_ended), 10001);
    harness_assert_clean();
}
END_TEST

/* --- cancellation ------------------------------------------------------ */

struct cancel_probe {
    atomic_int started;
    atomic_int n_ok_yields;  /* yields that returned 0 */
    atomic_int first_error;  /* first non-zero yield result */
    atomic_int n_sticky;     /* later yields that returned -ECANCELED */
    atomic_int ended;
};

/* Yields until a yield fails, then yields 5 more times (ignoring the
 * cancellation, as a careless task would) and counts how many of those
 * fail too. Returns 7 so that joiners can tell its own status apart. */
static int yield_until_error(void *arg)
{
    struct cancel_probe *p = arg;
    atomic_store(&p->started, 1);
    int rc;
    while ((rc = weft_yield()) == 0)
        atomic_fetch_add(&p->n_ok_yields, 1);
    atomic_store(&p->first_error, rc);
    HCHECK(weft_cancelled());
    for (int i = 0; i < 5; i++)
        if (weft_yield() == -ECANCELED)
            atomic_fetch_add(&p->n_sticky, 1);
    atomic_store(&p->ended, 1);
    return 7;
}

static int cancel_unstarted(void *arg)
{
    struct cancel_probe *p = arg;
    weft_task *t = weft_spawn(yield_until_error, p);
    HREQUIRE(t != NULL, -1);
    weft_cancel(t);
    HCHECK_INT_EQ(atomic_load(&p->started), 0);
    HCHECK_INT_EQ(weft_join(t), 7);
    return 0;
}

/* One worker: the child has not started when it is cancelled; its body
 * still runs and its very first suspension point fails. */
START_TEST(cancel_before_start_still_runs_body)
{
    struct cancel_probe p = {0};
    ck_assert_int_eq(harness_run(1, cancel_unstarted, &p), 0);
    ck_assert_int_eq(atomic_load(&p.started), 1);
    ck_assert_int_eq(atomic_load(&p.n_ok_yields), 0);
    ck_assert_int_eq(atomic_load(&p.first_error), -ECANCELED);
    ck_assert_int_eq(atomic_load(&p.n_sticky), 5);
    harness_assert_clean();
}
END_TEST

static int cancel_running(void *arg)
{
    struct cancel_probe *p = arg;
    weft_task *t = weft_spawn(yield_until_error, p);
    HREQUIRE(t != NULL, -1);
    HYIELD_UNTIL(atomic_load(&p->n_ok_yields) >= 3);
    weft_cancel(t);
    HCHECK_INT_EQ(weft_join(t), 7);
    return 0;
}

/* A task that ignores -ECANCELED and carries on gets -ECANCELED from every
 * later suspension point too, so it still ends. */
START_TEST(cancel_is_sticky_after_missed_check)
{
    struct cancel_probe p = {0};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), cancel_running, &p), 0);
    ck_assert_int_eq(atomic_load(&p.first_error), -ECANCELED);
    ck_assert_int_eq(atomic_load(&p.n_sticky), 5);
    harness_assert_clean();
}
END_TEST

struct canceller_arg {
    struct cancel_probe *probe;
    _Atomic(weft_task *) victim;
};

static int cancel_victim_later(void *arg)
{
    struct canceller_arg *c = arg;
    HYIELD_UNTIL(atomic_load(&c->victim) != NULL &&
                 atomic_load(&c->probe->n_ok_yields) >= 10);
    weft_cancel(atomic_load(&c->victim));
    return 0;
}

static int cancel_from_sibling(void *arg)
{
    struct canceller_arg *c = arg;
    weft_task *canceller = weft_spawn(cancel_victim_later, c);
    weft_task *victim = weft_spawn(yield_until_error, c->probe);
    HREQUIRE(canceller != NULL && victim != NULL, -1);
    atomic_store(&c->victim, victim);
    HCHECK_INT_EQ(weft_join(victim), 7);
    HCHECK_INT_EQ(weft_join(canceller), 0);
    return 0;
}

START_TEST(cancel_while_yielding_from_another_task)
{
    struct cancel_probe p = {0};
    struct canceller_arg c = {.probe = &p, .victim = NULL};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), cancel_from_sibling, &c), 0);
    ck_assert_int_eq(atomic_load(&p.first_error), -ECANCELED);
    ck_assert_int_ge(atomic_load(&p.n_ok_yields), 10);
    ck_assert_int_eq(atomic_load(&p.n_sticky), 5);
    harness_assert_clean();
}
END_TEST

struct joiner_probe {
    struct cancel_probe child;
    atomic_int joining;
    atomic_int child_ended_at_join_return;
};

static int join_child_that_yields(void *arg)
{
    struct joiner_probe *j = arg;
    weft_task *t = weft_spawn(yield_until_error, &j->child);
    HREQUIRE(t != NULL, -1);
    HYIELD_UNTIL(atomic_load(&j->child.started));
    atomic_store(&j->joining, 1);
    int rc = weft_join(t);
    atomic_store(&j->child_ended_at_join_return, atomic_load(&j->child.ended));
    return rc;
}

static int cancel_the_joiner(void *arg)
{
    struct joiner_probe *j = arg;
    weft_task *parent = weft_spawn(join_child_that_yields, j);
    HREQUIRE(parent != NULL, -1);
    HYIELD_UNTIL(atomic_load(&j->joining));
    for (int i = 0; i < 10; i++)
        HCHECK_INT_EQ(weft_yield(), 0);
    weft_cancel(parent);
    HCHECK_INT_EQ(weft_join(parent), -ECANCELED);
    return 0;
}

/* asyncio: cancelling a task that awaits another cancels that other one;
 * weft_join waits for the child's end, frees it and returns -ECANCELED
 * (not the child's own status). */
START_TEST(cancel_of_joiner_cancels_the_joined_child)
{
    struct joiner_probe j = {0};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), cancel_the_joiner, &j), 0);
    ck_assert_int_eq(atomic_load(&j.child.first_error), -ECANCELED);
    ck_assert_int_eq(atomic_load(&j.child.n_sticky), 5);
    ck_assert_int_eq(atomic_load(&j.child_ended_at_join_return), 1);
    harness_assert_clean();
}
END_TEST

static int join_after_self_cancel(void *arg)
{
    struct cancel_probe *p = arg;
    weft_task *t = weft_spawn(yield_until_error, p);
    HREQUIRE(t != NULL, -1);
    weft_cancel(weft_current());
    HCHECK(weft_cancelled());
    int rc = weft_join(t);
    HCHECK_INT_EQ(atomic_load(&p->ended), 1);
    return rc;
}

/* A join entered with a cancellation already pending is a cancelled wait:
 * the child is cancelled and waited for, never left running unowned. */
START_TEST(join_with_pending_cancel_cancels_and_waits_for_child)
{
    struct cancel_probe p = {0};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), join_after_self_cancel, &p),
                     -ECANCELED);
    ck_assert_int_eq(atomic_load(&p.started), 1);
    ck_assert_int_eq(atomic_load(&p.first_error), -ECANCELED);
    ck_assert_int_eq(atomic_load(&p.ended), 1);
    harness_assert_clean();
}
END_TEST

static bool probe_started(void *arg)
{
    return atomic_load(&((struct cancel_probe *)arg)->started) != 0;
}

START_TEST(cancel_is_idempotent_and_works_from_a_plain_thread)
{
    struct cancel_probe p = {0};
    weft_options opt = {.workers = harness_workers_variant(_i)};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    weft_task *t = weft_spawn_on(rt, yield_until_error, &p);
    ck_assert_ptr_nonnull(t);
    ck_assert(harness_spin_until(probe_started, &p));
    for (int i = 0; i < 3; i++)
        weft_cancel(t);
    ck_assert_int_eq(weft_runtime_block_on(rt, join_arg, t), 7);
    weft_runtime_free(rt);
    ck_assert_int_eq(atomic_load(&p.first_error), -ECANCELED);
    ck_assert_int_eq(atomic_load(&p.n_sticky), 5);
    harness_assert_clean();
}
END_TEST

static int cancel_finished(void *arg)
{
    weft_task *t = weft_spawn(return_int, (void *)(intptr_t)5);
    HREQUIRE(t != NULL, -1);
    HYIELD_UNTIL(weft_task_done(t));
    weft_cancel(t);
    weft_cancel(t);
    HCHECK_INT_EQ(weft_join(t), 5);
    /* Cancelling a child never cancels the canceller. */
    HCHECK(!weft_cancelled());
    HCHECK_INT_EQ(weft_yield(), 0);
    return 0;
}

START_TEST(cancel_of_finished_task_keeps_its_status)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), cancel_finished, NULL), 0);
    harness_assert_clean();
}
END_TEST

/* --- scale ------------------------------------------------------------- */

enum { MILLION = 1000000 };

static int status_of_index(void *arg)
{
    return (int)((intptr_t)arg % 1000);
}

static int spawn_and_join_a_million(void *arg)
{
    weft_task **t = arg;
    for (intptr_t i = 0; i < MILLION; i++) {
        t[i] = weft_spawn(status_of_index, (void *)i);
        HREQUIRE(t[i] != NULL, -errno);
    }
    int64_t sum = 0;
    for (int i = 0; i < MILLION; i++)
        sum += weft_join(t[i]);
    /* 1000 runs of 0 + 1 + ... + 999. */
    HCHECK_INT_EQ(sum, INT64_C(1000) * 999 * 1000 / 2);
    return 0;
}

/* Workers 0 (the default: one per CPU) and 1. */
START_TEST(million_tasks_spawned_then_joined)
{
    weft_task **t = malloc(sizeof *t * MILLION);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(harness_run(_i == 0 ? 0 : 1, spawn_and_join_a_million, t), 0);
    free(t);
    harness_assert_clean();
}
END_TEST

static atomic_int chain_alive;
static atomic_int chain_alive_at_end;

static int chain_link(void *arg)
{
    intptr_t depth = (intptr_t)arg;
    atomic_fetch_add(&chain_alive, 1);
    int rc;
    if (depth == MILLION - 1) {
        atomic_store(&chain_alive_at_end, atomic_load(&chain_alive));
        rc = 1;
    } else {
        weft_task *t = weft_spawn(chain_link, (void *)(depth + 1));
        if (!t) {
            harness_fail(__FILE__, __LINE__, "weft_spawn(chain_link)", "depth %ld: errno %d (%s)",
                         (long)depth, errno, weft_strerror(errno));
            rc = -errno;
        } else {
            rc = weft_join(t);
        }
    }
    atomic_fetch_sub(&chain_alive, 1);
    return rc;
}

/* Each of a million tasks spawns the next and parks in weft_join on it:
 * when the last one runs, all of them are alive and parked at once.
 * Workers 0 (the default) and 1. */
START_TEST(million_tasks_parked_at_once_in_a_join_chain)
{
    atomic_store(&chain_alive, 0);
    atomic_store(&chain_alive_at_end, 0);
    ck_assert_int_eq(harness_run(_i == 0 ? 0 : 1, chain_link, (void *)(intptr_t)0), 1);
    ck_assert_int_eq(atomic_load(&chain_alive_at_end), MILLION);
    ck_assert_int_eq(atomic_load(&chain_alive), 0);
    harness_assert_clean();
}
END_TEST

/* --- misuse ------------------------------------------------------------ */

START_TEST(spawn_outside_a_task_fails_with_eperm)
{
    errno = 0;
    ck_assert_ptr_null(weft_spawn(return_int, NULL));
    ck_assert_int_eq(errno, EPERM);
}
END_TEST

START_TEST(yield_outside_a_task_fails_with_eperm)
{
    ck_assert_int_eq(weft_yield(), -EPERM);
}
END_TEST

START_TEST(join_outside_a_task_fails_with_eperm_and_keeps_the_handle)
{
    weft_options opt = {.workers = 1};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    weft_task *t = weft_spawn_on(rt, return_int, (void *)(intptr_t)8);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(weft_join(t), -EPERM);
    ck_assert_int_eq(weft_runtime_block_on(rt, join_arg, t), 8);
    weft_runtime_free(rt);
}
END_TEST

static int misuse_inside_a_task(void *arg)
{
    HCHECK_INT_EQ(weft_join(NULL), -EINVAL);
    HCHECK_INT_EQ(weft_join(weft_current()), -EINVAL);
    errno = 0;
    HCHECK(weft_spawn(NULL, NULL) == NULL);
    HCHECK_INT_EQ(errno, EINVAL);
    errno = 0;
    HCHECK(weft_spawn_on(NULL, return_int, NULL) == NULL);
    HCHECK_INT_EQ(errno, EINVAL);
    weft_cancel(NULL);
    weft_detach(NULL);
    weft_task_set_name(NULL, "nobody");
    HCHECK(!weft_task_done(NULL));
    HCHECK_INT_EQ(weft_task_id(NULL), 0);
    /* None of it disturbed the caller. */
    HCHECK(!weft_cancelled());
    HCHECK_INT_EQ(weft_yield(), 0);
    return 0;
}

START_TEST(bad_arguments_inside_a_task_fail_with_einval)
{
    ck_assert_int_eq(harness_run(1, misuse_inside_a_task, NULL), 0);
    harness_assert_clean();
}
END_TEST

START_TEST(null_handles_are_ignored_outside_tasks)
{
    weft_cancel(NULL);
    weft_detach(NULL);
    weft_task_set_name(NULL, "nobody");
    weft_task_set_name(NULL, NULL);
    ck_assert(!weft_task_done(NULL));
    errno = 0;
    ck_assert_ptr_null(weft_spawn_on(NULL, return_int, NULL));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* --- names ------------------------------------------------------------- */

struct name_probe {
    struct gate gate;
    bool named_before_start;
    char seen[64];
};

static int read_own_name(void *arg)
{
    struct name_probe *n = arg;
    if (!n->named_before_start)
        HCHECK_STR_EQ(weft_task_name(weft_current()), "");
    atomic_store(&n->gate.started, 1);
    HYIELD_UNTIL(atomic_load(&n->gate.open));
    snprintf(n->seen, sizeof n->seen, "%s", weft_task_name(weft_current()));
    return 0;
}

static int name_a_child(void *arg)
{
    struct name_probe *n = arg;
    weft_task *t = weft_spawn(read_own_name, n);
    HREQUIRE(t != NULL, -1);
    HCHECK_STR_EQ(weft_task_name(t), "");
    HYIELD_UNTIL(atomic_load(&n->gate.started));

    weft_task_set_name(t, "fetcher");
    HCHECK_STR_EQ(weft_task_name(t), "fetcher");
    weft_task_set_name(t, NULL);
    HCHECK_STR_EQ(weft_task_name(t), "");
    weft_task_set_name(t, "");
    HCHECK_STR_EQ(weft_task_name(t), "");
    /* 40 bytes in, the first 31 kept. */
    weft_task_set_name(t, "0123456789abcdefghijklmnopqrstuvwxyzABCD");
    HCHECK_STR_EQ(weft_task_name(t), "0123456789abcdefghijklmnopqrstu");
    /* Exactly 31 bytes fit whole. */
    weft_task_set_name(t, "abcdefghijklmnopqrstuvwxyz01234");
    HCHECK_STR_EQ(weft_task_name(t), "abcdefghijklmnopqrstuvwxyz01234");

    atomic_store(&n->gate.open, 1);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_STR_EQ(n->seen, "abcdefghijklmnopqrstuvwxyz01234");

    weft_task_set_name(weft_current(), "parent");
    HCHECK_STR_EQ(weft_task_name(weft_current()), "parent");
    return 0;
}

START_TEST(set_name_copies_truncates_and_clears)
{
    struct name_probe n = {0};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), name_a_child, &n), 0);
    harness_assert_clean();
}
END_TEST

START_TEST(set_name_from_a_plain_thread)
{
    struct name_probe n = {.named_before_start = true};
    weft_options opt = {.workers = 1};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    weft_task *t = weft_spawn_on(rt, read_own_name, &n);
    ck_assert_ptr_nonnull(t);
    char name[] = "from-main-thread";
    weft_task_set_name(t, name);
    memset(name, 'x', sizeof name - 1); /* the name was copied */
    ck_assert_str_eq(weft_task_name(t), "from-main-thread");
    atomic_store(&n.gate.open, 1);
    ck_assert_int_eq(weft_runtime_block_on(rt, join_arg, t), 0);
    weft_runtime_free(rt);
    ck_assert_str_eq(n.seen, "from-main-thread");
    harness_assert_clean();
}
END_TEST

/* --- per-task CPU state ------------------------------------------------ */

/* errno is read and written through calls the compiler cannot see into:
 * glibc declares __errno_location() const, so inline code could keep the
 * previous thread's errno address across a yield that migrates the task. */
static int read_errno(void)
{
    return errno;
}
static void write_errno(int v)
{
    errno = v;
}
static int (*volatile get_errno)(void) = read_errno;
static void (*volatile set_errno)(int) = write_errno;

static int keep_errno(void *arg)
{
    int mine = (int)(intptr_t)arg;
    for (int i = 0; i < 5000; i++) {
        set_errno(mine);
        int rc = weft_yield();
        int now = get_errno();
        if (rc != 0) {
            harness_fail(__FILE__, __LINE__, "weft_yield() == 0", "round %d: %d", i, rc);
            break;
        }
        if (now != mine) {
            harness_fail(__FILE__, __LINE__, "errno == mine", "round %d: errno %d, want %d", i,
                         now, mine);
            break;
        }
    }
    return 0;
}

static int run_errno_keepers(void *arg)
{
    enum { N = 8 };
    weft_task *t[N];
    for (int i = 0; i < N; i++) {
        t[i] = weft_spawn(keep_errno, (void *)(intptr_t)(1234 + 1111 * i));
        HREQUIRE(t[i] != NULL, -1);
    }
    for (int i = 0; i < N; i++)
        weft_join(t[i]);
    return 0;
}

START_TEST(errno_is_kept_per_task_across_yields)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), run_errno_keepers, NULL), 0);
    harness_assert_clean();
}
END_TEST

static double divide(double a, double b)
{
    return a / b;
}
static double (*volatile divide_now)(double, double) = divide;

struct fp_arg {
    int mode;
    double third;       /* 1/3 as rounded in this mode */
    bool third_differs; /* the modes give different 1/3 here */
};

static int keep_rounding_mode(void *arg)
{
    const struct fp_arg *a = arg;
    if (a->mode != FE_TONEAREST)
        HREQUIRE(fesetround(a->mode) == 0, -1);
    for (int i = 0; i < 1000; i++) {
        int rc = weft_yield();
        int mode = fegetround();
        double third = divide_now(1.0, 3.0);
        if (rc != 0) {
            harness_fail(__FILE__, __LINE__, "weft_yield() == 0", "round %d: %d", i, rc);
            break;
        }
        if (mode != a->mode || (a->third_differs && third != a->third)) {
            harness_fail(__FILE__, __LINE__, "fegetround() == mode",
                         "round %d: mode %#x, want %#x; 1/3 %a, want %a", i, mode, a->mode,
                         third, a->third);
            break;
        }
    }
    fesetround(FE_TONEAREST);
    return 0;
}

static int run_rounding_keepers(void *arg)
{
    HREQUIRE(fegetround() == FE_TONEAREST, -1);
    static struct fp_arg nearest, upward;
    nearest = (struct fp_arg){FE_TONEAREST, divide_now(1.0, 3.0), true};
    HREQUIRE(fesetround(FE_UPWARD) == 0, -1);
    upward = (struct fp_arg){FE_UPWARD, divide_now(1.0, 3.0), true};
    fesetround(FE_TONEAREST);
    /* valgrind ignores the SSE rounding mode: then only the mode itself
     * can be compared, not its effect. */
    if (upward.third == nearest.third)
        upward.third_differs = nearest.third_differs = false;

    weft_task *t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = weft_spawn(keep_rounding_mode, (i % 2) ? &upward : &nearest);
        HREQUIRE(t[i] != NULL, -1);
    }
    for (int i = 0; i < 4; i++)
        weft_join(t[i]);
    HCHECK_INT_EQ(fegetround(), FE_TONEAREST);
    return 0;
}

/* The rounding mode is part of the state a task keeps across switches, as
 * the ABI makes it callee-saved: tasks sharing a worker do not see each
 * other's mode. */
START_TEST(rounding_mode_is_kept_per_task_across_yields)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), run_rounding_keepers, NULL), 0);
    harness_assert_clean();
}
END_TEST

/* Hides from the compiler what it knows about a local's alignment. */
static uintptr_t address_of(const void *p)
{
    return (uintptr_t)p;
}
static uintptr_t (*volatile launder)(const void *) = address_of;

static __attribute__((noinline)) void check_nested_alignment(int task)
{
    _Alignas(16) char buf[16] = {0};
    HCHECK_MSG((launder(buf) & 15) == 0, "task %d: nested aligned local at %p", task,
               (void *)buf);
    HCHECK_MSG(((uintptr_t)__builtin_frame_address(0) & 15) == 0, "task %d: nested frame at %p",
               task, __builtin_frame_address(0));
    /* printf's floating-point path uses aligned SSE stores on x86-64. */
    char text[32];
    snprintf(text, sizeof text, "%.3f %Lf", 2.5, (long double)0.25);
    HCHECK_STR_EQ(text, "2.500 0.250000");
}

static int check_alignment(void *arg)
{
    int task = (int)(intptr_t)arg;
    for (int round = 0; round < 3; round++) {
        _Alignas(16) char entry[16] = {0};
        _Alignas(max_align_t) char widest[sizeof(max_align_t)] = {0};
        HCHECK_MSG((launder(entry) & 15) == 0, "task %d: aligned local at %p", task,
                   (void *)entry);
        HCHECK_MSG((launder(widest) & (_Alignof(max_align_t) - 1)) == 0,
                   "task %d: max_align_t local at %p", task, (void *)widest);
        check_nested_alignment(task);
        HCHECK_INT_EQ(weft_yield(), 0);
    }
    return 0;
}

static int run_alignment_checks(void *arg)
{
    enum { N = 64 };
    weft_task *t[N];
    for (int i = 0; i < N; i++) {
        t[i] = weft_spawn(check_alignment, (void *)(intptr_t)i);
        HREQUIRE(t[i] != NULL, -1);
    }
    for (int i = 0; i < N; i++)
        weft_join(t[i]);
    return check_alignment((void *)(intptr_t)-1);
}

START_TEST(task_stacks_are_16_byte_aligned)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), run_alignment_checks, NULL), 0);
    harness_assert_clean();
}
END_TEST

#ifdef TASK_TEST_ASAN
static int returns_seven(void *arg)
{
    (void)arg;
    return 7;
}

static int freed_handle_main(void *arg)
{
    (void)arg;
    weft_task *t = weft_spawn(returns_seven, NULL);
    HREQUIRE(t != NULL, -1);
    HCHECK(!__asan_address_is_poisoned(t));
    HCHECK_INT_EQ(weft_join(t), 7);
    /* Joined and ended: the struct is free, and a use of the stale
     * handle would be reported (task memory is reused, not freed). */
    HCHECK(__asan_address_is_poisoned(t));
    weft_task *u = weft_spawn(returns_seven, NULL); /* may reuse it */
    HREQUIRE(u != NULL, -1);
    HCHECK(!__asan_address_is_poisoned(u));
    HCHECK_INT_EQ(weft_join(u), 7);
    return 0;
}

/* Under ASan a freed task struct is poisoned, a live one is not. */
START_TEST(asan_poisons_a_freed_task)
{
    ck_assert_int_eq(harness_run(1, freed_handle_main, NULL), 0);
    harness_assert_clean();
}
END_TEST
#endif

Suite *test_suite(void)
{
    Suite *s = suite_create("task");

    TCase *tc = harness_tcase(s, "order", 20);
    tcase_add_test(tc, yield_goes_to_the_back_of_the_ready_queue);
    tcase_add_test(tc, tasks_start_in_spawn_order_after_the_spawner_suspends);
    tcase_add_test(tc, spawn_on_from_plain_thread_keeps_fifo_order);

    tc = harness_tcase(s, "join", 30);
    tcase_add_loop_test(tc, join_returns_child_status, 0,
                        N_JOIN_STATUSES * HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, nested_spawns_form_a_tree_of_joins, 0, HARNESS_N_WORKER_VARIANTS);

    tc = harness_tcase(s, "identity", 20);
    tcase_add_test(tc, current_is_null_outside_tasks);
    tcase_add_loop_test(tc, current_is_the_handle_spawn_returned, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, task_done_turns_true_when_the_body_returns, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, task_ids_are_unique_and_non_zero, 0, HARNESS_N_WORKER_VARIANTS);

    tc = harness_tcase(s, "detach", 30);
    tcase_add_loop_test(tc, detached_running_task_runs_to_its_end, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, detached_finished_and_unstarted_tasks_are_freed, 0,
                        HARNESS_N_WORKER_VARIANTS);

    tc = harness_tcase(s, "cancel", 30);
    tcase_add_test(tc, cancel_before_start_still_runs_body);
    tcase_add_loop_test(tc, cancel_is_sticky_after_missed_check, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, cancel_while_yielding_from_another_task, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, cancel_of_joiner_cancels_the_joined_child, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, join_with_pending_cancel_cancels_and_waits_for_child, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, cancel_is_idempotent_and_works_from_a_plain_thread, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, cancel_of_finished_task_keeps_its_status, 0,
                        HARNESS_N_WORKER_VARIANTS);

    /* Several GiB of stacks: CK_EXCLUDE_TAGS=slow leaves it out (valgrind). */
    tc = harness_tcase(s, "million", 120);
    tcase_set_tags(tc, "slow");
    tcase_add_loop_test(tc, million_tasks_spawned_then_joined, 0, 2);
    tcase_add_loop_test(tc, million_tasks_parked_at_once_in_a_join_chain, 0, 2);

    tc = harness_tcase(s, "misuse", 20);
    tcase_add_test(tc, spawn_outside_a_task_fails_with_eperm);
    tcase_add_test(tc, yield_outside_a_task_fails_with_eperm);
    tcase_add_test(tc, join_outside_a_task_fails_with_eperm_and_keeps_the_handle);
    tcase_add_test(tc, bad_arguments_inside_a_task_fail_with_einval);
    tcase_add_test(tc, null_handles_are_ignored_outside_tasks);

#ifdef TASK_TEST_ASAN
    tcase_add_test(tc, asan_poisons_a_freed_task);
#endif
    tc = harness_tcase(s, "names", 20);
    tcase_add_loop_test(tc, set_name_copies_truncates_and_clears, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, set_name_from_a_plain_thread);

    tc = harness_tcase(s, "cpu_state", 30);
    tcase_add_loop_test(tc, errno_is_kept_per_task_across_yields, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, rounding_mode_is_kept_per_task_across_yields, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, task_stacks_are_16_byte_aligned, 0, HARNESS_N_WORKER_VARIANTS);
    return s;
}
