/* SPDX-License-Identifier: MIT */
/* What select (select.c) shares with the primitives it waits on: the
 * channel waiter (chan.c), the select record its channel clauses point
 * at, and each primitive's hooks to look, enqueue and withdraw.
 *
 * A select is one record on the selecting task's stack with an atomic
 * claim (winner). Each channel case enqueues an ordinary chan_waiter
 * pointing at the record; a channel waker that picks such a waiter must
 * win the claim (CAS -1 -> case index) under the channel's lock before it
 * hands anything over, and otherwise removes that waiter (its select has
 * completed, or is completing, another case) and tries the next one. The
 * other cases (event, fd, task) hand nothing over: their wakers only wake
 * the selector, which looks again. */
#ifndef WEFT_LIB_SELECT_H
#define WEFT_LIB_SELECT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched/sched.h"
#include "util/list.h"

struct weft_task;
struct thread_park;

/* weft_sel.weft__kind (select.c builds them, diag/dump.c reads them). */
enum weft__sel_kind {
    WEFT__SEL_NONE,
    WEFT__SEL_RECV,
    WEFT__SEL_SEND,
    WEFT__SEL_TASK,
    WEFT__SEL_EVENT,
    WEFT__SEL_FD
};

/* winner values besides a case index. */
#define WEFT__SEL_OPEN (-1)   /* nothing won yet: a waker may claim */
#define WEFT__SEL_CLOSED (-2) /* the selector stopped waiting: nobody may */

struct weft_sel;

/* The select a task is parked in: its park's object (weft__park_obj), so
 * that a dump that holds the task parked (PARK_HELD) reads the cases from
 * here; the case array cannot go away meanwhile, since only the parked
 * selector owns it. The dump reads each case's kind, object, events and,
 * for a task case, task_id (the task itself may be freed by a join
 * beside the select), all written before the park. */
struct sel_rec {
    _Atomic int winner;
    const struct weft_sel *cases;
    size_t n;
};

/* A task case's waiter storage (weft__priv): the end waiter and the id
 * of the task waited for, for dumps. */
struct sel_task_store {
    struct end_waiter w;
    uint64_t task_id;
};

/* A blocked sender or receiver, on its own stack (or in a weft_sel). A
 * waker hands it a result under the channel lock (is_handed) and wakes it
 * after unlocking (woken), so that no wake-up system call runs under the
 * spinlock. */
struct chan_waiter {
    struct list link;           /* in sendq/recvq (lock), then in the
                                   waker's list of wakes to do */
    struct weft_task *task;     /* NULL for a plain thread */
    struct thread_park *thread; /* a plain thread's wake-up */
    void *data;                 /* sender: its element; receiver: its buffer */
    struct sel_rec *sel;        /* NULL, or the select it is a clause of */
    int index;                  /* with sel: its case index */
    int result;                 /* 0 or -EPIPE; written before is_handed */
    bool is_handed;             /* taken off the queue with a result; lock */
    _Atomic int woken;          /* the waker is done with us for good */
};

/* Claims s for case index; false when another case (or the selector's
 * giving up) got there first. acq_rel: pairs with the other claims and
 * with the selector's CAS to WEFT__SEL_CLOSED (all RMWs of winner, so one
 * wins and the rest read its index); the hand-off itself is published by
 * the chan_waiter's woken store (release), which the selector waits for
 * (acquire, weft__chan_settle) after reading a winner. */
static inline bool weft__sel_claim(struct sel_rec *s, int index)
{
    int open = WEFT__SEL_OPEN;
    /* acq_rel: pairs with the other claims and the CAS to CLOSED (above). */
    return atomic_compare_exchange_strong_explicit(&s->winner, &open, index,
                                                   memory_order_acq_rel, memory_order_acquire);
}

/* ---- sync.c: events ---- */
struct weft_event;
struct waiter;
/* Queues w (task self) on e unless e is set (then false, nothing queued).
 * Counts as a caller inside e's waits until the withdrawal. */
bool weft__event_sel_enqueue(struct weft_event *e, struct waiter *w, struct weft_task *self);
/* Takes w off e (unless set() did) and leaves e (freeing it if it was
 * freed meanwhile and we were the last inside). */
void weft__event_sel_withdraw(struct weft_event *e, struct waiter *w);

/* ---- io.c: descriptors ---- */
struct fd_state;
struct fd_snap;
/* Readiness of fd for events (WEFT_READABLE/WRITABLE) now: the ready mask
 * (> 0), 0, or a negative errno; *sp and *snap are set for a later
 * weft__reactor_sel_enqueue whenever it returns 0. */
int weft__fd_sel_look(int fd, int events, struct fd_state **sp, struct fd_snap *snap);

/* ---- chan.c ---- */
struct weft_chan;
void weft__chan_lock(struct weft_chan *c);
void weft__chan_unlock(struct weft_chan *c);
/* Completes a send (elem copied in) or receive (into elem) that needs no
 * waiting, lock held: 0 or -EPIPE when done, -EAGAIN when it would wait.
 * A waiter handed the other side is put on wakes (flush after unlock). */
int weft__chan_try_locked(struct weft_chan *c, bool is_send, void *elem, struct list *wakes);
/* weft__chan_try_locked under c's own lock (taken and released here),
 * waking the waiter it handed over, if any: a select's first look at a
 * channel case, try_send and try_recv. */
int weft__chan_look(struct weft_chan *c, bool is_send, void *elem);
/* Wakes the waiters that weft__chan_try_locked handed over, lock released. */
void weft__chan_flush_wakes(struct list *wakes);
/* Queues w (a select clause of task self) on c's send or receive queue,
 * lock held. */
void weft__chan_enqueue_locked(struct weft_chan *c, bool is_send, struct chan_waiter *w);
/* Takes w off c's queue if it is still there (takes the lock). */
void weft__chan_withdraw(struct weft_chan *c, struct chan_waiter *w);
/* Waits until the waker that handed w a result is done with it. */
void weft__chan_settle(struct chan_waiter *w);

#endif /* WEFT_LIB_SELECT_H */
