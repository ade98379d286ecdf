/* SPDX-License-Identifier: MIT */
/* Mirrors tutorial-4 "Understanding Coroutines" and "Tasks and the Event
 * Loop": three simulated API requests of 2 s each run concurrently and are
 * gathered, so the run takes 2 s rather than 6 s. The two Python programs
 * differ only in whether gather() or create_task() wraps the coroutines in
 * tasks; in C the tasks are always explicit, so one program covers both.
 * With more than one worker the lines may come out in any order;
 * WEFT_WORKERS=1 gives asyncio's order. */
#include <errno.h>
#include <stdio.h>

#include "demo.h"

static int fetch_data(void *arg)
{
    const char *url = arg;
    printf("Fetching data from %s...\n", url);
    int rc = demo_sleep(2.0); /* simulated asynchronous request */
    if (rc < 0)
        return rc;
    printf("Data fetched from %s\n", url);
    return 0;
}

static int main_coro(void *arg)
{
    (void)arg;
    static const char *const urls[] = {
        "https://api.example.com/data1",
        "https://api.example.com/data2",
        "https://api.example.com/data3",
    };
    enum { N = sizeof urls / sizeof urls[0] };
    weft_task *tasks[N];
    for (size_t i = 0; i < N; i++) {
        /* The strings are static, so the cast drops a const nobody writes. */
        tasks[i] = weft_spawn(fetch_data, (void *)urls[i]);
        if (!tasks[i]) {
            int err = -errno;
            for (size_t j = 0; j < i; j++)
                weft_cancel(tasks[j]);
            (void)weft_gather(tasks, i, NULL); /* reap the cancelled ones */
            return err;
        }
    }
    return weft_gather(tasks, N, NULL);
}

int main(void)
{
    int rc = demo_init();
    if (rc == 0)
        rc = weft_run(main_coro, NULL);
    return demo_exit("fetch", rc);
}
