/* SPDX-License-Identifier: MIT */
/* Mirrors tutorial-1 §13.6.3 "Awaiting an Asynchronous Operation": awaiting
 * a coroutine is a plain function call inside a task; the caller is parked
 * while the callee sleeps, and the result comes back through an argument. */
#include <stdio.h>

#include "demo.h"

/* Simulates a network request; on success *out names the data. */
static int fetch_data(const char **out)
{
    printf("Fetching data...\n");
    int rc = demo_sleep(2.0); /* the request in flight */
    if (rc < 0)
        return rc;
    printf("Data fetched!\n");
    *out = "data";
    return 0;
}

static int process_data(void *arg)
{
    (void)arg;
    const char *data;
    int rc = fetch_data(&data); /* await fetch_data() */
    if (rc < 0)
        return rc;
    printf("Processing %s\n", data);
    return 0;
}

int main(void)
{
    int rc = demo_init();
    if (rc == 0)
        rc = weft_run(process_data, NULL);
    return demo_exit("await", rc);
}
