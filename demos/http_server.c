/* SPDX-License-Identifier: MIT */
/* A small HTTP/1.1 server answering "Hello, World!" to every request, with
 * keep-alive and pipelining: a task per connection, as an asyncio server
 * would have a coroutine per client. It parses the request line and the
 * headers it needs (Connection, Content-Length, Transfer-Encoding), skips
 * request bodies, and answers HTTP/1.0 clients too. SIGINT or SIGTERM stop
 * it cleanly: a task waits for them with weft_signal_wait (serve.h) and
 * cancels the accept loop; no signal mask to set in main.
 *
 *   http_server [PORT [HOST]]     default port 8080 on every address
 *
 * Try it with `curl -v http://127.0.0.1:8080/` or
 * `wrk -c100 -d5s http://127.0.0.1:8080/`. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "demo.h"
#include "serve.h"

#define NAME "http"

#define HEAD_MAX 8192 /* request line + headers */
#define OUT_MAX 16384 /* responses batched for pipelined requests */

static const char body[] = "Hello, World!";

struct server {
    const char *host, *port;
    int lfd;
    atomic_uint open_conns;
    atomic_ulong n_conns, n_requests;
};

struct conn {
    struct server *srv;
    int fd;
    char in[HEAD_MAX];
    size_t in_len;
    char out[OUT_MAX];
    size_t out_len;
};

/* What a request asks of us. */
struct request {
    bool head;           /* HEAD: no body in the answer */
    bool keep_alive;
    long long body_len;  /* Content-Length of the request, to skip */
    int error;           /* 0, or an HTTP status to answer and close with */
};

/* Case-insensitive search for token in the comma-separated value v[0..n). */
static bool has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i + tl <= n; i++)
        if (strncasecmp(v + i, token, tl) == 0)
            return true;
    return false;
}

/* Parses the head in buf[0..len) (ending before "\r\n\r\n"). */
static void parse_head(const char *buf, size_t len, struct request *r)
{
    memset(r, 0, sizeof *r);
    const char *eol = memchr(buf, '\r', len);
    size_t line = eol ? (size_t)(eol - buf) : len;
    const char *sp1 = memchr(buf, ' ', line);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', line - (size_t)(sp1 + 1 - buf)) : NULL;
    if (!sp1 || !sp2 || sp1 == buf) {
        r->error = 400;
        return;
    }
    const char *ver = sp2 + 1;
    size_t ver_len = line - (size_t)(ver - buf);
    if (ver_len == 8 && memcmp(ver, "HTTP/1.1", 8) == 0)
        r->keep_alive = true;
    else if (ver_len == 8 && memcmp(ver, "HTTP/1.0", 8) == 0)
        r->keep_alive = false;
    else {
        r->error = 505;
        return;
    }
    r->head = sp1 - buf == 4 && memcmp(buf, "HEAD", 4) == 0;
    /* Header lines: "Name: value\r\n". */
    size_t i = line + 2;
    while (i < len) {
        const char *h = buf + i;
        const char *e = memchr(h, '\r', len - i);
        size_t hl = e ? (size_t)(e - h) : len - i;
        const char *colon = memchr(h, ':', hl);
        if (colon) {
            size_t nl = (size_t)(colon - h);
            const char *v = colon + 1;
            size_t vl = hl - nl - 1;
            while (vl && (*v == ' ' || *v == '\t')) {
                v++;
                vl--;
            }
            if (nl == 10 && strncasecmp(h, "Connection", 10) == 0) {
                if (has_token(v, vl, "close"))
                    r->keep_alive = false;
                else if (has_token(v, vl, "keep-alive"))
                    r->keep_alive = true;
            } else if (nl == 14 && strncasecmp(h, "Content-Length", 14) == 0) {
                char num[24];
                size_t k = vl < sizeof num - 1 ? vl : sizeof num - 1;
                memcpy(num, v, k);
                num[k] = '\0';
                char *end;
                r->body_len = strtoll(num, &end, 10);
                if (end == num || r->body_len < 0)
                    r->error = 400;
            } else if (nl == 17 && strncasecmp(h, "Transfer-Encoding", 17) == 0) {
                r->error = 501; /* chunked request bodies: not here */
            }
        }
        i += hl + 2;
    }
}

static int flush_out(struct conn *c)
{
    if (c->out_len == 0)
        return 0;
    ssize_t n = weft_write(c->fd, c->out, c->out_len);
    c->out_len = 0;
    return n < 0 ? (int)n : 0;
}

/* Appends one response; returns 0 or a negative errno. */
static int respond(struct conn *c, int status, bool close_after, bool head)
{
    char hdr[256];
    const char *reason = status == 200 ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 431 ? "Request Header Fields Too Large"
                         : status == 501 ? "Not Implemented"
                                         : "HTTP Version Not Supported";
    const char *text = status == 200 ? body : reason;
    size_t text_len = strlen(text);
    int hl = snprintf(hdr, sizeof hdr,
                      "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                      "Content-Length: %zu\r\n%s\r\n",
                      status, reason, text_len, close_after ? "Connection: close\r\n" : "");
    size_t need = (size_t)hl + (head ? 0 : text_len);
    if (c->out_len + need > sizeof c->out) {
        int rc = flush_out(c);
        if (rc < 0)
            return rc;
    }
    memcpy(c->out + c->out_len, hdr, (size_t)hl);
    c->out_len += (size_t)hl;
    if (!head) {
        memcpy(c->out + c->out_len, text, text_len);
        c->out_len += text_len;
    }
    atomic_fetch_add_explicit(&c->srv->n_requests, 1, memory_order_relaxed);
    return 0;
}

static void *find_end(const char *buf, size_t len)
{
    return memmem(buf, len, "\r\n\r\n", 4);
}

/* One connection: answer every complete request in what has arrived,
 * write the answers in one go, read more. */
static int handle_http(void *arg)
{
    struct conn *c = arg;
    long long skip = 0; /* request body bytes still to discard */
    bool open = true;
    while (open) {
        ssize_t n = weft_read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
        if (n <= 0)
            break;
        c->in_len += (size_t)n;
        size_t pos = 0;
        for (;;) {
            if (skip > 0) {
                size_t k = c->in_len - pos < (size_t)skip ? c->in_len - pos : (size_t)skip;
                pos += k;
                skip -= (long long)k;
                if (skip > 0)
                    break;
            }
            char *end = find_end(c->in + pos, c->in_len - pos);
            if (!end) {
                if (pos == 0 && c->in_len == sizeof c->in) {
                    respond(c, 431, true, false);
                    open = false;
                }
                break;
            }
            struct request r;
            parse_head(c->in + pos, (size_t)(end - (c->in + pos)), &r);
            pos = (size_t)(end - c->in) + 4;
            if (r.error) {
                respond(c, r.error, true, false);
                open = false;
                break;
            }
            if (respond(c, 200, !r.keep_alive, r.head) < 0) {
                open = false;
                break;
            }
            skip = r.body_len;
            if (!r.keep_alive) {
                open = false;
                break;
            }
        }
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
        if (flush_out(c) < 0)
            break;
    }
    flush_out(c);
    weft_close(c->fd);
    atomic_fetch_sub_explicit(&c->srv->open_conns, 1, memory_order_relaxed);
    free(c);
    return 0;
}

static int accept_loop(void *arg)
{
    struct server *srv = arg;
    for (;;) {
        int fd = weft_accept(srv->lfd, NULL, NULL);
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            int rc = weft_sleep(WEFT_MSEC(50)); /* back off; see weft_accept */
            if (rc < 0)
                return rc;
            continue;
        }
        if (fd < 0)
            return fd;
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = malloc(sizeof *c);
        if (!c) {
            weft_close(fd);
            continue;
        }
        /* Filled in before the spawn: with several workers the new task
         * may start on another one at once. */
        c->srv = srv;
        c->fd = fd;
        c->in_len = c->out_len = 0;
        atomic_fetch_add_explicit(&srv->open_conns, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&srv->n_conns, 1, memory_order_relaxed);
        weft_task *t = weft_spawn(handle_http, c);
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
    int rc = serve_until_signal_wait(accept_loop, srv);
    weft_close(srv->lfd);
    printf("served %lu requests on %lu connections; closing %u still open\n",
           atomic_load(&srv->n_requests), atomic_load(&srv->n_conns),
           atomic_load(&srv->open_conns));
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 3) {
        fprintf(stderr, "usage: http_server [PORT [HOST]]\n");
        return 2;
    }
    struct server srv = {
        .port = argc > 1 ? argv[1] : "8080",
        .host = argc > 2 ? argv[2] : NULL,
    };
    int rc = weft_run(main_task, &srv);
    return demo_exit("http_server", rc);
}
