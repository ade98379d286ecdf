/* SPDX-License-Identifier: MIT */
/* The one waiting mechanism every blocking primitive is built on (after
 * libdill's clauses and Go's sudog).
 *
 * A wait is a record (struct weft__wait) on the waiter's stack and one
 * clause (struct weft__clause) per object it waits on, linked into that
 * object's own queue under that object's own lock. The record carries an
 * atomic claim, `winner`: a waker that takes a clause off a queue must win
 * the claim for that clause before it hands anything over (an element, a
 * permit, a result); a waker that loses it (the wait completed through
 * another clause, or gave up) drops the clause and tries the next one. So
 * at most one clause of a wait is ever handed anything. A clause that is
 * the only one of its wait (sole) is claimed by its object's lock alone:
 * the waker and the waiter's withdrawal both decide under it, so the
 * claim is a plain store, not a CAS (the message-passing hot path).
 *
 * The waker's half, in this order: claim and hand (weft__wait_take,
 * weft__wait_hand; object lock held), then weft__wait_wake (with or
 * without the lock): it wakes the task (or the plain thread) and only
 * then publishes `done`, after which it never touches the record again,
 * so that the waiter may return and its stack be reused at once.
 *
 * The waiter's half: weft__wait_block parks the task (or blocks the plain
 * thread on its condition variable) once and reports whether a claim was won, the wait
 * was interrupted (cancellation, deadline), or neither (a spurious wake).
 * weft__wait_one is the whole loop of a one-clause wait; a select closes
 * its claim (weft__wait_close) and withdraws its other clauses. Whoever
 * sees a claim won before `done` waits for the waker to finish with the
 * record (weft__wait_settle): the "waker still touching me" handshake,
 * written once.
 *
 * The reason (what a parked task waits on, for dumps) is one word: a kind,
 * for a descriptor wait the call, direction and descriptor, and beside it
 * the object (weft__park_obj). */
#ifndef WEFT_SCHED_WAIT_H
#define WEFT_SCHED_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "util/list.h"

struct weft_task;

/* ------------------------------------------------------------ reasons */

/* What a wait is on (the order is the dump's, diag/dump.c). */
enum weft__wait_kind {
    WEFT__WK_NONE,
    WEFT__WK_SLEEP,
    WEFT__WK_SEM,
    WEFT__WK_MUTEX,
    WEFT__WK_EVENT,
    WEFT__WK_CHAN_SEND,
    WEFT__WK_CHAN_RECV,
    WEFT__WK_JOIN,
    WEFT__WK_ANY,
    WEFT__WK_FD,
    WEFT__WK_BLOCKING,
    WEFT__WK_GEN_NEXT,
    WEFT__WK_GEN_YIELD,
    WEFT__WK_SELECT,
    WEFT__WK_SIGNAL,
    WEFT__WK_OTHER,
    WEFT__WK_COUNT
};

/* The call of a descriptor wait. */
enum weft__wait_call {
    WEFT__WC_NONE,
    WEFT__WC_READ,
    WEFT__WC_RECV,
    WEFT__WC_ACCEPT,
    WEFT__WC_WRITE,
    WEFT__WC_SEND,
    WEFT__WC_CONNECT,
    WEFT__WC_WAIT_FD,
    WEFT__WC_COPY,
    WEFT__WC_PREAD,
    WEFT__WC_PWRITE,
    WEFT__WC_RECVFROM,
    WEFT__WC_SENDTO,
    WEFT__WC_RECVMSG,
    WEFT__WC_SENDMSG,
    WEFT__WC_COUNT
};

/* Directions of a descriptor wait (bits). */
enum { WEFT__WAIT_DIR_READ = 1u, WEFT__WAIT_DIR_WRITE = 2u };

/* The reason word: kind in bits 0-7, direction 8-15, call 16-23, and the
 * descriptor + 1 in bits 32-63 (0: none). */
static inline uint64_t weft__why(unsigned kind) { return kind; }
static inline uint64_t weft__why_fd(unsigned call, unsigned dir, int fd)
{
    return WEFT__WK_FD | (uint64_t)(dir & 0xffu) << 8 | (uint64_t)(call & 0xffu) << 16 |
           (uint64_t)(uint32_t)(fd + 1) << 32;
}
static inline unsigned weft__why_kind(uint64_t why)
{
    unsigned k = (unsigned)(why & 0xffu);
    return k < WEFT__WK_COUNT ? k : WEFT__WK_OTHER;
}
static inline unsigned weft__why_dir(uint64_t why) { return (unsigned)(why >> 8) & 0xffu; }
static inline unsigned weft__why_call(uint64_t why) { return (unsigned)(why >> 16) & 0xffu; }
/* The descriptor, or -1. */
static inline int weft__why_fd_of(uint64_t why) { return (int)(uint32_t)(why >> 32) - 1; }

/* "semaphore", "chan recv"...; "other" for an unknown kind. */
const char *weft__wait_kind_name(unsigned kind);
/* "read", "accept"...; "" for none. */
const char *weft__wait_call_name(unsigned call);

/* ------------------------------------------------------------ records */

/* winner values besides a clause index. */
#define WEFT__WAIT_OPEN (-1)   /* nothing won yet: a waker may claim */
#define WEFT__WAIT_CLOSED (-2) /* the waiter stopped waiting: nobody may */

struct weft__thread_park;

/* A wait, on the waiter's stack. */
struct weft__wait {
    _Atomic int winner;      /* WEFT__WAIT_OPEN, CLOSED, or the index of
                                the clause a waker claimed */
    _Atomic uint32_t done;   /* 1: the claiming waker is done with us for
                                good */
    struct weft_task *task;  /* the waiting task; NULL for a plain thread */
    struct weft__thread_park *thread; /* a plain thread's condition
                                variable (set only when task is NULL) */
};

/* The calling plain thread's condition variable and its mutex (one per
 * thread, made on first use). */
struct weft__thread_park *weft__wait_thread_park(void);

/* One object a wait is on, linked in that object's queue. */
struct weft__clause {
    struct list link;        /* in the object's queue (its lock), then in
                                a waker's list of wakes to do */
    struct weft__wait *wait;
    void *data;              /* the primitive's (element buffer, value) */
    int index;               /* its index among the wait's clauses */
    int result;              /* handed with the claim: 0 or -errno, or the
                                primitive's own code */
    bool sole;               /* the wait's only clause (see the top) */
    bool queued;             /* linked in its object's queue; object lock */
};

/* A one-clause wait laid out in one cache line: the clause, then the
 * record's fields a waker touches on a hand-off (winner, done, task;
 * thread, for plain threads only, may spill over), so that a wake-up
 * across workers pulls one line of the waiter's stack, not two. Every
 * sole-clause wait on a hot path declares one of these. */
struct weft__wait1 {
    struct weft__clause cl;
    struct weft__wait w;
} WEFT__ALIGNED_CL;

_Static_assert(offsetof(struct weft__wait1, w) + offsetof(struct weft__wait, thread) <= 64,
               "a one-clause wait's hot fields fit one cache line");

static inline void weft__wait_init(struct weft__wait *w, struct weft_task *self)
{
    atomic_init(&w->winner, WEFT__WAIT_OPEN);
    atomic_init(&w->done, 0u);
    w->task = self;
    if (WEFT__UNLIKELY(!self))
        w->thread = weft__wait_thread_park();
}

static inline void weft__clause_init(struct weft__clause *cl, struct weft__wait *w, int index,
                                     void *data, bool sole)
{
    cl->wait = w;
    cl->data = data;
    cl->index = index;
    cl->result = 0;
    cl->sole = sole;
    cl->queued = false;
}

/* Links cl at the back of q; its object's lock held. */
static inline void weft__wait_enqueue(struct list *q, struct weft__clause *cl)
{
    cl->queued = true;
    list_push_back(q, &cl->link);
}

/* Takes cl off its queue, if a waker has not; object lock held. */
static inline void weft__wait_unlink(struct weft__clause *cl)
{
    if (cl->queued) {
        cl->queued = false;
        list_remove(&cl->link);
    }
}

/* Claims cl's wait for cl; its object's lock held, cl queued. False when
 * another clause (or the waiter's giving up) got there first. */
static inline bool weft__wait_claim(struct weft__clause *cl)
{
    struct weft__wait *w = cl->wait;
    if (WEFT__LIKELY(cl->sole)) {
        /* Release: pairs with weft__wait_block's acquire load of winner
         * (the waiter then waits for done before it reads anything). The
         * object's lock orders us against the waiter's withdrawal. */
        atomic_store_explicit(&w->winner, cl->index, memory_order_release);
        return true;
    }
    int open = WEFT__WAIT_OPEN;
    /* acq_rel: pairs with the other clauses' claims and with the waiter's
     * CAS to CLOSED (weft__wait_close): all RMWs of winner, so one wins
     * and the others read its value. */
    return atomic_compare_exchange_strong_explicit(&w->winner, &open, cl->index,
                                                   memory_order_acq_rel, memory_order_acquire);
}

static inline struct weft__clause *weft__wait_first(struct list *q)
{
    return list_empty(q) ? NULL : weft__container_of(q->next, struct weft__clause, link);
}

/* The first clause of q whose claim this waker wins, or NULL; lock held.
 * Clauses of waits that completed elsewhere are dropped on the way. The
 * winner stays queued: weft__wait_hand takes it off. */
WEFT__NOINLINE struct weft__clause *weft__wait_take_slow(struct list *q);
static inline struct weft__clause *weft__wait_take(struct list *q)
{
    struct weft__clause *cl = weft__wait_first(q);
    if (WEFT__LIKELY(!cl || cl->sole)) {
        if (cl)
            weft__wait_claim(cl);
        return cl;
    }
    return weft__wait_take_slow(q);
}

/* Takes the claimed cl off its queue with result; lock held. The wake-up
 * (weft__wait_wake) may follow after the unlock. */
static inline void weft__wait_hand(struct weft__clause *cl, int result)
{
    cl->queued = false;
    list_remove(&cl->link);
    cl->result = result;
}

void weft__wake(struct weft_task *t); /* sched.h */
/* The plain-thread half of weft__wait_wake: done and the signal under
 * the thread's mutex, whose unlock is the waker's last touch. */
void weft__wait_wake_thread(struct weft__wait *w);

/* Wakes the waiter of the handed cl and lets it go: after this, neither cl
 * nor its wait may be touched. Any thread, with or without the lock. */
static inline void weft__wait_wake(struct weft__clause *cl)
{
    struct weft__wait *w = cl->wait;
    struct weft_task *t = w->task;
    if (WEFT__UNLIKELY(t == NULL)) {
        weft__wait_wake_thread(w);
        return;
    }
    /* The task first, done last: once a waiter sees done it may return
     * (and its task end) without waiting for us. */
    weft__wake(t);
    /* Release: publishes the result (and what the waker copied) to
     * weft__wait_settle's and weft__wait_block's acquire loads. */
    atomic_store_explicit(&w->done, 1u, memory_order_release);
}

/* Takes, hands and wakes the first clause of q that can be claimed; false
 * when none. Lock held. */
static inline bool weft__wait_wake_one(struct list *q, int result)
{
    struct weft__clause *cl = weft__wait_take(q);
    if (!cl)
        return false;
    weft__wait_hand(cl, result);
    weft__wait_wake(cl);
    return true;
}

/* Hands every claimable clause of q result and puts it on wakes (for
 * weft__wait_flush, in FIFO order on one worker: the first waiter is
 * woken last, into the waker's next slot, the rest queued in order behind
 * it). Lock held. */
void weft__wait_hand_all(struct list *q, int result, struct list *wakes);
/* Wakes every clause put on wakes, in order. */
void weft__wait_flush(struct list *wakes);

/* The claiming waker is done with w (done published): waits for it. */
void weft__wait_settle_slow(struct weft__wait *w);
static inline void weft__wait_settle(struct weft__wait *w)
{
    /* Acquire: pairs with weft__wait_wake's release store of done; the
     * winner's result (and whatever the waker copied) is ours after it. */
    if (WEFT__UNLIKELY(!atomic_load_explicit(&w->done, memory_order_acquire)))
        weft__wait_settle_slow(w);
}

/* Closes w's claim: after it no waker can claim a clause. Returns the
 * index of the clause a waker claimed first, or -1; a claimed clause is
 * then settled (weft__wait_settle) by the caller once its other clauses
 * are withdrawn. */
static inline int weft__wait_close(struct weft__wait *w)
{
    /* Acquire: pairs with the winning claim (release or acq_rel); a claim
     * is final, so a plain load spares the usual case the CAS. */
    int open = atomic_load_explicit(&w->winner, memory_order_acquire);
    /* acq_rel: pairs with the claims' CAS (weft__wait_claim): after it no
     * waker can claim; failing, we read the winner it stored. */
    if (open == WEFT__WAIT_OPEN &&
        atomic_compare_exchange_strong_explicit(&w->winner, &open, WEFT__WAIT_CLOSED,
                                                memory_order_acq_rel, memory_order_acquire))
        return -1;
    return open;
}

/* A plain thread's block (weft__wait_block): a condition variable (not a
 * raw futex, so that sanitizers that defer signal handlers to intercepted
 * calls see the thread blocked). */
int weft__wait_block_thread(struct weft__wait *w, void (*commit)(void *), void *arg,
                            int64_t deadline);

#endif /* WEFT_SCHED_WAIT_H */

/* The waiting loop needs the park and cancellation of sched/sched.h, which
 * includes this header first for the types and again at its end for
 * this part. */
#if defined(WEFT_SCHED_SCHED_H_DONE) && !defined(WEFT_SCHED_WAIT_BLOCK_DONE)
#define WEFT_SCHED_WAIT_BLOCK_DONE

#include "util/clock.h"

/* Blocks once. A task parks (commit(arg) runs once it is switched away,
 * commit may be NULL; deadline and its deadline scope end the park, and
 * cancellation) with why and obj as its reason; a plain thread runs
 * commit(arg), then sleeps on its condition variable until a claim's waker is done or
 * deadline. Returns 1 when a claim was won (the waker is done: the
 * winner's result may be read), a negative errno (-ECANCELED,
 * -ETIMEDOUT: the caller withdraws), or 0 (woken for nothing the record
 * knows: a select looks again). Inline, so that a one-clause wait costs
 * one call (the park). */
static inline __attribute__((always_inline)) int
weft__wait_block(struct weft__wait *w, void (*commit)(void *), void *arg, int64_t deadline,
                 uint64_t why, uint64_t obj)
{
    struct weft_task *self = w->task;
    if (WEFT__UNLIKELY(!self))
        return weft__wait_block_thread(w, commit, arg, deadline);
    weft__park_obj(self, commit, arg, deadline, why, obj);
    /* Acquire: pairs with weft__wait_wake's release store of done. */
    if (WEFT__LIKELY(atomic_load_explicit(&w->done, memory_order_acquire)))
        return 1;
    /* Acquire: pairs with weft__wait_claim's release store or CAS. */
    if (atomic_load_explicit(&w->winner, memory_order_acquire) >= 0) {
        /* Woken (by the waker, or by something else) before the waker
         * published done: it is a few instructions from it. */
        weft__wait_settle_slow(w);
        return 1;
    }
    int rc = weft__interrupted(self);
    if (!rc && deadline != INT64_MAX && weft__clock_ns() >= deadline)
        rc = -ETIMEDOUT;
    return rc;
}

/* The whole wait of one sole clause cl (queued, its object's lock held
 * through lock/unlock(arg), which are called only from here; unlinked(arg),
 * when not NULL, runs under the lock after a withdrawal took cl off its
 * queue, for the object's own bookkeeping): blocks until
 * a waker hands cl a result (0 returned, cl->result holds it) or the wait
 * is interrupted (-ECANCELED, -ETIMEDOUT; cl was then taken off its queue
 * under the lock and handed nothing). Returns with the lock released.
 * Inline so that each primitive's lock calls inline. */
static inline __attribute__((always_inline)) int
weft__wait_one(struct weft__wait *w, struct weft__clause *cl, void (*lock)(void *),
               void (*unlock)(void *), void (*unlinked)(void *), void *arg, int64_t deadline,
               uint64_t why, uint64_t obj)
{
    void (*commit)(void *) = unlock;
    for (;;) {
        int rc = weft__wait_block(w, commit, arg, deadline, why, obj);
        commit = NULL;
        if (WEFT__LIKELY(rc > 0))
            return 0;
        if (rc == 0)
            continue;
        /* Interrupted: withdraw, unless a waker handed us a result first
         * (then it is ours, and the interruption shows at the next
         * suspension point). */
        lock(arg);
        if (cl->queued) {
            weft__wait_unlink(cl);
            if (unlinked)
                unlinked(arg);
            unlock(arg);
            return rc;
        }
        unlock(arg);
        weft__wait_settle(w);
        return 0;
    }
}


#endif /* WEFT_SCHED_WAIT_BLOCK_DONE */
