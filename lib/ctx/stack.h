/* SPDX-License-Identifier: MIT */
/* Task stacks: carved from large anonymous mappings, committed lazily by the
 * kernel, each with a guard page below it, pooled per runtime and cached
 * per worker. */
#ifndef WEFT_CTX_STACK_H
#define WEFT_CTX_STACK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"

/* The header of a stack lives in the top bytes of its own slot, so a
 * stack costs no allocation besides its pages and a parked task touches
 * one page. */
struct stack {
    struct stack *next; /* free-list link (owned by whoever holds it) */
    char *lo;           /* lowest usable byte, just above the guard page */
    size_t size;        /* usable bytes from lo up to this header */
    void *fiber;        /* TSan fiber of the task running on it, or NULL */
    unsigned vg_id;     /* valgrind stack id */
    bool guarded;       /* has a guard page below lo */
};

struct region;

struct stack_pool {
    pthread_mutex_t lock;     /* guards everything below */
    struct stack *free;       /* returned stacks */
    size_t n_free;
    struct region *regions;   /* every mapping, unmapped at destroy */
    char *bump;               /* next uncarved slot of the newest region */
    char *bump_end;
    size_t slot_size;         /* guard page + usable stack, page multiple */
    size_t page;
    int guard_mode;           /* see stack.c */
    int guard_pidfd;          /* pidfd for batched guard installs, or
                                 PIDFD_SELF; -1 none (see stack.c) */
    int guard_pid;            /* process guard_pidfd names (fork check) */
    bool guard_batch_off;     /* the kernel refused a batch */
    unsigned n_mprotect_guards;
    size_t n_stacks;          /* ever carved */
};

/* A worker's private cache: no lock. */
#define WEFT__STACK_CACHE 64
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
/* True when addr lies in the guard page of one of p's stacks; *s_out then
 * names that stack. Async-signal-safe enough for a SIGSEGV handler (reads
 * without locking; regions are only added). */
bool weft__stack_guard_hit(struct stack_pool *p, const void *addr, size_t *stack_size);

#endif /* WEFT_CTX_STACK_H */
