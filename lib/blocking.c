/* SPDX-License-Identifier: MIT */
/* weft_run_blocking: validate, then hand the call to the runtime's pool. */
#include "internal.h"

#include "exec/pool.h"
#include "sched/sched.h"

int weft_run_blocking(weft_fn fn, void *arg)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (!fn)
        return -EINVAL;
    int rc = weft__interrupted(self);
    if (rc)
        return rc;
    return weft__pool_run(self->rt->pool, self, fn, arg);
}

int weft_run_blocking_ex(weft_fn fn, void *arg, void (*on_cancel)(void *arg))
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (!fn)
        return -EINVAL;
    int rc = weft__interrupted(self);
    if (rc)
        return rc;
    return weft__pool_run_ex(self->rt->pool, self, fn, arg, on_cancel);
}
