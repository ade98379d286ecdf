/* SPDX-License-Identifier: MIT */
/* Blocking pool. One mutex guards the queue, the idle threads and the
 * counters; submitting tasks, pool threads and runtime_free touch it.
 *
 * Who runs a new job. A sleeping thread costs a futex wake-up and a
 * context switch to start, which is most of the price of a short job, so a
 * job is only queued (no wake-up) while the queue is seen to move: an idle
 * thread is polling it, or a thread is running a job and some job returned
 * less than WEFT__POOL_LAZY_NS ago. Otherwise a sleeping thread gets the
 * job handed over, or a thread is started below the ceiling. A queued job
 * whose queue stops moving is rescued by its own task: it parks with a
 * deadline WEFT__POOL_LAZY_NS ahead and, when that passes with the job
 * still queued and no job returned meanwhile, wakes or starts a thread
 * (while the queue keeps moving it looks again, less and less often). So
 * a job waits little longer than WEFT__POOL_LAZY_NS behind jobs that
 * block, and short jobs stream through the threads already awake. At the
 * ceiling with every thread busy nothing can help and nobody looks.
 *
 * Completion is lock-free: the pool thread stores the final state, claims
 * the job's wait clause and wakes it (sched/wait.h), and never touches the
 * job again once that wake is done; the task does not return (and free
 * the job on its stack, perhaps the task itself) before. */
#include "internal.h"

#include <time.h>

#include "exec/pool.h"
#include "sched/sched.h"
#include "sched/wait.h"
#include "util/clock.h"
#include "util/spin.h"

#define WEFT__KEEPALIVE_NS INT64_C(10000000000) /* idle threads exit after 10 s */
#define WEFT__POOL_SPIN_NS 20000                 /* an idle thread polls 20 us */
#define WEFT__POOL_LAZY_NS 100000                /* a stalled queue is rescued after 100 us */
#define WEFT__POOL_LOOK_MAX_NS 10000000          /* longest wait between two looks */

/* A pool thread; lives on its own stack. */
struct pool_thread {
    struct list link;    /* in p->sleepers while it sleeps */
    pthread_cond_t cond; /* signalled with a job, or at shutdown */
    struct job *job;     /* handed over by a submitter (under the lock) */
};

static void *pool_main(void *arg);

struct exec_pool *weft__pool_new(unsigned max_threads)
{
    struct exec_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->gone, NULL);
    list_init(&p->sleepers);
    atomic_init(&p->n_queued, 0);
    atomic_init(&p->abandoned, false);
    p->max = max_threads;
    p->keepalive_ns = WEFT__KEEPALIVE_NS;
    return p;
}

static void pool_destroy(struct exec_pool *p)
{
    pthread_cond_destroy(&p->gone);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static void queue_add_locked(struct exec_pool *p, struct job *j)
{
    j->next = NULL;
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    atomic_store_explicit(&p->n_queued, atomic_load_explicit(&p->n_queued, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Takes a queued job out of the queue. */
static void queue_remove_locked(struct exec_pool *p, struct job *j)
{
    struct job **pp = &p->head, *prev = NULL;
    while (*pp != j) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = j->next;
    if (p->tail == j)
        p->tail = prev;
    atomic_store_explicit(&p->n_queued, atomic_load_explicit(&p->n_queued, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}

/* Marks j as started by a pool thread. */
static void start_locked(struct exec_pool *p, struct job *j)
{
    atomic_store_explicit(&j->state, JOB_RUNNING, memory_order_relaxed);
    p->n_busy++;
}

/* Hands j (not queued) to the most recently idle sleeping thread, if any. */
static bool hand_over_locked(struct exec_pool *p, struct job *j)
{
    struct list *l = list_pop_front(&p->sleepers);
    if (!l)
        return false;
    struct pool_thread *th = weft__container_of(l, struct pool_thread, link);
    p->n_idle--;
    start_locked(p, j);
    th->job = j;
    pthread_cond_signal(&th->cond);
    return true;
}

/* Starts one more thread if below the ceiling; it takes the queue's head. */
static bool grow_locked(struct exec_pool *p)
{
    if (p->n_threads >= p->max)
        return false;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    bool ok = pthread_create(&th, &a, pool_main, p) == 0;
    pthread_attr_destroy(&a);
    if (ok) {
        p->n_threads++;
        p->n_starting++;
    }
    return ok;
}

/* Is the queue moving without help? `extra` jobs not yet queued are to be
 * counted in: a thread that is still starting will take a queued job, so
 * while there are at least as many of them as jobs, nobody needs another
 * (thread creation can take longer than WEFT__POOL_LAZY_NS, and each look
 * would otherwise start one more). */
static bool queue_moves_locked(struct exec_pool *p, int64_t now, unsigned extra)
{
    return p->has_spinner ||
           p->n_starting >= atomic_load_explicit(&p->n_queued, memory_order_relaxed) + extra ||
           (p->n_busy > 0 && now - p->last_finish < WEFT__POOL_LAZY_NS);
}

/* Reports the end of a job to its task: see the file comment. */
static void finish_job(struct job *j, int final)
{
    /* Relaxed: published with status and fn's writes by the wake's done
     * (release), which the task reads (acquire) before the state. */
    atomic_store_explicit(&j->state, final, memory_order_relaxed);
    weft__wait_claim(&j->cl); /* sole: nobody else completes a job */
    j->cl.queued = false;
    j->cl.result = final;
    /* The job is not ours after this. */
    weft__wait_wake(&j->cl);
}

/* The submitting runtime, for weft_runtime_current() inside fn. */
static _Thread_local weft_runtime *job_runtime;

weft_runtime *weft__pool_job_runtime(void)
{
    return job_runtime;
}

static void run_job(struct exec_pool *p, struct job *j)
{
    job_runtime = j->w.task->rt;
    j->status = j->fn(j->arg);
    job_runtime = NULL;
    /* acq_rel: against the task's CAS in weft__pool_run_ex; from here on
     * on_cancel is not called (if the task won, it is calling it: fine,
     * it does not return before on_cancel has). */
    if (j->on_cancel)
        (void)atomic_exchange_explicit(&j->cancel, CANCEL_RETURNED, memory_order_acq_rel);
    /* Abandoned by runtime_free: the task will never run again and its
     * runtime is being torn down; wake nobody. (A stale false is harmless:
     * the runtime is freed only after this thread has exited.) */
    if (atomic_load_explicit(&p->abandoned, memory_order_relaxed))
        return;
    finish_job(j, JOB_DONE);
}

/* An idle thread: polls the queue for a while when no other thread does,
 * then sleeps on its own condition variable until a job is handed over,
 * shutdown, or the keep-alive passes. Lock held on entry and exit.
 * Returns a job it now runs, or NULL with *quit set when the thread should
 * exit (NULL without it: look at the queue again). */
static struct job *wait_idle(struct exec_pool *p, struct pool_thread *self, bool *quit)
{
    if (!p->has_spinner) {
        p->has_spinner = true;
        p->n_idle++;
        pthread_mutex_unlock(&p->lock);
        int64_t end = weft__clock_ns() + WEFT__POOL_SPIN_NS;
        unsigned i = 0;
        while (atomic_load_explicit(&p->n_queued, memory_order_relaxed) == 0) {
            weft__cpu_relax();
            if ((++i & 31) == 0 && weft__clock_ns() >= end)
                break;
        }
        pthread_mutex_lock(&p->lock);
        p->has_spinner = false;
        p->n_idle--;
        if (p->head || p->shutdown)
            return NULL; /* the caller takes it, or quits */
    }
    int64_t deadline = weft__clock_ns() + p->keepalive_ns;
    struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
    bool timed_out = false;
    self->job = NULL;
    p->n_idle++;
    list_insert_before(p->sleepers.next, &self->link); /* most recent first */
    while (!self->job && !p->shutdown && !timed_out)
        timed_out = pthread_cond_timedwait(&self->cond, &p->lock, &ts) == ETIMEDOUT;
    if (self->job)
        return self->job; /* the submitter took us off the list */
    list_remove(&self->link);
    p->n_idle--;
    *quit = p->shutdown || (timed_out && !p->head);
    return NULL;
}

static void *pool_main(void *arg)
{
    struct exec_pool *p = arg;
    pthread_setname_np(pthread_self(), "weft-blocking"); /* for ps, gdb, tests */
    struct pool_thread self;
    list_init(&self.link);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&self.cond, &ca);
    pthread_condattr_destroy(&ca);
    self.job = NULL;

    pthread_mutex_lock(&p->lock);
    p->n_starting--;
    for (;;) {
        struct job *j = p->head;
        if (j) {
            queue_remove_locked(p, j);
            start_locked(p, j);
        } else {
            if (p->shutdown)
                break;
            bool quit = false;
            j = wait_idle(p, &self, &quit);
            if (quit)
                break;
            if (!j)
                continue;
        }
        pthread_mutex_unlock(&p->lock);
        run_job(p, j);
        int64_t now = weft__clock_ns();
        pthread_mutex_lock(&p->lock);
        p->n_busy--;
        p->last_finish = now;
    }
    bool last = --p->n_threads == 0;
    /* Set only by weft__pool_disown, under the lock. */
    void (*done)(void *) = last ? p->on_last_exit : NULL;
    void *done_arg = p->on_last_exit_arg;
    if (!done)
        pthread_cond_broadcast(&p->gone);
    pthread_mutex_unlock(&p->lock);
    pthread_cond_destroy(&self.cond);
    if (done) {
        /* Disowned and last: nobody else refers to p any more. */
        done(done_arg);
        pool_destroy(p);
    }
    return NULL;
}

/* Can a queued job get another thread than the busy ones? */
static bool can_help_locked(struct exec_pool *p)
{
    return !list_empty(&p->sleepers) || p->n_threads < p->max;
}

/* Called by the task of the queued job j when its look-again deadline
 * passes: if the queue has stopped moving, gets j a thread. Returns when
 * to look again (INT64_MAX: no need). *wait_ns, the time between looks,
 * doubles while the queue moves (up to WEFT__POOL_LOOK_MAX_NS), so that a
 * long queue of short jobs costs few wake-ups. */
static int64_t rescue(struct exec_pool *p, struct job *j, int64_t *wait_ns)
{
    int64_t now = weft__clock_ns();
    int64_t again = INT64_MAX;
    pthread_mutex_lock(&p->lock);
    if (atomic_load_explicit(&j->state, memory_order_relaxed) != JOB_QUEUED || p->shutdown ||
        !can_help_locked(p)) {
        /* Started meanwhile, or about to be dropped; or at the ceiling with
         * every thread busy: those take the queue in order as their jobs
         * return, and nothing else can help. */
    } else if (queue_moves_locked(p, now, 0)) {
        if (*wait_ns < WEFT__POOL_LOOK_MAX_NS)
            *wait_ns *= 2;
        again = now + *wait_ns;
    } else if (!list_empty(&p->sleepers)) {
        queue_remove_locked(p, j);
        hand_over_locked(p, j);
    } else if (grow_locked(p)) {
        again = now + WEFT__POOL_LAZY_NS; /* it takes the head; maybe not j */
    }
    pthread_mutex_unlock(&p->lock);
    return again;
}

int weft__pool_run(struct exec_pool *p, struct weft_task *self, weft_fn fn, void *arg)
{
    return weft__pool_run_ex(p, self, fn, arg, NULL);
}

int weft__pool_run_ex(struct exec_pool *p, struct weft_task *self, weft_fn fn, void *arg,
                      void (*on_cancel)(void *))
{
    struct job j = {.next = NULL, .fn = fn, .arg = arg, .on_cancel = on_cancel, .status = 0};
    atomic_init(&j.state, JOB_QUEUED);
    weft__wait_init(&j.w, self);
    weft__clause_init(&j.cl, &j.w, 0, NULL, true);
    atomic_init(&j.cancel, CANCEL_NONE);
    int64_t now = weft__clock_ns();
    int64_t look_again = INT64_MAX; /* rescue deadline while queued lazily */
    pthread_mutex_lock(&p->lock);
    if (p->shutdown) {
        pthread_mutex_unlock(&p->lock);
        return -ECANCELED;
    }
    if (queue_moves_locked(p, now, 1)) {
        queue_add_locked(p, &j);
    } else if (!hand_over_locked(p, &j)) {
        queue_add_locked(p, &j);
        grow_locked(p);
        if (p->n_threads == 0) {
            /* Not even one thread: give the job back. */
            queue_remove_locked(p, &j);
            pthread_mutex_unlock(&p->lock);
            return -EAGAIN;
        }
    }
    int64_t look_wait_ns = WEFT__POOL_LAZY_NS;
    if (atomic_load_explicit(&j.state, memory_order_relaxed) == JOB_QUEUED && can_help_locked(p))
        look_again = now + look_wait_ns;
    pthread_mutex_unlock(&p->lock);

    int held = 0; /* the interruption held back until fn returns */
    for (;;) {
        /* Relaxed: only QUEUED -> RUNNING can have happened while we
         * block (the end comes through the wait); the look-again deadline
         * counts only while the job is queued. */
        bool queued = atomic_load_explicit(&j.state, memory_order_relaxed) == JOB_QUEUED;
        int rc = weft__wait_block(&j.w, NULL, NULL, queued ? look_again : INT64_MAX,
                                  weft__why(WEFT__WK_BLOCKING), (uint64_t)(uintptr_t)&j);
        if (rc > 0)
            break; /* done or dropped; the pool thread is done with us */
        if (rc == 0)
            continue;
        if (rc == -ETIMEDOUT && weft__interrupted(self) == 0) {
            /* The look-again deadline, not the caller's. */
            if (atomic_load_explicit(&j.state, memory_order_relaxed) == JOB_QUEUED &&
                look_again != INT64_MAX && weft__clock_ns() >= look_again)
                look_again = rescue(p, &j, &look_wait_ns);
            continue;
        }
        pthread_mutex_lock(&p->lock);
        if (atomic_load_explicit(&j.state, memory_order_relaxed) == JOB_QUEUED) {
            /* Not started: take it back; fn never runs. */
            queue_remove_locked(p, &j);
            pthread_mutex_unlock(&p->lock);
            return rc;
        }
        pthread_mutex_unlock(&p->lock);
        /* Running: wait for fn to return (arg must stay valid), and ask
         * it to return early if the caller said how. */
        held = rc;
        self->shield++;
        int none = CANCEL_NONE;
        /* acq_rel: pairs with run_job's exchange (see there). */
        if (on_cancel && atomic_compare_exchange_strong_explicit(&j.cancel, &none, CANCEL_CALLED,
                                                                 memory_order_acq_rel,
                                                                 memory_order_acquire))
            on_cancel(arg);
    }
    if (held)
        self->shield--;
    if (atomic_load_explicit(&j.state, memory_order_relaxed) == JOB_DROPPED)
        return -ECANCELED;
    return held ? held : j.status;
}

/* Wakes every sleeping thread so that it sees shutdown. */
static void wake_sleepers_locked(struct exec_pool *p)
{
    for (struct list *l = p->sleepers.next; l != &p->sleepers; l = l->next)
        pthread_cond_signal(&weft__container_of(l, struct pool_thread, link)->cond);
}

void weft__pool_shutdown(struct exec_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->shutdown = true;
    for (struct job *j = p->head, *next; j; j = next) {
        next = j->next;
        finish_job(j, JOB_DROPPED);
    }
    p->head = p->tail = NULL;
    atomic_store_explicit(&p->n_queued, 0, memory_order_relaxed);
    wake_sleepers_locked(p);
    pthread_mutex_unlock(&p->lock);
}

unsigned weft__pool_running(struct exec_pool *p)
{
    pthread_mutex_lock(&p->lock);
    unsigned n = p->n_busy;
    pthread_mutex_unlock(&p->lock);
    return n;
}

bool weft__pool_abandon(struct exec_pool *p)
{
    pthread_mutex_lock(&p->lock);
    bool running = p->n_busy > 0;
    if (running)
        atomic_store_explicit(&p->abandoned, true, memory_order_relaxed);
    pthread_mutex_unlock(&p->lock);
    return running;
}

void weft__pool_disown(struct exec_pool *p, void (*done)(void *), void *arg)
{
    pthread_mutex_lock(&p->lock);
    bool none_left = p->n_threads == 0;
    if (!none_left) {
        p->on_last_exit = done;
        p->on_last_exit_arg = arg;
    }
    pthread_mutex_unlock(&p->lock);
    if (none_left) {
        done(arg);
        pool_destroy(p);
    }
}

void weft__pool_free(struct exec_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->shutdown = true;
    wake_sleepers_locked(p);
    while (p->n_threads > 0)
        pthread_cond_wait(&p->gone, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pool_destroy(p);
}

void weft__pool_counts(struct exec_pool *p, unsigned *threads, unsigned *busy, unsigned *idle,
                       unsigned long *queued)
{
    pthread_mutex_lock(&p->lock);
    *threads = p->n_threads;
    *busy = p->n_busy;
    *idle = p->n_idle;
    *queued = atomic_load_explicit(&p->n_queued, memory_order_relaxed);
    pthread_mutex_unlock(&p->lock);
}
