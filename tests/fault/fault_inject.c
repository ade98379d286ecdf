/* SPDX-License-Identifier: MIT */
/* The wrappers of fault_inject.h. The program is linked with
 * -Wl,--wrap=NAME for each wrapped function, so every reference to NAME in
 * the linked objects (the static library core and the test) lands in
 * __wrap_NAME, which calls the real one (__real_NAME) unless the armed
 * counter says this call fails. Live heap blocks are kept in an
 * open-addressing table mapped outside the heap, under one spinlock. Any
 * thread. */
#define _GNU_SOURCE 1
#include "fault_inject.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
void __real_free(void *p);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
int __real_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg);
int __real_epoll_create1(int flags);
int __real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int __real_eventfd(unsigned int initval, int flags);
int __real_madvise(void *addr, size_t len, int advice);
int __real_mprotect(void *addr, size_t len, int prot);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
void *__wrap_aligned_alloc(size_t align, size_t size);
void __wrap_free(void *p);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *addr, size_t len);
int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg);
int __wrap_epoll_create1(int flags);
int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int __wrap_eventfd(unsigned int initval, int flags);
int __wrap_madvise(void *addr, size_t len, int advice);
int __wrap_mprotect(void *addr, size_t len, int prot);

/* ------------------------------------------------------------ the counter */

static _Atomic unsigned armed_kinds;
static _Atomic long fail_at;  /* the call number that fails; 0 = none */
static int64_t burst_ns;      /* > 0: later calls fail too, for this long */
static _Atomic int64_t burst_end; /* instant the burst ends; 0 = not begun */
static _Atomic long n_calls;
static _Atomic int n_injected;
static const char *injected_what = "";
static void *injected_caller;
static int report_fd = -1;

void fault_set_report_fd(int fd) { report_fd = fd; }

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void fault_arm_burst(unsigned kinds, long n, int64_t duration_ns)
{
    burst_ns = duration_ns;
    atomic_store(&burst_end, 0);
    fault_arm(kinds, n);
    burst_ns = duration_ns;
}

void fault_burst_wait(void)
{
    int64_t end = atomic_load(&burst_end);
    while (end && now_ns() < end) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

void fault_arm(unsigned kinds, long n)
{
    burst_ns = 0;
    atomic_store(&burst_end, 0);
    atomic_store(&n_calls, 0);
    atomic_store(&n_injected, 0);
    injected_what = "";
    injected_caller = NULL;
    atomic_store(&fail_at, n);
    atomic_store(&armed_kinds, kinds);
}

void fault_disarm(void) { atomic_store(&armed_kinds, 0u); }
long fault_calls(void) { return atomic_load(&n_calls); }
int fault_injected(void) { return atomic_load(&n_injected); }
const char *fault_injected_what(void) { return injected_what; }
void *fault_injected_caller(void) { return injected_caller; }

/* Counts a call of kind; true when this one must fail. */
static bool should_fail(unsigned kind, const char *what, void *caller)
{
    if (!(atomic_load_explicit(&armed_kinds, memory_order_relaxed) & kind))
        return false;
    long n = atomic_fetch_add(&n_calls, 1) + 1;
    long at = atomic_load(&fail_at);
    if (at == 0 || n < at)
        return false;
    if (n > at) {
        /* A burst: every call fails until it ends. */
        int64_t end = atomic_load(&burst_end);
        if (!burst_ns || (end && now_ns() >= end))
            return false;
        atomic_fetch_add(&n_injected, 1);
        return true;
    }
    if (burst_ns)
        atomic_store(&burst_end, now_ns() + burst_ns);
    injected_what = what;
    injected_caller = caller;
    atomic_fetch_add(&n_injected, 1);
    if (report_fd >= 0) {
        /* Said at once, so that a run that then hangs still tells. */
        char line[96];
        int len = snprintf(line, sizeof line, "I %s exe+0x%lx\n", what, fault_exe_offset(caller));
        if (write(report_fd, line, (size_t)len) < 0) {
            /* the parent is gone: nothing to tell */
        }
    }
    return true;
}

/* ------------------------------------------------------------ live blocks */

struct block {
    uintptr_t p; /* 0 = empty slot */
    size_t size;
    void *caller;
    uint64_t seq;
};

#define TABLE_BITS 20
#define TABLE_CAP ((size_t)1 << TABLE_BITS)

static struct block *table;
static atomic_flag table_lock = ATOMIC_FLAG_INIT;
static long live_blocks, live_bytes;
static _Atomic long live_mapped;
static uint64_t next_seq = 1, snapshot_seq;

static void lock(void)
{
    for (unsigned i = 0; atomic_flag_test_and_set_explicit(&table_lock, memory_order_acquire);
         i++)
        if (i > 64)
            sched_yield();
}

static void unlock(void) { atomic_flag_clear_explicit(&table_lock, memory_order_release); }

static size_t slot_of(uintptr_t p)
{
    uint64_t h = (uint64_t)p * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> (64 - TABLE_BITS));
}

static void track(void *p, size_t size, void *caller)
{
    if (!p)
        return;
    lock();
    if (!table) {
        table = __real_mmap(NULL, TABLE_CAP * sizeof *table, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (table == MAP_FAILED)
            abort();
    }
    if (live_blocks >= (long)(TABLE_CAP / 2)) {
        unlock();
        fprintf(stderr, "fault_inject: more than %zu live blocks\n", TABLE_CAP / 2);
        abort();
    }
    size_t i = slot_of((uintptr_t)p);
    while (table[i].p)
        i = (i + 1) & (TABLE_CAP - 1);
    table[i] = (struct block){(uintptr_t)p, size, caller, next_seq++};
    live_blocks++;
    live_bytes += (long)size;
    unlock();
}

/* Linear probing with backward-shift deletion (no tombstones). */
static void untrack(void *p)
{
    if (!p)
        return;
    lock();
    if (!table) {
        unlock();
        return;
    }
    size_t i = slot_of((uintptr_t)p);
    while (table[i].p && table[i].p != (uintptr_t)p)
        i = (i + 1) & (TABLE_CAP - 1);
    if (!table[i].p) {
        unlock(); /* not ours (allocated by libc for us): nothing to do */
        return;
    }
    live_blocks--;
    live_bytes -= (long)table[i].size;
    size_t hole = i;
    for (size_t j = (i + 1) & (TABLE_CAP - 1); table[j].p; j = (j + 1) & (TABLE_CAP - 1)) {
        size_t home = slot_of(table[j].p);
        /* Move j into the hole unless its home lies cyclically in
         * (hole, j]. */
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            table[hole] = table[j];
            hole = j;
        }
    }
    table[hole].p = 0;
    unlock();
}

long fault_live_blocks(void)
{
    lock();
    long n = live_blocks;
    unlock();
    return n;
}

long fault_live_bytes(void)
{
    lock();
    long n = live_bytes;
    unlock();
    return n;
}

long fault_live_mapped(void) { return atomic_load(&live_mapped); }

void fault_snapshot(void)
{
    lock();
    snapshot_seq = next_seq;
    unlock();
}

unsigned long fault_exe_offset(void *addr)
{
    Dl_info info;
    if (addr && dladdr(addr, &info) && info.dli_fbase)
        return (unsigned long)((char *)addr - (char *)info.dli_fbase);
    return (unsigned long)(uintptr_t)addr;
}

long fault_report_new_blocks(int fd, long max)
{
    long n = 0;
    lock();
    for (size_t i = 0; table && i < TABLE_CAP; i++) {
        if (!table[i].p || table[i].seq < snapshot_seq)
            continue;
        if (n++ < max)
            dprintf(fd, "  leaked block of %zu bytes allocated at exe+0x%lx\n", table[i].size,
                    fault_exe_offset(table[i].caller));
    }
    unlock();
    return n;
}

/* ------------------------------------------------------------ heap */

void *__wrap_malloc(size_t size)
{
    void *caller = __builtin_return_address(0);
    if (should_fail(FAULT_MALLOC, "malloc", caller)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_malloc(size);
    track(p, size, caller);
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    void *caller = __builtin_return_address(0);
    if (should_fail(FAULT_MALLOC, "calloc", caller)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_calloc(n, size);
    track(p, n * size, caller);
    return p;
}

void *__wrap_realloc(void *old, size_t size)
{
    void *caller = __builtin_return_address(0);
    if (should_fail(FAULT_MALLOC, "realloc", caller)) {
        errno = ENOMEM;
        return NULL; /* old stays valid */
    }
    /* Untrack first: another thread may get old's address from malloc as
     * soon as realloc has released it. On failure old is still live. */
    untrack(old);
    void *p = __real_realloc(old, size);
    if (p)
        track(p, size, caller);
    else if (old)
        track(old, 0, caller);
    return p;
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    void *caller = __builtin_return_address(0);
    if (should_fail(FAULT_MALLOC, "aligned_alloc", caller)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_aligned_alloc(align, size);
    track(p, size, caller);
    return p;
}

void __wrap_free(void *p)
{
    untrack(p);
    __real_free(p);
}

/* ------------------------------------------------------------ mappings */

static _Atomic size_t mmap_limit;

void fault_set_mmap_limit(size_t max_len) { atomic_store(&mmap_limit, max_len); }

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    size_t limit = atomic_load(&mmap_limit);
    if (should_fail(FAULT_MMAP, "mmap", __builtin_return_address(0)) ||
        (limit && len > limit)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    void *p = __real_mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED)
        atomic_fetch_add(&live_mapped, (long)len);
    return p;
}

int __wrap_munmap(void *addr, size_t len)
{
    int rc = __real_munmap(addr, len);
    if (rc == 0)
        atomic_fetch_sub(&live_mapped, (long)len);
    return rc;
}

/* ------------------------------------------------------------ threads, epoll */

int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg)
{
    if (should_fail(FAULT_THREAD, "pthread_create", __builtin_return_address(0)))
        return EAGAIN;
    return __real_pthread_create(th, attr, fn, arg);
}

int __wrap_epoll_create1(int flags)
{
    if (should_fail(FAULT_EPOLL, "epoll_create1", __builtin_return_address(0))) {
        errno = ENOMEM;
        return -1;
    }
    return __real_epoll_create1(flags);
}

int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    if (should_fail(FAULT_EPOLL, "epoll_ctl", __builtin_return_address(0))) {
        errno = ENOMEM;
        return -1;
    }
    return __real_epoll_ctl(epfd, op, fd, ev);
}

int __wrap_eventfd(unsigned int initval, int flags)
{
    if (should_fail(FAULT_EVENTFD, "eventfd", __builtin_return_address(0))) {
        errno = EMFILE;
        return -1;
    }
    return __real_eventfd(initval, flags);
}

/* ------------------------------------------------------------ guard pages */

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static _Atomic int guards_off;

void fault_set_guards_off(int level) { atomic_store(&guards_off, level); }

/* Only guard installation is counted and failed: the library's other
 * advice (populate, dontneed) has no failure that matters. */
int __wrap_madvise(void *addr, size_t len, int advice)
{
    if (advice == MADV_GUARD_INSTALL &&
        (atomic_load(&guards_off) ||
         should_fail(FAULT_GUARD, "madvise", __builtin_return_address(0)))) {
        errno = EINVAL;
        return -1;
    }
    return __real_madvise(addr, len, advice);
}

int __wrap_mprotect(void *addr, size_t len, int prot)
{
    if (prot == PROT_NONE &&
        (atomic_load(&guards_off) >= 2 ||
         should_fail(FAULT_GUARD, "mprotect", __builtin_return_address(0)))) {
        errno = ENOMEM;
        return -1;
    }
    return __real_mprotect(addr, len, prot);
}
