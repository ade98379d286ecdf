/* SPDX-License-Identifier: MIT */
/* A pipeline with back-pressure: a producer feeds a small bounded channel,
 * a pool of worker tasks transforms the items (simulated I/O: a short
 * sleep each) into a second channel, and a sink sums the results. The
 * producer can never run more than the channel's capacity ahead of the
 * workers: it parks in weft_chan_send until there is room, which the demo
 * shows by recording the largest lead the producer ever had.
 *
 * The sink has two inputs: the workers' results and the producer's
 * progress notes (one every PROGRESS_EVERY items), and a timeout. It waits
 * on all three with one weft_select, as Go's select would: no helper task
 * per channel, no cancelling the loser, nothing lost. A timeout means the
 * pipeline is idle (the producer pauses once, halfway, for PAUSE_S
 * seconds, so the sink reports at least one idle spell); an input whose
 * case returns -EPIPE is closed and drained and leaves the select, and
 * the sink ends once both have.
 *
 * Usage: pipeline [ITEMS] [WORKERS]   (defaults 200 and 4)
 * WEFT_DEMO_SCALE multiplies the simulated I/O, the pause and the idle
 * timeout. */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "demo.h"

#define CAPACITY 8
#define PROGRESS_EVERY 100 /* items between two progress notes */
#define PAUSE_S 0.5        /* the producer's pause, halfway */
#define IDLE_S 0.1         /* the sink calls a gap this long idle */

struct pipeline {
    weft_chan *jobs;    /* producer -> workers, capacity CAPACITY */
    weft_chan *results; /* workers -> sink, capacity CAPACITY */
    weft_chan *progress; /* producer -> sink: items sent so far, capacity 4 */
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
        if (i % PROGRESS_EVERY == 0 && (rc = weft_chan_send(p->progress, &i)) < 0)
            return rc;
        if (i == p->items / 2 && (rc = demo_sleep(PAUSE_S)) < 0)
            return rc; /* the pipeline runs dry: the sink sees it idle */
    }
    weft_chan_close(p->jobs); /* the workers drain what is left, then see -EPIPE */
    weft_chan_close(p->progress);
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

/* Waits on the results, the progress notes and a timeout at once. */
static int sink(void *arg)
{
    struct pipeline *p = arg;
    long v, note, sum = 0, n = 0, idle_spells = 0;
    bool results_open = true, progress_open = true, idle = false;
    while (results_open || progress_open) {
        /* The cases of the inputs still open; rebuilt each time (a
         * weft_sel is small and needs no freeing). */
        weft_sel cases[2];
        weft_chan *chan_of[2];
        size_t nc = 0;
        if (results_open) {
            chan_of[nc] = p->results;
            cases[nc++] = weft_sel_recv(p->results, &v);
        }
        if (progress_open) {
            chan_of[nc] = p->progress;
            cases[nc++] = weft_sel_recv(p->progress, &note);
        }
        int i = weft_select(cases, nc, demo_ns(IDLE_S));
        if (i == -ETIMEDOUT) {
            /* Nothing taken. Said once per spell, however long. */
            if (!idle) {
                printf("sink: idle, nothing for %.1f s\n", IDLE_S);
                idle_spells++;
            }
            idle = true;
            continue;
        }
        if (i < 0)
            return i; /* -ECANCELED */
        idle = false;
        bool closed = cases[i].result == -EPIPE; /* closed and drained */
        if (chan_of[i] == p->results) {
            if (closed) {
                results_open = false;
            } else {
                sum += v;
                n++;
            }
        } else if (closed) {
            progress_open = false;
        } else {
            printf("sink: the producer has sent %ld items\n", note);
        }
    }
    printf("sink received %ld results, sum of squares %ld\n", n, sum);
    printf("sink: both inputs closed; idle %s\n", idle_spells > 0 ? "at least once" : "never");
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
    p.progress = weft_chan_new(sizeof(long), 4);
    if (!p.jobs || !p.results || !p.progress) {
        weft_chan_free(p.jobs);
        weft_chan_free(p.results);
        weft_chan_free(p.progress);
        return -ENOMEM;
    }
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
    weft_chan_free(p.progress);
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
