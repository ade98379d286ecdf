/* SPDX-License-Identifier: MIT */
/* Socket helpers: weft_tcp_listen, weft_tcp_connect, weft_udp_bind,
 * weft_unix_listen and weft_unix_connect. Numeric addresses and ports are
 * parsed here; anything that needs a name lookup runs getaddrinfo(3) on
 * the blocking pool, so a worker never waits for DNS. Runs on the calling
 * task's worker (and, for lookups, a pool thread). */
#define _GNU_SOURCE 1
#include "internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "reactor/reactor.h"
#include "sched/sched.h"

/* A name lookup handed to the blocking pool; lives on the task's stack
 * (weft_run_blocking returns only after the lookup has returned). */
struct lookup {
    const char *host, *port;
    struct addrinfo hints;
    struct addrinfo *res; /* getaddrinfo's list, or NULL */
    int gai;              /* getaddrinfo's return value */
    int sys_errno;        /* errno when gai == EAI_SYSTEM */
};

static int lookup_blocking(void *arg)
{
    struct lookup *l = arg;
    l->gai = getaddrinfo(l->host, l->port, &l->hints, &l->res);
    if (l->gai == EAI_SYSTEM)
        l->sys_errno = errno;
    return 0;
}

/* getaddrinfo's EAI_* codes as negative errnos (documented in io.h). */
static int gai_to_errno(int gai, int sys_errno)
{
    switch (gai) {
    case 0:
        return 0;
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
    case EAI_SERVICE:
        return -ENOENT;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_FAMILY:
    case EAI_SOCKTYPE:
    case EAI_BADFLAGS:
        return -EINVAL;
    case EAI_SYSTEM:
        return sys_errno > 0 ? -sys_errno : -EIO;
    default: /* EAI_FAIL and anything newer */
        return -EIO;
    }
}

/* A decimal port 0..65535, or -1. */
static int parse_port(const char *port)
{
    if (!*port)
        return -1;
    long v = 0;
    for (const char *p = port; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (v <= 65535)
            v = v * 10 + (*p - '0');
    }
    /* All digits but too large: getaddrinfo would take it modulo 65536. */
    return v <= 65535 ? (int)v : -2;
}

/* Candidate addresses: either parsed here (numeric host and port, or the
 * any-address for a listener) or the list of a lookup. */
struct addrs {
    struct addrinfo fixed[2];
    union {
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } sa[2];
    struct addrinfo *list;   /* first candidate */
    struct addrinfo *looked; /* to freeaddrinfo, or NULL */
};

static void fixed_add(struct addrs *a, int i, int family, int socktype)
{
    struct addrinfo *ai = &a->fixed[i];
    memset(ai, 0, sizeof *ai);
    ai->ai_family = family;
    ai->ai_socktype = socktype;
    ai->ai_protocol = socktype == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP;
    ai->ai_addr = (struct sockaddr *)&a->sa[i];
    ai->ai_addrlen = family == AF_INET ? sizeof a->sa[i].in : sizeof a->sa[i].in6;
    if (i > 0)
        a->fixed[i - 1].ai_next = ai;
    else
        a->list = ai;
}

/* Fills a with the candidates for host:port (socktype SOCK_STREAM or
 * SOCK_DGRAM). Returns 0 or a negative errno (-ENOENT: no such host or
 * service; see io.h). Task only. */
static int resolve(const char *host, const char *port, int socktype, bool passive,
                   struct addrs *a)
{
    memset(a, 0, sizeof *a);
    int p = parse_port(port);
    if (p == -2)
        return -EINVAL;
    if (p >= 0) {
        uint16_t nport = htons((uint16_t)p);
        if (!host || !*host) {
            /* Any address: dual-stack IPv6 first (see open_listener), IPv4
             * if the system has no IPv6. */
            fixed_add(a, 0, AF_INET6, socktype);
            a->sa[0].in6.sin6_family = AF_INET6;
            a->sa[0].in6.sin6_addr = in6addr_any;
            a->sa[0].in6.sin6_port = nport;
            fixed_add(a, 1, AF_INET, socktype);
            a->sa[1].in.sin_family = AF_INET;
            a->sa[1].in.sin_addr.s_addr = htonl(INADDR_ANY);
            a->sa[1].in.sin_port = nport;
            return 0;
        }
        if (inet_pton(AF_INET, host, &a->sa[0].in.sin_addr) == 1) {
            fixed_add(a, 0, AF_INET, socktype);
            a->sa[0].in.sin_family = AF_INET;
            a->sa[0].in.sin_port = nport;
            return 0;
        }
        if (inet_pton(AF_INET6, host, &a->sa[0].in6.sin6_addr) == 1) {
            fixed_add(a, 0, AF_INET6, socktype);
            a->sa[0].in6.sin6_family = AF_INET6;
            a->sa[0].in6.sin6_port = nport;
            return 0;
        }
    }
    /* A name (or a service name, or a scoped IPv6 address): ask the
     * resolver, off the workers. */
    struct lookup l = {.host = host && *host ? host : NULL, .port = port};
    l.hints.ai_family = AF_UNSPEC;
    l.hints.ai_socktype = socktype;
    l.hints.ai_flags = passive ? AI_PASSIVE : 0;
    int rc = weft_run_blocking(lookup_blocking, &l);
    if (rc == 0)
        rc = gai_to_errno(l.gai, l.sys_errno);
    if (rc < 0) {
        if (l.res)
            freeaddrinfo(l.res);
        return rc;
    }
    a->list = a->looked = l.res;
    return 0;
}

static void addrs_free(struct addrs *a)
{
    if (a->looked)
        freeaddrinfo(a->looked);
}

static WEFT__NOINLINE int sys_socket(int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd >= 0 ? fd : -errno;
}

/* A listening socket on ai, or a negative errno. */
static WEFT__NOINLINE int open_listener(const struct addrinfo *ai, int backlog, unsigned flags)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, zero = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        goto fail;
    if ((flags & WEFT_LISTEN_REUSEPORT) &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        goto fail;
    if (ai->ai_family == AF_INET6) {
        /* "::" serves IPv4 too (Go does the same); a specific IPv6 address
         * is unaffected. Best effort: some systems force V6ONLY. */
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0)
        goto fail;
    return fd;
fail:;
    int rc = -errno;
    close(fd);
    return rc;
}

int weft_tcp_listen_flags(const char *host, const char *port, int backlog, unsigned flags)
{
    if (!weft__task_self())
        return -EPERM;
    if (!port || (flags & ~(unsigned)WEFT_LISTEN_REUSEPORT))
        return -EINVAL;
    if (backlog <= 0)
        backlog = SOMAXCONN;
    struct addrs a;
    int rc = resolve(host, port, SOCK_STREAM, true, &a);
    if (rc < 0)
        return rc;
    rc = -ENOENT;
    for (const struct addrinfo *ai = a.list; ai; ai = ai->ai_next) {
        int fd = open_listener(ai, backlog, flags);
        if (fd < 0) {
            rc = fd;
            continue;
        }
        rc = weft__reactor_adopt(fd, FD_MODE_KNOWN | FD_MODE_SOCKET | FD_MODE_STREAM);
        if (rc < 0) {
            (void)weft__reactor_close(fd);
            break;
        }
        rc = fd;
        break;
    }
    addrs_free(&a);
    return rc;
}

int weft_tcp_listen(const char *host, const char *port, int backlog)
{
    return weft_tcp_listen_flags(host, port, backlog, 0);
}

int weft_tcp_connect(const char *host, const char *port)
{
    if (!weft__task_self())
        return -EPERM;
    if (!host || !*host || !port)
        return -EINVAL;
    struct addrs a;
    int rc = resolve(host, port, SOCK_STREAM, false, &a);
    if (rc < 0)
        return rc;
    rc = -ENOENT;
    for (const struct addrinfo *ai = a.list; ai; ai = ai->ai_next) {
        int fd = sys_socket(ai->ai_family);
        if (fd < 0) {
            rc = fd;
            continue;
        }
        rc = weft__reactor_adopt(fd, FD_MODE_KNOWN | FD_MODE_SOCKET | FD_MODE_STREAM);
        if (rc == 0)
            rc = weft_connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc == 0) {
            rc = fd;
            break;
        }
        (void)weft__reactor_close(fd);
        /* Cancellation and deadlines end the attempt; a refused or
         * unreachable address moves on to the next one. */
        if (rc == -ECANCELED || rc == -ETIMEDOUT || rc == -ENOMEM)
            break;
    }
    addrs_free(&a);
    return rc;
}

/* ------------------------------------------------------------ UDP */

/* A bound UDP socket on ai, or a negative errno. */
static WEFT__NOINLINE int open_udp(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (ai->ai_family == AF_INET6) {
        /* As for listeners: "::" takes IPv4 datagrams too. Best effort. */
        int zero = 0;
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    /* No SO_REUSEADDR: on UDP it would let a second socket share the port
     * and take half of its datagrams. */
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int weft_udp_bind(const char *host, const char *port)
{
    if (!weft__task_self())
        return -EPERM;
    if (!port)
        return -EINVAL;
    struct addrs a;
    int rc = resolve(host, port, SOCK_DGRAM, true, &a);
    if (rc < 0)
        return rc;
    rc = -ENOENT;
    for (const struct addrinfo *ai = a.list; ai; ai = ai->ai_next) {
        int fd = open_udp(ai);
        if (fd < 0) {
            rc = fd;
            continue;
        }
        rc = weft__reactor_adopt(fd, FD_MODE_KNOWN | FD_MODE_SOCKET);
        if (rc < 0) {
            (void)weft__reactor_close(fd);
            break;
        }
        rc = fd;
        break;
    }
    addrs_free(&a);
    return rc;
}

/* ------------------------------------------------------------ Unix sockets */

/* path as a Unix-domain address: "@name" is name in the abstract
 * namespace (no file), anything else a file path. Returns 0, -EINVAL
 * (NULL or empty), -ENAMETOOLONG. */
static int unix_addr(const char *path, struct sockaddr_un *sa, socklen_t *len)
{
    if (!path || !*path)
        return -EINVAL;
    size_t n = strlen(path);
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (path[0] == '@') {
        /* A leading NUL byte, then the name's bytes (no terminator: the
         * address length says where it ends). */
        if (n > sizeof sa->sun_path)
            return -ENAMETOOLONG;
        memcpy(sa->sun_path + 1, path + 1, n - 1);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
    }
    if (n >= sizeof sa->sun_path)
        return -ENAMETOOLONG;
    memcpy(sa->sun_path, path, n + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

static WEFT__NOINLINE int sys_unix_socket(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd >= 0 ? fd : -errno;
}

/* Whether path names a socket file that nobody listens on (a dead
 * server's): a connection attempt is refused. A live listener (even one
 * with a full backlog: -EAGAIN) sees at most a connection that closes at
 * once. */
static WEFT__NOINLINE bool unix_stale(const char *path, const struct sockaddr_un *sa,
                                      socklen_t len)
{
    struct stat st;
    if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
        return false; /* gone (bind will tell), or not ours to remove */
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return false;
    bool refused = connect(probe, (const struct sockaddr *)sa, len) < 0 && errno == ECONNREFUSED;
    close(probe);
    return refused;
}

static WEFT__NOINLINE int unix_bind_listen(int fd, const char *path, const struct sockaddr_un *sa,
                                           socklen_t len, int backlog)
{
    if (bind(fd, (const struct sockaddr *)sa, len) < 0) {
        if (errno != EADDRINUSE || path[0] == '@' || !unix_stale(path, sa, len))
            return -errno;
        /* Replace the stale file, once: if another process binds the name
         * meanwhile, this bind fails with -EADDRINUSE. */
        if (unlink(path) < 0 && errno != ENOENT)
            return -errno;
        if (bind(fd, (const struct sockaddr *)sa, len) < 0)
            return -errno;
    }
    return listen(fd, backlog) < 0 ? -errno : 0;
}

int weft_unix_listen(const char *path, int backlog)
{
    if (!weft__task_self())
        return -EPERM;
    struct sockaddr_un sa;
    socklen_t len;
    int rc = unix_addr(path, &sa, &len);
    if (rc < 0)
        return rc;
    if (backlog <= 0)
        backlog = SOMAXCONN;
    int fd = sys_unix_socket();
    if (fd < 0)
        return fd;
    rc = unix_bind_listen(fd, path, &sa, len, backlog);
    if (rc == 0)
        rc = weft__reactor_adopt(fd, FD_MODE_KNOWN | FD_MODE_SOCKET | FD_MODE_STREAM);
    if (rc < 0) {
        (void)weft__reactor_close(fd);
        return rc;
    }
    return fd;
}

int weft_unix_connect(const char *path)
{
    if (!weft__task_self())
        return -EPERM;
    struct sockaddr_un sa;
    socklen_t len;
    int rc = unix_addr(path, &sa, &len);
    if (rc < 0)
        return rc;
    int fd = sys_unix_socket();
    if (fd < 0)
        return fd;
    rc = weft__reactor_adopt(fd, FD_MODE_KNOWN | FD_MODE_SOCKET | FD_MODE_STREAM);
    if (rc == 0)
        rc = weft_connect(fd, (const struct sockaddr *)&sa, len);
    if (rc < 0) {
        (void)weft__reactor_close(fd);
        return rc;
    }
    return fd;
}
