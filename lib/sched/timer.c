/* SPDX-License-Identifier: MIT */
/* Per-worker hierarchical timing wheels; see timer.h.
 *
 * Invariants, with E = h->elapsed (a tick no later than the clock):
 * - a timer of tick `when` sits at the level of the highest 6-bit digit
 *   in which `when` and E differ (level 0 if none), in the slot of its
 *   digit there; deadlines already past sit in level 0's slot of E;
 * - so every timer at level L is due after every timer below L, and the
 *   lowest occupied level holds the next expiry: level 0's slot is the
 *   tick itself, a higher level's is the start of the slot, when its
 *   timers are moved down (cascaded) relative to the new E;
 * - E advances only in weft__timer_fire_due, to each expiry processed and
 *   then to now, never past an unprocessed expiry. */
#include "internal.h"

#include <string.h>

#include "sched/timer.h"

#define SLOT_BITS 6
#define N_SLOTS WEFT__TIMER_SLOTS
#define LEVELS WEFT__TIMER_LEVELS
#define OVERFLOW_IDX (LEVELS * N_SLOTS)
#define WHEEL_BITS (LEVELS * SLOT_BITS) /* 36: ticks one wheel spans */

/* The first tick boundary at or after deadline (ns). */
static inline uint64_t tick_of(int64_t deadline)
{
    if (deadline <= 0)
        return 0;
    return ((uint64_t)deadline + ((UINT64_C(1) << WEFT__TIMER_TICK_SHIFT) - 1)) >>
           WEFT__TIMER_TICK_SHIFT;
}

static inline int64_t ns_of(uint64_t tick)
{
    if (tick >= (uint64_t)INT64_MAX >> WEFT__TIMER_TICK_SHIFT)
        return INT64_MAX - 1; /* far off, but armed: not "none" */
    return (int64_t)(tick << WEFT__TIMER_TICK_SHIFT);
}

int weft__timer_heap_init(struct timer_heap *h)
{
    memset(h->occupied, 0, sizeof h->occupied);
    memset(h->slots, 0, sizeof h->slots);
    h->overflow = NULL;
    h->elapsed = 0;
    h->len = 0;
    atomic_init(&h->next, INT64_MAX);
    int rc = pthread_mutex_init(&h->lock, NULL);
    return rc ? -rc : 0;
}

void weft__timer_heap_destroy(struct timer_heap *h) { pthread_mutex_destroy(&h->lock); }

static inline struct timer **list_of(struct timer_heap *h, uint32_t idx)
{
    return idx == OVERFLOW_IDX ? &h->overflow : &h->slots[idx / N_SLOTS][idx % N_SLOTS];
}

/* Links t into its place relative to h->elapsed; returns its expiry tick
 * (when its slot is processed). Lock held. */
static uint64_t insert(struct timer_heap *h, struct timer *t)
{
    uint64_t e = h->elapsed;
    uint64_t when = tick_of(t->deadline);
    if (when < e)
        when = e;
    /* | (N_SLOTS - 1): a difference only in the lowest digit is level 0. */
    unsigned bit = 63u - (unsigned)__builtin_clzll((when ^ e) | (N_SLOTS - 1));
    unsigned level = bit / SLOT_BITS;
    uint64_t expiry;
    struct timer **head;
    if (level >= LEVELS) {
        t->idx = OVERFLOW_IDX;
        head = &h->overflow;
        expiry = ((e >> WHEEL_BITS) + 1) << WHEEL_BITS;
    } else {
        unsigned shift = level * SLOT_BITS;
        unsigned slot = (unsigned)(when >> shift) & (N_SLOTS - 1);
        t->idx = level * N_SLOTS + slot;
        head = &h->slots[level][slot];
        h->occupied[level] |= UINT64_C(1) << slot;
        expiry = level == 0 ? when : when & ~((UINT64_C(1) << shift) - 1);
    }
    t->prev = NULL;
    t->next = *head;
    if (*head)
        (*head)->prev = t;
    *head = t;
    return expiry;
}

static void unlink_timer(struct timer_heap *h, struct timer *t)
{
    if (t->next)
        t->next->prev = t->prev;
    if (t->prev) {
        t->prev->next = t->next;
    } else {
        struct timer **head = list_of(h, t->idx);
        *head = t->next;
        if (!t->next && t->idx != OVERFLOW_IDX)
            h->occupied[t->idx / N_SLOTS] &= ~(UINT64_C(1) << (t->idx % N_SLOTS));
    }
}

/* The next expiry: its level (LEVELS: the overflow list), slot and tick.
 * False if nothing is armed. Lock held. */
static bool next_expiry(const struct timer_heap *h, unsigned *level, unsigned *slot,
                        uint64_t *tick)
{
    uint64_t e = h->elapsed;
    for (unsigned l = 0; l < LEVELS; l++) {
        uint64_t occ = h->occupied[l];
        if (!occ)
            continue;
        unsigned shift = l * SLOT_BITS;
        unsigned now_slot = (unsigned)(e >> shift) & (N_SLOTS - 1);
        /* Rotate so that the current slot is bit 0: the first set bit is
         * the next occupied slot, wrapping into the next rotation. */
        uint64_t rot = now_slot ? (occ >> now_slot) | (occ << (N_SLOTS - now_slot)) : occ;
        unsigned s = (now_slot + (unsigned)__builtin_ctzll(rot)) & (N_SLOTS - 1);
        uint64_t level_span = UINT64_C(1) << (shift + SLOT_BITS);
        uint64_t t = (e & ~(level_span - 1)) + ((uint64_t)s << shift);
        if (s < now_slot)
            t += level_span;
        *level = l;
        *slot = s;
        *tick = t;
        return true;
    }
    if (h->overflow) {
        *level = LEVELS;
        *slot = 0;
        *tick = ((e >> WHEEL_BITS) + 1) << WHEEL_BITS;
        return true;
    }
    return false;
}

static void update_next(struct timer_heap *h)
{
    unsigned level, slot;
    uint64_t tick;
    int64_t next = next_expiry(h, &level, &slot, &tick) ? ns_of(tick) : INT64_MAX;
    atomic_store_explicit(&h->next, next, memory_order_relaxed);
}

int weft__timer_arm(struct timer_heap *h, struct timer *t, int64_t deadline)
{
    pthread_mutex_lock(&h->lock);
    t->deadline = deadline;
    atomic_store_explicit(&t->heap, h, memory_order_relaxed);
    int64_t expiry = ns_of(insert(h, t));
    h->len++;
    /* The levels are ordered (see the top), so the new expiry is the next
     * one iff it comes before the old. */
    if (expiry < atomic_load_explicit(&h->next, memory_order_relaxed))
        atomic_store_explicit(&h->next, expiry, memory_order_relaxed);
    pthread_mutex_unlock(&h->lock);
    return 0;
}

void weft__timer_disarm(struct timer *t)
{
    /* t->heap only goes from h to NULL under h's lock, and a firing timer
     * keeps it until its callback has returned, so locking the wheel we
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
        unlink_timer(h, t);
        h->len--;
        atomic_store_explicit(&t->heap, NULL, memory_order_relaxed);
        update_next(h);
    }
    pthread_mutex_unlock(&h->lock);
}

unsigned weft__timer_fire_due(struct timer_heap *h, int64_t now, bool try,
                              void (*fire)(struct timer *t, void *ctx), void *ctx)
{
    if (weft__timer_next(h) > now)
        return 0;
    if (try) {
        if (pthread_mutex_trylock(&h->lock) != 0)
            return 0;
    } else {
        pthread_mutex_lock(&h->lock);
    }
    uint64_t now_tick = now > 0 ? (uint64_t)now >> WEFT__TIMER_TICK_SHIFT : 0;
    unsigned n = 0, level, slot;
    uint64_t tick;
    while (next_expiry(h, &level, &slot, &tick) && tick <= now_tick) {
        struct timer *list;
        if (level == LEVELS) {
            list = h->overflow;
            h->overflow = NULL;
        } else {
            list = h->slots[level][slot];
            h->slots[level][slot] = NULL;
            h->occupied[level] &= ~(UINT64_C(1) << slot);
        }
        h->elapsed = tick;
        if (level == 0) {
            /* Slots are pushed at the head: reversed, timers of one tick
             * fire in the order they were armed there. */
            struct timer *rev = NULL;
            while (list) {
                struct timer *nx = list->next;
                list->next = rev;
                rev = list;
                list = nx;
            }
            list = rev;
        }
        while (list) {
            struct timer *t = list;
            list = t->next; /* before t's owner may go on */
            if (level > 0) {
                insert(h, t); /* down, relative to the new elapsed */
                continue;
            }
            h->len--;
            fire(t, ctx);
            /* Release: the callback's accesses to t's owner happen before
             * a disarm that sees NULL (its acquire load) lets the owner go
             * on. */
            atomic_store_explicit(&t->heap, NULL, memory_order_release);
            n++;
        }
    }
    if (now_tick > h->elapsed)
        h->elapsed = now_tick;
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
