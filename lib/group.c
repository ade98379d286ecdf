/* SPDX-License-Identifier: MIT */
/* Composing tasks: gather (join all, in order), wait_any (first to finish,
 * joins nothing) and task groups (first failure cancels the rest). */
#include "internal.h"

#include <string.h>

#include "sched/sched.h"
#include "util/clock.h"

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(weft_task *const *)a;
    uintptr_t y = (uintptr_t)*(weft_task *const *)b;
    return x < y ? -1 : x > y;
}

/* Does a task appear twice in tasks[0..n)? (gather would join it twice,
 * and the second join would touch a freed handle.) Quadratic for short
 * arrays; sorts a copy for long ones, or stays quadratic without memory. */
static bool has_duplicate(weft_task *const tasks[], size_t n)
{
    if (n > 32) {
        weft_task **c = malloc(n * sizeof *c);
        if (c) {
            memcpy(c, tasks, n * sizeof *c);
            qsort(c, n, sizeof *c, cmp_ptr);
            bool dup = false;
            for (size_t i = 1; i < n && !dup; i++)
                dup = c[i] == c[i - 1];
            free(c);
            return dup;
        }
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (tasks[i] == tasks[j])
                return true;
    return false;
}

/* Cancels tasks[from..n), waits for each, records statuses, frees them. */
static void reap_rest(struct weft_task *self, weft_task *const tasks[], size_t from, size_t n,
                      int statuses[])
{
    for (size_t j = from; j < n; j++)
        weft_cancel(tasks[j]);
    for (size_t j = from; j < n; j++) {
        weft__task_wait(self, tasks[j], INT64_MAX, true);
        if (statuses)
            statuses[j] = tasks[j]->status;
        weft__task_unref(tasks[j]);
    }
}

int weft_gather(weft_task *const tasks[], size_t n, int statuses[])
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (n && !tasks)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!tasks[i] || tasks[i] == self)
            return -EINVAL;
    if (has_duplicate(tasks, n))
        return -EINVAL;
    int first_fail = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = weft__task_wait(self, tasks[i], INT64_MAX, false);
        if (rc == -EINVAL)
            return rc; /* another task waits for tasks[i]: misuse */
        if (rc < 0) {
            /* The caller was cancelled (or its deadline passed): cancel
             * every child still running and wait for all of them. */
            reap_rest(self, tasks, i, n, statuses);
            return rc;
        }
        int s = tasks[i]->status;
        if (statuses)
            statuses[i] = s;
        if (s < 0 && first_fail == 0)
            first_fail = s;
        weft__task_unref(tasks[i]);
    }
    return first_fail;
}

static int first_done(weft_task *const tasks[], size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (weft__task_ended(tasks[i]))
            return (int)i;
    return -1;
}

/* End waiters kept on the stack; more are allocated. */
#define WAIT_ANY_STACK 16

int weft_wait_any(weft_task *const tasks[], size_t n, int64_t timeout_ns)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (!tasks || n == 0 || n > INT32_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!tasks[i] || tasks[i] == self)
            return -EINVAL;
    int64_t now = weft__clock_ns();
    int64_t deadline = timeout_ns < 0 ? INT64_MAX
                       : timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
    int idx = first_done(tasks, n);
    if (idx >= 0)
        return idx;
    int rc = weft__interrupted(self);
    if (rc)
        return rc;
    if (timeout_ns == 0)
        return -ETIMEDOUT;
    /* One end waiter per task (sched.h), never a task's joiner slot: any
     * number of waiters see its end at once, and a join beside them is
     * not refused. */
    struct end_waiter small[WAIT_ANY_STACK];
    struct end_waiter *ew = small;
    if (n > WAIT_ANY_STACK && !(ew = malloc(n * sizeof *ew)))
        return -ENOMEM;
    for (;;) {
        /* One wait with a clause per task: the first end claims it. */
        struct weft__wait w;
        weft__wait_init(&w, self);
        size_t queued = 0;
        bool ended = false;
        while (queued < n && !ended) {
            weft__clause_init(&ew[queued].cl, &w, (int)queued, NULL, false);
            ended = !weft__task_end_enqueue(tasks[queued], &ew[queued]);
            if (!ended)
                queued++;
        }
        if (!ended)
            weft__wait_block(&w, NULL, NULL, deadline, weft__why(WEFT__WK_ANY),
                             (uint64_t)(uintptr_t)tasks[0]);
        /* What the claim says, not first_done: a task whose end woke us
         * may already be joined and its struct reused by another. */
        int won = weft__wait_close(&w);
        for (size_t i = 0; i < queued; i++)
            weft__task_end_withdraw(&ew[i]);
        idx = ended ? (int)queued : -1;
        if (won >= 0) {
            weft__wait_settle(&w);
            idx = won;
        }
        if (idx >= 0)
            break;
        if ((rc = weft__interrupted(self)) != 0)
            break;
        if (deadline != INT64_MAX && weft__clock_ns() >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    if (ew != small)
        free(ew);
    return idx >= 0 ? idx : rc;
}

/* ------------------------------------------------------------ groups */

struct group_child {
    weft_group *g;
    weft_fn fn;
    void *arg;
};

struct weft_group {
    pthread_mutex_t lock;
    struct weft_runtime *rt;
    struct weft_task *owner;
    struct weft_task **tasks;
    struct group_child **children;
    size_t n, cap;
    bool failed;    /* a child failed or the waiter was interrupted */
    bool waiting;   /* weft_group_wait has begun */
    bool freed;     /* waited for: in the cache below, or reused */
    int first_fail; /* status of the first failure */
    struct weft_group *next_free; /* link in group_cache */
};

/* Groups that have been waited for are kept (up to GROUP_CACHE_MAX, their
 * lock still initialised) and reused by weft_group_new, rather than freed:
 * a spawn or a second wait on such a group then finds `freed` set and
 * fails with -EINVAL instead of touching freed memory. */
#define GROUP_CACHE_MAX 1024
static struct {
    pthread_mutex_t lock;
    struct weft_group *head;
    unsigned n;
} group_cache = {PTHREAD_MUTEX_INITIALIZER, NULL, 0};

/* The end of a wait: marks g freed (under its lock, so that a late call
 * sees it) and caches it, or frees it when the cache is full. */
static void group_release(weft_group *g)
{
    pthread_mutex_lock(&g->lock);
    free(g->tasks);
    free(g->children);
    g->tasks = NULL;
    g->children = NULL;
    g->n = g->cap = 0;
    g->freed = true;
    pthread_mutex_unlock(&g->lock);
    pthread_mutex_lock(&group_cache.lock);
    bool keep = group_cache.n < GROUP_CACHE_MAX;
    if (keep) {
        g->next_free = group_cache.head;
        group_cache.head = g;
        group_cache.n++;
    }
    pthread_mutex_unlock(&group_cache.lock);
    if (!keep) {
        pthread_mutex_destroy(&g->lock);
        free(g);
    }
}

weft_group *weft_group_new(void)
{
    struct weft_task *self = weft__task_self();
    if (!self) {
        errno = EPERM;
        return NULL;
    }
    pthread_mutex_lock(&group_cache.lock);
    weft_group *g = group_cache.head;
    if (g) {
        group_cache.head = g->next_free;
        group_cache.n--;
    }
    pthread_mutex_unlock(&group_cache.lock);
    if (!g) {
        g = calloc(1, sizeof *g);
        if (!g) {
            errno = ENOMEM;
            return NULL;
        }
        pthread_mutex_init(&g->lock, NULL);
    }
    pthread_mutex_lock(&g->lock);
    g->rt = self->rt;
    g->owner = self;
    g->tasks = NULL;
    g->children = NULL;
    g->n = g->cap = 0;
    g->failed = false;
    g->waiting = false;
    g->freed = false;
    g->first_fail = 0;
    g->next_free = NULL;
    pthread_mutex_unlock(&g->lock);
    return g;
}

/* Lock held: cancels every child but `except`. */
static void cancel_children_locked(weft_group *g, struct weft_task *except)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->tasks[i] != except)
            weft_cancel(g->tasks[i]);
}

static int group_child_main(void *p)
{
    struct group_child *c = p;
    int s = c->fn(c->arg);
    if (s < 0) {
        weft_group *g = c->g;
        pthread_mutex_lock(&g->lock);
        if (!g->failed) {
            g->failed = true;
            g->first_fail = s;
            cancel_children_locked(g, weft__task_self());
        }
        pthread_mutex_unlock(&g->lock);
    }
    return s;
}

int weft_group_spawn(weft_group *g, weft_fn fn, void *arg)
{
    if (!g || !fn)
        return -EINVAL;
    struct group_child *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    c->g = g;
    c->fn = fn;
    c->arg = arg;
    pthread_mutex_lock(&g->lock);
    if (g->freed || g->failed) {
        int rc = g->freed ? -EINVAL : -ECANCELED;
        pthread_mutex_unlock(&g->lock);
        free(c);
        return rc;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        struct weft_task **t = realloc(g->tasks, cap * sizeof *t);
        if (t)
            g->tasks = t;
        struct group_child **ch = t ? realloc(g->children, cap * sizeof *ch) : NULL;
        if (ch)
            g->children = ch;
        if (!t || !ch) {
            pthread_mutex_unlock(&g->lock);
            free(c);
            return -ENOMEM;
        }
        g->cap = cap;
    }
    struct weft_task *t = weft__task_spawn(g->rt, group_child_main, c);
    if (!t) {
        pthread_mutex_unlock(&g->lock);
        free(c);
        return -ENOMEM;
    }
    g->tasks[g->n] = t;
    g->children[g->n] = c;
    g->n++;
    pthread_mutex_unlock(&g->lock);
    return 0;
}

int weft_group_wait(weft_group *g)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (!g)
        return -EINVAL;
    pthread_mutex_lock(&g->lock);
    if (g->freed || g->waiting) {
        /* Waited for already (and freed), or being waited for. */
        pthread_mutex_unlock(&g->lock);
        return -EINVAL;
    }
    g->waiting = true;
    pthread_mutex_unlock(&g->lock);
    int interrupted = 0;
    for (size_t i = 0;; i++) {
        pthread_mutex_lock(&g->lock);
        if (i == g->n) {
            /* No more spawns once we are done waiting. */
            g->failed = true;
            pthread_mutex_unlock(&g->lock);
            break;
        }
        struct weft_task *t = g->tasks[i];
        pthread_mutex_unlock(&g->lock);
        int rc = weft__task_wait(self, t, INT64_MAX, interrupted != 0);
        if (rc < 0 && !interrupted) {
            interrupted = rc;
            pthread_mutex_lock(&g->lock);
            g->failed = true;
            cancel_children_locked(g, NULL);
            pthread_mutex_unlock(&g->lock);
            weft__task_wait(self, t, INT64_MAX, true);
        }
    }
    for (size_t i = 0; i < g->n; i++) {
        weft__task_unref(g->tasks[i]);
        free(g->children[i]);
    }
    int result = interrupted ? interrupted : g->first_fail;
    group_release(g);
    return result;
}
