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

/* Writes one line per live task to out: id, name, state and what it waits
 * on (asyncio.all_tasks). Any thread; NULL arguments are ignored. */
WEFT_API void weft_runtime_dump(weft_runtime *rt, FILE *out);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_DIAG_H */
