/* SPDX-License-Identifier: MIT */
/* A TCP echo server: one task accepts connections and spawns a task per
 * connection that writes back whatever it reads (asyncio's start_server
 * with a handle_echo coroutine, on plain descriptors). SIGINT or SIGTERM
 * shut it down cleanly: a task reads the signal from a signalfd and
 * cancels the accept loop; returning from main then lets weft_run cancel
 * the connections still open and wait for them, as asyncio.run does.
 *
 *   echo_server [PORT [HOST]]     default port 8888 on every address
 *
 * Prints "echo server listening on port PORT (pid N)" once it accepts
 * connections (PORT "0" picks a free one; the pid is the process to
 * signal), and a summary when it stops. Try it with `nc 127.0.0.1 8888`. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "demo.h"

#define NAME "echo"

struct server {
    const char *host, *port;
    int lfd, sigfd;
    weft_task *acceptor;
    atomic_uint open_conns;  /* connection tasks running */
    atomic_ulong n_conns;    /* connections accepted */
    atomic_ullong n_bytes;   /* bytes echoed */
};

struct conn {
    struct server *srv;
    int fd;
};

/* One connection: echo until the client closes, an error, or
 * cancellation (weft_read returns -ECANCELED at shutdown). */
static int handle_echo(void *arg)
{
    struct conn *c = arg;
    char buf[16384];
    for (;;) {
        ssize_t n = weft_read(c->fd, buf, sizeof buf);
        if (n <= 0)
            break;
        if (weft_write(c->fd, buf, (size_t)n) < 0)
            break;
        atomic_fetch_add_explicit(&c->srv->n_bytes, (unsigned long long)n,
                                  memory_order_relaxed);
    }
    weft_close(c->fd);
    atomic_fetch_sub_explicit(&c->srv->open_conns, 1, memory_order_relaxed);
    free(c);
    return 0; /* a client's error is not the server's failure */
}

static int accept_loop(void *arg)
{
    struct server *srv = arg;
    for (;;) {
        int fd = weft_accept(srv->lfd, NULL, NULL);
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            /* Out of descriptors or memory: the connection stays queued;
             * back off instead of retrying at once (see weft_accept). */
            int rc = weft_sleep(WEFT_MSEC(50));
            if (rc < 0)
                return rc;
            continue;
        }
        if (fd < 0)
            return fd; /* -ECANCELED at shutdown */
        struct conn *c = malloc(sizeof *c);
        if (!c) {
            weft_close(fd);
            continue;
        }
        /* Filled in before the spawn: with several workers the new task
         * may start on another one at once. */
        c->srv = srv;
        c->fd = fd;
        atomic_fetch_add_explicit(&srv->open_conns, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&srv->n_conns, 1, memory_order_relaxed);
        weft_task *t = weft_spawn(handle_echo, c);
        if (!t) {
            atomic_fetch_sub_explicit(&srv->open_conns, 1, memory_order_relaxed);
            free(c);
            weft_close(fd);
            continue;
        }
        weft_detach(t);
    }
}

/* Waits for SIGINT/SIGTERM, then cancels the accept loop. */
static int watch_signals(void *arg)
{
    struct server *srv = arg;
    struct signalfd_siginfo si;
    ssize_t n = weft_read(srv->sigfd, &si, sizeof si);
    if (n == (ssize_t)sizeof si)
        printf("got %s, shutting down\n", strsignal((int)si.ssi_signo));
    weft_cancel(srv->acceptor);
    return n < 0 ? (int)n : 0;
}

static int main_task(void *arg)
{
    struct server *srv = arg;
    srv->lfd = weft_tcp_listen(srv->host, srv->port, 0);
    if (srv->lfd < 0)
        return srv->lfd;
    struct sockaddr_in6 sa;
    socklen_t sl = sizeof sa;
    unsigned port = 0;
    if (getsockname(srv->lfd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin6_port); /* same offset in sockaddr_in */
    printf("%s server listening on port %u (pid %d); Ctrl-C stops it\n", NAME, port,
           (int)getpid());
    fflush(stdout);

    srv->acceptor = weft_spawn(accept_loop, srv);
    if (!srv->acceptor)
        return -errno;
    weft_task *watcher = weft_spawn(watch_signals, srv);
    if (!watcher) {
        int rc = -errno;
        weft_cancel(srv->acceptor);
        weft_join(srv->acceptor);
        return rc;
    }
    int rc = weft_join(srv->acceptor);
    /* The loop ends only by cancellation or a listener error. */
    weft_cancel(watcher);
    weft_join(watcher);
    weft_close(srv->lfd);
    printf("served %lu connections, %llu bytes; closing %u still open\n",
           atomic_load(&srv->n_conns), atomic_load(&srv->n_bytes),
           atomic_load(&srv->open_conns));
    return rc == -ECANCELED ? 0 : rc;
}

int main(int argc, char **argv)
{
    if (argc > 3) {
        fprintf(stderr, "usage: echo_server [PORT [HOST]]\n");
        return 2;
    }
    struct server srv = {
        .port = argc > 1 ? argv[1] : "8888",
        .host = argc > 2 ? argv[2] : NULL,
    };
    /* Block the signals in every thread (the runtime's threads inherit
     * this mask) and read them from a descriptor instead: no handler runs
     * on a worker in the middle of a task. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    srv.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (srv.sigfd < 0) {
        perror("signalfd");
        return EXIT_FAILURE;
    }
    int rc = weft_run(main_task, &srv);
    close(srv.sigfd);
    return demo_exit("echo_server", rc);
}
