/* SPDX-License-Identifier: MIT */
/* Mirrors tutorial-1 §13.6.1 "Running a Coroutine": a coroutine prints
 * Start, sleeps one second without blocking its thread, prints End, and
 * weft_run() plays asyncio.run(). */
#include <stdio.h>

#include "demo.h"

static int my_coroutine(void *arg)
{
    (void)arg;
    printf("Start\n");
    int rc = demo_sleep(1.0); /* a non-blocking delay */
    if (rc < 0)
        return rc;
    printf("End\n");
    return 0;
}

int main(void)
{
    int rc = demo_init();
    if (rc == 0)
        rc = weft_run(my_coroutine, NULL);
    return demo_exit("hello", rc);
}
