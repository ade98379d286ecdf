/* SPDX-License-Identifier: MIT */
/* A UDP echo server and its client (asyncio's DatagramProtocol echo
 * examples): the server sends every datagram back to where it came from;
 * the client sends each argument as one datagram and prints the answer,
 * resending after a timeout (UDP may lose datagrams).
 *
 *   udp_echo [PORT [HOST]]                  server; default port 9999, any address
 *   udp_echo --client HOST PORT MESSAGE...  client
 *
 * The server prints "udp echo server listening on port PORT (pid N)" (PORT
 * "0" picks one) and, at SIGINT or SIGTERM, a summary. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "demo.h"
#include "serve.h"

struct server {
    const char *host, *port;
    int fd;
    unsigned long datagrams, bytes;
};

static int echo_loop(void *arg)
{
    struct server *srv = arg;
    char buf[65536];
    for (;;) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = weft_recvfrom(srv->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n < 0)
            return (int)n; /* -ECANCELED at shutdown */
        /* A full socket buffer or an unreachable sender costs this one
         * answer, not the server. */
        if (weft_sendto(srv->fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl) >= 0) {
            srv->datagrams++;
            srv->bytes += (unsigned long)n;
        }
    }
}

static int server_main(void *arg)
{
    struct server *srv = arg;
    /* Before the "listening" line: a SIGINT sent once it shows is ours. */
    int rc = serve_signals_arm();
    if (rc < 0)
        return rc;
    srv->fd = weft_udp_bind(srv->host, srv->port);
    if (srv->fd < 0)
        return srv->fd;
    printf("udp echo server listening on port %u (pid %d); Ctrl-C stops it\n",
           serve_port(srv->fd), (int)getpid());
    fflush(stdout);
    rc = serve_until_signal_wait(echo_loop, srv);
    weft_close(srv->fd);
    printf("served %lu datagrams, %lu bytes\n", srv->datagrams, srv->bytes);
    return rc;
}

struct client {
    const char *host, *port;
    char **msgs;
    int n;
};

/* The server's address (numeric or looked up on the blocking pool). */
struct lookup {
    const char *host, *port;
    struct addrinfo *res;
    int gai;
};

static int lookup_blocking(void *arg)
{
    struct lookup *l = arg;
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM};
    l->gai = getaddrinfo(l->host, l->port, &hints, &l->res);
    return 0;
}

static int client_main(void *arg)
{
    struct client *c = arg;
    struct lookup l = {.host = c->host, .port = c->port};
    int rc = weft_run_blocking(lookup_blocking, &l);
    if (rc < 0)
        return rc;
    if (l.gai != 0) {
        fprintf(stderr, "udp_echo: %s: %s\n", c->host, gai_strerror(l.gai));
        return -ENOENT;
    }
    int fd = weft_udp_bind(l.res->ai_family == AF_INET6 ? "::" : "0.0.0.0", "0");
    if (fd < 0) {
        freeaddrinfo(l.res);
        return fd;
    }
    for (int i = 0; i < c->n && rc == 0; i++) {
        size_t len = strlen(c->msgs[i]);
        char buf[65536];
        ssize_t n = -ETIMEDOUT;
        /* Three tries, half a second each: a lost datagram is resent. */
        for (int attempt = 0; attempt < 3 && n == -ETIMEDOUT; attempt++) {
            n = weft_sendto(fd, c->msgs[i], len, 0, l.res->ai_addr, l.res->ai_addrlen);
            if (n < 0)
                break;
            weft_deadline d;
            weft_deadline_enter(&d, WEFT_MSEC(500));
            n = weft_recvfrom(fd, buf, sizeof buf, 0, NULL, NULL);
            weft_deadline_leave(&d);
        }
        if (n < 0)
            rc = (int)n;
        else
            printf("%.*s\n", (int)n, buf);
    }
    weft_close(fd);
    freeaddrinfo(l.res);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--client") == 0) {
        if (argc < 5) {
            fprintf(stderr, "usage: udp_echo --client HOST PORT MESSAGE...\n");
            return 2;
        }
        struct client c = {.host = argv[2], .port = argv[3], .msgs = argv + 4, .n = argc - 4};
        return demo_exit("udp_echo", weft_run(client_main, &c));
    }
    if (argc > 3) {
        fprintf(stderr, "usage: udp_echo [PORT [HOST]] | udp_echo --client HOST PORT MESSAGE...\n");
        return 2;
    }
    struct server srv = {.port = argc > 1 ? argv[1] : "9999", .host = argc > 2 ? argv[2] : NULL};
    int rc = weft_run(server_main, &srv);
    return demo_exit("udp_echo", rc);
}
