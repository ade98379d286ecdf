/* SPDX-License-Identifier: MIT */
/* weft_strerror: one row for every code the library returns itself and
 * for those the kernel commonly passes through its descriptor calls; any
 * other errno gets the C library's description where it has one. */
#include "internal.h"

#include <limits.h>
#include <string.h>

static const struct {
    int code;
    const char *text;
} rows[] = {
    {0, "success"},
    {EPERM, "operation not permitted here (not inside a task, or from a task where a plain thread is needed)"},
    {EINVAL, "invalid argument"},
    {ECANCELED, "cancelled"},
    {ETIMEDOUT, "deadline passed"},
    {ENOMEM, "out of memory"},
    {EAGAIN, "resource temporarily unavailable"},
    {EPIPE, "channel closed, or broken pipe (the peer closed its end)"},
    {EBADF, "bad or closed file descriptor"},
    {EDEADLK, "mutex already held by the calling task"},
    {ECONNREFUSED, "connection refused"},
    {ECONNRESET, "connection reset by peer"},
    {ENOENT, "host or service not found"},
    {EMFILE, "too many open files"},
    {ENFILE, "too many open files in system"},
    {EADDRINUSE, "address already in use"},
    {ENOTCONN, "socket not connected"},
    {EHOSTUNREACH, "host unreachable"},
    {ENETUNREACH, "network unreachable"},
    {EBUSY, "resource busy"},
    {ESRCH, "no such task"},
    {ENOSYS, "not supported on this system"},
    {EIO, "input/output error"},
    /* Descriptor and socket calls (io.c, net.c) pass the kernel's own
     * codes through; these are the ones a network program meets. */
    {EADDRNOTAVAIL, "address not available"},
    {EAFNOSUPPORT, "address family not supported"},
    {EACCES, "permission denied"},
    {ENOTSOCK, "not a socket"},
    {EISCONN, "socket already connected"},
    {ECONNABORTED, "connection aborted"},
    {ENOBUFS, "no buffer space available"},
    {ENETDOWN, "network is down"},
    {EOPNOTSUPP, "operation not supported"},
    {EINPROGRESS, "operation in progress"},
    {EALREADY, "operation already in progress"},
    {EDESTADDRREQ, "destination address required"},
    {EMSGSIZE, "message too long"},
    {EPROTOTYPE, "protocol wrong type for socket"},
    {ENOPROTOOPT, "protocol not available"},
    {EPROTONOSUPPORT, "protocol not supported"},
    {EPROTO, "protocol error"},
    {ENETRESET, "connection reset by network"},
    {ESHUTDOWN, "cannot send after socket shutdown"},
    {EHOSTDOWN, "host is down"},
    /* Files: weft_read and weft_write pass these through as well. */
    {EISDIR, "is a directory"},
    {ENOTDIR, "not a directory"},
    {ENOSPC, "no space left on device"},
    {EDQUOT, "disk quota exceeded"},
    {EFBIG, "file too large"},
    {EROFS, "read-only file system"},
    {ESPIPE, "illegal seek"},
    {EFAULT, "bad address"},
    {EINTR, "interrupted system call"},
    {ENXIO, "no such device or address"},
    {ENODEV, "no such device"},
    {EEXIST, "file exists"},
    {EOVERFLOW, "value too large for defined data type"},
    {ERANGE, "result too large"},
    {ENOTTY, "inappropriate ioctl for device"},
    {ETXTBSY, "text file busy"},
    /* Unix-domain sockets (weft_unix_*). */
    {ENAMETOOLONG, "file name too long"},
};

const char *weft_strerror(int err)
{
    /* In long long: -INT_MIN does not fit in an int. */
    long long code = err < 0 ? -(long long)err : err;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].code == code)
            return rows[i].text;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    /* Any other code the kernel may pass through a descriptor call: the C
     * library's own (static, thread-safe) description. */
    if (code <= INT_MAX) {
        const char *d = strerrordesc_np((int)code);
        if (d)
            return d;
    }
#endif
    return "unknown error";
}

int weft_errno(void)
{
    /* Out of line (a call into the library is never inlined into the
     * caller): errno's address is asked again here, on the thread the
     * calling task runs on now. */
    return errno;
}
