/* SPDX-License-Identifier: MIT */
/* Composing tasks: gather, wait_any and task groups (asyncio.gather,
 * asyncio.wait(FIRST_COMPLETED), asyncio.TaskGroup). */
#ifndef WEFT_GROUP_H
#define WEFT_GROUP_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Joins all n tasks (frees every handle); statuses (may be NULL) receives
 * each status in argument order. Returns 0 or the first failing status in
 * argument order; a failing child does not cancel the others. If the
 * caller is cancelled (or its deadline scope passes), cancels every child
 * still running, waits for them all (statuses still filled in), and
 * returns -ECANCELED (-ETIMEDOUT). -EINVAL for NULL tasks with n > 0, a
 * NULL entry, the caller itself or a task listed twice (nothing is joined
 * then), -EPERM outside a task. Task only (suspension point). */
WEFT_API int weft_gather(weft_task *const tasks[], size_t n, int statuses[]);

/* asyncio.wait(FIRST_COMPLETED): waits until one of the n tasks has ended
 * and returns its index (the lowest index if several have). Joins nothing
 * and cancels nothing: the handles stay the caller's, to join later.
 * Returns -ETIMEDOUT after timeout_ns (< 0 = no timeout, 0 = just look),
 * -ECANCELED, -EINVAL (NULL array or entry, n == 0), -ENOMEM (more than
 * 16 tasks and no memory for their waiters), -EPERM outside a task. Any
 * number of tasks may wait on the same tasks at once, and one may join
 * them meanwhile; each sees an end at once. Task only (suspension point). */
WEFT_API int weft_wait_any(weft_task *const tasks[], size_t n, int64_t timeout_ns);

/* A task group (asyncio.TaskGroup) bound to the calling task's runtime.
 * Returns NULL and sets errno: EPERM outside a task, ENOMEM. Task only. */
WEFT_API weft_group *weft_group_new(void);

/* Spawns fn(arg) into g. Returns 0, -EINVAL (NULL g or fn, or g already
 * waited for), -ENOMEM, -ECANCELED if g has already failed or been
 * cancelled (fn does not run). Task only. */
WEFT_API int weft_group_spawn(weft_group *g, weft_fn fn, void *arg);

/* Waits for every task of g; the first failure cancels the rest. Returns
 * that first failure's status (or 0) and frees g. If the caller is
 * cancelled, cancels all, waits, returns -ECANCELED. -EINVAL for NULL g,
 * or a group already waited for or being waited for by another task (a
 * waited-for group's memory is kept for reuse by weft_group_new, so that
 * this is caught rather than touching freed memory), -EPERM outside a
 * task (g is then left alone). Task only (suspension point). */
WEFT_API int weft_group_wait(weft_group *g);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_GROUP_H */
