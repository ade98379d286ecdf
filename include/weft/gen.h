/* SPDX-License-Identifier: MIT */
/* Async generators: a body that yields values one at a time to the task
 * that asks for them. */
#ifndef WEFT_GEN_H
#define WEFT_GEN_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*weft_gen_fn)(weft_gen *g, void *arg);

/* A generator running body(g, arg) as a task of the current runtime; the
 * body starts on the first weft_gen_next. NULL + errno: EINVAL, EPERM
 * outside a task, ENOMEM. Task only. */
WEFT_API weft_gen *weft_gen_new(weft_gen_fn body, void *arg);
/* In the body: hands value to the consumer and parks until it asks for the
 * next one. 0, or -ECANCELED when the generator is closed (run cleanup and
 * return; every later yield fails the same way) or the body's task is
 * cancelled, -ETIMEDOUT, -EINVAL (NULL g, or not called by g's body),
 * -EPERM outside a task. Body only (suspension point). */
WEFT_API int weft_gen_yield(weft_gen *g, void *value);
/* Asks for the next value: 1 and *value set (value may be NULL), 0 when
 * the body has returned (its status, if negative, is returned instead,
 * every time), or -ECANCELED, -ETIMEDOUT, -EINVAL (NULL g, a generator
 * already closed, or called from the body), -EBUSY (another next or close is in progress), -EPERM. If the
 * caller is cancelled or its deadline passes while the body runs, the
 * body is cancelled (as in asyncio, where the body runs in the consumer's
 * task), next returns once it has ended, and the generator is finished.
 * Task only (suspension point). */
WEFT_API int weft_gen_next(weft_gen *g, void **value);
/* aclose(): the body's pending yield returns -ECANCELED, its cleanup runs
 * (it may still suspend), and g is freed once the body has returned.
 * Returns the body's status, with the -ECANCELED that this close caused
 * counted as 0; 0 and the body never runs if no next was ever made (as
 * asyncio's aclose of an unstarted generator). If the caller is cancelled
 * while waiting, the body is cancelled too and still waited for; then
 * -ECANCELED (or -ETIMEDOUT). -EINVAL (NULL g, closed already, or from
 * the body), -EBUSY while a next is in progress (g is not freed), -EPERM.
 * Every generator that was created must be closed. (A closed generator's
 * memory is kept for reuse by weft_gen_new, so that a later call on it is
 * caught with -EINVAL rather than touching freed memory; a generator
 * created since may have taken its place.) Task only (suspension
 * point). */
WEFT_API int weft_gen_close(weft_gen *g);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_GEN_H */
