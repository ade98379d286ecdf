/* SPDX-License-Identifier: MIT */
/* The bad-input sweep: every public function of <weft.h> called with NULL,
 * zero, negative, huge, closed or wrong-context arguments (from a plain
 * thread where a task is needed, from a task where a plain thread is
 * needed) gets the result its header documents, never a crash or a hang.
 * Every negative code met must also have a name in weft_strerror. Each
 * input counts; the total is printed at the end ("misuse: N inputs"). */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft.h>

#include "harness.h"

/* Huge sizes must come back as ENOMEM from the library, which needs malloc
 * to return NULL for them: AddressSanitizer aborts instead unless told. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* Inputs tried ([0] calls, [1] weft_strerror codes), shared with the
 * forked test processes (MAP_SHARED), and the pid that prints the totals
 * when it exits. */
static _Atomic long *n_inputs;
static pid_t main_pid;

static void counted(void)
{
    if (n_inputs)
        atomic_fetch_add(&n_inputs[0], 1);
}

static void counted_code(void)
{
    if (n_inputs)
        atomic_fetch_add(&n_inputs[1], 1);
}

/* A documented result: the call's value equals want; a negative value
 * must have a name. */
#define TRY_EQ(expr, want)                                                            \
    do {                                                                              \
        long long te_got_ = (long long)(expr);                                        \
        counted();                                                                    \
        HCHECK_MSG(te_got_ == (long long)(want), "%s: got %lld (%s), want %lld", #expr, \
                   te_got_, te_got_ < 0 ? weft_strerror((int)te_got_) : "",           \
                   (long long)(want));                                                \
        if (te_got_ < 0)                                                              \
            HCHECK_MSG(strcmp(weft_strerror((int)te_got_), "unknown error") != 0,     \
                       "%s: %lld has no name in weft_strerror", #expr, te_got_);      \
    } while (0)

/* errno through out-of-line helpers: a task may resume on another thread
 * after any suspension point, and the compiler may keep the address of
 * the first thread's errno in a register across it (GCC PR 26461). */
static __attribute__((noinline)) int errno_now(void)
{
    __asm__ volatile("" ::: "memory");
    return errno;
}

static __attribute__((noinline)) void errno_clear(void)
{
    __asm__ volatile("" ::: "memory");
    errno = 0;
}

/* A constructor that must fail with NULL and errno want. */
#define TRY_NULL(expr, want)                                                          \
    do {                                                                              \
        errno_clear();                                                                \
        const void *tn_p_ = (expr);                                                   \
        int tn_e_ = errno_now();                                                      \
        counted();                                                                    \
        HCHECK_MSG(tn_p_ == NULL && tn_e_ == (want), "%s: got %p errno %d, want NULL errno %d", \
                   #expr, tn_p_, tn_e_, (int)(want));                                 \
    } while (0)

/* A call whose result is void (or ignored): it must simply return. */
#define TRY_VOID(expr)                                                                \
    do {                                                                              \
        counted();                                                                    \
        expr;                                                                         \
    } while (0)

static int ret7(void *arg)
{
    (void)arg;
    return 7;
}

static void noop_cancel(void *arg)
{
    (void)arg;
}

static int sleep_ms(void *arg)
{
    return weft_sleep(WEFT_MSEC((intptr_t)arg));
}

static int gen_body(weft_gen *g, void *arg)
{
    (void)arg;
    return weft_gen_yield(g, NULL);
}

/* --- from a plain thread: every task-only call refuses with -EPERM ---- */

START_TEST(plain_thread_gets_eperm_from_task_only_calls)
{
    weft_deadline d = {0};
    weft_task *tasks[1] = {NULL};
    char buf[4];
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof sa;

    TRY_EQ(weft_yield(), -EPERM);
    TRY_EQ(weft_sleep(0), -EPERM);
    TRY_EQ(weft_sleep(WEFT_MSEC(1)), -EPERM);
    TRY_EQ(weft_sleep(INT64_MAX), -EPERM);
    TRY_EQ(weft_sleep(INT64_MIN), -EPERM);
    TRY_EQ(weft_join(NULL), -EPERM);
    TRY_EQ(weft_wait_for(ret7, NULL, 0), -EPERM);
    TRY_EQ(weft_wait_for(NULL, NULL, -1), -EPERM);
    TRY_EQ(weft_shield(ret7, NULL), -EPERM);
    TRY_EQ(weft_shield(NULL, NULL), -EPERM);
    TRY_EQ(weft_deadline_enter(&d, WEFT_MSEC(1)), -EPERM);
    TRY_EQ(weft_deadline_enter(NULL, 0), -EPERM);
    TRY_EQ(weft_deadline_enter_at(&d, 0), -EPERM);
    TRY_EQ(weft_deadline_leave(&d), -EPERM);
    TRY_EQ(weft_deadline_leave(NULL), -EPERM);
    TRY_EQ(weft_gather(tasks, 1, NULL), -EPERM);
    TRY_EQ(weft_gather(NULL, 0, NULL), -EPERM);
    TRY_EQ(weft_wait_any(tasks, 1, 0), -EPERM);
    {
        weft_sel sc[1] = {weft_sel_task(NULL)};
        TRY_EQ(weft_select(sc, 1, 0), -EPERM);
        TRY_EQ(weft_select(NULL, 0, -1), -EPERM);
        TRY_EQ(weft_select(NULL, 1, 0), -EPERM);
    }
    TRY_EQ(weft_group_wait(NULL), -EPERM);
    TRY_EQ(weft_run_blocking(ret7, NULL), -EPERM);
    TRY_EQ(weft_run_blocking(NULL, NULL), -EPERM);
    TRY_EQ(weft_run_blocking_ex(ret7, NULL, NULL), -EPERM);
    TRY_EQ(weft_run_blocking_ex(NULL, NULL, noop_cancel), -EPERM);
    TRY_EQ(weft_wait_fd(0, WEFT_READABLE), -EPERM);
    TRY_EQ(weft_wait_fd(-1, 0), -EPERM);
    TRY_EQ(weft_read(0, buf, sizeof buf), -EPERM);
    TRY_EQ(weft_write(1, buf, 0), -EPERM);
    TRY_EQ(weft_recv(0, buf, 1, 0), -EPERM);
    TRY_EQ(weft_send(1, buf, 1, 0), -EPERM);
    TRY_EQ(weft_accept(0, (struct sockaddr *)&sa, &sl), -EPERM);
    TRY_EQ(weft_connect(0, (struct sockaddr *)&sa, sl), -EPERM);
    TRY_EQ(weft_tcp_listen("127.0.0.1", "0", 0), -EPERM);
    TRY_EQ(weft_tcp_listen_flags(NULL, NULL, 0, ~0u), -EPERM);
    TRY_EQ(weft_tcp_connect("127.0.0.1", "1"), -EPERM);
    TRY_EQ(weft_recvfrom(0, buf, 1, 0, NULL, NULL), -EPERM);
    TRY_EQ(weft_recvfrom(-1, NULL, SIZE_MAX, 0, (struct sockaddr *)&sa, NULL), -EPERM);
    TRY_EQ(weft_sendto(1, buf, 1, 0, (struct sockaddr *)&sa, sl), -EPERM);
    TRY_EQ(weft_sendto(-1, NULL, 1, 0, NULL, 1), -EPERM);
    TRY_EQ(weft_recvmsg(0, NULL, 0), -EPERM);
    TRY_EQ(weft_sendmsg(1, NULL, 0), -EPERM);
    TRY_EQ(weft_udp_bind("127.0.0.1", "0"), -EPERM);
    TRY_EQ(weft_udp_bind(NULL, NULL), -EPERM);
    TRY_EQ(weft_unix_listen("@weft-misuse", 0), -EPERM);
    TRY_EQ(weft_unix_listen(NULL, -1), -EPERM);
    TRY_EQ(weft_unix_connect("@weft-misuse"), -EPERM);
    TRY_EQ(weft_unix_connect(NULL), -EPERM);
    TRY_EQ(weft_pread(0, buf, 1, 0), -EPERM);
    TRY_EQ(weft_pread(-1, NULL, SIZE_MAX, -1), -EPERM);
    TRY_EQ(weft_pwrite(1, buf, 1, 0), -EPERM);
    TRY_EQ(weft_pwrite(-1, NULL, 1, -1), -EPERM);
    TRY_EQ(weft_fsync(1), -EPERM);
    TRY_EQ(weft_fsync(-1), -EPERM);
    TRY_EQ(weft_copy(0, 1, -1), -EPERM);
    TRY_EQ(weft_copy(-1, -1, 0), -EPERM);
    TRY_EQ(weft_reader_line(NULL, NULL), -EPERM);
    TRY_VOID(weft_reader_free(NULL));
    TRY_NULL(weft_reader_new(-1, 16), EBADF);
    TRY_NULL(weft_reader_new(0, 0), EINVAL);
    TRY_NULL(weft_reader_new(0, SIZE_MAX), EINVAL);
    weft_reader *rd = weft_reader_new(0, 16); /* any thread; reading is task only */
    TRY_EQ(rd != NULL, 1);
    const char *line = NULL;
    TRY_EQ(weft_reader_line(rd, &line), -EPERM);
    TRY_VOID(weft_reader_free(rd));
    TRY_EQ(weft_sem_acquire(NULL), -EPERM);
    TRY_EQ(weft_mutex_lock(NULL), -EPERM);
    TRY_EQ(weft_event_wait(NULL), -EPERM);
    TRY_EQ(weft_gen_next(NULL, NULL), -EPERM);
    TRY_EQ(weft_gen_close(NULL), -EPERM);
    TRY_EQ(weft_gen_yield(NULL, NULL), -EPERM);
    TRY_EQ(weft_signal_wait(NULL), -EPERM);
    sigset_t sigs;
    sigemptyset(&sigs);
    TRY_EQ(weft_signal_wait(&sigs), -EPERM);
    sigaddset(&sigs, SIGKILL);
    TRY_EQ(weft_signal_wait(&sigs), -EPERM);
    TRY_NULL(weft_spawn(ret7, NULL), EPERM);
    TRY_NULL(weft_spawn(NULL, NULL), EPERM);
    TRY_NULL(weft_group_new(), EPERM);
    TRY_NULL(weft_gen_new(gen_body, NULL), EPERM);
    TRY_NULL(weft_gen_new(NULL, NULL), EPERM);
    /* Questions about "the calling task" have plain answers. */
    TRY_EQ(weft_current() == NULL, 1);
    TRY_EQ(weft_runtime_current() == NULL, 1);
    TRY_EQ(weft_cancelled(), 0);
    TRY_EQ(weft_deadline_expired(NULL), 0);
    /* Any-thread calls with NULL are ignored or refused. */
    TRY_EQ(weft_close(-1), -EBADF);
    TRY_EQ(weft_close(INT_MIN), -EBADF);
    TRY_VOID(weft_detach(NULL));
    TRY_VOID(weft_cancel(NULL));
    TRY_EQ(weft_task_done(NULL), 0);
    TRY_VOID(weft_task_set_name(NULL, "x"));
    TRY_EQ(strcmp(weft_task_name(NULL), ""), 0);
    TRY_EQ(weft_task_id(NULL), 0);
    TRY_EQ(weft_runtime_stats(NULL, NULL), -EINVAL);
    TRY_VOID(weft_runtime_dump(NULL, NULL));
    TRY_VOID(weft_runtime_dump(NULL, stderr));
    TRY_VOID(weft_runtime_dump_ex(NULL, NULL, 0));
    TRY_VOID(weft_runtime_dump_ex(NULL, stderr, WEFT_DUMP_STACKS | WEFT_DUMP_SUMMARY));
    TRY_EQ(weft_runtime_workers(NULL), 0);
    TRY_VOID(weft_runtime_free(NULL));
    TRY_EQ(weft_group_spawn(NULL, ret7, NULL), -EINVAL);
    TRY_EQ(weft_sem_try_acquire(NULL), 0);
    TRY_VOID(weft_sem_release(NULL));
    TRY_VOID(weft_sem_free(NULL));
    TRY_VOID(weft_mutex_unlock(NULL));
    TRY_VOID(weft_mutex_free(NULL));
    TRY_VOID(weft_event_set(NULL));
    TRY_VOID(weft_event_clear(NULL));
    TRY_EQ(weft_event_is_set(NULL), 0);
    TRY_VOID(weft_event_free(NULL));
    TRY_EQ(weft_chan_send(NULL, buf), -EINVAL);
    TRY_EQ(weft_chan_recv(NULL, buf), -EINVAL);
    TRY_EQ(weft_chan_try_send(NULL, buf), -EINVAL);
    TRY_EQ(weft_chan_try_recv(NULL, buf), -EINVAL);
    TRY_EQ(weft_chan_len(NULL), 0);
    TRY_VOID(weft_chan_close(NULL));
    TRY_VOID(weft_chan_free(NULL));
    TRY_EQ(weft_now() > 0, 1);
}
END_TEST

/* --- runtime lifecycle with bad options and arguments ----------------- */

START_TEST(runtime_rejects_bad_options_and_arguments)
{
    weft_options o;
#define BAD_OPT(field, value)                                                         \
    do {                                                                              \
        memset(&o, 0, sizeof o);                                                      \
        o.field = (value);                                                            \
        TRY_NULL(weft_runtime_new(&o), EINVAL);                                       \
    } while (0)
    BAD_OPT(workers, WEFT_MAX_WORKERS + 1);
    BAD_OPT(workers, UINT_MAX);
    BAD_OPT(stack_size, 1);
    BAD_OPT(stack_size, 16 * 1024 - 1);
    BAD_OPT(stack_size, (size_t)64 * 1024 * 1024 + 1);
    BAD_OPT(stack_size, SIZE_MAX);
    BAD_OPT(blocking_threads, 4097);
    BAD_OPT(blocking_threads, UINT_MAX);
#undef BAD_OPT
    /* The extremes that are allowed. */
    memset(&o, 0, sizeof o);
    o.workers = 1;
    o.stack_size = 16 * 1024;
    o.slow_task_ns = -1;
    o.blocking_shutdown_ns = INT64_MIN;
    weft_runtime *rt = weft_runtime_new(&o);
    counted();
    ck_assert_ptr_nonnull(rt);
    TRY_EQ(weft_runtime_block_on(rt, ret7, NULL), 7);
    TRY_EQ(weft_runtime_block_on(NULL, ret7, NULL), -EINVAL);
    TRY_EQ(weft_runtime_block_on(rt, NULL, NULL), -EINVAL);
    TRY_EQ(weft_runtime_block_on(NULL, NULL, NULL), -EINVAL);
    TRY_NULL(weft_spawn_on(NULL, ret7, NULL), EINVAL);
    TRY_NULL(weft_spawn_on(rt, NULL, NULL), EINVAL);
    TRY_EQ(weft_runtime_stats(rt, NULL), -EINVAL);
    weft_stats st = {0};
    TRY_EQ(weft_runtime_stats(NULL, &st), -EINVAL);
    TRY_EQ(weft_runtime_stats(rt, &st), 0);
    TRY_VOID(weft_runtime_dump(rt, NULL));
    TRY_VOID(weft_runtime_dump_ex(rt, NULL, WEFT_DUMP_JSON));
    TRY_VOID(weft_runtime_dump_ex(rt, stderr, 0x80000000u)); /* unknown flag: nothing */
    TRY_EQ(weft_runtime_workers(rt), 1);
    weft_runtime_free(rt);
    o.stack_size = (size_t)64 * 1024 * 1024;
    o.workers = 0;
    rt = weft_runtime_new(&o);
    counted();
    ck_assert_ptr_nonnull(rt);
    TRY_EQ(weft_runtime_block_on(rt, ret7, NULL), 7);
    weft_runtime_free(rt);
    TRY_EQ(weft_run(NULL, NULL), -EINVAL);
    TRY_EQ(weft_run(ret7, NULL), 7);
}
END_TEST

/* --- from a task: plain-thread-only calls refuse ---------------------- */

static int plain_only_body(void *arg)
{
    (void)arg;
    weft_runtime *rt = weft_runtime_current();
    HREQUIRE(rt != NULL, -1);
    TRY_EQ(weft_runtime_block_on(rt, ret7, NULL), -EPERM);
    TRY_EQ(weft_runtime_block_on(NULL, NULL, NULL), -EPERM);
    TRY_EQ(weft_run(ret7, NULL), -EPERM);
    TRY_EQ(weft_run(NULL, NULL), -EPERM);
    errno_clear();
    TRY_VOID(weft_runtime_free(rt));
    HCHECK_INT_EQ(errno_now(), EPERM);
    /* ... and the runtime is still there. */
    TRY_EQ(weft_yield(), 0);
    TRY_EQ(weft_wait_for(ret7, NULL, WEFT_SEC(5)), 7);
    return 0;
}

START_TEST(task_gets_eperm_from_plain_thread_calls)
{
    ck_assert_int_eq(harness_run(2, plain_only_body, NULL), 0);
}
END_TEST

/* --- tasks, time, composition with bad arguments ---------------------- */

static int tasks_body(void *arg)
{
    (void)arg;
    weft_task *self = weft_current();
    TRY_NULL(weft_spawn(NULL, NULL), EINVAL);
    TRY_EQ(weft_join(NULL), -EINVAL);
    TRY_EQ(weft_join(self), -EINVAL);
    TRY_EQ(weft_wait_for(NULL, NULL, 0), -EINVAL);
    TRY_EQ(weft_wait_for(ret7, NULL, 0), 7); /* the body still starts */
    TRY_EQ(weft_wait_for(ret7, NULL, -1), 7);
    TRY_EQ(weft_wait_for(ret7, NULL, INT64_MIN), 7);
    TRY_EQ(weft_wait_for(ret7, NULL, INT64_MAX), 7);
    TRY_EQ(weft_wait_for(sleep_ms, (void *)(intptr_t)10000, WEFT_MSEC(1)), -ETIMEDOUT);
    TRY_EQ(weft_shield(NULL, NULL), -EINVAL);
    TRY_EQ(weft_run_blocking(NULL, NULL), -EINVAL);
    TRY_EQ(weft_run_blocking_ex(NULL, NULL, NULL), -EINVAL);
    TRY_EQ(weft_run_blocking_ex(NULL, NULL, noop_cancel), -EINVAL);
    TRY_EQ(weft_run_blocking_ex(ret7, NULL, NULL), 7);
    TRY_EQ(weft_run_blocking_ex(ret7, NULL, noop_cancel), 7);
    /* Refused sets, which arm nothing. */
    sigset_t sigs;
    TRY_EQ(weft_signal_wait(NULL), -EINVAL);
    sigemptyset(&sigs);
    TRY_EQ(weft_signal_wait(&sigs), -EINVAL);
    sigaddset(&sigs, SIGKILL);
    TRY_EQ(weft_signal_wait(&sigs), -EINVAL);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGSTOP);
    TRY_EQ(weft_signal_wait(&sigs), -EINVAL);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGSEGV);
    TRY_EQ(weft_signal_wait(&sigs), -EINVAL);
    sigfillset(&sigs);
    TRY_EQ(weft_signal_wait(&sigs), -EINVAL);
    TRY_EQ(weft_sleep(0), 0);
    TRY_EQ(weft_sleep(-1), 0);
    TRY_EQ(weft_sleep(INT64_MIN), 0);

    /* Deadline scopes: NULL, never entered, left twice, out of order,
     * extreme instants. */
    weft_deadline d = {0}, e = {0}, never = {0};
    TRY_EQ(weft_deadline_enter(NULL, WEFT_SEC(1)), -EINVAL);
    TRY_EQ(weft_deadline_enter_at(NULL, 0), -EINVAL);
    TRY_EQ(weft_deadline_leave(NULL), -EINVAL);
    TRY_EQ(weft_deadline_leave(&never), -EINVAL);
    TRY_EQ(weft_deadline_enter(&d, WEFT_MSEC(5)), 0);
    /* sleep(INT64_MAX) inside a scope ends at the scope. */
    TRY_EQ(weft_sleep(INT64_MAX), -ETIMEDOUT);
    TRY_EQ(weft_deadline_expired(&d), 1);
    TRY_EQ(weft_deadline_enter(&e, INT64_MAX), 0);
    TRY_EQ(weft_deadline_leave(&d), -EINVAL); /* not the innermost */
    TRY_EQ(weft_deadline_leave(&e), 0);
    TRY_EQ(weft_deadline_leave(&e), -EINVAL); /* left already */
    TRY_EQ(weft_deadline_leave(&d), 0);
    TRY_EQ(weft_deadline_leave(&d), -EINVAL);
    TRY_EQ(weft_deadline_enter(&d, INT64_MIN), 0);
    TRY_EQ(weft_yield(), -ETIMEDOUT);
    TRY_EQ(weft_deadline_leave(&d), 0);
    TRY_EQ(weft_deadline_enter_at(&d, INT64_MIN), 0);
    TRY_EQ(weft_sleep(WEFT_SEC(10)), -ETIMEDOUT);
    TRY_EQ(weft_deadline_leave(&d), 0);
    TRY_EQ(weft_deadline_enter_at(&d, INT64_MAX), 0);
    TRY_EQ(weft_deadline_expired(&d), 0);
    TRY_EQ(weft_sleep(1), 0);
    TRY_EQ(weft_deadline_leave(&d), 0);

    /* gather / wait_any. */
    weft_task *none[2] = {NULL, NULL};
    weft_task *me[1] = {self};
    TRY_EQ(weft_gather(NULL, 0, NULL), 0);
    TRY_EQ(weft_gather(none, 0, NULL), 0);
    TRY_EQ(weft_gather(NULL, 1, NULL), -EINVAL);
    TRY_EQ(weft_gather(none, 2, NULL), -EINVAL);
    TRY_EQ(weft_gather(me, 1, NULL), -EINVAL);
    TRY_EQ(weft_wait_any(NULL, 1, 0), -EINVAL);
    TRY_EQ(weft_wait_any(none, 0, 0), -EINVAL);
    TRY_EQ(weft_wait_any(none, 1, 0), -EINVAL);
    TRY_EQ(weft_wait_any(me, 1, 0), -EINVAL);
    TRY_EQ(weft_wait_any(me, SIZE_MAX, 0), -EINVAL);
    weft_task *t[1] = {weft_spawn(sleep_ms, (void *)(intptr_t)10000)};
    HREQUIRE(t[0] != NULL, -1);
    TRY_EQ(weft_wait_any(t, 1, 0), -ETIMEDOUT);
    TRY_EQ(weft_wait_any(t, 1, WEFT_MSEC(1)), -ETIMEDOUT);

    /* select. */
    {
        int sv = 0;
        weft_sel zero[1];
        memset(zero, 0, sizeof zero);
        weft_sel bad[] = {weft_sel_recv(NULL, &sv), weft_sel_send(NULL, &sv),
                          weft_sel_task(NULL),      weft_sel_task(self),
                          weft_sel_event(NULL),     weft_sel_fd(-1, WEFT_READABLE),
                          weft_sel_fd(0, 0),        weft_sel_fd(0, ~0)};
        TRY_EQ(weft_select(NULL, 1, 0), -EINVAL);
        TRY_EQ(weft_select(NULL, 0, -1), -EINVAL);
        TRY_EQ(weft_select(zero, 1, -1), -EINVAL);
        TRY_EQ(weft_select(zero, SIZE_MAX, 0), -EINVAL);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            TRY_EQ(weft_select(&bad[i], 1, -1), -EINVAL);
        TRY_EQ(weft_select(NULL, 0, 0), -ETIMEDOUT);
        TRY_EQ(weft_select(NULL, 0, WEFT_MSEC(1)), -ETIMEDOUT);
        weft_sel tc[1] = {weft_sel_task(t[0])};
        TRY_EQ(weft_select(tc, 1, 0), -ETIMEDOUT);
        TRY_EQ(weft_select(tc, 1, WEFT_MSEC(1)), -ETIMEDOUT);
    }
    /* A cancelled gather child reports -ECANCELED. */
    weft_cancel(t[0]);
    weft_cancel(t[0]); /* idempotent */
    int st[1] = {0};
    TRY_EQ(weft_gather(t, 1, st), -ECANCELED);
    HCHECK_INT_EQ(st[0], -ECANCELED);

    /* Groups. */
    TRY_EQ(weft_group_spawn(NULL, ret7, NULL), -EINVAL);
    TRY_EQ(weft_group_wait(NULL), -EINVAL);
    weft_group *g = weft_group_new();
    HREQUIRE(g != NULL, -1);
    TRY_EQ(weft_group_spawn(g, NULL, NULL), -EINVAL);
    TRY_EQ(weft_group_wait(g), 0); /* empty: nothing to wait for */

    /* Handles: names, ids, a finished task's cancel is ignored. */
    weft_task *x = weft_spawn(ret7, NULL);
    HREQUIRE(x != NULL, -1);
    TRY_VOID(weft_task_set_name(x, NULL));
    TRY_EQ(strcmp(weft_task_name(x), ""), 0);
    TRY_VOID(weft_task_set_name(x, "a name far longer than the thirty-one bytes kept"));
    TRY_EQ(strlen(weft_task_name(x)), 31);
    TRY_VOID(weft_task_set_name(x, ""));
    TRY_EQ(strcmp(weft_task_name(x), ""), 0);
    TRY_EQ(weft_task_id(x) != 0 && weft_task_id(x) != weft_task_id(self), 1);
    while (!weft_task_done(x))
        weft_yield();
    TRY_VOID(weft_cancel(x));
    TRY_EQ(weft_join(x), 7);

    /* Cancellation is sticky at every suspension point. */
    weft_cancel(self);
    TRY_EQ(weft_cancelled(), 1);
    TRY_EQ(weft_yield(), -ECANCELED);
    TRY_EQ(weft_sleep(WEFT_SEC(1)), -ECANCELED);
    TRY_EQ(weft_sleep(0), -ECANCELED);
    TRY_EQ(weft_run_blocking(ret7, NULL), -ECANCELED);
    TRY_EQ(weft_run_blocking_ex(ret7, NULL, noop_cancel), -ECANCELED);
    char cbuf[4];
    TRY_EQ(weft_recvfrom(0, cbuf, sizeof cbuf, 0, NULL, NULL), -ECANCELED);
    TRY_EQ(weft_sendto(1, cbuf, 1, 0, NULL, 0), -ECANCELED);
    TRY_EQ(weft_pread(0, cbuf, sizeof cbuf, 0), -ECANCELED);
    TRY_EQ(weft_pwrite(1, cbuf, 1, 0), -ECANCELED);
    TRY_EQ(weft_fsync(1), -ECANCELED);
    TRY_EQ(weft_copy(0, 1, -1), -ECANCELED);
    TRY_EQ(weft_unix_connect("@weft-misuse-cancelled"), -ECANCELED);
    TRY_EQ(weft_wait_for(ret7, NULL, -1), -ECANCELED);
    return 0;
}

START_TEST(tasks_time_groups_reject_bad_arguments)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), tasks_body, NULL), 0);
}
END_TEST

/* --- descriptors: closed, negative, huge ------------------------------ */

struct io_st {
    int fd;
};

static int wait_then_report(void *arg)
{
    struct io_st *s = arg;
    char c;
    return (int)weft_read(s->fd, &c, 1);
}

static int io_body(void *arg)
{
    (void)arg;
    char buf[8] = {0};
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof sa;
    int sv[2];
    HREQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, -1);
    /* A number that is not open: closed just now. */
    int dead[2];
    HREQUIRE(pipe(dead) == 0, -1);
    close(dead[0]);
    close(dead[1]);

    TRY_EQ(weft_wait_fd(-1, WEFT_READABLE), -EBADF);
    TRY_EQ(weft_wait_fd(INT_MIN, WEFT_READABLE), -EBADF);
    TRY_EQ(weft_wait_fd(INT_MAX, WEFT_READABLE), -EBADF);
    TRY_EQ(weft_wait_fd(dead[0], WEFT_READABLE), -EBADF);
    TRY_EQ(weft_wait_fd(sv[0], 0), -EINVAL);
    TRY_EQ(weft_wait_fd(sv[0], 4), -EINVAL);
    TRY_EQ(weft_wait_fd(sv[0], -1), -EINVAL);
    TRY_EQ(weft_wait_fd(sv[0], WEFT_WRITABLE), WEFT_WRITABLE);

    TRY_EQ(weft_read(-1, buf, 1), -EBADF);
    TRY_EQ(weft_read(INT_MAX, buf, 1), -EBADF);
    TRY_EQ(weft_read(dead[0], buf, 1), -EBADF);
    TRY_EQ(weft_read(sv[0], NULL, 1), -EINVAL);
    TRY_EQ(weft_read(sv[0], buf, SIZE_MAX), -EINVAL);
    TRY_EQ(weft_read(sv[0], buf, (size_t)SSIZE_MAX + 1), -EINVAL);
    TRY_EQ(weft_read(sv[0], NULL, 0), 0);
    TRY_EQ(weft_write(-1, buf, 1), -EBADF);
    TRY_EQ(weft_write(dead[1], buf, 1), -EBADF);
    TRY_EQ(weft_write(sv[0], NULL, 1), -EINVAL);
    TRY_EQ(weft_write(sv[0], buf, SIZE_MAX), -EINVAL);
    TRY_EQ(weft_write(sv[0], NULL, 0), 0);
    TRY_EQ(weft_recv(-1, buf, 1, 0), -EBADF);
    TRY_EQ(weft_recv(sv[0], NULL, 1, 0), -EINVAL);
    TRY_EQ(weft_recv(sv[0], buf, SIZE_MAX, 0), -EINVAL);
    TRY_EQ(weft_recv(sv[0], buf, 1, MSG_DONTWAIT), -EAGAIN);
    TRY_EQ(weft_send(-1, buf, 1, 0), -EBADF);
    TRY_EQ(weft_send(sv[0], NULL, 1, 0), -EINVAL);
    TRY_EQ(weft_send(sv[0], buf, SIZE_MAX, 0), -EINVAL);
    TRY_EQ(weft_accept(-1, NULL, NULL), -EBADF);
    TRY_EQ(weft_accept(dead[0], NULL, NULL), -EBADF);
    TRY_EQ(weft_accept(sv[0], (struct sockaddr *)&sa, NULL), -EINVAL);
    TRY_EQ(weft_accept(sv[0], NULL, NULL), -EINVAL); /* not listening: the kernel's */
    TRY_EQ(weft_connect(-1, (struct sockaddr *)&sa, sl), -EBADF);
    TRY_EQ(weft_connect(sv[0], NULL, 0), -EINVAL);
    /* Messages and datagrams. */
    TRY_EQ(weft_recvfrom(-1, buf, 1, 0, NULL, NULL), -EBADF);
    TRY_EQ(weft_recvfrom(dead[0], buf, 1, 0, NULL, NULL), -EBADF);
    TRY_EQ(weft_recvfrom(sv[0], NULL, 1, 0, NULL, NULL), -EINVAL);
    TRY_EQ(weft_recvfrom(sv[0], buf, SIZE_MAX, 0, NULL, NULL), -EINVAL);
    TRY_EQ(weft_recvfrom(sv[0], buf, 1, 0, (struct sockaddr *)&sa, NULL), -EINVAL);
    TRY_EQ(weft_recvfrom(sv[0], buf, 1, MSG_DONTWAIT, NULL, NULL), -EAGAIN);
    TRY_EQ(weft_sendto(-1, buf, 1, 0, NULL, 0), -EBADF);
    TRY_EQ(weft_sendto(dead[1], buf, 1, 0, NULL, 0), -EBADF);
    TRY_EQ(weft_sendto(sv[0], NULL, 1, 0, NULL, 0), -EINVAL);
    TRY_EQ(weft_sendto(sv[0], buf, SIZE_MAX, 0, NULL, 0), -EINVAL);
    TRY_EQ(weft_sendto(sv[0], buf, 1, 0, NULL, 16), -EINVAL);
    TRY_EQ(weft_recvmsg(-1, NULL, 0), -EBADF);
    TRY_EQ(weft_recvmsg(sv[0], NULL, 0), -EINVAL);
    TRY_EQ(weft_sendmsg(-1, NULL, 0), -EBADF);
    TRY_EQ(weft_sendmsg(sv[0], NULL, 0), -EINVAL);
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    TRY_EQ(weft_recvmsg(sv[0], &mh, MSG_DONTWAIT), -EAGAIN);
    TRY_EQ(weft_recvmsg(dead[0], &mh, 0), -EBADF);
    TRY_EQ(weft_udp_bind(NULL, NULL), -EINVAL);
    TRY_EQ(weft_udp_bind("127.0.0.1", NULL), -EINVAL);
    TRY_EQ(weft_udp_bind("127.0.0.1", "65536"), -EINVAL);
    TRY_EQ(weft_udp_bind("127.0.0.1", "99999999999999999999"), -EINVAL);
    /* Unix sockets. */
    TRY_EQ(weft_unix_listen(NULL, 0), -EINVAL);
    TRY_EQ(weft_unix_listen("", 0), -EINVAL);
    TRY_EQ(weft_unix_connect(NULL), -EINVAL);
    TRY_EQ(weft_unix_connect(""), -EINVAL);
    char longname[300];
    memset(longname, '@', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    TRY_EQ(weft_unix_listen(longname, INT_MIN), -ENAMETOOLONG);
    TRY_EQ(weft_unix_connect(longname), -ENAMETOOLONG);
    TRY_EQ(weft_unix_connect("/nonexistent-dir-of-weft/sock"), -ENOENT);
    /* Files. */
    TRY_EQ(weft_pread(-1, buf, 1, 0), -EBADF);
    TRY_EQ(weft_pread(dead[0], buf, 1, 0), -EBADF);
    TRY_EQ(weft_pread(sv[0], NULL, 1, 0), -EINVAL);
    TRY_EQ(weft_pread(sv[0], buf, SIZE_MAX, 0), -EINVAL);
    TRY_EQ(weft_pread(sv[0], buf, 1, -1), -EINVAL);
    TRY_EQ(weft_pread(sv[0], buf, 1, 0), -ESPIPE);
    TRY_EQ(weft_pwrite(-1, buf, 1, 0), -EBADF);
    TRY_EQ(weft_pwrite(sv[0], NULL, 1, 0), -EINVAL);
    TRY_EQ(weft_pwrite(sv[0], buf, SIZE_MAX, 0), -EINVAL);
    TRY_EQ(weft_pwrite(sv[0], buf, 1, -1), -EINVAL);
    TRY_EQ(weft_pwrite(sv[0], buf, 2, INT64_MAX), -EINVAL);
    TRY_EQ(weft_pwrite(sv[0], buf, 1, 0), -ESPIPE);
    TRY_EQ(weft_pwrite(sv[0], NULL, 0, 0), 0);
    TRY_EQ(weft_fsync(-1), -EBADF);
    TRY_EQ(weft_fsync(dead[0]), -EBADF);
    TRY_EQ(weft_fsync(sv[0]), -EINVAL);
    /* Copy and reader. */
    TRY_EQ(weft_copy(-1, sv[0], -1), -EBADF);
    TRY_EQ(weft_copy(sv[0], -1, -1), -EBADF);
    TRY_EQ(weft_copy(sv[0], sv[0], -1), -EINVAL);
    TRY_EQ(weft_copy(sv[0], dead[1], 0), -EBADF);
    TRY_EQ(weft_copy(dead[0], sv[0], 0), -EBADF);
    TRY_EQ(weft_reader_line(NULL, NULL), -EINVAL);
    weft_reader *rd = weft_reader_new(sv[0], 4);
    HREQUIRE(rd != NULL, -1);
    TRY_EQ(weft_reader_line(rd, NULL), -EINVAL);
    weft_reader_free(rd);
    rd = weft_reader_new(dead[0], 4);
    HREQUIRE(rd != NULL, -1);
    const char *line;
    TRY_EQ(weft_reader_line(rd, &line), -EBADF);
    weft_reader_free(rd);

    /* A task waiting on a descriptor that another task closes gets -EBADF. */
    struct io_st s = {sv[0]};
    weft_task *w = weft_spawn(wait_then_report, &s);
    HREQUIRE(w != NULL, -1);
    weft_sleep(WEFT_MSEC(5)); /* let it park in the read (if not, it finds
                                 the number closed: -EBADF all the same) */
    TRY_EQ(weft_close(sv[0]), 0);
    TRY_EQ(weft_join(w), -EBADF);
    TRY_EQ(weft_close(sv[0]), -EBADF); /* closed already */
    TRY_EQ(weft_read(sv[0], buf, 1), -EBADF);
    /* The peer is gone: -EPIPE, not SIGPIPE. */
    TRY_EQ(weft_write(sv[1], buf, 1), -EPIPE);
    TRY_EQ(weft_send(sv[1], buf, 1, 0), -EPIPE);
    TRY_EQ(weft_read(sv[1], buf, 1), 0);
    TRY_EQ(weft_close(sv[1]), 0);
    TRY_EQ(weft_close(-1), -EBADF);
    TRY_EQ(weft_close(INT_MAX), -EBADF);
    TRY_EQ(weft_close(dead[0]), -EBADF);

    /* TCP helpers. */
    TRY_EQ(weft_tcp_listen(NULL, NULL, 0), -EINVAL);
    TRY_EQ(weft_tcp_listen("127.0.0.1", NULL, 0), -EINVAL);
    TRY_EQ(weft_tcp_listen_flags("127.0.0.1", "0", 0, 0x80), -EINVAL);
    TRY_EQ(weft_tcp_listen_flags("127.0.0.1", "0", 0, ~0u), -EINVAL);
    TRY_EQ(weft_tcp_connect(NULL, "1"), -EINVAL);
    TRY_EQ(weft_tcp_connect("", "1"), -EINVAL);
    TRY_EQ(weft_tcp_connect("127.0.0.1", NULL), -EINVAL);
    /* Numeric ports beyond 16 bits are refused, not taken modulo 65536. */
    TRY_EQ(weft_tcp_listen("127.0.0.1", "99999", 0), -EINVAL);
    TRY_EQ(weft_tcp_listen("127.0.0.1", "65536", 0), -EINVAL);
    TRY_EQ(weft_tcp_listen(NULL, "18446744073709551617", 0), -EINVAL);
    TRY_EQ(weft_tcp_connect("127.0.0.1", "70000"), -EINVAL);
    /* Extreme backlogs are clamped, not refused. */
    int lfd = weft_tcp_listen("127.0.0.1", "0", INT_MIN);
    counted();
    HCHECK_MSG(lfd >= 0, "backlog INT_MIN: %d", lfd);
    int lfd2 = weft_tcp_listen("127.0.0.1", "0", INT_MAX);
    counted();
    HCHECK_MSG(lfd2 >= 0, "backlog INT_MAX: %d", lfd2);
    if (lfd >= 0) {
        getsockname(lfd, (struct sockaddr *)&sa, &sl);
        weft_close(lfd);
        /* Nobody listens there any more. */
        char port[16];
        snprintf(port, sizeof port, "%u", ntohs(sa.sin_port));
        TRY_EQ(weft_tcp_connect("127.0.0.1", port), -ECONNREFUSED);
    }
    if (lfd2 >= 0) {
        TRY_EQ(weft_accept(lfd2, (struct sockaddr *)&sa, NULL), -EINVAL);
        TRY_EQ(weft_read(lfd2, buf, 1), -ENOTCONN);
        weft_close(lfd2);
    }
    return 0;
}

START_TEST(io_rejects_closed_negative_and_huge_arguments)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), io_body, NULL), 0);
}
END_TEST

/* --- semaphores, mutexes, events, channels, generators ---------------- */

struct sync_st {
    weft_mutex *m;
};

static int unlock_foreign(void *arg)
{
    struct sync_st *s = arg;
    weft_mutex_unlock(s->m); /* not the holder: ignored */
    weft_deadline d;
    weft_deadline_enter(&d, WEFT_MSEC(5));
    int rc = weft_mutex_lock(s->m); /* still held by the other task */
    weft_deadline_leave(&d);
    return rc;
}

static int gen_misuse(weft_gen *g, void *arg)
{
    (void)arg;
    TRY_EQ(weft_gen_next(g, NULL), -EINVAL); /* the body asking itself */
    TRY_EQ(weft_gen_close(g), -EINVAL);
    TRY_EQ(weft_gen_yield(NULL, NULL), -EINVAL);
    return weft_gen_yield(g, (void *)(intptr_t)5);
}

static int sync_body(void *arg)
{
    (void)arg;
    /* Semaphores. */
    TRY_EQ(weft_sem_acquire(NULL), -EINVAL);
    weft_sem *s = weft_sem_new(0);
    HREQUIRE(s != NULL, -1);
    TRY_EQ(weft_sem_try_acquire(s), 0);
    weft_deadline d;
    weft_deadline_enter(&d, WEFT_MSEC(2));
    TRY_EQ(weft_sem_acquire(s), -ETIMEDOUT);
    weft_deadline_leave(&d);
    weft_sem_free(s);
    s = weft_sem_new(UINT_MAX);
    HREQUIRE(s != NULL, -1);
    TRY_VOID(weft_sem_release(s)); /* saturates, no wrap to 0 */
    TRY_EQ(weft_sem_try_acquire(s), 1);
    TRY_EQ(weft_sem_acquire(s), 0);
    weft_sem_free(s);

    /* Mutexes. */
    TRY_EQ(weft_mutex_lock(NULL), -EINVAL);
    struct sync_st st = {weft_mutex_new()};
    HREQUIRE(st.m != NULL, -1);
    TRY_VOID(weft_mutex_unlock(st.m)); /* unlocked: ignored */
    TRY_EQ(weft_mutex_lock(st.m), 0);
    TRY_EQ(weft_mutex_lock(st.m), -EDEADLK);
    weft_task *t = weft_spawn(unlock_foreign, &st);
    HREQUIRE(t != NULL, -1);
    TRY_EQ(weft_join(t), -ETIMEDOUT);
    TRY_VOID(weft_mutex_unlock(st.m));
    TRY_VOID(weft_mutex_unlock(st.m)); /* twice: ignored */
    TRY_EQ(weft_mutex_lock(st.m), 0);
    weft_mutex_unlock(st.m);
    weft_mutex_free(st.m);

    /* Events. */
    TRY_EQ(weft_event_wait(NULL), -EINVAL);
    weft_event *e = weft_event_new();
    HREQUIRE(e != NULL, -1);
    TRY_VOID(weft_event_clear(e));
    TRY_EQ(weft_event_is_set(e), 0);
    weft_event_set(e);
    weft_event_set(e);
    TRY_EQ(weft_event_wait(e), 0);
    weft_event_free(e);

    /* Channels. */
    TRY_NULL(weft_chan_new(0, 0), EINVAL);
    TRY_NULL(weft_chan_new(0, 4), EINVAL);
    TRY_NULL(weft_chan_new(SIZE_MAX, 2), ENOMEM);
    TRY_NULL(weft_chan_new(1, SIZE_MAX), ENOMEM);
    TRY_NULL(weft_chan_new(SIZE_MAX / 2, 1), ENOMEM);
    weft_chan *c = weft_chan_new(sizeof(int), 1);
    HREQUIRE(c != NULL, -1);
    int v = 3;
    TRY_EQ(weft_chan_send(c, NULL), -EINVAL);
    TRY_EQ(weft_chan_recv(c, NULL), -EINVAL);
    TRY_EQ(weft_chan_try_send(c, NULL), -EINVAL);
    TRY_EQ(weft_chan_try_recv(c, NULL), -EINVAL);
    TRY_EQ(weft_chan_try_recv(c, &v), -EAGAIN);
    TRY_EQ(weft_chan_send(c, &v), 0);
    TRY_EQ(weft_chan_try_send(c, &v), -EAGAIN);
    TRY_EQ(weft_chan_len(c), 1);
    TRY_VOID(weft_chan_close(c));
    TRY_EQ(weft_chan_try_send(c, &v), -EPIPE);
    TRY_VOID(weft_chan_close(c)); /* idempotent */
    TRY_EQ(weft_chan_send(c, &v), -EPIPE);
    v = 0;
    TRY_EQ(weft_chan_recv(c, &v), 0); /* buffered survives the close */
    HCHECK_INT_EQ(v, 3);
    TRY_EQ(weft_chan_recv(c, &v), -EPIPE);
    TRY_EQ(weft_chan_recv(c, &v), -EPIPE);
    weft_chan_free(c);
    c = weft_chan_new(1, 0);
    HREQUIRE(c != NULL, -1);
    weft_deadline_enter(&d, WEFT_MSEC(2));
    TRY_EQ(weft_chan_send(c, "x"), -ETIMEDOUT); /* rendezvous: nobody takes it */
    weft_deadline_leave(&d);
    weft_chan_free(c);

    /* Generators. */
    TRY_NULL(weft_gen_new(NULL, NULL), EINVAL);
    TRY_EQ(weft_gen_next(NULL, NULL), -EINVAL);
    TRY_EQ(weft_gen_close(NULL), -EINVAL);
    TRY_EQ(weft_gen_yield(NULL, NULL), -EINVAL);
    weft_gen *g = weft_gen_new(gen_body, NULL);
    HREQUIRE(g != NULL, -1);
    TRY_EQ(weft_gen_close(g), 0); /* never started */
    g = weft_gen_new(gen_misuse, NULL);
    HREQUIRE(g != NULL, -1);
    TRY_EQ(weft_gen_yield(g, NULL), -EINVAL); /* not the body */
    void *val = NULL;
    TRY_EQ(weft_gen_next(g, &val), 1);
    HCHECK_INT_EQ((intptr_t)val, 5);
    TRY_EQ(weft_gen_next(g, NULL), 0);
    TRY_EQ(weft_gen_next(g, NULL), 0); /* finished: 0 every time */
    TRY_EQ(weft_gen_close(g), 0);
    return 0;
}

START_TEST(sync_chan_gen_reject_bad_arguments)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), sync_body, NULL), 0);
}
END_TEST

/* Plain threads may send, receive and close channels. */
START_TEST(plain_thread_channel_calls)
{
    weft_chan *c = weft_chan_new(sizeof(int), 2);
    ck_assert_ptr_nonnull(c);
    int v = 1;
    TRY_EQ(weft_chan_send(c, &v), 0);
    TRY_EQ(weft_chan_recv(c, &v), 0);
    TRY_EQ(weft_chan_send(c, NULL), -EINVAL);
    weft_chan_close(c);
    TRY_EQ(weft_chan_recv(c, &v), -EPIPE);
    TRY_EQ(weft_chan_send(c, &v), -EPIPE);
    weft_chan_free(c);
    weft_sem *s = weft_sem_new(1);
    ck_assert_ptr_nonnull(s);
    TRY_EQ(weft_sem_try_acquire(s), 1);
    TRY_EQ(weft_sem_try_acquire(s), 0);
    TRY_VOID(weft_sem_release(s));
    weft_sem_free(s);
    weft_event *e = weft_event_new();
    ck_assert_ptr_nonnull(e);
    weft_event_set(e);
    TRY_EQ(weft_event_is_set(e), 1);
    weft_event_free(e);
    weft_mutex *m = weft_mutex_new();
    ck_assert_ptr_nonnull(m);
    TRY_VOID(weft_mutex_unlock(m)); /* unlocked: ignored */
    weft_mutex_free(m);
}
END_TEST

/* --- weft_strerror names everything, never NULL ----------------------- */

START_TEST(strerror_never_returns_null)
{
    for (int e = -4096; e <= 4096; e++) {
        const char *s = weft_strerror(e);
        counted_code();
        ck_assert_msg(s != NULL && s[0] != '\0', "weft_strerror(%d)", e);
    }
    const int extremes[] = {INT_MIN, INT_MIN + 1, INT_MAX, INT_MAX - 1, -100000, 100000};
    for (size_t i = 0; i < sizeof extremes / sizeof extremes[0]; i++) {
        const char *s = weft_strerror(extremes[i]);
        counted_code();
        ck_assert_msg(s != NULL && s[0] != '\0', "weft_strerror(%d)", extremes[i]);
    }
    ck_assert_str_eq(weft_strerror(-ENOMEM), weft_strerror(ENOMEM));
    ck_assert_str_eq(weft_strerror(123456), "unknown error");
}
END_TEST

/* Descriptor calls pass the kernel's codes through (a read of a
 * directory, a write to a full disk): those must have names too, and not
 * only the codes weft makes itself. */
static int read_directory_main(void *arg)
{
    (void)arg;
    int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    HREQUIRE(fd >= 0, -1);
    char buf[16];
    TRY_EQ(weft_read(fd, buf, sizeof buf), -EISDIR);
    TRY_EQ(weft_close(fd), 0);
    return 0;
}

START_TEST(strerror_names_codes_passed_through)
{
    const int codes[] = {EISDIR, ENOTDIR, ENOSPC, EDQUOT, EFBIG, EROFS, ESPIPE, EFAULT,
                         EINTR, ENXIO, EINPROGRESS, EALREADY, EMSGSIZE, EPROTO, EHOSTDOWN};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        counted_code();
        ck_assert_msg(strcmp(weft_strerror(-codes[i]), "unknown error") != 0,
                      "weft_strerror(%d) is unnamed", -codes[i]);
    }
    ck_assert_int_eq(harness_run(1, read_directory_main, NULL), 0);
}
END_TEST

/* The total, once, from the process that started the suite. */
__attribute__((destructor)) static void print_total(void)
{
    if (n_inputs && getpid() == main_pid)
        printf("misuse: %ld inputs tried: %ld calls with bad arguments or from the wrong "
               "context, %ld weft_strerror codes\n",
               atomic_load(&n_inputs[0]) + atomic_load(&n_inputs[1]),
               atomic_load(&n_inputs[0]), atomic_load(&n_inputs[1]));
}

/* weft_errno: a constructor's errno read in a task, across suspension
 * points that may move the task to another worker thread (read errno
 * itself here and the compiler may keep the first thread's address). */
static int errno_after_moves(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        weft_yield();
        HCHECK(weft_gen_new(NULL, NULL) == NULL);
        HCHECK_INT_EQ(weft_errno(), EINVAL);
        weft_yield();
        HCHECK(weft_spawn(NULL, NULL) == NULL);
        HCHECK_INT_EQ(weft_errno(), EINVAL);
    }
    return 0;
}

static int errno_tasks(void *arg)
{
    (void)arg;
    HCHECK_INT_EQ(harness_spawn_gather(errno_after_moves, NULL, 8), 0);
    errno = ENOENT;
    HCHECK_INT_EQ(weft_errno(), ENOENT);
    return 0;
}

START_TEST(weft_errno_reads_the_current_thread)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), errno_tasks, NULL), 0);
    harness_assert_clean();
    errno = EBADF; /* a plain thread too */
    ck_assert_int_eq(weft_errno(), EBADF);
}
END_TEST

Suite *test_suite(void)
{
    main_pid = getpid();
    void *p = mmap(NULL, 2 * sizeof *n_inputs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    n_inputs = p == MAP_FAILED ? NULL : p;
    if (n_inputs) {
        atomic_init(&n_inputs[0], 0);
        atomic_init(&n_inputs[1], 0);
    }

    Suite *s = suite_create("misuse");
    TCase *tc = harness_tcase(s, "plain_thread", 30);
    tcase_add_test(tc, plain_thread_gets_eperm_from_task_only_calls);
    tcase_add_test(tc, plain_thread_channel_calls);
    tcase_add_test(tc, strerror_never_returns_null);
    tcase_add_loop_test(tc, weft_errno_reads_the_current_thread, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, strerror_names_codes_passed_through);
    tc = harness_tcase(s, "runtime", 60);
    tcase_add_test(tc, runtime_rejects_bad_options_and_arguments);
    tcase_add_test(tc, task_gets_eperm_from_plain_thread_calls);
    tc = harness_tcase(s, "in_task", 60);
    tcase_add_loop_test(tc, tasks_time_groups_reject_bad_arguments, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, io_rejects_closed_negative_and_huge_arguments, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, sync_chan_gen_reject_bad_arguments, 0, HARNESS_N_WORKER_VARIANTS);
    return s;
}
