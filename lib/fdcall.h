/* SPDX-License-Identifier: MIT */
/* The internal entry points shared by the descriptor calls (io.c, dgram.c,
 * file.c, net.c, copy.c): the common checks, "try the system call, park on
 * EAGAIN" and "run the system call on the blocking pool". Each keeps the
 * call bracketed (weft__reactor_op_begin/end) so that weft_close never
 * races with it. */
#ifndef WEFT_FDCALL_H
#define WEFT_FDCALL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "compiler.h"
#include "sched/wait.h"

struct fd_state;

/* A system call on fd with its arguments in ctx: returns its result or a
 * negative errno (never -EINTR: it retries those itself). Must be an
 * out-of-line function (errno, see io.c). */
typedef ssize_t (*weft__fd_op)(int fd, void *ctx);

/* Checks that a task calls (-EPERM), that fd is valid (-EBADF) and that
 * args are sane (-EINVAL), delivers a pending cancellation or deadline,
 * and returns fd's state in *sp and its enum fd_mode bits in *modep (when
 * non-NULL), learning them on the file's first use. Task only. */
WEFT__MUST_CHECK int weft__io_begin(int fd, bool args_ok, struct fd_state **sp, uint32_t *modep);

/* Calls op(fd, ctx) until it returns anything but -EAGAIN, parking on the
 * reactor for a readiness edge in events (WEFT__POLL_IN/OUT) between
 * tries; with nowait, -EAGAIN is returned instead. Returns op's result or
 * the wait's error (-EBADF, -ECANCELED, -ETIMEDOUT, -ENOMEM); call (enum
 * weft__wait_call) names the wait in dumps. Task only (suspension point). */
ssize_t weft__io_retry(struct fd_state *s, int fd, uint32_t events, weft__fd_op op, void *ctx,
                       bool nowait, unsigned call);

/* Runs op(fd, ctx) on the runtime's blocking pool and parks until it has
 * returned (file.c). Returns op's result, or -ECANCELED / -ETIMEDOUT (the
 * task was interrupted: before op started, op never runs; else after op
 * returned, its result is dropped), -EAGAIN (no pool thread), -EBADF.
 * Task only (suspension point). */
ssize_t weft__io_offload(struct fd_state *s, int fd, weft__fd_op op, void *ctx);

/* weft_read / weft_write on a FD_MODE_FILE descriptor (file.c). */
ssize_t weft__file_read(struct fd_state *s, int fd, void *buf, size_t len);
ssize_t weft__file_write(struct fd_state *s, int fd, const void *buf, size_t len);

#endif /* WEFT_FDCALL_H */
