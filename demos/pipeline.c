/* SPDX-License-Identifier: MIT */
/* A pipeline with back-pressure: a producer feeds a small bounded channel,
 * a pool of worker tasks transforms the items (simulated I/O: a short
 * sleep each) into a second channel, and a sink sums the results. The
 * producer can never run more than the channel's capacity ahead of the
 * workers: it parks in weft_chan_send until there is room, which the demo
 * shows by recording the largest lead the producer ever had.
 *
 * Usage: pipeline [ITEMS] [WORKERS]   (defaults 200 and 4)
 * WEFT_DEMO_SCALE multiplies the simulated I/O time. */
#include <stdatomic.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>

#include "demo.h"

#define CAPACITY 8

struct pipeline {
    weft_chan *jobs;    /* producer -> workers, capacity CAPACITY */
    weft_chan *results; /* workers -> sink, capacity CAPACITY */
    long items;
    _Atomic long produced;
    _Atomic long taken;     /* items the workers have received */
    _Atomic long max_lead;  /* largest produced - taken seen */
};

static int producer(void *arg)
{
    struct pipeline *p = arg;
    for (long i = 1; i <= p->items; i++) {
        int rc = weft_chan_send(p->jobs, &i); /* parks while the channel is full */
        if (rc < 0)
            return rc;
        long lead = atomic_fetch_add(&p->produced, 1) + 1 - atomic_load(&p->taken);
        long max = atomic_load(&p->max_lead);
        while (lead > max && !atomic_compare_exchange_weak(&p->max_lead, &max, lead))
            ;
    }
    weft_chan_close(p->jobs); /* the workers drain what is left, then see -EPIPE */
    return 0;
}

static int worker(void *arg)
{
    struct pipeline *p = arg;
    long item;
    int rc;
    while ((rc = weft_chan_recv(p->jobs, &item)) == 0) {
        atomic_fetch_add(&p->taken, 1);
        demo_sleep(0.002); /* simulated I/O per item */
        long squared = item * item;
        if ((rc = weft_chan_send(p->results, &squared)) < 0)
            return rc;
    }
    return rc == -EPIPE ? 0 : rc;
}

static int sink(void *arg)
{
    struct pipeline *p = arg;
    long v, sum = 0, n = 0;
    while (weft_chan_recv(p->results, &v) == 0) {
        sum += v;
        n++;
    }
    printf("sink received %ld results, sum of squares %ld\n", n, sum);
    long want = p->items * (p->items + 1) * (2 * p->items + 1) / 6;
    return (n == p->items && sum == want) ? 0 : -EIO;
}

struct run {
    long items;
    int workers;
};

static int main_task(void *arg)
{
    struct run *r = arg;
    struct pipeline p = {.items = r->items};
    p.jobs = weft_chan_new(sizeof(long), CAPACITY);
    p.results = weft_chan_new(sizeof(long), CAPACITY);
    if (!p.jobs || !p.results)
        return -ENOMEM;
    int64_t t0 = weft_now();
    weft_task *snk = weft_spawn(sink, &p);
    weft_task *prod = weft_spawn(producer, &p);
    weft_task **w = calloc((size_t)r->workers, sizeof *w);
    if (!snk || !prod || !w)
        return -ENOMEM;
    for (int i = 0; i < r->workers; i++)
        w[i] = weft_spawn(worker, &p);
    int rc = weft_join(prod);
    int wrc = weft_gather(w, (size_t)r->workers, NULL);
    weft_chan_close(p.results); /* every worker is done: the sink drains and ends */
    int src = weft_join(snk);
    double secs = demo_elapsed(t0);
    /* An item counts as taken once a worker has noted it, a moment after
     * its recv: each worker can hold one more than the channel. */
    long bound = CAPACITY + r->workers;
    printf("%ld items through %d workers; the producer was at most %ld items ahead "
           "(bound %ld: channel capacity %d + one in hand per worker)\n",
           p.items, r->workers, atomic_load(&p.max_lead), bound, CAPACITY);
    printf("elapsed %.2f s (%.1f items/s)\n", secs, secs > 0 ? p.items / secs : 0.0);
    free(w);
    weft_chan_free(p.jobs);
    weft_chan_free(p.results);
    if (rc < 0)
        return rc;
    if (atomic_load(&p.max_lead) > bound)
        return -EIO; /* back-pressure failed */
    if (wrc < 0)
        return wrc;
    return src;
}

int main(int argc, char **argv)
{
    if (demo_init() < 0)
        return EXIT_FAILURE;
    struct run r = {.items = argc > 1 ? atol(argv[1]) : 200,
                    .workers = argc > 2 ? atoi(argv[2]) : 4};
    if (r.items < 1 || r.workers < 1 || r.workers > 1000) {
        fprintf(stderr, "usage: pipeline [ITEMS >= 1] [WORKERS 1..1000]\n");
        return 2;
    }
    return demo_exit(argv[0], weft_run(main_task, &r));
}
