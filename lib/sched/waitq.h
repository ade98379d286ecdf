/* SPDX-License-Identifier: MIT */
/* A FIFO of parked tasks, guarded by the owning primitive's mutex: the base
 * of every semaphore, mutex, event and channel wait. A waker removes the
 * waiter and sets its result under the lock; a waiter that was cancelled or
 * timed out removes itself under the same lock, so a hand-off (a permit, an
 * element) is either delivered or never made, never both. */
#ifndef WEFT_SCHED_WAITQ_H
#define WEFT_SCHED_WAITQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/list.h"

struct weft_task;

struct waiter {
    struct list link;
    struct weft_task *task;  /* NULL for a plain-thread waiter */
    pthread_cond_t *cond;    /* plain-thread waiter's condition variable */
    bool woken;              /* set by the waker, under the lock */
    int result;              /* set by the waker */
    void *data;              /* primitive-specific (element buffer...) */
};

struct waitq {
    struct list waiters;
};

static inline void weft__waitq_init(struct waitq *q) { list_init(&q->waiters); }
static inline bool weft__waitq_empty(const struct waitq *q) { return list_empty(&q->waiters); }

/* The first waiter, or NULL; lock held. */
struct waiter *weft__waitq_first(struct waitq *q);
/* Removes w, marks it woken with result and wakes its task (or signals its
 * thread); lock held. */
void weft__waitq_wake(struct waiter *w, int result);
/* Wakes the first waiter; false if none. Lock held. */
bool weft__waitq_wake_one(struct waitq *q, int result);
/* Wakes every waiter. Lock held. */
void weft__waitq_wake_all(struct waitq *q, int result);
/* Parks the calling task (or, on a plain thread, blocks it) on q until a
 * waker hands it a result. mu is held on entry and on return. Returns 0
 * when woken (w->result holds the waker's result), or -ECANCELED /
 * -ETIMEDOUT (deadline or scope) after removing itself. `what` names the
 * wait in dumps. */
int weft__waitq_wait(struct waitq *q, struct waiter *w, pthread_mutex_t *mu, int64_t deadline,
                     const char *what);

#endif /* WEFT_SCHED_WAITQ_H */
