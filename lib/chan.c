/* SPDX-License-Identifier: MIT */
/* Channels: a ring of `cap` fixed-size elements (none for a rendezvous
 * channel) and two FIFO wait queues, all under one pthread mutex. Elements
 * go straight from a sender's buffer into a waiting receiver's (and from a
 * waiting sender into the ring when a receiver makes room), so nobody can
 * overtake a waiter. Any thread sends, receives and closes; tasks park,
 * plain threads block on a condition variable. */
#include "internal.h"

#include <string.h>

#include "prim.h"
#include "sched/sched.h"
#include "sched/waitq.h"

/* Invariants (under p.mu): receivers wait only while the ring is empty;
 * senders wait only while it is full (always, for cap 0); so at most one
 * of the queues is non-empty. */
struct weft_chan {
    struct prim p;
    struct waitq sendq;  /* blocked senders; waiter.data: their element */
    struct waitq recvq;  /* blocked receivers; waiter.data: their buffer */
    size_t elem_size;    /* bytes per element */
    size_t cap;          /* ring slots; 0 = rendezvous */
    size_t head;         /* slot of the oldest buffered element */
    size_t len;          /* buffered elements */
    bool is_closed;
    unsigned char buf[]; /* cap * elem_size bytes */
};

weft_chan *weft_chan_new(size_t elem_size, size_t capacity)
{
    if (elem_size == 0 || (capacity && elem_size > (SIZE_MAX - sizeof(struct weft_chan)) / capacity)) {
        errno = elem_size == 0 ? EINVAL : ENOMEM;
        return NULL;
    }
    struct weft_chan *c = malloc(sizeof *c + elem_size * capacity);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    int rc = weft__prim_init(&c->p);
    if (rc < 0) {
        free(c);
        errno = -rc;
        return NULL;
    }
    weft__waitq_init(&c->sendq);
    weft__waitq_init(&c->recvq);
    c->elem_size = elem_size;
    c->cap = capacity;
    c->head = 0;
    c->len = 0;
    c->is_closed = false;
    return c;
}

static inline unsigned char *slot(struct weft_chan *c, size_t i)
{
    size_t k = c->head + i;
    if (k >= c->cap)
        k -= c->cap;
    return c->buf + k * c->elem_size;
}

/* 0, or -ECANCELED / -ETIMEDOUT for a task that must not go on; plain
 * threads are never interrupted. */
static inline int check_interrupted(void)
{
    struct weft_task *self = weft__task_self();
    return self ? weft__interrupted(self) : 0;
}

int weft_chan_send(weft_chan *c, const void *elem)
{
    if (!c || !elem)
        return -EINVAL;
    int rc = check_interrupted();
    if (rc)
        return rc;
    pthread_mutex_lock(&c->p.mu);
    if (WEFT__UNLIKELY(c->is_closed)) {
        pthread_mutex_unlock(&c->p.mu);
        return -EPIPE;
    }
    struct waiter *r = weft__waitq_first(&c->recvq);
    if (r) {
        /* A receiver waits, so the ring is empty: hand over directly. */
        memcpy(r->data, elem, c->elem_size);
        weft__waitq_wake(r, 0);
        pthread_mutex_unlock(&c->p.mu);
        return 0;
    }
    if (c->len < c->cap) {
        memcpy(slot(c, c->len), elem, c->elem_size);
        c->len++;
        pthread_mutex_unlock(&c->p.mu);
        return 0;
    }
    /* Full (or rendezvous with no receiver): wait until a receiver takes
     * the element from our buffer (result 0) or the channel closes
     * (-EPIPE). A cancelled or timed-out sender's element was not taken. */
    struct waiter w = {.data = (void *)elem};
    rc = weft__prim_wait(&c->p, &c->sendq, &w, "chan send");
    if (rc == 0)
        rc = w.result;
    if (weft__prim_leave(&c->p))
        free(c);
    return rc;
}

int weft_chan_recv(weft_chan *c, void *elem)
{
    if (!c || !elem)
        return -EINVAL;
    int rc = check_interrupted();
    if (rc)
        return rc;
    pthread_mutex_lock(&c->p.mu);
    struct waiter *s = weft__waitq_first(&c->sendq);
    if (c->len > 0) {
        memcpy(elem, slot(c, 0), c->elem_size);
        c->head = c->head + 1 == c->cap ? 0 : c->head + 1;
        c->len--;
        if (s) {
            /* The ring was full: the longest-waiting sender's element
             * takes the freed slot, at the tail. */
            memcpy(slot(c, c->len), s->data, c->elem_size);
            c->len++;
            weft__waitq_wake(s, 0);
        }
        pthread_mutex_unlock(&c->p.mu);
        return 0;
    }
    if (s) {
        /* Rendezvous: take the element straight from the sender. */
        memcpy(elem, s->data, c->elem_size);
        weft__waitq_wake(s, 0);
        pthread_mutex_unlock(&c->p.mu);
        return 0;
    }
    if (c->is_closed) {
        pthread_mutex_unlock(&c->p.mu);
        return -EPIPE;
    }
    /* Empty: a sender copies into elem and wakes us with 0, or close wakes
     * us with -EPIPE. A cancelled receiver was given nothing. */
    struct waiter w = {.data = elem};
    rc = weft__prim_wait(&c->p, &c->recvq, &w, "chan recv");
    if (rc == 0)
        rc = w.result;
    if (weft__prim_leave(&c->p))
        free(c);
    return rc;
}

void weft_chan_close(weft_chan *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->p.mu);
    if (!c->is_closed) {
        c->is_closed = true;
        /* Waiting senders' elements are not delivered; waiting receivers
         * exist only when nothing is buffered. */
        weft__prim_wake_all(&c->sendq, -EPIPE);
        weft__prim_wake_all(&c->recvq, -EPIPE);
    }
    pthread_mutex_unlock(&c->p.mu);
}

void weft_chan_free(weft_chan *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->p.mu);
    if (!weft__waitq_empty(&c->sendq) || !weft__waitq_empty(&c->recvq)) {
        pthread_mutex_unlock(&c->p.mu);
        weft__prim_warn_busy_free("weft_chan");
        return;
    }
    if (weft__prim_free_locked(&c->p))
        free(c);
}
