/* SPDX-License-Identifier: MIT */
/* Fault injection over the whole library. Each scenario (runtime start and
 * stop, spawn/join, timers, sync, channels, generators, groups,
 * run_blocking, sockets, diagnostics) first runs once unharmed, to count
 * the calls through which it can fail (fault_inject.h: heap, mmap,
 * pthread_create, epoll, eventfd). Then, for n = 1, 2, ..., a forked child
 * runs it again with the n-th such call failing, until a run makes fewer
 * than n calls. Every run must end within the time limit without a crash,
 * see each failure as a documented error code (NULL + errno, or
 * -ENOMEM / -EAGAIN / -EMFILE) or not at all (absorbed: the library
 * recovered), find the runtime still usable afterwards, and leave nothing
 * behind: heap blocks, mapped bytes, descriptors and threads all back to
 * what they were before it started.
 *
 *   fault_test [-v] [-n N] [SCENARIO...]    (-n: that failure point only)
 *
 * Environment: FAULT_STRIDE=k tries every k-th failure point only
 * (default 1; 5 under sanitizers, 10 under valgrind), FAULT_TIMEOUT=s per run
 * (default 30), FAULT_MAX_POINTS caps the points per scenario. Links the
 * static core (lib/libweft-core.la), so that the library's own calls go
 * through the wrappers. Prints one line per scenario and the totals;
 * exits 1 on any broken run. */
#define _GNU_SOURCE 1
#include <config.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

#include "fault_inject.h"
#if defined(HAVE_VALGRIND_VALGRIND_H)
#include <valgrind/valgrind.h>
#endif

#if !defined(__SANITIZE_THREAD__) && defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define __SANITIZE_THREAD__ 1 /* clang spells it with __has_feature */
#endif
#endif
#if !defined(__SANITIZE_ADDRESS__) && defined(__has_feature)
#if __has_feature(address_sanitizer)
#define __SANITIZE_ADDRESS__ 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
/* The parent forks each run once its own runtimes are gone; only TSan's
 * background thread is left then, which TSan counts as "multi-threaded". */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "die_after_fork=0"; }
#endif

/* ------------------------------------------------------------ recording */

/* The first unexpected observation of a run (any thread). */
static atomic_flag bad_taken = ATOMIC_FLAG_INIT;
static char bad_msg[512];

__attribute__((format(printf, 3, 4))) static void bad_at(const char *file, int line,
                                                         const char *fmt, ...)
{
    if (atomic_flag_test_and_set(&bad_taken))
        return;
    int n = snprintf(bad_msg, sizeof bad_msg, "%s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bad_msg + n, sizeof bad_msg - (size_t)n, fmt, ap);
    va_end(ap);
}
#define BAD(...) bad_at(__FILE__, __LINE__, __VA_ARGS__)

/* Error codes a failing allocation, mapping, thread or epoll call may
 * surface as. */
static bool allowed(int rc) { return rc == -ENOMEM || rc == -EAGAIN || rc == -EMFILE; }

/* Keeps the first error in *first; BAD for an error that is not allowed
 * (what names the call). */
#define NOTE_RC(first, rc, what)                                                    \
    do {                                                                            \
        int nr_ = (rc);                                                             \
        if (nr_ < 0) {                                                              \
            if (!allowed(nr_))                                                      \
                BAD("%s returned %d (%s)", what, nr_, weft_strerror(nr_));          \
            if (*(first) == 0)                                                      \
                *(first) = nr_;                                                     \
        }                                                                           \
    } while (0)

/* The same for a constructor that returned NULL with errno. */
#define NOTE_ERRNO(first, what) NOTE_RC(first, errno > 0 ? -errno : -1000, what)

/* Like NOTE_RC, but a peer's end caused by a failure in the other task is
 * also fine once a failure was injected (e.g. the echo server failed with
 * -ENOMEM and closed: the client sees EOF or -ECONNRESET). */
#define NOTE_IO(first, rc, what)                                                    \
    do {                                                                            \
        int ni_ = (rc);                                                             \
        if (ni_ < 0 && !allowed(ni_) && fault_injected() &&                         \
            (ni_ == -EPIPE || ni_ == -ECONNRESET || ni_ == -EBADF ||                \
             ni_ == -ECONNREFUSED || ni_ == -ECANCELED))                            \
            ni_ = -ENOMEM;                                                          \
        NOTE_RC(first, ni_, what);                                                  \
    } while (0)

static int first_of(int a, int b) { return a ? a : b; }

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ shared bits */

static int ret7(void *arg)
{
    (void)arg;
    return 7;
}

static int probe_child(void *arg)
{
    (void)arg;
    int rc = weft_sleep(WEFT_USEC(200));
    return rc ? rc : 5;
}

/* Is the runtime still usable: spawn, join, sleep. */
static int probe_body(void *arg)
{
    (void)arg;
    weft_task *t = weft_spawn(probe_child, NULL);
    if (!t)
        return -errno;
    int s = weft_join(t);
    if (s != 5)
        return s < 0 ? s : -EPROTO;
    return weft_yield();
}

static weft_runtime *rt_new(unsigned workers, int *first)
{
    weft_options o = {.workers = workers};
    weft_runtime *rt = weft_runtime_new(&o);
    if (!rt)
        NOTE_ERRNO(first, "weft_runtime_new");
    return rt;
}

/* Runs body on rt, then after(arg) if not NULL, checks that rt still
 * works, frees it. */
static int run_and_free_after(weft_runtime *rt, weft_fn body, void *arg, int first,
                              void (*after)(void *))
{
    int rc = weft_runtime_block_on(rt, body, arg);
    NOTE_RC(&first, rc, "block_on(scenario)");
    if (after)
        after(arg);
    /* A burst of failures has passed before the probe: memory is back. */
    fault_burst_wait();
    int before = fault_injected();
    int p = weft_runtime_block_on(rt, probe_body, NULL);
    if (p != 0) {
        /* Only a failure injected into the probe itself may fail it. */
        if (fault_injected() == before || !allowed(p))
            BAD("runtime unusable after the failure: probe returned %d (%s)", p,
                weft_strerror(p));
        first = first_of(first, p);
    }
    weft_runtime_free(rt);
    return first;
}

static int run_and_free(weft_runtime *rt, weft_fn body, void *arg, int first)
{
    return run_and_free_after(rt, body, arg, first, NULL);
}

/* Waits (yielding) until *n reaches want; false after 5 s. */
static bool yield_until(atomic_int *n, int want)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(n) < want) {
        weft_yield();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > 5)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------ scenarios */

/* runtime: start with options (monitor thread, blocking ceiling), block_on,
 * free; then weft_run with defaults. */
static int sc_runtime(void)
{
    int first = 0;
    weft_options o = {.workers = 3, .blocking_threads = 2, .slow_task_ns = WEFT_SEC(30)};
    weft_runtime *rt = weft_runtime_new(&o);
    if (!rt) {
        NOTE_ERRNO(&first, "weft_runtime_new");
    } else {
        int rc = weft_runtime_block_on(rt, ret7, NULL);
        if (rc != 7)
            NOTE_RC(&first, rc < 0 ? rc : -1000, "block_on(ret7)");
        first = run_and_free(rt, ret7, NULL, first);
        if (first == 7)
            first = 0;
    }
    int rc = weft_run(ret7, NULL);
    if (rc != 7)
        NOTE_RC(&first, rc < 0 ? rc : -1000, "weft_run");
    return first;
}

#define N_SPAWN 150
#define N_DETACH 10
#define N_SPAWN_ON 20

struct spawn_st {
    atomic_int started, ended, detached_ended;
    struct spawn_arg {
        struct spawn_st *st;
        int idx;
    } args[N_SPAWN], on_args[N_SPAWN_ON];
    weft_task *on[N_SPAWN_ON];
    int n_on;
    bool body_ran;
};

static int spawn_child(void *arg)
{
    struct spawn_arg *a = arg;
    atomic_fetch_add(&a->st->started, 1);
    weft_yield();
    atomic_fetch_add(&a->st->ended, 1);
    return a->idx;
}

static int detached_child(void *arg)
{
    struct spawn_st *st = arg;
    weft_yield();
    atomic_fetch_add(&st->detached_ended, 1);
    return 0;
}

static int spawn_body(void *arg)
{
    struct spawn_st *st = arg;
    st->body_ran = true;
    int first = 0;
    weft_task *t[N_SPAWN];
    int n = 0;
    for (; n < N_SPAWN; n++) {
        st->args[n] = (struct spawn_arg){st, n};
        t[n] = weft_spawn(spawn_child, &st->args[n]);
        if (!t[n]) {
            NOTE_ERRNO(&first, "weft_spawn");
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        int s = weft_join(t[i]);
        if (s != i)
            NOTE_RC(&first, s < 0 ? s : -1000, "weft_join");
    }
    int d = 0;
    for (; d < N_DETACH; d++) {
        weft_task *x = weft_spawn(detached_child, st);
        if (!x) {
            NOTE_ERRNO(&first, "weft_spawn(detached)");
            break;
        }
        weft_detach(x);
    }
    if (!yield_until(&st->detached_ended, d))
        BAD("only %d of %d detached tasks ran", atomic_load(&st->detached_ended), d);
    /* The tasks spawn_on made from the plain thread. */
    for (int i = 0; i < st->n_on; i++) {
        int s = weft_join(st->on[i]);
        if (s != 1000 + i)
            NOTE_RC(&first, s < 0 ? s : -1000, "weft_join(spawn_on)");
    }
    return first;
}

/* When the body could not start (block_on failed), nobody joined the
 * tasks spawned from the plain thread: give their handles up. */
static void spawn_after(void *arg)
{
    struct spawn_st *st = arg;
    if (!st->body_ran)
        for (int i = 0; i < st->n_on; i++)
            weft_detach(st->on[i]);
}

static int sc_spawn(void)
{
    int first = 0;
    weft_runtime *rt = rt_new(2, &first);
    if (!rt)
        return first;
    static struct spawn_st st;
    memset(&st, 0, sizeof st);
    for (; st.n_on < N_SPAWN_ON; st.n_on++) {
        st.on_args[st.n_on] = (struct spawn_arg){&st, 1000 + st.n_on};
        st.on[st.n_on] = weft_spawn_on(rt, spawn_child, &st.on_args[st.n_on]);
        if (!st.on[st.n_on]) {
            NOTE_ERRNO(&first, "weft_spawn_on");
            break;
        }
    }
    first = run_and_free_after(rt, spawn_body, &st, first, spawn_after);
    /* Every body that started ended exactly once, and every task made
     * started (a body always starts). */
    if (atomic_load(&st.started) != atomic_load(&st.ended))
        BAD("%d bodies started, %d ended", atomic_load(&st.started), atomic_load(&st.ended));
    return first;
}

static int sleeper(void *arg)
{
    return weft_sleep(WEFT_MSEC((intptr_t)arg));
}

static int scope_body(void *arg)
{
    (void)arg;
    weft_deadline d;
    int rc = weft_deadline_enter(&d, WEFT_MSEC(3));
    if (rc)
        return rc;
    int s = weft_sleep(WEFT_SEC(10));
    rc = weft_deadline_leave(&d);
    if (rc)
        return rc;
    return s == -ETIMEDOUT ? 0 : (s < 0 ? s : -1000);
}

static int timers_body(void *arg)
{
    (void)arg;
    int first = 0;
    weft_task *t[40];
    int n = 0;
    for (; n < 40; n++) {
        t[n] = weft_spawn(sleeper, (void *)(intptr_t)(1 + n % 4));
        if (!t[n]) {
            NOTE_ERRNO(&first, "weft_spawn");
            break;
        }
    }
    for (int i = 0; i < n; i++)
        NOTE_RC(&first, weft_join(t[i]), "join(sleeper)");
    int rc = weft_wait_for(sleeper, (void *)(intptr_t)1000, WEFT_MSEC(2));
    if (rc != -ETIMEDOUT)
        NOTE_RC(&first, rc < 0 ? rc : -1000, "wait_for(timeout)");
    rc = weft_wait_for(ret7, NULL, WEFT_SEC(5));
    if (rc != 7)
        NOTE_RC(&first, rc < 0 ? rc : -1000, "wait_for(ret7)");
    NOTE_RC(&first, scope_body(NULL), "deadline scope");
    return first;
}

static int sc_timers(void)
{
    int first = 0;
    weft_runtime *rt = rt_new(2, &first);
    return rt ? run_and_free(rt, timers_body, NULL, first) : first;
}

struct sync_st {
    weft_sem *sem;
    weft_mutex *mu;
    weft_event *ev;
    atomic_int inside, max_inside, woke;
    int counter;
};

static int sem_user(void *arg)
{
    struct sync_st *st = arg;
    int rc = weft_sem_acquire(st->sem);
    if (rc)
        return rc;
    int in = atomic_fetch_add(&st->inside, 1) + 1;
    int m = atomic_load(&st->max_inside);
    while (in > m && !atomic_compare_exchange_weak(&st->max_inside, &m, in))
        ;
    rc = weft_yield();
    atomic_fetch_sub(&st->inside, 1);
    weft_sem_release(st->sem);
    return rc;
}

static int mutex_user(void *arg)
{
    struct sync_st *st = arg;
    for (int i = 0; i < 5; i++) {
        int rc = weft_mutex_lock(st->mu);
        if (rc)
            return rc;
        int c = st->counter;
        weft_yield();
        st->counter = c + 1;
        weft_mutex_unlock(st->mu);
    }
    return 0;
}

static int event_waiter(void *arg)
{
    struct sync_st *st = arg;
    int rc = weft_event_wait(st->ev);
    if (rc == 0)
        atomic_fetch_add(&st->woke, 1);
    return rc;
}

static int sync_body(void *arg)
{
    struct sync_st *st = arg;
    int first = 0;
    weft_task *t[40];
    int n = 0, n_mutex = 0;
    for (int i = 0; i < 20; i++, n++)
        if (!(t[n] = weft_spawn(sem_user, st))) {
            NOTE_ERRNO(&first, "spawn(sem_user)");
            break;
        }
    for (int i = 0; i < 8 && !first; i++, n++, n_mutex++)
        if (!(t[n] = weft_spawn(mutex_user, st))) {
            NOTE_ERRNO(&first, "spawn(mutex_user)");
            break;
        }
    int n_wait = 0;
    for (int i = 0; i < 10 && !first; i++, n++, n_wait++)
        if (!(t[n] = weft_spawn(event_waiter, st))) {
            NOTE_ERRNO(&first, "spawn(event_waiter)");
            break;
        }
    weft_yield();
    weft_event_set(st->ev);
    for (int i = 0; i < n; i++)
        NOTE_RC(&first, weft_join(t[i]), "join(sync user)");
    if (atomic_load(&st->max_inside) > 3)
        BAD("%d tasks inside a 3-permit semaphore", atomic_load(&st->max_inside));
    if (st->counter != 5 * n_mutex)
        BAD("mutex counter %d, want %d", st->counter, 5 * n_mutex);
    if (atomic_load(&st->woke) != n_wait)
        BAD("%d of %d event waiters woke", atomic_load(&st->woke), n_wait);
    /* Every permit came back. */
    int got = 0;
    while (got < 5 && weft_sem_try_acquire(st->sem))
        got++;
    if (got != 3)
        BAD("%d permits free at the end, want 3", got);
    return first;
}

static int sc_sync(void)
{
    int first = 0;
    static struct sync_st st;
    memset(&st, 0, sizeof st);
    weft_runtime *rt = rt_new(2, &first);
    if (!rt)
        return first;
    st.sem = weft_sem_new(3);
    st.mu = weft_mutex_new();
    st.ev = weft_event_new();
    if (!st.sem || !st.mu || !st.ev) {
        NOTE_ERRNO(&first, "weft_sem/mutex/event_new");
        weft_runtime_free(rt);
    } else {
        first = run_and_free(rt, sync_body, &st, first);
    }
    weft_sem_free(st.sem);
    weft_mutex_free(st.mu);
    weft_event_free(st.ev);
    return first;
}

#define CH_PRODUCERS 3
#define CH_PER 40

struct chan_st {
    weft_chan *c;
    atomic_long sent_sum;
    atomic_int sent_n;
};

static int producer(void *arg)
{
    struct chan_st *st = arg;
    for (int i = 1; i <= CH_PER; i++) {
        int rc = weft_chan_send(st->c, &i);
        if (rc)
            return rc;
        atomic_fetch_add(&st->sent_sum, i);
        atomic_fetch_add(&st->sent_n, 1);
    }
    return 0;
}

/* Producers on c; the body receives everything they send, then closes. */
static int chan_round(size_t cap, int *first)
{
    static struct chan_st st;
    memset(&st, 0, sizeof st);
    st.c = weft_chan_new(sizeof(int), cap);
    if (!st.c) {
        NOTE_ERRNO(first, "weft_chan_new");
        return *first;
    }
    weft_task *t[CH_PRODUCERS];
    int n = 0;
    for (; n < CH_PRODUCERS; n++)
        if (!(t[n] = weft_spawn(producer, &st))) {
            NOTE_ERRNO(first, "spawn(producer)");
            break;
        }
    long sum = 0;
    int got = 0;
    while (got < n * CH_PER) {
        int v;
        int rc = weft_chan_recv(st.c, &v);
        if (rc) {
            BAD("chan_recv returned %d with %d of %d received", rc, got, n * CH_PER);
            break;
        }
        sum += v;
        got++;
    }
    for (int i = 0; i < n; i++)
        NOTE_RC(first, weft_join(t[i]), "join(producer)");
    weft_chan_close(st.c);
    int v;
    int rc = weft_chan_recv(st.c, &v);
    if (rc != -EPIPE)
        BAD("recv on a closed, drained channel returned %d", rc);
    if (sum != atomic_load(&st.sent_sum) || got != atomic_load(&st.sent_n))
        BAD("received %d (sum %ld), sent %d (sum %ld)", got, sum, atomic_load(&st.sent_n),
            atomic_load(&st.sent_sum));
    weft_chan_free(st.c);
    return *first;
}

static int chan_body(void *arg)
{
    (void)arg;
    int first = 0;
    chan_round(4, &first);
    chan_round(0, &first);
    return first;
}

static int sc_chan(void)
{
    int first = 0;
    weft_runtime *rt = rt_new(2, &first);
    return rt ? run_and_free(rt, chan_body, NULL, first) : first;
}

static int gen_count(weft_gen *g, void *arg)
{
    intptr_t n = (intptr_t)arg;
    for (intptr_t i = 0; i < n; i++) {
        int rc = weft_gen_yield(g, (void *)i);
        if (rc)
            return rc;
    }
    return 0;
}

static int gen_body(void *arg)
{
    (void)arg;
    int first = 0;
    /* Drained to the end. */
    weft_gen *g = weft_gen_new(gen_count, (void *)(intptr_t)20);
    if (!g) {
        NOTE_ERRNO(&first, "weft_gen_new");
        return first;
    }
    intptr_t want = 0;
    for (;;) {
        void *v;
        int rc = weft_gen_next(g, &v);
        if (rc == 1) {
            if ((intptr_t)v != want)
                BAD("generator gave %ld, want %ld", (long)(intptr_t)v, (long)want);
            want++;
            continue;
        }
        if (rc == 0 && want != 20)
            BAD("generator ended after %ld values", (long)want);
        NOTE_RC(&first, rc, "weft_gen_next");
        break;
    }
    NOTE_RC(&first, weft_gen_close(g), "weft_gen_close");
    /* Closed early: the body's yield fails, close reports a clean end. */
    g = weft_gen_new(gen_count, (void *)(intptr_t)1000);
    if (!g) {
        NOTE_ERRNO(&first, "weft_gen_new");
        return first;
    }
    for (int i = 0; i < 3; i++) {
        void *v;
        int rc = weft_gen_next(g, &v);
        if (rc != 1) {
            NOTE_RC(&first, rc < 0 ? rc : -1000, "weft_gen_next(early)");
            break;
        }
    }
    NOTE_RC(&first, weft_gen_close(g), "weft_gen_close(early)");
    return first;
}

static int sc_gen(void)
{
    int first = 0;
    weft_runtime *rt = rt_new(2, &first);
    return rt ? run_and_free(rt, gen_body, NULL, first) : first;
}

static int fails_eio(void *arg)
{
    (void)arg;
    weft_yield();
    return -EIO;
}

/* Six long sleepers and a child that fails: the failure cancels them.
 * When a spawn fails instead, the task cancels itself, which makes
 * weft_group_wait cancel the group (no way to spawn the failure). */
static int failing_group(void *arg)
{
    (void)arg;
    int first = 0;
    weft_group *g = weft_group_new();
    if (!g) {
        NOTE_ERRNO(&first, "weft_group_new");
        return first;
    }
    int rc = 0, made = 0;
    for (; made < 6 && !(rc = weft_group_spawn(g, sleeper, (void *)(intptr_t)10000)); made++)
        ;
    if (!rc)
        rc = weft_group_spawn(g, fails_eio, NULL);
    NOTE_RC(&first, rc, "weft_group_spawn");
    if (rc)
        weft_cancel(weft_current());
    int w = weft_group_wait(g);
    /* An empty group has nothing to wait for: as in asyncio, the
     * cancellation waits for the next suspension that really waits. */
    if (w != (rc ? (made ? -ECANCELED : 0) : -EIO))
        NOTE_RC(&first, w < 0 ? w : -1000, "weft_group_wait(failing)");
    return first;
}

static int group_body(void *arg)
{
    (void)arg;
    int first = 0;
    /* A group whose children all succeed. */
    weft_group *g = weft_group_new();
    if (!g) {
        NOTE_ERRNO(&first, "weft_group_new");
        return first;
    }
    for (int i = 0; i < 20; i++) {
        int rc = weft_group_spawn(g, sleeper, (void *)(intptr_t)1);
        if (rc) {
            NOTE_RC(&first, rc, "weft_group_spawn");
            break;
        }
    }
    NOTE_RC(&first, weft_group_wait(g), "weft_group_wait");
    /* A group whose one failure cancels the sleepers. */
    weft_task *ft = weft_spawn(failing_group, NULL);
    if (!ft)
        NOTE_ERRNO(&first, "weft_spawn(failing_group)");
    else
        NOTE_RC(&first, weft_join(ft), "failing group");
    /* gather and wait_any. */
    weft_task *t[8];
    int n = 0;
    for (; n < 8; n++)
        if (!(t[n] = weft_spawn(sleeper, (void *)(intptr_t)(n < 4 ? 1 : 2)))) {
            NOTE_ERRNO(&first, "weft_spawn");
            break;
        }
    if (n > 0) {
        int idx = weft_wait_any(t, (size_t)n, WEFT_SEC(5));
        if (idx < 0 || idx >= n)
            NOTE_RC(&first, idx < 0 ? idx : -1000, "weft_wait_any");
        int st[8];
        NOTE_RC(&first, weft_gather(t, (size_t)n, st), "weft_gather");
    }
    return first;
}

static int sc_group(void)
{
    int first = 0;
    weft_runtime *rt = rt_new(2, &first);
    return rt ? run_and_free(rt, group_body, NULL, first) : first;
}

static int blocking_fn(void *arg)
{
    (void)arg;
    nap_ms(2);
    return 3;
}

static int blocking_user(void *arg)
{
    (void)arg;
    int rc = weft_run_blocking(blocking_fn, NULL);
    return rc == 3 ? 0 : (rc < 0 ? rc : -1000);
}

static int blocking_body(void *arg)
{
    (void)arg;
    int first = 0;
    weft_task *t[12];
    int n = 0;
    for (; n < 12; n++)
        if (!(t[n] = weft_spawn(blocking_user, NULL))) {
            NOTE_ERRNO(&first, "weft_spawn");
            break;
        }
    for (int i = 0; i < n; i++)
        NOTE_RC(&first, weft_join(t[i]), "run_blocking");
    return first;
}

static int sc_blocking(void)
{
    int first = 0;
    weft_options o = {.workers = 2, .blocking_threads = 4};
    weft_runtime *rt = weft_runtime_new(&o);
    if (!rt) {
        NOTE_ERRNO(&first, "weft_runtime_new");
        return first;
    }
    return run_and_free(rt, blocking_body, NULL, first);
}

/* --- sockets: echo over socketpairs and over loopback TCP --- */

static int echo_serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[512];
    for (;;) {
        ssize_t n = weft_read(fd, buf, sizeof buf);
        if (n <= 0) {
            weft_close(fd);
            return n < 0 && n != -ECONNRESET ? (int)n : 0;
        }
        ssize_t w = weft_write(fd, buf, (size_t)n);
        if (w < 0) {
            weft_close(fd);
            return w == -EPIPE || w == -ECONNRESET ? 0 : (int)w;
        }
    }
}

/* Writes 1000 bytes to fd, reads them back, closes fd. */
static int echo_client_fd(int fd)
{
    char out[1000], in[1000];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (char)(i * 7);
    ssize_t w = weft_write(fd, out, sizeof out);
    if (w < 0) {
        weft_close(fd);
        return (int)w;
    }
    size_t got = 0;
    while (got < sizeof in) {
        ssize_t n = weft_read(fd, in + got, sizeof in - got);
        if (n <= 0) {
            weft_close(fd);
            return n == 0 ? -EPIPE : (int)n;
        }
        got += (size_t)n;
    }
    weft_close(fd);
    if (memcmp(in, out, sizeof in) != 0)
        BAD("echo came back different");
    return 0;
}

static int pair_client(void *arg) { return echo_client_fd((int)(intptr_t)arg); }

struct tcp_st {
    int lfd;
    char port[16];
};

static int acceptor(void *arg)
{
    struct tcp_st *st = arg;
    int first = 0;
    weft_task *h[8];
    int n = 0;
    while (n < 8) {
        int fd = weft_accept(st->lfd, NULL, NULL);
        if (fd < 0) {
            if (fd != -EBADF) { /* -EBADF: the body closed the listener */
                NOTE_RC(&first, fd, "weft_accept");
                /* Nobody accepts any more: reset the connections queued
                 * and refuse new ones, so that the clients do not wait. */
                shutdown(st->lfd, SHUT_RDWR);
            }
            break;
        }
        if (!(h[n] = weft_spawn(echo_serve, (void *)(intptr_t)fd))) {
            NOTE_ERRNO(&first, "spawn(echo_serve)");
            weft_close(fd); /* that client sees the end */
            continue;
        }
        n++;
    }
    for (int i = 0; i < n; i++)
        NOTE_IO(&first, weft_join(h[i]), "echo_serve(tcp)");
    return first;
}

static int tcp_client(void *arg)
{
    struct tcp_st *st = arg;
    int fd = weft_tcp_connect("127.0.0.1", st->port);
    if (fd < 0)
        return fd;
    return echo_client_fd(fd);
}

static int io_body(void *arg)
{
    (void)arg;
    int first = 0;
    /* socketpairs */
    weft_task *t[16];
    int n = 0;
    for (int i = 0; i < 6; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
            BAD("socketpair: %s", strerror(errno));
            break;
        }
        weft_task *a = weft_spawn(echo_serve, (void *)(intptr_t)sv[0]);
        if (!a) {
            NOTE_ERRNO(&first, "spawn(echo_serve)");
            close(sv[0]);
            close(sv[1]);
            break;
        }
        t[n++] = a;
        weft_task *b = weft_spawn(pair_client, (void *)(intptr_t)sv[1]);
        if (!b) {
            NOTE_ERRNO(&first, "spawn(pair_client)");
            weft_close(sv[1]); /* the server sees EOF */
            break;
        }
        t[n++] = b;
    }
    for (int i = 0; i < n; i++)
        NOTE_IO(&first, weft_join(t[i]), "socketpair echo");
    /* TCP on loopback */
    static struct tcp_st st;
    st.lfd = weft_tcp_listen("127.0.0.1", "0", 16);
    if (st.lfd < 0) {
        NOTE_RC(&first, st.lfd, "weft_tcp_listen");
        return first;
    }
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    getsockname(st.lfd, (struct sockaddr *)&sa, &len);
    snprintf(st.port, sizeof st.port, "%u", ntohs(sa.sin_port));
    weft_task *acc = weft_spawn(acceptor, &st);
    if (!acc) {
        NOTE_ERRNO(&first, "spawn(acceptor)");
        weft_close(st.lfd);
        return first;
    }
    n = 0;
    for (; n < 4; n++)
        if (!(t[n] = weft_spawn(tcp_client, &st))) {
            NOTE_ERRNO(&first, "spawn(tcp_client)");
            break;
        }
    for (int i = 0; i < n; i++)
        NOTE_IO(&first, weft_join(t[i]), "tcp echo");
    /* Wakes the acceptor (with -EBADF) if it still waits. */
    NOTE_RC(&first, weft_close(st.lfd), "weft_close(listener)");
    NOTE_IO(&first, weft_join(acc), "acceptor");
    return first;
}

static int sc_io(void)
{
    int first = 0;
    weft_runtime *rt = rt_new(2, &first);
    return rt ? run_and_free(rt, io_body, NULL, first) : first;
}

/* --- diagnostics: stats and a dump with live tasks --- */

static int diag_waiter(void *arg) { return weft_event_wait(arg); }

static int diag_body(void *arg)
{
    int first = 0;
    weft_event *ev = arg;
    weft_task *t[30];
    int n = 0;
    for (; n < 30; n++)
        if (!(t[n] = weft_spawn(diag_waiter, ev))) {
            NOTE_ERRNO(&first, "weft_spawn");
            break;
        }
    weft_yield();
    weft_stats s = {0};
    NOTE_RC(&first, weft_runtime_stats(weft_runtime_current(), &s), "weft_runtime_stats");
    FILE *f = fopen("/dev/null", "w");
    if (f) {
        weft_runtime_dump(weft_runtime_current(), f);
        fclose(f);
    }
    weft_event_set(ev);
    for (int i = 0; i < n; i++)
        NOTE_RC(&first, weft_join(t[i]), "join(diag_waiter)");
    return first;
}

static int sc_diag(void)
{
    int first = 0;
    weft_runtime *rt = rt_new(2, &first);
    if (!rt)
        return first;
    weft_event *ev = weft_event_new();
    if (!ev) {
        NOTE_ERRNO(&first, "weft_event_new");
        weft_runtime_free(rt);
        return first;
    }
    first = run_and_free(rt, diag_body, ev, first);
    weft_event_free(ev);
    return first;
}

/* --- stacks: the task that needs the first stack of a new stack region
 * (a new mmap) is a generator body, a group child or a detached task.
 * With one worker the order is fixed: the block_on task takes stack 1 and
 * the 63 parkers stacks 2..64 of the first region of 64. --- */

#define STACK_PARKERS 63

struct stacks_st {
    weft_event *ev;
    int round;
    atomic_int ran;
};

static int stack_parker(void *arg)
{
    struct stacks_st *st = arg;
    return weft_event_wait(st->ev);
}

static int gen_one(weft_gen *g, void *arg)
{
    struct stacks_st *st = arg;
    atomic_fetch_add(&st->ran, 1);
    return weft_gen_yield(g, (void *)(intptr_t)42);
}

static int group_child(void *arg)
{
    struct stacks_st *st = arg;
    atomic_fetch_add(&st->ran, 1);
    return 0;
}

static int stacks_body(void *arg)
{
    struct stacks_st *st = arg;
    int first = 0;
    weft_task *t[STACK_PARKERS];
    int n = 0;
    for (; n < STACK_PARKERS; n++)
        if (!(t[n] = weft_spawn(stack_parker, st))) {
            NOTE_ERRNO(&first, "spawn(parker)");
            break;
        }
    weft_yield(); /* the parkers take their stacks */
    if (st->round == 0) {
        weft_gen *g = weft_gen_new(gen_one, st);
        if (!g) {
            NOTE_ERRNO(&first, "weft_gen_new");
        } else {
            void *v = NULL;
            int rc = weft_gen_next(g, &v);
            if (rc == 1 && (intptr_t)v != 42)
                BAD("generator gave %ld", (long)(intptr_t)v);
            if (rc != 1)
                NOTE_RC(&first, rc < 0 ? rc : -1000, "weft_gen_next");
            NOTE_RC(&first, weft_gen_close(g), "weft_gen_close");
        }
    } else if (st->round == 1) {
        weft_group *g = weft_group_new();
        if (!g) {
            NOTE_ERRNO(&first, "weft_group_new");
        } else {
            int rc = weft_group_spawn(g, group_child, st);
            NOTE_RC(&first, rc, "weft_group_spawn");
            int w = weft_group_wait(g);
            NOTE_RC(&first, w, "weft_group_wait");
            if (rc == 0 && w == 0 && atomic_load(&st->ran) != 1)
                BAD("weft_group_wait returned 0, but its child never ran");
        }
    } else {
        weft_task *d = weft_spawn(group_child, st);
        if (!d) {
            NOTE_ERRNO(&first, "weft_spawn(detached)");
        } else {
            weft_detach(d);
            if (!yield_until(&st->ran, 1))
                BAD("a detached task never ran");
        }
    }
    weft_event_set(st->ev);
    for (int i = 0; i < n; i++)
        NOTE_RC(&first, weft_join(t[i]), "join(parker)");
    return first;
}

static int stacks_rounds(int from, int to)
{
    int first = 0;
    for (int round = from; round < to; round++) {
        weft_runtime *rt = rt_new(1, &first);
        if (!rt)
            continue;
        static struct stacks_st st;
        memset(&st, 0, sizeof st);
        st.round = round;
        st.ev = weft_event_new();
        if (!st.ev) {
            NOTE_ERRNO(&first, "weft_event_new");
            weft_runtime_free(rt);
            continue;
        }
        first = run_and_free(rt, stacks_body, &st, first);
        weft_event_free(st.ev);
    }
    return first;
}

/* The same on a kernel without MADV_GUARD_INSTALL: guards from mprotect,
 * whose failures the sweep then reaches. */
static int sc_stacks_mprotect(void)
{
    fault_set_guards_off(1);
    int first = stacks_rounds(2, 3); /* one round: a point per stack */
    fault_set_guards_off(0);
    return first;
}

static int sc_stacks(void) { return stacks_rounds(0, 3); }

struct scenario {
    const char *name;
    int (*fn)(void);
};

static const struct scenario scenarios[] = {
    {"runtime", sc_runtime}, {"spawn", sc_spawn}, {"timers", sc_timers},
    {"sync", sc_sync},       {"chan", sc_chan},   {"gen", sc_gen},
    {"group", sc_group},     {"blocking", sc_blocking}, {"io", sc_io},
    {"diag", sc_diag},       {"stacks", sc_stacks},
    {"stacks-mprotect", sc_stacks_mprotect},
};

/* ------------------------------------------------------------ fixed checks
 * Conditions that last, rather than the n-th call failing: address space
 * too short for a full stack region, and no guard page to be had at all.
 * Each runs in a forked child with a time limit. */

#define STACKS_SHORT 24

static int short_parker(void *arg) { return weft_event_wait(arg); }

static int short_body(void *arg)
{
    weft_event *ev = weft_event_new();
    if (!ev)
        return -ENOMEM;
    weft_task *t[STACKS_SHORT];
    int first = 0;
    for (int i = 0; i < STACKS_SHORT; i++)
        if (!(t[i] = weft_spawn(short_parker, ev)))
            return -errno;
    weft_yield();
    weft_event_set(ev);
    for (int i = 0; i < STACKS_SHORT; i++)
        first = first_of(first, weft_join(t[i]));
    weft_event_free(ev);
    (void)arg;
    return first;
}

/* ulimit -v in effect: a region of 64 stacks of 16 MiB (1 GiB) cannot be
 * mapped, 8 of them can. Before smaller regions were tried, no task ever
 * got a stack and block_on never returned. */
static int chk_short_address_space(void)
{
    fault_set_mmap_limit((size_t)256 << 20);
    weft_runtime *rt =
        weft_runtime_new(&(weft_options){.workers = 2, .stack_size = (size_t)16 << 20});
    if (!rt)
        return 10;
    int rc = weft_runtime_block_on(rt, short_body, NULL);
    weft_runtime_free(rt);
    return rc == 0 ? 0 : 11;
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
static int __attribute__((noinline)) recurse(int n)
{
    volatile char buf[512];
    memset((char *)buf, n, sizeof buf);
    return n ? recurse(n - 1) + buf[7] : 0;
}

static int runaway(void *arg)
{
    (void)arg;
    weft_task_set_name(weft_current(), "runaway");
    return recurse(1 << 22);
}

/* No guard page anywhere (a kernel without MADV_GUARD_INSTALL, the
 * mprotect budget spent): unbounded recursion runs through the stacks
 * below until it meets memory that faults; the fault is still named
 * (before: a bare SIGSEGV). */
static int chk_overflow_unguarded(void)
{
    fault_set_guards_off(2);
    weft_runtime *rt = weft_runtime_new(&(weft_options){.workers = 1, .stack_size = 64 * 1024});
    if (!rt)
        return 10;
    weft_runtime_block_on(rt, runaway, NULL);
    return 11; /* not reached */
}

static int __attribute__((noinline)) dip(int n)
{
    volatile char buf[1024];
    memset((char *)buf, n, sizeof buf);
    return n ? dip(n - 1) + buf[7] : 0;
}

static int dipper(void *arg)
{
    (void)arg;
    weft_task_set_name(weft_current(), "dipper");
    int r = dip(80); /* about 84 KiB deep on a 64 KiB stack, and back */
    weft_yield();
    return r;
}

/* No guard page, and an overflow that comes back before it faults (it
 * stays within the 64 KiB gap below the stack): the canary at the
 * bottom of the stack names it at the task's next switch (before: the
 * stack below was overwritten silently). */
static int chk_overflow_canary(void)
{
    fault_set_guards_off(2);
    weft_runtime *rt = weft_runtime_new(&(weft_options){.workers = 1, .stack_size = 64 * 1024});
    if (!rt)
        return 10;
    weft_runtime_block_on(rt, dipper, NULL);
    return 11; /* not reached */
}

#endif

/* Runs fn in a child with stderr in out; returns its wait status. */
static int fork_check(int (*fn)(void), int timeout_s, char *out, size_t cap)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        alarm((unsigned)timeout_s); /* a hang dies of SIGALRM */
        _exit(fn());
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(fds[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

/* Returns the number of checks that failed. */
static int fixed_checks(int timeout_s)
{
    int failed = 0;
    char out[2048];
    int st = fork_check(chk_short_address_space, timeout_s, out, sizeof out);
    bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    printf("%s stacks with address space for 8 of 64: %s\n%s", ok ? "ok  " : "FAIL",
           WIFSIGNALED(st) ? (WTERMSIG(st) == SIGALRM ? "hung" : "crashed") : "exited", ok ? "" : out);
    failed += !ok;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) /* they own SIGSEGV */
#if defined(HAVE_VALGRIND_VALGRIND_H)
    if (!RUNNING_ON_VALGRIND)
#endif
    {
        st = fork_check(chk_overflow_unguarded, timeout_s, out, sizeof out);
        ok = WIFSIGNALED(st) && (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGABRT) &&
             strstr(out, "stack overflow in task 'runaway'");
        printf("%s overflow without any guard page is named: %s", ok ? "ok  " : "FAIL",
               out[0] ? out : "(nothing on stderr)\n");
        failed += !ok;
        st = fork_check(chk_overflow_canary, timeout_s, out, sizeof out);
        ok = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT &&
             strstr(out, "stack overflow in task 'dipper'");
        printf("%s overflow that came back is caught by the canary: %s", ok ? "ok  " : "FAIL",
               out[0] ? out : "(nothing on stderr)\n");
        failed += !ok;
    }
#endif
    return failed;
}

/* ------------------------------------------------------------ process state */

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - (strcmp(path, "/proc/self/fd") == 0); /* the DIR's own fd */
}

static int n_threads(void) { return count_dir("/proc/self/task"); }
static int n_fds(void) { return count_dir("/proc/self/fd"); }

/* Detached pool threads may still be on their way out after
 * weft_runtime_free returned. */
static bool settle_threads(int want)
{
    for (int i = 0; i < 400; i++) {
        if (n_threads() <= want)
            return true;
        nap_ms(5);
    }
    return false;
}

/* The child: runs sc with the n-th call failing and reports on out. */
static void child_run(const struct scenario *sc, unsigned kinds, long n, int64_t burst_ns,
                      int out)
{
    long blocks0 = fault_live_blocks(), mapped0 = fault_live_mapped();
    int fds0 = n_fds(), threads0 = n_threads();
    fault_snapshot();
    fault_arm_burst(kinds, n, burst_ns);
    int rc = sc->fn();
    long calls = fault_calls();
    int inj = fault_injected();
    fault_disarm();
    if (!settle_threads(threads0))
        BAD("%d threads left, want %d", n_threads(), threads0);
    long blocks = fault_live_blocks(), mapped = fault_live_mapped();
    int fds = n_fds();
    if (blocks != blocks0)
        BAD("%ld heap blocks leaked (%ld bytes now live)", blocks - blocks0, fault_live_bytes());
    if (mapped != mapped0)
        BAD("%ld mapped bytes leaked", mapped - mapped0);
    if (fds != fds0)
        BAD("%d descriptors leaked", fds - fds0);
    if (!inj && rc != 0)
        BAD("returned %d (%s) with no failure injected", rc, weft_strerror(rc));
    dprintf(out, "R %d %ld %d %s %lx\n", inj, calls, rc, inj ? fault_injected_what() : "-",
            fault_exe_offset(fault_injected_caller()));
    if (atomic_flag_test_and_set(&bad_taken)) {
        dprintf(out, "B %s\n", bad_msg);
        if (blocks != blocks0)
            fault_report_new_blocks(out, 5);
    }
}

/* Every thread's stack of a hung child, through gdb if there is one. */
static void backtraces(pid_t pid, char *text, size_t *len, size_t cap)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "command -v gdb >/dev/null && timeout 60 gdb -q -batch -p %d "
             "-ex 'thread apply all bt 12' 2>/dev/null | grep '^#\\|^Thread'",
             (int)pid);
    FILE *f = popen(cmd, "r");
    if (!f)
        return;
    *len += (size_t)snprintf(text + *len, cap - *len, "stacks of the hung run:\n");
    char line[256];
    while (*len + 1 < cap && fgets(line, sizeof line, f))
        *len += (size_t)snprintf(text + *len, cap - *len, "  %s", line);
    pclose(f);
    if (*len >= cap)
        *len = cap - 1;
}

struct outcome {
    bool ok, injected, surfaced, timed_out;
    long calls;
    char what[32];
    unsigned long where;
    char text[16384];
};

/* Runs one child; false if it could not be run at all. */
static bool run_child(const struct scenario *sc, unsigned kinds, long n, int64_t burst_ns,
                      int timeout_s, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    int p[2];
    if (pipe(p) < 0)
        return false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        close(p[0]);
        alarm((unsigned)timeout_s + 5); /* backstop if the parent dies */
        fault_set_report_fd(p[1]);
        child_run(sc, kinds, n, burst_ns, p[1]);
        _exit(0);
    }
    close(p[1]);
    size_t len = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long left_ms = timeout_s * 1000L - ((t1.tv_sec - t0.tv_sec) * 1000L +
                                             (t1.tv_nsec - t0.tv_nsec) / 1000000L);
        if (left_ms <= 0) {
            o->timed_out = true;
            backtraces(pid, o->text, &len, sizeof o->text);
            kill(pid, SIGKILL);
            break;
        }
        int r = poll(&pf, 1, (int)left_ms);
        if (r <= 0)
            continue;
        ssize_t k = read(p[0], o->text + len, sizeof o->text - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
        if (len == sizeof o->text - 1)
            break;
    }
    o->text[len] = '\0';
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    int inj = 0, rc = 0;
    char what[32] = "-";
    const char *r = strncmp(o->text, "R ", 2) == 0 ? o->text : strstr(o->text, "\nR ");
    if (r && *r == '\n')
        r++;
    if (!r || sscanf(r, "R %d %ld %d %31s %lx", &inj, &o->calls, &rc, what, &o->where) < 5) {
        o->ok = false;
        if (o->timed_out)
            snprintf(o->text + len, sizeof o->text - len, "HANG: no answer within %d s\n",
                     timeout_s);
        else if (WIFSIGNALED(status))
            snprintf(o->text + len, sizeof o->text - len, "CRASH: killed by signal %d (%s)\n",
                     WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
            snprintf(o->text + len, sizeof o->text - len, "exit status %d, no report\n",
                     WEXITSTATUS(status));
        return true;
    }
    o->injected = inj != 0;
    o->surfaced = rc != 0;
    snprintf(o->what, sizeof o->what, "%s", what);
    o->ok = strstr(o->text, "\nB ") == NULL && !o->timed_out && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0;
    if (!o->ok && o->timed_out)
        snprintf(o->text + len, sizeof o->text - len, "HANG after the report\n");
    return true;
}

static long env_long(const char *name, long dflt)
{
    const char *s = getenv(name);
    return s && *s ? strtol(s, NULL, 10) : dflt;
}

/* Names the call sites (exe+0x...) quoted in a broken run's report. */
static void symbolize(const char *text)
{
    char offs[512] = "";
    size_t len = 0;
    for (const char *p = text; (p = strstr(p, "exe+0x")) != NULL;) {
        p += 4;
        unsigned long off = strtoul(p, NULL, 16);
        if (off && len + 24 < sizeof offs)
            len += (size_t)snprintf(offs + len, sizeof offs - len, " 0x%lx", off - 1);
    }
    if (!len)
        return;
    char cmd[768];
    snprintf(cmd, sizeof cmd,
             "command -v addr2line >/dev/null && addr2line -f -i -p -e /proc/%d/exe%s | "
             "sed 's/^/    at /'",
             (int)getpid(), offs);
    fflush(stdout);
    if (system(cmd) != 0)
        printf("    (addr2line not available)\n");
}

/* The library keeps a record per descriptor number for the whole process
 * (reactor/reactor.c): make one for the first few hundred numbers now, so
 * that a run that happens to use a higher number than the unharmed run
 * does not look like a leak. */
static int warm_fds_body(void *arg)
{
    (void)arg;
    int p[96][2], n = 0;
    for (; n < 96 && pipe2(p[n], O_CLOEXEC) == 0; n++) {
        char c = 'x';
        if (weft_write(p[n][1], &c, 1) != 1 || weft_read(p[n][0], &c, 1) != 1)
            BAD("warm-up I/O failed");
    }
    for (int i = 0; i < n; i++) {
        weft_close(p[i][0]);
        weft_close(p[i][1]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    bool verbose = false;
    long only_n = 0;
    const char *only[32];
    int n_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            verbose = true;
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            only_n = strtol(argv[++i], NULL, 10);
        else if (n_only < 32)
            only[n_only++] = argv[i];
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
#if defined(__SANITIZE_THREAD__)
    /* Fault injection looks for leaks, crashes and hangs on error paths,
     * which the plain, ASan and valgrind runs cover; under TSan thousands
     * of forked runs take many minutes and find no races. Skip (77). */
    if (!getenv("FAULT_UNDER_TSAN")) {
        printf("fault_test: skipped under ThreadSanitizer (FAULT_UNDER_TSAN=1 runs it)\n");
        return 77;
    }
#endif
    signal(SIGPIPE, SIG_IGN);
    /* The same number of workers wherever it runs (weft_run's default). */
    setenv("WEFT_WORKERS", "2", 1);
    long stride = 1;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    stride = 5;
#endif
#if defined(HAVE_VALGRIND_VALGRIND_H)
    if (RUNNING_ON_VALGRIND)
        stride = 10; /* about a second per run */
#endif
    stride = env_long("FAULT_STRIDE", stride);
    if (stride < 1)
        stride = 1;
    int timeout_s = (int)env_long("FAULT_TIMEOUT", 30);
    long max_points = env_long("FAULT_MAX_POINTS", 100000);
    unsigned kinds = FAULT_ALL;

    weft_runtime *wrt = weft_runtime_new(&(weft_options){.workers = 1});
    if (!wrt || weft_runtime_block_on(wrt, warm_fds_body, NULL) != 0) {
        printf("fault_test: warm-up failed\n");
        return 1;
    }
    weft_runtime_free(wrt);
    /* The threads the process has of its own once the runtime's are gone
     * (1, or 2 under ThreadSanitizer, which runs a background thread). */
    int base_threads = n_threads();
    for (int same = 0, i = 0; same < 10 && i < 400; i++) {
        nap_ms(5);
        int now = n_threads();
        same = now == base_threads ? same + 1 : 0;
        base_threads = now;
    }

    long total_runs = 0, total_points = 0, total_surfaced = 0;
    long total_broken = n_only ? 0 : fixed_checks(timeout_s);
    int n_modes = 0;
    printf("fault injection: the n-th heap/mmap/pthread_create/epoll/eventfd/guard call fails, "
           "n = 1, %s2, ... per scenario\n",
           stride > 1 ? "1+stride, ... (stride) instead of " : "");
    if (stride > 1)
        printf("stride %ld: every %ld-th failure point only\n", stride, stride);
    for (size_t s = 0; s < sizeof scenarios / sizeof scenarios[0]; s++) {
        const struct scenario *sc = &scenarios[s];
        bool want = n_only == 0;
        for (int i = 0; i < n_only; i++)
            want |= strcmp(only[i], sc->name) == 0;
        if (!want)
            continue;
        /* The unharmed run, in the parent: it counts the failure points and
         * warms what the library keeps for the whole process (the
         * descriptor registry), so that the children's leak check sees
         * only what their own run left. */
        fault_arm(kinds, 0);
        int rc = sc->fn();
        long points = fault_calls();
        fault_disarm();
        if (rc != 0 || atomic_flag_test_and_set(&bad_taken)) {
            printf("FAIL %s: the run without failures returned %d: %s\n", sc->name, rc, bad_msg);
            total_broken++;
            continue;
        }
        atomic_flag_clear(&bad_taken);
        if (!settle_threads(base_threads)) {
            printf("FAIL %s: threads left after the run without failures\n", sc->name);
            total_broken++;
            continue;
        }
        for (int mode = 0; mode < 2; mode++) {
            /* Mode 0: the n-th call fails alone. Mode 1: from the n-th
             * call on, every call fails for 20 ms (a burst of memory
             * exhaustion, after which the runtime must work again). */
            int64_t burst_ns = mode ? WEFT_MSEC(20) : 0;
            long runs = 0, broken = 0, surfaced = 0, absorbed = 0;
            char kinds_seen[256] = "";
            for (long n = only_n ? only_n : 1; n <= max_points; n += stride) {
                struct outcome o;
                if (!run_child(sc, kinds, n, burst_ns, timeout_s, &o)) {
                    perror("fault_test: fork/pipe");
                    return 1;
                }
                runs++;
                if (only_n) {
                    printf("%s %s n=%ld: %s\n%s", sc->name, mode ? "burst" : "one", n,
                           o.ok ? "ok" : "BROKEN", o.text);
                    symbolize(o.text);
                    break;
                }
                if (o.ok && !o.injected)
                    break; /* n is past the last failure point */
                if (!o.ok) {
                    broken++;
                    printf("BROKEN %s %s n=%ld: %s call failed at exe+0x%lx\n%s", sc->name,
                           mode ? "burst" : "one", n, o.what, o.where, o.text);
                    symbolize(o.text);
                } else if (o.surfaced) {
                    surfaced++;
                } else {
                    absorbed++;
                }
                if (o.injected && !strstr(kinds_seen, o.what) &&
                    strlen(kinds_seen) + strlen(o.what) + 2 < sizeof kinds_seen) {
                    strcat(kinds_seen, kinds_seen[0] ? "," : "");
                    strcat(kinds_seen, o.what);
                }
                if (verbose)
                    printf("  %s n=%ld: %s %s at exe+0x%lx -> %s\n", sc->name, n,
                           o.ok ? "ok" : "BROKEN", o.what, o.where,
                           o.surfaced ? "error returned" : "absorbed");
            }
            printf("%-9s %-5s %4ld points (%ld in the unharmed run) tried: %4ld surfaced as "
                   "errors, %3ld absorbed, %ld broken (%s)\n",
                   sc->name, mode ? "burst" : "one", surfaced + absorbed + broken, points,
                   surfaced, absorbed, broken, kinds_seen[0] ? kinds_seen : "-");
            total_runs += runs;
            total_points += surfaced + absorbed + broken;
            total_surfaced += surfaced;
            total_broken += broken;
            n_modes++;
        }
    }
    printf("total: %d scenario x mode sweeps, %ld failure points tried in %ld runs, %ld "
           "surfaced as errors, %ld broken\n",
           n_modes, total_points, total_runs, total_surfaced, total_broken);
    return total_broken ? 1 : 0;
}
