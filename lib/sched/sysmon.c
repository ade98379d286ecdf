/* SPDX-License-Identifier: MIT */
/* The monitor; see sysmon.h. Why a monitor and not idle workers looking at
 * busy peers: that looking was a wake-up every 2 ms per sleeping worker
 * whenever any peer was busy (about 470 per second per worker measured at
 * 64 workers with one busy task), and a search that polled every busy
 * peer's epoll. The monitor is one thread whatever the number of workers,
 * asleep whenever every worker is, and it touches only awake workers,
 * found through the idle bitmap. See docs/design.md for its races. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "sched/run.h"
#include "sched/sysmon.h"
#include "util/clock.h"

struct seen {
    uint32_t tick, maint;         /* the worker's counters at our last look */
    int64_t tick_since, maint_since; /* when we first saw them so */
};

struct sysmon {
    struct weft_runtime *rt;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;          /* CLOCK_MONOTONIC */
    bool stop;                    /* under lock */
    /* True while the monitor sleeps until a worker wakes. Written under
     * lock; read unlocked by waking workers after a seq_cst fence (see
     * weft__sysmon_worker_wakes). */
    _Atomic bool deep;
    _Atomic uint64_t wakeups, rescued;
    struct seen *seen;            /* one per worker; the monitor's own */
};

/* Sleeps for ns, or until stopped. False once stopped. */
static bool nap(struct sysmon *m, int64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += ns;
    while (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&m->lock);
    while (!m->stop && pthread_cond_timedwait(&m->cond, &m->lock, &ts) == 0)
        ;
    bool go_on = !m->stop;
    pthread_mutex_unlock(&m->lock);
    return go_on;
}

/* Every worker sleeps: sleep until one wakes. False once stopped. */
static bool sleep_deep(struct sysmon *m)
{
    struct idle *idle = &m->rt->idle;
    pthread_mutex_lock(&m->lock);
    atomic_store_explicit(&m->deep, true, memory_order_relaxed);
    /* Pairs with the fence in weft__sysmon_worker_wakes: either that
     * worker sees deep set and signals us, or we see it awake here. */
    atomic_thread_fence(memory_order_seq_cst);
    while (!m->stop && atomic_load_explicit(&m->deep, memory_order_relaxed) &&
           weft__idle_awake(idle) == 0)
        pthread_cond_wait(&m->cond, &m->lock);
    atomic_store_explicit(&m->deep, false, memory_order_relaxed);
    bool go_on = !m->stop;
    pthread_mutex_unlock(&m->lock);
    return go_on;
}

void weft__sysmon_worker_wakes(struct sysmon *m)
{
    /* Pairs with the fence in sleep_deep (our wake-up was counted in
     * n_unparked before this fence, by weft__idle_sleep_end or by the
     * notifier). */
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&m->deep, memory_order_relaxed))
        return;
    pthread_mutex_lock(&m->lock);
    atomic_store_explicit(&m->deep, false, memory_order_relaxed);
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

/* Serves awake worker i if it is stuck: it has not switched (tick) or not
 * run its maintenance pass (n_maint) for WEFT__SYSMON_STUCK_NS. Returns
 * what it rescued, and lowers *wake to when it must look again: at the
 * worker's next timer, and within WEFT__SYSMON_IO_NS while it has
 * descriptors, for as long as it stays stuck. */
static unsigned serve(struct sysmon *m, unsigned i, int64_t now, int64_t *wake)
{
    struct weft_runtime *rt = m->rt;
    struct worker *v = &rt->workers[i];
    struct seen *s = &m->seen[i];
    uint32_t tick = atomic_load_explicit(&v->tick, memory_order_relaxed);
    uint32_t maint = atomic_load_explicit(&v->n_maint, memory_order_relaxed);
    if (tick != s->tick) {
        s->tick = tick;
        s->tick_since = now;
    }
    if (maint != s->maint) {
        s->maint = maint;
        s->maint_since = now;
    }
    unsigned got = 0;
    /* Not switching: the task in its next slot waits for nothing but the
     * running task. Take it (only the owner fills the slot, so an empty
     * one needs no exchange). Acquire: pairs with the release that
     * filled the slot (weft__schedule_on). */
    if (now - s->tick_since >= WEFT__SYSMON_STUCK_NS &&
        atomic_load_explicit(&v->next, memory_order_relaxed)) {
        struct weft_task *t = atomic_exchange_explicit(&v->next, NULL, memory_order_acquire);
        if (t) {
            weft__inject_push(&rt->inject, t);
            got++;
        }
    }
    if (now - s->maint_since < WEFT__SYSMON_STUCK_NS) {
        /* Healthy so far: look again when it would count as stuck, if
         * that comes before its next timer. */
        return got;
    }
    /* No maintenance pass: nobody fires its timers or polls its reactor.
     * Woken tasks go to the inject queue (this is not a worker). */
    int64_t next = weft__timer_next(&v->timers);
    if (next <= now) {
        struct wake_batch b = {NULL, NULL, 0};
        got += weft__timer_fire_due(&v->timers, now, true, weft__park_timer_fire, &b);
        weft__wake_batch_flush(NULL, &b); /* inject front, one wake-up */
        next = weft__timer_next(&v->timers);
    }
    if (next < *wake)
        *wake = next;
    if (atomic_load_explicit(&v->poller.n_sources, memory_order_relaxed)) {
        int n = weft__poller_wait(&v->poller, 0);
        if (n > 0)
            got += (unsigned)n;
        if (now + WEFT__SYSMON_IO_NS < *wake)
            *wake = now + WEFT__SYSMON_IO_NS;
    }
    return got;
}

static void *sysmon_main(void *arg)
{
    struct sysmon *m = arg;
    struct weft_runtime *rt = m->rt;
    int64_t delay = WEFT__SYSMON_MIN_NS, nap_ns = delay;
    while (nap(m, nap_ns)) {
        weft__count(&m->wakeups, 1, memory_order_relaxed);
        if (weft__idle_awake(&rt->idle) == 0) {
            if (delay < WEFT__SYSMON_MAX_NS) {
                delay = nap_ns = delay * 2 < WEFT__SYSMON_MAX_NS ? delay * 2 : WEFT__SYSMON_MAX_NS;
                continue;
            }
            if (!sleep_deep(m))
                break;
            /* What we saw before the sleep is stale. */
            int64_t now = weft__clock_ns();
            for (unsigned i = 0; i < rt->n_workers; i++)
                m->seen[i].tick_since = m->seen[i].maint_since = now;
            delay = nap_ns = WEFT__SYSMON_MIN_NS;
            continue;
        }
        int64_t now = weft__clock_ns();
        int64_t wake = INT64_MAX;
        unsigned got = 0;
        for (unsigned i = 0; i < rt->n_workers; i++)
            if (!weft__idle_is_sleeping(&rt->idle, i))
                got += serve(m, i, now, &wake);
        if (got) {
            weft__count(&m->rescued, got, memory_order_relaxed);
            weft__notify_parked(rt);
            delay = WEFT__SYSMON_MIN_NS;
        } else if (delay < WEFT__SYSMON_MAX_NS) {
            delay = delay * 2 < WEFT__SYSMON_MAX_NS ? delay * 2 : WEFT__SYSMON_MAX_NS;
        }
        /* A stuck worker's next timer or descriptors may call sooner. */
        nap_ns = delay;
        if (wake != INT64_MAX) {
            int64_t until = wake - weft__clock_ns();
            if (until < WEFT__SYSMON_MIN_WAKE_NS)
                until = WEFT__SYSMON_MIN_WAKE_NS;
            if (until < nap_ns)
                nap_ns = until;
        }
    }
    return NULL;
}

int weft__sysmon_start(struct weft_runtime *rt)
{
    rt->sysmon = NULL;
    if (rt->n_workers < 2)
        return 0;
    struct sysmon *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->seen = calloc(rt->n_workers, sizeof *m->seen);
    if (!m->seen) {
        free(m);
        return -ENOMEM;
    }
    m->rt = rt;
    atomic_init(&m->deep, false);
    atomic_init(&m->wakeups, 0);
    atomic_init(&m->rescued, 0);
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    int rc = -pthread_create(&m->thread, NULL, sysmon_main, m);
    if (rc < 0) {
        pthread_cond_destroy(&m->cond);
        pthread_mutex_destroy(&m->lock);
        free(m->seen);
        free(m);
        return rc;
    }
    rt->sysmon = m;
    return 0;
}

void weft__sysmon_stop(struct weft_runtime *rt)
{
    struct sysmon *m = rt->sysmon;
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->stop = true;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    free(m->seen);
    free(m);
    rt->sysmon = NULL;
}

void weft__sysmon_counts(struct weft_runtime *rt, struct weft__sysmon_counts *out)
{
    struct sysmon *m = rt->sysmon;
    out->wakeups = m ? atomic_load_explicit(&m->wakeups, memory_order_relaxed) : 0;
    out->rescued = m ? atomic_load_explicit(&m->rescued, memory_order_relaxed) : 0;
}
