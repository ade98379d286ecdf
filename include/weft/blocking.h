/* SPDX-License-Identifier: MIT */
/* run_in_executor: blocking code on the runtime's pool of extra threads. */
#ifndef WEFT_BLOCKING_H
#define WEFT_BLOCKING_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs fn(arg) on the blocking-thread pool and parks the calling task
 * until it returns; gives back fn's status. The pool grows on demand up to
 * weft_options.blocking_threads (default 64) and idle threads exit after
 * 10 s; work beyond the ceiling queues (FIFO). While threads are cycling
 * through short calls a new call waits for one of them rather than waking
 * another, for at most about 100 us, after which a thread is woken or
 * started for it. If the task is cancelled (or its deadline scope passes)
 * meanwhile it still returns only after fn has returned (arg stays
 * valid), with -ECANCELED (or -ETIMEDOUT); a call whose fn has not started
 * yet is dropped instead (fn never runs). weft_runtime_free drops calls
 * not started (-ECANCELED) and waits a bounded time for running ones
 * (weft_options.blocking_shutdown_ns, default 5 s; see
 * weft_runtime_free). Returns fn's status, -ECANCELED, -ETIMEDOUT,
 * -EINVAL for NULL fn, -EPERM outside a task, -EAGAIN when no pool thread
 * could be started. Task only (suspension point). */
WEFT_API int weft_run_blocking(weft_fn fn, void *arg);

/* weft_run_blocking, plus a way to make fn return early: if the calling
 * task is cancelled, or its deadline scope passes, while fn runs,
 * on_cancel(arg) is called once, from a thread other than fn's (the
 * task's worker, which waits for it), so that it can tell fn to stop
 * (sqlite3_interrupt, shutdown(2) of the socket fn reads, a flag fn
 * polls). It is never called once fn has returned, nor when fn never
 * started (an interruption while the call is queued drops it), nor for a
 * second interruption. on_cancel must not block or call weft; it may run
 * concurrently with fn's last instructions. The call still returns only
 * after fn has returned, with -ECANCELED (-ETIMEDOUT) rather than fn's
 * status. on_cancel NULL: exactly weft_run_blocking. Returns as
 * weft_run_blocking. Task only (suspension point).
 *
 * Inside fn (of either call), weft_runtime_current() returns the
 * submitting task's runtime, so fn may weft_spawn_on work back to it; it
 * stays valid while fn runs, unless weft_runtime_free gives up waiting
 * for fn (weft_options.blocking_shutdown_ns). */
WEFT_API int weft_run_blocking_ex(weft_fn fn, void *arg, void (*on_cancel)(void *arg));

#ifdef __cplusplus
}
#endif
#endif /* WEFT_BLOCKING_H */
