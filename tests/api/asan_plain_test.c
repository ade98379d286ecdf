/* SPDX-License-Identifier: MIT */
/* A program built with -fsanitize=address using the library, which may be
 * a plain (uninstrumented) build: the program's task functions poison
 * stack redzones that the library knows nothing about. A task abandoned
 * by weft_runtime_free (its run_blocking fn outlives blocking_shutdown_ns)
 * never returns from its frames; once the fn returns and the runtime is
 * released, the task stacks are unmapped, and ASan keeps the shadow across
 * munmap: the next stack mapped there reported a false
 * stack-buffer-underflow on its first frame. The library must clear that
 * shadow. Built only where the compiler links -fsanitize=address
 * (configure: ASAN_TEST). */
#include <errno.h>
#include <sanitizer/asan_interface.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <weft.h>

#include "harness.h"

struct stale {
    atomic_bool started, release, finished;
    char *_Atomic local; /* the abandoned task's frame */
};

static bool flag_set(void *flag)
{
    return atomic_load((atomic_bool *)flag);
}

static int hold(void *arg)
{
    struct stale *s = arg;
    atomic_store(&s->started, true);
    while (!atomic_load(&s->release)) {
        struct timespec ts = {.tv_nsec = 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&s->finished, true);
    return 0;
}

/* Its frame (local and the redzones ASan puts around it) stays on the task
 * stack: the task is abandoned inside run_blocking. */
static int abandoned(void *arg)
{
    struct stale *s = arg;
    char local[100];
    memset(local, 1, sizeof local);
    atomic_store(&s->local, local);
    return weft_run_blocking(hold, s) + local[0];
}


static int sigset_on_stack(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set); /* ASan checks the whole sigset_t (128 bytes) */
    return sigismember(&set, SIGUSR1);
}

/* A longjmp out of nested frames in a task: ASan unpoisons the frames it
 * skips only if it knows the stack it runs on (the library tells it of
 * every switch, also as a plain build: checker.h). Before, with 16
 * workers the task stacks lay too far from the worker's thread stack,
 * ASan printed "ignoring requested __asan_handle_no_return" and the
 * skipped frames' redzones stayed poisoned: the next calls there reported
 * a false stack-buffer-underflow. */
enum { JUMP_DEPTH = 20 };

struct jump {
    jmp_buf env;
    char *deepest; /* the innermost frame's local */
    volatile bool jump;
};

static __attribute__((noinline)) void touch(volatile char *p)
{
    p[0] = p[0];
}

static __attribute__((noinline)) void dive(struct jump *j, int n)
{
    char local[48];
    memset(local, n, sizeof local);
    touch(local);
    if (n > 0) {
        dive(j, n - 1);
        touch(local);
        return;
    }
    j->deepest = local;
    if (j->jump)
        longjmp(j->env, 1);
}

static __attribute__((noinline)) int wide_frame(void)
{
    volatile char big[4096];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)i;
    return big[100];
}

static int jump_task(void *arg)
{
    (void)arg;
    for (int round = 0; round < 4; round++) {
        struct jump j = {.deepest = NULL, .jump = true};
        if (setjmp(j.env) == 0)
            dive(&j, JUMP_DEPTH);
        HREQUIRE(j.deepest != NULL, -1);
        void *bad = __asan_region_is_poisoned(j.deepest - 32, 32 + 48 + 32);
        HCHECK_MSG(bad == NULL, "a frame skipped by longjmp is still poisoned at %p", bad);
        HCHECK_INT_EQ(wide_frame(), 100);
        weft_yield(); /* maybe on another worker, another stack next round */
    }
    return 0;
}

static int jump_tasks(void *arg)
{
    (void)arg;
    return harness_spawn_gather(jump_task, NULL, 8);
}

START_TEST(longjmp_in_a_task_leaves_no_stack_poison)
{
    static const unsigned workers[] = {1, 2, 16};
    for (size_t i = 0; i < sizeof workers / sizeof workers[0]; i++) {
        weft_options opt = {.workers = workers[i]};
        ck_assert_int_eq(harness_run_opts(&opt, jump_tasks, NULL), 0);
        harness_assert_clean();
    }
}
END_TEST

START_TEST(abandoned_task_leaves_no_stack_poison)
{
    if (harness_pool_threads() != 0)
        return; /* no /proc (or a pool left by someone): cannot tell when the release ran */
    static struct stale s;
    weft_options opt = {.workers = harness_workers(2), .blocking_shutdown_ns = WEFT_MSEC(50)};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    weft_task *t = weft_spawn_on(rt, abandoned, &s);
    ck_assert_ptr_nonnull(t);
    weft_detach(t);
    ck_assert(harness_spin_until(flag_set, &s.started));
    char *local = atomic_load(&s.local);
    ck_assert_ptr_nonnull(local);
    /* The left redzone of the parked frame: poisoned while the task is
     * parked (else this test proves nothing). */
    ck_assert_ptr_nonnull(__asan_region_is_poisoned(local - 32, 32));

    weft_runtime_free(rt); /* gives up on hold after 50 ms: abandons the task */
    ck_assert(!atomic_load(&s.finished));
    atomic_store(&s.release, true);
    ck_assert(harness_spin_until(flag_set, &s.finished));
    /* The last pool thread releases the runtime (its stacks unmapped),
     * then exits. */
    ck_assert(harness_spin_until(harness_no_pool_threads, NULL));
    void *bad = __asan_region_is_poisoned(local - 32, 32 + sizeof(char[100]) + 32);
    ck_assert_msg(bad == NULL, "unmapped task stack still poisoned at %p (frame at %p)", bad,
                  (void *)local);

    /* And a new runtime's tasks run clean (the report came from here). */
    ck_assert_int_eq(harness_run(1, sigset_on_stack, NULL), 0);
    ck_assert_int_eq(harness_run(2, sigset_on_stack, NULL), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("asan_plain");
    TCase *tc = harness_tcase(s, "abandon", 30);
    tcase_add_test(tc, abandoned_task_leaves_no_stack_poison);
    tcase_add_test(tc, longjmp_in_a_task_leaves_no_stack_poison);
    return s;
}
