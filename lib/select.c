/* SPDX-License-Identifier: MIT */
/* weft_select (include/weft/select.h); the protocol is in select.h.
 *
 * One select goes:
 *  1. look: every case in a random order (a Fisher-Yates shuffle from the
 *     worker's PRNG, as Go's pollorder), completing the first ready one,
 *     so that each ready case is as likely to be chosen; a channel case
 *     takes only its own channel's lock, and none when the channel's idle
 *     hint says that side cannot complete (weft__chan_look);
 *  2. queue: the cases that hand nothing over (task end, event, fd) queue
 *     a waiter that only wakes us; a ready one found on the way ends the
 *     select at once. Then every channel of the select is locked, in
 *     address order (each once, however many cases name it), the channel
 *     cases are looked at again under those locks and, if none is ready,
 *     each queues a clause of the select's wait (sched/wait.h); unlock;
 *  3. block (sched/wait.h); then close the claim (weft__wait_close):
 *     failing it means a waker won case `winner` and handed it its
 *     element, -EPIPE or an event's set; withdraw every clause under its
 *     object's lock, wait until the winner's waker is done with the
 *     record, and return it. With no winner, cancellation and the timeout
 *     are looked at, else back to 1.
 * Holding all of the select's channel locks while queueing means no waker
 * can claim a clause before every clause is queued and the ready ones
 * were ruled out, so the selector itself never claims against a waker.
 * Lock order: a select holds several channel spinlocks (ascending
 * addresses); a plain channel call holds one; no lock is taken under them
 * (claims are CASes). Cost: O(n^2) in the number of channel cases for the
 * lock order, fine for the handful of cases selects have. */
#include "internal.h"

#include <limits.h>
#include <string.h>

#include "reactor/reactor.h"
#include "sched/sched.h"
#include "sched/wait.h"
#include "select.h"
#include "util/clock.h"
#include "util/rand.h"

enum {
    SEL_NONE = WEFT__SEL_NONE,
    SEL_RECV = WEFT__SEL_RECV,
    SEL_SEND = WEFT__SEL_SEND,
    SEL_TASK = WEFT__SEL_TASK,
    SEL_EVENT = WEFT__SEL_EVENT,
    SEL_FD = WEFT__SEL_FD
};

/* weft__state of a case: whether a waiter of a non-channel case is
 * queued and must be withdrawn. */
enum { SEL_IDLE = 0, SEL_QUEUED = 1 };

/* A case's private storage (weft__priv): its waiter while it waits. */
union sel_store {
    struct weft__clause chan;
    struct weft__clause event;
    struct sel_task_store end;
    struct {
        struct fd_waiter w;
        struct fd_state *s;  /* set by the look (weft__fd_sel_look) */
        struct fd_snap snap; /* the readiness counts that look saw */
    } fd;
};

_Static_assert(sizeof(union sel_store) <= sizeof(((weft_sel *)0)->weft__priv),
               "weft_sel's private storage must hold every waiter");
_Static_assert(_Alignof(union sel_store) <= _Alignof(void *),
               "weft_sel's private storage must be aligned for every waiter");

static inline union sel_store *store_of(weft_sel *c)
{
    return (union sel_store *)(void *)&c->weft__priv;
}

/* The clause of a channel, event or task case. */
static inline struct weft__clause *clause_of(weft_sel *c)
{
    union sel_store *st = store_of(c);
    switch (c->weft__kind) {
    case SEL_TASK:
        return &st->end.w.cl;
    case SEL_FD:
        return &st->fd.w.cl;
    default:
        return &st->event;
    }
}

static inline bool is_chan(const weft_sel *c)
{
    return c->weft__kind == SEL_RECV || c->weft__kind == SEL_SEND;
}

static inline int fd_of(const weft_sel *c) { return (int)(intptr_t)c->weft__obj; }

/* ------------------------------------------------------------ builders */

/* A case with only the public-facing fields set: the private storage is
 * left as it is (weft_select sets what it uses before reading it), so
 * that building a case costs a few stores, not a clearing of the whole
 * weft_sel. */
static inline weft_sel make_case(int kind, void *obj, void *elem, int events)
{
    weft_sel s;
    s.weft__kind = kind;
    s.weft__events = events;
    s.weft__obj = obj;
    s.weft__elem = elem;
    s.weft__order = 0;
    s.weft__state = SEL_IDLE;
    s.result = 0;
    return s;
}

weft_sel weft_sel_recv(weft_chan *c, void *elem) { return make_case(SEL_RECV, c, elem, 0); }

weft_sel weft_sel_send(weft_chan *c, const void *elem)
{
    return make_case(SEL_SEND, c, (void *)elem, 0);
}

weft_sel weft_sel_task(weft_task *t) { return make_case(SEL_TASK, t, NULL, 0); }

weft_sel weft_sel_event(weft_event *e) { return make_case(SEL_EVENT, e, NULL, 0); }

weft_sel weft_sel_fd(int fd, int events)
{
    /* A negative fd stays negative through intptr_t; refused later. */
    return make_case(SEL_FD, (void *)(intptr_t)fd, NULL, events);
}

static bool case_ok(const weft_sel *c, const struct weft_task *self)
{
    switch (c->weft__kind) {
    case SEL_RECV:
    case SEL_SEND:
        return c->weft__obj && c->weft__elem;
    case SEL_TASK:
        return c->weft__obj && c->weft__obj != self;
    case SEL_EVENT:
        return c->weft__obj != NULL;
    case SEL_FD:
        return fd_of(c) >= 0 && c->weft__events != 0 &&
               !(c->weft__events & ~(WEFT_READABLE | WEFT_WRITABLE));
    default:
        return false;
    }
}

/* ------------------------------------------------------------ pass 1 */

/* Completes c if it is ready now (true, c->result set). */
static bool look(weft_sel *c)
{
    switch (c->weft__kind) {
    case SEL_RECV:
    case SEL_SEND: {
        int rc = weft__chan_look(c->weft__obj, c->weft__kind == SEL_SEND, c->weft__elem);
        if (rc == -EAGAIN)
            return false;
        c->result = rc;
        return true;
    }
    case SEL_TASK: {
        struct weft_task *t = c->weft__obj;
        /* Acquire: pairs with the release of TASK_DONE in
         * weft__task_finish; t's status is visible. */
        if (!(atomic_load_explicit(&t->flags, memory_order_acquire) & TASK_DONE))
            return false;
        c->result = t->status;
        return true;
    }
    case SEL_EVENT:
        if (!weft_event_is_set(c->weft__obj))
            return false;
        c->result = 0;
        return true;
    default: {
        union sel_store *st = store_of(c);
        int rc = weft__fd_sel_look(fd_of(c), c->weft__events, &st->fd.s, &st->fd.snap);
        if (rc == 0)
            return false;
        c->result = rc;
        return true;
    }
    }
}

/* ------------------------------------------------------------ pass 2 */

enum { QUEUED, COMPLETED, LOOK_AGAIN };

/* Queues the waiter of a non-channel case c: QUEUED, COMPLETED (it was
 * ready: c->result set, nothing queued), LOOK_AGAIN (a descriptor edge
 * came in since the look). */
static int enqueue_other(weft_sel *c, struct weft_task *self, struct sel_rec *rec, int index)
{
    union sel_store *st = store_of(c);
    switch (c->weft__kind) {
    case SEL_TASK: {
        struct weft_task *t = c->weft__obj;
        st->end.task_id = t->id; /* for dumps: once queued, t may be freed */
        weft__clause_init(&st->end.w.cl, &rec->w, index, NULL, false);
        if (!weft__task_end_enqueue(t, &st->end.w)) {
            c->result = st->end.w.cl.result;
            return COMPLETED;
        }
        break;
    }
    case SEL_EVENT:
        weft__clause_init(&st->event, &rec->w, index, NULL, false);
        if (!weft__event_sel_enqueue(c->weft__obj, &st->event)) {
            c->result = 0;
            return COMPLETED;
        }
        break;
    default: {
        uint32_t want = ((c->weft__events & WEFT_READABLE) ? WEFT__POLL_IN : 0u) |
                        ((c->weft__events & WEFT_WRITABLE) ? WEFT__POLL_OUT : 0u);
        weft__clause_init(&st->fd.w.cl, &rec->w, index, NULL, false);
        int rc = weft__reactor_sel_enqueue(st->fd.s, &st->fd.w, want, &st->fd.snap);
        if (rc == 1)
            return LOOK_AGAIN;
        if (rc < 0) {
            c->result = rc;
            return COMPLETED;
        }
        break;
    }
    }
    c->weft__state = SEL_QUEUED;
    return QUEUED;
}

/* Withdraws c's waiter if it has one queued. True when that was a task
 * case whose end woke it: the case is then complete (c->result set), and
 * nothing may look at the task again (its joiner may have freed it). */
static bool withdraw_other(weft_sel *c)
{
    if (c->weft__state != SEL_QUEUED)
        return false;
    c->weft__state = SEL_IDLE;
    union sel_store *st = store_of(c);
    switch (c->weft__kind) {
    case SEL_TASK:
        /* Its end hands its status through the claim (queue_and_wait). */
        weft__task_end_withdraw(&st->end.w);
        break;
    case SEL_EVENT:
        weft__event_sel_withdraw(c->weft__obj, &st->event);
        break;
    default:
        weft__reactor_sel_withdraw(st->fd.s, &st->fd.w);
        break;
    }
    return false;
}

/* Locks every channel of cases once, in ascending address order. */
static void lock_chans(weft_sel *cases, size_t n)
{
    if (n == 2 && is_chan(&cases[0]) && is_chan(&cases[1])) {
        /* The usual two-channel select, without the general search. */
        uintptr_t a = (uintptr_t)cases[0].weft__obj, b = (uintptr_t)cases[1].weft__obj;
        weft__chan_lock((struct weft_chan *)(a < b ? a : b));
        if (a != b)
            weft__chan_lock((struct weft_chan *)(a < b ? b : a));
        return;
    }
    uintptr_t last = 0;
    for (;;) {
        uintptr_t next = UINTPTR_MAX;
        for (size_t i = 0; i < n; i++) {
            uintptr_t a = (uintptr_t)cases[i].weft__obj;
            if (is_chan(&cases[i]) && a > last && a < next)
                next = a;
        }
        if (next == UINTPTR_MAX)
            return;
        weft__chan_lock((struct weft_chan *)next);
        last = next;
    }
}

static void unlock_chans(weft_sel *cases, size_t n)
{
    if (n == 2 && is_chan(&cases[0]) && is_chan(&cases[1])) {
        weft__chan_unlock(cases[0].weft__obj);
        if (cases[1].weft__obj != cases[0].weft__obj)
            weft__chan_unlock(cases[1].weft__obj);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_chan(&cases[i]))
            continue;
        size_t j = 0;
        while (j < i && !(is_chan(&cases[j]) && cases[j].weft__obj == cases[i].weft__obj))
            j++;
        if (j == i)
            weft__chan_unlock(cases[i].weft__obj);
    }
}

/* cases[k].weft__order: the index of the k-th case to look at, a
 * uniformly random permutation (Fisher-Yates; weft_select has set
 * cases[k].weft__order = k). A bound is taken from the high half of a
 * random word by a multiply and a shift (no division; i + 1 <= n <=
 * INT_MAX fits 32 bits): a bias of at most (i + 1) / 2^32 per choice,
 * and none for two cases, which take one bit. */
static void shuffle(weft_sel *cases, size_t n, struct weft_task *self)
{
    uint64_t *rng = &self->worker->rng; /* the running worker's, owner only */
    if (n == 2) {
        if (weft__xorshift(rng) >> 63) {
            cases[0].weft__order = 1;
            cases[1].weft__order = 0;
        }
        return;
    }
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(((weft__xorshift(rng) >> 32) * (uint64_t)(i + 1)) >> 32);
        unsigned t = cases[i].weft__order;
        cases[i].weft__order = cases[j].weft__order;
        cases[j].weft__order = t;
    }
}

/* One round of pass 2 and the wait (see the top): the completed case's
 * index, or -1 when nothing completed (woken for another reason, or a
 * descriptor to look at again). */
static int queue_and_wait(weft_sel *cases, size_t n, bool has_chan, bool has_other,
                          struct weft_task *self, int64_t deadline, struct list *wakes)
{
    int done = -1;
    bool again = false;
    struct sel_rec rec;
    weft__wait_init(&rec.w, self);
    rec.cases = cases;
    rec.n = n;
    for (size_t k = 0; has_other && k < n && done < 0 && !again; k++) {
        unsigned i = cases[k].weft__order;
        weft_sel *c = &cases[i];
        if (is_chan(c))
            continue;
        int r = enqueue_other(c, self, &rec, (int)i);
        if (r == COMPLETED)
            done = (int)i;
        else if (r == LOOK_AGAIN)
            again = true;
    }
    bool chans_queued = false;
    if (done < 0 && !again) {
        if (has_chan) {
            lock_chans(cases, n);
            for (size_t k = 0; k < n && done < 0; k++) {
                weft_sel *c = &cases[cases[k].weft__order];
                if (!is_chan(c))
                    continue;
                int rc = weft__chan_try_locked(c->weft__obj, c->weft__kind == SEL_SEND,
                                               c->weft__elem, wakes);
                if (rc != -EAGAIN) {
                    c->result = rc;
                    done = (int)cases[k].weft__order;
                }
            }
            if (done < 0) {
                for (size_t i = 0; i < n; i++) {
                    if (!is_chan(&cases[i]))
                        continue;
                    struct weft__clause *cl = &store_of(&cases[i])->chan;
                    weft__clause_init(cl, &rec.w, (int)i, cases[i].weft__elem, false);
                    weft__chan_enqueue_locked(cases[i].weft__obj,
                                              cases[i].weft__kind == SEL_SEND, cl);
                }
                chans_queued = true;
            }
            unlock_chans(cases, n);
            weft__chan_flush_wakes(wakes);
        }
        if (done < 0) /* the record is the park's object: a dump names the cases */
            weft__wait_block(&rec.w, NULL, NULL, deadline, weft__why(WEFT__WK_SELECT),
                             (uint64_t)(uintptr_t)&rec);
    }
    /* Close the claim before anything is withdrawn or returned: a waker
     * that won a clause (a channel's element, an event's set, even while
     * pass 2 was still queueing) may still be touching the record. */
    int won = has_other || chans_queued ? weft__wait_close(&rec.w) : -1;
    /* The winner's clause needs no withdrawal: whoever wins a claim takes
     * the clause off its queue (weft__wait_hand). */
    for (size_t i = 0; chans_queued && i < n; i++)
        if (is_chan(&cases[i]) && (int)i != won)
            weft__chan_withdraw(cases[i].weft__obj, &store_of(&cases[i])->chan);
    /* A task case whose end woke us is complete (taken in look order,
     * so that several at once are chosen uniformly), unless a claimed
     * case already is. */
    for (size_t k = 0; has_other && k < n; k++) {
        unsigned i = cases[k].weft__order;
        if (withdraw_other(&cases[i]) && done < 0)
            done = (int)i;
    }
    if (won >= 0) {
        /* A channel clause is won only while nothing else completed (it
         * was queued only then); an event's is fine to drop for another
         * completed case (a set hands nothing over). A descriptor's edge
         * only says to look again (the look reads its readiness), so the
         * select then goes round once more (done stays -1). */
        weft__wait_settle(&rec.w);
        if (cases[won].weft__kind != SEL_FD && (is_chan(&cases[won]) || done < 0)) {
            done = won;
            cases[won].result = clause_of(&cases[won])->result;
        }
    }
    return done;
}

int weft_select(weft_sel cases[], size_t n, int64_t timeout_ns)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    /* n == 0 waits for nothing: only with a timeout (WEFT_FOREVER is
     * none, it would park for good). */
    if ((n > 0 && !cases) || n > INT_MAX ||
        (n == 0 && (timeout_ns < 0 || timeout_ns == WEFT_FOREVER)))
        return -EINVAL;
    bool has_chan = false, has_other = false;
    for (size_t i = 0; i < n; i++) {
        if (!case_ok(&cases[i], self))
            return -EINVAL;
        cases[i].weft__state = SEL_IDLE;
        cases[i].weft__order = (unsigned)i;
        if (is_chan(&cases[i]))
            has_chan = true;
        else
            has_other = true;
    }
    int rc = weft__interrupted(self);
    if (rc)
        return rc;
    if (n == 0) {
        rc = weft_sleep(timeout_ns);
        return rc ? rc : -ETIMEDOUT;
    }
    int64_t deadline = INT64_MAX;
    if (timeout_ns > 0) {
        int64_t now = weft__clock_ns();
        deadline = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
    }
    struct list wakes = {&wakes, &wakes};
    if (n > 1)
        shuffle(cases, n, self);
    for (;;) {
        for (size_t k = 0; k < n; k++) {
            unsigned i = cases[k].weft__order;
            if (look(&cases[i]))
                return (int)i;
        }
        if (timeout_ns == 0 || (deadline != INT64_MAX && weft__clock_ns() >= deadline))
            return -ETIMEDOUT;
        int done = queue_and_wait(cases, n, has_chan, has_other, self, deadline, &wakes);
        if (done >= 0)
            return done;
        if ((rc = weft__interrupted(self)) != 0)
            return rc;
    }
}
