/* SPDX-License-Identifier: MIT */
/* A TCP proxy built on weft_copy: each accepted connection is joined to a
 * new connection to the target, and two copies move the bytes, one per
 * direction. The end of one direction is passed on (shutdown of the write
 * side) while the other goes on, so half-closed protocols work; a
 * direction that moves nothing for IDLE seconds ends the connection.
 *
 *   tcp_proxy PORT HOST TARGET_HOST TARGET_PORT [IDLE_SECONDS]
 *
 * Listens on HOST:PORT (PORT "0" picks one; default idle 60 s), prints
 * "tcp proxy listening on port PORT (pid N)", and at SIGINT or SIGTERM a
 * summary. Try: echo_server 7000 & tcp_proxy 8000 127.0.0.1 127.0.0.1 7000 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "demo.h"
#include "serve.h"

struct proxy {
    const char *host, *port, *target_host, *target_port;
    int64_t idle_ns;
    int lfd;
    atomic_ulong conns, idle_closed;
    atomic_ullong bytes_up, bytes_down;
    atomic_uint open_conns;
};

struct conn {
    struct proxy *px;
    int client, server;
    ssize_t up; /* client -> server result */
};

static int copy_up(void *arg)
{
    struct conn *c = arg;
    c->up = weft_copy(c->client, c->server, c->px->idle_ns);
    if (c->up < 0) {
        /* Idle or broken: end the other direction too (its read of the
         * server now sees the end at once). */
        shutdown(c->server, SHUT_RDWR);
        shutdown(c->client, SHUT_RDWR);
    }
    return 0;
}

static int handle_conn(void *arg)
{
    struct conn *c = arg;
    struct proxy *px = c->px;
    c->server = weft_tcp_connect(px->target_host, px->target_port);
    if (c->server >= 0) {
        weft_task *up = weft_spawn(copy_up, c);
        if (up) {
            ssize_t down = weft_copy(c->server, c->client, px->idle_ns);
            /* This direction is over. If it failed (idle, reset,
             * cancelled), the other one has no reason to go on. */
            if (down < 0)
                weft_cancel(up);
            weft_join(up);
            if (c->up == -ETIMEDOUT || down == -ETIMEDOUT)
                atomic_fetch_add(&px->idle_closed, 1);
            if (c->up > 0)
                atomic_fetch_add(&px->bytes_up, (unsigned long long)c->up);
            if (down > 0)
                atomic_fetch_add(&px->bytes_down, (unsigned long long)down);
        }
        weft_close(c->server);
    }
    weft_close(c->client);
    atomic_fetch_sub(&px->open_conns, 1);
    free(c);
    return 0;
}

static int accept_loop(void *arg)
{
    struct proxy *px = arg;
    for (;;) {
        int fd = weft_accept(px->lfd, NULL, NULL);
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            int rc = weft_sleep(WEFT_MSEC(50)); /* back off: see weft_accept */
            if (rc < 0)
                return rc;
            continue;
        }
        if (fd < 0)
            return fd;
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            weft_close(fd);
            continue;
        }
        c->px = px;
        c->client = fd;
        c->server = -1;
        atomic_fetch_add(&px->conns, 1);
        atomic_fetch_add(&px->open_conns, 1);
        weft_task *t = weft_spawn(handle_conn, c);
        if (!t) {
            atomic_fetch_sub(&px->open_conns, 1);
            weft_close(fd);
            free(c);
            continue;
        }
        weft_detach(t);
    }
}

static int main_task(void *arg)
{
    struct proxy *px = arg;
    /* Before the "listening" line: a SIGINT sent once it shows is ours. */
    int rc = serve_signals_arm();
    if (rc < 0)
        return rc;
    px->lfd = weft_tcp_listen(px->host, px->port, 0);
    if (px->lfd < 0)
        return px->lfd;
    printf("tcp proxy listening on port %u (pid %d) for %s:%s; Ctrl-C stops it\n",
           serve_port(px->lfd), (int)getpid(), px->target_host, px->target_port);
    fflush(stdout);
    rc = serve_until_signal_wait(accept_loop, px);
    weft_close(px->lfd);
    printf("served %lu connections (%lu closed idle), %llu bytes up, %llu down; closing %u "
           "still open\n",
           atomic_load(&px->conns), atomic_load(&px->idle_closed), atomic_load(&px->bytes_up),
           atomic_load(&px->bytes_down), atomic_load(&px->open_conns));
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: tcp_proxy PORT HOST TARGET_HOST TARGET_PORT [IDLE_SECONDS]\n");
        return 2;
    }
    struct proxy px = {.port = argv[1], .host = argv[2], .target_host = argv[3],
                       .target_port = argv[4], .idle_ns = WEFT_SEC(60)};
    if (argc > 5) {
        char *end;
        double s = strtod(argv[5], &end);
        if (*end || !(s >= 0) || s > 1e9) {
            fprintf(stderr, "tcp_proxy: IDLE_SECONDS: want a number >= 0\n");
            return 2;
        }
        px.idle_ns = (int64_t)(s * 1e9);
    }
    int rc = weft_run(main_task, &px);
    return demo_exit("tcp_proxy", rc);
}
