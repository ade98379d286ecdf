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

#ifdef __cplusplus
}
#endif
#endif /* WEFT_BLOCKING_H */
