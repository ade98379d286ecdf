/* SPDX-License-Identifier: MIT */
/* A task that overflows its stack hits the guard page, and weft reports
 * the task's name and stack size before the process dies (checked in a
 * child process). */
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

START_TEST(overflow_is_reported_with_task_name_and_size)
{
#ifdef UNDER_SANITIZER
    return; /* the sanitizers own SIGSEGV there */
#endif
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        weft_options opt = {.workers = 2, .stack_size = 64 * 1024};
        weft_runtime *rt = weft_runtime_new(&opt);
        if (!rt)
            _exit(3);
        weft_runtime_block_on(rt, overflow_body, NULL);
        _exit(4); /* not reached */
    }
    close(fds[1]);
    char out[1024] = {0};
    size_t n = 0;
    ssize_t r;
    while (n < sizeof out - 1 && (r = read(fds[0], out + n, sizeof out - 1 - n)) > 0)
        n += (size_t)r;
    close(fds[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "child status %d", st);
    ck_assert_msg(strstr(out, "stack overflow") != NULL, "stderr: %s", out);
    ck_assert_msg(strstr(out, "'runaway-recursion'") != NULL, "stderr: %s", out);
    ck_assert_msg(strstr(out, "stack size 64 KiB") != NULL, "stderr: %s", out);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("guard");
    TCase *tc = harness_tcase(s, "overflow", 30);
    tcase_add_test(tc, overflow_is_reported_with_task_name_and_size);
    return s;
}
