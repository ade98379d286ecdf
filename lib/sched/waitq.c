/* SPDX-License-Identifier: MIT */
/* Wait queues; see waitq.h. */
#include "internal.h"

#include "sched/sched.h"
#include "sched/waitq.h"
#include "util/clock.h"

struct waiter *weft__waitq_first(struct waitq *q)
{
    if (list_empty(&q->waiters))
        return NULL;
    return weft__container_of(q->waiters.next, struct waiter, link);
}

void weft__waitq_wake(struct waiter *w, int result)
{
    list_remove(&w->link);
    w->woken = true;
    w->result = result;
    if (w->task)
        weft__wake(w->task);
    else
        pthread_cond_signal(w->cond);
}

bool weft__waitq_wake_one(struct waitq *q, int result)
{
    struct waiter *w = weft__waitq_first(q);
    if (!w)
        return false;
    weft__waitq_wake(w, result);
    return true;
}

void weft__waitq_wake_all(struct waitq *q, int result)
{
    struct waiter *w;
    while ((w = weft__waitq_first(q)) != NULL)
        weft__waitq_wake(w, result);
}

int weft__waitq_wait(struct waitq *q, struct waiter *w, pthread_mutex_t *mu, int64_t deadline,
                     const char *what)
{
    struct weft_task *self = weft__task_self();
    w->task = self;
    w->woken = false;
    w->result = 0;
    list_push_back(&q->waiters, &w->link);
    if (!self) {
        /* A plain thread blocks on a condition variable; no cancellation. */
        pthread_cond_t cond;
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&cond, &ca);
        pthread_condattr_destroy(&ca);
        w->cond = &cond;
        int rc = 0;
        while (!w->woken) {
            if (deadline == INT64_MAX) {
                pthread_cond_wait(&cond, mu);
            } else {
                struct timespec ts = {.tv_sec = deadline / 1000000000,
                                      .tv_nsec = deadline % 1000000000};
                if (pthread_cond_timedwait(&cond, mu, &ts) == ETIMEDOUT && !w->woken) {
                    list_remove(&w->link);
                    rc = -ETIMEDOUT;
                    break;
                }
            }
        }
        pthread_cond_destroy(&cond);
        return rc;
    }
    for (;;) {
        weft__park_self(self, weft__commit_unlock, mu, deadline, what);
        pthread_mutex_lock(mu);
        if (w->woken)
            return 0;
        int rc = weft__interrupted(self);
        if (!rc && deadline != INT64_MAX && weft__clock_ns() >= deadline)
            rc = -ETIMEDOUT;
        if (rc) {
            list_remove(&w->link);
            return rc;
        }
    }
}
