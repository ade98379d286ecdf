/* SPDX-License-Identifier: MIT */
/* The server building blocks of include/weft/io.h and blocking.h:
 * datagrams (truncation, IPv4 and IPv6, parking receivers), Unix-domain
 * sockets (path and abstract, stale files, SCM_RIGHTS), files on the
 * blocking pool (pread/pwrite/fsync, read/write, a 256 MiB read that
 * leaves a ticking task on the same worker ticking), weft_copy (half-close
 * both ways, idle timeouts), weft_reader (split lines, long lines) and
 * weft_run_blocking_ex (on_cancel once, on cancel and on deadline; the
 * runtime inside fn). */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <weft.h>

#include "harness.h"

static unsigned short port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return 0;
    return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static struct sockaddr_in loopback4(unsigned short port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

/* A fresh name under TMPDIR for a socket or file; removed by the caller. */
static void temp_path(char *buf, size_t len, const char *what)
{
    static atomic_uint seq;
    const char *dir = getenv("TMPDIR");
    snprintf(buf, len, "%s/weft-%s-%d-%u", dir && *dir ? dir : "/tmp", what, (int)getpid(),
             atomic_fetch_add(&seq, 1));
}

/* --- datagrams ---------------------------------------------------------- */

struct udp_st {
    int a, b;             /* two bound sockets */
    atomic_int receiving; /* the receiver task is about to park */
    char got[64];
    ssize_t got_n;
    struct sockaddr_storage from;
    socklen_t fromlen;
};

static int udp_receiver(void *arg)
{
    struct udp_st *u = arg;
    u->fromlen = sizeof u->from;
    atomic_store(&u->receiving, 1);
    u->got_n = weft_recvfrom(u->b, u->got, sizeof u->got, 0, (struct sockaddr *)&u->from,
                             &u->fromlen);
    return 0;
}

static int udp_body(void *arg)
{
    (void)arg;
    struct udp_st u;
    memset(&u, 0, sizeof u);
    u.a = weft_udp_bind("127.0.0.1", "0");
    u.b = weft_udp_bind("127.0.0.1", "0");
    HREQUIRE(u.a >= 0 && u.b >= 0, -1);
    HCHECK(port_of(u.a) != 0 && port_of(u.a) != port_of(u.b));
    HCHECK(fcntl(u.a, F_GETFL) & O_NONBLOCK);
    HCHECK(fcntl(u.a, F_GETFD) & FD_CLOEXEC);
    struct sockaddr_in to_b = loopback4(port_of(u.b)), to_a = loopback4(port_of(u.a));

    /* A receiver parks until the datagram comes, and learns its source. */
    weft_task *rx = weft_spawn(udp_receiver, &u);
    HREQUIRE(rx != NULL, -1);
    HYIELD_UNTIL(atomic_load(&u.receiving));
    for (int i = 0; i < 10; i++)
        weft_yield(); /* let it reach its wait (it would find nothing) */
    HCHECK_INT_EQ(weft_sendto(u.a, "ping", 4, 0, (struct sockaddr *)&to_b, sizeof to_b), 4);
    HCHECK_INT_EQ(weft_join(rx), 0);
    HCHECK_INT_EQ(u.got_n, 4);
    HCHECK(memcmp(u.got, "ping", 4) == 0);
    HCHECK_INT_EQ(u.fromlen, sizeof(struct sockaddr_in));
    HCHECK_INT_EQ(ntohs(((struct sockaddr_in *)&u.from)->sin_port), port_of(u.a));

    /* Partial reads of a datagram lose its rest; MSG_TRUNC tells its real
     * length; the next datagram is whole. */
    char big[100], buf[16];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    HCHECK_INT_EQ(weft_sendto(u.b, big, sizeof big, 0, (struct sockaddr *)&to_a, sizeof to_a),
                  100);
    HCHECK_INT_EQ(weft_sendto(u.b, big, 30, 0, (struct sockaddr *)&to_a, sizeof to_a), 30);
    HCHECK_INT_EQ(weft_sendto(u.b, "xyz", 3, 0, (struct sockaddr *)&to_a, sizeof to_a), 3);
    HCHECK_INT_EQ(weft_recvfrom(u.a, buf, 10, MSG_TRUNC, NULL, NULL), 100);
    HCHECK(memcmp(buf, big, 10) == 0);
    /* recvmsg reports the truncation in msg_flags. */
    struct iovec iov = {.iov_base = buf, .iov_len = 8};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    HCHECK_INT_EQ(weft_recvmsg(u.a, &m, 0), 8);
    HCHECK(m.msg_flags & MSG_TRUNC);
    HCHECK(memcmp(buf, big, 8) == 0);
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    HCHECK_INT_EQ(weft_recvmsg(u.a, &m, 0), 3);
    HCHECK(!(m.msg_flags & MSG_TRUNC));
    HCHECK(memcmp(buf, "xyz", 3) == 0);

    /* sendmsg with two pieces makes one datagram. */
    struct iovec two[2] = {{.iov_base = "ab", .iov_len = 2}, {.iov_base = "cde", .iov_len = 3}};
    memset(&m, 0, sizeof m);
    m.msg_name = &to_a;
    m.msg_namelen = sizeof to_a;
    m.msg_iov = two;
    m.msg_iovlen = 2;
    HCHECK_INT_EQ(weft_sendmsg(u.b, &m, 0), 5);
    HCHECK_INT_EQ(weft_recvfrom(u.a, buf, sizeof buf, 0, NULL, NULL), 5);
    HCHECK(memcmp(buf, "abcde", 5) == 0);

    /* Nothing to read: MSG_DONTWAIT says so, a deadline ends the wait. */
    HCHECK_INT_EQ(weft_recvfrom(u.a, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL), -EAGAIN);
    weft_deadline d;
    weft_deadline_enter(&d, WEFT_MSEC(20));
    HCHECK_INT_EQ(weft_recvfrom(u.a, buf, sizeof buf, 0, NULL, NULL), -ETIMEDOUT);
    weft_deadline_leave(&d);

    /* The same port twice: no SO_REUSEADDR sharing. */
    char port[8];
    snprintf(port, sizeof port, "%u", port_of(u.a));
    HCHECK_INT_EQ(weft_udp_bind("127.0.0.1", port), -EADDRINUSE);
    HCHECK_INT_EQ(weft_close(u.a), 0);
    HCHECK_INT_EQ(weft_close(u.b), 0);
    return 0;
}

START_TEST(udp_datagrams_truncation_and_waits)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), udp_body, NULL), 0);
}
END_TEST

static int udp6_body(void *arg)
{
    int *skipped = arg;
    int a = weft_udp_bind("::1", "0");
    if (a == -EADDRNOTAVAIL || a == -EAFNOSUPPORT) {
        *skipped = 1; /* no IPv6 loopback here */
        return 0;
    }
    HREQUIRE(a >= 0, -1);
    int any = weft_udp_bind(NULL, "0"); /* "::", IPv4 too */
    HREQUIRE(any >= 0, -1);
    struct sockaddr_in6 sa;
    socklen_t sl = sizeof sa;
    HCHECK(getsockname(a, (struct sockaddr *)&sa, &sl) == 0 && sa.sin6_family == AF_INET6);
    sa.sin6_port = htons(port_of(any));
    HCHECK_INT_EQ(weft_sendto(a, "six", 3, 0, (struct sockaddr *)&sa, sizeof sa), 3);
    char buf[8];
    struct sockaddr_in6 from;
    socklen_t fl = sizeof from;
    HCHECK_INT_EQ(weft_recvfrom(any, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), 3);
    HCHECK(memcmp(buf, "six", 3) == 0);
    HCHECK_INT_EQ(from.sin6_family, AF_INET6);
    HCHECK_INT_EQ(ntohs(from.sin6_port), port_of(a));
    /* And an IPv4 datagram to the dual-stack socket. */
    int v4 = weft_udp_bind("127.0.0.1", "0");
    HREQUIRE(v4 >= 0, -1);
    struct sockaddr_in to = loopback4(port_of(any));
    HCHECK_INT_EQ(weft_sendto(v4, "four", 4, 0, (struct sockaddr *)&to, sizeof to), 4);
    HCHECK_INT_EQ(weft_recvfrom(any, buf, sizeof buf, 0, NULL, NULL), 4);
    weft_close(v4);
    weft_close(any);
    weft_close(a);
    return 0;
}

START_TEST(udp_over_ipv6_and_dual_stack)
{
    int skipped = 0;
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), udp6_body, &skipped), 0);
    if (skipped)
        fprintf(stderr, "udp_over_ipv6: no ::1 here, IPv6 part skipped\n");
}
END_TEST

/* --- Unix-domain sockets ------------------------------------------------ */

struct unix_st {
    const char *path;
    int lfd;
    int served;
};

/* Accepts one connection and echoes one message. */
static int unix_echo_once(void *arg)
{
    struct unix_st *u = arg;
    int fd = weft_accept(u->lfd, NULL, NULL);
    if (fd < 0)
        return fd;
    char buf[64];
    ssize_t n = weft_read(fd, buf, sizeof buf);
    if (n > 0)
        n = weft_write(fd, buf, (size_t)n);
    weft_close(fd);
    u->served++;
    return n < 0 ? (int)n : 0;
}

/* Connects to path, says hello, expects it back. */
static int unix_hello(const char *path)
{
    int fd = weft_unix_connect(path);
    if (fd < 0)
        return fd;
    int rc = 0;
    char buf[8];
    if (weft_write(fd, "hello", 5) != 5 || weft_read(fd, buf, sizeof buf) != 5 ||
        memcmp(buf, "hello", 5) != 0)
        rc = -EIO;
    weft_close(fd);
    return rc;
}

static int serve_and_greet(struct unix_st *u)
{
    weft_task *t = weft_spawn(unix_echo_once, u);
    if (!t)
        return -ENOMEM;
    int rc = unix_hello(u->path);
    int trc = weft_join(t);
    return rc ? rc : trc;
}

static int unix_path_body(void *arg)
{
    (void)arg;
    char path[256];
    temp_path(path, sizeof path, "sock");
    struct unix_st u = {.path = path};
    HCHECK_INT_EQ(weft_unix_connect(path), -ENOENT);
    u.lfd = weft_unix_listen(path, 0);
    HREQUIRE(u.lfd >= 0, -1);
    struct stat st;
    HCHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    HCHECK_INT_EQ(serve_and_greet(&u), 0);

    /* Somebody listens: a second listener is refused and leaves the file
     * (the first still serves). The refused attempt's probe connection
     * waits in the backlog: serve it first. */
    HCHECK_INT_EQ(weft_unix_listen(path, 0), -EADDRINUSE);
    int probe = weft_accept(u.lfd, NULL, NULL);
    HCHECK(probe >= 0);
    char c;
    HCHECK_INT_EQ(weft_read(probe, &c, 1), 0); /* closed at once */
    weft_close(probe);
    HCHECK_INT_EQ(serve_and_greet(&u), 0);

    /* The listener dies without unlinking: the stale file is replaced. */
    HCHECK_INT_EQ(weft_close(u.lfd), 0);
    HCHECK(lstat(path, &st) == 0);
    HCHECK_INT_EQ(weft_unix_connect(path), -ECONNREFUSED);
    u.lfd = weft_unix_listen(path, 4);
    HREQUIRE(u.lfd >= 0, -1);
    HCHECK_INT_EQ(serve_and_greet(&u), 0);
    HCHECK_INT_EQ(weft_close(u.lfd), 0);
    unlink(path);

    /* A file that is not a socket is never removed. */
    int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    HREQUIRE(f >= 0, -1);
    close(f);
    HCHECK_INT_EQ(weft_unix_listen(path, 0), -EADDRINUSE);
    HCHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
    unlink(path);

    /* Names: too long, empty. */
    char longp[200];
    memset(longp, 'x', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    HCHECK_INT_EQ(weft_unix_listen(longp, 0), -ENAMETOOLONG);
    HCHECK_INT_EQ(weft_unix_connect(longp), -ENAMETOOLONG);
    HCHECK_INT_EQ(weft_unix_listen("", 0), -EINVAL);
    HCHECK_INT_EQ(u.served, 3);
    return 0;
}

START_TEST(unix_path_sockets_and_stale_files)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), unix_path_body, NULL), 0);
}
END_TEST

static int unix_abstract_body(void *arg)
{
    (void)arg;
    char name[128];
    snprintf(name, sizeof name, "@weft-test-%d-%u", (int)getpid(), (unsigned)weft_now());
    struct unix_st u = {.path = name};
    u.lfd = weft_unix_listen(name, 0);
    HREQUIRE(u.lfd >= 0, -1);
    struct sockaddr_un sa;
    socklen_t sl = sizeof sa;
    HCHECK(getsockname(u.lfd, (struct sockaddr *)&sa, &sl) == 0);
    HCHECK(sa.sun_path[0] == '\0' && memcmp(sa.sun_path + 1, name + 1, strlen(name) - 1) == 0);
    HCHECK(access(name + 1, F_OK) < 0); /* no file anywhere */
    HCHECK_INT_EQ(serve_and_greet(&u), 0);
    HCHECK_INT_EQ(weft_unix_listen(name, 0), -EADDRINUSE); /* never "stale" */
    HCHECK_INT_EQ(weft_close(u.lfd), 0);
    /* Gone with the socket: nothing to connect to, free to take again. */
    HCHECK_INT_EQ(weft_unix_connect(name), -ECONNREFUSED);
    u.lfd = weft_unix_listen(name, 0);
    HREQUIRE(u.lfd >= 0, -1);
    HCHECK_INT_EQ(serve_and_greet(&u), 0);
    weft_close(u.lfd);
    return 0;
}

START_TEST(unix_abstract_namespace)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), unix_abstract_body, NULL), 0);
}
END_TEST

/* SCM_RIGHTS: the read end of a pipe goes over a Unix connection; the
 * receiver reads what is written into the pipe afterwards. */
struct rights_st {
    int lfd;
    int pipe_w;
};

static int rights_receiver(void *arg)
{
    struct rights_st *r = arg;
    int conn = weft_accept(r->lfd, NULL, NULL);
    HREQUIRE(conn >= 0, conn);
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.buf;
    m.msg_controllen = sizeof ctl.buf;
    HCHECK_INT_EQ(weft_recvmsg(conn, &m, 0), 1);
    HCHECK_INT_EQ(byte, 'F');
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    HREQUIRE(c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS, -1);
    int got;
    memcpy(&got, CMSG_DATA(c), sizeof got);
    HCHECK(fcntl(got, F_GETFD) & FD_CLOEXEC);
    /* Tell the sender, then read what comes through the passed pipe. */
    HCHECK_INT_EQ(weft_write(conn, "k", 1), 1);
    char buf[16];
    HCHECK_INT_EQ(weft_read(got, buf, sizeof buf), 7);
    HCHECK(memcmp(buf, "via fd!", 7) == 0);
    weft_close(got);
    weft_close(conn);
    return 0;
}

static int rights_body(void *arg)
{
    (void)arg;
    char name[128];
    snprintf(name, sizeof name, "@weft-rights-%d-%u", (int)getpid(), (unsigned)weft_now());
    struct rights_st r;
    r.lfd = weft_unix_listen(name, 0);
    HREQUIRE(r.lfd >= 0, -1);
    int p[2];
    HREQUIRE(pipe2(p, O_CLOEXEC) == 0, -1);
    weft_task *rx = weft_spawn(rights_receiver, &r);
    HREQUIRE(rx != NULL, -1);
    int conn = weft_unix_connect(name);
    HREQUIRE(conn >= 0, -1);
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {.iov_base = "F", .iov_len = 1};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.buf;
    m.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p[0], sizeof(int));
    HCHECK_INT_EQ(weft_sendmsg(conn, &m, 0), 1);
    close(p[0]); /* the receiver holds its own copy now */
    char ack;
    HCHECK_INT_EQ(weft_read(conn, &ack, 1), 1);
    HCHECK_INT_EQ(weft_write(p[1], "via fd!", 7), 7);
    HCHECK_INT_EQ(weft_join(rx), 0);
    close(p[1]);
    weft_close(conn);
    weft_close(r.lfd);
    return 0;
}

START_TEST(descriptor_passing_with_scm_rights)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), rights_body, NULL), 0);
}
END_TEST

/* --- files -------------------------------------------------------------- */

static int file_body(void *arg)
{
    (void)arg;
    char path[256];
    temp_path(path, sizeof path, "file");
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
    HREQUIRE(fd >= 0, -1);
    unlink(path);

    enum { N = 1 << 20 };
    unsigned char *w = malloc(N), *r = malloc(N);
    HREQUIRE(w && r, -1);
    for (size_t i = 0; i < N; i++)
        w[i] = (unsigned char)(i * 7 + (i >> 12));
    HCHECK_INT_EQ(weft_pwrite(fd, w, N, 4096), N);
    HCHECK_INT_EQ(lseek(fd, 0, SEEK_CUR), 0); /* positioned: no move */
    HCHECK_INT_EQ(weft_fsync(fd), 0);
    HCHECK_INT_EQ(weft_pread(fd, r, N, 4096), N);
    HCHECK(memcmp(r, w, N) == 0);
    /* Near the end: short; past it: 0. */
    HCHECK_INT_EQ(weft_pread(fd, r, 100, 4096 + N - 10), 10);
    HCHECK(memcmp(r, w + N - 10, 10) == 0);
    HCHECK_INT_EQ(weft_pread(fd, r, 100, 4096 + N), 0);
    /* The hole before offset 4096 reads as zeros. */
    HCHECK_INT_EQ(weft_pread(fd, r, 4096, 0), 4096);
    HCHECK(r[0] == 0 && r[4095] == 0);

    /* weft_read / weft_write move the position, as read(2) and write(2). */
    HCHECK_INT_EQ(weft_write(fd, "head", 4), 4);
    HCHECK_INT_EQ(lseek(fd, 0, SEEK_CUR), 4);
    HCHECK_INT_EQ(weft_write(fd, "", 0), 0);
    HCHECK_INT_EQ(lseek(fd, 0, SEEK_SET), 0);
    char b4[4];
    HCHECK_INT_EQ(weft_read(fd, b4, 4), 4);
    HCHECK(memcmp(b4, "head", 4) == 0);
    HCHECK_INT_EQ(lseek(fd, 4096 + N, SEEK_SET), 4096 + N);
    HCHECK_INT_EQ(weft_read(fd, b4, 4), 0); /* end of file */

    /* The calls ran on the pool: it has a thread now. */
    weft_stats st;
    weft_runtime_stats(weft_runtime_current(), &st);
    HCHECK(st.blocking_threads >= 1);

    /* Pipes have no offsets; bad offsets are refused. */
    int p[2];
    HREQUIRE(pipe2(p, O_CLOEXEC) == 0, -1);
    HCHECK_INT_EQ(weft_pread(p[0], r, 1, 0), -ESPIPE);
    HCHECK_INT_EQ(weft_pwrite(p[1], "x", 1, 0), -ESPIPE);
    HCHECK_INT_EQ(weft_fsync(p[1]), -EINVAL);
    HCHECK_INT_EQ(weft_pread(fd, r, 1, -1), -EINVAL);
    HCHECK_INT_EQ(weft_pwrite(fd, r, 1, -1), -EINVAL);
    weft_close(p[0]);
    weft_close(p[1]);

    /* A cancelled task does not start the call. */
    weft_cancel(weft_current());
    HCHECK_INT_EQ(weft_pread(fd, r, 1, 0), -ECANCELED);
    free(w);
    free(r);
    return weft_close(fd);
}

START_TEST(files_pread_pwrite_fsync_read_write)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), file_body, NULL), 0);
}
END_TEST

/* A 256 MiB file read with weft_pread on a runtime of one worker, while
 * another task on that worker sleeps 1 ms at a time: the gaps between its
 * ticks stay small, because the read runs on the pool. Were pread run on
 * the worker, the one 256 MiB call would stop the ticker for as long as
 * it takes (about 100 ms from the page cache here; more from a disk). */
#define BIG_FILE ((size_t)256 << 20)
#define BIG_CHUNK BIG_FILE /* one call: on a worker it would stop it throughout */

struct tick_st {
    int fd;
    atomic_bool done;
    int64_t max_gap_ns, read_ns;
    unsigned ticks;
    size_t bytes;
    unsigned long bad;
    void *buf;
};

static int ticker(void *arg)
{
    struct tick_st *t = arg;
    int64_t last = weft_now();
    while (!atomic_load(&t->done)) {
        if (weft_sleep(WEFT_MSEC(1)) < 0)
            break;
        int64_t now = weft_now();
        if (now - last > t->max_gap_ns)
            t->max_gap_ns = now - last;
        last = now;
        t->ticks++;
    }
    return 0;
}

static int big_reader(void *arg)
{
    struct tick_st *t = arg;
    unsigned char *buf = t->buf; /* touched already: no page faults here */
    /* Let the ticker get going first. */
    weft_sleep(WEFT_MSEC(5));
    int64_t start = weft_now();
    for (size_t off = 0; off < BIG_FILE;) {
        ssize_t n = weft_pread(t->fd, buf, BIG_CHUNK, (off_t)off);
        HREQUIRE(n > 0, -1);
        for (size_t i = 0; i < (size_t)n; i += 4096) /* each page: its number */
            if (buf[i] != (unsigned char)((off + i) >> 12))
                t->bad++;
        off += (size_t)n;
        t->bytes += (size_t)n;
    }
    t->read_ns = weft_now() - start;
    atomic_store(&t->done, true);
    return 0;
}

static int big_body(void *arg)
{
    struct tick_st *t = arg;
    weft_task *tk = weft_spawn(ticker, t);
    weft_task *rd = weft_spawn(big_reader, t);
    HREQUIRE(tk && rd, -1);
    HCHECK_INT_EQ(weft_join(rd), 0);
    atomic_store(&t->done, true);
    HCHECK_INT_EQ(weft_join(tk), 0);
    return 0;
}

START_TEST(big_file_read_leaves_the_worker_free)
{
    char path[256];
    temp_path(path, sizeof path, "big");
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    /* Real data (not a hole): each page starts with its page number. */
    enum { W = 1 << 20 };
    unsigned char *w = calloc(1, W);
    ck_assert_ptr_nonnull(w);
    for (size_t off = 0; off < BIG_FILE; off += W) {
        for (size_t i = 0; i < W; i += 4096)
            w[i] = (unsigned char)((off + i) >> 12);
        ck_assert_int_eq(pwrite(fd, w, W, (off_t)off), W);
    }
    free(w);
    struct tick_st t;
    memset(&t, 0, sizeof t);
    t.fd = fd;
    /* The buffer is made and freed outside: its page faults and munmap
     * are not what is measured. */
    t.buf = malloc(BIG_CHUNK);
    ck_assert_ptr_nonnull(t.buf);
    memset(t.buf, 1, BIG_CHUNK);
    ck_assert_int_eq(harness_run(1, big_body, &t), 0);
    free(t.buf);
    close(fd);
    harness_assert_clean();
    ck_assert_uint_eq(t.bytes, BIG_FILE);
    ck_assert_uint_eq(t.bad, 0);
    fprintf(stderr, "256 MiB in %.1f ms; %u ticks, longest gap %.2f ms\n", t.read_ns / 1e6,
            t.ticks, t.max_gap_ns / 1e6);
    /* "A few milliseconds" (typically 2-10 ms here), with room for a loaded
     * machine: at most 40 ms, or half of the read's own time when the
     * machine is so busy that the read itself took long (distcheck's
     * parallel tests once starved the worker thread for 376 ms of a
     * 908 ms read). Were the read on the worker, the ticker would stop
     * for all of it (one call). */
    int64_t bound = harness_scale_ns(WEFT_MSEC(40));
    if (t.read_ns / 2 > bound)
        bound = t.read_ns / 2;
    ck_assert_msg(t.max_gap_ns <= bound,
                  "the ticker stopped for %.2f ms while the file was read (%.1f ms; bound %.1f)",
                  t.max_gap_ns / 1e6, t.read_ns / 1e6, bound / 1e6);
}
END_TEST

/* --- weft_copy ------------------------------------------------------------ */

/* A proxy between two socket pairs: client <-> (c_in) proxy (s_out) <->
 * server. Two copies, one per direction; each half-closes its own. */
struct proxy_st {
    int client, c_in, s_out, server;
    ssize_t up, down; /* the copies' results */
};

static int copy_up(void *arg)
{
    struct proxy_st *p = arg;
    p->up = weft_copy(p->c_in, p->s_out, WEFT_SEC(10));
    return 0;
}

static int copy_down(void *arg)
{
    struct proxy_st *p = arg;
    p->down = weft_copy(p->s_out, p->c_in, WEFT_SEC(10));
    return 0;
}

/* Reads fd to its end into buf; returns the length or a negative errno. */
static ssize_t read_all(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    for (;;) {
        ssize_t n = weft_read(fd, buf + have, cap - have);
        if (n < 0)
            return n;
        if (n == 0)
            return (ssize_t)have;
        have += (size_t)n;
        if (have == cap)
            return (ssize_t)have;
    }
}

static int copy_body(void *arg)
{
    int client_first = *(int *)arg; /* which side ends its direction first */
    int a[2], b[2];
    HREQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) == 0, -1);
    HREQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) == 0, -1);
    struct proxy_st p = {.client = a[0], .c_in = a[1], .s_out = b[0], .server = b[1]};
    weft_task *up = weft_spawn(copy_up, &p), *down = weft_spawn(copy_down, &p);
    HREQUIRE(up && down, -1);

    enum { BIG = 300000 };
    char *msg = malloc(BIG), *got = malloc(BIG + 1);
    HREQUIRE(msg && got, -1);
    for (size_t i = 0; i < BIG; i++)
        msg[i] = (char)('A' + i % 50);
    char buf[64];
    if (client_first) {
        /* The client sends a request and half-closes; the server reads it
         * to its end, then answers in the other direction, still open. */
        HCHECK_INT_EQ(weft_write(p.client, msg, BIG), BIG);
        HCHECK(shutdown(p.client, SHUT_WR) == 0);
        HCHECK_INT_EQ(read_all(p.server, got, BIG + 1), BIG);
        HCHECK(memcmp(got, msg, BIG) == 0);
        HCHECK_INT_EQ(weft_join(up), 0);
        HCHECK_INT_EQ(p.up, BIG);
        HCHECK_INT_EQ(weft_write(p.server, "reply", 5), 5);
        HCHECK(shutdown(p.server, SHUT_WR) == 0);
        HCHECK_INT_EQ(read_all(p.client, buf, sizeof buf), 5);
        HCHECK(memcmp(buf, "reply", 5) == 0);
        HCHECK_INT_EQ(weft_join(down), 0);
        HCHECK_INT_EQ(p.down, 5);
    } else {
        /* The server speaks first and half-closes; the client still sends. */
        HCHECK_INT_EQ(weft_write(p.server, msg, BIG), BIG);
        HCHECK(shutdown(p.server, SHUT_WR) == 0);
        HCHECK_INT_EQ(read_all(p.client, got, BIG + 1), BIG);
        HCHECK(memcmp(got, msg, BIG) == 0);
        HCHECK_INT_EQ(weft_join(down), 0);
        HCHECK_INT_EQ(p.down, BIG);
        HCHECK_INT_EQ(weft_write(p.client, "late", 4), 4);
        HCHECK(shutdown(p.client, SHUT_WR) == 0);
        HCHECK_INT_EQ(read_all(p.server, buf, sizeof buf), 4);
        HCHECK(memcmp(buf, "late", 4) == 0);
        HCHECK_INT_EQ(weft_join(up), 0);
        HCHECK_INT_EQ(p.up, 4);
    }
    free(msg);
    free(got);
    weft_close(a[0]);
    weft_close(a[1]);
    weft_close(b[0]);
    weft_close(b[1]);
    return 0;
}

START_TEST(copy_half_closes_in_both_directions)
{
    for (int client_first = 0; client_first < 2; client_first++)
        ck_assert_int_eq(harness_run(harness_workers_variant(_i), copy_body, &client_first), 0);
}
END_TEST

struct idle_st {
    int src_w, src_r, dst_w, dst_r;
    int64_t idle_ns;
    ssize_t rc;
    int64_t took_ns;
};

static int idle_copier(void *arg)
{
    struct idle_st *s = arg;
    int64_t t0 = weft_now();
    s->rc = weft_copy(s->src_r, s->dst_w, s->idle_ns);
    s->took_ns = weft_now() - t0;
    return 0;
}

static int idle_body(void *arg)
{
    (void)arg;
    int a[2], b[2];
    HREQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) == 0, -1);
    HREQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) == 0, -1);
    struct idle_st s;
    /* Silence: -ETIMEDOUT after the idle time, not before. */
    char buf[32];
    s = (struct idle_st){.src_w = a[0], .src_r = a[1], .dst_w = b[0], .dst_r = b[1],
                         .idle_ns = WEFT_MSEC(100)};
    HCHECK_INT_EQ(weft_write(s.src_w, "abc", 3), 3); /* there before the copy starts */
    weft_task *t = weft_spawn(idle_copier, &s);
    HREQUIRE(t != NULL, -1);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(s.rc, -ETIMEDOUT);
    HCHECK(s.took_ns >= WEFT_MSEC(100));
    HCHECK_INT_EQ(weft_read(s.dst_r, buf, sizeof buf), 3); /* moved before */

    /* A destination that takes nothing (nobody reads, its buffer full):
     * the write side times out too. */
    weft_close(b[1]);
    weft_close(b[0]);
    HREQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) == 0, -1);
    int small = 4096;
    setsockopt(b[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    s.dst_w = b[0];
    s.dst_r = b[1];
    t = weft_spawn(idle_copier, &s);
    HREQUIRE(t != NULL, -1);
    char *lots = calloc(1, 1 << 20);
    HREQUIRE(lots != NULL, -1);
    HCHECK_INT_EQ(weft_send(s.src_w, lots, 1 << 16, 0) > 0, 1);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(s.rc, -ETIMEDOUT);
    free(lots);

    /* Bad arguments. */
    HCHECK_INT_EQ(weft_copy(-1, a[0], 0), -EBADF);
    HCHECK_INT_EQ(weft_copy(a[0], -1, 0), -EBADF);
    HCHECK_INT_EQ(weft_copy(a[0], a[0], 0), -EINVAL);
    weft_close(a[0]);
    weft_close(a[1]);
    weft_close(b[0]);
    weft_close(b[1]);
    return 0;
}

START_TEST(copy_idle_timeout)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), idle_body, NULL), 0);
}
END_TEST

/* A byte every 10 ms for 800 ms under an idle bound of 500 ms: each byte
 * is progress, so the copy never times out. (Timing: a machine so loaded
 * that a 10 ms sleep takes 500 ms would fail it.) */
static int progress_body(void *arg)
{
    (void)arg;
    int a[2], b[2];
    HREQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) == 0, -1);
    HREQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) == 0, -1);
    struct idle_st s = {.src_w = a[0], .src_r = a[1], .dst_w = b[0], .dst_r = b[1],
                        .idle_ns = WEFT_MSEC(500)};
    weft_task *t = weft_spawn(idle_copier, &s);
    HREQUIRE(t != NULL, -1);
    for (int i = 0; i < 80; i++) {
        HCHECK_INT_EQ(weft_write(s.src_w, "x", 1), 1);
        weft_sleep(WEFT_MSEC(10));
    }
    shutdown(s.src_w, SHUT_WR);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_MSG(s.rc == 80, "rc %zd after %.1f ms", s.rc, s.took_ns / 1e6);
    HCHECK(s.took_ns > WEFT_MSEC(500)); /* longer than one idle period */
    char buf[128];
    if (s.rc == 80) /* else dst never sees its end */
        HCHECK_INT_EQ(read_all(s.dst_r, buf, sizeof buf), 80);
    weft_close(a[0]);
    weft_close(a[1]);
    weft_close(b[0]);
    weft_close(b[1]);
    return 0;
}

START_TEST(copy_progress_resets_the_idle_timeout)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), progress_body, NULL), 0);
}
END_TEST

/* weft_copy from a regular file to a pipe: the file side goes to the pool,
 * and a pipe is not shut down (it has no write side to shut). */
static int copy_file_body(void *arg)
{
    (void)arg;
    char path[256];
    temp_path(path, sizeof path, "copy");
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
    HREQUIRE(fd >= 0, -1);
    unlink(path);
    HCHECK_INT_EQ(write(fd, "file contents\n", 14), 14);
    HCHECK_INT_EQ(lseek(fd, 0, SEEK_SET), 0);
    int p[2];
    HREQUIRE(pipe2(p, O_CLOEXEC) == 0, -1);
    HCHECK_INT_EQ(weft_copy(fd, p[1], -1), 14);
    weft_close(p[1]);
    char buf[32];
    HCHECK_INT_EQ(read_all(p[0], buf, sizeof buf), 14);
    HCHECK(memcmp(buf, "file contents\n", 14) == 0);
    weft_close(p[0]);
    weft_close(fd);
    return 0;
}

START_TEST(copy_from_a_file)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), copy_file_body, NULL), 0);
}
END_TEST

/* --- weft_reader ------------------------------------------------------------ */

struct feed_st {
    int fd;
    const char *const *pieces;
};

static int feeder(void *arg)
{
    struct feed_st *f = arg;
    for (const char *const *p = f->pieces; *p; p++) {
        if (weft_write(f->fd, *p, strlen(*p)) < 0)
            return -1;
        weft_sleep(WEFT_MSEC(2)); /* each piece its own read */
    }
    shutdown(f->fd, SHUT_WR);
    return 0;
}

static int expect_line(weft_reader *r, const char *want)
{
    const char *line = NULL;
    ssize_t n = weft_reader_line(r, &line);
    HCHECK_INT_EQ(n, (ssize_t)strlen(want));
    if (n > 0)
        HCHECK_MSG(memcmp(line, want, (size_t)n) == 0, "got \"%.*s\", want \"%s\"", (int)n,
                   line, want);
    return 0;
}

static int reader_body(void *arg)
{
    (void)arg;
    int sp[2];
    HREQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0, -1);
    static const char *const pieces[] = {"hel", "lo\nwor", "ld\n", "\n", "a\nb\nc", "\n",
                                         "01234567890123456789", "0123\n", "1234567\n", "end",
                                         NULL};
    struct feed_st f = {.fd = sp[0], .pieces = pieces};
    weft_task *t = weft_spawn(feeder, &f);
    HREQUIRE(t != NULL, -1);
    weft_reader *r = weft_reader_new(sp[1], 8);
    HREQUIRE(r != NULL, -1);
    expect_line(r, "hello\n");
    expect_line(r, "world\n");
    expect_line(r, "\n");
    expect_line(r, "a\n");
    expect_line(r, "b\n");
    expect_line(r, "c\n");
    /* 24 bytes and '\n' in an 8-byte buffer: too long, then skipped. */
    const char *line = NULL;
    HCHECK_INT_EQ(weft_reader_line(r, &line), -ENOBUFS);
    expect_line(r, "1234567\n"); /* exactly cap bytes: fits */
    expect_line(r, "end");       /* the last line, no '\n' */
    line = "unchanged";
    HCHECK_INT_EQ(weft_reader_line(r, &line), 0);
    HCHECK_STR_EQ(line, "unchanged");
    HCHECK_INT_EQ(weft_reader_line(r, &line), 0);
    HCHECK_INT_EQ(weft_join(t), 0);
    weft_reader_free(r);

    /* An error comes back; a deadline too, and the data stays buffered. */
    r = weft_reader_new(sp[1], 64);
    HREQUIRE(r != NULL, -1);
    weft_reader_free(r);
    weft_close(sp[0]);
    weft_close(sp[1]);
    HREQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0, -1);
    r = weft_reader_new(sp[1], 64);
    HREQUIRE(r != NULL, -1);
    HCHECK_INT_EQ(weft_write(sp[0], "par", 3), 3);
    weft_deadline d;
    weft_deadline_enter(&d, WEFT_MSEC(20));
    HCHECK_INT_EQ(weft_reader_line(r, &line), -ETIMEDOUT);
    weft_deadline_leave(&d);
    HCHECK_INT_EQ(weft_write(sp[0], "tial\n", 5), 5);
    expect_line(r, "partial\n");
    weft_reader_free(r);
    weft_close(sp[0]);
    weft_close(sp[1]);

    /* A last line of exactly cap bytes at end of file fits; cap bytes and
     * then '\n' (cap + 1 with it) do not, and nothing of them is left. */
    HREQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0, -1);
    r = weft_reader_new(sp[1], 8);
    HREQUIRE(r != NULL, -1);
    HCHECK_INT_EQ(weft_write(sp[0], "abcdefgh\nok\n12345678", 20), 20);
    HCHECK_INT_EQ(weft_reader_line(r, &line), -ENOBUFS);
    expect_line(r, "ok\n");
    shutdown(sp[0], SHUT_WR);
    expect_line(r, "12345678");
    HCHECK_INT_EQ(weft_reader_line(r, &line), 0);
    weft_reader_free(r);
    weft_close(sp[0]);
    weft_close(sp[1]);

    HCHECK(weft_reader_new(-1, 8) == NULL && errno == EBADF);
    HCHECK(weft_reader_new(0, 0) == NULL && errno == EINVAL);
    HCHECK_INT_EQ(weft_reader_line(NULL, &line), -EINVAL);
    weft_reader_free(NULL);
    return 0;
}

START_TEST(reader_lines_split_long_and_last)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), reader_body, NULL), 0);
}
END_TEST


/* --- weft_run_blocking_ex -------------------------------------------------- */

struct ex_st {
    atomic_int started;  /* fn is running */
    atomic_int stop;     /* set by on_cancel */
    atomic_int calls;    /* on_cancel calls */
    atomic_int returned; /* fn has returned */
    atomic_int by_stop;  /* fn returned because of stop */
    pthread_t fn_thread, cancel_thread;
    weft_runtime *rt_in_fn;
    weft_task *spawned;  /* by fn, with weft_spawn_on */
    int rc;
};

/* Waits for stop, at most 20 s (the test would then fail on by_stop). */
static int ex_fn(void *arg)
{
    struct ex_st *st = arg;
    st->fn_thread = pthread_self();
    st->rt_in_fn = weft_runtime_current();
    atomic_store(&st->started, 1);
    int64_t end = harness_now_ns() + WEFT_SEC(20);
    while (!atomic_load(&st->stop) && harness_now_ns() < end)
        usleep(100);
    atomic_store(&st->by_stop, atomic_load(&st->stop));
    atomic_store(&st->returned, 1);
    return 42;
}

static void ex_on_cancel(void *arg)
{
    struct ex_st *st = arg;
    st->cancel_thread = pthread_self();
    /* Called at most once, and while fn still runs. */
    HCHECK(!atomic_load(&st->returned));
    atomic_fetch_add(&st->calls, 1);
    atomic_store(&st->stop, 1);
}

static int ex_caller(void *arg)
{
    struct ex_st *st = arg;
    st->rc = weft_run_blocking_ex(ex_fn, st, ex_on_cancel);
    return 0;
}

static int ex_caller_deadline(void *arg)
{
    struct ex_st *st = arg;
    weft_deadline d;
    weft_deadline_enter(&d, WEFT_MSEC(30));
    st->rc = weft_run_blocking_ex(ex_fn, st, ex_on_cancel);
    weft_deadline_leave(&d);
    return 0;
}

static int ex_body(void *arg)
{
    (void)arg;
    /* Cancelled while fn runs: on_cancel once, from another thread than
     * fn's; fn returns early; the call returns -ECANCELED after fn. */
    struct ex_st st;
    memset(&st, 0, sizeof st);
    weft_task *t = weft_spawn(ex_caller, &st);
    HREQUIRE(t != NULL, -1);
    HYIELD_UNTIL(atomic_load(&st.started));
    weft_cancel(t);
    weft_cancel(t); /* a second request changes nothing */
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(st.rc, -ECANCELED);
    HCHECK_INT_EQ(atomic_load(&st.calls), 1);
    HCHECK_INT_EQ(atomic_load(&st.returned), 1);
    HCHECK(atomic_load(&st.by_stop));
    HCHECK(!pthread_equal(st.fn_thread, st.cancel_thread));
    HCHECK_PTR_EQ(st.rt_in_fn, weft_runtime_current());

    /* The deadline of the caller's scope passes while fn runs. */
    memset(&st, 0, sizeof st);
    t = weft_spawn(ex_caller_deadline, &st);
    HREQUIRE(t != NULL, -1);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(st.rc, -ETIMEDOUT);
    HCHECK_INT_EQ(atomic_load(&st.calls), 1);
    HCHECK(atomic_load(&st.by_stop));

    /* No interruption: fn's status; no on_cancel, not even for a
     * cancellation that comes after fn has returned. */
    memset(&st, 0, sizeof st);
    atomic_store(&st.stop, 1); /* fn returns at once */
    t = weft_spawn(ex_caller, &st);
    HREQUIRE(t != NULL, -1);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(st.rc, 42);
    HCHECK_INT_EQ(atomic_load(&st.calls), 0);
    HCHECK_INT_EQ(weft_run_blocking_ex(ex_fn, &st, ex_on_cancel), 42);
    weft_cancel(weft_current());
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), -ECANCELED);
    HCHECK_INT_EQ(atomic_load(&st.calls), 0);
    /* Already cancelled: nothing runs. */
    atomic_store(&st.started, 0);
    HCHECK_INT_EQ(weft_run_blocking_ex(ex_fn, &st, ex_on_cancel), -ECANCELED);
    HCHECK_INT_EQ(atomic_load(&st.started), 0);
    HCHECK_INT_EQ(atomic_load(&st.calls), 0);
    return 0;
}

START_TEST(run_blocking_ex_calls_on_cancel_once)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), ex_body, NULL), 0);
}
END_TEST

/* With one pool thread busy, a second call waits in the queue; cancelled
 * there, it is dropped: fn never runs, on_cancel is not called. */
static int ex_blocker(void *arg)
{
    struct ex_st *st = arg;
    st->rc = weft_run_blocking_ex(ex_fn, st, NULL); /* until its stop */
    return 0;
}

static int ex_queued_body(void *arg)
{
    (void)arg;
    struct ex_st busy, queued;
    memset(&busy, 0, sizeof busy);
    memset(&queued, 0, sizeof queued);
    weft_task *b = weft_spawn(ex_blocker, &busy);
    HREQUIRE(b != NULL, -1);
    HYIELD_UNTIL(atomic_load(&busy.started));
    weft_task *q = weft_spawn(ex_caller, &queued);
    HREQUIRE(q != NULL, -1);
    weft_stats s;
    int64_t end = harness_now_ns() + harness_wait_ns();
    do {
        weft_yield();
        weft_runtime_stats(weft_runtime_current(), &s);
    } while (s.blocking_queued == 0 && harness_now_ns() < end);
    HCHECK(s.blocking_queued >= 1);
    weft_cancel(q);
    HCHECK_INT_EQ(weft_join(q), 0);
    HCHECK_INT_EQ(queued.rc, -ECANCELED);
    HCHECK_INT_EQ(atomic_load(&queued.started), 0);
    HCHECK_INT_EQ(atomic_load(&queued.calls), 0);
    atomic_store(&busy.stop, 1);
    HCHECK_INT_EQ(weft_join(b), 0);
    HCHECK_INT_EQ(busy.rc, 42);
    return 0;
}

START_TEST(run_blocking_ex_queued_call_is_dropped)
{
    weft_options opt;
    memset(&opt, 0, sizeof opt);
    opt.workers = harness_workers_variant(_i);
    opt.blocking_threads = 1;
    ck_assert_int_eq(harness_run_opts(&opt, ex_queued_body, NULL), 0);
}
END_TEST

/* Inside fn, weft_runtime_current() is the submitting runtime: fn hands
 * work back to it with weft_spawn_on. */
static int ex_child(void *arg)
{
    atomic_int *ran = arg;
    atomic_store(ran, 1);
    return 9;
}

struct handback {
    weft_runtime *rt;
    weft_task *child;
    atomic_int ran;
};

static int ex_handback_fn(void *arg)
{
    struct handback *h = arg;
    h->rt = weft_runtime_current();
    if (!h->rt)
        return -1;
    h->child = weft_spawn_on(h->rt, ex_child, &h->ran);
    return h->child ? 0 : -errno;
}

static int ex_handback_body(void *arg)
{
    (void)arg;
    struct handback h = {0};
    HCHECK_INT_EQ(weft_run_blocking(ex_handback_fn, &h), 0);
    HCHECK_PTR_EQ(h.rt, weft_runtime_current());
    HREQUIRE(h.child != NULL, -1);
    HCHECK_INT_EQ(weft_join(h.child), 9);
    HCHECK_INT_EQ(atomic_load(&h.ran), 1);
    memset(&h, 0, sizeof h);
    HCHECK_INT_EQ(weft_run_blocking_ex(ex_handback_fn, &h, ex_on_cancel), 0);
    HCHECK_PTR_EQ(h.rt, weft_runtime_current());
    HREQUIRE(h.child != NULL, -1);
    HCHECK_INT_EQ(weft_join(h.child), 9);
    return 0;
}

START_TEST(run_blocking_fn_sees_the_submitting_runtime)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), ex_handback_body, NULL), 0);
    ck_assert_ptr_null(weft_runtime_current()); /* the test's own thread */
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("server");
    TCase *tc = harness_tcase(s, "dgram", 30);
    tcase_add_loop_test(tc, udp_datagrams_truncation_and_waits, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, udp_over_ipv6_and_dual_stack, 0, HARNESS_N_WORKER_VARIANTS);
    tc = harness_tcase(s, "unix", 30);
    tcase_add_loop_test(tc, unix_path_sockets_and_stale_files, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, unix_abstract_namespace, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, descriptor_passing_with_scm_rights, 0, HARNESS_N_WORKER_VARIANTS);
    tc = harness_tcase(s, "file", 60);
    tcase_add_loop_test(tc, files_pread_pwrite_fsync_read_write, 0, HARNESS_N_WORKER_VARIANTS);
    tc = harness_tcase(s, "bigfile", 120);
    tcase_set_tags(tc, "slow timing");
    tcase_add_test(tc, big_file_read_leaves_the_worker_free);
    tc = harness_tcase(s, "copy", 30);
    tcase_add_loop_test(tc, copy_half_closes_in_both_directions, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, copy_idle_timeout, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, copy_from_a_file, 0, HARNESS_N_WORKER_VARIANTS);
    tc = harness_tcase(s, "copy_timing", 30);
    tcase_set_tags(tc, "timing");
    tcase_add_loop_test(tc, copy_progress_resets_the_idle_timeout, 0, HARNESS_N_WORKER_VARIANTS);
    tc = harness_tcase(s, "blocking_ex", 60);
    tcase_add_loop_test(tc, run_blocking_ex_calls_on_cancel_once, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, run_blocking_ex_queued_call_is_dropped, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, run_blocking_fn_sees_the_submitting_runtime, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tc = harness_tcase(s, "reader", 30);
    tcase_add_loop_test(tc, reader_lines_split_long_and_last, 0, HARNESS_N_WORKER_VARIANTS);
    return s;
}
