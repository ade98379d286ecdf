/* SPDX-License-Identifier: MIT */
/* The waiting mechanism; see wait.h. */
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "sched/sched.h"
#include "sched/wait.h"
#include "util/clock.h"
#include "util/spin.h"

static const char *const kind_names[WEFT__WK_COUNT] = {
    [WEFT__WK_NONE] = "nothing",        [WEFT__WK_SLEEP] = "sleep",
    [WEFT__WK_SEM] = "semaphore",       [WEFT__WK_MUTEX] = "mutex",
    [WEFT__WK_EVENT] = "event",         [WEFT__WK_CHAN_SEND] = "chan send",
    [WEFT__WK_CHAN_RECV] = "chan recv", [WEFT__WK_JOIN] = "join",
    [WEFT__WK_ANY] = "wait_any",        [WEFT__WK_FD] = "fd",
    [WEFT__WK_BLOCKING] = "run_blocking", [WEFT__WK_GEN_NEXT] = "gen next",
    [WEFT__WK_GEN_YIELD] = "gen yield", [WEFT__WK_SELECT] = "select",
    [WEFT__WK_SIGNAL] = "signal_wait",
    [WEFT__WK_OTHER] = "other",
};

static const char *const call_names[WEFT__WC_COUNT] = {
    [WEFT__WC_NONE] = "",          [WEFT__WC_READ] = "read",       [WEFT__WC_RECV] = "recv",
    [WEFT__WC_ACCEPT] = "accept",  [WEFT__WC_WRITE] = "write",     [WEFT__WC_SEND] = "send",
    [WEFT__WC_CONNECT] = "connect", [WEFT__WC_WAIT_FD] = "wait_fd", [WEFT__WC_COPY] = "copy",
    [WEFT__WC_PREAD] = "pread",    [WEFT__WC_PWRITE] = "pwrite",   [WEFT__WC_RECVFROM] = "recvfrom",
    [WEFT__WC_SENDTO] = "sendto",  [WEFT__WC_RECVMSG] = "recvmsg", [WEFT__WC_SENDMSG] = "sendmsg",
};

const char *weft__wait_kind_name(unsigned kind)
{
    return kind < WEFT__WK_COUNT ? kind_names[kind] : kind_names[WEFT__WK_OTHER];
}

const char *weft__wait_call_name(unsigned call)
{
    return call < WEFT__WC_COUNT ? call_names[call] : "";
}

struct weft__clause *weft__wait_take_slow(struct list *q)
{
    struct weft__clause *cl;
    while ((cl = weft__wait_first(q)) != NULL) {
        if (weft__wait_claim(cl))
            return cl;
        /* Its wait completed through another clause or gave up: drop it
         * (its withdrawal then finds it unlinked). */
        weft__wait_unlink(cl);
    }
    return NULL;
}

struct weft__thread_park {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC, weft__clock_ns's clock */
    bool ready;
};

/* Kept for the thread's life (a few dozen bytes per plain thread that
 * ever blocked in weft). */
static _Thread_local struct weft__thread_park thread_park;

struct weft__thread_park *weft__wait_thread_park(void)
{
    struct weft__thread_park *tp = &thread_park;
    if (WEFT__UNLIKELY(!tp->ready)) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&tp->cond, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_init(&tp->mu, NULL);
        tp->ready = true;
    }
    return tp;
}

void weft__wait_wake_thread(struct weft__wait *w)
{
    struct weft__thread_park *tp = w->thread;
    pthread_mutex_lock(&tp->mu);
    /* Release: pairs with the acquire loads of done (block_thread, under
     * tp->mu, and weft__wait_settle, which then takes tp->mu once so as
     * not to leave before this unlock). */
    atomic_store_explicit(&w->done, 1u, memory_order_release);
    pthread_cond_broadcast(&tp->cond);
    pthread_mutex_unlock(&tp->mu);
}

void weft__wait_hand_all(struct list *q, int result, struct list *wakes)
{
    struct weft__clause *first = weft__wait_take(q);
    if (!first)
        return;
    weft__wait_hand(first, result);
    struct worker *self = weft__worker_self();
    bool reorder = self && first->wait->task && first->wait->task->rt == self->rt;
    if (!reorder)
        list_push_back(wakes, &first->link);
    struct weft__clause *cl;
    while ((cl = weft__wait_take(q)) != NULL) {
        weft__wait_hand(cl, result);
        list_push_back(wakes, &cl->link);
    }
    /* weft__wake on a worker puts each task in its next slot and pushes
     * the one it displaces to the back of the queue: waking the 2nd..nth
     * first and the first last leaves them all in FIFO order. */
    if (reorder)
        list_push_back(wakes, &first->link);
}

void weft__wait_flush(struct list *wakes)
{
    struct list *l;
    while ((l = list_pop_front(wakes)) != NULL)
        weft__wait_wake(weft__container_of(l, struct weft__clause, link));
}

void weft__wait_settle_slow(struct weft__wait *w)
{
    /* Acquire: pairs with weft__wait_wake's release store of done. The
     * waker is a few instructions from done (it won the claim, handed the
     * result and is waking us): spin, then yield (it was preempted). */
    for (int i = 0; !atomic_load_explicit(&w->done, memory_order_acquire); i++) {
        if (i < 100)
            weft__cpu_relax();
        else
            sched_yield();
    }
    if (!w->task) {
        /* A plain thread's waker stores done under the thread's mutex:
         * wait for its unlock, its last touch. */
        pthread_mutex_lock(&w->thread->mu);
        pthread_mutex_unlock(&w->thread->mu);
    }
}

/* A claim was won (by a waker) on w. */
static inline bool claimed(struct weft__wait *w)
{
    /* Acquire: pairs with weft__wait_claim's release store or CAS. */
    return atomic_load_explicit(&w->winner, memory_order_acquire) >= 0;
}

int weft__wait_block_thread(struct weft__wait *w, void (*commit)(void *), void *arg,
                            int64_t deadline)
{
    struct weft__thread_park *tp = w->thread;
    if (commit)
        commit(arg);
    int rc = 1;
    pthread_mutex_lock(&tp->mu);
    /* Acquire: pairs with weft__wait_wake_thread's release store of done. */
    while (!atomic_load_explicit(&w->done, memory_order_acquire)) {
        if (deadline == INT64_MAX) {
            pthread_cond_wait(&tp->cond, &tp->mu);
            continue;
        }
        if (weft__clock_ns() >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
        pthread_cond_timedwait(&tp->cond, &tp->mu, &ts);
    }
    pthread_mutex_unlock(&tp->mu);
    /* Timed out: a claim won meanwhile is ours (its waker is done once
     * done is set, which it does under tp->mu: settle). */
    if (rc < 0 && claimed(w)) {
        weft__wait_settle(w);
        rc = 1;
    }
    return rc;
}
