/* SPDX-License-Identifier: MIT */
/* The shared inject queue alone (sched/inject.c): empty behaviour, FIFO
 * order, the length, whole-batch pops within max (at least one batch),
 * and producer and consumer threads where every task is taken exactly
 * once and each producer's tasks come out in the order it pushed them.
 * The tasks are bare structs: the queue touches only qnext, qlast and
 * qlen. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "harness.h"
#include "internal.h"
#include "sched/inject.h"
#include "sched/sched.h"

#define N_TASKS 4096
static struct weft_task tasks[N_TASKS];

static unsigned idx(const struct weft_task *t) { return (unsigned)(t - tasks); }

/* Links tasks[from .. from+n-1] and pushes them as one batch. */
static void push_run(struct inject *q, unsigned from, unsigned n)
{
    for (unsigned k = 0; k + 1 < n; k++)
        tasks[from + k].qnext = &tasks[from + k + 1];
    weft__inject_push_batch(q, &tasks[from], &tasks[from + n - 1], n);
}

/* Pops with max and checks the chain: n tasks, consecutive from `from`,
 * NULL-terminated. */
static void pop_expect(struct inject *q, size_t max, unsigned from, unsigned n)
{
    size_t got = 99;
    struct weft_task *t = weft__inject_pop_batch(q, max, &got);
    ck_assert_uint_eq(got, n);
    if (n == 0) {
        ck_assert_ptr_null(t);
        return;
    }
    for (unsigned k = 0; k < n; k++, t = t->qnext) {
        ck_assert_ptr_nonnull(t);
        ck_assert_uint_eq(idx(t), from + k);
    }
    ck_assert_ptr_null(t);
}

START_TEST(empty_queue)
{
    struct inject q;
    ck_assert_int_eq(weft__inject_init(&q), 0);
    ck_assert_uint_eq(weft__inject_len(&q), 0);
    pop_expect(&q, 16, 0, 0);
    pop_expect(&q, 0, 0, 0);
    /* Emptied again after use: still empty, and usable. */
    weft__inject_push(&q, &tasks[0]);
    ck_assert_uint_eq(weft__inject_len(&q), 1);
    pop_expect(&q, 16, 0, 1);
    ck_assert_uint_eq(weft__inject_len(&q), 0);
    ck_assert_ptr_null(q.head);
    ck_assert_ptr_null(q.tail);
    pop_expect(&q, 16, 0, 0);
    weft__inject_push(&q, &tasks[1]);
    pop_expect(&q, 16, 1, 1);
    weft__inject_destroy(&q);
}
END_TEST

START_TEST(singles_fifo)
{
    struct inject q;
    ck_assert_int_eq(weft__inject_init(&q), 0);
    for (unsigned i = 0; i < 100; i++) {
        tasks[i].qnext = &tasks[N_TASKS - 1]; /* garbage: push must reset it */
        weft__inject_push(&q, &tasks[i]);
        ck_assert_uint_eq(weft__inject_len(&q), i + 1);
    }
    pop_expect(&q, 1, 0, 1);
    ck_assert_uint_eq(weft__inject_len(&q), 99);
    pop_expect(&q, 9, 1, 9);
    ck_assert_uint_eq(weft__inject_len(&q), 90);
    /* Pushes after pops go to the back. */
    weft__inject_push(&q, &tasks[100]);
    pop_expect(&q, 1000, 10, 91);
    ck_assert_uint_eq(weft__inject_len(&q), 0);
    pop_expect(&q, 1000, 0, 0);
    weft__inject_destroy(&q);
}
END_TEST

/* Batches are never split: a pop takes as many whole batches as fit in
 * max, and at least one, however large. */
START_TEST(batches_whole_within_max)
{
    struct inject q;
    ck_assert_int_eq(weft__inject_init(&q), 0);
    push_run(&q, 0, 3);  /* 0..2 */
    push_run(&q, 3, 3);  /* 3..5 */
    push_run(&q, 6, 3);  /* 6..8 */
    push_run(&q, 9, 1);  /* 9 */
    push_run(&q, 10, 40); /* 10..49 */
    push_run(&q, 50, 2); /* 50..51 */
    ck_assert_uint_eq(weft__inject_len(&q), 52);
    pop_expect(&q, 5, 0, 3); /* 3 + 3 > 5 */
    ck_assert_uint_eq(weft__inject_len(&q), 49);
    pop_expect(&q, 7, 3, 7); /* 3 + 3 + 1 == 7 */
    ck_assert_uint_eq(weft__inject_len(&q), 42);
    pop_expect(&q, 1, 10, 40); /* one batch larger than max */
    ck_assert_uint_eq(weft__inject_len(&q), 2);
    pop_expect(&q, 0, 50, 2); /* max 0: still one batch */
    ck_assert_uint_eq(weft__inject_len(&q), 0);
    pop_expect(&q, 5, 0, 0);
    /* Singles and batches mixed, then everything at once. */
    weft__inject_push(&q, &tasks[100]);
    push_run(&q, 101, 4);
    weft__inject_push(&q, &tasks[105]);
    pop_expect(&q, 5, 100, 5); /* 1 + 4, then 105 would be 6 */
    pop_expect(&q, 5, 105, 1);
    push_run(&q, 200, 8);
    push_run(&q, 208, 8);
    pop_expect(&q, 16, 200, 16);
    ck_assert_uint_eq(weft__inject_len(&q), 0);
    weft__inject_destroy(&q);
}
END_TEST

/* --- producers and consumers ------------------------------------------- */

#define N_PROD 4
#define N_CONS 4
#define PER_PROD (N_TASKS / N_PROD)

static struct inject mt_q;
static _Atomic unsigned seen[N_TASKS];
static _Atomic unsigned n_taken;
static _Atomic unsigned n_dup, n_order, n_count;

static void *producer(void *arg)
{
    unsigned p = (unsigned)(uintptr_t)arg;
    uint64_t rng = 0x9E3779B97F4A7C15ull * (p + 1);
    unsigned base = p * PER_PROD, k = 0;
    while (k < PER_PROD) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        unsigned n = 1 + (unsigned)(rng % 8);
        if (n > PER_PROD - k)
            n = PER_PROD - k;
        if (n == 1)
            weft__inject_push(&mt_q, &tasks[base + k]);
        else
            push_run(&mt_q, base + k, n);
        k += n;
        if (rng & 16)
            sched_yield();
    }
    return NULL;
}

static void *consumer(void *arg)
{
    unsigned c = (unsigned)(uintptr_t)arg;
    uint64_t rng = 0xD1B54A32D192ED03ull * (c + 1);
    int last[N_PROD]; /* the last sequence number seen per producer */
    for (unsigned p = 0; p < N_PROD; p++)
        last[p] = -1;
    int64_t end = harness_now_ns() + harness_wait_ns();
    while (atomic_load(&n_taken) < N_TASKS) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        size_t max = 1 + (size_t)(rng % 16), n = 0, walked = 0;
        struct weft_task *t = weft__inject_pop_batch(&mt_q, max, &n);
        if (!t) {
            if (n != 0)
                atomic_fetch_add(&n_count, 1);
            if (harness_now_ns() > end) {
                harness_fail(__FILE__, __LINE__, "consumer", "tasks never came");
                break;
            }
            sched_yield();
            continue;
        }
        for (; t; t = t->qnext, walked++) {
            unsigned i = idx(t);
            if (atomic_fetch_add(&seen[i], 1) != 0)
                atomic_fetch_add(&n_dup, 1);
            unsigned p = i / PER_PROD;
            int s = (int)(i % PER_PROD);
            if (s <= last[p])
                atomic_fetch_add(&n_order, 1);
            last[p] = s;
        }
        if (walked != n)
            atomic_fetch_add(&n_count, 1);
        atomic_fetch_add(&n_taken, (unsigned)n);
    }
    return NULL;
}

START_TEST(producers_consumers_each_once_in_order)
{
    ck_assert_int_eq(weft__inject_init(&mt_q), 0);
    pthread_t prod[N_PROD], cons[N_CONS];
    for (unsigned c = 0; c < N_CONS; c++)
        ck_assert_int_eq(pthread_create(&cons[c], NULL, consumer, (void *)(uintptr_t)c), 0);
    for (unsigned p = 0; p < N_PROD; p++)
        ck_assert_int_eq(pthread_create(&prod[p], NULL, producer, (void *)(uintptr_t)p), 0);
    for (unsigned p = 0; p < N_PROD; p++)
        ck_assert_int_eq(pthread_join(prod[p], NULL), 0);
    for (unsigned c = 0; c < N_CONS; c++)
        ck_assert_int_eq(pthread_join(cons[c], NULL), 0);
    ck_assert_uint_eq(atomic_load(&n_taken), N_TASKS);
    ck_assert_uint_eq(atomic_load(&n_dup), 0);
    ck_assert_uint_eq(atomic_load(&n_order), 0);
    ck_assert_uint_eq(atomic_load(&n_count), 0);
    for (unsigned i = 0; i < N_TASKS; i++)
        ck_assert_msg(atomic_load(&seen[i]) == 1, "task %u taken %u times", i,
                      atomic_load(&seen[i]));
    ck_assert_uint_eq(weft__inject_len(&mt_q), 0);
    ck_assert_ptr_null(mt_q.head);
    ck_assert_ptr_null(mt_q.tail);
    size_t n = 7;
    ck_assert_ptr_null(weft__inject_pop_batch(&mt_q, 16, &n));
    ck_assert_uint_eq(n, 0);
    weft__inject_destroy(&mt_q);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("inject");
    TCase *tc = harness_tcase(s, "unit", 10);
    tcase_add_test(tc, empty_queue);
    tcase_add_test(tc, singles_fifo);
    tcase_add_test(tc, batches_whole_within_max);
    tc = harness_tcase(s, "threads", 60);
    tcase_add_test(tc, producers_consumers_each_once_in_order);
    return s;
}
