/* SPDX-License-Identifier: MIT */
/* Per-worker hierarchical timing wheels; see timer.h.
 *
 * Invariants, with E = h->elapsed (a tick no later than the clock):
 * - a timer of tick `when` sits at the level of the highest 6-bit digit
 *   in which `when` and E differ (level 0 if none), in the slot of its
 *   digit there; deadlines already past sit in level 0's slot of E;
 *   differing above the wheel's 36 bits, in the far list;
 * - so every timer at level L is due after every timer below L, and the
 *   lowest occupied level holds the next expiry: level 0's slot is the
 *   tick itself, a higher level's is the start of the slot, when its
 *   timers are moved down (cascaded) relative to the new E; the far
 *   list's is the start of the next 2^36 ticks;
 * - E advances only in weft__timer_fire_due, to each expiry processed and
 *   then to now, never past an unprocessed expiry.
 * A slot array that cannot grow while timers cascade into it (no memory)
 * sends them to the spill list, due at once: the next pass fires them or
 * tries again. */
#include "internal.h"

#include <string.h>

#include "sched/timer.h"

#define SLOT_BITS 6
#define N_SLOTS WEFT__TIMER_SLOTS
#define LEVELS WEFT__TIMER_LEVELS
#define FAR_IDX (LEVELS * N_SLOTS)
#define SPILL_IDX (FAR_IDX + 1)
#define WHEEL_BITS (LEVELS * SLOT_BITS) /* 36: ticks one wheel spans */
#define PREFETCH_AHEAD 8                /* timers, when walking a slot */

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
    h->slots = calloc(LEVELS, sizeof *h->slots);
    if (!h->slots)
        return -ENOMEM;
    h->far = h->spill = NULL;
    h->elapsed = 0;
    h->len = 0;
    atomic_init(&h->next, INT64_MAX);
    spin_init(&h->lock);
    return 0;
}

void weft__timer_heap_destroy(struct timer_heap *h)
{
    if (!h->slots)
        return;
    for (unsigned l = 0; l < LEVELS; l++)
        for (unsigned s = 0; s < N_SLOTS; s++)
            free(h->slots[l][s].v);
    free(h->slots);
    h->slots = NULL;
}

static void list_push(struct timer **head, struct timer *t, uint32_t idx)
{
    t->idx = idx;
    t->prev = NULL;
    t->next = *head;
    if (*head)
        (*head)->prev = t;
    *head = t;
}

/* Places t relative to h->elapsed and sets *expiry to the tick at which
 * its slot is processed. Lock held. -ENOMEM if its slot cannot grow
 * (t is then nowhere). */
static int insert(struct timer_heap *h, struct timer *t, uint64_t *expiry)
{
    uint64_t e = h->elapsed;
    uint64_t when = tick_of(t->deadline);
    if (when < e)
        when = e;
    /* | (N_SLOTS - 1): a difference only in the lowest digit is level 0. */
    unsigned bit = 63u - (unsigned)__builtin_clzll((when ^ e) | (N_SLOTS - 1));
    unsigned level = bit / SLOT_BITS;
    if (level >= LEVELS) {
        list_push(&h->far, t, FAR_IDX);
        *expiry = ((e >> WHEEL_BITS) + 1) << WHEEL_BITS;
        return 0;
    }
    unsigned shift = level * SLOT_BITS;
    unsigned slot = (unsigned)(when >> shift) & (N_SLOTS - 1);
    struct timer_slot *sl = &h->slots[level][slot];
    if (WEFT__UNLIKELY(sl->len == sl->cap)) {
        uint32_t cap = sl->cap ? sl->cap * 2 : 16;
        struct timer **v = realloc(sl->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        sl->v = v;
        sl->cap = cap;
    }
    t->idx = level * N_SLOTS + slot;
    t->pos = sl->len;
    sl->v[sl->len++] = t;
    h->occupied[level] |= UINT64_C(1) << slot;
    *expiry = level == 0 ? when : when & ~((UINT64_C(1) << shift) - 1);
    return 0;
}

/* Takes t out of wherever it is armed; true if that emptied its slot or
 * list (the next expiry may have moved). Lock held. */
static bool remove_timer(struct timer_heap *h, struct timer *t)
{
    if (t->idx >= FAR_IDX) {
        if (t->next)
            t->next->prev = t->prev;
        if (t->prev)
            t->prev->next = t->next;
        else if (t->idx == FAR_IDX)
            h->far = t->next;
        else
            h->spill = t->next;
        return true;
    }
    struct timer_slot *sl = &h->slots[t->idx / N_SLOTS][t->idx % N_SLOTS];
    struct timer *last = sl->v[--sl->len];
    if (last != t) {
        sl->v[t->pos] = last;
        last->pos = t->pos;
    }
    if (sl->len)
        return false;
    h->occupied[t->idx / N_SLOTS] &= ~(UINT64_C(1) << (t->idx % N_SLOTS));
    return true;
}

/* The next expiry: its level (LEVELS: the far list, LEVELS + 1: the
 * spill list, unless skip_spill), slot and tick. False if nothing is
 * armed. Lock held. */
static bool next_expiry(const struct timer_heap *h, bool skip_spill, unsigned *level,
                        unsigned *slot, uint64_t *tick)
{
    uint64_t e = h->elapsed;
    if (WEFT__UNLIKELY(h->spill) && !skip_spill) {
        *level = LEVELS + 1;
        *slot = 0;
        *tick = e;
        return true;
    }
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
    if (h->far) {
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
    int64_t next = next_expiry(h, false, &level, &slot, &tick) ? ns_of(tick) : INT64_MAX;
    atomic_store_explicit(&h->next, next, memory_order_relaxed);
}

int weft__timer_arm(struct timer_heap *h, struct timer *t, int64_t deadline)
{
    spin_lock(&h->lock);
    t->deadline = deadline;
    uint64_t tick;
    if (insert(h, t, &tick) < 0) {
        spin_unlock(&h->lock);
        return -ENOMEM;
    }
    atomic_store_explicit(&t->heap, h, memory_order_relaxed);
    h->len++;
    /* The levels are ordered (see the top), so the new expiry is the next
     * one iff it comes before the old. */
    int64_t expiry = ns_of(tick);
    if (expiry < atomic_load_explicit(&h->next, memory_order_relaxed))
        atomic_store_explicit(&h->next, expiry, memory_order_relaxed);
    spin_unlock(&h->lock);
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
    spin_lock(&h->lock);
    if (atomic_load_explicit(&t->heap, memory_order_relaxed) == h) {
        /* A slot that keeps timers keeps its expiry: next stands. */
        if (remove_timer(h, t))
            update_next(h);
        h->len--;
        atomic_store_explicit(&t->heap, NULL, memory_order_relaxed);
    }
    spin_unlock(&h->lock);
}

static inline void fire_one(struct timer_heap *h, struct timer *t,
                            void (*fire)(struct timer *t, void *ctx), void *ctx)
{
    h->len--;
    fire(t, ctx);
    /* Release: the callback's accesses to t's owner happen before a
     * disarm that sees NULL (its acquire load) lets the owner go on. */
    atomic_store_explicit(&t->heap, NULL, memory_order_release);
}

/* Re-places t after its slot was processed; no memory: the spill list. */
static inline void reinsert(struct timer_heap *h, struct timer *t)
{
    uint64_t tick;
    if (WEFT__UNLIKELY(insert(h, t, &tick) < 0))
        list_push(&h->spill, t, SPILL_IDX);
}

unsigned weft__timer_fire_due(struct timer_heap *h, int64_t now, bool try,
                              void (*fire)(struct timer *t, void *ctx), void *ctx)
{
    if (weft__timer_next(h) > now)
        return 0;
    if (try) {
        if (!spin_trylock(&h->lock))
            return 0;
    } else {
        spin_lock(&h->lock);
    }
    uint64_t now_tick = now > 0 ? (uint64_t)now >> WEFT__TIMER_TICK_SHIFT : 0;
    unsigned n = 0, level, slot;
    uint64_t tick;
    bool spilled = false; /* the spill list is tried once per pass */
    while (next_expiry(h, spilled, &level, &slot, &tick) && tick <= now_tick) {
        h->elapsed = tick;
        if (level >= LEVELS) {
            /* The far list at a 2^36-tick boundary, or the spill list. */
            struct timer *list;
            if (level == LEVELS) {
                list = h->far;
                h->far = NULL;
            } else {
                list = h->spill;
                h->spill = NULL;
                spilled = true;
            }
            while (list) {
                struct timer *t = list;
                list = t->next;
                if (tick_of(t->deadline) <= now_tick) {
                    fire_one(h, t, fire, ctx);
                    n++;
                } else {
                    reinsert(h, t);
                }
            }
            continue;
        }
        /* Take the slot's array whole: cascading puts timers in lower
         * levels only, firing adds none. */
        struct timer_slot *sl = &h->slots[level][slot];
        struct timer **v = sl->v;
        uint32_t len = sl->len;
        sl->len = 0;
        h->occupied[level] &= ~(UINT64_C(1) << slot);
        if (level > 0) {
            for (uint32_t i = 0; i < len; i++) {
                if (i + PREFETCH_AHEAD < len)
                    __builtin_prefetch(v[i + PREFETCH_AHEAD], 1);
                reinsert(h, v[i]); /* down, relative to the new elapsed */
            }
            continue;
        }
        /* Due: each timer's memory (on its task's stack) and what its
         * callback wakes are cold; ask for both ahead. In arming order. */
        for (uint32_t i = 0; i < len; i++) {
            if (i + PREFETCH_AHEAD < len)
                __builtin_prefetch(v[i + PREFETCH_AHEAD], 1);
            if (i + PREFETCH_AHEAD / 2 < len)
                __builtin_prefetch(v[i + PREFETCH_AHEAD / 2]->arg, 1);
            fire_one(h, v[i], fire, ctx);
        }
        n += len;
    }
    if (now_tick > h->elapsed)
        h->elapsed = now_tick;
    update_next(h);
    spin_unlock(&h->lock);
    return n;
}

uint32_t weft__timer_count(struct timer_heap *h)
{
    spin_lock(&h->lock);
    uint32_t n = h->len;
    spin_unlock(&h->lock);
    return n;
}
