/* SPDX-License-Identifier: MIT */
/* The blocking-thread pool behind weft_run_blocking: grows on demand up to
 * a ceiling, lets idle threads exit after a keep-alive, queues work beyond
 * the ceiling. */
#ifndef WEFT_EXEC_POOL_H
#define WEFT_EXEC_POOL_H

#include <pthread.h>
#include <stdbool.h>

#include <weft.h>

#include "compiler.h"

struct weft_task;

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_DROPPED };

/* A job lives on the stack of the task that submitted it. */
struct job {
    struct job *next;
    weft_fn fn;
    void *arg;
    int status;
    enum job_state state;    /* under the pool lock */
    struct weft_task *task;  /* woken when the job is done or dropped */
};

struct exec_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;     /* a job was queued, or shutdown */
    pthread_cond_t gone;     /* a thread exited */
    struct job *head, *tail; /* queued jobs */
    unsigned n_threads, n_idle, n_busy, max;
    unsigned long n_queued;
    bool shutdown;
    int64_t keepalive_ns;
};

struct exec_pool *weft__pool_new(unsigned max_threads);
/* Drops queued jobs (their tasks see JOB_DROPPED), stops accepting work and
 * lets threads exit once their job returns. */
void weft__pool_shutdown(struct exec_pool *p);
/* Waits until every pool thread has exited, then frees p. */
void weft__pool_free(struct exec_pool *p);
/* Runs fn(arg) on the pool for the calling task (see weft_run_blocking). */
int weft__pool_run(struct exec_pool *p, struct weft_task *self, weft_fn fn, void *arg);
/* Counters for weft_runtime_stats. */
void weft__pool_counts(struct exec_pool *p, unsigned *threads, unsigned *busy, unsigned *idle,
                       unsigned long *queued);

#endif /* WEFT_EXEC_POOL_H */
