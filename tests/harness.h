/* SPDX-License-Identifier: MIT */
/* Test harness shared by every Check program: main() lives in harness.c and
 * runs the program's test_suite(). Checks made inside tasks must not use
 * ck_assert (it longjmps or exits from a worker thread): HCHECK* record the
 * first failure instead, and the test body calls harness_assert_clean()
 * once weft_runtime_block_on() has returned. */
#ifndef WEFT_TESTS_HARNESS_H
#define WEFT_TESTS_HARNESS_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <weft.h>

/* Each test program defines this; harness.c's main() runs it. */
Suite *test_suite(void);

/* Exit status for "a prerequisite is missing" (automake's SKIP). */
#define HARNESS_SKIP 77

/* Creates a TCase with an explicit timeout (seconds, scaled by Check with
 * CK_TIMEOUT_MULTIPLIER), adds a checked fixture that resets the in-task
 * failure record before each test and asserts it clean after, and adds
 * the TCase to s. Tag memory- or time-hungry cases "slow"
 * (tcase_set_tags) so that CK_EXCLUDE_TAGS=slow skips them under
 * valgrind, and cases whose assertions are wall-clock bounds "timing"
 * (make valgrind and the CI's TSan run skip those). Everything else must
 * hold however the OS schedules the threads: wait for the state a check
 * needs (HYIELD_UNTIL, harness_spin_until), never for a fixed time. */
TCase *harness_tcase(Suite *s, const char *name, double timeout_s);

/* Runs fn(arg) with weft_runtime_block_on() in a fresh runtime of
 * `workers` workers (0 = library default), frees the runtime and returns
 * fn's status. Fails the test (ck_assert) if the runtime cannot start.
 * Plain thread only: call it from the test body. */
int harness_run(unsigned workers, weft_fn fn, void *arg);

/* The same with full options. */
int harness_run_opts(const weft_options *opt, weft_fn fn, void *arg);

/* Many workers: with WEFT_TEST_WORKERS=N (2..WEFT_MAX_WORKERS) in the
 * environment, every runtime a test asks for with "several" workers (0,
 * or 2 or more) gets N instead, so that the suite's properties are also
 * checked at 16 or 64 workers on a 2-core machine (make check-many, the
 * CI's many section). A runtime of one worker stays one: its FIFO
 * properties are its own. harness_workers(w) is that mapping (for tests
 * that call weft_runtime_new themselves), harness_many_workers() is N, or
 * 0 when unset. Tests whose assertions depend on the exact count keep
 * it by not going through these. */
unsigned harness_many_workers(void);
unsigned harness_workers(unsigned workers);

/* Worker counts for tcase_add_loop_test(tc, fn, 0, HARNESS_N_WORKER_VARIANTS)
 * when a property must hold on one worker and on several. */
#define HARNESS_N_WORKER_VARIANTS 2
unsigned harness_workers_variant(int i);

/* CLOCK_MONOTONIC in nanoseconds (independent of the library's clock). */
int64_t harness_now_ns(void);

/* How long HYIELD_UNTIL and harness_spin_until wait before recording a
 * failure: 10 s times CK_TIMEOUT_MULTIPLIER. */
int64_t harness_wait_ns(void);

/* Records a failed check: the first one (file, line, expression, message)
 * is kept and printed to stderr at once, later ones are only counted. Any
 * thread, never longjmps. fmt may be NULL. */
void harness_fail(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Number of failures recorded since the last reset. Any thread. */
unsigned harness_failures(void);

/* Forgets recorded failures (the checked fixture of harness_tcase does it
 * before each test). */
void harness_reset(void);

/* Takes the failure record: returns true if no check failed, else writes
 * "file:line: expr: message (and N more)" into buf; resets the record. */
bool harness_take_failure(char *buf, size_t len);

/* Fails the test (ck_assert_msg, quoting the first recorded failure) if any
 * in-task check failed, then resets the record. Plain thread only: call it
 * in the test body after block_on has returned. */
#define harness_assert_clean()                                            \
    do {                                                                  \
        char hac_buf_[1024];                                              \
        bool hac_ok_ = harness_take_failure(hac_buf_, sizeof hac_buf_);   \
        ck_assert_msg(hac_ok_, "in-task check failed: %s", hac_buf_);     \
    } while (0)

/* --- checks usable inside tasks and on helper threads ------------------ */

#define HCHECK(expr)                                                      \
    do {                                                                  \
        if (!(expr))                                                      \
            harness_fail(__FILE__, __LINE__, #expr, NULL);                \
    } while (0)

#define HCHECK_MSG(expr, ...)                                             \
    do {                                                                  \
        if (!(expr))                                                      \
            harness_fail(__FILE__, __LINE__, #expr, __VA_ARGS__);         \
    } while (0)

#define HCHECK_INT_EQ(a, b)                                               \
    do {                                                                  \
        long long hc_a_ = (long long)(a), hc_b_ = (long long)(b);         \
        if (hc_a_ != hc_b_)                                               \
            harness_fail(__FILE__, __LINE__, #a " == " #b,                \
                         "%lld != %lld", hc_a_, hc_b_);                   \
    } while (0)

#define HCHECK_PTR_EQ(a, b)                                               \
    do {                                                                  \
        const void *hc_a_ = (a), *hc_b_ = (b);                            \
        if (hc_a_ != hc_b_)                                               \
            harness_fail(__FILE__, __LINE__, #a " == " #b,                \
                         "%p != %p", hc_a_, hc_b_);                       \
    } while (0)

#define HCHECK_STR_EQ(a, b)                                               \
    do {                                                                  \
        const char *hc_a_ = (a), *hc_b_ = (b);                            \
        if (!hc_a_ || !hc_b_ || strcmp(hc_a_, hc_b_) != 0)                \
            harness_fail(__FILE__, __LINE__, #a " == " #b,                \
                         "\"%s\" != \"%s\"", hc_a_ ? hc_a_ : "(null)",    \
                         hc_b_ ? hc_b_ : "(null)");                       \
    } while (0)

/* Like HCHECK, but returns `ret` from the enclosing function on failure. */
#define HREQUIRE(expr, ret)                                               \
    do {                                                                  \
        if (!(expr)) {                                                    \
            harness_fail(__FILE__, __LINE__, #expr, NULL);                \
            return ret;                                                   \
        }                                                                 \
    } while (0)

/* In a task: weft_yield() until cond holds. Records a failure and stops
 * waiting if a yield fails or harness_wait_ns() passes. */
#define HYIELD_UNTIL(cond)                                                \
    do {                                                                  \
        int64_t hy_end_ = harness_now_ns() + harness_wait_ns();           \
        while (!(cond)) {                                                 \
            int hy_rc_ = weft_yield();                                    \
            if (hy_rc_ != 0) {                                            \
                harness_fail(__FILE__, __LINE__, "HYIELD_UNTIL(" #cond ")", \
                             "weft_yield() returned %d", hy_rc_);         \
                break;                                                    \
            }                                                             \
            if (harness_now_ns() > hy_end_) {                             \
                harness_fail(__FILE__, __LINE__, "HYIELD_UNTIL(" #cond ")", \
                             "timed out");                                \
                break;                                                    \
            }                                                             \
        }                                                                 \
    } while (0)

/* ns scaled by CK_TIMEOUT_MULTIPLIER (never below ns): a bound on
 * wall-clock time that sanitizers and valgrind stretch. */
int64_t harness_scale_ns(int64_t ns);

/* On a plain thread: sched_yield() until pred(arg) holds; false (and a
 * recorded failure at file:line) if harness_wait_ns() passes first. */
/* Blocking-pool threads of this process (named "weft-blocking"), from
 * /proc/self/task; -1 if unknown. harness_no_pool_threads(NULL) is true
 * when none is left (a harness_spin_until predicate). */
int harness_pool_threads(void);
bool harness_no_pool_threads(void *arg);

/* In a task: spawns n (1..HARNESS_MAX_SPAWN) tasks of fn(arg) and gathers
 * them; 0 when all were spawned and all returned 0, else -1 with the
 * failure recorded. */
#define HARNESS_MAX_SPAWN 64
int harness_spawn_gather(weft_fn fn, void *arg, int n);

#define harness_spin_until(pred, arg) harness_spin_until_at(__FILE__, __LINE__, #pred, pred, arg)
bool harness_spin_until_at(const char *file, int line, const char *what,
                           bool (*pred)(void *), void *arg);

/* How many tasks of rt (NULL: the calling task's runtime) wait on `kind`,
 * a wait kind as the dump names it ("semaphore", "mutex", "event",
 * "chan send", "chan recv", "gen next", "select", ...): the tasks whose
 * "wait":{"kind":...} in weft_runtime_dump_ex(..., WEFT_DUMP_JSON) is
 * kind. -1 if the dump cannot be taken. Any thread. */
int harness_n_parked(weft_runtime *rt, const char *kind);

/* In a task: yields until at least n tasks of rt (NULL: the caller's
 * runtime) wait on kind (harness_n_parked), recording a failure after
 * harness_wait_ns(). A task that was spawned to wait has then really
 * queued, so its place in a FIFO is fixed. */
#define HWAIT_PARKED(rt, kind, n) HYIELD_UNTIL(harness_n_parked((rt), (kind)) >= (n))

#endif /* WEFT_TESTS_HARNESS_H */
