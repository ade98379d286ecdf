/* SPDX-License-Identifier: MIT */
/* Mirrors tutorial-1 §13.6.5 "Accessing the Event Loop": instead of
 * weft_run() (asyncio.run), the program makes a runtime itself
 * (get_event_loop), runs one coroutine on it to completion
 * (run_until_complete) and frees it (close). */
#include <errno.h>
#include <stdio.h>

#include "demo.h"

static int my_coroutine(void *arg)
{
    (void)arg;
    printf("Running a coroutine\n");
    int rc = demo_sleep(1.0);
    if (rc < 0)
        return rc;
    printf("Coroutine finished\n");
    return 0;
}

int main(void)
{
    int rc = demo_init();
    if (rc < 0)
        return demo_exit("event_loop", rc);

    /* loop = asyncio.get_event_loop(); NULL options pick the defaults. */
    weft_runtime *loop = weft_runtime_new(NULL);
    if (!loop)
        return demo_exit("event_loop", -errno);

    /* loop.run_until_complete(my_coroutine()): blocks this plain thread
     * until the task has ended. */
    rc = weft_runtime_block_on(loop, my_coroutine, NULL);

    /* loop.close(): nothing is left running, so this just joins the
     * worker threads. */
    weft_runtime_free(loop);
    return demo_exit("event_loop", rc);
}
