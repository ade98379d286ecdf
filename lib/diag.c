/* SPDX-License-Identifier: MIT */
/* Seeing inside a runtime: weft_runtime_stats and the slow-task monitor
 * thread (started only when a threshold is set) that
 * reports a task holding its worker too long while it still runs. Stats
 * run on any thread; they read the workers' counters, never stopping the
 * workers. Task dumps are in diag/dump.c. */
#include "internal.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "exec/pool.h"
#include "sched/sched.h"
#include "sched/sysmon.h"
#include "util/clock.h"

/* ------------------------------------------------------------ stats */

static uint64_t load_counter(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

int weft_runtime_stats(weft_runtime *rt, weft_stats *out)
{
    if (!rt || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->n_workers = rt->n_workers;
    /* Each counter is read on its own: the snapshot is not atomic as a
     * whole, and queue depths are approximate by nature. */
    for (unsigned i = 0; i < rt->n_workers && i < WEFT_MAX_WORKERS; i++) {
        struct worker *w = &rt->workers[i];
        weft_worker_stats *ws = &out->worker[i];
        ws->tasks_run = load_counter(&w->n_run);
        ws->steals = load_counter(&w->n_steals);
        ws->parks = load_counter(&w->n_parks);
        ws->reactor_polls = load_counter(&w->n_polls);
        ws->queue_depth = weft__deque_len(&w->q) +
                          (atomic_load_explicit(&w->next, memory_order_relaxed) != NULL);
        out->timers_armed += weft__timer_count(&w->timers);
    }
    out->tasks_live = weft__task_live_count(rt);
    out->tasks_spawned = weft__task_spawned_count(rt);
    out->inject_depth = weft__inject_len(&rt->inject);
    unsigned long queued;
    weft__pool_counts(rt->pool, &out->blocking_threads, &out->blocking_busy, &out->blocking_idle,
                      &queued);
    out->blocking_queued = queued;
    struct weft__sysmon_counts mc;
    weft__sysmon_counts(rt, &mc);
    out->monitor_wakeups = mc.wakeups;
    out->monitor_rescued = mc.rescued;
    return 0;
}

/* ------------------------------------------------------------ slow tasks */

/* The monitor thread. It wakes every quarter of the threshold (1 ms ..
 * 50 ms), reads each worker's run stretch (a seqlock the worker writes in
 * mark_running / switch_out, see sched.h), and warns once about a stretch
 * that has lasted longer than the threshold. The worker warns itself at
 * the end of a stretch the monitor missed; slow_warned (an exchange on
 * both sides) makes that exactly one line per stretch. */
struct slow_monitor {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* stop requested */
    bool stop;
    int64_t period_ns;
};

void weft__slow_report(struct weft_runtime *rt, unsigned worker, uint64_t id, const char *name,
                       int64_t ran_ns, bool still_running)
{
    char who[64];
    if (name[0])
        snprintf(who, sizeof who, "'%s' (id %llu)", name, (unsigned long long)id);
    else
        snprintf(who, sizeof who, "id %llu", (unsigned long long)id);
    (void)rt;
    /* One fprintf: stderr is unbuffered, so the line is one write. */
    fprintf(stderr, "weft: slow task %s %s %.1f ms without suspending (worker %u)\n", who,
            still_running ? "has run" : "ran", (double)ran_ns / 1e6, worker);
}

static void check_worker(struct weft_runtime *rt, struct worker *w, int64_t now)
{
    /* Seqlock read: acquire load of an odd (running) sequence, the fields,
     * an acquire fence, and the sequence again; pairs with the release
     * fence and release store of stretch_begin. */
    uint64_t s1 = atomic_load_explicit(&w->stretch_seq, memory_order_acquire);
    if (!(s1 & 1) || atomic_load_explicit(&w->slow_warned, memory_order_relaxed) == s1)
        return;
    int64_t start = atomic_load_explicit(&w->stretch_start, memory_order_relaxed);
    struct weft_task *t = atomic_load_explicit(&w->stretch_task, memory_order_relaxed);
    /* Acquire fence: the relaxed field loads above happen before the
     * sequence re-read; pairs with stretch_begin's release fence. */
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&w->stretch_seq, memory_order_relaxed) != s1)
        return;
    int64_t ran = now - start;
    if (ran < rt->slow_task_ns)
        return;
    /* t may end (and its struct be freed, and reused) at any moment; the
     * memory stays a task struct (weft__task_tryref). With a reference
     * held, a sequence still equal to s1 proves the struct is still the
     * stretch's task: the worker ends the stretch (new sequence) before
     * the task can end. */
    if (!weft__task_tryref(t))
        return;
    char name[WEFT__TASK_NAME];
    uint64_t id = t->id;
    weft__task_copy_name(t, name);
    bool alive = atomic_load_explicit(&w->stretch_seq, memory_order_relaxed) == s1;
    weft__task_unref(t);
    if (!alive)
        return;
    if (atomic_exchange_explicit(&w->slow_warned, s1, memory_order_relaxed) == s1)
        return; /* the worker warned first */
    weft__slow_report(rt, w->index, id, name, ran, true);
}

static void *monitor_main(void *arg)
{
    struct weft_runtime *rt = arg;
    struct slow_monitor *m = rt->monitor;
    pthread_setname_np(pthread_self(), "weft-monitor");
    pthread_mutex_lock(&m->lock);
    while (!m->stop) {
        int64_t wake = weft__clock_ns() + m->period_ns;
        struct timespec ts = {.tv_sec = wake / 1000000000, .tv_nsec = wake % 1000000000};
        pthread_cond_timedwait(&m->cond, &m->lock, &ts);
        if (m->stop)
            break;
        pthread_mutex_unlock(&m->lock);
        int64_t now = weft__clock_ns();
        for (unsigned i = 0; i < rt->n_workers; i++)
            check_worker(rt, &rt->workers[i], now);
        pthread_mutex_lock(&m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

int weft__monitor_start(struct weft_runtime *rt)
{
    if (rt->slow_task_ns <= 0)
        return 0;
    struct slow_monitor *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    int64_t period = rt->slow_task_ns / 4;
    if (period < 1000000)
        period = 1000000;
    if (period > 50000000)
        period = 50000000;
    m->period_ns = period;
    rt->monitor = m;
    int rc = pthread_create(&m->thread, NULL, monitor_main, rt);
    if (rc) {
        rt->monitor = NULL;
        pthread_cond_destroy(&m->cond);
        pthread_mutex_destroy(&m->lock);
        free(m);
        return -rc;
    }
    return 0;
}

void weft__monitor_stop(struct weft_runtime *rt)
{
    struct slow_monitor *m = rt->monitor;
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->stop = true;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    free(m);
    rt->monitor = NULL;
}
