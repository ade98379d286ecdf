/* SPDX-License-Identifier: MIT */
/* Task memory: the structs of tasks, carved from chunks that live as long
 * as the runtime, cached per worker, and walked by reference count
 * (weft__task_for_each). */
#define _GNU_SOURCE 1
#include "internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ctx/checker.h"
#include "sched/sched.h"


/* Task structs come from chunks, kept for the life of the runtime: malloc
 * and free of small objects cost more than the rest of a spawn. Each
 * worker keeps two lists of its own (no lock): `free` (allocations pop
 * from it, releases push onto it) and `spare`, one full batch of
 * WEFT__TASK_BATCH. When `free` fills up it becomes the spare, and an
 * older spare goes to the runtime's list in one lock; when it runs dry the
 * spare (or a batch from the runtime, or WEFT__TASK_CHUNK structs carved
 * from the newest chunk) replaces it. So a worker takes the lock once per
 * batch, not once per task, however its spawns and ends balance. The
 * runtime's list is a chain of batches whose first task carries the
 * batch's last task and length (qlast, qlen, as in the inject queue), so a
 * batch moves in O(1). Plain threads take and give single tasks there.
 *
 * The memory is type-stable, as Go's allgs: a struct, once carved, is a
 * task struct until weft__task_memory_release, and chunks start zeroed,
 * so a free struct has refs 0. That is the task registry: dumps and
 * runtime_free walk the chunks and take a reference on each struct whose
 * count is not 0 (weft__task_tryref), and a spawn publishes a task by
 * its refs store alone, with no shared list or lock on the spawn and end
 * paths (a registry spinlock was 18 % of spawn_join's time, the spawning
 * and the ending worker taking turns at it). The price: a dump reads every
 * struct ever carved. Under ASan a free struct is poisoned but for the
 * words the free lists and walkers read (task_poison), so that a use of
 * a freed task is still reported. */
#define WEFT__TASK_CHUNK 64
#define WEFT__TASK_BATCH 1024
/* The first WEFT__TASK_SMALL_CHUNKS chunks hold WEFT__TASK_CHUNK structs
 * each (aligned to cache lines, zeroed); after that, mappings of 2 MiB,
 * each prefaulted in one madvise(MADV_POPULATE_WRITE) call (Linux 5.14+;
 * ignored elsewhere) rather than by 512 page faults as the structs are first written:
 * spawn_join's spawning worker spent about a third of its time in page
 * faults, and the one call halves that system time (transparent huge
 * pages were tried too: fewer faults, but compaction made the system
 * time worse). A small program keeps small chunks. */
#define WEFT__TASK_SMALL_CHUNKS 16
#define WEFT__TASK_BIG_CHUNK ((size_t)2 << 20)

struct task_chunk {
    struct task_chunk *next; /* older chunk */
    size_t n;                /* structs it holds */
    bool mapped;             /* mmap'd (WEFT__TASK_BIG_CHUNK bytes) */
    struct weft_task tasks[];
};

#ifdef WEFT__ASAN
/* The 8-byte granules a free struct keeps readable: qlast, refs (with
 * qlen), qnext. */
_Static_assert(offsetof(struct weft_task, qlast) % 8 == 0 &&
                   offsetof(struct weft_task, qlast) + 8 <= offsetof(struct weft_task, refs) &&
                   offsetof(struct weft_task, refs) + 8 <= offsetof(struct weft_task, qnext) &&
                   offsetof(struct weft_task, refs) % 8 == 0 &&
                   offsetof(struct weft_task, qlen) == offsetof(struct weft_task, refs) + 4 &&
                   offsetof(struct weft_task, qnext) % 8 == 0,
               "free-list words of struct weft_task not granule-aligned");

/* Poisons the gaps between the kept granules only: a walker may read
 * refs at any moment, so its granule must never be poisoned, even
 * briefly. */
static void task_poison(struct weft_task *t)
{
    static const size_t keep[] = {offsetof(struct weft_task, qlast),
                                  offsetof(struct weft_task, refs),
                                  offsetof(struct weft_task, qnext)};
    size_t from = 0;
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        if (keep[i] > from)
            ASAN_POISON_MEMORY_REGION((char *)t + from, keep[i] - from);
        from = keep[i] + 8;
    }
    ASAN_POISON_MEMORY_REGION((char *)t + from, sizeof *t - from);
}

static void task_unpoison(struct weft_task *t) { ASAN_UNPOISON_MEMORY_REGION(t, sizeof *t); }
#else
static inline void task_poison(struct weft_task *t) { (void)t; }
static inline void task_unpoison(struct weft_task *t) { (void)t; }
#endif

#if defined(WEFT__ASAN) || defined(WEFT__TSAN)
/* Sanitizer builds: a freed struct waits in a FIFO of the last
 * WEFT__QUARANTINE freed ones before it can be reused (ASan's own
 * quarantine does the same for malloc), so that a stale handle (weft_cancel
 * after weft_join, say) reaches poisoned memory that ASan reports rather
 * than an unrelated new task. Plain builds reuse the most recently freed
 * struct at once: it is the one in the CPU caches. */
#define WEFT__QUARANTINE 4096
#define WEFT__HAS_QUARANTINE 1
struct task_quarantine {
    size_t head, n;
    struct weft_task *ring[WEFT__QUARANTINE];
};

/* Puts t in quarantine; returns the struct that leaves it to be reused
 * (the oldest, once the ring is full), NULL, or t itself when no ring
 * could be had. task_lock held. */
static struct weft_task *quarantine_locked(struct weft_runtime *rt, struct weft_task *t)
{
    struct task_quarantine *q = rt->quarantine;
    if (!q && !(q = rt->quarantine = calloc(1, sizeof *q)))
        return t;
    if (q->n < WEFT__QUARANTINE) {
        q->ring[(q->head + q->n++) % WEFT__QUARANTINE] = t;
        return NULL;
    }
    struct weft_task *old = q->ring[q->head];
    q->ring[q->head] = t;
    q->head = (q->head + 1) % WEFT__QUARANTINE;
    return old;
}
#endif

/* A new chunk, zeroed, for the runtime's carving; task_lock held. False
 * when out of memory. A mapped chunk is also returned in *big, for the
 * caller to prefault unlocked. */
static bool chunk_new_locked(struct weft_runtime *rt, struct task_chunk **big)
{
    size_t size = sizeof(struct task_chunk) + WEFT__TASK_CHUNK * sizeof(struct weft_task);
    struct task_chunk *c = NULL;
    bool mapped = false;
    if (rt->n_task_chunks >= WEFT__TASK_SMALL_CHUNKS) {
        void *p = mmap(NULL, WEFT__TASK_BIG_CHUNK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            c = p;
            size = WEFT__TASK_BIG_CHUNK;
            mapped = true;
            *big = c;
        }
    }
    if (!c) {
        /* Whole cache lines: tasks running on different workers never
         * share one. */
        size = (size + WEFT__CACHELINE - 1) & ~(size_t)(WEFT__CACHELINE - 1);
        if (!(c = aligned_alloc(WEFT__CACHELINE, size)))
            return false;
        memset(c, 0, size);
    }
    c->next = rt->task_chunks;
    c->n = (size - sizeof *c) / sizeof(struct weft_task);
    c->mapped = mapped;
    rt->task_chunks = c;
    rt->n_task_chunks++;
    rt->task_bump = c->tasks;
    rt->task_bump_end = c->tasks + c->n;
    return true;
}

/* Carves up to max structs (at least one) off the newest chunk, or a new
 * one; task_lock held. Returns the first (the rest follow it in memory)
 * and their number in *n, or NULL when out of memory. */
static struct weft_task *carve_locked(struct weft_runtime *rt, unsigned max, unsigned *n,
                                      struct task_chunk **big)
{
    if (rt->task_bump == rt->task_bump_end && !chunk_new_locked(rt, big))
        return NULL;
    struct weft_task *first = rt->task_bump;
    size_t left = (size_t)(rt->task_bump_end - first);
    *n = left < max ? (unsigned)left : max;
    rt->task_bump = first + *n;
    return first;
}

/* Appends the list first..last (n tasks) to the runtime's chain as one
 * batch; task_lock held. */
static void batch_push_locked(struct weft_runtime *rt, struct weft_task *first,
                              struct weft_task *last, unsigned n)
{
    first->qlast = last;
    first->qlen = n;
    last->qnext = rt->free_tasks;
    rt->free_tasks = first;
    rt->n_free_tasks += n;
}

/* Gives w a new `free` list: its spare, a batch of the runtime's, or
 * freshly carved structs. False when out of memory. */
static WEFT__NOINLINE bool refill_tasks(struct weft_runtime *rt, struct worker *w)
{
    if (w->spare_tasks) {
        w->free_tasks = w->spare_tasks;
        w->free_tail = w->spare_tail;
        w->n_free_tasks = WEFT__TASK_BATCH;
        w->spare_tasks = NULL;
        return true;
    }
    struct weft_task *first = NULL, *last = NULL;
    unsigned n = 0;
    pthread_mutex_lock(&rt->task_lock);
    if (rt->free_tasks) {
        first = rt->free_tasks;
        last = first->qlast;
        n = first->qlen;
        rt->free_tasks = last->qnext;
        rt->n_free_tasks -= n;
        pthread_mutex_unlock(&rt->task_lock);
        last->qnext = NULL;
    } else {
        struct task_chunk *big = NULL;
        first = carve_locked(rt, WEFT__TASK_CHUNK, &n, &big);
        pthread_mutex_unlock(&rt->task_lock);
        if (!first)
            return false;
#ifdef MADV_POPULATE_WRITE
        /* Others may carve from it meanwhile: prefaulting is harmless to
         * their writes. A failure only leaves the faults to come. */
        if (big)
            (void)madvise(big, WEFT__TASK_BIG_CHUNK, MADV_POPULATE_WRITE);
#endif
        /* Carved structs are ours (and, refs 0, skipped by walkers): link
         * them outside the lock. */
        for (unsigned i = 0; i < n; i++)
            first[i].qnext = i + 1 < n ? &first[i + 1] : NULL;
        last = &first[n - 1];
    }
    w->free_tasks = first;
    w->free_tail = last;
    w->n_free_tasks = n;
    return true;
}

struct weft_task *weft__task_alloc_on(struct worker *w, struct weft_runtime *rt)
{
    struct weft_task *t;
    if (w && w->rt == rt) {
        if (WEFT__UNLIKELY(!w->free_tasks) && !refill_tasks(rt, w))
            return NULL;
        t = w->free_tasks;
        w->free_tasks = t->qnext;
        w->n_free_tasks--;
        task_unpoison(t);
        return t;
    }
    pthread_mutex_lock(&rt->task_lock);
    t = rt->free_tasks;
    if (t) {
        /* The rest of t's batch becomes a batch of its own. */
        struct weft_task *nx = t->qnext;
        if (t->qlen > 1) {
            nx->qlast = t->qlast;
            nx->qlen = t->qlen - 1;
        }
        rt->free_tasks = nx;
        rt->n_free_tasks--;
    } else {
        struct task_chunk *big = NULL; /* left to fault in, from a thread */
        unsigned n;
        t = carve_locked(rt, 1, &n, &big);
    }
    pthread_mutex_unlock(&rt->task_lock);
    if (t)
        task_unpoison(t);
    return t;
}

struct weft_task *weft__task_alloc(struct weft_runtime *rt)
{
    return weft__task_alloc_on(weft__worker_self(), rt);
}

void weft__task_release(struct weft_task *t)
{
    struct weft_runtime *rt = t->rt;
    free(t->name);
    t->name = NULL;
#ifdef WEFT__HAS_QUARANTINE
    task_poison(t);
    pthread_mutex_lock(&rt->task_lock);
    struct weft_task *out = quarantine_locked(rt, t);
    if (out)
        batch_push_locked(rt, out, out, 1);
    pthread_mutex_unlock(&rt->task_lock);
    return;
#endif
    struct worker *w = weft__worker_self();
    if (w && w->rt == rt) {
        if (!w->free_tasks)
            w->free_tail = t;
        t->qnext = w->free_tasks;
        w->free_tasks = t;
        task_poison(t);
        if (WEFT__LIKELY(++w->n_free_tasks < WEFT__TASK_BATCH))
            return;
        /* Full: it becomes the spare; an older spare goes to the runtime. */
        struct weft_task *old = w->spare_tasks, *old_tail = w->spare_tail;
        w->spare_tasks = w->free_tasks;
        w->spare_tail = w->free_tail;
        w->free_tasks = NULL;
        w->n_free_tasks = 0;
        if (old) {
            pthread_mutex_lock(&rt->task_lock);
            batch_push_locked(rt, old, old_tail, WEFT__TASK_BATCH);
            pthread_mutex_unlock(&rt->task_lock);
        }
        return;
    }
    task_poison(t);
    pthread_mutex_lock(&rt->task_lock);
    batch_push_locked(rt, t, t, 1);
    pthread_mutex_unlock(&rt->task_lock);
}

void weft__task_for_each(struct weft_runtime *rt, void (*fn)(struct weft_task *t, void *arg),
                         void *arg)
{
    /* Chunks are only ever prepended, and carving only moves task_bump
     * up within the newest: from this snapshot on, the walk needs no
     * lock. Structs carved later are tasks spawned after it began. */
    pthread_mutex_lock(&rt->task_lock);
    struct task_chunk *head = rt->task_chunks;
    struct weft_task *bump = rt->task_bump;
    pthread_mutex_unlock(&rt->task_lock);
    for (struct task_chunk *c = head; c; c = c->next) {
        struct weft_task *end = c == head ? bump : c->tasks + c->n;
        for (struct weft_task *t = c->tasks; t < end; t++) {
            if (!weft__task_tryref(t))
                continue;
            fn(t, arg);
            weft__task_unref(t);
        }
    }
}

/* Frees every task struct of rt; every task has ended and the workers
 * are stopped. */
void weft__task_memory_release(struct weft_runtime *rt)
{
    struct task_chunk *head = rt->task_chunks;
    while (rt->task_chunks) {
        struct task_chunk *c = rt->task_chunks;
        rt->task_chunks = c->next;
        /* A struct whose handle was never dropped still holds its name;
         * the others' are NULL. Only the newest chunk is partly carved. */
        struct weft_task *end = c == head ? rt->task_bump : c->tasks + c->n;
        /* Free structs are poisoned (ASan), and a mapping must not keep
         * its poison for whatever is mapped there next. */
#ifdef WEFT__ASAN
        ASAN_UNPOISON_MEMORY_REGION(c->tasks, c->n * sizeof *c->tasks);
#endif
        for (struct weft_task *t = c->tasks; t < end; t++)
            free(t->name);
        if (c->mapped)
            munmap(c, WEFT__TASK_BIG_CHUNK);
        else
            free(c);
    }
    rt->free_tasks = NULL;
    rt->task_bump = rt->task_bump_end = NULL;
    free(rt->quarantine);
    rt->quarantine = NULL;
    for (unsigned i = 0; i < rt->n_workers; i++) {
        struct worker *w = &rt->workers[i];
        w->free_tasks = w->spare_tasks = NULL;
        w->n_free_tasks = 0;
    }
}

