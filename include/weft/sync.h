/* SPDX-License-Identifier: MIT */
/* Semaphore, mutex and event. Waits are suspension points (cancellation,
 * deadlines) and work between tasks on different workers; release, unlock,
 * set and clear also work from plain threads. */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A counting semaphore with `permits` permits, strictly FIFO: a release
 * hands the permit directly to the longest waiter. NULL + errno ENOMEM. */
WEFT_API weft_sem *weft_sem_new(unsigned permits);
/* Takes a permit, waiting in FIFO order. 0, -ECANCELED, -ETIMEDOUT, -EINVAL,
 * -EPERM outside a task. A cancelled waiter never takes or loses a permit. */
WEFT_API int weft_sem_acquire(weft_sem *s);
/* Takes a permit if one is free and nobody waits. Any thread. */
WEFT_API bool weft_sem_try_acquire(weft_sem *s);
/* Returns a permit (to the first waiter if any). Any thread. */
WEFT_API void weft_sem_release(weft_sem *s);
/* Frees s, which must have no waiters. NULL is ignored. */
WEFT_API void weft_sem_free(weft_sem *s);

/* A FIFO mutex owned by a task. NULL + errno ENOMEM. */
WEFT_API weft_mutex *weft_mutex_new(void);
/* 0, -ECANCELED, -ETIMEDOUT, -EINVAL, -EPERM outside a task, -EDEADLK when
 * the caller already holds it. */
WEFT_API int weft_mutex_lock(weft_mutex *m);
/* Hands the mutex to the first waiter. Any thread. */
WEFT_API void weft_mutex_unlock(weft_mutex *m);
WEFT_API void weft_mutex_free(weft_mutex *m);

/* An asyncio.Event, initially clear. NULL + errno ENOMEM. */
WEFT_API weft_event *weft_event_new(void);
/* Sets the flag and wakes every waiter. Any thread. */
WEFT_API void weft_event_set(weft_event *e);
/* Clears the flag. Any thread. */
WEFT_API void weft_event_clear(weft_event *e);
/* True while the flag is set. Any thread. */
WEFT_API bool weft_event_is_set(const weft_event *e);
/* Waits until the flag is set. 0, -ECANCELED, -ETIMEDOUT, -EINVAL, -EPERM. */
WEFT_API int weft_event_wait(weft_event *e);
WEFT_API void weft_event_free(weft_event *e);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_SYNC_H */
