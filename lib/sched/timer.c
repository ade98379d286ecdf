/* SPDX-License-Identifier: MIT */
/* Per-worker timer heaps; see timer.h. A 4-ary heap halves the depth of a
 * binary one and keeps each node's children on one cache line. */
#include "internal.h"

#include "sched/timer.h"

int weft__timer_heap_init(struct timer_heap *h)
{
    h->slots = NULL;
    h->len = h->cap = 0;
    atomic_init(&h->next, INT64_MAX);
    int rc = pthread_mutex_init(&h->lock, NULL);
    return rc ? -rc : 0;
}

void weft__timer_heap_destroy(struct timer_heap *h)
{
    free(h->slots);
    h->slots = NULL;
    pthread_mutex_destroy(&h->lock);
}

static inline void place(struct timer_heap *h, uint32_t i, struct timer_slot sl)
{
    h->slots[i] = sl;
    sl.t->idx = i;
}

static void sift_up(struct timer_heap *h, uint32_t i)
{
    struct timer_slot sl = h->slots[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 4;
        if (h->slots[parent].deadline <= sl.deadline)
            break;
        place(h, i, h->slots[parent]);
        i = parent;
    }
    place(h, i, sl);
}

/* Returns the slot where the element of slot i came to rest. */
static uint32_t sift_down(struct timer_heap *h, uint32_t i)
{
    struct timer_slot sl = h->slots[i];
    for (;;) {
        uint32_t first = 4 * i + 1;
        if (first >= h->len)
            break;
        uint32_t best = first;
        uint32_t end = first + 4 < h->len ? first + 4 : h->len;
        for (uint32_t c = first + 1; c < end; c++)
            if (h->slots[c].deadline < h->slots[best].deadline)
                best = c;
        if (h->slots[best].deadline >= sl.deadline)
            break;
        place(h, i, h->slots[best]);
        i = best;
    }
    place(h, i, sl);
    return i;
}

static void update_next(struct timer_heap *h)
{
    atomic_store_explicit(&h->next, h->len ? h->slots[0].deadline : INT64_MAX,
                          memory_order_relaxed);
}

/* Removes slot i from the heap order; lock held. t->heap is left to the
 * caller: it says "armed or firing in h" until the fire callback is done. */
static void remove_at(struct timer_heap *h, uint32_t i)
{
    h->len--;
    if (i != h->len) {
        place(h, i, h->slots[h->len]);
        if (sift_down(h, i) == i)
            sift_up(h, i);
    }
}

int weft__timer_arm(struct timer_heap *h, struct timer *t, int64_t deadline)
{
    pthread_mutex_lock(&h->lock);
    if (h->len == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        struct timer_slot *s = realloc(h->slots, cap * sizeof *s);
        if (!s) {
            pthread_mutex_unlock(&h->lock);
            return -ENOMEM;
        }
        h->slots = s;
        h->cap = cap;
    }
    t->deadline = deadline;
    atomic_store_explicit(&t->heap, h, memory_order_relaxed);
    uint32_t i = h->len++;
    h->slots[i] = (struct timer_slot){deadline, t};
    sift_up(h, i);
    update_next(h);
    pthread_mutex_unlock(&h->lock);
    return 0;
}

void weft__timer_disarm(struct timer *t)
{
    /* t->heap only goes from h to NULL under h's lock, and a firing timer
     * keeps it until its callback has returned, so locking the heap we
     * read and re-checking is enough: either we remove t, or the lock
     * makes us wait for the fire in progress. Acquire pairs with the
     * release in weft__timer_fire_due: seeing NULL means the callback's
     * accesses (to the task that embeds t) are done before the task goes
     * on, and maybe frees itself. */
    struct timer_heap *h = atomic_load_explicit(&t->heap, memory_order_acquire);
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    if (atomic_load_explicit(&t->heap, memory_order_relaxed) == h) {
        remove_at(h, t->idx);
        atomic_store_explicit(&t->heap, NULL, memory_order_relaxed);
        update_next(h);
    }
    pthread_mutex_unlock(&h->lock);
}

unsigned weft__timer_fire_due(struct timer_heap *h, int64_t now, bool try,
                              void (*fire)(struct timer *t))
{
    if (weft__timer_next(h) > now)
        return 0;
    if (try) {
        if (pthread_mutex_trylock(&h->lock) != 0)
            return 0;
    } else {
        pthread_mutex_lock(&h->lock);
    }
    unsigned n = 0;
    while (h->len > 0 && h->slots[0].deadline <= now) {
        struct timer *t = h->slots[0].t;
        remove_at(h, 0);
        fire(t);
        /* Release: the callback's accesses to t's owner happen before a
         * disarm that sees NULL (its acquire load) lets the owner go on. */
        atomic_store_explicit(&t->heap, NULL, memory_order_release);
        n++;
    }
    update_next(h);
    pthread_mutex_unlock(&h->lock);
    return n;
}

uint32_t weft__timer_count(struct timer_heap *h)
{
    pthread_mutex_lock(&h->lock);
    uint32_t n = h->len;
    pthread_mutex_unlock(&h->lock);
    return n;
}
