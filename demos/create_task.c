/* SPDX-License-Identifier: MIT */
/* Mirrors tutorial-2 "Section 3: Tasks - Scheduling the Work": two tasks
 * created with create_task() print "Hello" after 1 s and "World" after
 * 2 s, and the program finishes in 2 s because both waits overlap.
 * With --sequential it runs the section's main_sequential() idea instead:
 * the same two coroutines awaited one after the other (plain calls in one
 * task), which takes 3 s. The elapsed time printed is real time, so it
 * shrinks with WEFT_DEMO_SCALE. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "demo.h"

struct say {
    double delay; /* tutorial seconds */
    const char *message;
};

static int say_something(void *arg)
{
    const struct say *s = arg;
    int rc = demo_sleep(s->delay);
    if (rc < 0)
        return rc;
    printf("%s\n", s->message);
    return 0;
}

/* The section's main(): both coroutines become tasks, then are awaited. */
static int main_tasks(void *arg)
{
    (void)arg;
    /* Both outlive the tasks: this function joins them before returning. */
    struct say world = {2.0, "World"};
    struct say hello = {1.0, "Hello"};

    int64_t start = weft_now();
    printf("Scheduling tasks...\n");
    weft_task *task1 = weft_spawn(say_something, &world);
    if (!task1)
        return -errno;
    weft_task *task2 = weft_spawn(say_something, &hello);
    if (!task2) {
        int err = -errno;
        weft_cancel(task1);
        (void)weft_join(task1); /* it was cancelled: its status is moot */
        return err;
    }
    printf("Tasks have been scheduled.\n");
    int rc1 = weft_join(task1); /* await task1 */
    int rc2 = weft_join(task2); /* await task2 */
    if (rc1 < 0 || rc2 < 0)
        return rc1 < 0 ? rc1 : rc2;
    printf("\nFinished in %.2f seconds.\n", demo_elapsed(start));
    return 0;
}

/* main_sequential(): awaiting a coroutine directly runs it in the caller's
 * task, so the second wait only starts when the first has ended. */
static int main_sequential(void *arg)
{
    (void)arg;
    struct say world = {2.0, "World"};
    struct say hello = {1.0, "Hello"};

    int64_t start = weft_now();
    int rc = say_something(&world);
    if (rc < 0)
        return rc;
    rc = say_something(&hello);
    if (rc < 0)
        return rc;
    printf("\nFinished in %.2f seconds.\n", demo_elapsed(start));
    return 0;
}

int main(int argc, char **argv)
{
    bool sequential = argc == 2 && strcmp(argv[1], "--sequential") == 0;
    if (argc > 2 || (argc == 2 && !sequential)) {
        fprintf(stderr, "usage: create_task [--sequential]\n");
        return EXIT_FAILURE;
    }
    int rc = demo_init();
    if (rc == 0)
        rc = weft_run(sequential ? main_sequential : main_tasks, NULL);
    return demo_exit("create_task", rc);
}
