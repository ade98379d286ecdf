/* SPDX-License-Identifier: MIT */
/* select: wait for the first of several cases (a channel receive or send,
 * a task's end, an event, a descriptor's readiness) and complete exactly
 * one, chosen uniformly at random among the ready ones (Go's select,
 * Tokio's select!). The case array holds each case's waiter storage, so a
 * select allocates nothing. */
#ifndef WEFT_SELECT_H
#define WEFT_SELECT_H

#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One case of a select, built by weft_sel_recv/send/task/event/fd. All
 * fields but result are private: the waiter storage weft_select uses
 * while it waits. A zeroed weft_sel is a bad case (-EINVAL). */
typedef struct weft_sel {
    int weft__kind;
    int weft__events;
    void *weft__obj;
    void *weft__elem;
    unsigned weft__order;
    unsigned weft__state;
    union {
        void *weft__p[10];
        uint64_t weft__u[10];
    } weft__priv;
    int result; /* the completed case's outcome (see each builder) */
} weft_sel;

/* Receives one element of c into elem. result: 0, or -EPIPE (closed and
 * drained). */
WEFT_API weft_sel weft_sel_recv(weft_chan *c, void *elem);
/* Sends elem on c (copied when the case completes; on a rendezvous
 * channel, by handing it to a receiver). result: 0, or -EPIPE (closed). */
WEFT_API weft_sel weft_sel_send(weft_chan *c, const void *elem);
/* Ready once t has ended; joins nothing (the handle stays its owner's).
 * Any number of selects and weft_wait_any may wait on t at once, each
 * seeing its end at once, and one task may join t meanwhile: t must be
 * valid when weft_select is called, and a select that is waiting learns
 * the end (and the status) from its own waiter, so a join beside it may
 * free t. result: t's status. */
WEFT_API weft_sel weft_sel_task(weft_task *t);
/* Ready while e is set; a set while the select waits completes the case
 * even if e is cleared right after (as weft_event_wait). result: 0. */
WEFT_API weft_sel weft_sel_event(weft_event *e);
/* Ready when fd is ready for events (WEFT_READABLE | WEFT_WRITABLE).
 * result: the ready mask (> 0), or a negative errno (-EBADF) as from
 * weft_wait_fd. */
WEFT_API weft_sel weft_sel_fd(int fd, int events);

/* Waits until at least one of cases[0..n) is ready, completes exactly one,
 * chosen uniformly at random among the ready ones, sets its result and
 * returns its index. timeout_ns < 0: no timeout; 0: only look. Errors:
 * -ETIMEDOUT (timeout, or a deadline scope), -ECANCELED: then no case was
 * completed (no element taken or delivered); -EINVAL (NULL cases with
 * n > 0, n == 0 with no timeout (timeout_ns < 0 or WEFT_FOREVER), a bad case: NULL channel, element, task
 * or event, the calling task itself, fd < 0 or bad events; n > INT_MAX);
 * -EPERM outside a task. n == 0 with a timeout sleeps, then -ETIMEDOUT.
 * The same channel may appear in several cases. Suspension point. */
WEFT_API int weft_select(weft_sel cases[], size_t n, int64_t timeout_ns);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_SELECT_H */
