/* SPDX-License-Identifier: MIT */
/* main() for every Check program, the fresh-runtime helpers and the
 * in-task failure record. The record is written by any task or helper
 * thread and read by the test body once block_on has returned. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The first failure wins `claimed` (compare-exchange) and fills the text;
 * `published` (release) tells readers the text is complete. */
static struct {
    atomic_uint n_failures;
    atomic_bool claimed;
    atomic_bool published;
    char text[900];
} record;

void harness_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
    atomic_fetch_add_explicit(&record.n_failures, 1, memory_order_relaxed);
    bool expected = false;
    if (!atomic_compare_exchange_strong_explicit(&record.claimed, &expected, true,
                                                 memory_order_acq_rel,
                                                 memory_order_relaxed))
        return;

    char msg[512] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    snprintf(record.text, sizeof record.text, "%s:%d: %s%s%s", file, line, expr,
             msg[0] ? ": " : "", msg);
    /* Printed at once: if the test then hangs and is killed by its
     * timeout, the first broken check is still in the log. */
    fprintf(stderr, "%s: in-task check failed\n", record.text);
    /* Release: publishes record.text to harness_take_failure(). */
    atomic_store_explicit(&record.published, true, memory_order_release);
}

unsigned harness_failures(void)
{
    return atomic_load_explicit(&record.n_failures, memory_order_acquire);
}

void harness_reset(void)
{
    atomic_store_explicit(&record.n_failures, 0, memory_order_relaxed);
    atomic_store_explicit(&record.published, false, memory_order_relaxed);
    atomic_store_explicit(&record.claimed, false, memory_order_release);
    record.text[0] = '\0';
}

bool harness_take_failure(char *buf, size_t len)
{
    unsigned n = harness_failures();
    if (n == 0) {
        if (len)
            buf[0] = '\0';
        return true;
    }
    /* The winner may still be formatting (a detached task on a worker). */
    int64_t end = harness_now_ns() + harness_wait_ns();
    while (!atomic_load_explicit(&record.published, memory_order_acquire) &&
           harness_now_ns() < end)
        sched_yield();
    n = harness_failures();
    if (n > 1)
        snprintf(buf, len, "%s (and %u more)", record.text, n - 1);
    else
        snprintf(buf, len, "%s", record.text);
    harness_reset();
    return false;
}

int64_t harness_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CK_TIMEOUT_MULTIPLIER, 1 when unset or not a positive number. */
static double timeout_multiplier(void)
{
    double mult = 1.0;
    const char *env = getenv("CK_TIMEOUT_MULTIPLIER");
    if (env) {
        char *end;
        double v = strtod(env, &end);
        if (end != env && v > 0)
            mult = v;
    }
    return mult;
}

int64_t harness_wait_ns(void)
{
    return (int64_t)(10e9 * timeout_multiplier());
}

int harness_spawn_gather(weft_fn fn, void *arg, int n)
{
    HREQUIRE(n >= 1 && n <= HARNESS_MAX_SPAWN, -1);
    weft_task *t[HARNESS_MAX_SPAWN];
    for (int i = 0; i < n; i++)
        HREQUIRE((t[i] = weft_spawn(fn, arg)) != NULL, -1);
    int rc = weft_gather(t, (size_t)n, NULL);
    HCHECK_INT_EQ(rc, 0);
    return rc == 0 ? 0 : -1;
}

int64_t harness_scale_ns(int64_t ns)
{
    double mult = timeout_multiplier();
    return mult > 1.0 ? (int64_t)((double)ns * mult) : ns;
}

bool harness_spin_until_at(const char *file, int line, const char *what,
                           bool (*pred)(void *), void *arg)
{
    int64_t end = harness_now_ns() + harness_wait_ns();
    while (!pred(arg)) {
        if (harness_now_ns() > end) {
            harness_fail(file, line, what, "timed out waiting on a plain thread");
            return false;
        }
        sched_yield();
    }
    return true;
}

unsigned harness_many_workers(void)
{
    static unsigned many = UINT32_MAX;
    if (many == UINT32_MAX) {
        const char *env = getenv("WEFT_TEST_WORKERS");
        char *end;
        unsigned long v = env ? strtoul(env, &end, 10) : 0;
        many = env && *env && !*end && v >= 2 && v <= WEFT_MAX_WORKERS ? (unsigned)v : 0;
    }
    return many;
}

unsigned harness_workers(unsigned workers)
{
    unsigned many = harness_many_workers();
    return many && workers != 1 ? many : workers;
}

unsigned harness_workers_variant(int i)
{
    static const unsigned variants[HARNESS_N_WORKER_VARIANTS] = {1, 2};
    return harness_workers((i >= 0 && i < HARNESS_N_WORKER_VARIANTS) ? variants[i] : 1);
}

int harness_run_opts(const weft_options *opt, weft_fn fn, void *arg)
{
    errno = 0;
    weft_options o = opt ? *opt : (weft_options){0};
    o.workers = harness_workers(o.workers);
    opt = &o;
    weft_runtime *rt = weft_runtime_new(opt);
    ck_assert_msg(rt != NULL, "weft_runtime_new(workers=%u) failed: errno %d (%s)",
                  opt ? opt->workers : 0u, errno, weft_strerror(errno));
    int status = weft_runtime_block_on(rt, fn, arg);
    weft_runtime_free(rt);
    return status;
}

int harness_run(unsigned workers, weft_fn fn, void *arg)
{
    weft_options opt = {.workers = workers};
    return harness_run_opts(&opt, fn, arg);
}

static void checked_setup(void)
{
    harness_reset();
}

static void checked_teardown(void)
{
    harness_assert_clean();
}

TCase *harness_tcase(Suite *s, const char *name, double timeout_s)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, timeout_s);
    tcase_add_checked_fixture(tc, checked_setup, checked_teardown);
    suite_add_tcase(s, tc);
    return tc;
}

int main(void)
{
    SRunner *sr = srunner_create(test_suite());
    /* CK_ENV: CK_VERBOSITY, CK_RUN_SUITE/CK_RUN_CASE, CK_FORK, the XML and
     * TAP log names and CK_TIMEOUT_MULTIPLIER all come from the
     * environment. */
    srunner_run_all(sr, CK_ENV);
    int n_failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    /* The failure count, kept below 77 (automake's SKIP) and 99 (ERROR). */
    if (n_failed <= 0)
        return EXIT_SUCCESS;
    return n_failed < 77 ? n_failed : 76;
}

int harness_n_parked(weft_runtime *rt, const char *kind)
{
    if (!rt)
        rt = weft_runtime_current();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return -1;
    weft_runtime_dump_ex(rt, f, WEFT_DUMP_JSON);
    fclose(f);
    /* Without WEFT_DUMP_SUMMARY each task is a line of its own, and only
     * a task's wait (not a select's cases) follows "wait":. Dumps escape
     * only '"', '\\' and control characters, which kind names lack. */
    char pat[96];
    int n = 0, k = snprintf(pat, sizeof pat, "\"wait\":{\"kind\":\"%s\"", kind);
    if (k < 0 || (size_t)k >= sizeof pat) {
        free(buf);
        return -1;
    }
    for (char *p = buf; p && (p = strstr(p, pat)) != NULL; p += k)
        n++;
    free(buf);
    return n;
}

int harness_pool_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof comm, f) && strncmp(comm, "weft-blocking", 13) == 0)
            n++;
        fclose(f);
    }
    closedir(d);
    return n;
}

bool harness_no_pool_threads(void *arg)
{
    (void)arg;
    return harness_pool_threads() == 0;
}
