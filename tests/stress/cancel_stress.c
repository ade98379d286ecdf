/* SPDX-License-Identifier: MIT */
/* Cancellation storm: driver tasks run random operations (yield, sleep,
 * join, semaphore, mutex, event, buffered and rendezvous channels,
 * generators, run_blocking, wait_for, gather, wait_any, groups, shield,
 * detached tasks) as child tasks that are cancelled at a random moment,
 * or bounded by a random deadline scope, or both; nested children are
 * cancelled through their parents. A plain thread sets and clears the
 * event and takes and returns permits meanwhile. Invariants: every task
 * body that was spawned starts and ends exactly once (generator bodies
 * and blocking functions too); a blocking function has returned when its
 * run_blocking does; at most `permits` tasks hold the semaphore and every
 * permit comes back; one mutex holder at a time; channels lose and
 * duplicate nothing (every value sent with success is received once);
 * every call returns one of its documented codes. */
#define _GNU_SOURCE 1
#include "stress.h"

#define N_DRIVERS 48
#define SEM_PERMITS 3
#define VAL_CAP (UINT32_C(1) << 24)

enum op {
    OP_YIELD, OP_SLEEP, OP_JOIN, OP_SEM, OP_MUTEX, OP_EVENT, OP_SEND0, OP_RECV0, OP_SEND1,
    OP_RECV1, OP_GEN, OP_BLOCKING, OP_WAIT_FOR, OP_GATHER, OP_WAIT_ANY, OP_GROUP, OP_SHIELD,
    OP_DETACH, OP_FAIL, N_OPS
};

static const char *const op_names[N_OPS] = {
    "yield", "sleep", "join", "sem", "mutex", "event", "send(buffered)", "recv(buffered)",
    "send(rendezvous)", "recv(rendezvous)", "gen", "run_blocking", "wait_for", "gather",
    "wait_any", "group", "shield", "detach", "fail",
};

static struct world {
    weft_sem *sem;
    atomic_int sem_inside;
    weft_mutex *mu;
    atomic_int mu_holders;
    weft_event *ev;
    weft_chan *chan[2]; /* [0] capacity 8, [1] rendezvous; uint32_t values */
    atomic_uint next_val;
    atomic_long sent_n[2], recv_n[2];
    atomic_ullong sent_sum[2], recv_sum[2];
    _Atomic uint64_t *seen; /* VAL_CAP bits: received already */
    atomic_long spawned, starts, ends;
    atomic_long gen_starts, gen_ends;
    atomic_long blk_started, blk_ended;
    atomic_long ops[N_OPS], cancelled, timed_out;
    atomic_bool helper_stop;
} W;

struct job {
    int op;
    int depth;
    int64_t scope_ns; /* < 0: no deadline scope */
    uint64_t rng;
};

static int job_main(void *arg);

static struct job *new_job(int op, int depth, int64_t scope_ns, uint64_t *rng)
{
    struct job *j = malloc(sizeof *j);
    if (!j) {
        stress_fail("out of memory");
        return NULL;
    }
    j->op = op;
    j->depth = depth;
    j->scope_ns = scope_ns;
    j->rng = stress_rand(rng);
    return j;
}

/* A nested child: a leaf operation under a scope of its own (0..3 ms), so
 * that it ends even when nobody cancels it. */
static struct job *leaf_job(struct job *parent)
{
    static const int leaves[] = {OP_YIELD, OP_SLEEP, OP_SEM, OP_MUTEX, OP_EVENT, OP_SEND0,
                                 OP_RECV0, OP_SEND1, OP_RECV1, OP_BLOCKING, OP_SHIELD, OP_FAIL};
    int op = leaves[stress_below(&parent->rng, sizeof leaves / sizeof leaves[0])];
    if (parent->depth < 2 && stress_below(&parent->rng, 4) == 0)
        op = OP_JOIN + (int)stress_below(&parent->rng, 2) * (OP_GATHER - OP_JOIN);
    return new_job(op, parent->depth + 1, (int64_t)stress_below(&parent->rng, 3000) * 1000,
                   &parent->rng);
}

static weft_task *spawn_job(struct job *j)
{
    if (!j)
        return NULL;
    weft_task *t = weft_spawn(job_main, j);
    if (!t) {
        stress_fail("weft_spawn: %s", weft_strerror(-errno));
        free(j);
        return NULL;
    }
    atomic_fetch_add(&W.spawned, 1);
    return t;
}

/* Every call's result must be one of these (plus extra, when not 0). */
static void check_rc(int rc, const char *what, int extra)
{
    if (rc == 0 || rc == -ECANCELED || rc == -ETIMEDOUT || (extra && rc == extra))
        return;
    stress_fail("%s returned %d (%s)", what, rc, weft_strerror(rc));
}

/* A task's status: what its operation may end with. */
static void check_status(int s, const char *what)
{
    if (s == 0 || s == -ECANCELED || s == -ETIMEDOUT || s == -EIO || s == 1)
        return;
    stress_fail("%s: a child ended with %d (%s)", what, s, weft_strerror(s));
}

static int sleep_us(uint64_t *rng, unsigned max_us)
{
    return weft_sleep(WEFT_USEC(stress_below(rng, max_us + 1)));
}

static int gen_body(weft_gen *g, void *arg)
{
    (void)arg;
    atomic_fetch_add(&W.gen_starts, 1);
    int rc = 0;
    for (uintptr_t i = 0; i < 1000 && rc == 0; i++)
        rc = weft_gen_yield(g, (void *)i);
    /* Cleanup may still suspend. */
    weft_yield();
    atomic_fetch_add(&W.gen_ends, 1);
    check_rc(rc, "weft_gen_yield", 0);
    return rc;
}

struct blk {
    atomic_int running;
    unsigned us;
};

static int blk_fn(void *arg)
{
    struct blk *b = arg;
    atomic_fetch_add(&W.blk_started, 1);
    atomic_store(&b->running, 1);
    struct timespec ts = {0, (long)b->us * 1000};
    nanosleep(&ts, NULL);
    atomic_store(&b->running, 0);
    atomic_fetch_add(&W.blk_ended, 1);
    return 5;
}

static int shielded(void *arg)
{
    struct job *j = arg;
    /* Inside the shield: cancellation and outer deadlines are held back. */
    int rc = sleep_us(&j->rng, 300);
    if (rc != 0)
        stress_fail("a shielded sleep returned %d", rc);
    return 0;
}

static int chan_op(struct job *j, int k, bool send)
{
    uint32_t v;
    if (send) {
        v = atomic_fetch_add(&W.next_val, 1);
        if (v >= VAL_CAP)
            return weft_yield();
        int rc = weft_chan_send(W.chan[k], &v);
        check_rc(rc, "weft_chan_send", 0);
        if (rc == 0) {
            atomic_fetch_add(&W.sent_n[k], 1);
            atomic_fetch_add(&W.sent_sum[k], v);
        }
        return rc;
    }
    (void)j;
    int rc = weft_chan_recv(W.chan[k], &v);
    check_rc(rc, "weft_chan_recv", 0);
    if (rc == 0) {
        atomic_fetch_add(&W.recv_n[k], 1);
        atomic_fetch_add(&W.recv_sum[k], v);
        uint64_t bit = UINT64_C(1) << (v % 64);
        if (v >= VAL_CAP || (atomic_fetch_or(&W.seen[v / 64], bit) & bit))
            stress_fail("value %u received twice", v);
    }
    return rc;
}

static int run_op(struct job *j)
{
    int rc = 0;
    switch (j->op) {
    case OP_YIELD:
        for (unsigned k = stress_below(&j->rng, 8); k-- && rc == 0;)
            rc = weft_yield();
        check_rc(rc, "weft_yield", 0);
        return rc;
    case OP_SLEEP:
        rc = sleep_us(&j->rng, 2000);
        check_rc(rc, "weft_sleep", 0);
        return rc;
    case OP_JOIN: {
        weft_task *t = spawn_job(leaf_job(j));
        if (!t)
            return 0;
        rc = weft_join(t);
        check_status(rc, "weft_join");
        return rc;
    }
    case OP_SEM:
        rc = weft_sem_acquire(W.sem);
        check_rc(rc, "weft_sem_acquire", 0);
        if (rc == 0) {
            int in = atomic_fetch_add(&W.sem_inside, 1) + 1;
            if (in > SEM_PERMITS)
                stress_fail("%d tasks hold a %d-permit semaphore", in, SEM_PERMITS);
            int r2 = stress_below(&j->rng, 2) ? weft_yield() : sleep_us(&j->rng, 200);
            check_rc(r2, "weft_yield/sleep under the semaphore", 0);
            atomic_fetch_sub(&W.sem_inside, 1);
            weft_sem_release(W.sem);
        }
        return rc;
    case OP_MUTEX:
        rc = weft_mutex_lock(W.mu);
        check_rc(rc, "weft_mutex_lock", 0);
        if (rc == 0) {
            if (atomic_fetch_add(&W.mu_holders, 1) != 0)
                stress_fail("two holders of one mutex");
            weft_yield();
            atomic_fetch_sub(&W.mu_holders, 1);
            weft_mutex_unlock(W.mu);
        }
        return rc;
    case OP_EVENT:
        rc = weft_event_wait(W.ev);
        check_rc(rc, "weft_event_wait", 0);
        if (stress_below(&j->rng, 8) == 0)
            weft_event_set(W.ev);
        return rc;
    case OP_SEND0:
    case OP_RECV0:
    case OP_SEND1:
    case OP_RECV1:
        return chan_op(j, j->op >= OP_SEND1, j->op == OP_SEND0 || j->op == OP_SEND1);
    case OP_GEN: {
        weft_gen *g = weft_gen_new(gen_body, NULL);
        if (!g) {
            stress_fail("weft_gen_new: %s", weft_strerror(-errno));
            return 0;
        }
        uintptr_t want = 0;
        for (unsigned k = stress_below(&j->rng, 6); k--;) {
            void *v;
            rc = weft_gen_next(g, &v);
            if (rc != 1) {
                check_rc(rc, "weft_gen_next", 0);
                break;
            }
            if ((uintptr_t)v != want)
                stress_fail("generator gave %lu, want %lu", (unsigned long)(uintptr_t)v,
                            (unsigned long)want);
            want++;
            rc = 0;
        }
        int c = weft_gen_close(g);
        check_rc(c, "weft_gen_close", 0);
        return rc ? rc : c;
    }
    case OP_BLOCKING: {
        struct blk b = {.us = stress_below(&j->rng, 500)};
        atomic_init(&b.running, 0);
        rc = weft_run_blocking(blk_fn, &b);
        check_rc(rc, "weft_run_blocking", 5);
        if (atomic_load(&b.running))
            stress_fail("run_blocking returned while its function still ran");
        return rc == 5 ? 0 : rc;
    }
    case OP_WAIT_FOR: {
        struct job *c = leaf_job(j);
        if (!c)
            return 0;
        atomic_fetch_add(&W.spawned, 1);
        rc = weft_wait_for(job_main, c, (int64_t)stress_below(&j->rng, 2000) * 1000);
        check_status(rc, "weft_wait_for");
        return rc;
    }
    case OP_GATHER:
    case OP_WAIT_ANY: {
        weft_task *t[4];
        int n = 0;
        for (unsigned k = 2 + stress_below(&j->rng, 3); k--;)
            if ((t[n] = spawn_job(leaf_job(j))) != NULL)
                n++;
        if (!n)
            return 0;
        if (j->op == OP_GATHER) {
            int st[4];
            rc = weft_gather(t, (size_t)n, st);
            check_status(rc, "weft_gather");
            for (int i = 0; i < n; i++)
                check_status(st[i], "weft_gather's statuses");
            return rc;
        }
        rc = weft_wait_any(t, (size_t)n, (int64_t)stress_below(&j->rng, 2000) * 1000);
        if (rc >= n)
            stress_fail("weft_wait_any returned index %d of %d", rc, n);
        if (rc < 0)
            check_rc(rc, "weft_wait_any", 0);
        for (int i = 0; i < n; i++) {
            weft_cancel(t[i]);
            check_status(weft_join(t[i]), "join after wait_any");
        }
        return rc >= 0 ? 0 : rc;
    }
    case OP_GROUP: {
        weft_group *g = weft_group_new();
        if (!g) {
            stress_fail("weft_group_new: %s", weft_strerror(-errno));
            return 0;
        }
        for (unsigned k = 2 + stress_below(&j->rng, 3); k--;) {
            struct job *c = leaf_job(j);
            if (!c)
                break;
            int s = weft_group_spawn(g, job_main, c);
            if (s == 0) {
                atomic_fetch_add(&W.spawned, 1);
            } else {
                free(c);
                if (s != -ECANCELED) /* the group has already failed */
                    stress_fail("weft_group_spawn: %s", weft_strerror(s));
            }
        }
        rc = weft_group_wait(g);
        check_status(rc, "weft_group_wait");
        return rc;
    }
    case OP_SHIELD:
        rc = weft_shield(shielded, j);
        if (rc != 0)
            stress_fail("weft_shield returned %d", rc);
        rc = weft_yield(); /* a held-back cancellation shows here */
        check_rc(rc, "weft_yield after a shield", 0);
        return rc;
    case OP_DETACH: {
        weft_task *t = spawn_job(leaf_job(j));
        if (t)
            weft_detach(t);
        return 0;
    }
    case OP_FAIL:
        weft_yield();
        return -EIO;
    }
    return 0;
}

static int job_main(void *arg)
{
    struct job *j = arg;
    atomic_fetch_add(&W.starts, 1);
    atomic_fetch_add(&W.ops[j->op], 1);
    weft_deadline d;
    bool scoped = j->scope_ns >= 0 && weft_deadline_enter(&d, j->scope_ns) == 0;
    int rc = run_op(j);
    if (scoped && weft_deadline_leave(&d) != 0)
        stress_fail("weft_deadline_leave failed after %s", op_names[j->op]);
    if (rc == -ECANCELED)
        atomic_fetch_add(&W.cancelled, 1);
    else if (rc == -ETIMEDOUT)
        atomic_fetch_add(&W.timed_out, 1);
    free(j);
    atomic_fetch_add(&W.ends, 1);
    return rc;
}

/* A driver: spawns one random operation after another until the storm
 * ends; each is cancelled by the driver at a random moment, bounded by a
 * random scope of its own, or both. */
static int driver(void *arg)
{
    uint64_t rng = stress_stream((uintptr_t)arg);
    while (stress_running()) {
        int op = (int)stress_below(&rng, N_OPS);
        unsigned mode = stress_below(&rng, 3); /* 0 scope, 1 cancel, 2 both */
        int64_t scope = mode == 1 ? -1 : (int64_t)stress_below(&rng, 3000) * 1000;
        weft_task *t = spawn_job(new_job(op, 0, scope, &rng));
        if (!t)
            continue;
        if (mode != 0) {
            if (stress_below(&rng, 2))
                weft_sleep(WEFT_USEC(stress_below(&rng, 1000)));
            else
                for (unsigned k = stress_below(&rng, 4); k--;)
                    weft_yield();
            weft_cancel(t);
        }
        check_status(weft_join(t), "a driver's join");
    }
    return 0;
}

/* The plain thread: sets and clears the event, takes and returns a
 * permit now and then. */
static void *helper(void *arg)
{
    (void)arg;
    while (!atomic_load(&W.helper_stop)) {
        weft_event_set(W.ev);
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        weft_event_clear(W.ev);
        if (weft_sem_try_acquire(W.sem)) {
            int in = atomic_fetch_add(&W.sem_inside, 1) + 1;
            if (in > SEM_PERMITS)
                stress_fail("%d holders of a %d-permit semaphore (plain thread)", in,
                            SEM_PERMITS);
            atomic_fetch_sub(&W.sem_inside, 1);
            weft_sem_release(W.sem);
        }
    }
    weft_event_set(W.ev);
    return NULL;
}

static int storm(void *arg)
{
    (void)arg;
    weft_task *d[N_DRIVERS];
    int n = 0;
    for (; n < N_DRIVERS; n++) {
        d[n] = weft_spawn(driver, (void *)(uintptr_t)n);
        if (!d[n]) {
            stress_fail("cannot spawn driver %d", n);
            break;
        }
    }
    for (int i = 0; i < n; i++)
        STRESS_CHECK(weft_join(d[i]) == 0, "a driver failed");
    /* Detached leaves may still run: wait for them (bounded by their
     * scopes) before counting. */
    int64_t until = weft_now() + WEFT_SEC(30);
    while (atomic_load(&W.ends) != atomic_load(&W.spawned) && weft_now() < until)
        weft_sleep(WEFT_MSEC(1));
    /* Every permit came back, nobody holds the mutex. */
    int permits = 0;
    while (permits <= SEM_PERMITS && weft_sem_try_acquire(W.sem))
        permits++;
    STRESS_CHECK(permits == SEM_PERMITS, "%d permits free at the end, want %d", permits,
                 SEM_PERMITS);
    weft_deadline dl;
    weft_deadline_enter(&dl, WEFT_SEC(5));
    int rc = weft_mutex_lock(W.mu);
    weft_deadline_leave(&dl);
    STRESS_CHECK(rc == 0, "the mutex is still held at the end (%d)", rc);
    if (rc == 0)
        weft_mutex_unlock(W.mu);
    /* Channels: close, drain what is buffered, compare. */
    for (int k = 0; k < 2; k++) {
        weft_chan_close(W.chan[k]);
        uint32_t v;
        while ((rc = weft_chan_recv(W.chan[k], &v)) == 0) {
            atomic_fetch_add(&W.recv_n[k], 1);
            atomic_fetch_add(&W.recv_sum[k], v);
        }
        STRESS_CHECK(rc == -EPIPE, "draining a closed channel returned %d", rc);
        STRESS_CHECK(atomic_load(&W.sent_n[k]) == atomic_load(&W.recv_n[k]) &&
                         atomic_load(&W.sent_sum[k]) == atomic_load(&W.recv_sum[k]),
                     "channel %d: %ld sent (sum %llu), %ld received (sum %llu)", k,
                     atomic_load(&W.sent_n[k]), (unsigned long long)atomic_load(&W.sent_sum[k]),
                     atomic_load(&W.recv_n[k]), (unsigned long long)atomic_load(&W.recv_sum[k]));
    }
    return 0;
}

int main(void)
{
    stress_init("cancel_stress");
    W.sem = weft_sem_new(SEM_PERMITS);
    W.mu = weft_mutex_new();
    W.ev = weft_event_new();
    W.chan[0] = weft_chan_new(sizeof(uint32_t), 8);
    W.chan[1] = weft_chan_new(sizeof(uint32_t), 0);
    W.seen = calloc(VAL_CAP / 64, sizeof *W.seen);
    if (!W.sem || !W.mu || !W.ev || !W.chan[0] || !W.chan[1] || !W.seen) {
        fprintf(stderr, "cancel_stress: out of memory\n");
        return 1;
    }
    weft_runtime *rt = stress_runtime();
    pthread_t h;
    pthread_create(&h, NULL, helper, NULL);
    int rc = weft_runtime_block_on(rt, storm, NULL);
    atomic_store(&W.helper_stop, true);
    pthread_join(h, NULL);
    STRESS_CHECK(rc == 0, "the storm returned %d", rc);
    stress_free_runtime(rt);

    long spawned = atomic_load(&W.spawned), starts = atomic_load(&W.starts),
         ends = atomic_load(&W.ends);
    STRESS_CHECK(spawned == starts && starts == ends,
                 "%ld tasks spawned, %ld bodies started, %ld ended", spawned, starts, ends);
    STRESS_CHECK(atomic_load(&W.gen_starts) == atomic_load(&W.gen_ends),
                 "%ld generator bodies started, %ld ended", atomic_load(&W.gen_starts),
                 atomic_load(&W.gen_ends));
    STRESS_CHECK(atomic_load(&W.blk_started) == atomic_load(&W.blk_ended),
                 "%ld blocking functions started, %ld returned", atomic_load(&W.blk_started),
                 atomic_load(&W.blk_ended));
    printf("cancel_stress: %ld tasks (%ld ended cancelled, %ld timed out); %ld+%ld values "
           "through the channels; %ld generator bodies; %ld blocking calls\n",
           spawned, atomic_load(&W.cancelled), atomic_load(&W.timed_out),
           atomic_load(&W.recv_n[0]), atomic_load(&W.recv_n[1]), atomic_load(&W.gen_starts),
           atomic_load(&W.blk_started));
    printf("cancel_stress: operations:");
    for (int i = 0; i < N_OPS; i++)
        printf(" %s %ld%s", op_names[i], atomic_load(&W.ops[i]), i + 1 < N_OPS ? "," : "\n");
    weft_chan_free(W.chan[0]);
    weft_chan_free(W.chan[1]);
    weft_sem_free(W.sem);
    weft_mutex_free(W.mu);
    weft_event_free(W.ev);
    free(W.seen);
    return stress_finish();
}
