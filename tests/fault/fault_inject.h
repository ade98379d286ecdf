/* SPDX-License-Identifier: MIT */
/* Fault injection for tests/fault/fault_test: link-time wrappers
 * (ld --wrap) around the calls through which the library can run out of
 * something. Only code linked into the test program (the static core,
 * lib/libweft-core.la, and the test itself) goes through them; libc's own
 * internal calls do not. Every wrapped call is counted; when armed, the
 * n-th one fails as the real call would when memory, threads or
 * descriptors run out. The wrappers also keep the set of live heap blocks
 * and the mapped bytes, so a run can check that it leaked nothing. Any
 * thread. */
#ifndef WEFT_TESTS_FAULT_INJECT_H
#define WEFT_TESTS_FAULT_INJECT_H

#include <stddef.h>
#include <stdint.h>

/* What can be made to fail (fault_kinds). */
enum {
    FAULT_MALLOC = 1u << 0,  /* malloc, calloc, realloc, aligned_alloc: NULL, ENOMEM */
    FAULT_MMAP = 1u << 1,    /* mmap: MAP_FAILED, ENOMEM */
    FAULT_THREAD = 1u << 2,  /* pthread_create: EAGAIN */
    FAULT_EPOLL = 1u << 3,   /* epoll_create1, epoll_ctl: -1, ENOMEM */
    FAULT_EVENTFD = 1u << 4, /* eventfd: -1, EMFILE */
    FAULT_GUARD = 1u << 5,   /* guard installation: madvise(MADV_GUARD_INSTALL)
                                -1, EINVAL (kernels before 6.13);
                                mprotect(PROT_NONE) -1, ENOMEM (no VMA left) */
    FAULT_ALL = 0x3f,
};

/* Outside the counting: with level 1, every madvise(MADV_GUARD_INSTALL)
 * fails, as on a kernel before 6.13 (guards then come from mprotect);
 * with level 2 every mprotect(PROT_NONE) too, as when the budget of
 * mappings is spent (no stack gets a guard page); 0 = off. */
void fault_set_guards_off(int level);
/* Outside the counting: mmap calls of more than max_len bytes fail with
 * ENOMEM, as under a small ulimit -v (0 = no limit). */
void fault_set_mmap_limit(size_t max_len);

/* Counts wrapped calls of the kinds in `kinds` from now on and makes the
 * n-th of them fail (n >= 1; 0 = count only, never fail). */
void fault_arm(unsigned kinds, long n);
/* An injected failure is announced on fd at once ("I NAME exe+0xOFF"). */
void fault_set_report_fd(int fd);
/* The same, but from the n-th call on every call of those kinds fails
 * for duration_ns (memory exhaustion that lasts a while, then passes). */
void fault_arm_burst(unsigned kinds, long n, int64_t duration_ns);
/* Returns once an armed burst has ended (at once if none began). */
void fault_burst_wait(void);
/* Stops counting and failing. */
void fault_disarm(void);
/* Calls counted since the last fault_arm. */
long fault_calls(void);
/* Failures injected since the last fault_arm (0 or 1; more in a burst). */
int fault_injected(void);
/* The injected failure: the wrapped function's name ("" if none) and the
 * address it was called from. */
const char *fault_injected_what(void);
void *fault_injected_caller(void);

/* Heap blocks allocated through the wrappers and not yet freed, and their
 * bytes. */
long fault_live_blocks(void);
long fault_live_bytes(void);
/* Bytes mapped through the wrapped mmap and not unmapped. */
long fault_live_mapped(void);
/* Writes up to max live blocks that were not live in the snapshot taken
 * by fault_snapshot() (size and allocating call site) to fd. Returns
 * how many there are. */
void fault_snapshot(void);
/* addr as an offset into the executable (for addr2line). */
unsigned long fault_exe_offset(void *addr);
long fault_report_new_blocks(int fd, long max);

#endif /* WEFT_TESTS_FAULT_INJECT_H */
