/* SPDX-License-Identifier: MIT */
/* A line-protocol server built on weft_reader: one command per line, one
 * answer line per command, no hand-written buffering.
 *
 *   PING          -> PONG
 *   ECHO text     -> text
 *   ADD a b       -> a+b (integers)
 *   QUIT          -> BYE, and the server closes the connection
 *   anything else -> ERR unknown command
 *   a line over 256 bytes -> ERR line too long (and the next line is read)
 *
 *   line_server [PORT [HOST]]     default port 7777 on every address
 *
 * Prints "line server listening on port PORT (pid N)" and, at SIGINT or
 * SIGTERM (caught with weft_signal_wait), a summary. Try it with
 * `nc 127.0.0.1 7777`. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"
#include "serve.h"

#define LINE_MAX_BYTES 256

struct server {
    const char *host, *port;
    int lfd;
    atomic_ulong conns, commands;
    atomic_uint open_conns;
};

struct conn {
    struct server *srv;
    int fd;
};

/* Answers one command (line without its end); false for QUIT. */
static bool answer(const char *line, size_t len, char *out, size_t cap)
{
    if (len == 4 && memcmp(line, "PING", 4) == 0) {
        snprintf(out, cap, "PONG\n");
    } else if (len >= 5 && memcmp(line, "ECHO ", 5) == 0) {
        snprintf(out, cap, "%.*s\n", (int)(len - 5), line + 5);
    } else if (len >= 4 && memcmp(line, "ADD ", 4) == 0) {
        char tmp[LINE_MAX_BYTES + 1];
        memcpy(tmp, line, len);
        tmp[len] = '\0';
        long long a, b;
        char extra;
        if (sscanf(tmp + 4, "%lld %lld %c", &a, &b, &extra) == 2)
            snprintf(out, cap, "%lld\n", a + b);
        else
            snprintf(out, cap, "ERR usage: ADD a b\n");
    } else if (len == 4 && memcmp(line, "QUIT", 4) == 0) {
        snprintf(out, cap, "BYE\n");
        return false;
    } else {
        snprintf(out, cap, "ERR unknown command\n");
    }
    return true;
}

static int handle_conn(void *arg)
{
    struct conn *c = arg;
    weft_reader *r = weft_reader_new(c->fd, LINE_MAX_BYTES);
    char out[LINE_MAX_BYTES + 32];
    for (bool more = r != NULL; more;) {
        const char *line;
        ssize_t n = weft_reader_line(r, &line);
        if (n == -ENOBUFS) {
            snprintf(out, sizeof out, "ERR line too long\n");
        } else if (n <= 0) {
            break; /* end of stream, an error, or shutdown (-ECANCELED) */
        } else {
            size_t len = (size_t)n;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                len--;
            more = answer(line, len, out, sizeof out);
            atomic_fetch_add(&c->srv->commands, 1);
        }
        if (weft_write(c->fd, out, strlen(out)) < 0)
            break;
    }
    weft_reader_free(r);
    weft_close(c->fd);
    atomic_fetch_sub(&c->srv->open_conns, 1);
    free(c);
    return 0;
}

static int accept_loop(void *arg)
{
    struct server *srv = arg;
    for (;;) {
        int fd = weft_accept(srv->lfd, NULL, NULL);
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            int rc = weft_sleep(WEFT_MSEC(50));
            if (rc < 0)
                return rc;
            continue;
        }
        if (fd < 0)
            return fd;
        struct conn *c = malloc(sizeof *c);
        if (!c) {
            weft_close(fd);
            continue;
        }
        c->srv = srv;
        c->fd = fd;
        atomic_fetch_add(&srv->conns, 1);
        atomic_fetch_add(&srv->open_conns, 1);
        weft_task *t = weft_spawn(handle_conn, c);
        if (!t) {
            atomic_fetch_sub(&srv->open_conns, 1);
            weft_close(fd);
            free(c);
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
    printf("line server listening on port %u (pid %d); Ctrl-C stops it\n", serve_port(srv->lfd),
           (int)getpid());
    fflush(stdout);
    int rc = serve_until_signal_wait(accept_loop, srv);
    weft_close(srv->lfd);
    printf("served %lu connections, %lu commands; closing %u still open\n",
           atomic_load(&srv->conns), atomic_load(&srv->commands), atomic_load(&srv->open_conns));
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 3) {
        fprintf(stderr, "usage: line_server [PORT [HOST]]\n");
        return 2;
    }
    struct server srv = {.port = argc > 1 ? argv[1] : "7777", .host = argc > 2 ? argv[2] : NULL};
    int rc = weft_run(main_task, &srv);
    return demo_exit("line_server", rc);
}
