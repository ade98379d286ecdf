/* SPDX-License-Identifier: MIT */
/* The descriptor calls of include/weft/io.h: validate, try the system call,
 * and only on EAGAIN park on the reactor (reactor/reactor.c) until a newer
 * readiness edge. Runs on the calling task's worker; weft_close on any
 * thread. System calls go through out-of-line wrappers that return -errno,
 * because a task may resume on another thread after any suspension point
 * and the compiler may cache errno's (thread-local) address across it. */
#define _GNU_SOURCE 1
#include "internal.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fdcall.h"
#include "reactor/reactor.h"
#include "sched/sched.h"
#include "select.h"

/* ------------------------------------------------------------ system calls */

/* What a read or write returns when the descriptor number no longer
 * names the file whose mode the library learned: the file was closed with
 * close(2), not weft_close, and the number reused (io.h). The caller
 * forgets the old file and learns the new one (relearn). Not an errno. */
#define WEFT__FD_REUSED (-100000)
/* A file of mode FD_MODE_NOWAIT whose reads or writes refuse RWF_NOWAIT:
 * it goes over to FD_MODE_CHECK. Not an errno. */
#define WEFT__FD_NO_NOWAIT (-100001)

/* O_NONBLOCK still set (FD_MODE_CHECK files, before each call)? */
static WEFT__NOINLINE ssize_t check_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    return (fl & O_NONBLOCK) ? 0 : WEFT__FD_REUSED;
}

/* The calls below never block, whatever the file behind the number:
 * sockets get MSG_DONTWAIT, pipes and the like RWF_NOWAIT, and other
 * files have their O_NONBLOCK checked first. A socket call that finds no
 * socket (ENOTSOCK), or a file that lost O_NONBLOCK, means the number was
 * reused: WEFT__FD_REUSED. */
static WEFT__NOINLINE ssize_t sys_read(int fd, void *buf, size_t len, uint32_t mode)
{
    ssize_t n;
    if (mode & FD_MODE_SOCKET) {
        /* recv(2): the same result as read(2), without the file-position
         * and fsnotify work (about 0.25 us per call). Not for len 0:
         * read(2) returns 0 at once, recv(2) would wait for data. */
        while ((n = len ? recv(fd, buf, len, MSG_DONTWAIT) : read(fd, buf, len)) < 0 &&
               errno == EINTR)
            ;
        return n < 0 ? (errno == ENOTSOCK ? WEFT__FD_REUSED : -errno) : n;
    }
    if (mode & FD_MODE_NOWAIT) {
        struct iovec v = {buf, len};
        while ((n = preadv2(fd, &v, 1, -1, RWF_NOWAIT)) < 0 && errno == EINTR)
            ;
        return n < 0 ? (errno == EOPNOTSUPP ? WEFT__FD_NO_NOWAIT : -errno) : n;
    }
    if ((n = check_nonblock(fd)) < 0)
        return n;
    while ((n = read(fd, buf, len)) < 0 && errno == EINTR)
        ;
    return n < 0 ? -errno : n;
}

static WEFT__NOINLINE ssize_t sys_write(int fd, const void *buf, size_t len, uint32_t mode)
{
    ssize_t n;
    if (mode & FD_MODE_SOCKET) {
        /* MSG_NOSIGNAL: a vanished peer costs -EPIPE, not the process
         * (SIGPIPE). */
        while ((n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT)) < 0 && errno == EINTR)
            ;
        return n < 0 ? (errno == ENOTSOCK ? WEFT__FD_REUSED : -errno) : n;
    }
    if (mode & FD_MODE_NOWAIT) {
        struct iovec v = {(void *)buf, len};
        while ((n = pwritev2(fd, &v, 1, -1, RWF_NOWAIT)) < 0 && errno == EINTR)
            ;
        return n < 0 ? (errno == EOPNOTSUPP ? WEFT__FD_NO_NOWAIT : -errno) : n;
    }
    if ((n = check_nonblock(fd)) < 0)
        return n;
    while ((n = write(fd, buf, len)) < 0 && errno == EINTR)
        ;
    return n < 0 ? -errno : n;
}

static WEFT__NOINLINE ssize_t sys_recv(int fd, void *buf, size_t len, int flags)
{
    ssize_t n;
    while ((n = recv(fd, buf, len, flags | MSG_DONTWAIT)) < 0 && errno == EINTR)
        ;
    return n < 0 ? -errno : n;
}

static WEFT__NOINLINE ssize_t sys_send(int fd, const void *buf, size_t len, int flags)
{
    ssize_t n;
    while ((n = send(fd, buf, len, flags | MSG_NOSIGNAL | MSG_DONTWAIT)) < 0 && errno == EINTR)
        ;
    return n < 0 ? -errno : n;
}

static WEFT__NOINLINE int sys_accept(int lfd, struct sockaddr *addr, socklen_t *addrlen)
{
    for (;;) {
        int fd = accept4(lfd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        switch (errno) {
        case EINTR:
        /* The connection died in the queue, or (Linux) a network error of
         * the new connection is reported here: take the next one. */
        case ECONNABORTED:
        case EPROTO:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case ENETUNREACH:
            continue;
        default:
            return -errno;
        }
    }
}

static WEFT__NOINLINE int sys_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    return connect(fd, addr, len) == 0 ? 0 : -errno;
}

/* The socket's pending error (SO_ERROR), negated. */
static WEFT__NOINLINE int sys_so_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

/* Readiness now, without waiting: WEFT__POLL_* bits, 0, or -EBADF. */
static WEFT__NOINLINE int sys_poll_now(int fd, uint32_t events)
{
    struct pollfd p = {.fd = fd, .events = 0};
    if (events & WEFT__POLL_IN)
        p.events |= POLLIN;
    if (events & WEFT__POLL_OUT)
        p.events |= POLLOUT;
    int n;
    while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return -errno;
    if (n == 0)
        return 0;
    if (p.revents & POLLNVAL)
        return -EBADF;
    uint32_t r = 0;
    if (p.revents & (POLLIN | POLLRDHUP))
        r |= WEFT__POLL_IN;
    if (p.revents & POLLOUT)
        r |= WEFT__POLL_OUT;
    if (p.revents & (POLLERR | POLLHUP))
        r |= WEFT__POLL_ERR | WEFT__POLL_IN | WEFT__POLL_OUT;
    return (int)r;
}

/* Makes the file non-blocking (once per file) and learns what it is: a
 * socket, a file for the pool, or another. Returns the enum fd_mode bits or a negative errno. */
static WEFT__NOINLINE int sys_learn_mode(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    /* Regular files and block devices: their calls go to the blocking
     * pool (file.c), since no readiness says when a disk would block. */
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
        return (int)(FD_MODE_KNOWN | FD_MODE_CHECK | FD_MODE_FILE);
    if (!S_ISSOCK(st.st_mode))
        return (int)(FD_MODE_KNOWN | (S_ISDIR(st.st_mode) ? FD_MODE_CHECK : FD_MODE_NOWAIT));
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        type = 0;
    return (int)(FD_MODE_KNOWN | FD_MODE_SOCKET | (type == SOCK_STREAM ? FD_MODE_STREAM : 0u));
}

/* ------------------------------------------------------------ common entry */

/* Checks that a task calls (-EPERM), that fd is valid (-EBADF) and that
 * args are sane (-EINVAL), delivers a pending cancellation or deadline,
 * and returns fd's state made non-blocking in *sp and its mode in *modep
 * (when non-NULL). */
int weft__io_begin(int fd, bool args_ok, struct fd_state **sp, uint32_t *modep)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (fd < 0)
        return -EBADF;
    if (!args_ok)
        return -EINVAL;
    int rc = weft__interrupted(self);
    if (rc)
        return rc;
    struct fd_state *s = weft__reactor_get(fd, &rc);
    if (!s)
        return rc;
    /* Acquire pairs with the release in weft__reactor_set_mode/adopt. */
    uint32_t mode = atomic_load_explicit(&s->mode, memory_order_acquire);
    if (WEFT__UNLIKELY(!(mode & FD_MODE_KNOWN))) {
        uint32_t gen = atomic_load_explicit(&s->gen, memory_order_acquire);
        if (!weft__reactor_op_begin(s))
            return -EBADF;
        rc = sys_learn_mode(fd);
        weft__reactor_op_end(s);
        if (rc < 0)
            return rc;
        mode = (uint32_t)rc;
        weft__reactor_set_mode(s, gen, mode);
    }
    *sp = s;
    if (modep)
        *modep = mode;
    return 0;
}

/* A read or write came back with WEFT__FD_REUSED or WEFT__FD_NO_NOWAIT:
 * forget the old file of the number (its waiters get -EBADF) and learn
 * the new one, or move the file to FD_MODE_CHECK. Returns 0 (retry with
 * the new *sp and *modep) or a negative errno. */
static WEFT__NOINLINE int relearn(int fd, ssize_t why, struct fd_state **sp, uint32_t *modep)
{
    if (why == WEFT__FD_NO_NOWAIT) {
        struct fd_state *s = *sp;
        uint32_t mode = (*modep & ~(uint32_t)FD_MODE_NOWAIT) | FD_MODE_CHECK;
        /* Acquire: pairs with renew_locked's release of gen (reactor.c). */
        weft__reactor_set_mode(s, atomic_load_explicit(&s->gen, memory_order_acquire), mode);
        *modep = mode;
        return 0;
    }
    int rc = weft__reactor_adopt(fd, 0);
    if (rc < 0)
        return rc;
    return weft__io_begin(fd, true, sp, modep);
}

ssize_t weft__io_retry(struct fd_state *s, int fd, uint32_t events, weft__fd_op op, void *ctx,
                       bool nowait, unsigned call)
{
    for (;;) {
        struct fd_snap snap;
        weft__reactor_snap(s, &snap);
        if (!weft__reactor_op_begin(s))
            return -EBADF;
        ssize_t n = op(fd, ctx);
        weft__reactor_op_end(s);
        if (n != -EAGAIN || nowait)
            return n;
        int rc = weft__reactor_wait(s, events, &snap, call);
        if (rc < 0)
            return rc;
    }
}

/* ------------------------------------------------------------ public calls */

int weft_wait_fd(int fd, int events)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (fd < 0)
        return -EBADF;
    if (events == 0 || (events & ~(WEFT_READABLE | WEFT_WRITABLE)))
        return -EINVAL;
    int rc = weft__interrupted(self);
    if (rc)
        return rc;
    struct fd_state *s = weft__reactor_get(fd, &rc);
    if (!s)
        return rc;
    uint32_t want = ((events & WEFT_READABLE) ? WEFT__POLL_IN : 0u) |
                    ((events & WEFT_WRITABLE) ? WEFT__POLL_OUT : 0u);
    /* The descriptor's mode is left alone: the caller may go on with
     * blocking calls of its own once it is ready. */
    for (;;) {
        struct fd_snap snap;
        weft__reactor_snap(s, &snap);
        /* A read came back short since the last edge (the receive queue
         * is empty): no need to ask the kernel, as in weft_read. A server
         * that waits for readability before it takes a buffer (io.h) pays
         * no system call more per request than one that reads at once. */
        if (want == WEFT__POLL_IN && weft__reactor_is_drained(s, &snap)) {
            rc = 0;
        } else {
            if (!weft__reactor_op_begin(s))
                return -EBADF;
            rc = sys_poll_now(fd, want);
            weft__reactor_op_end(s);
        }
        if (rc == 0)
            rc = weft__reactor_wait(s, want, &snap, WEFT__WC_WAIT_FD);
        if (rc < 0)
            return rc;
        if (rc > 0) {
            uint32_t got = (uint32_t)rc;
            if (got & WEFT__POLL_ERR)
                got |= WEFT__POLL_IN | WEFT__POLL_OUT;
            int mask = ((got & WEFT__POLL_IN) ? WEFT_READABLE : 0) |
                       ((got & WEFT__POLL_OUT) ? WEFT_WRITABLE : 0);
            mask &= events;
            if (mask)
                return mask;
        }
    }
}

int weft__fd_sel_look(int fd, int events, struct fd_state **sp, struct fd_snap *snap)
{
    int rc;
    struct fd_state *s = weft__reactor_get(fd, &rc);
    if (!s)
        return rc;
    *sp = s;
    uint32_t want = ((events & WEFT_READABLE) ? WEFT__POLL_IN : 0u) |
                    ((events & WEFT_WRITABLE) ? WEFT__POLL_OUT : 0u);
    weft__reactor_snap(s, snap);
    if (!weft__reactor_op_begin(s))
        return -EBADF;
    rc = sys_poll_now(fd, want);
    weft__reactor_op_end(s);
    if (rc <= 0)
        return rc;
    uint32_t got = (uint32_t)rc;
    if (got & WEFT__POLL_ERR)
        got |= WEFT__POLL_IN | WEFT__POLL_OUT;
    int mask = ((got & WEFT__POLL_IN) ? WEFT_READABLE : 0) |
               ((got & WEFT__POLL_OUT) ? WEFT_WRITABLE : 0);
    return mask & events;
}

ssize_t weft_read(int fd, void *buf, size_t len)
{
    struct fd_state *s;
    uint32_t mode;
    int rc = weft__io_begin(fd, (buf || !len) && len <= SSIZE_MAX, &s, &mode);
    if (rc)
        return rc;
    for (;;) {
        if (mode & FD_MODE_FILE)
            return weft__file_read(s, fd, buf, len);
        struct fd_snap snap;
        weft__reactor_snap(s, &snap);
        if (!weft__reactor_is_drained(s, &snap) || !len) {
            if (!weft__reactor_op_begin(s))
                return -EBADF;
            ssize_t n = sys_read(fd, buf, len, mode);
            weft__reactor_op_end(s);
            if (WEFT__UNLIKELY(n <= WEFT__FD_REUSED)) {
                if ((rc = relearn(fd, n, &s, &mode)) < 0)
                    return rc;
                continue;
            }
            if (n != -EAGAIN) {
                if (n > 0 && (size_t)n < len && (mode & FD_MODE_STREAM))
                    weft__reactor_note_drained(s, &snap);
                return n;
            }
        }
        rc = weft__reactor_wait(s, WEFT__POLL_IN, &snap, WEFT__WC_READ);
        if (rc < 0)
            return rc;
    }
}

ssize_t weft_write(int fd, const void *buf, size_t len)
{
    struct fd_state *s;
    uint32_t mode;
    int rc = weft__io_begin(fd, (buf || !len) && len <= SSIZE_MAX, &s, &mode);
    if (rc)
        return rc;
    const char *p = buf;
    size_t done = 0;
    while (done < len) {
        if (mode & FD_MODE_FILE) {
            ssize_t n = weft__file_write(s, fd, p + done, len - done);
            return n < 0 ? n : (ssize_t)len;
        }
        struct fd_snap snap;
        weft__reactor_snap(s, &snap);
        if (!weft__reactor_op_begin(s))
            return -EBADF;
        ssize_t n = sys_write(fd, p + done, len - done, mode);
        weft__reactor_op_end(s);
        if (WEFT__UNLIKELY(n <= WEFT__FD_REUSED)) {
            if ((rc = relearn(fd, n, &s, &mode)) < 0)
                return rc;
            continue;
        }
        if (n >= 0) {
            done += (size_t)n;
            continue;
        }
        if (n != -EAGAIN)
            return n;
        rc = weft__reactor_wait(s, WEFT__POLL_OUT, &snap, WEFT__WC_WRITE);
        if (rc < 0)
            return rc;
    }
    return (ssize_t)len;
}

ssize_t weft_recv(int fd, void *buf, size_t len, int flags)
{
    struct fd_state *s;
    uint32_t mode;
    int rc = weft__io_begin(fd, (buf || !len) && len <= SSIZE_MAX, &s, &mode);
    if (rc)
        return rc;
    for (;;) {
        struct fd_snap snap;
        weft__reactor_snap(s, &snap);
        if (!weft__reactor_is_drained(s, &snap) || !len || (flags & MSG_DONTWAIT)) {
            if (!weft__reactor_op_begin(s))
                return -EBADF;
            ssize_t n = sys_recv(fd, buf, len, flags);
            weft__reactor_op_end(s);
            if (n != -EAGAIN || (flags & MSG_DONTWAIT)) {
                /* A peek leaves the data where it was. */
                if (n > 0 && (size_t)n < len && (mode & FD_MODE_STREAM) &&
                    !(flags & (MSG_PEEK | MSG_OOB)))
                    weft__reactor_note_drained(s, &snap);
                return n;
            }
        }
        rc = weft__reactor_wait(s, WEFT__POLL_IN, &snap, WEFT__WC_RECV);
        if (rc < 0)
            return rc;
    }
}

ssize_t weft_send(int fd, const void *buf, size_t len, int flags)
{
    struct fd_state *s;
    int rc = weft__io_begin(fd, (buf || !len) && len <= SSIZE_MAX, &s, NULL);
    if (rc)
        return rc;
    for (;;) {
        struct fd_snap snap;
        weft__reactor_snap(s, &snap);
        if (!weft__reactor_op_begin(s))
            return -EBADF;
        ssize_t n = sys_send(fd, buf, len, flags);
        weft__reactor_op_end(s);
        if (n != -EAGAIN || (flags & MSG_DONTWAIT))
            return n;
        rc = weft__reactor_wait(s, WEFT__POLL_OUT, &snap, WEFT__WC_SEND);
        if (rc < 0)
            return rc;
    }
}

int weft_accept(int lfd, struct sockaddr *addr, socklen_t *addrlen)
{
    struct fd_state *s;
    uint32_t lmode;
    int rc = weft__io_begin(lfd, !addr || addrlen, &s, &lmode);
    if (rc)
        return rc;
    for (;;) {
        struct fd_snap snap;
        weft__reactor_snap(s, &snap);
        if (!weft__reactor_op_begin(s))
            return -EBADF;
        /* accept4 has no per-call MSG_DONTWAIT: make sure the listener
         * is still the non-blocking file weft knows (170 ns, beside the
         * microseconds of an accept). */
        int fd = (int)check_nonblock(lfd);
        if (fd == 0)
            fd = sys_accept(lfd, addr, addrlen);
        weft__reactor_op_end(s);
        if (WEFT__UNLIKELY(fd == WEFT__FD_REUSED)) {
            if ((rc = relearn(lfd, fd, &s, &lmode)) < 0)
                return rc;
            continue;
        }
        if (fd >= 0) {
            /* Same type as the listener: TCP and Unix stream listeners
             * are what accept serves in practice. */
            rc = weft__reactor_adopt(fd, FD_MODE_KNOWN | FD_MODE_SOCKET |
                                             (lmode & FD_MODE_STREAM));
            if (rc < 0) {
                (void)weft__reactor_close(fd);
                return rc;
            }
            return fd;
        }
        /* EMFILE, ENFILE, ENOBUFS, ENOMEM go back to the caller: waiting
         * here would not help (the listener stays readable), retrying at
         * once would spin. */
        if (fd != -EAGAIN)
            return fd;
        rc = weft__reactor_wait(s, WEFT__POLL_IN, &snap, WEFT__WC_ACCEPT);
        if (rc < 0)
            return rc;
    }
}

int weft_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    struct fd_state *s;
    uint32_t mode;
    int rc = weft__io_begin(fd, addr != NULL, &s, &mode);
    if (rc)
        return rc;
    if (!weft__reactor_op_begin(s))
        return -EBADF;
    /* As in weft_accept: connect(2) has no per-call flag either. */
    rc = (int)check_nonblock(fd);
    weft__reactor_op_end(s);
    if (WEFT__UNLIKELY(rc == WEFT__FD_REUSED) && (rc = relearn(fd, rc, &s, &mode)) < 0)
        return rc;
    if (rc < 0)
        return rc;
    if (!weft__reactor_op_begin(s))
        return -EBADF;
    rc = sys_connect(fd, addr, addrlen);
    weft__reactor_op_end(s);
    if (rc != -EINPROGRESS && rc != -EINTR && rc != -EALREADY)
        return rc;
    /* The handshake goes on in the kernel; it has ended (either way) when
     * the socket turns writable. Readiness is checked before every wait:
     * an edge may also be stale (an earlier EPOLLOUT). */
    for (;;) {
        struct fd_snap snap;
        weft__reactor_snap(s, &snap);
        if (!weft__reactor_op_begin(s))
            return -EBADF;
        rc = sys_poll_now(fd, WEFT__POLL_OUT);
        weft__reactor_op_end(s);
        if (rc < 0)
            return rc;
        if (rc > 0)
            break;
        rc = weft__reactor_wait(s, WEFT__POLL_OUT, &snap, WEFT__WC_CONNECT);
        if (rc < 0)
            return rc;
    }
    if (!weft__reactor_op_begin(s))
        return -EBADF;
    rc = sys_so_error(fd);
    weft__reactor_op_end(s);
    return rc;
}

int weft_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    return weft__reactor_close(fd);
}
