/* SPDX-License-Identifier: MIT */
/* The descriptor registry behind the I/O calls: one struct fd_state per
 * descriptor number, registered lazily (edge-triggered, once) with the
 * poller of the worker that first had to wait on it. Readiness edges are
 * counted so that an edge that arrives between a system call's EAGAIN and
 * the task's parking is never lost; weft_close wakes waiters with -EBADF
 * before the number can be reused. Any thread may touch any state. The
 * common wait (one task reading, one writing) and every readiness edge
 * go without a lock, through atomic words (reader/writer slots, edge
 * counts); registration, close, the waiter list and the rare cases take
 * the state's own lock. */
#ifndef WEFT_REACTOR_REACTOR_H
#define WEFT_REACTOR_REACTOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "reactor/poller.h"
#include "sched/wait.h"
#include "util/list.h"

/* What the library knows about the open file behind a descriptor number
 * (fd_state.mode); reset whenever the number gets a new file. */
enum fd_mode {
    FD_MODE_KNOWN = 1u << 0,  /* checked: O_NONBLOCK is set */
    FD_MODE_SOCKET = 1u << 1, /* a socket: writes use send(MSG_NOSIGNAL) */
    FD_MODE_STREAM = 1u << 2, /* a stream socket: a short read drains it */
    /* Neither a socket nor a regular file (a pipe, an eventfd, a device):
     * reads and writes pass RWF_NOWAIT, so that they never block even if
     * the number now names another, blocking file (closed with close(2)
     * behind the library's back, and reused). */
    FD_MODE_NOWAIT = 1u << 3,
    /* Neither RWF_NOWAIT nor MSG_DONTWAIT applies (a regular file, a
     * device that refuses RWF_NOWAIT): O_NONBLOCK is checked before each
     * read or write instead. */
    FD_MODE_CHECK = 1u << 4,
    /* A regular file or block device (with FD_MODE_CHECK): epoll cannot
     * tell when it would block, so its reads and writes run on the
     * blocking pool (file.c). */
    FD_MODE_FILE = 1u << 5,
};

struct fd_waiter;

/* Two cache lines: the first holds what every request touches (the I/O
 * call's look, the poller's edge, the lone reader's and writer's wait),
 * the second what only the slow paths take (the lock, the waiter list). */
struct fd_state {
    struct poll_source src;    /* registered in poller; never freed */
    int fd;
    /* Readiness edges seen so far, per direction (WEFT__POLL_IN/OUT),
     * bumped without the lock by the poller's ready() callback; read
     * before each system call (see weft__reactor_snap). */
    _Atomic uint32_t seq_in, seq_out;
    /* Bumped (under lock) each time the number stops naming the file it
     * named: weft_close, or a descriptor the library created. */
    _Atomic uint32_t gen;
    _Atomic uint32_t mode;     /* enum fd_mode bits for this gen */
    /* System calls on the descriptor in progress (low bits) and
     * FD_OPS_CLOSING: weft_close ran while some were, so the close(2) is
     * left to the last of them (Go's fdMutex does the same): no call can
     * reach a new file that took the number meanwhile, and no call races
     * with the close(2). */
    _Atomic uint32_t ops;
    /* (1 << 32) | seq_in as a snapshot saw it before a read that came back
     * short on a stream socket, which leaves the receive queue empty: until
     * a newer edge, the next read can park without trying (Tokio does the
     * same). 0 = no such read. A hint: waiting is always safe, because a
     * newer edge (or the registration) reports data that came in since. */
    _Atomic uint64_t drained;
    /* The task waiting for WEFT__POLL_IN alone (reader) and the one
     * waiting for WEFT__POLL_OUT alone (writer), when each is the only
     * one: the state word of Tokio's ScheduledIo or Go's pollDesc. A
     * waiter puts itself there with a CAS from NULL and parks without the
     * lock; the poller's callback (or a close) takes it with an exchange
     * and wakes it, also without the lock (reactor.c: the slot protocol).
     * Further waiters, select's and two-direction waits use the list. */
    _Atomic(struct fd_waiter *) reader, writer;
    /* Waiters on the list, so that an edge takes the lock only when there
     * are some; changed under lock, read without it. */
    _Atomic uint32_t n_listed;
    /* Set (before the seq_in bump that reports it) once an edge said the
     * peer has closed or the socket failed: from then on a read never
     * blocks, however short the last one was. Per gen. */
    _Atomic bool hup;
    /* poller != NULL, readable without the lock: the slot path needs the
     * registration made. Written under lock. */
    _Atomic bool registered;
    pthread_mutex_t lock WEFT__ALIGNED_CL;
    struct poller *poller;     /* registered in, or NULL; under lock */
    struct list waiters;       /* struct fd_waiter; under lock */
} WEFT__ALIGNED_CL;

/* What a task saw before its system call: if any of it has changed by
 * the time the task would park, it retries instead. */
struct fd_snap {
    uint32_t gen, seq_in, seq_out;
};

#define FD_OPS_CLOSING (UINT32_C(1) << 31)

/* Slow paths of the two below (reactor.c). */
bool weft__reactor_op_begin_closing(struct fd_state *s);
void weft__reactor_op_end_closing(struct fd_state *s);

/* Brackets one system call on s's descriptor. False (the call must not be
 * made: -EBADF) once weft_close has begun. Any thread. */
static inline bool weft__reactor_op_begin(struct fd_state *s)
{
    /* Acquire pairs with the release in a close that cleared
     * FD_OPS_CLOSING: the number's new file is what we will reach. */
    uint32_t v = atomic_fetch_add_explicit(&s->ops, 1, memory_order_acquire);
    return WEFT__LIKELY(!(v & FD_OPS_CLOSING)) || weft__reactor_op_begin_closing(s);
}

static inline void weft__reactor_op_end(struct fd_state *s)
{
    /* acq_rel: our system call happens before the close(2) that the last
     * call out may have to make (or that weft_close makes on seeing 0). */
    uint32_t v = atomic_fetch_sub_explicit(&s->ops, 1, memory_order_acq_rel);
    if (WEFT__UNLIKELY(v == (FD_OPS_CLOSING | 1)))
        weft__reactor_op_end_closing(s);
}

/* The state of descriptor number fd (>= 0), created on first use. Returns
 * NULL with *err = -EBADF when fd is not open, -ENOMEM. Any thread. */
struct fd_state *weft__reactor_get(int fd, int *err);
/* The state of fd if the registry has one, else NULL. Never allocates. */
struct fd_state *weft__reactor_find(int fd);

static inline void weft__reactor_snap(struct fd_state *s, struct fd_snap *snap)
{
    /* Acquire: the system call that follows must not be ordered before
     * these loads; pairs with the releases in ready() and in the gen bumps
     * (a changed value seen later under the lock means "retry"). */
    snap->gen = atomic_load_explicit(&s->gen, memory_order_acquire);
    snap->seq_in = atomic_load_explicit(&s->seq_in, memory_order_acquire);
    snap->seq_out = atomic_load_explicit(&s->seq_out, memory_order_acquire);
}

/* Records that a read made after snap drained fd's receive queue. */
static inline void weft__reactor_note_drained(struct fd_state *s, const struct fd_snap *snap)
{
    atomic_store_explicit(&s->drained, (UINT64_C(1) << 32) | snap->seq_in,
                          memory_order_relaxed);
}

/* Whether no edge has come in since a read drained fd (see drained). */
static inline bool weft__reactor_is_drained(struct fd_state *s, const struct fd_snap *snap)
{
    /* hup is stored before the seq_in release that snap acquired. */
    return atomic_load_explicit(&s->drained, memory_order_relaxed) ==
               ((UINT64_C(1) << 32) | snap->seq_in) &&
           !atomic_load_explicit(&s->hup, memory_order_relaxed);
}

/* Parks the calling task until fd has a readiness edge in events
 * (WEFT__POLL_IN | WEFT__POLL_OUT) newer than snap. Registers fd with the
 * current worker's poller first if it is in none. Returns the edge's
 * WEFT__POLL_* bits (> 0), 0 when snap is already stale (an edge came in
 * meanwhile: retry the call), or -EBADF (closed meanwhile), -ECANCELED,
 * -ETIMEDOUT, -ENOMEM. A descriptor that epoll cannot watch (a regular
 * file) counts as always ready. Task only. */
WEFT__MUST_CHECK int weft__reactor_wait(struct fd_state *s, uint32_t events,
                                        const struct fd_snap *snap, unsigned call);

struct weft_task;

/* A task parked on a descriptor: a clause of its wait (sched/wait.h), on
 * the task's stack (or in a weft_sel). Linked to the descriptor either in
 * its reader or writer slot (weft__reactor_wait's fast path; the slot is
 * then the clause's queue and the exchange that takes it out its lock) or
 * in its waiter list (under the state's lock). A waker takes it off,
 * claims it and hands it its result (edge bits > 0, or -EBADF), then wakes
 * it (weft__wait_wake). */
struct fd_waiter {
    struct weft__clause cl;   /* first: a select reads its result there */
    uint32_t events;          /* WEFT__POLL_IN / _OUT wanted */
};

/* For select: queues w (its clause initialised, of the select's wait)
 * for an edge in events newer than snap, without parking. 0 when queued;
 * 1 when there is no need (an edge came in since snap, or epoll cannot
 * watch fd: look again); -EBADF, -ENOMEM. Task only. */
WEFT__MUST_CHECK int weft__reactor_sel_enqueue(struct fd_state *s, struct fd_waiter *w,
                                               uint32_t events, const struct fd_snap *snap);
/* Takes w, queued by weft__reactor_sel_enqueue, off unless a waker did. */
void weft__reactor_sel_withdraw(struct fd_state *s, struct fd_waiter *w);

/* Sets mode (enum fd_mode) for the file behind s if gen still matches.
 * Any thread. */
void weft__reactor_set_mode(struct fd_state *s, uint32_t gen, uint32_t mode);

/* The library just created descriptor fd (accept, socket): forgets what it
 * knew about an earlier file of that number (waking its stale waiters with
 * -EBADF) and records mode. Returns 0 or -ENOMEM. Any thread. */
WEFT__MUST_CHECK int weft__reactor_adopt(int fd, uint32_t mode);

/* weft_close's core: marks fd closed (new gen), wakes its waiters with
 * -EBADF, removes it from its poller, then close(2)s it, all under the
 * state's lock so no waiter can register the dying number meanwhile. If
 * system calls on fd are in progress, the close(2) is made by the last of
 * them as it finishes (microseconds later; the number stays taken until
 * then) and 0 is returned. Returns 0, -EBADF (already being closed), or
 * -errno of close(2). Any thread. */
int weft__reactor_close(int fd);

/* A runtime is going away: forgets every registration in poller p (its
 * epoll instance is about to be closed). No task may wait on those
 * descriptors any more. Plain thread only. */
void weft__reactor_forget_poller(struct poller *p);

#endif /* WEFT_REACTOR_REACTOR_H */
