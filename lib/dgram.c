/* SPDX-License-Identifier: MIT */
/* Message calls: weft_recvfrom, weft_sendto, weft_recvmsg, weft_sendmsg.
 * Each tries the system call and parks on the reactor on EAGAIN (io.c's
 * weft__io_retry), like weft_recv and weft_send; they serve datagram
 * sockets (UDP, Unix datagrams) and the ancillary data of any socket
 * (SCM_RIGHTS over weft_unix_* streams). Every call passes MSG_DONTWAIT,
 * so it never blocks even if the number now names a blocking socket (see
 * io.h). Runs on the calling task's worker. */
#define _GNU_SOURCE 1
#include "internal.h"

#include <limits.h>
#include <string.h>
#include <sys/socket.h>

#include "fdcall.h"
#include "reactor/reactor.h"

struct msg_args {
    void *buf; /* const for sends */
    size_t len;
    int flags;
    struct sockaddr *addr; /* const for sends */
    socklen_t *addrlen;    /* recvfrom */
    socklen_t dstlen;      /* sendto */
    struct msghdr *msg;    /* const for sendmsg */
};

static WEFT__NOINLINE ssize_t op_recvfrom(int fd, void *ctx)
{
    struct msg_args *a = ctx;
    ssize_t n;
    while ((n = recvfrom(fd, a->buf, a->len, a->flags, a->addr, a->addrlen)) < 0 && errno == EINTR)
        ;
    return n < 0 ? -errno : n;
}

static WEFT__NOINLINE ssize_t op_sendto(int fd, void *ctx)
{
    struct msg_args *a = ctx;
    ssize_t n;
    while ((n = sendto(fd, a->buf, a->len, a->flags, a->addr, a->dstlen)) < 0 && errno == EINTR)
        ;
    return n < 0 ? -errno : n;
}

static WEFT__NOINLINE ssize_t op_recvmsg(int fd, void *ctx)
{
    struct msg_args *a = ctx;
    ssize_t n;
    while ((n = recvmsg(fd, a->msg, a->flags)) < 0 && errno == EINTR)
        ;
    return n < 0 ? -errno : n;
}

static WEFT__NOINLINE ssize_t op_sendmsg(int fd, void *ctx)
{
    struct msg_args *a = ctx;
    ssize_t n;
    while ((n = sendmsg(fd, a->msg, a->flags)) < 0 && errno == EINTR)
        ;
    return n < 0 ? -errno : n;
}

ssize_t weft_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *src,
                      socklen_t *srclen)
{
    struct fd_state *s;
    int rc = weft__io_begin(fd, (buf || !len) && len <= SSIZE_MAX && (!src || srclen), &s, NULL);
    if (rc)
        return rc;
    struct msg_args a = {
        .buf = buf, .len = len, .flags = flags | MSG_DONTWAIT, .addr = src, .addrlen = srclen};
    return weft__io_retry(s, fd, WEFT__POLL_IN, op_recvfrom, &a, flags & MSG_DONTWAIT, WEFT__WC_RECVFROM);
}

ssize_t weft_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *dst,
                    socklen_t dstlen)
{
    struct fd_state *s;
    int rc = weft__io_begin(fd, (buf || !len) && len <= SSIZE_MAX && (dst || !dstlen), &s, NULL);
    if (rc)
        return rc;
    struct msg_args a = {.buf = (void *)buf,
                         .len = len,
                         .flags = flags | MSG_NOSIGNAL | MSG_DONTWAIT,
                         .addr = (struct sockaddr *)dst,
                         .dstlen = dstlen};
    return weft__io_retry(s, fd, WEFT__POLL_OUT, op_sendto, &a, flags & MSG_DONTWAIT, WEFT__WC_SENDTO);
}

/* Descriptors that came in (SCM_RIGHTS) are new files behind numbers the
 * registry may remember from earlier ones: forget those, as weft_accept
 * does for its connections. */
static void adopt_rights(struct msghdr *msg)
{
    if (!msg->msg_control || msg->msg_controllen < sizeof(struct cmsghdr))
        return;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0))
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int nfd;
            memcpy(&nfd, data + i * sizeof nfd, sizeof nfd);
            /* -ENOMEM: the number keeps its old record, which may still
             * name a stale poller; there is nothing better to do. */
            if (weft__reactor_adopt(nfd, 0) < 0)
                continue;
        }
    }
}

ssize_t weft_recvmsg(int fd, struct msghdr *msg, int flags)
{
    struct fd_state *s;
    int rc = weft__io_begin(fd, msg != NULL, &s, NULL);
    if (rc)
        return rc;
    /* Received descriptors are close-on-exec, as every descriptor weft
     * makes. */
    struct msg_args a = {.msg = msg, .flags = flags | MSG_CMSG_CLOEXEC | MSG_DONTWAIT};
    ssize_t n = weft__io_retry(s, fd, WEFT__POLL_IN, op_recvmsg, &a, flags & MSG_DONTWAIT,
                               WEFT__WC_RECVMSG);
    if (n >= 0)
        adopt_rights(msg); /* a peek installs them too */
    return n;
}

ssize_t weft_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    struct fd_state *s;
    int rc = weft__io_begin(fd, msg != NULL, &s, NULL);
    if (rc)
        return rc;
    struct msg_args a = {.msg = (struct msghdr *)msg,
                         .flags = flags | MSG_NOSIGNAL | MSG_DONTWAIT};
    return weft__io_retry(s, fd, WEFT__POLL_OUT, op_sendmsg, &a, flags & MSG_DONTWAIT, WEFT__WC_SENDMSG);
}
