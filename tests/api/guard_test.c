/* SPDX-License-Identifier: MIT */
/* A task that overflows its stack hits the guard gap, and weft reports
 * the task's name and stack size before the process dies (checked in a
 * child process). Built twice: guard_test without
 * -fstack-clash-protection (a frame larger than a page but smaller than
 * the 64 KiB gap must still fault in the gap), and guard_clash_test with
 * it (WEFT_TEST_STACK_CLASH: a 1 MiB frame, larger than the gap, is
 * caught by the probes). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

#ifndef WEFT_TEST_STACK_CLASH
static int __attribute__((noinline)) deep(int n)
{
    volatile char buf[512];
    memset((char *)buf, n, sizeof buf);
    return n ? deep(n - 1) + buf[7] : 0;
}

static int overflow_body(void *arg)
{
    weft_task_set_name(weft_current(), "runaway-recursion");
    return deep(1 << 20);
}
#endif

/* Runs body in a child process on a runtime with the given stack size,
 * and returns its stderr in out (NUL-ended) and its wait status. */
static int run_child(weft_fn body, size_t stack_size, char *out, size_t cap)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        weft_options opt = {.workers = 2, .stack_size = stack_size};
        weft_runtime *rt = weft_runtime_new(&opt);
        if (!rt)
            _exit(3);
        weft_runtime_block_on(rt, body, NULL);
        _exit(4); /* not reached */
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(fds[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return st;
}

#ifndef WEFT_TEST_STACK_CLASH
START_TEST(overflow_is_reported_with_task_name_and_size)
{
#ifdef UNDER_SANITIZER
    return; /* the sanitizers own SIGSEGV there */
#endif
    char out[1024];
    int st = run_child(overflow_body, 64 * 1024, out, sizeof out);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "child status %d", st);
    ck_assert_msg(strstr(out, "stack overflow") != NULL, "stderr: %s", out);
    ck_assert_msg(strstr(out, "'runaway-recursion'") != NULL, "stderr: %s", out);
    ck_assert_msg(strstr(out, "stack size 64 KiB") != NULL, "stderr: %s", out);
}
END_TEST

/* A 260 KiB frame on a 256 KiB stack, of which only the lowest byte is
 * written: without stack-clash probes nothing touches the pages between,
 * so with a one-page guard the write landed in the top of the stack
 * below (another task's live frames) without a fault; the 64 KiB gap
 * catches it. */
static int __attribute__((noinline)) frame_260k(void)
{
    volatile char buf[260 * 1024];
    buf[0] = 1;
    return buf[0];
}

static int big_frame_body(void *arg)
{
    (void)arg;
    weft_task_set_name(weft_current(), "big-frame");
    return frame_260k();
}

START_TEST(frame_larger_than_a_page_faults_in_the_guard_gap)
{
#ifdef UNDER_SANITIZER
    return;
#endif
    char out[1024];
    int st = run_child(big_frame_body, 256 * 1024, out, sizeof out);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "child status %d, stderr: %s", st,
                  out);
    ck_assert_msg(strstr(out, "stack overflow in task 'big-frame'") != NULL, "stderr: %s", out);
    ck_assert_msg(strstr(out, "stack size 256 KiB") != NULL, "stderr: %s", out);
}
END_TEST
#else
/* A 1 MiB frame jumps over any guard gap; code built with
 * -fstack-clash-protection probes each page as the frame grows, so the
 * first probe below the stack faults in the gap and is named. */
static int __attribute__((noinline)) frame_1m(void)
{
    volatile char buf[1024 * 1024];
    buf[0] = 1;
    return buf[0];
}

static int huge_frame_body(void *arg)
{
    (void)arg;
    weft_task_set_name(weft_current(), "huge-frame");
    return frame_1m();
}

START_TEST(frame_larger_than_the_gap_is_caught_with_stack_clash_probes)
{
#ifdef UNDER_SANITIZER
    return;
#endif
    char out[1024];
    int st = run_child(huge_frame_body, 256 * 1024, out, sizeof out);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "child status %d, stderr: %s", st,
                  out);
    ck_assert_msg(strstr(out, "stack overflow in task 'huge-frame'") != NULL, "stderr: %s", out);
}
END_TEST
#endif

Suite *test_suite(void)
{
    Suite *s = suite_create("guard");
    TCase *tc = harness_tcase(s, "overflow", 30);
#ifndef WEFT_TEST_STACK_CLASH
    tcase_add_test(tc, overflow_is_reported_with_task_name_and_size);
    tcase_add_test(tc, frame_larger_than_a_page_faults_in_the_guard_gap);
#else
    tcase_add_test(tc, frame_larger_than_the_gap_is_caught_with_stack_clash_probes);
#endif
    return s;
}
