/* SPDX-License-Identifier: MIT */
/* Time: now, sleep, wait_for, shield and the per-task stack of deadline
 * scopes. Durations are turned into absolute deadlines at the API edge so
 * that nested scopes reduce to min(). */
#include "internal.h"

#include "sched/sched.h"
#include "util/clock.h"

/* now + ns without overflow. */
static int64_t add_sat(int64_t now, int64_t ns)
{
    if (ns <= 0)
        return now;
    return ns > INT64_MAX - now ? INT64_MAX : now + ns;
}

int64_t weft_now(void) { return weft__clock_ns(); }

int weft_sleep(int64_t ns)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (ns <= 0)
        return weft_yield();
    int64_t until = add_sat(weft__clock_ns(), ns);
    /* Inside an expired scope even a sleep that is already over times out:
     * every suspension point there does. */
    int rc = weft__interrupted(self);
    if (rc)
        return rc;
    for (;;) {
        weft__park_obj(self, NULL, NULL, until, weft__why(WEFT__WK_SLEEP), (uint64_t)until);
        rc = weft__interrupted(self);
        if (rc == -ECANCELED)
            return rc;
        /* Woken by its timer, the worker's pass clock (never ahead of the
         * clock) has passed until already: no read of our own. */
        if (self->worker->clock_cache >= until || weft__clock_ns() >= until)
            return 0;
        if (rc)
            return rc;
    }
}

int weft_shield(weft_fn fn, void *arg)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (!fn)
        return -EINVAL;
    if (self->cancel_shield == UINT16_MAX)
        return -EOVERFLOW; /* 65535 shields deep, more than a stack holds */
    /* Cancellation is held back by the counter; the enclosing scopes'
     * deadline is put aside, so that only scopes fn enters itself apply,
     * and fn may not leave the scopes it did not enter (the floor). */
    int64_t outer_deadline = self->deadline;
    unsigned outer_depth = self->deadline_depth;
    unsigned outer_floor = self->deadline_floor;
    self->cancel_shield++;
    self->deadline = INT64_MAX;
    self->deadline_floor = outer_depth;
    int rc = fn(arg);
    /* fn may have left scopes of its own entered: drop them. */
    self->deadline = outer_deadline;
    self->deadline_depth = outer_depth;
    self->deadline_floor = outer_floor;
    self->cancel_shield--;
    return rc;
}

int weft_wait_for(weft_fn fn, void *arg, int64_t timeout_ns)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (!fn)
        return -EINVAL;
    struct weft_task *t = weft__task_spawn(self->rt, fn, arg);
    if (!t)
        return -errno;
    int64_t deadline = timeout_ns < 0 ? INT64_MAX : add_sat(weft__clock_ns(), timeout_ns);
    int rc = weft__task_wait(self, t, deadline, false);
    if (rc == 0) {
        int status = t->status;
        weft__task_unref(t);
        return status;
    }
    /* Timed out or interrupted: the child is cancelled and we return only
     * once it has really ended (CPython bpo-32751). */
    weft_cancel(t);
    int w = weft__task_wait(self, t, INT64_MAX, true);
    WEFT__ASSERT(w == 0);
    int status = t->status;
    weft__task_unref(t);
    if (rc != 1)
        return rc; /* the caller's own cancellation or scope: never hidden */
    /* Our timeout: a child that ended otherwise than cancelled had finished
     * (or turned the cancellation into a result): do not drop that result
     * (CPython gh-86296, and asyncio 3.12's wait_for). */
    return status == -ECANCELED ? -ETIMEDOUT : status;
}

int weft_deadline_enter_at(weft_deadline *d, int64_t deadline)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (!d)
        return -EINVAL;
    d->deadline = deadline;
    d->outer = self->deadline;
    d->task = self;
    d->depth = ++self->deadline_depth;
    /* An inner scope never extends an outer one. */
    if (deadline < self->deadline)
        self->deadline = deadline;
    return 0;
}

int weft_deadline_enter(weft_deadline *d, int64_t timeout_ns)
{
    if (!weft__task_self())
        return -EPERM;
    return weft_deadline_enter_at(d, add_sat(weft__clock_ns(), timeout_ns));
}

int weft_deadline_leave(weft_deadline *d)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    /* Only the innermost scope, and not one entered outside the innermost
     * weft_shield (the shield restores those itself). */
    if (!d || d->task != self || d->depth != self->deadline_depth ||
        d->depth <= self->deadline_floor)
        return -EINVAL;
    self->deadline = d->outer;
    self->deadline_depth--;
    d->task = NULL;
    return 0;
}

bool weft_deadline_expired(const weft_deadline *d)
{
    return d && weft__clock_ns() >= d->deadline;
}
