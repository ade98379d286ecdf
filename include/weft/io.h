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
 * Descriptors made by weft_accept, weft_tcp_listen, weft_tcp_connect,
 * weft_udp_bind, weft_unix_listen and weft_unix_connect, and those received
 * by weft_recvmsg, are always learned afresh.
 *
 * Regular files and block devices: epoll cannot tell when a disk would
 * block, so weft_read, weft_write, weft_pread, weft_pwrite and weft_fsync
 * on them never run the system call on a worker: it runs on the blocking
 * pool (see weft_run_blocking) while the task parks, with the same return
 * conventions. What the descriptor is (fstat) is learnt on its first use
 * and remembered until weft_close. A cancellation or deadline that comes
 * while the call runs takes effect when it returns, and its result is
 * dropped (a read may have moved the file position; a write may have
 * written); one that comes before it started cancels it (nothing
 * happened).
 *
 * Memory per connection. A task per connection costs, while it waits: its
 * task struct (128 bytes), the descriptor's state in the library (128
 * bytes, kept for the number's later files), and the pages of its stack
 * that it has touched, at least one (4 KiB; stacks are reserved at
 * weft_options.stack_size, 256 KiB by default, but only touched pages
 * take memory). The kernel's socket buffers come on top, as for any
 * server. What decides the stack's share is the deepest frame the task
 * ever had: a 4 KiB buffer on the stack puts a connection's frames on a
 * second page (8.7 KiB per connection at 10,000 connections, against
 * 4.5 KiB without), and a 16 KiB one on five. To keep a connection at one
 * stack page, keep buffers off the stack: in a per-connection heap block
 * (which then costs its touched pages too), or better, taken only while
 * there is data. weft_wait_fd(fd, WEFT_READABLE) parks without a buffer,
 * and costs no system call when the last read came back short (the
 * receive queue was empty: the next edge is awaited directly):
 *
 *     for (;;) {
 *         if (weft_wait_fd(fd, WEFT_READABLE) < 0)
 *             break;
 *         char *buf = malloc(4096);   // malloc's per-thread cache: the
 *         ssize_t n = weft_read(fd, buf, 4096);  // same hot block each time
 *         if (n > 0 && weft_write(fd, buf, (size_t)n) < 0)
 *             n = -1;
 *         free(buf);
 *         if (n <= 0)
 *             break;
 *     }
 *
 * bench/weft-bench.c's echo and HTTP servers and demos/echo_server.c do
 * this; docs/design.md has the measurements. */
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
 * find nothing to do. Regular files are always ready. Waiting for
 * WEFT_READABLE alone right after a weft_read that came back short on a
 * stream socket parks without a system call (see "Memory per connection"
 * above); otherwise the descriptor is polled once first. */
WEFT_API int weft_wait_fd(int fd, int events);

/* read(2): returns bytes read (0 at end of file) or a negative errno.
 * Regular files and block devices: on the blocking pool (see above). */
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

/* --- datagrams and messages --------------------------------------------
 * recvfrom(2), sendto(2), recvmsg(2), sendmsg(2): try the call, park while
 * it would block (EAGAIN); with MSG_DONTWAIT in flags they return -EAGAIN
 * instead. Sends add MSG_NOSIGNAL (-EPIPE, never SIGPIPE). Datagram
 * semantics are the kernel's: one call, one datagram; a datagram longer
 * than len is truncated (the rest is lost) and, with MSG_TRUNC in flags,
 * its real length is returned; msg_flags of recvmsg reports MSG_TRUNC and
 * MSG_CTRUNC. weft_recvmsg adds MSG_CMSG_CLOEXEC: descriptors received
 * with SCM_RIGHTS are close-on-exec, and the library forgets what it knew
 * of earlier files with their numbers. Returns bytes received or sent, or
 * a negative errno: -EINVAL (NULL buf with len > 0, len > SSIZE_MAX, src
 * without srclen, dst NULL with dstlen > 0, NULL msg), -EBADF, -ECANCELED,
 * -ETIMEDOUT, -EPERM outside a task, and the system call's errors. Task
 * only (suspension points). */
WEFT_API ssize_t weft_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *src,
                               socklen_t *srclen);
WEFT_API ssize_t weft_sendto(int fd, const void *buf, size_t len, int flags,
                             const struct sockaddr *dst, socklen_t dstlen);
WEFT_API ssize_t weft_recvmsg(int fd, struct msghdr *msg, int flags);
WEFT_API ssize_t weft_sendmsg(int fd, const struct msghdr *msg, int flags);

/* A UDP socket bound to host:port (host NULL or "" = any address: "::"
 * taking IPv4 too where IPv6 exists, else 0.0.0.0; port "0" picks a free
 * port, getsockname tells which), non-blocking and close-on-exec, without
 * SO_REUSEADDR. Returns the descriptor or a negative errno: -EINVAL (NULL
 * port, a numeric port above 65535), -EADDRINUSE, ... and the name
 * lookup's errors, as weft_tcp_listen. Task only (suspension point when a
 * name is looked up). */
WEFT_API int weft_udp_bind(const char *host, const char *port);

/* --- Unix-domain stream sockets -----------------------------------------
 * path is a file path, or "@name" for name in Linux's abstract namespace
 * (no file; the name is the bytes after '@'). */

/* A listening Unix-domain stream socket on path, non-blocking and
 * close-on-exec; backlog <= 0 means SOMAXCONN. When path is a socket file
 * that nobody listens on (left by a process that died), it is replaced;
 * one somebody listens on gives -EADDRINUSE and is left alone (the probe
 * that tells is a connection attempt, which such a listener accepts and
 * sees closed at once); a file of another kind gives -EADDRINUSE. The
 * file stays when the socket is closed: unlink it. Returns the descriptor
 * or a negative errno: -EINVAL (NULL or empty path), -ENAMETOOLONG (over
 * 107 bytes), -EADDRINUSE, -EACCES, ... Task only (not a suspension
 * point). */
WEFT_API int weft_unix_listen(const char *path, int backlog);

/* A Unix-domain stream socket connected to path, non-blocking and
 * close-on-exec. Returns the descriptor or a negative errno: -ENOENT (no
 * such file), -ECONNREFUSED (nobody listens), -EAGAIN (the listener's
 * backlog is full: Linux does not wait for room), -EINVAL,
 * -ENAMETOOLONG as weft_unix_listen, -ECANCELED. Task only (suspension
 * point). */
WEFT_API int weft_unix_connect(const char *path);

/* --- files --------------------------------------------------------------- */

/* pread(2): bytes read at offset off (0 at end of file; fewer than len
 * near it), or a negative errno (-EINVAL for off < 0, -ESPIPE for pipes
 * and sockets). The file position is unchanged. Regular files and block
 * devices: on the blocking pool (see above). Task only (suspension
 * point). */
WEFT_API ssize_t weft_pread(int fd, void *buf, size_t len, off_t off);

/* pwrite(2) of all len bytes at offset off, looping over short writes;
 * returns len or a negative errno (-EINVAL for off < 0 or off + len past
 * the largest offset; bytes already written are lost to the count).
 * Regular files and block devices: on the blocking pool. Task only
 * (suspension point). */
WEFT_API ssize_t weft_pwrite(int fd, const void *buf, size_t len, off_t off);

/* fsync(2): 0 or a negative errno (-EIO, -EINVAL for a descriptor that
 * cannot be synced, ...). Regular files and block devices: on the
 * blocking pool. Task only (suspension point). */
WEFT_API int weft_fsync(int fd);

/* --- building blocks for servers ------------------------------------------ */

/* A proxy's inner loop: copies everything read from `from` to `to` until
 * end of file on from, then shuts down the write side of `to`
 * (shutdown(2) SHUT_WR when to is a socket; a pipe or file is left as it
 * is) so that its peer sees the end too. idle_timeout_ns >= 0 bounds each
 * read and each partial write: -ETIMEDOUT once that long passes without a
 * byte moving (< 0: no idle bound; 0: times out at once, as a deadline
 * scope of 0 does; an enclosing deadline scope still applies). Returns the bytes copied, or a negative errno (the bytes
 * copied so far are lost to the count; nothing is shut down): -EBADF,
 * -EINVAL (from == to), -ENOMEM, -ETIMEDOUT, -ECANCELED, -EPIPE or
 * -ECONNRESET when to's peer has gone, the reads' and writes' errors.
 * Copy both ways with two tasks, one weft_copy each; each half-closes its
 * own direction. Task only (suspension point). */
WEFT_API ssize_t weft_copy(int from, int to, int64_t idle_timeout_ns);

/* A buffered line reader over weft_read, for line protocols. Opaque. */
typedef struct weft_reader weft_reader;

/* A reader of fd's lines, with a buffer of cap bytes (the longest line
 * it can hand out, '\n' included). Does not own fd. Returns NULL with
 * errno EBADF (fd < 0), EINVAL (cap 0 or huge), ENOMEM. Any thread. */
WEFT_API weft_reader *weft_reader_new(int fd, size_t cap);

/* The next line of r's descriptor, '\n' included, as *line, a pointer
 * into r's buffer valid until the next call on r; returns its length.
 * A last line without '\n' at end of file is returned as it is (up to
 * cap bytes: to tell such a line of exactly cap bytes from a longer one,
 * the reader waits for one byte more or the end of file); then 0 (end of
 * file, *line unchanged). -ENOBUFS for a line longer than cap: it is
 * dropped, and the next call returns the line after it. Read errors as
 * weft_read (-ECANCELED, -ETIMEDOUT, -ECONNRESET, ...): the data buffered
 * stays, a later call goes on from there. -EINVAL for NULL r or line,
 * -EPERM outside a task. One task at a time per reader. Task only
 * (suspension point). */
WEFT_API ssize_t weft_reader_line(weft_reader *r, const char **line);

/* Frees r (NULL: nothing); fd stays open. Any thread. */
WEFT_API void weft_reader_free(weft_reader *r);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_IO_H */
