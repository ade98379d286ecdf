/* SPDX-License-Identifier: MIT */
/* A line-based TCP chat server: every line a client sends is broadcast to
 * every other client as "guest N: line".
 *
 * Each client has two tasks: its session task reads lines (weft_reader)
 * and posts them to one inbox channel; its writer task takes messages
 * from the client's own bounded queue (a channel of QUEUE_CAP messages)
 * and writes them to the socket. One broadcaster task takes each post
 * from the inbox and offers it to every other client's queue with
 * weft_chan_try_send, which never waits: a client whose queue is full
 * reads too slowly (its socket buffer is full too, and its writer is
 * stuck in weft_write), so it is DISCONNECTED at once (its queue closed,
 * its socket shut down) rather than allowed to hold up the broadcast or
 * lose messages silently. The server prints a line for each one dropped
 * and counts them in its summary.
 *
 * The registry of clients is a list under a weft mutex that is never held
 * across a wait: under it, the broadcaster only calls try_send, close and
 * shutdown(2), none of which waits.
 *
 * SIGINT or SIGTERM (weft_signal_wait, see serve.h) shut it down
 * gracefully: stop accepting, broadcast what is already in the inbox,
 * tell every client "* server shutting down", let the writers flush (at
 * most SHUTDOWN_GRACE_S seconds), close every connection, print
 * "served N clients, M messages, K slow clients dropped" and exit 0.
 *
 *   chat_server [PORT [HOST]]     default port 7000 on every address
 *
 * Prints "chat server listening on port PORT (pid N)" once it accepts
 * connections (PORT 0 picks a free one). Try it with two or more
 * `nc 127.0.0.1 7000`. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "demo.h"
#include "serve.h"

#define LINE_MAX_BYTES 256 /* longest line a client may send, '\n' included */
#define MSG_MAX (LINE_MAX_BYTES + 32) /* a line with its "guest N: " prefix */
/* Messages waiting for one client's writer. A client is judged slow when
 * that many pile up for it, so this is the burst (in messages) that a
 * client may fall behind by before it is cut: size it for the traffic. */
#define QUEUE_CAP 256
#define INBOX_CAP 64       /* posts waiting for the broadcaster */
#define WRITE_BATCH 8192   /* bytes a writer sends in one weft_write */
/* The kernel buffers a socket's unsent bytes; a small send buffer has a
 * client that stops reading fill its queue after a few dozen kilobytes
 * rather than megabytes (the kernel doubles the value asked for). */
#define SNDBUF_BYTES 16384
#define SHUTDOWN_GRACE_S 2.0
#define DROP_REPORT_MAX 16 /* dropped clients named per broadcast */

/* One message as it travels through the channels (copied by value: a
 * channel holds fixed-size elements, so nothing is shared or freed). */
struct msg {
    unsigned from; /* the guest who sent it (not sent back to them); 0: none */
    bool chat;     /* a guest's line (counted), not a server notice */
    unsigned short len;
    char text[MSG_MAX];
};

struct client {
    struct client *next; /* in the registry, under server.lock */
    struct server *srv;
    unsigned id;
    int fd;
    weft_chan *queue; /* struct msg, QUEUE_CAP: the broadcaster -> the writer */
};

struct server {
    const char *host, *port;
    int lfd;
    weft_chan *inbox; /* struct msg, INBOX_CAP: sessions -> the broadcaster */
    weft_mutex *lock; /* guards clients; never held across a wait */
    struct client *clients;
    unsigned next_id;
    atomic_uint open_clients; /* sessions not yet ended */
    atomic_bool shutting_down;
    weft_event *all_gone; /* set by the last session once shutting_down */
    atomic_ulong n_clients, n_messages, n_dropped;
};

/* Formats a message (printf-style) into *m. */
static void msg_format(struct msg *m, unsigned from, bool chat, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void msg_format(struct msg *m, unsigned from, bool chat, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(m->text, sizeof m->text, fmt, ap);
    va_end(ap);
    m->from = from;
    m->chat = chat;
    size_t len = n < 0 ? 0 : (size_t)n;
    m->len = (unsigned short)(len < sizeof m->text ? len : sizeof m->text - 1); /* truncated */
}

/* Removes c from the registry if it is there. Caller holds srv->lock. */
static void registry_remove(struct server *srv, struct client *c)
{
    for (struct client **p = &srv->clients; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            c->next = NULL;
            return;
        }
    }
}

/* Disconnects a slow client: no more messages for it (its queue closed,
 * so its writer stops), and its socket shut down, which wakes its writer
 * from the stuck weft_write (-EPIPE) and its session from weft_reader_line
 * (end of stream). The session then frees it. Caller holds srv->lock,
 * which keeps c->fd open (the session closes it only after removing c). */
static void client_cut(struct server *srv, struct client *c)
{
    registry_remove(srv, c);
    weft_chan_close(c->queue);
    shutdown(c->fd, SHUT_RDWR);
}

/* Takes each post from the inbox and offers it to every other client,
 * without ever waiting on one of them. Ends when the inbox is closed and
 * drained (shutdown). */
static int broadcaster(void *arg)
{
    struct server *srv = arg;
    struct msg m;
    int rc;
    while ((rc = weft_chan_recv(srv->inbox, &m)) == 0) {
        unsigned dropped[DROP_REPORT_MAX];
        size_t n_dropped = 0, n_unnamed = 0;
        if ((rc = weft_mutex_lock(srv->lock)) < 0)
            return rc;
        for (struct client *c = srv->clients, *next; c; c = next) {
            next = c->next; /* client_cut unlinks c */
            if (c->id == m.from)
                continue;
            int sent = weft_chan_try_send(c->queue, &m);
            if (sent == -EAGAIN) { /* queue full: a slow reader */
                client_cut(srv, c);
                atomic_fetch_add(&srv->n_dropped, 1);
                if (n_dropped < DROP_REPORT_MAX)
                    dropped[n_dropped++] = c->id;
                else
                    n_unnamed++;
            }
            /* -EPIPE: the client is leaving (its session closed the
             * queue and will remove it); nothing to do. */
        }
        weft_mutex_unlock(srv->lock);
        if (m.chat)
            atomic_fetch_add(&srv->n_messages, 1);
        /* Printed after the unlock: stdout may be a slow pipe. */
        for (size_t i = 0; i < n_dropped; i++)
            printf("guest %u dropped: its queue of %d messages was full\n", dropped[i],
                   QUEUE_CAP);
        if (n_unnamed > 0)
            printf("%zu more slow guests dropped\n", n_unnamed);
        if (n_dropped > 0)
            fflush(stdout);
        /* Let the writers this post woke run before offering them more
         * (they may share this worker): a queue should fill up only when
         * its client does not read, not because the broadcaster ran a
         * long burst first. */
        if ((rc = weft_yield()) < 0)
            return rc;
    }
    return rc == -EPIPE ? 0 : rc;
}

/* Writes what the client's queue holds until the queue is closed and
 * drained or the socket fails, then shuts the socket down, which ends the
 * session's read as well: the writer's end is the connection's end. Waits
 * for one message, then takes whatever else is already queued
 * (weft_chan_try_recv) into one write. */
static int writer(void *arg)
{
    struct client *c = arg;
    struct msg m;
    char out[WRITE_BATCH];
    /* Ends at -EPIPE (the queue closed and drained) or -ECANCELED. */
    while (weft_chan_recv(c->queue, &m) == 0) {
        size_t used = 0;
        do {
            memcpy(out + used, m.text, m.len);
            used += m.len;
        } while (used + MSG_MAX <= sizeof out && weft_chan_try_recv(c->queue, &m) == 0);
        if (weft_write(c->fd, out, used) < 0)
            break; /* the peer went away, or a cut: the client's end */
    }
    shutdown(c->fd, SHUT_RDWR);
    return 0; /* a client's failure is not the server's */
}

/* Strips the line end ("\n" or "\r\n"). */
static size_t chomp(const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    return len;
}

/* One client: reads its lines and posts them until it leaves, its writer
 * ends the connection (dropped, or shutdown), or the inbox closes. */
static int session(void *arg)
{
    struct client *c = arg;
    struct server *srv = c->srv;
    struct msg m;
    bool inbox_closed = false;

    weft_task *w = weft_spawn(writer, c);
    weft_reader *r = w ? weft_reader_new(c->fd, LINE_MAX_BYTES) : NULL;
    if (r) {
        printf("guest %u joined\n", c->id);
        fflush(stdout);
        msg_format(&m, c->id, false, "* guest %u joined\n", c->id);
        inbox_closed = weft_chan_send(srv->inbox, &m) == -EPIPE;
        msg_format(&m, 0, false, "* welcome, you are guest %u\n", c->id);
        weft_chan_try_send(c->queue, &m); /* best effort, as every notice */
    }
    while (r && !inbox_closed) {
        const char *line;
        ssize_t n = weft_reader_line(r, &line);
        if (n == -ENOBUFS) {
            msg_format(&m, 0, false, "* line too long (over %d bytes), not sent\n",
                       LINE_MAX_BYTES - 1);
            weft_chan_try_send(c->queue, &m); /* best effort */
            continue;
        }
        if (n <= 0)
            break; /* end of stream, a read error, or shut down by a cut */
        size_t len = chomp(line, (size_t)n);
        if (len == 0)
            continue;
        msg_format(&m, c->id, true, "guest %u: %.*s\n", c->id, (int)len, line);
        /* May wait while the inbox is full: that slows this sender only
         * (back-pressure), never the broadcast to the others. */
        int rc = weft_chan_send(srv->inbox, &m);
        if (rc == -EPIPE)
            inbox_closed = true;
        else if (rc < 0)
            break; /* -ECANCELED: weft_run is ending */
    }
    if (!inbox_closed) {
        /* The client left (or was cut): its writer sends what is queued,
         * then stops at the close. At shutdown (the inbox closed) main
         * sends the goodbye and closes the queue itself. */
        weft_chan_close(c->queue);
    }
    if (w)
        weft_join(w);
    weft_reader_free(r);

    /* Out of the registry before the close: the broadcaster and main touch
     * c->fd only under the lock while c is registered. Locking may fail
     * only if weft_run is cancelling us; remove it regardless then
     * (nothing else runs the registry at that point). */
    bool locked = weft_mutex_lock(srv->lock) == 0;
    registry_remove(srv, c);
    if (locked)
        weft_mutex_unlock(srv->lock);
    weft_close(c->fd);
    weft_chan_free(c->queue);
    unsigned id = c->id;
    free(c);

    printf("guest %u left\n", id);
    fflush(stdout);
    if (!inbox_closed) {
        msg_format(&m, id, false, "* guest %u left\n", id);
        weft_chan_send(srv->inbox, &m); /* -EPIPE once the inbox is closed: fine */
    }
    /* The last one out at shutdown wakes main (shutting_down is stored
     * before main reads open_clients, so one of the two sees the other). */
    if (atomic_fetch_sub(&srv->open_clients, 1) == 1 && atomic_load(&srv->shutting_down))
        weft_event_set(srv->all_gone);
    return 0;
}

static int accept_loop(void *arg)
{
    struct server *srv = arg;
    for (;;) {
        int fd = weft_accept(srv->lfd, NULL, NULL);
        if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
            int rc = weft_sleep(WEFT_MSEC(50)); /* see weft_accept */
            if (rc < 0)
                return rc;
            continue;
        }
        if (fd < 0)
            return fd; /* -ECANCELED at shutdown */
        int sndbuf = SNDBUF_BYTES;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        struct client *c = calloc(1, sizeof *c);
        if (c)
            c->queue = weft_chan_new(sizeof(struct msg), QUEUE_CAP);
        if (!c || !c->queue) {
            free(c);
            weft_close(fd);
            continue;
        }
        c->srv = srv;
        c->fd = fd;
        /* Registered here, before its task runs, so that the shutdown,
         * which starts once this loop has ended, sees every client. */
        int rc = weft_mutex_lock(srv->lock);
        if (rc < 0) {
            weft_chan_free(c->queue);
            free(c);
            weft_close(fd);
            return rc;
        }
        c->id = ++srv->next_id;
        c->next = srv->clients;
        srv->clients = c;
        weft_mutex_unlock(srv->lock);
        atomic_fetch_add(&srv->open_clients, 1);
        weft_task *t = weft_spawn(session, c);
        if (!t) {
            atomic_fetch_sub(&srv->open_clients, 1);
            bool locked = weft_mutex_lock(srv->lock) == 0; /* see session() */
            registry_remove(srv, c);
            if (locked)
                weft_mutex_unlock(srv->lock);
            weft_chan_free(c->queue);
            free(c);
            weft_close(fd);
            continue;
        }
        atomic_fetch_add(&srv->n_clients, 1);
        weft_detach(t);
    }
}

/* Waits for every session to end, at most timeout_ns; -ETIMEDOUT if some
 * are still running. */
static int wait_all_gone(struct server *srv, int64_t timeout_ns)
{
    weft_deadline d;
    int rc = weft_deadline_enter(&d, timeout_ns);
    if (rc < 0)
        return rc;
    rc = weft_event_wait(srv->all_gone);
    weft_deadline_leave(&d);
    return rc;
}

/* The graceful shutdown, once the accept loop has stopped. */
static int shut_down(struct server *srv, weft_task *bcast)
{
    /* Sessions posting from now on get -EPIPE and wait for their writer;
     * what was already posted is still broadcast before the goodbye. */
    weft_chan_close(srv->inbox);
    int rc = weft_join(bcast);
    if (rc < 0)
        return rc;

    atomic_store(&srv->shutting_down, true);
    struct msg bye;
    msg_format(&bye, 0, false, "* server shutting down\n");
    rc = weft_mutex_lock(srv->lock);
    if (rc < 0)
        return rc;
    for (struct client *c = srv->clients; c; c = c->next) {
        /* A full queue: too slow to hear it; the close still ends it. */
        weft_chan_try_send(c->queue, &bye);
        weft_chan_close(c->queue); /* its writer flushes, then shuts down */
    }
    weft_mutex_unlock(srv->lock);

    if (atomic_load(&srv->open_clients) == 0)
        return 0;
    rc = wait_all_gone(srv, demo_ns(SHUTDOWN_GRACE_S));
    if (rc != -ETIMEDOUT)
        return rc;
    /* A writer still stuck on a client that does not read: cut them all. */
    if ((rc = weft_mutex_lock(srv->lock)) < 0)
        return rc;
    unsigned stuck = 0;
    for (struct client *c = srv->clients; c; c = c->next, stuck++)
        shutdown(c->fd, SHUT_RDWR);
    weft_mutex_unlock(srv->lock);
    printf("cut %u clients that did not read the goodbye\n", stuck);
    fflush(stdout);
    return weft_event_wait(srv->all_gone);
}

static int main_task(void *arg)
{
    struct server *srv = arg;
    /* Signals armed before the "listening" line (serve.h). */
    srv->lfd = serve_listen(srv->host, srv->port);
    if (srv->lfd < 0)
        return srv->lfd;
    weft_task *bcast = weft_spawn(broadcaster, srv);
    if (!bcast) {
        int rc = -errno;
        weft_close(srv->lfd);
        return rc;
    }
    printf("chat server listening on port %u (pid %d); Ctrl-C stops it\n", serve_port(srv->lfd),
           (int)getpid());
    fflush(stdout);

    int rc = serve_until_signal_wait(accept_loop, srv); /* 0 after the signal */
    weft_close(srv->lfd); /* stop accepting: new clients are refused */
    int src = shut_down(srv, bcast);
    printf("served %lu clients, %lu messages, %lu slow clients dropped\n",
           atomic_load(&srv->n_clients), atomic_load(&srv->n_messages),
           atomic_load(&srv->n_dropped));
    return rc < 0 ? rc : src;
}

int main(int argc, char **argv)
{
    if (argc > 3) {
        fprintf(stderr, "usage: chat_server [PORT [HOST]]\n");
        return 2;
    }
    if (demo_init() < 0)
        return EXIT_FAILURE;
    struct server srv = {.port = argc > 1 ? argv[1] : "7000", .host = argc > 2 ? argv[2] : NULL};
    srv.inbox = weft_chan_new(sizeof(struct msg), INBOX_CAP);
    srv.lock = weft_mutex_new();
    srv.all_gone = weft_event_new();
    int rc = -ENOMEM;
    if (srv.inbox && srv.lock && srv.all_gone)
        rc = weft_run(main_task, &srv);
    weft_chan_free(srv.inbox);
    weft_mutex_free(srv.lock);
    weft_event_free(srv.all_gone);
    return demo_exit("chat_server", rc);
}
