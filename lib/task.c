/* SPDX-License-Identifier: MIT */
/* The task object: creation, the end of a task, join, detach, cancel,
 * names. A task carries two references: the handle (dropped by join or
 * detach) and its life (dropped after its final switch), so whichever
 * comes last frees it. */
#include "internal.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"
#include "sched/wait.h"
#include "util/clock.h"

/* Ids are handed out in blocks per worker, so that a spawn does not
 * contend on the runtime's counter: unique, but in spawn order only per
 * worker. */
#define WEFT__ID_BLOCK 256

static uint64_t next_id(struct weft_runtime *rt, struct worker *w)
{
    if (!w)
        return atomic_fetch_add_explicit(&rt->next_id, 1, memory_order_relaxed);
    if (WEFT__UNLIKELY(w->id_next == w->id_end)) {
        w->id_next = atomic_fetch_add_explicit(&rt->next_id, WEFT__ID_BLOCK, memory_order_relaxed);
        w->id_end = w->id_next + WEFT__ID_BLOCK;
    }
    return w->id_next++;
}

/* w: the calling thread's worker if it belongs to rt, else NULL. */
static struct weft_task *spawn_on(struct weft_runtime *rt, struct worker *w, weft_fn fn, void *arg)
{
    struct weft_task *t = weft__task_alloc_on(w, rt);
    if (!t) {
        errno = ENOMEM;
        return NULL;
    }
    t->stack = NULL;
    t->rt = rt;
    t->fn = fn;
    t->arg = arg;
    t->status = 0;
    atomic_init(&t->park, PARK_RUNNING);
    /* Spawned while the runtime closes: cancelled from the start, so that
     * runtime_free's wait ends; its body still starts. */
    atomic_init(&t->flags,
                atomic_load_explicit(&rt->closing, memory_order_acquire) ? TASK_CANCELLED : 0);
    atomic_init(&t->joiner, NULL);
    t->qnext = NULL;
    t->shield = 0;
    t->cancel_shield = 0;
    t->deadline_depth = 0;
    t->deadline_floor = 0;
    t->id = next_id(rt, w);
    t->name = NULL;
    struct weft_task *parent = w ? atomic_load_explicit(&w->current, memory_order_relaxed) : NULL;
    t->spawner = parent ? parent->id : 0;
    atomic_init(&t->state_since, w ? w->clock_cache : weft__clock_coarse_ns());
    /* Counted before anyone can see it end (weft__task_live_count). */
    if (w)
        weft__count(&w->n_spawned, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&rt->n_spawned_ext, 1, memory_order_relaxed);
    /* Release: publishes the fields above to a walker's weft__task_tryref
     * (acquire); until this store the struct's count is 0, a free one. */
    atomic_store_explicit(&t->refs, 2, memory_order_release);

    /* With several workers a new task takes the next slot, as in Go and
     * Tokio: spawn-then-join trees run depth first and stay small. With one
     * worker it queues at the back: asyncio's start order. */
    weft__schedule_on(w, t, rt->n_workers > 1);
    return t;
}

struct weft_task *weft__task_spawn(struct weft_runtime *rt, weft_fn fn, void *arg)
{
    struct worker *w = weft__worker_self();
    return spawn_on(rt, w && w->rt == rt ? w : NULL, fn, arg);
}

/* The struct's layout is what spawn_join's speed rests on (sched.h). */
#ifndef WEFT__ASAN
_Static_assert(sizeof(struct weft_task) <= 128, "struct weft_task grew");
#endif

void weft__task_run_body(struct weft_task *t)
{
    /* fn and arg share their bytes with the started task's fields. */
    weft_fn fn = t->fn;
    void *arg = t->arg;
    atomic_init(&t->wait_why, 0);
    t->deadline = INT64_MAX;
    /* Release: a dump that sees STARTED (acquire) reads wait_why, not
     * the bytes of fn. */
    atomic_fetch_or_explicit(&t->flags, TASK_STARTED, memory_order_release);
    t->status = fn(arg);
}

void weft__task_unref(struct weft_task *t)
{
    /* acq_rel: the last owner sees every write of the others before free. */
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        weft__task_release(t);
}

/* ------------------------------------------------------------ end waiters */

/* Buckets of end waiters, by task address; process-wide (a task of one
 * runtime may be waited for from another). */
#define END_BUCKETS 64

static struct end_bucket {
    pthread_mutex_t lock;
    struct list waiters; /* struct end_waiter, any tasks of this hash */
} end_buckets[END_BUCKETS];
static pthread_once_t end_buckets_once = PTHREAD_ONCE_INIT;

static void end_buckets_init(void)
{
    for (unsigned i = 0; i < END_BUCKETS; i++) {
        pthread_mutex_init(&end_buckets[i].lock, NULL);
        list_init(&end_buckets[i].waiters);
    }
}

static struct end_bucket *end_bucket_of(const struct weft_task *t)
{
    pthread_once(&end_buckets_once, end_buckets_init);
    uintptr_t h = (uintptr_t)t / sizeof *t;
    return &end_buckets[(h ^ (h >> 6)) % END_BUCKETS];
}

bool weft__task_end_enqueue(struct weft_task *t, struct end_waiter *w)
{
    struct end_bucket *b = end_bucket_of(t);
    w->t = t;
    pthread_mutex_lock(&b->lock);
    /* acq_rel: pairs with the fetch_or of TASK_DONE in weft__task_finish
     * (both RMWs of flags: if we come first, its end sees our bit and
     * takes this lock, behind our queueing; if it came first, we see
     * DONE, and its status, through the acquire). */
    uint32_t old = atomic_fetch_or_explicit(&t->flags, TASK_END_WAITERS, memory_order_acq_rel);
    bool queued = !(old & TASK_DONE);
    if (queued)
        weft__wait_enqueue(&b->waiters, &w->cl);
    else
        w->cl.result = t->status;
    pthread_mutex_unlock(&b->lock);
    return queued;
}

void weft__task_end_withdraw(struct end_waiter *w)
{
    struct end_bucket *b = end_bucket_of(w->t);
    pthread_mutex_lock(&b->lock);
    weft__wait_unlink(&w->cl);
    pthread_mutex_unlock(&b->lock);
}

/* t has ended (DONE set): claims and wakes every end waiter of t (or
 * drops those whose wait completed otherwise). Under the bucket lock, so
 * that a waiter withdrawing (same lock) is never woken after it has
 * left. */
static WEFT__NOINLINE void wake_end_waiters(struct weft_task *t)
{
    struct end_bucket *b = end_bucket_of(t);
    pthread_mutex_lock(&b->lock);
    struct list *l = b->waiters.next;
    while (l != &b->waiters) {
        struct end_waiter *w = weft__container_of(l, struct end_waiter, cl.link);
        l = l->next;
        if (w->t != t)
            continue;
        if (weft__wait_claim(&w->cl)) {
            weft__wait_hand(&w->cl, t->status);
            weft__wait_wake(&w->cl);
        } else {
            weft__wait_unlink(&w->cl);
        }
    }
    pthread_mutex_unlock(&b->lock);
}

int weft__task_join_enqueue(struct weft_task *t, struct weft__clause *cl)
{
    void *expect = NULL;
    cl->queued = true;
    /* acq_rel: publishes the clause to weft__task_finish's acq_rel
     * exchange of joiner; failing, acquires what its DONE published. */
    if (atomic_compare_exchange_strong_explicit(&t->joiner, &expect, cl, memory_order_acq_rel,
                                                memory_order_acquire))
        return 1;
    cl->queued = false;
    return expect == WEFT__JOIN_DONE ? 0 : -EINVAL;
}

/* Withdraws the joiner clause cl of t: true when done (nothing handed),
 * false when t's end took it (it is then settled: the end is done). */
static bool join_withdraw(struct weft_task *t, struct weft__clause *cl)
{
    void *expect = cl;
    /* acq_rel: pairs with weft__task_finish's exchange; failing, the end
     * took the clause and we wait until it is done with it. */
    if (atomic_compare_exchange_strong_explicit(&t->joiner, &expect, NULL, memory_order_acq_rel,
                                                memory_order_acquire))
        return true;
    weft__wait_settle(cl->wait);
    return false;
}

void weft__task_finish(struct worker *w, struct weft_task *t)
{
    struct weft_runtime *rt = t->rt;
    /* Release: a live count that sees this end (acquire) also sees the
     * spawn's count, which happened before (weft__task_live_count). */
    weft__count(&w->n_finished, 1, memory_order_release);

    /* acq_rel: the release publishes status to whoever sees DONE
     * (weft_task_done, weft__task_end_enqueue); the RMW orders us against
     * an end waiter's fetch_or of TASK_END_WAITERS: one of the two sees
     * the other's bit. */
    uint32_t old = atomic_fetch_or_explicit(&t->flags, TASK_DONE, memory_order_acq_rel);
    if (WEFT__UNLIKELY(old & TASK_END_WAITERS))
        wake_end_waiters(t);
    /* acq_rel exchange: publishes status to whoever reads DONE (acquire,
     * weft__task_ended); takes the joiner's clause, if any, which is then
     * ours to claim and wake (its withdrawal's CAS fails from here on and
     * waits for our wake's done). */
    void *j = atomic_exchange_explicit(&t->joiner, WEFT__JOIN_DONE, memory_order_acq_rel);
    if (j) {
        struct weft__clause *cl = j;
        weft__wait_claim(cl); /* sole: the exchange decided */
        cl->queued = false;
        cl->result = 0;
        weft__wait_wake(cl);
    }
    /* Acquire: pairs with weft_runtime_free's seq_cst store of closing. */
    if (WEFT__UNLIKELY(atomic_load_explicit(&rt->closing, memory_order_acquire))) {
        /* runtime_free waits: wake it when this was the last task. The
         * fence orders our count before our reading of the others', so
         * of two last tasks ending at once one sees the other's end. A
         * closing flag read too early here is covered by the waiter's
         * timed wait. */
        atomic_thread_fence(memory_order_seq_cst);
        if (weft__task_live_count(rt) == 0) {
            pthread_mutex_lock(&rt->close_lock);
            pthread_cond_broadcast(&rt->close_cond);
            pthread_mutex_unlock(&rt->close_lock);
        }
    }
    weft__task_unref(t);
}

static void cancel_one(struct weft_task *t, void *arg)
{
    (void)arg;
    /* Once is enough (sticky): runtime_free walks again while it waits,
     * and a shielded task is not to be woken for nothing each time. */
    if (!(atomic_load_explicit(&t->flags, memory_order_relaxed) & (TASK_CANCELLED | TASK_DONE)))
        weft_cancel(t);
}

void weft__task_cancel_all(struct weft_runtime *rt) { weft__task_for_each(rt, cancel_one, NULL); }

static uint64_t ended_count(struct weft_runtime *rt)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < rt->n_workers; i++)
        /* Acquire: pairs with the release count of n_finished in
         * weft__task_finish. */
        n += atomic_load_explicit(&rt->workers[i].n_finished, memory_order_acquire);
    return n;
}

/* Tasks spawned minus tasks ended. The ends are read first, with acquire:
 * each end seen brings its task's spawn count along (a task ends after
 * it was counted and published), so the difference never undercounts,
 * and 0 means that every task whose spawn was seen has ended. Tasks that
 * are spawned and end while the sums are read would be counted as live,
 * so the ends are read again after the spawns: when they have not moved,
 * every task counted was live at once, when the spawns were read. A few
 * tries; a runtime that never stops ending tasks gets the upper bound. */
uint64_t weft__task_live_count(struct weft_runtime *rt)
{
    uint64_t ended = ended_count(rt);
    for (int tries = 1;; tries++) {
        uint64_t spawned = weft__task_spawned_count(rt);
        uint64_t again = ended_count(rt);
        /* Always the ends read before these spawns. */
        if (again == ended || tries == 16)
            return spawned > ended ? spawned - ended : 0;
        ended = again;
    }
}

uint64_t weft__task_spawned_count(struct weft_runtime *rt)
{
    uint64_t n = atomic_load_explicit(&rt->n_spawned_ext, memory_order_relaxed);
    for (unsigned i = 0; i < rt->n_workers; i++)
        n += atomic_load_explicit(&rt->workers[i].n_spawned, memory_order_relaxed);
    return n;
}

/* A task of another runtime than the caller's: a hold on that runtime
 * (weft__runtime_hold) keeps its memory until the caller is done with
 * t; returns the runtime to unhold, or NULL. */
static WEFT__NOINLINE struct weft_runtime *hold_foreign(struct weft_task *self,
                                                       struct weft_task *t)
{
    struct weft_runtime *rt = t->rt;
    return rt != self->rt && weft__runtime_hold(rt, false) ? rt : NULL;
}

static inline void unhold_foreign(struct weft_runtime *rt)
{
    if (WEFT__UNLIKELY(rt != NULL))
        weft__runtime_unhold(rt);
}

int weft__task_wait(struct weft_task *self, struct weft_task *t, int64_t deadline, bool hold)
{
    /* Acquire pairs with the exchange in weft__task_finish. */
    if (weft__task_ended(t))
        return 0;
    struct weft_runtime *foreign =
        WEFT__UNLIKELY(t->rt != self->rt) ? hold_foreign(self, t) : NULL;
    if (hold)
        self->shield++;
    struct weft__wait1 one;
    struct weft__wait *w = &one.w;
    struct weft__clause *cl = &one.cl;
    weft__wait_init(w, self);
    weft__clause_init(cl, w, 0, NULL, true);
    int rc = weft__task_join_enqueue(t, cl);
    if (rc == 1) {
        for (;;) {
            rc = weft__wait_block(w, NULL, NULL, deadline, weft__why(WEFT__WK_JOIN),
                                  (uint64_t)(uintptr_t)t);
            if (rc > 0) {
                rc = 0;
                break;
            }
            if (rc == 0)
                continue;
            /* Our own deadline (1), not the scope's (-ETIMEDOUT). */
            if (rc == -ETIMEDOUT && weft__interrupted(self) == 0)
                rc = 1;
            /* Withdraw as joiner; if t ended meanwhile, it is ours. */
            if (!join_withdraw(t, cl))
                rc = 0;
            break;
        }
    }
    if (hold)
        self->shield--;
    unhold_foreign(foreign);
    return rc;
}

void weft__task_cancel_and_reap(struct weft_task *self, struct weft_task *t)
{
    weft_cancel(t);
    int rc = weft__task_wait(self, t, INT64_MAX, true);
    WEFT__ASSERT(rc == 0);
    weft__task_unref(t);
}

/* ------------------------------------------------------------ public API */

weft_task *weft_spawn(weft_fn fn, void *arg)
{
    struct weft_task *self = weft__task_self();
    if (!self) {
        errno = EPERM;
        return NULL;
    }
    if (!fn) {
        errno = EINVAL;
        return NULL;
    }
    /* self->worker: the worker running us, so no thread-local look-up. */
    return spawn_on(self->rt, self->worker, fn, arg);
}

int weft_join(weft_task *t)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (!t || t == self)
        return -EINVAL;
    /* t of another runtime: that runtime's free must not release t
     * before we have read its status and dropped the handle. */
    struct weft_runtime *foreign =
        WEFT__UNLIKELY(t->rt != self->rt) ? hold_foreign(self, t) : NULL;
    int rc = weft__task_wait(self, t, INT64_MAX, false);
    if (rc == -EINVAL) {
        unhold_foreign(foreign);
        return rc;
    }
    if (rc < 0) {
        /* asyncio: cancelling the awaiting task cancels the awaited one;
         * wait for it to really end so that nothing is left unowned. */
        weft__task_cancel_and_reap(self, t);
        unhold_foreign(foreign);
        return rc;
    }
    int status = t->status;
    weft__task_unref(t);
    unhold_foreign(foreign);
    return status;
}

void weft_detach(weft_task *t)
{
    if (!t)
        return;
    /* A second detach of a live task would drop the task's own reference
     * (its life): the struct would be freed under the running task and
     * runtime_free would wait for it forever. */
    uint32_t old = atomic_fetch_or_explicit(&t->flags, TASK_DETACHED, memory_order_relaxed);
    if (old & TASK_DETACHED) {
        fprintf(stderr, "weft: weft_detach called twice on task %llu; the second is ignored\n",
                (unsigned long long)t->id);
        return;
    }
    weft__task_unref(t);
}

void weft_cancel(weft_task *t)
{
    if (!t)
        return;
    /* seq_cst: pairs with weft__interrupted's seq_cst load of flags. */
    uint32_t old = atomic_fetch_or_explicit(&t->flags, TASK_CANCELLED, memory_order_seq_cst);
    if (old & (TASK_CANCELLED | TASK_DONE))
        return;
    weft__wake(t);
}

bool weft_task_done(const weft_task *t)
{
    if (!t)
        return false;
    /* Acquire: pairs with weft__task_finish's acq_rel fetch_or of
     * TASK_DONE; status is then final. */
    return atomic_load_explicit(&((weft_task *)t)->flags, memory_order_acquire) & TASK_DONE;
}

weft_task *weft_current(void) { return weft__task_self(); }

bool weft_cancelled(void)
{
    struct weft_task *self = weft__task_self();
    return self && weft__interrupted(self) == -ECANCELED;
}

int weft_yield(void)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    int rc = weft__interrupted(self);
    if (rc)
        return rc;
    weft__yield_self(self);
    return weft__interrupted(self);
}

void weft_task_set_name(weft_task *t, const char *name)
{
    if (!t)
        return;
    size_t n = name ? strnlen(name, WEFT__TASK_NAME - 1) : 0;
    /* The buffer comes with the first name and stays until the struct is
     * freed, so weft_task_name's pointer never dangles. Without memory
     * the name is dropped (the call has no way to fail). */
    /* Under the name lock: dumps and the slow-task monitor copy the name
     * under it from other threads. A buffer is allocated (outside the
     * lock) only when t has none yet. */
    char *buf = NULL;
    spin_lock(&t->rt->name_lock);
    if (!t->name && n) {
        spin_unlock(&t->rt->name_lock);
        if (!(buf = malloc(WEFT__TASK_NAME)))
            return;
        spin_lock(&t->rt->name_lock);
        if (!t->name) {
            t->name = buf;
            buf = NULL;
        }
    }
    if (t->name) {
        if (n)
            memcpy(t->name, name, n);
        t->name[n] = '\0';
    }
    spin_unlock(&t->rt->name_lock);
    free(buf); /* another thread gave t one meanwhile */
}

void weft__task_copy_name(struct weft_task *t, char buf[WEFT__TASK_NAME])
{
    spin_lock(&t->rt->name_lock);
    if (t->name)
        memcpy(buf, t->name, WEFT__TASK_NAME);
    else
        buf[0] = '\0';
    spin_unlock(&t->rt->name_lock);
    buf[WEFT__TASK_NAME - 1] = '\0';
}

const char *weft_task_name(const weft_task *t) { return t && t->name ? t->name : ""; }

uint64_t weft_task_id(const weft_task *t) { return t ? t->id : 0; }
