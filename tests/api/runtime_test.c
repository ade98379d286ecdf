/* SPDX-License-Identifier: MIT */
/* The public contract of runtimes (include/weft/runtime.h): weft_run,
 * runtime_new/block_on/free, spawn_on, options and environment, version
 * and weft_strerror. */
#ifdef HAVE_CONFIG_H
#include "config.h" /* PACKAGE_VERSION, for the version check */
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* CPU_COUNT */
#endif

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#include "harness.h"

/* --- small task bodies ------------------------------------------------- */

static int return_int(void *arg)
{
    return (int)(intptr_t)arg;
}

static int yield_then_return(void *arg)
{
    for (int i = 0; i < 3; i++)
        HCHECK_INT_EQ(weft_yield(), 0);
    return (int)(intptr_t)arg;
}

static int join_arg(void *arg)
{
    return weft_join(arg);
}

/* --- weft_run ---------------------------------------------------------- */

static const int run_statuses[] = {0, 1, 17, INT_MAX, -1, -ECANCELED, INT_MIN};
#define N_RUN_STATUSES (int)(sizeof run_statuses / sizeof run_statuses[0])

START_TEST(run_returns_main_status)
{
    int want = run_statuses[_i];
    ck_assert_int_eq(weft_run(yield_then_return, (void *)(intptr_t)want), want);
    harness_assert_clean();
}
END_TEST

struct in_task_probe {
    weft_task *current;
    weft_runtime *rt;
};

static int probe_context(void *arg)
{
    struct in_task_probe *p = arg;
    p->current = weft_current();
    p->rt = weft_runtime_current();
    return 0;
}

START_TEST(run_runs_main_as_a_task)
{
    struct in_task_probe p = {0};
    ck_assert_int_eq(weft_run(probe_context, &p), 0);
    ck_assert_ptr_nonnull(p.current);
    ck_assert_ptr_nonnull(p.rt);
    ck_assert_ptr_null(weft_current());
    ck_assert_ptr_null(weft_runtime_current());
}
END_TEST

static int spawn_and_join_children(void *arg)
{
    int n = (int)(intptr_t)arg, sum = 0;
    weft_task *t[16];
    for (int i = 0; i < n; i++) {
        t[i] = weft_spawn(return_int, (void *)(intptr_t)(i + 1));
        HREQUIRE(t[i] != NULL, -1);
    }
    for (int i = 0; i < n; i++)
        sum += weft_join(t[i]);
    return sum;
}

START_TEST(run_can_be_called_repeatedly)
{
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(weft_run(spawn_and_join_children, (void *)(intptr_t)16),
                         16 * 17 / 2);
    harness_assert_clean();
}
END_TEST

START_TEST(run_rejects_null_main)
{
    ck_assert_int_eq(weft_run(NULL, NULL), -EINVAL);
}
END_TEST

/* --- runtime_new and options ------------------------------------------ */

START_TEST(runtime_new_with_null_options_uses_defaults)
{
    const char *env = getenv("WEFT_WORKERS");
    weft_runtime *rt = weft_runtime_new(NULL);
    ck_assert_ptr_nonnull(rt);
    unsigned n = weft_runtime_workers(rt);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_le(n, WEFT_MAX_WORKERS);
    if (!env || !*env) {
        /* One per online CPU; a container's affinity mask may be smaller. */
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        cpu_set_t set;
        long allowed = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : online;
        ck_assert_msg((long)n == online || (long)n == allowed,
                      "workers %u, online CPUs %ld, allowed CPUs %ld", n, online, allowed);
    }
    ck_assert_int_eq(weft_runtime_block_on(rt, spawn_and_join_children, (void *)(intptr_t)8),
                     36);
    weft_runtime_free(rt);
    harness_assert_clean();
}
END_TEST

static const unsigned worker_counts[] = {1, 2, 4};

START_TEST(runtime_new_starts_the_requested_workers)
{
    weft_options opt = {.workers = worker_counts[_i]};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    ck_assert_uint_eq(weft_runtime_workers(rt), worker_counts[_i]);
    ck_assert_int_eq(weft_runtime_block_on(rt, spawn_and_join_children, (void *)(intptr_t)16),
                     16 * 17 / 2);
    weft_runtime_free(rt);
    harness_assert_clean();
}
END_TEST

START_TEST(runtime_new_accepts_limits_of_options)
{
    const weft_options ok[] = {
        {.workers = WEFT_MAX_WORKERS},
        {.workers = 1, .stack_size = 16 * 1024},
        {.workers = 1, .stack_size = 16 * 1024 + 1},         /* rounded up to whole pages */
        {.workers = 1, .stack_size = 64u * 1024 * 1024 - 1},
        {.workers = 1, .stack_size = 64u * 1024 * 1024},
        {.workers = 1, .blocking_threads = 1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        weft_runtime *rt = weft_runtime_new(&ok[i]);
        ck_assert_msg(rt != NULL, "options #%zu refused: errno %d", i, errno);
        ck_assert_int_eq(weft_runtime_block_on(rt, yield_then_return, (void *)(intptr_t)5), 5);
        weft_runtime_free(rt);
    }
    harness_assert_clean();
}
END_TEST

START_TEST(runtime_new_rejects_bad_options_with_einval)
{
    const weft_options bad[] = {
        {.workers = WEFT_MAX_WORKERS + 1},
        {.workers = UINT_MAX},
        {.workers = 1, .stack_size = 1},
        {.workers = 1, .stack_size = 4096},
        {.workers = 1, .stack_size = 64u * 1024 * 1024 + 1},
        {.workers = 1, .stack_size = (size_t)1 << 40},
        {.workers = 1, .stack_size = SIZE_MAX},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        weft_runtime *rt = weft_runtime_new(&bad[i]);
        int err = errno;
        ck_assert_msg(rt == NULL, "bad options #%zu accepted", i);
        ck_assert_msg(err == EINVAL, "bad options #%zu: errno %d, want EINVAL", i, err);
    }
}
END_TEST

/* Restores an environment variable when the test runs without fork. */
struct saved_env {
    const char *name;
    char *value;
};

static struct saved_env env_save(const char *name)
{
    const char *v = getenv(name);
    return (struct saved_env){name, v ? strdup(v) : NULL};
}

static void env_restore(struct saved_env *s)
{
    if (s->value)
        setenv(s->name, s->value, 1);
    else
        unsetenv(s->name);
    free(s->value);
}

START_TEST(weft_workers_env_overrides_zero_workers_only)
{
    struct saved_env saved = env_save("WEFT_WORKERS");
    ck_assert_int_eq(setenv("WEFT_WORKERS", "3", 1), 0);

    weft_options zero = {.workers = 0};
    weft_runtime *rt = weft_runtime_new(&zero);
    ck_assert_ptr_nonnull(rt);
    ck_assert_uint_eq(weft_runtime_workers(rt), 3);
    ck_assert_int_eq(weft_runtime_block_on(rt, yield_then_return, (void *)(intptr_t)9), 9);
    weft_runtime_free(rt);

    rt = weft_runtime_new(NULL);
    ck_assert_ptr_nonnull(rt);
    ck_assert_uint_eq(weft_runtime_workers(rt), 3);
    weft_runtime_free(rt);

    weft_options two = {.workers = 2};
    rt = weft_runtime_new(&two);
    ck_assert_ptr_nonnull(rt);
    ck_assert_uint_eq(weft_runtime_workers(rt), 2);
    weft_runtime_free(rt);

    env_restore(&saved);
    harness_assert_clean();
}
END_TEST

/* A WEFT_WORKERS that is not an integer in 1..WEFT_MAX_WORKERS is reported
 * (stderr) and ignored: the runtime gets the default, one per CPU. */
START_TEST(weft_workers_env_invalid_gives_the_default)
{
    struct saved_env saved = env_save("WEFT_WORKERS");
    unsetenv("WEFT_WORKERS");
    weft_runtime *rt = weft_runtime_new(NULL);
    ck_assert_ptr_nonnull(rt);
    unsigned dflt = weft_runtime_workers(rt);
    weft_runtime_free(rt);
    static const char *const bad[] = {"", "0", "-1", "abc", "3x", "257", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(setenv("WEFT_WORKERS", bad[i], 1), 0);
        rt = weft_runtime_new(NULL);
        ck_assert_ptr_nonnull(rt);
        ck_assert_msg(weft_runtime_workers(rt) == dflt, "WEFT_WORKERS=\"%s\": %u workers, want %u",
                      bad[i], weft_runtime_workers(rt), dflt);
        weft_runtime_free(rt);
    }
    ck_assert_int_eq(setenv("WEFT_WORKERS", "256", 1), 0);
    rt = weft_runtime_new(NULL);
    ck_assert_ptr_nonnull(rt);
    ck_assert_uint_eq(weft_runtime_workers(rt), 256);
    weft_runtime_free(rt);
    env_restore(&saved);
    harness_assert_clean();
}
END_TEST

START_TEST(runtime_workers_of_null_is_zero)
{
    ck_assert_uint_eq(weft_runtime_workers(NULL), 0);
}
END_TEST

/* --- block_on ---------------------------------------------------------- */

static int check_runtime_is(void *arg)
{
    HCHECK_PTR_EQ(weft_runtime_current(), arg);
    HCHECK(weft_current() != NULL);
    return 0;
}

START_TEST(block_on_runs_fn_as_a_task_of_that_runtime)
{
    weft_options opt = {.workers = harness_workers_variant(_i)};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    ck_assert_int_eq(weft_runtime_block_on(rt, check_runtime_is, rt), 0);
    ck_assert_ptr_null(weft_runtime_current());
    weft_runtime_free(rt);
    harness_assert_clean();
}
END_TEST

START_TEST(block_on_can_be_called_repeatedly)
{
    weft_options opt = {.workers = harness_workers_variant(_i)};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    for (int i = 0; i < 100; i++) {
        weft_fn fn = (i % 2) ? return_int : yield_then_return;
        ck_assert_int_eq(weft_runtime_block_on(rt, fn, (void *)(intptr_t)(i - 50)), i - 50);
    }
    weft_runtime_free(rt);
    harness_assert_clean();
}
END_TEST

START_TEST(block_on_rejects_null_arguments)
{
    weft_options opt = {.workers = 1};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    ck_assert_int_eq(weft_runtime_block_on(NULL, return_int, NULL), -EINVAL);
    ck_assert_int_eq(weft_runtime_block_on(rt, NULL, NULL), -EINVAL);
    /* The runtime is still usable afterwards. */
    ck_assert_int_eq(weft_runtime_block_on(rt, return_int, (void *)(intptr_t)3), 3);
    weft_runtime_free(rt);
}
END_TEST

/* Two plain threads block on one runtime at once; each task waits until
 * both are running, which only works if both block_on calls are live. */
struct two_threads {
    weft_runtime *rt;
    atomic_int n_started;
};

struct two_threads_arg {
    struct two_threads *shared;
    int id;
    int status;
};

static int wait_for_both(void *arg)
{
    struct two_threads_arg *a = arg;
    atomic_fetch_add(&a->shared->n_started, 1);
    HYIELD_UNTIL(atomic_load(&a->shared->n_started) == 2);
    return 100 + a->id;
}

static void *block_on_thread(void *arg)
{
    struct two_threads_arg *a = arg;
    a->status = weft_runtime_block_on(a->shared->rt, wait_for_both, a);
    return NULL;
}

START_TEST(block_on_from_two_plain_threads_at_once)
{
    weft_options opt = {.workers = harness_workers_variant(_i)};
    struct two_threads shared = {.rt = weft_runtime_new(&opt)};
    ck_assert_ptr_nonnull(shared.rt);
    struct two_threads_arg args[2] = {{&shared, 0, -1}, {&shared, 1, -1}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, block_on_thread, &args[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(args[0].status, 100);
    ck_assert_int_eq(args[1].status, 101);
    weft_runtime_free(shared.rt);
    harness_assert_clean();
}
END_TEST

/* --- plain-thread-only calls from inside a task ----------------------- */

static atomic_int never_ran;

static int must_not_run(void *arg)
{
    atomic_fetch_add(&never_ran, 1);
    return 0;
}

static int call_plain_thread_apis(void *arg)
{
    weft_runtime *self = weft_runtime_current();
    weft_runtime *other = arg;
    HCHECK(self != NULL);

    HCHECK_INT_EQ(weft_runtime_block_on(self, must_not_run, NULL), -EPERM);
    HCHECK_INT_EQ(weft_runtime_block_on(other, must_not_run, NULL), -EPERM);
    HCHECK_INT_EQ(weft_run(must_not_run, NULL), -EPERM);

    errno = 0;
    weft_runtime_free(self);
    HCHECK_INT_EQ(errno, EPERM);
    errno = 0;
    weft_runtime_free(other);
    HCHECK_INT_EQ(errno, EPERM);

    /* Both runtimes still work: this one here, the other afterwards. */
    HCHECK_INT_EQ(weft_yield(), 0);
    weft_task *t = weft_spawn(return_int, (void *)(intptr_t)21);
    HREQUIRE(t != NULL, -1);
    return weft_join(t) * 2;
}

START_TEST(plain_thread_calls_from_a_task_fail_with_eperm)
{
    atomic_store(&never_ran, 0);
    weft_options opt = {.workers = harness_workers_variant(_i)};
    weft_runtime *rt = weft_runtime_new(&opt);
    weft_runtime *other = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    ck_assert_ptr_nonnull(other);
    ck_assert_int_eq(weft_runtime_block_on(rt, call_plain_thread_apis, other), 42);
    ck_assert_int_eq(weft_runtime_block_on(rt, return_int, (void *)(intptr_t)1), 1);
    ck_assert_int_eq(weft_runtime_block_on(other, return_int, (void *)(intptr_t)2), 2);
    weft_runtime_free(other);
    weft_runtime_free(rt);
    ck_assert_int_eq(atomic_load(&never_ran), 0);
    harness_assert_clean();
}
END_TEST

/* --- spawn_on ---------------------------------------------------------- */

START_TEST(spawn_on_from_plain_thread_is_joined_by_a_task)
{
    weft_options opt = {.workers = harness_workers_variant(_i)};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    weft_task *t = weft_spawn_on(rt, yield_then_return, (void *)(intptr_t)-7);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(weft_runtime_block_on(rt, join_arg, t), -7);
    weft_runtime_free(rt);
    harness_assert_clean();
}
END_TEST

static int spawn_on_self_and_join(void *arg)
{
    weft_task *t = weft_spawn_on(weft_runtime_current(), yield_then_return, (void *)(intptr_t)11);
    HREQUIRE(t != NULL, -1);
    return weft_join(t);
}

START_TEST(spawn_on_from_a_task_of_the_same_runtime)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), spawn_on_self_and_join, NULL), 11);
    harness_assert_clean();
}
END_TEST

/* A task of one runtime spawns on another; a plain thread then joins the
 * handle through block_on on that other runtime. */
struct cross_spawn {
    weft_runtime *target;
    weft_task *task;
};

static int spawn_on_other(void *arg)
{
    struct cross_spawn *c = arg;
    c->task = weft_spawn_on(c->target, yield_then_return, (void *)(intptr_t)13);
    HCHECK(c->task != NULL);
    return 0;
}

START_TEST(spawn_on_another_runtime_from_a_task)
{
    weft_options opt = {.workers = 1};
    weft_runtime *a = weft_runtime_new(&opt);
    weft_runtime *b = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    struct cross_spawn c = {.target = b};
    ck_assert_int_eq(weft_runtime_block_on(a, spawn_on_other, &c), 0);
    ck_assert_ptr_nonnull(c.task);
    ck_assert_int_eq(weft_runtime_block_on(b, join_arg, c.task), 13);
    weft_runtime_free(a);
    weft_runtime_free(b);
    harness_assert_clean();
}
END_TEST

START_TEST(spawn_on_rejects_null_arguments)
{
    weft_options opt = {.workers = 1};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    errno = 0;
    ck_assert_ptr_null(weft_spawn_on(NULL, return_int, NULL));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(weft_spawn_on(rt, NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    weft_runtime_free(rt);
}
END_TEST

/* --- runtime_free ------------------------------------------------------ */

struct shutdown_probe {
    atomic_int started;
    atomic_int saw_cancel;
    atomic_int sticky;
    atomic_int ended;
};

/* Yields until cancelled, then checks that later suspension points are
 * cancelled too before ending. */
static int yield_until_cancelled(void *arg)
{
    struct shutdown_probe *p = arg;
    atomic_fetch_add(&p->started, 1);
    int rc;
    while ((rc = weft_yield()) == 0)
        ;
    if (rc == -ECANCELED)
        atomic_fetch_add(&p->saw_cancel, 1);
    int later = 0;
    for (int i = 0; i < 3; i++)
        later += weft_yield() == -ECANCELED;
    if (later == 3)
        atomic_fetch_add(&p->sticky, 1);
    atomic_fetch_add(&p->ended, 1);
    return rc;
}

START_TEST(runtime_free_cancels_detached_tasks_and_returns)
{
    enum { N = 64 };
    struct shutdown_probe p = {0};
    weft_options opt = {.workers = harness_workers_variant(_i)};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    for (int i = 0; i < N; i++) {
        weft_task *t = weft_spawn_on(rt, yield_until_cancelled, &p);
        ck_assert_ptr_nonnull(t);
        weft_detach(t);
    }
    /* Let some of them start; the others are still queued at free. */
    for (int spins = 0; atomic_load(&p.started) < N / 2 && spins < 1000000; spins++)
        sched_yield();
    weft_runtime_free(rt);
    /* Every body started (even those queued), saw -ECANCELED and ended. */
    ck_assert_int_eq(atomic_load(&p.started), N);
    ck_assert_int_eq(atomic_load(&p.saw_cancel), N);
    ck_assert_int_eq(atomic_load(&p.sticky), N);
    ck_assert_int_eq(atomic_load(&p.ended), N);
}
END_TEST

static int spawn_detached_then_return(void *arg)
{
    struct shutdown_probe *p = arg;
    for (int i = 0; i < 16; i++) {
        weft_task *t = weft_spawn(yield_until_cancelled, p);
        HREQUIRE(t != NULL, -1);
        weft_detach(t);
    }
    HYIELD_UNTIL(atomic_load(&p->started) == 16);
    return 0;
}

START_TEST(runtime_free_cancels_tasks_left_by_block_on)
{
    struct shutdown_probe p = {0};
    weft_options opt = {.workers = harness_workers_variant(_i)};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    ck_assert_int_eq(weft_runtime_block_on(rt, spawn_detached_then_return, &p), 0);
    weft_runtime_free(rt);
    ck_assert_int_eq(atomic_load(&p.saw_cancel), 16);
    ck_assert_int_eq(atomic_load(&p.ended), 16);
    harness_assert_clean();
}
END_TEST

/* A detached parent parked in weft_join: shutdown cancels it, which
 * cancels the child it joins; both end. */
static int join_a_yielder(void *arg)
{
    struct shutdown_probe *p = arg;
    weft_task *t = weft_spawn(yield_until_cancelled, p);
    HREQUIRE(t != NULL, -1);
    int rc = weft_join(t);
    HCHECK_INT_EQ(rc, -ECANCELED);
    atomic_fetch_add(&p->ended, 100);
    return rc;
}

START_TEST(runtime_free_cancels_a_task_parked_in_join)
{
    struct shutdown_probe p = {0};
    weft_options opt = {.workers = harness_workers_variant(_i)};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    weft_task *t = weft_spawn_on(rt, join_a_yielder, &p);
    ck_assert_ptr_nonnull(t);
    weft_detach(t);
    for (int spins = 0; atomic_load(&p.started) < 1 && spins < 10000000; spins++)
        sched_yield();
    weft_runtime_free(rt);
    ck_assert_int_eq(atomic_load(&p.saw_cancel), 1);
    ck_assert_int_eq(atomic_load(&p.ended), 101);
    harness_assert_clean();
}
END_TEST

static atomic_int busy_done;

static int busy_without_suspending(void *arg)
{
    int64_t end = harness_now_ns() + 50 * 1000 * 1000;
    while (harness_now_ns() < end)
        ;
    atomic_store(&busy_done, 1);
    return 0;
}

START_TEST(runtime_free_waits_for_tasks_without_suspension_points)
{
    atomic_store(&busy_done, 0);
    weft_options opt = {.workers = harness_workers_variant(_i)};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    weft_task *t = weft_spawn_on(rt, busy_without_suspending, NULL);
    ck_assert_ptr_nonnull(t);
    weft_detach(t);
    weft_runtime_free(rt);
    ck_assert_int_eq(atomic_load(&busy_done), 1);
}
END_TEST

START_TEST(runtime_free_of_an_idle_runtime)
{
    weft_options opt = {.workers = harness_workers_variant(_i)};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    weft_runtime_free(rt);
}
END_TEST

START_TEST(runtime_free_null_is_ignored)
{
    weft_runtime_free(NULL);
}
END_TEST

START_TEST(many_runtimes_in_sequence)
{
    for (int i = 0; i < 50; i++) {
        weft_options opt = {.workers = (unsigned)(i % 4) + 1};
        weft_runtime *rt = weft_runtime_new(&opt);
        ck_assert_ptr_nonnull(rt);
        ck_assert_int_eq(weft_runtime_block_on(rt, spawn_and_join_children, (void *)(intptr_t)4),
                         10);
        weft_runtime_free(rt);
    }
    harness_assert_clean();
}
END_TEST

/* --- version and errors ------------------------------------------------ */

START_TEST(version_macros_agree)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%d.%d.%d", WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR,
             WEFT_VERSION_PATCH);
    ck_assert_str_eq(buf, WEFT_VERSION_STRING);
#ifdef PACKAGE_VERSION
    ck_assert_str_eq(WEFT_VERSION_STRING, PACKAGE_VERSION);
#endif
}
END_TEST

static const struct {
    int code;
    const char *name;
} documented_errors[] = {
    {EINVAL, "EINVAL"},       {EPERM, "EPERM"},   {ECANCELED, "ECANCELED"},
    {ETIMEDOUT, "ETIMEDOUT"}, {ENOMEM, "ENOMEM"}, {EAGAIN, "EAGAIN"},
    {EPIPE, "EPIPE"},         {EBADF, "EBADF"},   {EDEADLK, "EDEADLK"},
    {ECONNREFUSED, "ECONNREFUSED"},               {ENOENT, "ENOENT"},
};
#define N_DOCUMENTED_ERRORS (sizeof documented_errors / sizeof documented_errors[0])

START_TEST(strerror_names_every_documented_code)
{
    const char *unknown = weft_strerror(-987654);
    ck_assert_ptr_nonnull(unknown);
    ck_assert_str_eq(unknown, "unknown error");
    for (size_t i = 0; i < N_DOCUMENTED_ERRORS; i++) {
        const char *neg = weft_strerror(-documented_errors[i].code);
        const char *pos = weft_strerror(documented_errors[i].code);
        ck_assert_msg(neg != NULL && pos != NULL, "%s: NULL", documented_errors[i].name);
        ck_assert_msg(strcmp(neg, unknown) != 0, "%s has no name", documented_errors[i].name);
        ck_assert_msg(strlen(neg) > 0, "%s: empty name", documented_errors[i].name);
        ck_assert_msg(strcmp(neg, pos) == 0, "%s: -%s and +%s named differently",
                      documented_errors[i].name, documented_errors[i].name,
                      documented_errors[i].name);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(neg, weft_strerror(-documented_errors[j].code)) != 0,
                          "%s and %s share a name", documented_errors[i].name,
                          documented_errors[j].name);
    }
    const char *zero = weft_strerror(0);
    ck_assert_ptr_nonnull(zero);
    ck_assert_str_ne(zero, unknown);
}
END_TEST

START_TEST(strerror_never_returns_null)
{
    const int codes[] = {INT_MIN, INT_MIN + 1, -100000, -4096, -1, 1, 4096, 100000, INT_MAX};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        ck_assert_msg(weft_strerror(codes[i]) != NULL, "weft_strerror(%d) is NULL", codes[i]);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("runtime");

    TCase *tc = harness_tcase(s, "run", 30);
    tcase_add_loop_test(tc, run_returns_main_status, 0, N_RUN_STATUSES);
    tcase_add_test(tc, run_runs_main_as_a_task);
    tcase_add_test(tc, run_can_be_called_repeatedly);
    tcase_add_test(tc, run_rejects_null_main);

    tc = harness_tcase(s, "new", 30);
    tcase_add_test(tc, runtime_new_with_null_options_uses_defaults);
    tcase_add_loop_test(tc, runtime_new_starts_the_requested_workers, 0,
                        (int)(sizeof worker_counts / sizeof worker_counts[0]));
    tcase_add_test(tc, runtime_new_accepts_limits_of_options);
    tcase_add_test(tc, runtime_new_rejects_bad_options_with_einval);
    tcase_add_test(tc, weft_workers_env_overrides_zero_workers_only);
    tcase_add_test(tc, weft_workers_env_invalid_gives_the_default);
    tcase_add_test(tc, runtime_workers_of_null_is_zero);

    tc = harness_tcase(s, "block_on", 30);
    tcase_add_loop_test(tc, block_on_runs_fn_as_a_task_of_that_runtime, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, block_on_can_be_called_repeatedly, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, block_on_rejects_null_arguments);
    tcase_add_loop_test(tc, block_on_from_two_plain_threads_at_once, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, plain_thread_calls_from_a_task_fail_with_eperm, 0,
                        HARNESS_N_WORKER_VARIANTS);

    tc = harness_tcase(s, "spawn_on", 30);
    tcase_add_loop_test(tc, spawn_on_from_plain_thread_is_joined_by_a_task, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, spawn_on_from_a_task_of_the_same_runtime, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, spawn_on_another_runtime_from_a_task);
    tcase_add_test(tc, spawn_on_rejects_null_arguments);

    tc = harness_tcase(s, "free", 30);
    tcase_add_loop_test(tc, runtime_free_cancels_detached_tasks_and_returns, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, runtime_free_cancels_tasks_left_by_block_on, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, runtime_free_cancels_a_task_parked_in_join, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, runtime_free_waits_for_tasks_without_suspension_points, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, runtime_free_of_an_idle_runtime, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, runtime_free_null_is_ignored);
    tcase_add_test(tc, many_runtimes_in_sequence);

    tc = harness_tcase(s, "version_errors", 10);
    tcase_add_test(tc, version_macros_agree);
    tcase_add_test(tc, strerror_names_every_documented_code);
    tcase_add_test(tc, strerror_never_returns_null);
    return s;
}
