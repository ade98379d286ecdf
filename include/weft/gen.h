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
 * return). */
WEFT_API int weft_gen_yield(weft_gen *g, void *value);
/* Asks for the next value: 1 and *value set, 0 when the body has returned
 * (its status, if negative, is returned instead), or -ECANCELED,
 * -ETIMEDOUT, -EINVAL, -EPERM. Task only (suspension point). */
WEFT_API int weft_gen_next(weft_gen *g, void **value);
/* aclose(): the body's pending yield returns -ECANCELED, its cleanup runs,
 * and g is freed. Returns the body's status, or 0. Task only. */
WEFT_API int weft_gen_close(weft_gen *g);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_GEN_H */
