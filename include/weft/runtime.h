/* SPDX-License-Identifier: MIT */
/* Runtimes: the worker threads, their run queues, reactors and timers. */
#ifndef WEFT_RUNTIME_H
#define WEFT_RUNTIME_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest number of workers a runtime accepts. */
#define WEFT_MAX_WORKERS 256

/* Runtime options. Zero-initialise; fields are only ever appended. */
typedef struct weft_options {
    unsigned workers;          /* scheduler threads; 0 = one per online CPU;
                                  environment WEFT_WORKERS overrides 0
                                  (an integer 1..WEFT_MAX_WORKERS; any
                                  other value is reported on stderr and
                                  ignored); at most WEFT_MAX_WORKERS */
    size_t stack_size;         /* per-task stack in bytes; 0 = default
                                  (256 KiB, committed lazily); rounded up to
                                  whole pages; 16 KiB .. 64 MiB. Below each
                                  stack lies a 64 KiB guard gap: an overflow
                                  into it is reported with the task's name
                                  and the process dies. A frame larger than
                                  the gap (a big local array) jumps over it
                                  unless the code was compiled with
                                  -fstack-clash-protection, which weft's
                                  pkg-config Cflags carry (see README,
                                  "Limits"). Pages of stacks idle after a
                                  burst go back to the kernel within a few
                                  seconds. */
    unsigned blocking_threads; /* ceiling of the run_blocking pool;
                                  0 = default (64); at most 4096 */
    int64_t slow_task_ns;      /* warn on stderr when a task runs this long
                                  without suspending (one line per such
                                  stretch, printed while it still runs);
                                  0 = environment WEFT_SLOW_TASK_MS or
                                  off; < 0 = off */
    int64_t blocking_shutdown_ns; /* how long weft_runtime_free waits for
                                  run_blocking calls whose fn is still
                                  running; 0 = default (5 s); < 0 = no
                                  limit (see weft_runtime_free) */
} weft_options;

/* asyncio.run(): starts a runtime with default options, runs main(arg) as
 * its first task, waits for it, shuts the runtime down (cancelling what is
 * left) and returns main's status. Returns -EPERM when called from a task,
 * -ENOMEM/-EAGAIN when the runtime cannot start. Plain thread only. */
WEFT_API int weft_run(weft_fn main, void *arg);

/* Starts a runtime: its worker threads run until weft_runtime_free().
 * opt may be NULL for defaults. Returns NULL and sets errno: EINVAL (an
 * option out of the ranges given above), ENOMEM, EAGAIN (no threads). Any
 * thread. */
WEFT_API weft_runtime *weft_runtime_new(const weft_options *opt);

/* run_until_complete(): runs fn(arg) as a task on rt and blocks the calling
 * thread until it ends; returns its status. May be called repeatedly, and
 * from several plain threads at once. Returns -EPERM from a task (it would
 * block a worker), -EINVAL if rt or fn is NULL, -ECANCELED if rt is being
 * freed. Plain thread only. */
WEFT_API int weft_runtime_block_on(weft_runtime *rt, weft_fn fn, void *arg);

/* close(): cancels every task still alive (detached ones too), waits until
 * they have all ended and every thread outside rt that was waiting for one
 * of them (a block_on, a weft_join from a task of another runtime) is done
 * with it, stops and joins the workers and frees rt. Tasks
 * that never reach a suspension point are waited for. Blocking jobs
 * (weft_run_blocking) that have not started are dropped at once: fn never
 * runs and the caller gets -ECANCELED. Callers whose fn is still running
 * are waited for, up to weft_options.blocking_shutdown_ns (default 5 s)
 * from the start of the call; past that bound, if some fn still runs,
 * runtime_free stops waiting and returns: the tasks still alive (those
 * callers and whatever waits for them) are abandoned, never to run again,
 * and the runtime's memory, their stacks included (arg may live there),
 * is released by the pool thread whose fn returns last. A block_on()
 * waiting for an abandoned task does not return. NULL is ignored.
 * Plain thread only (from a task it does nothing and sets errno EPERM). */
WEFT_API void weft_runtime_free(weft_runtime *rt);

/* fork(): the child has only the thread that called fork, so none of the
 * parent's runtimes runs there, and it must not use them, their tasks or
 * their handles in any way (not even weft_runtime_free: their threads are
 * gone). The child may start runtimes of its own (weft_run,
 * weft_runtime_new) and use inherited descriptors with them, including
 * ones the parent's runtimes had registered: the registry forgets the
 * parent's registrations in the child. A descriptor waited on in both
 * processes is one open file: an event wakes whichever side reads it. */

/* Spawns fn(arg) as a task on rt, from any thread, inside or outside rt.
 * The caller owns the handle until weft_join() or weft_detach(). Returns
 * NULL and sets errno: EINVAL (NULL rt or fn), ENOMEM. */
WEFT_API weft_task *weft_spawn_on(weft_runtime *rt, weft_fn fn, void *arg);

/* The runtime the calling task runs on; inside a weft_run_blocking or
 * weft_run_blocking_ex function, the submitting task's runtime; NULL on
 * any other thread. Any thread. */
WEFT_API weft_runtime *weft_runtime_current(void);

/* Number of worker threads of rt (0 if rt is NULL). Any thread. */
WEFT_API unsigned weft_runtime_workers(const weft_runtime *rt);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_RUNTIME_H */
