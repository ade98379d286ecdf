/* SPDX-License-Identifier: MIT */
/* Descriptor storm: rounds of hundreds to a thousand connections (Unix
 * socketpairs or loopback TCP, made with weft_tcp_listen / weft_accept /
 * weft_tcp_connect), an echo task on one end of each and a client task on
 * the other, while closer tasks weft_close random descriptors under their
 * feet (parked in a read or write, or about to call one). Every
 * descriptor is closed exactly once (an atomic flag per descriptor
 * decides who), and no descriptor is created while the closes race, so a
 * closed number is never reused within a round. Invariants: every I/O
 * call returns data or a documented error for a closed descriptor or
 * peer (-EBADF, -ECONNRESET, -EPIPE, end of file); an echo that comes
 * back whole is byte-exact; every task ends (no hang); after each round
 * the process has exactly the descriptors it had before (no leak). */
#define _GNU_SOURCE 1
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "stress.h"

struct slot {
    int fd;
    atomic_int closed;
};

static struct round {
    struct slot *s;    /* 2 * n slots: [0, n) clients, [n, 2n) servers */
    int n;
    int tcp;
    atomic_long closes_raced, bytes, echoes, bad_echo;
    atomic_long ebadf, eof, reset, epipe;
} R;

static atomic_long total_conns, total_closes, total_bytes, total_ebadf, total_eof,
    total_reset;

static void close_once(struct slot *s)
{
    if (!atomic_exchange(&s->closed, 1)) {
        int rc = weft_close(s->fd);
        STRESS_CHECK(rc == 0, "weft_close(%d) of an open descriptor returned %d", s->fd, rc);
    }
}

/* The documented results of an I/O call on a descriptor that may have been
 * closed by another task, or whose peer may have: anything else fails. */
static bool io_end(ssize_t rc, const char *what)
{
    switch (rc) {
    case -EBADF:
        atomic_fetch_add(&R.ebadf, 1);
        return true;
    case -ECONNRESET:
        atomic_fetch_add(&R.reset, 1);
        return true;
    case -EPIPE:
        atomic_fetch_add(&R.epipe, 1);
        return true;
    case 0:
        atomic_fetch_add(&R.eof, 1);
        return true;
    default:
        if (rc < 0) {
            stress_fail("%s returned %zd (%s)", what, rc, weft_strerror((int)rc));
            return true;
        }
        return false;
    }
}

static int echo_task(void *arg)
{
    struct slot *s = arg;
    char buf[4096];
    for (;;) {
        ssize_t n = weft_read(s->fd, buf, sizeof buf);
        if (io_end(n, "weft_read(echo)"))
            break;
        ssize_t w = weft_write(s->fd, buf, (size_t)n);
        if (w != n && io_end(w, "weft_write(echo)"))
            break;
        if (w >= 0 && w != n) {
            stress_fail("weft_write wrote %zd of %zd", w, n);
            break;
        }
    }
    close_once(s);
    return 0;
}

static int client_task(void *arg)
{
    struct slot *s = arg;
    uint64_t rng = stress_stream((uint64_t)(s - R.s) * 7919 + 1);
    char out[4096], in[4096];
    for (unsigned round = 0; round < 4 + stress_below(&rng, 12); round++) {
        size_t len = 1 + stress_below(&rng, sizeof out);
        for (size_t i = 0; i < len; i++)
            out[i] = (char)stress_rand(&rng);
        if (stress_below(&rng, 8) == 0) {
            int r = weft_wait_fd(s->fd, WEFT_WRITABLE);
            if (r < 0) {
                if (r != -EBADF)
                    stress_fail("weft_wait_fd returned %d", r);
                break;
            }
        }
        ssize_t w = weft_write(s->fd, out, len);
        if (w != (ssize_t)len) {
            io_end(w, "weft_write(client)");
            break;
        }
        size_t got = 0;
        while (got < len) {
            ssize_t n = weft_read(s->fd, in + got, len - got);
            if (io_end(n, "weft_read(client)"))
                break;
            got += (size_t)n;
        }
        if (got < len)
            break;
        atomic_fetch_add(&R.bytes, (long)len);
        atomic_fetch_add(&R.echoes, 1);
        if (memcmp(in, out, len) != 0) {
            atomic_fetch_add(&R.bad_echo, 1);
            stress_fail("an echo of %zu bytes came back different", len);
        }
    }
    close_once(s);
    return 0;
}

static int closer_task(void *arg)
{
    uint64_t rng = stress_stream((uint64_t)(uintptr_t)arg + 1000003);
    for (int k = 0; k < R.n / 8 + 1; k++) {
        if (stress_below(&rng, 2))
            weft_sleep(WEFT_USEC(stress_below(&rng, 300)));
        else
            weft_yield();
        struct slot *s = &R.s[stress_below(&rng, (unsigned)(2 * R.n))];
        if (!atomic_load(&s->closed)) {
            close_once(s);
            atomic_fetch_add(&R.closes_raced, 1);
        }
    }
    return 0;
}

struct acc {
    int lfd;
    int n;
};

static int accept_all(void *arg)
{
    struct acc *a = arg;
    for (int i = 0; i < a->n; i++) {
        int fd = weft_accept(a->lfd, NULL, NULL);
        if (fd < 0) {
            stress_fail("weft_accept: %s", weft_strerror(fd));
            return fd;
        }
        R.s[a->n + i].fd = fd;
    }
    return 0;
}

/* Makes R.n connections: socketpairs, or TCP through a listener that is
 * closed again before the closes start. */
static int connect_all(void)
{
    if (!R.tcp) {
        for (int i = 0; i < R.n; i++) {
            int sv[2];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                stress_fail("socketpair: %s", strerror(errno));
                return -1;
            }
            R.s[i].fd = sv[0];
            R.s[R.n + i].fd = sv[1];
        }
        return 0;
    }
    int lfd = weft_tcp_listen("127.0.0.1", "0", 0);
    if (lfd < 0) {
        stress_fail("weft_tcp_listen: %s", weft_strerror(lfd));
        return -1;
    }
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    char port[16];
    snprintf(port, sizeof port, "%u", ntohs(sa.sin_port));
    struct acc a = {lfd, R.n};
    weft_task *acc = weft_spawn(accept_all, &a);
    int rc = 0;
    for (int i = 0; i < R.n; i++) {
        int fd = weft_tcp_connect("127.0.0.1", port);
        if (fd < 0) {
            stress_fail("weft_tcp_connect: %s", weft_strerror(fd));
            rc = -1;
            break;
        }
        R.s[i].fd = fd;
    }
    if (rc < 0)
        weft_cancel(acc);
    if (weft_join(acc) != 0)
        rc = -1;
    weft_close(lfd);
    return rc;
}

static int one_round(void *arg)
{
    (void)arg;
    if (connect_all() < 0)
        return -1;
    weft_task **t = calloc((size_t)(2 * R.n + 16), sizeof *t);
    if (!t) {
        stress_fail("out of memory");
        return -1;
    }
    int n = 0;
    for (int i = 0; i < R.n; i++) {
        t[n++] = weft_spawn(client_task, &R.s[i]);
        t[n++] = weft_spawn(echo_task, &R.s[R.n + i]);
    }
    for (uintptr_t c = 0; c < 8; c++)
        t[n++] = weft_spawn(closer_task, (void *)c);
    for (int i = 0; i < n; i++) {
        if (!t[i]) {
            stress_fail("weft_spawn failed");
            continue;
        }
        weft_join(t[i]);
    }
    free(t);
    for (int i = 0; i < 2 * R.n; i++)
        STRESS_CHECK(atomic_load(&R.s[i].closed), "descriptor %d was never closed", R.s[i].fd);
    return 0;
}

int main(void)
{
    stress_init("io_stress");
    signal(SIGPIPE, SIG_IGN); /* a pipe write (not ours) would kill silently */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    int max_pairs = rl.rlim_cur > 2100 ? 1000 : (int)(rl.rlim_cur - 100) / 2;
    if (max_pairs < 16) {
        printf("io_stress: only %ld descriptors allowed; skipped\n", (long)rl.rlim_cur);
        return 77;
    }
    uint64_t rng = stress_stream(0);
    int fds_start = stress_count_fds();
    weft_runtime *rt = stress_runtime();
    int fds0 = stress_count_fds();
    int rounds = 0;
    R.s = calloc((size_t)max_pairs * 2, sizeof *R.s);
    while (R.s && stress_running() && atomic_load(&stress_g.n_failures) == 0) {
        R.n = 16 + (int)stress_below(&rng, (unsigned)max_pairs - 15);
        R.tcp = (int)stress_below(&rng, 2);
        for (int i = 0; i < 2 * R.n; i++) {
            R.s[i].fd = -1;
            atomic_init(&R.s[i].closed, 0);
        }
        atomic_store(&R.closes_raced, 0);
        atomic_store(&R.bytes, 0);
        atomic_store(&R.echoes, 0);
        atomic_store(&R.ebadf, 0);
        atomic_store(&R.eof, 0);
        atomic_store(&R.reset, 0);
        atomic_store(&R.epipe, 0);
        int rc = weft_runtime_block_on(rt, one_round, NULL);
        STRESS_CHECK(rc == 0, "round %d returned %d", rounds, rc);
        int fds = stress_count_fds();
        STRESS_CHECK(fds == fds0, "round %d (%d %s connections): %d descriptors open, %d before",
                     rounds, R.n, R.tcp ? "TCP" : "socketpair", fds, fds0);
        rounds++;
        atomic_fetch_add(&total_conns, R.n);
        atomic_fetch_add(&total_closes, atomic_load(&R.closes_raced));
        atomic_fetch_add(&total_bytes, atomic_load(&R.bytes));
        atomic_fetch_add(&total_ebadf, atomic_load(&R.ebadf));
        atomic_fetch_add(&total_eof, atomic_load(&R.eof));
        atomic_fetch_add(&total_reset, atomic_load(&R.reset) + atomic_load(&R.epipe));
    }
    stress_free_runtime(rt);
    free(R.s);
    int fds = stress_count_fds();
    STRESS_CHECK(fds == fds_start, "%d descriptors open after the runtime is freed, %d before",
                 fds, fds_start);
    printf("io_stress: %d rounds, %ld connections, %ld racing closes; %ld bytes echoed; "
           "ends seen: %ld -EBADF, %ld EOF, %ld reset/EPIPE; descriptors %d before, %d after\n",
           rounds, atomic_load(&total_conns), atomic_load(&total_closes),
           atomic_load(&total_bytes), atomic_load(&total_ebadf), atomic_load(&total_eof),
           atomic_load(&total_reset), fds_start, fds);
    return stress_finish();
}
