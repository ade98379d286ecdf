/* SPDX-License-Identifier: MIT */
/* Runtime lifecycle: options, worker threads, block_on, shutdown. Start
 * order: stack pool, inject queue, workers (poller, timers), threads; stop
 * in reverse after every task has ended. */
#include "internal.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "ctx/guard.h"
#include "exec/pool.h"
#include "reactor/reactor.h"
#include "ctx/checker.h"
#include "sched/sched.h"
#include "sched/sysmon.h"
#include "util/clock.h"

#define WEFT__DEFAULT_STACK (256 * 1024)
#define WEFT__MIN_STACK (16 * 1024)
#define WEFT__MAX_STACK (64 * 1024 * 1024)
#define WEFT__DEFAULT_BLOCKING 64
#define WEFT__DEFAULT_BLOCKING_SHUTDOWN INT64_C(5000000000) /* 5 s */

void weft__panic(const char *file, int line, const char *what)
{
    fprintf(stderr, "weft: internal error at %s:%d: %s\n", file, line, what);
    abort();
}

/* Parses a decimal environment value in 1..max; 0 when unset. A value
 * that is not one (empty, not a number, out of range) is reported on
 * stderr, once per variable and process, and also gives 0: the default. */
static long env_long(const char *name, long max, atomic_bool *warned)
{
    const char *s = getenv(name);
    if (!s)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s && *end == '\0' && errno == 0 && v > 0 && v <= max)
        return v;
    if (!atomic_exchange_explicit(warned, true, memory_order_relaxed))
        fprintf(stderr, "weft: ignoring %s=\"%s\" (not an integer in 1..%ld): using the default\n",
                name, s, max);
    return 0;
}

static atomic_bool warned_workers, warned_slow;

/* WEFT_SLOW_TASK_MS in nanoseconds must fit an int64_t (and a long). */
#define SLOW_MS_MAX ((long)(INT64_MAX / 1000000 < LONG_MAX ? INT64_MAX / 1000000 : LONG_MAX))

static unsigned pick_workers(const weft_options *opt)
{
    if (opt && opt->workers)
        return opt->workers;
    long env = env_long("WEFT_WORKERS", WEFT_MAX_WORKERS, &warned_workers);
    if (env > 0)
        return (unsigned)env;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > WEFT_MAX_WORKERS ? WEFT_MAX_WORKERS : (unsigned)n;
}

static void runtime_release(struct weft_runtime *rt, unsigned n_init)
{
    weft__sysmon_stop(rt); /* it looks at the workers */
    if (rt->workers)
        weft__task_memory_release(rt);
    for (unsigned i = 0; i < n_init; i++) {
        /* Descriptors registered in this worker's epoll must not point at
         * it once it is gone (reactor/reactor.c). */
        weft__reactor_forget_poller(&rt->workers[i].poller);
        weft__worker_destroy(&rt->workers[i]);
    }
    if (rt->pool)
        weft__pool_free(rt->pool);
    weft__stack_pool_destroy(&rt->stacks);
    weft__inject_destroy(&rt->inject);
    weft__idle_destroy(&rt->idle);
    free(rt->workers);
    pthread_mutex_destroy(&rt->task_lock);
    pthread_mutex_destroy(&rt->close_lock);
    pthread_cond_destroy(&rt->close_cond);
    free(rt);
}

/* Run by the blocking-pool thread whose fn returned last, after
 * runtime_free gave up waiting for it (see weft_runtime_free). The
 * abandoned tasks never ran again: their memory goes with the rest. */
static void drop_life(struct weft_task *t, void *arg)
{
    (void)arg;
    if (!(atomic_load_explicit(&t->flags, memory_order_relaxed) & TASK_DONE))
        weft__task_unref(t);
}

static void release_abandoned(void *arg)
{
    struct weft_runtime *rt = arg;
    /* Every task that has not ended never will: drop the reference its
     * end would have dropped (its handle, if still held, keeps the struct
     * until runtime_release frees task memory wholesale). */
    weft__task_for_each(rt, drop_life, NULL);
    runtime_release(rt, rt->n_workers);
}

weft_runtime *weft_runtime_new(const weft_options *opt)
{
    if (opt && (opt->workers > WEFT_MAX_WORKERS ||
                (opt->stack_size &&
                 (opt->stack_size < WEFT__MIN_STACK || opt->stack_size > WEFT__MAX_STACK)) ||
                opt->blocking_threads > 4096)) {
        errno = EINVAL;
        return NULL;
    }
    /* Sanitizers install their own SIGSEGV handling; leave it to them. */
#if !defined(WEFT__ASAN) && !defined(WEFT__TSAN)
    if (weft__guard_install() < 0) {
        errno = EAGAIN;
        return NULL;
    }
#endif
    struct weft_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) {
        errno = ENOMEM;
        return NULL;
    }
    rt->n_workers = pick_workers(opt);
    size_t stack_size = opt && opt->stack_size ? opt->stack_size : WEFT__DEFAULT_STACK;
    rt->blocking_max = opt && opt->blocking_threads ? opt->blocking_threads
                                                     : WEFT__DEFAULT_BLOCKING;
    if (opt && opt->slow_task_ns > 0)
        rt->slow_task_ns = opt->slow_task_ns;
    else if (!opt || opt->slow_task_ns == 0)
        rt->slow_task_ns = env_long("WEFT_SLOW_TASK_MS", SLOW_MS_MAX, &warned_slow) * INT64_C(1000000);
    if (!opt || opt->blocking_shutdown_ns == 0)
        rt->blocking_shutdown_ns = WEFT__DEFAULT_BLOCKING_SHUTDOWN;
    else
        rt->blocking_shutdown_ns = opt->blocking_shutdown_ns < 0 ? INT64_MAX
                                                                : opt->blocking_shutdown_ns;
    atomic_init(&rt->next_id, 1);
    atomic_init(&rt->shutdown, false);
    atomic_init(&rt->closing, false);
    atomic_init(&rt->n_spawned_ext, 0);
    spin_init(&rt->name_lock);
    pthread_mutex_init(&rt->task_lock, NULL);
    pthread_mutex_init(&rt->close_lock, NULL);
    pthread_cond_init(&rt->close_cond, NULL);

    int rc = -ENOMEM;
    unsigned n_init = 0;
    if (weft__stack_pool_init(&rt->stacks, stack_size) < 0 || weft__inject_init(&rt->inject) < 0)
        goto fail;
    rt->workers = aligned_alloc(WEFT__CACHELINE, rt->n_workers * sizeof *rt->workers);
    /* Zeroed before anything can fail: runtime_release walks the workers'
     * task caches whenever rt->workers is set. */
    if (rt->workers)
        memset(rt->workers, 0, rt->n_workers * sizeof *rt->workers);
    if (!rt->workers || weft__idle_init(&rt->idle, rt->n_workers) < 0)
        goto fail;
    rt->pool = weft__pool_new(rt->blocking_max);
    if (!rt->pool)
        goto fail;
    for (; n_init < rt->n_workers; n_init++)
        if ((rc = weft__worker_init(rt, &rt->workers[n_init], n_init)) < 0)
            goto fail;
    /* Before the workers: they tell it when they wake. */
    if ((rc = weft__sysmon_start(rt)) < 0)
        goto fail;
    unsigned started = 0;
    for (; started < rt->n_workers; started++) {
        struct worker *w = &rt->workers[started];
        if ((rc = -pthread_create(&w->thread, NULL, weft__worker_main, w)) < 0)
            break;
    }
    if (started < rt->n_workers) {
        /* Release: pairs with the workers' acquire loads of shutdown
         * (worker.c: park_worker, the run loop). */
        atomic_store_explicit(&rt->shutdown, true, memory_order_release);
        weft__workers_wake_all(rt);
        for (unsigned i = 0; i < started; i++)
            pthread_join(rt->workers[i].thread, NULL);
        goto fail;
    }
    /* The slow-task monitor is a diagnostic: without its thread the
     * workers still warn at the end of a slow stretch. */
    weft__monitor_start(rt);
    /* Likewise the dump signal (WEFT_DUMP_SIGNAL). */
    weft__dump_signal_start(rt);
    return rt;
fail:
    runtime_release(rt, n_init);
    errno = -rc;
    return NULL;
}

bool weft__runtime_hold(struct weft_runtime *rt, bool live)
{
    pthread_mutex_lock(&rt->close_lock);
    bool ok = !rt->sealed && !(live && atomic_load_explicit(&rt->closing, memory_order_relaxed));
    if (ok)
        rt->n_holds++;
    pthread_mutex_unlock(&rt->close_lock);
    return ok;
}

void weft__runtime_unhold(struct weft_runtime *rt)
{
    pthread_mutex_lock(&rt->close_lock);
    if (--rt->n_holds == 0 && atomic_load_explicit(&rt->closing, memory_order_relaxed))
        pthread_cond_broadcast(&rt->close_cond);
    pthread_mutex_unlock(&rt->close_lock);
}

int weft_runtime_block_on(weft_runtime *rt, weft_fn fn, void *arg)
{
    if (weft__worker_self())
        return -EPERM;
    if (!rt || !fn)
        return -EINVAL;
    /* The hold keeps runtime_free from releasing t's memory while this
     * thread, woken, still reads t's status and drops its handle. Taken
     * under close_lock, which orders it against runtime_free's setting
     * of closing: either we see closing, or it sees our hold. */
    if (!weft__runtime_hold(rt, true))
        return -ECANCELED;
    struct weft_task *t = weft__task_spawn(rt, fn, arg);
    if (!t) {
        int rc = -errno;
        weft__runtime_unhold(rt);
        return rc;
    }
    /* The thread joins t as a task would: a wait record with no task
     * blocks the thread on a futex (sched/wait.h). */
    struct weft__wait w;
    struct weft__clause cl;
    weft__wait_init(&w, NULL);
    weft__clause_init(&cl, &w, 0, NULL, true);
    if (weft__task_join_enqueue(t, &cl) == 1)
        (void)weft__wait_block(&w, NULL, NULL, INT64_MAX, 0, 0);
    /* Acquire: pairs with weft__task_finish's acq_rel exchange of joiner,
     * which publishes status. */
    WEFT__ASSERT(weft__task_ended(t));
    int status = t->status;
    weft__task_unref(t);
    weft__runtime_unhold(rt);
    return status;
}

void weft_runtime_free(weft_runtime *rt)
{
    if (!rt)
        return;
    if (weft__worker_self()) {
        errno = EPERM;
        return;
    }
    weft__dump_signal_stop(rt); /* no dump of rt from here on */
    int64_t give_up = rt->blocking_shutdown_ns == INT64_MAX
                          ? INT64_MAX
                          : weft__clock_ns() + rt->blocking_shutdown_ns;
    /* Under close_lock: a hold (weft__runtime_hold) taken after this
     * sees closing. Pairs with the acquire loads of closing in spawn and
     * weft__task_finish (task.c) and prepare_first_run (switch.c); kept
     * seq_cst, as written (that release would do is not shown). */
    pthread_mutex_lock(&rt->close_lock);
    atomic_store_explicit(&rt->closing, true, memory_order_seq_cst);
    pthread_mutex_unlock(&rt->close_lock);
    weft__task_cancel_all(rt);
    uint64_t walked_at = weft__task_spawned_count(rt);
    unsigned rounds = 0;
    /* Blocking jobs not yet started are dropped (their callers get
     * -ECANCELED); running ones are waited for, up to give_up. */
    weft__pool_shutdown(rt->pool);
    bool abandoned = false;
    pthread_mutex_lock(&rt->close_lock);
    /* Every task must have ended, and every hold be dropped: a thread
     * woken in block_on, or a task of another runtime woken in a join,
     * still reads the task struct and drops its handle. */
    while (weft__task_live_count(rt) > 0 || rt->n_holds > 0) {
        if (weft__clock_ns() >= give_up && weft__pool_abandon(rt->pool)) {
            abandoned = true;
            break;
        }
        /* Tasks spawned during the shutdown start out cancelled, and each
         * round cancels what a spawn racing with the first walk let
         * through; the timed wait is also a safety net against a missed
         * broadcast (weft__task_finish). */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        /* A walk reads every task struct ever carved: again only when
         * tasks were spawned since the last, or once a second (a spawn's
         * count may become visible after its task did). */
        if (pthread_cond_timedwait(&rt->close_cond, &rt->close_lock, &ts) == ETIMEDOUT &&
            (weft__task_spawned_count(rt) != walked_at || ++rounds % 20 == 0)) {
            pthread_mutex_unlock(&rt->close_lock);
            walked_at = weft__task_spawned_count(rt);
            weft__task_cancel_all(rt);
            pthread_mutex_lock(&rt->close_lock);
        }
    }
    rt->sealed = true; /* holds are refused from now on */
    pthread_mutex_unlock(&rt->close_lock);
    /* Pairs with the workers' acquire loads of shutdown (worker.c): they
     * see everything above before they exit. Kept seq_cst, as written
     * (that release would do is not shown). */
    atomic_store_explicit(&rt->shutdown, true, memory_order_seq_cst);
    weft__workers_wake_all(rt);
    for (unsigned i = 0; i < rt->n_workers; i++)
        pthread_join(rt->workers[i].thread, NULL);
    /* No task waits on a signal any more (or ever will run again), and
     * no worker that unblocked rt's signals is left (signal.c). */
    weft__signal_runtime_stop(rt);
    weft__sysmon_stop(rt);
    weft__monitor_stop(rt);
    if (abandoned) {
        /* Some fn still runs, for a task that now never resumes; its
         * stack (and arg, maybe) must stay mapped until fn returns. */
        struct exec_pool *pool = rt->pool;
        rt->pool = NULL;
        weft__pool_disown(pool, release_abandoned, rt);
        return;
    }
    runtime_release(rt, rt->n_workers);
}

int weft_run(weft_fn main_fn, void *arg)
{
    if (weft__worker_self())
        return -EPERM;
    if (!main_fn)
        return -EINVAL;
    weft_runtime *rt = weft_runtime_new(NULL);
    if (!rt)
        return -errno;
    int rc = weft_runtime_block_on(rt, main_fn, arg);
    weft_runtime_free(rt);
    return rc;
}

weft_task *weft_spawn_on(weft_runtime *rt, weft_fn fn, void *arg)
{
    if (!rt || !fn) {
        errno = EINVAL;
        return NULL;
    }
    return weft__task_spawn(rt, fn, arg);
}

weft_runtime *weft_runtime_current(void)
{
    struct weft_task *self = weft__task_self();
    /* On a pool thread: the runtime whose weft_run_blocking fn it runs. */
    return self ? self->rt : weft__pool_job_runtime();
}

unsigned weft_runtime_workers(const weft_runtime *rt) { return rt ? rt->n_workers : 0; }
