/* SPDX-License-Identifier: MIT */
/* weft_copy: a proxy's inner loop. Reads from one descriptor and writes to
 * the other until end of file, then shuts down the write side of the
 * destination so that its peer sees the end too. Every read and every
 * partial write runs under a deadline scope of idle_timeout_ns, renewed
 * each time a byte moves, so "idle" means "no progress", however long the
 * whole copy takes. Runs on the calling task's worker (files: the pool). */
#define _GNU_SOURCE 1
#include "internal.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fdcall.h"
#include "reactor/reactor.h"
#include "sched/sched.h"

#define COPY_BUF 65536 /* Tokio's copy uses 8 KiB; 64 KiB halves the calls on bulk transfers */

struct some {
    const char *p;
    size_t len;
    bool sock;
};

/* What the descriptor takes now, never blocking (as io.c's writes):
 * send(MSG_DONTWAIT) on sockets, pwritev2(RWF_NOWAIT) on pipes and the
 * like, write(2) (O_NONBLOCK) where RWF_NOWAIT is refused. */
static WEFT__NOINLINE ssize_t op_write_some(int fd, void *ctx)
{
    struct some *a = ctx;
    ssize_t n;
    if (a->sock) {
        while ((n = send(fd, a->p, a->len, MSG_NOSIGNAL | MSG_DONTWAIT)) < 0 && errno == EINTR)
            ;
        return n < 0 ? -errno : n;
    }
    struct iovec v = {(void *)a->p, a->len};
    while ((n = pwritev2(fd, &v, 1, -1, RWF_NOWAIT)) < 0 && errno == EINTR)
        ;
    if (n < 0 && errno == EOPNOTSUPP)
        while ((n = write(fd, a->p, a->len)) < 0 && errno == EINTR)
            ;
    return n < 0 ? -errno : n;
}

static WEFT__NOINLINE int sys_shutdown_wr(int fd)
{
    return shutdown(fd, SHUT_WR) == 0 ? 0 : -errno;
}

/* Enters an idle scope if there is a timeout; *on says whether it did. */
static int idle_enter(weft_deadline *d, int64_t idle_ns, bool *on)
{
    *on = idle_ns >= 0;
    return *on ? weft_deadline_enter(d, idle_ns) : 0;
}

static void idle_leave(weft_deadline *d, bool on)
{
    if (on)
        (void)weft_deadline_leave(d);
}

/* Writes buf[0, len) to `to`, renewing the idle scope after each partial
 * write. Returns 0 or a negative errno. */
static int put_all(int to, struct fd_state *s, uint32_t mode, const char *buf, size_t len,
                   int64_t idle_ns)
{
    if (mode & FD_MODE_FILE) {
        /* A disk makes progress without us: one bounded write-all. */
        weft_deadline d;
        bool on;
        int rc = idle_enter(&d, idle_ns, &on);
        if (rc < 0)
            return rc;
        ssize_t n = weft__file_write(s, to, buf, len);
        idle_leave(&d, on);
        return n < 0 ? (int)n : 0;
    }
    struct some a = {.p = buf, .len = len, .sock = mode & FD_MODE_SOCKET};
    while (a.len > 0) {
        weft_deadline d;
        bool on;
        int rc = idle_enter(&d, idle_ns, &on);
        if (rc < 0)
            return rc;
        ssize_t n = weft__io_retry(s, to, WEFT__POLL_OUT, op_write_some, &a, false, WEFT__WC_COPY);
        idle_leave(&d, on);
        if (n < 0)
            return (int)n;
        a.p += n;
        a.len -= (size_t)n;
    }
    return 0;
}

ssize_t weft_copy(int from, int to, int64_t idle_timeout_ns)
{
    if (!weft__task_self())
        return -EPERM;
    if (from < 0 || to < 0)
        return -EBADF;
    if (from == to)
        return -EINVAL;
    struct fd_state *fs, *ts;
    uint32_t tmode;
    int rc = weft__io_begin(from, true, &fs, NULL);
    if (rc == 0)
        rc = weft__io_begin(to, true, &ts, &tmode);
    if (rc)
        return rc;
    char *buf = malloc(COPY_BUF);
    if (!buf)
        return -ENOMEM;
    ssize_t total = 0;
    for (;;) {
        weft_deadline d;
        bool on;
        rc = idle_enter(&d, idle_timeout_ns, &on);
        if (rc < 0)
            break;
        ssize_t n = weft_read(from, buf, COPY_BUF);
        idle_leave(&d, on);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        if (n == 0) {
            /* The peer of `to` sees end of file too. A pipe or a file has
             * no write side to shut down: it ends when its owner closes it. */
            if (tmode & FD_MODE_SOCKET) {
                if (!weft__reactor_op_begin(ts)) {
                    rc = -EBADF;
                    break;
                }
                rc = sys_shutdown_wr(to);
                weft__reactor_op_end(ts);
                if (rc == -ENOTCONN)
                    rc = 0; /* the peer is gone already: nothing to tell */
            }
            break;
        }
        rc = put_all(to, ts, tmode, buf, (size_t)n, idle_timeout_ns);
        if (rc < 0)
            break;
        total += n;
    }
    free(buf);
    return rc < 0 ? rc : total;
}
