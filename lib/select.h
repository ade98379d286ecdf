/* SPDX-License-Identifier: MIT */
/* What select (select.c) shares with the primitives it waits on: the
 * select record and each primitive's hooks to look, enqueue and withdraw.
 *
 * A select is one wait (sched/wait.h) on the selecting task's stack,
 * with one clause per channel or event case, each in its object's queue:
 * a waker that picks such a clause must win the wait's claim under the
 * object's lock before it hands anything over (an element, -EPIPE, an
 * event's set), and otherwise drops that clause (its select has
 * completed, or is completing, another case) and tries the next one. The
 * task and descriptor cases hand nothing over yet: their wakers only wake
 * the selector, which looks again. */
#ifndef WEFT_LIB_SELECT_H
#define WEFT_LIB_SELECT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched/sched.h"
#include "sched/wait.h"
#include "util/list.h"

struct weft_task;

/* weft_sel.weft__kind (select.c builds them, diag/dump.c reads them). */
enum weft__sel_kind {
    WEFT__SEL_NONE,
    WEFT__SEL_RECV,
    WEFT__SEL_SEND,
    WEFT__SEL_TASK,
    WEFT__SEL_EVENT,
    WEFT__SEL_FD
};

struct weft_sel;

/* The select a task is parked in: its park's object (weft__park_obj), so
 * that a dump that holds the task parked (PARK_HELD) reads the cases from
 * here; the case array cannot go away meanwhile, since only the parked
 * selector owns it. The dump reads each case's kind, object, events and,
 * for a task case, task_id (the task itself may be freed by a join
 * beside the select), all written before the park. */
struct sel_rec {
    struct weft__wait w;
    const struct weft_sel *cases;
    size_t n;
};

/* A task case's waiter storage (weft__priv): the end waiter and the id
 * of the task waited for, for dumps. */
struct sel_task_store {
    struct end_waiter w;
    uint64_t task_id;
};

/* ---- sync.c: events ---- */
struct weft_event;
/* Queues the select's clause cl on e unless e is set (then false, nothing
 * queued). Counts as a caller inside e's waits until the withdrawal. */
bool weft__event_sel_enqueue(struct weft_event *e, struct weft__clause *cl);
/* Takes cl off e (unless set() did) and leaves e (freeing it if it was
 * freed meanwhile and we were the last inside). */
void weft__event_sel_withdraw(struct weft_event *e, struct weft__clause *cl);

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
/* Queues w (a select's clause) on c's send or receive queue, lock held. */
void weft__chan_enqueue_locked(struct weft_chan *c, bool is_send, struct weft__clause *w);
/* Takes w off c's queue if it is still there (takes the lock). */
void weft__chan_withdraw(struct weft_chan *c, struct weft__clause *w);

#endif /* WEFT_LIB_SELECT_H */
