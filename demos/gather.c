/* SPDX-License-Identifier: MIT */
/* Mirrors tutorial-5 "3. Gathering Tasks in Parallel": fetch_data(1, 2),
 * fetch_data(2, 3) and fetch_data(3, 1) run concurrently under
 * weft_gather(); the results come back in argument order and the whole
 * run takes about 3 s (the longest delay), not 6 s (their sum). The
 * elapsed time printed is real time, so it shrinks with WEFT_DEMO_SCALE.
 * With more than one worker the three "starting" lines may come out in
 * any order; WEFT_WORKERS=1 gives asyncio's order. */
#include <errno.h>
#include <stdio.h>

#include "demo.h"

struct fetch {
    int id;
    double delay;     /* tutorial seconds */
    char result[32];  /* the coroutine's return value */
};

static int fetch_data(void *arg)
{
    struct fetch *f = arg;
    printf("Task %d: starting...\n", f->id);
    int rc = demo_sleep(f->delay);
    if (rc < 0)
        return rc;
    printf("Task %d: done!\n", f->id);
    snprintf(f->result, sizeof f->result, "Data from %d", f->id);
    return 0;
}

static int main_coro(void *arg)
{
    (void)arg;
    /* Owned here and outliving the tasks: gather joins them all. */
    struct fetch calls[] = {{1, 2.0, ""}, {2, 3.0, ""}, {3, 1.0, ""}};
    enum { N = sizeof calls / sizeof calls[0] };
    weft_task *tasks[N];

    int64_t start = weft_now();
    for (size_t i = 0; i < N; i++) {
        tasks[i] = weft_spawn(fetch_data, &calls[i]);
        if (!tasks[i]) {
            int err = -errno;
            for (size_t j = 0; j < i; j++)
                weft_cancel(tasks[j]);
            (void)weft_gather(tasks, i, NULL); /* reap the cancelled ones */
            return err;
        }
    }
    int rc = weft_gather(tasks, N, NULL);
    if (rc < 0)
        return rc;
    double elapsed = demo_elapsed(start);

    printf("Results: [");
    for (size_t i = 0; i < N; i++)
        printf("%s'%s'", i ? ", " : "", calls[i].result);
    printf("]\n");
    printf("Total time elapsed: %.2f seconds\n", elapsed);
    return 0;
}

int main(void)
{
    int rc = demo_init();
    if (rc == 0)
        rc = weft_run(main_coro, NULL);
    return demo_exit("gather", rc);
}
