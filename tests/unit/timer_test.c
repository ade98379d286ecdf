/* SPDX-License-Identifier: MIT */
/* The timer heap alone: fire order by deadline, equal deadlines, removal
 * from any position, a randomized run against a reference, and disarm
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
static int n_fired;
static int64_t last_fired_deadline;
static bool order_ok;

static void record(struct timer *t)
{
    int i = (int)(t - timers);
    fired[n_fired++] = i;
    if (t->deadline < last_fired_deadline)
        order_ok = false;
    last_fired_deadline = t->deadline;
    /* A firing timer still names its heap (disarm waits for us). */
    if (atomic_load(&t->heap) == NULL)
        order_ok = false;
}

static void reset_record(void)
{
    n_fired = 0;
    last_fired_deadline = INT64_MIN;
    order_ok = true;
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

START_TEST(fires_in_deadline_order_and_only_when_due)
{
    struct timer_heap h;
    ck_assert_int_eq(weft__timer_heap_init(&h), 0);
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        atomic_init(&timers[i].heap, NULL);
        ck_assert_int_eq(weft__timer_arm(&h, &timers[i], (int64_t)(rng(&s) % 1000) + 1), 0);
    }
    ck_assert_uint_eq(weft__timer_count(&h), N);
    reset_record();
    ck_assert_uint_eq(weft__timer_fire_due(&h, 0, false, record), 0);
    ck_assert_uint_eq(weft__timer_fire_due(&h, 500, false, record), (unsigned)n_fired);
    for (int i = 0; i < n_fired; i++)
        ck_assert_int_le(timers[fired[i]].deadline, 500);
    int first = n_fired;
    ck_assert_int_eq(weft__timer_next(&h) > 500, 1);
    weft__timer_fire_due(&h, 1000, false, record);
    ck_assert_int_eq(n_fired, N);
    ck_assert(order_ok);
    ck_assert_int_gt(first, 0);
    ck_assert_int_eq(weft__timer_next(&h), INT64_MAX);
    for (int i = 0; i < N; i++)
        ck_assert_ptr_null(atomic_load(&timers[i].heap));
    weft__timer_heap_destroy(&h);
}
END_TEST

START_TEST(equal_deadlines_all_fire)
{
    struct timer_heap h;
    ck_assert_int_eq(weft__timer_heap_init(&h), 0);
    for (int i = 0; i < 100; i++) {
        atomic_init(&timers[i].heap, NULL);
        ck_assert_int_eq(weft__timer_arm(&h, &timers[i], 42), 0);
    }
    reset_record();
    ck_assert_uint_eq(weft__timer_fire_due(&h, 41, false, record), 0);
    ck_assert_uint_eq(weft__timer_fire_due(&h, 42, false, record), 100);
    ck_assert(order_ok);
    weft__timer_heap_destroy(&h);
}
END_TEST

/* Random arm / disarm / fire against a reference of armed deadlines. */
START_TEST(random_arm_disarm_fire_matches_a_reference)
{
    struct timer_heap h;
    ck_assert_int_eq(weft__timer_heap_init(&h), 0);
    static bool armed[N];
    for (int i = 0; i < N; i++) {
        atomic_init(&timers[i].heap, NULL);
        armed[i] = false;
    }
    uint64_t s = 12345;
    int64_t now = 0;
    for (int step = 0; step < 200000; step++) {
        int i = (int)(rng(&s) % N);
        switch (rng(&s) % 8) {
        case 0: case 1: case 2:
            if (!armed[i]) {
                ck_assert_int_eq(weft__timer_arm(&h, &timers[i], now + (int64_t)(rng(&s) % 500)), 0);
                armed[i] = true;
            }
            break;
        case 3: case 4:
            weft__timer_disarm(&timers[i]);
            armed[i] = false;
            ck_assert_ptr_null(atomic_load(&timers[i].heap));
            break;
        default: {
            now += (int64_t)(rng(&s) % 20);
            reset_record();
            weft__timer_fire_due(&h, now, false, record);
            ck_assert(order_ok);
            for (int k = 0; k < n_fired; k++) {
                ck_assert(armed[fired[k]]);
                ck_assert_int_le(timers[fired[k]].deadline, now);
                armed[fired[k]] = false;
            }
            /* Nothing due is left behind, and the cached next is exact. */
            int64_t min = INT64_MAX;
            uint32_t n_armed = 0;
            for (int k = 0; k < N; k++) {
                if (armed[k]) {
                    n_armed++;
                    ck_assert_int_gt(timers[k].deadline, now);
                    if (timers[k].deadline < min)
                        min = timers[k].deadline;
                }
            }
            ck_assert_uint_eq(weft__timer_count(&h), n_armed);
            ck_assert_int_eq(weft__timer_next(&h), min);
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

static void slow_fire(struct timer *t)
{
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
        weft__timer_fire_due(&r->h, INT64_MAX - 1, round % 2, slow_fire);
    }
    return NULL;
}

START_TEST(disarm_waits_for_a_fire_in_progress)
{
    static struct race r;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(weft__timer_heap_init(&r.h), 0);
    atomic_init(&r.o.tm.heap, NULL);
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
    TCase *tc = harness_tcase(s, "heap", 30);
    tcase_add_test(tc, fires_in_deadline_order_and_only_when_due);
    tcase_add_test(tc, equal_deadlines_all_fire);
    tcase_add_test(tc, random_arm_disarm_fire_matches_a_reference);
    tcase_add_test(tc, disarm_waits_for_a_fire_in_progress);
    return s;
}
