/* SPDX-License-Identifier: MIT */
/* The timer wheel alone: fire order by tick, never early, equal deadlines
 * in arming order, far deadlines (overflow), removal from any slot, a
 * randomized run over every level against a reference, and disarm
 * racing a fire from another thread (the callback is never running, and
 * never runs, once disarm has returned). */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "harness.h"
#include "sched/timer.h"

#define N 4096

static struct timer timers[N];
static int fired[N];
static bool past_due[N]; /* armed with its deadline's tick already over */
static int n_fired;
static int64_t last_fired_deadline;
static bool order_ok;

#define TICK (INT64_C(1) << WEFT__TIMER_TICK_SHIFT)

/* Due at now: the tick boundary at or after its deadline has come. */
static bool due(int64_t deadline, int64_t now)
{
    return deadline <= (now / TICK) * TICK;
}

static int64_t tick_of(int64_t deadline) { return (deadline + TICK - 1) / TICK; }

static void record(struct timer *t, void *ctx)
{
    int64_t now = *(int64_t *)ctx;
    int i = (int)(t - timers);
    fired[n_fired++] = i;
    /* Ticks in order; never early. */
    if (t->deadline > now)
        order_ok = false;
    /* One armed already due joins the first slot due: order aside. */
    if (!past_due[i]) {
        if (tick_of(t->deadline) < tick_of(last_fired_deadline))
            order_ok = false;
        last_fired_deadline = t->deadline;
    }
    /* A firing timer still names its wheel (disarm waits for us). */
    if (atomic_load(&t->heap) == NULL)
        order_ok = false;
}

static void reset_record(void)
{
    n_fired = 0;
    last_fired_deadline = 0;
    order_ok = true;
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static unsigned fire(struct timer_heap *h, int64_t now)
{
    return weft__timer_fire_due(h, now, false, record, &now);
}

START_TEST(fires_in_tick_order_and_only_when_due)
{
    struct timer_heap h;
    ck_assert_int_eq(weft__timer_heap_init(&h), 0);
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        atomic_init(&timers[i].heap, NULL);
        timers[i].arg = &timers[i];
        ck_assert_int_eq(weft__timer_arm(&h, &timers[i], (int64_t)(rng(&s) % (1000 * TICK)) + 1), 0);
    }
    ck_assert_uint_eq(weft__timer_count(&h), N);
    reset_record();
    ck_assert_uint_eq(fire(&h, 0), 0);
    ck_assert_uint_eq(fire(&h, 500 * TICK + 7), (unsigned)n_fired);
    int n_due = 0;
    for (int i = 0; i < N; i++)
        n_due += due(timers[i].deadline, 500 * TICK + 7);
    ck_assert_int_eq(n_fired, n_due);
    ck_assert_int_gt(n_fired, 0);
    ck_assert_int_eq(weft__timer_next(&h) > 500 * TICK + 7, 1);
    fire(&h, 1000 * TICK);
    ck_assert_int_eq(n_fired, N);
    ck_assert(order_ok);
    ck_assert_int_eq(weft__timer_next(&h), INT64_MAX);
    ck_assert_uint_eq(weft__timer_count(&h), 0);
    for (int i = 0; i < N; i++)
        ck_assert_ptr_null(atomic_load(&timers[i].heap));
    weft__timer_heap_destroy(&h);
}
END_TEST

START_TEST(equal_deadlines_all_fire_in_arming_order)
{
    struct timer_heap h;
    ck_assert_int_eq(weft__timer_heap_init(&h), 0);
    for (int i = 0; i < 100; i++) {
        atomic_init(&timers[i].heap, NULL);
        timers[i].arg = &timers[i];
        ck_assert_int_eq(weft__timer_arm(&h, &timers[i], 42 * TICK), 0);
    }
    reset_record();
    ck_assert_uint_eq(fire(&h, 42 * TICK - 1), 0);
    ck_assert_uint_eq(fire(&h, 42 * TICK), 100);
    ck_assert(order_ok);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(fired[i], i);
    weft__timer_heap_destroy(&h);
}
END_TEST

/* Deadlines past the wheel's span (2^36 ticks) and WEFT_FOREVER-like ones
 * stay armed, report a next expiry, and fire when their time comes. */
START_TEST(far_deadlines_wait_and_fire)
{
    struct timer_heap h;
    ck_assert_int_eq(weft__timer_heap_init(&h), 0);
    int64_t far[] = {INT64_MAX - 1, INT64_C(1) << 62, (INT64_C(1) << 56) + 12345,
                     (INT64_C(1) << 50) + 3, 5 * TICK};
    int n = (int)(sizeof far / sizeof far[0]);
    for (int i = 0; i < n; i++) {
        atomic_init(&timers[i].heap, NULL);
        timers[i].arg = &timers[i];
        ck_assert_int_eq(weft__timer_arm(&h, &timers[i], far[i]), 0);
    }
    reset_record();
    ck_assert_uint_eq(fire(&h, 5 * TICK), 1);
    ck_assert_int_eq(fired[0], n - 1);
    ck_assert_int_ne(weft__timer_next(&h), INT64_MAX);
    ck_assert_uint_eq(fire(&h, (INT64_C(1) << 50) + 2), 0);
    ck_assert_uint_eq(fire(&h, (INT64_C(1) << 50) + TICK), 1);
    ck_assert_uint_eq(fire(&h, INT64_C(1) << 56), 0);
    ck_assert_uint_eq(fire(&h, (INT64_C(1) << 56) + 2 * TICK), 1);
    ck_assert_uint_eq(fire(&h, (INT64_C(1) << 62) + TICK), 1);
    ck_assert_uint_eq(fire(&h, INT64_MAX - 1), 0); /* its tick is past the clock's end */
    ck_assert_uint_eq(weft__timer_count(&h), 1);
    weft__timer_disarm(&timers[0]);
    ck_assert_int_eq(weft__timer_next(&h), INT64_MAX);
    ck_assert(order_ok);
    weft__timer_heap_destroy(&h);
}
END_TEST

/* Random arm / disarm / fire against a reference of armed deadlines,
 * spread over every level: what fires is exactly what is due, and the
 * published next expiry is never after the earliest deadline's tick. */
START_TEST(random_arm_disarm_fire_matches_a_reference)
{
    struct timer_heap h;
    ck_assert_int_eq(weft__timer_heap_init(&h), 0);
    static bool armed[N];
    for (int i = 0; i < N; i++) {
        atomic_init(&timers[i].heap, NULL);
        timers[i].arg = &timers[i];
        armed[i] = false;
    }
    uint64_t s = 12345;
    int64_t now = 1000 * TICK;
    for (int step = 0; step < 200000; step++) {
        int i = (int)(rng(&s) % N);
        switch (rng(&s) % 8) {
        case 0: case 1: case 2:
            if (!armed[i]) {
                /* Spans from past deadlines to 2^40 ticks ahead. */
                int64_t span = INT64_C(1) << (rng(&s) % 60);
                int64_t dl = now - 3 * TICK + (int64_t)(rng(&s) % (uint64_t)span);
                ck_assert_int_eq(weft__timer_arm(&h, &timers[i], dl), 0);
                armed[i] = true;
                past_due[i] = tick_of(dl) <= now / TICK + 1;
            }
            break;
        case 3: case 4:
            weft__timer_disarm(&timers[i]);
            armed[i] = false;
            ck_assert_ptr_null(atomic_load(&timers[i].heap));
            break;
        default: {
            int64_t jump = INT64_C(1) << (rng(&s) % 32);
            now += (int64_t)(rng(&s) % (uint64_t)jump);
            reset_record();
            fire(&h, now);
            ck_assert(order_ok);
            for (int k = 0; k < n_fired; k++) {
                ck_assert(armed[fired[k]]);
                ck_assert(due(timers[fired[k]].deadline, now));
                armed[fired[k]] = false;
            }
            int64_t min = INT64_MAX;
            uint32_t n_armed = 0;
            bool left_due = false; /* one check: each ck_assert writes */
            for (int k = 0; k < N; k++) {
                if (armed[k]) {
                    n_armed++;
                    left_due |= due(timers[k].deadline, now);
                    if (timers[k].deadline < min)
                        min = timers[k].deadline;
                }
            }
            ck_assert(!left_due);
            ck_assert_uint_eq(weft__timer_count(&h), n_armed);
            int64_t next = weft__timer_next(&h);
            if (n_armed == 0) {
                ck_assert_int_eq(next, INT64_MAX);
            } else {
                ck_assert_int_le(next, tick_of(min) * TICK);
                ck_assert_int_gt(next, now);
            }
            break;
        }
        }
    }
    weft__timer_heap_destroy(&h);
}
END_TEST

/* --- disarm racing a fire on another thread --------------------------- */

struct owner {
    struct timer tm;
    atomic_int in_callback;
    atomic_int after_disarm; /* set once disarm has returned */
    atomic_int bad;
};

static void slow_fire(struct timer *t, void *ctx)
{
    (void)ctx;
    struct owner *o = (struct owner *)((char *)t - offsetof(struct owner, tm));
    atomic_store(&o->in_callback, 1);
    for (volatile int i = 0; i < 200; i++)
        ;
    if (atomic_load(&o->after_disarm))
        atomic_store(&o->bad, 1);
    atomic_store(&o->in_callback, 0);
}

struct race {
    struct timer_heap h;
    struct owner o;
    atomic_int round;
    atomic_int stop;
};

static void *firer(void *arg)
{
    struct race *r = arg;
    int seen = 0;
    while (!atomic_load(&r->stop)) {
        int round = atomic_load(&r->round);
        if (round == seen)
            continue;
        seen = round;
        weft__timer_fire_due(&r->h, INT64_MAX - 1, round % 2, slow_fire, NULL);
    }
    return NULL;
}

START_TEST(disarm_waits_for_a_fire_in_progress)
{
    static struct race r;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(weft__timer_heap_init(&r.h), 0);
    atomic_init(&r.o.tm.heap, NULL);
    r.o.tm.arg = &r.o;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, firer, &r), 0);
    for (int round = 1; round <= 20000; round++) {
        atomic_store(&r.o.after_disarm, 0);
        ck_assert_int_eq(weft__timer_arm(&r.h, &r.o.tm, 1), 0);
        atomic_store(&r.round, round);
        for (volatile int i = 0; i < (round % 64) * 4; i++)
            ;
        weft__timer_disarm(&r.o.tm);
        atomic_store(&r.o.after_disarm, 1);
        ck_assert_int_eq(atomic_load(&r.o.in_callback), 0);
        ck_assert_ptr_null(atomic_load(&r.o.tm.heap));
    }
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    ck_assert_int_eq(atomic_load(&r.o.bad), 0);
    weft__timer_heap_destroy(&r.h);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("timer");
    TCase *tc = harness_tcase(s, "wheel", 30);
    tcase_add_test(tc, fires_in_tick_order_and_only_when_due);
    tcase_add_test(tc, equal_deadlines_all_fire_in_arming_order);
    tcase_add_test(tc, far_deadlines_wait_and_fire);
    tcase_add_test(tc, random_arm_disarm_fire_matches_a_reference);
    tcase_add_test(tc, disarm_waits_for_a_fire_in_progress);
    return s;
}
