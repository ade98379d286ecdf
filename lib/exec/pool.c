/* SPDX-License-Identifier: MIT */
/* Blocking pool. One mutex guards the queue, the counters and every job's
 * state; a job's completion wakes its task while holding it, and the task
 * reads the state under it, so a task never returns (and frees the job on
 * its stack) while a pool thread still touches the job. */
#include "internal.h"

#include <time.h>

#include "exec/pool.h"
#include "sched/sched.h"

#define WEFT__KEEPALIVE_NS INT64_C(10000000000) /* idle threads exit after 10 s */

struct exec_pool *weft__pool_new(unsigned max_threads)
{
    struct exec_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&p->gone, NULL);
    p->max = max_threads;
    p->keepalive_ns = WEFT__KEEPALIVE_NS;
    return p;
}

static void *pool_thread(void *arg)
{
    struct exec_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        struct job *j = p->head;
        if (j) {
            p->head = j->next;
            if (!p->head)
                p->tail = NULL;
            p->n_queued--;
            j->state = JOB_RUNNING;
            p->n_busy++;
            pthread_mutex_unlock(&p->lock);
            int status = j->fn(j->arg);
            pthread_mutex_lock(&p->lock);
            p->n_busy--;
            j->status = status;
            j->state = JOB_DONE;
            weft__wake(j->task);
            continue;
        }
        if (p->shutdown)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += p->keepalive_ns / 1000000000;
        p->n_idle++;
        int rc = pthread_cond_timedwait(&p->work, &p->lock, &ts);
        p->n_idle--;
        if (rc == ETIMEDOUT && !p->head)
            break;
    }
    p->n_threads--;
    pthread_cond_broadcast(&p->gone);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int weft__pool_run(struct exec_pool *p, struct weft_task *self, weft_fn fn, void *arg)
{
    struct job j = {.fn = fn, .arg = arg, .state = JOB_QUEUED, .task = self};
    pthread_mutex_lock(&p->lock);
    if (p->shutdown) {
        pthread_mutex_unlock(&p->lock);
        return -ECANCELED;
    }
    if (p->tail)
        p->tail->next = &j;
    else
        p->head = &j;
    p->tail = &j;
    p->n_queued++;
    if (p->n_idle > 0) {
        pthread_cond_signal(&p->work);
    } else if (p->n_threads < p->max) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_t th;
        if (pthread_create(&th, &a, pool_thread, p) == 0)
            p->n_threads++;
        pthread_attr_destroy(&a);
        if (p->n_threads == 0) {
            /* Not even one thread: give the job back. */
            p->head = p->tail = NULL;
            p->n_queued--;
            pthread_mutex_unlock(&p->lock);
            return -EAGAIN;
        }
    }
    bool held = false;
    while (j.state != JOB_DONE && j.state != JOB_DROPPED) {
        if (!held && weft__interrupted(self)) {
            if (j.state == JOB_QUEUED) {
                /* Not started: take it back; fn never runs. */
                struct job **pp = &p->head, *prev = NULL;
                while (*pp != &j) {
                    prev = *pp;
                    pp = &(*pp)->next;
                }
                *pp = j.next;
                if (p->tail == &j)
                    p->tail = prev;
                p->n_queued--;
                pthread_mutex_unlock(&p->lock);
                return -ECANCELED;
            }
            /* Running: wait for fn to return (arg must stay valid). */
            held = true;
            self->shield++;
        }
        weft__park(weft__commit_unlock, &p->lock, INT64_MAX, "run_blocking");
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    if (held)
        self->shield--;
    if (j.state == JOB_DROPPED || held)
        return -ECANCELED;
    return j.status;
}

void weft__pool_shutdown(struct exec_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->shutdown = true;
    for (struct job *j = p->head, *next; j; j = next) {
        next = j->next;
        j->state = JOB_DROPPED;
        weft__wake(j->task);
    }
    p->head = p->tail = NULL;
    p->n_queued = 0;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
}

void weft__pool_free(struct exec_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->shutdown = true;
    pthread_cond_broadcast(&p->work);
    while (p->n_threads > 0)
        pthread_cond_wait(&p->gone, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->gone);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void weft__pool_counts(struct exec_pool *p, unsigned *threads, unsigned *busy, unsigned *idle,
                       unsigned long *queued)
{
    pthread_mutex_lock(&p->lock);
    *threads = p->n_threads;
    *busy = p->n_busy;
    *idle = p->n_idle;
    *queued = p->n_queued;
    pthread_mutex_unlock(&p->lock);
}
