/* SPDX-License-Identifier: MIT */
/* What the server demos of the second round share (udp_echo, unix_service,
 * tcp_proxy, line_server): SIGINT/SIGTERM read by a task (from a signalfd,
 * or with weft_signal_wait) that then cancels the server's main loop, and
 * the port a socket got.
 * Header-only, like demo.h. */
#ifndef WEFT_DEMO_SERVE_H
#define WEFT_DEMO_SERVE_H

#define _GNU_SOURCE 1
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft.h>

/* Blocks SIGINT and SIGTERM in every thread (the runtime's threads inherit
 * the mask) and returns a descriptor that reads them, or -1 after
 * perror. Call in main() before weft_run. */
static inline int serve_signals_open(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        perror("signalfd");
    return fd;
}

struct serve_watch {
    int sigfd;
    weft_task *loop; /* cancelled when a signal comes */
};

/* A task body: waits for a signal, says so, cancels w->loop. */
static inline int serve_watch_signals(void *arg)
{
    struct serve_watch *w = arg;
    struct signalfd_siginfo si;
    ssize_t n = weft_read(w->sigfd, &si, sizeof si);
    if (n == (ssize_t)sizeof si) {
        printf("got %s, shutting down\n", strsignal((int)si.ssi_signo));
        fflush(stdout);
    }
    weft_cancel(w->loop);
    return n < 0 ? (int)n : 0;
}

/* Runs loop(arg) as a task until it returns or a signal cancels it;
 * returns its status with -ECANCELED (the signal) as 0. Task only. */
static inline int serve_until_signal(int sigfd, weft_fn loop, void *arg)
{
    struct serve_watch w = {.sigfd = sigfd, .loop = weft_spawn(loop, arg)};
    if (!w.loop)
        return -errno;
    weft_task *watcher = weft_spawn(serve_watch_signals, &w);
    if (!watcher) {
        int rc = -errno;
        weft_cancel(w.loop);
        weft_join(w.loop);
        return rc;
    }
    int rc = weft_join(w.loop);
    weft_cancel(watcher);
    weft_join(watcher);
    return rc == -ECANCELED ? 0 : rc;
}

/* The same with weft_signal_wait instead of a signalfd: no mask to set in
 * main. serve_signals_arm() has weft catch SIGINT and SIGTERM from now on
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
