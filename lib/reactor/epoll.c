/* SPDX-License-Identifier: MIT */
/* Linux epoll(7) + eventfd(2) poller: the only file that includes their
 * headers. A parked worker sleeps in epoll_pwait2() with the next timer
 * deadline as its timeout (nanosecond resolution), so readiness, timers and
 * wake-ups all end the same sleep. */
#include "internal.h"

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "reactor/poller.h"

#define WEFT__POLL_BATCH 64

/* ThreadSanitizer (clang 14, gcc 12) intercepts epoll_wait, whose
 * interceptor acquires what epoll_ctl(ADD) released on the epoll fd, but
 * not epoll_pwait2: the poll_source handed over through the kernel would
 * look racy. Under TSan the millisecond epoll_wait path is used. */
#if defined(__SANITIZE_THREAD__)
#define WEFT__NO_PWAIT2 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT__NO_PWAIT2 1
#endif
#endif

int weft__poller_init(struct poller *p)
{
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0)
        return -errno;
    p->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->evfd < 0) {
        int rc = -errno;
        close(p->epfd);
        return rc;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->evfd, &ev) < 0) {
        int rc = -errno;
        close(p->evfd);
        close(p->epfd);
        return rc;
    }
    atomic_init(&p->wake_pending, false);
    atomic_init(&p->n_sources, 0);
    return 0;
}

void weft__poller_destroy(struct poller *p)
{
    close(p->evfd);
    close(p->epfd);
}

static uint32_t to_epoll(uint32_t events)
{
    uint32_t e = EPOLLET | EPOLLRDHUP;
    if (events & WEFT__POLL_IN)
        e |= EPOLLIN;
    if (events & WEFT__POLL_OUT)
        e |= EPOLLOUT;
    return e;
}

int weft__poller_add(struct poller *p, int fd, uint32_t events, struct poll_source *src)
{
    struct epoll_event ev = {.events = to_epoll(events), .data.ptr = src};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    atomic_fetch_add_explicit(&p->n_sources, 1, memory_order_relaxed);
    return 0;
}

int weft__poller_mod(struct poller *p, int fd, uint32_t events, struct poll_source *src)
{
    struct epoll_event ev = {.events = to_epoll(events), .data.ptr = src};
    return epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int weft__poller_del(struct poller *p, int fd)
{
    struct epoll_event ev = {0};
    if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, &ev) < 0)
        return -errno;
    atomic_fetch_sub_explicit(&p->n_sources, 1, memory_order_relaxed);
    return 0;
}

#if defined(HAVE_EPOLL_PWAIT2) && !defined(WEFT__NO_PWAIT2)
/* Set once the kernel (or valgrind) answered ENOSYS: later waits go
 * straight to epoll_wait. Relaxed: a stale read only costs one more
 * ENOSYS. */
static _Atomic bool no_pwait2;
#endif

int weft__poller_wait(struct poller *p, int64_t timeout_ns)
{
    return weft__poller_wait_max(p, timeout_ns, WEFT__POLL_BATCH);
}

int weft__poller_wait_max(struct poller *p, int64_t timeout_ns, int max)
{
    struct epoll_event evs[WEFT__POLL_BATCH];
    if (max < 1 || max > WEFT__POLL_BATCH)
        max = WEFT__POLL_BATCH;
    int n = -1;
    errno = ENOSYS;
#if defined(HAVE_EPOLL_PWAIT2) && !defined(WEFT__NO_PWAIT2)
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts, *tsp = NULL;
        if (timeout_ns >= 0) {
            ts.tv_sec = timeout_ns / 1000000000;
            ts.tv_nsec = timeout_ns % 1000000000;
            tsp = &ts;
        }
        n = epoll_pwait2(p->epfd, evs, max, tsp, NULL);
        if (n < 0 && errno == ENOSYS)
            atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
    }
#endif
    if (n < 0 && errno == ENOSYS) {
        int ms = timeout_ns < 0 ? -1
                 : timeout_ns > INT32_MAX * INT64_C(1000000) ? INT32_MAX
                 : (int)((timeout_ns + 999999) / 1000000);
        n = epoll_wait(p->epfd, evs, max, ms);
    }
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    int dispatched = 0;
    for (int i = 0; i < n; i++) {
        struct poll_source *src = evs[i].data.ptr;
        if (!src) {
            /* The wake-up eventfd (level-triggered). A look without
             * waiting leaves it set: a peer that polls this poller for its
             * busy owner (work stealing) must not swallow a wake-up sent
             * to end the owner's next sleep, or the owner, on its way to
             * park, would sleep through it while counted as woken (and,
             * counted as searching, stop every later wake-up). The owner's
             * next wait that may block consumes it and returns at once. */
            if (timeout_ns == 0)
                continue;
            uint64_t v;
            ssize_t r = read(p->evfd, &v, sizeof v);
            (void)r;
            /* Release pairs with the acquire exchange in weft__poller_wake:
             * a wake that comes after this store writes the eventfd again. */
            atomic_store_explicit(&p->wake_pending, false, memory_order_release);
            continue;
        }
        uint32_t e = 0, re = evs[i].events;
        if (re & (EPOLLIN | EPOLLRDHUP))
            e |= WEFT__POLL_IN;
        if (re & EPOLLOUT)
            e |= WEFT__POLL_OUT;
        if (re & EPOLLRDHUP)
            e |= WEFT__POLL_HUP;
        if (re & (EPOLLERR | EPOLLHUP))
            e |= WEFT__POLL_ERR | WEFT__POLL_HUP | WEFT__POLL_IN | WEFT__POLL_OUT;
        src->ready(src, e);
        dispatched++;
    }
    return dispatched;
}

void weft__poller_wake(struct poller *p)
{
    /* Acquire/release exchange: only the first waker of a sleep pays for
     * the system call; pairs with the release store after the read above. */
    if (atomic_exchange_explicit(&p->wake_pending, true, memory_order_acq_rel))
        return;
    uint64_t one = 1;
    ssize_t r = write(p->evfd, &one, sizeof one);
    (void)r;
}
