/* SPDX-License-Identifier: MIT */
/* The context switch and the stack pool alone: switching back and forth,
 * 16-byte alignment of a new context, floating-point control state kept
 * per context, guard pages below stacks, and stack reuse. */
#include "config.h"

#include <fenv.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __x86_64__
#include <xmmintrin.h>
#endif

#include "harness.h"
#include "ctx/context.h"
#include "ctx/stack.h"

static struct ctx main_ctx, co_ctx;
static int counter;
static uintptr_t entry_sp_mod16 = 99;
static int co_round;

static void co_entry(void)
{
    /* A normal call leaves the stack pointer at 8 mod 16 on x86-64 entry
     * (return address pushed) and 0 mod 16 on AArch64; a 16-aligned local
     * must be honoured either way. */
    _Alignas(16) volatile char probe[16];
    entry_sp_mod16 = (uintptr_t)probe % 16;
    for (;;) {
        counter++;
        weft__ctx_switch(&co_ctx, &main_ctx);
    }
}

START_TEST(switch_round_trips_and_aligns)
{
    struct stack_pool pool;
    struct stack_cache cache = {0};
    ck_assert_int_eq(weft__stack_pool_init(&pool, 64 * 1024), 0);
    struct stack *s = weft__stack_get(&pool, &cache);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_ge(s->size, 64 * 1024 - 256);
    weft__ctx_make(&co_ctx, s->lo, s->size, co_entry);
    counter = 0;
    for (int i = 0; i < 100000; i++)
        weft__ctx_switch(&main_ctx, &co_ctx);
    ck_assert_int_eq(counter, 100000);
    ck_assert_uint_eq(entry_sp_mod16, 0);
    weft__stack_put(&pool, &cache, s);
    weft__stack_cache_drain(&pool, &cache);
    weft__stack_pool_destroy(&pool);
}
END_TEST

/* Rounding mode set in one context stays there; the other keeps its own. */
static int co_mode_seen[2];
static void fp_entry(void)
{
    fesetround(FE_UPWARD);
    for (;;) {
        co_mode_seen[co_round & 1] = fegetround();
        weft__ctx_switch(&co_ctx, &main_ctx);
    }
}

START_TEST(fp_control_state_is_per_context)
{
    struct stack_pool pool;
    struct stack_cache cache = {0};
    ck_assert_int_eq(weft__stack_pool_init(&pool, 64 * 1024), 0);
    struct stack *s = weft__stack_get(&pool, &cache);
    ck_assert_ptr_nonnull(s);
    fesetround(FE_TONEAREST);
    weft__ctx_make(&co_ctx, s->lo, s->size, fp_entry);
    for (co_round = 0; co_round < 4; co_round++) {
        weft__ctx_switch(&main_ctx, &co_ctx);
        ck_assert_int_eq(fegetround(), FE_TONEAREST);
        ck_assert_int_eq(co_mode_seen[co_round & 1], FE_UPWARD);
    }
    weft__stack_put(&pool, &cache, s);
    weft__stack_cache_drain(&pool, &cache);
    weft__stack_pool_destroy(&pool);
}
END_TEST

START_TEST(guard_page_below_stack_faults)
{
    struct stack_pool pool;
    struct stack_cache cache = {0};
    ck_assert_int_eq(weft__stack_pool_init(&pool, 64 * 1024), 0);
    struct stack *s = weft__stack_get(&pool, &cache);
    ck_assert_ptr_nonnull(s);
    ck_assert(s->guarded);
    ck_assert(weft__stack_guard_hit(&pool, s->lo - 1, NULL));
    ck_assert(!weft__stack_guard_hit(&pool, s->lo, NULL));
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        *(volatile char *)(s->lo - 1) = 1;
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFSIGNALED(st));
    ck_assert_int_eq(WTERMSIG(st), SIGSEGV);
    /* The usable range itself is writable, top to bottom. */
    s->lo[0] = 1;
    s->lo[s->size - 1] = 1;
    weft__stack_put(&pool, &cache, s);
    weft__stack_cache_drain(&pool, &cache);
    weft__stack_pool_destroy(&pool);
}
END_TEST

/* Guards installed in batches (one process_madvise per refill where the
 * kernel allows it): every stack of several refills is guarded. */
START_TEST(every_stack_of_a_refill_is_guarded)
{
    struct stack_pool pool;
    struct stack_cache cache = {0};
    ck_assert_int_eq(weft__stack_pool_init(&pool, 32 * 1024), 0);
    enum { N = 40 };
    struct stack *all[N];
    for (int i = 0; i < N; i++) {
        all[i] = weft__stack_get(&pool, &cache);
        ck_assert_ptr_nonnull(all[i]);
        ck_assert(all[i]->guarded);
        ck_assert(weft__stack_guard_hit(&pool, all[i]->lo - 1, NULL));
    }
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Each child probe in its own grandchild: count the faults. */
        int n_faults = 0;
        for (int i = 0; i < N; i++) {
            pid_t g = fork();
            if (g == 0) {
                signal(SIGSEGV, SIG_DFL);
                *(volatile char *)(all[i]->lo - 1) = 1;
                _exit(0);
            }
            int gst;
            if (g > 0 && waitpid(g, &gst, 0) == g && WIFSIGNALED(gst) &&
                WTERMSIG(gst) == SIGSEGV)
                n_faults++;
        }
        _exit(n_faults == N ? 0 : 1);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a guard page did not fault");
    for (int i = 0; i < N; i++)
        weft__stack_put(&pool, &cache, all[i]);
    weft__stack_cache_drain(&pool, &cache);
    weft__stack_pool_destroy(&pool);
}
END_TEST

/* The new slots of one refill, whose guards go in together, span at most
 * WEFT__FRESH_SPAN (one slot when a slot is larger): guard markers laid
 * across more page-table pages ahead of the first touches made every
 * later first access to those stacks cost microseconds on KVM guests. */
START_TEST(a_refill_spans_at_most_the_fresh_span)
{
    static const size_t sizes[] = {16 * 1024, 64 * 1024, 192 * 1024, 256 * 1024,
                                   1024 * 1024, 4096 * 1024};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        struct stack_pool pool;
        struct stack_cache cache = {0};
        ck_assert_int_eq(weft__stack_pool_init(&pool, sizes[k]), 0);
        struct stack *first = weft__stack_get(&pool, &cache);
        ck_assert_ptr_nonnull(first);
        size_t carved = cache.n + 1; /* the pool was empty: all fresh */
        ck_assert_uint_eq(pool.n_stacks, carved);
        ck_assert_msg(carved == 1 || carved * pool.slot_size <= WEFT__FRESH_SPAN,
                      "stack %zu KiB: one refill carved %zu slots of %zu KiB", sizes[k] / 1024,
                      carved, pool.slot_size / 1024);
        /* Small stacks still come several per refill (one guard call). */
        if (pool.slot_size * 2 <= WEFT__FRESH_SPAN)
            ck_assert_uint_ge(carved, 2);
        ck_assert(first->guarded);
        weft__stack_put(&pool, &cache, first);
        weft__stack_cache_drain(&pool, &cache);
        weft__stack_pool_destroy(&pool);
    }
}
END_TEST

START_TEST(stacks_are_reused_through_the_cache)
{
    struct stack_pool pool;
    struct stack_cache cache = {0};
    ck_assert_int_eq(weft__stack_pool_init(&pool, 32 * 1024), 0);
    struct stack *a = weft__stack_get(&pool, &cache);
    weft__stack_put(&pool, &cache, a);
    struct stack *b = weft__stack_get(&pool, &cache);
    ck_assert_ptr_eq(a, b);
    /* Many at once: distinct, non-overlapping. */
    enum { N = 300 };
    struct stack *all[N];
    for (int i = 0; i < N; i++) {
        all[i] = weft__stack_get(&pool, &cache);
        ck_assert_ptr_nonnull(all[i]);
        for (int j = 0; j < i; j++)
            ck_assert(all[j]->lo + all[j]->size <= all[i]->lo ||
                      all[i]->lo + all[i]->size <= all[j]->lo);
    }
    for (int i = 0; i < N; i++)
        weft__stack_put(&pool, &cache, all[i]);
    weft__stack_put(&pool, &cache, b);
    weft__stack_cache_drain(&pool, &cache);
    /* Every stack ever carved is back in the pool. */
    ck_assert_uint_ge(pool.n_stacks, N + 1);
    ck_assert_uint_eq(pool.n_free, pool.n_stacks);
    weft__stack_pool_destroy(&pool);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("context");
    TCase *tc = harness_tcase(s, "switch", 30);
    tcase_add_test(tc, switch_round_trips_and_aligns);
    tcase_add_test(tc, fp_control_state_is_per_context);
    tcase_add_test(tc, guard_page_below_stack_faults);
    tcase_add_test(tc, every_stack_of_a_refill_is_guarded);
    tcase_add_test(tc, a_refill_spans_at_most_the_fresh_span);
    tcase_add_test(tc, stacks_are_reused_through_the_cache);
    return s;
}
