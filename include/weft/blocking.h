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
 * 10 s; work beyond the ceiling queues. If the task is cancelled meanwhile
 * it still returns only after fn has returned (arg stays valid), with
 * -ECANCELED; a job not yet started is dropped instead. -EINVAL for NULL
 * fn, -EPERM outside a task, -ENOMEM. Task only (suspension point). */
WEFT_API int weft_run_blocking(weft_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_BLOCKING_H */
