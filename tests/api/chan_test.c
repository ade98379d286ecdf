/* SPDX-License-Identifier: MIT */
/* The public contract of channels (include/weft/chan.h): many producers
 * and consumers on different workers with nothing lost or duplicated and
 * each producer's order kept, rendezvous semantics, back-pressure, close
 * (drain, then -EPIPE), sends and receives from plain threads,
 * cancellation and deadlines on both waits, and misuse. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#include "harness.h"

/* Loop index -> worker count, 1 / 2 / 4. */
static unsigned workers_of(int i)
{
    static const unsigned w[] = {1, 2, 4};
    return w[i % 3];
}

/* --- many producers, many consumers ------------------------------------ */

enum { N_PRODUCERS = 4, N_CONSUMERS = 2, N_PER_PRODUCER = 3000 };

struct mpmc {
    weft_chan *c;
    /* seen[p][i]: how often element i of producer p was received. */
    atomic_uchar seen[N_PRODUCERS][N_PER_PRODUCER];
    atomic_long n_received;
    atomic_llong sum;
};

struct mpmc_arg {
    struct mpmc *m;
    int id;
};

static int producer(void *arg)
{
    struct mpmc_arg *a = arg;
    for (int64_t i = 0; i < N_PER_PRODUCER; i++) {
        int64_t v = (int64_t)a->id << 32 | i;
        int rc = weft_chan_send(a->m->c, &v);
        HREQUIRE(rc == 0, rc);
        if (i % 97 == 0)
            HCHECK_INT_EQ(weft_yield(), 0);
    }
    return 0;
}

static int consumer(void *arg)
{
    struct mpmc_arg *a = arg;
    int64_t last[N_PRODUCERS];
    for (int p = 0; p < N_PRODUCERS; p++)
        last[p] = -1;
    int64_t v;
    int rc;
    while ((rc = weft_chan_recv(a->m->c, &v)) == 0) {
        int p = (int)(v >> 32);
        int64_t i = v & 0xffffffff;
        HREQUIRE(p >= 0 && p < N_PRODUCERS && i < N_PER_PRODUCER, -1);
        /* Each producer's elements arrive in the order it sent them. */
        HCHECK_MSG(i > last[p], "producer %d: %lld after %lld", p, (long long)i,
                   (long long)last[p]);
        last[p] = i;
        atomic_fetch_add(&a->m->seen[p][i], 1);
        atomic_fetch_add(&a->m->n_received, 1);
        atomic_fetch_add(&a->m->sum, i);
    }
    HCHECK_INT_EQ(rc, -EPIPE);
    return 0;
}

static int mpmc_main(void *arg)
{
    struct mpmc *m = arg;
    struct mpmc_arg pa[N_PRODUCERS], ca[N_CONSUMERS];
    weft_task *pt[N_PRODUCERS], *ct[N_CONSUMERS];
    for (int i = 0; i < N_CONSUMERS; i++) {
        ca[i] = (struct mpmc_arg){m, i};
        ct[i] = weft_spawn(consumer, &ca[i]);
        HREQUIRE(ct[i] != NULL, -errno);
    }
    for (int i = 0; i < N_PRODUCERS; i++) {
        pa[i] = (struct mpmc_arg){m, i};
        pt[i] = weft_spawn(producer, &pa[i]);
        HREQUIRE(pt[i] != NULL, -errno);
    }
    for (int i = 0; i < N_PRODUCERS; i++)
        HCHECK_INT_EQ(weft_join(pt[i]), 0);
    /* Every send has returned: close; consumers drain what is buffered. */
    weft_chan_close(m->c);
    for (int i = 0; i < N_CONSUMERS; i++)
        HCHECK_INT_EQ(weft_join(ct[i]), 0);
    return 0;
}

static const size_t mpmc_caps[] = {0, 1, 16};

/* 4 producers x 2 consumers, capacities 0, 1 and 16, 1/2/4 workers:
 * every element arrives exactly once, in per-producer order. */
START_TEST(many_producers_and_consumers_lose_and_duplicate_nothing)
{
    size_t cap = mpmc_caps[_i % 3];
    unsigned workers = workers_of(_i / 3);
    struct mpmc *m = calloc(1, sizeof *m);
    ck_assert_ptr_nonnull(m);
    m->c = weft_chan_new(sizeof(int64_t), cap);
    ck_assert_ptr_nonnull(m->c);
    ck_assert_int_eq(harness_run(workers, mpmc_main, m), 0);
    harness_assert_clean();
    ck_assert_int_eq(atomic_load(&m->n_received), N_PRODUCERS * N_PER_PRODUCER);
    ck_assert_int_eq(atomic_load(&m->sum),
                     (long long)N_PRODUCERS * N_PER_PRODUCER * (N_PER_PRODUCER - 1) / 2);
    for (int p = 0; p < N_PRODUCERS; p++)
        for (int i = 0; i < N_PER_PRODUCER; i++)
            ck_assert_msg(atomic_load(&m->seen[p][i]) == 1, "cap %zu: producer %d element %d seen %d times",
                          cap, p, i, atomic_load(&m->seen[p][i]));
    weft_chan_free(m->c);
    free(m);
}
END_TEST

/* --- rendezvous and back-pressure -------------------------------------- */

struct rv {
    weft_chan *c;
    atomic_int started;
    atomic_int sent;
};

static int send_one(void *arg)
{
    struct rv *r = arg;
    int v = 42;
    atomic_store(&r->started, 1);
    int rc = weft_chan_send(r->c, &v);
    atomic_store(&r->sent, 1);
    return rc;
}

static int rendezvous_main(void *arg)
{
    struct rv *r = arg;
    weft_task *t = weft_spawn(send_one, r);
    HREQUIRE(t != NULL, -errno);
    HWAIT_PARKED(NULL, "chan send", 1);
    /* Nobody has received: the send has not completed. */
    HCHECK_INT_EQ(atomic_load(&r->sent), 0);
    int v = 0;
    HCHECK_INT_EQ(weft_chan_recv(r->c, &v), 0);
    HCHECK_INT_EQ(v, 42);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(atomic_load(&r->sent), 1);
    /* A rendezvous channel holds nothing: a send with no receiver waits
     * until its deadline and leaves nothing behind. */
    weft_deadline d;
    HREQUIRE(weft_deadline_enter(&d, WEFT_MSEC(5)) == 0, -1);
    HCHECK_INT_EQ(weft_chan_send(r->c, &v), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_chan_recv(r->c, &v), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    return 0;
}

START_TEST(rendezvous_send_completes_only_when_received)
{
    struct rv r = {.c = weft_chan_new(sizeof(int), 0)};
    ck_assert_ptr_nonnull(r.c);
    ck_assert_int_eq(harness_run(workers_of(_i), rendezvous_main, &r), 0);
    harness_assert_clean();
    weft_chan_free(r.c);
}
END_TEST

static int backpressure_main(void *arg)
{
    weft_chan *c = arg;
    for (int i = 0; i < 3; i++)
        HCHECK_INT_EQ(weft_chan_send(c, &i), 0);
    /* Full: the fourth waits and, timed out, is not enqueued. */
    weft_deadline d;
    HREQUIRE(weft_deadline_enter(&d, WEFT_MSEC(5)) == 0, -1);
    int x = 99;
    HCHECK_INT_EQ(weft_chan_send(c, &x), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    /* FIFO, and only what was accepted. */
    for (int i = 0; i < 3; i++) {
        int v = -1;
        HCHECK_INT_EQ(weft_chan_recv(c, &v), 0);
        HCHECK_INT_EQ(v, i);
    }
    HREQUIRE(weft_deadline_enter(&d, WEFT_MSEC(5)) == 0, -1);
    HCHECK_INT_EQ(weft_chan_recv(c, &x), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    /* The ring wraps around correctly. */
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 2; i++) {
            int v = round * 10 + i;
            HCHECK_INT_EQ(weft_chan_send(c, &v), 0);
        }
        for (int i = 0; i < 2; i++) {
            int v = -1;
            HCHECK_INT_EQ(weft_chan_recv(c, &v), 0);
            HCHECK_INT_EQ(v, round * 10 + i);
        }
    }
    return 0;
}

START_TEST(bounded_channel_applies_back_pressure)
{
    weft_chan *c = weft_chan_new(sizeof(int), 3);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(harness_run(workers_of(_i), backpressure_main, c), 0);
    harness_assert_clean();
    weft_chan_free(c);
}
END_TEST

struct blocked {
    weft_chan *c;
    atomic_int started;
    int value;
};

static int blocked_sender(void *arg)
{
    struct blocked *b = arg;
    atomic_fetch_add(&b->started, 1);
    return weft_chan_send(b->c, &b->value);
}

static int blocked_receiver(void *arg)
{
    struct blocked *b = arg;
    atomic_fetch_add(&b->started, 1);
    int v;
    return weft_chan_recv(b->c, &v);
}

/* A sender waiting on a full ring is the next in line: when a receiver
 * makes room its element goes in before any later send. */
static int waiting_sender_first_main(void *arg)
{
    weft_chan *c = arg;
    int v = 1;
    HCHECK_INT_EQ(weft_chan_send(c, &v), 0);
    struct blocked b = {.c = c, .value = 2};
    weft_task *t = weft_spawn(blocked_sender, &b);
    HREQUIRE(t != NULL, -errno);
    HWAIT_PARKED(NULL, "chan send", 1);
    HCHECK_INT_EQ(weft_chan_recv(c, &v), 0);
    HCHECK_INT_EQ(v, 1);
    /* The waiting sender's element took the free slot: ours must wait. */
    weft_deadline d;
    HREQUIRE(weft_deadline_enter(&d, WEFT_MSEC(5)) == 0, -1);
    v = 3;
    HCHECK_INT_EQ(weft_chan_send(c, &v), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(weft_chan_recv(c, &v), 0);
    HCHECK_INT_EQ(v, 2);
    return 0;
}

START_TEST(waiting_sender_is_not_overtaken)
{
    weft_chan *c = weft_chan_new(sizeof(int), 1);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(harness_run(workers_of(_i), waiting_sender_first_main, c), 0);
    harness_assert_clean();
    weft_chan_free(c);
}
END_TEST

/* --- close ------------------------------------------------------------- */

static int close_main(void *arg)
{
    size_t cap = *(size_t *)arg;
    weft_chan *c = weft_chan_new(sizeof(int), cap);
    HREQUIRE(c != NULL, -ENOMEM);
    /* Buffered elements (if any), then blocked senders. */
    for (int i = 0; i < (int)cap; i++)
        HCHECK_INT_EQ(weft_chan_send(c, &i), 0);
    struct blocked s = {.c = c, .value = 7};
    weft_task *st[2];
    for (int i = 0; i < 2; i++) {
        st[i] = weft_spawn(blocked_sender, &s);
        HREQUIRE(st[i] != NULL, -errno);
    }
    HWAIT_PARKED(NULL, "chan send", 2);
    weft_chan_close(c);
    weft_chan_close(c); /* idempotent */
    /* Blocked senders get -EPIPE; their elements are not delivered. */
    for (int i = 0; i < 2; i++)
        HCHECK_INT_EQ(weft_join(st[i]), -EPIPE);
    /* Sends after close fail; buffered elements still come out. */
    int v = 5;
    HCHECK_INT_EQ(weft_chan_send(c, &v), -EPIPE);
    for (int i = 0; i < (int)cap; i++) {
        HCHECK_INT_EQ(weft_chan_recv(c, &v), 0);
        HCHECK_INT_EQ(v, i);
    }
    HCHECK_INT_EQ(weft_chan_recv(c, &v), -EPIPE);
    HCHECK_INT_EQ(weft_chan_recv(c, &v), -EPIPE);
    weft_chan_free(c);

    /* Blocked receivers get -EPIPE too. */
    c = weft_chan_new(sizeof(int), cap);
    HREQUIRE(c != NULL, -ENOMEM);
    struct blocked r = {.c = c};
    weft_task *rt[3];
    for (int i = 0; i < 3; i++) {
        rt[i] = weft_spawn(blocked_receiver, &r);
        HREQUIRE(rt[i] != NULL, -errno);
    }
    HWAIT_PARKED(NULL, "chan recv", 3);
    weft_chan_close(c);
    for (int i = 0; i < 3; i++)
        HCHECK_INT_EQ(weft_join(rt[i]), -EPIPE);
    weft_chan_free(c);
    return 0;
}

START_TEST(close_drains_then_fails_with_epipe)
{
    size_t cap = mpmc_caps[_i % 3];
    ck_assert_int_eq(harness_run(workers_of(_i / 3), close_main, &cap), 0);
    harness_assert_clean();
}
END_TEST

/* --- plain threads ----------------------------------------------------- */

enum { N_FROM_THREAD = 5000 };

struct thread_feed {
    weft_chan *c;
    int first_error;
    bool close_after;
};

static void *send_from_thread(void *arg)
{
    struct thread_feed *f = arg;
    for (int i = 0; i < N_FROM_THREAD; i++) {
        int rc = weft_chan_send(f->c, &i);
        if (rc != 0) {
            f->first_error = rc;
            break;
        }
    }
    if (f->close_after)
        weft_chan_close(f->c);
    return NULL;
}

static int receive_in_order(void *arg)
{
    weft_chan *c = arg;
    int v, rc, want = 0;
    while ((rc = weft_chan_recv(c, &v)) == 0) {
        HCHECK_MSG(v == want, "got %d want %d", v, want);
        want = v + 1;
        if (v % 1000 == 0)
            HCHECK_INT_EQ(weft_sleep(WEFT_USEC(100)), 0); /* let it block */
    }
    HCHECK_INT_EQ(rc, -EPIPE);
    HCHECK_INT_EQ(want, N_FROM_THREAD);
    return 0;
}

/* A plain thread sends (blocking itself while the channel is full, or
 * until each rendezvous) and closes; a task receives everything in order. */
START_TEST(sends_and_close_from_a_plain_thread)
{
    size_t cap = mpmc_caps[_i % 3];
    struct thread_feed f = {.c = weft_chan_new(sizeof(int), cap), .close_after = true};
    ck_assert_ptr_nonnull(f.c);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, send_from_thread, &f), 0);
    ck_assert_int_eq(harness_run(workers_of(_i / 3), receive_in_order, f.c), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(f.first_error, 0);
    harness_assert_clean();
    weft_chan_free(f.c);
}
END_TEST

static int send_n_then_close(void *arg)
{
    weft_chan *c = arg;
    for (int i = 0; i < N_FROM_THREAD; i++) {
        int rc = weft_chan_send(c, &i);
        HREQUIRE(rc == 0, rc);
    }
    weft_chan_close(c);
    return 0;
}

struct thread_drain {
    weft_chan *c;
    int n;
    int last_rc;
    bool in_order;
};

static void *recv_on_thread(void *arg)
{
    struct thread_drain *d = arg;
    int v;
    d->in_order = true;
    while ((d->last_rc = weft_chan_recv(d->c, &v)) == 0) {
        if (v != d->n)
            d->in_order = false;
        d->n++;
    }
    return NULL;
}

/* Receiving from a plain thread blocks that thread until an element or
 * the close arrives. */
START_TEST(receives_on_a_plain_thread)
{
    size_t cap = mpmc_caps[_i % 3];
    struct thread_drain d = {.c = weft_chan_new(sizeof(int), cap)};
    ck_assert_ptr_nonnull(d.c);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, recv_on_thread, &d), 0);
    ck_assert_int_eq(harness_run(workers_of(_i / 3), send_n_then_close, d.c), 0);
    pthread_join(th, NULL);
    harness_assert_clean();
    ck_assert_int_eq(d.last_rc, -EPIPE);
    ck_assert_int_eq(d.n, N_FROM_THREAD);
    ck_assert(d.in_order);
    weft_chan_free(d.c);
}
END_TEST

/* --- cancellation and deadlines ---------------------------------------- */

static int cancel_main(void *arg)
{
    size_t cap = *(size_t *)arg;
    weft_chan *c = weft_chan_new(sizeof(int), cap);
    HREQUIRE(c != NULL, -ENOMEM);
    /* A cancelled receiver takes nothing: the next element goes to the
     * receiver behind it. */
    struct blocked r1 = {.c = c}, r2 = {.c = c};
    weft_task *t1 = weft_spawn(blocked_receiver, &r1);
    HREQUIRE(t1 != NULL, -errno);
    HWAIT_PARKED(NULL, "chan recv", 1);
    weft_task *t2 = weft_spawn(blocked_receiver, &r2);
    HREQUIRE(t2 != NULL, -errno);
    HWAIT_PARKED(NULL, "chan recv", 2);
    weft_cancel(t1);
    HCHECK_INT_EQ(weft_join(t1), -ECANCELED);
    int v = 3;
    HCHECK_INT_EQ(weft_chan_send(c, &v), 0);
    HCHECK_INT_EQ(weft_join(t2), 0);

    /* A cancelled sender's element is not delivered (fill the ring so
     * that it must wait). */
    for (int i = 0; i < (int)cap; i++)
        HCHECK_INT_EQ(weft_chan_send(c, &i), 0);
    struct blocked s = {.c = c, .value = 77};
    weft_task *ts = weft_spawn(blocked_sender, &s);
    HREQUIRE(ts != NULL, -errno);
    HWAIT_PARKED(NULL, "chan send", 1);
    weft_cancel(ts);
    HCHECK_INT_EQ(weft_join(ts), -ECANCELED);
    for (int i = 0; i < (int)cap; i++) {
        HCHECK_INT_EQ(weft_chan_recv(c, &v), 0);
        HCHECK_INT_EQ(v, i);
    }
    weft_chan_close(c);
    HCHECK_INT_EQ(weft_chan_recv(c, &v), -EPIPE);

    /* A cancelled task's channel calls fail even when they could go on
     * at once (cancellation is sticky). */
    weft_chan *c2 = weft_chan_new(sizeof(int), 4);
    HREQUIRE(c2 != NULL, -ENOMEM);
    weft_cancel(weft_current());
    HCHECK_INT_EQ(weft_chan_send(c2, &v), -ECANCELED);
    HCHECK_INT_EQ(weft_chan_recv(c2, &v), -ECANCELED);
    weft_chan_free(c2);
    weft_chan_free(c);
    return 0;
}

START_TEST(cancelled_waiters_take_and_give_nothing)
{
    size_t cap = mpmc_caps[_i % 3];
    ck_assert_int_eq(harness_run(workers_of(_i / 3), cancel_main, &cap), 0);
    harness_assert_clean();
}
END_TEST

static int deadline_main(void *arg)
{
    (void)arg;
    weft_chan *c = weft_chan_new(sizeof(int), 1);
    HREQUIRE(c != NULL, -ENOMEM);
    int v = 1;
    weft_deadline d;
    /* t0 before the scope: its instant is then at least t0 + 10 ms. */
    int64_t t0 = weft_now();
    HREQUIRE(weft_deadline_enter(&d, WEFT_MSEC(10)) == 0, -1);
    HCHECK_INT_EQ(weft_chan_recv(c, &v), -ETIMEDOUT);
    HCHECK(weft_now() - t0 >= WEFT_MSEC(10));
    /* Past the deadline every channel call fails, even one with room. */
    HCHECK_INT_EQ(weft_chan_send(c, &v), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    HCHECK_INT_EQ(weft_chan_send(c, &v), 0);
    weft_chan_free(c);
    return 0;
}

START_TEST(waits_honour_deadline_scopes)
{
    ck_assert_int_eq(harness_run(workers_of(_i), deadline_main, NULL), 0);
    harness_assert_clean();
}
END_TEST

/* A close racing with cancelled and timed-out waiters on both sides: each
 * element accepted by a send is received exactly once. */
struct race {
    weft_chan *c;
    atomic_long sent, received;
};

static int race_sender(void *arg)
{
    struct race *r = arg;
    for (int i = 0;; i++) {
        weft_deadline d;
        HREQUIRE(weft_deadline_enter(&d, WEFT_USEC(i % 50)) == 0, -1);
        int rc = weft_chan_send(r->c, &i);
        HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
        if (rc == 0)
            atomic_fetch_add(&r->sent, 1);
        else if (rc != -ETIMEDOUT)
            return rc;
    }
}

static int race_receiver(void *arg)
{
    struct race *r = arg;
    for (int i = 0;; i++) {
        weft_deadline d;
        HREQUIRE(weft_deadline_enter(&d, WEFT_USEC(i % 70)) == 0, -1);
        int v;
        int rc = weft_chan_recv(r->c, &v);
        HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
        if (rc == 0)
            atomic_fetch_add(&r->received, 1);
        else if (rc != -ETIMEDOUT)
            return rc;
    }
}

static int race_main(void *arg)
{
    size_t cap = *(size_t *)arg;
    for (int round = 0; round < 20; round++) {
        struct race r = {.c = weft_chan_new(sizeof(int), cap)};
        HREQUIRE(r.c != NULL, -ENOMEM);
        weft_task *t[6];
        for (int i = 0; i < 6; i++) {
            t[i] = weft_spawn(i % 2 ? race_receiver : race_sender, &r);
            HREQUIRE(t[i] != NULL, -errno);
        }
        HCHECK_INT_EQ(weft_sleep(WEFT_USEC(500 + round * 37)), 0);
        /* Cancel one of each, then close. */
        weft_cancel(t[round % 2 ? 0 : 2]);
        weft_cancel(t[round % 2 ? 3 : 5]);
        weft_chan_close(r.c);
        for (int i = 0; i < 6; i++) {
            int rc = weft_join(t[i]);
            HCHECK_MSG(rc == -EPIPE || rc == -ECANCELED, "task %d: %d", i, rc);
        }
        int v;
        while (weft_chan_recv(r.c, &v) == 0)
            atomic_fetch_add(&r.received, 1);
        HCHECK_INT_EQ(atomic_load(&r.sent), atomic_load(&r.received));
        weft_chan_free(r.c);
    }
    return 0;
}

START_TEST(close_racing_timeouts_and_cancels_keeps_the_count)
{
    size_t cap = mpmc_caps[_i % 3];
    ck_assert_int_eq(harness_run(workers_of(_i / 3), race_main, &cap), 0);
    harness_assert_clean();
}
END_TEST

/* --- operations that never wait ---------------------------------------- */

/* A bounded channel: try_send fills the ring then gets -EAGAIN, try_recv
 * empties it in order then gets -EAGAIN; after close, -EPIPE for sends at
 * once and for receives once drained. Callable from this plain thread. */
START_TEST(try_ops_on_a_bounded_channel)
{
    weft_chan *c = weft_chan_new(sizeof(int), 3);
    ck_assert_ptr_nonnull(c);
    int v;
    ck_assert_int_eq(weft_chan_try_recv(c, &v), -EAGAIN);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(weft_chan_try_send(c, &i), 0);
        ck_assert_uint_eq(weft_chan_len(c), (size_t)i + 1);
    }
    v = 99;
    ck_assert_int_eq(weft_chan_try_send(c, &v), -EAGAIN);
    ck_assert_uint_eq(weft_chan_len(c), 3);
    ck_assert_int_eq(weft_chan_try_recv(c, &v), 0);
    ck_assert_int_eq(v, 0);
    weft_chan_close(c);
    ck_assert_int_eq(weft_chan_try_send(c, &v), -EPIPE);
    ck_assert_int_eq(weft_chan_try_recv(c, &v), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(weft_chan_try_recv(c, &v), 0);
    ck_assert_int_eq(v, 2);
    ck_assert_int_eq(weft_chan_try_recv(c, &v), -EPIPE);
    ck_assert_uint_eq(weft_chan_len(c), 0);
    weft_chan_free(c);
}
END_TEST

struct try_rv {
    weft_chan *c;
    int got;
    int rc;
};

static int try_rv_receiver(void *arg)
{
    struct try_rv *t = arg;
    t->rc = weft_chan_recv(t->c, &t->got);
    return 0;
}

static int try_rv_sender(void *arg)
{
    struct try_rv *t = arg;
    t->rc = weft_chan_send(t->c, &t->got);
    return 0;
}

/* A rendezvous channel: try_send succeeds only by handing to a waiting
 * receiver, try_recv only by taking from a waiting sender. */
static int try_rendezvous_main(void *arg)
{
    (void)arg;
    weft_chan *c = weft_chan_new(sizeof(int), 0);
    HREQUIRE(c != NULL, -ENOMEM);
    int v = 5;
    HCHECK_INT_EQ(weft_chan_try_send(c, &v), -EAGAIN);
    HCHECK_INT_EQ(weft_chan_try_recv(c, &v), -EAGAIN);
    HCHECK_INT_EQ(weft_chan_len(c), 0);

    struct try_rv r = {.c = c, .got = -1, .rc = 1};
    weft_task *t = weft_spawn(try_rv_receiver, &r);
    HREQUIRE(t != NULL, -ENOMEM);
    HWAIT_PARKED(NULL, "chan recv", 1);
    v = 42;
    HCHECK_INT_EQ(weft_chan_try_send(c, &v), 0);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(r.rc, 0);
    HCHECK_INT_EQ(r.got, 42);
    HCHECK_INT_EQ(weft_chan_try_send(c, &v), -EAGAIN);

    struct try_rv s = {.c = c, .got = 7, .rc = 1};
    t = weft_spawn(try_rv_sender, &s);
    HREQUIRE(t != NULL, -ENOMEM);
    HWAIT_PARKED(NULL, "chan send", 1);
    v = 0;
    HCHECK_INT_EQ(weft_chan_try_recv(c, &v), 0);
    HCHECK_INT_EQ(v, 7);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(s.rc, 0);
    HCHECK_INT_EQ(weft_chan_try_recv(c, &v), -EAGAIN);
    weft_chan_close(c);
    HCHECK_INT_EQ(weft_chan_try_send(c, &v), -EPIPE);
    HCHECK_INT_EQ(weft_chan_try_recv(c, &v), -EPIPE);
    weft_chan_free(c);
    return 0;
}

START_TEST(try_ops_on_a_rendezvous_channel)
{
    ck_assert_int_eq(harness_run(workers_of(_i), try_rendezvous_main, NULL), 0);
    harness_assert_clean();
}
END_TEST

/* A full ring with a sender waiting: try_recv takes the oldest element
 * and the waiting sender's element takes the freed slot (FIFO kept), and
 * try_send does not overtake the waiting sender. */
static int try_refill_main(void *arg)
{
    (void)arg;
    weft_chan *c = weft_chan_new(sizeof(int), 1);
    HREQUIRE(c != NULL, -ENOMEM);
    int v = 1;
    HCHECK_INT_EQ(weft_chan_try_send(c, &v), 0);
    struct try_rv s = {.c = c, .got = 2, .rc = 1};
    weft_task *t = weft_spawn(try_rv_sender, &s);
    HREQUIRE(t != NULL, -ENOMEM);
    HWAIT_PARKED(NULL, "chan send", 1);
    v = 3;
    HCHECK_INT_EQ(weft_chan_try_send(c, &v), -EAGAIN);
    HCHECK_INT_EQ(weft_chan_try_recv(c, &v), 0);
    HCHECK_INT_EQ(v, 1);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(s.rc, 0);
    HCHECK_INT_EQ(weft_chan_len(c), 1);
    HCHECK_INT_EQ(weft_chan_try_recv(c, &v), 0);
    HCHECK_INT_EQ(v, 2);
    weft_chan_free(c);
    return 0;
}

START_TEST(try_recv_refills_from_a_waiting_sender)
{
    ck_assert_int_eq(harness_run(workers_of(_i), try_refill_main, NULL), 0);
    harness_assert_clean();
}
END_TEST

static void *try_send_on_thread(void *arg)
{
    weft_chan *c = arg;
    for (int i = 0; i < N_FROM_THREAD;) {
        int rc = weft_chan_try_send(c, &i);
        if (rc == 0)
            i++;
        else if (rc == -EAGAIN)
            sched_yield();
        else
            return (void *)(intptr_t)rc;
    }
    weft_chan_close(c);
    return NULL;
}

static int recv_all_in_order(void *arg)
{
    weft_chan *c = arg;
    int v, n = 0, rc;
    while ((rc = weft_chan_recv(c, &v)) == 0) {
        HCHECK_INT_EQ(v, n);
        n++;
    }
    HCHECK_INT_EQ(rc, -EPIPE);
    HCHECK_INT_EQ(n, N_FROM_THREAD);
    return 0;
}

/* try_send from a plain thread into tasks that wait to receive. */
START_TEST(try_send_from_a_plain_thread)
{
    weft_chan *c = weft_chan_new(sizeof(int), mpmc_caps[_i % 3]);
    ck_assert_ptr_nonnull(c);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, try_send_on_thread, c), 0);
    ck_assert_int_eq(harness_run(workers_of(_i / 3), recv_all_in_order, c), 0);
    void *ret;
    pthread_join(th, &ret);
    ck_assert_ptr_null(ret);
    harness_assert_clean();
    weft_chan_free(c);
}
END_TEST

/* --- misuse ------------------------------------------------------------ */

static int misuse_main(void *arg)
{
    (void)arg;
    int v = 0;
    HCHECK_INT_EQ(weft_chan_send(NULL, &v), -EINVAL);
    HCHECK_INT_EQ(weft_chan_recv(NULL, &v), -EINVAL);
    weft_chan *c = weft_chan_new(sizeof v, 1);
    HREQUIRE(c != NULL, -ENOMEM);
    HCHECK_INT_EQ(weft_chan_send(c, NULL), -EINVAL);
    HCHECK_INT_EQ(weft_chan_recv(c, NULL), -EINVAL);
    HCHECK_INT_EQ(weft_chan_try_send(NULL, &v), -EINVAL);
    HCHECK_INT_EQ(weft_chan_try_recv(NULL, &v), -EINVAL);
    HCHECK_INT_EQ(weft_chan_try_send(c, NULL), -EINVAL);
    HCHECK_INT_EQ(weft_chan_try_recv(c, NULL), -EINVAL);
    HCHECK_INT_EQ(weft_chan_len(NULL), 0);
    weft_chan_close(NULL);
    weft_chan_free(NULL);
    weft_chan_free(c);
    return 0;
}

START_TEST(bad_arguments_are_rejected)
{
    errno = 0;
    ck_assert_ptr_null(weft_chan_new(0, 4));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(weft_chan_new(SIZE_MAX / 2, 4));
    ck_assert_int_eq(errno, ENOMEM);
    ck_assert_int_eq(harness_run(1, misuse_main, NULL), 0);
    harness_assert_clean();
}
END_TEST

/* Elements larger than a word are copied whole. */
struct big {
    char bytes[200];
};

static int big_main(void *arg)
{
    weft_chan *c = arg;
    struct big b;
    for (int i = 0; i < 20; i++) {
        memset(b.bytes, 'a' + i, sizeof b.bytes);
        HCHECK_INT_EQ(weft_chan_send(c, &b), 0);
    }
    for (int i = 0; i < 20; i++) {
        memset(&b, 0, sizeof b);
        HCHECK_INT_EQ(weft_chan_recv(c, &b), 0);
        for (size_t k = 0; k < sizeof b.bytes; k++)
            HREQUIRE(b.bytes[k] == 'a' + i, -1);
    }
    return 0;
}

START_TEST(large_elements_are_copied_whole)
{
    weft_chan *c = weft_chan_new(sizeof(struct big), 32);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(harness_run(1, big_main, c), 0);
    harness_assert_clean();
    weft_chan_free(c);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("chan");

    TCase *tc = harness_tcase(s, "mpmc", 120);
    tcase_add_loop_test(tc, many_producers_and_consumers_lose_and_duplicate_nothing, 0, 9);

    tc = harness_tcase(s, "semantics", 60);
    tcase_add_loop_test(tc, rendezvous_send_completes_only_when_received, 0, 3);
    tcase_add_loop_test(tc, bounded_channel_applies_back_pressure, 0, 3);
    tcase_add_loop_test(tc, waiting_sender_is_not_overtaken, 0, 3);
    tcase_add_loop_test(tc, close_drains_then_fails_with_epipe, 0, 9);
    tcase_add_test(tc, large_elements_are_copied_whole);

    tc = harness_tcase(s, "threads", 60);
    tcase_add_loop_test(tc, sends_and_close_from_a_plain_thread, 0, 9);
    tcase_add_loop_test(tc, receives_on_a_plain_thread, 0, 9);

    tc = harness_tcase(s, "interrupt", 60);
    tcase_add_loop_test(tc, cancelled_waiters_take_and_give_nothing, 0, 9);
    tcase_add_loop_test(tc, waits_honour_deadline_scopes, 0, 3);
    tcase_add_loop_test(tc, close_racing_timeouts_and_cancels_keeps_the_count, 0, 9);

    tc = harness_tcase(s, "try", 60);
    tcase_add_test(tc, try_ops_on_a_bounded_channel);
    tcase_add_loop_test(tc, try_ops_on_a_rendezvous_channel, 0, 3);
    tcase_add_loop_test(tc, try_recv_refills_from_a_waiting_sender, 0, 3);
    tcase_add_loop_test(tc, try_send_from_a_plain_thread, 0, 9);

    tc = harness_tcase(s, "misuse", 20);
    tcase_add_test(tc, bad_arguments_are_rejected);
    return s;
}
