/* SPDX-License-Identifier: MIT */
/* Stack pool. Slots are carved from mappings of WEFT__REGION_SLOTS stacks so
 * that a million stacks need tens of thousands of mappings at most, not a
 * million (vm.max_map_count is 65530 on stock kernels). Guard pages: with
 * MADV_GUARD_INSTALL (Linux 6.13+) they cost no extra mapping and every
 * stack gets one; otherwise mprotect() splits the mapping, so only the
 * first WEFT__MPROTECT_GUARDS stacks are guarded and later ones are not
 * (documented in the README). */
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

enum { GUARD_UNKNOWN, GUARD_MADVISE, GUARD_MPROTECT };

struct region {
    struct region *next;
    char *base;
    size_t len;
};

int weft__stack_pool_init(struct stack_pool *p, size_t stack_size)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        page = 4096;
    p->page = (size_t)page;
    size_t usable = (stack_size + p->page - 1) & ~(p->page - 1);
    p->slot_size = usable + p->page;
    p->free = NULL;
    p->n_free = 0;
    p->regions = NULL;
    p->bump = p->bump_end = NULL;
    p->guard_mode = GUARD_UNKNOWN;
    p->guard_pidfd = -1;
    p->guard_pid = 0;
    p->guard_batch_off = false;
    p->n_mprotect_guards = 0;
    p->n_stacks = 0;
    int rc = pthread_mutex_init(&p->lock, NULL);
    return rc ? -rc : 0;
}

void weft__stack_pool_destroy(struct stack_pool *p)
{
    /* Deregister from valgrind every stack carved so far. */
    for (struct region *r = p->regions; r;) {
        struct region *next = r->next;
        char *end = (r == p->regions && p->bump) ? p->bump : r->base + r->len;
        for (char *slot = r->base; slot + p->slot_size <= end; slot += p->slot_size) {
            struct stack *s = (struct stack *)(slot + p->slot_size - sizeof(struct stack));
            weft__checker_stack_deregister(s->vg_id);
        }
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
                iov[i] = (struct iovec){slots[i], p->page};
            long rc = syscall(SYS_process_madvise, pidfd, iov, (size_t)n, MADV_GUARD_INSTALL, 0u);
            if (rc > 0) {
                done = (unsigned)((size_t)rc / p->page); /* whole iovecs, in order */
            } else if (rc < 0 && errno != EAGAIN && errno != EINTR && errno != ENOMEM) {
                /* The kernel refuses the batch: stop trying. Relaxed: it
                 * only ever goes to true, a stale read costs one call. */
                __atomic_store_n(&p->guard_batch_off, true, __ATOMIC_RELAXED);
            }
        }
#endif
        for (unsigned i = 0; i < n; i++)
            guarded[i] = i < done || madvise(slots[i], p->page, MADV_GUARD_INSTALL) == 0;
        return;
    }
    for (unsigned i = 0; i < n; i++)
        guarded[i] = i < n_mprotect && mprotect(slots[i], p->page, PROT_NONE) == 0;
}

/* Which kind of guard pages this kernel offers; lock held, decided once
 * on a slot that is not handed out yet (a guard installed there stays). */
static int guard_mode_locked(struct stack_pool *p, char *slot)
{
    if (p->guard_mode != GUARD_UNKNOWN)
        return p->guard_mode;
    if (madvise(slot, p->page, MADV_GUARD_INSTALL) == 0) {
        p->guard_mode = GUARD_MADVISE;
#if defined(SYS_process_madvise) && defined(SYS_pidfd_open)
        /* Probe batching on this slot (installing a guard twice is fine).
         * The pool lock publishes the result. A real fd is closed at
         * destroy. */
        struct iovec iov = {slot, p->page};
        if (syscall(SYS_process_madvise, WEFT__PIDFD_SELF_PROCESS, &iov, (size_t)1,
                    MADV_GUARD_INSTALL, 0u) == (long)p->page) {
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

/* Reserves the address of one new slot; lock held. NULL when out of
 * memory. The slot's pages are not touched here. */
static char *reserve_locked(struct stack_pool *p)
{
    if (p->bump == p->bump_end) {
        struct region *r = malloc(sizeof *r);
        if (!r)
            return NULL;
        r->len = p->slot_size * WEFT__REGION_SLOTS;
        r->base = mmap(NULL, r->len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (r->base == MAP_FAILED) {
            free(r);
            return NULL;
        }
        r->next = p->regions;
        /* Release: publishes r's fields to weft__stack_guard_hit(), which
         * walks the list without the lock (acquire load there). */
        __atomic_store_n(&p->regions, r, __ATOMIC_RELEASE);
        p->bump = r->base;
        p->bump_end = r->base + r->len;
    }
    char *slot = p->bump;
    p->bump += p->slot_size;
    p->n_stacks++;
    return slot;
}

/* Turns a reserved, guarded slot into a stack: writes its header (the
 * first touch of its top page). No lock. */
static struct stack *carve(struct stack_pool *p, char *slot, bool guarded)
{
    struct stack *s = (struct stack *)(slot + p->slot_size - sizeof(struct stack));
    s->next = NULL;
    s->lo = slot + p->page;
    s->size = (size_t)((char *)s - s->lo) & ~(size_t)15;
    s->fiber = NULL;
    s->guarded = guarded;
    s->vg_id = weft__checker_stack_register(s->lo, (char *)s);
    return s;
}

struct stack *weft__stack_get(struct stack_pool *p, struct stack_cache *c)
{
    if (WEFT__LIKELY(c->n > 0))
        return c->items[--c->n];
    char *fresh[WEFT__REFILL];
    unsigned n_fresh = 0, n_mprotect = 0;
    int mode = GUARD_UNKNOWN;
    pthread_mutex_lock(&p->lock);
    while (c->n + n_fresh < WEFT__REFILL) {
        struct stack *s = p->free;
        if (s) {
            p->free = s->next;
            p->n_free--;
            c->items[c->n++] = s;
            continue;
        }
        char *slot = reserve_locked(p);
        if (!slot)
            break;
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
    bool guarded[WEFT__REFILL];
    if (n_fresh)
        guard_slots(p, fresh, n_fresh, mode, n_mprotect, guarded);
    for (unsigned i = 0; i < n_fresh; i++)
        c->items[c->n++] = carve(p, fresh[i], guarded[i]);
    return c->n > 0 ? c->items[--c->n] : NULL;
}

void weft__stack_put(struct stack_pool *p, struct stack_cache *c, struct stack *s)
{
    if (WEFT__LIKELY(c->n < WEFT__STACK_CACHE)) {
        c->items[c->n++] = s;
        return;
    }
    /* Full: hand half of the cache back to the pool in one lock. */
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < WEFT__STACK_CACHE / 2; i++) {
        struct stack *o = c->items[--c->n];
        o->next = p->free;
        p->free = o;
        p->n_free++;
    }
    pthread_mutex_unlock(&p->lock);
    c->items[c->n++] = s;
}

void weft__stack_cache_drain(struct stack_pool *p, struct stack_cache *c)
{
    pthread_mutex_lock(&p->lock);
    while (c->n > 0) {
        struct stack *o = c->items[--c->n];
        o->next = p->free;
        p->free = o;
        p->n_free++;
    }
    pthread_mutex_unlock(&p->lock);
}

bool weft__stack_guard_hit(struct stack_pool *p, const void *addr, size_t *stack_size)
{
    const char *a = addr;
    for (struct region *r = __atomic_load_n(&p->regions, __ATOMIC_ACQUIRE); r; r = r->next) {
        if (a < r->base || a >= r->base + r->len)
            continue;
        size_t off = (size_t)(a - r->base) % p->slot_size;
        if (off < p->page) {
            if (stack_size)
                *stack_size = p->slot_size - p->page;
            return true;
        }
        return false;
    }
    return false;
}
