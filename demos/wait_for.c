/* SPDX-License-Identifier: MIT */
/* Mirrors tutorial-1 §13.6.7 "Using asyncio.wait_for()": a task that needs
 * 5 s is given 3 s. weft_wait_for() cancels it when the time is up, waits
 * until it has really ended, and reports -ETIMEDOUT, asyncio's
 * TimeoutError. */
#include <errno.h>
#include <stdio.h>

#include "demo.h"

static int slow_task(void *arg)
{
    (void)arg;
    printf("Starting slow task...\n");
    int rc = demo_sleep(5.0); /* a long-running task */
    if (rc < 0)
        return rc;            /* cancelled by the timeout */
    printf("Slow task finished\n");
    return 0;
}

static int main_coro(void *arg)
{
    (void)arg;
    int rc = weft_wait_for(slow_task, NULL, demo_ns(3.0));
    if (rc == -ETIMEDOUT) {
        printf("Task timed out!\n");
        return 0;
    }
    return rc;
}

int main(void)
{
    int rc = demo_init();
    if (rc == 0)
        rc = weft_run(main_coro, NULL);
    return demo_exit("wait_for", rc);
}
