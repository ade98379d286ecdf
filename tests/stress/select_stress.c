/* SPDX-License-Identifier: MIT */
/* Select storm: driver tasks on many workers spawn children that send or
 * receive through weft_select over random subsets of four channels
 * (two rendezvous, capacities 1 and 8; the same channel may appear twice
 * in one select), with random timeouts, deadline scopes and event cases,
 * and cancel them at random moments from the driver's worker while they
 * wait; plain threads send and try_send meanwhile. Invariants: every
 * value whose send completed is received exactly once (counts and sums
 * conserved, no duplicate), nothing is received that was not sent, and
 * every call returns one of its documented codes. */
#define _GNU_SOURCE 1
#include "stress.h"

#define N_DRIVERS 32
#define N_CHANS 4
#define N_THREADS 2
#define VAL_CAP (UINT32_C(1) << 24)

static struct world {
    weft_chan *chan[N_CHANS]; /* uint32_t values */
    weft_event *ev;
    atomic_uint next_val;
    atomic_long sent_n, recv_n;
    atomic_ullong sent_sum, recv_sum;
    _Atomic uint64_t *seen; /* VAL_CAP bits: received already */
    atomic_long selects, completed, cancelled, timed_out, cases_ev;
    atomic_bool stop_threads;
} W;

static const size_t caps[N_CHANS] = {0, 0, 1, 8};

static void note_sent(uint32_t v)
{
    atomic_fetch_add(&W.sent_n, 1);
    atomic_fetch_add(&W.sent_sum, v);
}

static void note_recv(uint32_t v)
{
    if (v == 0 || v >= VAL_CAP) {
        stress_fail("received value %u that was never sent", v);
        return;
    }
    uint64_t bit = UINT64_C(1) << (v % 64);
    if (atomic_fetch_or(&W.seen[v / 64], bit) & bit)
        stress_fail("value %u received twice", v);
    atomic_fetch_add(&W.recv_n, 1);
    atomic_fetch_add(&W.recv_sum, v);
}

static uint32_t new_val(void)
{
    uint32_t v = atomic_fetch_add(&W.next_val, 1);
    if (v >= VAL_CAP) {
        stress_fail("out of values");
        return 0;
    }
    return v;
}

struct child {
    uint64_t rng;
    bool sender;
    int n_ops;
};

/* One select: 1..4 channel cases (the same channel may repeat), maybe an
 * event case; each completed case is accounted for. */
static int one_select(struct child *c)
{
    weft_sel cs[6];
    uint32_t got[6] = {0};
    size_t n = 1 + stress_below(&c->rng, 4);
    uint32_t v = c->sender ? new_val() : 0;
    if (c->sender && v == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        weft_chan *ch = W.chan[stress_below(&c->rng, N_CHANS)];
        /* Mostly one direction, sometimes both, as a relay would. */
        bool send = stress_below(&c->rng, 8) == 0 ? !c->sender : c->sender;
        if (send && !c->sender)
            send = false; /* receivers send nothing: values are senders' */
        cs[i] = send ? weft_sel_send(ch, &v) : weft_sel_recv(ch, &got[i]);
    }
    if (stress_below(&c->rng, 4) == 0)
        cs[n++] = weft_sel_event(W.ev);
    int64_t timeout;
    switch (stress_below(&c->rng, 4)) {
    case 0:
        timeout = 0;
        break;
    case 1:
        timeout = (int64_t)stress_below(&c->rng, 2000) * 1000;
        break;
    default:
        timeout = -1; /* the driver's cancel or the scope ends it */
    }
    weft_deadline d;
    bool scoped = stress_below(&c->rng, 3) == 0;
    if (scoped)
        weft_deadline_enter(&d, (int64_t)stress_below(&c->rng, 3000) * 1000);
    atomic_fetch_add(&W.selects, 1);
    int k = weft_select(cs, n, timeout);
    if (scoped)
        weft_deadline_leave(&d);
    if (k == -ECANCELED) {
        atomic_fetch_add(&W.cancelled, 1);
        return k;
    }
    if (k == -ETIMEDOUT) {
        atomic_fetch_add(&W.timed_out, 1);
        return 0;
    }
    if (k < 0 || (size_t)k >= n) {
        stress_fail("weft_select returned %d for %zu cases", k, n);
        return -1;
    }
    atomic_fetch_add(&W.completed, 1);
    if (cs[k].weft__kind == 0) /* never: built by the builders */
        stress_fail("case %d unset", k);
    if ((size_t)k == n - 1 && cs[k].weft__obj == (void *)W.ev) {
        atomic_fetch_add(&W.cases_ev, 1);
        STRESS_CHECK(cs[k].result == 0, "event case result %d", cs[k].result);
        return 0;
    }
    STRESS_CHECK(cs[k].result == 0, "channel case result %d (nothing is closed)",
                 cs[k].result);
    if (cs[k].weft__elem == (void *)&v)
        note_sent(v);
    else
        note_recv(got[k]);
    for (size_t i = 0; i < n; i++)
        if ((int)i != k && got[i] != 0)
            stress_fail("case %zu of a select that completed case %d received %u", i, k,
                        got[i]);
    return 0;
}

static int child_main(void *arg)
{
    struct child *c = arg;
    for (int i = 0; i < c->n_ops; i++)
        if (one_select(c) == -ECANCELED)
            break;
    free(c);
    return 0;
}

static int driver_main(void *arg)
{
    uint64_t rng = stress_stream((uint64_t)(uintptr_t)arg + 1);
    while (stress_running() && atomic_load(&stress_g.n_failures) == 0) {
        struct child *c = malloc(sizeof *c);
        if (!c) {
            stress_fail("out of memory");
            return -1;
        }
        c->rng = stress_rand(&rng);
        c->sender = stress_below(&rng, 2) == 0;
        c->n_ops = 1 + (int)stress_below(&rng, 20);
        weft_task *t = weft_spawn(child_main, c);
        if (!t) {
            free(c);
            stress_fail("spawn: %s", weft_strerror(-errno));
            return -1;
        }
        switch (stress_below(&rng, 4)) {
        case 0: /* let it run a while (its selects may wait forever) */
            weft_sleep((int64_t)stress_below(&rng, 2000) * 1000);
            weft_cancel(t);
            break;
        case 1:
            weft_cancel(t);
            break;
        default: {
            unsigned y = stress_below(&rng, 16);
            for (unsigned i = 0; i < y; i++)
                weft_yield();
            if (stress_below(&rng, 2))
                weft_sleep((int64_t)stress_below(&rng, 500) * 1000);
            weft_cancel(t);
        }
        }
        STRESS_CHECK(weft_join(t) == 0, "a child failed");
        if (stress_below(&rng, 64) == 0) {
            weft_event_set(W.ev);
            weft_yield();
            weft_event_clear(W.ev);
        }
    }
    return 0;
}

/* A plain thread that sends with send (on the buffered channels) and
 * try_send (on all of them). */
static void *sender_thread(void *arg)
{
    uint64_t rng = stress_stream(1000 + (uint64_t)(uintptr_t)arg);
    while (!atomic_load(&W.stop_threads)) {
        uint32_t v = new_val();
        if (v == 0)
            return NULL;
        unsigned k = stress_below(&rng, N_CHANS);
        int rc;
        if (caps[k] > 0 && stress_below(&rng, 4) == 0) {
            rc = weft_chan_send(W.chan[k], &v);
        } else {
            while ((rc = weft_chan_try_send(W.chan[k], &v)) == -EAGAIN &&
                   !atomic_load(&W.stop_threads))
                sched_yield();
        }
        if (rc == 0)
            note_sent(v);
        else if (rc != -EAGAIN)
            stress_fail("plain send: %s", weft_strerror(rc));
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int storm(void *arg)
{
    (void)arg;
    weft_task *d[N_DRIVERS];
    for (int i = 0; i < N_DRIVERS; i++) {
        d[i] = weft_spawn(driver_main, (void *)(uintptr_t)i);
        if (!d[i]) {
            stress_fail("spawn driver");
            return -1;
        }
    }
    for (int i = 0; i < N_DRIVERS; i++)
        STRESS_CHECK(weft_join(d[i]) == 0, "a driver failed");
    return 0;
}

/* After the storm: receives what is left (buffered, or from a plain
 * thread still waiting in send) until the threads are gone. */
static int drain(void *arg)
{
    (void)arg;
    for (int k = 0; k < N_CHANS; k++) {
        uint32_t v;
        int rc;
        while ((rc = weft_chan_try_recv(W.chan[k], &v)) == 0)
            note_recv(v);
        STRESS_CHECK(rc == -EAGAIN || rc == -EPIPE, "drain: %s", weft_strerror(rc));
    }
    return 0;
}

int main(void)
{
    stress_init("select_stress");
    W.seen = calloc(VAL_CAP / 64, sizeof *W.seen);
    W.ev = weft_event_new();
    atomic_init(&W.next_val, 1);
    for (int k = 0; k < N_CHANS; k++)
        W.chan[k] = weft_chan_new(sizeof(uint32_t), caps[k]);
    if (!W.seen || !W.ev) {
        fprintf(stderr, "select_stress: out of memory\n");
        return 1;
    }
    weft_runtime *rt = stress_runtime();
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        pthread_create(&th[i], NULL, sender_thread, (void *)(uintptr_t)i);
    STRESS_CHECK(weft_runtime_block_on(rt, storm, NULL) == 0, "storm");
    atomic_store(&W.stop_threads, true);
    /* A thread blocked in weft_chan_send on a full channel needs room. */
    for (int i = 0; i < N_THREADS; i++) {
        for (;;) {
            STRESS_CHECK(weft_runtime_block_on(rt, drain, NULL) == 0, "drain");
            if (pthread_tryjoin_np(th[i], NULL) == 0)
                break;
            sched_yield();
        }
    }
    STRESS_CHECK(weft_runtime_block_on(rt, drain, NULL) == 0, "drain");
    stress_free_runtime(rt);
    long sn = atomic_load(&W.sent_n), rn = atomic_load(&W.recv_n);
    unsigned long long ss = atomic_load(&W.sent_sum), rs = atomic_load(&W.recv_sum);
    STRESS_CHECK(sn == rn, "%ld values sent, %ld received", sn, rn);
    STRESS_CHECK(ss == rs, "sum sent %llu, received %llu", ss, rs);
    printf("select_stress: %ld selects: %ld completed, %ld cancelled, %ld timed out, %ld on the "
           "event; %ld values sent, %ld received\n",
           atomic_load(&W.selects), atomic_load(&W.completed), atomic_load(&W.cancelled),
           atomic_load(&W.timed_out), atomic_load(&W.cases_ev), sn, rn);
    for (int k = 0; k < N_CHANS; k++)
        weft_chan_free(W.chan[k]);
    weft_event_free(W.ev);
    free(W.seen);
    return stress_finish();
}
