/* SPDX-License-Identifier: MIT */
/* Task dumps (weft_runtime_dump_ex): each wait kind names its object (and
 * a mutex its holder), a parked task's stack names the test's own static
 * functions in order, 10,000 identical waiters make one summary line, the
 * JSON reads back, the dump signal writes to stderr while every worker
 * runs a task that never yields, and dumps taken without pause while
 * tasks spawn, wake and end on every worker lose no wake-up. */
#define _GNU_SOURCE
#include "config.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#include "harness.h"

/* --- helpers ---------------------------------------------------------- */

static char *dump_to_string(weft_runtime *rt, unsigned flags)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    weft_runtime_dump_ex(rt, f, flags);
    fclose(f);
    return text;
}

/* The line of buf holding "task <id>" at its start (after indent), or "". */
static bool task_line(const char *buf, uint64_t id, char *line, size_t len)
{
    char key[48];
    snprintf(key, sizeof key, "  task %" PRIu64 " ", id);
    const char *p = strstr(buf, key);
    if (!p) {
        snprintf(key, sizeof key, "  task %" PRIu64 ":", id);
        p = strstr(buf, key);
    }
    if (!p)
        return false;
    const char *end = strchr(p, '\n');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n >= len)
        n = len - 1;
    memcpy(line, p, n);
    line[n] = '\0';
    return true;
}

/* The stack lines printed after task id's line (up to the next task). */
static bool task_stack(const char *buf, uint64_t id, char *out, size_t len)
{
    char key[48];
    snprintf(key, sizeof key, "  task %" PRIu64 " ", id);
    const char *p = strstr(buf, key);
    if (!p) {
        snprintf(key, sizeof key, "  task %" PRIu64 ":", id);
        p = strstr(buf, key);
    }
    if (!p)
        return false;
    p = strchr(p, '\n');
    if (!p)
        return false;
    p++;
    const char *end = strstr(p, "\n  task ");
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n >= len)
        n = len - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

static int sleep_long(void *arg)
{
    (void)arg;
    return weft_sleep(WEFT_SEC(30));
}

/* --- each wait kind names its object ---------------------------------- */

struct kinds {
    weft_mutex *m;
    weft_sem *s;
    weft_event *e;
    weft_chan *cs, *cr;
    int rfd, wfd;     /* a pipe nobody writes: a reader waits */
    int full_rfd, full_wfd; /* a full pipe: a writer waits */
    atomic_bool locked, blocking_in, blocking_out;
    weft_task *sleeper;
};

static int hold_mutex(void *arg)
{
    struct kinds *k = arg;
    if (weft_mutex_lock(k->m) != 0)
        return -1;
    atomic_store(&k->locked, true);
    int rc = weft_sleep(WEFT_SEC(30)); /* cancelled at the end */
    weft_mutex_unlock(k->m);
    return rc == -ECANCELED ? 0 : -1;
}

static int want_mutex(void *arg)
{
    struct kinds *k = arg;
    int rc = weft_mutex_lock(k->m);
    if (rc == 0)
        weft_mutex_unlock(k->m);
    return 0;
}

static int want_sem(void *arg)
{
    struct kinds *k = arg;
    return weft_sem_acquire(k->s) == -ECANCELED ? 0 : -1;
}

static int want_event(void *arg)
{
    struct kinds *k = arg;
    return weft_event_wait(k->e) == -ECANCELED ? 0 : -1;
}

static int want_send(void *arg)
{
    struct kinds *k = arg;
    int v = 1;
    return weft_chan_send(k->cs, &v) == -ECANCELED ? 0 : -1;
}

static int want_recv(void *arg)
{
    struct kinds *k = arg;
    int v;
    return weft_chan_recv(k->cr, &v) == -ECANCELED ? 0 : -1;
}

static int want_read(void *arg)
{
    struct kinds *k = arg;
    char c;
    return weft_read(k->rfd, &c, 1) == -ECANCELED ? 0 : -1;
}

static int want_write(void *arg)
{
    struct kinds *k = arg;
    static char big[1 << 20];
    /* Fills the pipe and waits for room; cancelled, it returns what it
     * wrote (or -ECANCELED): either is fine. */
    (void)weft_write(k->full_wfd, big, sizeof big);
    return 0;
}

static int want_join(void *arg)
{
    struct kinds *k = arg;
    return weft_join(k->sleeper) == -ECANCELED ? 0 : -1;
}

static int blocking_fn_for_dump(void *arg)
{
    struct kinds *k = arg;
    atomic_store(&k->blocking_in, true);
    while (!atomic_load(&k->blocking_out))
        usleep(1000);
    return 7;
}

static int want_blocking(void *arg)
{
    struct kinds *k = arg;
    return weft_run_blocking(blocking_fn_for_dump, k) == 7 ? 0 : -1;
}

struct kinds_result {
    char *text;
    uint64_t id[16];
    uintptr_t obj[16];
    uint64_t self_id;
};

enum { K_HOLD, K_MUTEX, K_SEM, K_EVENT, K_SEND, K_RECV, K_READ, K_WRITE, K_JOIN, K_SLEEP, K_BLOCK,
       K_N };

static int kinds_main(void *arg)
{
    struct kinds_result *res = arg;
    struct kinds k = {0};
    int p1[2], p2[2];
    HREQUIRE(pipe(p1) == 0 && pipe(p2) == 0, -1);
    k.rfd = p1[0];
    k.wfd = p1[1];
    k.full_rfd = p2[0];
    k.full_wfd = p2[1];
    HREQUIRE((k.m = weft_mutex_new()) && (k.s = weft_sem_new(0)) && (k.e = weft_event_new()) &&
                 (k.cs = weft_chan_new(sizeof(int), 0)) && (k.cr = weft_chan_new(sizeof(int), 0)),
             -1);
    weft_fn fns[K_N] = {hold_mutex, want_mutex, want_sem,  want_event, want_send,    want_recv,
                        want_read,  want_write, want_join, sleep_long, want_blocking};
    weft_task *t[K_N];
    res->self_id = weft_task_id(weft_current());
    t[K_SLEEP] = weft_spawn(sleep_long, NULL);
    HREQUIRE(t[K_SLEEP] != NULL, -1);
    k.sleeper = t[K_SLEEP];
    t[K_HOLD] = weft_spawn(hold_mutex, &k);
    HREQUIRE(t[K_HOLD] != NULL, -1);
    HYIELD_UNTIL(atomic_load(&k.locked));
    for (int i = 0; i < K_N; i++) {
        if (i == K_HOLD || i == K_SLEEP)
            continue;
        t[i] = weft_spawn(fns[i], &k);
        HREQUIRE(t[i] != NULL, -1);
    }
    for (int i = 0; i < K_N; i++)
        res->id[i] = weft_task_id(t[i]);
    res->obj[K_MUTEX] = (uintptr_t)k.m;
    res->obj[K_SEM] = (uintptr_t)k.s;
    res->obj[K_EVENT] = (uintptr_t)k.e;
    res->obj[K_SEND] = (uintptr_t)k.cs;
    res->obj[K_RECV] = (uintptr_t)k.cr;
    res->obj[K_READ] = (uintptr_t)k.rfd;
    res->obj[K_WRITE] = (uintptr_t)k.full_wfd;
    HYIELD_UNTIL(atomic_load(&k.blocking_in));
    /* Every waiter parks within a few switches; let them get there. */
    for (int i = 0; i < 50; i++)
        weft_sleep(WEFT_MSEC(2));
    res->text = dump_to_string(weft_runtime_current(), 0);

    atomic_store(&k.blocking_out, true);
    HCHECK_INT_EQ(weft_join(t[K_BLOCK]), 0);
    for (int i = 0; i < K_N; i++)
        if (i != K_BLOCK && i != K_MUTEX && i != K_JOIN)
            weft_cancel(t[i]);
    /* The sleeper's handle is want_join's (its join consumes it). */
    for (int i = 0; i < K_N; i++)
        if (i != K_BLOCK && i != K_SLEEP)
            HCHECK_INT_EQ(weft_join(t[i]), 0);
    weft_mutex_free(k.m);
    weft_sem_free(k.s);
    weft_event_free(k.e);
    weft_chan_free(k.cs);
    weft_chan_free(k.cr);
    close(p1[0]);
    close(p1[1]);
    close(p2[0]);
    close(p2[1]);
    return 0;
}

static void expect_in_line(const char *text, uint64_t id, const char *want)
{
    char line[512];
    ck_assert_msg(task_line(text, id, line, sizeof line), "no line for task %" PRIu64 ":\n%s", id,
                  text);
    ck_assert_msg(strstr(line, want) != NULL, "task %" PRIu64 ": want \"%s\" in\n%s\ndump:\n%s",
                  id, want, line, text);
}

START_TEST(each_wait_kind_names_its_object)
{
    struct kinds_result r = {0};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), kinds_main, &r), 0);
    harness_assert_clean();
    ck_assert_ptr_nonnull(r.text);
    char want[160];
    snprintf(want, sizeof want, "waits on mutex 0x%" PRIxPTR " held by task %" PRIu64,
             r.obj[K_MUTEX], r.id[K_HOLD]);
    expect_in_line(r.text, r.id[K_MUTEX], want);
    snprintf(want, sizeof want, "waits on semaphore 0x%" PRIxPTR " (0 free permits)", r.obj[K_SEM]);
    expect_in_line(r.text, r.id[K_SEM], want);
    snprintf(want, sizeof want, "waits on event 0x%" PRIxPTR, r.obj[K_EVENT]);
    expect_in_line(r.text, r.id[K_EVENT], want);
    snprintf(want, sizeof want, "waits on chan send 0x%" PRIxPTR, r.obj[K_SEND]);
    expect_in_line(r.text, r.id[K_SEND], want);
    snprintf(want, sizeof want, "waits on chan recv 0x%" PRIxPTR, r.obj[K_RECV]);
    expect_in_line(r.text, r.id[K_RECV], want);
    snprintf(want, sizeof want, "waits on fd %d readable", (int)r.obj[K_READ]);
    expect_in_line(r.text, r.id[K_READ], want);
    snprintf(want, sizeof want, "waits on fd %d writable", (int)r.obj[K_WRITE]);
    expect_in_line(r.text, r.id[K_WRITE], want);
    snprintf(want, sizeof want, "waits on join of task %" PRIu64, r.id[K_SLEEP]);
    expect_in_line(r.text, r.id[K_JOIN], want);
    expect_in_line(r.text, r.id[K_SLEEP], "sleeping");
    expect_in_line(r.text, r.id[K_SLEEP], " left");
#ifdef HAVE_LIBDW
    /* libdw reads .symtab: the blocking fn is named although static. */
    expect_in_line(r.text, r.id[K_BLOCK], "waits on run_blocking blocking_fn_for_dump (running)");
#else
    /* dladdr knows exported names only: a static fn is its address. */
    expect_in_line(r.text, r.id[K_BLOCK], "waits on run_blocking 0x");
    expect_in_line(r.text, r.id[K_BLOCK], " (running)");
#endif
    /* The holder sleeps; every task names its spawner. */
    expect_in_line(r.text, r.id[K_HOLD], "sleeping");
    snprintf(want, sizeof want, "spawned by task %" PRIu64, r.self_id);
    for (int i = 0; i < K_N; i++)
        expect_in_line(r.text, r.id[i], want);
    /* The dumping task runs: its worker, no wait. */
    char line[512];
    ck_assert(task_line(r.text, r.self_id, line, sizeof line));
    ck_assert_msg(strstr(line, ": running on worker ") != NULL, "%s", line);
    free(r.text);
}
END_TEST

/* --- a select names its cases ----------------------------------------- */

#define WIDE_CASES 20

struct sel_kinds {
    weft_chan *cr, *cs;
    weft_event *e;
    weft_task *sleeper;
    int rfd;
    int out, sent, wide_out;
};

/* Selects on a receive, a send, a task's end, an event and a descriptor,
 * none of which becomes ready: cancelled at the end. */
static int select_five(void *arg)
{
    struct sel_kinds *k = arg;
    weft_sel cs[5] = {weft_sel_recv(k->cr, &k->out), weft_sel_send(k->cs, &k->sent),
                      weft_sel_task(k->sleeper), weft_sel_event(k->e),
                      weft_sel_fd(k->rfd, WEFT_READABLE)};
    return weft_select(cs, 5, -1) == -ECANCELED ? 0 : -1;
}

/* More cases than a dump records: the rest are counted. */
static int select_wide(void *arg)
{
    struct sel_kinds *k = arg;
    weft_sel cs[WIDE_CASES];
    for (int i = 0; i < WIDE_CASES; i++)
        cs[i] = weft_sel_recv(k->cr, &k->wide_out);
    return weft_select(cs, WIDE_CASES, -1) == -ECANCELED ? 0 : -1;
}

struct sel_dump_result {
    char *text, *summary, *json;
    uint64_t id, wide_id, sleeper_id;
    uintptr_t cr, cs, e;
    int rfd;
};

static int select_dump_main(void *arg)
{
    struct sel_dump_result *res = arg;
    struct sel_kinds k = {0};
    int p[2];
    HREQUIRE(pipe(p) == 0, -1);
    k.rfd = p[0];
    HREQUIRE((k.cr = weft_chan_new(sizeof(int), 0)) && (k.cs = weft_chan_new(sizeof(int), 0)) &&
                 (k.e = weft_event_new()),
             -1);
    k.sleeper = weft_spawn(sleep_long, NULL);
    HREQUIRE(k.sleeper != NULL, -1);
    weft_task *t = weft_spawn(select_five, &k);
    weft_task *w = weft_spawn(select_wide, &k);
    HREQUIRE(t != NULL && w != NULL, -1);
    res->id = weft_task_id(t);
    res->wide_id = weft_task_id(w);
    res->sleeper_id = weft_task_id(k.sleeper);
    res->cr = (uintptr_t)k.cr;
    res->cs = (uintptr_t)k.cs;
    res->e = (uintptr_t)k.e;
    res->rfd = k.rfd;
    for (int i = 0; i < 50; i++)
        weft_sleep(WEFT_MSEC(2));
    res->text = dump_to_string(weft_runtime_current(), 0);
    res->summary = dump_to_string(weft_runtime_current(), WEFT_DUMP_SUMMARY);
    res->json = dump_to_string(weft_runtime_current(), WEFT_DUMP_JSON);
    weft_cancel(t);
    weft_cancel(w);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(weft_join(w), 0);
    weft_cancel(k.sleeper);
    HCHECK_INT_EQ(weft_join(k.sleeper), -ECANCELED);
    /* The dumps completed nothing: no element taken or delivered. */
    HCHECK_INT_EQ((int)weft_chan_len(k.cr), 0);
    HCHECK_INT_EQ(weft_chan_try_recv(k.cs, &k.out), -EAGAIN);
    weft_chan_free(k.cr);
    weft_chan_free(k.cs);
    weft_event_free(k.e);
    close(p[0]);
    close(p[1]);
    return 0;
}

START_TEST(select_names_its_cases)
{
    struct sel_dump_result r = {0};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), select_dump_main, &r), 0);
    harness_assert_clean();
    ck_assert_ptr_nonnull(r.text);
    ck_assert_ptr_nonnull(r.summary);
    ck_assert_ptr_nonnull(r.json);
    char want[512];
    snprintf(want, sizeof want,
             "waits on select of 5: recv chan 0x%" PRIxPTR ", send chan 0x%" PRIxPTR
             ", task %" PRIu64 ", event 0x%" PRIxPTR ", fd %d readable",
             r.cr, r.cs, r.sleeper_id, r.e, r.rfd);
    expect_in_line(r.text, r.id, want);
    /* A group of one names the cases too. */
    ck_assert_msg(strstr(r.summary, want) != NULL, "want \"%s\" in\n%s", want, r.summary);
    char wide[64];
    snprintf(wide, sizeof wide, "waits on select of %d: recv chan 0x%" PRIxPTR, WIDE_CASES, r.cr);
    expect_in_line(r.text, r.wide_id, wide);
    snprintf(wide, sizeof wide, ", and %d more", WIDE_CASES - 16);
    expect_in_line(r.text, r.wide_id, wide);
    /* The JSON: the task's wait is the select, with a "cases" array. */
    char key[64];
    snprintf(key, sizeof key, "{\"type\":\"task\",\"id\":%" PRIu64 ",", r.id);
    const char *obj = strstr(r.json, key);
    ck_assert_msg(obj != NULL, "%s", r.json);
    const char *eol = strchr(obj, '\n');
    ck_assert_ptr_nonnull(eol);
    snprintf(want, sizeof want,
             "\"n\":5,\"cases\":[{\"kind\":\"chan recv\",\"object\":\"0x%" PRIxPTR "\"},"
             "{\"kind\":\"chan send\",\"object\":\"0x%" PRIxPTR "\"},"
             "{\"kind\":\"task\",\"task\":%" PRIu64 "},"
             "{\"kind\":\"event\",\"object\":\"0x%" PRIxPTR "\"},"
             "{\"kind\":\"fd\",\"fd\":%d,\"direction\":\"readable\"}]",
             r.cr, r.cs, r.sleeper_id, r.e, r.rfd);
    const char *at = strstr(obj, "\"wait\":{\"kind\":\"select\",\"object\":\"0x");
    ck_assert_msg(at != NULL && at < eol, "%.*s", (int)(eol - obj), obj);
    const char *cases = strstr(at, want);
    ck_assert_msg(cases != NULL && cases < eol, "want %s in\n%.*s", want, (int)(eol - obj), obj);
    free(r.text);
    free(r.summary);
    free(r.json);
}
END_TEST

/* --- a stack three static calls deep ---------------------------------- */

static weft_sem *deep_sem;

/* Not inlined, and not a tail call (the volatile store after the call),
 * so that each is a frame of its own. */
static __attribute__((noinline)) int level_three(void)
{
    int rc = weft_sem_acquire(deep_sem);
    __asm__ volatile("" ::: "memory");
    return rc;
}

static __attribute__((noinline)) int level_two(void)
{
    volatile int rc = level_three();
    return rc;
}

static __attribute__((noinline)) int level_one(void *arg)
{
    (void)arg;
    volatile int rc = level_two();
    return rc;
}

struct deep_result {
    char *text, *json;
    uint64_t id;
};

static int deep_main(void *arg)
{
    struct deep_result *r = arg;
    deep_sem = weft_sem_new(0);
    HREQUIRE(deep_sem != NULL, -1);
    weft_task *t = weft_spawn(level_one, NULL);
    HREQUIRE(t != NULL, -1);
    r->id = weft_task_id(t);
    for (int i = 0; i < 20; i++)
        weft_sleep(WEFT_MSEC(1));
    r->text = dump_to_string(weft_runtime_current(), WEFT_DUMP_STACKS);
    r->json = dump_to_string(weft_runtime_current(), WEFT_DUMP_JSON);
    weft_sem_release(deep_sem);
    HCHECK_INT_EQ(weft_join(t), 0);
    weft_sem_free(deep_sem);
    return 0;
}

START_TEST(stack_names_three_static_functions_in_order)
{
    struct deep_result r = {0};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), deep_main, &r), 0);
    harness_assert_clean();
    ck_assert_ptr_nonnull(r.text);
    char stack[8192];
    ck_assert_msg(task_stack(r.text, r.id, stack, sizeof stack), "%s", r.text);
    if (strstr(r.json, "\"unwinder\":\"libdw\"")) {
        const char *a = strstr(stack, " level_three+");
        const char *b = a ? strstr(a, " level_two+") : NULL;
        const char *c = b ? strstr(b, " level_one+") : NULL;
        ck_assert_msg(a && b && c, "stack of task %" PRIu64 ":\n%s", r.id, stack);
        /* Innermost first: the semaphore's wait is above level_three. */
        ck_assert_msg(strstr(stack, "weft_sem_acquire") < a, "%s", stack);
#ifndef __clang__
        /* file:line from .debug_line. (clang 14's DWARF 5 line tables,
         * which addr2line reads, are not found by libdw 0.188's
         * dwfl_module_getsrc: the clang builds show names only.) */
        ck_assert_msg(strstr(a, "dump_test.c:") != NULL, "no file:line:\n%s", stack);
#endif
    } else {
        /* No libdw: frame pointers; at least the exported wait is named
         * and every frame has a module+offset for addr2line. */
        ck_assert_msg(strstr(stack, "#0 ") != NULL && strstr(stack, "+0x") != NULL, "%s", stack);
    }
    free(r.text);
    free(r.json);
}
END_TEST

/* --- 10,000 identical waiters, one summary line ----------------------- */

#define N_SAME 10000

static weft_sem *same_sem;

static __attribute__((noinline)) int same_waiter(void *arg)
{
    (void)arg;
    int rc = weft_sem_acquire(same_sem);
    __asm__ volatile("" ::: "memory");
    return rc;
}

struct same_result {
    char *text;
};

static int same_main(void *arg)
{
    struct same_result *r = arg;
    same_sem = weft_sem_new(0);
    HREQUIRE(same_sem != NULL, -1);
    weft_task **t = malloc(N_SAME * sizeof *t);
    HREQUIRE(t != NULL, -1);
    for (int i = 0; i < N_SAME; i++) {
        t[i] = weft_spawn(same_waiter, NULL);
        HREQUIRE(t[i] != NULL, -1);
    }
    /* Until all of them wait. */
    char *text = NULL;
    int64_t end = harness_now_ns() + harness_wait_ns();
    while (harness_now_ns() < end) {
        weft_sleep(WEFT_MSEC(5));
        free(text);
        text = dump_to_string(weft_runtime_current(), WEFT_DUMP_SUMMARY);
        if (text && strstr(text, "  10000 tasks [parked, waits on semaphore"))
            break;
    }
    r->text = text;
    for (int i = 0; i < N_SAME; i++)
        weft_sem_release(same_sem);
    for (int i = 0; i < N_SAME; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    free(t);
    weft_sem_free(same_sem);
    return 0;
}

START_TEST(summary_groups_identical_waiters_into_one_line)
{
    struct same_result r = {0};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), same_main, &r), 0);
    harness_assert_clean();
    ck_assert_ptr_nonnull(r.text);
    const char *g = strstr(r.text, "  10000 tasks [parked, waits on semaphore 0x");
    ck_assert_msg(g != NULL, "%.2000s", r.text);
    /* Largest first: the first group line is it; the dumper is a group of
     * one after it; nothing lists the tasks one by one. */
    const char *first = strstr(r.text, "largest first");
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_eq(strchr(first, '\n') + 1, g);
    ck_assert_msg(strstr(r.text, "  task ") == NULL, "%.2000s", r.text);
    const char *eol = strchr(g, '\n');
    ck_assert_ptr_nonnull(eol);
    char line[512];
    size_t n = (size_t)(eol - g) < sizeof line - 1 ? (size_t)(eol - g) : sizeof line - 1;
    memcpy(line, g, n);
    line[n] = 0;
    if (strstr(r.text, "same_waiter") || strstr(line, " at "))
        ck_assert_msg(strstr(line, " at same_waiter") != NULL || strstr(line, " at ??") != NULL,
                      "%s", line);
    free(r.text);
}
END_TEST

/* --- JSON reads back --------------------------------------------------- */

/* A small JSON reader: validates one value and records, for the top
 * object, a few members (strings and integers) by name. */
struct jfields {
    char type[16], wait_kind[32];
    long long id, count, holder, live;
    bool has_stack, stack_has_func;
};

struct jparser {
    const char *p;
    int depth;
    struct jfields *f;
    bool in_wait;
};

static void jws(struct jparser *j)
{
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
        j->p++;
}

static bool jstring(struct jparser *j, char *out, size_t len)
{
    size_t n = 0;
    if (*j->p != '"')
        return false;
    j->p++;
    while (*j->p && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\') {
            c = *j->p++;
            if (c == 'u') {
                for (int i = 0; i < 4; i++)
                    if (!isxdigit((unsigned char)*j->p++))
                        return false;
                c = '?';
            } else if (!strchr("\"\\/bfnrt", c)) {
                return false;
            }
        } else if ((unsigned char)c < 0x20) {
            return false;
        }
        if (out && n + 1 < len)
            out[n++] = c;
    }
    if (*j->p != '"')
        return false;
    j->p++;
    if (out)
        out[n] = 0;
    return true;
}

static bool jvalue(struct jparser *j, const char *key);

static bool jobject(struct jparser *j)
{
    j->p++;
    j->depth++;
    jws(j);
    if (*j->p == '}') {
        j->p++;
        j->depth--;
        return true;
    }
    for (;;) {
        char key[64];
        jws(j);
        if (!jstring(j, key, sizeof key))
            return false;
        jws(j);
        if (*j->p++ != ':')
            return false;
        jws(j);
        bool was = j->in_wait;
        if (j->depth == 1 && strcmp(key, "wait") == 0)
            j->in_wait = true;
        if (j->depth == 1 && strcmp(key, "stack") == 0)
            j->f->has_stack = true;
        if (!jvalue(j, key))
            return false;
        j->in_wait = was;
        jws(j);
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p == '}') {
            j->p++;
            j->depth--;
            return true;
        }
        return false;
    }
}

static bool jvalue(struct jparser *j, const char *key)
{
    jws(j);
    char c = *j->p;
    if (c == '{')
        return jobject(j);
    if (c == '[') {
        j->p++;
        jws(j);
        if (*j->p == ']') {
            j->p++;
            return true;
        }
        for (;;) {
            if (!jvalue(j, NULL))
                return false;
            jws(j);
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p == ']') {
                j->p++;
                return true;
            }
            return false;
        }
    }
    if (c == '"') {
        char buf[256];
        if (!jstring(j, buf, sizeof buf))
            return false;
        if (key && j->depth == 1 && strcmp(key, "type") == 0)
            snprintf(j->f->type, sizeof j->f->type, "%.15s", buf);
        if (key && j->in_wait && j->depth == 2 && strcmp(key, "kind") == 0)
            snprintf(j->f->wait_kind, sizeof j->f->wait_kind, "%.31s", buf);
        if (key && j->depth == 3 && strcmp(key, "func") == 0)
            j->f->stack_has_func = true;
        return true;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char *end;
        long long v = strtoll(j->p, &end, 10);
        if (end == j->p)
            return false;
        j->p = end;
        if (*j->p == '.' || *j->p == 'e' || *j->p == 'E')
            strtod(j->p - 1, &end), j->p = end;
        if (key && j->depth == 1 && strcmp(key, "id") == 0)
            j->f->id = v;
        if (key && j->depth == 1 && strcmp(key, "count") == 0)
            j->f->count = v;
        if (key && j->depth == 1 && strcmp(key, "live") == 0)
            j->f->live = v;
        if (key && j->in_wait && j->depth == 2 && strcmp(key, "holder") == 0)
            j->f->holder = v;
        return true;
    }
    for (const char *lit = "true\0false\0null\0"; *lit; lit += strlen(lit) + 1)
        if (strncmp(j->p, lit, strlen(lit)) == 0) {
            j->p += strlen(lit);
            return true;
        }
    return false;
}

/* Parses one line (one object); false if it is not exactly that. */
static bool json_line(const char *line, struct jfields *f)
{
    memset(f, 0, sizeof *f);
    f->id = f->count = f->holder = f->live = -1;
    struct jparser j = {.p = line, .f = f};
    jws(&j);
    if (*j.p != '{' || !jvalue(&j, NULL))
        return false;
    jws(&j);
    return *j.p == 0;
}

struct json_result {
    char *text;
    uint64_t holder, waiter;
};

static int json_main(void *arg)
{
    struct json_result *r = arg;
    struct kinds k = {0};
    HREQUIRE((k.m = weft_mutex_new()) != NULL, -1);
    weft_task *h = weft_spawn(hold_mutex, &k);
    HREQUIRE(h != NULL, -1);
    HYIELD_UNTIL(atomic_load(&k.locked));
    weft_task *w = weft_spawn(want_mutex, &k);
    HREQUIRE(w != NULL, -1);
    weft_task_set_name(w, "quote\"and\\back\nslash");
    r->holder = weft_task_id(h);
    r->waiter = weft_task_id(w);
    for (int i = 0; i < 20; i++)
        weft_sleep(WEFT_MSEC(1));
    r->text = dump_to_string(weft_runtime_current(),
                             WEFT_DUMP_JSON | WEFT_DUMP_STACKS | WEFT_DUMP_SUMMARY);
    weft_cancel(h);
    HCHECK_INT_EQ(weft_join(h), 0);
    HCHECK_INT_EQ(weft_join(w), 0);
    weft_mutex_free(k.m);
    return 0;
}

START_TEST(json_reads_back)
{
    struct json_result r = {0};
    ck_assert_int_eq(harness_run(harness_workers_variant(_i), json_main, &r), 0);
    harness_assert_clean();
    ck_assert_ptr_nonnull(r.text);
    int runtimes = 0, tasks = 0, groups = 0, group_tasks = 0;
    long long live = -1;
    bool saw_waiter = false;
    char *save = NULL;
    char *copy = strdup(r.text);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct jfields f;
        ck_assert_msg(json_line(line, &f), "not one JSON object: %s", line);
        if (strcmp(f.type, "runtime") == 0) {
            runtimes++;
            live = f.live;
        } else if (strcmp(f.type, "task") == 0) {
            tasks++;
            if (f.id == (long long)r.waiter) {
                saw_waiter = true;
                ck_assert_str_eq(f.wait_kind, "mutex");
                ck_assert_int_eq(f.holder, (long long)r.holder);
                ck_assert(f.has_stack);
            }
        } else if (strcmp(f.type, "group") == 0) {
            groups++;
            ck_assert_int_gt(f.count, 0);
            group_tasks += (int)f.count;
        } else {
            ck_abort_msg("unknown type in %s", line);
        }
    }
    free(copy);
    ck_assert_int_eq(runtimes, 1);
    ck_assert_int_eq(tasks, 3); /* main, holder, waiter */
    ck_assert_int_eq(live, 3);
    ck_assert_int_eq(group_tasks, 3);
    ck_assert_int_ge(groups, 2);
    ck_assert(saw_waiter);
    ck_assert_msg(strstr(r.text, "\"name\":\"quote\\\"and\\\\back\\u000aslash\"") != NULL, "%s",
                  r.text);
    free(r.text);
}
END_TEST

/* --- the dump signal --------------------------------------------------- */

struct spin_arg {
    atomic_bool *stop;
    atomic_uint *started;
};

static int spin_no_yield(void *arg)
{
    struct spin_arg *s = arg;
    atomic_fetch_add(s->started, 1);
    while (!atomic_load(s->stop))
        ;
    return 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = 0;
    return buf;
}

struct spin_main_arg {
    weft_runtime *rt;
    struct spin_arg sa;
    unsigned n;
    int rc;
};

static int spin_main(void *arg)
{
    struct spin_main_arg *m = arg;
    weft_task *t[64];
    for (unsigned i = 0; i < m->n; i++)
        HREQUIRE((t[i] = weft_spawn(spin_no_yield, &m->sa)) != NULL, -1);
    for (unsigned i = 0; i < m->n; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    return 0;
}

static void *block_on_thread(void *arg)
{
    struct spin_main_arg *m = arg;
    m->rc = weft_runtime_block_on(m->rt, spin_main, m);
    return NULL;
}

START_TEST(signal_dump_arrives_while_every_worker_is_busy)
{
    ck_assert_int_eq(setenv("WEFT_DUMP_SIGNAL", "USR1", 1), 0);
    char path[] = "/tmp/weft-dump-test-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    int saved = dup(STDERR_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
    unsigned workers = harness_workers(_i ? 4 : 2);
    if (workers > 64)
        workers = 64;
    weft_options opt = {.workers = workers};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    atomic_bool stop = false;
    atomic_uint started = 0;
    struct spin_main_arg m = {.rt = rt, .sa = {&stop, &started}, .n = workers};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, block_on_thread, &m), 0);
    int64_t end = harness_now_ns() + harness_wait_ns();
    while (atomic_load(&started) < workers && harness_now_ns() < end)
        usleep(1000);
    bool all_busy = atomic_load(&started) == workers;
    char *text = NULL;
    bool seen = false;
    if (all_busy) {
        ck_assert_int_eq(raise(SIGUSR1), 0);
        while (!seen && harness_now_ns() < end) {
            usleep(5000);
            free(text);
            text = read_file(path);
            seen = text && strstr(text, "weft: dump on signal") && strstr(text, "largest first") &&
                   strstr(text, "[running]");
        }
    }
    /* Read while the workers were still busy. */
    atomic_store(&stop, true);
    pthread_join(th, NULL);
    weft_runtime_free(rt);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    unlink(path);
    ck_assert_msg(all_busy, "spinners started: %u of %u", atomic_load(&started), workers);
    ck_assert_int_eq(m.rc, 0);
    ck_assert_msg(seen, "stderr:\n%s", text ? text : "(nothing)");
    char want[64];
    snprintf(want, sizeof want, "  %u tasks [running]", workers);
    ck_assert_msg(strstr(text, want) != NULL, "want %s in:\n%s", want, text);
    free(text);
}
END_TEST

/* --- dumps while tasks spawn, wake and end on every worker -------------- */

#define PINGS 2000

struct race {
    weft_chan *a, *b;
    weft_mutex *m;
    long shared;
    atomic_bool stop;
    atomic_uint dumps;
};

static int pinger(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < PINGS; i++) {
        if (weft_chan_send(r->a, &i) != 0)
            return -1;
        int v;
        if (weft_chan_recv(r->b, &v) != 0 || v != i)
            return -2;
    }
    return 0;
}

static int ponger(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < PINGS; i++) {
        int v;
        if (weft_chan_recv(r->a, &v) != 0)
            return -1;
        if (weft_chan_send(r->b, &v) != 0)
            return -2;
    }
    return 0;
}

static int short_life(void *arg)
{
    struct race *r = arg;
    weft_mutex_lock(r->m);
    r->shared++;
    weft_mutex_unlock(r->m);
    return weft_sleep(WEFT_USEC(50));
}

static int churn(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < 400; i++) {
        weft_task *t = weft_spawn(short_life, r);
        if (!t)
            return -1;
        if (weft_join(t) != 0)
            return -2;
    }
    return 0;
}

struct race_thread {
    weft_runtime *rt;
    struct race *r;
};

static void *dumper_thread(void *arg)
{
    struct race_thread *rt = arg;
    FILE *null = fopen("/dev/null", "w");
    if (!null)
        return NULL;
    unsigned flags[] = {0, WEFT_DUMP_STACKS, WEFT_DUMP_SUMMARY | WEFT_DUMP_STACKS,
                        WEFT_DUMP_JSON | WEFT_DUMP_STACKS | WEFT_DUMP_SUMMARY};
    for (unsigned i = 0; !atomic_load(&rt->r->stop); i++) {
        weft_runtime_dump_ex(rt->rt, null, flags[i % 4]);
        atomic_fetch_add(&rt->r->dumps, 1);
    }
    fclose(null);
    return NULL;
}

struct race_main_arg {
    struct race *r;
    unsigned n;
};

static int race_main(void *arg)
{
    struct race_main_arg *m = arg;
    weft_task *t[10];
    HREQUIRE((t[0] = weft_spawn(pinger, m->r)) != NULL, -1);
    HREQUIRE((t[1] = weft_spawn(ponger, m->r)) != NULL, -1);
    for (unsigned i = 2; i < m->n; i++)
        HREQUIRE((t[i] = weft_spawn(churn, m->r)) != NULL, -1);
    for (unsigned i = 0; i < m->n; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    return 0;
}

START_TEST(dumps_during_spawns_wakes_and_ends_lose_no_wake)
{
    unsigned workers = harness_workers(_i ? 8 : 2);
    weft_options opt = {.workers = workers};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    struct race r = {0};
    r.a = weft_chan_new(sizeof(int), 0);
    r.b = weft_chan_new(sizeof(int), 0);
    r.m = weft_mutex_new();
    ck_assert(r.a && r.b && r.m);
    struct race_thread th = {rt, &r};
    pthread_t d1, d2;
    ck_assert_int_eq(pthread_create(&d1, NULL, dumper_thread, &th), 0);
    ck_assert_int_eq(pthread_create(&d2, NULL, dumper_thread, &th), 0);
    unsigned n = 2 + workers;
    if (n > 10)
        n = 10;
    struct race_main_arg m = {&r, n};
    ck_assert_int_eq(weft_runtime_block_on(rt, race_main, &m), 0);
    /* At least a few dumps overlapped the work. */
    int64_t end = harness_now_ns() + harness_wait_ns();
    while (atomic_load(&r.dumps) < 4 && harness_now_ns() < end)
        usleep(1000);
    atomic_store(&r.stop, true);
    pthread_join(d1, NULL);
    pthread_join(d2, NULL);
    harness_assert_clean();
    ck_assert_uint_ge(atomic_load(&r.dumps), 4);
    ck_assert_int_eq(r.shared, (long)(n - 2) * 400);
    weft_chan_free(r.a);
    weft_chan_free(r.b);
    weft_mutex_free(r.m);
    weft_runtime_free(rt);
}
END_TEST

/* --- misuse ------------------------------------------------------------ */

START_TEST(dump_ex_ignores_null_and_unknown_flags)
{
    weft_runtime_dump_ex(NULL, stdout, WEFT_DUMP_STACKS);
    weft_options opt = {.workers = 1};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    weft_runtime_dump_ex(rt, NULL, 0);
    char *text = dump_to_string(rt, 1u << 7);
    ck_assert_ptr_nonnull(text);
    ck_assert_str_eq(text, "");
    free(text);
    text = dump_to_string(rt, 0);
    ck_assert_msg(strstr(text, "0 live tasks") != NULL, "%s", text);
    free(text);
    weft_runtime_free(rt);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("dump");
    TCase *tc = harness_tcase(s, "dump", 60);
    tcase_add_loop_test(tc, each_wait_kind_names_its_object, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, select_names_its_cases, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, stack_names_three_static_functions_in_order, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, summary_groups_identical_waiters_into_one_line, 0,
                        HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, json_reads_back, 0, HARNESS_N_WORKER_VARIANTS);
    tcase_add_loop_test(tc, signal_dump_arrives_while_every_worker_is_busy, 0, 2);
    tcase_add_loop_test(tc, dumps_during_spawns_wakes_and_ends_lose_no_wake, 0, 2);
    tcase_add_test(tc, dump_ex_ignores_null_and_unknown_flags);
    return s;
}
