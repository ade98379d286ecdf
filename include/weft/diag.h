/* SPDX-License-Identifier: MIT */
/* Seeing inside a runtime: counters and a dump of every live task. */
#ifndef WEFT_DIAG_H
#define WEFT_DIAG_H

#include <stdio.h>

#include "common.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Counters of one worker since the runtime started. */
typedef struct weft_worker_stats {
    uint64_t tasks_run;     /* times a task was switched to */
    uint64_t steals;        /* tasks taken from other workers */
    uint64_t parks;         /* times the worker went to sleep */
    uint64_t reactor_polls; /* epoll_wait calls */
    uint64_t queue_depth;   /* tasks in its run queue now */
} weft_worker_stats;

/* A snapshot of a runtime. Zero-initialise; fields are only appended. */
typedef struct weft_stats {
    unsigned n_workers;
    uint64_t tasks_live;       /* spawned and not yet ended */
    uint64_t tasks_spawned;    /* since start */
    uint64_t timers_armed;     /* timers waiting to fire now */
    uint64_t inject_depth;     /* tasks in the shared inject queue */
    unsigned blocking_threads; /* pool threads alive */
    unsigned blocking_busy;    /* of which running a job */
    unsigned blocking_idle;    /* of which waiting for a job */
    uint64_t blocking_queued;  /* jobs waiting for a thread */
    weft_worker_stats worker[WEFT_MAX_WORKERS];
    /* The monitor thread of a runtime with several workers, which serves
     * a worker that stopped switching (its next slot, due timers and
     * ready descriptors) so that sleeping workers never poll: */
    uint64_t monitor_wakeups;  /* times it woke (0 with one worker) */
    uint64_t monitor_rescued;  /* tasks it moved, timers it fired and
                                  descriptor events it dispatched */
} weft_stats;

/* Fills *out. Returns 0 or -EINVAL (NULL argument). Any thread. */
WEFT_API int weft_runtime_stats(weft_runtime *rt, weft_stats *out);

/* Writes one line per live task to out (asyncio.all_tasks): id, name,
 * state and time in it (parked, sleeping or not started), what it waits
 * on (a mutex's address and holder, a semaphore's free permits, a
 * channel and the direction, a descriptor and readable/writable, the
 * task a join or wait_any waits for, a sleep's time left, the function
 * of a blocking call and whether it runs yet, a generator), the id of
 * the task that spawned it, whether cancellation is pending, and the
 * worker of a running task. Any thread (or task); NULL arguments are
 * ignored. It never stops the runtime: each parked task is held parked
 * only while it is read (a wake meanwhile is kept and delivered after),
 * and no lock a running task holds is taken. */
WEFT_API void weft_runtime_dump(weft_runtime *rt, FILE *out);

enum {
    /* Each parked task's call stack, unwound from its saved context:
     * function names (static ones too, from the symbol tables), file:line
     * where there is debug information, and module+offset for
     * addr2line. Running tasks are shown running, without a stack. */
    WEFT_DUMP_STACKS = 1,
    /* Instead of one line per task, one per group of tasks with the same
     * state, wait (kind, and object when it is shared: a mutex, a
     * semaphore, an event, a channel, a generator) and stack, with the
     * count and the range of times in state, largest group first:
     * "812 tasks [parked, waits on chan recv 0x..., 2-9 min] at f x.c:88".
     * With WEFT_DUMP_STACKS each group's stack follows it. */
    WEFT_DUMP_SUMMARY = 2,
    /* JSON lines instead of text, for tools: a "runtime" object, one
     * "group" object per group (with WEFT_DUMP_SUMMARY), then one "task"
     * object per task ("stack" arrays with WEFT_DUMP_STACKS). */
    WEFT_DUMP_JSON = 4
};

/* weft_runtime_dump with flags (WEFT_DUMP_*, or'ed; 0: the same as
 * weft_runtime_dump). NULL arguments and unknown flags are ignored (it
 * writes nothing). A task's stack is read while it stays parked, a few
 * microseconds each.
 *
 * The environment variable WEFT_DUMP_SIGNAL=QUIT (or USR1, USR2), read
 * by weft_runtime_new, makes that signal write a WEFT_DUMP_SUMMARY |
 * WEFT_DUMP_STACKS dump of every runtime to stderr, from a thread of
 * weft's own (not from the handler), however busy the workers are. */
WEFT_API void weft_runtime_dump_ex(weft_runtime *rt, FILE *out, unsigned flags);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_DIAG_H */
