/* SPDX-License-Identifier: MIT */
/* The public contract of include/weft/diag.h and of the slow-task warning
 * (weft_options.slow_task_ns, WEFT_SLOW_TASK_MS): stats counters, the task
 * dump (names, states, what a task waits on), and exactly one stderr line
 * per slow run stretch, printed while the task still runs. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

#include "harness.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* --- stats ---------------------------------------------------------------- */

static int yield_3_times(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        if (weft_yield() != 0)
            return -1;
    return 0;
}

static uint64_t total_run(const weft_stats *st)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < st->n_workers; i++)
        n += st->worker[i].tasks_run;
    return n;
}

struct stats_seen {
    weft_stats a, b;
};

static int stats_main(void *arg)
{
    struct stats_seen *s = arg;
    weft_runtime *rt = weft_runtime_current();
    HCHECK_INT_EQ(weft_runtime_stats(rt, &s->a), 0);
    weft_task *t[10];
    for (int i = 0; i < 10; i++) {
        t[i] = weft_spawn(yield_3_times, NULL);
        HREQUIRE(t[i] != NULL, -1);
    }
    for (int i = 0; i < 10; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    HCHECK_INT_EQ(weft_runtime_stats(rt, &s->b), 0);
    return 0;
}

/* Counters move the right way: ten tasks that yield three times each run
 * at least 40 times more, the spawn count grows by ten, the caller is
 * live, and idle queues are shallow. */
START_TEST(stats_count_runs_and_spawns)
{
    unsigned workers = harness_workers_variant(_i);
    struct stats_seen s;
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(harness_run(workers, stats_main, &s), 0);
    harness_assert_clean();
    ck_assert_uint_eq(s.a.n_workers, workers);
    ck_assert_uint_eq(s.b.n_workers, workers);
    ck_assert_uint_ge(total_run(&s.a), 1); /* the caller itself */
    ck_assert_uint_ge(total_run(&s.b), total_run(&s.a) + 40);
    ck_assert_uint_eq(s.b.tasks_spawned, s.a.tasks_spawned + 10);
    ck_assert_uint_ge(s.a.tasks_live, 1);
    ck_assert_uint_eq(s.b.tasks_live, s.a.tasks_live);
    for (unsigned i = 0; i < workers; i++)
        ck_assert_uint_le(s.b.worker[i].queue_depth, 256);
    for (unsigned i = workers; i < WEFT_MAX_WORKERS; i++)
        ck_assert_uint_eq(s.b.worker[i].tasks_run, 0);
}
END_TEST

struct blocking_gate {
    atomic_bool started, release;
};

static int wait_for_gate(void *arg)
{
    struct blocking_gate *g = arg;
    atomic_store(&g->started, true);
    while (!atomic_load(&g->release))
        sleep_ms(1);
    return 0;
}

static int call_gate(void *arg)
{
    return weft_run_blocking(wait_for_gate, arg);
}

static int sleep_10s(void *arg)
{
    (void)arg;
    return weft_sleep(WEFT_SEC(10));
}

static int stats_blocking_main(void *arg)
{
    (void)arg;
    weft_runtime *rt = weft_runtime_current();
    weft_stats st;
    struct blocking_gate g = {.started = false};
    weft_task *b = weft_spawn(call_gate, &g);
    weft_task *sl = weft_spawn(sleep_10s, NULL);
    HREQUIRE(b != NULL && sl != NULL, -1);
    while (!atomic_load(&g.started))
        HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), 0);
    /* Until the sleeper has armed its timer. */
    int64_t give_up = harness_now_ns() + harness_wait_ns();
    do {
        HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), 0);
        HCHECK_INT_EQ(weft_runtime_stats(rt, &st), 0);
    } while (st.timers_armed == 0 && harness_now_ns() < give_up);
    HCHECK(st.blocking_threads >= 1);
    HCHECK_INT_EQ(st.blocking_busy, 1);
    HCHECK(st.blocking_busy + st.blocking_idle <= st.blocking_threads);
    HCHECK_INT_EQ(st.blocking_queued, 0);
    HCHECK(st.timers_armed >= 1);
    HCHECK(st.tasks_live >= 3);
    atomic_store(&g.release, true);
    HCHECK_INT_EQ(weft_join(b), 0);
    weft_cancel(sl);
    HCHECK_INT_EQ(weft_join(sl), -ECANCELED);
    HCHECK_INT_EQ(weft_runtime_stats(rt, &st), 0);
    HCHECK_INT_EQ(st.blocking_busy, 0);
    HCHECK(st.blocking_threads >= 1); /* idle threads linger (keep-alive) */
    HCHECK(st.blocking_idle <= st.blocking_threads);
    return 0;
}

/* The blocking pool's counts and the armed timers show up. */
START_TEST(stats_show_blocking_pool_and_timers)
{
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), stats_blocking_main, NULL), 0);
}
END_TEST

START_TEST(stats_reject_null)
{
    weft_stats st;
    ck_assert_int_eq(weft_runtime_stats(NULL, &st), -EINVAL);
    weft_runtime *rt = weft_runtime_new(NULL);
    ck_assert_ptr_nonnull(rt);
    ck_assert_int_eq(weft_runtime_stats(rt, NULL), -EINVAL);
    /* From a plain thread too. */
    ck_assert_int_eq(weft_runtime_stats(rt, &st), 0);
    ck_assert_uint_ge(st.n_workers, 1);
    weft_runtime_free(rt);
}
END_TEST

/* --- dump ----------------------------------------------------------------- */

/* The line of buf that contains needle, copied into line; false if none. */
static bool find_line(const char *buf, const char *needle, char *line, size_t len)
{
    const char *p = strstr(buf, needle);
    if (!p)
        return false;
    const char *start = p;
    while (start > buf && start[-1] != '\n')
        start--;
    const char *end = strchr(p, '\n');
    size_t n = end ? (size_t)(end - start) : strlen(start);
    if (n >= len)
        n = len - 1;
    memcpy(line, start, n);
    line[n] = '\0';
    return true;
}

struct dump_seen {
    char *text;
    size_t len;
};

static int never_runs(void *arg)
{
    (void)arg;
    return 0;
}

static int dump_main(void *arg)
{
    struct dump_seen *d = arg;
    weft_task *self = weft_current();
    weft_task_set_name(self, "dumper");
    weft_task *sl = weft_spawn(sleep_10s, NULL);
    HREQUIRE(sl != NULL, -1);
    weft_task_set_name(sl, "sleepy");
    struct blocking_gate g = {.started = false};
    weft_task *b = weft_spawn(call_gate, &g);
    HREQUIRE(b != NULL, -1);
    weft_task_set_name(b, "reader");
    while (!atomic_load(&g.started))
        HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(1)), 0);
    HCHECK_INT_EQ(weft_sleep(WEFT_MSEC(10)), 0);
    weft_task *ns = weft_spawn(never_runs, NULL); /* one worker: not started yet */
    HREQUIRE(ns != NULL, -1);
    weft_task_set_name(ns, "newborn");

    FILE *f = open_memstream(&d->text, &d->len);
    HREQUIRE(f != NULL, -1);
    weft_runtime_dump(weft_runtime_current(), f);
    fclose(f);

    atomic_store(&g.release, true);
    HCHECK_INT_EQ(weft_join(b), 0);
    weft_cancel(sl);
    HCHECK_INT_EQ(weft_join(sl), -ECANCELED);
    HCHECK_INT_EQ(weft_join(ns), 0);
    return 0;
}

/* The dump lists every live task with its name and state: the sleeping one
 * says it sleeps, the one in run_blocking what it waits on, the caller
 * that it runs, a task not yet started that it has not. */
START_TEST(dump_names_a_sleeping_task_and_says_it_sleeps)
{
    struct dump_seen d = {.text = NULL};
    ck_assert_int_eq(harness_run(1, dump_main, &d), 0);
    harness_assert_clean();
    ck_assert_ptr_nonnull(d.text);
    char line[256];
    ck_assert_msg(find_line(d.text, "'sleepy'", line, sizeof line), "dump:\n%s", d.text);
    ck_assert_msg(strstr(line, ": sleeping") && strstr(line, "waits on sleep"), "line: %s", line);
    ck_assert_msg(find_line(d.text, "'reader'", line, sizeof line), "dump:\n%s", d.text);
    ck_assert_msg(strstr(line, ": parked") && strstr(line, "waits on run_blocking"), "line: %s",
                  line);
    ck_assert_msg(find_line(d.text, "'dumper'", line, sizeof line), "dump:\n%s", d.text);
    ck_assert_msg(strstr(line, ": running on worker 0"), "line: %s", line);
    ck_assert_msg(find_line(d.text, "'newborn'", line, sizeof line), "dump:\n%s", d.text);
    ck_assert_msg(strstr(line, ": not started"), "line: %s", line);
    ck_assert_msg(find_line(d.text, "4 live tasks", line, sizeof line), "dump:\n%s", d.text);
    free(d.text);
}
END_TEST

/* Timers armed in the calling task's runtime now. */
static unsigned long timers_armed(void)
{
    weft_stats st;
    if (weft_runtime_stats(weft_runtime_current(), &st) != 0)
        return 0;
    return (unsigned long)st.timers_armed;
}

static int dump_cancelled_main(void *arg)
{
    struct dump_seen *d = arg;
    weft_task *sl = weft_spawn(sleep_10s, NULL);
    HREQUIRE(sl != NULL, -1);
    /* Until the sleeper has armed its timer (on another worker it may not
     * have run yet after any fixed delay). */
    HYIELD_UNTIL(timers_armed() >= 1);
    FILE *f = open_memstream(&d->text, &d->len);
    HREQUIRE(f != NULL, -1);
    weft_runtime_dump(weft_runtime_current(), f);
    fclose(f);
    weft_cancel(sl);
    HCHECK_INT_EQ(weft_join(sl), -ECANCELED);
    return 0;
}

/* Unnamed tasks are listed by id. */
START_TEST(dump_lists_unnamed_tasks_by_id)
{
    struct dump_seen d = {.text = NULL};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), dump_cancelled_main, &d), 0);
    harness_assert_clean();
    ck_assert_ptr_nonnull(d.text);
    char line[256];
    ck_assert_msg(find_line(d.text, "waits on sleep", line, sizeof line), "dump:\n%s", d.text);
    ck_assert_msg(strncmp(line, "  task ", 7) == 0 && strchr(line, '\'') == NULL, "line: %s",
                  line);
    free(d.text);
}
END_TEST

/* How many lines of text start with prefix. */
static size_t count_prefixed(const char *text, const char *prefix)
{
    size_t n = 0, len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += strncmp(p, prefix, len) == 0;
    return n;
}

static int wait_event(void *arg) { return weft_event_wait(arg); }

struct ended_seen {
    struct dump_seen d;
    weft_stats st;
};

#define N_ENDED 50
#define N_WAITING 5

static int dump_ended_main(void *arg)
{
    struct ended_seen *e = arg;
    weft_task *ended[N_ENDED], *waiting[N_WAITING];
    for (int i = 0; i < N_ENDED; i++) {
        ended[i] = weft_spawn(never_runs, NULL);
        HREQUIRE(ended[i] != NULL, -1);
        weft_task_set_name(ended[i], "ended");
    }
    weft_event *ev = weft_event_new();
    HREQUIRE(ev != NULL, -1);
    for (int i = 0; i < N_WAITING; i++) {
        waiting[i] = weft_spawn(wait_event, ev);
        HREQUIRE(waiting[i] != NULL, -1);
        weft_task_set_name(waiting[i], "waiting");
    }
    for (int i = 0; i < N_ENDED; i++)
        HYIELD_UNTIL(weft_task_done(ended[i]));
    HCHECK_INT_EQ(weft_runtime_stats(weft_runtime_current(), &e->st), 0);
    FILE *f = open_memstream(&e->d.text, &e->d.len);
    HREQUIRE(f != NULL, -1);
    weft_runtime_dump(weft_runtime_current(), f);
    fclose(f);
    weft_event_set(ev);
    for (int i = 0; i < N_WAITING; i++)
        HCHECK_INT_EQ(weft_join(waiting[i]), 0);
    for (int i = 0; i < N_ENDED; i++)
        HCHECK_INT_EQ(weft_join(ended[i]), 0);
    weft_event_free(ev);
    return 0;
}

/* Tasks that have ended are not live, even while their handles are held:
 * the dump leaves them out, and stats agree with the dump. */
START_TEST(dump_leaves_out_ended_tasks_and_agrees_with_stats)
{
    struct ended_seen e = {.d.text = NULL};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), dump_ended_main, &e), 0);
    harness_assert_clean();
    ck_assert_ptr_nonnull(e.d.text);
    const char *t = e.d.text;
    ck_assert_msg(strstr(t, "'ended'") == NULL, "dump:\n%s", t);
    ck_assert_msg(count_prefixed(t, "  task ") == N_WAITING + 1, "dump:\n%s", t);
    char line[256];
    ck_assert_msg(find_line(t, "6 live tasks", line, sizeof line), "dump:\n%s", t);
    ck_assert_uint_eq(e.st.tasks_live, N_WAITING + 1);
    ck_assert_uint_ge(e.st.tasks_spawned, N_ENDED + N_WAITING + 1);
    free(e.d.text);
}
END_TEST

/* --- dumps and names against spawns on every worker ---------------------- */

#define RACE_SPAWNERS 4
#define RACE_ROUNDS 3000

struct dumper {
    weft_runtime *rt;
    atomic_bool stop;
    atomic_uint dumps;
    bool bad;
    char bad_line[256];
};

static int renamed_child(void *arg)
{
    weft_task_set_name(weft_current(), (uintptr_t)arg & 1 ? "odd-child" : "even-child");
    return weft_yield();
}

/* RACE_ROUNDS spawns, and on until the dumper has dumped a few times. */
static int race_spawner(void *arg)
{
    struct dumper *d = arg;
    int64_t end = harness_now_ns() + harness_wait_ns();
    for (uintptr_t i = 0; i < RACE_ROUNDS || (atomic_load(&d->dumps) < 3 && harness_now_ns() < end);
         i++) {
        weft_task *c = weft_spawn(renamed_child, (void *)i);
        HREQUIRE(c != NULL, -1);
        /* Named here and by itself at once: either name may win. */
        weft_task_set_name(c, "a-name-longer-than-thirty-one-bytes");
        while (!weft_task_done(c))
            HCHECK_INT_EQ(weft_yield(), 0);
        const char *n = weft_task_name(c); /* nobody renames it now */
        HCHECK_MSG(strcmp(n, "a-name-longer-than-thirty-one-b") == 0 ||
                       strcmp(n, i & 1 ? "odd-child" : "even-child") == 0,
                   "name '%s'", n);
        HCHECK_INT_EQ(weft_join(c), 0);
    }
    return 0;
}

static int race_main(void *arg)
{
    weft_task *sp[RACE_SPAWNERS];
    for (int i = 0; i < RACE_SPAWNERS; i++) {
        sp[i] = weft_spawn(race_spawner, arg);
        HREQUIRE(sp[i] != NULL, -1);
    }
    for (int i = 0; i < RACE_SPAWNERS; i++)
        HCHECK_INT_EQ(weft_join(sp[i]), 0);
    return 0;
}


/* A plain thread that dumps and reads stats until told to stop, checking
 * that every line is a header or a task line. */
static void *dump_loop(void *arg)
{
    struct dumper *d = arg;
    while (!atomic_load(&d->stop)) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
            continue;
        weft_runtime_dump(d->rt, f);
        fclose(f);
        for (const char *p = text; p && *p && !d->bad; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
            if (strncmp(p, "weft runtime: ", 14) != 0 && strncmp(p, "  task ", 7) != 0) {
                d->bad = true;
                snprintf(d->bad_line, sizeof d->bad_line, "%.200s", p);
            }
        }
        free(text);
        weft_stats st;
        if (weft_runtime_stats(d->rt, &st) != 0 || st.tasks_live > 2 * RACE_SPAWNERS + 8) {
            d->bad = true;
            snprintf(d->bad_line, sizeof d->bad_line, "tasks_live %llu",
                     (unsigned long long)st.tasks_live);
        }
        atomic_fetch_add(&d->dumps, 1);
    }
    return NULL;
}

/* Dumps and stats from another thread while tasks are spawned, renamed
 * and ended on every worker: nothing crashes (and, under TSan, nothing
 * races), and the live count stays within what can be alive. */
START_TEST(dump_and_names_race_with_spawns)
{
    weft_options opt = {.workers = harness_workers_variant(_i)};
    struct dumper d = {.rt = weft_runtime_new(&opt)};
    ck_assert_ptr_nonnull(d.rt);
    atomic_init(&d.stop, false);
    atomic_init(&d.dumps, 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, dump_loop, &d), 0);
    ck_assert_int_eq(weft_runtime_block_on(d.rt, race_main, &d), 0);
    atomic_store(&d.stop, true);
    pthread_join(th, NULL);
    weft_runtime_free(d.rt);
    harness_assert_clean();
    ck_assert_msg(!d.bad, "bad dump line or count: %s", d.bad_line);
    ck_assert_uint_ge(atomic_load(&d.dumps), 3);
}
END_TEST

START_TEST(dump_ignores_null)
{
    weft_runtime_dump(NULL, stdout);
    weft_runtime *rt = weft_runtime_new(NULL);
    ck_assert_ptr_nonnull(rt);
    weft_runtime_dump(rt, NULL);
    weft_runtime_free(rt);
}
END_TEST

/* --- slow-task warning ------------------------------------------------------ */

/* stderr goes to a temporary file between capture_start and capture_end. */
struct capture {
    int saved, fd;
    char path[64];
};

static void capture_start(struct capture *c)
{
    snprintf(c->path, sizeof c->path, "/tmp/weft-diag-XXXXXX");
    c->fd = mkstemp(c->path);
    ck_assert_int_ge(c->fd, 0);
    unlink(c->path);
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    ck_assert_int_ge(c->saved, 0);
    ck_assert_int_ge(dup2(c->fd, STDERR_FILENO), 0);
}

/* What was written so far (malloc'd, NUL-terminated). */
static char *capture_read(int fd)
{
    off_t len = lseek(fd, 0, SEEK_END);
    if (len < 0)
        len = 0;
    char *buf = malloc((size_t)len + 1);
    if (!buf)
        return NULL;
    ssize_t n = pread(fd, buf, (size_t)len, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static char *capture_end(struct capture *c)
{
    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    char *text = capture_read(c->fd);
    close(c->fd);
    return text;
}

static int count_lines_with(const char *text, const char *a, const char *b)
{
    int n = 0;
    for (const char *p = text; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char line[512];
        if (len >= sizeof line)
            len = sizeof line - 1;
        memcpy(line, p, len);
        line[len] = '\0';
        if (strstr(line, a) && (!b || strstr(line, b)))
            n++;
        p = end ? end + 1 : NULL;
    }
    return n;
}

struct slow_run {
    int capture_fd;
    int spin_ms;     /* per stretch; the first one spins on until the
                        warning shows (harness_wait_ns() at most) */
    int stretches;   /* spinning stretches separated by a yield */
    bool yielding;   /* yield all along instead of spinning */
    bool seen_while_running; /* the warning was in the file before the spin ended */
    /* The run stretches as the task itself can bound them: a stretch
     * begins after the previous weft_yield was called (or block_on, for
     * the first) and ends before the next one returns (or block_on, for
     * the last). A loaded machine may stall a worker thread inside any
     * stretch; the warning is then right, and these bounds show it. */
    int64_t threshold_ns;
    int64_t last_before; /* before the latest yield (or block_on) */
    int n_long;          /* bounds of threshold_ns or more */
};

static void note_stretch_end(struct slow_run *r, int64_t end)
{
    if (end - r->last_before >= r->threshold_ns)
        r->n_long++;
}

static int timed_yield(struct slow_run *r)
{
    int64_t before = harness_now_ns();
    int rc = weft_yield();
    note_stretch_end(r, harness_now_ns());
    r->last_before = before;
    return rc;
}

static int slow_body(void *arg)
{
    struct slow_run *r = arg;
    weft_task_set_name(weft_current(), r->yielding ? "yielder" : "spinner");
    for (int s = 0; s < r->stretches; s++) {
        int64_t start = harness_now_ns();
        int64_t end = start + (int64_t)r->spin_ms * 1000000;
        bool watch = !r->yielding && s == 0;
        /* A loaded machine may run the monitor late: the first stretch
         * goes on until its warning is seen, within reason. */
        int64_t limit = start + harness_wait_ns();
        for (int64_t now = start; now < end || (watch && !r->seen_while_running && now < limit);
             now = harness_now_ns()) {
            if (r->yielding) {
                if (timed_yield(r) != 0)
                    return -1;
            } else if (watch && !r->seen_while_running) {
                char *text = capture_read(r->capture_fd);
                if (text && strstr(text, "'spinner'"))
                    r->seen_while_running = true;
                free(text);
            }
        }
        if (timed_yield(r) != 0)
            return -1;
    }
    return 0;
}

static char *run_slow(struct slow_run *r, const weft_options *opt, unsigned workers)
{
    struct capture c;
    capture_start(&c);
    r->capture_fd = c.fd;
    weft_options o = opt ? *opt : (weft_options){.workers = 0};
    o.workers = workers;
    /* The tests without an option threshold set WEFT_SLOW_TASK_MS=100. */
    r->threshold_ns = o.slow_task_ns > 0 ? o.slow_task_ns : WEFT_MSEC(100);
    r->n_long = 0;
    weft_runtime *rt = weft_runtime_new(&o);
    r->last_before = harness_now_ns();
    int rc = rt ? weft_runtime_block_on(rt, slow_body, r) : -1;
    note_stretch_end(r, harness_now_ns());
    weft_runtime_free(rt);
    char *text = capture_end(&c);
    ck_assert_ptr_nonnull(rt);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(text);
    return text;
}

/* The number of warnings is right: at least one per slow stretch, and at
 * most one per stretch that may have lasted the threshold (the slow ones,
 * and any the machine stalled). */
static void check_warnings(const struct slow_run *r, const char *text, int n, int want)
{
    if (r->n_long > want)
        fprintf(stderr, "note: %d stretches may have been stalled past the threshold\n",
                r->n_long - want);
    ck_assert_msg(n >= want && n <= (r->n_long > want ? r->n_long : want),
                  "%d warnings, want %d (%d stretches may have lasted the threshold); "
                  "stderr:\n%s",
                  n, want, r->n_long, text);
}

/* A task that spins 300 ms with a 100 ms threshold: one line naming it,
 * printed while it still spins. */
START_TEST(slow_task_warning_for_a_spinning_task)
{
    weft_options opt = {.slow_task_ns = WEFT_MSEC(100)};
    struct slow_run r = {.spin_ms = 300, .stretches = 1};
    char *text = run_slow(&r, &opt, harness_workers_variant(_i));
    harness_assert_clean();
    check_warnings(&r, text, count_lines_with(text, "weft: slow task", NULL), 1);
    ck_assert_msg(count_lines_with(text, "weft: slow task 'spinner'", "without suspending") >= 1,
                  "stderr:\n%s", text);
    ck_assert_msg(r.seen_while_running, "the warning came only after the spin; stderr:\n%s",
                  text);
    free(text);
}
END_TEST

/* Two slow stretches: two lines, one each. */
START_TEST(slow_task_warning_once_per_stretch)
{
    weft_options opt = {.slow_task_ns = WEFT_MSEC(100)};
    struct slow_run r = {.spin_ms = 250, .stretches = 2};
    char *text = run_slow(&r, &opt, 1);
    harness_assert_clean();
    check_warnings(&r, text, count_lines_with(text, "weft: slow task 'spinner'", NULL), 2);
    free(text);
}
END_TEST

/* A task that yields all along for 300 ms never holds its worker long.
 * (The warning measures wall-clock time, and a loaded machine may preempt
 * a worker thread for a while: a warning then is right, if the task's own
 * bounds show that one of its stretches may have lasted the threshold.) */
START_TEST(no_slow_task_warning_for_a_yielding_task)
{
    weft_options opt = {.slow_task_ns = WEFT_MSEC(250)};
    struct slow_run r = {.spin_ms = 300, .stretches = 1, .yielding = true};
    char *text = run_slow(&r, &opt, harness_workers_variant(_i));
    harness_assert_clean();
    check_warnings(&r, text, count_lines_with(text, "slow task", NULL), 0);
    free(text);
}
END_TEST

/* WEFT_SLOW_TASK_MS turns it on when the option is 0; a negative option
 * turns it off whatever the environment says. */
START_TEST(slow_task_threshold_from_environment)
{
    setenv("WEFT_SLOW_TASK_MS", "100", 1);
    struct slow_run r = {.spin_ms = 300, .stretches = 1};
    char *text = run_slow(&r, NULL, 1);
    check_warnings(&r, text, count_lines_with(text, "weft: slow task", NULL), 1);
    free(text);

    weft_options off = {.slow_task_ns = -1};
    struct slow_run r2 = {.spin_ms = 300, .stretches = 1};
    text = run_slow(&r2, &off, 1);
    unsetenv("WEFT_SLOW_TASK_MS");
    harness_assert_clean();
    ck_assert_msg(count_lines_with(text, "slow task", NULL) == 0, "stderr:\n%s", text);
    free(text);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("diag");
    TCase *tc = harness_tcase(s, "stats", 30);
    tcase_add_loop_test(tc, stats_count_runs_and_spawns, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, stats_show_blocking_pool_and_timers, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, stats_reject_null);

    tc = harness_tcase(s, "dump", 30);
    tcase_add_test(tc, dump_names_a_sleeping_task_and_says_it_sleeps);
    tcase_add_loop_test(tc, dump_lists_unnamed_tasks_by_id, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, dump_ignores_null);
    tcase_add_loop_test(tc, dump_leaves_out_ended_tasks_and_agrees_with_stats, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, dump_and_names_race_with_spawns, 0, HARNESS_N_WORKER_VARIANTS);

    tc = harness_tcase(s, "slow", 30);
    tcase_add_loop_test(tc, slow_task_warning_for_a_spinning_task, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, slow_task_warning_once_per_stretch);
    tcase_add_loop_test(tc, no_slow_task_warning_for_a_yielding_task, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_test(tc, slow_task_threshold_from_environment);
    return s;
}
