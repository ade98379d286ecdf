/* SPDX-License-Identifier: MIT */
/* Tasks: spawn, join, detach, cancel, yield (asyncio's create_task and
 * await). */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* create_task(): spawns fn(arg) on the current task's runtime. Its body
 * always starts, even if it is cancelled first (when no memory for its
 * stack can be had it waits for some; only a runtime being freed ends
 * such a task unstarted, with status -ENOMEM). Returns NULL and sets
 * errno: EPERM outside a task, EINVAL (NULL fn), ENOMEM. Task only. */
WEFT_API weft_task *weft_spawn(weft_fn fn, void *arg);

/* await t: waits until t has ended, frees the handle and returns t's
 * status. If the caller is cancelled while waiting, t is cancelled too,
 * still waited for and freed, and -ECANCELED is returned. Returns -EINVAL
 * (NULL t, or t is the caller itself), -EPERM outside a task (from a
 * plain thread use weft_runtime_block_on). Task only (suspension point). */
WEFT_API int weft_join(weft_task *t);

/* Gives up the handle: t is freed when it ends. NULL is ignored; a second
 * detach of the same live task is ignored with a warning on stderr. Any
 * thread. A handle must not be used after weft_join or weft_detach (nor
 * after its runtime is freed): that is undefined, as with free(3). Task
 * memory is reused, so such a use may reach an unrelated new task; in
 * ASan builds freed tasks wait in a quarantine first, so that ASan reports
 * the use. */
WEFT_API void weft_detach(weft_task *t);

/* Requests cancellation: t's current or next suspension point returns
 * -ECANCELED, and so does every later one (outside weft_shield). Idempotent;
 * a finished task is left alone. NULL is ignored. Any thread. */
WEFT_API void weft_cancel(weft_task *t);

/* True once t's body has returned. False for NULL. Any thread. */
WEFT_API bool weft_task_done(const weft_task *t);

/* The calling task, or NULL on a plain thread. */
WEFT_API weft_task *weft_current(void);

/* asyncio.sleep(0): puts the calling task at the back of the ready queue.
 * Returns 0, -ECANCELED, -ETIMEDOUT (enclosing deadline passed) or -EPERM
 * outside a task. Task only (suspension point). */
WEFT_API int weft_yield(void);

/* Names t for dumps and warnings (copied, truncated to 31 bytes); NULL
 * name clears it. NULL t is ignored. Any thread. */
WEFT_API void weft_task_set_name(weft_task *t, const char *name);

/* t's name ("" when unnamed). Valid until the name changes or t is freed. */
WEFT_API const char *weft_task_name(const weft_task *t);

/* A unique, non-zero id of t (0 for NULL). Any thread. */
WEFT_API uint64_t weft_task_id(const weft_task *t);

/* True when cancellation of the calling task has been requested (and is
 * not held back by weft_shield). False outside a task. */
WEFT_API bool weft_cancelled(void);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_TASK_H */
