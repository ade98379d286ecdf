/* SPDX-License-Identifier: MIT */
/* What the server demos share (echo_server, http_server, udp_echo,
 * unix_service, tcp_proxy, line_server, chat_server): SIGINT/SIGTERM
 * awaited by a task with weft_signal_wait, which then cancels the server's
 * main loop, and the port a socket got.
 * Header-only, like demo.h. */
#ifndef WEFT_DEMO_SERVE_H
#define WEFT_DEMO_SERVE_H

#define _GNU_SOURCE 1
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft.h>

/* SIGINT and SIGTERM with weft_signal_wait: no mask to set in main.
 * serve_signals_arm() has weft catch SIGINT and SIGTERM from now on
 * (a wait under an expired deadline scope: a signal sent before the real
 * wait is kept pending), so call it before telling the world the server
 * is up; it also ignores SIGPIPE. Task only; 0 or a negative errno. */
static inline void serve_signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

static inline int serve_signals_arm(void)
{
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    serve_signal_set(&set);
    weft_deadline d;
    int rc = weft_deadline_enter(&d, 0);
    if (rc < 0)
        return rc;
    rc = weft_signal_wait(&set);
    weft_deadline_leave(&d);
    return rc == -ETIMEDOUT ? 0 : rc;
}

/* A task body: waits for SIGINT or SIGTERM, says so, cancels the loop. */
static inline int serve_wait_signals(void *arg)
{
    weft_task *loop = arg;
    sigset_t set;
    serve_signal_set(&set);
    int sig = weft_signal_wait(&set);
    if (sig > 0) {
        printf("got %s, shutting down\n", strsignal(sig));
        fflush(stdout);
    }
    weft_cancel(loop);
    return sig < 0 ? sig : 0;
}

/* Runs loop(arg) as a task until it returns or SIGINT/SIGTERM cancels it
 * (call serve_signals_arm first); its status, -ECANCELED (the signal) as
 * 0. Task only. */
static inline int serve_until_signal_wait(weft_fn loop, void *arg)
{
    weft_task *t = weft_spawn(loop, arg);
    if (!t)
        return -errno;
    weft_task *watcher = weft_spawn(serve_wait_signals, t);
    if (!watcher) {
        int rc = -errno;
        weft_cancel(t);
        weft_join(t);
        return rc;
    }
    int rc = weft_join(t);
    weft_cancel(watcher);
    weft_join(watcher);
    return rc == -ECANCELED ? 0 : rc;
}

/* The TCP listener of a server that stops on SIGINT/SIGTERM: arms the
 * signals first (serve_signals_arm), so that a signal sent as soon as the
 * server says it is up is kept for serve_until_signal_wait. The listening
 * socket or a negative errno. Task only. */
static inline int serve_listen(const char *host, const char *port)
{
    int rc = serve_signals_arm();
    return rc < 0 ? rc : weft_tcp_listen(host, port, 0);
}

/* The port a bound socket has (IPv4 or IPv6), 0 if it cannot tell. */
static inline unsigned serve_port(int fd)
{
    struct sockaddr_in6 sa;
    socklen_t sl = sizeof sa;
    memset(&sa, 0, sizeof sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
        return 0;
    return ntohs(sa.sin6_port); /* same offset in sockaddr_in */
}

#endif /* WEFT_DEMO_SERVE_H */
