/* SPDX-License-Identifier: MIT */
/* Channels: a ring of `cap` fixed-size elements (none for a rendezvous
 * channel) and two FIFO queues of wait clauses (sched/wait.h), all under
 * one spinlock. Elements go straight from a sender's buffer into a
 * waiting receiver's (and from a waiting sender into the ring when a
 * receiver makes room), so nobody overtakes a waiter. Any thread sends,
 * receives and closes; tasks park, plain threads block (sched/wait.h).
 * A waker claims and hands a clause its result under the lock, and wakes
 * it after unlocking, so that no wake-up system call runs under the
 * spinlock; a woken task learns its result without taking the lock
 * again. */
#include "internal.h"

#include <sched.h>
#include <string.h>

#include "sched/sched.h"
#include "sched/wait.h"
#include "select.h"
#include "util/list.h"
#include "util/spin.h"

/* Invariants (under lock): receivers wait only while the ring is empty;
 * senders wait only while it is full (always, for cap 0); so at most one
 * of the queues is non-empty, except on a rendezvous channel where one
 * select waits to send and to receive. A queue may also hold waiters of
 * selects that have completed another case and not yet withdrawn: every
 * taker skips and removes those (take_waiter), so they never count. */
struct weft_chan {
    struct spin lock;
    bool is_closed;
    _Atomic unsigned idle; /* IDLE_* bits, written under the lock; by the
                              lock, in its cache line */
    size_t elem_size;    /* bytes per element */
    size_t cap;          /* ring slots; 0 = rendezvous */
    size_t head;         /* slot of the oldest buffered element */
    size_t len;          /* buffered elements */
    struct list sendq;   /* blocked senders, FIFO */
    struct list recvq;   /* blocked receivers, FIFO */
    unsigned char buf[]; /* cap * elem_size bytes */
};

/* chan.idle: a side that was found unable to complete (by a look under
 * the lock, try_core) and has not changed since: IDLE_RECV while nothing
 * is buffered, no sender waits and the channel is open; IDLE_SEND while
 * the ring is full (always, for cap 0), no receiver waits and it is open.
 * Whatever could make a side ready clears its bit under the lock
 * (may_ready). Read without the lock only by a select's first look, to
 * skip a case without taking its lock: a stale bit costs nothing, since
 * the select looks at every case again under all their locks before it
 * waits. All the bit's accesses are relaxed: it orders nothing, the lock
 * orders its writers, and a reader that saw a change happen (some
 * happens-before) reads that store or a later one. */
enum { IDLE_RECV = 1u, IDLE_SEND = 2u };

/* Lock held: clears the bits of sides that may have become ready. */
static inline void may_ready(struct weft_chan *c, unsigned bits)
{
    unsigned v = atomic_load_explicit(&c->idle, memory_order_relaxed);
    if (WEFT__UNLIKELY(v & bits))
        atomic_store_explicit(&c->idle, v & ~bits, memory_order_relaxed);
}

/* Lock held: marks a side that cannot complete now. */
static inline void mark_idle(struct weft_chan *c, unsigned bit)
{
    unsigned v = atomic_load_explicit(&c->idle, memory_order_relaxed);
    if (!(v & bit))
        atomic_store_explicit(&c->idle, v | bit, memory_order_relaxed);
}

weft_chan *weft_chan_new(size_t elem_size, size_t capacity)
{
    if (elem_size == 0) {
        errno = EINVAL;
        return NULL;
    }
    /* No object may exceed PTRDIFF_MAX bytes: refuse here rather than ask
     * malloc (which fails for such sizes anyway; sanitizers abort). */
    if (capacity && elem_size > (PTRDIFF_MAX - sizeof(struct weft_chan)) / capacity) {
        errno = ENOMEM;
        return NULL;
    }
    struct weft_chan *c = malloc(sizeof *c + elem_size * capacity);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    spin_init(&c->lock);
    c->is_closed = false;
    c->elem_size = elem_size;
    c->cap = capacity;
    c->head = 0;
    c->len = 0;
    list_init(&c->sendq);
    list_init(&c->recvq);
    atomic_init(&c->idle, 0u);
    return c;
}

/* Copies one element; word-sized ones without a library call. */
static inline void copy_elem(const struct weft_chan *c, void *dst, const void *src)
{
    switch (c->elem_size) {
    case 8:
        memcpy(dst, src, 8);
        break;
    case 4:
        memcpy(dst, src, 4);
        break;
    default:
        memcpy(dst, src, c->elem_size);
    }
}

static inline unsigned char *slot(struct weft_chan *c, size_t i)
{
    size_t k = c->head + i;
    if (k >= c->cap)
        k -= c->cap;
    return c->buf + k * c->elem_size;
}

/* The first clause of q that may be handed something (claimed), or
 * NULL; lock held. Clauses of selects that completed another case are
 * dropped on the way. */
static inline struct weft__clause *take_waiter(struct list *q) { return weft__wait_take(q); }

/* Takes w off its queue with result, lock held; the wake-up itself is
 * queued on `wakes` and done by weft__wait_flush after the unlock. */
static inline void hand(struct weft__clause *w, int result, struct list *wakes)
{
    weft__wait_hand(w, result);
    list_push_back(wakes, &w->link);
}

/* The one-waiter case of send and receive: hand w result under the lock,
 * then unlock and wake it. */
static inline void hand_unlock_wake(struct weft_chan *c, struct weft__clause *w, int result)
{
    weft__wait_hand(w, result);
    spin_unlock(&c->lock);
    weft__wait_wake(w);
}

static void chan_lock(void *c) { spin_lock(&((struct weft_chan *)c)->lock); }
static void chan_unlock(void *c) { spin_unlock(&((struct weft_chan *)c)->lock); }

/* Waits on q with data (lock held on entry, released on return). Out of
 * line, with the waiter on its own frame, so that the calls that do not
 * wait keep a light prologue. */
static WEFT__NOINLINE int wait_on(struct weft_chan *c, struct list *q, void *data,
                                  struct weft_task *self, unsigned kind)
{
    struct weft__wait1 one;
    struct weft__wait *w = &one.w;
    struct weft__clause *cl = &one.cl;
    weft__wait_init(w, self);
    weft__clause_init(cl, w, 0, data, true);
    weft__wait_enqueue(q, cl);
    /* 0: a waker handed us an element (or took ours) or -EPIPE; else a
     * cancelled or timed-out wait that took itself off q. */
    int rc = weft__wait_one(w, cl, chan_lock, chan_unlock, NULL, c, INT64_MAX, weft__why(kind),
                            (uint64_t)(uintptr_t)c);
    return rc ? rc : cl->result;
}

int weft_chan_send(weft_chan *c, const void *elem)
{
    if (!c || !elem)
        return -EINVAL;
    struct weft_task *self = weft__task_self();
    if (self) {
        int rc = weft__interrupted(self);
        if (rc)
            return rc;
    }
    spin_lock(&c->lock);
    if (WEFT__UNLIKELY(c->is_closed)) {
        spin_unlock(&c->lock);
        return -EPIPE;
    }
    struct weft__clause *r = take_waiter(&c->recvq);
    if (r) {
        /* A receiver waits, so the ring is empty: hand over directly. */
        copy_elem(c, r->data, elem);
        hand_unlock_wake(c, r, 0);
        return 0;
    }
    if (c->len < c->cap) {
        copy_elem(c, slot(c, c->len), elem);
        c->len++;
        may_ready(c, IDLE_RECV);
        spin_unlock(&c->lock);
        return 0;
    }
    /* Full (or rendezvous with no receiver): wait until a receiver takes
     * the element from our buffer (0) or the channel closes (-EPIPE). A
     * cancelled or timed-out sender's element was not taken. */
    may_ready(c, IDLE_RECV); /* a sender will wait */
    return wait_on(c, &c->sendq, (void *)elem, self, WEFT__WK_CHAN_SEND);
}

int weft_chan_recv(weft_chan *c, void *elem)
{
    if (!c || !elem)
        return -EINVAL;
    struct weft_task *self = weft__task_self();
    if (self) {
        int rc = weft__interrupted(self);
        if (rc)
            return rc;
    }
    spin_lock(&c->lock);
    /* Whichever branch below runs, a waiting sender is served (claimed
     * here, if it is a select's clause). */
    struct weft__clause *s = take_waiter(&c->sendq);
    if (c->len > 0) {
        copy_elem(c, elem, slot(c, 0));
        c->head = c->head + 1 == c->cap ? 0 : c->head + 1;
        c->len--;
        if (!s) {
            may_ready(c, IDLE_SEND);
            spin_unlock(&c->lock);
            return 0;
        }
        /* The ring was full: the longest-waiting sender's element takes
         * the freed slot, at the tail. */
        copy_elem(c, slot(c, c->len), s->data);
        c->len++;
    } else if (s) {
        /* Rendezvous: take the element straight from the sender. */
        copy_elem(c, elem, s->data);
    }
    if (s) {
        hand_unlock_wake(c, s, 0);
        return 0;
    }
    if (c->is_closed) {
        spin_unlock(&c->lock);
        return -EPIPE;
    }
    /* Empty: a sender copies into elem and wakes us with 0, or close wakes
     * us with -EPIPE. A cancelled receiver was given nothing. */
    may_ready(c, IDLE_SEND); /* a receiver will wait */
    return wait_on(c, &c->recvq, elem, self, WEFT__WK_CHAN_RECV);
}

/* The non-waiting core of send (is_send) and receive, lock held: 0 or
 * -EPIPE when done, -EAGAIN when the call would wait (the side is then
 * marked idle). The waiter handed the other side, if any (at most one),
 * is taken off its queue and left in *handed for the caller to wake after
 * the unlock. The same FIFO rules as send and recv: a send goes to the
 * first waiting receiver before the ring (which is empty while one
 * waits), a receive refills the ring from the first waiting sender. */
static inline __attribute__((always_inline)) int
try_core(struct weft_chan *c, bool is_send, void *elem, struct weft__clause **handed)
{
    struct weft__clause *w;
    *handed = NULL;
    if (is_send) {
        if (c->is_closed)
            return -EPIPE;
        if ((w = take_waiter(&c->recvq)) != NULL) {
            copy_elem(c, w->data, elem);
            weft__wait_hand(w, 0);
            /* Receivers wait only while the ring is empty: the next send
             * waits unless another receiver does or the ring has room. */
            if (list_empty(&c->recvq) && c->cap == 0)
                mark_idle(c, IDLE_SEND);
            goto handed_it;
        }
        if (c->len < c->cap) {
            copy_elem(c, slot(c, c->len), elem);
            c->len++;
            may_ready(c, IDLE_RECV);
            return 0;
        }
        mark_idle(c, IDLE_SEND);
        return -EAGAIN;
    }
    if (c->len > 0) {
        copy_elem(c, elem, slot(c, 0));
        c->head = c->head + 1 == c->cap ? 0 : c->head + 1;
        c->len--;
        if ((w = take_waiter(&c->sendq)) == NULL) {
            may_ready(c, IDLE_SEND);
            return 0;
        }
        copy_elem(c, slot(c, c->len), w->data);
        c->len++;
        goto hand_it;
    }
    if ((w = take_waiter(&c->sendq)) != NULL) {
        copy_elem(c, elem, w->data);
        weft__wait_hand(w, 0);
        /* Rendezvous: the next receive waits unless another sender
         * does (a select that took the last one skips it next time). */
        if (list_empty(&c->sendq) && !c->is_closed)
            mark_idle(c, IDLE_RECV);
        goto handed_it;
    }
    if (c->is_closed)
        return -EPIPE;
    mark_idle(c, IDLE_RECV);
    return -EAGAIN;
hand_it:
    weft__wait_hand(w, 0);
handed_it:
    *handed = w;
    return 0;
}

int weft__chan_try_locked(struct weft_chan *c, bool is_send, void *elem, struct list *wakes)
{
    struct weft__clause *w;
    int rc = try_core(c, is_send, elem, &w);
    if (w)
        list_push_back(wakes, &w->link);
    return rc;
}

/* weft__chan_look after the idle check; try_send and try_recv, which
 * must see what the lock shows, start here. */
static WEFT__NOINLINE int look_locked(struct weft_chan *c, bool is_send, void *elem)
{
    struct weft__clause *w;
    spin_lock(&c->lock);
    int rc = try_core(c, is_send, elem, &w);
    spin_unlock(&c->lock);
    if (w)
        weft__wait_wake(w);
    return rc;
}

int weft__chan_look(struct weft_chan *c, bool is_send, void *elem)
{
    /* Relaxed: a hint (see chan.idle); a select that skips a case here
     * looks at it again under the lock before it waits. */
    unsigned bit = is_send ? IDLE_SEND : IDLE_RECV;
    if (atomic_load_explicit(&c->idle, memory_order_relaxed) & bit)
        return -EAGAIN;
    return look_locked(c, is_send, elem);
}

void weft__chan_flush_wakes(struct list *wakes) { weft__wait_flush(wakes); }

void weft__chan_lock(struct weft_chan *c) { spin_lock(&c->lock); }
void weft__chan_unlock(struct weft_chan *c) { spin_unlock(&c->lock); }

void weft__chan_enqueue_locked(struct weft_chan *c, bool is_send, struct weft__clause *w)
{
    weft__wait_enqueue(is_send ? &c->sendq : &c->recvq, w);
    may_ready(c, is_send ? IDLE_RECV : IDLE_SEND);
}

void weft__chan_withdraw(struct weft_chan *c, struct weft__clause *w)
{
    spin_lock(&c->lock);
    /* A no-op when a waker took it off (handed, or dropped as lost). */
    weft__wait_unlink(w);
    spin_unlock(&c->lock);
}

int weft_chan_try_send(weft_chan *c, const void *elem)
{
    if (!c || !elem)
        return -EINVAL;
    return look_locked(c, true, (void *)elem);
}

int weft_chan_try_recv(weft_chan *c, void *elem)
{
    if (!c || !elem)
        return -EINVAL;
    return look_locked(c, false, elem);
}

size_t weft_chan_len(const weft_chan *c)
{
    if (!c)
        return 0;
    struct weft_chan *m = (struct weft_chan *)c;
    spin_lock(&m->lock);
    size_t n = m->len;
    spin_unlock(&m->lock);
    return n;
}

void weft_chan_close(weft_chan *c)
{
    if (!c)
        return;
    struct list wakes = {&wakes, &wakes};
    spin_lock(&c->lock);
    if (!c->is_closed) {
        c->is_closed = true;
        may_ready(c, IDLE_RECV | IDLE_SEND);
        /* Waiting senders' elements are not delivered; waiting receivers
         * exist only when nothing is buffered. */
        weft__wait_hand_all(&c->sendq, -EPIPE, &wakes);
        weft__wait_hand_all(&c->recvq, -EPIPE, &wakes);
    }
    spin_unlock(&c->lock);
    weft__wait_flush(&wakes);
}

void weft_chan_free(weft_chan *c)
{
    if (!c)
        return;
    spin_lock(&c->lock);
    bool busy = !list_empty(&c->sendq) || !list_empty(&c->recvq);
    spin_unlock(&c->lock);
    if (busy) {
        /* Undefined by contract; detected, and answered by leaking. */
        fprintf(stderr, "weft: weft_chan freed while tasks or threads wait on it; not freed\n");
        return;
    }
    free(c);
}
