/* SPDX-License-Identifier: MIT */
/* weft_signal_wait: process signals handed to tasks. The handler only
 * records a delivery (a flag per signal) and writes a byte to a self-pipe;
 * an internal thread ("weft-signal") reads the pipe and hands each
 * recorded signal to every runtime that waited on it: the first matching
 * waiter of that runtime is woken with it, or, with none, the runtime
 * keeps it pending (one bit per signal). Process-wide state is under
 * life_lock (registration, the thread's start and stop) and g_lock (the
 * list of runtimes, the caught set; the thread takes only this one); each
 * runtime's waiters and pending bits under its own mu. Lock order:
 * life_lock, g_lock, sigrt.mu.
 *
 * Why a thread of its own: it is the one thread whose mask weft controls
 * whatever the program did, so it unblocks exactly the caught signals
 * (inside ppoll only, see signal_main), and a signal that every program
 * thread blocks (a mask set in main before the runtime, inherited by the
 * workers) is still delivered, to it. Unblocking
 * in the workers instead would change masks the program chose for threads
 * it thinks it knows, would need every worker to follow a generation
 * number at each loop turn, and would leave a signal undelivered while all
 * workers sleep in epoll with the old mask. signalfd was rejected too: it
 * only sees signals blocked in every thread, which weft cannot ensure for
 * the program's threads. The handler never runs weft code, so it may
 * interrupt any thread, a worker in the middle of a switch included. */
#define _GNU_SOURCE 1
#include "internal.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ctx/checker.h"
#include "sched/sched.h"
#include "sched/wait.h"
#include "util/list.h"

/* ThreadSanitizer runs a handler it deferred on whatever task fiber the
 * thread was in, and then takes the worker's own errno writes (same
 * thread, another fiber) for a race with the handler's restore of errno:
 * the handler's plain accesses go uninstrumented (its atomics stay). */
#ifdef WEFT__TSAN
#define WEFT__HANDLER_NO_TSAN __attribute__((no_sanitize("thread")))
#else
#define WEFT__HANDLER_NO_TSAN
#endif

_Static_assert(NSIG <= 65, "signal sets are kept as 64-bit masks");

static inline uint64_t sig_bit(int s) { return UINT64_C(1) << (s - 1); }

/* What one runtime knows about signals; made by its first wait, freed by
 * weft_runtime_free once its tasks have ended. */
struct sigrt {
    struct list link;     /* in g_rts; g_lock */
    uint64_t registered;  /* signals its tasks waited on; written under
                             life_lock and g_lock, read under either */
    pthread_mutex_t mu;   /* q and pending */
    struct list q;        /* waiting tasks' clauses, FIFO; data: their mask */
    uint64_t pending;     /* delivered, not yet returned by a wait */
};

static pthread_mutex_t life_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER; /* mask_seen moved */
static struct list g_rts = {&g_rts, &g_rts};  /* struct sigrt; g_lock */
static uint64_t g_caught;          /* weft's handler installed; g_lock */
static unsigned g_refs[NSIG];      /* runtimes registered per signal; g_lock */
static struct sigaction g_old[NSIG]; /* dispositions to restore; g_lock */
static uint64_t g_mask_gen;        /* bumped when g_caught loses signals; g_lock */
_Atomic unsigned weft__signal_gen; /* bumped when g_caught changes; written
                                      under g_lock (sched.h) */
static uint64_t g_mask_seen;       /* the generation the thread's mask follows; g_lock */
static bool g_running;             /* the thread runs (from the first caught
                                      signal to the last); life_lock */
static pthread_t g_thread;         /* life_lock */
/* The self-pipe. Never closed in the process that made it: a handler that
 * read the descriptor just before a close could write into whatever file
 * took the number next. Non-blocking both ends (a full pipe already means
 * a wake-up is due). */
static int g_pipe[2] = {-1, -1};
static atomic_int g_wake_fd = -1;  /* g_pipe[1] for the handler */
static atomic_uint g_hit[NSIG];    /* set by the handler, taken by the thread */
static atomic_bool g_quit;         /* tells the thread to return */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* ------------------------------------------------------------ handler */

WEFT__HANDLER_NO_TSAN static void on_signal(int sig, siginfo_t *info, void *uctx)
{
    (void)info;
    (void)uctx;
    int saved = errno;
    if (sig > 0 && sig < NSIG) {
        /* Release: the flag is published before the byte that makes the
         * thread look; pairs with the thread's acquire exchange. (The
         * write and read are system calls, which order them anyway.) */
        atomic_store_explicit(&g_hit[sig], 1, memory_order_release);
        int fd = atomic_load_explicit(&g_wake_fd, memory_order_relaxed);
        if (fd >= 0) {
            char c = 's';
            /* EAGAIN: a wake-up is due anyway. Under TSan the system call
             * itself: its write() interceptor would pair the descriptor
             * with pipe2 on the thread that made it, through no edge it
             * can see from a handler (it runs uninstrumented, above). */
#ifdef WEFT__TSAN
            long r = syscall(SYS_write, fd, &c, 1);
#else
            ssize_t r = write(fd, &c, 1);
#endif
            (void)r;
        }
    }
    errno = saved;
}

/* ------------------------------------------------------------ the thread */

static void wake_thread(void)
{
    char c = 'w';
    ssize_t r = write(g_pipe[1], &c, 1); /* EAGAIN: a wake-up is due anyway */
    (void)r;
}

/* Hands signal s to every runtime that waited on it; g_lock held. */
static void deliver_locked(int s)
{
    for (struct list *l = g_rts.next; l != &g_rts; l = l->next) {
        struct sigrt *sr = weft__container_of(l, struct sigrt, link);
        if (!(sr->registered & sig_bit(s)))
            continue;
        pthread_mutex_lock(&sr->mu);
        struct weft__clause *hit = NULL;
        for (struct list *m = sr->q.next; m != &sr->q; m = m->next) {
            struct weft__clause *cl = weft__container_of(m, struct weft__clause, link);
            if (*(const uint64_t *)cl->data & sig_bit(s)) {
                hit = cl;
                break;
            }
        }
        /* Sole clauses: the claim is ours under mu. */
        if (hit && weft__wait_claim(hit)) {
            weft__wait_hand(hit, s);
            weft__wait_wake(hit);
        }
        else
            sr->pending |= sig_bit(s);
        pthread_mutex_unlock(&sr->mu);
    }
}

static void *signal_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "weft-signal");
    for (;;) {
        pthread_mutex_lock(&g_lock);
        uint64_t want = g_caught;
        if (g_mask_seen < g_mask_gen) {
            /* Outside ppoll every signal is blocked here: from now on the
             * dropped ones stay so (weft__signal_runtime_stop waits). */
            g_mask_seen = g_mask_gen;
            pthread_cond_broadcast(&g_cond);
        }
        pthread_mutex_unlock(&g_lock);
        /* The thread runs with every signal blocked and unblocks the
         * caught ones only inside ppoll, atomically (the pselect idiom):
         * handlers run here only while it waits, never in the middle of a
         * pass below, so signals pending together are handed out in the
         * kernel's order (lowest number first) and a signal the program
         * blocks everywhere is taken only while weft catches it. ppoll
         * also suits sanitizers: a signal that arrives while a thread
         * sits in it is handled at once, not at a later synchronization. */
        sigset_t m;
        sigfillset(&m);
        for (int s = 1; s < NSIG; s++)
            if (want & sig_bit(s))
                sigdelset(&m, s);
        struct pollfd p = {.fd = g_pipe[0], .events = POLLIN};
        (void)ppoll(&p, 1, NULL, &m);
        char buf[64];
        while (read(g_pipe[0], buf, sizeof buf) > 0) {
        }
        /* Acquire: pairs with weft__signal_runtime_stop's release store. */
        if (atomic_load_explicit(&g_quit, memory_order_acquire))
            return NULL;
        pthread_mutex_lock(&g_lock);
        for (int s = 1; s < NSIG; s++)
            /* Acquire: pairs with the handler's release store. */
            if (atomic_exchange_explicit(&g_hit[s], 0, memory_order_acquire))
                deliver_locked(s);
        pthread_mutex_unlock(&g_lock);
    }
}

/* Starts the thread with every signal blocked (it unblocks the caught ones
 * itself); life_lock held. */
static int thread_start(void)
{
    if (g_pipe[0] < 0) {
        if (pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
            return -errno;
        atomic_store_explicit(&g_wake_fd, g_pipe[1], memory_order_relaxed);
    }
    atomic_store_explicit(&g_quit, false, memory_order_relaxed);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&g_thread, NULL, signal_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e)
        return -e;
    g_running = true;
    return 0;
}

/* ------------------------------------------------------------ fork */

static void atfork_prepare(void)
{
    pthread_mutex_lock(&life_lock);
    pthread_mutex_lock(&g_lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&g_lock);
    pthread_mutex_unlock(&life_lock);
}

/* The child has neither the thread nor the parent's runtimes' workers: it
 * gets the previous dispositions back and forgets every runtime (their
 * waiters and pending signals; the memory stays, as the runtimes' own).
 * The pipe is the parent's too: the child makes its own if it waits. */
static void atfork_child(void)
{
    pthread_mutex_init(&life_lock, NULL);
    pthread_mutex_init(&g_lock, NULL);
    pthread_cond_init(&g_cond, NULL);
    for (int s = 1; s < NSIG; s++) {
        if (g_caught & sig_bit(s))
            sigaction(s, &g_old[s], NULL);
        g_refs[s] = 0;
        atomic_store_explicit(&g_hit[s], 0, memory_order_relaxed);
    }
    while (!list_empty(&g_rts)) {
        struct sigrt *sr = weft__container_of(g_rts.next, struct sigrt, link);
        list_remove(&sr->link);
        list_init(&sr->link);
        sr->registered = 0;
    }
    g_caught = 0;
    g_running = false;
    atomic_store_explicit(&g_wake_fd, -1, memory_order_relaxed);
    if (g_pipe[0] >= 0) {
        close(g_pipe[0]);
        close(g_pipe[1]);
        g_pipe[0] = g_pipe[1] = -1;
    }
}

static void atfork_register(void)
{
    /* Without the handlers a child would keep weft's handler with nobody
     * to read its pipe; nothing else to do about a failure. */
    (void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* ------------------------------------------------------------ waits */

/* A signal weft_signal_wait refuses: see signals.h. */
static bool refused(int s, int dump)
{
    switch (s) {
    case SIGKILL:
    case SIGSTOP:
    case SIGSEGV: /* the stack-overflow handler (ctx/guard.c), sanitizers */
    case SIGBUS:  /* fault signals: recording one and returning */
    case SIGFPE:  /* re-runs the faulting instruction forever */
    case SIGILL:
        return true;
    default:
        /* 32 and 33: glibc's own (thread cancellation, setxid). */
        return s == dump || (s >= 32 && s < SIGRTMIN);
    }
}

static int set_to_mask(const sigset_t *set, uint64_t *out)
{
    if (!set)
        return -EINVAL;
    int dump = weft__dump_signal_number();
    uint64_t m = 0;
    for (int s = 1; s < NSIG; s++) {
        if (sigismember(set, s) != 1)
            continue;
        if (refused(s, dump))
            return -EINVAL;
        m |= sig_bit(s);
    }
    if (!m)
        return -EINVAL;
    *out = m;
    return 0;
}

/* g_caught changed: workers bring their masks up to date at their next
 * maintenance pass (weft__signal_worker_check); g_lock held. */
static void bump_gen_locked(void)
{
    /* Relaxed: workers only compare it; the sync reads g_caught under
     * g_lock, which orders the rest. */
    atomic_store_explicit(&weft__signal_gen,
                          atomic_load_explicit(&weft__signal_gen, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void weft__signal_worker_init(struct worker *w)
{
    pthread_sigmask(SIG_BLOCK, NULL, &w->sig_orig);
    w->sig_gen = 0;
    weft__signal_worker_check(w); /* a runtime made while others catch */
}

void weft__signal_worker_sync(struct worker *w)
{
    pthread_mutex_lock(&life_lock);
    struct sigrt *sr = w->rt->signals;
    uint64_t caught = sr ? sr->registered : 0;
    unsigned gen = atomic_load_explicit(&weft__signal_gen, memory_order_relaxed);
    pthread_mutex_unlock(&life_lock);
    /* The thread's own mask, with the signals its runtime waited on
     * unblocked: the handler only records a delivery and wakes the signal
     * thread, so it may run on a worker, and a signal aimed at this thread
     * (raise() from a task, pthread_kill) would otherwise stay pending
     * here for good when main blocked it before the runtime started. Only
     * this runtime's: they stay caught until its workers have ended
     * (weft_runtime_free stops the signals after joining them), so a
     * worker never meets a restored disposition with the signal
     * unblocked. */
    sigset_t m = w->sig_orig;
    for (int s = 1; s < NSIG; s++)
        if (caught & sig_bit(s))
            sigdelset(&m, s);
    pthread_sigmask(SIG_SETMASK, &m, NULL);
    w->sig_gen = gen;
}

/* Makes sure weft catches every signal of mask for rt: its record, the
 * handlers, the thread. Returns rt's record, or NULL and *rc. */
static struct sigrt *enroll(struct weft_runtime *rt, uint64_t mask, int *rc)
{
    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&life_lock);
    struct sigrt *sr = rt->signals;
    if (!sr) {
        sr = calloc(1, sizeof *sr);
        if (!sr) {
            *rc = -ENOMEM;
            goto fail;
        }
        if ((*rc = -pthread_mutex_init(&sr->mu, NULL)) < 0) {
            free(sr);
            sr = NULL;
            goto fail;
        }
        list_init(&sr->q);
        pthread_mutex_lock(&g_lock);
        list_push_back(&g_rts, &sr->link);
        pthread_mutex_unlock(&g_lock);
        rt->signals = sr;
    }
    uint64_t add = mask & ~sr->registered;
    if (add) {
        if (!g_running && (*rc = thread_start()) < 0) {
            sr = NULL;
            goto fail;
        }
        pthread_mutex_lock(&g_lock);
        for (int s = 1; s < NSIG; s++) {
            if (!(add & sig_bit(s)) || g_refs[s]++ > 0)
                continue;
            /* A handler still running when the signal was last given
             * back may have left a flag: not a delivery of this catch. */
            atomic_store_explicit(&g_hit[s], 0, memory_order_relaxed);
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_sigaction = on_signal;
            sa.sa_flags = SA_RESTART | SA_SIGINFO;
            sigemptyset(&sa.sa_mask);
            if (sigaction(s, &sa, &g_old[s]) < 0) {
                /* Cannot happen for a signal set_to_mask let through;
                 * undo this one and keep the ones before it. */
                *rc = -errno;
                g_refs[s]--;
                add &= sig_bit(s) - 1;
                sr->registered |= add;
                pthread_mutex_unlock(&g_lock);
                sr = NULL;
                goto fail;
            }
            g_caught |= sig_bit(s);
        }
        sr->registered |= add;
        bump_gen_locked();
        pthread_mutex_unlock(&g_lock);
        wake_thread(); /* to unblock the new ones */
    }
fail:
    pthread_mutex_unlock(&life_lock);
    return sr;
}

static void sig_lock(void *mu) { pthread_mutex_lock(mu); }
static void sig_unlock(void *mu) { pthread_mutex_unlock(mu); }

int weft_signal_wait(const sigset_t *set)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    uint64_t mask;
    int rc = set_to_mask(set, &mask);
    if (rc)
        return rc;
    /* Catching starts with the first wait, even one that returns at once
     * below: a program may wait under an expired deadline scope only to
     * have the signals caught (and kept pending) from here on. */
    struct sigrt *sr = enroll(self->rt, mask, &rc);
    if (!sr)
        return rc;
    /* This worker catches them from here on, also when aimed at it (a
     * raise() by this task right after); the others at their next pass. */
    weft__signal_worker_check(self->worker);
    /* A suspension point: a cancelled task gets -ECANCELED even when a
     * signal is pending (which stays pending). */
    if ((rc = weft__interrupted(self)))
        return rc;
    pthread_mutex_lock(&sr->mu);
    uint64_t ready = sr->pending & mask;
    if (ready) {
        int s = __builtin_ctzll(ready) + 1;
        sr->pending &= ~sig_bit(s);
        pthread_mutex_unlock(&sr->mu);
        return s;
    }
    struct weft__wait w;
    struct weft__clause cl;
    weft__wait_init(&w, self);
    weft__clause_init(&cl, &w, 0, &mask, true);
    weft__wait_enqueue(&sr->q, &cl);
    /* 0: the thread handed us a signal under mu (ours even if we were
     * cancelled meanwhile: it is not lost). Otherwise we left the queue
     * and took nothing. */
    rc = weft__wait_one(&w, &cl, sig_lock, sig_unlock, NULL, &sr->mu, INT64_MAX,
                        weft__why(WEFT__WK_SIGNAL), (uint64_t)(uintptr_t)&sr->mu);
    return rc ? rc : cl.result;
}

void weft__signal_runtime_stop(struct weft_runtime *rt)
{
    pthread_mutex_lock(&life_lock);
    struct sigrt *sr = rt->signals;
    if (!sr) {
        pthread_mutex_unlock(&life_lock);
        return;
    }
    rt->signals = NULL;
    uint64_t drop = 0;
    pthread_mutex_lock(&g_lock);
    list_remove(&sr->link);
    for (int s = 1; s < NSIG; s++)
        if ((sr->registered & sig_bit(s)) && --g_refs[s] == 0)
            drop |= sig_bit(s);
    g_caught &= ~drop;
    if (drop)
        bump_gen_locked();
    uint64_t gen = ++g_mask_gen;
    bool last = g_caught == 0 && g_running;
    pthread_mutex_unlock(&g_lock);
    if (drop) {
        /* First the thread blocks them again (or ends), then the old
         * dispositions come back: a signal the program blocks everywhere
         * must not meet the restored disposition in our thread. */
        if (last) {
            /* Release: pairs with the thread's acquire load. */
            atomic_store_explicit(&g_quit, true, memory_order_release);
            wake_thread();
            pthread_join(g_thread, NULL);
            g_running = false;
        } else {
            wake_thread();
            pthread_mutex_lock(&g_lock);
            while (g_running && g_mask_seen < gen)
                pthread_cond_wait(&g_cond, &g_lock);
            pthread_mutex_unlock(&g_lock);
        }
        pthread_mutex_lock(&g_lock);
        for (int s = 1; s < NSIG; s++)
            if (drop & sig_bit(s)) {
                sigaction(s, &g_old[s], NULL);
                atomic_store_explicit(&g_hit[s], 0, memory_order_relaxed);
            }
        pthread_mutex_unlock(&g_lock);
    }
    pthread_mutex_unlock(&life_lock);
    /* No task of rt is left to wait (runtime_free waited for them all,
     * or gave them up for good): nobody reaches sr any more. */
    pthread_mutex_destroy(&sr->mu);
    free(sr);
}
