/* SPDX-License-Identifier: MIT */
/* Time: the monotonic clock, sleep, wait_for, shield and deadline scopes
 * (asyncio.timeout). */
#ifndef WEFT_DEADLINE_H
#define WEFT_DEADLINE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Now on CLOCK_MONOTONIC, in nanoseconds. Any thread. */
WEFT_API int64_t weft_now(void);

/* Parks the calling task for ns nanoseconds (ns <= 0 acts like a yield).
 * Returns 0, -ECANCELED, or -ETIMEDOUT when an enclosing deadline passes
 * first. -EPERM outside a task. Task only (suspension point). */
WEFT_API int weft_sleep(int64_t ns);

/* asyncio.wait_for(): runs fn(arg) as a child task and waits at most
 * timeout_ns (< 0: no timeout; 0: the child's body still starts, already
 * cancelled) for it, and returns its status. On timeout the child is
 * cancelled and waited for until it has really ended; then -ETIMEDOUT is
 * returned if it ended with -ECANCELED, else its status (it finished at
 * the timeout, or handled the cancellation: the result is not dropped).
 * If the caller is cancelled (or a deadline scope of the caller passes),
 * the child is cancelled and waited for, and -ECANCELED (-ETIMEDOUT) is
 * returned whatever the child returned. -EINVAL for NULL fn, -EPERM
 * outside a task, -ENOMEM. Task only (suspension point). */
WEFT_API int weft_wait_for(weft_fn fn, void *arg, int64_t timeout_ns);

/* asyncio.shield(): runs fn(arg) in the calling task with cancellation and
 * the deadlines of enclosing scopes held back until it returns; a
 * cancellation that arrives (or was pending) meanwhile is delivered at the
 * next suspension point after it. Deadline scopes fn enters itself still
 * apply inside; fn cannot leave a scope entered outside (-EINVAL). Shields
 * nest (up to 65535 deep: -EOVERFLOW beyond). Returns fn's status;
 * -EINVAL for NULL fn, -EPERM outside a task. Task only. */
WEFT_API int weft_shield(weft_fn fn, void *arg);

/* A deadline scope (asyncio.timeout). Lives on the caller's stack between
 * enter and leave. Fields are private. */
typedef struct weft_deadline {
    int64_t deadline; /* this scope's own instant */
    int64_t outer;    /* the task's deadline before enter */
    void *task;       /* owner, to catch misuse */
    unsigned depth;   /* nesting level, to catch out-of-order leave */
} weft_deadline;

/* Enters a scope ending timeout_ns from now (<= 0: already expired):
 * every suspension point inside returns -ETIMEDOUT once it has passed
 * (-ECANCELED wins if the task is also cancelled). An inner scope never
 * extends an outer one. A scope bounds only the calling task, not the
 * tasks it spawns. Returns 0, -EINVAL (NULL d), -EPERM outside a task. */
WEFT_API int weft_deadline_enter(weft_deadline *d, int64_t timeout_ns);

/* The same with an absolute instant on weft_now()'s clock. */
WEFT_API int weft_deadline_enter_at(weft_deadline *d, int64_t deadline);

/* Leaves the scope d (which must be the innermost one): the enclosing
 * scope's deadline applies again. Returns 0, or -EINVAL when d is not the
 * innermost scope of the calling task (nothing changes then), was already
 * left, or was entered outside the weft_shield the caller is in; -EPERM
 * outside a task. */
WEFT_API int weft_deadline_leave(weft_deadline *d);

/* True when d's own deadline has passed (asyncio.Timeout.expired()); false
 * for NULL. Any thread. */
WEFT_API bool weft_deadline_expired(const weft_deadline *d);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_DEADLINE_H */
