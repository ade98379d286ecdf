/* SPDX-License-Identifier: MIT */
/* The headline demo: runs the same workloads several ways on this machine
 * and prints what each way gets, then writes the results as an SVG chart.
 *
 *   1. A TCP echo server: weft on 1..N workers, a thread-per-connection
 *      server and a single-threaded epoll loop, all loaded by the same
 *      built-in load generator (plain threads, blocking sockets).
 *   2. CPU work of uneven sizes split into many tasks on 1..N workers:
 *      speedup per worker count and the steals that balance it.
 *   3. Blocking calls (sleeps standing in for disk or legacy APIs) through
 *      weft_run_blocking versus called directly on the workers.
 *
 * Usage: throughput [--quick] [--seconds S] [--conns N] [--size B]
 *                   [--workers N] [--svg FILE]
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

/* ------------------------------------------------------------ options */

static struct {
    double seconds;   /* per echo measurement */
    int conns;        /* client connections */
    int size;         /* message bytes */
    unsigned workers; /* largest worker count tried */
    const char *svg;
    bool quick;
} opt = {.seconds = 2.0, .conns = 50, .size = 64, .workers = 0, .svg = "throughput.svg"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "throughput: %s: %s\n", what, strerror(err < 0 ? -err : err));
    exit(1);
}

/* ------------------------------------------------------------ results */

#define MAX_ROWS 64
struct row {
    char phase[16];  /* "echo", "cpu", "blocking" */
    char label[48];  /* what ran */
    double value;    /* the bar */
    char unit[16];
    char note[64];
};
static struct row rows[MAX_ROWS];
static int n_rows;

static void add_row(const char *phase, const char *label, double value, const char *unit,
                    const char *note)
{
    if (n_rows == MAX_ROWS)
        return;
    struct row *r = &rows[n_rows++];
    snprintf(r->phase, sizeof r->phase, "%s", phase);
    snprintf(r->label, sizeof r->label, "%s", label);
    r->value = value;
    snprintf(r->unit, sizeof r->unit, "%s", unit);
    snprintf(r->note, sizeof r->note, "%s", note ? note : "");
    printf("  %-34s %12.*f %-6s %s\n", r->label, r->value < 100 ? 2 : 0, r->value, r->unit,
           r->note);
    fflush(stdout);
}

/* ------------------------------------------------------------ load generator */

struct load {
    int port;
    _Atomic bool stop;
    _Atomic unsigned long requests;
    _Atomic int errors;
};

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
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* One client connection: send a message, wait for all of it back, repeat. */
static void *client_thread(void *arg)
{
    struct load *l = arg;
    int fd = connect_to(l->port);
    if (fd < 0) {
        atomic_fetch_add(&l->errors, 1);
        return NULL;
    }
    char *out = malloc((size_t)opt.size), *in = malloc((size_t)opt.size);
    memset(out, 'w', (size_t)opt.size);
    unsigned long done = 0;
    while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
        if (write(fd, out, (size_t)opt.size) != opt.size) {
            atomic_fetch_add(&l->errors, 1);
            break;
        }
        ssize_t got = 0;
        while (got < opt.size) {
            ssize_t r = read(fd, in + got, (size_t)(opt.size - got));
            if (r <= 0)
                break;
            got += r;
        }
        if (got != opt.size || memcmp(in, out, (size_t)opt.size) != 0) {
            atomic_fetch_add(&l->errors, 1);
            break;
        }
        done++;
    }
    atomic_fetch_add(&l->requests, done);
    close(fd);
    free(out);
    free(in);
    return NULL;
}

/* Loads 127.0.0.1:port for opt.seconds; returns requests per second. */
static double run_load(int port, int *errors)
{
    struct load l = {.port = port};
    pthread_t *th = calloc((size_t)opt.conns, sizeof *th);
    int started = 0;
    for (int i = 0; i < opt.conns; i++)
        if (pthread_create(&th[i], NULL, client_thread, &l) == 0)
            started++;
        else
            break;
    double t0 = now_s();
    usleep((useconds_t)(opt.seconds * 1e6));
    atomic_store(&l.stop, true);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double secs = now_s() - t0;
    free(th);
    *errors = atomic_load(&l.errors) + (opt.conns - started);
    return atomic_load(&l.requests) / secs;
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* ------------------------------------------------------------ weft echo server */

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
        if (fd < 0)
            continue;
        weft_task *t = weft_spawn(weft_conn, (void *)(intptr_t)fd);
        if (t)
            weft_detach(t);
        else
            weft_close(fd);
    }
    return 0;
}

static double echo_weft(unsigned workers, int *errors, uint64_t *steals)
{
    int port;
    int lfd = listen_any(&port);
    if (lfd < 0)
        die("listen", lfd);
    weft_options o = {.workers = workers};
    weft_runtime *rt = weft_runtime_new(&o);
    if (!rt)
        die("weft_runtime_new", errno);
    weft_task *acc = weft_spawn_on(rt, weft_accept_loop, (void *)(intptr_t)lfd);
    if (!acc)
        die("weft_spawn_on", errno);
    weft_detach(acc);
    double rps = run_load(port, errors);
    weft_stats st;
    memset(&st, 0, sizeof st);
    *steals = 0;
    if (weft_runtime_stats(rt, &st) == 0)
        for (unsigned i = 0; i < st.n_workers && i < WEFT_MAX_WORKERS; i++)
            *steals += st.worker[i].steals;
    weft_close(lfd);       /* wakes the accept loop with -EBADF */
    weft_runtime_free(rt); /* cancels the connections; they close their fds */
    return rps;
}

/* ------------------------------------------------------------ thread per connection */

struct tpc {
    int lfd;
    pthread_mutex_t lock;
    int fds[1024];
    int n_fds;
};

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
                return NULL;
            off += w;
        }
    }
    return NULL;
}

static void *tpc_accept(void *arg)
{
    struct tpc *s = arg;
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* the listener was shut down */
        }
        pthread_t th;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_mutex_lock(&s->lock);
        if (s->n_fds < 1024)
            s->fds[s->n_fds++] = fd;
        pthread_mutex_unlock(&s->lock);
        if (pthread_create(&th, &a, tpc_conn, (void *)(intptr_t)fd) != 0)
            close(fd);
        pthread_attr_destroy(&a);
    }
    return NULL;
}

static double echo_threads(int *errors)
{
    int port;
    struct tpc s = {.n_fds = 0};
    pthread_mutex_init(&s.lock, NULL);
    s.lfd = listen_any(&port);
    if (s.lfd < 0)
        die("listen", s.lfd);
    pthread_t acc;
    pthread_create(&acc, NULL, tpc_accept, &s);
    double rps = run_load(port, errors);
    shutdown(s.lfd, SHUT_RDWR);
    pthread_join(acc, NULL);
    /* The clients have closed; their server threads see EOF and exit. */
    close(s.lfd);
    pthread_mutex_lock(&s.lock);
    for (int i = 0; i < s.n_fds; i++)
        shutdown(s.fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&s.lock);
    usleep(20000);
    return rps;
}

/* ------------------------------------------------------------ one epoll loop */

struct loop {
    int lfd, efd;
    _Atomic bool stop;
};

static void *loop_main(void *arg)
{
    struct loop *l = arg;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->lfd};
    epoll_ctl(l->efd, EPOLL_CTL_ADD, l->lfd, &ev);
    struct epoll_event evs[128];
    char buf[4096];
    while (!atomic_load(&l->stop)) {
        int n = epoll_wait(l->efd, evs, 128, 50);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l->lfd) {
                int c;
                while ((c = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(l->efd, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                close(fd);
                continue;
            }
            /* Small echoes fit the socket buffer; a short write would need
             * a per-connection buffer, which this plain loop treats as an
             * error. */
            if (write(fd, buf, (size_t)r) != r)
                close(fd);
        }
    }
    return NULL;
}

static double echo_epoll(int *errors)
{
    int port;
    struct loop l = {.stop = false};
    l.lfd = listen_any(&port);
    if (l.lfd < 0)
        die("listen", l.lfd);
    /* The accept loop drains the backlog: the listener must not block. */
    fcntl(l.lfd, F_SETFL, fcntl(l.lfd, F_GETFL) | O_NONBLOCK);
    l.efd = epoll_create1(EPOLL_CLOEXEC);
    pthread_t th;
    pthread_create(&th, NULL, loop_main, &l);
    double rps = run_load(port, errors);
    atomic_store(&l.stop, true);
    pthread_join(th, NULL);
    close(l.efd);
    close(l.lfd);
    return rps;
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

static double cpu_phase(unsigned workers, struct cpu_run *r, uint64_t *steals)
{
    weft_options o = {.workers = workers};
    weft_runtime *rt = weft_runtime_new(&o);
    if (!rt)
        die("weft_runtime_new", errno);
    double t0 = now_s();
    int rc = weft_runtime_block_on(rt, cpu_main, r);
    double secs = now_s() - t0;
    if (rc < 0)
        die("cpu phase", rc);
    weft_stats st;
    memset(&st, 0, sizeof st);
    *steals = 0;
    if (weft_runtime_stats(rt, &st) == 0)
        for (unsigned i = 0; i < st.n_workers && i < WEFT_MAX_WORKERS; i++)
            *steals += st.worker[i].steals;
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

static int blk_main(void *arg)
{
    enum { TASKS = 32 };
    weft_task *t[TASKS];
    for (int i = 0; i < TASKS; i++)
        t[i] = weft_spawn(blk_task, arg);
    return weft_gather(t, TASKS, NULL);
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

static void write_svg(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "throughput: cannot write %s: %s\n", path, strerror(errno));
        return;
    }
    const int bar_h = 22, gap = 6, left = 300, width = 900, chart_w = width - left - 160;
    int y = 40;
    int height = 60 + n_rows * (bar_h + gap) + 3 * 40;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"13\">\n", width, height);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"10\" y=\"24\" font-size=\"18\" font-weight=\"bold\">weft throughput "
               "demo</text>\n");
    const char *phases[] = {"echo", "cpu", "blocking"};
    const char *titles[] = {"TCP echo: requests per second (higher is better)",
                            "CPU work in many uneven tasks: speedup over 1 worker",
                            "Blocking calls: wall time in ms (lower is better)"};
    const char *colors[] = {"#3b7dd8", "#2e9e5b", "#d9822b"};
    for (int p = 0; p < 3; p++) {
        double max = 0;
        for (int i = 0; i < n_rows; i++)
            if (!strcmp(rows[i].phase, phases[p]) && rows[i].value > max)
                max = rows[i].value;
        if (max <= 0)
            continue;
        y += 20;
        fprintf(f, "<text x=\"10\" y=\"%d\" font-weight=\"bold\">%s</text>\n", y, titles[p]);
        y += 10;
        for (int i = 0; i < n_rows; i++) {
            if (strcmp(rows[i].phase, phases[p]))
                continue;
            int w = (int)(rows[i].value / max * chart_w);
            fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", left - 8,
                    y + bar_h - 6, rows[i].label);
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n",
                    left, y, w > 1 ? w : 1, bar_h, colors[p]);
            fprintf(f, "<text x=\"%d\" y=\"%d\">%.*f %s</text>\n", left + w + 6, y + bar_h - 6,
                    rows[i].value < 10 ? 2 : 0, rows[i].value, rows[i].unit);
            y += bar_h + gap;
        }
    }
    fprintf(f, "</svg>\n");
    fclose(f);
}

/* ------------------------------------------------------------ main */

static void usage(void)
{
    fprintf(stderr, "usage: throughput [--quick] [--seconds S] [--conns N] [--size BYTES] "
                    "[--workers N] [--svg FILE]\n");
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
        } else if (!strcmp(a, "--seconds") && v) {
            opt.seconds = atof(v), i++;
        } else if (!strcmp(a, "--conns") && v) {
            opt.conns = atoi(v), i++;
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
    if (opt.seconds <= 0 || opt.conns < 1 || opt.conns > 1000 || opt.size < 1 ||
        opt.size > 65536)
        usage();
    signal(SIGPIPE, SIG_IGN);
    if (opt.workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        opt.workers = n > 0 ? (unsigned)n : 1;
    }
    printf("weft throughput demo: %u CPUs, %d connections, %d-byte messages, %.1f s per run\n",
           opt.workers, opt.conns, opt.size, opt.seconds);
    printf("(the load generator runs on the same machine, so every server shares the CPUs "
           "with it)\n\n");

    /* 1. echo */
    printf("[1/3] TCP echo: requests answered per second\n");
    double best_other = 0, best_weft = 0;
    char label[64], note[64];
    for (unsigned w = 1; w <= opt.workers; w++) {
        int err;
        uint64_t steals;
        double rps = echo_weft(w, &err, &steals);
        snprintf(label, sizeof label, "weft, %u worker%s", w, w > 1 ? "s" : "");
        snprintf(note, sizeof note, "%d errors, %llu steals", err, (unsigned long long)steals);
        add_row("echo", label, rps, "req/s", note);
        if (rps > best_weft)
            best_weft = rps;
    }
    {
        int err;
        double rps = echo_threads(&err);
        snprintf(note, sizeof note, "%d errors", err);
        add_row("echo", "thread per connection", rps, "req/s", note);
        if (rps > best_other)
            best_other = rps;
        rps = echo_epoll(&err);
        snprintf(note, sizeof note, "%d errors", err);
        add_row("echo", "single-threaded epoll loop", rps, "req/s", note);
        if (rps > best_other)
            best_other = rps;
    }
    printf("  -> weft's best is %.2fx the best plain-C server\n\n",
           best_other > 0 ? best_weft / best_other : 0);

    /* 2. CPU */
    printf("[2/3] CPU work: %s tasks of uneven size (10x spread), wall time and speedup\n",
           opt.quick ? "500" : "4000");
    struct cpu_run run = {.n = opt.quick ? 500 : 4000};
    run.jobs = calloc((size_t)run.n, sizeof *run.jobs);
    uint64_t seed = 42;
    for (int i = 0; i < run.n; i++) {
        seed = seed * 6364136223846793005ull + 1;
        run.jobs[i].iters = (opt.quick ? 2000 : 20000) * (1 + (seed >> 33) % 10);
    }
    double base = 0;
    for (unsigned w = 1; w <= opt.workers; w++) {
        uint64_t steals;
        double secs = cpu_phase(w, &run, &steals);
        if (w == 1)
            base = secs;
        snprintf(label, sizeof label, "%u worker%s", w, w > 1 ? "s" : "");
        snprintf(note, sizeof note, "%.3f s, %llu tasks stolen", secs,
                 (unsigned long long)steals);
        add_row("cpu", label, base / secs, "x", note);
    }
    free(run.jobs);
    printf("  -> 'x' is the speedup over one worker; steals show idle workers taking work\n\n");

    /* 3. blocking */
    int calls = opt.quick ? 2 : 5, us = opt.quick ? 2000 : 10000;
    printf("[3/3] Blocking calls: 32 tasks x %d calls of %d ms each\n", calls, us / 1000);
    double pool = blocking_phase(true, opt.workers, calls, us);
    double direct = blocking_phase(false, opt.workers, calls, us);
    add_row("blocking", "through weft_run_blocking", pool * 1000, "ms", "calls overlap");
    add_row("blocking", "directly on the workers", direct * 1000, "ms", "each call stalls a worker");
    printf("  -> the executor finishes %.1fx sooner\n\n", pool > 0 ? direct / pool : 0);

    write_svg(opt.svg);
    printf("chart written to %s (open it in a browser)\n", opt.svg);
    return 0;
}
