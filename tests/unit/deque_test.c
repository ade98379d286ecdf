/* SPDX-License-Identifier: MIT */
/* The run-queue ring alone: FIFO owner order, front pushes, overflow
 * halves, and a stress with several thief threads (the owner pushing at
 * both ends) where nothing is lost or run twice. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "harness.h"
#include "sched/deque.h"

/* Items are small integers disguised as pointers (0 is never used). */
#define ITEM(i) ((void *)(uintptr_t)(i))
#define VAL(p) ((uintptr_t)(p))

START_TEST(owner_pops_in_fifo_order)
{
    static struct deque q;
    weft__deque_init(&q);
    for (uintptr_t i = 1; i <= 100; i++)
        ck_assert(weft__deque_push_owner(&q, ITEM(i)));
    ck_assert_uint_eq(weft__deque_len(&q), 100);
    for (uintptr_t i = 1; i <= 100; i++)
        ck_assert_uint_eq(VAL(weft__deque_pop_owner(&q)), i);
    ck_assert_ptr_null(weft__deque_pop_owner(&q));
}
END_TEST

START_TEST(full_ring_refuses_then_gives_up_older_half)
{
    static struct deque q;
    weft__deque_init(&q);
    for (uintptr_t i = 1; i <= WEFT__DEQUE_CAP; i++)
        ck_assert(weft__deque_push_owner(&q, ITEM(i)));
    ck_assert(!weft__deque_push_owner(&q, ITEM(999)));
    void *out[WEFT__DEQUE_CAP / 2];
    unsigned n = weft__deque_take_half_owner(&q, out);
    ck_assert_uint_eq(n, WEFT__DEQUE_CAP / 2);
    for (unsigned i = 0; i < n; i++)
        ck_assert_uint_eq(VAL(out[i]), i + 1);
    ck_assert_uint_eq(VAL(weft__deque_pop_owner(&q)), WEFT__DEQUE_CAP / 2 + 1);
}
END_TEST

/* Front pushes are taken first, newest first, then the back in FIFO
 * order; a full ring refuses them too. */
START_TEST(front_pushes_run_first_newest_first)
{
    static struct deque q;
    weft__deque_init(&q);
    for (uintptr_t i = 1; i <= 5; i++)
        ck_assert(weft__deque_push_owner(&q, ITEM(i)));
    ck_assert(weft__deque_push_front_owner(&q, ITEM(100)));
    ck_assert(weft__deque_push_front_owner(&q, ITEM(101)));
    ck_assert_uint_eq(weft__deque_len(&q), 7);
    ck_assert_uint_eq(VAL(weft__deque_pop_owner(&q)), 101);
    ck_assert_uint_eq(VAL(weft__deque_pop_owner(&q)), 100);
    for (uintptr_t i = 1; i <= 5; i++)
        ck_assert_uint_eq(VAL(weft__deque_pop_owner(&q)), i);
    ck_assert_ptr_null(weft__deque_pop_owner(&q));
    for (uintptr_t i = 1; i <= WEFT__DEQUE_CAP; i++)
        ck_assert(weft__deque_push_front_owner(&q, ITEM(i)));
    ck_assert(!weft__deque_push_front_owner(&q, ITEM(999)));
    ck_assert(!weft__deque_push_owner(&q, ITEM(999)));
    ck_assert_uint_eq(VAL(weft__deque_pop_owner(&q)), WEFT__DEQUE_CAP);
}
END_TEST

START_TEST(steal_takes_older_half_in_order)
{
    static struct deque a, b;
    weft__deque_init(&a);
    weft__deque_init(&b);
    for (uintptr_t i = 1; i <= 10; i++)
        weft__deque_push_owner(&a, ITEM(i));
    ck_assert_uint_eq(weft__deque_steal(&a, &b), 5);
    for (uintptr_t i = 1; i <= 5; i++)
        ck_assert_uint_eq(VAL(weft__deque_pop_owner(&b)), i);
    for (uintptr_t i = 6; i <= 10; i++)
        ck_assert_uint_eq(VAL(weft__deque_pop_owner(&a)), i);
    ck_assert_uint_eq(weft__deque_steal(&a, &b), 0);
}
END_TEST

/* ---- stress: one owner pushing/popping, N thieves stealing ---- */

#define N_THIEVES 3
#define N_ITEMS 2000000u

static struct deque owner_q;
static struct deque thief_q[N_THIEVES];
static _Atomic unsigned char *seen;
static _Atomic bool producer_done;
static _Atomic unsigned long consumed;

static void consume(void *p)
{
    uintptr_t v = VAL(p);
    if (v == 0 || v > N_ITEMS) {
        harness_fail(__FILE__, __LINE__, "valid item", "item %lu", (unsigned long)v);
        return;
    }
    unsigned char prev = atomic_fetch_add_explicit(&seen[v - 1], 1, memory_order_relaxed);
    if (prev != 0)
        harness_fail(__FILE__, __LINE__, "item taken once", "item %lu twice", (unsigned long)v);
    atomic_fetch_add_explicit(&consumed, 1, memory_order_relaxed);
}

static void *thief(void *arg)
{
    struct deque *mine = arg;
    for (;;) {
        void *p;
        while ((p = weft__deque_pop_owner(mine)) != NULL)
            consume(p);
        if (weft__deque_steal(&owner_q, mine) == 0 &&
            atomic_load_explicit(&producer_done, memory_order_acquire) &&
            weft__deque_len(&owner_q) == 0)
            break;
    }
    void *p;
    while ((p = weft__deque_pop_owner(mine)) != NULL)
        consume(p);
    return NULL;
}

START_TEST(thieves_lose_and_duplicate_nothing)
{
    seen = calloc(N_ITEMS, 1);
    ck_assert_ptr_nonnull(seen);
    weft__deque_init(&owner_q);
    atomic_store(&producer_done, false);
    atomic_store(&consumed, 0);
    pthread_t th[N_THIEVES];
    for (int i = 0; i < N_THIEVES; i++) {
        weft__deque_init(&thief_q[i]);
        ck_assert_int_eq(pthread_create(&th[i], NULL, thief, &thief_q[i]), 0);
    }
    void *overflow[WEFT__DEQUE_CAP / 2];
    for (uintptr_t i = 1; i <= N_ITEMS; i++) {
        /* Every fourth at the front: moves head back, against thieves
         * that copy through a head they read earlier (deque.h: ABA). */
        if (i % 4 == 0 && weft__deque_push_front_owner(&owner_q, ITEM(i)))
            continue;
        while (!weft__deque_push_owner(&owner_q, ITEM(i))) {
            /* Full: what the worker moves to the inject queue, we consume. */
            unsigned n = weft__deque_take_half_owner(&owner_q, overflow);
            for (unsigned k = 0; k < n; k++)
                consume(overflow[k]);
        }
        if (i % 3 == 0) {
            void *p = weft__deque_pop_owner(&owner_q);
            if (p)
                consume(p);
        }
    }
    atomic_store_explicit(&producer_done, true, memory_order_release);
    void *p;
    while ((p = weft__deque_pop_owner(&owner_q)) != NULL)
        consume(p);
    for (int i = 0; i < N_THIEVES; i++)
        pthread_join(th[i], NULL);
    harness_assert_clean();
    ck_assert_uint_eq(atomic_load(&consumed), N_ITEMS);
    for (unsigned i = 0; i < N_ITEMS; i++)
        ck_assert_msg(atomic_load(&seen[i]) == 1, "item %u seen %u times", i + 1,
                      (unsigned)atomic_load(&seen[i]));
    free((void *)seen);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("deque");
    TCase *tc = harness_tcase(s, "order", 10);
    tcase_add_test(tc, owner_pops_in_fifo_order);
    tcase_add_test(tc, full_ring_refuses_then_gives_up_older_half);
    tcase_add_test(tc, front_pushes_run_first_newest_first);
    tcase_add_test(tc, steal_takes_older_half_in_order);
    tc = harness_tcase(s, "stress", 120);
    tcase_add_test(tc, thieves_lose_and_duplicate_nothing);
    return s;
}
