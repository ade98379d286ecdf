/* SPDX-License-Identifier: MIT */
/* Async generators: the body runs as a child task, started by the first
 * weft_gen_next, and hands each value to the consumer through a rendezvous
 * under the generator's lock (the consumer waits in one queue, the body in
 * the other). Exactly one of them runs at a time. Touched by the consumer
 * task (next, close) and the body task (yield, its end). */
#include "internal.h"

#include "sched/sched.h"
#include "sched/wait.h"

struct weft_gen {
    pthread_mutex_t mu;       /* guards everything below */
    weft_gen_fn body;
    void *arg;
    struct weft_runtime *rt;  /* the creator's runtime: where the body runs */
    struct weft_task *task;   /* body task, from the first next; handle
                                 owned by g and dropped by close */
    struct list consumer;    /* the task in weft_gen_next */
    struct list producer;    /* the body, parked in weft_gen_yield */
    bool is_busy;             /* a next or close is in progress */
    bool is_closing;          /* close started: every yield fails */
    bool is_done;             /* the body has returned */
    bool is_freed;            /* closed: in the cache below, or reused */
    int status;               /* its status, once is_done */
    struct weft_gen *next_free; /* link in gen_cache */
};

/* Closed generators are kept (up to GEN_CACHE_MAX of them, their mutex
 * still initialised) and reused by weft_gen_new, rather than freed: a
 * next or close on a generator already closed then finds is_freed set and
 * fails with -EINVAL instead of touching freed memory. */
#define GEN_CACHE_MAX 1024
static struct {
    pthread_mutex_t lock;
    struct weft_gen *head;
    unsigned n;
} gen_cache = {PTHREAD_MUTEX_INITIALIZER, NULL, 0};

static struct weft_gen *gen_alloc(void)
{
    pthread_mutex_lock(&gen_cache.lock);
    struct weft_gen *g = gen_cache.head;
    if (g) {
        gen_cache.head = g->next_free;
        gen_cache.n--;
    }
    pthread_mutex_unlock(&gen_cache.lock);
    if (g)
        return g;
    g = malloc(sizeof *g);
    if (!g) {
        errno = ENOMEM;
        return NULL;
    }
    int rc = pthread_mutex_init(&g->mu, NULL);
    if (rc) {
        free(g);
        errno = rc;
        return NULL;
    }
    return g;
}

/* The end of a close: marks g closed (under its lock, so that a late
 * call sees it) and caches it, or frees it when the cache is full. */
static void gen_release(struct weft_gen *g)
{
    pthread_mutex_lock(&g->mu);
    g->is_freed = true;
    g->task = NULL;
    pthread_mutex_unlock(&g->mu);
    pthread_mutex_lock(&gen_cache.lock);
    bool keep = gen_cache.n < GEN_CACHE_MAX;
    if (keep) {
        g->next_free = gen_cache.head;
        gen_cache.head = g;
        gen_cache.n++;
    }
    pthread_mutex_unlock(&gen_cache.lock);
    if (!keep) {
        pthread_mutex_destroy(&g->mu);
        free(g);
    }
}

/* Result a yield hands to the waiting consumer: a value (in the clause's
 * data). */
#define GEN_VALUE 1

static void gen_lock(void *g) { pthread_mutex_lock(&((struct weft_gen *)g)->mu); }
static void gen_unlock(void *g) { pthread_mutex_unlock(&((struct weft_gen *)g)->mu); }

/* The task self waits on q (consumer or producer) with g->mu held on
 * entry and on return: 0 and the waker's result (*result) and value
 * (*value), or -ECANCELED / -ETIMEDOUT with nothing handed. */
static int gen_wait(struct weft_gen *g, struct list *q, struct weft_task *self, unsigned kind,
                    int *result, void **value)
{
    struct weft__wait1 one;
    struct weft__wait *w = &one.w;
    struct weft__clause *cl = &one.cl;
    weft__wait_init(w, self);
    weft__clause_init(cl, w, 0, NULL, true);
    weft__wait_enqueue(q, cl);
    int rc = weft__wait_one(w, cl, gen_lock, gen_unlock, NULL, g, INT64_MAX, weft__why(kind),
                            (uint64_t)(uintptr_t)&g->mu);
    pthread_mutex_lock(&g->mu);
    *result = cl->result;
    *value = cl->data;
    return rc;
}

static int gen_main(void *arg)
{
    struct weft_gen *g = arg;
    int st = g->body(g, g->arg);
    pthread_mutex_lock(&g->mu);
    g->is_done = true;
    g->status = st;
    weft__wait_wake_one(&g->consumer, 0);
    pthread_mutex_unlock(&g->mu);
    /* Nothing touches g after this point: close frees it once this task
     * has ended. */
    return st;
}

weft_gen *weft_gen_new(weft_gen_fn body, void *arg)
{
    struct weft_task *self = weft__task_self();
    if (!self) {
        errno = EPERM;
        return NULL;
    }
    if (!body) {
        errno = EINVAL;
        return NULL;
    }
    struct weft_gen *g = gen_alloc();
    if (!g)
        return NULL; /* errno set */
    pthread_mutex_lock(&g->mu);
    g->body = body;
    g->arg = arg;
    g->rt = self->rt;
    g->task = NULL;
    list_init(&g->consumer);
    list_init(&g->producer);
    g->is_busy = false;
    g->is_closing = false;
    g->is_done = false;
    g->is_freed = false;
    g->status = 0;
    g->next_free = NULL;
    pthread_mutex_unlock(&g->mu);
    return g;
}

int weft_gen_yield(weft_gen *g, void *value)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (!g)
        return -EINVAL;
    pthread_mutex_lock(&g->mu);
    if (g->is_freed || g->task != self) {
        pthread_mutex_unlock(&g->mu);
        return -EINVAL; /* only the body yields */
    }
    if (g->is_closing) {
        pthread_mutex_unlock(&g->mu);
        return -ECANCELED;
    }
    int rc = weft__interrupted(self);
    if (rc) {
        pthread_mutex_unlock(&g->mu);
        return rc;
    }
    /* The consumer waits for this value unless it was interrupted, in
     * which case it is cancelling us and the value is dropped. */
    struct weft__clause *c = weft__wait_take(&g->consumer);
    if (c) {
        c->data = value;
        weft__wait_hand(c, GEN_VALUE);
        weft__wait_wake(c);
    }
    /* Woken with 0 by the next weft_gen_next, or -ECANCELED by close. */
    int result;
    void *unused;
    rc = gen_wait(g, &g->producer, self, WEFT__WK_GEN_YIELD, &result, &unused);
    if (rc == 0)
        rc = result;
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* The body's end as next reports it: its negative status, or 0. */
static int end_status(const struct weft_gen *g)
{
    return g->status < 0 ? g->status : 0;
}

int weft_gen_next(weft_gen *g, void **value)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (!g)
        return -EINVAL;
    int rc = weft__interrupted(self);
    if (rc)
        return rc;
    pthread_mutex_lock(&g->mu);
    if (g->is_freed || g->task == self || g->is_busy) {
        /* Closed already, the body asking itself, or two consumers at
         * once. */
        rc = g->is_freed || g->task == self ? -EINVAL : -EBUSY;
        pthread_mutex_unlock(&g->mu);
        return rc;
    }
    if (g->is_done) {
        rc = end_status(g);
        pthread_mutex_unlock(&g->mu);
        return rc;
    }
    if (!g->task) {
        g->task = weft__task_spawn(g->rt, gen_main, g);
        if (!g->task) {
            rc = -errno;
            pthread_mutex_unlock(&g->mu);
            return rc;
        }
    } else {
        /* Resume the body parked in its yield. (If it is not there, it
         * was cancelled from elsewhere and its end will wake us.) */
        weft__wait_wake_one(&g->producer, 0);
    }
    g->is_busy = true;
    int result;
    void *got;
    rc = gen_wait(g, &g->consumer, self, WEFT__WK_GEN_NEXT, &result, &got);
    if (rc == 0) {
        g->is_busy = false;
        if (result == GEN_VALUE) {
            if (value)
                *value = got;
            rc = 1;
        } else {
            rc = end_status(g);
        }
        pthread_mutex_unlock(&g->mu);
        return rc;
    }
    /* Cancelled or past a deadline while the body ran: as in asyncio,
     * where the body runs in the awaiting task, the interruption goes to
     * the body (its current suspension point fails) and we return only
     * once it has ended; the generator is then finished. */
    struct weft_task *t = g->task;
    pthread_mutex_unlock(&g->mu);
    weft_cancel(t);
    int w_rc = weft__task_wait(self, t, INT64_MAX, true);
    WEFT__ASSERT(w_rc == 0);
    pthread_mutex_lock(&g->mu);
    g->is_busy = false;
    pthread_mutex_unlock(&g->mu);
    return rc;
}

int weft_gen_close(weft_gen *g)
{
    struct weft_task *self = weft__task_self();
    if (!self)
        return -EPERM;
    if (!g)
        return -EINVAL;
    pthread_mutex_lock(&g->mu);
    if (g->is_freed || g->task == self || g->is_busy) {
        int err = g->is_freed || g->task == self ? -EINVAL : -EBUSY;
        pthread_mutex_unlock(&g->mu);
        return err;
    }
    struct weft_task *t = g->task;
    /* A close that finds the body still suspended (not yet returned)
     * causes its -ECANCELED. */
    bool interrupts = t && !g->is_done;
    g->is_closing = true;
    g->is_busy = true;
    if (t)
        weft__wait_wake_one(&g->producer, -ECANCELED);
    pthread_mutex_unlock(&g->mu);
    int rc = 0;
    if (t) {
        /* Wait for the body's cleanup and end. If we are cancelled (or our
         * deadline passes) meanwhile, the body is cancelled too and still
         * waited for, as weft_join does. */
        rc = weft__task_wait(self, t, INT64_MAX, false);
        if (rc < 0)
            weft__task_cancel_and_reap(self, t);
        else
            weft__task_unref(t);
    }
    /* The body task has ended (acquire in weft__task_wait): its writes to
     * g are visible and nothing touches g any more. */
    int st = g->status;
    gen_release(g);
    if (rc < 0)
        return rc;
    if (interrupts && st == -ECANCELED)
        return 0; /* the usual answer to close: a clean exit */
    return st;
}
