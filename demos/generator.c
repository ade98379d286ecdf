/* SPDX-License-Identifier: MIT */
/* Mirrors tutorial-1 §13.6.8 "Asynchronous Generator": a generator body
 * sleeps a second and yields each of 0..4; the consumer's loop of
 * weft_gen_next() calls is `async for`. */
#include <errno.h>
#include <stdio.h>

#include "demo.h"

static int async_generator(weft_gen *g, void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++) {
        int rc = demo_sleep(1.0); /* simulated async work */
        if (rc < 0)
            return rc;
        /* &i stays valid while the consumer reads it: this body is parked
         * in weft_gen_yield until the next value is asked for. */
        rc = weft_gen_yield(g, &i);
        if (rc < 0)
            return rc; /* closed early (aclose): nothing to clean up */
    }
    return 0;
}

static int main_coro(void *arg)
{
    (void)arg;
    weft_gen *gen = weft_gen_new(async_generator, NULL);
    if (!gen)
        return -errno;
    /* async for value in async_generator(): print(value) */
    void *value;
    int rc;
    while ((rc = weft_gen_next(gen, &value)) == 1)
        printf("%d\n", *(const int *)value);
    /* Finished (rc == 0) or failed: either way close frees the generator. */
    int closed = weft_gen_close(gen);
    return rc < 0 ? rc : closed;
}

int main(void)
{
    int rc = demo_init();
    if (rc == 0)
        rc = weft_run(main_coro, NULL);
    return demo_exit("generator", rc);
}
