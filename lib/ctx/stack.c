/* SPDX-License-Identifier: MIT */
/* Stack pool. Slots are carved from mappings of up to WEFT__REGION_SLOTS
 * stacks so that a million stacks need tens of thousands of mappings at
 * most, not a million (vm.max_map_count is 65530 on stock kernels); when
 * such a mapping cannot be had (ulimit -v, a large stack_size), smaller
 * ones are tried, down to a single stack. Each slot is a guard gap of
 * WEFT__GUARD_GAP bytes below the stack: a frame smaller than the gap that
 * overflows faults there even when the code was built without
 * -fstack-clash-protection. Guards: with MADV_GUARD_INSTALL (Linux 6.13+)
 * they cost no extra mapping and every stack gets one; otherwise mprotect()
 * splits the mapping, so only the first WEFT__MPROTECT_GUARDS stacks are
 * guarded. A stack without a guard gets a canary at its bottom instead,
 * checked at every switch away from its task (stack.h). The headers live
 * in an array beside the mapping, out of reach of an overflow. */
#include "internal.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ctx/checker.h"
#include "ctx/stack.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
/* The calling process, for pidfd calls (Linux 6.15+; older kernels say
 * EBADF and we open a pidfd instead). */
#define WEFT__PIDFD_SELF_PROCESS (-10001) /* PIDFD_SELF_THREAD_GROUP */

#define WEFT__REGION_SLOTS 64
#define WEFT__MPROTECT_GUARDS 16384
#define WEFT__REFILL 16
/* The guard gap: address space only (never committed). 64 KiB covers
 * the frames of ordinary code (a local buffer of up to ~60 KiB); larger
 * frames need -fstack-clash-protection, whose probes touch every page. */
#define WEFT__GUARD_GAP ((size_t)64 * 1024)

enum { GUARD_UNKNOWN, GUARD_MADVISE, GUARD_MPROTECT };

struct region {
    struct region *next;
    char *base;
    size_t len;
    unsigned n;      /* slots */
    unsigned carved; /* slots carved so far; headers beyond are unused */
    struct stack stacks[]; /* one header per slot */
};

int weft__stack_pool_init(struct stack_pool *p, size_t stack_size)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        page = 4096;
    p->page = (size_t)page;
    size_t usable = (stack_size + p->page - 1) & ~(p->page - 1);
    p->guard_size = WEFT__GUARD_GAP > p->page ? (WEFT__GUARD_GAP + p->page - 1) & ~(p->page - 1)
                                              : p->page;
    p->slot_size = usable + p->guard_size;
    p->free = NULL;
    atomic_init(&p->n_free, 0);
    p->clean = NULL;
    p->n_clean = 0;
    p->regions = NULL;
    p->bump_region = NULL;
    p->bump_next = 0;
    p->guard_mode = GUARD_UNKNOWN;
    p->guard_pidfd = -1;
    p->guard_pid = 0;
    p->guard_batch_off = false;
    p->n_mprotect_guards = 0;
    size_t per_span = WEFT__FRESH_SPAN / p->slot_size;
    p->fresh_batch = per_span < 1 ? 1u : per_span > WEFT__REFILL ? WEFT__REFILL : (unsigned)per_span;
    atomic_init(&p->n_unguarded, 0);
    p->n_stacks = 0;
    int rc = pthread_mutex_init(&p->lock, NULL);
    return rc ? -rc : 0;
}

void weft__stack_pool_destroy(struct stack_pool *p)
{
    for (struct region *r = p->regions; r;) {
        struct region *next = r->next;
        for (unsigned i = 0; i < r->carved; i++) {
            weft__checker_stack_deregister(r->stacks[i].vg_id);
            weft__checker_fiber_free(r->stacks[i].fiber);
        }
        /* ASan keeps shadow across munmap: the poisoning of frames that
         * never returned (every task's last switch away; an abandoned
         * task's, even in a plain build under an ASan program) would land
         * on whatever is mapped here next. */
        weft__checker_stack_unmap(r->base, r->len);
        munmap(r->base, r->len);
        free(r);
        r = next;
    }
    p->regions = NULL;
    if (p->guard_pidfd >= 0)
        close(p->guard_pidfd);
    pthread_mutex_destroy(&p->lock);
}

/* Guard pages are installed outside the pool lock: the system call and
 * the page-table work are the costly part of a new stack (about as much as
 * the fault on its first page), and workers carving at once should not
 * queue for them. With MADV_GUARD_INSTALL a refill's guards go in one
 * process_madvise(2) call on our own process where the kernel takes that
 * advice there (probed once; it saves about a third of the cost), else one
 * madvise each; with mprotect one call each, up to the limit above. Sets
 * guarded[i]. */
static void guard_slots(struct stack_pool *p, char *const slots[], unsigned n, int mode,
                        unsigned n_mprotect, bool guarded[])
{
    unsigned done = 0;
    if (mode == GUARD_MADVISE) {
#if defined(SYS_process_madvise)
        int pidfd = p->guard_pidfd;
        /* A real pidfd names the process that opened it: after a fork it
         * would advise the parent's memory. */
        if (pidfd >= 0 && p->guard_pid != getpid())
            pidfd = -1;
        if (pidfd != -1 && n > 1 && !__atomic_load_n(&p->guard_batch_off, __ATOMIC_RELAXED)) {
            struct iovec iov[WEFT__REFILL];
            for (unsigned i = 0; i < n; i++)
                iov[i] = (struct iovec){slots[i], p->guard_size};
            long rc = syscall(SYS_process_madvise, pidfd, iov, (size_t)n, MADV_GUARD_INSTALL, 0u);
            if (rc > 0) {
                done = (unsigned)((size_t)rc / p->guard_size); /* whole iovecs, in order */
            } else if (rc < 0 && errno != EAGAIN && errno != EINTR && errno != ENOMEM) {
                /* The kernel refuses the batch: stop trying. Relaxed: it
                 * only ever goes to true, a stale read costs one call. */
                __atomic_store_n(&p->guard_batch_off, true, __ATOMIC_RELAXED);
            }
        }
#endif
        for (unsigned i = 0; i < n; i++)
            guarded[i] = i < done || madvise(slots[i], p->guard_size, MADV_GUARD_INSTALL) == 0;
        return;
    }
    for (unsigned i = 0; i < n; i++)
        guarded[i] = i < n_mprotect && mprotect(slots[i], p->guard_size, PROT_NONE) == 0;
}

/* Which kind of guard pages this kernel offers; lock held, decided once
 * on a slot that is not handed out yet (a guard installed there stays). */
static int guard_mode_locked(struct stack_pool *p, char *slot)
{
    if (p->guard_mode != GUARD_UNKNOWN)
        return p->guard_mode;
    if (madvise(slot, p->guard_size, MADV_GUARD_INSTALL) == 0) {
        p->guard_mode = GUARD_MADVISE;
#if defined(SYS_process_madvise) && defined(SYS_pidfd_open)
        /* Probe batching on this slot (installing a guard twice is fine).
         * The pool lock publishes the result. A real fd is closed at
         * destroy. */
        struct iovec iov = {slot, p->guard_size};
        if (syscall(SYS_process_madvise, WEFT__PIDFD_SELF_PROCESS, &iov, (size_t)1,
                    MADV_GUARD_INSTALL, 0u) == (long)p->guard_size) {
            p->guard_pidfd = WEFT__PIDFD_SELF_PROCESS;
        } else {
            p->guard_pid = getpid();
            p->guard_pidfd = (int)syscall(SYS_pidfd_open, p->guard_pid, 0u);
            if (p->guard_pidfd >= 0)
                (void)fcntl(p->guard_pidfd, F_SETFD, FD_CLOEXEC);
            else
                p->guard_pidfd = -1;
        }
#endif
    } else {
        p->guard_mode = GUARD_MPROTECT;
    }
    return p->guard_mode;
}

/* A new region of as many slots as can be mapped, up to
 * WEFT__REGION_SLOTS; lock held. NULL when not even one slot can be had. */
static struct region *region_new_locked(struct stack_pool *p)
{
    for (unsigned n = WEFT__REGION_SLOTS; n >= 1; n /= 2) {
        size_t len = p->slot_size * n;
        char *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (base == MAP_FAILED)
            continue; /* address space short: a smaller region may fit */
        struct region *r = malloc(sizeof *r + n * sizeof r->stacks[0]);
        if (!r) {
            munmap(base, len);
            return NULL;
        }
        r->base = base;
        r->len = len;
        r->n = n;
        r->carved = 0;
        r->next = p->regions;
        return r;
    }
    return NULL;
}

/* Reserves one new slot: its header (uninitialised) and, in *slot, the
 * slot's address; lock held. NULL when out of memory. The slot's pages
 * are not touched here. */
static struct stack *reserve_locked(struct stack_pool *p, char **slot)
{
    struct region *r = p->bump_region;
    if (!r || p->bump_next == r->n) {
        if (!(r = region_new_locked(p)))
            return NULL;
        /* Release: publishes r's fields to weft__stack_guard_hit(), which
         * walks the list without the lock (acquire load there). */
        __atomic_store_n(&p->regions, r, __ATOMIC_RELEASE);
        p->bump_region = r;
        p->bump_next = 0;
    }
    unsigned i = p->bump_next++;
    r->carved = p->bump_next;
    p->n_stacks++;
    *slot = r->base + (size_t)i * p->slot_size;
    return &r->stacks[i];
}

/* Writes the canary of an unguarded stack (the first touch of its bottom
 * page). */
static void write_canary(struct stack *s)
{
#ifdef WEFT__ASAN
    ASAN_UNPOISON_MEMORY_REGION(s->lo, sizeof(uint64_t));
#endif
    *(volatile uint64_t *)(void *)s->lo = weft__stack_canary(s);
}

/* Turns a reserved, guarded (or not) slot into a stack. No lock. */
static struct stack *carve(struct stack_pool *p, struct stack *s, char *slot, bool guarded)
{
    s->next = NULL;
    s->lo = slot + p->guard_size;
    s->size = p->slot_size - p->guard_size;
    /* TSan: the fiber of whatever task runs on s (NULL otherwise). Made
     * here, not at a task's first run: headers share cache lines across
     * workers, and only carving may write them outside the pool's lists. */
    s->fiber = weft__checker_fiber_new();
    s->asan_fake = NULL;
    s->guarded = guarded;
    if (!guarded) {
        /* Relaxed: whoever runs a task on s got s through a queue or the
         * pool lock, which orders this before its check (stack.h). */
        atomic_fetch_add_explicit(&p->n_unguarded, 1, memory_order_relaxed);
        write_canary(s);
    }
    s->vg_id = weft__checker_stack_register(s->lo, s->lo + s->size);
    return s;
}

struct stack *weft__stack_get(struct stack_pool *p, struct stack_cache *c)
{
    if (WEFT__LIKELY(c->n > 0))
        return c->items[--c->n];
    char *fresh[WEFT__REFILL];
    struct stack *fresh_s[WEFT__REFILL];
    struct stack *cleaned = NULL;
    unsigned n_fresh = 0, n_mprotect = 0;
    int mode = GUARD_UNKNOWN;
    pthread_mutex_lock(&p->lock);
    while (c->n + n_fresh < WEFT__REFILL) {
        /* Warm stacks first, then scavenged ones, then new slots. */
        struct stack *s = p->free;
        if (s) {
            p->free = s->next;
            atomic_store_explicit(&p->n_free, atomic_load_explicit(&p->n_free, memory_order_relaxed) - 1,
                                  memory_order_relaxed);
            c->items[c->n++] = s;
            continue;
        }
        if ((s = p->clean)) {
            p->clean = s->next;
            p->n_clean--;
            s->next = cleaned;
            cleaned = s;
            c->items[c->n++] = s;
            continue;
        }
        char *slot;
        if (n_fresh == p->fresh_batch || !(s = reserve_locked(p, &slot)))
            break;
        fresh_s[n_fresh] = s;
        fresh[n_fresh++] = slot;
    }
    if (n_fresh) {
        mode = guard_mode_locked(p, fresh[0]);
        /* mprotect splits mappings: only so many of those (see above). */
        if (mode == GUARD_MPROTECT) {
            unsigned room = WEFT__MPROTECT_GUARDS - p->n_mprotect_guards;
            n_mprotect = n_fresh < room ? n_fresh : room;
            p->n_mprotect_guards += n_mprotect;
        }
    }
    pthread_mutex_unlock(&p->lock);
    /* A scavenged stack's bottom page went back too. */
    for (struct stack *s = cleaned; s; s = s->next)
        if (!s->guarded)
            write_canary(s);
    bool guarded[WEFT__REFILL];
    if (n_fresh)
        guard_slots(p, fresh, n_fresh, mode, n_mprotect, guarded);
    for (unsigned i = 0; i < n_fresh; i++)
        c->items[c->n++] = carve(p, fresh_s[i], fresh[i], guarded[i]);
    return c->n > 0 ? c->items[--c->n] : NULL;
}

/* Pushes s on the pool's list of warm stacks; lock held. */
static void push_free_locked(struct stack_pool *p, struct stack *s)
{
    s->next = p->free;
    p->free = s;
    atomic_store_explicit(&p->n_free, atomic_load_explicit(&p->n_free, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* The cache is full: hand half of it back to the pool in one lock. Out
 * of line, so that the common put is a store and an increment. */
static WEFT__NOINLINE void put_spill(struct stack_pool *p, struct stack_cache *c)
{
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < WEFT__STACK_CACHE / 2; i++)
        push_free_locked(p, c->items[--c->n]);
    pthread_mutex_unlock(&p->lock);
}

void weft__stack_put(struct stack_pool *p, struct stack_cache *c, struct stack *s)
{
    if (WEFT__UNLIKELY(c->n >= WEFT__STACK_CACHE))
        put_spill(p, c);
    c->items[c->n++] = s;
}

void weft__stack_cache_drain(struct stack_pool *p, struct stack_cache *c)
{
    pthread_mutex_lock(&p->lock);
    while (c->n > 0)
        push_free_locked(p, c->items[--c->n]);
    pthread_mutex_unlock(&p->lock);
}

bool weft__stack_scavenge_pending(struct stack_pool *p, const struct stack_cache *c)
{
    return c->n > WEFT__STACK_RESERVE ||
           atomic_load_explicit(&p->n_free, memory_order_relaxed) > 0;
}

size_t weft__stack_scavenge(struct stack_pool *p, struct stack_cache *c, size_t max)
{
    /* The cache keeps its newest stacks (the ones on top, likely still in
     * the CPU caches); the older ones go. */
    struct stack *list = NULL, *last = NULL;
    size_t n = 0;
    unsigned keep = c->n < WEFT__STACK_RESERVE ? c->n : WEFT__STACK_RESERVE;
    for (unsigned i = 0; i < c->n - keep; i++) {
        struct stack *s = c->items[i];
        s->next = list;
        if (!list)
            last = s;
        list = s;
        n++;
    }
    for (unsigned i = 0; i < keep; i++)
        c->items[i] = c->items[c->n - keep + i];
    c->n = keep;
    pthread_mutex_lock(&p->lock);
    size_t taken = 0;
    while (p->free && taken < max) {
        struct stack *s = p->free;
        p->free = s->next;
        s->next = list;
        if (!list)
            last = s;
        list = s;
        taken++;
    }
    atomic_store_explicit(&p->n_free,
                          atomic_load_explicit(&p->n_free, memory_order_relaxed) - taken,
                          memory_order_relaxed);
    n += taken;
    pthread_mutex_unlock(&p->lock);
    if (!list)
        return 0;
    /* Outside the lock: a system call per stack (about a microsecond, plus
     * the freeing of its pages). Meanwhile the stacks are on no list; a
     * worker that needs one carves or takes a clean one. */
    for (struct stack *s = list; s; s = s->next) {
        (void)madvise(s->lo, s->size, MADV_DONTNEED);
        /* ASan: the stack's shadow goes too (what ASan keeps of a stack
         * is about as large as the stack's own pages). */
        weft__checker_stack_reuse(s->lo, s->size);
        last = s;
    }
    pthread_mutex_lock(&p->lock);
    last->next = p->clean;
    p->clean = list;
    p->n_clean += n;
    pthread_mutex_unlock(&p->lock);
    return n;
}

bool weft__stack_guard_hit(struct stack_pool *p, const void *addr, size_t *stack_size)
{
    const char *a = addr;
    /* Acquire: pairs with the release store of p->regions in
     * reserve_locked; each region's fields are set before it is published. */
    for (struct region *r = __atomic_load_n(&p->regions, __ATOMIC_ACQUIRE); r; r = r->next) {
        if (a < r->base || a >= r->base + r->len)
            continue;
        size_t off = (size_t)(a - r->base) % p->slot_size;
        if (off < p->guard_size) {
            if (stack_size)
                *stack_size = p->slot_size - p->guard_size;
            return true;
        }
        return false;
    }
    return false;
}
