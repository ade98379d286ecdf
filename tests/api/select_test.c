/* SPDX-License-Identifier: MIT */
/* The public contract of weft_select (include/weft/select.h): each case
 * kind, uniform choice among ready cases, timeouts, cancellation and
 * deadline scopes completing nothing, plain-thread senders across
 * workers, rendezvous channels (also two selects facing each other), the
 * same channel in several cases, a task another task joins, and misuse. */
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

/* Loop index -> worker count, 1 / 2 / 4 (several: WEFT_TEST_WORKERS). */
static unsigned workers_of(int i)
{
    static const unsigned w[] = {1, 2, 4};
    return w[i % 3];
}

/* --- each case kind, ready at once ------------------------------------- */

static int ret_n(void *arg) { return (int)(intptr_t)arg; }

static int kinds_ready_main(void *arg)
{
    (void)arg;
    weft_chan *c = weft_chan_new(sizeof(int), 2);
    HREQUIRE(c != NULL, -ENOMEM);
    int v = 11, got = 0;
    HCHECK_INT_EQ(weft_chan_send(c, &v), 0);

    weft_sel r[] = {weft_sel_recv(c, &got)};
    HCHECK_INT_EQ(weft_select(r, 1, -1), 0);
    HCHECK_INT_EQ(r[0].result, 0);
    HCHECK_INT_EQ(got, 11);

    v = 12;
    weft_sel s[] = {weft_sel_send(c, &v)};
    HCHECK_INT_EQ(weft_select(s, 1, -1), 0);
    HCHECK_INT_EQ(s[0].result, 0);
    HCHECK_INT_EQ(weft_chan_len(c), 1);
    HCHECK_INT_EQ(weft_chan_try_recv(c, &got), 0);
    HCHECK_INT_EQ(got, 12);

    weft_task *t = weft_spawn(ret_n, (void *)(intptr_t)-5);
    HREQUIRE(t != NULL, -ENOMEM);
    while (!weft_task_done(t))
        weft_yield();
    weft_sel tk[] = {weft_sel_recv(c, &got), weft_sel_task(t)};
    HCHECK_INT_EQ(weft_select(tk, 2, -1), 1);
    HCHECK_INT_EQ(tk[1].result, -5);
    HCHECK_INT_EQ(weft_join(t), -5);

    weft_event *e = weft_event_new();
    HREQUIRE(e != NULL, -ENOMEM);
    weft_event_set(e);
    weft_sel ev[] = {weft_sel_recv(c, &got), weft_sel_event(e)};
    HCHECK_INT_EQ(weft_select(ev, 2, -1), 1);
    HCHECK_INT_EQ(ev[1].result, 0);
    weft_event_clear(e);
    HCHECK_INT_EQ(weft_select(ev, 2, 0), -ETIMEDOUT);
    weft_event_free(e);

    int p[2];
    HREQUIRE(pipe(p) == 0, -errno);
    weft_sel fd[] = {weft_sel_fd(p[0], WEFT_READABLE), weft_sel_fd(p[1], WEFT_WRITABLE)};
    HCHECK_INT_EQ(weft_select(fd, 1, 0), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_select(fd, 2, -1), 1);
    HCHECK_INT_EQ(fd[1].result, WEFT_WRITABLE);
    HCHECK_INT_EQ(write(p[1], "x", 1), 1);
    HCHECK_INT_EQ(weft_select(fd, 1, -1), 0);
    HCHECK_INT_EQ(fd[0].result, WEFT_READABLE);
    close(p[0]);
    close(p[1]);

    weft_chan_close(c);
    weft_sel cl[] = {weft_sel_recv(c, &got)};
    HCHECK_INT_EQ(weft_select(cl, 1, -1), 0);
    HCHECK_INT_EQ(cl[0].result, -EPIPE);
    weft_sel cs[] = {weft_sel_send(c, &v)};
    HCHECK_INT_EQ(weft_select(cs, 1, -1), 0);
    HCHECK_INT_EQ(cs[0].result, -EPIPE);
    weft_chan_free(c);
    return 0;
}

START_TEST(each_kind_completes_when_ready)
{
    ck_assert_int_eq(harness_run(workers_of(_i), kinds_ready_main, NULL), 0);
}
END_TEST

/* --- each case kind, becoming ready while the select waits ------------- */

struct later {
    weft_chan *c;
    weft_event *e;
    int fd;
    int kind; /* 0 send on c, 1 recv from c, 2 set e, 3 write fd, 4 end */
    int got;
};

static int do_later(void *arg)
{
    struct later *l = arg;
    weft_sleep(WEFT_MSEC(5));
    int v = 77;
    switch (l->kind) {
    case 0:
        return weft_chan_send(l->c, &v);
    case 1:
        return weft_chan_recv(l->c, &l->got);
    case 2:
        weft_event_set(l->e);
        return 0;
    case 3:
        return weft_write(l->fd, "y", 1) == 1 ? 0 : -EIO;
    default:
        return 9;
    }
}

static int kinds_later_main(void *arg)
{
    (void)arg;
    weft_chan *idle = weft_chan_new(sizeof(int), 0); /* never ready */
    weft_chan *c = weft_chan_new(sizeof(int), 0);
    weft_event *e = weft_event_new();
    int p[2];
    HREQUIRE(idle && c && e && pipe(p) == 0, -ENOMEM);
    for (int kind = 0; kind < 5; kind++) {
        struct later l = {.c = c, .e = e, .fd = p[1], .kind = kind};
        weft_task *t = weft_spawn(do_later, &l);
        HREQUIRE(t != NULL, -ENOMEM);
        int got = 0, v = 55;
        weft_sel cs[2];
        cs[0] = weft_sel_recv(idle, &got);
        switch (kind) {
        case 0:
            cs[1] = weft_sel_recv(c, &got);
            break;
        case 1:
            cs[1] = weft_sel_send(c, &v);
            break;
        case 2:
            cs[1] = weft_sel_event(e);
            break;
        case 3:
            cs[1] = weft_sel_fd(p[0], WEFT_READABLE);
            break;
        default:
            cs[1] = weft_sel_task(t);
            break;
        }
        HCHECK_INT_EQ(weft_select(cs, 2, -1), 1);
        switch (kind) {
        case 0:
            HCHECK_INT_EQ(cs[1].result, 0);
            HCHECK_INT_EQ(got, 77);
            break;
        case 3:
            HCHECK_INT_EQ(cs[1].result, WEFT_READABLE);
            break;
        case 4:
            HCHECK_INT_EQ(cs[1].result, 9);
            break;
        default:
            HCHECK_INT_EQ(cs[1].result, 0);
        }
        HCHECK_INT_EQ(weft_join(t), kind == 4 ? 9 : 0);
        if (kind == 1)
            HCHECK_INT_EQ(l.got, 55);
    }
    close(p[0]);
    close(p[1]);
    weft_event_free(e);
    weft_chan_free(c);
    weft_chan_free(idle);
    return 0;
}

START_TEST(each_kind_wakes_a_waiting_select)
{
    ck_assert_int_eq(harness_run(workers_of(_i), kinds_later_main, NULL), 0);
}
END_TEST

/* On a rendezvous channel: a select's receive takes from a sender that
 * is already blocked, and a select's send hands to a receiver that is
 * already blocked (each partner waiting first, for sure). */
struct blocked {
    weft_chan *c;
    int v, rc;
};

static int blocked_sender(void *arg)
{
    struct blocked *b = arg;
    b->rc = weft_chan_send(b->c, &b->v);
    return 0;
}

static int blocked_receiver(void *arg)
{
    struct blocked *b = arg;
    b->rc = weft_chan_recv(b->c, &b->v);
    return 0;
}

static int blocked_partner_main(void *arg)
{
    (void)arg;
    weft_chan *idle = weft_chan_new(sizeof(int), 0);
    struct blocked b = {.c = weft_chan_new(sizeof(int), 0), .v = 8, .rc = 1};
    HREQUIRE(idle && b.c, -ENOMEM);
    weft_task *t = weft_spawn(blocked_sender, &b);
    HREQUIRE(t != NULL, -ENOMEM);
    HWAIT_PARKED(NULL, "chan send", 1);
    int got = 0;
    weft_sel r[] = {weft_sel_recv(idle, &got), weft_sel_recv(b.c, &got)};
    HCHECK_INT_EQ(weft_select(r, 2, 0), 1); /* ready: "only look" finds it */
    HCHECK_INT_EQ(got, 8);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(b.rc, 0);

    b.v = 0;
    b.rc = 1;
    t = weft_spawn(blocked_receiver, &b);
    HREQUIRE(t != NULL, -ENOMEM);
    HWAIT_PARKED(NULL, "chan recv", 1);
    int out = 9;
    weft_sel w[] = {weft_sel_recv(idle, &got), weft_sel_send(b.c, &out)};
    HCHECK_INT_EQ(weft_select(w, 2, -1), 1);
    HCHECK_INT_EQ(w[1].result, 0);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(b.rc, 0);
    HCHECK_INT_EQ(b.v, 9);
    weft_chan_free(b.c);
    weft_chan_free(idle);
    return 0;
}

START_TEST(rendezvous_with_a_partner_already_blocked)
{
    ck_assert_int_eq(harness_run(workers_of(_i), blocked_partner_main, NULL), 0);
}
END_TEST

/* --- fairness ---------------------------------------------------------- */

enum { FAIR_N = 10000 };

static int fair_main(void *arg)
{
    (void)arg;
    weft_chan *a = weft_chan_new(sizeof(int), 1);
    weft_chan *b = weft_chan_new(sizeof(int), 1);
    HREQUIRE(a && b, -ENOMEM);
    int v = 1, got;
    HCHECK_INT_EQ(weft_chan_send(a, &v), 0);
    HCHECK_INT_EQ(weft_chan_send(b, &v), 0);
    int count[2] = {0, 0};
    for (int i = 0; i < FAIR_N; i++) {
        weft_sel cs[] = {weft_sel_recv(a, &got), weft_sel_recv(b, &got)};
        int k = weft_select(cs, 2, -1);
        HREQUIRE(k == 0 || k == 1, -1);
        count[k]++;
        HCHECK_INT_EQ(weft_chan_send(k ? b : a, &v), 0); /* ready again */
    }
    HCHECK_MSG(count[0] >= FAIR_N * 4 / 10 && count[1] >= FAIR_N * 4 / 10,
               "case 0 chosen %d times, case 1 %d times", count[0], count[1]);
    /* Three ready cases of three kinds, each about a third. */
    weft_event *e = weft_event_new();
    HREQUIRE(e != NULL, -ENOMEM);
    weft_event_set(e);
    int c3[3] = {0, 0, 0};
    for (int i = 0; i < FAIR_N; i++) {
        weft_sel cs[] = {weft_sel_recv(a, &got), weft_sel_event(e), weft_sel_send(b, &v)};
        if (i == 0)
            HCHECK_INT_EQ(weft_chan_try_recv(b, &got), 0); /* room for the send */
        int k = weft_select(cs, 3, 0);
        HREQUIRE(k >= 0 && k < 3, -1);
        c3[k]++;
        if (k == 0)
            HCHECK_INT_EQ(weft_chan_send(a, &v), 0);
        if (k == 2)
            HCHECK_INT_EQ(weft_chan_try_recv(b, &got), 0);
    }
    for (int k = 0; k < 3; k++)
        HCHECK_MSG(c3[k] >= FAIR_N * 27 / 100 && c3[k] <= FAIR_N * 40 / 100,
                   "case %d chosen %d times of %d", k, c3[k], FAIR_N);
    weft_event_free(e);
    weft_chan_free(a);
    weft_chan_free(b);
    return 0;
}

START_TEST(ready_cases_are_chosen_uniformly)
{
    ck_assert_int_eq(harness_run(workers_of(_i), fair_main, NULL), 0);
}
END_TEST

/* --- timeouts, deadlines, cancellation ---------------------------------- */

static int timeout_main(void *arg)
{
    (void)arg;
    weft_chan *c = weft_chan_new(sizeof(int), 0);
    HREQUIRE(c != NULL, -ENOMEM);
    int got;
    weft_sel cs[] = {weft_sel_recv(c, &got), weft_sel_send(c, &got)};
    HCHECK_INT_EQ(weft_select(cs, 2, 0), -ETIMEDOUT);
    int64_t t0 = weft_now();
    HCHECK_INT_EQ(weft_select(cs, 2, WEFT_MSEC(20)), -ETIMEDOUT);
    HCHECK(weft_now() - t0 >= WEFT_MSEC(20));
    t0 = weft_now();
    HCHECK_INT_EQ(weft_select(NULL, 0, WEFT_MSEC(10)), -ETIMEDOUT);
    HCHECK(weft_now() - t0 >= WEFT_MSEC(10));
    weft_deadline d;
    HCHECK_INT_EQ(weft_deadline_enter(&d, WEFT_MSEC(10)), 0);
    HCHECK_INT_EQ(weft_select(cs, 2, -1), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    /* Nothing stayed queued: a try sees no partner. */
    HCHECK_INT_EQ(weft_chan_try_send(c, &got), -EAGAIN);
    HCHECK_INT_EQ(weft_chan_try_recv(c, &got), -EAGAIN);
    weft_chan_free(c);
    return 0;
}

START_TEST(timeouts_and_deadline_scopes)
{
    ck_assert_int_eq(harness_run(workers_of(_i), timeout_main, NULL), 0);
}
END_TEST

struct cancel_sel {
    weft_chan *in;   /* select receives from it */
    weft_chan *out;  /* select sends on it (rendezvous) */
    _Atomic int parked;
    int rc, got;
};

static int cancelled_selector(void *arg)
{
    struct cancel_sel *cs = arg;
    int v = 123;
    weft_sel c[] = {weft_sel_recv(cs->in, &cs->got), weft_sel_send(cs->out, &v)};
    atomic_store(&cs->parked, 1);
    cs->rc = weft_select(c, 2, -1);
    return 0;
}

static int cancel_main(void *arg)
{
    (void)arg;
    struct cancel_sel cs = {.in = weft_chan_new(sizeof(int), 0),
                            .out = weft_chan_new(sizeof(int), 0), .got = -1};
    HREQUIRE(cs.in && cs.out, -ENOMEM);
    weft_task *t = weft_spawn(cancelled_selector, &cs);
    HREQUIRE(t != NULL, -ENOMEM);
    HYIELD_UNTIL(atomic_load(&cs.parked));
    weft_sleep(WEFT_MSEC(2));
    weft_cancel(t);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(cs.rc, -ECANCELED);
    HCHECK_INT_EQ(cs.got, -1);
    int v = 5;
    HCHECK_INT_EQ(weft_chan_try_send(cs.in, &v), -EAGAIN);
    HCHECK_INT_EQ(weft_chan_try_recv(cs.out, &v), -EAGAIN);
    weft_chan_free(cs.in);
    weft_chan_free(cs.out);
    return 0;
}

START_TEST(cancelled_select_completes_nothing)
{
    ck_assert_int_eq(harness_run(workers_of(_i), cancel_main, NULL), 0);
}
END_TEST

/* Selects cancelled while senders race them: every element is either
 * received by a select that returned its case or still in the channel. */
enum { RACE_ROUNDS = 300 };

struct race {
    weft_chan *a, *b;
    int got;
    int rc;
};

static int race_selector(void *arg)
{
    struct race *r = arg;
    weft_sel c[] = {weft_sel_recv(r->a, &r->got), weft_sel_recv(r->b, &r->got)};
    r->rc = weft_select(c, 2, -1);
    return 0;
}

static int race_sender(void *arg)
{
    struct race *r = arg;
    int v = 1;
    return weft_chan_send(r->a, &v);
}

static int race_main(void *arg)
{
    size_t cap = (size_t)(uintptr_t)arg;
    int received = 0, left = 0;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        struct race r = {.a = weft_chan_new(sizeof(int), cap),
                         .b = weft_chan_new(sizeof(int), cap), .got = 0};
        HREQUIRE(r.a && r.b, -ENOMEM);
        weft_task *s = weft_spawn(race_selector, &r);
        weft_task *p = weft_spawn(race_sender, &r);
        HREQUIRE(s && p, -ENOMEM);
        for (int k = 0; k < round % 4; k++)
            weft_yield();
        weft_cancel(s);
        HCHECK_INT_EQ(weft_join(s), 0);
        if (r.rc == 0) {
            HCHECK_INT_EQ(r.got, 1);
            received++;
        } else {
            HCHECK_INT_EQ(r.rc, -ECANCELED);
            HCHECK_INT_EQ(r.got, 0);
            int v = 0;
            HCHECK_INT_EQ(weft_chan_recv(r.a, &v), 0); /* still there */
            HCHECK_INT_EQ(v, 1);
            left++;
        }
        HCHECK_INT_EQ(weft_join(p), 0);
        int v;
        HCHECK_INT_EQ(weft_chan_try_recv(r.a, &v), -EAGAIN);
        weft_chan_free(r.a);
        weft_chan_free(r.b);
    }
    HCHECK_INT_EQ(received + left, RACE_ROUNDS);
    return 0;
}

START_TEST(cancels_racing_senders_lose_and_duplicate_nothing)
{
    size_t cap = _i % 2;
    ck_assert_int_eq(harness_run(workers_of(_i / 2 + 1), race_main, (void *)(uintptr_t)cap), 0);
}
END_TEST

/* --- plain-thread senders, many workers -------------------------------- */

enum { THREAD_N = 5000 };

struct thread_feed {
    weft_chan *c;
    int base;
};

static void *feed_thread(void *arg)
{
    struct thread_feed *f = arg;
    for (int i = 0; i < THREAD_N; i++) {
        int v = f->base + i;
        if (weft_chan_send(f->c, &v) != 0)
            return (void *)1;
    }
    weft_chan_close(f->c);
    return NULL;
}

struct two_chans {
    weft_chan *c[2];
};

static int drain_two(void *arg)
{
    struct two_chans *tc = arg;
    int next[2] = {0, THREAD_N}, open = 2;
    bool closed[2] = {false, false};
    int got;
    while (open > 0) {
        weft_sel cs[2];
        size_t n = 0;
        int which[2];
        for (int k = 0; k < 2; k++)
            if (!closed[k]) {
                which[n] = k;
                cs[n++] = weft_sel_recv(tc->c[k], &got);
            }
        int i = weft_select(cs, n, -1);
        HREQUIRE(i >= 0 && (size_t)i < n, -1);
        int k = which[i];
        if (cs[i].result == -EPIPE) {
            closed[k] = true;
            open--;
            continue;
        }
        HCHECK_INT_EQ(cs[i].result, 0);
        HCHECK_INT_EQ(got, next[k]); /* each sender's order kept */
        next[k]++;
    }
    HCHECK_INT_EQ(next[0], THREAD_N);
    HCHECK_INT_EQ(next[1], 2 * THREAD_N);
    return 0;
}

START_TEST(plain_thread_senders_across_workers)
{
    static const size_t caps[] = {0, 1, 16};
    struct two_chans tc = {{weft_chan_new(sizeof(int), caps[_i % 3]),
                            weft_chan_new(sizeof(int), caps[_i % 3])}};
    ck_assert(tc.c[0] && tc.c[1]);
    struct thread_feed f[2] = {{tc.c[0], 0}, {tc.c[1], THREAD_N}};
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        ck_assert_int_eq(pthread_create(&th[k], NULL, feed_thread, &f[k]), 0);
    ck_assert_int_eq(harness_run(workers_of(_i / 3), drain_two, &tc), 0);
    for (int k = 0; k < 2; k++) {
        void *ret;
        pthread_join(th[k], &ret);
        ck_assert_ptr_null(ret);
    }
    weft_chan_free(tc.c[0]);
    weft_chan_free(tc.c[1]);
}
END_TEST

/* --- rendezvous, selects facing each other, same channel twice --------- */

enum { FACE_N = 2000 };

struct face {
    weft_chan *c, *idle, *idle2; /* idle: nobody sends; idle2: nobody receives */
    long sum;
};

static int face_sender(void *arg)
{
    struct face *f = arg;
    int dummy;
    for (int i = 1; i <= FACE_N; i++) {
        weft_sel cs[] = {weft_sel_recv(f->idle, &dummy), weft_sel_send(f->c, &i)};
        int k = weft_select(cs, 2, -1);
        HREQUIRE(k == 1 && cs[1].result == 0, -1);
    }
    return 0;
}

static int face_receiver(void *arg)
{
    struct face *f = arg;
    int v, dummy = 0;
    for (int i = 1; i <= FACE_N; i++) {
        weft_sel cs[] = {weft_sel_send(f->idle2, &dummy), weft_sel_recv(f->c, &v)};
        int k = weft_select(cs, 2, -1);
        HREQUIRE(k == 1 && cs[1].result == 0, -1);
        HCHECK_INT_EQ(v, i);
        f->sum += v;
    }
    return 0;
}

static int face_main(void *arg)
{
    (void)arg;
    struct face f = {weft_chan_new(sizeof(int), 0), weft_chan_new(sizeof(int), 0),
                     weft_chan_new(sizeof(int), 0), 0};
    HREQUIRE(f.c && f.idle && f.idle2, -ENOMEM);
    weft_task *s = weft_spawn(face_sender, &f);
    weft_task *r = weft_spawn(face_receiver, &f);
    HREQUIRE(s && r, -ENOMEM);
    HCHECK_INT_EQ(weft_join(s), 0);
    HCHECK_INT_EQ(weft_join(r), 0);
    HCHECK_INT_EQ(f.sum, (long)FACE_N * (FACE_N + 1) / 2);
    weft_chan_free(f.c);
    weft_chan_free(f.idle);
    weft_chan_free(f.idle2);
    return 0;
}

START_TEST(two_selects_meet_on_a_rendezvous_channel)
{
    ck_assert_int_eq(harness_run(workers_of(_i), face_main, NULL), 0);
}
END_TEST

static int plain_partner(void *arg)
{
    struct face *f = arg;
    int v;
    for (int i = 1; i <= FACE_N; i++) {
        if (i % 2) {
            HREQUIRE(weft_chan_send(f->c, &i) == 0, -1);
        } else {
            HREQUIRE(weft_chan_recv(f->c, &v) == 0, -1);
            HCHECK_INT_EQ(v, -i);
        }
    }
    return 0;
}

/* One select with a send and a receive case on the same rendezvous
 * channel, facing plain sends and receives: it completes whichever its
 * partner offers, and never meets itself. */
static int same_chan_main(void *arg)
{
    (void)arg;
    struct face f = {weft_chan_new(sizeof(int), 0), NULL, NULL, 0};
    HREQUIRE(f.c != NULL, -ENOMEM);
    weft_task *p = weft_spawn(plain_partner, &f);
    HREQUIRE(p != NULL, -ENOMEM);
    int sent = 0, got = 0;
    for (int i = 1; i <= FACE_N; i++) {
        int out = -(i + (i % 2 ? 1 : 0)), in = 0;
        weft_sel cs[] = {weft_sel_recv(f.c, &in), weft_sel_send(f.c, &out),
                         weft_sel_recv(f.c, &in)};
        int k = weft_select(cs, 3, -1);
        HREQUIRE(k >= 0 && k < 3 && cs[k].result == 0, -1);
        if (k == 1) {
            sent++;
            HCHECK_INT_EQ(i % 2, 0);
        } else {
            got++;
            HCHECK_INT_EQ(in, i);
        }
    }
    HCHECK_INT_EQ(sent, FACE_N / 2);
    HCHECK_INT_EQ(got, FACE_N / 2);
    HCHECK_INT_EQ(weft_join(p), 0);
    weft_chan_free(f.c);
    return 0;
}

START_TEST(same_channel_in_several_cases)
{
    ck_assert_int_eq(harness_run(workers_of(_i), same_chan_main, NULL), 0);
}
END_TEST

/* --- a task another task joins ----------------------------------------- */

struct joined {
    weft_task *t;
    int rc, result;
};

static int sleeper(void *arg)
{
    (void)arg;
    weft_sleep(WEFT_MSEC(5));
    return 31;
}

static int long_sleeper(void *arg)
{
    (void)arg;
    weft_sleep(WEFT_MSEC(100));
    return 31;
}

static int task_selector(void *arg)
{
    struct joined *j = arg;
    weft_sel cs[] = {weft_sel_task(j->t)};
    j->rc = weft_select(cs, 1, -1);
    j->result = cs[0].result;
    return 0;
}

static int joined_main(void *arg)
{
    (void)arg;
    enum { N_SEL = 20 };
    weft_task *t = weft_spawn(sleeper, NULL);
    HREQUIRE(t != NULL, -ENOMEM);
    struct joined j[N_SEL];
    weft_task *s[N_SEL];
    for (int i = 0; i < N_SEL; i++) {
        j[i] = (struct joined){.t = t, .rc = 1};
        s[i] = weft_spawn(task_selector, &j[i]);
        HREQUIRE(s[i] != NULL, -ENOMEM);
    }
    /* Every selector is waiting (or has seen the end) before the join. */
    weft_yield();
    for (int i = 0; i < N_SEL; i++)
        HCHECK_INT_EQ(weft_join(s[i]), 0);
    HCHECK_INT_EQ(weft_join(t), 31);
    for (int i = 0; i < N_SEL; i++) {
        HCHECK_INT_EQ(j[i].rc, 0);
        HCHECK_INT_EQ(j[i].result, 31);
    }
    return 0;
}

/* The joins above run after the selects: here the join comes first and
 * the selects wait beside it. */
static int join_beside_main(void *arg)
{
    (void)arg;
    weft_task *t = weft_spawn(long_sleeper, NULL);
    HREQUIRE(t != NULL, -ENOMEM);
    struct joined j = {.t = t, .rc = 1};
    weft_task *s = weft_spawn(task_selector, &j);
    HREQUIRE(s != NULL, -ENOMEM);
    /* The join below frees t once it ends: the select must be waiting by
     * then (it then learns the end from its waiter, never from t). */
    HWAIT_PARKED(NULL, "select", 1);
    HCHECK(!weft_task_done(t));
    HCHECK_INT_EQ(weft_join(t), 31); /* the select does not take the join */
    HCHECK_INT_EQ(weft_join(s), 0);
    HCHECK_INT_EQ(j.rc, 0);
    HCHECK_INT_EQ(j.result, 31);
    return 0;
}

START_TEST(many_selects_on_a_task_another_joins)
{
    ck_assert_int_eq(harness_run(workers_of(_i), joined_main, NULL), 0);
    ck_assert_int_eq(harness_run(workers_of(_i), join_beside_main, NULL), 0);
}
END_TEST

/* --- misuse ------------------------------------------------------------ */

static int misuse_main(void *arg)
{
    (void)arg;
    weft_chan *c = weft_chan_new(sizeof(int), 1);
    HREQUIRE(c != NULL, -ENOMEM);
    int v = 0;
    HCHECK_INT_EQ(weft_select(NULL, 1, -1), -EINVAL);
    HCHECK_INT_EQ(weft_select(NULL, 0, -1), -EINVAL);
    HCHECK_INT_EQ(weft_select(NULL, 0, WEFT_FOREVER), -EINVAL); /* no timeout either */
    weft_sel zero[1];
    memset(zero, 0, sizeof zero);
    HCHECK_INT_EQ(weft_select(zero, 1, 0), -EINVAL);
    weft_sel bad[][2] = {
        {weft_sel_recv(NULL, &v), weft_sel_recv(c, &v)},
        {weft_sel_recv(c, NULL), weft_sel_recv(c, &v)},
        {weft_sel_send(NULL, &v), weft_sel_recv(c, &v)},
        {weft_sel_send(c, NULL), weft_sel_recv(c, &v)},
        {weft_sel_task(NULL), weft_sel_recv(c, &v)},
        {weft_sel_task(weft_current()), weft_sel_recv(c, &v)},
        {weft_sel_event(NULL), weft_sel_recv(c, &v)},
        {weft_sel_fd(-1, WEFT_READABLE), weft_sel_recv(c, &v)},
        {weft_sel_fd(0, 0), weft_sel_recv(c, &v)},
        {weft_sel_fd(0, 0x100), weft_sel_recv(c, &v)},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        HCHECK_MSG(weft_select(bad[i], 2, 0) == -EINVAL, "bad case set %zu", i);
    /* Nothing was done by a refused select: c is still empty. */
    HCHECK_INT_EQ(weft_chan_len(c), 0);
    weft_chan_free(c);
    return 0;
}

/* An event set and cleared at once by a plain thread while a select waits
 * on it: the set wakes the select's clause, which completes the case, as a
 * set wakes weft_event_wait's waiters (the select does not look again and
 * find it clear). */
struct pulse {
    weft_event *e;
    atomic_int go;
};

static void *pulse_thread(void *arg)
{
    struct pulse *p = arg;
    while (!atomic_load(&p->go))
        sched_yield();
    weft_event_set(p->e);
    weft_event_clear(p->e);
    return NULL;
}

static int pulsed_select(void *arg)
{
    struct pulse *p = arg;
    weft_sel s[] = {weft_sel_event(p->e)};
    return weft_select(s, 1, WEFT_SEC(30));
}

static int pulsed_event_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 20; round++) {
        struct pulse p = {.e = weft_event_new()};
        HREQUIRE(p.e != NULL, -ENOMEM);
        weft_task *t = weft_spawn(pulsed_select, &p);
        HREQUIRE(t != NULL, -ENOMEM);
        HWAIT_PARKED(NULL, "select", 1);
        pthread_t th;
        HREQUIRE(pthread_create(&th, NULL, pulse_thread, &p) == 0, -1);
        atomic_store(&p.go, 1);
        HCHECK_INT_EQ(weft_join(t), 0);
        pthread_join(th, NULL);
        weft_event_free(p.e);
    }
    return 0;
}

START_TEST(pulsed_event_completes_a_waiting_select)
{
    ck_assert_int_eq(harness_run(workers_of(_i), pulsed_event_main, NULL), 0);
}
END_TEST

START_TEST(bad_arguments_are_rejected)
{
    weft_chan *c = weft_chan_new(sizeof(int), 1);
    ck_assert_ptr_nonnull(c);
    int v = 1;
    ck_assert_int_eq(weft_chan_send(c, &v), 0);
    weft_sel cs[] = {weft_sel_recv(c, &v)};
    ck_assert_int_eq(weft_select(cs, 1, -1), -EPERM); /* plain thread */
    ck_assert_int_eq(weft_chan_len(c), 1);
    weft_chan_free(c);
    ck_assert_int_eq(harness_run(1, misuse_main, NULL), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("select");

    TCase *tc = harness_tcase(s, "kinds", 60);
    tcase_add_loop_test(tc, each_kind_completes_when_ready, 0, 3);
    tcase_add_loop_test(tc, each_kind_wakes_a_waiting_select, 0, 3);
    tcase_add_loop_test(tc, pulsed_event_completes_a_waiting_select, 0, 3);
    tcase_add_loop_test(tc, ready_cases_are_chosen_uniformly, 0, 3);

    tc = harness_tcase(s, "interrupt", 60);
    tcase_add_loop_test(tc, timeouts_and_deadline_scopes, 0, 3);
    tcase_add_loop_test(tc, cancelled_select_completes_nothing, 0, 3);
    tcase_add_loop_test(tc, cancels_racing_senders_lose_and_duplicate_nothing, 0, 6);

    tc = harness_tcase(s, "partners", 120);
    tcase_add_loop_test(tc, plain_thread_senders_across_workers, 0, 9);
    tcase_add_loop_test(tc, rendezvous_with_a_partner_already_blocked, 0, 3);
    tcase_add_loop_test(tc, two_selects_meet_on_a_rendezvous_channel, 0, 3);
    tcase_add_loop_test(tc, same_channel_in_several_cases, 0, 3);
    tcase_add_loop_test(tc, many_selects_on_a_task_another_joins, 0, 3);

    tc = harness_tcase(s, "misuse", 20);
    tcase_add_test(tc, bad_arguments_are_rejected);
    return s;
}
