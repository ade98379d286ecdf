/* SPDX-License-Identifier: MIT */
/* The seam between the scheduler and the operating system's readiness
 * API: one epoll instance and one eventfd per worker. epoll.c alone
 * includes <sys/epoll.h> and <sys/eventfd.h>. */
#ifndef WEFT_REACTOR_POLLER_H
#define WEFT_REACTOR_POLLER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"

/* Something registered in a poller: ready() runs on the thread that polled,
 * with the readiness bits (WEFT__POLL_*). */
struct poll_source {
    void (*ready)(struct poll_source *src, uint32_t events);
};

enum {
    WEFT__POLL_IN = 1u << 0,
    WEFT__POLL_OUT = 1u << 1,
    WEFT__POLL_ERR = 1u << 2, /* error or hang-up */
    WEFT__POLL_HUP = 1u << 3, /* peer closed (EPOLLRDHUP/HUP) or error:
                                 final, reads stop blocking for good */
};

struct poller {
    int epfd;
    int evfd;                  /* wake-up eventfd, registered in epfd */
    _Atomic bool wake_pending; /* an eventfd write is outstanding */
    _Atomic uint32_t n_sources; /* registered descriptors (hint for peers) */
};

WEFT__MUST_CHECK int weft__poller_init(struct poller *p);
void weft__poller_destroy(struct poller *p);
/* Waits up to timeout_ns (< 0: forever, 0: just poll) for readiness or a
 * wake-up and dispatches ready sources. Any thread may poll any poller
 * without waiting (timeout_ns 0); only its owner waits (timeout_ns != 0),
 * and only such a wait consumes a wake-up: a look without waiting leaves
 * it pending for the owner's next wait, which then returns at once.
 * Returns the number of source events dispatched, or a negative errno. */
int weft__poller_wait(struct poller *p, int64_t timeout_ns);
/* The same, harvesting at most max events (1..WEFT__POLL_BATCH): a
 * worker whose run queue is nearly full leaves the rest in the kernel's
 * ready list (FIFO too) rather than overflowing its queue. */
int weft__poller_wait_max(struct poller *p, int64_t timeout_ns, int max);
/* Ends a wait in progress (or the next one) on p. Any thread. */
void weft__poller_wake(struct poller *p);
/* Registers src for fd with edge-triggered interest in events
 * (WEFT__POLL_IN | WEFT__POLL_OUT). Returns 0 or a negative errno. */
WEFT__MUST_CHECK int weft__poller_add(struct poller *p, int fd, uint32_t events,
                                      struct poll_source *src);
/* Changes the interest of a registered fd. */
WEFT__MUST_CHECK int weft__poller_mod(struct poller *p, int fd, uint32_t events,
                                      struct poll_source *src);
/* Removes fd. Returns 0 or a negative errno. */
int weft__poller_del(struct poller *p, int fd);

#endif /* WEFT_REACTOR_POLLER_H */
