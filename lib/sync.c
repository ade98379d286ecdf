/* SPDX-License-Identifier: MIT */
/* Semaphore, mutex and event over sched/wait: each is a pthread mutex
 * guarding a little state and one FIFO queue of wait clauses. Tasks wait; releases,
 * unlocks, sets and clears come from any thread and hand the resource to
 * the first waiter under the lock, so a waiter that is cancelled or times
 * out either was handed it (and keeps it) or was not (and takes nothing). */
#include "internal.h"

#include <limits.h>

#include "prim.h"
#include "select.h"
#include "sched/sched.h"
#include "sched/wait.h"

/* ------------------------------------------------------------ semaphore */

struct weft_sem {
    struct prim p;
    struct list q;    /* tasks waiting for a permit, FIFO */
    unsigned permits;  /* free permits; non-zero only while q is empty */
};

weft_sem *weft_sem_new(unsigned permits)
{
    struct weft_sem *s = malloc(sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    int rc = weft__prim_init(&s->p);
    if (rc < 0) {
        free(s);
        errno = -rc;
        return NULL;
    }
    list_init(&s->q);
    s->permits = permits;
    return s;
}

int weft_sem_acquire(weft_sem *s)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (!s)
        return -EINVAL;
    /* A suspension point: a cancelled task gets -ECANCELED even when a
     * permit is free (cancellation is sticky). */
    int rc = weft__interrupted(self);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->p.mu);
    if (s->permits > 0) {
        /* permits > 0 implies nobody waits: no barging past a waiter. */
        s->permits--;
        pthread_mutex_unlock(&s->p.mu);
        return 0;
    }
    /* 0 means a release handed its permit to us (decided under the lock,
     * even if we were cancelled meanwhile: then we own it, and the
     * cancellation shows at our next suspension point). Otherwise we took
     * ourselves off the queue and own nothing (CPython #90155). */
    rc = weft__prim_wait(&s->p, &s->q, self, weft__why(WEFT__WK_SEM), s, NULL, NULL);
    if (weft__prim_leave(&s->p))
        free(s);
    return rc;
}

bool weft_sem_try_acquire(weft_sem *s)
{
    if (!s)
        return false;
    pthread_mutex_lock(&s->p.mu);
    bool ok = s->permits > 0;
    if (ok)
        s->permits--;
    pthread_mutex_unlock(&s->p.mu);
    return ok;
}

void weft_sem_release(weft_sem *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->p.mu);
    /* Direct hand-off: the permit goes to the longest waiter and never
     * becomes free for a newcomer to take first. */
    if (!weft__wait_wake_one(&s->q, 0) && s->permits < UINT_MAX)
        s->permits++;
    pthread_mutex_unlock(&s->p.mu);
}

void weft_sem_free(weft_sem *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->p.mu);
    if (!list_empty(&s->q)) {
        pthread_mutex_unlock(&s->p.mu);
        weft__prim_warn_busy_free("weft_sem");
        return;
    }
    if (weft__prim_free_locked(&s->p))
        free(s);
}

/* ------------------------------------------------------------ mutex */

struct weft_mutex {
    struct prim p;
    struct list q;           /* tasks waiting for the mutex, FIFO */
    struct weft_task *owner;  /* holder, or NULL; NULL only while q is empty */
};

/* For dumps (diag/dump.c), which see a task parked in weft_mutex_lock
 * or weft_sem_acquire: the holder's id (0: none) or the free permits.
 * Never waits: p.mu is only tried, false when it is busy. The caller
 * holds a waiter parked (PARK_HELD), so the object is not freed yet. */
bool weft__mutex_peek(const void *obj, uint64_t *holder)
{
    struct weft_mutex *m = (struct weft_mutex *)obj;
    if (pthread_mutex_trylock(&m->p.mu) != 0)
        return false;
    struct weft_task *o = m->owner;
    bool ref = o && weft__task_tryref(o);
    *holder = ref ? o->id : 0;
    pthread_mutex_unlock(&m->p.mu);
    if (ref)
        weft__task_unref(o);
    return true;
}

bool weft__sem_peek(const void *obj, unsigned *permits)
{
    struct weft_sem *s = (struct weft_sem *)obj;
    if (pthread_mutex_trylock(&s->p.mu) != 0)
        return false;
    *permits = s->permits;
    pthread_mutex_unlock(&s->p.mu);
    return true;
}

weft_mutex *weft_mutex_new(void)
{
    struct weft_mutex *m = malloc(sizeof *m);
    if (!m) {
        errno = ENOMEM;
        return NULL;
    }
    int rc = weft__prim_init(&m->p);
    if (rc < 0) {
        free(m);
        errno = -rc;
        return NULL;
    }
    list_init(&m->q);
    m->owner = NULL;
    return m;
}

int weft_mutex_lock(weft_mutex *m)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (!m)
        return -EINVAL;
    int rc = weft__interrupted(self);
    if (rc)
        return rc;
    pthread_mutex_lock(&m->p.mu);
    if (!m->owner) {
        m->owner = self;
        pthread_mutex_unlock(&m->p.mu);
        return 0;
    }
    if (m->owner == self) {
        pthread_mutex_unlock(&m->p.mu);
        return -EDEADLK;
    }
    /* 0: the unlocker made us the owner before waking us (FIFO hand-off). */
    rc = weft__prim_wait(&m->p, &m->q, self, weft__why(WEFT__WK_MUTEX), m, NULL, NULL);
    if (weft__prim_leave(&m->p))
        free(m);
    return rc;
}

void weft_mutex_unlock(weft_mutex *m)
{
    if (!m)
        return;
    struct weft_task *self = weft__task_self();
    pthread_mutex_lock(&m->p.mu);
    /* Unlocking a free mutex, or one held by another task, from a task is
     * a mistake that is ignored; a plain thread may unlock for the holder. */
    if (m->owner && (!self || m->owner == self)) {
        struct weft__clause *cl = weft__wait_take(&m->q);
        m->owner = cl ? cl->wait->task : NULL;
        if (cl) {
            weft__wait_hand(cl, 0);
            weft__wait_wake(cl);
        }
    }
    pthread_mutex_unlock(&m->p.mu);
}

void weft_mutex_free(weft_mutex *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->p.mu);
    if (!list_empty(&m->q)) {
        pthread_mutex_unlock(&m->p.mu);
        weft__prim_warn_busy_free("weft_mutex");
        return;
    }
    if (weft__prim_free_locked(&m->p))
        free(m);
}

/* ------------------------------------------------------------ event */

struct weft_event {
    struct prim p;
    struct list q;    /* tasks waiting for the flag */
    _Atomic bool set;  /* the flag; written under p.mu */
};

weft_event *weft_event_new(void)
{
    struct weft_event *e = malloc(sizeof *e);
    if (!e) {
        errno = ENOMEM;
        return NULL;
    }
    int rc = weft__prim_init(&e->p);
    if (rc < 0) {
        free(e);
        errno = -rc;
        return NULL;
    }
    list_init(&e->q);
    atomic_init(&e->set, false);
    return e;
}

void weft_event_set(weft_event *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->p.mu);
    /* Release: what the setter wrote before set() is visible to a waiter
     * that sees the flag on its lock-free fast path (acquire load in
     * weft_event_wait / weft_event_is_set). */
    atomic_store_explicit(&e->set, true, memory_order_release);
    weft__prim_wake_all(&e->q, 0);
    pthread_mutex_unlock(&e->p.mu);
}

void weft_event_clear(weft_event *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->p.mu);
    atomic_store_explicit(&e->set, false, memory_order_relaxed);
    pthread_mutex_unlock(&e->p.mu);
}

bool weft_event_is_set(const weft_event *e)
{
    if (!e)
        return false;
    /* Acquire: pairs with the release store in weft_event_set. */
    return atomic_load_explicit(&((weft_event *)e)->set, memory_order_acquire);
}

int weft_event_wait(weft_event *e)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (!e)
        return -EINVAL;
    int rc = weft__interrupted(self);
    if (rc)
        return rc;
    /* Acquire: pairs with the release store in weft_event_set. */
    if (atomic_load_explicit(&e->set, memory_order_acquire))
        return 0;
    pthread_mutex_lock(&e->p.mu);
    if (atomic_load_explicit(&e->set, memory_order_relaxed)) {
        pthread_mutex_unlock(&e->p.mu);
        return 0;
    }
    /* 0: a set() happened while we waited, even if the flag has been
     * cleared again since (asyncio.Event semantics). */
    rc = weft__prim_wait(&e->p, &e->q, self, weft__why(WEFT__WK_EVENT), e, NULL, NULL);
    if (weft__prim_leave(&e->p))
        free(e);
    return rc;
}

bool weft__event_sel_enqueue(weft_event *e, struct weft__clause *cl)
{
    pthread_mutex_lock(&e->p.mu);
    if (atomic_load_explicit(&e->set, memory_order_relaxed)) {
        pthread_mutex_unlock(&e->p.mu);
        return false;
    }
    weft__wait_enqueue(&e->q, cl);
    e->p.n_inside++;
    pthread_mutex_unlock(&e->p.mu);
    return true;
}

void weft__event_sel_withdraw(weft_event *e, struct weft__clause *cl)
{
    pthread_mutex_lock(&e->p.mu);
    weft__wait_unlink(cl);
    e->p.n_inside--;
    if (weft__prim_leave(&e->p))
        free(e);
}

void weft_event_free(weft_event *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->p.mu);
    if (!list_empty(&e->q)) {
        pthread_mutex_unlock(&e->p.mu);
        weft__prim_warn_busy_free("weft_event");
        return;
    }
    if (weft__prim_free_locked(&e->p))
        free(e);
}
