/* SPDX-License-Identifier: MIT */
/* I/O on file descriptors through the per-worker epoll reactors. Every call
 * tries the system call first and parks only on EAGAIN; descriptors are
 * switched to non-blocking mode (O_NONBLOCK, once, on their first use by a
 * call below other than weft_wait_fd; the flag belongs to the open file, so
 * a descriptor shared with another process changes for it too). Task only
 * (suspension points): -EPERM from a plain thread, except weft_close.
 * -EBADF for a descriptor that is not open, -EINVAL for bad arguments.
 * Waits honour cancellation (-ECANCELED) and deadline scopes
 * (-ETIMEDOUT); a call made after cancellation returns -ECANCELED without
 * trying the system call. Other errors are the system call's, negated.
 * Close descriptors the library has seen with weft_close: close(2) leaves
 * the library's record of the number behind. A later file with the same
 * number never blocks a worker (reads and writes are made with
 * MSG_DONTWAIT or RWF_NOWAIT, or after checking O_NONBLOCK, and a
 * changed file is learned afresh), but if the old file had been waited on
 * and the new one is of the same kind, a wait on it may miss its
 * wake-ups; deadlines and cancellation still end such a wait.
 * Descriptors made by weft_accept, weft_tcp_listen and weft_tcp_connect
 * are always learned afresh. */
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
 * -ECANCELED, -ETIMEDOUT. Does not change the descriptor's blocking mode.
 * Readiness may be spurious (as with poll(2)): the next call can still
 * find nothing to do. Regular files are always ready. */
WEFT_API int weft_wait_fd(int fd, int events);

/* read(2): returns bytes read (0 at end of file) or a negative errno. */
WEFT_API ssize_t weft_read(int fd, void *buf, size_t len);

/* Writes all len bytes of buf, looping over partial writes; returns len,
 * or a negative errno (bytes already written are lost to the count: the
 * error wins). On a socket a vanished peer gives -EPIPE, never SIGPIPE;
 * on a pipe write(2)'s SIGPIPE rules apply. */
WEFT_API ssize_t weft_write(int fd, const void *buf, size_t len);

/* recv(2)/send(2) with flags; send writes what the socket takes (at least
 * one byte) like send(2), with MSG_NOSIGNAL added (-EPIPE, not SIGPIPE).
 * With MSG_DONTWAIT in flags they return -EAGAIN instead of waiting. */
WEFT_API ssize_t weft_recv(int fd, void *buf, size_t len, int flags);
WEFT_API ssize_t weft_send(int fd, const void *buf, size_t len, int flags);

/* accept(2): returns a new non-blocking, close-on-exec descriptor. addr
 * and addrlen as for accept(2) (addr NULL: not wanted; addr without
 * addrlen: -EINVAL). Connections that fail while queued are skipped.
 * -EMFILE, -ENFILE, -ENOBUFS and -ENOMEM are returned to the caller at
 * once: the pending connection stays queued and the listener stays
 * readable, so an accept loop must back off (sleep, or close descriptors)
 * before calling again rather than retry at once. */
WEFT_API int weft_accept(int lfd, struct sockaddr *addr, socklen_t *addrlen);

/* connect(2), waiting for the handshake; 0 or a negative errno
 * (-ECONNREFUSED, ...). When interrupted (-ECANCELED, -ETIMEDOUT) the
 * handshake may still be in progress: close the socket. */
WEFT_API int weft_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);

/* Wakes every task waiting on fd with -EBADF, removes fd from its reactor,
 * then closes it; the number cannot be reused before the waiters have been
 * woken. Calls on fd made from then on return -EBADF; if one is inside its
 * system call at that moment, the close(2) happens as soon as that call
 * returns (so it never reaches a new file that took the number) and 0 is
 * returned. Returns 0, -EBADF (fd < 0, or already being closed), or a
 * negative errno from close(2). Any thread; not a suspension point (works
 * in a cancelled task). */
WEFT_API int weft_close(int fd);

/* A listening TCP socket on host:port (host NULL or "" = any address:
 * dual-stack "::" where IPv6 exists, else 0.0.0.0), SO_REUSEADDR set,
 * non-blocking and close-on-exec. backlog <= 0 means SOMAXCONN; port "0"
 * picks a free port (getsockname tells which). Returns the descriptor or
 * a negative errno: -EINVAL (NULL port, or a numeric port above 65535),
 * -EADDRINUSE, ... and the name lookup's errors. Numeric hosts and ports
 * are parsed in place; names run
 * getaddrinfo(3) on the blocking pool, whose EAI_* codes map to: NONAME,
 * NODATA, ADDRFAMILY, SERVICE -> -ENOENT; AGAIN -> -EAGAIN; MEMORY ->
 * -ENOMEM; FAMILY, SOCKTYPE, BADFLAGS -> -EINVAL; SYSTEM -> -errno; others
 * -> -EIO. A cancellation during the lookup takes effect when getaddrinfo
 * returns. Task only (suspension point when a name is looked up). */
WEFT_API int weft_tcp_listen(const char *host, const char *port, int backlog);

/* Flags of weft_tcp_listen_flags. */
enum {
    /* SO_REUSEPORT: several listeners on one port, the kernel spreads the
     * connections among them (one accept loop each). */
    WEFT_LISTEN_REUSEPORT = 1
};

/* weft_tcp_listen with flags (WEFT_LISTEN_*); -EINVAL for unknown flags. */
WEFT_API int weft_tcp_listen_flags(const char *host, const char *port, int backlog,
                                   unsigned flags);

/* A connected TCP socket to host:port, trying each resolved address in
 * order until one accepts. Returns the non-blocking, close-on-exec
 * descriptor or a negative errno: the last address's error (-ECONNREFUSED,
 * ...), -ENOENT for an unresolvable host (lookup errors as for
 * weft_tcp_listen), -EINVAL for a NULL or empty host, a NULL port or a numeric port above
 * 65535;
 * -ECANCELED / -ETIMEDOUT end the attempts. Task only (suspension point). */
WEFT_API int weft_tcp_connect(const char *host, const char *port);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_IO_H */
