/* SPDX-License-Identifier: MIT */
/* Mirrors tutorial-3's faulty_task example: one of two concurrent tasks
 * fails ("raises"), and the caller catches the failure. A C task fails by
 * returning a negative errno; the exception's message travels through the
 * task's argument.
 *
 * In Python, gather() raises as soon as faulty_task() does, and
 * asyncio.run() then cancels the task() still sleeping. weft_gather()
 * always waits for every task, so it would let task() finish and print
 * "Task completed"; a task group (asyncio.TaskGroup) instead cancels the
 * rest at the first failure, which gives the Python program's output. */
#include <errno.h>
#include <stdio.h>

#include "demo.h"

/* What a failing task raised, besides its negative status. */
struct exception {
    const char *message;
};

static int task(void *arg)
{
    (void)arg;
    printf("Task started\n");
    int rc = demo_sleep(2.0);
    if (rc < 0)
        return rc; /* cancelled because its sibling failed */
    printf("Task completed\n");
    return 0;
}

static int faulty_task(void *arg)
{
    struct exception *exc = arg;
    exc->message = "Oops!"; /* raise Exception("Oops!") */
    return -EIO;
}

static int main_coro(void *arg)
{
    (void)arg;
    struct exception exc = {NULL}; /* outlives the group's tasks */
    weft_group *group = weft_group_new();
    if (!group)
        return -errno;
    int rc = weft_group_spawn(group, task, NULL);
    if (rc == 0)
        rc = weft_group_spawn(group, faulty_task, &exc);
    int failure = weft_group_wait(group); /* always: it frees the group */
    if (rc < 0)
        return rc; /* could not start the tasks */
    if (failure < 0 && exc.message) {
        printf("Caught an exception: %s\n", exc.message);
        return 0;
    }
    return failure; /* 0, or a failure that was not faulty_task's */
}

int main(void)
{
    int rc = demo_init();
    if (rc == 0)
        rc = weft_run(main_coro, NULL);
    return demo_exit("gather_error", rc);
}
