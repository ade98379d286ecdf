/* SPDX-License-Identifier: MIT */
/* Mirrors tutorial-3 "controlling concurrency with semaphores"
 * (limited_fetch): five fetches are started at once, but a semaphore of
 * three permits lets only three be in flight; the other two wait their
 * turn in FIFO order. weft has no HTTP client, so a one-second sleep
 * stands in for the request and for reading its body. With more than one
 * worker the "Fetching" lines may come out in any order; WEFT_WORKERS=1
 * gives asyncio's order. */
#include <errno.h>
#include <stdio.h>

#include "demo.h"

struct fetch {
    weft_sem *sem;  /* shared by all fetches */
    const char *url;
    char text[64];  /* the response body */
};

static int limited_fetch(void *arg)
{
    struct fetch *f = arg;
    int rc = weft_sem_acquire(f->sem); /* async with semaphore: */
    if (rc < 0)
        return rc;
    printf("Fetching %s\n", f->url);
    rc = demo_sleep(1.0); /* session.get(url), response.text() */
    if (rc == 0)
        snprintf(f->text, sizeof f->text, "<html>%s</html>", f->url);
    weft_sem_release(f->sem);
    return rc;
}

static int main_coro(void *arg)
{
    (void)arg;
    static const char *const urls[] = {
        "https://example.com",
        "https://python.org",
        "https://asyncio.org",
        "https://github.com",
        "https://stackoverflow.com",
    };
    enum { N = sizeof urls / sizeof urls[0] };

    weft_sem *sem = weft_sem_new(3);
    if (!sem)
        return -errno;
    /* Owned here and outliving the tasks: gather joins them all. */
    struct fetch fetches[N];
    weft_task *tasks[N];
    size_t n_spawned = 0;
    int rc = 0;
    for (; n_spawned < N; n_spawned++) {
        fetches[n_spawned] = (struct fetch){.sem = sem, .url = urls[n_spawned]};
        tasks[n_spawned] = weft_spawn(limited_fetch, &fetches[n_spawned]);
        if (!tasks[n_spawned]) {
            rc = -errno;
            for (size_t j = 0; j < n_spawned; j++)
                weft_cancel(tasks[j]);
            break;
        }
    }
    /* results = await asyncio.gather(*tasks), or reap the cancelled ones. */
    int gathered = weft_gather(tasks, n_spawned, NULL);
    weft_sem_free(sem); /* no waiters left: every task has ended */
    if (rc < 0)
        return rc;
    if (gathered < 0)
        return gathered;
    size_t n_pages = 0;
    for (size_t i = 0; i < N; i++)
        n_pages += fetches[i].text[0] != '\0';
    printf("Fetched %zu pages\n", n_pages);
    return 0;
}

int main(void)
{
    int rc = demo_init();
    if (rc == 0)
        rc = weft_run(main_coro, NULL);
    return demo_exit("semaphore", rc);
}
