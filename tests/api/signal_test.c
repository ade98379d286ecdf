/* SPDX-License-Identifier: MIT */
/* weft_signal_wait: deliveries from plain threads and from tasks, with the
 * signals unblocked everywhere or blocked in every program thread, one
 * pending delivery per signal, one waiter woken per delivery, overlapping
 * sets, cancellation and deadline scopes, refused sets, dispositions put
 * back by weft_runtime_free, two runtimes at once, a runtime freed under a
 * waiter. Nothing here waits for a signal by spinning: sanitizers (TSan)
 * hand a signal to its handler only at the receiving thread's next
 * interceptor or blocking call, so tasks wait by sleeping (their worker
 * then sits in epoll_wait) and plain threads by nanosleep. Each test arms
 * its signals first (a wait under an expired deadline scope), so that a
 * signal sent afterwards is caught however soon it comes. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft.h>

#include "harness.h"

static sigset_t set_of(int a, int b)
{
    sigset_t s;
    sigemptyset(&s);
    if (a)
        sigaddset(&s, a);
    if (b)
        sigaddset(&s, b);
    return s;
}

/* From a task: has weft catch set's signals from now on, waiting for
 * nothing (an expired deadline scope). */
static void arm(int a, int b)
{
    sigset_t s = set_of(a, b);
    weft_deadline d;
    HREQUIRE(weft_deadline_enter(&d, 0) == 0, );
    HCHECK_INT_EQ(weft_signal_wait(&s), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
}

static int wait_for(int a, int b)
{
    sigset_t s = set_of(a, b);
    return weft_signal_wait(&s);
}

/* wait_for under a deadline scope of ms milliseconds. */
static int wait_within(int a, int b, int64_t ms)
{
    weft_deadline d;
    if (weft_deadline_enter(&d, WEFT_MSEC(ms)) != 0)
        return -1000;
    int rc = wait_for(a, b);
    weft_deadline_leave(&d);
    return rc;
}

/* In a task: sleeps 1 ms at a time until cond, or records a failure. */
#define HSLEEP_UNTIL(cond)                                                      \
    do {                                                                        \
        int64_t hs_end_ = harness_now_ns() + harness_wait_ns();                 \
        while (!(cond)) {                                                       \
            if (harness_now_ns() > hs_end_) {                                   \
                harness_fail(__FILE__, __LINE__, "HSLEEP_UNTIL(" #cond ")",     \
                             "timed out");                                      \
                break;                                                          \
            }                                                                   \
            weft_sleep(WEFT_MSEC(1));                                           \
        }                                                                       \
    } while (0)

/* On a plain thread: nanosleep 1 ms at a time until cond, or fail. */
#define PSLEEP_UNTIL(cond)                                                      \
    do {                                                                        \
        int64_t ps_end_ = harness_now_ns() + harness_wait_ns();                 \
        while (!(cond) && harness_now_ns() < ps_end_) {                         \
            struct timespec ps_ts_ = {0, 1000000};                              \
            nanosleep(&ps_ts_, NULL);                                           \
        }                                                                       \
        ck_assert_msg((cond), "timed out waiting for " #cond);                  \
    } while (0)

/* The calling thread's mask: sigs blocked (how = SIG_BLOCK) or unblocked. */
static sigset_t mask_main(int how, int a, int b)
{
    sigset_t s = set_of(a, b), old;
    ck_assert_int_eq(pthread_sigmask(how, &s, &old), 0);
    return old;
}

static void *kill_thread(void *arg)
{
    const int *sigs = arg;
    for (; *sigs; sigs++)
        kill(getpid(), *sigs);
    return NULL;
}

static int join_thread(void *arg)
{
    return pthread_join(*(pthread_t *)arg, NULL) == 0 ? 0 : -1;
}

/* --- delivery ------------------------------------------------------- */

static int usr1_body(void *arg)
{
    (void)arg;
    arm(SIGUSR1, 0);
    static const int sigs[] = {SIGUSR1, 0};
    pthread_t th;
    HREQUIRE(pthread_create(&th, NULL, kill_thread, (void *)sigs) == 0, -1);
    HCHECK_INT_EQ(wait_for(SIGUSR1, 0), SIGUSR1);
    HCHECK_INT_EQ(weft_run_blocking(join_thread, &th), 0);
    return 0;
}

/* kill(getpid()) from a plain thread reaches the waiting task. */
START_TEST(usr1_from_a_plain_thread_is_returned)
{
    sigset_t old = mask_main(SIG_UNBLOCK, SIGUSR1, 0);
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), usr1_body, NULL), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
END_TEST

static int int_term_body(void *arg)
{
    (void)arg;
    arm(SIGINT, SIGTERM);
    static const int sigs[] = {SIGINT, SIGTERM, 0};
    pthread_t th;
    HREQUIRE(pthread_create(&th, NULL, kill_thread, (void *)sigs) == 0, -1);
    int a = wait_for(SIGINT, SIGTERM);
    int b = wait_for(SIGINT, SIGTERM);
    HCHECK_MSG((a == SIGINT && b == SIGTERM) || (a == SIGTERM && b == SIGINT), "got %d and %d",
               a, b);
    HCHECK_INT_EQ(weft_run_blocking(join_thread, &th), 0);
    return 0;
}

/* SIGINT and SIGTERM sent to the process while every thread has them
 * unblocked (any thread may run the handler): both come back. */
START_TEST(sigint_and_sigterm_with_every_thread_unblocked)
{
    sigset_t old = mask_main(SIG_UNBLOCK, SIGINT, SIGTERM);
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), int_term_body, NULL), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
END_TEST

static int blocked_body(void *arg)
{
    (void)arg;
    /* The workers inherited the test thread's mask. */
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    HCHECK_INT_EQ(sigismember(&cur, SIGUSR2), 1);
    arm(SIGUSR2, 0);
    kill(getpid(), SIGUSR2);
    HCHECK_INT_EQ(wait_for(SIGUSR2, 0), SIGUSR2);
    return 0;
}

/* Blocked by the test thread before the runtime (so by every worker and
 * pool thread too): still returned. */
START_TEST(signal_blocked_in_every_program_thread_still_arrives)
{
    sigset_t old = mask_main(SIG_BLOCK, SIGUSR2, 0);
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), blocked_body, NULL), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
END_TEST

static int raise_body(void *arg)
{
    (void)arg;
    arm(SIGUSR2, 0);
    /* Aimed at this worker thread, which inherited SIGUSR2 blocked: its
     * runtime now catches SIGUSR2, so the worker has it unblocked. */
    HCHECK_INT_EQ(raise(SIGUSR2), 0);
    HCHECK_INT_EQ(wait_for(SIGUSR2, 0), SIGUSR2);
    /* Again after a suspension point (maybe on another worker). */
    weft_sleep(WEFT_MSEC(1));
    HCHECK_INT_EQ(pthread_kill(pthread_self(), SIGUSR2), 0);
    HCHECK_INT_EQ(wait_for(SIGUSR2, 0), SIGUSR2);
    return 0;
}

/* raise() from a task, with the signal blocked in main before the runtime
 * was made: a thread-directed signal, pending on that worker only. */
START_TEST(raise_from_a_task_with_the_signal_blocked_in_main)
{
    sigset_t old = mask_main(SIG_BLOCK, SIGUSR2, 0);
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), raise_body, NULL), 0);
    /* The test thread's mask is as it was: only workers unblocked it. */
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    ck_assert_int_eq(sigismember(&cur, SIGUSR2), 1);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
END_TEST

/* --- pending and waking --------------------------------------------- */

static int pending_body(void *arg)
{
    (void)arg;
    arm(SIGUSR1, SIGUSR2);
    /* Blocked in every program thread: weft's own thread and this
     * runtime's workers take them, and the thread hands out what its
     * handlers recorded lowest number first, so SIGUSR2's arrival means
     * both SIGUSR1s were handed out before or with it. */
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR2);
    HCHECK_INT_EQ(wait_for(SIGUSR2, 0), SIGUSR2);
    HCHECK_INT_EQ(wait_for(SIGUSR1, 0), SIGUSR1);
    HCHECK_INT_EQ(wait_within(SIGUSR1, SIGUSR2, 100), -ETIMEDOUT);
    /* Both pending: the lowest first, then the other. */
    kill(getpid(), SIGUSR2);
    kill(getpid(), SIGUSR1);
    HCHECK_INT_EQ(wait_for(SIGUSR2, 0), SIGUSR2);
    HCHECK_INT_EQ(wait_for(SIGUSR1, SIGUSR2), SIGUSR1);
    return 0;
}

/* Two deliveries before anyone waits are one pending delivery. */
START_TEST(two_deliveries_before_a_wait_are_one_pending)
{
    sigset_t old = mask_main(SIG_BLOCK, SIGUSR1, SIGUSR2);
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), pending_body, NULL), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
END_TEST

struct waiter_arg {
    int a, b;
    _Atomic int *n_returned;
    int rc;
};

static int waiter_body(void *arg)
{
    struct waiter_arg *w = arg;
    w->rc = wait_for(w->a, w->b);
    atomic_fetch_add(w->n_returned, 1);
    return 0;
}

static int one_waiter_body(void *arg)
{
    (void)arg;
    arm(SIGUSR1, SIGUSR2);
    _Atomic int n = 0;
    /* Overlapping sets. */
    struct waiter_arg wa = {SIGUSR1, SIGUSR2, &n, 0}, wb = {SIGUSR1, 0, &n, 0};
    weft_task *ta = weft_spawn(waiter_body, &wa);
    weft_task *tb = weft_spawn(waiter_body, &wb);
    HREQUIRE(ta && tb, -1);
    kill(getpid(), SIGUSR1);
    HSLEEP_UNTIL(atomic_load(&n) >= 1);
    /* A delivery that woke both would show by now. */
    weft_sleep(WEFT_MSEC(50));
    HCHECK_INT_EQ(atomic_load(&n), 1);
    kill(getpid(), SIGUSR1);
    HSLEEP_UNTIL(atomic_load(&n) >= 2);
    HCHECK_INT_EQ(weft_join(ta), 0);
    HCHECK_INT_EQ(weft_join(tb), 0);
    HCHECK_INT_EQ(wa.rc, SIGUSR1);
    HCHECK_INT_EQ(wb.rc, SIGUSR1);
    /* Nothing left over. */
    HCHECK_INT_EQ(wait_within(SIGUSR1, 0, 100), -ETIMEDOUT);
    return 0;
}

/* Two waiters, one signal: exactly one returns; a second: the other. */
START_TEST(one_waiter_is_woken_per_delivery)
{
    sigset_t old = mask_main(SIG_BLOCK, SIGUSR1, SIGUSR2);
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), one_waiter_body, NULL), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
END_TEST

static int cancel_body(void *arg)
{
    (void)arg;
    _Atomic int n = 0;
    struct waiter_arg w = {SIGUSR1, 0, &n, 0};
    weft_task *t = weft_spawn(waiter_body, &w);
    HREQUIRE(t, -1);
    weft_sleep(WEFT_MSEC(10)); /* parked by now, most likely; either way */
    weft_cancel(t);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(w.rc, -ECANCELED);
    /* A signal after the cancelled wait is kept for the next one. */
    kill(getpid(), SIGUSR1);
    HCHECK_INT_EQ(wait_for(SIGUSR1, 0), SIGUSR1);
    /* A deadline scope ends a wait with -ETIMEDOUT, after its time. */
    int64_t t0 = weft_now();
    HCHECK_INT_EQ(wait_within(SIGUSR1, 0, 30), -ETIMEDOUT);
    HCHECK(weft_now() - t0 >= WEFT_MSEC(30));
    return 0;
}

static int cancelled_self_body(void *arg)
{
    (void)arg;
    arm(SIGUSR1, 0);
    kill(getpid(), SIGUSR1);
    weft_cancel(weft_current());
    HCHECK_INT_EQ(wait_for(SIGUSR1, 0), -ECANCELED);
    return 0;
}

static int after_cancelled_body(void *arg)
{
    (void)arg;
    weft_task *t = weft_spawn(cancelled_self_body, NULL);
    HREQUIRE(t, -1);
    HCHECK_INT_EQ(weft_join(t), 0);
    /* The signal the cancelled task did not take is still here. */
    HCHECK_INT_EQ(wait_for(SIGUSR1, 0), SIGUSR1);
    return 0;
}

/* Cancellation and deadline scopes end waits; what they did not take stays
 * pending. */
START_TEST(cancelled_wait_and_deadline_scope)
{
    sigset_t old = mask_main(SIG_BLOCK, SIGUSR1, 0);
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), cancel_body, NULL), 0);
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), after_cancelled_body, NULL), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
END_TEST

/* --- refused sets ----------------------------------------------------- */

static int einval_body(void *arg)
{
    (void)arg;
    sigset_t s;
    HCHECK_INT_EQ(weft_signal_wait(NULL), -EINVAL);
    sigemptyset(&s);
    HCHECK_INT_EQ(weft_signal_wait(&s), -EINVAL);
    static const int refused[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGUSR2};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        s = set_of(refused[i], 0);
        HCHECK_MSG(weft_signal_wait(&s) == -EINVAL, "signal %d", refused[i]);
        s = set_of(SIGUSR1, refused[i]); /* one bad member spoils the set */
        HCHECK_MSG(weft_signal_wait(&s) == -EINVAL, "signal %d with SIGUSR1", refused[i]);
    }
    sigfillset(&s);
    HCHECK_INT_EQ(weft_signal_wait(&s), -EINVAL);
    memset(&s, 0xff, sizeof s);
    HCHECK_INT_EQ(weft_signal_wait(&s), -EINVAL);
#ifdef __GLIBC__
    /* Signal 32, which glibc keeps for itself (sigaddset refuses it). */
    memset(&s, 0, sizeof s);
    ((unsigned long *)(void *)&s)[0] |= 1ul << 31;
    HCHECK_INT_EQ(sigismember(&s, 32), 1);
    HCHECK_INT_EQ(weft_signal_wait(&s), -EINVAL);
#endif
    /* None of these armed SIGUSR1. */
    struct sigaction cur;
    sigaction(SIGUSR1, NULL, &cur);
    HCHECK(!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL);
    return 0;
}

/* -EINVAL for NULL, empty, SIGKILL, SIGSTOP, signals weft needs itself
 * (the WEFT_DUMP_SIGNAL one, SIGUSR2 here; SIGSEGV), fault signals and
 * reserved numbers; -EPERM outside a task. */
START_TEST(bad_sets_are_refused_and_plain_threads_get_eperm)
{
    sigset_t s = set_of(SIGUSR1, 0);
    ck_assert_int_eq(weft_signal_wait(&s), -EPERM);
    ck_assert_int_eq(weft_signal_wait(NULL), -EPERM);
    setenv("WEFT_DUMP_SIGNAL", "USR2", 1);
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), einval_body, NULL), 0);
    unsetenv("WEFT_DUMP_SIGNAL");
}
END_TEST

/* --- dispositions, runtimes ------------------------------------------- */

static _Atomic int n_test_handler;
static void test_handler(int sig)
{
    (void)sig;
    atomic_fetch_add(&n_test_handler, 1);
}

static bool has_handler(int sig, void (*h)(int))
{
    struct sigaction cur;
    sigaction(sig, NULL, &cur);
    return !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == h;
}

static int restore_body(void *arg)
{
    (void)arg;
    arm(SIGUSR1, SIGUSR2);
    HCHECK(!has_handler(SIGUSR1, test_handler));
    HCHECK(!has_handler(SIGUSR2, SIG_IGN));
    kill(getpid(), SIGUSR1);
    HCHECK_INT_EQ(wait_for(SIGUSR1, 0), SIGUSR1);
    HCHECK_INT_EQ(atomic_load(&n_test_handler), 0);
    return 0;
}

/* weft_runtime_free puts back the handler and the SIG_IGN found before. */
START_TEST(disposition_is_restored_after_runtime_free)
{
    struct sigaction sa, old1, old2;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = test_handler;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old1), 0);
    sa.sa_handler = SIG_IGN;
    ck_assert_int_eq(sigaction(SIGUSR2, &sa, &old2), 0);
    sigset_t old = mask_main(SIG_UNBLOCK, SIGUSR1, 0);
    atomic_store(&n_test_handler, 0);
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), restore_body, NULL), 0);
    ck_assert(has_handler(SIGUSR1, test_handler));
    ck_assert(has_handler(SIGUSR2, SIG_IGN));
    /* And it works again. */
    kill(getpid(), SIGUSR1);
    PSLEEP_UNTIL(atomic_load(&n_test_handler) == 1);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    sigaction(SIGUSR1, &old1, NULL);
    sigaction(SIGUSR2, &old2, NULL);
}
END_TEST

struct rt_run {
    weft_runtime *rt;
    _Atomic int *n_armed;
    int rc;
    pthread_t th;
};

static int two_rt_body(void *arg)
{
    struct rt_run *r = arg;
    arm(SIGUSR1, 0);
    atomic_fetch_add(r->n_armed, 1);
    r->rc = wait_for(SIGUSR1, 0);
    return 0;
}

static void *block_on_thread(void *arg)
{
    struct rt_run *r = arg;
    if (weft_runtime_block_on(r->rt, two_rt_body, r) != 0)
        r->rc = -1000;
    return NULL;
}

/* One delivery reaches both runtimes (each keeps its own pending bit);
 * the first freed leaves weft's handler for the other. */
START_TEST(two_runtimes_each_wait_for_signals)
{
    struct sigaction sa, old1;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = test_handler;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old1), 0);
    sigset_t old = mask_main(SIG_UNBLOCK, SIGUSR1, 0);
    atomic_store(&n_test_handler, 0);
    _Atomic int n_armed = 0;
    struct rt_run r[2];
    for (int i = 0; i < 2; i++) {
        weft_options o = {.workers = harness_workers(i == 0 ? 1 : 2)};
        r[i] = (struct rt_run){.rt = weft_runtime_new(&o), .n_armed = &n_armed, .rc = 0};
        ck_assert_ptr_nonnull(r[i].rt);
        ck_assert_int_eq(pthread_create(&r[i].th, NULL, block_on_thread, &r[i]), 0);
    }
    PSLEEP_UNTIL(atomic_load(&n_armed) == 2);
    kill(getpid(), SIGUSR1);
    for (int i = 0; i < 2; i++) {
        pthread_join(r[i].th, NULL);
        ck_assert_int_eq(r[i].rc, SIGUSR1);
    }
    harness_assert_clean();
    weft_runtime_free(r[0].rt);
    ck_assert(!has_handler(SIGUSR1, test_handler));
    weft_runtime_free(r[1].rt);
    ck_assert(has_handler(SIGUSR1, test_handler));
    ck_assert_int_eq(atomic_load(&n_test_handler), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    sigaction(SIGUSR1, &old1, NULL);
}
END_TEST

static _Atomic int free_waiter_rc;
static _Atomic int free_waiter_entered;

static int free_waiter(void *arg)
{
    (void)arg;
    atomic_store(&free_waiter_entered, 1);
    atomic_store(&free_waiter_rc, wait_for(SIGUSR1, 0));
    return 0;
}

static int wait_entered(void *arg)
{
    (void)arg;
    HSLEEP_UNTIL(atomic_load(&free_waiter_entered) == 1);
    weft_sleep(WEFT_MSEC(10)); /* parked, most likely; either way */
    return 0;
}

/* A runtime freed under a waiting task cancels it, like other waits. */
START_TEST(runtime_free_cancels_a_waiting_task)
{
    atomic_store(&free_waiter_rc, 0);
    atomic_store(&free_waiter_entered, 0);
    weft_options o = {.workers = harness_workers_variant(_i)};
    weft_runtime *rt = weft_runtime_new(&o);
    ck_assert_ptr_nonnull(rt);
    weft_task *t = weft_spawn_on(rt, free_waiter, NULL);
    ck_assert_ptr_nonnull(t);
    weft_detach(t);
    ck_assert_int_eq(weft_runtime_block_on(rt, wait_entered, NULL), 0);
    weft_runtime_free(rt);
    ck_assert_int_eq(atomic_load(&free_waiter_rc), -ECANCELED);
    ck_assert(has_handler(SIGUSR1, SIG_DFL));
}
END_TEST

struct child {
    pid_t pid;
    int fd; /* read end: the child's verdict, one byte */
    char verdict;
};

/* The verdict travels through a pipe, not the exit status, which
 * valgrind's leak check in the child (the parent's threads' stacks) may
 * replace. */
static int reap_child(void *arg)
{
    struct child *c = arg;
    ssize_t n = read(c->fd, &c->verdict, 1);
    int st;
    waitpid(c->pid, &st, 0);
    return n == 1 ? 0 : -1;
}

static int fork_body(void *arg)
{
    (void)arg;
    arm(SIGUSR1, 0);
    kill(getpid(), SIGUSR1); /* pending in the parent */
    HCHECK_INT_EQ(wait_for(SIGUSR1, 0), SIGUSR1);
    kill(getpid(), SIGUSR1); /* pending again: must not matter to the child */
    int p[2];
    HREQUIRE(pipe(p) == 0, -1);
    pid_t pid = fork();
    HREQUIRE(pid >= 0, -1);
    if (pid == 0) {
        /* Only async-signal-safe calls here: the child has one thread. */
        struct sigaction cur;
        sigaction(SIGUSR1, NULL, &cur);
        char v = !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL ? 'y' : 'n';
        ssize_t r = write(p[1], &v, 1);
        _exit(r == 1 ? 0 : 1);
    }
    close(p[1]);
    struct child c = {.pid = pid, .fd = p[0], .verdict = 0};
    HCHECK_INT_EQ(weft_run_blocking(reap_child, &c), 0);
    HCHECK_INT_EQ(c.verdict, 'y');
    close(p[0]);
    /* The parent still catches it and kept its pending delivery. */
    HCHECK_INT_EQ(wait_for(SIGUSR1, 0), SIGUSR1);
    return 0;
}

/* A fork child gets the previous disposition back (it has neither weft's
 * signal thread nor the runtime's workers); the parent keeps catching. */
START_TEST(fork_child_gets_the_previous_disposition)
{
    sigset_t old = mask_main(SIG_BLOCK, SIGUSR1, 0);
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), fork_body, NULL), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("signal");
    TCase *tc = harness_tcase(s, "delivery", 30);
    tcase_add_loop_test(tc, usr1_from_a_plain_thread_is_returned, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, sigint_and_sigterm_with_every_thread_unblocked, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, signal_blocked_in_every_program_thread_still_arrives, 0,
                        HARNESS_N_WORKER_VARIANTS);

    tc = harness_tcase(s, "waiting", 30);
    tcase_add_loop_test(tc, raise_from_a_task_with_the_signal_blocked_in_main, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, two_deliveries_before_a_wait_are_one_pending, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, one_waiter_is_woken_per_delivery, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, cancelled_wait_and_deadline_scope, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, bad_sets_are_refused_and_plain_threads_get_eperm, 0,
                        HARNESS_N_WORKER_VARIANTS);

    tc = harness_tcase(s, "runtimes", 30);
    tcase_add_loop_test(tc, disposition_is_restored_after_runtime_free, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, two_runtimes_each_wait_for_signals);
    tcase_add_loop_test(tc, runtime_free_cancels_a_waiting_task, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, fork_child_gets_the_previous_disposition, 0,
                        HARNESS_N_WORKER_VARIANTS);
    return s;
}
