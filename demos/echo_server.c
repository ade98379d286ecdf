/* SPDX-License-Identifier: MIT */
/* A TCP echo server: one task accepts connections and spawns a task per
 * connection that writes back whatever it reads (asyncio's start_server
 * with a handle_echo coroutine, on plain descriptors). SIGINT or SIGTERM
 * shut it down cleanly: a task waits for them with weft_signal_wait (see
 * serve.h) and cancels the accept loop; returning from main then lets
 * weft_run cancel the connections still open and wait for them, as
 * asyncio.run does. No signal mask to set in main.
 *
 *   echo_server [PORT [HOST]]     default port 8888 on every address
 *
 * Prints "echo server listening on port PORT (pid N)" once it accepts
 * connections (PORT "0" picks a free one; the pid is the process to
 * signal), and a summary when it stops. Try it with `nc 127.0.0.1 8888`. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "demo.h"
#include "serve.h"

#define NAME "echo"

struct server {
    const char *host, *port;
    int lfd;
    atomic_uint open_conns;  /* connection tasks running */
    atomic_ulong n_conns;    /* connections accepted */
    atomic_ullong n_bytes;   /* bytes echoed */
};

struct conn {
    struct server *srv;
    int fd;
};

#define ECHO_BUF 16384

/* One connection: echo until the client closes, an error, or
 * cancellation (weft_wait_fd and weft_read return -ECANCELED at
 * shutdown). The buffer is taken only once there is something to read
 * and handed back after the echo: an idle connection holds one stack page
 * and no buffer (a 16 KiB buffer on the stack would touch five pages per
 * connection; include/weft/io.h, "Memory per connection"). */
static int handle_echo(void *arg)
{
    struct conn *c = arg;
    for (;;) {
        if (weft_wait_fd(c->fd, WEFT_READABLE) < 0)
            break;
        char *buf = malloc(ECHO_BUF);
        if (buf == NULL)
            break;
        ssize_t n = weft_read(c->fd, buf, ECHO_BUF);
        if (n > 0 && weft_write(c->fd, buf, (size_t)n) < 0)
            n = -1;
        free(buf);
        if (n <= 0)
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

static int main_task(void *arg)
{
    struct server *srv = arg;
    /* Signals armed before the "listening" line (serve.h). */
    srv->lfd = serve_listen(srv->host, srv->port);
    if (srv->lfd < 0)
        return srv->lfd;
    printf("%s server listening on port %u (pid %d); Ctrl-C stops it\n", NAME,
           serve_port(srv->lfd), (int)getpid());
    fflush(stdout);
    /* The accept loop ends only by the signal's cancellation (0 here) or a
     * listener error. */
    int rc = serve_until_signal_wait(accept_loop, srv);
    weft_close(srv->lfd);
    printf("served %lu connections, %llu bytes; closing %u still open\n",
           atomic_load(&srv->n_conns), atomic_load(&srv->n_bytes),
           atomic_load(&srv->open_conns));
    return rc;
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
    int rc = weft_run(main_task, &srv);
    return demo_exit("echo_server", rc);
}
