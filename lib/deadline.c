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
    for (;;) {
        int rc = weft__interrupted(self);
        if (rc == -ECANCELED)
            return rc;
        if (weft__clock_ns() >= until)
            return 0;
        if (rc)
            return rc;
        weft__park(NULL, NULL, until, "sleep");
    }
}

int weft_shield(weft_fn fn, void *arg)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (!fn)
        return -EINVAL;
    self->shield++;
    int rc = fn(arg);
    self->shield--;
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
    weft__task_cancel_and_reap(self, t);
    return rc == 1 ? -ETIMEDOUT : rc;
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
    if (!d || d->task != self || d->depth != self->deadline_depth)
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
