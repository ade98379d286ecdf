/* SPDX-License-Identifier: MIT */
/* The blocking-thread pool behind weft_run_blocking: grows on demand up to
 * a ceiling, lets idle threads exit after a keep-alive, queues work beyond
 * the ceiling, and shuts down without waiting for jobs that have not
 * started. Submitting tasks, pool threads and runtime_free touch it. */
#ifndef WEFT_EXEC_POOL_H
#define WEFT_EXEC_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <weft.h>

#include "compiler.h"
#include "sched/wait.h"
#include "util/list.h"

struct weft_task;
struct pool_thread;

/* QUEUED -> RUNNING (pool thread, under the lock) -> DONE (pool thread,
 * lock-free); QUEUED -> DROPPED (shutdown, under the lock); QUEUED ->
 * unlinked (the cancelled caller, under the lock). DONE and DROPPED are
 * reported through the job's wait (sched/wait.h): the pool thread claims
 * its clause and wakes it, and the caller may not return (and free the
 * job and perhaps the task) before that wake is done (weft__wait_block
 * and weft__wait_settle see to it). */
enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_DROPPED };

/* Whether on_cancel may still be called (struct job.cancel): the first of
 * the task (CANCEL_CALLED, it calls on_cancel) and the pool thread
 * (CANCEL_RETURNED, as soon as fn has returned) to move it wins. */
enum job_cancel { CANCEL_NONE, CANCEL_CALLED, CANCEL_RETURNED };

/* A job lives on the stack of the task that submitted it. */
struct job {
    struct job *next;       /* queue link, under the pool lock */
    weft_fn fn;
    void *arg;
    void (*on_cancel)(void *arg); /* weft_run_blocking_ex's, or NULL */
    _Atomic int cancel;     /* enum job_cancel */
    int status;             /* fn's return, published by the wake */
    _Atomic int state;      /* enum job_state */
    struct weft__wait w;    /* the submitting task's wait for the end */
    struct weft__clause cl; /* its one clause, claimed by the end */
};

struct exec_pool {
    pthread_mutex_t lock;    /* guards everything but the atomics */
    pthread_cond_t gone;     /* a thread exited (weft__pool_free waits) */
    struct job *head, *tail; /* jobs waiting for a thread, FIFO */
    _Atomic unsigned long n_queued; /* written under the lock; the
                                       polling thread reads it unlocked */
    struct list sleepers;    /* idle threads in a condvar wait, most
                                recently idle first (the others idle out) */
    bool has_spinner;        /* an idle thread polls the queue */
    unsigned n_threads, n_idle, n_busy, max;
    unsigned n_starting;     /* threads created that have not yet looked
                                at the queue (each will take its head) */
    int64_t last_finish;     /* when a job last returned (instant) */
    bool shutdown;
    _Atomic bool abandoned;  /* runtime_free gave up on running jobs */
    void (*on_last_exit)(void *); /* after abandon: run by the last thread */
    void *on_last_exit_arg;
    int64_t keepalive_ns;    /* idle threads exit after this long */
};

/* NULL on out of memory. */
struct exec_pool *weft__pool_new(unsigned max_threads);
/* Drops queued jobs (their callers return -ECANCELED, fn never runs),
 * refuses new ones and lets threads exit once their running job returns.
 * Any thread, once. */
void weft__pool_shutdown(struct exec_pool *p);
/* Jobs whose fn is running now. */
unsigned weft__pool_running(struct exec_pool *p);
/* After shutdown: gives up on running jobs. Returns false when none runs.
 * Else the threads still running a job wake nobody when fn returns, and
 * the pool must be handed over with weft__pool_disown, not freed. */
bool weft__pool_abandon(struct exec_pool *p);
/* After weft__pool_abandon returned true: p belongs to its threads; the
 * last one to exit (or the caller, if none is left) calls done(arg) and
 * frees p. */
void weft__pool_disown(struct exec_pool *p, void (*done)(void *), void *arg);
/* Waits until every pool thread has exited, then frees p. */
void weft__pool_free(struct exec_pool *p);
/* Runs fn(arg) on the pool for the calling task (see weft_run_blocking).
 * Returns fn's status, -ECANCELED, -EAGAIN (no thread could start). */
int weft__pool_run(struct exec_pool *p, struct weft_task *self, weft_fn fn, void *arg);
/* The same, and if the task is interrupted while fn runs, on_cancel(arg)
 * (non-NULL) is called once, on the task's thread, unless fn has returned
 * (see weft_run_blocking_ex). */
int weft__pool_run_ex(struct exec_pool *p, struct weft_task *self, weft_fn fn, void *arg,
                      void (*on_cancel)(void *));
/* The runtime whose job the calling pool thread runs now, else NULL. */
weft_runtime *weft__pool_job_runtime(void);
/* Counters for weft_runtime_stats (one consistent snapshot). */
void weft__pool_counts(struct exec_pool *p, unsigned *threads, unsigned *busy, unsigned *idle,
                       unsigned long *queued);

#endif /* WEFT_EXEC_POOL_H */
