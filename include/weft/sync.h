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
 * hands the permit directly to the longest waiter, so a newcomer never
 * takes it first. NULL + errno ENOMEM. */
WEFT_API weft_sem *weft_sem_new(unsigned permits);
/* Takes a permit, waiting in FIFO order. 0, -ECANCELED, -ETIMEDOUT, -EINVAL,
 * -EPERM outside a task. A waiter that is cancelled or times out either
 * returns the error holding nothing, or (when a release handed it the
 * permit first) returns 0 holding it, the cancellation then showing at its
 * next suspension point: no permit is lost or duplicated. A task already
 * cancelled gets -ECANCELED even when a permit is free. Task only
 * (suspension point). */
WEFT_API int weft_sem_acquire(weft_sem *s);
/* Takes a permit if one is free and nobody waits. Any thread. */
WEFT_API bool weft_sem_try_acquire(weft_sem *s);
/* Returns a permit (to the first waiter if any). Any thread. */
WEFT_API void weft_sem_release(weft_sem *s);
/* Frees s, which must have no waiters (undefined otherwise; weft detects
 * queued waiters, warns on stderr and does not free s). Waiters already
 * woken but still returning are fine: the last of them frees s. NULL is
 * ignored. Any thread. */
WEFT_API void weft_sem_free(weft_sem *s);

/* A FIFO mutex owned by a task. NULL + errno ENOMEM. */
WEFT_API weft_mutex *weft_mutex_new(void);
/* Locks m, waiting in FIFO order. 0, -ECANCELED, -ETIMEDOUT, -EINVAL,
 * -EPERM outside a task, -EDEADLK when the caller already holds it. A
 * cancelled or timed-out waiter does not hold m. Task only (suspension
 * point). */
WEFT_API int weft_mutex_lock(weft_mutex *m);
/* Hands the mutex to the first waiter (it never becomes free in between).
 * From a task that does not hold m, or on an unlocked mutex, it does
 * nothing; a plain thread may unlock on the holder's behalf. Any thread. */
WEFT_API void weft_mutex_unlock(weft_mutex *m);
/* Frees m, which must have no waiters (as weft_sem_free). NULL is
 * ignored. */
WEFT_API void weft_mutex_free(weft_mutex *m);

/* An asyncio.Event, initially clear. NULL + errno ENOMEM. */
WEFT_API weft_event *weft_event_new(void);
/* Sets the flag and wakes every waiter (on one worker they run in the
 * order they waited). Any thread. */
WEFT_API void weft_event_set(weft_event *e);
/* Clears the flag. Any thread. */
WEFT_API void weft_event_clear(weft_event *e);
/* True while the flag is set. Any thread. */
WEFT_API bool weft_event_is_set(const weft_event *e);
/* Waits until the flag is set: returns 0 at once if it is, or once a set
 * happened while waiting (even if cleared again since). -ECANCELED,
 * -ETIMEDOUT, -EINVAL, -EPERM outside a task. Task only (suspension
 * point). */
WEFT_API int weft_event_wait(weft_event *e);
/* Frees e, which must have no waiters (as weft_sem_free: a set followed
 * at once by the free is fine). NULL is ignored. */
WEFT_API void weft_event_free(weft_event *e);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_SYNC_H */
