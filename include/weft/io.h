/* SPDX-License-Identifier: MIT */
/* I/O on file descriptors through the per-worker epoll reactors. Every call
 * tries the system call first and parks only on EAGAIN; descriptors are
 * switched to non-blocking mode. Task only (suspension points): -EPERM from
 * a plain thread. Waits honour cancellation (-ECANCELED) and deadline
 * scopes (-ETIMEDOUT). */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <sys/socket.h>
#include <sys/types.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { WEFT_READABLE = 1, WEFT_WRITABLE = 2 };

/* Waits until fd is ready for events (WEFT_READABLE | WEFT_WRITABLE).
 * Returns the ready mask (error and hang-up count as both), -EBADF (fd
 * closed with weft_close meanwhile, or invalid), -EINVAL (no events),
 * -ECANCELED, -ETIMEDOUT. */
WEFT_API int weft_wait_fd(int fd, int events);

/* read(2): returns bytes read (0 at end of file) or a negative errno. */
WEFT_API ssize_t weft_read(int fd, void *buf, size_t len);

/* Writes all len bytes of buf; returns len, or a negative errno (bytes
 * already written are lost to the count: the error wins). */
WEFT_API ssize_t weft_write(int fd, const void *buf, size_t len);

/* recv(2)/send(2) with flags; send writes what the socket takes (at least
 * one byte) like send(2). */
WEFT_API ssize_t weft_recv(int fd, void *buf, size_t len, int flags);
WEFT_API ssize_t weft_send(int fd, const void *buf, size_t len, int flags);

/* accept(2): returns a new non-blocking, close-on-exec descriptor. */
WEFT_API int weft_accept(int lfd, struct sockaddr *addr, socklen_t *addrlen);

/* connect(2), waiting for the handshake; 0 or a negative errno
 * (-ECONNREFUSED, ...). */
WEFT_API int weft_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);

/* Wakes every task waiting on fd with -EBADF, then closes it. Returns 0 or
 * a negative errno from close(2). Any thread. */
WEFT_API int weft_close(int fd);

/* A listening TCP socket on host:port (host NULL or "" = any address),
 * SO_REUSEADDR set. Returns the descriptor or a negative errno (-ENOENT
 * when the host does not resolve). Name resolution runs on the blocking
 * pool. Task only. */
WEFT_API int weft_tcp_listen(const char *host, const char *port, int backlog);

/* A connected TCP socket to host:port, trying each resolved address.
 * Returns the descriptor or a negative errno (-ENOENT unresolvable host,
 * -ECONNREFUSED, ...). Task only (suspension point). */
WEFT_API int weft_tcp_connect(const char *host, const char *port);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_IO_H */
