/* SPDX-License-Identifier: MIT */
/* The public contract of semaphores, mutexes and events
 * (include/weft/sync.h): admission limits with tasks on every worker, FIFO
 * hand-off without barging, cancelled and timed-out waiters that neither
 * lose nor duplicate a permit (CPython #90155), mutual exclusion with
 * yields inside the critical section, events waking every waiter, calls
 * from plain threads, misuse, and a randomized stress of every primitive
 * (channels and generators included) under cancellation. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#include "harness.h"

/* The worker counts of the loop tests: 1, 2 and 4 (more workers than CPUs
 * on small machines, to make preemption between workers likely). */
static unsigned workers_of(int i)
{
    static const unsigned w[] = {1, 2, 4};
    return w[i % 3];
}

/* --- semaphore: admission ------------------------------------------------ */

enum { N_ADMIT_TASKS = 24, N_ADMIT_ROUNDS = 40, N_MAX_THREADS = 16 };

struct admit {
    weft_sem *sem;
    atomic_int holders;
    atomic_int max_holders;
    atomic_int entries;
    pthread_mutex_t threads_lock;
    pthread_t threads[N_MAX_THREADS];
    int n_threads;
    int want_threads; /* the first holders wait until this many have held */
};

/* pthread_self() is declared const: called directly, the compiler may keep
 * the first result across the suspension points after which a task runs
 * on another thread. */
static pthread_t (*volatile thread_self)(void) = pthread_self;

static void note_thread(struct admit *a)
{
    pthread_t me = thread_self();
    pthread_mutex_lock(&a->threads_lock);
    bool seen = false;
    for (int i = 0; i < a->n_threads && !seen; i++)
        seen = pthread_equal(a->threads[i], me);
    if (!seen && a->n_threads < N_MAX_THREADS)
        a->threads[a->n_threads++] = me;
    pthread_mutex_unlock(&a->threads_lock);
}

static int threads_seen(struct admit *a)
{
    pthread_mutex_lock(&a->threads_lock);
    int n = a->n_threads;
    pthread_mutex_unlock(&a->threads_lock);
    return n;
}

static int admit_worker(void *arg)
{
    struct admit *a = arg;
    for (int r = 0; r < N_ADMIT_ROUNDS; r++) {
        int rc = weft_sem_acquire(a->sem);
        HREQUIRE(rc == 0, rc);
        int h = atomic_fetch_add(&a->holders, 1) + 1;
        int m = atomic_load(&a->max_holders);
        while (h > m && !atomic_compare_exchange_weak(&a->max_holders, &m, h))
            ;
        atomic_fetch_add(&a->entries, 1);
        note_thread(a);
        /* The first holders keep their permits, yielding, until permits
         * have been held on two workers (an idle worker steals one of
         * them): without that, one worker may run the whole test when the
         * OS gives the others no time (seen under valgrind, which runs one
         * thread at a time). */
        if (r == 0) {
            int64_t give_up = harness_now_ns() + harness_wait_ns();
            while (threads_seen(a) < a->want_threads && harness_now_ns() < give_up) {
                HCHECK_INT_EQ(weft_yield(), 0);
                note_thread(a);
            }
        }
        /* Hold it across suspension points, so that others queue. */
        if (r % 3 == 0)
            HCHECK_INT_EQ(weft_sleep(WEFT_USEC(50 + r % 7 * 20)), 0);
        else
            HCHECK_INT_EQ(weft_yield(), 0);
        atomic_fetch_sub(&a->holders, 1);
        weft_sem_release(a->sem);
        HCHECK_INT_EQ(weft_yield(), 0);
    }
    return 0;
}

static int admit_main(void *arg)
{
    struct admit *a = arg;
    weft_task *t[N_ADMIT_TASKS];
    for (int i = 0; i < N_ADMIT_TASKS; i++) {
        t[i] = weft_spawn(admit_worker, a);
        HREQUIRE(t[i] != NULL, -errno);
    }
    for (int i = 0; i < N_ADMIT_TASKS; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    return 0;
}

/* Semaphore(3) never has a fourth holder, with tasks on every worker, and
 * all three permits are back at the end. */
START_TEST(semaphore_never_admits_more_than_its_permits)
{
    unsigned workers = workers_of(_i);
    struct admit a = {.sem = weft_sem_new(3), .want_threads = workers > 1 ? 2 : 1};
    ck_assert_ptr_nonnull(a.sem);
    pthread_mutex_init(&a.threads_lock, NULL);
    ck_assert_int_eq(harness_run(workers, admit_main, &a), 0);
    harness_assert_clean();
    ck_assert_int_eq(atomic_load(&a.max_holders), 3);
    ck_assert_int_eq(atomic_load(&a.entries), N_ADMIT_TASKS * N_ADMIT_ROUNDS);
    ck_assert_int_eq(atomic_load(&a.holders), 0);
    /* Tasks held permits on more than one worker (one thread per worker;
     * the first holders waited for it). Not necessarily on all of them: on
     * a loaded machine the OS may not run every worker thread during the
     * test. */
    if (workers == 1)
        ck_assert_int_eq(a.n_threads, 1);
    else
        ck_assert_int_ge(a.n_threads, 2);
    for (int i = 0; i < 3; i++)
        ck_assert(weft_sem_try_acquire(a.sem));
    ck_assert(!weft_sem_try_acquire(a.sem));
    weft_sem_free(a.sem);
    pthread_mutex_destroy(&a.threads_lock);
}
END_TEST

/* --- semaphore: FIFO and hand-off -------------------------------------- */

enum { N_FIFO = 6 };

struct fifo {
    weft_sem *sem;
    weft_mutex *mutex;
    atomic_int started[N_FIFO];
    atomic_int n_order;
    int order[N_FIFO];
};

struct fifo_arg {
    struct fifo *f;
    int id;
};

static void fifo_note(struct fifo *f, int id)
{
    int k = atomic_fetch_add(&f->n_order, 1);
    if (k < N_FIFO)
        f->order[k] = id;
}

static int fifo_sem_waiter(void *arg)
{
    struct fifo_arg *fa = arg;
    atomic_store(&fa->f->started[fa->id], 1);
    int rc = weft_sem_acquire(fa->f->sem);
    HREQUIRE(rc == 0, rc);
    fifo_note(fa->f, fa->id);
    weft_sem_release(fa->f->sem);
    return 0;
}

static void check_order(struct fifo *f)
{
    HCHECK_INT_EQ(atomic_load(&f->n_order), N_FIFO);
    for (int i = 0; i < N_FIFO; i++)
        HCHECK_MSG(f->order[i] == i, "position %d: waiter %d", i, f->order[i]);
}

static int sem_fifo_main(void *arg)
{
    struct fifo *f = arg;
    HREQUIRE(weft_sem_acquire(f->sem) == 0, -1);
    struct fifo_arg fa[N_FIFO];
    weft_task *t[N_FIFO];
    for (int i = 0; i < N_FIFO; i++) {
        fa[i] = (struct fifo_arg){f, i};
        t[i] = weft_spawn(fifo_sem_waiter, &fa[i]);
        HREQUIRE(t[i] != NULL, -errno);
        HWAIT_PARKED(NULL, "semaphore", i + 1);
    }
    /* Waiters queue even when the try comes from the holder itself. */
    HCHECK(!weft_sem_try_acquire(f->sem));
    weft_sem_release(f->sem);
    /* The permit went to waiter 0 directly: it is not free for us, though
     * waiter 0 may not have run yet. (On several workers the OS may hold
     * this thread here while the waiters all run and the last one frees
     * the permit: a successful try is right only then.) */
    if (weft_sem_try_acquire(f->sem)) {
        HCHECK_MSG(atomic_load(&f->n_order) == N_FIFO,
                   "released permit free for a newcomer with %d of %d waiters served",
                   atomic_load(&f->n_order), N_FIFO);
        weft_sem_release(f->sem);
    }
    for (int i = 0; i < N_FIFO; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    check_order(f);
    HCHECK(weft_sem_try_acquire(f->sem));
    HCHECK(!weft_sem_try_acquire(f->sem));
    weft_sem_release(f->sem);
    return 0;
}

/* Waiters get permits in arrival order, and a release hands the permit to
 * the first waiter instead of making it free for a newcomer. */
START_TEST(semaphore_waiters_are_served_in_fifo_order)
{
    struct fifo f = {.sem = weft_sem_new(1)};
    ck_assert_ptr_nonnull(f.sem);
    ck_assert_int_eq(harness_run(workers_of(_i), sem_fifo_main, &f), 0);
    harness_assert_clean();
    weft_sem_free(f.sem);
}
END_TEST

/* --- semaphore: cancelled and timed-out waiters ------------------------ */

struct holdq {
    weft_sem *sem;
    atomic_int started;
    atomic_int got;
    weft_event *go;
};

static int acquire_and_report(void *arg)
{
    struct holdq *h = arg;
    atomic_store(&h->started, 1);
    int rc = weft_sem_acquire(h->sem);
    if (rc == 0) {
        atomic_store(&h->got, 1);
        /* Hold the permit until told to let go. */
        HCHECK_INT_EQ(weft_event_wait(h->go), 0);
        weft_sem_release(h->sem);
    }
    return rc;
}

static int cancel_waiter_main(void *arg)
{
    weft_sem *sem = arg;
    HREQUIRE(weft_sem_acquire(sem) == 0, -1);
    weft_event *go = weft_event_new();
    HREQUIRE(go != NULL, -ENOMEM);
    struct holdq a = {.sem = sem, .go = go}, b = {.sem = sem, .go = go};
    weft_task *ta = weft_spawn(acquire_and_report, &a);
    HREQUIRE(ta != NULL, -errno);
    HWAIT_PARKED(NULL, "semaphore", 1);
    weft_task *tb = weft_spawn(acquire_and_report, &b);
    HREQUIRE(tb != NULL, -errno);
    HWAIT_PARKED(NULL, "semaphore", 2);
    /* The first waiter gives up; the permit must go to the second. */
    weft_cancel(ta);
    HCHECK_INT_EQ(weft_join(ta), -ECANCELED);
    HCHECK_INT_EQ(atomic_load(&a.got), 0);
    weft_sem_release(sem);
    HYIELD_UNTIL(atomic_load(&b.got) != 0);
    /* b holds the only permit: nothing is free. */
    HCHECK(!weft_sem_try_acquire(sem));
    weft_event_set(go);
    HCHECK_INT_EQ(weft_join(tb), 0);
    /* Exactly one permit, neither lost nor duplicated. */
    HCHECK(weft_sem_try_acquire(sem));
    HCHECK(!weft_sem_try_acquire(sem));
    weft_sem_release(sem);
    weft_event_free(go);
    return 0;
}

START_TEST(cancelled_waiter_passes_the_permit_to_the_next)
{
    weft_sem *sem = weft_sem_new(1);
    ck_assert_ptr_nonnull(sem);
    ck_assert_int_eq(harness_run(workers_of(_i), cancel_waiter_main, sem), 0);
    harness_assert_clean();
    weft_sem_free(sem);
}
END_TEST

struct race {
    weft_sem *sem;
    atomic_int started;
    atomic_int owned;   /* the waiter's acquire returned 0 */
    atomic_int release; /* round of the releaser thread */
};

static int race_waiter(void *arg)
{
    struct race *r = arg;
    atomic_store(&r->started, 1);
    int rc = weft_sem_acquire(r->sem);
    if (rc == 0) {
        /* Handed the permit, perhaps while being cancelled: it is ours,
         * and the cancellation shows at the next suspension point (or, if
         * the cancel has not been issued yet, at a later one). */
        atomic_store(&r->owned, 1);
        weft_sem_release(r->sem);
        int y = weft_yield();
        HCHECK_MSG(y == 0 || y == -ECANCELED, "yield %d", y);
    } else {
        HCHECK_INT_EQ(rc, -ECANCELED);
    }
    return 0;
}

enum { N_RACE_ROUNDS = 300 };

static int race_main(void *arg)
{
    int variant = *(int *)arg;
    int n_owned = 0;
    for (int round = 0; round < N_RACE_ROUNDS; round++) {
        struct race r = {.sem = weft_sem_new(0)};
        HREQUIRE(r.sem != NULL, -ENOMEM);
        weft_task *t = weft_spawn(race_waiter, &r);
        HREQUIRE(t != NULL, -errno);
        HYIELD_UNTIL(atomic_load(&r.started) != 0);
        if (round % 2)
            HCHECK_INT_EQ(weft_yield(), 0);
        /* Cancel and release in both orders, back to back, while the
         * waiter is parked, on its way to park or already woken. */
        if ((round + variant) % 2) {
            weft_cancel(t);
            /* Sometimes give the waiter time to leave first. */
            for (int k = 0; k < round / 2 % 4; k++)
                HCHECK_INT_EQ(weft_yield(), 0);
            weft_sem_release(r.sem);
        } else {
            weft_sem_release(r.sem);
            weft_cancel(t);
        }
        HCHECK_INT_EQ(weft_join(t), 0);
        n_owned += atomic_load(&r.owned);
        /* Whoever ended up with it, the one permit is back, once. */
        HCHECK(weft_sem_try_acquire(r.sem));
        HCHECK(!weft_sem_try_acquire(r.sem));
        weft_sem_free(r.sem);
    }
    /* Both outcomes are correct; with one worker both must occur. */
    if (variant % 3 == 0) {
        HCHECK(n_owned > 0);
        HCHECK(n_owned < N_RACE_ROUNDS);
    }
    return 0;
}

/* A waiter cancelled while a release races with it either takes the
 * permit (and keeps it) or leaves it for others: never both, never none. */
START_TEST(cancel_racing_release_never_loses_or_duplicates_a_permit)
{
    int variant = _i;
    ck_assert_int_eq(harness_run(workers_of(_i), race_main, &variant), 0);
    harness_assert_clean();
}
END_TEST

static int deadline_acquire(void *arg)
{
    weft_sem *sem = arg;
    weft_deadline d;
    /* t0 before the scope: its instant is then at least t0 + 10 ms, however
     * long this task is held up between the two calls. */
    int64_t t0 = weft_now();
    HREQUIRE(weft_deadline_enter(&d, WEFT_MSEC(10)) == 0, -1);
    HCHECK_INT_EQ(weft_sem_acquire(sem), -ETIMEDOUT);
    HCHECK(weft_now() - t0 >= WEFT_MSEC(10));
    /* Still past the deadline: even a free permit is refused. */
    weft_sem_release(sem);
    HCHECK_INT_EQ(weft_sem_acquire(sem), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    /* The timed-out wait took nothing: the released permit is there. */
    HCHECK_INT_EQ(weft_sem_acquire(sem), 0);
    HCHECK(!weft_sem_try_acquire(sem));
    return 0;
}

START_TEST(semaphore_wait_honours_deadline_scopes)
{
    weft_sem *sem = weft_sem_new(0);
    ck_assert_ptr_nonnull(sem);
    ck_assert_int_eq(harness_run(workers_of(_i), deadline_acquire, sem), 0);
    harness_assert_clean();
    weft_sem_free(sem);
}
END_TEST

struct plain_release {
    weft_sem *sem;
    atomic_int started;
};

static void *release_from_thread(void *arg)
{
    struct plain_release *p = arg;
    while (!atomic_load(&p->started))
        sched_yield();
    usleep(2000);
    weft_sem_release(p->sem);
    return NULL;
}

static int acquire_after_start(void *arg)
{
    struct plain_release *p = arg;
    atomic_store(&p->started, 1);
    return weft_sem_acquire(p->sem);
}

/* A plain thread's release wakes a parked task; try_acquire works there. */
START_TEST(semaphore_release_from_a_plain_thread_wakes_a_task)
{
    struct plain_release p = {.sem = weft_sem_new(0)};
    ck_assert_ptr_nonnull(p.sem);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, release_from_thread, &p), 0);
    ck_assert_int_eq(harness_run(workers_of(_i), acquire_after_start, &p), 0);
    pthread_join(th, NULL);
    ck_assert(!weft_sem_try_acquire(p.sem));
    weft_sem_release(p.sem);
    ck_assert(weft_sem_try_acquire(p.sem));
    weft_sem_free(p.sem);
    harness_assert_clean();
}
END_TEST

/* --- mutex ------------------------------------------------------------- */

enum { N_MUTEX_TASKS = 8, N_MUTEX_ROUNDS = 500 };

struct counter {
    weft_mutex *m;
    long value;        /* guarded by m */
    atomic_int inside; /* tasks in the critical section */
};

static int count_with_yields(void *arg)
{
    struct counter *c = arg;
    for (int i = 0; i < N_MUTEX_ROUNDS; i++) {
        int rc = weft_mutex_lock(c->m);
        HREQUIRE(rc == 0, rc);
        HCHECK_INT_EQ(atomic_fetch_add(&c->inside, 1), 0);
        long v = c->value;
        /* Suspend inside the critical section: others must queue. */
        HCHECK_INT_EQ(weft_yield(), 0);
        if (i % 50 == 0)
            HCHECK_INT_EQ(weft_sleep(WEFT_USEC(20)), 0);
        c->value = v + 1;
        atomic_fetch_sub(&c->inside, 1);
        weft_mutex_unlock(c->m);
    }
    return 0;
}

static int mutex_counter_main(void *arg)
{
    weft_task *t[N_MUTEX_TASKS];
    for (int i = 0; i < N_MUTEX_TASKS; i++) {
        t[i] = weft_spawn(count_with_yields, arg);
        HREQUIRE(t[i] != NULL, -errno);
    }
    for (int i = 0; i < N_MUTEX_TASKS; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    return 0;
}

START_TEST(mutex_counter_is_exact_under_contention)
{
    struct counter c = {.m = weft_mutex_new()};
    ck_assert_ptr_nonnull(c.m);
    ck_assert_int_eq(harness_run(workers_of(_i), mutex_counter_main, &c), 0);
    harness_assert_clean();
    ck_assert_int_eq(c.value, N_MUTEX_TASKS * N_MUTEX_ROUNDS);
    weft_mutex_free(c.m);
}
END_TEST

static int fifo_mutex_waiter(void *arg)
{
    struct fifo_arg *fa = arg;
    atomic_store(&fa->f->started[fa->id], 1);
    int rc = weft_mutex_lock(fa->f->mutex);
    HREQUIRE(rc == 0, rc);
    fifo_note(fa->f, fa->id);
    weft_mutex_unlock(fa->f->mutex);
    return 0;
}

static int mutex_fifo_main(void *arg)
{
    struct fifo *f = arg;
    HREQUIRE(weft_mutex_lock(f->mutex) == 0, -1);
    struct fifo_arg fa[N_FIFO];
    weft_task *t[N_FIFO];
    for (int i = 0; i < N_FIFO; i++) {
        fa[i] = (struct fifo_arg){f, i};
        t[i] = weft_spawn(fifo_mutex_waiter, &fa[i]);
        HREQUIRE(t[i] != NULL, -errno);
        HWAIT_PARKED(NULL, "mutex", i + 1);
    }
    weft_mutex_unlock(f->mutex);
    /* Handed to waiter 0 at once: a newcomer cannot take it first. */
    HCHECK_INT_EQ(weft_mutex_lock(f->mutex), 0);
    HCHECK_INT_EQ(atomic_load(&f->n_order), N_FIFO);
    weft_mutex_unlock(f->mutex);
    for (int i = 0; i < N_FIFO; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    check_order(f);
    return 0;
}

START_TEST(mutex_is_handed_over_in_fifo_order)
{
    struct fifo f = {.mutex = weft_mutex_new()};
    ck_assert_ptr_nonnull(f.mutex);
    ck_assert_int_eq(harness_run(workers_of(_i), mutex_fifo_main, &f), 0);
    harness_assert_clean();
    weft_mutex_free(f.mutex);
}
END_TEST

struct mutex_misuse {
    weft_mutex *m;
    atomic_int started; /* set by lock_then_report as it begins */
    atomic_int go;      /* tells unlock_from_thread to unlock */
};

static int unlock_foreign(void *arg)
{
    weft_mutex_unlock(((struct mutex_misuse *)arg)->m); /* not ours: ignored */
    return 0;
}

static int lock_with_deadline(void *arg)
{
    struct mutex_misuse *mm = arg;
    weft_deadline d;
    HREQUIRE(weft_deadline_enter(&d, WEFT_MSEC(10)) == 0, -1);
    atomic_store(&mm->started, 1);
    int rc = weft_mutex_lock(mm->m);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    if (rc == 0)
        weft_mutex_unlock(mm->m);
    return rc;
}

static int lock_then_report(void *arg)
{
    struct mutex_misuse *mm = arg;
    atomic_store(&mm->started, 1);
    int rc = weft_mutex_lock(mm->m);
    if (rc == 0)
        weft_mutex_unlock(mm->m);
    return rc;
}

static int mutex_misuse_main(void *arg)
{
    struct mutex_misuse *mm = arg;
    HCHECK_INT_EQ(weft_mutex_lock(mm->m), 0);
    HCHECK_INT_EQ(weft_mutex_lock(mm->m), -EDEADLK);
    /* Another task's unlock is ignored: we still hold it. */
    weft_task *u = weft_spawn(unlock_foreign, mm);
    HREQUIRE(u != NULL, -errno);
    HCHECK_INT_EQ(weft_join(u), 0);
    weft_task *t = weft_spawn(lock_with_deadline, mm);
    HREQUIRE(t != NULL, -errno);
    HCHECK_INT_EQ(weft_join(t), -ETIMEDOUT);
    /* A cancelled waiter leaves without the mutex. */
    atomic_store(&mm->started, 0);
    t = weft_spawn(lock_then_report, mm);
    HREQUIRE(t != NULL, -errno);
    HWAIT_PARKED(NULL, "mutex", 1);
    weft_cancel(t);
    HCHECK_INT_EQ(weft_join(t), -ECANCELED);
    weft_mutex_unlock(mm->m);
    /* Nobody holds it now: lock and unlock by a new task works. */
    t = weft_spawn(lock_then_report, mm);
    HREQUIRE(t != NULL, -errno);
    HCHECK_INT_EQ(weft_join(t), 0);
    /* Unlocking a free mutex is ignored too. */
    weft_mutex_unlock(mm->m);
    HCHECK_INT_EQ(weft_mutex_lock(mm->m), 0);
    weft_mutex_unlock(mm->m);
    return 0;
}

/* Re-locking gives -EDEADLK, a foreign unlock is ignored, waits honour
 * deadlines and cancellation without taking the mutex. */
START_TEST(mutex_misuse_deadlines_and_cancellation)
{
    struct mutex_misuse mm = {.m = weft_mutex_new()};
    ck_assert_ptr_nonnull(mm.m);
    ck_assert_int_eq(harness_run(workers_of(_i), mutex_misuse_main, &mm), 0);
    harness_assert_clean();
    weft_mutex_free(mm.m);
}
END_TEST

static void *unlock_from_thread(void *arg)
{
    struct mutex_misuse *mm = arg;
    while (!atomic_load(&mm->go))
        sched_yield();
    weft_mutex_unlock(mm->m);
    return NULL;
}

static int lock_and_keep(void *arg)
{
    struct mutex_misuse *mm = arg;
    HREQUIRE(weft_mutex_lock(mm->m) == 0, -1);
    HCHECK_INT_EQ(weft_mutex_lock(mm->m), -EDEADLK);
    weft_task *t = weft_spawn(lock_then_report, mm);
    HREQUIRE(t != NULL, -errno);
    HWAIT_PARKED(NULL, "mutex", 1);
    /* A plain thread unlocks on our behalf: the waiter gets it. (Not
     * `started`: the waiter sets that as it begins, before it parks.) */
    atomic_store(&mm->go, 1);
    HCHECK_INT_EQ(weft_join(t), 0);
    HCHECK_INT_EQ(weft_mutex_lock(mm->m), 0);
    weft_mutex_unlock(mm->m);
    return 0;
}

START_TEST(mutex_unlock_from_a_plain_thread)
{
    struct mutex_misuse mm = {.m = weft_mutex_new()};
    ck_assert_ptr_nonnull(mm.m);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, unlock_from_thread, &mm), 0);
    ck_assert_int_eq(harness_run(workers_of(_i), lock_and_keep, &mm), 0);
    pthread_join(th, NULL);
    harness_assert_clean();
    weft_mutex_free(mm.m);
}
END_TEST

/* --- event ------------------------------------------------------------- */

enum { N_EVENT_WAITERS = 16 };

struct evwait {
    weft_event *e;
    atomic_int n_started;
    atomic_int n_woken;
    atomic_int n_order;
    int order[N_EVENT_WAITERS];
};

struct evwait_arg {
    struct evwait *ev;
    int id;
};

static int event_waiter(void *arg)
{
    struct evwait_arg *a = arg;
    atomic_fetch_add(&a->ev->n_started, 1);
    int rc = weft_event_wait(a->ev->e);
    HREQUIRE(rc == 0, rc);
    int k = atomic_fetch_add(&a->ev->n_order, 1);
    a->ev->order[k] = a->id;
    atomic_fetch_add(&a->ev->n_woken, 1);
    return 0;
}

static int event_main(void *arg)
{
    unsigned workers = *(unsigned *)arg;
    struct evwait ev = {.e = weft_event_new()};
    HREQUIRE(ev.e != NULL, -ENOMEM);
    HCHECK(!weft_event_is_set(ev.e));
    struct evwait_arg a[N_EVENT_WAITERS];
    weft_task *t[N_EVENT_WAITERS];
    for (int i = 0; i < N_EVENT_WAITERS; i++) {
        a[i] = (struct evwait_arg){&ev, i};
        t[i] = weft_spawn(event_waiter, &a[i]);
        HREQUIRE(t[i] != NULL, -errno);
    }
    HWAIT_PARKED(NULL, "event", N_EVENT_WAITERS);
    HCHECK_INT_EQ(atomic_load(&ev.n_woken), 0);
    weft_event_set(ev.e);
    HCHECK(weft_event_is_set(ev.e));
    for (int i = 0; i < N_EVENT_WAITERS; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    HCHECK_INT_EQ(atomic_load(&ev.n_woken), N_EVENT_WAITERS);
    if (workers == 1) {
        /* One worker: woken waiters run in the order they waited. */
        for (int i = 0; i < N_EVENT_WAITERS; i++)
            HCHECK_MSG(ev.order[i] == i, "position %d: waiter %d", i, ev.order[i]);
    }
    /* Set: wait returns at once, without parking. */
    HCHECK_INT_EQ(weft_event_wait(ev.e), 0);
    weft_event_clear(ev.e);
    HCHECK(!weft_event_is_set(ev.e));
    weft_deadline d;
    HREQUIRE(weft_deadline_enter(&d, WEFT_MSEC(5)) == 0, -1);
    HCHECK_INT_EQ(weft_event_wait(ev.e), -ETIMEDOUT);
    HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
    weft_event_free(ev.e);
    return 0;
}

/* set wakes every waiter (in FIFO order on one worker); wait on a set
 * event returns at once; clear makes waits block again. */
START_TEST(event_set_wakes_every_waiter)
{
    unsigned workers = workers_of(_i);
    ck_assert_int_eq(harness_run(workers, event_main, &workers), 0);
    harness_assert_clean();
}
END_TEST

struct ev_thread {
    weft_event *e;
    atomic_int n_started;
};

static void *set_from_thread(void *arg)
{
    struct ev_thread *et = arg;
    while (atomic_load(&et->n_started) < 3)
        sched_yield();
    usleep(2000);
    weft_event_set(et->e);
    return NULL;
}

static int wait_event_counted(void *arg)
{
    struct ev_thread *et = arg;
    atomic_fetch_add(&et->n_started, 1);
    return weft_event_wait(et->e);
}

static int three_event_waiters(void *arg)
{
    weft_task *t[2];
    for (int i = 0; i < 2; i++) {
        t[i] = weft_spawn(wait_event_counted, arg);
        HREQUIRE(t[i] != NULL, -errno);
    }
    int rc = wait_event_counted(arg);
    for (int i = 0; i < 2; i++)
        HCHECK_INT_EQ(weft_join(t[i]), 0);
    return rc;
}

START_TEST(event_set_from_a_plain_thread)
{
    struct ev_thread et = {.e = weft_event_new()};
    ck_assert_ptr_nonnull(et.e);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, set_from_thread, &et), 0);
    ck_assert_int_eq(harness_run(workers_of(_i), three_event_waiters, &et), 0);
    pthread_join(th, NULL);
    ck_assert(weft_event_is_set(et.e));
    weft_event_free(et.e);
    harness_assert_clean();
}
END_TEST

static int wait_then_report(void *arg)
{
    struct ev_thread *et = arg;
    atomic_fetch_add(&et->n_started, 1);
    return weft_event_wait(et->e);
}

static int event_cancel_main(void *arg)
{
    struct ev_thread *et = arg;
    weft_task *t = weft_spawn(wait_then_report, et);
    HREQUIRE(t != NULL, -errno);
    HWAIT_PARKED(NULL, "event", 1);
    weft_cancel(t);
    HCHECK_INT_EQ(weft_join(t), -ECANCELED);
    HCHECK(!weft_event_is_set(et->e));
    /* A task that is already cancelled gets -ECANCELED even from a set
     * event: cancellation is sticky at every suspension point. */
    weft_event_set(et->e);
    weft_cancel(weft_current());
    HCHECK_INT_EQ(weft_event_wait(et->e), -ECANCELED);
    return 0;
}

START_TEST(event_wait_honours_cancellation)
{
    struct ev_thread et = {.e = weft_event_new()};
    ck_assert_ptr_nonnull(et.e);
    ck_assert_int_eq(harness_run(workers_of(_i), event_cancel_main, &et), 0);
    harness_assert_clean();
    weft_event_free(et.e);
}
END_TEST

/* An event freed right after set, while the woken waiters are still on
 * their way out of event_wait, stays valid until the last has left. */
static int set_and_free_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 200; round++) {
        struct ev_thread et = {.e = weft_event_new()};
        HREQUIRE(et.e != NULL, -ENOMEM);
        weft_task *t[3];
        for (int i = 0; i < 3; i++) {
            t[i] = weft_spawn(wait_then_report, &et);
            HREQUIRE(t[i] != NULL, -errno);
        }
        /* Queued: the free below is then legal (no call is entering). */
        HWAIT_PARKED(NULL, "event", 3);
        if (round % 2)
            HCHECK_INT_EQ(weft_yield(), 0);
        weft_event_set(et.e);
        weft_event_free(et.e);
        for (int i = 0; i < 3; i++)
            HCHECK_INT_EQ(weft_join(t[i]), 0);
    }
    return 0;
}

START_TEST(event_freed_right_after_set_is_safe)
{
    ck_assert_int_eq(harness_run(workers_of(_i), set_and_free_main, NULL), 0);
    harness_assert_clean();
}
END_TEST

/* --- misuse ------------------------------------------------------------ */

START_TEST(waits_outside_a_task_fail_with_eperm)
{
    weft_sem *s = weft_sem_new(1);
    weft_mutex *m = weft_mutex_new();
    weft_event *e = weft_event_new();
    ck_assert(s && m && e);
    ck_assert_int_eq(weft_sem_acquire(s), -EPERM);
    ck_assert_int_eq(weft_mutex_lock(m), -EPERM);
    ck_assert_int_eq(weft_event_wait(e), -EPERM);
    /* The non-waiting calls work from a plain thread. */
    ck_assert(weft_sem_try_acquire(s));
    ck_assert(!weft_sem_try_acquire(s));
    weft_sem_release(s);
    weft_mutex_unlock(m);
    weft_event_set(e);
    ck_assert(weft_event_is_set(e));
    weft_event_clear(e);
    ck_assert(!weft_event_is_set(e));
    weft_sem_free(s);
    weft_mutex_free(m);
    weft_event_free(e);
}
END_TEST

static int null_arguments(void *arg)
{
    (void)arg;
    HCHECK_INT_EQ(weft_sem_acquire(NULL), -EINVAL);
    HCHECK(!weft_sem_try_acquire(NULL));
    weft_sem_release(NULL);
    weft_sem_free(NULL);
    HCHECK_INT_EQ(weft_mutex_lock(NULL), -EINVAL);
    weft_mutex_unlock(NULL);
    weft_mutex_free(NULL);
    HCHECK_INT_EQ(weft_event_wait(NULL), -EINVAL);
    weft_event_set(NULL);
    weft_event_clear(NULL);
    HCHECK(!weft_event_is_set(NULL));
    weft_event_free(NULL);
    return 0;
}

START_TEST(null_objects_are_rejected)
{
    ck_assert_int_eq(harness_run(1, null_arguments, NULL), 0);
    harness_assert_clean();
}
END_TEST

/* --- randomized stress of every primitive, with cancellation ----------- */

enum { N_STRESS_TASKS = 32, STRESS_PERMITS = 3 };
#define STRESS_NS WEFT_MSEC(300) /* bounded time per run */

struct stress {
    weft_sem *sem;
    weft_mutex *mutex;
    weft_event *event;
    weft_chan *chan;
    atomic_int sem_holders;
    atomic_int mutex_inside;
    atomic_long sent, received; /* element counts */
    atomic_long sent_sum, received_sum;
    atomic_long n_cancelled;     /* operations that returned -ECANCELED */
    atomic_long n_timed_out;
    atomic_long n_gen_values;
    atomic_long n_killed;        /* tasks cancelled by the canceller */
    atomic_int stop;
    uint64_t seed;
};

struct stress_task {
    struct stress *st;
    uint64_t rng;
    int id;
};

static uint64_t rnd(uint64_t *s)
{
    /* xorshift64*: deterministic per task for a given seed. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static void tally(struct stress *st, int rc)
{
    if (rc == -ECANCELED)
        atomic_fetch_add(&st->n_cancelled, 1);
    else if (rc == -ETIMEDOUT)
        atomic_fetch_add(&st->n_timed_out, 1);
    else if (rc != -EPIPE || !atomic_load(&st->stop))
        HCHECK_MSG(rc == 0, "unexpected status %d", rc);
}

static int stress_gen_body(weft_gen *g, void *arg)
{
    (void)arg;
    for (intptr_t i = 0;; i++) {
        int rc = weft_gen_yield(g, (void *)i);
        if (rc < 0)
            return rc;
    }
}

/* One random operation; returns the status of its wait. */
static int stress_op(struct stress_task *t)
{
    struct stress *st = t->st;
    int rc = 0;
    switch (rnd(&t->rng) % 7) {
    case 0: /* semaphore */
        rc = weft_sem_acquire(st->sem);
        if (rc == 0) {
            int h = atomic_fetch_add(&st->sem_holders, 1) + 1;
            HCHECK_MSG(h <= STRESS_PERMITS, "%d semaphore holders", h);
            if (rnd(&t->rng) % 2)
                weft_yield();
            atomic_fetch_sub(&st->sem_holders, 1);
            weft_sem_release(st->sem);
        }
        return rc;
    case 1: /* mutex */
        rc = weft_mutex_lock(st->mutex);
        if (rc == 0) {
            HCHECK_INT_EQ(atomic_fetch_add(&st->mutex_inside, 1), 0);
            if (rnd(&t->rng) % 2)
                weft_yield();
            atomic_fetch_sub(&st->mutex_inside, 1);
            weft_mutex_unlock(st->mutex);
        }
        return rc;
    case 2: /* event: set, clear or wait */
        switch (rnd(&t->rng) % 3) {
        case 0:
            weft_event_set(st->event);
            return 0;
        case 1:
            weft_event_clear(st->event);
            return 0;
        default: {
            /* Always bounded: a later clear may leave the flag down. */
            weft_deadline d;
            HREQUIRE(weft_deadline_enter(&d, WEFT_USEC(rnd(&t->rng) % 200)) == 0, -1);
            rc = weft_event_wait(st->event);
            HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
            return rc;
        }
        }
    case 3:
    case 4: { /* channel send */
        long v = (long)(rnd(&t->rng) % 1000) + 1;
        rc = weft_chan_send(st->chan, &v);
        if (rc == 0) {
            atomic_fetch_add(&st->sent, 1);
            atomic_fetch_add(&st->sent_sum, v);
        }
        return rc;
    }
    case 5: { /* channel receive */
        long v;
        rc = weft_chan_recv(st->chan, &v);
        if (rc == 0) {
            atomic_fetch_add(&st->received, 1);
            atomic_fetch_add(&st->received_sum, v);
        }
        return rc;
    }
    default: { /* generator: a few values, then close */
        weft_gen *g = weft_gen_new(stress_gen_body, NULL);
        HREQUIRE(g != NULL, -errno);
        int n = (int)(rnd(&t->rng) % 5);
        for (intptr_t i = 0; i < n; i++) {
            void *v = NULL;
            rc = weft_gen_next(g, &v);
            if (rc != 1)
                break;
            HCHECK_PTR_EQ(v, (void *)i);
            atomic_fetch_add(&st->n_gen_values, 1);
            rc = 0;
        }
        int crc = weft_gen_close(g);
        /* The body only ever fails with what close or our own
         * interruption gave it. */
        HCHECK_MSG(crc == 0 || crc == -ECANCELED || crc == -ETIMEDOUT, "close: %d", crc);
        return rc;
    }
    }
}

static int stress_task(void *arg)
{
    struct stress_task *t = arg;
    while (!atomic_load(&t->st->stop)) {
        uint64_t r = rnd(&t->rng);
        int rc;
        if (r % 4 == 0) {
            /* A short deadline scope around the operation. */
            weft_deadline d;
            HREQUIRE(weft_deadline_enter(&d, (int64_t)(r >> 8) % WEFT_USEC(200)) == 0, -1);
            rc = stress_op(t);
            HCHECK_INT_EQ(weft_deadline_leave(&d), 0);
        } else {
            rc = stress_op(t);
        }
        tally(t->st, rc);
        if (rc == 0 && r % 8 == 1)
            rc = weft_yield(); /* never hog a worker */
        if (rc == -ECANCELED)
            return rc; /* sticky: this task is done */
    }
    return 0;
}

static int stress_main(void *arg)
{
    struct stress *st = arg;
    struct stress_task tasks[N_STRESS_TASKS];
    weft_task *h[N_STRESS_TASKS];
    uint64_t spawned = 0;
    for (int i = 0; i < N_STRESS_TASKS; i++) {
        tasks[i] = (struct stress_task){st, st->seed * 0x9E3779B97F4A7C15ull + ++spawned, i};
        h[i] = weft_spawn(stress_task, &tasks[i]);
        HREQUIRE(h[i] != NULL, -errno);
    }
    /* The canceller: for STRESS_NS, a random victim every few dozen
     * microseconds, replaced by a fresh task. */
    uint64_t rng = st->seed ^ 0xC0FFEEu;
    int64_t end = weft_now() + STRESS_NS;
    while (weft_now() < end) {
        HCHECK_INT_EQ(weft_sleep((int64_t)(rnd(&rng) % WEFT_USEC(100))), 0);
        int k = (int)(rnd(&rng) % N_STRESS_TASKS);
        weft_cancel(h[k]);
        int rc = weft_join(h[k]);
        HCHECK_MSG(rc == 0 || rc == -ECANCELED, "task %d: %d", k, rc);
        tasks[k] = (struct stress_task){st, st->seed * 0x9E3779B97F4A7C15ull + ++spawned, k};
        h[k] = weft_spawn(stress_task, &tasks[k]);
        HREQUIRE(h[k] != NULL, -errno);
        atomic_fetch_add(&st->n_killed, 1);
    }
    /* Stop: a task may wait on an empty or full channel forever, so close
     * it (the rest of their channel operations see -EPIPE); the leftovers
     * are drained afterwards. */
    atomic_store(&st->stop, 1);
    weft_chan_close(st->chan);
    for (int i = 0; i < N_STRESS_TASKS; i++) {
        int rc = weft_join(h[i]);
        HCHECK_MSG(rc == 0 || rc == -ECANCELED, "task %d: %d", i, rc);
    }
    return 0;
}

static int stress_drain(void *arg)
{
    struct stress *st = arg;
    long v;
    int rc;
    while ((rc = weft_chan_recv(st->chan, &v)) == 0) {
        atomic_fetch_add(&st->received, 1);
        atomic_fetch_add(&st->received_sum, v);
    }
    HCHECK_INT_EQ(rc, -EPIPE);
    /* Every permit and the mutex are back. */
    for (int i = 0; i < STRESS_PERMITS; i++)
        HCHECK(weft_sem_try_acquire(st->sem));
    HCHECK(!weft_sem_try_acquire(st->sem));
    HCHECK_INT_EQ(weft_mutex_lock(st->mutex), 0);
    weft_mutex_unlock(st->mutex);
    return 0;
}

START_TEST(randomized_stress_of_every_primitive_with_cancellation)
{
    struct stress st = {0};
    const char *env = getenv("WEFT_SEED");
    st.seed = env && *env ? strtoull(env, NULL, 0) : (uint64_t)harness_now_ns();
    if (st.seed == 0)
        st.seed = 1;
    unsigned workers = workers_of(_i);
    fprintf(stderr, "sync stress: WEFT_SEED=%llu workers=%u\n", (unsigned long long)st.seed,
            workers);
    st.sem = weft_sem_new(STRESS_PERMITS);
    st.mutex = weft_mutex_new();
    st.event = weft_event_new();
    st.chan = weft_chan_new(sizeof(long), st.seed % 4 == 0 ? 0 : st.seed % 4 * 4 - 3);
    ck_assert(st.sem && st.mutex && st.event && st.chan);
    weft_options opt = {.workers = workers};
    weft_runtime *rt = weft_runtime_new(&opt);
    ck_assert_ptr_nonnull(rt);
    ck_assert_int_eq(weft_runtime_block_on(rt, stress_main, &st), 0);
    ck_assert_int_eq(weft_runtime_block_on(rt, stress_drain, &st), 0);
    weft_runtime_free(rt);
    harness_assert_clean();
    ck_assert_int_eq(atomic_load(&st.sent), atomic_load(&st.received));
    ck_assert_int_eq(atomic_load(&st.sent_sum), atomic_load(&st.received_sum));
    fprintf(stderr,
            "sync stress: %ld elements, %ld tasks killed, %ld cancelled and %ld timed-out "
            "waits, %ld generator values\n",
            atomic_load(&st.sent), atomic_load(&st.n_killed), atomic_load(&st.n_cancelled),
            atomic_load(&st.n_timed_out), atomic_load(&st.n_gen_values));
    weft_chan_free(st.chan);
    weft_event_free(st.event);
    weft_mutex_free(st.mutex);
    weft_sem_free(st.sem);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("sync");

    TCase *tc = harness_tcase(s, "semaphore", 60);
    tcase_add_loop_test(tc, semaphore_never_admits_more_than_its_permits, 0, 3);
    tcase_add_loop_test(tc, semaphore_waiters_are_served_in_fifo_order, 0, 3);
    tcase_add_loop_test(tc, cancelled_waiter_passes_the_permit_to_the_next, 0, 3);
    tcase_add_loop_test(tc, cancel_racing_release_never_loses_or_duplicates_a_permit, 0, 6);
    tcase_add_loop_test(tc, semaphore_wait_honours_deadline_scopes, 0, 3);
    tcase_add_loop_test(tc, semaphore_release_from_a_plain_thread_wakes_a_task, 0, 3);

    tc = harness_tcase(s, "mutex", 60);
    tcase_add_loop_test(tc, mutex_counter_is_exact_under_contention, 0, 3);
    tcase_add_loop_test(tc, mutex_is_handed_over_in_fifo_order, 0, 3);
    tcase_add_loop_test(tc, mutex_misuse_deadlines_and_cancellation, 0, 3);
    tcase_add_loop_test(tc, mutex_unlock_from_a_plain_thread, 0, 3);

    tc = harness_tcase(s, "event", 60);
    tcase_add_loop_test(tc, event_set_wakes_every_waiter, 0, 3);
    tcase_add_loop_test(tc, event_set_from_a_plain_thread, 0, 3);
    tcase_add_loop_test(tc, event_wait_honours_cancellation, 0, 3);
    tcase_add_loop_test(tc, event_freed_right_after_set_is_safe, 0, 3);

    tc = harness_tcase(s, "misuse", 20);
    tcase_add_test(tc, waits_outside_a_task_fail_with_eperm);
    tcase_add_test(tc, null_objects_are_rejected);

    tc = harness_tcase(s, "stress", 120);
    tcase_add_loop_test(tc, randomized_stress_of_every_primitive_with_cancellation, 0, 3);
    return s;
}
