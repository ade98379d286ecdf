/* SPDX-License-Identifier: MIT */
/* Task stacks: carved from large anonymous mappings, committed lazily by the
 * kernel, each with a guard gap below it, pooled per runtime and cached
 * per worker; the pages of stacks that sit unused are handed back to the
 * kernel by idle workers (weft__stack_scavenge). */
#ifndef WEFT_CTX_STACK_H
#define WEFT_CTX_STACK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

/* The header of a stack. Headers live in an array beside their region's
 * mapping, not in the stack memory: an overflow runs into the memory
 * below a stack (another stack's top), and must not reach anything that
 * the library needs to report it or to go on. */
struct stack {
    struct stack *next; /* free-list link (owned by whoever holds it) */
    char *lo;           /* lowest usable byte, just above the guard gap */
    size_t size;        /* usable bytes from lo up to the slot's end */
    void *fiber;        /* TSan fiber of the task running on it, or NULL */
    void *asan_fake;    /* ASan fake-stack save of the context on it */
    unsigned vg_id;     /* valgrind stack id */
    bool guarded;       /* the guard gap below lo faults */
    bool clean;         /* its pages were handed back (scavenged) */
};

struct region;

struct stack_pool {
    /* Read at every switch away from a task (weft__stack_any_unguarded):
     * alone on its cache line, away from the lock and lists below (that
     * workers write when they trade stacks) and from the runtime's
     * neighbouring fields. Added to (relaxed) as stacks are carved, read
     * relaxed: while 0, the canary check costs one load. */
    char pad_before_[64];
    _Atomic size_t n_unguarded; /* stacks ever carved without a guard */
    char pad_after_[64];
    pthread_mutex_t lock;     /* guards everything below but the atomics */
    struct stack *free;       /* returned stacks, pages still committed */
    _Atomic size_t n_free;    /* written under lock; read unlocked as a hint */
    struct stack *clean;      /* returned stacks whose pages were scavenged */
    size_t n_clean;
    struct region *regions;   /* every mapping, unmapped at destroy */
    struct region *bump_region; /* the newest region, carved from... */
    unsigned bump_next;         /* ...at this slot */
    size_t slot_size;         /* guard gap + usable stack, page multiple */
    size_t guard_size;        /* bytes of the guard gap */
    size_t page;
    int guard_mode;           /* see stack.c */
    int guard_pidfd;          /* pidfd for batched guard installs, or
                                 PIDFD_SELF; -1 none (see stack.c) */
    int guard_pid;            /* process guard_pidfd names (fork check) */
    bool guard_batch_off;     /* the kernel refused a batch */
    unsigned n_mprotect_guards;
    unsigned fresh_batch;     /* new slots per refill, at most (stack.c) */
    size_t n_stacks;          /* ever carved */
};

/* New slots in one refill span at most this much address space: their
 * guards go in (one page-table walk) just before their pages are first
 * touched. Installing guard markers across more than two page-table
 * pages ahead of the touches made every first access to those stacks
 * afterwards cost about 5 us on the KVM guests we measure on (no fault
 * in the guest: 1,000 parked tasks' stacks read once took 5 ms instead
 * of 40 us; `timers` took 6 % longer, `wait_any` by 1,000 tasks saw
 * the end 5 ms late instead of 1 ms); within one 2 MiB window it costs
 * nothing. */
#define WEFT__FRESH_SPAN ((size_t)2 << 20)

/* A worker's private cache: no lock. */
#define WEFT__STACK_CACHE 64
/* Stacks a worker's cache keeps committed when it scavenges. */
#define WEFT__STACK_RESERVE 8
struct stack_cache {
    unsigned n;
    struct stack *items[WEFT__STACK_CACHE];
};

/* stack_size is the usable size wanted (rounded up to pages). Returns 0 or
 * -ENOMEM / -EINVAL. */
WEFT__MUST_CHECK int weft__stack_pool_init(struct stack_pool *p, size_t stack_size);
/* Unmaps every stack; none may be in use. */
void weft__stack_pool_destroy(struct stack_pool *p);
/* A stack from the cache, refilled from the pool; NULL when out of memory. */
struct stack *weft__stack_get(struct stack_pool *p, struct stack_cache *c);
/* Returns s to the cache (overflow goes back to the pool). */
void weft__stack_put(struct stack_pool *p, struct stack_cache *c, struct stack *s);
/* Moves every cached stack back to the pool. */
void weft__stack_cache_drain(struct stack_pool *p, struct stack_cache *c);

/* Whether weft__stack_scavenge would have anything to do for a worker
 * with cache c: stacks beyond the reserve in c, or returned stacks in the
 * pool whose pages are still committed. A hint (unlocked). */
bool weft__stack_scavenge_pending(struct stack_pool *p, const struct stack_cache *c);
/* Hands back to the kernel (MADV_DONTNEED) the pages of c's stacks beyond
 * WEFT__STACK_RESERVE and of up to max returned stacks of the pool; they
 * stay carved, for reuse. Called by an idle worker, owner of c, once it
 * has slept WEFT__SCAVENGE_NS with nothing to do, in slices of
 * WEFT__SCAVENGE_SLICE (sched/worker.c). Returns the number of stacks
 * scavenged. Go's scavenger is the model: memory comes back after a
 * burst, while a busy runtime keeps its warm stacks. */
size_t weft__stack_scavenge(struct stack_pool *p, struct stack_cache *c, size_t max);
#define WEFT__SCAVENGE_NS INT64_C(1000000000) /* 1 s */
#define WEFT__SCAVENGE_SLICE 1024

/* True when addr lies in the guard gap of one of p's stacks; *stack_size
 * then receives that stack's usable size. Async-signal-safe enough for a
 * SIGSEGV handler (reads without locking; regions are only added). */
bool weft__stack_guard_hit(struct stack_pool *p, const void *addr, size_t *stack_size);

/* The canary written at the lowest usable bytes of a stack that has no
 * guard; it differs per stack. */
static inline uint64_t weft__stack_canary(const struct stack *s)
{
    return UINT64_C(0x5eb7a11c0ffee77d) ^ (uint64_t)(uintptr_t)s->lo;
}

/* Reports an overflow of s by the task named (id, name) and aborts:
 * the canary at the bottom of an unguarded stack was overwritten, or the
 * stack pointer sp (0 if unknown) was found below it. guard.c. */
__attribute__((noreturn)) void weft__stack_overflow_abort(uint64_t id, const char *name,
                                               const struct stack *s, const char *how);

/* Stacks without a guard page (old kernels beyond the mprotect budget,
 * or when guard installation failed) carry a canary at their bottom,
 * checked at every switch away from a task: an overflow that reached it,
 * or a stack pointer below it, is reported by name then instead of
 * corrupting the stack below silently. This is the cheap part of that
 * check, one relaxed load: whether p has any such stack. */
static inline bool weft__stack_any_unguarded(struct stack_pool *p)
{
    return atomic_load_explicit(&p->n_unguarded, memory_order_relaxed) != 0;
}

/* The rest: whether s, the stack of the task now switching away, sp an
 * address in the switching frame, has overflowed. */
static inline bool weft__stack_overflowed(const struct stack *s, const void *sp)
{
    if (s->guarded)
        return false;
    return (const char *)sp < s->lo + 16 ||
           *(const volatile uint64_t *)(const void *)s->lo != weft__stack_canary(s);
}

#endif /* WEFT_CTX_STACK_H */
