/* SPDX-License-Identifier: MIT */
/* A service on a Unix-domain socket, as local daemons offer them (a
 * control socket): each line a client sends is answered with the line in
 * capitals and the client's number. A socket file left behind by a server
 * that died is replaced at start; one that a live server still listens on
 * is not (the second server refuses to start). "@name" listens in the
 * abstract namespace instead, with no file at all.
 *
 *   unix_service PATH                     server
 *   unix_service --client PATH LINE...    client: sends each LINE, prints
 *                                         each answer
 *
 * The server prints "unix service listening on PATH (pid N)" and, at
 * SIGINT or SIGTERM, a summary; it removes its socket file when it stops. */
#define _GNU_SOURCE 1
#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"
#include "serve.h"

struct service {
    const char *path;
    int lfd;
    atomic_ulong clients, lines;
};

struct conn {
    struct service *svc;
    int fd;
    unsigned long number;
};

static int handle_client(void *arg)
{
    struct conn *c = arg;
    weft_reader *r = weft_reader_new(c->fd, 4096);
    char out[4200];
    while (r) {
        const char *line;
        ssize_t n = weft_reader_line(r, &line);
        if (n <= 0 && n != -ENOBUFS)
            break;
        int len;
        if (n == -ENOBUFS) {
            len = snprintf(out, sizeof out, "client %lu: line too long\n", c->number);
        } else {
            size_t k = (size_t)n;
            if (line[k - 1] == '\n')
                k--;
            len = snprintf(out, sizeof out, "client %lu: ", c->number);
            for (size_t i = 0; i < k; i++)
                out[len++] = (char)toupper((unsigned char)line[i]);
            out[len++] = '\n';
            atomic_fetch_add(&c->svc->lines, 1);
        }
        if (weft_write(c->fd, out, (size_t)len) < 0)
            break;
    }
    weft_reader_free(r);
    weft_close(c->fd);
    free(c);
    return 0;
}

static int accept_loop(void *arg)
{
    struct service *svc = arg;
    for (;;) {
        int fd = weft_accept(svc->lfd, NULL, NULL);
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
        c->svc = svc;
        c->fd = fd;
        c->number = atomic_fetch_add(&svc->clients, 1) + 1;
        weft_task *t = weft_spawn(handle_client, c);
        if (!t) {
            weft_close(fd);
            free(c);
            continue;
        }
        weft_detach(t);
    }
}

static int server_main(void *arg)
{
    struct service *svc = arg;
    /* Before the "listening" line: a SIGINT sent once it shows is ours. */
    int rc = serve_signals_arm();
    if (rc < 0)
        return rc;
    svc->lfd = weft_unix_listen(svc->path, 0);
    if (svc->lfd < 0)
        return svc->lfd;
    printf("unix service listening on %s (pid %d); Ctrl-C stops it\n", svc->path, (int)getpid());
    fflush(stdout);
    rc = serve_until_signal_wait(accept_loop, svc);
    weft_close(svc->lfd);
    if (svc->path[0] != '@')
        unlink(svc->path);
    printf("served %lu clients, %lu lines\n", atomic_load(&svc->clients),
           atomic_load(&svc->lines));
    return rc;
}

struct client {
    const char *path;
    char **lines;
    int n;
};

static int client_main(void *arg)
{
    struct client *cl = arg;
    int fd = weft_unix_connect(cl->path);
    if (fd < 0)
        return fd;
    weft_reader *r = weft_reader_new(fd, 4200);
    int rc = r ? 0 : -ENOMEM;
    for (int i = 0; i < cl->n && rc == 0; i++) {
        char msg[4097];
        int len = snprintf(msg, sizeof msg, "%s\n", cl->lines[i]);
        if (len < 0 || (size_t)len >= sizeof msg) {
            rc = -EINVAL;
            break;
        }
        ssize_t n = weft_write(fd, msg, (size_t)len);
        const char *line;
        if (n >= 0)
            n = weft_reader_line(r, &line);
        if (n <= 0)
            rc = n < 0 ? (int)n : -ECONNRESET;
        else
            printf("%.*s", (int)n, line);
    }
    weft_reader_free(r);
    weft_close(fd);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--client") == 0) {
        struct client cl = {.path = argv[2], .lines = argv + 3, .n = argc - 3};
        return demo_exit("unix_service", weft_run(client_main, &cl));
    }
    if (argc != 2) {
        fprintf(stderr, "usage: unix_service PATH | unix_service --client PATH LINE...\n");
        return 2;
    }
    struct service svc = {.path = argv[1]};
    int rc = weft_run(server_main, &svc);
    return demo_exit("unix_service", rc);
}
