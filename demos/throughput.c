/* SPDX-License-Identifier: MIT */
/* The headline demo: what weft is chosen for, measured fairly on this
 * machine, printed as a table (or JSON lines) and drawn as an SVG chart.
 *
 * Every echo server runs in a process of its own, pinned to the server
 * CPUs; the load generator runs in this process, a small fixed number of
 * epoll threads (one per load CPU, never one per connection) pinned to the
 * other CPUs. Each connection sends a message, waits for all of it back
 * and sends the next (a closed loop). For each server the demo reports
 * requests per second, the server's CPU time per request (from
 * /proc/PID/stat, user + system, over the measured window), the 99th
 * percentile round trip, and the server's resident memory (VmRSS).
 *
 *   1. echo: 100 busy connections; weft on 1..N workers (N = server CPUs),
 *      a thread-per-connection server, a single-threaded epoll loop;
 *   2. c10k: 10,000 connections of which 100 are busy (each of the others
 *      is proved served by one round trip first), the same servers;
 *   3. cpu: CPU work of uneven sizes in many tasks on 1..all CPUs (speedup,
 *      steals), and blocking calls through weft_run_blocking versus called
 *      directly on the workers;
 *   4. peers: the echo load of 1 against Go, Tokio and Python asyncio echo
 *      servers when they are installed (see find_peers).
 *
 * Usage: throughput [--quick] [--json] [--seconds S] [--conns N]
 *                   [--c10k N] [--size B] [--workers N] [--svg FILE]
 *                   [--no-peers]
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

#ifndef WEFT_TOP_SRCDIR
#define WEFT_TOP_SRCDIR "."
#endif

/* ------------------------------------------------------------ options */

static struct {
    double seconds;   /* measured window of each echo run */
    int conns;        /* busy connections */
    int c10k;         /* all connections of the c10k scenario */
    int size;         /* message bytes */
    unsigned workers; /* largest weft worker count of the echo runs; 0: server CPUs */
    const char *svg;
    bool quick, json, peers;
} opt = {.seconds = 2.0, .conns = 100, .c10k = 10000, .size = 64, .svg = "throughput.svg",
         .peers = true};

/* The table goes to stdout, or to stderr when stdout carries JSON. */
static FILE *out;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "throughput: %s: %s\n", what, strerror(err < 0 ? -err : err));
    exit(1);
}

/* ------------------------------------------------------------ CPUs */

static cpu_set_t all_cpus, server_cpus, load_cpus;
static int n_all, n_server, n_load;
static int load_cpu_list[CPU_SETSIZE];

static void cpu_list(const cpu_set_t *s, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = 0;
    for (int c = 0; c < CPU_SETSIZE && off + 8 < len; c++)
        if (CPU_ISSET(c, s))
            off += (size_t)snprintf(buf + off, len - off, "%s%d", off ? "," : "", c);
}

/* Splits the CPUs this process may use: the first half (at least one) for
 * the servers, the rest for the load generator. With one CPU both share it. */
static void split_cpus(void)
{
    CPU_ZERO(&all_cpus);
    if (sched_getaffinity(0, sizeof all_cpus, &all_cpus) != 0)
        die("sched_getaffinity", errno);
    n_all = CPU_COUNT(&all_cpus);
    CPU_ZERO(&server_cpus);
    CPU_ZERO(&load_cpus);
    int want_server = n_all / 2 > 0 ? n_all / 2 : 1, k = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &all_cpus))
            continue;
        if (k++ < want_server)
            CPU_SET(c, &server_cpus);
        else
            CPU_SET(c, &load_cpus);
    }
    if (CPU_COUNT(&load_cpus) == 0)
        load_cpus = server_cpus;
    n_server = CPU_COUNT(&server_cpus);
    n_load = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &load_cpus))
            load_cpu_list[n_load++] = c;
}

/* Up to the hard limit: the c10k scenario holds 10,000 descriptors on each
 * side. Returns the soft limit now in force. */
static long raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur > (rlim_t)LONG_MAX ? LONG_MAX : (long)rl.rlim_cur;
}

/* ------------------------------------------------------------ results */

enum { COL_NA = -1 };

#define MAX_ROWS 64
struct row {
    char scenario[12]; /* echo, c10k, cpu, blocking, peers */
    char server[24];   /* weft, thread_per_conn, epoll_loop, go, tokio, asyncio */
    char label[64];    /* what the table and the chart call it */
    int workers, conns, busy;
    double rps;            /* requests (tasks, calls) per second */
    double cpu_us_per_req; /* < 0: not measured */
    double p99_us;         /* < 0: not measured */
    long rss_kib;          /* < 0: not measured */
    long threads;          /* the server's threads at the end of the run, < 0: n/a */
    long errors;
    long long steals;      /* < 0: n/a */
    double value;          /* cpu/blocking rows: speedup or milliseconds */
    char note[96];
};
static struct row rows[MAX_ROWS];
static int n_rows;

static struct row *new_row(const char *scenario, const char *server, const char *label)
{
    if (n_rows == MAX_ROWS)
        die("too many rows", ENOSPC);
    struct row *r = &rows[n_rows++];
    memset(r, 0, sizeof *r);
    snprintf(r->scenario, sizeof r->scenario, "%s", scenario);
    snprintf(r->server, sizeof r->server, "%s", server);
    snprintf(r->label, sizeof r->label, "%s", label);
    r->workers = r->conns = r->busy = COL_NA;
    r->cpu_us_per_req = r->p99_us = -1;
    r->rss_kib = r->threads = -1;
    r->steals = -1;
    return r;
}

static void json_num(const char *key, double v, int decimals, bool comma)
{
    if (v < 0)
        printf("\"%s\":null", key);
    else
        printf("\"%s\":%.*f", key, decimals, v);
    if (comma)
        putchar(',');
}

static void print_json(const struct row *r)
{
    printf("{\"scenario\":\"%s\",\"server\":\"%s\",\"label\":\"%s\",", r->scenario, r->server,
           r->label);
    json_num("workers", r->workers, 0, true);
    json_num("conns", r->conns, 0, true);
    json_num("busy", r->busy, 0, true);
    json_num("rps", r->rps, 0, true);
    json_num("cpu_us_per_req", r->cpu_us_per_req, 2, true);
    json_num("p99_us", r->p99_us, 0, true);
    json_num("rss_kib", (double)r->rss_kib, 0, true);
    json_num("threads", (double)r->threads, 0, true);
    json_num("errors", (double)r->errors, 0, true);
    json_num("steals", (double)r->steals, 0, false);
    if (!strcmp(r->scenario, "cpu"))
        printf(",\"speedup\":%.3f", r->value);
    else if (!strcmp(r->scenario, "blocking"))
        printf(",\"wall_ms\":%.2f", r->value);
    printf("}\n");
    fflush(stdout);
}

static void print_server_row(const struct row *r)
{
    char mem[32] = "-", cpu[16] = "-", p99[16] = "-";
    if (r->rss_kib >= 0)
        snprintf(mem, sizeof mem, "%.1f MiB", (double)r->rss_kib / 1024);
    if (r->cpu_us_per_req >= 0)
        snprintf(cpu, sizeof cpu, "%.2f", r->cpu_us_per_req);
    if (r->p99_us >= 0)
        snprintf(p99, sizeof p99, "%.0f", r->p99_us);
    fprintf(out, "  %-30s %9.0f %8s %8s %10s  %s\n", r->label, r->rps, cpu, p99, mem, r->note);
    fflush(out);
}

static void emit(const struct row *r)
{
    if (!strcmp(r->scenario, "cpu") || !strcmp(r->scenario, "blocking")) {
        fprintf(out, "  %-30s %9.2f %-4s %s\n", r->label, r->value,
                !strcmp(r->scenario, "cpu") ? "x" : "ms", r->note);
        fflush(out);
    } else {
        print_server_row(r);
    }
    if (opt.json)
        print_json(r);
}

static void table_header(void)
{
    fprintf(out, "  %-30s %9s %8s %8s %10s  %s\n", "server", "req/s", "CPU us", "p99 us",
            "RSS", "(CPU us = server CPU per request)");
}

/* ------------------------------------------------------------ sockets */

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Closed with a reset: no TIME_WAIT left behind by 10,000 connections. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    return fd;
}

/* ------------------------------------------------------------ load generator */

/* Round trips in 1 us buckets up to 20 ms, then 100 us buckets up to 2 s. */
#define FINE_US 20000
#define COARSE 19800
#define N_BUCKETS (FINE_US + COARSE + 1)

struct conn {
    int fd;
    int got;      /* bytes of the current echo received */
    bool busy;    /* keeps sending after its first round trip */
    bool warming; /* its first round trip is not back yet */
    uint64_t t_send;
};

struct load;
struct load_thread {
    struct load *l;
    pthread_t th;
    int cpu;
    struct conn *conns;
    int n;
    unsigned long requests; /* completed inside the measured window */
    long errors;
    uint32_t *hist;
};

struct load {
    int port, size;
    _Atomic int ready;     /* threads whose connections all made a first round trip */
    _Atomic bool measure;  /* inside the measured window */
    _Atomic bool stop;
    struct load_thread *t;
    int n_threads;
};

static void hist_add(uint32_t *h, uint64_t ns)
{
    uint64_t us = ns / 1000;
    size_t b = us < FINE_US ? (size_t)us : FINE_US + (size_t)((us - FINE_US) / 100);
    h[b < N_BUCKETS ? b : N_BUCKETS - 1]++;
}

static double hist_bucket_us(size_t b)
{
    return b < FINE_US ? (double)b + 0.5 : FINE_US + (double)(b - FINE_US) * 100 + 50;
}

static void conn_fail(struct load_thread *lt, struct conn *c, int efd)
{
    if (c->fd >= 0) {
        epoll_ctl(efd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->warming = false;
    lt->errors++;
}

static bool conn_send(struct conn *c, const char *msg, int size)
{
    c->t_send = now_ns();
    return write(c->fd, msg, (size_t)size) == size;
}

static void *load_main(void *arg)
{
    struct load_thread *lt = arg;
    struct load *l = lt->l;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(lt->cpu, &one);
    pthread_setaffinity_np(pthread_self(), sizeof one, &one);

    int efd = epoll_create1(EPOLL_CLOEXEC);
    if (efd < 0)
        die("epoll_create1", errno);
    char *msg = malloc((size_t)l->size), *buf = malloc((size_t)l->size);
    if (!msg || !buf)
        die("malloc", ENOMEM);
    memset(msg, 'w', (size_t)l->size);
    int warming = 0;
    for (int i = 0; i < lt->n; i++) {
        struct conn *c = &lt->conns[i];
        c->fd = connect_to(l->port);
        if (c->fd < 0) {
            c->fd = -1;
            lt->errors++;
            continue;
        }
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(efd, EPOLL_CTL_ADD, c->fd, &ev);
        c->warming = true;
        warming++;
        if (!conn_send(c, msg, l->size)) {
            conn_fail(lt, c, efd);
            warming--;
        }
    }
    bool said_ready = false;
    if (warming == 0) {
        atomic_fetch_add(&l->ready, 1);
        said_ready = true;
    }
    struct epoll_event evs[256];
    while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
        int n = epoll_wait(efd, evs, 256, 10);
        bool measuring = atomic_load_explicit(&l->measure, memory_order_relaxed);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            ssize_t r = read(c->fd, buf, (size_t)(l->size - c->got));
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0) {
                if (c->warming)
                    warming--;
                conn_fail(lt, c, efd);
                continue;
            }
            c->got += (int)r;
            if (c->got < l->size)
                continue;
            c->got = 0;
            if (c->warming) {
                c->warming = false;
                warming--;
            } else if (measuring) {
                hist_add(lt->hist, now_ns() - c->t_send);
                lt->requests++;
            }
            if (c->busy && !conn_send(c, msg, l->size))
                conn_fail(lt, c, efd);
        }
        if (!said_ready && warming == 0) {
            atomic_fetch_add(&l->ready, 1);
            said_ready = true;
        }
    }
    for (int i = 0; i < lt->n; i++)
        if (lt->conns[i].fd >= 0)
            close(lt->conns[i].fd);
    close(efd);
    free(msg);
    free(buf);
    return NULL;
}

/* /proc/PID/stat: user + system time in seconds (the whole process). */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the name may hold spaces */
    if (!p)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* After ")": state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime (fields 3..15). */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* /proc/PID/status: a "Key:  value" line as a number (VmRSS in KiB). */
static long proc_status(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Loads 127.0.0.1:port with `conns` connections of which the first `busy`
 * keep a request in flight, measures `seconds` once every connection has
 * made one round trip, and fills r (rps, cpu, p99, rss, threads, errors).
 * Returns false when the server died. */
static bool run_load(pid_t server, int port, int conns, int busy, struct row *r)
{
    struct load l = {.port = port, .size = opt.size, .n_threads = n_load};
    if (l.n_threads > conns)
        l.n_threads = conns;
    l.t = calloc((size_t)l.n_threads, sizeof *l.t);
    struct conn *cs = calloc((size_t)conns, sizeof *cs);
    if (!l.t || !cs)
        die("calloc", ENOMEM);
    /* Busy connections spread evenly over the threads. */
    for (int i = 0; i < conns; i++)
        cs[i].busy = i < busy;
    int per = conns / l.n_threads, extra = conns % l.n_threads, at = 0;
    struct conn *sorted = calloc((size_t)conns, sizeof *sorted);
    if (!sorted)
        die("calloc", ENOMEM);
    for (int t = 0; t < l.n_threads; t++) {
        int n = per + (t < extra);
        l.t[t].l = &l;
        l.t[t].cpu = load_cpu_list[t % n_load];
        l.t[t].conns = sorted + at;
        l.t[t].n = n;
        for (int k = 0; k < n; k++)
            sorted[at + k] = cs[(size_t)t + (size_t)k * (size_t)l.n_threads];
        at += n;
        l.t[t].hist = calloc(N_BUCKETS, sizeof(uint32_t));
        if (!l.t[t].hist)
            die("calloc", ENOMEM);
    }
    free(cs);
    for (int t = 0; t < l.n_threads; t++)
        if (pthread_create(&l.t[t].th, NULL, load_main, &l.t[t]) != 0)
            die("pthread_create", errno);

    /* Every connection made its first round trip (or failed), or 60 s. */
    double limit = now_s() + 60;
    while (atomic_load(&l.ready) < l.n_threads && now_s() < limit)
        usleep(2000);
    bool alive = waitpid(server, NULL, WNOHANG) == 0;
    usleep(100000); /* the busy connections settle */
    double cpu0 = proc_cpu_s(server), t0 = now_s();
    atomic_store(&l.measure, true);
    usleep((useconds_t)(opt.seconds * 1e6));
    atomic_store(&l.measure, false);
    double t1 = now_s(), cpu1 = proc_cpu_s(server);
    r->rss_kib = proc_status(server, "VmRSS");
    r->threads = proc_status(server, "Threads");
    if (waitpid(server, NULL, WNOHANG) != 0)
        alive = false;
    atomic_store(&l.stop, true);

    unsigned long reqs = 0;
    long errors = 0;
    uint64_t *hist = calloc(N_BUCKETS, sizeof *hist);
    if (!hist)
        die("calloc", ENOMEM);
    for (int t = 0; t < l.n_threads; t++) {
        pthread_join(l.t[t].th, NULL);
        reqs += l.t[t].requests;
        errors += l.t[t].errors;
        for (size_t b = 0; b < N_BUCKETS; b++)
            hist[b] += l.t[t].hist[b];
        free(l.t[t].hist);
    }
    r->conns = conns;
    r->busy = busy;
    r->errors = errors;
    r->rps = (double)reqs / (t1 - t0);
    if (reqs > 0 && cpu0 >= 0 && cpu1 >= 0)
        r->cpu_us_per_req = (cpu1 - cpu0) * 1e6 / (double)reqs;
    if (reqs > 0) {
        uint64_t want = (reqs * 99 + 99) / 100, seen = 0;
        for (size_t b = 0; b < N_BUCKETS; b++) {
            seen += hist[b];
            if (seen >= want) {
                r->p99_us = hist_bucket_us(b);
                break;
            }
        }
    }
    free(hist);
    free(sorted);
    free(l.t);
    return alive;
}

/* ------------------------------------------------------------ server processes */

enum server_kind { SRV_WEFT, SRV_THREADS, SRV_EPOLL };

/* The server side of a child: pinned to the server CPUs, serves lfd until
 * the parent kills it. ctl: the parent writes 's' for weft's steal count,
 * answered as a decimal line on rep. */
static int weft_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[4096];
    for (;;) {
        ssize_t n = weft_read(fd, buf, sizeof buf);
        if (n <= 0 || weft_write(fd, buf, (size_t)n) < 0)
            break;
    }
    weft_close(fd);
    return 0;
}

static int weft_accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = weft_accept(lfd, NULL, NULL);
        if (fd == -ECANCELED || fd == -EBADF)
            break;
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE)
                weft_sleep(WEFT_MSEC(1));
            continue;
        }
        weft_task *t = weft_spawn(weft_conn, (void *)(intptr_t)fd);
        if (t)
            weft_detach(t);
        else
            weft_close(fd); /* the client sees the end of the stream: an error */
    }
    return 0;
}

static void *tpc_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        ssize_t off = 0;
        while (off < n) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w <= 0)
                goto done;
            off += w;
        }
    }
done:
    close(fd);
    return NULL;
}

static void *tpc_accept(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    pthread_attr_t a;
    pthread_attr_init(&a); /* the default stack size, as a plain server has */
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                usleep(1000);
            continue;
        }
        pthread_t th;
        if (pthread_create(&th, &a, tpc_conn, (void *)(intptr_t)fd) != 0)
            close(fd); /* out of threads or memory: the client sees it */
    }
    return NULL;
}

static void *epoll_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    int efd = epoll_create1(EPOLL_CLOEXEC);
    if (efd < 0)
        _exit(3);
    fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(efd, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[256];
    char buf[4096];
    for (;;) {
        int n = epoll_wait(efd, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(efd, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r < 0 && errno == EAGAIN)
                continue;
            /* A short write of a small echo would need a buffer per
             * connection; this plain loop closes the connection instead
             * (the client counts an error). */
            if (r <= 0 || write(fd, buf, (size_t)r) != r)
                close(fd);
        }
    }
    return NULL;
}

static void server_child(enum server_kind kind, unsigned workers, int lfd, int ctl, int rep)
{
    if (sched_setaffinity(0, sizeof server_cpus, &server_cpus) != 0)
        _exit(3);
    weft_runtime *rt = NULL;
    pthread_t th;
    switch (kind) {
    case SRV_WEFT: {
        weft_options o = {.workers = workers};
        rt = weft_runtime_new(&o);
        if (!rt)
            _exit(3);
        weft_task *acc = weft_spawn_on(rt, weft_accept_loop, (void *)(intptr_t)lfd);
        if (!acc)
            _exit(3);
        weft_detach(acc);
        break;
    }
    case SRV_THREADS:
        if (pthread_create(&th, NULL, tpc_accept, (void *)(intptr_t)lfd) != 0)
            _exit(3);
        break;
    case SRV_EPOLL:
        if (pthread_create(&th, NULL, epoll_loop, (void *)(intptr_t)lfd) != 0)
            _exit(3);
        break;
    }
    char c;
    while (read(ctl, &c, 1) == 1) {
        long long steals = 0;
        weft_stats st;
        if (rt && weft_runtime_stats(rt, &st) == 0)
            for (unsigned i = 0; i < st.n_workers && i < WEFT_MAX_WORKERS; i++)
                steals += (long long)st.worker[i].steals;
        char line[32];
        int n = snprintf(line, sizeof line, "%lld\n", steals);
        if (write(rep, line, (size_t)n) != n)
            break;
    }
    _exit(0); /* the parent is done with us (it kills us anyway) */
}

struct server {
    pid_t pid;
    int port;
    int ctl, rep; /* our ends of the control pipes, -1 for peers */
};

static void start_server(struct server *s, enum server_kind kind, unsigned workers)
{
    int lfd = listen_any(&s->port);
    if (lfd < 0)
        die("listen", lfd);
    int ctl[2], rep[2];
    if (pipe2(ctl, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0)
        die("pipe", errno);
    fflush(NULL);
    s->pid = fork();
    if (s->pid < 0)
        die("fork", errno);
    if (s->pid == 0) {
        close(ctl[1]);
        close(rep[0]);
        server_child(kind, workers, lfd, ctl[0], rep[1]);
    }
    close(lfd);
    close(ctl[0]);
    close(rep[1]);
    s->ctl = ctl[1];
    s->rep = rep[0];
}

static long long server_steals(struct server *s)
{
    char line[32];
    if (s->ctl < 0 || write(s->ctl, "s", 1) != 1)
        return -1;
    ssize_t n = read(s->rep, line, sizeof line - 1);
    if (n <= 0)
        return -1;
    line[n] = 0;
    return strtoll(line, NULL, 10);
}

static void stop_server(struct server *s)
{
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    if (s->ctl >= 0) {
        close(s->ctl);
        close(s->rep);
    }
}

static const char *kind_server(enum server_kind k)
{
    return k == SRV_WEFT ? "weft" : k == SRV_THREADS ? "thread_per_conn" : "epoll_loop";
}

/* One echo run of one of our servers: a row, printed. */
static struct row *echo_run(const char *scenario, enum server_kind kind, unsigned workers,
                            int conns, int busy)
{
    char label[64];
    if (kind == SRV_WEFT)
        snprintf(label, sizeof label, "weft, %u worker%s", workers, workers > 1 ? "s" : "");
    else
        snprintf(label, sizeof label, "%s",
                 kind == SRV_THREADS ? "thread per connection" : "single-threaded epoll loop");
    struct row *r = new_row(scenario, kind_server(kind), label);
    struct server s;
    start_server(&s, kind, workers);
    bool alive = run_load(s.pid, s.port, conns, busy, r);
    r->workers = kind == SRV_WEFT ? (int)workers : kind == SRV_EPOLL ? 1 : conns;
    if (kind == SRV_WEFT && alive)
        r->steals = server_steals(&s);
    stop_server(&s);
    int n = 0;
    if (!alive)
        n = snprintf(r->note, sizeof r->note, "THE SERVER DIED; ");
    if (r->errors)
        n += snprintf(r->note + n, sizeof r->note - (size_t)n, "%ld of %d connections failed; ",
                      r->errors, conns);
    if (kind == SRV_THREADS && r->threads >= 0)
        snprintf(r->note + n, sizeof r->note - (size_t)n, "%ld threads", r->threads);
    else if (r->steals >= 0)
        snprintf(r->note + n, sizeof r->note - (size_t)n, "%lld steals", r->steals);
    emit(r);
    return r;
}

/* ------------------------------------------------------------ peers */

/* Echo servers of other runtimes, as /work/shared/peers/run.sh builds them
 * (`go_peer echo_server PORT`, `tokio_peer echo_server PORT`, `python3
 * peer.py echo_server PORT`, each listening on 127.0.0.1:PORT). Looked for
 * in $WEFT_PEERS (a peers directory with bin/ and python/), in
 * ../shared/peers beside the source tree and the current directory, and
 * go_peer / tokio_peer on PATH. */
struct peer {
    const char *server, *label;
    char prog[PATH_MAX], script[PATH_MAX]; /* script: for python3 */
};

static bool is_exec(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

static bool in_path(const char *name, char *out_path, size_t len)
{
    const char *path = getenv("PATH");
    if (!path)
        return false;
    while (*path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        if (n > 0 && n + strlen(name) + 2 <= len) {
            snprintf(out_path, len, "%.*s/%s", (int)n, path, name);
            if (is_exec(out_path))
                return true;
        }
        path += n + (end ? 1 : 0);
    }
    return false;
}

static int find_peers(struct peer *p)
{
    const char *dirs[4];
    int nd = 0;
    if (getenv("WEFT_PEERS") && *getenv("WEFT_PEERS"))
        dirs[nd++] = getenv("WEFT_PEERS");
    dirs[nd++] = WEFT_TOP_SRCDIR "/../shared/peers";
    dirs[nd++] = "../shared/peers";
    int n = 0;
    const char *bins[2][3] = {{"go", "Go (go_peer)", "go_peer"},
                              {"tokio", "Rust Tokio (tokio_peer)", "tokio_peer"}};
    for (int b = 0; b < 2; b++) {
        struct peer *q = &p[n];
        q->server = bins[b][0];
        q->label = bins[b][1];
        q->script[0] = 0;
        bool found = false;
        for (int d = 0; d < nd && !found; d++) {
            snprintf(q->prog, sizeof q->prog, "%s/bin/%s", dirs[d], bins[b][2]);
            found = is_exec(q->prog);
        }
        if (!found)
            found = in_path(bins[b][2], q->prog, sizeof q->prog);
        n += found;
    }
    struct peer *q = &p[n];
    q->server = "asyncio";
    q->label = "Python asyncio (peer.py)";
    bool found = false;
    for (int d = 0; d < nd && !found; d++) {
        snprintf(q->script, sizeof q->script, "%s/python/peer.py", dirs[d]);
        found = access(q->script, R_OK) == 0;
    }
    if (found) {
        if (is_exec("/usr/bin/python3"))
            snprintf(q->prog, sizeof q->prog, "/usr/bin/python3");
        else
            found = in_path("python3", q->prog, sizeof q->prog);
    }
    n += found;
    return n;
}

static bool wait_listening(pid_t pid, int port)
{
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, NULL, WNOHANG) != 0)
            return false;
        int fd = connect_to(port);
        if (fd >= 0) {
            close(fd);
            usleep(50000);
            return true;
        }
        usleep(50000);
    }
    return false;
}

static void peer_run(const struct peer *p, int conns, int busy)
{
    int port;
    int probe = listen_any(&port); /* a free port for the peer to listen on */
    if (probe < 0)
        die("listen", probe);
    close(probe);
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", errno);
    if (pid == 0) {
        if (sched_setaffinity(0, sizeof server_cpus, &server_cpus) != 0)
            _exit(127);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        if (p->script[0])
            execl(p->prog, p->prog, p->script, "echo_server", port_s, (char *)NULL);
        else
            execl(p->prog, p->prog, "echo_server", port_s, (char *)NULL);
        _exit(127);
    }
    char label[64];
    snprintf(label, sizeof label, "%s", p->label);
    struct row *r = new_row("peers", p->server, label);
    r->workers = !strcmp(p->server, "asyncio") ? 1 : n_server;
    if (!wait_listening(pid, port)) {
        snprintf(r->note, sizeof r->note, "did not start (%s)", p->prog);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        r->conns = conns;
        r->busy = busy;
        emit(r);
        return;
    }
    bool alive = run_load(pid, port, conns, busy, r);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    int n = 0;
    if (!alive)
        n = snprintf(r->note, sizeof r->note, "THE SERVER DIED; ");
    if (r->errors)
        n += snprintf(r->note + n, sizeof r->note - (size_t)n, "%ld errors; ", r->errors);
    snprintf(r->note + n, sizeof r->note - (size_t)n, "%ld thread%s", r->threads,
             r->threads == 1 ? "" : "s");
    emit(r);
}

/* ------------------------------------------------------------ CPU phase */

struct cpu_job {
    uint64_t iters;
    uint64_t result;
};

static int cpu_task(void *arg)
{
    struct cpu_job *j = arg;
    uint64_t x = j->iters;
    for (uint64_t i = 0; i < j->iters; i++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    j->result = x;
    return 0;
}

struct cpu_run {
    int n;
    struct cpu_job *jobs;
};

static int cpu_main(void *arg)
{
    struct cpu_run *r = arg;
    weft_task **t = malloc((size_t)r->n * sizeof *t);
    if (!t)
        return -ENOMEM;
    for (int i = 0; i < r->n; i++)
        t[i] = weft_spawn(cpu_task, &r->jobs[i]);
    int rc = weft_gather(t, (size_t)r->n, NULL);
    free(t);
    return rc;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double cpu_phase(unsigned workers, struct cpu_run *r, long long *steals, double *cpu)
{
    weft_options o = {.workers = workers};
    weft_runtime *rt = weft_runtime_new(&o);
    if (!rt)
        die("weft_runtime_new", errno);
    double c0 = self_cpu_s(), t0 = now_s();
    int rc = weft_runtime_block_on(rt, cpu_main, r);
    double secs = now_s() - t0;
    *cpu = self_cpu_s() - c0;
    if (rc < 0)
        die("cpu phase", rc);
    weft_stats st;
    *steals = 0;
    if (weft_runtime_stats(rt, &st) == 0)
        for (unsigned i = 0; i < st.n_workers && i < WEFT_MAX_WORKERS; i++)
            *steals += (long long)st.worker[i].steals;
    weft_runtime_free(rt);
    return secs;
}

/* ------------------------------------------------------------ blocking phase */

static int sleep_call(void *arg)
{
    usleep((useconds_t)(intptr_t)arg);
    return 0;
}

struct blk {
    bool through_pool;
    int calls;
    int us;
};

static int blk_task(void *arg)
{
    struct blk *b = arg;
    for (int i = 0; i < b->calls; i++) {
        if (b->through_pool)
            weft_run_blocking(sleep_call, (void *)(intptr_t)b->us);
        else
            sleep_call((void *)(intptr_t)b->us); /* stalls the worker */
    }
    return 0;
}

enum { BLK_TASKS = 32 };

static int blk_main(void *arg)
{
    weft_task *t[BLK_TASKS];
    for (int i = 0; i < BLK_TASKS; i++)
        t[i] = weft_spawn(blk_task, arg);
    return weft_gather(t, BLK_TASKS, NULL);
}

static double blocking_phase(bool through_pool, unsigned workers, int calls, int us)
{
    weft_options o = {.workers = workers, .blocking_threads = 64};
    weft_runtime *rt = weft_runtime_new(&o);
    if (!rt)
        die("weft_runtime_new", errno);
    struct blk b = {.through_pool = through_pool, .calls = calls, .us = us};
    double t0 = now_s();
    weft_runtime_block_on(rt, blk_main, &b);
    double secs = now_s() - t0;
    weft_runtime_free(rt);
    return secs;
}

/* ------------------------------------------------------------ SVG */

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        default: fputc(*s, f);
        }
}

struct svg {
    FILE *f;
    int y;
};

enum { SVG_W = 960, LABEL_X = 250, COL_W = 300, COL2_X = LABEL_X + COL_W + 60, BAR_H = 20,
       BAR_GAP = 6 };

static bool row_in(const struct row *r, const char *a, const char *b)
{
    return !strcmp(r->scenario, a) || (b && !strcmp(r->scenario, b));
}

static const char *bar_color(const struct row *r)
{
    if (!strncmp(r->server, "weft", 4))
        return "#3b7dd8";
    if (!strcmp(r->scenario, "peers"))
        return "#9467bd";
    return "#8c8c8c";
}

/* A section: rows of scenarios a/b, two bar columns per row (va and vb
 * give the values; < 0 draws none). */
static void svg_section(struct svg *s, const char *title, const char *a, const char *b,
                        const char *head_a, double (*va)(const struct row *), const char *fmt_a,
                        const char *head_b, double (*vb)(const struct row *), const char *fmt_b)
{
    double max_a = 0, max_b = 0;
    int n = 0;
    for (int i = 0; i < n_rows; i++) {
        if (!row_in(&rows[i], a, b))
            continue;
        n++;
        if (va(&rows[i]) > max_a)
            max_a = va(&rows[i]);
        if (vb && vb(&rows[i]) > max_b)
            max_b = vb(&rows[i]);
    }
    if (n == 0)
        return;
    FILE *f = s->f;
    s->y += 28;
    fprintf(f, "<text x=\"10\" y=\"%d\" font-weight=\"bold\" font-size=\"15\">", s->y);
    xml_text(f, title);
    fprintf(f, "</text>\n");
    s->y += 18;
    fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#444\">%s</text>\n", LABEL_X, s->y, head_a);
    if (vb)
        fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#444\">%s</text>\n", COL2_X, s->y, head_b);
    s->y += 8;
    for (int i = 0; i < n_rows; i++) {
        const struct row *r = &rows[i];
        if (!row_in(r, a, b))
            continue;
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", LABEL_X - 8,
                s->y + BAR_H - 5);
        xml_text(f, r->label);
        fprintf(f, "</text>\n");
        double v = va(r);
        int w = max_a > 0 && v > 0 ? (int)(v / max_a * (COL_W - 70)) : 0;
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n", LABEL_X,
                s->y, w > 1 ? w : 1, BAR_H, bar_color(r));
        fprintf(f, "<text x=\"%d\" y=\"%d\">", LABEL_X + w + 5, s->y + BAR_H - 5);
        fprintf(f, fmt_a, v < 0 ? 0 : v);
        fprintf(f, "</text>\n");
        if (vb && vb(r) >= 0) {
            double u = vb(r);
            int w2 = max_b > 0 ? (int)(u / max_b * (COL_W - 70)) : 0;
            fprintf(f,
                    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" "
                    "fill-opacity=\"0.55\"/>\n",
                    COL2_X, s->y, w2 > 1 ? w2 : 1, BAR_H, bar_color(r));
            fprintf(f, "<text x=\"%d\" y=\"%d\">", COL2_X + w2 + 5, s->y + BAR_H - 5);
            fprintf(f, fmt_b, u);
            fprintf(f, "</text>\n");
        }
        s->y += BAR_H + BAR_GAP;
    }
}

static double v_rps(const struct row *r) { return r->rps; }
static double v_cpu(const struct row *r) { return r->cpu_us_per_req; }
static double v_kib_per_conn(const struct row *r)
{
    return r->rss_kib >= 0 && r->conns > 0 ? (double)r->rss_kib / r->conns : -1;
}
static double v_value(const struct row *r) { return r->value; }

static bool write_svg(const char *path, const char *subtitle, const char *summary)
{
    /* The body first, in memory: the height is known at its end. */
    char *body = NULL;
    size_t body_len = 0;
    FILE *f = open_memstream(&body, &body_len);
    if (!f)
        die("open_memstream", errno);
    fprintf(f, "<text x=\"10\" y=\"24\" font-size=\"18\" font-weight=\"bold\">weft throughput "
               "demo</text>\n");
    fprintf(f, "<text x=\"10\" y=\"44\" fill=\"#444\">");
    xml_text(f, subtitle);
    fprintf(f, "</text>\n");
    struct svg s = {f, 50};
    svg_section(&s, "1. TCP echo, busy connections (and 4. other runtimes' servers)", "echo",
                "peers", "requests per second (higher is better)", v_rps, "%.0f",
                "server CPU us per request (lower is better)", v_cpu, "%.2f");
    svg_section(&s, "2. C10K: many connections, few busy", "c10k", NULL,
                "requests per second (higher is better)", v_rps, "%.0f",
                "server RSS KiB per connection (lower is better)", v_kib_per_conn, "%.1f");
    svg_section(&s, "3a. CPU work in many uneven tasks, all CPUs", "cpu", NULL,
                "speedup over 1 worker (higher is better)", v_value, "%.2f x", "", NULL, "");
    svg_section(&s, "3b. Blocking calls, 32 tasks", "blocking", NULL,
                "wall time, ms (lower is better)", v_value, "%.1f ms", "", NULL, "");
    /* The summary, wrapped at word boundaries (SVG text does not wrap). */
    s.y += 12;
    for (const char *p = summary; *p;) {
        size_t n = strlen(p);
        if (n > 130) {
            n = 130;
            while (n > 0 && p[n] != ' ')
                n--;
            if (n == 0)
                n = 130;
        }
        char line[140];
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        s.y += 17;
        fprintf(f, "<text x=\"10\" y=\"%d\" font-size=\"12\">", s.y);
        xml_text(f, line);
        fprintf(f, "</text>\n");
        p += n;
        while (*p == ' ')
            p++;
    }
    fclose(f);
    FILE *o = fopen(path, "w");
    if (!o) {
        fprintf(stderr, "throughput: cannot write %s: %s\n", path, strerror(errno));
        free(body);
        return false;
    }
    fprintf(o,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\" font-size=\"13\">\n",
            SVG_W, s.y + 16);
    fprintf(o, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fwrite(body, 1, body_len, o);
    fprintf(o, "</svg>\n");
    free(body);
    return fclose(o) == 0;
}

/* ------------------------------------------------------------ summary */

static const struct row *find_row(const char *scenario, const char *server, int workers)
{
    for (int i = 0; i < n_rows; i++)
        if (!strcmp(rows[i].scenario, scenario) && !strcmp(rows[i].server, server) &&
            (workers < 0 || rows[i].workers == workers))
            return &rows[i];
    return NULL;
}

/* A bounded string builder: appends stop (and are cut) at the end. */
struct sbuf {
    char *p;
    size_t len, n;
};

__attribute__((format(printf, 2, 3))) static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    if (b->n + 1 >= b->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->n, b->len - b->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        b->n = b->n + (size_t)k < b->len ? b->n + (size_t)k : b->len - 1;
}

/* "1.74x the req/s of X at 0.58x its CPU per request" */
static void compare(struct sbuf *b, const struct row *w, const struct row *o, const char *name)
{
    sb_add(b, "%.2fx the req/s of %s", w->rps / o->rps, name);
    if (w->cpu_us_per_req > 0 && o->cpu_us_per_req > 0)
        sb_add(b, " at %.2fx its CPU per request", w->cpu_us_per_req / o->cpu_us_per_req);
}

static void summarize(char *buf, size_t len)
{
    struct sbuf b = {buf, len, 0};
    buf[0] = 0;
    const struct row *w = find_row("echo", "weft", 1), *t = find_row("echo", "thread_per_conn", -1),
                     *e = find_row("echo", "epoll_loop", -1);
    if (w && t && e && t->rps > 0 && e->rps > 0 && w->rps > 0) {
        sb_add(&b, "Echo, one server CPU: weft on 1 worker made ");
        compare(&b, w, t, "thread per connection");
        sb_add(&b, ", and ");
        compare(&b, w, e, "the hand-written epoll loop");
        sb_add(&b, ". ");
        bool faster = w->rps > t->rps, cheaper = w->cpu_us_per_req < t->cpu_us_per_req;
        if (!faster || !cheaper)
            sb_add(&b, "Here weft did NOT beat thread per connection on %s. ",
                   !faster && !cheaper ? "speed or CPU" : !faster ? "speed" : "CPU");
        if (w->rps < e->rps)
            sb_add(&b,
                   "The hand-written epoll loop (no scheduler, no stack per connection, "
                   "callback-style code) answered %.0f%% more requests per second. ",
                   (e->rps / w->rps - 1) * 100);
    }
    static const char *const peer_names[][2] = {
        {"go", "Go's"}, {"tokio", "Tokio's"}, {"asyncio", "asyncio's"}};
    bool any_peer = false;
    for (size_t i = 0; i < sizeof peer_names / sizeof peer_names[0]; i++) {
        const struct row *p = find_row("peers", peer_names[i][0], -1);
        if (!w || !p || p->rps <= 0 || w->rps <= 0)
            continue;
        sb_add(&b, "%s%.2fx %s req/s", any_peer ? ", " : "Against other runtimes on the same CPU, weft made ",
               w->rps / p->rps, peer_names[i][1]);
        if (w->cpu_us_per_req > 0 && p->cpu_us_per_req > 0)
            sb_add(&b, " at %.2fx its CPU per request", w->cpu_us_per_req / p->cpu_us_per_req);
        any_peer = true;
    }
    if (any_peer)
        sb_add(&b, ". ");
    const struct row *cw = find_row("c10k", "weft", 1), *ct = find_row("c10k", "thread_per_conn", -1),
                     *ce = find_row("c10k", "epoll_loop", -1);
    if (cw && ct && ce && cw->conns > 0) {
        sb_add(&b, "With %d connections (%d busy), server memory per connection and req/s: weft "
                   "%.1f KiB, %.0f; thread per connection (%ld threads) %.1f KiB, %.0f",
               cw->conns, cw->busy, v_kib_per_conn(cw), cw->rps, ct->threads, v_kib_per_conn(ct),
               ct->rps);
        if (ct->errors)
            sb_add(&b, ", and %ld of its connections FAILED", ct->errors);
        if (cw->errors)
            sb_add(&b, " (weft: %ld connections FAILED)", cw->errors);
        sb_add(&b, "; epoll loop %.1f KiB, %.0f.", v_kib_per_conn(ce), ce->rps);
    }
    if (b.n == 0)
        sb_add(&b, "no echo rows to compare");
}

/* ------------------------------------------------------------ main */

static void usage(void)
{
    fprintf(stderr, "usage: throughput [--quick] [--json] [--seconds S] [--conns N] "
                    "[--c10k N] [--size BYTES] [--workers N] [--svg FILE] [--no-peers]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) {
            opt.quick = true;
            opt.seconds = 0.3;
            opt.conns = 8;
            opt.c10k = 200;
        } else if (!strcmp(a, "--json")) {
            opt.json = true;
        } else if (!strcmp(a, "--no-peers")) {
            opt.peers = false;
        } else if (!strcmp(a, "--seconds") && v) {
            opt.seconds = atof(v), i++;
        } else if (!strcmp(a, "--conns") && v) {
            opt.conns = atoi(v), i++;
        } else if (!strcmp(a, "--c10k") && v) {
            opt.c10k = atoi(v), i++;
        } else if (!strcmp(a, "--size") && v) {
            opt.size = atoi(v), i++;
        } else if (!strcmp(a, "--workers") && v) {
            opt.workers = (unsigned)atoi(v), i++;
        } else if (!strcmp(a, "--svg") && v) {
            opt.svg = v, i++;
        } else {
            usage();
        }
    }
    if (opt.seconds <= 0 || opt.seconds > 600 || opt.conns < 1 || opt.conns > 100000 ||
        opt.c10k < opt.conns || opt.c10k > 1000000 || opt.size < 1 || opt.size > 4096 ||
        opt.workers > 256)
        usage();
    out = opt.json ? stderr : stdout;
    signal(SIGPIPE, SIG_IGN);
    split_cpus();
    long nofile = raise_nofile();
    /* Each side holds its connections plus a few descriptors of its own. */
    if (opt.c10k > nofile - 64) {
        fprintf(out, "(descriptor limit %ld: the c10k run uses %ld connections instead of %d)\n",
                nofile, nofile - 64, opt.c10k);
        opt.c10k = (int)(nofile - 64);
        if (opt.c10k < opt.conns)
            opt.c10k = opt.conns;
    }
    unsigned max_workers = opt.workers ? opt.workers : (unsigned)n_server;
    char srv_list[256], load_list[256];
    cpu_list(&server_cpus, srv_list, sizeof srv_list);
    cpu_list(&load_cpus, load_list, sizeof load_list);

    fprintf(out, "weft throughput demo: %d CPUs; every server runs in its own process on CPU%s %s, "
                 "the load generator (%d epoll thread%s) on CPU%s %s\n",
            n_all, n_server > 1 ? "s" : "", srv_list, n_load, n_load > 1 ? "s" : "",
            n_load > 1 ? "s" : "", load_list);
    double load = -1;
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf", &load) != 1)
            load = -1;
        fclose(la);
    }
    if (load > n_all * 0.75)
        fprintf(out, "(this machine is busy: load average %.1f on %d CPUs. Other processes share "
                     "the server CPU, so req/s shows each server's share of it as much as its "
                     "speed; the server CPU per request is the steadier figure)\n",
                load, n_all);
    if (n_all == 1)
        fprintf(out, "(only one CPU: servers and load share it, so req/s is about half of "
                     "what the server alone could do)\n");
    fprintf(out, "%d-byte messages, one in flight per busy connection, %.1f s per run\n\n",
            opt.size, opt.seconds);

    /* 1. echo */
    fprintf(out, "[1/4] TCP echo, %d busy connections\n", opt.conns);
    table_header();
    for (unsigned w = 1; w <= max_workers; w++)
        echo_run("echo", SRV_WEFT, w, opt.conns, opt.conns);
    echo_run("echo", SRV_THREADS, 0, opt.conns, opt.conns);
    echo_run("echo", SRV_EPOLL, 0, opt.conns, opt.conns);
    if (max_workers == 1)
        fprintf(out, "  (weft is tried on 1..%u workers, one per server CPU: this machine has "
                     "no second server CPU to scale onto; --workers N tries more)\n",
                max_workers);
    fprintf(out, "\n");

    /* 2. c10k */
    fprintf(out, "[2/4] C10K: %d connections, %d of them busy (each made one round trip "
                 "first)\n",
            opt.c10k, opt.conns);
    table_header();
    echo_run("c10k", SRV_WEFT, 1, opt.c10k, opt.conns);
    echo_run("c10k", SRV_THREADS, 0, opt.c10k, opt.conns);
    echo_run("c10k", SRV_EPOLL, 0, opt.c10k, opt.conns);
    fprintf(out, "  (RSS is the server process's resident memory with every connection open; "
                 "kernel socket buffers are not in it)\n\n");

    /* 3. CPU and blocking, in this process on every CPU */
    if (sched_setaffinity(0, sizeof all_cpus, &all_cpus) != 0)
        die("sched_setaffinity", errno);
    int n_tasks = opt.quick ? 500 : 4000;
    fprintf(out, "[3/4] CPU work: %d tasks of uneven size (10x spread) on 1..%d workers, all "
                 "CPUs; then blocking calls\n",
            n_tasks, n_all);
    struct cpu_run run = {.n = n_tasks};
    run.jobs = calloc((size_t)run.n, sizeof *run.jobs);
    if (!run.jobs)
        die("calloc", ENOMEM);
    uint64_t seed = 42;
    for (int i = 0; i < run.n; i++) {
        seed = seed * 6364136223846793005ull + 1;
        run.jobs[i].iters = (uint64_t)(opt.quick ? 2000 : 20000) * (1 + (seed >> 33) % 10);
    }
    double base = 0;
    char label[64];
    for (unsigned w = 1; w <= (unsigned)n_all; w++) {
        long long steals;
        double cpu;
        double secs = cpu_phase(w, &run, &steals, &cpu);
        if (w == 1)
            base = secs;
        snprintf(label, sizeof label, "weft, %u worker%s", w, w > 1 ? "s" : "");
        struct row *r = new_row("cpu", "weft", label);
        r->workers = (int)w;
        r->rps = run.n / secs;
        r->cpu_us_per_req = cpu * 1e6 / run.n;
        r->steals = steals;
        r->value = base / secs;
        snprintf(r->note, sizeof r->note, "speedup; %.3f s, %lld tasks stolen", secs, steals);
        emit(r);
    }
    free(run.jobs);
    int calls = opt.quick ? 2 : 5, us = opt.quick ? 2000 : 10000;
    double pool = blocking_phase(true, (unsigned)n_all, calls, us);
    double direct = blocking_phase(false, (unsigned)n_all, calls, us);
    struct row *r = new_row("blocking", "weft_run_blocking", "through weft_run_blocking");
    r->workers = n_all;
    r->rps = BLK_TASKS * calls / pool;
    r->value = pool * 1000;
    snprintf(r->note, sizeof r->note, "%d x %d calls of %d ms: they overlap", BLK_TASKS, calls,
             us / 1000);
    emit(r);
    r = new_row("blocking", "on_the_workers", "directly on the workers");
    r->workers = n_all;
    r->rps = BLK_TASKS * calls / direct;
    r->value = direct * 1000;
    snprintf(r->note, sizeof r->note, "each call stalls a worker: %.1fx slower",
             pool > 0 ? direct / pool : 0);
    emit(r);
    fprintf(out, "\n");

    /* 4. peers */
    fprintf(out, "[4/4] Other runtimes' echo servers, the load of [1/4], on the same CPU%s\n",
            n_server > 1 ? "s" : "");
    struct peer peers[3];
    int n_peers = opt.peers && !opt.quick ? find_peers(peers) : 0;
    if (n_peers > 0)
        table_header();
    for (int i = 0; i < n_peers; i++)
        peer_run(&peers[i], opt.conns, opt.conns);
    if (opt.quick)
        fprintf(out, "  skipped in --quick mode\n");
    else if (!opt.peers)
        fprintf(out, "  skipped (--no-peers)\n");
    else if (n_peers < 3)
        fprintf(out, "  %s: to add them, build the peer servers (go_peer, tokio_peer: "
                     "../shared/peers/run.sh --build-only) and put them on PATH, or set "
                     "WEFT_PEERS to a directory with bin/go_peer, bin/tokio_peer and "
                     "python/peer.py\n",
                n_peers == 0 ? "no Go, Tokio or asyncio peers found" : "some peers are missing");
    fprintf(out, "\n");

    char summary[2048];
    summarize(summary, sizeof summary);
    fprintf(out, "Summary: %s\n", summary);
    char subtitle[640];
    char busy[64] = "";
    if (load > n_all * 0.75)
        snprintf(busy, sizeof busy, "; a busy machine (load average %.1f)", load);
    snprintf(subtitle, sizeof subtitle,
             "%d CPUs: servers on CPU %s, load (%d epoll thread%s) on CPU %s; %d-byte echoes, "
             "%.1f s per run%s",
             n_all, srv_list, n_load, n_load > 1 ? "s" : "", load_list, opt.size, opt.seconds,
             busy);
    if (write_svg(opt.svg, subtitle, summary)) {
        char *abs = realpath(opt.svg, NULL);
        fprintf(out, "chart written to %s (open it in a browser)\n", abs ? abs : opt.svg);
        free(abs);
    }
    return 0;
}
