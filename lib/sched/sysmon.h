/* SPDX-License-Identifier: MIT */
/* The monitor (Go's sysmon): one thread per runtime of several workers
 * that serves a worker which has stopped switching, so that no sleeping
 * worker ever has to wake up to look at busy peers. While some worker is
 * awake it looks at the awake ones, with a back-off from 250 us doubling
 * to 10 ms (Go's sysmon ceiling). A worker that has not switched for
 * WEFT__SYSMON_STUCK_NS has the task stranded in its next slot moved to
 * the inject queue; one that has not run its maintenance pass for as long
 * has its due timers fired and its reactor polled (the woken tasks go to
 * the inject queue), and a sleeping worker is woken to run them. While a
 * worker stays stuck the monitor also wakes at its next timer and, if it
 * has descriptors, every WEFT__SYSMON_IO_NS. When every worker has slept
 * through the back-off it sleeps too, until a worker wakes
 * (weft__sysmon_worker_wakes).
 *
 * So a sleeping worker costs nothing; the monitor costs about 100
 * wake-ups a second while some worker is awake (each about 30 us of CPU on
 * the 2-core VM this was measured on, which is why the ceiling is not
 * 1 ms); a due timer or ready descriptor on a worker stuck in one task is
 * served within about 10.5 ms of it getting stuck, then on time (timers)
 * or within 1 ms (descriptors). */
#ifndef WEFT_SCHED_SYSMON_H
#define WEFT_SCHED_SYSMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"

struct weft_runtime;
struct sysmon;

#define WEFT__SYSMON_MIN_NS 250000     /* first delay after activity */
#define WEFT__SYSMON_MAX_NS 10000000   /* back-off ceiling: 10 ms */
#define WEFT__SYSMON_STUCK_NS 500000   /* no switch / no maintenance for this */
#define WEFT__SYSMON_IO_NS 1000000     /* a stuck worker's reactor: every 1 ms */
#define WEFT__SYSMON_MIN_WAKE_NS 50000 /* never sooner than this */

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
