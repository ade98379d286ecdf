/* SPDX-License-Identifier: MIT */
/* Spawn storms with skewed placement: work is created where it cannot all
 * run, so that the other workers must steal it. Each round picks one of:
 * a flat fan-out of thousands of tasks from one task, a random spawn tree,
 * bursts of weft_spawn_on from plain threads (the inject queue), and a
 * task that spawns a batch and then holds its worker in a busy loop (its
 * next slot and local queue must be taken by the others); message
 * ping-pong pairs run alongside. Invariants: every task body runs exactly
 * once and returns its own value, tree sums add up, messages arrive in
 * order, and (with several workers) nothing stays stranded behind a busy
 * worker for a second. */
#define _GNU_SOURCE 1
#include "stress.h"

#define MAX_TASKS 20000

static struct {
    atomic_int ran[MAX_TASKS];
    int n;
    atomic_long total_tasks;
    atomic_int done_under_hog;
} S;

static void spin_ns(int64_t ns)
{
    int64_t end = weft_now() + ns;
    while (weft_now() < end)
        ;
}

static int leaf(void *arg)
{
    int i = (int)(intptr_t)arg;
    if (atomic_fetch_add(&S.ran[i], 1) != 0)
        stress_fail("task %d ran twice", i);
    uint64_t rng = stress_stream((uint64_t)i);
    unsigned k = stress_below(&rng, 4);
    if (k == 0)
        weft_yield();
    else if (k == 1)
        spin_ns((int64_t)stress_below(&rng, 20000));
    atomic_fetch_add(&S.done_under_hog, 1);
    return i;
}

static void reset_round(int n)
{
    S.n = n;
    for (int i = 0; i < n; i++)
        atomic_store(&S.ran[i], 0);
    atomic_store(&S.done_under_hog, 0);
}

static void check_ran(const char *what)
{
    for (int i = 0; i < S.n; i++) {
        int r = atomic_load(&S.ran[i]);
        if (r != 1) {
            stress_fail("%s: task %d of %d ran %d times", what, i, S.n, r);
            return;
        }
    }
    atomic_fetch_add(&S.total_tasks, S.n);
}

/* One task spawns them all, then joins them in order. */
static int fanout(void *arg)
{
    (void)arg;
    static weft_task *t[MAX_TASKS];
    for (int i = 0; i < S.n; i++)
        if (!(t[i] = weft_spawn(leaf, (void *)(intptr_t)i)))
            stress_fail("weft_spawn: %s", weft_strerror(-errno));
    for (int i = 0; i < S.n; i++)
        if (t[i]) {
            int s = weft_join(t[i]);
            STRESS_CHECK(s == i, "task %d returned %d", i, s);
        }
    return 0;
}

struct tree {
    int depth, fan;
    uint64_t seed;
};

/* Sums the leaves below: each leaf is 1. */
static int tree_node(void *arg)
{
    struct tree *t = arg;
    if (t->depth == 0)
        return 1;
    struct tree kids[8];
    weft_task *h[8];
    for (int i = 0; i < t->fan; i++) {
        kids[i] = (struct tree){t->depth - 1, t->fan, t->seed * 31 + (uint64_t)i};
        h[i] = weft_spawn(tree_node, &kids[i]);
        if (!h[i])
            stress_fail("weft_spawn: %s", weft_strerror(-errno));
    }
    int sum = 0;
    for (int i = 0; i < t->fan; i++)
        if (h[i])
            sum += weft_join(h[i]);
    return sum;
}

/* Plain threads spawn onto the runtime while it runs. */
struct burst {
    weft_runtime *rt;
    int from, to;
    weft_task **t;
};

static void *burst_thread(void *arg)
{
    struct burst *b = arg;
    for (int i = b->from; i < b->to; i++)
        if (!(b->t[i] = weft_spawn_on(b->rt, leaf, (void *)(intptr_t)i)))
            stress_fail("weft_spawn_on: %s", weft_strerror(-errno));
    return NULL;
}

struct join_all {
    weft_task **t;
    int n;
};

static int join_all(void *arg)
{
    struct join_all *j = arg;
    for (int i = 0; i < j->n; i++)
        if (j->t[i]) {
            int s = weft_join(j->t[i]);
            STRESS_CHECK(s == i, "spawn_on task %d returned %d", i, s);
        }
    return 0;
}

/* Spawns a batch, then keeps its worker busy without suspending: the
 * batch sits in this worker's next slot and queue, where only thieves can
 * run it. */
static int hog(void *arg)
{
    (void)arg;
    static weft_task *t[MAX_TASKS];
    for (int i = 0; i < S.n; i++)
        t[i] = weft_spawn(leaf, (void *)(intptr_t)i);
    /* Thieves take them within milliseconds; the bound is for a loaded
     * machine or a sanitizer, where the other worker threads may get
     * little CPU. */
    int64_t end = weft_now() + WEFT_SEC(10);
    while (stress_g.workers > 1 && atomic_load(&S.done_under_hog) < S.n && weft_now() < end)
        ;
    if (stress_g.workers > 1)
        STRESS_CHECK(atomic_load(&S.done_under_hog) == S.n,
                     "%d of %d tasks stranded behind a busy worker for 10 s",
                     S.n - atomic_load(&S.done_under_hog), S.n);
    for (int i = 0; i < S.n; i++)
        if (t[i])
            weft_join(t[i]);
    return 0;
}

/* Ping-pong over two rendezvous channels, alongside the storms. */
struct pp {
    weft_chan *a, *b;
    int n;
};

static int ping(void *arg)
{
    struct pp *p = arg;
    for (int i = 0; i < p->n; i++) {
        int v = i, r = -1;
        if (weft_chan_send(p->a, &v) != 0 || weft_chan_recv(p->b, &r) != 0) {
            stress_fail("ping-pong channel call failed");
            return -1;
        }
        STRESS_CHECK(r == i + 1, "pong %d for ping %d", r, i);
    }
    return 0;
}

static int pong(void *arg)
{
    struct pp *p = arg;
    for (int i = 0; i < p->n; i++) {
        int v = -1;
        if (weft_chan_recv(p->a, &v) != 0) {
            stress_fail("ping-pong recv failed");
            return -1;
        }
        STRESS_CHECK(v == i, "ping %d out of order (want %d)", v, i);
        v++;
        if (weft_chan_send(p->b, &v) != 0) {
            stress_fail("ping-pong send failed");
            return -1;
        }
    }
    return 0;
}

struct round_arg {
    int kind;
    struct tree tree;
    int expect;
};

static int round_body(void *arg)
{
    struct round_arg *ra = arg;
    struct pp pp[4];
    weft_task *pt[8];
    int npp = 0;
    for (int i = 0; i < 4; i++) {
        pp[i].a = weft_chan_new(sizeof(int), 0);
        pp[i].b = weft_chan_new(sizeof(int), 0);
        pp[i].n = 2000;
        if (!pp[i].a || !pp[i].b) {
            stress_fail("weft_chan_new failed");
            weft_chan_free(pp[i].a);
            weft_chan_free(pp[i].b);
            break;
        }
        pt[2 * i] = weft_spawn(ping, &pp[i]);
        pt[2 * i + 1] = weft_spawn(pong, &pp[i]);
        npp++;
    }
    int rc = 0;
    switch (ra->kind) {
    case 0:
        rc = fanout(NULL);
        break;
    case 1: {
        int sum = tree_node(&ra->tree);
        STRESS_CHECK(sum == ra->expect, "tree of fan %d depth %d summed %d, want %d",
                     ra->tree.fan, ra->tree.depth, sum, ra->expect);
        break;
    }
    case 3:
        rc = hog(NULL);
        break;
    }
    for (int i = 0; i < npp; i++) {
        STRESS_CHECK(pt[2 * i] && weft_join(pt[2 * i]) == 0, "ping failed");
        STRESS_CHECK(pt[2 * i + 1] && weft_join(pt[2 * i + 1]) == 0, "pong failed");
        weft_chan_free(pp[i].a);
        weft_chan_free(pp[i].b);
    }
    return rc;
}

int main(void)
{
    stress_init("steal_stress");
    uint64_t rng = stress_stream(0);
    weft_runtime *rt = stress_runtime();
    int rounds = 0, per_kind[4] = {0};
    static weft_task *bt[MAX_TASKS];
    while (stress_running() && atomic_load(&stress_g.n_failures) == 0) {
        struct round_arg ra = {.kind = (int)stress_below(&rng, 4)};
        per_kind[ra.kind]++;
        switch (ra.kind) {
        case 0: /* fan-out from one task */
            reset_round(1000 + (int)stress_below(&rng, MAX_TASKS - 1000));
            STRESS_CHECK(weft_runtime_block_on(rt, round_body, &ra) == 0, "fan-out round");
            check_ran("fan-out");
            break;
        case 1: { /* a random tree */
            ra.tree.fan = 2 + (int)stress_below(&rng, 7);
            ra.tree.depth = 1;
            int leaves = ra.tree.fan;
            while (leaves * ra.tree.fan <= 20000 && stress_below(&rng, 5) != 0) {
                leaves *= ra.tree.fan;
                ra.tree.depth++;
            }
            ra.expect = leaves;
            STRESS_CHECK(weft_runtime_block_on(rt, round_body, &ra) == 0, "tree round");
            atomic_fetch_add(&S.total_tasks, leaves);
            break;
        }
        case 2: { /* plain threads spawn_on in bursts while a task joins */
            reset_round(1000 + (int)stress_below(&rng, MAX_TASKS - 1000));
            int nthreads = 1 + (int)stress_below(&rng, 4);
            pthread_t th[4];
            struct burst b[4];
            for (int i = 0; i < nthreads; i++) {
                b[i] = (struct burst){rt, S.n * i / nthreads, S.n * (i + 1) / nthreads, bt};
                pthread_create(&th[i], NULL, burst_thread, &b[i]);
            }
            for (int i = 0; i < nthreads; i++)
                pthread_join(th[i], NULL);
            struct join_all j = {bt, S.n};
            STRESS_CHECK(weft_runtime_block_on(rt, join_all, &j) == 0, "spawn_on round");
            check_ran("spawn_on bursts");
            break;
        }
        case 3: /* a batch behind a busy worker */
            reset_round(100 + (int)stress_below(&rng, 2000));
            STRESS_CHECK(weft_runtime_block_on(rt, round_body, &ra) == 0, "hog round");
            check_ran("behind a busy worker");
            break;
        }
        rounds++;
    }
    weft_stats st = {0};
    weft_runtime_stats(rt, &st);
    uint64_t steals = 0, run = 0;
    for (unsigned i = 0; i < st.n_workers; i++) {
        steals += st.worker[i].steals;
        run += st.worker[i].tasks_run;
    }
    stress_free_runtime(rt);
    printf("steal_stress: %d rounds (%d fan-out, %d tree, %d spawn_on, %d busy worker), %ld "
           "tasks checked; %" PRIu64 " task runs, %" PRIu64 " stolen\n",
           rounds, per_kind[0], per_kind[1], per_kind[2], per_kind[3],
           atomic_load(&S.total_tasks), run, steals);
    return stress_finish();
}
