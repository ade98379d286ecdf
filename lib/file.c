/* SPDX-License-Identifier: MIT */
/* Files off the workers: weft_pread, weft_pwrite, weft_fsync, and
 * weft_read / weft_write on regular files and block devices. epoll cannot
 * tell when a disk read would block (a regular file is always "ready"),
 * so the system call runs on the blocking pool and the task parks until it
 * returns: a slow disk stalls that pool thread, never a worker. Other
 * descriptors (pipes, sockets, character devices) take the reactor path:
 * try the call, park on EAGAIN. Runs on the calling task's worker and, for
 * the system calls themselves, a pool thread. */
#define _GNU_SOURCE 1
#include "internal.h"

#include <limits.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exec/pool.h"
#include "fdcall.h"
#include "reactor/reactor.h"
#include "sched/sched.h"

/* ------------------------------------------------------------ pool hop */

/* One call handed to the pool; lives on the task's stack (weft__pool_run
 * returns only after the call has returned, or when it never started). */
struct offload {
    weft__fd_op op;
    void *ctx;
    int fd;
    ssize_t result;
};

static int offload_main(void *arg)
{
    struct offload *o = arg;
    o->result = o->op(o->fd, o->ctx);
    return 0;
}

ssize_t weft__io_offload(struct fd_state *s, int fd, weft__fd_op op, void *ctx)
{
    struct weft_task *self = weft__task_self();
    struct offload o = {.op = op, .ctx = ctx, .fd = fd, .result = 0};
    /* The bracket spans the pool hop: a weft_close meanwhile leaves the
     * close(2) to us, so the pool thread never reaches a new file that
     * took the number. */
    if (!weft__reactor_op_begin(s))
        return -EBADF;
    int rc = weft__pool_run(self->rt->pool, self, offload_main, &o);
    weft__reactor_op_end(s);
    return rc < 0 ? rc : o.result;
}

/* ------------------------------------------------------------ system calls */

struct rw {
    void *buf; /* const for writes */
    size_t len;
    off_t off; /* for pread/pwrite */
};

static WEFT__NOINLINE ssize_t op_read(int fd, void *ctx)
{
    struct rw *a = ctx;
    ssize_t n;
    while ((n = read(fd, a->buf, a->len)) < 0 && errno == EINTR)
        ;
    return n < 0 ? -errno : n;
}

static WEFT__NOINLINE ssize_t op_pread(int fd, void *ctx)
{
    struct rw *a = ctx;
    ssize_t n;
    while ((n = pread(fd, a->buf, a->len, a->off)) < 0 && errno == EINTR)
        ;
    return n < 0 ? -errno : n;
}

/* Writes a: all of it (`all`, for the pool, looping over short writes),
 * or what one call takes (the reactor path, whose caller loops). */
static ssize_t write_loop(int fd, struct rw *a, bool positioned, bool all)
{
    const char *p = a->buf;
    size_t done = 0;
    while (done < a->len) {
        ssize_t n = positioned ? pwrite(fd, p + done, a->len - done, a->off + (off_t)done)
                               : write(fd, p + done, a->len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)n;
        if (!all)
            break;
    }
    return (ssize_t)done;
}

static WEFT__NOINLINE ssize_t op_write_all(int fd, void *ctx)
{
    return write_loop(fd, ctx, false, true);
}

static WEFT__NOINLINE ssize_t op_pwrite_all(int fd, void *ctx)
{
    return write_loop(fd, ctx, true, true);
}

static WEFT__NOINLINE ssize_t op_pwrite_some(int fd, void *ctx)
{
    return write_loop(fd, ctx, true, false);
}

static WEFT__NOINLINE ssize_t op_fsync(int fd, void *ctx)
{
    (void)ctx;
    int rc;
    while ((rc = fsync(fd)) < 0 && errno == EINTR)
        ;
    return rc < 0 ? -errno : 0;
}

/* ------------------------------------------------------------ io.c's file path */

ssize_t weft__file_read(struct fd_state *s, int fd, void *buf, size_t len)
{
    struct rw a = {.buf = buf, .len = len, .off = 0};
    return weft__io_offload(s, fd, op_read, &a);
}

ssize_t weft__file_write(struct fd_state *s, int fd, const void *buf, size_t len)
{
    if (!len)
        return 0; /* as on other descriptors: no system call */
    struct rw a = {.buf = (void *)buf, .len = len, .off = 0};
    return weft__io_offload(s, fd, op_write_all, &a);
}

/* ------------------------------------------------------------ public calls */

ssize_t weft_pread(int fd, void *buf, size_t len, off_t off)
{
    struct fd_state *s;
    uint32_t mode;
    int rc = weft__io_begin(fd, (buf || !len) && len <= SSIZE_MAX && off >= 0, &s, &mode);
    if (rc)
        return rc;
    struct rw a = {.buf = buf, .len = len, .off = off};
    if (mode & FD_MODE_FILE)
        return weft__io_offload(s, fd, op_pread, &a);
    /* A character device that can seek (or -ESPIPE at once). */
    return weft__io_retry(s, fd, WEFT__POLL_IN, op_pread, &a, false, WEFT__WC_PREAD);
}

ssize_t weft_pwrite(int fd, const void *buf, size_t len, off_t off)
{
    struct fd_state *s;
    uint32_t mode;
    int rc = weft__io_begin(fd, (buf || !len) && len <= SSIZE_MAX && off >= 0 &&
                                    (uintmax_t)len <= (uintmax_t)INT64_MAX - (uintmax_t)off,
                            &s, &mode);
    if (rc)
        return rc;
    if (!len)
        return 0;
    struct rw a = {.buf = (void *)buf, .len = len, .off = off};
    if (mode & FD_MODE_FILE)
        return weft__io_offload(s, fd, op_pwrite_all, &a);
    size_t done = 0;
    while (done < len) {
        a.buf = (char *)buf + done;
        a.len = len - done;
        a.off = off + (off_t)done;
        ssize_t n = weft__io_retry(s, fd, WEFT__POLL_OUT, op_pwrite_some, &a, false, WEFT__WC_PWRITE);
        if (n < 0)
            return n;
        done += (size_t)n;
    }
    return (ssize_t)len;
}

int weft_fsync(int fd)
{
    struct fd_state *s;
    uint32_t mode;
    int rc = weft__io_begin(fd, true, &s, &mode);
    if (rc)
        return rc;
    if (mode & FD_MODE_FILE)
        return (int)weft__io_offload(s, fd, op_fsync, NULL);
    /* Pipes, sockets, terminals: fsync(2) answers at once (-EINVAL, or 0). */
    if (!weft__reactor_op_begin(s))
        return -EBADF;
    rc = (int)op_fsync(fd, NULL);
    weft__reactor_op_end(s);
    return rc;
}
