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
#include "sched/wait.h"

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

static inline void weft__prim_lock(void *p) { pthread_mutex_lock(&((struct prim *)p)->mu); }
static inline void weft__prim_unlock(void *p) { pthread_mutex_unlock(&((struct prim *)p)->mu); }

/* The calling task self waits on q (one sole clause, sched/wait.h) with
 * p->mu held on entry and on return, and keeps the count of callers
 * inside. 0: a waker handed it a result (*result); else -ECANCELED or
 * -ETIMEDOUT, and nothing was handed. obj and why are the dump's (obj
 * the object's address: its first bytes are its struct prim). data is
 * the clause's, read back through *data when not NULL. */
static inline int weft__prim_wait(struct prim *p, struct list *q, struct weft_task *self,
                                  uint64_t why, const void *obj, int *result, void **data)
{
    struct weft__wait1 one;
    struct weft__wait *w = &one.w;
    struct weft__clause *cl = &one.cl;
    weft__wait_init(w, self);
    weft__clause_init(cl, w, 0, data ? *data : NULL, true);
    weft__wait_enqueue(q, cl);
    p->n_inside++;
    int rc = weft__wait_one(w, cl, weft__prim_lock, weft__prim_unlock, NULL, p, INT64_MAX, why,
                            (uint64_t)(uintptr_t)obj);
    pthread_mutex_lock(&p->mu);
    p->n_inside--;
    if (result)
        *result = cl->result;
    if (data)
        *data = cl->data;
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
 * run in FIFO order (weft__wait_hand_all). */
static inline void weft__prim_wake_all(struct list *q, int result)
{
    struct list wakes = {&wakes, &wakes};
    weft__wait_hand_all(q, result, &wakes);
    weft__wait_flush(&wakes);
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
