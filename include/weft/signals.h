/* SPDX-License-Identifier: MIT */
/* Waiting for signals from a task. weft catches a signal for the whole
 * process from the first weft_signal_wait on it until the runtime that
 * waited is freed: a handler (installed with sigaction, the previous
 * disposition saved) only records the delivery and wakes an internal
 * thread of weft's, which hands it to the waiting tasks. That thread has
 * the caught signals unblocked, so a signal arrives even when every
 * program thread blocks it (a mask set in main before the runtime was
 * created, which the workers inherit). The workers of a runtime that
 * waited on a signal have it unblocked too, so that one aimed at a worker
 * thread (raise() or pthread_kill from a task) is caught as well; they
 * block it again only by ending, with their runtime. Each runtime that
 * waited on a
 * signal keeps one pending delivery of it until a wait of its tasks
 * returns it (two deliveries before a wait are one); a delivery goes to
 * every such runtime and wakes one waiter in each. fork(): the child
 * keeps no waiter and no pending delivery, and gets the previous
 * dispositions back (its runtimes, like its threads, are the parent's). */
#ifndef WEFT_SIGNALS_H
#define WEFT_SIGNALS_H

#include <signal.h>
/* sigset_t, also under strict ISO C (where <signal.h> lacks it); POSIX
 * has <sys/select.h> define it. */
#include <sys/select.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The number of a signal in set that was delivered to the process (when
 * several in set are pending, the lowest). Waits in FIFO order among the
 * tasks of the runtime whose sets hold the signal; sets may overlap.
 * Catching starts with the call, even one that then returns -ECANCELED or
 * -ETIMEDOUT at once (so a wait under an expired deadline scope arms the
 * signals, which are kept pending from then on).
 * -EINVAL: set NULL or empty, or holding SIGKILL, SIGSTOP, a signal weft
 * needs itself (SIGSEGV, its stack-overflow handler; the WEFT_DUMP_SIGNAL
 * one when that is set), a fault signal (SIGBUS, SIGFPE, SIGILL: a handler
 * that only records would return into the faulting instruction forever)
 * or a number the C library reserves (32, 33 with glibc). -ECANCELED,
 * -ETIMEDOUT (deadline scope); -EPERM outside a task. Suspension point.
 * weft_runtime_free restores the previous disposition of the signals its
 * tasks waited on, once no other live runtime has waited on them; until
 * then the previous handler is not called, and the program should not
 * change those dispositions itself (the restore would undo it). */
WEFT_API int weft_signal_wait(const sigset_t *set);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SIGNALS_H */
