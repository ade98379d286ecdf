/* SPDX-License-Identifier: MIT */
/* The idle protocol alone (sched/idle.c), with plain threads standing in
 * for workers: the searcher cap, who notify picks (and when it picks
 * nobody), the sleeper list and bitmap, the last-searcher hand-on, and a
 * hammer of 16 and 64 threads parking and unparking around a shared pool
 * of work in which no wake-up may be lost (a lost one hangs the round)
 * and every count returns to its idle value. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"
#include "sched/idle.h"

static unsigned searching(struct idle *d)
{
    return atomic_load_explicit(&d->n_searching, memory_order_relaxed);
}

static unsigned unparked(struct idle *d)
{
    return atomic_load_explicit(&d->n_unparked, memory_order_relaxed);
}

static uint64_t mask_word(struct idle *d, unsigned w)
{
    return atomic_load_explicit(&d->sleeping_mask[w], memory_order_relaxed);
}

/* Lock held or single-threaded: the list, the slots, the counters and the
 * bitmap agree. */
static void check_consistent(struct idle *d)
{
    ck_assert_uint_eq(d->n_sleepers + unparked(d), d->n_workers);
    unsigned listed = 0, n_search = 0;
    for (unsigned i = 0; i < d->n_workers; i++) {
        if (d->slot[i].sleeping) {
            listed++;
            ck_assert_uint_lt(d->slot[i].pos, d->n_sleepers);
            ck_assert_uint_eq(d->sleepers[d->slot[i].pos], i);
            /* Listed sleepers are marked (the bit outlives the listing
             * until the worker itself wakes: sleep_end). */
            ck_assert(weft__idle_is_sleeping(d, i));
            ck_assert(!d->slot[i].searching);
        }
        if (d->slot[i].searching)
            n_search++;
    }
    ck_assert_uint_eq(listed, d->n_sleepers);
    ck_assert_uint_eq(n_search, searching(d));
}

START_TEST(init_state)
{
    struct idle d;
    ck_assert_int_eq(weft__idle_init(&d, 8), 0);
    ck_assert_uint_eq(searching(&d), 0);
    ck_assert_uint_eq(unparked(&d), 8);
    ck_assert_uint_eq(weft__idle_awake(&d), 8);
    ck_assert_uint_eq(d.n_sleepers, 0);
    for (unsigned w = 0; w < WEFT__IDLE_MASK_WORDS; w++)
        ck_assert_uint_eq(mask_word(&d, w), 0);
    for (unsigned i = 0; i < 8; i++) {
        ck_assert(!weft__idle_is_sleeping(&d, i));
        ck_assert(!weft__idle_searching(&d, i));
    }
    /* Nobody sleeps: nobody to wake. */
    ck_assert_int_eq(weft__idle_notify(&d), -1);
    ck_assert_uint_eq(searching(&d), 0);
    ck_assert_uint_eq(unparked(&d), 8);
    check_consistent(&d);
    weft__idle_destroy(&d);
    weft__idle_destroy(&d); /* idempotent */
}
END_TEST

/* At most ceil(n/2) searchers (any number with one worker); a searcher
 * asking again is not counted twice; only the last one to stop is told
 * to notify. */
static const unsigned cap_n[] = {1, 2, 3, 8, 64, 256};

START_TEST(searcher_cap)
{
    unsigned n = cap_n[_i];
    struct idle d;
    ck_assert_int_eq(weft__idle_init(&d, n), 0);
    unsigned cap = n == 1 ? 1 : (n + 1) / 2;
    for (unsigned i = 0; i < n; i++) {
        bool ok = weft__idle_start_searching(&d, i);
        ck_assert_msg(ok == (i < cap), "n=%u worker %u: start_searching %d", n, i, ok);
        ck_assert(weft__idle_searching(&d, i) == ok);
    }
    ck_assert_uint_eq(searching(&d), cap);
    /* Already counted: true, not counted again. */
    ck_assert(weft__idle_start_searching(&d, 0));
    ck_assert_uint_eq(searching(&d), cap);
    /* Not searching: stop is a no-op returning false. */
    if (cap < n) {
        ck_assert(!weft__idle_stop_searching(&d, cap));
        ck_assert_uint_eq(searching(&d), cap);
    }
    /* While at the cap a searcher may leave and another take its place. */
    if (cap < n && cap > 1) {
        ck_assert(!weft__idle_stop_searching(&d, 0));
        ck_assert(weft__idle_start_searching(&d, cap));
        ck_assert(!weft__idle_start_searching(&d, 0));
        ck_assert(!weft__idle_stop_searching(&d, cap));
        ck_assert(weft__idle_start_searching(&d, 0));
    }
    check_consistent(&d);
    for (unsigned i = 0; i < cap; i++) {
        bool last = weft__idle_stop_searching(&d, i);
        ck_assert_msg(last == (i == cap - 1), "n=%u stop %u: last=%d", n, i, last);
        ck_assert(!weft__idle_searching(&d, i));
    }
    ck_assert_uint_eq(searching(&d), 0);
    ck_assert(!weft__idle_stop_searching(&d, 0));
    ck_assert_uint_eq(searching(&d), 0);
    check_consistent(&d);
    weft__idle_destroy(&d);
}
END_TEST

/* Sleepers are woken last-in first-out, one per notify, and only while
 * nobody searches; the woken one starts out searching and awake. */
START_TEST(notify_picks_latest_sleeper_only_without_searchers)
{
    struct idle d;
    ck_assert_int_eq(weft__idle_init(&d, 4), 0);
    /* A searcher going to sleep stops its search. */
    ck_assert(weft__idle_start_searching(&d, 2));
    ck_assert_uint_eq(searching(&d), 1);
    weft__idle_sleep_begin(&d, 2);
    ck_assert_uint_eq(searching(&d), 0);
    ck_assert(!weft__idle_searching(&d, 2));
    weft__idle_sleep_begin(&d, 0);
    weft__idle_sleep_begin(&d, 3);
    ck_assert_uint_eq(unparked(&d), 1);
    ck_assert_uint_eq(d.n_sleepers, 3);
    ck_assert_uint_eq(mask_word(&d, 0), (1u << 0) | (1u << 2) | (1u << 3));
    check_consistent(&d);

    /* Worker 1 searches: a notify leaves the work to it. */
    ck_assert(weft__idle_start_searching(&d, 1));
    ck_assert_int_eq(weft__idle_notify(&d), -1);
    ck_assert_uint_eq(d.n_sleepers, 3);
    ck_assert(weft__idle_stop_searching(&d, 1)); /* last searcher */

    ck_assert_int_eq(weft__idle_notify(&d), 3);
    ck_assert_uint_eq(searching(&d), 1);
    ck_assert(weft__idle_searching(&d, 3));
    ck_assert_uint_eq(unparked(&d), 2);
    ck_assert_uint_eq(d.n_sleepers, 2);
    /* Still marked until it wakes itself: it has not run yet. */
    ck_assert(weft__idle_is_sleeping(&d, 3));
    /* The woken worker now searches: no second wake-up. */
    ck_assert_int_eq(weft__idle_notify(&d), -1);
    ck_assert_uint_eq(d.n_sleepers, 2);
    check_consistent(&d);

    ck_assert(weft__idle_sleep_end(&d, 3)); /* notified */
    ck_assert(!weft__idle_is_sleeping(&d, 3));
    ck_assert(weft__idle_searching(&d, 3));
    ck_assert(weft__idle_stop_searching(&d, 3));

    ck_assert_int_eq(weft__idle_notify(&d), 0);
    ck_assert(weft__idle_sleep_end(&d, 0));
    ck_assert(weft__idle_stop_searching(&d, 0));
    ck_assert_int_eq(weft__idle_notify(&d), 2);
    ck_assert(weft__idle_sleep_end(&d, 2));
    ck_assert(weft__idle_stop_searching(&d, 2));
    /* Everyone awake: nobody to wake. */
    ck_assert_int_eq(weft__idle_notify(&d), -1);
    ck_assert_uint_eq(unparked(&d), 4);
    ck_assert_uint_eq(searching(&d), 0);
    ck_assert_uint_eq(mask_word(&d, 0), 0);
    check_consistent(&d);
    weft__idle_destroy(&d);
}
END_TEST

/* A sleeper woken by its own timer or descriptor (not by notify) takes
 * itself off the list: the last listed takes its place, notify never
 * returns it, and its count comes back. */
START_TEST(sleep_end_without_notify_unlists)
{
    struct idle d;
    ck_assert_int_eq(weft__idle_init(&d, 6), 0);
    for (unsigned i = 0; i < 4; i++)
        weft__idle_sleep_begin(&d, i); /* list: 0 1 2 3 */
    ck_assert_uint_eq(unparked(&d), 2);
    ck_assert(!weft__idle_sleep_end(&d, 1)); /* list: 0 3 2 */
    ck_assert(!weft__idle_is_sleeping(&d, 1));
    ck_assert(!weft__idle_searching(&d, 1));
    ck_assert_uint_eq(unparked(&d), 3);
    ck_assert_uint_eq(searching(&d), 0);
    ck_assert_uint_eq(mask_word(&d, 0), (1u << 0) | (1u << 2) | (1u << 3));
    check_consistent(&d);
    static const int order[] = {2, 3, 0};
    for (unsigned k = 0; k < 3; k++) {
        ck_assert_int_eq(weft__idle_notify(&d), order[k]);
        ck_assert(weft__idle_sleep_end(&d, (unsigned)order[k]));
        ck_assert(weft__idle_stop_searching(&d, (unsigned)order[k]));
        check_consistent(&d);
    }
    ck_assert_int_eq(weft__idle_notify(&d), -1);
    /* The last sleeper unlisting itself (no swap with another). */
    weft__idle_sleep_begin(&d, 5);
    ck_assert(!weft__idle_sleep_end(&d, 5));
    ck_assert_int_eq(weft__idle_notify(&d), -1);
    ck_assert_uint_eq(unparked(&d), 6);
    ck_assert_uint_eq(d.n_sleepers, 0);
    ck_assert_uint_eq(mask_word(&d, 0), 0);
    check_consistent(&d);
    weft__idle_destroy(&d);
}
END_TEST

/* A sleeper that re-checks and finds work notifies: it may pick itself. */
START_TEST(sleeper_notifying_may_pick_itself)
{
    struct idle d;
    ck_assert_int_eq(weft__idle_init(&d, 2), 0);
    weft__idle_sleep_begin(&d, 1);
    ck_assert_int_eq(weft__idle_notify(&d), 1);
    ck_assert(weft__idle_sleep_end(&d, 1));
    ck_assert(weft__idle_searching(&d, 1));
    ck_assert(weft__idle_stop_searching(&d, 1));
    check_consistent(&d);
    weft__idle_destroy(&d);
}
END_TEST

/* Bits in every word of the mask, for the highest worker count. */
START_TEST(mask_spans_words)
{
    struct idle d;
    ck_assert_int_eq(weft__idle_init(&d, 256), 0);
    static const unsigned who[] = {0, 63, 64, 127, 128, 200, 255};
    for (unsigned k = 0; k < sizeof who / sizeof *who; k++)
        weft__idle_sleep_begin(&d, who[k]);
    ck_assert_uint_eq(mask_word(&d, 0), (UINT64_C(1) << 0) | (UINT64_C(1) << 63));
    ck_assert_uint_eq(mask_word(&d, 1), (UINT64_C(1) << 0) | (UINT64_C(1) << 63));
    ck_assert_uint_eq(mask_word(&d, 2), UINT64_C(1) << 0);
    ck_assert_uint_eq(mask_word(&d, 3), (UINT64_C(1) << (200 - 192)) | (UINT64_C(1) << 63));
    for (unsigned i = 0; i < 256; i++) {
        bool listed = false;
        for (unsigned k = 0; k < sizeof who / sizeof *who; k++)
            listed |= who[k] == i;
        ck_assert(weft__idle_is_sleeping(&d, i) == listed);
    }
    ck_assert_uint_eq(unparked(&d), 256 - 7);
    check_consistent(&d);
    for (unsigned k = 0; k < sizeof who / sizeof *who; k++)
        ck_assert(!weft__idle_sleep_end(&d, who[k]));
    for (unsigned w = 0; w < WEFT__IDLE_MASK_WORDS; w++)
        ck_assert_uint_eq(mask_word(&d, w), 0);
    ck_assert_uint_eq(unparked(&d), 256);
    check_consistent(&d);
    weft__idle_destroy(&d);
}
END_TEST

/* --- the hammer ---------------------------------------------------------
 * n threads run the worker loop's protocol (worker.c: take work; else
 * search a few rounds; else sleep_begin, re-check, notify if work, wait
 * for a wake-up, sleep_end) around a pool of tokens. The main thread adds
 * a burst of tokens per round (notifying once per token or once per
 * burst), and processing a token sometimes adds another from a worker.
 * Waits have no timeout (except in the "timers" variant), so a lost
 * wake-up leaves tokens with every thread asleep: the round never ends
 * and the test fails. Between rounds every thread must be asleep with
 * every count at its idle value. */

#define HAMMER_SEARCH_ROUNDS 4

struct wakeup { /* a poller's wake-up: a wake before the wait is kept */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool pending;
};

struct hammer;

struct hthread {
    struct hammer *h;
    unsigned index;
    pthread_t tid;
    struct wakeup wk;
    _Atomic int in_sleep; /* between sleep_begin and sleep_end */
    uint64_t rng;
};

struct hammer {
    struct idle d;
    unsigned n;
    bool timers;               /* some threads also wake on a timeout */
    _Atomic long avail;        /* tokens ready to take */
    _Atomic long outstanding;  /* added, not yet processed */
    _Atomic long child_budget; /* tokens workers may still add this round */
    _Atomic long added, taken;
    _Atomic long n_notified;    /* notify returned a worker */
    _Atomic long n_end_notified; /* sleep_end returned true */
    _Atomic long n_sleeps;
    _Atomic long bad_pick;      /* notify picked a thread not asleep */
    _Atomic bool stop;
    struct hthread *t;
};

static void wakeup_post(struct wakeup *w)
{
    pthread_mutex_lock(&w->mu);
    w->pending = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

/* Waits for a post (timeout_ns < 0: forever); true if one came. */
static bool wakeup_wait(struct wakeup *w, int64_t timeout_ns)
{
    pthread_mutex_lock(&w->mu);
    if (timeout_ns < 0) {
        while (!w->pending)
            pthread_cond_wait(&w->cond, &w->mu);
    } else if (!w->pending) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + timeout_ns;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        while (!w->pending && pthread_cond_timedwait(&w->cond, &w->mu, &ts) == 0)
            ;
    }
    bool got = w->pending;
    w->pending = false;
    pthread_mutex_unlock(&w->mu);
    return got;
}

static void notify_and_wake(struct hammer *h)
{
    int i = weft__idle_notify(&h->d);
    if (i < 0)
        return;
    HREQUIRE(i < (int)h->n, );
    atomic_fetch_add(&h->n_notified, 1);
    /* Without timers a picked thread cannot leave its sleep before our
     * post, so it must be between sleep_begin and sleep_end now. */
    if (!h->timers && !atomic_load(&h->t[i].in_sleep))
        atomic_fetch_add(&h->bad_pick, 1);
    wakeup_post(&h->t[i].wk);
}

static bool take(struct hammer *h)
{
    long v = atomic_load(&h->avail);
    while (v > 0)
        if (atomic_compare_exchange_weak(&h->avail, &v, v - 1))
            return true;
    return false;
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Adds one token (seq_cst RMW, then notify: notify's fence orders them). */
static void add_token(struct hammer *h, bool notify)
{
    atomic_fetch_add(&h->outstanding, 1);
    atomic_fetch_add(&h->added, 1);
    atomic_fetch_add(&h->avail, 1);
    if (notify)
        notify_and_wake(h);
}

static void process(struct hthread *t)
{
    struct hammer *h = t->h;
    atomic_fetch_add(&h->taken, 1);
    if (next_rand(&t->rng) % 4 == 0 && atomic_fetch_sub(&h->child_budget, 1) > 0)
        add_token(h, true);
    atomic_fetch_sub(&h->outstanding, 1);
}

static void *hammer_thread(void *arg)
{
    struct hthread *t = arg;
    struct hammer *h = t->h;
    unsigned i = t->index;
    for (;;) {
        bool got = take(h);
        if (!got && weft__idle_start_searching(&h->d, i)) {
            for (int r = 0; !got && r < HAMMER_SEARCH_ROUNDS; r++) {
                got = take(h);
                if (!got)
                    sched_yield();
            }
        }
        if (got) {
            if (weft__idle_stop_searching(&h->d, i))
                notify_and_wake(h); /* the last searcher: maybe more */
            process(t);
            continue;
        }
        /* The worker's last maintenance before it parks: widens the
         * window in which work arrives unseen, which the re-check after
         * sleep_begin must cover. */
        sched_yield();
        atomic_store(&t->in_sleep, 1);
        atomic_fetch_add(&h->n_sleeps, 1);
        weft__idle_sleep_begin(&h->d, i);
        if (atomic_load(&h->avail) > 0)
            notify_and_wake(h);
        wakeup_wait(&t->wk, h->timers && i % 4 == 3 ? 500000 : -1);
        if (weft__idle_sleep_end(&h->d, i))
            atomic_fetch_add(&h->n_end_notified, 1);
        atomic_store(&t->in_sleep, 0);
        if (atomic_load(&h->stop)) {
            weft__idle_stop_searching(&h->d, i);
            break;
        }
    }
    return NULL;
}

static bool round_done(void *arg)
{
    struct hammer *h = arg;
    return atomic_load(&h->outstanding) == 0;
}

static bool all_asleep(void *arg)
{
    struct hammer *h = arg;
    return atomic_load(&h->d.n_unparked) == 0;
}

static const struct {
    unsigned n;
    bool timers;
} hammer_cfg[] = {{16, false}, {64, false}, {16, true}, {64, true}};

START_TEST(hammer_no_lost_wakeup)
{
    unsigned n = hammer_cfg[_i].n;
    struct hammer *h = calloc(1, sizeof *h);
    ck_assert_ptr_nonnull(h);
    h->n = n;
    h->timers = hammer_cfg[_i].timers;
    ck_assert_int_eq(weft__idle_init(&h->d, n), 0);
    h->t = calloc(n, sizeof *h->t);
    ck_assert_ptr_nonnull(h->t);
    for (unsigned i = 0; i < n; i++) {
        struct hthread *t = &h->t[i];
        t->h = h;
        t->index = i;
        t->rng = 0x9E3779B97F4A7C15ull * (i + 1);
        pthread_mutex_init(&t->wk.mu, NULL);
        pthread_cond_init(&t->wk.cond, NULL);
    }
    for (unsigned i = 0; i < n; i++)
        ck_assert_int_eq(pthread_create(&h->t[i].tid, NULL, hammer_thread, &h->t[i]), 0);

    uint64_t rng = 12345 + n;
    unsigned rounds = n <= 16 ? 300 : 100;
    for (unsigned r = 0; r < rounds; r++) {
        if (!h->timers) {
            /* Every round starts with every thread asleep, idle counts. */
            ck_assert_msg(harness_spin_until(all_asleep, h), "round %u: threads never all slept",
                          r);
            pthread_mutex_lock(&h->d.lock);
            ck_assert_uint_eq(h->d.n_sleepers, n);
            ck_assert_uint_eq(atomic_load(&h->d.n_searching), 0);
            for (unsigned i = 0; i < n; i++) {
                ck_assert(h->d.slot[i].sleeping);
                ck_assert(!h->d.slot[i].searching);
                ck_assert(weft__idle_is_sleeping(&h->d, i));
            }
            check_consistent(&h->d);
            pthread_mutex_unlock(&h->d.lock);
        }
        atomic_store(&h->child_budget, (long)n);
        unsigned burst = 1 + (unsigned)(next_rand(&rng) % (2 * n));
        bool per_token = next_rand(&rng) & 1;
        for (unsigned k = 0; k < burst; k++) {
            add_token(h, per_token);
            if (per_token && k % 2)
                sched_yield(); /* let the burst meet threads going to sleep */
        }
        if (!per_token)
            notify_and_wake(h); /* one wake-up for the whole burst */
        ck_assert_msg(harness_spin_until(round_done, h),
                      "round %u: %ld tokens never taken (%ld available): a lost wake-up", r,
                      atomic_load(&h->outstanding), atomic_load(&h->avail));
    }
    ck_assert_msg(h->timers || harness_spin_until(all_asleep, h), "threads never all slept");
    atomic_store(&h->stop, true);
    for (unsigned i = 0; i < n; i++)
        wakeup_post(&h->t[i].wk);
    for (unsigned i = 0; i < n; i++)
        ck_assert_int_eq(pthread_join(h->t[i].tid, NULL), 0);

    /* Every thread left awake and not searching. */
    ck_assert_uint_eq(atomic_load(&h->d.n_searching), 0);
    ck_assert_uint_eq(atomic_load(&h->d.n_unparked), n);
    ck_assert_uint_eq(h->d.n_sleepers, 0);
    for (unsigned w = 0; w < WEFT__IDLE_MASK_WORDS; w++)
        ck_assert_uint_eq(mask_word(&h->d, w), 0);
    check_consistent(&h->d);
    ck_assert_int_eq(atomic_load(&h->avail), 0);
    ck_assert_int_eq(atomic_load(&h->added), atomic_load(&h->taken));
    /* Each pick by notify is seen once by the picked thread's sleep_end. */
    ck_assert_int_eq(atomic_load(&h->n_notified), atomic_load(&h->n_end_notified));
    ck_assert_int_eq(atomic_load(&h->bad_pick), 0);
    if (!h->timers) /* every sleep but the last ends by a notify */
        ck_assert_int_eq(atomic_load(&h->n_sleeps), atomic_load(&h->n_notified) + (long)n);
    if (!h->timers) /* each round starts with all asleep: someone is woken */
        ck_assert_int_ge(atomic_load(&h->n_notified), (long)rounds);

    for (unsigned i = 0; i < n; i++) {
        pthread_mutex_destroy(&h->t[i].wk.mu);
        pthread_cond_destroy(&h->t[i].wk.cond);
    }
    weft__idle_destroy(&h->d);
    free(h->t);
    free(h);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("idle");
    TCase *tc = harness_tcase(s, "unit", 10);
    tcase_add_test(tc, init_state);
    tcase_add_loop_test(tc, searcher_cap, 0, (int)(sizeof cap_n / sizeof *cap_n));
    tcase_add_test(tc, notify_picks_latest_sleeper_only_without_searchers);
    tcase_add_test(tc, sleep_end_without_notify_unlists);
    tcase_add_test(tc, sleeper_notifying_may_pick_itself);
    tcase_add_test(tc, mask_spans_words);
    tc = harness_tcase(s, "hammer", 120);
    tcase_add_loop_test(tc, hammer_no_lost_wakeup, 0,
                        (int)(sizeof hammer_cfg / sizeof *hammer_cfg));
    return s;
}
