/* SPDX-License-Identifier: MIT */
/* Mirrors tutorial-1 §13.6.4 "Creating Tasks with asyncio.create_task()":
 * two tasks sleeping 2 s and 1 s run concurrently, so the whole program
 * takes about 2 s. With --gather it mirrors §13.6.2 "Event Loop in Action"
 * and §13.6.6 "Using asyncio.gather()" instead, which print the same lines.
 *
 * Start order: with WEFT_WORKERS=1 the tasks start in spawn order, exactly
 * as on asyncio's single-threaded loop. With more workers they start in
 * parallel, so the two "started" lines may come out in either order. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "demo.h"

static int task1(void *arg)
{
    (void)arg;
    printf("Task 1 started\n");
    int rc = demo_sleep(2.0); /* simulated I/O */
    if (rc < 0)
        return rc;
    printf("Task 1 completed\n");
    return 0;
}

static int task2(void *arg)
{
    (void)arg;
    printf("Task 2 started\n");
    int rc = demo_sleep(1.0); /* simulated I/O */
    if (rc < 0)
        return rc;
    printf("Task 2 completed\n");
    return 0;
}

/* main() of §13.6.4: create_task() twice, then await each task. */
static int main_create_task(void *arg)
{
    (void)arg;
    weft_task *t1 = weft_spawn(task1, NULL);
    if (!t1)
        return -errno;
    weft_task *t2 = weft_spawn(task2, NULL);
    if (!t2) {
        int err = -errno;
        weft_cancel(t1);
        (void)weft_join(t1); /* it was cancelled: its status is moot */
        return err;
    }
    /* await task_1; await task_2. Each join frees its handle, so both run
     * even if the first one fails. */
    int rc1 = weft_join(t1);
    int rc2 = weft_join(t2);
    return rc1 < 0 ? rc1 : rc2;
}

/* main() of §13.6.2 and §13.6.6: await asyncio.gather(task1(), task2()). */
static int main_gather(void *arg)
{
    (void)arg;
    weft_task *tasks[2];
    tasks[0] = weft_spawn(task1, NULL);
    if (!tasks[0])
        return -errno;
    tasks[1] = weft_spawn(task2, NULL);
    if (!tasks[1]) {
        int err = -errno;
        weft_cancel(tasks[0]);
        (void)weft_join(tasks[0]);
        return err;
    }
    return weft_gather(tasks, 2, NULL);
}

int main(int argc, char **argv)
{
    bool gather = argc == 2 && strcmp(argv[1], "--gather") == 0;
    if (argc > 2 || (argc == 2 && !gather)) {
        fprintf(stderr, "usage: tasks [--gather]\n");
        return EXIT_FAILURE;
    }
    int rc = demo_init();
    if (rc == 0)
        rc = weft_run(gather ? main_gather : main_create_task, NULL);
    return demo_exit("tasks", rc);
}
