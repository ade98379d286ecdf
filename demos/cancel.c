/* SPDX-License-Identifier: MIT */
/* Mirrors tutorial-3 "Managing task cancellation" (cancellable_task): a
 * task is cancelled one second into a ten-second sleep. Its sleep returns
 * -ECANCELED (asyncio's CancelledError), it cleans up and passes the
 * cancellation on as its status, and the task that joins it sees it. */
#include <errno.h>
#include <stdio.h>

#include "demo.h"

static int cancellable_task(void *arg)
{
    (void)arg;
    printf("Task started\n");
    int rc = demo_sleep(10.0);
    if (rc == -ECANCELED) {
        printf("Task was cancelled\n");
        /* Cleanup code goes here: close files, free buffers. */
        return rc; /* re-raise: the joiner must see the cancellation */
    }
    if (rc < 0)
        return rc;
    printf("Task finished\n");
    return 0;
}

static int main_coro(void *arg)
{
    (void)arg;
    weft_task *task = weft_spawn(cancellable_task, NULL);
    if (!task)
        return -errno;
    int rc = demo_sleep(1.0);
    weft_cancel(task); /* also when our own sleep failed: never leak it */
    int status = weft_join(task);
    if (rc < 0)
        return rc;
    if (status == -ECANCELED) {
        printf("Main caught task cancellation\n");
        return 0;
    }
    return status; /* it finished before the cancel arrived (scale 0) */
}

int main(void)
{
    int rc = demo_init();
    if (rc == 0)
        rc = weft_run(main_coro, NULL);
    return demo_exit("cancel", rc);
}
