/* SPDX-License-Identifier: MIT */
/* The monitor (Go's sysmon): one thread per runtime of several workers
 * that serves a worker which has stopped switching, so that no sleeping
 * worker ever has to wake up to look at busy peers. While some worker is
 * awake it checks, with a back-off from 20 us doubling to 1 ms, whether
 * an awake worker has neither switched nor run its maintenance pass for
 * WEFT__SYSMON_STUCK_NS; then it moves the task stranded in that worker's
 * next slot to the inject queue, fires its due timers and polls its
 * reactor (the woken tasks go to the inject queue), and wakes a sleeping
 * worker to run them. When every worker sleeps it sleeps too, until a
 * worker wakes (weft__sysmon_worker_wakes). */
#ifndef WEFT_SCHED_SYSMON_H
#define WEFT_SCHED_SYSMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"

struct weft_runtime;
struct sysmon;

#define WEFT__SYSMON_MIN_NS 20000    /* first delay after activity: 20 us */
#define WEFT__SYSMON_MAX_NS 1000000  /* back-off ceiling: 1 ms */
#define WEFT__SYSMON_STUCK_NS 500000 /* no switch / no maintenance for this */

/* Creates rt->sysmon and starts its thread (runtimes of one worker get
 * none: there is nobody to hand work to). 0 or a negative errno. */
WEFT__MUST_CHECK int weft__sysmon_start(struct weft_runtime *rt);
/* Stops and joins the thread and frees it; rt->sysmon becomes NULL. */
void weft__sysmon_stop(struct weft_runtime *rt);
/* A worker woke from its sleep: wakes the monitor if it sleeps. */
void weft__sysmon_worker_wakes(struct sysmon *m);

/* Counters for tests and benchmarks: the monitor's wake-ups, and what it
 * rescued (tasks taken from next slots, timers fired, descriptor events
 * dispatched). */
struct weft__sysmon_counts {
    uint64_t wakeups, rescued;
};
void weft__sysmon_counts(struct weft_runtime *rt, struct weft__sysmon_counts *out);

#endif /* WEFT_SCHED_SYSMON_H */
