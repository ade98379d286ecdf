/* SPDX-License-Identifier: MIT */
/* weft-bench: the BENCH.md workloads, written against the public API only.
 * Each micro benchmark does the work of ../shared/peers/go/main.go and
 * prints one JSON line with the same keys, so peers/run.sh can put weft in
 * the same table (WEFT_BENCH=path/to/weft-bench). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

/* ------------------------------------------------------------ helpers */

/* The benchmark's own clock, so that timing does not depend on the
 * library under test. */
static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * INT64_C(1000000000) + ts.tv_nsec;
}

static double seconds_since(int64_t start_ns)
{
    return (double)(now_ns() - start_ns) / 1e9;
}

/* A field of /proc/self/status ("VmHWM", "VmRSS") in KiB, -1 if absent. */
static long proc_status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    size_t flen = strlen(field);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            kib = strtol(line + flen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

static unsigned current_workers(void)
{
    return weft_runtime_workers(weft_runtime_current());
}

/* Prints the JSON line: the keys every peer prints, then the
 * benchmark's own (extra_fmt formats `"key":value,...` without braces).
 * rss_kib is read here, after the work, because it is the peak. */
static void emit(const char *bench, int64_t n, double secs, const char *extra_fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void emit(const char *bench, int64_t n, double secs, const char *extra_fmt, ...)
{
    char extra[512];
    va_list ap;
    va_start(ap, extra_fmt);
    vsnprintf(extra, sizeof extra, extra_fmt, ap);
    va_end(ap);
    printf("{\"runtime\":\"weft\",\"bench\":\"%s\",\"n\":%" PRId64 ",\"seconds\":%.6f,"
           "\"rss_kib\":%ld,\"threads\":%u,%s}\n",
           bench, n, secs, proc_status_kib("VmHWM"), current_workers(), extra);
    fflush(stdout);
}

static const char *json_bool(bool b)
{
    return b ? "true" : "false";
}

/* Keeps the first error of several. */
static void first_error(int *err, int status)
{
    if (status < 0 && *err == 0)
        *err = status;
}

/* ------------------------------------------------------------- skynet */

#define SKYNET_DIV 10

/* A task's status is an int, too small for the sums, so each task gets
 * its inputs and its result slot through arg; the slots live on the
 * parent's stack, which stays put while the parent waits in weft_join. */
struct skynet_node {
    int64_t num;
    int64_t size;
    int64_t result;
};

static int skynet_task(void *arg)
{
    struct skynet_node *node = arg;
    if (node->size == 1) {
        node->result = node->num;
        return 0;
    }
    struct skynet_node kids[SKYNET_DIV];
    weft_task *handles[SKYNET_DIV];
    int64_t sub = node->size / SKYNET_DIV;
    int err = 0, n_spawned = 0;
    for (int i = 0; i < SKYNET_DIV; i++) {
        kids[i] = (struct skynet_node){.num = node->num + i * sub, .size = sub};
        handles[i] = weft_spawn(skynet_task, &kids[i]);
        if (handles[i] == NULL) {
            err = -errno;
            break;
        }
        n_spawned++;
    }
    /* Every spawned child is joined even after an error: they point into
     * this stack frame. */
    int64_t sum = 0;
    for (int i = 0; i < n_spawned; i++) {
        first_error(&err, weft_join(handles[i]));
        sum += kids[i].result;
    }
    node->result = sum;
    return err;
}

static int bench_skynet(void *arg)
{
    int64_t leaves = *(int64_t *)arg;
    int64_t start = now_ns();
    struct skynet_node root = {.num = 0, .size = leaves};
    weft_task *t = weft_spawn(skynet_task, &root);
    int err = t == NULL ? -errno : weft_join(t);
    double secs = seconds_since(start);

    int64_t want = leaves * (leaves - 1) / 2;
    int64_t tasks = 0;
    for (int64_t l = leaves; l >= 1; l /= SKYNET_DIV)
        tasks += l;
    emit("skynet", tasks, secs, "\"result\":%" PRId64 ",\"ok\":%s", root.result,
         json_bool(err == 0 && root.result == want));
    return err;
}

/* --------------------------------------------------------- spawn_join */

static int spawn_join_task(void *arg)
{
    return (int)((uintptr_t)arg & 7);
}

static int bench_spawn_join(void *arg)
{
    int64_t n = *(int64_t *)arg;
    int64_t start = now_ns();
    /* Every handle is kept until the joins, as the peers keep theirs. */
    weft_task **handles = malloc((size_t)n * sizeof *handles);
    if (handles == NULL)
        return -ENOMEM;
    int err = 0;
    int64_t n_spawned = 0;
    for (int64_t i = 0; i < n; i++) {
        handles[i] = weft_spawn(spawn_join_task, (void *)(uintptr_t)i);
        if (handles[i] == NULL) {
            err = -errno;
            break;
        }
        n_spawned++;
    }
    int64_t sum = 0;
    for (int64_t i = 0; i < n_spawned; i++) {
        int status = weft_join(handles[i]);
        first_error(&err, status);
        if (status > 0)
            sum += status;
    }
    double secs = seconds_since(start);
    free(handles);

    int64_t want = 0;
    for (int64_t i = 0; i < n; i++)
        want += i & 7;
    emit("spawn_join", n, secs, "\"ns_per_task\":%.1f,\"ok\":%s", secs * 1e9 / (double)n,
         json_bool(err == 0 && sum == want));
    return err;
}

/* -------------------------------------------------------------- yield */

static int yield_task(void *arg)
{
    int64_t per_task = *(int64_t *)arg;
    for (int64_t i = 0; i < per_task; i++) {
        int r = weft_yield();
        if (r != 0)
            return r;
    }
    return 0;
}

static int bench_yield(void *arg)
{
    int64_t per_task = *(int64_t *)arg;
    unsigned n_tasks = 2 * current_workers();
    weft_task *handles[2 * WEFT_MAX_WORKERS];
    int err = 0;
    unsigned n_spawned = 0;
    int64_t start = now_ns();
    for (unsigned t = 0; t < n_tasks; t++) {
        handles[t] = weft_spawn(yield_task, &per_task);
        if (handles[t] == NULL) {
            err = -errno;
            break;
        }
        n_spawned++;
    }
    for (unsigned t = 0; t < n_spawned; t++)
        first_error(&err, weft_join(handles[t]));
    double secs = seconds_since(start);

    int64_t total = per_task * n_tasks;
    emit("yield", per_task, secs, "\"tasks\":%u,\"total_yields\":%" PRId64 ",\"ns_per_op\":%.1f,\"ok\":%s",
         n_tasks, total, secs * 1e9 / (double)total, json_bool(err == 0));
    return err;
}

/* ----------------------------------------------------------- pingpong */

struct pingpong {
    weft_chan *ping;
    weft_chan *pong;
};

/* Answers every ping with value + 1 until ping is closed. */
static int pong_task(void *arg)
{
    struct pingpong *pp = arg;
    int64_t v;
    int r;
    while ((r = weft_chan_recv(pp->ping, &v)) == 0) {
        v++;
        r = weft_chan_send(pp->pong, &v);
        if (r != 0)
            return r;
    }
    return r == -EPIPE ? 0 : r;
}

static int bench_pingpong(void *arg)
{
    int64_t n = *(int64_t *)arg;
    /* Capacity 0: rendezvous, like Go's unbuffered channels. */
    struct pingpong pp = {
        .ping = weft_chan_new(sizeof(int64_t), 0),
        .pong = weft_chan_new(sizeof(int64_t), 0),
    };
    if (pp.ping == NULL || pp.pong == NULL) {
        weft_chan_free(pp.ping);
        weft_chan_free(pp.pong);
        return -ENOMEM;
    }
    weft_task *ponger = weft_spawn(pong_task, &pp);
    if (ponger == NULL) {
        int err = -errno;
        weft_chan_free(pp.ping);
        weft_chan_free(pp.pong);
        return err;
    }
    int err = 0;
    int64_t v = 0;
    int64_t start = now_ns();
    for (int64_t i = 0; i < n && err == 0; i++) {
        err = weft_chan_send(pp.ping, &v);
        if (err == 0)
            err = weft_chan_recv(pp.pong, &v);
    }
    double secs = seconds_since(start);
    weft_chan_close(pp.ping);
    /* If the loop stopped early the ponger may be stuck sending. */
    weft_chan_close(pp.pong);
    first_error(&err, weft_join(ponger));
    weft_chan_free(pp.ping);
    weft_chan_free(pp.pong);

    emit("pingpong", n, secs, "\"ns_per_op\":%.1f,\"ok\":%s", secs * 1e9 / (double)n,
         json_bool(err == 0 && v == n));
    return err;
}

/* ------------------------------------------------------------- select */

struct select_feed {
    weft_chan *c;
    int64_t n;
};

/* Sends 0..n-1 on c, then closes it. */
static int select_feeder(void *arg)
{
    struct select_feed *f = arg;
    for (int64_t i = 0; i < f->n; i++) {
        int r = weft_chan_send(f->c, &i);
        if (r != 0)
            return r;
    }
    weft_chan_close(f->c);
    return 0;
}

/* N selects over two rendezvous channels, one of which a sender task
 * keeps ready (Go's select over two unbuffered channels, one fed by a
 * goroutine); ns per select, each completing one receive. */
static int bench_select(void *arg)
{
    int64_t n = *(int64_t *)arg;
    weft_chan *quiet = weft_chan_new(sizeof(int64_t), 0);
    struct select_feed f = {.c = weft_chan_new(sizeof(int64_t), 0), .n = n};
    if (quiet == NULL || f.c == NULL) {
        weft_chan_free(quiet);
        weft_chan_free(f.c);
        return -ENOMEM;
    }
    weft_task *feeder = weft_spawn(select_feeder, &f);
    if (feeder == NULL) {
        int err = -errno;
        weft_chan_free(quiet);
        weft_chan_free(f.c);
        return err;
    }
    int err = 0;
    int64_t v = 0, sum = 0, got = 0;
    int64_t start = now_ns();
    for (int64_t i = 0; i < n && err == 0; i++) {
        weft_sel cs[2] = {weft_sel_recv(quiet, &v), weft_sel_recv(f.c, &v)};
        int k = weft_select(cs, 2, -1);
        if (k != 1 || cs[1].result != 0)
            err = k < 0 ? k : -EIO;
        sum += v;
        got++;
    }
    double secs = seconds_since(start);
    weft_chan_close(f.c);
    first_error(&err, weft_join(feeder));
    weft_chan_free(quiet);
    weft_chan_free(f.c);
    emit("select", n, secs, "\"ns_per_op\":%.1f,\"ok\":%s", secs * 1e9 / (double)n,
         json_bool(err == 0 && got == n && sum == n * (n - 1) / 2));
    return err;
}

/* ------------------------------------------------------------- timers */

/* splitmix64, seed 42: the peers' sequence of sleep durations. */
static uint64_t splitmix64_next(uint64_t *s)
{
    *s += UINT64_C(0x9E3779B97F4A7C15);
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Status 1 flags a sleep that ended before its duration: a correctness
 * check (a timer must never fire early), not a speed limit. */
static int timer_task(void *arg)
{
    int64_t dur_ns = *(int64_t *)arg;
    int64_t start = now_ns();
    int r = weft_sleep(dur_ns);
    if (r != 0)
        return r;
    return now_ns() - start < dur_ns ? 1 : 0;
}

static int bench_timers(void *arg)
{
    int64_t n = *(int64_t *)arg;
    int64_t *durs = malloc((size_t)n * sizeof *durs);
    weft_task **handles = malloc((size_t)n * sizeof *handles);
    if (durs == NULL || handles == NULL) {
        free(durs);
        free(handles);
        return -ENOMEM;
    }
    uint64_t rng = 42, max_us = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t us = splitmix64_next(&rng) % 100001;
        if (us > max_us)
            max_us = us;
        durs[i] = WEFT_USEC(us);
    }
    int err = 0;
    int64_t n_spawned = 0, n_early = 0;
    int64_t start = now_ns();
    for (int64_t i = 0; i < n; i++) {
        handles[i] = weft_spawn(timer_task, &durs[i]);
        if (handles[i] == NULL) {
            err = -errno;
            break;
        }
        n_spawned++;
    }
    for (int64_t i = 0; i < n_spawned; i++) {
        int status = weft_join(handles[i]);
        first_error(&err, status);
        n_early += status == 1;
    }
    double secs = seconds_since(start);
    free(durs);
    free(handles);

    emit("timers", n, secs, "\"max_sleep_s\":%.6f,\"early_wakeups\":%" PRId64 ",\"ok\":%s",
         (double)max_us / 1e6, n_early, json_bool(err == 0 && n_early == 0));
    return err;
}

/* ------------------------------------------------------- timers_churn */

/* A server bounds each request with a timeout: CHURN_PAIRS pairs of tasks
 * pass a counter back and forth through channels of capacity 1, and every
 * receive runs in its own deadline scope of CHURN_TIMEOUT, which never
 * expires. A receive that must wait arms the scope's timer, and the send
 * that ends the wait cancels it. ns per scoped receive (Tokio's twin:
 * tokio::time::timeout around the same receive, bench/peers/rust). */
#define CHURN_PAIRS 8
#define CHURN_TIMEOUT WEFT_SEC(1)

struct churn {
    weft_chan *ping, *pong;
    int64_t n;    /* round trips */
    int64_t last; /* the pinger's last value back */
};

static int churn_recv(weft_chan *c, int64_t *v)
{
    weft_deadline d;
    int r = weft_deadline_enter(&d, CHURN_TIMEOUT);
    if (r != 0)
        return r;
    r = weft_chan_recv(c, v);
    int r2 = weft_deadline_leave(&d);
    return r != 0 ? r : r2;
}

static int churn_ponger(void *arg)
{
    struct churn *c = arg;
    int64_t v;
    for (int64_t i = 0; i < c->n; i++) {
        int r = churn_recv(c->ping, &v);
        if (r == 0) {
            v++;
            r = weft_chan_send(c->pong, &v);
        }
        if (r != 0)
            return r;
    }
    return 0;
}

static int churn_pinger(void *arg)
{
    struct churn *c = arg;
    int64_t v = 0;
    for (int64_t i = 0; i < c->n; i++) {
        int r = weft_chan_send(c->ping, &v);
        if (r == 0)
            r = churn_recv(c->pong, &v);
        if (r != 0)
            return r;
    }
    c->last = v;
    return 0;
}

/* N round trips in all (two scoped receives each), split among the pairs. */
static int bench_timers_churn(void *arg)
{
    int64_t n = *(int64_t *)arg;
    struct churn c[CHURN_PAIRS];
    weft_task *t[2 * CHURN_PAIRS];
    int err = 0, n_tasks = 0;
    for (int p = 0; p < CHURN_PAIRS; p++) {
        c[p].ping = weft_chan_new(sizeof(int64_t), 1);
        c[p].pong = weft_chan_new(sizeof(int64_t), 1);
        c[p].n = n / CHURN_PAIRS + (p < n % CHURN_PAIRS);
        c[p].last = -1;
        if (c[p].ping == NULL || c[p].pong == NULL)
            err = -ENOMEM;
    }
    int64_t start = now_ns();
    for (int p = 0; p < CHURN_PAIRS && err == 0; p++) {
        weft_fn fns[2] = {churn_ponger, churn_pinger};
        for (int k = 0; k < 2 && err == 0; k++) {
            t[n_tasks] = weft_spawn(fns[k], &c[p]);
            if (t[n_tasks] == NULL)
                err = -errno;
            else
                n_tasks++;
        }
    }
    if (err != 0) /* a pair left half-spawned would wait for its partner */
        for (int p = 0; p < CHURN_PAIRS; p++) {
            weft_chan_close(c[p].ping);
            weft_chan_close(c[p].pong);
        }
    for (int i = 0; i < n_tasks; i++)
        first_error(&err, weft_join(t[i]));
    double secs = seconds_since(start);
    bool ok = err == 0;
    for (int p = 0; p < CHURN_PAIRS; p++) {
        ok = ok && c[p].last == c[p].n;
        weft_chan_free(c[p].ping);
        weft_chan_free(c[p].pong);
    }
    emit("timers_churn", n, secs, "\"ns_per_op\":%.1f,\"pairs\":%d,\"ok\":%s",
         secs * 1e9 / (double)(2 * n), CHURN_PAIRS, json_bool(ok));
    return err;
}

/* -------------------------------------------------------- idle_memory */

struct idle {
    weft_event *never; /* never set: every task parks on it for good */
    atomic_long n_parked;
    atomic_long n_woken; /* must stay 0 */
};

static int idle_task(void *arg)
{
    struct idle *idle = arg;
    /* Relaxed: the counter only tells the root when to measure; nothing
     * is published through it. */
    atomic_fetch_add_explicit(&idle->n_parked, 1, memory_order_relaxed);
    int r = weft_event_wait(idle->never);
    atomic_fetch_add_explicit(&idle->n_woken, 1, memory_order_relaxed);
    return r;
}

/* Never returns: like the peers it exits with the tasks still parked,
 * because tearing 100k of them down is not what is measured. */
static int bench_idle_memory(void *arg)
{
    int64_t n = *(int64_t *)arg;
    static struct idle idle;
    idle.never = weft_event_new();
    if (idle.never == NULL)
        return -ENOMEM;
    long before = proc_status_kib("VmRSS");
    int err = 0;
    int64_t n_spawned = 0;
    int64_t start = now_ns();
    for (int64_t i = 0; i < n; i++) {
        weft_task *t = weft_spawn(idle_task, &idle);
        if (t == NULL) {
            err = -errno;
            break;
        }
        /* No handle kept: the peers keep none either. */
        weft_detach(t);
        n_spawned++;
    }
    while (atomic_load_explicit(&idle.n_parked, memory_order_relaxed) < n_spawned) {
        int r = weft_sleep(WEFT_MSEC(1));
        if (r != 0) {
            first_error(&err, r);
            break;
        }
    }
    /* The counter moves just before each task parks: let the last ones
     * actually get there. */
    first_error(&err, weft_sleep(WEFT_MSEC(50)));
    double secs = seconds_since(start);
    long after = proc_status_kib("VmRSS");
    long woken = atomic_load_explicit(&idle.n_woken, memory_order_relaxed);

    emit("idle_memory", n, secs, "\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,\"per_task_kib\":%.4f,\"ok\":%s",
         before, after, (double)(after - before) / (double)n, json_bool(err == 0 && woken == 0));
    if (err != 0)
        fprintf(stderr, "weft-bench: idle_memory: %s\n", weft_strerror(err));
    _exit(err == 0 ? 0 : 1);
}

/* -------------------------------------------------- blocking_executor */

#define BLOCKING_CONCURRENCY 100

struct blocking_call {
    int64_t x;
    int64_t out;
};

/* The trivial function of the peers; called through a pointer on a pool
 * thread, so it cannot be inlined away. */
static int blocking_work(void *arg)
{
    struct blocking_call *call = arg;
    call->out = call->x * 31 + 7;
    return 0;
}

struct blocking_bench {
    int64_t per_task;
    atomic_llong sum;
};

static int blocking_task(void *arg)
{
    struct blocking_bench *b = arg;
    int64_t local = 0;
    for (int64_t i = 0; i < b->per_task; i++) {
        struct blocking_call call = {.x = i};
        int r = weft_run_blocking(blocking_work, &call);
        if (r != 0)
            return r;
        local += call.out;
    }
    /* Relaxed: the root reads the sum only after joining every task,
     * and the join orders it. */
    atomic_fetch_add_explicit(&b->sum, local, memory_order_relaxed);
    return 0;
}

static int bench_blocking_executor(void *arg)
{
    int64_t n = *(int64_t *)arg;
    struct blocking_bench b = {.per_task = n / BLOCKING_CONCURRENCY};
    atomic_init(&b.sum, 0);
    weft_task *handles[BLOCKING_CONCURRENCY];
    int err = 0, n_spawned = 0;
    int64_t start = now_ns();
    for (int c = 0; c < BLOCKING_CONCURRENCY; c++) {
        handles[c] = weft_spawn(blocking_task, &b);
        if (handles[c] == NULL) {
            err = -errno;
            break;
        }
        n_spawned++;
    }
    for (int c = 0; c < n_spawned; c++)
        first_error(&err, weft_join(handles[c]));
    double secs = seconds_since(start);

    int64_t total = b.per_task * BLOCKING_CONCURRENCY;
    int64_t want = 0;
    for (int64_t i = 0; i < b.per_task; i++)
        want += i * 31 + 7;
    want *= BLOCKING_CONCURRENCY;
    long long sum = atomic_load_explicit(&b.sum, memory_order_relaxed);
    emit("blocking_executor", total, secs, "\"concurrency\":%d,\"ops_per_s\":%.0f,\"ok\":%s",
         BLOCKING_CONCURRENCY, (double)total / secs, json_bool(err == 0 && sum == want));
    return err;
}


/* ----------------------------------------------------------- udp_echo */

/* N round trips of a 64-byte datagram: UDP_CLIENTS client tasks, each with
 * its own socket, send and wait for the echo; one server socket served by
 * one task per worker (each recvfrom / sendto on the shared socket). A
 * datagram lost on the way (loopback drops only when a buffer overflows)
 * is resent after a second and counted. */
#define UDP_CLIENTS 32
#define UDP_PAYLOAD 64

struct udp_bench {
    int server_fd;
    struct sockaddr_in server_addr;
    int64_t per_client;
    atomic_llong echoed, lost;
};

static int udp_server_task(void *arg)
{
    struct udp_bench *b = arg;
    char buf[2048];
    for (;;) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = weft_recvfrom(b->server_fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n < 0)
            return n == -ECANCELED ? 0 : (int)n;
        ssize_t m = weft_sendto(b->server_fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
        if (m < 0 && m != -ECANCELED)
            return (int)m;
    }
}

static int udp_client_task(void *arg)
{
    struct udp_bench *b = arg;
    int fd = weft_udp_bind("127.0.0.1", "0");
    if (fd < 0)
        return fd;
    char out[UDP_PAYLOAD], in[2048];
    memset(out, 'u', sizeof out);
    int rc = 0;
    int64_t ok = 0, lost = 0;
    for (int64_t i = 0; i < b->per_client && rc == 0; i++) {
        memcpy(out, &i, sizeof i); /* the answer must be to this request */
        for (;;) {
            ssize_t n = weft_sendto(fd, out, sizeof out, 0, (struct sockaddr *)&b->server_addr,
                                    sizeof b->server_addr);
            if (n < 0) {
                rc = (int)n;
                break;
            }
            weft_deadline d;
            weft_deadline_enter(&d, WEFT_SEC(1));
            do
                n = weft_recvfrom(fd, in, sizeof in, 0, NULL, NULL);
            while (n == (ssize_t)sizeof out && memcmp(in, &i, sizeof i) != 0); /* a late echo */
            weft_deadline_leave(&d);
            if (n == (ssize_t)sizeof out) {
                ok++;
                break;
            }
            if (n != -ETIMEDOUT) {
                rc = n < 0 ? (int)n : -EIO;
                break;
            }
            lost++;
        }
    }
    weft_close(fd);
    /* Relaxed: read after the joins, which order them. */
    atomic_fetch_add_explicit(&b->echoed, ok, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->lost, lost, memory_order_relaxed);
    return rc;
}

static int bench_udp_echo(void *arg)
{
    int64_t n = *(int64_t *)arg;
    struct udp_bench b = {.per_client = n / UDP_CLIENTS};
    atomic_init(&b.echoed, 0);
    atomic_init(&b.lost, 0);
    b.server_fd = weft_udp_bind("127.0.0.1", "0");
    if (b.server_fd < 0)
        return b.server_fd;
    socklen_t sl = sizeof b.server_addr;
    getsockname(b.server_fd, (struct sockaddr *)&b.server_addr, &sl);
    unsigned n_servers = current_workers();
    weft_task *servers[256], *clients[UDP_CLIENTS];
    if (n_servers > 256)
        n_servers = 256;
    int err = 0;
    unsigned n_srv = 0, n_cli = 0;
    for (; n_srv < n_servers; n_srv++)
        if ((servers[n_srv] = weft_spawn(udp_server_task, &b)) == NULL)
            break;
    int64_t start = now_ns();
    for (; n_cli < UDP_CLIENTS; n_cli++)
        if ((clients[n_cli] = weft_spawn(udp_client_task, &b)) == NULL)
            break;
    if (n_srv < n_servers || n_cli < UDP_CLIENTS)
        err = -ENOMEM;
    for (unsigned i = 0; i < n_cli; i++)
        first_error(&err, weft_join(clients[i]));
    double secs = seconds_since(start);
    for (unsigned i = 0; i < n_srv; i++)
        weft_cancel(servers[i]);
    for (unsigned i = 0; i < n_srv; i++)
        first_error(&err, weft_join(servers[i]));
    weft_close(b.server_fd);
    int64_t total = b.per_client * UDP_CLIENTS;
    long long echoed = atomic_load_explicit(&b.echoed, memory_order_relaxed);
    emit("udp_echo", total, secs,
         "\"clients\":%d,\"servers\":%u,\"payload\":%d,\"lost\":%lld,\"datagrams_per_s\":%.0f,"
         "\"ok\":%s",
         UDP_CLIENTS, n_srv, UDP_PAYLOAD, (long long)atomic_load(&b.lost),
         (double)echoed / secs, json_bool(err == 0 && echoed == total));
    return err;
}

/* ---------------------------------------------------------- file_read */

/* FILE_TASKS tasks, each with its own descriptor of one FILE_MIB file
 * (made first, so it is in the page cache), read it again and again in
 * 64 KiB chunks with weft_read until N chunks have been read in all. Each
 * read runs on the blocking pool. */
#define FILE_TASKS 64
#define FILE_CHUNK 65536
#define FILE_MIB 16

struct file_bench {
    const char *path;
    int64_t per_task;
    atomic_llong bytes;
};

static int file_task(void *arg)
{
    struct file_bench *b = arg;
    int fd = open(b->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char *buf = malloc(FILE_CHUNK);
    int rc = buf ? 0 : -ENOMEM;
    /* Bytes, not calls, as the peers count (Tokio's File hands out at
     * most 16 KiB per read). */
    long long bytes = 0, want = (long long)b->per_task * FILE_CHUNK;
    while (bytes < want && rc == 0) {
        size_t room = want - bytes < FILE_CHUNK ? (size_t)(want - bytes) : FILE_CHUNK;
        ssize_t n = weft_read(fd, buf, room);
        if (n < 0) {
            rc = (int)n;
        } else if (n == 0) {
            if (lseek(fd, 0, SEEK_SET) < 0) /* the page cache's: no disk wait */
                rc = -errno;
        } else {
            bytes += n;
        }
    }
    free(buf);
    weft_close(fd);
    /* Relaxed: read after the joins. */
    atomic_fetch_add_explicit(&b->bytes, bytes, memory_order_relaxed);
    return rc;
}

static int bench_file_read(void *arg)
{
    int64_t n = *(int64_t *)arg;
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/weft-bench-file-%d", dir && *dir ? dir : "/tmp", (int)getpid());
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    char *chunk = malloc(1 << 20);
    if (!chunk) {
        close(fd);
        unlink(path);
        return -ENOMEM;
    }
    memset(chunk, 'f', 1 << 20);
    int err = 0;
    for (int i = 0; i < FILE_MIB && err == 0; i++)
        if (write(fd, chunk, 1 << 20) != 1 << 20)
            err = -EIO;
    free(chunk);
    close(fd);
    struct file_bench b = {.path = path, .per_task = n / FILE_TASKS};
    atomic_init(&b.bytes, 0);
    weft_task *tasks[FILE_TASKS];
    int n_spawned = 0;
    int64_t start = now_ns();
    for (; err == 0 && n_spawned < FILE_TASKS; n_spawned++)
        if ((tasks[n_spawned] = weft_spawn(file_task, &b)) == NULL)
            err = -ENOMEM;
    for (int i = 0; i < n_spawned; i++)
        first_error(&err, weft_join(tasks[i]));
    double secs = seconds_since(start);
    unlink(path);
    int64_t total = b.per_task * FILE_TASKS;
    long long bytes = atomic_load_explicit(&b.bytes, memory_order_relaxed);
    emit("file_read", total, secs,
         "\"tasks\":%d,\"chunk\":%d,\"file_mib\":%d,\"mib_per_s\":%.1f,\"ok\":%s", FILE_TASKS,
         FILE_CHUNK, FILE_MIB, (double)bytes / (1 << 20) / secs,
         json_bool(err == 0 && bytes == total * FILE_CHUNK));
    return err;
}

/* ------------------------------------------------------------ servers */

static const char http_response[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                    "Content-Length: 13\r\n\r\nHello, World!";
#define HTTP_RESPONSE_LEN (sizeof http_response - 1)

static void set_nodelay(int fd)
{
    int one = 1;
    /* Best effort, as in the peers: a failure only costs latency. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* A connection costs one stack page (4 KiB), its task struct (128 bytes)
 * and its descriptor's state (128 bytes) while it waits: the read buffer
 * is taken only once the socket is readable and handed back after the
 * echo, so it is not on the task's stack (where 4 KiB would touch a second
 * page per connection) nor held by an idle connection. See io.h, "Memory
 * per connection". */
#define ECHO_BUF 4096

/* A one-buffer cache per worker thread in front of malloc, whose 4 KiB
 * and 12 KiB blocks miss its own per-thread cache (malloc + free cost 400
 * instructions a request, a third of the server's own). Not inlined, so
 * that the thread-local slot is looked up afresh on every call: a task may
 * move to another worker at every suspension point. */
static __thread void *spare_echo, *spare_http;

static __attribute__((noinline)) void *buf_take(void **(*slot)(void), size_t size)
{
    void **s = slot();
    void *b = *s;
    if (b == NULL)
        return malloc(size);
    *s = NULL;
    return b;
}

static __attribute__((noinline)) void buf_give(void **(*slot)(void), void *b)
{
    void **s = slot();
    if (*s == NULL)
        *s = b;
    else
        free(b);
}

static __attribute__((noinline)) void **echo_slot(void) { return &spare_echo; }
static __attribute__((noinline)) void **http_slot(void) { return &spare_http; }

static int echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    for (;;) {
        if (weft_wait_fd(fd, WEFT_READABLE) < 0)
            break;
        char *buf = buf_take(echo_slot, ECHO_BUF);
        if (buf == NULL)
            break;
        ssize_t n = weft_read(fd, buf, ECHO_BUF);
        if (n > 0 && weft_write(fd, buf, (size_t)n) < 0)
            n = -1;
        buf_give(echo_slot, buf);
        if (n <= 0)
            break;
    }
    weft_close(fd);
    return 0;
}

/* Offset of the first "\r\n\r\n" in buf[0..len), or -1. */
static ssize_t find_header_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 4 <= len; i++) {
        const char *p = memchr(buf + i, '\r', len - i);
        if (p == NULL)
            return -1;
        i = (size_t)(p - buf);
        if (i + 4 <= len && memcmp(p, "\r\n\r\n", 4) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/* The peers' minimal keep-alive HTTP/1.1: every "\r\n\r\n"-terminated
 * request (no bodies) gets the fixed response; pipelined requests are
 * answered in one write. The buffers are taken when the socket is
 * readable and handed back once no partial request is left in them, as
 * in echo_conn: one stack page per idle connection. */
struct http_bufs {
    char in[8192];
    char out[4096];
};

static int http_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    struct http_bufs *b = NULL;
    size_t len = 0;
    for (;;) {
        if (b == NULL) {
            if (weft_wait_fd(fd, WEFT_READABLE) < 0)
                break;
            if ((b = buf_take(http_slot, sizeof *b)) == NULL)
                break;
        }
        if (len == sizeof b->in)
            break; /* an 8 KiB request head without an end: drop the client */
        ssize_t n = weft_read(fd, b->in + len, sizeof b->in - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        size_t out_len = 0, consumed = 0;
        ssize_t end;
        while ((end = find_header_end(b->in + consumed, len - consumed)) >= 0) {
            if (out_len + HTTP_RESPONSE_LEN > sizeof b->out) {
                if (weft_write(fd, b->out, out_len) < 0)
                    goto done;
                out_len = 0;
            }
            memcpy(b->out + out_len, http_response, HTTP_RESPONSE_LEN);
            out_len += HTTP_RESPONSE_LEN;
            consumed += (size_t)end + 4;
        }
        if (consumed > 0) {
            len -= consumed;
            memmove(b->in, b->in + consumed, len);
        }
        if (out_len > 0 && weft_write(fd, b->out, out_len) < 0)
            break;
        if (len == 0) {
            buf_give(http_slot, b);
            b = NULL;
        }
    }
done:
    if (b != NULL)
        buf_give(http_slot, b);
    weft_close(fd);
    return 0;
}

struct server {
    const char *port;
    weft_fn conn_fn;
    int lfd; /* the shared listener (WEFT_BENCH_ACCEPT=single|shared) */
};

/* Accepts on lfd and spawns a task per connection; runs until the process
 * is killed (SIGTERM/SIGINT keep their default action). */
static int accept_loop(struct server *srv, int lfd)
{
    for (;;) {
        int fd = weft_accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (fd == -ECANCELED || fd == -EBADF)
                break;
            /* Out of descriptors or memory: back off instead of spinning
             * on a listener that stays readable. */
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM)
                weft_sleep(WEFT_MSEC(10));
            continue;
        }
        set_nodelay(fd);
        weft_task *t = weft_spawn(srv->conn_fn, (void *)(intptr_t)fd);
        if (t == NULL) {
            weft_close(fd);
            continue;
        }
        weft_detach(t);
    }
    return 0;
}

static int shared_acceptor(void *arg)
{
    struct server *srv = arg;
    return accept_loop(srv, srv->lfd);
}

/* One SO_REUSEPORT listener of its own: the kernel spreads connections
 * over the listeners. */
static int reuseport_acceptor(void *arg)
{
    struct server *srv = arg;
    int lfd = weft_tcp_listen_flags("127.0.0.1", srv->port, SOMAXCONN, WEFT_LISTEN_REUSEPORT);
    if (lfd < 0) {
        fprintf(stderr, "weft-bench: listen on 127.0.0.1:%s: %s\n", srv->port, weft_strerror(lfd));
        return lfd;
    }
    int rc = accept_loop(srv, lfd);
    weft_close(lfd);
    return rc;
}

/* Accept strategy, WEFT_BENCH_ACCEPT: "single" (default: one accept loop),
 * "shared" (one loop per worker on one listener) or "reuseport" (one
 * SO_REUSEPORT listener and loop per worker). With the benchmarks' long
 * connections the three measure the same; with a new connection per
 * request (a connect-churn client, 2 cores) they measured the same too
 * (about 20k connections/s each), so the default stays "single". */
static int park_bystanders(void);

static int serve(void *arg)
{
    struct server *srv = arg;
    const char *mode = getenv("WEFT_BENCH_ACCEPT");
    int pr = park_bystanders();
    if (pr < 0) {
        fprintf(stderr, "weft-bench: WEFT_BENCH_PARKED: %s\n", weft_strerror(pr));
        return pr;
    }
    unsigned n = weft_runtime_workers(weft_runtime_current());
    if (mode && strcmp(mode, "reuseport") == 0) {
        weft_task *t[WEFT_MAX_WORKERS];
        unsigned k = 0;
        for (; k < n; k++)
            if ((t[k] = weft_spawn(reuseport_acceptor, srv)) == NULL)
                break;
        int rc = k ? 0 : -errno;
        for (unsigned i = 0; i < k; i++) {
            int r = weft_join(t[i]);
            if (r < 0 && rc == 0)
                rc = r;
        }
        return rc;
    }
    srv->lfd = weft_tcp_listen("127.0.0.1", srv->port, SOMAXCONN);
    if (srv->lfd < 0) {
        fprintf(stderr, "weft-bench: listen on 127.0.0.1:%s: %s\n", srv->port,
                weft_strerror(srv->lfd));
        return srv->lfd;
    }
    int rc = 0;
    if (mode && strcmp(mode, "shared") == 0) {
        weft_task *t[WEFT_MAX_WORKERS];
        unsigned k = 0;
        for (; k < n; k++)
            if ((t[k] = weft_spawn(shared_acceptor, srv)) == NULL)
                break;
        for (unsigned i = 0; i < k; i++)
            weft_join(t[i]);
    } else {
        rc = accept_loop(srv, srv->lfd);
    }
    weft_close(srv->lfd);
    return rc;
}

static int run_server(const char *port, weft_fn conn_fn)
{
    /* A peer that closes mid-write must cost an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);
    struct server srv = {.port = port, .conn_fn = conn_fn};
    int r = weft_run(serve, &srv);
    if (r < 0) {
        fprintf(stderr, "weft-bench: server: %s\n", weft_strerror(r));
        return 1;
    }
    return 0;
}

/* ----------------------------------------------------------- idle_cost */

/* What idle workers cost: one task spins for a second without a
 * suspension point while the other workers have nothing to do; then every
 * task sleeps for a second. Reports, for each phase, the CPU seconds the
 * process used per second beyond the spinner's own thread, and the times
 * per second each idle worker went to sleep (each such sleep ended in a
 * wake-up). Ideal: 0 CPU and 0 wake-ups besides the one timer. */
#define IDLE_COST_PHASE_NS INT64_C(1000000000)

static double cpu_seconds_self(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds_thread(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t total_parks(const weft_stats *st)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < st->n_workers; i++)
        n += st->worker[i].parks;
    return n;
}

static int idle_cost_spinner(void *arg)
{
    double *spin_cpu = arg;
    double c0 = cpu_seconds_thread();
    int64_t end = now_ns() + IDLE_COST_PHASE_NS;
    while (now_ns() < end)
        ; /* no suspension point */
    *spin_cpu = cpu_seconds_thread() - c0;
    return 0;
}

static int bench_idle_cost(void *arg)
{
    (void)arg;
    weft_runtime *rt = weft_runtime_current();
    unsigned workers = weft_runtime_workers(rt);
    static weft_stats st0, st1, st2;
    /* Let start-up settle. */
    int rc = weft_sleep(WEFT_MSEC(50));
    if (rc < 0)
        return rc;
    /* Phase 1: one spinner. */
    double spin_cpu = 0;
    weft_runtime_stats(rt, &st0);
    double c0 = cpu_seconds_self();
    int64_t t0 = now_ns();
    weft_task *t = weft_spawn(idle_cost_spinner, &spin_cpu);
    if (!t)
        return -errno;
    rc = weft_join(t);
    if (rc < 0)
        return rc;
    double secs1 = (double)(now_ns() - t0) / 1e9;
    double c1 = cpu_seconds_self();
    weft_runtime_stats(rt, &st1);
    /* Phase 2: everything asleep (this task, for a second). */
    rc = weft_sleep(IDLE_COST_PHASE_NS);
    if (rc < 0)
        return rc;
    double secs2 = (double)(now_ns() - t0) / 1e9 - secs1;
    double c2 = cpu_seconds_self();
    weft_runtime_stats(rt, &st2);
    unsigned idle = workers > 1 ? workers - 1 : 1;
    double extra1 = (c1 - c0 - spin_cpu) / secs1;
    double wake1 = (double)(total_parks(&st1) - total_parks(&st0)) / idle / secs1;
    double extra2 = (c2 - c1) / secs2;
    double wake2 = (double)(total_parks(&st2) - total_parks(&st1)) / workers / secs2;
    emit("idle_cost", workers, secs1 + secs2,
         "\"workers\":%u,\"spin_cpu_s\":%.4f,\"extra_cpu_s_per_s\":%.5f,"
         "\"wakeups_per_idle_worker_per_s\":%.2f,\"asleep_extra_cpu_s_per_s\":%.5f,"
         "\"asleep_wakeups_per_worker_per_s\":%.2f,\"monitor_wakeups_per_s\":%.1f,"
         "\"ok\":%s",
         workers, spin_cpu, extra1, wake1, extra2, wake2,
         (double)(st2.monitor_wakeups - st0.monitor_wakeups) / (secs1 + secs2),
         json_bool(spin_cpu > 0));
    return 0;
}

/* --------------------------------------------------------------- main */

/* -------------------------------------------------- dump_cost */

/* N tasks parked three calls deep on one event, dumped with stacks
 * (weft_runtime_dump_ex) per task, as a summary, and as JSON, each into
 * a temporary file; the seconds of each dump, and whether every task
 * was still there and woke afterwards. */
struct dump_park {
    weft_event *ev;
    atomic_long parked;
};

static __attribute__((noinline)) int dump_park_3(struct dump_park *p)
{
    atomic_fetch_add_explicit(&p->parked, 1, memory_order_relaxed);
    int r = weft_event_wait(p->ev);
    __asm__ volatile("" ::: "memory");
    return r;
}

static __attribute__((noinline)) int dump_park_2(struct dump_park *p)
{
    volatile int r = dump_park_3(p);
    return r;
}

static int dump_park_1(void *arg)
{
    volatile int r = dump_park_2(arg);
    return r;
}

/* WEFT_BENCH_PARKED=N beside echo_server/http_server: N tasks parked three
 * calls deep for as long as the server runs, so that a dump taken under
 * load (WEFT_DUMP_SIGNAL=USR1, then kill -USR1) has a large runtime to
 * walk while the connections are served. Returns 0 or a negative errno. */
static int park_bystanders(void)
{
    const char *env = getenv("WEFT_BENCH_PARKED");
    if (env == NULL || *env == '\0')
        return 0;
    char *end;
    errno = 0;
    long long n = strtoll(env, &end, 10);
    if (errno != 0 || *end != '\0' || n < 0)
        return -EINVAL;
    static struct dump_park p;
    if ((p.ev = weft_event_new()) == NULL)
        return -errno;
    for (long long i = 0; i < n; i++) {
        weft_task *t = weft_spawn(dump_park_1, &p);
        if (t == NULL)
            return -errno;
        weft_detach(t);
    }
    while (atomic_load_explicit(&p.parked, memory_order_relaxed) < n) {
        int r = weft_sleep(WEFT_MSEC(1));
        if (r < 0)
            return r;
    }
    fprintf(stderr, "weft-bench: %lld tasks parked beside the server\n", n);
    return 0;
}

static double time_dump(weft_runtime *rt, unsigned flags, long *bytes)
{
    FILE *f = tmpfile();
    if (f == NULL)
        return -1;
    int64_t start = now_ns();
    weft_runtime_dump_ex(rt, f, flags);
    double secs = seconds_since(start);
    *bytes = ftell(f);
    fclose(f);
    return secs;
}

static int bench_dump_cost(void *arg)
{
    int64_t n = *(int64_t *)arg;
    static struct dump_park p;
    p.ev = weft_event_new();
    weft_task **t = malloc((size_t)n * sizeof *t);
    if (p.ev == NULL || t == NULL)
        return -ENOMEM;
    int err = 0;
    int64_t n_spawned = 0;
    for (int64_t i = 0; i < n; i++) {
        t[i] = weft_spawn(dump_park_1, &p);
        if (t[i] == NULL) {
            err = -errno;
            break;
        }
        n_spawned++;
    }
    while (atomic_load_explicit(&p.parked, memory_order_relaxed) < n_spawned)
        first_error(&err, weft_sleep(WEFT_MSEC(1)));
    first_error(&err, weft_sleep(WEFT_MSEC(50)));
    weft_runtime *rt = weft_runtime_current();
    long b_plain, b_stacks, b_summary, b_json;
    double plain = time_dump(rt, 0, &b_plain);
    double stacks = time_dump(rt, WEFT_DUMP_STACKS, &b_stacks);
    double summary = time_dump(rt, WEFT_DUMP_SUMMARY | WEFT_DUMP_STACKS, &b_summary);
    double json = time_dump(rt, WEFT_DUMP_JSON | WEFT_DUMP_STACKS, &b_json);
    weft_event_set(p.ev);
    for (int64_t i = 0; i < n_spawned; i++)
        first_error(&err, weft_join(t[i]));
    free(t);
    weft_event_free(p.ev);
    emit("dump_cost", n, stacks,
         "\"plain_s\":%.3f,\"stacks_s\":%.3f,\"summary_stacks_s\":%.3f,\"json_stacks_s\":%.3f,"
         "\"stacks_bytes\":%ld,\"summary_bytes\":%ld,\"ok\":%s",
         plain, stacks, summary, json, b_stacks, b_summary,
         json_bool(err == 0 && plain >= 0 && stacks >= 0 && summary >= 0 && json >= 0));
    (void)b_plain;
    (void)b_json;
    return err;
}

struct micro {
    const char *name;
    weft_fn fn;
    int64_t default_n;
    int64_t min_n;
};

static const struct micro micros[] = {
    /* N is the number of leaves, as for the peers: 10^6 leaves make
     * 1,111,111 tasks. */
    {"skynet", bench_skynet, 1000000, 1},
    {"spawn_join", bench_spawn_join, 1000000, 1},
    {"yield", bench_yield, 1000000, 1},
    {"pingpong", bench_pingpong, 1000000, 1},
    {"select", bench_select, 1000000, 1},
    {"timers", bench_timers, 100000, 1},
    {"timers_churn", bench_timers_churn, 1000000, 1},
    {"idle_memory", bench_idle_memory, 100000, 1},
    {"blocking_executor", bench_blocking_executor, 100000, BLOCKING_CONCURRENCY},
    {"dump_cost", bench_dump_cost, 100000, 1},
    /* Round trips; 64 KiB reads (32768: 2 GiB). */
    {"udp_echo", bench_udp_echo, 200000, UDP_CLIENTS},
    {"file_read", bench_file_read, 32768, FILE_TASKS},
};

static int usage(void)
{
    fprintf(stderr, "usage: weft-bench skynet [N] | spawn_join [N] | yield [N] | pingpong [N] | select [N]\n"
                    "                  | timers [N] | timers_churn [N] | idle_memory [N] | blocking_executor [N]\n"
                    "                  | dump_cost [N] | idle_cost [WORKERS] | udp_echo [N] | file_read [N]\n"
                    "                  | echo_server PORT | http_server PORT\n");
    return 2;
}

static int run_micro(const struct micro *m, const char *arg)
{
    int64_t n = m->default_n;
    if (arg != NULL) {
        char *end;
        errno = 0;
        long long v = strtoll(arg, &end, 10);
        if (errno != 0 || end == arg || *end != '\0' || v < m->min_n) {
            fprintf(stderr, "weft-bench: %s: N must be an integer >= %" PRId64 "\n", m->name, m->min_n);
            return 2;
        }
        n = v;
    }
    weft_runtime *rt = weft_runtime_new(NULL);
    if (rt == NULL) {
        fprintf(stderr, "weft-bench: runtime: %s\n", strerror(errno));
        return 1;
    }
    int r = weft_runtime_block_on(rt, m->fn, &n);
    weft_runtime_free(rt);
    if (r < 0) {
        fprintf(stderr, "weft-bench: %s: %s\n", m->name, weft_strerror(r));
        return 1;
    }
    return 0;
}

/* idle_cost takes a worker count, not N (default: WEFT_WORKERS, or one
 * per CPU). */
static int run_idle_cost(const char *arg)
{
    weft_options opt = {0};
    if (arg != NULL) {
        char *end;
        long v = strtol(arg, &end, 10);
        if (end == arg || *end != '\0' || v < 1 || v > WEFT_MAX_WORKERS) {
            fprintf(stderr, "weft-bench: idle_cost: WORKERS must be 1..%d\n", WEFT_MAX_WORKERS);
            return 2;
        }
        opt.workers = (unsigned)v;
    }
    weft_runtime *rt = weft_runtime_new(&opt);
    if (rt == NULL) {
        fprintf(stderr, "weft-bench: runtime: %s\n", strerror(errno));
        return 1;
    }
    int r = weft_runtime_block_on(rt, bench_idle_cost, NULL);
    weft_runtime_free(rt);
    if (r < 0) {
        fprintf(stderr, "weft-bench: idle_cost: %s\n", weft_strerror(r));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3)
        return usage();
    const char *bench = argv[1];
    if (strcmp(bench, "echo_server") == 0 || strcmp(bench, "http_server") == 0) {
        if (argc != 3)
            return usage();
        return run_server(argv[2], bench[0] == 'e' ? echo_conn : http_conn);
    }
    if (strcmp(bench, "idle_cost") == 0)
        return run_idle_cost(argc == 3 ? argv[2] : NULL);
    for (size_t i = 0; i < sizeof micros / sizeof micros[0]; i++) {
        if (strcmp(bench, micros[i].name) == 0)
            return run_micro(&micros[i], argc == 3 ? argv[2] : NULL);
    }
    fprintf(stderr, "weft-bench: unknown benchmark %s\n", bench);
    return usage();
}
