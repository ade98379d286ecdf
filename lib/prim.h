/* SPDX-License-Identifier: MIT */
/* The lock and wait bookkeeping shared by semaphores, mutexes, events and
 * channels (sync.c, chan.c): a pthread mutex guarding the object and its
 * wait queues, and a count of callers still inside a wait, so that an
 * object freed right after it woke its waiters is released by the last of
 * them to leave instead of under their feet. Any thread. */
#ifndef WEFT_PRIM_H
#define WEFT_PRIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "sched/sched.h"
#include "sched/waitq.h"

struct prim {
    pthread_mutex_t mu; /* guards the owning object and its wait queues */
    unsigned n_inside;  /* callers between entering a wait and leaving it
                           (queued, or woken but not yet returned); mu */
    bool is_freed;      /* free was called while n_inside > 0; mu */
};

static inline int weft__prim_init(struct prim *p)
{
    p->n_inside = 0;
    p->is_freed = false;
    return -pthread_mutex_init(&p->mu, NULL);
}

/* Waits on q with p->mu held (weft__waitq_wait) and keeps the count of
 * callers inside. Plain threads block on a condition variable. */
static inline int weft__prim_wait(struct prim *p, struct waitq *q, struct waiter *w,
                                  const char *what)
{
    p->n_inside++;
    int rc = weft__waitq_wait(q, w, &p->mu, INT64_MAX, what);
    p->n_inside--;
    return rc;
}

/* Unlocks p->mu after a wait. True when the object was freed meanwhile and
 * the caller, the last one inside, must release its memory now (p->mu is
 * then destroyed). */
static inline bool weft__prim_leave(struct prim *p)
{
    bool last = p->is_freed && p->n_inside == 0;
    pthread_mutex_unlock(&p->mu);
    if (WEFT__UNLIKELY(last))
        pthread_mutex_destroy(&p->mu);
    return last;
}

/* Called by a free with p->mu held, after checking that no waiter is still
 * queued. True when the caller may release the object now (p->mu is then
 * unlocked and destroyed); false when woken waiters are still on their
 * way out and the last one will (p->mu is then unlocked). */
static inline bool weft__prim_free_locked(struct prim *p)
{
    if (p->n_inside > 0) {
        p->is_freed = true;
        pthread_mutex_unlock(&p->mu);
        return false;
    }
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_destroy(&p->mu);
    return true;
}

/* Wakes every waiter of q with result, lock held, so that the woken tasks
 * run in FIFO order: weft__wake on a worker puts each task in that
 * worker's next slot and pushes the one it displaces to the back of the
 * local queue, so waking the 2nd..nth waiters and then the first one
 * leaves the first in the slot and the rest queued in order. Elsewhere
 * (plain threads, another runtime) the inject queue keeps plain order. */
static inline void weft__prim_wake_all(struct waitq *q, int result)
{
    struct waiter *first = weft__waitq_first(q);
    if (!first)
        return;
    struct worker *self = weft__worker_self();
    if (!self || !first->task || first->task->rt != self->rt) {
        weft__waitq_wake_all(q, result);
        return;
    }
    list_remove(&first->link);
    weft__waitq_wake_all(q, result);
    /* weft__waitq_wake removes w from its list: give it one to leave. */
    list_init(&first->link);
    weft__waitq_wake(first, result);
}

/* Warns once per call about a free with waiters still queued (undefined
 * behaviour that weft detects and answers by leaking the object). */
static inline void weft__prim_warn_busy_free(const char *what)
{
    fprintf(stderr, "weft: %s freed while tasks or threads wait on it; not freed\n", what);
}

/* For dumps (sync.c): a mutex's holder (0: none) and a semaphore's free
 * permits, read without waiting; false when the object's lock is busy. */
bool weft__mutex_peek(const void *mutex, uint64_t *holder);
bool weft__sem_peek(const void *sem, unsigned *permits);

#endif /* WEFT_PRIM_H */
