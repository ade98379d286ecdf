/* SPDX-License-Identifier: MIT */
/* The descriptor registry and the wait/wake protocol of the I/O calls (see
 * reactor.h). The registry is a table of pointers indexed by descriptor
 * number: lookups are lock-free, growth and first use of a number take
 * one process-wide lock. States are never freed (a number is reused by
 * later descriptors), so a readiness event that a poller harvested just
 * before a close can still be dispatched safely: it only causes a spurious
 * wake-up.
 *
 * Two ways to wait. The common one, a lone reader or writer, goes without
 * the lock (the slot protocol, below): one CAS to publish the waiter, one
 * exchange by the waker to take it. Every other wait (a second waiter in
 * the same direction, both directions at once, select's cases, the first
 * wait, which registers the descriptor) queues on the state's list and
 * parks with the state's lock as its commit; wakers of the list hold that
 * lock, so a list waiter is never woken after it has left. Either way the
 * waiter is a clause of a wait (sched/wait.h), claimed and woken by the
 * waker that takes it. */
#include "internal.h"

#include <fcntl.h>
#include <stddef.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "reactor/reactor.h"
#include "sched/sched.h"

/* ------------------------------------------------------------ the table */

struct fd_table {
    size_t cap;                          /* slots */
    struct fd_table *older;              /* retired, kept for readers */
    _Atomic(struct fd_state *) slots[];
};

/* The current table. Readers load it (acquire) without a lock; growth
 * publishes a larger copy (release) under table_lock and keeps the old one
 * alive, because a reader may still be looking at it. The retired tables
 * together are smaller than the current one. */
static _Atomic(struct fd_table *) fd_table;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

#define WEFT__FD_TABLE_MIN 256

/* reactor.h: what a request touches on the first line, the lock and the
 * list on the second. */
_Static_assert(offsetof(struct fd_state, lock) == WEFT__CACHELINE &&
                   sizeof(struct fd_state) == 2 * WEFT__CACHELINE,
               "fd_state: hot fields on its first cache line, lock and list on the second");

static void fd_ready(struct poll_source *src, uint32_t events);

struct fd_state *weft__reactor_find(int fd)
{
    /* Acquire pairs with the release stores in grow/install below: a table
     * or state seen here is fully initialised. */
    struct fd_table *t = atomic_load_explicit(&fd_table, memory_order_acquire);
    if (WEFT__LIKELY(t != NULL && (size_t)fd < t->cap))
        return atomic_load_explicit(&t->slots[fd], memory_order_acquire);
    return NULL;
}

/* fcntl(F_GETFD) out of line, so errno is read on the thread that made
 * the call (a task may migrate at every suspension point). */
static WEFT__NOINLINE int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0 ? 0 : -errno;
}

static struct fd_table *grow_locked(struct fd_table *old, size_t need)
{
    size_t cap = old ? old->cap * 2 : WEFT__FD_TABLE_MIN;
    while (cap < need)
        cap *= 2;
    struct fd_table *t = calloc(1, sizeof *t + cap * sizeof t->slots[0]);
    if (!t)
        return NULL;
    t->cap = cap;
    t->older = old;
    for (size_t i = 0; old && i < old->cap; i++)
        atomic_init(&t->slots[i], atomic_load_explicit(&old->slots[i], memory_order_relaxed));
    for (size_t i = old ? old->cap : 0; i < cap; i++)
        atomic_init(&t->slots[i], NULL);
    /* Release: publishes the copied slots to weft__reactor_find. */
    atomic_store_explicit(&fd_table, t, memory_order_release);
    return t;
}

/* fork(): the child has one thread and none of the parent's runtimes
 * (include/weft/runtime.h). What the registry knew about registrations
 * points at the parent's pollers and waiters, and a state's lock or count
 * of system calls may have been held by a parent thread that does not
 * exist here: the child forgets all of it, so that its own runtimes
 * register inherited descriptors afresh. What it knew about the files
 * (O_NONBLOCK, socket or not) stays true: the open files are shared. */
static void atfork_prepare(void) { pthread_mutex_lock(&table_lock); }

static void atfork_parent(void) { pthread_mutex_unlock(&table_lock); }

static void atfork_child(void)
{
    pthread_mutex_init(&table_lock, NULL);
    struct fd_table *t = atomic_load_explicit(&fd_table, memory_order_relaxed);
    for (size_t i = 0; t && i < t->cap; i++) {
        struct fd_state *s = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (!s)
            continue;
        pthread_mutex_init(&s->lock, NULL);
        s->poller = NULL;
        list_init(&s->waiters);
        atomic_store_explicit(&s->ops, 0, memory_order_relaxed);
        atomic_store_explicit(&s->reader, NULL, memory_order_relaxed);
        atomic_store_explicit(&s->writer, NULL, memory_order_relaxed);
        atomic_store_explicit(&s->n_listed, 0, memory_order_relaxed);
        atomic_store_explicit(&s->registered, false, memory_order_relaxed);
    }
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
    /* Without the handlers a child's runtime could miss the wake-ups of
     * an inherited descriptor; nothing else to do about a failure. */
    (void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

struct fd_state *weft__reactor_get(int fd, int *err)
{
    struct fd_state *s = weft__reactor_find(fd);
    if (WEFT__LIKELY(s != NULL))
        return s;
    pthread_once(&atfork_once, atfork_register);
    /* First use of this number: it must name an open descriptor (which
     * also bounds the table by RLIMIT_NOFILE). */
    int rc = fd_is_open(fd);
    if (rc < 0) {
        *err = rc;
        return NULL;
    }
    pthread_mutex_lock(&table_lock);
    struct fd_table *t = atomic_load_explicit(&fd_table, memory_order_relaxed);
    if (!t || (size_t)fd >= t->cap) {
        t = grow_locked(t, (size_t)fd + 1);
        if (!t)
            goto fail_nomem;
    }
    s = atomic_load_explicit(&t->slots[fd], memory_order_relaxed);
    if (!s) {
        s = aligned_alloc(WEFT__CACHELINE, sizeof *s);
        if (!s)
            goto fail_nomem;
        memset(s, 0, sizeof *s);
        s->src.ready = fd_ready;
        s->fd = fd;
        atomic_init(&s->seq_in, 0);
        atomic_init(&s->seq_out, 0);
        atomic_init(&s->gen, 0);
        atomic_init(&s->mode, 0);
        atomic_init(&s->drained, 0);
        atomic_init(&s->hup, false);
        atomic_init(&s->ops, 0);
        atomic_init(&s->reader, NULL);
        atomic_init(&s->writer, NULL);
        atomic_init(&s->n_listed, 0);
        atomic_init(&s->registered, false);
        pthread_mutex_init(&s->lock, NULL);
        s->poller = NULL;
        list_init(&s->waiters);
        /* Release: publishes the initialised state to find's acquire. */
        atomic_store_explicit(&t->slots[fd], s, memory_order_release);
    }
    pthread_mutex_unlock(&table_lock);
    return s;
fail_nomem:
    pthread_mutex_unlock(&table_lock);
    *err = -ENOMEM;
    return NULL;
}

/* ------------------------------------------------------------ wake-ups */

/* The slot protocol. A lone waiter W publishes its clause in the
 * direction's slot (reader or writer) with a CAS from NULL, then reads
 * the edge count, gen and registration again; a waker K first changes
 * one of those (an edge bumps the count, a close bumps gen, a forgotten
 * poller clears registered), then reads the slot. All four accesses are
 * seq_cst, so (Dekker) at least one side sees the other: K finds W in the
 * slot, or W sees the change and withdraws (a CAS back to NULL). Whoever
 * takes the clause out of the slot (K's exchange, W's CAS) owns its
 * outcome; the exchange makes that one side. A waker that took it claims
 * it (sole: the exchange decided), hands it result and wakes it
 * (weft__wait_wake), whose done is its last touch: a waiter whose CAS
 * failed waits for that (weft__wait_settle). */
static void slot_wake(struct fd_waiter *w, int result)
{
    weft__wait_claim(&w->cl);
    w->cl.queued = false;
    w->cl.result = result;
    weft__wait_wake(&w->cl);
}

/* Takes the waiter out of slot, if there is one, and wakes it: with its
 * edge bits (events > 0) or with err < 0. Any thread; no lock. */
static inline void slot_take(_Atomic(struct fd_waiter *) *slot, uint32_t events, int err)
{
    /* seq_cst: the change that the waiter must see (edge count, gen,
     * registered; seq_cst too) is ordered before this load (the slot
     * protocol above). */
    if (!atomic_load_explicit(slot, memory_order_seq_cst))
        return;
    /* acq_rel: acquires the waiter's record (its CAS that published it
     * released it); one winner between us, other wakers and the waiter's
     * own withdrawal. */
    struct fd_waiter *w = atomic_exchange_explicit(slot, NULL, memory_order_acq_rel);
    if (!w)
        return;
    slot_wake(w, err < 0 ? err : (int)((w->events & events) | (events & WEFT__POLL_ERR)));
}

/* Lock held: one list waiter fewer. */
static inline void unlisted(struct fd_state *s)
{
    atomic_store_explicit(&s->n_listed, atomic_load_explicit(&s->n_listed, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}

static void unlisted_cb(void *s) { unlisted(s); }
static void state_lock(void *s) { pthread_mutex_lock(&((struct fd_state *)s)->lock); }
static void state_unlock(void *s) { pthread_mutex_unlock(&((struct fd_state *)s)->lock); }

/* Wakes every list waiter whose interest meets events, handing it the
 * bits it asked for (plus WEFT__POLL_ERR); with err < 0, wakes every
 * waiter with err instead. A select's clause is handed over only if its
 * claim is won, and dropped otherwise. Lock held. */
static void wake_locked(struct fd_state *s, uint32_t events, int err)
{
    struct list *l = s->waiters.next;
    while (l != &s->waiters) {
        struct fd_waiter *w = weft__container_of(l, struct fd_waiter, cl.link);
        l = l->next;
        uint32_t hit = w->events & events;
        if (err < 0 || hit) {
            unlisted(s);
            if (weft__wait_claim(&w->cl)) {
                weft__wait_hand(&w->cl, err < 0 ? err : (int)(hit | (events & WEFT__POLL_ERR)));
                weft__wait_wake(&w->cl);
            } else {
                weft__wait_unlink(&w->cl);
            }
        }
    }
}

/* Both slots' waiters, then the list's, woken with err (< 0) or events. */
static void wake_all_locked(struct fd_state *s, uint32_t events, int err)
{
    slot_take(&s->reader, events, err);
    slot_take(&s->writer, events, err);
    if (!list_empty(&s->waiters))
        wake_locked(s, events, err);
}

/* The poller's callback, on whichever thread polled; no lock unless the
 * list has waiters. */
static void fd_ready(struct poll_source *src, uint32_t events)
{
    struct fd_state *s = weft__container_of(src, struct fd_state, src);
    /* Relaxed: published by the seq_in bump below. */
    if (events & WEFT__POLL_HUP)
        atomic_store_explicit(&s->hup, true, memory_order_relaxed);
    /* seq_cst: releases the edge to weft__reactor_snap's acquire, and is
     * ordered before the loads of the slots and of n_listed (the slot
     * protocol; list waiters bump n_listed, then compare the counts). */
    if (events & WEFT__POLL_IN)
        atomic_fetch_add_explicit(&s->seq_in, 1, memory_order_seq_cst);
    /* seq_cst: as seq_in. */
    if (events & WEFT__POLL_OUT)
        atomic_fetch_add_explicit(&s->seq_out, 1, memory_order_seq_cst);
    if (events & WEFT__POLL_IN)
        slot_take(&s->reader, events, 0);
    if (events & WEFT__POLL_OUT)
        slot_take(&s->writer, events, 0);
    /* seq_cst: after the count bumps above, pairs with the seq_cst
     * increment of a list waiter before it compares the counts. */
    if (atomic_load_explicit(&s->n_listed, memory_order_seq_cst)) {
        pthread_mutex_lock(&s->lock);
        if (!list_empty(&s->waiters))
            wake_locked(s, events, 0);
        pthread_mutex_unlock(&s->lock);
    }
}

/* ------------------------------------------------------------ waiting */

/* What a list wait finds before it queues, with s->lock held: -EBADF
 * (the number names another file now), another negative errno
 * (registration failed), READY_ALWAYS (epoll refuses the file: regular
 * files and directories never block), or 0 (registered: queue, then
 * compare the counts with list_queue). The lock is released on every
 * return but 0. */
enum { READY = 1, READY_ALWAYS = 2 };

static int look_locked(struct fd_state *s, const struct fd_snap *snap)
{
    if (atomic_load_explicit(&s->gen, memory_order_relaxed) != snap->gen) {
        pthread_mutex_unlock(&s->lock);
        return -EBADF;
    }
    if (!s->poller) {
        /* First wait on this file: register once, edge-triggered, for both
         * directions; never re-armed. Registration reports a readiness that
         * already exists as an edge, so nothing between the system call and
         * here is lost. */
        struct poller *p = &weft__worker_self()->poller;
        int rc = weft__poller_add(p, s->fd, WEFT__POLL_IN | WEFT__POLL_OUT, &s->src);
        if (rc == -EEXIST) /* left behind by a close(2) behind our back */
            rc = weft__poller_mod(p, s->fd, WEFT__POLL_IN | WEFT__POLL_OUT, &s->src);
        if (rc < 0) {
            pthread_mutex_unlock(&s->lock);
            return rc == -EPERM ? READY_ALWAYS : rc;
        }
        s->poller = p;
        /* Relaxed: the slot path only needs to know the registration
         * exists; a stale false sends it down the locked path. */
        atomic_store_explicit(&s->registered, true, memory_order_relaxed);
    }
    return 0;
}

/* Whether an edge in events came in since snap. seq_cst: after the
 * caller's publication of itself (slot CAS, n_listed increment), pairs
 * with fd_ready's seq_cst bumps (the slot protocol). */
static inline bool edge_since(struct fd_state *s, uint32_t events, const struct fd_snap *snap)
{
    /* seq_cst: see above. */
    if ((events & WEFT__POLL_IN) &&
        atomic_load_explicit(&s->seq_in, memory_order_seq_cst) != snap->seq_in)
        return true;
    /* seq_cst: see above. */
    return (events & WEFT__POLL_OUT) &&
           atomic_load_explicit(&s->seq_out, memory_order_seq_cst) != snap->seq_out;
}

/* Queues w on the list (lock held, look_locked said 0), unless an edge
 * came in since snap: then unlocks and returns READY. */
static int list_queue(struct fd_state *s, struct fd_waiter *w, uint32_t events,
                      const struct fd_snap *snap)
{
    weft__wait_enqueue(&s->waiters, &w->cl);
    /* seq_cst: ordered before the count comparison below; pairs with
     * fd_ready's seq_cst load of n_listed after its bumps. */
    atomic_fetch_add_explicit(&s->n_listed, 1, memory_order_seq_cst);
    if (edge_since(s, events, snap)) {
        weft__wait_unlink(&w->cl);
        atomic_fetch_sub_explicit(&s->n_listed, 1, memory_order_relaxed);
        pthread_mutex_unlock(&s->lock);
        return READY;
    }
    return 0;
}

/* slot_wait's answer when the slot is taken (another task waits in that
 * direction): queue on the list instead. And its own "go on waiting". */
enum { SLOT_BUSY = INT_MIN, SLOT_PARK = INT_MIN + 1 };

/* The lone reader's (or writer's) wait: the slot protocol. Returns as
 * weft__reactor_wait, or SLOT_BUSY. */
static int slot_wait(struct fd_state *s, _Atomic(struct fd_waiter *) *slot, uint32_t events,
                     const struct fd_snap *snap, uint64_t why, struct weft_task *self)
{
    struct weft__wait wt;
    struct fd_waiter w = {.events = events};
    weft__wait_init(&wt, self);
    weft__clause_init(&w.cl, &wt, 0, NULL, true);
    w.cl.queued = true;
    struct fd_waiter *none = NULL;
    /* seq_cst: publishes w (release, to the waker's acq_rel exchange) and
     * is ordered before the loads that look for a change (the slot
     * protocol). */
    if (!atomic_compare_exchange_strong_explicit(slot, &none, &w, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return SLOT_BUSY;
    int rc = 0;
    /* seq_cst: as edge_since (pairs with renew_locked's gen bump and
     * forget_poller's store of registered). */
    if (atomic_load_explicit(&s->gen, memory_order_seq_cst) != snap->gen)
        rc = -EBADF;
    else if (!atomic_load_explicit(&s->registered, memory_order_seq_cst) ||
             edge_since(s, events, snap))
        rc = 0; /* retry the call (which registers again if need be) */
    else
        rc = SLOT_PARK;
    for (;;) {
        if (rc != SLOT_PARK) {
            struct fd_waiter *me = &w;
            /* Relaxed on success: our own record back; failing, a waker
             * took it and weft__wait_settle acquires its result. */
            if (atomic_compare_exchange_strong_explicit(slot, &me, NULL, memory_order_relaxed,
                                                        memory_order_relaxed))
                return rc;
            weft__wait_settle(&wt);
            /* A waiter of a file that is gone stays -EBADF even if an edge
             * (of the number's next file) took it first: a retry would
             * reach that file. */
            return rc == -EBADF ? rc : w.cl.result;
        }
        rc = weft__wait_block(&wt, NULL, NULL, INT64_MAX, why, (uint64_t)(uintptr_t)&s->lock);
        if (rc > 0)
            return w.cl.result;
        if (rc == 0)
            rc = SLOT_PARK; /* a spurious wake-up */
    }
}

int weft__reactor_wait(struct fd_state *s, uint32_t events, const struct fd_snap *snap,
                       unsigned call)
{
    struct weft_task *self = weft__task_self();
    uint64_t why = weft__why_fd(call,
                                ((events & WEFT__POLL_IN) ? WEFT__WAIT_DIR_READ : 0u) |
                                    ((events & WEFT__POLL_OUT) ? WEFT__WAIT_DIR_WRITE : 0u),
                                s->fd);
    /* Relaxed: see look_locked (a stale false takes the locked path). */
    if (WEFT__LIKELY(atomic_load_explicit(&s->registered, memory_order_relaxed)) &&
        (events == WEFT__POLL_IN || events == WEFT__POLL_OUT)) {
        int rc = slot_wait(s, events == WEFT__POLL_IN ? &s->reader : &s->writer, events, snap,
                           why, self);
        if (rc != SLOT_BUSY)
            return rc;
    }
    pthread_mutex_lock(&s->lock);
    int look = look_locked(s, snap);
    if (look != 0)
        return look == READY_ALWAYS ? (int)events : look;
    struct weft__wait wt;
    struct fd_waiter w = {.events = events};
    weft__wait_init(&wt, self);
    weft__clause_init(&w.cl, &wt, 0, NULL, true);
    if (list_queue(s, &w, events, snap) == READY)
        return 0;
    int rc = weft__wait_one(&wt, &w.cl, state_lock, state_unlock, unlisted_cb, s, INT64_MAX, why,
                            (uint64_t)(uintptr_t)&s->lock);
    return rc ? rc : w.cl.result;
}

int weft__reactor_sel_enqueue(struct fd_state *s, struct fd_waiter *w, uint32_t events,
                              const struct fd_snap *snap)
{
    pthread_mutex_lock(&s->lock);
    int look = look_locked(s, snap);
    if (look != 0)
        return look > 0 ? 1 : look;
    w->events = events;
    if (list_queue(s, w, events, snap) == READY)
        return 1;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void weft__reactor_sel_withdraw(struct fd_state *s, struct fd_waiter *w)
{
    pthread_mutex_lock(&s->lock);
    if (w->cl.queued) {
        weft__wait_unlink(&w->cl);
        atomic_fetch_sub_explicit(&s->n_listed, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->lock);
}

void weft__reactor_set_mode(struct fd_state *s, uint32_t gen, uint32_t mode)
{
    pthread_mutex_lock(&s->lock);
    if (atomic_load_explicit(&s->gen, memory_order_relaxed) == gen)
        /* Release: the fcntl that made the file non-blocking happened
         * before; pairs with the acquire load in the I/O calls. */
        atomic_store_explicit(&s->mode, mode, memory_order_release);
    pthread_mutex_unlock(&s->lock);
}

/* The number now names another file (or none): new gen, nothing known,
 * waiters of the old file get -EBADF. Lock held. */
static void renew_locked(struct fd_state *s, uint32_t mode)
{
    /* seq_cst: releases to weft__reactor_snap's acquire, and is ordered
     * before wake_all_locked's slot loads (the slot protocol: a slot
     * waiter re-reads gen after publishing itself). */
    atomic_fetch_add_explicit(&s->gen, 1, memory_order_seq_cst);
    /* Release: pairs with the acquire load of mode in the I/O calls. */
    atomic_store_explicit(&s->mode, mode, memory_order_release);
    atomic_store_explicit(&s->drained, 0, memory_order_relaxed);
    atomic_store_explicit(&s->hup, false, memory_order_relaxed);
    wake_all_locked(s, 0, -EBADF);
}

int weft__reactor_adopt(int fd, uint32_t mode)
{
    int err;
    struct fd_state *s = weft__reactor_get(fd, &err);
    if (!s)
        return err;
    pthread_mutex_lock(&s->lock);
    renew_locked(s, mode);
    /* A registration left from an earlier file of this number (closed with
     * close(2), not weft_close) died with that file, or belongs to a
     * duplicate of it; either way it is not ours any more. */
    s->poller = NULL;
    /* Relaxed: slot waiters of the old gen see the gen bump instead. */
    atomic_store_explicit(&s->registered, false, memory_order_relaxed);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static WEFT__NOINLINE int sys_close(int fd)
{
    /* On Linux the descriptor is released even when close reports EINTR. */
    return close(fd) == 0 || errno == EINTR ? 0 : -errno;
}

int weft__reactor_close(int fd)
{
    struct fd_state *s = weft__reactor_find(fd);
    if (!s)
        return sys_close(fd);
    pthread_mutex_lock(&s->lock);
    if (atomic_load_explicit(&s->ops, memory_order_relaxed) & FD_OPS_CLOSING) {
        pthread_mutex_unlock(&s->lock); /* a second close of the same file */
        return -EBADF;
    }
    renew_locked(s, 0);
    if (s->poller) {
        /* Before close(2): a duplicate of fd would otherwise keep the
         * registration (and its events) alive. */
        (void)weft__poller_del(s->poller, fd);
        s->poller = NULL;
        /* Relaxed: as in weft__reactor_adopt. */
        atomic_store_explicit(&s->registered, false, memory_order_relaxed);
    }
    /* acq_rel: the system calls that already ended happen before our
     * close(2); pairs with weft__reactor_op_end. */
    uint32_t in_flight =
        atomic_fetch_or_explicit(&s->ops, FD_OPS_CLOSING, memory_order_acq_rel);
    int rc = 0;
    if (in_flight == 0) {
        /* close(2) under the lock: a task that saw the old gen cannot
         * register the number between the wake-up and the close, and a new
         * file of this number can only appear after we unlock. */
        rc = sys_close(fd);
        /* Release: pairs with op_begin's acquire (new file, new calls).
         * Clears the flag only: a call that began meanwhile (and is on its
         * way into op_begin_closing, which backs its count out) keeps its
         * count; a store of 0 erased it, and the back-out then wrapped ops
         * to FD_OPS_CLOSING | 0x7fffffff, a number closed for good. */
        atomic_fetch_and_explicit(&s->ops, ~FD_OPS_CLOSING, memory_order_release);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

bool weft__reactor_op_begin_closing(struct fd_state *s)
{
    /* Our increment is counted, so back it out first (we may be the one
     * who has to finish the close). Then look under the lock: a close that
     * finished meanwhile has cleared the flag (the number may already name
     * a new file, which is then the caller's); one still pending means the
     * descriptor is going away. */
    weft__reactor_op_end(s);
    pthread_mutex_lock(&s->lock);
    bool ok = !(atomic_load_explicit(&s->ops, memory_order_relaxed) & FD_OPS_CLOSING);
    if (ok)
        /* Acquire, as in weft__reactor_op_begin: pairs with the release
         * store of 0 by the close that cleared FD_OPS_CLOSING. */
        atomic_fetch_add_explicit(&s->ops, 1, memory_order_acquire);
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void weft__reactor_op_end_closing(struct fd_state *s)
{
    /* The last system call on a descriptor weft_close is waiting for. */
    pthread_mutex_lock(&s->lock);
    if (atomic_load_explicit(&s->ops, memory_order_relaxed) == FD_OPS_CLOSING) {
        (void)sys_close(s->fd);
        /* Release: pairs with op_begin's acquire (new file, new calls),
         * as in weft_close; clears the flag only, as there. */
        atomic_fetch_and_explicit(&s->ops, ~FD_OPS_CLOSING, memory_order_release);
    }
    pthread_mutex_unlock(&s->lock);
}

void weft__reactor_forget_poller(struct poller *p)
{
    pthread_mutex_lock(&table_lock);
    struct fd_table *t = atomic_load_explicit(&fd_table, memory_order_relaxed);
    for (size_t i = 0; t && i < t->cap; i++) {
        struct fd_state *s = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (!s)
            continue;
        pthread_mutex_lock(&s->lock);
        if (s->poller == p) {
            s->poller = NULL;
            /* seq_cst: ordered before wake_all_locked's slot loads (the
             * slot protocol: a slot waiter re-reads registered after
             * publishing itself). */
            atomic_store_explicit(&s->registered, false, memory_order_seq_cst);
            /* Tasks of another runtime waiting on a descriptor shared with
             * the dying one: let them retry, which registers it with their
             * own worker's poller. */
            wake_all_locked(s, WEFT__POLL_IN | WEFT__POLL_OUT, 0);
        }
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&table_lock);
}
